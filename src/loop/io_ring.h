#pragma once

// IoRing: the event loop's io_uring (liburing), when the kernel offers one.
//
// Why the loop has one (docs/architecture.md, "The request path"): with epoll
// a FUSE request costs four system calls — epoll_wait, read, a read that
// finds the session empty, writev for the reply. With the ring, the wait for
// the next request, its read and the replies decided since the last wait are
// entries of one submission: a request costs one io_uring_enter.
//
// What this class knows is liburing; what the entries mean is EventLoop's.
// Every entry carries a 64-bit tag the loop chose, and each completion is
// handed back with it.
//
// Rules that must stay true:
//  1. Loop thread only: the ring is not shared, and nothing here locks.
//  2. A buffer or iovec given to a queued entry stays valid and untouched
//     until that entry's completion has been handed back: the kernel writes
//     or reads it in between, at a time of its choosing.
//  3. An entry queued is submitted with the next Submit/SubmitAndWait; if the
//     submission queue fills first, Queue* submits what it holds then (no
//     entry is ever dropped). Should the kernel refuse (EBUSY: completions
//     it cannot post), the completions are moved aside for the next Reap to
//     make room, and the submission is tried again.
//  4. A read "when readable" is a poll linked to a read: the read is issued
//     only once the poll fired, in the kernel, without waking this thread
//     in between. The file must be O_NONBLOCK: should another reader have
//     taken the data between the poll and the read, the read completes with
//     -EAGAIN instead of blocking this thread inside io_uring_enter.

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "src/base/status.h"

namespace keyfs {

class IoRing {
 public:
  // Fails when io_uring is not available here: ENOSYS on a kernel built
  // without it, EPERM where kernel.io_uring_disabled or a seccomp filter
  // forbids it, ENOMEM under a locked-memory limit too small for the ring.
  // The caller falls back to epoll.
  static Result<std::unique_ptr<IoRing>> Create(unsigned entries);
  ~IoRing();
  IoRing(const IoRing&) = delete;
  IoRing& operator=(const IoRing&) = delete;

  // A one-shot poll for POLLIN; completes with the poll mask or -errno.
  void QueuePoll(int fd, uint64_t tag);
  // A read of up to `length` bytes into `buffer`, issued once `fd` is
  // readable (rule 4). The read completes tagged `tag` (with -ECANCELED if
  // the poll was cancelled); the poll completes too, tagged `poll_tag`.
  void QueueReadWhenReadable(int fd, void* buffer, unsigned length, uint64_t tag,
                             uint64_t poll_tag);
  // A writev of `iov`; completes with the bytes written or -errno.
  void QueueWritev(int fd, const iovec* iov, unsigned count, uint64_t tag);
  // Cancels the queued or pending entry tagged `target` (and what is linked
  // to it); the cancelled entry still completes, with -ECANCELED. The cancel
  // itself completes tagged `tag` (skipped when it succeeds, where it can be).
  void QueueCancel(uint64_t target, uint64_t tag);

  // Submits what is queued without waiting.
  Status Submit();
  // Whether entries are queued that the kernel has not been given yet.
  bool has_unsubmitted() const { return io_uring_sq_ready(&ring_) > 0; }
  // Submits what is queued, waits for at least one completion, and calls
  // `on_complete(tag, result)` for every completion there is.
  template <typename OnComplete>
  Status SubmitAndWait(OnComplete on_complete) {
    Status status = SubmitStatus(io_uring_submit_and_wait(&ring_, 1), "io_uring_submit_and_wait");
    Reap(on_complete);
    return status;
  }
  // Submits what is queued and runs the work completions wait for (a
  // poll's linked read: COOP_TASKRUN), without sleeping; then Reap.
  template <typename OnComplete>
  void Poll(OnComplete on_complete) {
    io_uring_submit_and_get_events(&ring_);
    Reap(on_complete);
  }
  // Calls `on_complete(tag, result)` for every completion there is.
  template <typename OnComplete>
  void Reap(OnComplete on_complete) {
    if (!stashed_.empty()) {
      std::vector<std::pair<uint64_t, int32_t>> stashed;
      stashed.swap(stashed_);
      for (auto [tag, result] : stashed) on_complete(tag, result);
    }
    io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      on_complete(cqe->user_data, cqe->res);
    }
    io_uring_cq_advance(&ring_, seen);
  }

 private:
  IoRing() = default;
  io_uring_sqe* NextEntry();
  // Submits until the submission queue has room for `entries` (rule 3).
  void MakeRoom(unsigned entries);
  // A submission's result as a Status: the transient refusals (EINTR,
  // EAGAIN, EBUSY) are not errors, the caller simply waits or tries again.
  static Status SubmitStatus(int result, const char* what);
  // Moves the completions there are aside, for the next Reap: room in the
  // completion queue, when the kernel refuses to submit for want of it.
  void StashCompletions();

  io_uring ring_{};
  bool skip_success_ = false;
  std::vector<std::pair<uint64_t, int32_t>> stashed_;  // completions taken out early
};

}  // namespace keyfs
