// The Env on the real filesystem.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "store/env.h"

namespace keyfs {

namespace {

Status PathError(const std::string& path, int err) { return Status::Errno(err, path); }

class PosixFileLock final : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { close(fd_); }  // closing releases the flock

 private:
  int fd_;
};

class PosixEnv final : public Env {
 public:
  Status CreateDirs(const std::string& path) override {
    if (path.empty()) return Status::InvalidArgument("empty directory path");
    for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
      std::string prefix = path.substr(0, slash);
      if (mkdir(prefix.c_str(), 0700) < 0 && errno != EEXIST) {
        return PathError(prefix, errno);
      }
      if (slash == std::string::npos) break;
    }
    struct stat st;
    if (stat(path.c_str(), &st) < 0) return PathError(path, errno);
    if (!S_ISDIR(st.st_mode)) return PathError(path, ENOTDIR);
    return Status::Ok();
  }

  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path,
                                             const std::string& owner) override {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return PathError(path, errno);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      char holder[256] = {};
      ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
      close(fd);
      std::string message = path + " is locked";
      if (n > 0) message += " by " + std::string(holder, static_cast<size_t>(n));
      return Status::Errno(err == EWOULDBLOCK ? EWOULDBLOCK : err, message);
    }
    if (ftruncate(fd, 0) < 0 ||
        pwrite(fd, owner.data(), owner.size(), 0) != static_cast<ssize_t>(owner.size())) {
      int err = errno;
      close(fd);
      return PathError(path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(fd));
  }

  Status CheckWritableDir(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) < 0) return PathError(path, errno);
    if (!S_ISDIR(st.st_mode)) return PathError(path, ENOTDIR);
    if (access(path.c_str(), W_OK | X_OK) < 0) return PathError(path, errno);
    return Status::Ok();
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

}  // namespace keyfs
