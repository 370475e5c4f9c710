#pragma once

// Keyspace: the filesystem's namespace and contents, all in memory (DESIGN §3).
//
// This is the "database" of keyfs. Keys are paths, split into an inode table
// and directories; values are files' bytes, split into blocks. Every lookup,
// getattr and readdir is answered from here without IO, so the namespace is an
// exact negative cache: a name that is not here does not exist anywhere.
//
// Threading: owned by the main (event-loop) thread. No method locks; no other
// thread may call one. Buffers handed out by Read() may be read by any thread
// (they are immutable while shared, see block_buffer.h).
//
// Errors are errno values in Status, the same a local filesystem would give;
// the adapter passes them to the kernel unchanged. Two codes are not errors
// but "not now" (block_slot.h): kNeedBlocks (blocks the operation needs are
// in the store; needed() names them; nothing was changed) and kNeedRoom
// (memory is full of blocks being saved). The adapter parks the request and
// runs it again (src/cache/block_cache.h). Permission checks are the
// kernel's (keyfs always mounts with default_permissions), so methods here
// check structure (ENOTDIR, ENOTEMPTY, EEXIST, ...) and the memory budget, not
// mode bits.
//
// Reference counts, as in libfuse's passthrough_hp: every method that returns
// an Entry to the kernel adds one to the inode's lookup count, and Forget()
// takes them back; OpenDirectory adds an open, ReleaseDirectory takes it back.
// Files have no open count (see Open).

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "src/base/clock.h"
#include "src/base/memory_accountant.h"
#include "src/base/status.h"
#include "src/keyspace/block_slot.h"
#include "src/keyspace/expiry_index.h"
#include "src/keyspace/file_data.h"
#include "src/keyspace/inode.h"
#include "src/keyspace/inode_table.h"
#include "src/keyspace/mutation_log.h"
#include "src/keyspace/xattr_map.h"

namespace keyfs {

struct KeyspaceOptions {
  uint32_t block_size = 256 * 1024;
};

// Who asks: new inodes are owned by the caller (or take the group of a
// set-group-ID directory, as POSIX says).
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
};

struct Entry {
  Ino ino = 0;
  struct stat attr {};
};

struct TimeChange {
  enum Kind { kOmit, kNow, kSet };
  Kind kind = kOmit;
  timespec value{};
};

// Fields to change; unset ones stay as they are. ctime is always set to now
// unless given explicitly.
struct SetAttrRequest {
  std::optional<mode_t> mode;  // permission bits (07777); the type is kept
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<uint64_t> size;
  TimeChange atime, mtime;
  std::optional<timespec> ctime;
};

struct DirEntry {
  std::string name;
  Ino ino = 0;
  mode_t type = 0;  // S_IFMT bits
};

// A directory's entries at the time it was listed, "." and ".." first. Offsets
// handed to readdir are indexes into it, so a listing stays consistent while
// the directory changes (POSIX: entries added or removed meanwhile may or may
// not show; all others show exactly once). Charged to kHandles while alive.
class DirListing {
 public:
  DirListing() = default;
  DirListing(MemoryAccountant* accountant, std::vector<DirEntry> entries);
  ~DirListing();
  DirListing(DirListing&& other) noexcept;
  DirListing& operator=(DirListing&& other) noexcept;

  const std::vector<DirEntry>& entries() const { return entries_; }

 private:
  void Uncharge();
  MemoryAccountant* accountant_ = nullptr;
  std::vector<DirEntry> entries_;
  size_t charged_ = 0;
};

// An inode as a journal snapshot records it (see Keyspace::RestoreNode).
struct NodeAttributes {
  Ino ino = 0;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  dev_t rdev = 0;
  uint64_t size = 0;
  timespec atime{}, mtime{}, ctime{};
};

// One name of an inode: the directory and the name in it.
struct NameRef {
  Ino parent = 0;
  std::string name;
  bool operator==(const NameRef&) const = default;
};

// A name keyfs removed by itself (a lifetime ran out), for the kernel to
// forget: `child` was `name` in `parent`.
struct RemovedName {
  Ino parent = 0, child = 0;
  std::string name;
};

struct FsStats {
  uint64_t bytes_limit = 0;
  uint64_t bytes_used = 0;
  uint64_t inodes = 0;          // in use
  uint64_t inodes_possible = 0;  // in use + what still fits in the budget
};

