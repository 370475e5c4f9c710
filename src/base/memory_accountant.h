#pragma once

// One memory budget for everything keyfs holds (DESIGN §4, "one memory budget").
//
// Every allocation that lives as long as the data it serves is charged here, by
// component, at the moment it is made, and released when it is freed: block
// buffers charge their capacity in their constructor and release it in their
// destructor, so the count is right by construction even when the last
// reference to a buffer is dropped on another thread. The limit is
// `max_memory`; whoever is about to grow asks RoomFor() first.
//
// RoomFor answers, with the cache's help (a Reclaimer):
//   kYes    there is room now (the cache may have evicted clean blocks for it);
//   kLater  not now, but the cache is saving dirty blocks that it can then
//           evict: the caller waits (back-pressure) and tries again;
//   kNo     nothing can make room (the budget is full of what cannot be
//           evicted, or the disk takes no more saves): ENOSPC.
// Without a reclaimer (all data in memory) it is kYes or kNo.
//
// Thread-safety: counters are atomics; any thread may charge and release.
// RoomFor and set_reclaimer are for the loop thread only (the reclaimer
// changes the keyspace).

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
  kRequests,    // deferred replies and parked requests, their payloads
  kJournal,     // journal records not yet written
  kIo,          // IO jobs and flags; room set aside for blocks being loaded
  kCount,
};

std::string_view MemoryComponentName(MemoryComponent component);

enum class Room { kYes, kLater, kNo };

// What can give memory back when the budget is full (the block cache).
class Reclaimer {
 public:
  virtual ~Reclaimer() = default;
  // Frees at least `bytes` if it can do so now (evicting clean blocks, none
  // of inode `busy`, which the caller is changing), and says what to expect.
  virtual Room Reclaim(uint64_t bytes, uint64_t busy) = 0;
};

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

  void set_reclaimer(Reclaimer* reclaimer) { reclaimer_ = reclaimer; }
  // Whether `bytes` more fit (see the top of this file). `busy`: an inode
  // whose blocks must not be evicted for it. Every kNo is a refused change
  // (ENOSPC) and is counted, for the log.
  Room RoomFor(uint64_t bytes, uint64_t busy = 0) {
    if (bytes <= Available()) return Room::kYes;
    Room room = reclaimer_ ? reclaimer_->Reclaim(bytes, busy) : Room::kNo;
    if (room == Room::kYes && bytes > Available()) room = Room::kLater;
    if (room == Room::kNo) refusals_.fetch_add(1, std::memory_order_relaxed);
    return room;
  }
  // RoomFor(bytes) == kYes, for callers that cannot wait.
  bool HasRoomFor(uint64_t bytes) { return RoomFor(bytes) == Room::kYes; }
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }

 private:
  static int Index(MemoryComponent c) { return static_cast<int>(c); }

  const uint64_t limit_;
  std::array<std::atomic<uint64_t>, static_cast<int>(MemoryComponent::kCount)>
      counters_{};
  std::atomic<uint64_t> refusals_{0};
  Reclaimer* reclaimer_ = nullptr;
};

}  // namespace keyfs
