#pragma once

// StoreDir: the directory that holds one keyfs's persistent state (journal,
// block store, log), opened and locked for the life of the mount so that a
// second keyfs on the same store fails at once with a clear message instead of
// corrupting it (DESIGN §5).
//
// The lock file also says who holds it, in words its holder chooses (the
// keyfs program writes its pid, mount point and state, fuse/lock_owner.h); the
// words the last holder left behind tell the next one whether it stopped
// cleanly.

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
  // message another instance will print. EBUSY when another process holds it.
  static Result<std::unique_ptr<StoreDir>> Open(Env* env, const std::string& path,
                                                const std::string& owner);
  // What the lock file of the store at `path` says about its holder, without
  // taking the lock ("" when there is none).
  static std::string ReadOwner(Env* env, const std::string& path);

  const std::string& path() const { return path_; }
  std::string FilePath(const std::string& name) const { return path_ + "/" + name; }
  // What the lock file said when this process took it: the previous
  // holder's last words ("" for a new store).
  const std::string& previous_owner() const { return previous_owner_; }
  // Replaces this holder's description in the lock file.
  Status SetOwner(const std::string& owner) { return lock_->SetOwner(owner); }

 private:
  StoreDir(std::string path, std::unique_ptr<FileLock> lock, std::string previous_owner)
      : path_(std::move(path)), lock_(std::move(lock)),
        previous_owner_(std::move(previous_owner)) {}

  std::string path_;
  std::unique_ptr<FileLock> lock_;
  std::string previous_owner_;
};

}  // namespace keyfs
