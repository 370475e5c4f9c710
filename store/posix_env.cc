// The Env on the real filesystem.

#include <atomic>
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "store/env.h"

namespace keyfs {

namespace {

Status PathError(const std::string& path, int err) { return Status::Errno(err, path); }

// The whole content of an open file, up to `limit` bytes.
std::string ReadSmallFile(int fd, size_t limit) {
  std::string content(limit, '\0');
  ssize_t n = pread(fd, content.data(), limit, 0);
  content.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return content;
}

// Replaces the whole content of an open file.
int RewriteSmallFile(int fd, std::string_view content) {
  if (ftruncate(fd, 0) < 0) return errno;
  ssize_t n = pwrite(fd, content.data(), content.size(), 0);
  if (n < 0) return errno;
  if (static_cast<size_t>(n) != content.size()) return EIO;
  return 0;
}

class PosixFileLock final : public FileLock {
 public:
  PosixFileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixFileLock() override { close(fd_); }  // closing releases the flock

  Status SetOwner(std::string_view owner) override {
    if (int err = RewriteSmallFile(fd_, owner); err != 0) return PathError(path_, err);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) close(fd_);
  }

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return PathError(path_, errno);
      }
      size_ += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  Status Sync() override {
    if (fdatasync(fd_) < 0) return PathError(path_, errno);
    return Status::Ok();
  }
  Status Close() override {
    int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && close(fd) < 0) return PathError(path_, errno);
    return Status::Ok();
  }
  Status Reserve(uint64_t from, uint64_t bytes) override {
    int err = FallocateKeepSize(from, bytes);
    if (err == 0 || err == EOPNOTSUPP || err == ENOSYS) return Status::Ok();
    return PathError(path_, err);
  }
  uint64_t Size() const override { return size_; }

 private:
  int FallocateKeepSize(uint64_t from, uint64_t bytes) {
    while (fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                     static_cast<off_t>(bytes)) != 0) {
      if (errno != EINTR) return errno;
    }
    return 0;
  }

  std::string path_;
  int fd_;
  std::atomic<uint64_t> size_;  // Size() may be asked from a syncing thread
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixRandomAccessFile() override { close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const override {
    size_t total = 0;
    while (total < n) {
      ssize_t got = pread(fd_, scratch + total, n - total, static_cast<off_t>(offset + total));
      if (got < 0) {
        if (errno == EINTR) continue;
        return PathError(path_, errno);
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }
  Status WriteAt(uint64_t offset, std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = pwrite(fd_, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return PathError(path_, errno);
      }
      offset += static_cast<uint64_t>(n);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return Status::Ok();
  }
  Status Sync() override {
    if (fdatasync(fd_) < 0) return PathError(path_, errno);
    return Status::Ok();
  }
  Status Reserve(uint64_t offset, uint64_t bytes) override {
    while (fallocate(fd_, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                     static_cast<off_t>(bytes)) != 0) {
      if (errno == EINTR) continue;
      if (errno == EOPNOTSUPP || errno == ENOSYS) return Status::Ok();
      return PathError(path_, errno);
    }
    return Status::Ok();
  }
  Result<uint64_t> Size() const override {
    struct stat st;
    if (fstat(fd_, &st) < 0) return PathError(path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  std::string path_;
  int fd_;
};

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixSequentialFile() override { close(fd_); }

  Result<size_t> Read(size_t n, char* scratch) override {
    size_t total = 0;
    while (total < n) {
      ssize_t got = read(fd_, scratch + total, n - total);
      if (got < 0) {
        if (errno == EINTR) continue;
        return PathError(path_, errno);
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

 private:
  std::string path_;
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
                                             const std::string& owner,
                                             std::string* previous) override {
    constexpr size_t kOwnerLimit = 4096;
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return PathError(path, errno);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      std::string holder = ReadSmallFile(fd, kOwnerLimit);
      close(fd);
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      std::string message = path + " is locked";
      if (!holder.empty()) message += " by " + holder;
      return Status::Errno(err == EWOULDBLOCK ? EWOULDBLOCK : err, message);
    }
    if (previous) *previous = ReadSmallFile(fd, kOwnerLimit);
    if (int err = RewriteSmallFile(fd, owner); err != 0) {
      close(fd);
      return PathError(path, err);
    }
    return std::unique_ptr<FileLock>(new PosixFileLock(path, fd));
  }

  Status CheckWritableDir(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) < 0) return PathError(path, errno);
    if (!S_ISDIR(st.st_mode)) return PathError(path, ENOTDIR);
    if (access(path.c_str(), W_OK | X_OK) < 0) return PathError(path, errno);
    return Status::Ok();
  }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return PathError(path, errno);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, 0));
  }

  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return PathError(path, errno);
    struct stat st;
    if (fstat(fd, &st) < 0) {
      int err = errno;
      close(fd);
      return PathError(path, err);
    }
    return std::unique_ptr<WritableFile>(
        new PosixWritableFile(path, fd, static_cast<uint64_t>(st.st_size)));
  }

  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PathError(path, errno);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(path, fd));
  }

  Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccessFile(const std::string& path,
                                                                 bool create) override {
    int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0) return PathError(path, errno);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
  }

  Result<std::unique_ptr<RandomAccessFile>> OpenExclusiveFile(const std::string& path) override {
    // The holder unlinks the file while it holds the lock (and another
    // process may then create a new one there): a lock taken on a file that
    // is no longer the one at `path` is let go, and the new one tried.
    for (int attempt = 0; attempt < 10; ++attempt) {
      int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_CREAT, 0600);
      if (fd < 0) return PathError(path, errno);
      if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        close(fd);
        return Status::Errno(err == EWOULDBLOCK ? EWOULDBLOCK : err, path + " is locked");
      }
      struct stat held, named;
      if (fstat(fd, &held) == 0 && stat(path.c_str(), &named) == 0 &&
          held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
        return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(path, fd));
      }
      close(fd);
    }
    return Status::Errno(EAGAIN, path + " keeps being replaced while keyfs opens it");
  }

  bool FileExists(const std::string& path) override { return access(path.c_str(), F_OK) == 0; }

  Result<uint64_t> GetFileSize(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) < 0) return PathError(path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* dir = opendir(path.c_str());
    if (!dir) return PathError(path, errno);
    std::vector<std::string> names;
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    closedir(dir);
    return names;
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) < 0) return PathError(from + " -> " + to, errno);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (unlink(path.c_str()) < 0) return PathError(path, errno);
    return Status::Ok();
  }

  Status TruncateFile(const std::string& path, uint64_t size) override {
    if (truncate(path.c_str(), static_cast<off_t>(size)) < 0) return PathError(path, errno);
    return Status::Ok();
  }

  Result<FsSpace> GetSpace(const std::string& path) override {
    struct statvfs st;
    if (statvfs(path.c_str(), &st) < 0) return PathError(path, errno);
    return FsSpace{static_cast<uint64_t>(st.f_blocks) * st.f_frsize,
                   static_cast<uint64_t>(st.f_bavail) * st.f_frsize};
  }

  Status SyncDir(const std::string& path) override {
    int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PathError(path, errno);
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    if (rc < 0) return PathError(path, err);
    return Status::Ok();
  }
};

}  // namespace

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Result<std::string> ReadFileToString(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(path));
  std::string contents;
  char buffer[65536];
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, file->Read(sizeof(buffer), buffer));
    if (n == 0) break;
    contents.append(buffer, n);
  }
  return contents;
}

Status WriteFileDurably(Env* env, const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp";
  ASSIGN_OR_RETURN(auto file, env->NewWritableFile(tmp));
  Status status = file->Append(data);
  if (status.ok()) status = file->Sync();
  if (status.ok()) status = file->Close();
  if (status.ok()) status = env->RenameFile(tmp, path);
  if (status.ok()) status = env->SyncDir(DirName(path));
  if (!status.ok()) (void)env->RemoveFile(tmp);  // best effort; the old file is intact
  return status;
}

Env* Env::Default() {
  static PosixEnv env;
  return &env;
}

}  // namespace keyfs
