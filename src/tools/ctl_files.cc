// keyfs-ctl evict|prefetch|pin|unpin [-r] [--wait] PATH...: the per-file
// control attributes (user.keyfs.evict, user.keyfs.prefetch, user.keyfs.pin;
// Server::SetFileControl) set on each regular file named, or under each
// directory named with -r.
//
// `pin` sets user.keyfs.pin to 1, `unpin` to 0. A pin that does not fit
// (ENOSPC) stops the run with what is pinned and what may be (.keyfs/info's
// pinned_bytes and pinned_bytes_limit); the files pinned before it stay
// pinned. `evict` leaves pinned files alone (EBUSY from keyfs), says how
// many, and goes on.
//
// A run over many files prints a progress line (files done, of how many
// found so far) at most once a second, and a summary at the end. `prefetch
// --wait` then waits until keyfs loads none of those files' blocks any more
// (user.keyfs.state says "loading" for none) and says how many of them are
// in memory: a file larger than max_memory is not, and waiting longer would
// not change that.

#include <sys/stat.h>
#include <sys/xattr.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "src/tools/ctl.h"

namespace keyfs::ctl {
namespace {

using Clock = std::chrono::steady_clock;

// Prints "keyfs-ctl: ACTION: N of M files" on stderr at most once a second.
class Progress {
 public:
  explicit Progress(const char* action) : action_(action), last_(Clock::now()) {}
  void Tick(size_t done, size_t total) {
    auto now = Clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    std::fprintf(stderr, "keyfs-ctl: %s: %zu of %zu files\n", action_, done, total);
  }

 private:
  const char* action_;
  Clock::time_point last_;
};

// The regular files PATH names: itself, or with `recursive` every regular
// file under it (symbolic links are not followed). False after printing why.
bool Collect(const std::string& path, bool recursive, std::vector<std::string>* files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "keyfs-ctl: %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  if (S_ISREG(st.st_mode)) {
    files->push_back(path);
    return true;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "keyfs-ctl: %s: not a regular file\n", path.c_str());
    return false;
  }
  if (!recursive) {
    std::fprintf(stderr, "keyfs-ctl: %s: is a directory (give -r for the files under it)\n",
                 path.c_str());
    return false;
  }
  std::error_code error;
  namespace fs = std::filesystem;
  for (fs::recursive_directory_iterator it(path, error), end; !error && it != end;
       it.increment(error)) {
    if (it->is_regular_file(error) && !it->is_symlink(error)) files->push_back(it->path());
  }
  if (error) {
    std::fprintf(stderr, "keyfs-ctl: %s: %s\n", path.c_str(), error.message().c_str());
    return false;
  }
  return true;
}

std::string StateOf(const std::string& file) {
  std::string state;
  if (!Get(file, "user.keyfs.state", &state)) return "";
  return state;
}

// The count of `name` in the per-block form of the state ("blocks:3
// memory:1 dirty:0 saving:0 on-disk:2 loading:0 holes:0"), or -1.
long Count(const std::string& state, const std::string& name) {
  size_t at = state.find(" " + name + ":");
  if (at == std::string::npos) return -1;
  return std::strtol(state.c_str() + at + name.size() + 2, nullptr, 10);
}

bool Loading(const std::string& state) {
  return state == "loading" || Count(state, "loading") > 0;
}

// Whether every block with data is in memory.
bool InMemory(const std::string& state) {
  if (state.starts_with("blocks:")) {
    return Count(state, "on-disk") <= 0 && Count(state, "swapped") <= 0 &&
           Count(state, "loading") <= 0;
  }
  return state == "memory" || state == "dirty" || state == "saving" || state == "empty" ||
         state == "hole";
}

}  // namespace

// The mount `file` is on: the nearest directory up from it that has
// .keyfs/info.
std::string MountOf(const std::string& file) {
  std::filesystem::path dir = std::filesystem::absolute(file).parent_path();
  for (;;) {
    std::error_code error;
    if (std::filesystem::exists(dir / ".keyfs" / "info", error)) return dir;
    if (!dir.has_parent_path() || dir.parent_path() == dir) return "";
    dir = dir.parent_path();
  }
}

