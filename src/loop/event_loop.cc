#include "src/loop/event_loop.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "src/base/clock.h"
#include "src/loop/io_ring.h"

namespace keyfs {

namespace {

Status ErrnoStatus(const char* what) { return Status::Errno(errno, what); }

// A ring entry's tag: what it is in the top byte, which one in the rest.
enum class TagKind : uint64_t {
  kEpoll = 1,     // the poll of the epoll fd
  kRead = 2,      // the read of read_sources_[index]
  kReadPoll = 3,  // the poll linked before it
  kWrite = 4,     // writes_[index]
  kCancel = 5,    // a cancel's own completion
};
constexpr uint64_t Tag(TagKind kind, uint64_t index = 0) {
  return static_cast<uint64_t>(kind) << 56 | index;
}
constexpr TagKind KindOf(uint64_t tag) { return static_cast<TagKind>(tag >> 56); }
constexpr uint64_t IndexOf(uint64_t tag) { return tag & ((uint64_t{1} << 56) - 1); }

// Entries in the ring: requests and replies of a busy FUSE session, a few
// polls. When it fills, entries are submitted early (io_ring.h rule 3).
constexpr unsigned kRingEntries = 256;

// The busy-poll window is real time, whatever clock the callers run on.
int64_t Now() { return SystemClock::Default()->MonotonicNanos(); }

}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::Create(EventLoopOptions options) {
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
  if (options.io_uring) {
    auto ring = IoRing::Create(kRingEntries);
    if (ring.ok()) {
      loop->ring_ = std::move(ring).value();
      loop->poll_max_ns_ = options.busy_poll_ns;
    } else {
      spdlog::info("io_uring is not available ({}): the loop waits in epoll",
                   ring.status().ToString());
    }
  }
  return loop;
}

EventLoop::EventLoop(int epoll_fd, int wake_fd)
    : epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}

EventLoop::~EventLoop() {
  ring_.reset();  // first: nothing it holds may outlive the buffers below
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
  for (size_t i = 0; i < read_sources_.size(); ++i) {
    ReadSource& source = read_sources_[i];
    if (source.fd != fd || source.unwatched) continue;
    source.unwatched = true;
    if (source.armed) {
      // Cancelled now, not with the next wait: data that arrives from here
      // on stays in the file. (A read that already took data completes
      // with it, and the data is dropped: the caller asked for no more.)
      CancelRead(i);
      if (!ring_->Submit().ok()) spdlog::warn("io_uring_submit failed cancelling a read");
    }
  }
}

void EventLoop::CancelRead(size_t index) {
  ring_->QueueCancel(Tag(TagKind::kReadPoll, index), Tag(TagKind::kCancel));
  ring_->QueueCancel(Tag(TagKind::kRead, index), Tag(TagKind::kCancel));
}

Status EventLoop::WatchReads(int fd, std::span<char> buffer,
                             std::function<bool(ssize_t)> on_read) {
  if (!ring_) {
    return Add(fd, [this, fd, buffer, on_read = std::move(on_read)] {
      ssize_t n = read(fd, buffer.data(), buffer.size());
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (!on_read(n < 0 ? -errno : n)) Unwatch(fd);
    });
  }
  read_sources_.push_back(ReadSource{fd, buffer, std::move(on_read)});
  if (running_ && !draining_) ArmRead(read_sources_.size() - 1);
  return Status::Ok();
}

ssize_t EventLoop::Writev(int fd, const iovec* iov, int count,
                          std::function<void(int error)> on_failed) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  if (!ring_ || !running_ || total > kMaxQueuedWrite) {
    // Writes queued before this one are submitted first (the order of
    // submission; see Writev in the header). The caller learns a failure
    // from the result: `on_failed` is not called.
    if (ring_ && running_ && ring_->has_unsubmitted() && !ring_->Submit().ok()) {
      spdlog::warn("io_uring_submit failed before a direct write");
    }
    return writev(fd, iov, count);
  }
  if (free_writes_.empty()) {
    free_writes_.push_back(static_cast<uint32_t>(writes_.size()));
    writes_.push_back(std::make_unique<QueuedWrite>());
  }
  uint32_t slot = free_writes_.back();
  free_writes_.pop_back();
  QueuedWrite& write = *writes_[slot];
  write.bytes.resize(total);
  char* out = write.bytes.data();
  for (int i = 0; i < count; ++i) {
    std::memcpy(out, iov[i].iov_base, iov[i].iov_len);
    out += iov[i].iov_len;
  }
  write.iov = iovec{write.bytes.data(), total};
  write.fd = fd;
  write.on_failed = std::move(on_failed);
  ++writes_in_flight_;
  ring_->QueueWritev(fd, &write.iov, 1, Tag(TagKind::kWrite, slot));
  return static_cast<ssize_t>(total);
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

