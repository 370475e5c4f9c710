#pragma once

// BufferPool: freed block buffers of a block's size, kept to be handed out
// again.
//
// glibc gives every allocation of 128 KiB and more pages of its own
// (fuse/main.cc fixes that threshold, so that freed blocks go back to the
// system and the budget holds), and the first touch of each of those pages
// is a fault that zeroes it. A cache that evicts one block to load or write
// the next pays that for every block: it cost more than the copy of the
// block's bytes. The pool keeps a few freed buffers of each size and gives
// them back to the next allocation of that size.
//
// Accounting (the one memory budget): idle buffers are charged as kPool,
// so used_memory and the resident set agree. They are not in the way of
// anything: MemoryAccountant::Available() counts them as free, and an
// allocation the pool cannot serve first frees idle buffers until it fits
// (BlockBuffer::Allocate), so what keyfs holds stays within max_memory.
//
// Invariants: the pool holds at most max_bytes; every buffer in it is
// charged to kPool exactly once; only chunks of kMinBytes or more enter it.
//
// Thread-safety: any thread (a LOAD allocates on an IO thread, a SAVE job may
// drop the last reference to a buffer there).

#include <cstddef>
#include <cstdint>
#include <vector>

#include "src/base/mutex.h"

namespace keyfs {

class MemoryAccountant;

class BufferPool {
 public:
  // Smaller chunks come from malloc's free lists, which reuse them anyway.
  static constexpr size_t kMinBytes = 128 * 1024;

  BufferPool(MemoryAccountant* accountant, uint64_t max_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Memory of exactly `bytes` (an ::operator new request) that was given
  // back before, or null.
  void* Take(size_t bytes) EXCLUDES(mu_);
  // Keeps `memory` (from ::operator new(bytes)) for reuse, or says no (the
  // pool is full, or the request is small): then the caller frees it.
  // Charged as HeapChunk(bytes), what the budget charged its user.
  bool Give(void* memory, size_t bytes) EXCLUDES(mu_);
  // Frees idle memory until at least `bytes` (charged) are freed or none is
  // left.
  void Trim(uint64_t bytes) EXCLUDES(mu_);
  // Holds at most `max_bytes` from now on, freeing idle memory beyond it
  // (max_memory changed on a running mount).
  void SetMaxBytes(uint64_t max_bytes) EXCLUDES(mu_);
  uint64_t idle_bytes() const EXCLUDES(mu_);

 private:
  struct Idle {
    void* memory;
    size_t bytes;  // the request
  };

  MemoryAccountant* const accountant_;
  uint64_t max_bytes_ GUARDED_BY(mu_);
  mutable Mutex mu_;
  // Most recently given back last: it is the likeliest to be in the CPU's
  // caches still.
  std::vector<Idle> idle_ GUARDED_BY(mu_);
  uint64_t idle_bytes_ GUARDED_BY(mu_) = 0;  // charged
};

}  // namespace keyfs
