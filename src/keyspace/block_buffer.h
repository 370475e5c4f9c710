#pragma once

// BlockBuffer: the bytes of one block of a file (DESIGN §3, "values are blocks").
//
// Invariants:
//  1. A buffer is charged to the MemoryAccountant for its whole life: capacity
//     plus kOverhead from construction to destruction, whichever thread drops
//     the last reference.
//  2. A buffer that anyone besides its FileData references (a pending read
//     reply now; a SAVE job or a rewrite snapshot later) is immutable. The owner
//     thread may write into a buffer in place only while
//     `shared_ptr::use_count() == 1`: only the owner thread creates new
//     references, so a count of one cannot grow behind its back. Otherwise it
//     copies (copy on write).
//  3. length() <= capacity() <= the file's block size.

#include <cstddef>
#include <cstring>
#include <memory>

#include "src/base/memory_accountant.h"
#include "src/keyspace/heap_size.h"

namespace keyfs {

class BlockBuffer {
 public:
  // Heap bytes of the object and its shared_ptr control block (one chunk, from
  // make_shared), beyond the data array.
  static constexpr size_t kOverhead = HeapChunk(16 + 40);

  // A buffer of `length` bytes, all zero, with room for `capacity`.
  static std::shared_ptr<BlockBuffer> Create(MemoryAccountant* accountant,
                                             size_t capacity, size_t length);
  // A buffer holding a copy of `length` bytes of `source`, room for `capacity`.
  static std::shared_ptr<BlockBuffer> CopyOf(MemoryAccountant* accountant,
                                             const BlockBuffer& source,
                                             size_t length, size_t capacity);

  // Use Create(); public only for make_shared.
  BlockBuffer(MemoryAccountant* accountant, size_t capacity);
  ~BlockBuffer();
  BlockBuffer(const BlockBuffer&) = delete;
  BlockBuffer& operator=(const BlockBuffer&) = delete;

  const char* data() const { return data_.get(); }
  char* mutable_data() { return data_.get(); }
  size_t length() const { return length_; }
  size_t capacity() const { return capacity_; }

  // Sets the length; bytes between the old and new length read as zero.
  void Resize(size_t length);

  // Bytes charged to the accountant for this buffer.
  size_t ChargedBytes() const { return HeapChunk(capacity_) + kOverhead; }

 private:
  MemoryAccountant* const accountant_;
  const size_t capacity_;
  size_t length_ = 0;
  std::unique_ptr<char[]> data_;
};

using BlockRef = std::shared_ptr<const BlockBuffer>;

}  // namespace keyfs
