#include "fuse/kernel_notifier.h"

#include <pthread.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

namespace keyfs {

KernelNotifier::KernelNotifier(FuseSession* session)
    : session_(session), wake_(&mu_), stopped_(&mu_) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "keyfs-notify");
    Run();
  });
}

void KernelNotifier::Post(uint64_t parent, uint64_t child, std::string name) {
  MutexLock lock(&mu_);
  if (stopping_) return;
  queue_.push_back({parent, child, std::move(name)});
  wake_.Signal();
}

uint64_t KernelNotifier::sent() const {
  MutexLock lock(&mu_);
  return sent_;
}

void KernelNotifier::Run() {
  mu_.Lock();
  while (true) {
    while (queue_.empty() && !stopping_) wake_.Wait(&mu_);
    if (stopping_) break;
    Removal removal = std::move(queue_.front());
    queue_.pop_front();
    mu_.Unlock();
    int result = session_->NotifyDelete(removal.parent, removal.child, removal.name);
    mu_.Lock();
    // ENOENT: the kernel had nothing cached for it (or the name now names
    // another file); ENOTCONN/ENODEV: unmounted meanwhile.
    if (result == 0) {
      ++sent_;
    } else if (result != -ENOENT && result != -ENOTCONN && result != -ENODEV) {
      spdlog::debug("telling the kernel that {} left directory {} failed: {}", removal.name,
                    removal.parent, strerror(-result));
    }
  }
  done_ = true;
  stopped_.SignalAll();
  mu_.Unlock();
}

void KernelNotifier::Stop() {
  if (!thread_.joinable()) return;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    queue_.clear();
    wake_.Signal();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStopWaitSeconds);
    while (!done_ && std::chrono::steady_clock::now() < deadline) {
      stopped_.WaitFor(&mu_, deadline - std::chrono::steady_clock::now());
    }
    if (!done_) {
      spdlog::error("a notification to the kernel waits for a directory lock held by a request "
                    "keyfs no longer answers; aborting the FUSE connection so that both end");
    }
  }
  bool done;
  {
    MutexLock lock(&mu_);
    done = done_;
  }
  if (!done) session_->AbortConnection();
  thread_.join();
}

}  // namespace keyfs
