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
// Each queued reply is charged to kRequests until it is sent. Loop thread only.

#include <cstddef>
#include <functional>
#include <vector>

#include "src/base/memory_accountant.h"

namespace keyfs {

class ReplyQueue {
 public:
  // A queue slot plus a typical capture (request pointer, struct stat).
  static constexpr size_t kReplyCost = sizeof(std::function<void()>) + 192;

  explicit ReplyQueue(MemoryAccountant* accountant) : accountant_(accountant) {}
  ~ReplyQueue() { Flush(); }
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

  size_t pending() const { return pending_.size(); }
  uint64_t sent() const { return sent_; }

 private:
  MemoryAccountant* accountant_;
  std::vector<std::function<void()>> pending_;
  uint64_t sent_ = 0;
};

}  // namespace keyfs
