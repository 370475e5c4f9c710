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
#include <memory>
#include <string_view>

#include "src/base/buffer_pool.h"

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
  kStore,       // the block store's own tables (the swap file's free space)
  kPool,        // idle buffers kept for reuse or made ahead (buffer_pool.h):
                // free for the budget, given back when something else needs room
  kCount,
};

std::string_view MemoryComponentName(MemoryComponent component);

enum class Room { kYes, kLater, kNo };

// The blocks a change is about to use, which making room for it must leave
// alone: blocks first..last of inode `ino` (none when `ino` is 0). The
// change has checked them (resident or not, what they cost) before asking;
// the other blocks of the same file may go (a long write of one file evicts
// that file's earlier blocks).
struct BusyBlocks {
  uint64_t ino = 0;
  uint64_t first = 0, last = 0;
  bool Contains(uint64_t i, uint64_t index) const {
    return i == ino && ino != 0 && index >= first && index <= last;
  }
};

// What can give memory back when the budget is full (the block cache).
class Reclaimer {
 public:
  virtual ~Reclaimer() = default;
  // Frees at least `bytes` if it can do so now (evicting clean blocks other
  // than `busy`), and says what to expect.
  virtual Room Reclaim(uint64_t bytes, const BusyBlocks& busy) = 0;
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
  // Everything charged, idle pooled buffers included: what is resident.
  uint64_t Used() const;
  // What is held for data: Used() less the idle pooled buffers, which are
  // freed at once for whatever needs their room.
  uint64_t InUse() const { return Used() - Used(MemoryComponent::kPool); }
  uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  // What eviction can never give back: everything but blocks, the room set
  // aside for loads (kIo) and the pool. Each counter read once.
  uint64_t Unevictable() const;
  // A new max_memory on a running mount (keyfs-ctl config): whatever grows
  // from now on is held to it, and the cache's cron evicts down to it, with
  // back-pressure for writers while dirty blocks are above it.
  void set_limit(uint64_t limit) { limit_.store(limit, std::memory_order_relaxed); }
  uint64_t Available() const {
    uint64_t used = InUse();
    uint64_t limit = this->limit();
    return used >= limit ? 0 : limit - used;
  }

  // Keeps freed block buffers for reuse, up to `max_bytes` (the server does;
  // tests mostly do not). Before any buffer is made.
  void EnableBufferPool(uint64_t max_bytes) {
    pool_ = std::make_unique<BufferPool>(this, max_bytes);
  }
  BufferPool* buffer_pool() const { return pool_.get(); }
  // Memory of `bytes` (an ::operator new request) charged to `user`: an
  // idle pooled buffer of that size, or a new allocation, after which idle
  // buffers give it their room if everything charged passes the limit
  // (buffer_pool.h). Give it back with FreeBuffer.
  void* AllocateBuffer(size_t bytes, MemoryComponent user);
  // Back to the pool for reuse, or released and freed.
  void FreeBuffer(void* memory, size_t bytes, MemoryComponent user);

  void set_reclaimer(Reclaimer* reclaimer) { reclaimer_ = reclaimer; }
  // Whether `bytes` more fit (see the top of this file). `busy`: blocks that
  // must not be evicted for it. Every kNo is a refused change (ENOSPC) and
  // is counted, for the log.
  Room RoomFor(uint64_t bytes, const BusyBlocks& busy = {}) {
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

  std::atomic<uint64_t> limit_;  // read by IO threads as they allocate
  std::array<std::atomic<uint64_t>, static_cast<int>(MemoryComponent::kCount)>
      counters_{};
  std::atomic<uint64_t> refusals_{0};
  Reclaimer* reclaimer_ = nullptr;
  // Last: destroyed first, while the counters it releases are still there.
  std::unique_ptr<BufferPool> pool_;
};

}  // namespace keyfs
