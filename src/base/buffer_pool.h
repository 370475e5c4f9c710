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
// Buffers made ready ahead (KeepReady): a file that grows, or a cache still
// filling, frees nothing to reuse, and the loop thread then faulted in and
// zeroed every fresh page it copied a write into (half of its time in a
// sequential write, by perf: a fresh page costs more than copying 4 KiB
// into it). With KeepReady, the pool's own thread (`keyfs-prefault`) keeps
// a few buffers of the sizes asked for (a block; a parked write's payload)
// faulted in and idle, so the loop copies into memory that is already
// there. The thread starts on a size at its first miss, so a mount that
// never uses that size holds none of it, and it allocates only while the
// budget has room for one more buffer beside everything charged (idle ones
// included), checked again before the buffer joins the pool. An allocation
// that missed the pool may still land meanwhile and pass max_memory by what
// was made ahead: it then frees idle buffers down to the limit at once
// (MemoryAccountant::AllocateBuffer), as it always did to make its own
// room. Once the cache is full the thread stops, as evicted blocks then
// refill the pool anyway.
//
// Invariants: the pool holds at most max_bytes; every buffer in it is
// charged to kPool exactly once; only chunks of kMinBytes or more enter it;
// each ReadySize's `idle` is the number of idle buffers of its size.
//
// Thread-safety: any thread (a LOAD allocates on an IO thread, a SAVE job may
// drop the last reference to a buffer there); the prefault thread holds mu_
// only to look and to add a buffer, never while it faults pages in.

#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "src/base/mutex.h"

namespace keyfs {

class MemoryAccountant;
enum class MemoryComponent : int;

class BufferPool {
 public:
  // Smaller chunks come from malloc's free lists, which reuse them anyway.
  static constexpr size_t kMinBytes = 128 * 1024;

  BufferPool(MemoryAccountant* accountant, uint64_t max_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Memory of exactly `bytes` (an ::operator new request) that was given
  // back before, its charge (HeapChunk(bytes)) moved from kPool to `user`;
  // or null, and the caller allocates and charges.
  void* Take(size_t bytes, MemoryComponent user) EXCLUDES(mu_);
  // Keeps `memory` (from ::operator new(bytes)) for reuse, its charge moved
  // from `user` to kPool; or says no (the pool is full, or the request is
  // small), and the caller releases and frees it. A charge moves under the
  // pool's lock, so the prefault thread never sees it in neither place.
  bool Give(void* memory, size_t bytes, MemoryComponent user) EXCLUDES(mu_);
  // Frees idle memory until at least `bytes` (charged) are freed or none is
  // left.
  void Trim(uint64_t bytes) EXCLUDES(mu_);
  // Keeps `count` idle buffers of exactly `bytes` (an ::operator new request
  // of kMinBytes or more) faulted in ahead of use, made by the pool's own
  // thread while the budget has room (see the top of this file). Once per
  // size, before the pool is used by other threads.
  void KeepReady(size_t bytes, size_t count) EXCLUDES(mu_);
  // Whether buffers of exactly `bytes` are kept ready: other sizes of
  // payload copies stay out of the pool, where only a copy of that very
  // size could reuse them.
  bool KeepsReady(size_t bytes) const EXCLUDES(mu_);
  // Holds at most `max_bytes` from now on, freeing idle memory beyond it
  // (max_memory changed on a running mount).
  void SetMaxBytes(uint64_t max_bytes) EXCLUDES(mu_);
  uint64_t idle_bytes() const EXCLUDES(mu_);
  // Buffers the prefault thread has made (for tests).
  uint64_t prefaulted_total() const EXCLUDES(mu_);

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

  // KeepReady's thread and what it keeps.
  struct ReadySize {
    size_t bytes;
    size_t target;         // idle buffers to keep
    size_t idle = 0;       // idle buffers of this size now
    bool wanted = false;   // since the first Take of this size missed
  };
  ReadySize* FindReady(size_t bytes) REQUIRES(mu_);
  const ReadySize* FindReady(size_t bytes) const REQUIRES(mu_);
  // Whether one more idle buffer of `bytes` fits the pool and the budget.
  bool HasRoomFor(size_t bytes) const REQUIRES(mu_);
  // The size the thread should make one more of, or null.
  ReadySize* NextToMake() REQUIRES(mu_);
  void PrefaultMain() EXCLUDES(mu_);
  std::vector<ReadySize> ready_ GUARDED_BY(mu_);
  uint64_t prefaulted_total_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  mutable CondVar wake_{&mu_};
  std::thread prefault_thread_;
};

}  // namespace keyfs
