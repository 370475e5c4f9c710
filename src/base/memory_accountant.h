#pragma once

// One memory budget for everything keyfs holds (DESIGN §4, "one memory budget").
//
// Every allocation that lives as long as the data it serves is charged here, by
// component, at the moment it is made, and released when it is freed: block
// buffers charge their capacity in their constructor and release it in their
// destructor, so the count is right by construction even when the last
// reference to a buffer is dropped on another thread. The limit is `max_memory`;
// whoever is about to grow asks HasRoomFor() first and fails with ENOSPC (or,
// once the disk store exists, evicts or applies back-pressure) instead of
// going over.
//
// Thread-safety: counters are atomics; any thread may charge and release.

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace keyfs {

enum class MemoryComponent : int {
  kBlocks = 0,  // file contents: block buffers, counted by capacity
  kInodes,      // inode structs and inode-table slots
  kNames,       // directory entries and the names in them, symlink targets
  kXattrs,      // extended attribute names and values
  kHandles,     // open file and directory handles, directory listings
  kRequests,    // deferred replies and parked requests
  kJournal,     // journal records not yet written
  kCount,
};

std::string_view MemoryComponentName(MemoryComponent component);

class MemoryAccountant {
 public:
  explicit MemoryAccountant(uint64_t limit) : limit_(limit) {}
  MemoryAccountant(const MemoryAccountant&) = delete;
  MemoryAccountant& operator=(const MemoryAccountant&) = delete;

  void Charge(MemoryComponent component, uint64_t bytes) {
    counters_[Index(component)].fetch_add(bytes, std::memory_order_relaxed);
  }
  void Release(MemoryComponent component, uint64_t bytes) {
    counters_[Index(component)].fetch_sub(bytes, std::memory_order_relaxed);
  }

  uint64_t Used(MemoryComponent component) const {
    return counters_[Index(component)].load(std::memory_order_relaxed);
  }
  uint64_t Used() const;
  uint64_t limit() const { return limit_; }
  uint64_t Available() const {
    uint64_t used = Used();
    return used >= limit_ ? 0 : limit_ - used;
  }
  // True when `bytes` more would still fit under the limit. Every "no" is
  // a refused change (ENOSPC) and is counted, for the log.
  bool HasRoomFor(uint64_t bytes) const {
    if (bytes <= Available()) return true;
    refusals_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }

 private:
  static int Index(MemoryComponent c) { return static_cast<int>(c); }

  const uint64_t limit_;
  std::array<std::atomic<uint64_t>, static_cast<int>(MemoryComponent::kCount)>
      counters_{};
  mutable std::atomic<uint64_t> refusals_{0};
};

}  // namespace keyfs
