#include "fuse/daemon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace keyfs {

Daemon Daemon::Start(bool foreground) {
  if (foreground) return Daemon(-1);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
    std::perror("keyfs: pipe");
    std::exit(1);
  }
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("keyfs: fork");
    std::exit(1);
  }
  if (pid > 0) {
    // Parent: wait for the child's word, then leave.
    close(pipe_fds[1]);
    char status = 1;
    ssize_t n;
    do {
      n = read(pipe_fds[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
      std::fprintf(stderr, "keyfs: the daemon exited during start-up\n");
      _exit(1);
    }
    _exit(status == 0 ? 0 : 1);
  }
  close(pipe_fds[0]);
  setsid();
  if (chdir("/") != 0) {
    // Paths are absolute by now; staying where we are only pins a directory.
  }
  int null_fd = open("/dev/null", O_RDWR);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    if (null_fd > STDERR_FILENO) close(null_fd);
  }
  return Daemon(pipe_fds[1]);
}

void Daemon::Report(char status) {
  if (ready_fd_ < 0) return;
  [[maybe_unused]] ssize_t n = write(ready_fd_, &status, 1);
  close(ready_fd_);
  ready_fd_ = -1;
}

void Daemon::ReportReady() {
  bool daemonized = ready_fd_ >= 0;
  Report(0);
  if (daemonized) {
    // From here on nobody reads our stderr.
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
      dup2(null_fd, STDERR_FILENO);
      close(null_fd);
    }
  }
}

void Daemon::ReportFailure() { Report(1); }

}  // namespace keyfs
