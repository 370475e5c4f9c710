#pragma once

// What the keyfs program does at start-up about what an earlier keyfs left
// behind (issue 9): a store still locked by a keyfs finishing its shutdown,
// and a dead mount at the mount point after a keyfs was killed.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fuse/lock_owner.h"
#include "fuse/options.h"
#include "src/base/status.h"
#include "store/env.h"
#include "store/store_dir.h"

namespace keyfs {

// Locks the store, describing this process as `owner`. When another keyfs
// holds it but is no longer mounted — it was unmounted and is writing out
// what it holds, as when a script unmounts and mounts again at once — waits
// up to `patience` for it to finish, telling `notice` once. EBUSY at once
// when the holder is still mounted or starting up, or is not a keyfs.
Result<std::unique_ptr<StoreDir>> AcquireStore(Env* env, const std::string& store_dir,
                                               const LockOwner& owner,
                                               std::chrono::milliseconds patience,
                                               const std::function<void(const std::string&)>& notice);

// Makes the mount point ready to mount on. A dead keyfs mount there (its
// daemon was killed: "Transport endpoint is not connected") is cleared, as
// `fusermount3 -u` would, and the returned lines say so. Refused, with the
// command to run: a dead mount of another FUSE filesystem, and a live mount
// of anything unless `mount_over` (-o nonempty).
Result<std::vector<std::string>> PrepareMountPoint(const std::string& mountpoint,
                                                   bool mount_over);

}  // namespace keyfs
