#pragma once

// The journal's record payloads (docs/journal-format.md, "Records"): one
// struct per record type, each listing its fields once, in file order, in
// Fields(); Encode and Decode walk that list, so the layout cannot differ
// between writer and reader.
//
// Field encodings, all little-endian: integers fixed width; a time is
// i64 seconds + u32 nanoseconds; a string is a u32 length and its bytes.
// Decode fails (false) on a payload that is too short, has bytes left over,
// or has a nanosecond field out of range.

#include <ctime>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/keyspace/inode.h"
#include "store/block_store.h"

namespace keyfs::journal {

// Record types. Live operations and the snapshot a rewrite writes share one
// file format; kSnapshot* types are written by rewrites only.
enum RecordType : uint8_t {
  kNode = 1,            // create, mknod, mkdir, symlink (and every snapshot inode)
  kLink = 2,            // link(2)
  kUnlink = 3,          // unlink(2)
  kRmdir = 4,           // rmdir(2)
  kRename = 5,          // rename(2), renameat2(2) flags
  kSetAttr = 6,         // chmod, chown, utimes, truncate, O_TRUNC
  kWrite = 7,           // bytes at an offset
  kAllocate = 8,        // fallocate(2): allocate, keep size, punch hole
  kSetXattr = 9,        // setxattr(2)
  kRemoveXattr = 10,    // removexattr(2)
  kAccess = 11,         // a read moved the access time
  kSnapshotLink = 12,   // a further name of a snapshot inode
  kSnapshotData = 13,   // bytes of a snapshot file, times untouched
  kSnapshotXattr = 14,  // an extended attribute of a snapshot inode
  kSnapshotEnd = 15,    // last record of a complete snapshot
  // Format 2: the block store.
  kBlockSaved = 16,          // the cache saved a block (a location, no bytes)
  kSnapshotStoredBlock = 17,  // a snapshot block that is in the store
  kSnapshotBlockData = 18,    // a snapshot block's bytes, with its version
  // Version 3 (store/journal_format.h).
  kWriteStored = 19,  // a whole block written by storing it first (a location)
  // Version 4.
  kSetExpiry = 20,  // a file's lifetime set or removed (live and in snapshots)
  kSetPin = 21,     // user.keyfs.pin set or cleared (live and in snapshots)
};

std::string_view RecordTypeName(uint8_t type);

// kNode flags.
inline constexpr uint32_t kTouchParent = 1;  // a live creation: parent mtime/ctime = ctime

struct NodeRecord {
  uint64_t parent = 0;  // 0 for the root in a snapshot
  uint64_t ino = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  timespec atime{}, mtime{}, ctime{};
  uint32_t flags = 0;
  std::string_view name;
  std::string_view content;  // symlink target, or a file's first bytes

