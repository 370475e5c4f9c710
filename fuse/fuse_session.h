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

#include <array>
#include <memory>
#include <string>
#include <vector>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "src/base/status.h"

namespace keyfs {

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

  // Reads and dispatches up to `budget` queued requests. Returns false once
  // the session has ended (the filesystem was unmounted from outside).
  bool ProcessAvailable(int budget);

  void Unmount();

 private:
  // Reads of more than this are bulk reads (see the top of the file).
  static constexpr uint32_t kBulkReadBytes = 32 * 1024;
  // A READ request: fuse_in_header + fuse_read_in (80 bytes), with room.
  using SetAsideRead = std::array<char, 128>;

  explicit FuseSession(fuse_session* session) : session_(session) {}

  // Whether the request in `buffer_` (`bytes` long) is a bulk read.
  bool IsBulkRead(size_t bytes) const;
  void AnswerSetAsideReads();

  fuse_session* session_;
  fuse_buf buffer_{};
  std::vector<SetAsideRead> set_aside_;  // this batch's bulk reads
  bool mounted_ = true;
};

}  // namespace keyfs
