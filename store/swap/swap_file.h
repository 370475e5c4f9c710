#pragma once

// SwapFile: the block store of mode=swap, Redis's virtual memory (vm.c)
// behind keyfs's cache (docs/swap-format.md has the layout and why).
//
// One file of fixed-size pages, made at mount and removed at a clean
// unmount: nothing in it outlives the process (persistent() is false), so
// the journal holds every block's bytes and replay needs no swap file
// (DESIGN §5-§6). Page 0 says who holds the file; the rest hold blocks. A
// block is written as one record (store/block_format.h: a header with a
// CRC32C, the payload lz4-compressed when that is smaller, else raw in
// checked 4 KiB chunks) into a contiguous run of pages that SwapAllocator
// hands out; a damaged page reads as EIO, never as wrong bytes. A location
// is (tag, record size, byte offset of the run): the tag counts saves, so a
// location is never handed out twice even though runs are reused, and a
// stale LOAD can never be taken for a newer copy at the same place
// (FileData::Install compares locations).
//
// When space may be reused (invariants):
//  1. A run is given out once: by Allocate, until its Delete.
//  2. A deleted run is not reused while a read that began before the
//     Delete is still running (limbo_, released as reads end): an IO thread
//     reading an old copy never sees another block's bytes appear under it.
//  3. A deleted run is not reused while a snapshot runs (the journal's
//     rewrite reads swapped blocks, maybe from a forked child that no lock
//     here can see: SnapshotStarted .. SnapshotEnded, snapshot_held_). This
//     is what vm.c got wrong the other way round: it stopped swapping out
//     during a rewrite; here swap-out goes on and only frees wait.
//  4. After FinishRecovery, every allocated run is the copy of a block slot
//     or is held (2-3): runs saved during replay for blocks that replay then
//     dropped are freed by it.
//
// Threading: Save, Load, LoadRange, Delete, Sync and Stats from any thread;
// one mutex guards the allocator and the counters, IO happens outside it.
// LoadForSnapshot takes no lock at all (only `file_`, which never changes).
// Create and Remove from the loop thread, with no IO running.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "src/base/mutex.h"
#include "store/block_store.h"
#include "store/env.h"
#include "store/swap/swap_allocator.h"

namespace keyfs {

struct SwapFileOptions {
  std::string path;
  uint64_t size = 0;          // bytes (whole pages are used); 0: Create picks (DefaultSize)
  uint32_t page_size = 4096;  // a power of two, kMinPageSize..kMaxPageSize
  uint64_t min_size = 0;      // smaller is refused (room for the largest block, say)
  bool compress = true;
  std::string owner;          // who holds the file, written into page 0
};

// What the swap file holds, for `.keyfs/info` (# Swap).
struct SwapStats {
  uint64_t size = 0;          // bytes of the file
  uint32_t page_size = 0;
  uint64_t pages = 0;         // that hold blocks (page 0 excluded)
  uint64_t pages_used = 0;    // allocated, or freed but held (invariants 2-3)
  uint64_t pages_held = 0;    // of which freed and waiting
  uint64_t free_extents = 0;
  uint64_t largest_free_extent = 0;  // pages
};

class SwapFile final : public BlockStore {
 public:
  static constexpr uint32_t kMinPageSize = 512;
  static constexpr uint32_t kMaxPageSize = 1u << 20;
  static constexpr size_t kHeaderSize = 48;  // page 0's fixed fields (docs/swap-format.md)
  // Without swap_size: a quarter of the filesystem's free space, at most 64 GiB.
  static uint64_t DefaultSize(uint64_t available);

  // Creates the file at options.path (made empty if it exists, then
  // preallocated), locked: EWOULDBLOCK, naming the holder, when another
  // process holds it; ENOSPC when its filesystem cannot hold options.size.
  // `accountant` (may be null) is charged for the free-space trees.
  static Result<std::unique_ptr<SwapFile>> Create(Env* env, const SwapFileOptions& options,
                                                  MemoryAccountant* accountant);
  // Removes the file (Remove) and closes it: nothing in it is of use once
  // this process is done with it. Only a crash leaves it behind.
  ~SwapFile() override;
  // Unlinks the file while it is still locked (so that a keyfs that takes
  // the path next never loses its file to us); the descriptor stays open,
  // so IO still running finishes. Once; the destructor calls it too.
  Status Remove();

