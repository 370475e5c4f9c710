#include "fuse/expiry_agent.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

namespace keyfs {

ExpiryAgent::ExpiryAgent(FuseSession* session, EventLoop* loop, std::string mountpoint)
    : session_(session),
      loop_(loop),
      mountpoint_(std::move(mountpoint)),
      wake_(&mu_),
      stopped_(&mu_) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "keyfs-expiry");
    tid_.store(gettid(), std::memory_order_release);
    Run();
  });
}

void ExpiryAgent::Enqueue(Job job) {
  MutexLock lock(&mu_);
  if (stopping_) return;  // the mount is going: the next one expires at start
  // Only notifications are dropped: the server keeps at most a few hundred
  // unlinks waiting, and waits for each one's `done`.
  if (!job.done && queue_.size() >= kMaxQueued) {
    ++stats_.notify_dropped;
    return;
  }
  queue_.push_back(std::move(job));
  wake_.Signal();
}

void ExpiryAgent::Unlink(std::vector<std::string> paths, std::function<void(bool)> done) {
  Enqueue({std::move(paths), std::move(done), 0, 0, {}});
}

void ExpiryAgent::NotifyRemoved(uint64_t parent, uint64_t child, std::string name) {
  Enqueue({{}, nullptr, parent, child, std::move(name)});
}

void ExpiryAgent::StopTakingWork() {
  stopping_ = true;
  queue_.clear();
  wake_.Signal();
}

ExpiryAgent::Stats ExpiryAgent::stats() const {
  MutexLock lock(&mu_);
  return stats_;
}

void ExpiryAgent::Drop() {
  MutexLock lock(&mu_);
  StopTakingWork();
}

void ExpiryAgent::RequestStop(std::function<void()> stopped) {
  MutexLock lock(&mu_);
  StopTakingWork();
  if (done_) {
    loop_->Post(std::move(stopped));
  } else {
    on_stopped_ = std::move(stopped);
  }
}

void ExpiryAgent::Run() {
  mu_.Lock();
  while (true) {
    while (queue_.empty() && !stopping_) wake_.Wait(&mu_);
    if (stopping_) break;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    mu_.Unlock();
    RunJob(job);
    mu_.Lock();
  }
  done_ = true;
  if (on_stopped_) loop_->Post(std::move(on_stopped_));
  stopped_.SignalAll();
  mu_.Unlock();
}

int ExpiryAgent::UnlinkBeneath(int root, const std::string& path) {
  size_t slash = path.rfind('/');
  int dir = root;
  if (slash != std::string::npos) {
    open_how how{};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
    std::string dir_path = path.substr(0, slash);
    dir = static_cast<int>(syscall(SYS_openat2, root, dir_path.c_str(), &how, sizeof(how)));
    if (dir < 0) return errno;
  }
  // unlinkat never follows a symlink in the last name: a symlink put there
  // is what keyfs is asked to remove, and it is not due (ENOENT).
  const char* name = path.c_str() + (slash == std::string::npos ? 0 : slash + 1);
  int result = unlinkat(dir, name, 0) == 0 ? 0 : errno;
  if (dir != root) close(dir);
  return result;
}

int ExpiryAgent::OpenRoot() {
  int fd = open(mountpoint_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct stat st {};
  if (fd >= 0 && (fstat(fd, &st) != 0 || session_->device() == 0 ||
                  st.st_dev != session_->device() || st.st_ino != FUSE_ROOT_ID)) {
    if (!warned_root_) {
      warned_root_ = true;
      spdlog::warn("{} is not this keyfs mount's root (mounted over, or moved?): expired files "
                   "are removed without telling inotify watchers", mountpoint_);
    }
    close(fd);
    fd = -1;
  }
  return fd;
}

void ExpiryAgent::RunJob(Job& job) {
  if (job.done) {
    size_t removed = 0;
    int root = OpenRoot();
    for (const std::string& path : job.paths) {
      int error = root < 0 ? EBADF : UnlinkBeneath(root, path);
      if (error == 0) {
        ++removed;
      } else if (error != ENOENT) {
        // ENOENT: renamed meanwhile, or no longer due; the keyspace decides.
        spdlog::debug("removing expired {} through the mount failed: {}", path, strerror(error));
      }
    }
    if (root >= 0) close(root);
    {
      MutexLock lock(&mu_);
      stats_.unlinked += removed;
      stats_.unlink_failed += job.paths.size() - removed;
    }
    bool ok = removed == job.paths.size();
    loop_->Post([done = std::move(job.done), ok] { done(ok); });
    return;
  }
  int result = session_->NotifyDelete(job.parent, job.child, job.name);
  // ENOENT: the kernel had nothing cached for it (or the name now names
  // another file); ENOTCONN/ENODEV: unmounted meanwhile.
  if (result == 0) {
    MutexLock lock(&mu_);
    ++stats_.notified;
  } else if (result != -ENOENT && result != -ENOTCONN && result != -ENODEV) {
    spdlog::debug("telling the kernel that {} left directory {} failed: {}", job.name,
                  job.parent, strerror(-result));
  }
}

void ExpiryAgent::Stop() {
  if (!thread_.joinable()) return;
  bool done;
  {
    MutexLock lock(&mu_);
    StopTakingWork();
    on_stopped_ = nullptr;  // the loop no longer runs
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStopWaitSeconds);
    while (!done_ && std::chrono::steady_clock::now() < deadline) {
      stopped_.WaitFor(&mu_, deadline - std::chrono::steady_clock::now());
    }
    done = done_;
  }
  if (!done) {
    spdlog::error("the expiry thread waits for a request keyfs no longer answers; aborting "
                  "the FUSE connection so that both end");
    session_->AbortConnection();
  }
  thread_.join();
}

}  // namespace keyfs
