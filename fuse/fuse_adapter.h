#pragma once

// FuseAdapter: libfuse low-level requests -> Keyspace calls (DESIGN §7).
//
// No storage logic lives here: each handler unpacks the request, calls the
// keyspace, and queues the reply on the ReplyQueue; the event loop sends the
// queued replies in its before-sleep step. A Status becomes an errno reply in
// exactly one place (ReplyError). No exception leaves a handler: the
// trampolines turn one into ENOMEM/EIO.
//
// Handles: files are not opened (Open answers ENOSYS, so the kernel stops
// asking); a created file's handle is its inode number. A directory handle is
// a number naming the DirListing taken at opendir; the adapter owns the
// listings, so those the kernel never released (keyfs stopped while a
// directory was open) are freed with it.
//
// Waiting: a handler whose keyspace operation needs evicted blocks or memory
// the cache is freeing (kNeedBlocks, kNeedRoom) goes to the block cache as a
// FuseRequest (Dispatch): parked, and run again when it can, with an
// interrupt handler registered so that Ctrl-C answers it with EINTR at once.
// Every other request keeps being served meanwhile.
//
// The `.keyfs/` control directory (control_files.h) is answered here, before
// the keyspace sees the request.
//
// Threading: every handler runs on the event-loop thread (the session fd is
// read there), as does every queued reply.

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <memory>
#include <string_view>
#include <unordered_map>

#include "fuse/control_files.h"
#include "fuse/fuse_request.h"
#include "src/cache/block_cache.h"
#include "src/keyspace/keyspace.h"
#include "src/loop/reply_queue.h"

namespace keyfs {

// What the adapter needs from the server beyond the keyspace: durability for
// fsync(), and the control attributes. Names under "user.keyfs." are keyfs's
// own on the root of the mount (keyfs-ctl uses them): they cannot be set or
// removed as user data, and reading an unknown one is ENODATA.
class ServerControl {
 public:
  static constexpr std::string_view kPrefix = "user.keyfs.";
  virtual ~ServerControl() = default;
  // A client called fsync(): make everything so far durable before the
  // replies of this iteration go out.
  virtual void RequestSync() = 0;
  virtual Result<std::string> GetControl(std::string_view name) = 0;
  virtual Status SetControl(std::string_view name, std::string_view value) = 0;
  // A control attribute of a file (user.keyfs.state): ENODATA for unknown names.
  virtual Result<std::string> GetFileControl(Ino ino, std::string_view name) = 0;
  // Setting one (user.keyfs.evict, user.keyfs.prefetch, user.keyfs.pin):
  // EPERM for unknown names.
  // `uid` is the caller's: a file's lifetime and pin are its owner's (or
  // root's) to set, as its mode and times are.
  virtual Status SetFileControl(Ino ino, std::string_view name, std::string_view value,
                                uid_t uid) = 0;
  // Removing one (setfattr -x user.keyfs.pin, user.keyfs.ttl): EPERM for
  // names that cannot be removed.
  virtual Status RemoveFileControl(Ino ino, std::string_view name, uid_t uid) = 0;
  // The text of .keyfs/info.
  virtual std::string InfoText() = 0;
  // What df shows: the store's disk, and the namespace's room.
  virtual FsStats StatFs() = 0;
};

// How keyfs talks to the kernel (DESIGN §7; measured in docs/benchmarks.md).
// keyfs is the only writer of its files, so the kernel may cache names,
// attributes, pages and listings for as long as it likes: every change goes
// through the kernel, which invalidates what that change makes stale.
struct AdapterConfig {
  double entry_timeout = 86400;     // seconds the kernel may cache a name
  double attr_timeout = 86400;      // seconds the kernel may cache attributes
  double negative_timeout = 86400;  // seconds the kernel may cache "no such name"
  unsigned max_write = 1 << 20;
  // The kernel's writeback cache: writes are acknowledged from the page cache
  // and reach keyfs (and its journal) later, in larger pieces, at the latest
  // on fsync() or close(). Off by default: see README, "Durability".
  bool writeback_cache = false;
  // Asynchronous requests (readahead, writeback) in flight: libfuse's default;
  // 64 measured no different (docs/benchmarks.md).
  unsigned max_background = 12;
};

// What the adapter has served, for .keyfs/info's # Stats (keyfs-ctl watch
// and metrics): the requests the kernel sent. Reads of cached pages and
// lookups of cached names never reach keyfs, so they are not here.
struct RequestStats {
  uint64_t requests = 0;  // every request, FORGETs included
  uint64_t reads = 0, read_bytes = 0;
  uint64_t writes = 0, written_bytes = 0;
};

class FuseAdapter {
 public:
  // `cache`: where requests that must wait are parked (null: none can wait;
  // they fail with EIO).
  FuseAdapter(Keyspace* keyspace, ReplyQueue* replies, ServerControl* control,
              AdapterConfig config, BlockCache* cache = nullptr);
  void set_cache(BlockCache* cache) { cache_ = cache; }
  // Requests from this thread (the server's expiry agent, expiry_agent.h)
  // look up due files and unlink only due ones.
  void set_expiry_agent_tid(std::function<pid_t()> tid) { expiry_agent_tid_ = std::move(tid); }