class Keyspace {
 public:
  static constexpr size_t kMaxNameLength = 255;     // NAME_MAX
  static constexpr size_t kMaxSymlinkLength = 4095;  // PATH_MAX - 1
  static constexpr uint32_t kMaxLinks = 65000;
  static constexpr uint64_t kMaxFileSize = uint64_t{1} << 52;  // 4 PiB

  Keyspace(const KeyspaceOptions& options, MemoryAccountant* accountant,
           const Clock* clock);
  Keyspace(const Keyspace&) = delete;
  Keyspace& operator=(const Keyspace&) = delete;

  // --- names ---------------------------------------------------------------
  // A due file is not found (lazy expiry hides it; the server removes it
  // through the mount, so that inotify sees it go) unless `hide_due` is
  // false: the server's own expiry agent looks it up to remove it.
  Result<Entry> Lookup(Ino parent, std::string_view name, bool hide_due = true);
  void Forget(Ino ino, uint64_t count);
  // Regular files, fifos, sockets and device nodes (device numbers are kept
  // as metadata; opening them is the kernel's business).
  Result<Entry> MakeNode(Ino parent, std::string_view name, mode_t mode,
                         dev_t rdev, const Caller& caller);
  Result<Entry> MakeDirectory(Ino parent, std::string_view name, mode_t mode,
                              const Caller& caller);
  Result<Entry> MakeSymlink(Ino parent, std::string_view name,
                            std::string_view target, const Caller& caller);
  Result<Entry> Link(Ino ino, Ino new_parent, std::string_view new_name);
  Status Unlink(Ino parent, std::string_view name);
  Status RemoveDirectory(Ino parent, std::string_view name);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  Status Rename(Ino parent, std::string_view name, Ino new_parent,
                std::string_view new_name, unsigned flags);
  Result<std::string> ReadLink(Ino ino) const;
  // Every name of `ino`, its first name first (inode.h, invariant 4); none
  // for an inode that was removed or does not exist.
  std::vector<NameRef> NamesOf(Ino ino) const;

  // --- attributes ----------------------------------------------------------
  Result<struct stat> GetAttr(Ino ino) const;
  Result<struct stat> SetAttr(Ino ino, const SetAttrRequest& request);
  Status SetXattr(Ino ino, std::string_view name, std::string_view value,
                  XattrMap::SetMode mode);
  Result<std::string> GetXattr(Ino ino, std::string_view name) const;
  Result<std::string> ListXattr(Ino ino) const;  // NUL-separated names
  Status RemoveXattr(Ino ino, std::string_view name);
  FsStats StatFs() const;

  // --- pinned files (user.keyfs.pin; keyspace_pin.cc) -------------------------
  // A pinned regular file's blocks stay in memory: the cache never evicts
  // them and loads the evicted ones (BlockObserver::PinChanged). They count
  // against max_memory, so pinning is refused (ENOSPC, nothing changed) when
  // the pinned files' footprints (FileData::Footprint: their blocks as
  // buffers in memory) would pass PinLimit(). A write that would grow a
  // pinned file past it is refused the same way (ENOSPC), as tmpfs refuses a
  // write past its size: pinned memory is a reservation, and one that could
  // grow past the budget would leave the cache no room to work (or turn the
  // pin into a promise that is quietly not kept). Shrinking a file, and
  // overwriting bytes it has, always works. Replay checks nothing: a journal
  // replays as it was written (Server::Start refuses a mount whose pins do
  // not fit).
  //
  // Invariants: pinned_bytes_ is the sum of the footprints of the pinned
  // files, pinned_files_ their number (freed inodes leave both); outside of
  // replay, and while max_memory and the namespace do not change, pinned_bytes_
  // <= PinLimit().
  //
  // EISDIR for a directory, EINVAL for other files that are not regular,
  // ENOSPC when it does not fit; pinning a pinned file (or unpinning an
  // unpinned one) changes nothing and records nothing.
  Status SetPinned(Ino ino, bool pinned);
  // Blocks of room kept beyond what cannot be evicted and the pinned files:
  // with less, writers would fail with ENOSPC instead of waiting for saves
  // (BlockCache::Reclaim answers kNo when no block memory is left to free).
  static constexpr uint64_t kMinBlocksRoom = 8;
  // What pinned files may take: max_memory less what cannot be evicted
  // (MemoryAccountant::Unevictable) and kMinBlocksRoom blocks.
  uint64_t PinLimit() const;
  // The least max_memory that holds what cannot be evicted, the pinned files
  // and kMinBlocksRoom blocks.
  uint64_t MemoryNeeded() const;
  uint64_t pinned_bytes() const { return pinned_bytes_; }
  uint64_t pinned_files() const { return pinned_files_; }

