#pragma once

// Env: the only door from keyfs's storage code to the operating system's
// files (STYLE.md, after leveldb's Env). Everything the store, the journal and
// the swap file do to files goes through here, so that a test Env can fail the
// Nth call or simulate a crash. This first version has what the store
// directory needs; the journal adds writable files and fsync.
//
// Errors keep their errno (ENOSPC stays ENOSPC) and name the path.
// Thread-safety: every method may be called from any thread.

#include <memory>
#include <string>

#include "src/base/status.h"

namespace keyfs {

// An advisory lock on a file, held until destroyed.
class FileLock {
 public:
  virtual ~FileLock() = default;
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
  // it. EWOULDBLOCK when someone else does; the message then quotes `owner`
  // as written by the holder.
  virtual Result<std::unique_ptr<FileLock>> LockFile(const std::string& path,
                                                     const std::string& owner) = 0;

  // 0 if `path` is a directory we may create files in, else an errno Status.
  virtual Status CheckWritableDir(const std::string& path) = 0;
};

}  // namespace keyfs
