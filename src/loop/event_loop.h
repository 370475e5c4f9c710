#pragma once

// EventLoop: the main thread's epoll loop (DESIGN §2, the Redis model).
//
// One thread runs Run(); it alone owns the keyspace, so nothing the loop calls
// needs a lock. Other threads talk to it only through Post(), which queues a
// task under a mutex and wakes the loop through an eventfd; the task then runs
// on the loop thread. (IO threads will hand finished jobs back this way.)
//
// Each iteration: run the before-sleep hooks (flush the journal, then send the
// replies of this iteration), wait in epoll_wait, dispatch ready fds. A ready
// fd's callback should do a bounded amount of work and return, so that one
// busy source cannot starve the others.
//
// Threading: everything but Post() and the destructor is loop-thread only.

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "src/base/mutex.h"
#include "src/base/status.h"

namespace keyfs {

class EventLoop {
 public:
  using Callback = std::function<void()>;

  static Result<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `on_readable` (level-triggered) while `fd` has data. The loop does
  // not own `fd`.
  Status WatchReadable(int fd, Callback on_readable);
  void Unwatch(int fd);

  // Calls `tick` every `interval` (a timerfd on CLOCK_MONOTONIC). Missed ticks
  // are coalesced into one call.
  Status AddTimer(std::chrono::nanoseconds interval, Callback tick);

  // Delivers `signals` through a signalfd. The caller must have blocked them
  // in every thread (pthread_sigmask before starting any thread), otherwise
  // they may be delivered the ordinary way instead.
  Status WatchSignals(std::initializer_list<int> signals,
                      std::function<void(int)> on_signal);

  // Runs before every wait, in the order added.
  void AddBeforeSleep(Callback hook);

  // Any thread: runs `task` on the loop thread, soon.
  void Post(Callback task) EXCLUDES(mu_);

  // Runs until Stop(). The before-sleep hooks run once more after the last
  // iteration, so nothing queued is left unsent.
  Status Run();
  // Loop thread: Run() returns after the current iteration.
  void Stop() { stopping_ = true; }
  bool stopping() const { return stopping_; }

  // Wake-ups handled so far, for tests and INFO.
  uint64_t iterations() const { return iterations_; }

 private:
  EventLoop(int epoll_fd, int wake_fd);
  Status Add(int fd, Callback callback);
  void RunPosted() EXCLUDES(mu_);
  void RunBeforeSleep();

  const int epoll_fd_;
  const int wake_fd_;  // eventfd written by Post()
  std::unordered_map<int, Callback> watchers_;
  std::vector<int> owned_fds_;  // timerfds and signalfds made here
  std::vector<Callback> before_sleep_;
  bool stopping_ = false;
  uint64_t iterations_ = 0;

  Mutex mu_;
  std::vector<Callback> posted_ GUARDED_BY(mu_);
};

}  // namespace keyfs