  // --- contents ------------------------------------------------------------
  // Opening a file counts nothing: an open file lives as long as the kernel
  // holds its inode (its lookup count), which an open file does, whether it
  // was opened by OPEN, by CREATE, or without a request at all (the adapter
  // answers OPEN with ENOSYS, after which the kernel sends neither OPEN nor
  // RELEASE for any file, created ones included). See inode.h, invariant 2.
  //
  // Applies an open's flags to a file (O_TRUNC empties it). EISDIR for
  // directories.
  Status Open(Ino ino, int flags);
  // Creates a regular file; an existing one is opened unless O_EXCL (EEXIST).
  Result<Entry> Create(Ino parent, std::string_view name, mode_t mode,
                       int flags, const Caller& caller);
  // A RELEASE of a file (sent only until OPEN has been answered with ENOSYS):
  // gives back append slack early. Frees nothing; Forget does.
  void Release(Ino ino);
  Result<std::vector<ReadSlice>> Read(Ino ino, uint64_t offset, size_t size);
  // kEnd (O_APPEND) writes at the end of the file whatever `offset` says.
  // kWriteback is a page the kernel's writeback cache writes back: the
  // kernel keeps mtime and ctime itself then (and sends them as a SETATTR),
  // so the write leaves them as they are.
  enum class WriteAt { kOffset, kEnd, kWriteback };
  Result<size_t> Write(Ino ino, uint64_t offset, std::string_view data, WriteAt at);
  // Modes: 0 (extend), FALLOC_FL_KEEP_SIZE, and
  // FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE; others EOPNOTSUPP. Space is
  // not reserved: the blocks stay holes until written (memory is a cache,
  // so reserving it would guarantee nothing).
  Status Fallocate(Ino ino, int mode, uint64_t offset, uint64_t length);
  Result<DirListing> OpenDirectory(Ino ino);
  void ReleaseDirectory(Ino ino);
  // Appends grow a file's last block by doubling; call this periodically to
  // give back the slack of files that were not written since the last call.
  // (Files are not closed towards keyfs — FUSE OPEN/RELEASE are skipped — so
  // there is no close to do it on.)
  void TrimSlack();

  // --- lifetimes (keyspace_expiry.cc) -------------------------------------------
  // A file's lifetime (Redis's EXPIRE, issue 13 item 1) belongs to its inode:
  // it follows the file through renames and links, and when it ends every
  // name of the file is removed (journaled as unlinks); an open file stays
  // readable, as after rm. Times are Unix milliseconds. A due file is hidden
  // at once from lookups, listings and lifetime reads (lazy expiry), removed
  // at once when a new file takes its name, and otherwise removed from
  // outside (UnlinkDue, the server's expiry agent) or, late or at mount, by
  // ExpireDue. Nothing expires while no expiry clock is set (replay applies
  // the journal as recorded).
  //
  // Sets the lifetime of `ino` to end at `at_ms` (EINVAL for a directory;
  // ENOENT for a file already due: it is removed, as Redis expires a key
  // before any command on it).
  Status SetExpiry(Ino ino, int64_t at_ms);
  // Removes it (ENODATA when it has none): the file lives until removed.
  Status ClearExpiry(Ino ino);
  // Whether `ino` is due (hidden, to be removed).
  bool IsDue(Ino ino) const;
  // Whether any file is.
  bool HasDue() const {
    return expiry_clock_ && !expiry_.empty() && expiry_.FirstDue(ExpiryNowMs()).has_value();
  }
  // Whether `name` in `parent` names a due file.
  bool IsDueName(Ino parent, std::string_view name) const;
  std::optional<int64_t> ExpiryOf(Ino ino) const { return expiry_.Find(ino); }
  void set_expiry_clock(const Clock* clock) { expiry_clock_ = clock; }
  // Removes files whose lifetime ended `overdue_ms` or more ago, soonest
  // first, until none is left or the monotonic clock passes `deadline_ns`.
  // How many were removed.
  size_t ExpireDue(int64_t deadline_ns, int64_t overdue_ms = 0);
  // visit(ino) for each due file, soonest first, while visit returns true;
  // for removing them from outside (UnlinkDue).
  template <typename Visit>
  void ForEachDue(Visit&& visit) const {
    if (expiry_clock_ && !expiry_.empty()) expiry_.ForEachDue(ExpiryNowMs(), visit);
  }
  // Unlink, if the file named is due (ENOENT otherwise: the name may name a
  // new file by now); counted as expired when its last name goes.
  Status UnlinkDue(Ino parent, std::string_view name);
  // If `ino` is due, removes every name of it now (the kernel is told
  // through TakeRemovedNames). Whether it was due.
  bool ExpireIfDue(Ino ino);
  // The path of `name` in directory `parent`, from the root ("a/b/name");
  // ENOENT when a directory on the way was removed.
  Result<std::string> PathOf(Ino parent, std::string_view name) const;
  // The names removed by expiry since the last call, for the kernel.
  std::vector<RemovedName> TakeRemovedNames() { return std::move(removed_names_); }
  size_t keys_with_ttl() const { return expiry_.size(); }
  uint64_t expired_keys() const { return expired_keys_; }
  // visit(ino, at_ms) for every lifetime (what a snapshot writes).
  template <typename Visit>
  void ForEachExpiry(Visit&& visit) const { expiry_.ForEach(visit); }

