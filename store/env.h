#pragma once

// Env: the only door from keyfs's storage code to the operating system's
// files (STYLE.md, after leveldb's Env). Everything the store, the journal and
// the swap file do to files goes through here, so that a test Env can fail the
// Nth call or simulate a crash. This first version has what the store
// directory needs; the journal adds writable files and fsync.
//
// Errors keep their errno (ENOSPC stays ENOSPC) and name the path.
// Thread-safety: every method may be called from any thread.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"

namespace keyfs {

// An advisory lock on a file, held until destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
  // Replaces what the lock file says about its holder (LockFile's `owner`),
  // e.g. as the holder goes from starting to serving to stopped.
  virtual Status SetOwner(std::string_view owner) = 0;
};

// A file written from the end. Not thread-safe: one writer at a time.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` (retrying short writes) or fails; after a failure
  // the file's length is unknown to the caller.
  virtual Status Append(std::string_view data) = 0;
  // fdatasync(2): what was appended is on the device when this returns OK.
  // After a failed Sync, nothing appended since the last good one may be
  // trusted (the kernel may have dropped those pages).
  virtual Status Sync() = 0;
  virtual Status Close() = 0;
  // Allocates disk space for `bytes` past offset `from` without changing the
  // file's length (fallocate KEEP_SIZE), so that appends up to there cannot
  // fail for want of space. ENOSPC when the disk is full; OK without doing
  // anything where the filesystem cannot preallocate.
  virtual Status Reserve(uint64_t from, uint64_t bytes) = 0;
  // Bytes in the file: its length when opened plus what was appended since.
  virtual uint64_t Size() const = 0;
};

// A file read from the start. Not thread-safe.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to `n` bytes into `scratch`; fewer only at the end of the file.
  virtual Result<size_t> Read(size_t n, char* scratch) = 0;
};

// A file read and written at given offsets, by any number of threads at once
// (pread/pwrite): what a block store keeps its segments in.
class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads up to `n` bytes at `offset`; fewer only at the end of the file.
  virtual Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const = 0;
  // Writes all of `data` at `offset` (retrying short writes) or fails.
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // fdatasync(2): everything written before the call is on the device.
  virtual Status Sync() = 0;
  // Allocates disk space for [offset, offset+bytes) without changing the
  // file's length; OK without doing anything where that is not possible.
  virtual Status Reserve(uint64_t offset, uint64_t bytes) = 0;
  virtual Result<uint64_t> Size() const = 0;
};

// What statvfs(2) says of a filesystem, in bytes.
struct FsSpace {
  uint64_t total = 0;
  uint64_t available = 0;  // to an unprivileged user (f_bavail)
};

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide Env on the real filesystem.
  static Env* Default();

  // mkdir -p, with mode 0700 for what it creates.
  virtual Status CreateDirs(const std::string& path) = 0;

  // Takes an exclusive lock on `path` (created if missing) without waiting,
  // and writes `owner` into it so that the next one to try can say who holds
  // it; what the file said before (the last holder's words, "" for a new
  // file) goes to `previous` when given. EWOULDBLOCK when someone else holds
  // it; the message then quotes `owner` as written by the holder.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path,
                                                     const std::string& owner,
                                                     std::string* previous = nullptr) = 0;

  // 0 if `path` is a directory we may create files in, else an errno Status.
  virtual Status CheckWritableDir(const std::string& path) = 0;

  // Creates `path` empty (truncating an existing one).
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  // Opens `path` for appending, creating it if missing.
  virtual Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;
  // Opens `path` for reading and writing at offsets; with `create`, makes it
  // (empty) if it is missing, otherwise ENOENT.
  virtual Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccessFile(const std::string& path,
                                                                         bool create) = 0;

  // As OpenRandomAccessFile with `create`, and takes an exclusive lock on
  // the file without waiting, held while it is open: a file one process
  // owns (the swap file). EWOULDBLOCK when another holds it. The file
  // locked is the one at `path` when this returns (not one its holder has
  // just unlinked), so path operations on it are ours while it is held.
  virtual Result<std::unique_ptr<RandomAccessFile>> OpenExclusiveFile(const std::string& path) = 0;

  virtual bool FileExists(const std::string& path) = 0;
  virtual Result<uint64_t> GetFileSize(const std::string& path) = 0;
  // The names in a directory, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  // rename(2): atomically replaces `to`. Durable only after SyncDir.
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status TruncateFile(const std::string& path, uint64_t size) = 0;
  // fsync(2) on a directory: makes creations, renames and removals in it durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // The size and free space of the filesystem holding `path`.
  virtual Result<FsSpace> GetSpace(const std::string& path) = 0;
};

// Reads a whole file (tests, small metadata files).
Result<std::string> ReadFileToString(Env* env, const std::string& path);

// The durable replace of STYLE.md: write `data` to `path`.tmp, fsync it,
// rename it over `path`, fsync the directory.
Status WriteFileDurably(Env* env, const std::string& path, std::string_view data);

// The directory part of a path ("/a/b" -> "/a", "b" -> ".").
std::string DirName(const std::string& path);

}  // namespace keyfs
