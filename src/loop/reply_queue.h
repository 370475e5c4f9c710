#pragma once

// ReplyQueue: replies that are decided but not yet sent (DESIGN §6, "write
// before reply").
//
// A request handler never answers the kernel directly: it queues a closure
// that will send the reply. The loop's before-sleep step flushes the queue
// once per iteration, after anything that must be durable first (the journal
// records of this iteration, once keyfs has a journal). Replies go out in the
// order they were queued.
//
// When the journal could not make an iteration's changes durable, its
// replies are parked: held, in order, until the journal recovers, while later
// replies (reads, refused changes) go on being sent.
//
// Each queued reply is charged to kRequests until it is sent or dropped.
// Loop thread only.

#include <cstddef>
#include <functional>
#include <iterator>
#include <vector>

#include "src/base/memory_accountant.h"

namespace keyfs {

class ReplyQueue {
 public:
  // A queue slot plus a typical capture (request pointer, struct stat).
  static constexpr size_t kReplyCost = sizeof(std::function<void()>) + 192;

  explicit ReplyQueue(MemoryAccountant* accountant) : accountant_(accountant) {}
  // Sends what is pending. Parked replies are dropped unsent: their changes
  // never became durable, and the kernel fails the waiting calls when the
  // session ends.
  ~ReplyQueue() {
    Flush();
    accountant_->Release(MemoryComponent::kRequests, parked_.size() * kReplyCost);
  }
  ReplyQueue(const ReplyQueue&) = delete;
  ReplyQueue& operator=(const ReplyQueue&) = delete;

  void Defer(std::function<void()> send) {
    accountant_->Charge(MemoryComponent::kRequests, kReplyCost);
    pending_.push_back(std::move(send));
  }

  // Sends everything queued, in order. Replies queued while flushing are sent
  // in the same call.
  void Flush() {
    while (!pending_.empty()) {
      std::vector<std::function<void()>> batch;
      batch.swap(pending_);
      for (auto& send : batch) send();
      accountant_->Release(MemoryComponent::kRequests, batch.size() * kReplyCost);
      sent_ += batch.size();
    }
  }

  // Holds everything queued so far until ReleaseParked().
  void Park() {
    parked_.insert(parked_.end(), std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.end()));
    pending_.clear();
  }
  // Puts the parked replies back in front of the pending ones.
  void ReleaseParked() {
    if (parked_.empty()) return;
    pending_.insert(pending_.begin(), std::make_move_iterator(parked_.begin()),
                    std::make_move_iterator(parked_.end()));
    parked_.clear();
  }

  size_t pending() const { return pending_.size(); }
  uint64_t sent() const { return sent_; }

 private:
  MemoryAccountant* accountant_;
  std::vector<std::function<void()>> pending_;
  std::vector<std::function<void()>> parked_;
  uint64_t sent_ = 0;
};

}  // namespace keyfs
