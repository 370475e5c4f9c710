#pragma once

// FuseRequest: a FUSE request the block cache can park (PendingRequest,
// src/cache/block_cache.h) — one that needs blocks loaded from the store, or
// memory that SAVEs will free, before it can run.
//
// It is a handler's work as a function that runs the keyspace operation and
// queues the reply, or says "not yet" (kNeedBlocks, kNeedRoom) having changed
// nothing. A write's payload lies in the session's one receive buffer, which
// the next request overwrites: when the request is parked, Keep() copies it
// (DESIGN §4.1, rule 4), so the copy is made only for requests that wait.
// Every whole-block write waits (for its blocks to be stored), but its
// blocks are copies of all its payload already: it keeps only the length
// (KeepCopied), and its bytes come back from the blocks if the store fails.
// Another large payload is copied into memory from the buffer pool, faulted
// in already (src/base/buffer_pool.h, KeepReady), not into fresh pages.
//
// Loop thread only.

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "src/base/memory_accountant.h"
#include "src/cache/block_cache.h"

namespace keyfs {

// The start of `bytes` bytes of address space that faults when touched (a
// PROT_NONE reservation made once), or null when there is none that large.
const char* UnreadableBytes(size_t bytes);

class FuseRequest final : public PendingRequest {
 public:
  using Work = std::function<Status(std::string_view payload)>;
  using Refuse = std::function<void(fuse_req_t, int err)>;

  // `memory`: whose buffer pool a payload copy of a size it keeps ready
  // comes from, charged here to kRequests; otherwise (or null) the copy is
  // a std::string the cache charges.
  FuseRequest(fuse_req_t req, Ino changes, std::string_view payload, Work work, Refuse refuse,
              MemoryAccountant* memory = nullptr)
      : req_(req), changes_(changes), payload_(payload), work_(std::move(work)),
        refuse_(std::move(refuse)), memory_(memory) {}
  ~FuseRequest() override {
    if (pooled_) memory_->FreeBuffer(pooled_, payload_.size(), MemoryComponent::kRequests);
  }
  FuseRequest(const FuseRequest&) = delete;
  FuseRequest& operator=(const FuseRequest&) = delete;

  Status Run() override { return work_(payload_); }
  void Abandon(int err) override { refuse_(req_, err); }
  Ino changes() const override { return changes_; }
  // A pooled copy is charged by the request itself (see the constructor).
  size_t held_bytes() const override { return owned_.capacity(); }
  void Keep() override {
    if (kept_) return;
    kept_ = true;
    size_t bytes = payload_.size();
    BufferPool* pool = memory_ ? memory_->buffer_pool() : nullptr;
    if (pool && pool->KeepsReady(bytes)) {
      pooled_ = memory_->AllocateBuffer(bytes, MemoryComponent::kRequests);
      std::memcpy(pooled_, payload_.data(), bytes);
      payload_ = std::string_view(static_cast<const char*>(pooled_), bytes);
      return;
    }
    owned_.assign(payload_);
    payload_ = owned_;
  }
  // Keeps only the length: the payload then points at memory no one may
  // read (UnreadableBytes), so that a read of bytes the request no longer
  // has faults at once instead of writing what the receive buffer holds now.
  bool KeepCopied(size_t copied) override {
    if (kept_) return false;
    const char* unreadable = copied == payload_.size() ? UnreadableBytes(copied) : nullptr;
    if (!unreadable) {
      Keep();
      return false;
    }
    kept_ = true;
    payload_ = std::string_view(unreadable, copied);
    return true;
  }
  void RestorePayload(std::string bytes) override {
    owned_ = std::move(bytes);
    payload_ = owned_;
  }

 private:
  fuse_req_t req_;
  Ino changes_;
  std::string_view payload_;
  bool kept_ = false;
  std::string owned_;
  void* pooled_ = nullptr;  // AllocateBuffer(payload_.size()), or null
  Work work_;
  Refuse refuse_;
  MemoryAccountant* memory_;
};

}  // namespace keyfs
