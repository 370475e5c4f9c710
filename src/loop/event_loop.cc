#include "src/loop/event_loop.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace keyfs {

namespace {

Status ErrnoStatus(const char* what) { return Status::Errno(errno, what); }

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::Create() {
  int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return ErrnoStatus("epoll_create1");
  int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    Status status = ErrnoStatus("eventfd");
    close(epoll_fd);
    return status;
  }
  std::unique_ptr<EventLoop> loop(new EventLoop(epoll_fd, wake_fd));
  RETURN_IF_ERROR(loop->Add(wake_fd, [raw = loop.get()] {
    uint64_t count;
    while (read(raw->wake_fd_, &count, sizeof(count)) > 0) {
    }
    raw->RunPosted();
  }));
  return loop;
}

EventLoop::EventLoop(int epoll_fd, int wake_fd)
    : epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}

EventLoop::~EventLoop() {
  for (int fd : owned_fds_) close(fd);
  close(wake_fd_);
  close(epoll_fd_);
}

Status EventLoop::Add(int fd, Callback callback) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) < 0) {
    return ErrnoStatus("epoll_ctl(ADD)");
  }
  watchers_[fd] = std::move(callback);
  return Status::Ok();
}

Status EventLoop::WatchReadable(int fd, Callback on_readable) {
  return Add(fd, std::move(on_readable));
}

void EventLoop::Unwatch(int fd) {
  if (watchers_.erase(fd) > 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

Status EventLoop::AddTimer(std::chrono::nanoseconds interval, Callback tick) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) return ErrnoStatus("timerfd_create");
  owned_fds_.push_back(fd);
  itimerspec spec{};
  spec.it_interval.tv_sec = interval.count() / 1'000'000'000;
  spec.it_interval.tv_nsec = interval.count() % 1'000'000'000;
  spec.it_value = spec.it_interval;
  if (timerfd_settime(fd, 0, &spec, nullptr) < 0) return ErrnoStatus("timerfd_settime");
  return Add(fd, [fd, tick = std::move(tick)] {
    uint64_t expirations;
    if (read(fd, &expirations, sizeof(expirations)) > 0) tick();
  });
}

Status EventLoop::WatchSignals(std::initializer_list<int> signals,
                               std::function<void(int)> on_signal) {
  sigset_t mask;
  sigemptyset(&mask);
  for (int signo : signals) sigaddset(&mask, signo);
  int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0) return ErrnoStatus("signalfd");
  owned_fds_.push_back(fd);
  return Add(fd, [fd, on_signal = std::move(on_signal)] {
    signalfd_siginfo info;
    while (read(fd, &info, sizeof(info)) == sizeof(info)) {
      on_signal(static_cast<int>(info.ssi_signo));
    }
  });
}

void EventLoop::AddBeforeSleep(Callback hook) { before_sleep_.push_back(std::move(hook)); }

void EventLoop::Post(Callback task) {
  {
    MutexLock lock(&mu_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  // Cannot fail short of a bug: the counter would have to reach 2^64-1.
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EventLoop::RunPosted() {
  std::vector<Callback> tasks;
  {
    MutexLock lock(&mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

void EventLoop::RunBeforeSleep() {
  for (auto& hook : before_sleep_) hook();
}

Status EventLoop::Run() {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  while (!stopping_) {
    RunBeforeSleep();
    if (stopping_) break;
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("epoll_wait");
    }
    ++iterations_;
    for (int i = 0; i < n && !stopping_; ++i) {
      // Look the watcher up each time: an earlier callback may have removed it.
      auto it = watchers_.find(events[i].data.fd);
      if (it != watchers_.end()) {
        Callback callback = it->second;  // a copy: it may unwatch itself
        callback();
      }
    }
  }
  RunBeforeSleep();
  return Status::Ok();
}

}  // namespace keyfs