  // The operation table for fuse_session_new(); its userdata must be `this`.
  static const fuse_lowlevel_ops& Operations();

  const RequestStats& stats() const { return stats_; }
  // Each request, as it comes in (the trampolines call it).
  void CountRequest() { ++stats_.requests; }

  // --- handlers, one per FUSE operation (fuse_adapter.cc, fuse_adapter_io.cc)
  void Init(fuse_conn_info* conn);
  void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
  void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets);
  void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
               fuse_file_info* fi);
  void ReadLink(fuse_req_t req, fuse_ino_t ino);
  void MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                dev_t rdev);
  void MakeDirectory(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
  void RemoveDirectory(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name);
  void Rename(fuse_req_t req, fuse_ino_t parent, const char* name,
              fuse_ino_t new_parent, const char* new_name, unsigned int flags);
  void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name);
  void StatFs(fuse_req_t req, fuse_ino_t ino);
  void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                size_t size, int flags);
  void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
  void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size);
  void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name);

  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi);
  void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info* fi);
  void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                 fuse_file_info* fi);
  void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* fi);
  void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

 private:
  void ReplyError(fuse_req_t req, const Status& status);
  void ReplyOk(fuse_req_t req) { ReplyError(req, Status::Ok()); }
  void ReplyEntry(fuse_req_t req, const Result<Entry>& entry);
  void ReplyAttr(fuse_req_t req, const struct stat& attr);
  // getxattr/listxattr: the size when asked for it, ERANGE when it does not fit.
  void ReplyXattrValue(fuse_req_t req, std::string value, size_t size);
  void ReadDirectory(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     fuse_file_info* fi, bool plus);
  fuse_entry_param EntryParam(const Entry& entry) const;
  void ReplySlices(fuse_req_t req, std::vector<ReadSlice> slices);
  static Caller CallerOf(fuse_req_t req);

  DirListing* FindListing(const fuse_file_info* fi);

  // Runs `work` through the block cache: now, or when what it waits for is
  // there. `changes`: the inode it changes (0: none), whose changes keep
  // their order. `payload` is kept (copied) only if it must wait.
  void Dispatch(fuse_req_t req, Ino changes, FuseRequest::Work work,
                std::string_view payload = {});
  // The work of a handler: replies and returns OK, or returns the
  // kNeedBlocks / kNeedRoom `status` without replying.
  Status ReplyOrWait(fuse_req_t req, const Status& status);
  static void OnInterrupt(fuse_req_t req, void* data);
  // Control files: true when the request was about them (and answered).
  bool RefuseControl(fuse_req_t req, Ino parent, std::string_view name);
  bool RefuseControl(fuse_req_t req, Ino ino);
  void ReplyControlEntry(fuse_req_t req, const Result<ControlFiles::Entry>& entry);

  Keyspace* const keyspace_;
  ReplyQueue* const replies_;
  ServerControl* const control_;
  const AdapterConfig config_;
  BlockCache* cache_ = nullptr;
  std::function<pid_t()> expiry_agent_tid_;
  bool FromExpiryAgent(fuse_req_t req) const {
    // (pid 0: a process outside the mount's pid namespace, never the agent)
    pid_t pid = fuse_req_ctx(req)->pid;
    return expiry_agent_tid_ && pid != 0 && pid == expiry_agent_tid_();
  }
  std::unique_ptr<ControlFiles> controls_;
  std::unordered_map<uint64_t, std::unique_ptr<DirListing>> listings_;
  uint64_t next_listing_ = 1;
  RequestStats stats_;
};

}  // namespace keyfs