  template <typename F> void Fields(F& f) {
    f(parent), f(ino), f(mode), f(uid), f(gid), f(rdev), f(size);
    f(atime), f(mtime), f(ctime), f(flags), f(name), f(content);
  }
};

// kLink and kSnapshotLink (which ignores `time`).
struct LinkRecord {
  uint64_t ino = 0, parent = 0;
  timespec time{};
  std::string_view name;
  template <typename F> void Fields(F& f) { f(ino), f(parent), f(time), f(name); }
};

// kUnlink and kRmdir.
struct UnlinkRecord {
  uint64_t parent = 0;
  timespec time{};
  std::string_view name;
  template <typename F> void Fields(F& f) { f(parent), f(time), f(name); }
};

struct RenameRecord {
  uint64_t parent = 0, new_parent = 0;
  uint32_t flags = 0;
  timespec time{};
  std::string_view name, new_name;
  template <typename F> void Fields(F& f) {
    f(parent), f(new_parent), f(flags), f(time), f(name), f(new_name);
  }
};

// `fields` are AttrField bits (src/keyspace/mutation_log.h); the values of
// the others are zero and ignored. ctime always applies.
struct SetAttrRecord {
  uint64_t ino = 0;
  uint32_t fields = 0;
  uint32_t mode = 0, uid = 0, gid = 0;
  uint64_t size = 0;
  timespec atime{}, mtime{}, ctime{};
  template <typename F> void Fields(F& f) {
    f(ino), f(fields), f(mode), f(uid), f(gid), f(size), f(atime), f(mtime), f(ctime);
  }
};

// kWrite and kSnapshotData (which ignores `time`).
struct WriteRecord {
  uint64_t ino = 0, offset = 0;
  timespec time{};
  std::string_view data;
  template <typename F> void Fields(F& f) { f(ino), f(offset), f(time), f(data); }
};

struct AllocateRecord {
  uint64_t ino = 0;
  uint32_t mode = 0;
  uint64_t offset = 0, length = 0;
  timespec time{};
  template <typename F> void Fields(F& f) { f(ino), f(mode), f(offset), f(length), f(time); }
};

// kSetXattr, kRemoveXattr (empty value) and kSnapshotXattr (ignores `time`).
struct XattrRecord {
  uint64_t ino = 0;
  timespec time{};
  std::string_view name, value;
  template <typename F> void Fields(F& f) { f(ino), f(time), f(name), f(value); }
};

struct AccessRecord {
  uint64_t ino = 0;
  timespec atime{};
  template <typename F> void Fields(F& f) { f(ino), f(atime); }
};

// kSetExpiry: the lifetime of `ino` ends at `at_ms` (Unix milliseconds);
// 0 removes it.
struct ExpiryRecord {
  uint64_t ino = 0;
  uint64_t at_ms = 0;
  template <typename F> void Fields(F& f) { f(ino), f(at_ms); }
};

// Closes a snapshot: the state it holds is the one after record `covers_seq`
// of the live journal, and the next journal segment continues from there.
struct SnapshotEndRecord {
  uint64_t covers_seq = 0;
  uint64_t next_ino = 0;  // inode numbers below it are never reused
  uint64_t inodes = 0;    // how many the snapshot holds, a consistency check
  template <typename F> void Fields(F& f) { f(covers_seq), f(next_ino), f(inodes); }
};

// A location in a block store (store/block_store.h) as records carry it.
struct LocationFields {
  uint32_t segment = 0, size = 0;
  uint64_t offset = 0;
  BlockLocation location() const { return {segment, size, offset}; }
  static LocationFields Of(const BlockLocation& where) {
    return {where.segment, where.size, where.offset};
  }
};

// kBlockSaved: block `index` of `ino` as of `version` is durable at `where`.
struct BlockSavedRecord {
  uint64_t ino = 0, index = 0, version = 0;
  LocationFields where;
  template <typename F> void Fields(F& f) {
    f(ino), f(index), f(version), f(where.segment), f(where.size), f(where.offset);
  }
};

// kWriteStored: block `index` of `ino` was written whole by storing it first;
// it is the copy at `where` (`length` bytes, as of `stored_version`), the
// file covers it, and mtime = ctime = `time`.
struct WriteStoredRecord {
  uint64_t ino = 0, index = 0;
  uint32_t length = 0;
  timespec time{};
  uint64_t stored_version = 0;
  LocationFields where;
  template <typename F> void Fields(F& f) {
    f(ino), f(index), f(length), f(time), f(stored_version), f(where.segment), f(where.size),
        f(where.offset);
  }
};

// kSnapshotStoredBlock: a snapshot file's block that is in the store.
struct StoredBlockRecord {
  uint64_t ino = 0, index = 0;
  uint32_t length = 0;
  uint64_t version = 0, stored_version = 0;
  LocationFields where;
  template <typename F> void Fields(F& f) {
    f(ino), f(index), f(length), f(version), f(stored_version), f(where.segment),
        f(where.size), f(where.offset);
  }
};

// kSnapshotBlockData: a snapshot file's block by its bytes.
struct BlockDataRecord {
  uint64_t ino = 0, index = 0, version = 0;
  std::string_view data;
  template <typename F> void Fields(F& f) { f(ino), f(index), f(version), f(data); }
};

// kSetPin: regular file `ino` is pinned (1) or not (0): its blocks stay in
// memory (Keyspace::SetPinned). Any other value does not decode.
struct SetPinRecord {
  uint64_t ino = 0;
  uint32_t pinned = 0;
  template <typename F> void Fields(F& f) { f(ino), f(pinned); }
};

// The node record of `inode` named `name` in `parent`: every attribute as
// the inode has it, and a symlink's target as content; flags and file bytes
// are the caller's.
NodeRecord NodeRecordOf(uint64_t parent, std::string_view name, const Inode& inode);

// --- encoding -----------------------------------------------------------------

class FieldWriter {
 public:
  explicit FieldWriter(std::string* out) : out_(out) {}
  void operator()(uint32_t v);
  void operator()(uint64_t v);
  void operator()(const timespec& t);
  void operator()(std::string_view s);

 private:
  std::string* out_;
};

class FieldReader {
 public:
  explicit FieldReader(std::string_view in) : in_(in) {}
  void operator()(uint32_t& v);
  void operator()(uint64_t& v);
  void operator()(timespec& t);
  void operator()(std::string_view& s);
  bool ok() const { return ok_ && in_.empty(); }

 private:
  bool Take(size_t n, const char** p);
  std::string_view in_;
  bool ok_ = true;
};

// Appends the payload of `record` to `out`.
template <typename Record>
void AppendPayload(Record record, std::string* out) {
  FieldWriter writer(out);
  record.Fields(writer);
}

// The payload of `record` in `out` (cleared first).
template <typename Record>
void Encode(Record record, std::string* out) {
  out->clear();
  AppendPayload(record, out);
}

// Fills `record` from `payload`; its string_views point into `payload`.
template <typename Record>
bool Decode(std::string_view payload, Record* record) {
  FieldReader reader(payload);
  record->Fields(reader);
  return reader.ok();
}

// One line describing a record, for keyfs-check --dump.
std::string DescribeRecord(uint8_t type, std::string_view payload);

}  // namespace keyfs::journal
