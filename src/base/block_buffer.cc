#include "src/base/block_buffer.h"

#include <algorithm>
#include <cassert>
#include <new>

namespace keyfs {

std::atomic<uint32_t> BlockBuffer::access_clock_{0};

BlockBuffer* BlockBuffer::Allocate(MemoryAccountant* accountant, size_t capacity) {
  assert(capacity <= UINT32_MAX);
  void* memory = accountant->AllocateBuffer(RequestFor(capacity), MemoryComponent::kBlocks);
  return new (memory) BlockBuffer(accountant, static_cast<uint32_t>(capacity));
}

void BlockBuffer::Unref() const {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  size_t request = RequestFor(capacity_);
  MemoryAccountant* accountant = accountant_;
  this->~BlockBuffer();
  accountant->FreeBuffer(const_cast<BlockBuffer*>(this), request, MemoryComponent::kBlocks);
}

RefPtr<BlockBuffer> BlockBuffer::Create(MemoryAccountant* accountant, size_t capacity,
                                        size_t length) {
  assert(length <= capacity);
  RefPtr<BlockBuffer> buffer(Allocate(accountant, capacity));
  std::memset(buffer->mutable_data(), 0, length);
  buffer->length_ = static_cast<uint32_t>(length);
  return buffer;
}

RefPtr<BlockBuffer> BlockBuffer::CreateForFill(MemoryAccountant* accountant, size_t length) {
  RefPtr<BlockBuffer> buffer(Allocate(accountant, length));
  buffer->length_ = static_cast<uint32_t>(length);
  return buffer;
}

RefPtr<BlockBuffer> BlockBuffer::CopyOf(MemoryAccountant* accountant,
                                        const BlockBuffer& source, size_t length,
                                        size_t capacity) {
  assert(length <= capacity);
  RefPtr<BlockBuffer> buffer(Allocate(accountant, capacity));
  size_t copied = std::min<size_t>(length, source.length_);
  std::memcpy(buffer->mutable_data(), source.data(), copied);
  std::memset(buffer->mutable_data() + copied, 0, length - copied);
  buffer->length_ = static_cast<uint32_t>(length);
  return buffer;
}

void BlockBuffer::GrowForFill(size_t length) {
  assert(length >= length_ && length <= capacity_);
  length_ = static_cast<uint32_t>(length);
}

void BlockBuffer::Resize(size_t length) {
  assert(length <= capacity_);
  if (length > length_) std::memset(mutable_data() + length_, 0, length - length_);
  length_ = static_cast<uint32_t>(length);
}

}  // namespace keyfs
