#include "src/base/memory_accountant.h"

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