bool EventLoop::DispatchEpoll(int timeout_ms) {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
  if (n < 0) return errno == EINTR;
  for (int i = 0; i < n && !stopping_; ++i) {
    // Look the watcher up each time: an earlier callback may have removed it.
    auto it = watchers_.find(events[i].data.fd);
    if (it != watchers_.end()) {
      Callback callback = it->second;  // a copy: it may unwatch itself
      callback();
    }
  }
  return true;
}

Status EventLoop::Run() { return ring_ ? RunRing() : RunEpoll(); }

Status EventLoop::RunEpoll() {
  while (!stopping_) {
    RunBeforeSleep();
    if (stopping_) break;
    if (!DispatchEpoll(-1)) return ErrnoStatus("epoll_wait");
    ++iterations_;
  }
  RunBeforeSleep();
  return Status::Ok();
}

// The ring's loop. Each pass: the hooks (which queue this iteration's
// writes), then one io_uring_enter that submits them with every read and
// poll re-armed since the last pass and waits for the next completion.
Status EventLoop::RunRing() {
  running_ = true;
  ArmRing();
  Status status = Status::Ok();
  while (!stopping_ && status.ok()) {
    RunBeforeSleep();
    if (stopping_) break;
    // A write's completion is bookkeeping: it neither ends a spin nor
    // counts as a wake-up, or every reply would cost a second pass.
    bool woken = false;
    auto handle = [this, &woken](uint64_t tag, int32_t result) {
      woken |= KindOf(tag) != TagKind::kWrite;
      OnCompletion(tag, result);
    };
    if (poll_ns_ > 0) {
      int64_t start = Now();
      do {
        ring_->Poll(handle);
      } while (!woken && Now() - start < poll_ns_);
    }
    int64_t sleep_start = woken || poll_max_ns_ == 0 ? 0 : Now();
    while (!woken && status.ok()) status = ring_->SubmitAndWait(handle);
    if (sleep_start != 0) AdaptPollWindow(Now() - sleep_start);
    ++iterations_;
  }
  RunBeforeSleep();
  Status drained = DrainRing();
  running_ = false;
  return status.ok() ? drained : status;
}

// The busy-poll window, adapted as KVM adapts its halt polling: a wait
// that ended sooner than the longest window would have been caught by a
// longer one, so the window doubles; a long wait means the traffic is
// sparse and spinning is waste, so it halves, down to none. A window that
// catches its completion stays as it is. An idle loop therefore never
// spins, and a burst of requests (a create is six of them, back to back)
// meets a loop already awake.
void EventLoop::AdaptPollWindow(int64_t slept_ns) {
  constexpr int64_t kFirstWindowNs = 10'000;
  if (slept_ns <= poll_max_ns_) {
    poll_ns_ = std::min(poll_max_ns_, poll_ns_ == 0 ? kFirstWindowNs : poll_ns_ * 2);
  } else {
    poll_ns_ = poll_ns_ / 2 < kFirstWindowNs ? 0 : poll_ns_ / 2;
  }
}

void EventLoop::ArmRing() {
  if (!epoll_armed_) {
    ring_->QueuePoll(epoll_fd_, Tag(TagKind::kEpoll));
    epoll_armed_ = true;
  }
  for (size_t i = 0; i < read_sources_.size(); ++i) ArmRead(i);
}

void EventLoop::ArmRead(size_t index) {
  ReadSource& source = read_sources_[index];
  if (source.armed || source.unwatched) return;
  source.armed = true;
  ring_->QueueReadWhenReadable(source.fd, source.buffer.data(),
                               static_cast<unsigned>(source.buffer.size()),
                               Tag(TagKind::kRead, index), Tag(TagKind::kReadPoll, index));
}

