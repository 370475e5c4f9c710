#pragma once

// Compactor: gives the disk store's dead space back (docs/store-format.md,
// "Reclaiming space").
//
// Overwritten, truncated and deleted blocks leave dead records in the store's
// segments. A segment with nothing live is retired, and its file removed once
// a journal rewrite of a later generation has made sure no journal file can
// refer to it (block_cache.h, rule 3). A segment that is partly dead is
// compacted first: its live records are read (ListSegment), checked against
// the keyspace (is the block's copy still that one?), copied as they are to
// the segment being written (Relocate, then one Sync), and the blocks take
// their new locations, recorded in the journal (kBlockSaved); the old copies
// are deleted, and the segment retires. Then a rewrite, then the files go.
// Copying needs free space for the live part of one segment at most.
//
// It runs by itself in the cron when the store's dead space is large, when
// `keyfs-ctl compact` asks (Start), and at once when the disk is full: then
// the store's reserve (blocks/reserve) is dropped first, so that the rewrite
// that gives the space back has room to write its (small, in disk mode) base.
//
// Every step that touches files runs on an IO thread; the loop thread picks
// the segments, checks liveness and applies results, so a block that changed
// while its record was being copied keeps its newer copy (the copied one is
// deleted again).
//
// Loop thread only.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "src/base/clock.h"
#include "src/cache/block_cache.h"
#include "src/journal/journal.h"
#include "store/disk_block_store.h"

namespace keyfs {

struct CompactorOptions {
  // Compact by itself when this much of the store is dead (and at least
  // min_dead_bytes).
  double dead_ratio = 0.25;
  uint64_t min_dead_bytes = uint64_t{32} << 20;
  // A segment is worth compacting when at least this much of it is dead.
  double segment_dead_ratio = 0.5;
  // Space kept back for a rewrite on a full disk.
  uint64_t reserve_bytes = uint64_t{4} << 20;
};

class Compactor {
 public:
  Compactor(DiskBlockStore* store, BlockCache* cache, Journal* journal, const Clock* clock,
            const CompactorOptions& options);

  // Starts a compaction of every segment with dead space in it (keyfs-ctl
  // compact). EBUSY while one runs.
  Status Start(std::string why);
  void Cron();
  // The journal was rewritten and the store released what it could.
  void OnReleased();

  bool running() const { return phase_ != Phase::kIdle; }
  std::string Info() const;

 private:
  enum class Phase { kIdle, kCompacting, kWaitingForRewrite };
  struct Relocation {
    BlockKey key;
    BlockId id;
    BlockLocation from;
    Result<BlockLocation> to = Status::Errno(EINPROGRESS);
  };

  void Begin(bool everything, std::string why);
  void NextSegment();
  void Listed(uint32_t segment, std::vector<std::pair<BlockId, BlockLocation>> records);
  void Relocated(std::vector<Relocation> moves, Status synced);
  void RequestRewrite();
  bool DiskFull() const;

  DiskBlockStore* const store_;
  BlockCache* const cache_;
  Journal* const journal_;
  const Clock* const clock_;
  const CompactorOptions options_;

  Phase phase_ = Phase::kIdle;
  std::string why_;
  std::deque<uint32_t> victims_;
  uint64_t rewrite_gen_ = 0;  // the rewrite we wait for makes this the base
  int64_t started_ns_ = 0;
  int64_t next_try_ns_ = 0;
  uint64_t compactions_ = 0, segments_compacted_ = 0, blocks_relocated_ = 0;
  uint64_t bytes_before_ = 0;
  Status last_error_;
};

}  // namespace keyfs
