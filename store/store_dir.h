#pragma once

// StoreDir: the directory that holds one keyfs's persistent state (journal,
// block store, log), opened and locked for the life of the mount so that a
// second keyfs on the same store fails at once with a clear message instead of
// corrupting it (DESIGN §5).

#include <memory>
#include <string>

#include "src/base/status.h"
#include "store/env.h"

namespace keyfs {

class StoreDir {
 public:
  static constexpr const char* kLockName = "LOCK";
  static constexpr const char* kLogName = "keyfs.log";

  // Creates `path` if needed, checks it can be written and locks it.
  // `owner` describes this process ("keyfs pid 123 on /mnt/kv") for the
  // message another instance will print.
  static Result<std::unique_ptr<StoreDir>> Open(Env* env, const std::string& path,
                                                const std::string& owner);

  const std::string& path() const { return path_; }
  std::string FilePath(const std::string& name) const { return path_ + "/" + name; }

 private:
  StoreDir(std::string path, std::unique_ptr<FileLock> lock)
      : path_(std::move(path)), lock_(std::move(lock)) {}

  std::string path_;
  std::unique_ptr<FileLock> lock_;
};

}  // namespace keyfs
