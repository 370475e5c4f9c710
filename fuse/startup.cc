#include "fuse/startup.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>

#include "fuse/mount_table.h"

namespace keyfs {

namespace {

constexpr auto kLockPollInterval = std::chrono::milliseconds(20);
constexpr int kUnreadableLooks = 5;
// Stacked dead mounts (each crash with a mount over the last one) are
// cleared one by one; more than this is not a keyfs's doing.
constexpr int kMaxDeadMounts = 16;

bool ProcessAlive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

bool KeyfsMountedAt(const std::string& path) {
  auto table = ReadMountTable();
  if (!table.ok()) return true;  // cannot tell: assume it is, and do not wait
  for (const MountEntry& entry : MountsAt(*table, path)) {
    if (entry.is_keyfs()) return true;
  }
  return false;
}

// Whether the keyfs described by `holder` is on its way out, so the lock it
// holds will be free soon.
bool FinishingShutdown(const LockOwner& holder) {
  switch (holder.state) {
    case LockOwner::State::kStarting:
      return false;  // replaying its journal; it will mount, not go away
    case LockOwner::State::kStopping:
    case LockOwner::State::kStopped:
      return true;
    case LockOwner::State::kServing:
      // Unmounted, and not yet noticed (or dead, with the lock held by its
      // dying rewrite child for a moment).
      return !ProcessAlive(holder.pid) || !KeyfsMountedAt(holder.mountpoint);
  }
  return false;
}

// `path` with symbolic links resolved; a dead mount cannot be resolved
// itself, so its parent is.
std::string Canonical(const std::string& path) {
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved)) return resolved;
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return path;
  if (!realpath(path.substr(0, slash).c_str(), resolved)) return path;
  return std::string(resolved) + path.substr(slash);
}

// A FUSE mount whose daemon is gone answers every request with ENOTCONN
// (ECONNABORTED when it was aborted through /sys/fs/fuse/connections). stat
// may still succeed from the kernel's attribute cache; statfs always asks.
bool IsDeadMount(const std::string& path) {
  struct statfs st;
  return statfs(path.c_str(), &st) != 0 && (errno == ENOTCONN || errno == ECONNABORTED);
}

// What `fusermount3 -u -z` does: detach the mount. Root may do it directly;
// other users go through the set-user-ID helper, which checks they own it.
Status Detach(const std::string& path) {
  if (geteuid() == 0) {
    if (umount2(path.c_str(), MNT_DETACH) != 0) return Status::Errno(errno, "umount " + path);
    return Status::Ok();
  }
  pid_t pid = fork();
  if (pid < 0) return Status::Errno(errno, "fork");
  if (pid == 0) {
    execlp("fusermount3", "fusermount3", "-u", "-z", "-q", path.c_str(), nullptr);
    _exit(127);
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Status::IoError("fusermount3 -u -z " + path + " failed");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<StoreDir>> AcquireStore(Env* env, const std::string& store_dir,
                                               const LockOwner& owner,
                                               std::chrono::milliseconds patience,
                                               const std::function<void(const std::string&)>& notice) {
  auto deadline = std::chrono::steady_clock::now() + patience;
  bool told = false;
  int unreadable = 0;
  for (;;) {
    auto store = StoreDir::Open(env, store_dir, owner.Format());
    if (store.ok() || store.status().code() != EBUSY) return store;
    auto holder = LockOwner::Parse(StoreDir::ReadOwner(env, store_dir));
    if (!holder) {
      // The holder may be rewriting its words right now (they are briefly
      // empty): look again a few times before calling it a stranger, and
      // once waiting for a keyfs, go on waiting.
      if (!told && ++unreadable > kUnreadableLooks) return store.status();
    } else if (!FinishingShutdown(*holder)) {
      return store.status();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::Errno(EBUSY, fmt::format("{}; it was still finishing its shutdown after "
                                              "{}s", store.status().message(),
                                              patience.count() / 1000));
    }
    if (!told && holder) {
      told = true;
      notice(fmt::format("store {} is held by keyfs pid {}, which is no longer mounted and is "
                         "finishing its shutdown; waiting for it (up to {}s)",
                         store_dir, holder->pid, patience.count() / 1000));
    }
    std::this_thread::sleep_for(kLockPollInterval);
  }
}

Result<std::vector<std::string>> PrepareMountPoint(const std::string& mountpoint,
                                                   bool mount_over) {
  std::string path = Canonical(mountpoint);
  std::vector<std::string> notes;
  for (int round = 0; IsDeadMount(path); ++round) {
    ASSIGN_OR_RETURN(std::vector<MountEntry> table, ReadMountTable());
    std::vector<MountEntry> here = MountsAt(table, path);
    std::string unmount = fmt::format("run `fusermount3 -u {}` (or, as root, `umount -l {}`) "
                                      "and try again", path, path);
    if (here.empty() || round == kMaxDeadMounts) {
      return Status::Errno(ENOTCONN, fmt::format("mount point {}: Transport endpoint is not "
                                                 "connected; {}", path, unmount));
    }
    const MountEntry& top = here.back();
    if (!top.is_keyfs()) {
      return Status::Errno(ENOTCONN, fmt::format("{} is a dead mount of {} (its daemon is "
                                                 "gone); {}", path, top.fstype, unmount));
    }
    Status detached = Detach(path);
    if (!detached.ok()) {
      return Status::Errno(detached.code(), fmt::format("{} is a dead keyfs mount and cannot "
                                                        "be cleared ({}); {}", path,
                                                        detached.ToString(), unmount));
    }
    notes.push_back(fmt::format("cleared a dead keyfs mount at {} (store {}): the keyfs that "
                                "served it was killed or crashed", path, top.source));
  }
  if (!mount_over) {
    ASSIGN_OR_RETURN(std::vector<MountEntry> table, ReadMountTable());
    std::vector<MountEntry> here = MountsAt(table, path);
    if (!here.empty()) {
      const MountEntry& top = here.back();
      return Status::Errno(EBUSY, fmt::format("{} is already a mount point ({} of {}); unmount "
                                              "it first, or give -o nonempty to mount over it",
                                              path, top.fstype, top.source));
    }
  }
  return notes;
}

}  // namespace keyfs