// Why pinning `file` got ENOSPC, in figures.
void ExplainNoRoom(const std::string& file) {
  std::string mount = MountOf(file), info;
  if (mount.empty() || !Get(mount, "user.keyfs.info", &info)) {
    std::fprintf(stderr, "keyfs-ctl: %s: pinned files would take more than max_memory allows\n",
                 file.c_str());
    return;
  }
  std::fprintf(stderr,
               "keyfs-ctl: %s: no room to pin it: %s bytes are pinned (%s files) and pinned "
               "files may take %s bytes of max_memory %s (the rest is what keyfs cannot evict "
               "and room for the cache to work); unpin files, or raise max_memory (keyfs-ctl "
               "config set %s max_memory SIZE)\n",
               file.c_str(), Field(info, "pinned_bytes").c_str(),
               Field(info, "pinned_files").c_str(), Field(info, "pinned_bytes_limit").c_str(),
               Field(info, "max_memory").c_str(), mount.c_str());
}

int FileControl(const std::string& action, const std::vector<std::string>& args) {
  bool recursive = false, wait = false;
  std::vector<std::string> paths;
  for (const std::string& arg : args) {
    if (arg == "-r") {
      recursive = true;
    } else if (arg == "--wait" && action == "prefetch") {
      wait = true;
    } else if (arg.starts_with("-")) {
      std::fprintf(stderr, "keyfs-ctl: %s: unknown option '%s'\n", action.c_str(), arg.c_str());
      return kUsage;
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.empty()) {
    std::fprintf(stderr, "keyfs-ctl: %s: give the files (or -r and directories)\n",
                 action.c_str());
    return kUsage;
  }
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    if (!Collect(path, recursive, &files)) return kFailed;
  }
  bool pin = action == "pin" || action == "unpin";
  std::string attribute = "user.keyfs." + std::string(pin ? "pin" : action);
  const char* value = action == "unpin" ? "0" : "1";
  Progress progress(action.c_str());
  size_t done = 0, pinned = 0;
  for (const std::string& file : files) {
    // XATTR_REPLACE: keyfs acts on the name whatever the flags, while any
    // other filesystem refuses to replace an attribute the file does not
    // have (ENODATA), so none is stored there as the user's own.
    if (setxattr(file.c_str(), attribute.c_str(), value, 1, XATTR_REPLACE) != 0) {
      int err = errno;
      if (err == EBUSY && action == "evict") {  // pinned: it stays
        ++pinned;
        progress.Tick(++done, files.size());
        continue;
      }
      if (err == ENODATA || err == ENOTSUP) {
        std::fprintf(stderr, "keyfs-ctl: %s: not a file on a keyfs mount\n", file.c_str());
      } else if (err == ENOSPC && action == "pin") {
        ExplainNoRoom(file);
        if (done > 0) {
          std::fprintf(stderr, "keyfs-ctl: the %zu file(s) before it stay pinned\n", done);
        }
      } else {
        std::fprintf(stderr, "keyfs-ctl: %s: %s%s\n", file.c_str(), std::strerror(err),
                     err == EPERM ? " (a keyfs without this command?)" : "");
      }
      return kFailed;
    }
    progress.Tick(++done, files.size());
  }
  if (!wait) {
    const char* did = action == "evict"      ? "evicted"
                      : action == "prefetch" ? "prefetching"
                      : action == "pin"      ? "pinned"
                                             : "unpinned";
    std::printf("%s: %zu file(s)", did, done - pinned);
    if (pinned > 0) std::printf(" (%zu pinned file(s) left in memory: unpin them first)", pinned);
    std::printf("\n");
    return kOk;
  }
  // --wait: until no file still has a block being loaded.
  size_t in_memory = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    std::string state = StateOf(files[i]);
    while (Loading(state)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      state = StateOf(files[i]);
    }
    if (InMemory(state)) ++in_memory;
    progress.Tick(i + 1, files.size());
  }
  std::printf("prefetched: %zu of %zu file(s) in memory", in_memory, files.size());
  if (in_memory < files.size()) std::printf(" (the rest did not fit in max_memory)");
  std::printf("\n");
  return kOk;
}

}  // namespace keyfs::ctl
