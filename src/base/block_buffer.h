#pragma once

// BlockBuffer: the bytes of one block of a file (DESIGN §3, "values are blocks").
//
// One heap allocation holds the header and the bytes (a 100-byte file costs one
// 128-byte chunk), and the reference count lives in the header (RefPtr), so
// there is no separate control block or data array.
//
// Invariants:
//  1. A buffer is charged to the MemoryAccountant for its whole life: its
//     allocation from construction to destruction, whichever thread drops the
//     last reference.
//  2. A buffer that anyone besides its FileData references (a pending read
//     reply now; a SAVE job or a rewrite snapshot later) is immutable. The owner
//     thread may write into a buffer in place only while `use_count() == 1`:
//     only the owner thread creates new references, so a count of one cannot
//     grow behind its back. Otherwise it copies (copy on write).
//  3. length() <= capacity() <= the file's block size.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "src/base/memory_accountant.h"
#include "src/base/ref_ptr.h"
#include "src/base/heap_size.h"

namespace keyfs {

class BlockBuffer {
 public:
  // A buffer of `length` bytes, all zero, with room for `capacity`.
  static RefPtr<BlockBuffer> Create(MemoryAccountant* accountant, size_t capacity,
                                    size_t length);
  // A buffer of `length` bytes that the caller fills before anyone else sees
  // it (a block read from the store): no zeroing first.
  static RefPtr<BlockBuffer> CreateForFill(MemoryAccountant* accountant, size_t length);
  // A buffer holding a copy of `length` bytes of `source`, room for `capacity`.
  static RefPtr<BlockBuffer> CopyOf(MemoryAccountant* accountant, const BlockBuffer& source,
                                    size_t length, size_t capacity);
  // The allocation behind a buffer with room for `capacity` bytes.
  static constexpr size_t RequestFor(size_t capacity) { return sizeof(BlockBuffer) + capacity; }
  // Heap bytes of a buffer with room for `capacity` bytes: what it is charged.
  static constexpr size_t ChargeFor(size_t capacity) { return HeapChunk(RequestFor(capacity)); }

  BlockBuffer(const BlockBuffer&) = delete;
  BlockBuffer& operator=(const BlockBuffer&) = delete;

  // The bytes follow the header in the same allocation.
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
  char* mutable_data() { return reinterpret_cast<char*>(this + 1); }
  size_t length() const { return length_; }
  size_t capacity() const { return capacity_; }

  // Sets the length; bytes between the old and new length read as zero.
  void Resize(size_t length);
  // Sets a larger length without zeroing: the caller writes every byte
  // between the old length and the new one before anyone reads them.
  void GrowForFill(size_t length);

  // Bytes charged to the accountant for this buffer.
  size_t ChargedBytes() const { return ChargeFor(capacity_); }

  // When the block was last read or written, in ticks of AccessClock: what
  // the cache's eviction weighs (idle time). Kept in the header's padding.
  uint32_t touched() const { return touched_.load(std::memory_order_relaxed); }
  void Touch() const { touched_.store(AccessClock(), std::memory_order_relaxed); }
  // A coarse clock (ticks of the cache's cron) that Touch stamps; the cache
  // advances it.
  static uint32_t AccessClock() { return access_clock_.load(std::memory_order_relaxed); }
  static void AdvanceAccessClock(uint32_t tick) {
    access_clock_.store(tick, std::memory_order_relaxed);
  }

  // For RefPtr.
  void AddRef() const { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() const;
  unsigned ref_count() const { return refs_.load(std::memory_order_acquire); }

 private:
  BlockBuffer(MemoryAccountant* accountant, uint32_t capacity)
      : accountant_(accountant), capacity_(capacity) {}
  ~BlockBuffer() = default;
  static BlockBuffer* Allocate(MemoryAccountant* accountant, size_t capacity);

  MemoryAccountant* const accountant_;
  mutable std::atomic<uint32_t> refs_{0};
  const uint32_t capacity_;
  uint32_t length_ = 0;
  mutable std::atomic<uint32_t> touched_{AccessClock()};
  static std::atomic<uint32_t> access_clock_;
};
static_assert(sizeof(BlockBuffer) == 24, "the header is part of every block's memory");

using BlockRef = RefPtr<const BlockBuffer>;

}  // namespace keyfs
