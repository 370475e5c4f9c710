#include "src/base/memory_accountant.h"

#include <new>

#include "src/base/heap_size.h"

namespace keyfs {

std::string_view MemoryComponentName(MemoryComponent component) {
  switch (component) {
    case MemoryComponent::kBlocks: return "blocks";
    case MemoryComponent::kInodes: return "inodes";
    case MemoryComponent::kNames: return "names";
    case MemoryComponent::kXattrs: return "xattrs";
    case MemoryComponent::kHandles: return "handles";
    case MemoryComponent::kRequests: return "requests";
    case MemoryComponent::kJournal: return "journal";
    case MemoryComponent::kIo: return "io";
    case MemoryComponent::kStore: return "store";
    case MemoryComponent::kPool: return "pool";
    case MemoryComponent::kCount: break;
  }
  return "?";
}

void* MemoryAccountant::AllocateBuffer(size_t bytes, MemoryComponent user) {
  if (void* memory = pool_ ? pool_->Take(bytes, user) : nullptr) return memory;
  void* memory = ::operator new(bytes);
  Charge(user, HeapChunk(bytes));
  uint64_t used = Used(), limit = this->limit();
  if (pool_ && used > limit) pool_->Trim(used - limit);
  return memory;
}

void MemoryAccountant::FreeBuffer(void* memory, size_t bytes, MemoryComponent user) {
  if (pool_ && pool_->Give(memory, bytes, user)) return;
  Release(user, HeapChunk(bytes));
  ::operator delete(memory);
}

uint64_t MemoryAccountant::Used() const {
  uint64_t total = 0;
  for (const auto& counter : counters_) {
    total += counter.load(std::memory_order_relaxed);
  }
  return total;
}

uint64_t MemoryAccountant::Unevictable() const {
  uint64_t total = 0;
  for (MemoryComponent kept :
       {MemoryComponent::kInodes, MemoryComponent::kNames, MemoryComponent::kXattrs,
        MemoryComponent::kHandles, MemoryComponent::kRequests, MemoryComponent::kJournal,
        MemoryComponent::kStore}) {
    total += Used(kept);
  }
  return total;
}

}  // namespace keyfs
