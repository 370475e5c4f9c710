#pragma once

// BackgroundWorker: one thread that runs jobs in the order they were queued,
// for work the loop thread must not wait for — the journal's everysec fsync
// and the removal of files a rewrite made obsolete (Redis's bio thread).
// A job reports back by EventLoop::Post; the worker itself knows nothing of
// its callers.
//
// Threading: Submit from any thread; the destructor finishes the queued jobs
// and joins.

#include <deque>
#include <functional>
#include <thread>

#include "src/base/mutex.h"

namespace keyfs {

class BackgroundWorker {
 public:
  using Job = std::function<void()>;

  BackgroundWorker();
  ~BackgroundWorker();
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  void Submit(Job job) EXCLUDES(mu_);

 private:
  void Run() EXCLUDES(mu_);

  Mutex mu_;
  CondVar wake_{&mu_};
  std::deque<Job> jobs_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace keyfs