void EventLoop::OnCompletion(uint64_t tag, int32_t result) {
  switch (KindOf(tag)) {
    case TagKind::kEpoll:
      // The epoll set has something ready: run it, then poll the set again.
      // The new poll sees at once whatever a callback left unread (the
      // watchers are level-triggered).
      epoll_armed_ = false;
      if (!DispatchEpoll(0)) spdlog::warn("epoll_wait: {}", strerror(errno));
      if (!stopping_) {
        ring_->QueuePoll(epoll_fd_, Tag(TagKind::kEpoll));
        epoll_armed_ = true;
      }
      return;
    case TagKind::kRead: {
      size_t index = IndexOf(tag);
      ReadSource& source = read_sources_[index];
      source.armed = false;
      if (source.unwatched || (draining_ && result == -ECANCELED)) return;
      if (result == -ECANCELED) {
        // Not ours: the linked poll failed (its warning is logged). Armed
        // again; a poll that keeps failing ends the source with the error.
        if (++source.failed_polls < kMaxFailedPolls) {
          ArmRead(index);
          return;
        }
        result = -EIO;
      } else {
        source.failed_polls = 0;
      }
      if (result != -EAGAIN && result != -EINTR) {
        // A copy: on_read may add sources (which moves the vector).
        std::function<bool(ssize_t)> on_read = source.on_read;
        if (!on_read(result)) {
          read_sources_[index].unwatched = true;
          return;
        }
      }
      if (!stopping_ && !draining_) ArmRead(index);
      return;
    }
    case TagKind::kWrite: {
      uint32_t slot = static_cast<uint32_t>(IndexOf(tag));
      QueuedWrite& write = *writes_[slot];
      if (result < 0 || static_cast<size_t>(result) != write.iov.iov_len) {
        int error = result < 0 ? -result : EIO;  // a short write: the rest is lost
        if (write.on_failed) {
          write.on_failed(error);  // the slot is not free yet: it may write again
        } else if (on_write_error_) {
          on_write_error_(write.fd, error);
        } else {
          spdlog::warn("write to fd {} failed: {}", write.fd, strerror(error));
        }
      }
      write.on_failed = nullptr;
      if (write.bytes.capacity() > kMaxQueuedWrite / 4) {
        std::vector<char>().swap(write.bytes);  // keep only small buffers around
      }
      free_writes_.push_back(slot);
      --writes_in_flight_;
      return;
    }
    case TagKind::kReadPoll:
      if (result < 0 && result != -ECANCELED) {
        spdlog::warn("io_uring poll of fd {} failed: {}",
                     read_sources_[IndexOf(tag)].fd, strerror(-result));
      }
      return;
    case TagKind::kCancel:
      return;
  }
}

// The kernel may still write into an armed read's buffer, and a queued
// write's bytes must outlive it: Run() returns only when neither is left.
// A read that completes with data meanwhile is still handed to its source
// (it is a request someone waits for), and the before-sleep hooks run after
// it as after any request (the journal before the replies); nothing is
// armed again. Should the ring itself fail here, it is torn down: closing
// it cancels what it holds.
Status EventLoop::DrainRing() {
  draining_ = true;
  if (epoll_armed_) ring_->QueueCancel(Tag(TagKind::kEpoll), Tag(TagKind::kCancel));
  for (size_t i = 0; i < read_sources_.size(); ++i) {
    if (read_sources_[i].armed) CancelRead(i);
  }
  auto armed = [this] {
    if (epoll_armed_ || writes_in_flight_ > 0) return true;
    for (const ReadSource& source : read_sources_) {
      if (source.armed) return true;
    }
    return false;
  };
  Status status = Status::Ok();
  for (int failures = 0; armed();) {
    Status waited = ring_->SubmitAndWait([this](uint64_t tag, int32_t result) {
      if (KindOf(tag) == TagKind::kEpoll) {
        epoll_armed_ = false;  // not run: the loop has stopped
        return;
      }
      OnCompletion(tag, result);
    });
    if (!waited.ok()) {
      if (++failures < 3) continue;
      spdlog::error("io_uring failed while the loop ended ({}): closing the ring",
                    waited.ToString());
      status = waited;
      ring_.reset();  // cancels what it holds; the loop goes on with epoll
      epoll_armed_ = false;
      writes_in_flight_ = 0;
      for (ReadSource& source : read_sources_) source.armed = false;
      break;
    }
    RunBeforeSleep();
  }
  draining_ = false;
  return status;
}

}  // namespace keyfs
