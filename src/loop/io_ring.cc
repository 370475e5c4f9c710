#include "src/loop/io_ring.h"

#include <poll.h>

namespace keyfs {

Result<std::unique_ptr<IoRing>> IoRing::Create(unsigned entries) {
  std::unique_ptr<IoRing> ring(new IoRing());
  // COOP_TASKRUN: completions that need this thread's help (a poll's linked
  // read) run when it next enters the ring, which it does to wait anyway,
  // instead of interrupting it while it handles a request.
  // A completion queue far larger than the submission queue: replies that
  // complete while the loop is busy wait there without overflowing.
  io_uring_params params{};
  int res = -EINVAL;
  // A kernel before 5.19 refuses COOP_TASKRUN (EINVAL): then without it.
  for (unsigned coop : {unsigned{IORING_SETUP_COOP_TASKRUN}, 0u}) {
    params = io_uring_params{};
    params.flags = coop | IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 16;
    res = io_uring_queue_init_params(entries, &ring->ring_, &params);
    if (res != -EINVAL) break;
  }
  if (res < 0) return Status::Errno(-res, "io_uring_queue_init");
  ring->skip_success_ = (params.features & IORING_FEAT_CQE_SKIP) != 0;
  return ring;
}

IoRing::~IoRing() { io_uring_queue_exit(&ring_); }

io_uring_sqe* IoRing::NextEntry() {
  MakeRoom(1);
  return io_uring_get_sqe(&ring_);
}

void IoRing::MakeRoom(unsigned entries) {
  while (io_uring_sq_space_left(&ring_) < entries) {
    if (io_uring_submit(&ring_) < 0) StashCompletions();
  }
}

void IoRing::StashCompletions() {
  io_uring_cqe* cqe;
  unsigned head, seen = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    stashed_.emplace_back(cqe->user_data, cqe->res);
  }
  io_uring_cq_advance(&ring_, seen);
  // With nothing to move, the refusal has another cause: flushing the
  // kernel's overflow list needs an enter that gets events.
  if (seen == 0) io_uring_get_events(&ring_);
}

void IoRing::QueuePoll(int fd, uint64_t tag) {
  io_uring_sqe* sqe = NextEntry();
  io_uring_prep_poll_add(sqe, fd, POLLIN);
  io_uring_sqe_set_data64(sqe, tag);
}

void IoRing::QueueReadWhenReadable(int fd, void* buffer, unsigned length, uint64_t tag,
                                   uint64_t poll_tag) {
  // Two entries of one link: take both slots before filling either, so that
  // a submission forced by a full queue cannot split the pair.
  MakeRoom(2);
  io_uring_sqe* poll = NextEntry();
  io_uring_prep_poll_add(poll, fd, POLLIN);
  io_uring_sqe_set_data64(poll, poll_tag);
  // Not IOSQE_CQE_SKIP_SUCCESS: should the poll fail or be cancelled, the
  // kernel would then skip the read's completion too, and the caller would
  // never learn that its buffer is free.
  poll->flags |= IOSQE_IO_LINK;
  io_uring_sqe* read = NextEntry();
  io_uring_prep_read(read, fd, buffer, length, static_cast<uint64_t>(-1));
  io_uring_sqe_set_data64(read, tag);
}

void IoRing::QueueWritev(int fd, const iovec* iov, unsigned count, uint64_t tag) {
  io_uring_sqe* sqe = NextEntry();
  io_uring_prep_writev(sqe, fd, iov, count, static_cast<uint64_t>(-1));
  io_uring_sqe_set_data64(sqe, tag);
}

void IoRing::QueueCancel(uint64_t target, uint64_t tag) {
  io_uring_sqe* sqe = NextEntry();
  io_uring_prep_cancel64(sqe, target, 0);
  // The cancel's own completion says only whether it found the entry; the
  // cancelled entry reports itself.
  io_uring_sqe_set_data64(sqe, tag);
  sqe->flags |= skip_success_ ? IOSQE_CQE_SKIP_SUCCESS : 0;
}

Status IoRing::Submit() { return SubmitStatus(io_uring_submit(&ring_), "io_uring_submit"); }

Status IoRing::SubmitStatus(int result, const char* what) {
  if (result < 0 && result != -EINTR && result != -EAGAIN && result != -EBUSY) {
    return Status::Errno(-result, what);
  }
  return Status::Ok();
}

}  // namespace keyfs