  // --- the cache -------------------------------------------------------------
  // Told about every block that is dirtied or dropped (null: nobody, all
  // blocks stay in memory).
  void set_observer(BlockObserver* observer) { observer_ = observer; }
  BlockObserver* observer() const { return observer_; }
  // After kNeedBlocks: the blocks the operation needs loaded.
  const std::vector<BlockKey>& needed() const { return needed_; }
  // After a Read's kNeedBlocks: the bytes of each needed block it reads
  // (offset in the block, length), in the order of needed(); empty after
  // anything else. A small read may be served from those bytes alone.
  struct BlockPart {
    uint32_t offset = 0, length = 0;
  };
  const std::vector<BlockPart>& needed_parts() const { return needed_parts_; }
  // The next Read of evicted blocks uses these parts of their stored copies
  // (of any file; those of another version are ignored). Cleared by it.
  void OfferRanges(const std::vector<LoadedRange>* ranges) { offered_ranges_ = ranges; }
  // With a persistent store: a write of whole blocks at an offset (not an
  // append, not a writeback page) is stored before it is applied, so that
  // its bytes go to disk once, to the store, and the journal records only
  // where they are (kNeedStore; block_cache.h, "Whole-block writes").
  void set_stores_whole_blocks(bool on) { stores_whole_blocks_ = on; }
  // After kNeedStore: the blocks to store, copies of the write's bytes.
  struct ToStore {
    Ino ino = 0;
    uint64_t first = 0;  // block index
    std::vector<RefPtr<BlockBuffer>> blocks;
  };
  ToStore TakeToStore() { return std::move(to_store_); }
  // The next Write of those blocks uses `stored` (their copies, in order;
  // null or fewer than asked for: the store failed, and the write goes the
  // usual way, its bytes in the journal). Cleared by that Write.
  void OfferStored(const std::vector<StoredBlock>* stored) { offered_ = stored; }
  // The cache's access to an inode, to install, evict and clean blocks.
  Inode* MutableInode(Ino ino) { return inodes_.Find(ino); }
  // Calls visit(ino, FileData&) for every regular file (the cache, at mount).
  template <typename Visit>
  void ForEachFile(Visit&& visit);

  // --- journal ---------------------------------------------------------------
  // Every change from now on is reported to `log` (null: to nobody), and
  // refused with its error while log->Writable() is not OK.
  void set_log(MutationLog* log) { log_ = log; }
  // Replay: the sequence number of the record being applied, which becomes
  // the version of the blocks it changes (block_slot.h, 2). Live changes
  // take the number the log gives their record.
  void set_replay_seq(uint64_t seq) { replay_seq_ = seq; }
  // Replay sets the time each recorded operation had.
  void set_clock(const Clock* clock) { clock_ = clock; }

