#include "src/base/buffer_pool.h"

#include <new>

#include "src/base/heap_size.h"
#include "src/base/memory_accountant.h"

namespace keyfs {

BufferPool::BufferPool(MemoryAccountant* accountant, uint64_t max_bytes)
    : accountant_(accountant), max_bytes_(max_bytes) {}

BufferPool::~BufferPool() { Trim(UINT64_MAX); }

void* BufferPool::Take(size_t bytes) {
  if (bytes < kMinBytes) return nullptr;
  MutexLock lock(&mu_);
  for (size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i].bytes != bytes) continue;
    void* memory = idle_[i].memory;
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    idle_bytes_ -= HeapChunk(bytes);
    accountant_->Release(MemoryComponent::kPool, HeapChunk(bytes));
    return memory;
  }
  return nullptr;
}

bool BufferPool::Give(void* memory, size_t bytes) {
  if (bytes < kMinBytes) return false;
  MutexLock lock(&mu_);
  if (idle_bytes_ + HeapChunk(bytes) > max_bytes_) return false;
  idle_.push_back({memory, bytes});
  idle_bytes_ += HeapChunk(bytes);
  accountant_->Charge(MemoryComponent::kPool, HeapChunk(bytes));
  return true;
}

void BufferPool::Trim(uint64_t bytes) {
  std::vector<Idle> freed;
  {
    MutexLock lock(&mu_);
    uint64_t total = 0;
    // The oldest first: the least likely to be reused soon.
    size_t n = 0;
    while (n < idle_.size() && total < bytes) total += HeapChunk(idle_[n++].bytes);
    freed.assign(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(n));
    idle_.erase(idle_.begin(), idle_.begin() + static_cast<std::ptrdiff_t>(n));
    idle_bytes_ -= total;
    accountant_->Release(MemoryComponent::kPool, total);
  }
  for (const Idle& idle : freed) ::operator delete(idle.memory);
}

void BufferPool::SetMaxBytes(uint64_t max_bytes) {
  uint64_t excess = 0;
  {
    MutexLock lock(&mu_);
    max_bytes_ = max_bytes;
    if (idle_bytes_ > max_bytes) excess = idle_bytes_ - max_bytes;
  }
  if (excess > 0) Trim(excess);
}

uint64_t BufferPool::idle_bytes() const {
  MutexLock lock(&mu_);
  return idle_bytes_;
}

}  // namespace keyfs
