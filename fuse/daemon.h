#pragma once

// Daemon: going to the background the way a user can rely on.
//
// Start() forks. The parent stays until the child says it is mounted and
// serving (exit status 0) or has failed (status 1), so `keyfs /mnt/kv && ls
// /mnt/kv` works and a failure is seen by the shell that ran keyfs. The child
// keeps the terminal's stderr until ReportReady(), so its start-up errors still
// reach the user; after that it logs to a file only.

namespace keyfs {

class Daemon {
 public:
  // foreground: does nothing (no fork); ReportReady/ReportFailure are no-ops.
  // Otherwise forks; only the child returns.
  static Daemon Start(bool foreground);

  void ReportReady();
  void ReportFailure();

 private:
  explicit Daemon(int ready_fd) : ready_fd_(ready_fd) {}
  void Report(char status);

  int ready_fd_;  // write end of the pipe the parent waits on; -1 in the foreground
};

}  // namespace keyfs