  // Replay of snapshot records (keyspace_restore.cc). They recreate state as
  // recorded, without kernel references or opens, and without the checks a
  // live request gets beyond what keeps the keyspace consistent.
  //
  // An inode with its number, attributes and first name. `content` is a
  // symlink's target or a regular file's first bytes. With `touch_parent` the
  // parent's mtime and ctime become the inode's ctime (a live creation);
  // without, they stay (a snapshot, which restores them itself). The root
  // (ino 1, no parent) only takes the attributes.
  Status RestoreNode(Ino parent, std::string_view name, const NodeAttributes& attrs,
                     std::string_view content, bool touch_parent);
  // A further name for an existing inode, leaving all time stamps as they are.
  Status RestoreLink(Ino ino, Ino parent, std::string_view name);
  // File bytes and extended attributes without touching any time stamp.
  Status RestoreData(Ino ino, uint64_t offset, std::string_view data);
  Status RestoreXattr(Ino ino, std::string_view name, std::string_view value);
  Status RestoreAccessTime(Ino ino, timespec atime);
  // A pin as recorded (no budget check: see SetPinned).
  Status RestorePin(Ino ino, bool pinned);
  // Counts the pinned files' footprints again (the end of replay, which
  // does not keep count as it goes).
  void RecountPinned();
  // Block `index` of a snapshot file: its bytes at `version` (dirty, in
  // memory), or its stored copy (evicted). kNeedRoom/ENOSPC when memory is short.
  Status RestoreBlockData(Ino ino, uint64_t index, uint64_t version, std::string_view data);
  Status RestoreStoredBlock(Ino ino, uint64_t index, uint32_t length, uint64_t version,
                            uint64_t stored_version, const BlockLocation& where);
  // A SAVE the journal recorded: block `index` of `ino` as of `version` is
  // stored at `where`. If the block has not changed since, it becomes that
  // copy (evicted, no memory); otherwise the copy is only remembered.
  // Unknown inodes and blocks are skipped (OK).
  Status RestoreBlockSaved(Ino ino, uint64_t index, uint64_t version, const BlockLocation& where);
  // A whole block written by storing it first (MutationLog::WrittenStored);
  // the block takes the replayed record's number as its version.
  Status RestoreWriteStored(Ino ino, uint64_t index, uint32_t length, timespec time,
                            uint64_t stored_version, const BlockLocation& where);
  // Inode numbers below `next` are never handed out again.
  void RestoreNextIno(Ino next) { inodes_.ReserveUpTo(next); }

  // Visits every directory from the root down, parents before children, then
  // calls `visit` for each (parent, name, inode) — what a snapshot writes.
  template <typename Visit>
  void ForEachName(Visit&& visit) const;

  size_t inode_count() const { return inodes_.size(); }
  Ino next_ino() const { return inodes_.next_ino(); }
  uint32_t block_size() const { return options_.block_size; }
  const MemoryAccountant& memory() const { return *accountant_; }
  MemoryAccountant* mutable_memory() { return accountant_; }
  // For tests and introspection; nullptr when absent.
  const Inode* FindInode(Ino ino) const { return inodes_.Find(ino); }

 private:
  Result<Inode*> Get(Ino ino) const;
  Result<Inode*> GetDirectory(Ino ino) const;
  // A directory that can take a new entry `name`: exists, is a live directory,
  // and has no such entry yet.
  // A due file named `name` there is removed first (lazy expiry).
  Result<Inode*> DirectoryForNewEntry(Ino parent, std::string_view name);
  static Status CheckName(std::string_view name);
  Status CheckWritable(SpaceEffect effect = SpaceEffect::kAdds) const;
  Status Reserve(uint64_t bytes) const;