  // BlockStore
  Result<BlockLocation> Save(const BlockId& id, std::string_view bytes) override EXCLUDES(mu_);
  Result<RefPtr<BlockBuffer>> Load(const BlockId& id, const BlockLocation& where,
                                   MemoryAccountant* accountant) override EXCLUDES(mu_);
  bool LoadsRange(const BlockLocation& where, uint32_t block_length) const override;
  Result<Range> LoadRange(const BlockId& id, const BlockLocation& where, uint32_t block_length,
                          uint32_t offset, uint32_t length, MemoryAccountant* accountant) override
      EXCLUDES(mu_);
  Status Delete(const BlockId& id, const BlockLocation& where) override EXCLUDES(mu_);
  // Nothing to make durable: the file does not outlive the process.
  Status Sync() override { return Status::Ok(); }
  bool persistent() const override { return false; }
  BlockStoreStats Stats() const override EXCLUDES(mu_);
  Result<RefPtr<BlockBuffer>> LoadForSnapshot(const BlockId& id, const BlockLocation& where,
                                              MemoryAccountant* accountant) const override;
  void SnapshotStarted() override EXCLUDES(mu_);
  void SnapshotEnded() override EXCLUDES(mu_);
  // Replay at mount saves (swaps out) blocks that later records may drop
  // with no cache to say so (an unlink, an overwrite): until
  // FinishRecovery, every run saved is remembered, and those the replayed
  // keyspace does not name (MarkLive) are freed then (invariant 4).
  void MarkLive(const BlockLocation& where) override EXCLUDES(mu_);
  void FinishRecovery() override EXCLUDES(mu_);

  SwapStats swap_stats() const EXCLUDES(mu_);
  const std::string& path() const { return options_.path; }

 private:
  struct Run {
    uint64_t first = 0, count = 0;
    uint64_t ticket = 0;  // reads begun before it was freed have tickets <= this
  };

  SwapFile(Env* env, const SwapFileOptions& options, std::unique_ptr<RandomAccessFile> file,
           uint64_t pages, MemoryAccountant* accountant);
  uint64_t PagesFor(uint64_t bytes) const {
    return (bytes + options_.page_size - 1) / options_.page_size;
  }
  std::string Place(const BlockLocation& where) const;
  // The run `where` names; EIO when it is not one this file could have made.
  Result<Run> RunOf(const BlockLocation& where) const;
  // Invariant 2: a read holds a ticket while it runs.
  uint64_t BeginRead() EXCLUDES(mu_);
  void EndRead(uint64_t ticket) EXCLUDES(mu_);
  void ReleaseLimbo() REQUIRES(mu_);
  void FreeRun(const Run& run) REQUIRES(mu_);
  void Recharge() REQUIRES(mu_);
  Result<RefPtr<BlockBuffer>> ReadBlock(const BlockId& id, const BlockLocation& where,
                                        MemoryAccountant* accountant) const;
  // One read under invariant 2 (a ticket while it runs), counted: in
  // `counter` when good, as damage (and logged) when EIO.
  Result<RefPtr<BlockBuffer>> GuardedRead(
      uint64_t BlockStoreStats::*counter,
      const std::function<Result<RefPtr<BlockBuffer>>()>& read) EXCLUDES(mu_);

  Env* const env_;
  const SwapFileOptions options_;
  std::unique_ptr<RandomAccessFile> file_;  // never changes
  bool removed_ = false;                    // loop thread only
  const uint64_t pages_;                    // in the file, page 0 included
  MemoryAccountant* const accountant_;

  mutable Mutex mu_;
  SwapAllocator allocator_ GUARDED_BY(mu_);
  uint32_t next_tag_ GUARDED_BY(mu_) = 1;  // 0 is "nowhere" (BlockLocation)
  uint64_t read_tickets_ GUARDED_BY(mu_) = 0;
  std::set<uint64_t> active_reads_ GUARDED_BY(mu_);
  std::deque<Run> limbo_ GUARDED_BY(mu_);          // invariant 2, oldest first
  std::vector<Run> snapshot_held_ GUARDED_BY(mu_);  // invariant 3
  bool recovering_ GUARDED_BY(mu_) = true;          // invariant 4
  struct SavedRun {
    uint64_t count = 0;
    uint32_t size = 0;  // of the record
    bool live = false;
  };
  std::map<uint64_t, SavedRun> recovery_runs_ GUARDED_BY(mu_);  // by first page
  int snapshots_ GUARDED_BY(mu_) = 0;
  uint64_t held_pages_ GUARDED_BY(mu_) = 0;
  uint64_t live_bytes_ GUARDED_BY(mu_) = 0;
  size_t charged_ GUARDED_BY(mu_) = 0;
  BlockStoreStats counters_ GUARDED_BY(mu_);
};

}  // namespace keyfs
