#pragma once

// EventLoop: the main thread's event loop (DESIGN §2, the Redis model).
//
// One thread runs Run(); it alone owns the keyspace, so nothing the loop calls
// needs a lock. Other threads talk to it only through Post(), which queues a
// task under a mutex and wakes the loop through an eventfd; the task then runs
// on the loop thread. (IO threads will hand finished jobs back this way.)
//
// Each iteration: run the before-sleep hooks (flush the journal, then send the
// replies of this iteration), wait, dispatch what is ready. A ready fd's
// callback should do a bounded amount of work and return, so that one busy
// source cannot starve the others.
//
// How it waits. Where the kernel offers io_uring (the default), the loop
// waits in io_uring_enter (src/loop/io_ring.h): the fds watched for
// readability sit in an epoll set as before, and one poll of that epoll fd
// in the ring stands for all of them; a source added with WatchReads() is
// read by the ring itself (a poll linked to a read), and writes made with
// Writev() while the loop runs are entries of the ring too. So a wait, the
// reads that end it and the writes decided before it are one system call.
// This is the FUSE request path (docs/architecture.md, "The request path").
// Without io_uring the loop waits in epoll_wait and does the same work with
// one system call for each read and write.
//
// Threading: everything but Post() and the destructor is loop-thread only.

#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "src/base/mutex.h"
#include "src/base/status.h"

namespace keyfs {

class IoRing;

struct EventLoopOptions {
  // Wait and do the watched IO through io_uring; falls back to epoll (with
  // a log line) where the kernel refuses a ring.
  bool io_uring = true;
  // With io_uring: the longest the loop spins (entering the ring without
  // sleeping) before it sleeps, while completions come close together (the
  // window adapts; see AdaptPollWindow). Waking a sleeping thread costs
  // more than a FUSE request's work; a request met by a spinning loop is
  // answered about twice as fast (docs/architecture.md). 0: never spin.
  int64_t busy_poll_ns = 0;
};

class EventLoop {
 public:
  using Callback = std::function<void()>;
  // Writes longer than this are not copied into the ring: Writev() writes
  // them at once (after submitting what is queued, so order is kept). A
  // copy of a large reply costs more than the system call it saves.
  static constexpr size_t kMaxQueuedWrite = 64 * 1024;

  static Result<std::unique_ptr<EventLoop>> Create(EventLoopOptions options = {});
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Calls `on_readable` (level-triggered) while `fd` has data. The loop does
  // not own `fd`.
  Status WatchReadable(int fd, Callback on_readable);
  // Also ends a WatchReads() source: its callback is not called again.
  void Unwatch(int fd);

  // Reads from `fd` into `buffer` whenever it has data, and calls
  // `on_read(result)`: the bytes read (> 0), 0 at end of file, or -errno
  // (never -EAGAIN or -EINTR: those are retried). Reading goes on while
  // on_read returns true. `fd` must be O_NONBLOCK. `buffer` must stay valid
  // until Run() returns: with io_uring the kernel may write into it whenever
  // a read is armed. With io_uring the wait for data and the read are one
  // linked pair in the ring (no system call of their own); with epoll the
  // loop reads when epoll says the fd is readable.
  Status WatchReads(int fd, std::span<char> buffer, std::function<bool(ssize_t)> on_read);

  // Writes `iov` to `fd`. With io_uring, while Run() runs, a write of up to
  // kMaxQueuedWrite bytes is copied and written with the next wait; the
  // return is the length queued, and a failure found when it is done goes
  // to `on_failed` (or, without one, to the write error handler). Otherwise
  // writev(2) now, and its result (-1 and errno on failure; `on_failed` is
  // not called). Writes are submitted in the order made; a file that takes
  // them without blocking (a pipe with room, /dev/fuse) completes them in
  // that order too, inside the submitting io_uring_enter.
  ssize_t Writev(int fd, const iovec* iov, int count,
                 std::function<void(int error)> on_failed = nullptr);
  void set_write_error_handler(std::function<void(int fd, int error)> handler) {
    on_write_error_ = std::move(handler);
  }
  bool uses_io_uring() const { return ring_ != nullptr; }

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
  // A WatchReads() source.
  struct ReadSource {
    int fd;
    std::span<char> buffer;
    std::function<bool(ssize_t)> on_read;
    bool armed = false;      // a read of it is in the ring
    bool unwatched = false;  // Unwatch() or on_read returned false: never called again
    int failed_polls = 0;    // in a row: the linked poll failed, the read was cancelled
  };
  // A write copied for the ring; its bytes live until its completion.
  struct QueuedWrite {
    std::vector<char> bytes;
    iovec iov{};
    int fd = -1;
    std::function<void(int error)> on_failed;
  };
  // A source whose poll failed this many times in a row ends, with EIO.
  static constexpr int kMaxFailedPolls = 100;

  EventLoop(int epoll_fd, int wake_fd);
  Status Add(int fd, Callback callback);
  void RunPosted() EXCLUDES(mu_);
  void RunBeforeSleep();
  // Waits on the epoll set for up to `timeout_ms` and runs what is ready;
  // false with errno set when epoll_wait failed.
  bool DispatchEpoll(int timeout_ms);
  Status RunEpoll();
  Status RunRing();
  void AdaptPollWindow(int64_t slept_ns);
  void ArmRing();
  void ArmRead(size_t index);
  void CancelRead(size_t index);
  void OnCompletion(uint64_t tag, int32_t result);
  // After the last iteration: ends every armed read, waits for the writes.
  Status DrainRing();

  const int epoll_fd_;
  const int wake_fd_;  // eventfd written by Post()
  std::unordered_map<int, Callback> watchers_;
  std::unique_ptr<IoRing> ring_;  // null: epoll only
  int64_t poll_max_ns_ = 0;       // EventLoopOptions::busy_poll_ns
  int64_t poll_ns_ = 0;           // the spin before the next sleep
  bool running_ = false;          // inside Run(): Writev queues
  bool draining_ = false;         // DrainRing: nothing is armed again
  bool epoll_armed_ = false;      // the ring holds a poll of epoll_fd_
  std::vector<ReadSource> read_sources_;
  std::vector<std::unique_ptr<QueuedWrite>> writes_;  // by slot; stable addresses
  std::vector<uint32_t> free_writes_;
  size_t writes_in_flight_ = 0;
  std::function<void(int fd, int error)> on_write_error_;
  std::vector<int> owned_fds_;  // timerfds and signalfds made here
  std::vector<Callback> before_sleep_;
  bool stopping_ = false;
  uint64_t iterations_ = 0;

  Mutex mu_;
  std::vector<Callback> posted_ GUARDED_BY(mu_);
};

}  // namespace keyfs
