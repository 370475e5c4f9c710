#pragma once

// FuseSession: a mounted libfuse low-level session whose requests are read by
// the event loop, not by libfuse's own loop (DESIGN §2). The session fd is
// non-blocking; ProcessAvailable() handles what is queued, up to a budget, and
// returns. Destroying the session unmounts (lazily, as fusermount3 -u -z) if
// it is still mounted.

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
  explicit FuseSession(fuse_session* session) : session_(session) {}

  fuse_session* session_;
  fuse_buf buffer_{};
  bool mounted_ = true;
};

}  // namespace keyfs
