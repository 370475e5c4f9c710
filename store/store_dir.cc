#include "store/store_dir.h"

namespace keyfs {

Result<std::unique_ptr<StoreDir>> StoreDir::Open(Env* env, const std::string& path,
                                                 const std::string& owner) {
  Status created = env->CreateDirs(path);
  if (!created.ok()) {
    // The message of CreateDirs names the part of the path that failed.
    return Status::Errno(created.code(),
                         "cannot create store directory " + path + " (" + created.message() + ")");
  }
  Status writable = env->CheckWritableDir(path);
  if (!writable.ok()) {
    return Status::Errno(writable.code(),
                         "store directory " + path + " is not writable");
  }
  std::string previous;
  auto lock = env->LockFile(path + "/" + kLockName, owner, &previous);
  if (!lock.ok()) {
    if (lock.status().code() == EWOULDBLOCK) {
      return Status::Errno(EBUSY, "store directory " + path +
                                      " is in use by another keyfs (" +
                                      lock.status().message() + ")");
    }
    return Status::Errno(lock.status().code(),
                         "cannot lock store directory: " + lock.status().message());
  }
  return std::unique_ptr<StoreDir>(
      new StoreDir(path, std::move(lock).value(), std::move(previous)));
}

std::string StoreDir::ReadOwner(Env* env, const std::string& path) {
  auto content = ReadFileToString(env, path + "/" + kLockName);
  return content.ok() ? *content : std::string();
}

}  // namespace keyfs
