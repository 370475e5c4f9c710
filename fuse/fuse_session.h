#pragma once

// FuseSession: a mounted libfuse low-level session whose requests are read by
// the event loop, not by libfuse's own loop (DESIGN §2). The session fd is
// non-blocking; ProcessAvailable() handles what is queued, up to a budget, and
// returns. Destroying the session unmounts (lazily, as fusermount3 -u -z) if
// it is still mounted.
//
// Order within a batch: a bulk read (a READ of more than kBulkReadBytes, what
// a sequential reader's readahead sends) is set aside while the batch is
// read and answered after the other requests of the batch. Otherwise a 4 KiB
// read of a hot file, or a stat, waits behind a dozen 128 KiB copies for
// another process's large read: the kernel queues requests in the order they
// came, whoever sent them. Setting a READ aside is safe: the kernel has sent
// every request of a batch without waiting for the others' replies, so they
// are concurrent and any order of them is one POSIX allows. A READ carries
// no payload (its request is a header and fuse_read_in), so setting it
// aside copies a few dozen bytes. Every set-aside read is answered before
// ProcessAvailable returns: nothing waits past its batch.
//
// The request path (docs/architecture.md). Attach() puts the session on the
// event loop. With the loop's io_uring, the ring reads each request into
// `request_` (EventLoop::WatchReads) and the replies libfuse sends go
// through the session's custom IO (fuse_session_custom_io) into the loop's
// Writev, queued for the next wait: a request costs one io_uring_enter.
// A bulk read that arrives that way starts a batch as above, read with
// read(2) until the session is empty, so the reordering is kept. With epoll,
// the loop calls ProcessAvailable() when the session fd is readable.
// Every reply is sent by the loop thread: custom IO is looked up by fd, and
// the session registers itself under its fd for that.

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "src/base/status.h"

namespace keyfs {

class EventLoop;

// Sends a reply with `send` (a fuse_reply_* call, returning its result)
// and runs `undo` once if the kernel never took the reply: at once when it
// was written at once and failed, or later, on the loop thread, when a reply
// queued in the ring fails (ENOENT: the request was interrupted and the
// kernel no longer waits for it). For replies that hand the kernel a
// reference (an entry, a created file, an open directory): a reference the
// kernel never got, it will never give back.
void ReplyOrUndo(const std::function<int()>& send, std::function<void()> undo);

class FuseSession {
 public:
  // Creates the session and mounts it. `kernel_options` go to libfuse as one
  // "-o" list; `debug` makes libfuse trace every request to stderr.
  static Result<std::unique_ptr<FuseSession>> Mount(
      const std::string& mountpoint, const std::vector<std::string>& kernel_options,
      bool debug, const fuse_lowlevel_ops& ops, void* userdata);
  ~FuseSession();
  FuseSession(const FuseSession&) = delete;
  FuseSession& operator=(const FuseSession&) = delete;

  int fd() const { return fuse_session_fd(session_); }

  // Has `loop` read and answer the session's requests from now on;
  // `on_unmounted` runs on the loop thread once the session has ended.
  // `max_write` is the mount's: a request buffer holds that and a header.
  Status Attach(EventLoop* loop, unsigned max_write, std::function<void()> on_unmounted);
  // Group commit with the ring: the ring hands over one request at a time,
  // so after each, when `gather()` says this iteration's commit will be
  // costly (an fdatasync), the requests that already wait are read too
  // (ProcessAvailable) and share it, as a batch of the epoll loop does.
  void set_gather(std::function<bool()> gather) { gather_ = std::move(gather); }

  // Reads and dispatches up to `budget` queued requests. Returns false once
  // the session has ended (the filesystem was unmounted from outside).
  bool ProcessAvailable(int budget);

  void Unmount();

  // Tells the kernel that `child` named `name` in `parent` is gone
  // (fuse_lowlevel_notify_delete): 0 or -errno. Blocking, and safe on any
  // thread but the loop's: the kernel applies it under the parent
  // directory's lock, which a request waiting for the loop may hold (see
  // kernel_notifier.h). Written straight to the fd, not through the ring.
  int NotifyDelete(uint64_t parent, uint64_t child, const std::string& name);
  // Fails every request the kernel is waiting for and every one to come
  // (the fuse control filesystem's abort): the last resort when a
  // notification cannot get the parent's lock at the end.
  void AbortConnection();
  // The mount's device (st_dev), 0 if it was not found.
  dev_t device() const { return device_; }

 private:
  // Reads of more than this are bulk reads (see the top of the file).
  static constexpr uint32_t kBulkReadBytes = 32 * 1024;
  // A READ request: fuse_in_header + fuse_read_in (80 bytes), with room.
  using SetAsideRead = std::array<char, 128>;

  FuseSession(fuse_session* session, dev_t device) : session_(session), device_(device) {}

  // The ring read a request into `request_` (or failed with -errno).
  bool OnRingRead(ssize_t result);
  // Custom IO: replies into the loop, found by the session fd.
  static ssize_t WriteReply(int fd, iovec* iov, int count, void* userdata);
  static ssize_t ReadRequest(int fd, void* buffer, size_t length, void* userdata);

  // Whether the request in `buffer` is a bulk read.
  static bool IsBulkRead(const fuse_buf& buffer);
  void AnswerSetAsideReads();

  fuse_session* session_;
  const dev_t device_;  // the mount's st_dev: names the connection in fusectl
  EventLoop* loop_ = nullptr;
  std::function<void()> on_unmounted_;
  std::function<bool()> gather_;
  std::vector<char> request_;  // what the ring reads into
  fuse_buf buffer_{};
  std::vector<SetAsideRead> set_aside_;  // this batch's bulk reads
  bool mounted_ = true;
};

}  // namespace keyfs
