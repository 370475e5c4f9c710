#include "src/keyspace/block_buffer.h"

#include <cassert>

namespace keyfs {

BlockBuffer::BlockBuffer(MemoryAccountant* accountant, size_t capacity)
    : accountant_(accountant),
      capacity_(capacity),
      data_(new char[capacity]) {
  accountant_->Charge(MemoryComponent::kBlocks, HeapChunk(capacity_) + kOverhead);
}

BlockBuffer::~BlockBuffer() {
  accountant_->Release(MemoryComponent::kBlocks, HeapChunk(capacity_) + kOverhead);
}

std::shared_ptr<BlockBuffer> BlockBuffer::Create(MemoryAccountant* accountant,
                                                 size_t capacity, size_t length) {
  assert(length <= capacity);
  auto buffer = std::make_shared<BlockBuffer>(accountant, capacity);
  std::memset(buffer->data_.get(), 0, length);
  buffer->length_ = length;
  return buffer;
}

std::shared_ptr<BlockBuffer> BlockBuffer::CopyOf(MemoryAccountant* accountant,
                                                 const BlockBuffer& source,
                                                 size_t length, size_t capacity) {
  assert(length <= capacity);
  auto buffer = std::make_shared<BlockBuffer>(accountant, capacity);
  size_t copied = std::min(length, source.length_);
  std::memcpy(buffer->data_.get(), source.data_.get(), copied);
  std::memset(buffer->data_.get() + copied, 0, length - copied);
  buffer->length_ = length;
  return buffer;
}

void BlockBuffer::Resize(size_t length) {
  assert(length <= capacity_);
  if (length > length_) std::memset(data_.get() + length_, 0, length - length_);
  length_ = length;
}

}  // namespace keyfs