  // Creates an inode named `name` in `dir`, owned by `caller`.
  Inode* AddInode(Inode* dir, std::string_view name, mode_t mode,
                  const Caller& caller, timespec now);
  // One more name for `inode` in `dir`.
  void AddName(Inode* inode, Inode* dir, std::string_view name, timespec now);
  Entry MakeEntry(Inode* inode);  // adds one kernel lookup
  void FillStat(const Inode& inode, struct stat* st) const;
  static void TouchChange(Inode* inode, timespec now);  // ctime = now
  static void TouchModify(Inode* inode, timespec now);  // mtime = ctime = now
  void DropName(Inode* inode, timespec now);  // nlink - 1 (or 0 for a directory)
  // Gives `inode` the name `name` in directory `dir` (absent there) or takes
  // it away: the directory entry and the inode's names (inode.h, invariant
  // 4) change together.
  void NameAdded(Inode* inode, Inode* dir, std::string_view name);
  void NameRemoved(Inode* inode, Inode* dir, std::string_view name);
  // What a further name of a file costs beyond its directory entry.
  // What a new inode with its first name costs.
  static size_t NewInodeCost(std::string_view name) {
    return InodeTable::kInodeCost + Directory::EntryCost(name) + StringHeapBytes(name.size());
  }
  static size_t ExtraNameCost(std::string_view name) {
    return sizeof(NameRef) + StringHeapBytes(name.size());
  }
  void MaybeFree(Inode* inode);
  // Removes every name of `inode`, whose lifetime ended.
  Status Expire(Inode* inode);
  int64_t ExpiryNowMs() const;
  bool IsWithin(Ino dir, Ino ancestor) const;  // dir == ancestor or below it
  Status TruncateFile(Inode* inode, uint64_t size, timespec now);
  // The context of a change to `inode`'s blocks made now.
  BlockChange ChangeOf(const Inode& inode);
  // kNeedBlocks: records the file's `missing` block indexes in needed_.
  Status NeedBlocks(Ino ino, const std::vector<uint64_t>& missing);
  // The write of whole blocks `data` at `offset`: kNeedStore with their
  // copies in to_store_, or applied with the copies `offered` (OfferStored).
  Result<size_t> WriteWholeBlocks(Inode* inode, uint64_t offset, std::string_view data,
                                  const std::vector<StoredBlock>* offered);
  // ENOSPC when a write of `length` bytes at `offset` would grow pinned
  // `inode` past PinLimit() (not in replay).
  Status CheckPinnedGrowth(const Inode& inode, uint64_t offset, uint64_t length) const;
  // Keeps pinned_bytes_ right across a change to blocks [first, last] of a
  // file (for pinned files only; a failed change changes nothing, so it
  // counts nothing either).
  class PinnedChange {
   public:
    PinnedChange(Keyspace* keyspace, Inode* inode, uint64_t first, uint64_t last);
    ~PinnedChange();
    PinnedChange(const PinnedChange&) = delete;
    PinnedChange& operator=(const PinnedChange&) = delete;

   private:
    Keyspace* const keyspace_;
    Inode* const inode_;  // null: not pinned, nothing to count
    const uint64_t first_, last_;
    uint64_t before_ = 0;
  };

  const KeyspaceOptions options_;
  MemoryAccountant* const accountant_;
  const Clock* clock_;
  MutationLog* log_ = nullptr;
  BlockObserver* observer_ = nullptr;
  uint64_t replay_seq_ = 0;
  uint64_t unlogged_changes_ = 0;
  std::vector<BlockKey> needed_;
  std::vector<BlockPart> needed_parts_;
  const std::vector<LoadedRange>* offered_ranges_ = nullptr;
  bool stores_whole_blocks_ = false;
  ToStore to_store_;
  const std::vector<StoredBlock>* offered_ = nullptr;
  InodeTable inodes_;
  ExpiryIndex expiry_;
  const Clock* expiry_clock_ = nullptr;
  std::vector<RemovedName> removed_names_;
  uint64_t expired_keys_ = 0;
  // The names of files beyond their first (hard links), by inode number;
  // files with one name have no entry. Charged to kNames.
  absl::flat_hash_map<Ino, std::vector<NameRef>> extra_names_;
  uint64_t pinned_bytes_ = 0;
  uint64_t pinned_files_ = 0;
  // Files whose last block has slack: written since the last TrimSlack(), and
  // written in the round before it.
  std::unordered_set<Ino> slack_recent_, slack_older_;
};

template <typename Visit>
void Keyspace::ForEachFile(Visit&& visit) {
  inodes_.ForEach([&](Inode& inode) {
    if (inode.is_regular()) visit(inode.ino, inode.file());
  });
}

template <typename Visit>
void Keyspace::ForEachName(Visit&& visit) const {
  std::vector<Ino> directories{kRootIno};
  while (!directories.empty()) {
    const Inode* dir = inodes_.Find(directories.back());
    directories.pop_back();
    for (const auto& [name, ino] : dir->dir()) {
      const Inode* inode = inodes_.Find(ino);
      if (!inode) continue;
      visit(dir->ino, name, *inode);
      if (inode->is_dir()) directories.push_back(ino);
    }
  }
}

}  // namespace keyfs
