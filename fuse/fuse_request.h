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
//
// Loop thread only.

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <functional>
#include <string>
#include <string_view>

#include "src/cache/block_cache.h"

namespace keyfs {

class FuseRequest final : public PendingRequest {
 public:
  using Work = std::function<Status(std::string_view payload)>;
  using Refuse = std::function<void(fuse_req_t, int err)>;

  FuseRequest(fuse_req_t req, Ino changes, std::string_view payload, Work work, Refuse refuse)
      : req_(req), changes_(changes), payload_(payload), work_(std::move(work)),
        refuse_(std::move(refuse)) {}

  Status Run() override { return work_(payload_); }
  void Abandon(int err) override { refuse_(req_, err); }
  Ino changes() const override { return changes_; }
  size_t held_bytes() const override { return owned_.capacity(); }
  void Keep() override {
    if (payload_.data() == owned_.data()) return;
    owned_.assign(payload_);
    payload_ = owned_;
  }

 private:
  fuse_req_t req_;
  Ino changes_;
  std::string_view payload_;
  std::string owned_;
  Work work_;
  Refuse refuse_;
};

}  // namespace keyfs
