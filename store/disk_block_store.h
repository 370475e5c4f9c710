#pragma once

// DiskBlockStore: the persistent block store of mode=disk, in STORE/blocks/
// (docs/store-format.md has the layout and why).
//
// Log-structured: blocks are appended to the segment being written
// (segment-NNNNNN.seg, each up to `segment_bytes`), one record per block
// (store/block_format.h), lz4-compressed when that is smaller. Nothing is
// ever written in place, so a block is never half-visible after a crash: a
// record cut short by a crash is never referenced, because nobody records a
// location before the Sync that makes it durable (block_store.h).
//
// The index is not here: the keyspace keeps each block's location and the
// journal records it. This store keeps per segment only how many of its
// bytes are live (saved and not deleted). Dead space comes back by
// compaction: the live records of a mostly dead segment are copied to the
// segment being written (Relocate), the keyspace takes the new locations,
// and the old copies are deleted. A segment with nothing live is retired;
// its file is removed once no journal file can refer to it any more, which
// the owner says with RemoveRetired(epoch) after a journal rewrite
// (docs/store-format.md, "Reclaiming space"). Reclaiming needs free space for
// the live part of one segment at most.
//
// Invariants:
//  1. A segment's live_bytes is the sum of the sizes of its records that
//     were saved (or relocated) and not deleted; it is exact after
//     FinishRecovery, because the replayed keyspace names every live copy.
//  2. Segment numbers only grow; the highest-numbered file is never removed
//     (only emptied), so a number is never used twice.
//  3. A segment is retired only when nothing in it is live and it is not the
//     one being written; a retired segment is never written again.
//
// Threading: Save, Load, Delete, Sync, Relocate and ListSegment from any
// thread (IO threads); the rest from the loop thread. One mutex guards the
// segment table; IO happens outside it, except creating a segment file.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/base/mutex.h"
#include "store/block_store.h"
#include "store/env.h"

namespace keyfs {

struct DiskStoreOptions {
  bool compress = true;
  uint64_t segment_bytes = uint64_t{32} << 20;
};

class DiskBlockStore final : public BlockStore {
 public:
  static constexpr const char* kDirName = "blocks";
  static constexpr size_t kSegmentHeaderSize = 32;

  // Opens STORE/blocks (creating it). Existing segments stay readable; new
  // blocks go to a new segment. Until FinishRecovery every existing segment
  // counts as live: nothing is retired.
  static Result<std::unique_ptr<DiskBlockStore>> Open(Env* env, const std::string& store_dir,
                                                      const DiskStoreOptions& options);
  // How many segment files STORE/blocks holds (0 when there is none): a
  // store with any is bound to mode=disk (its journal may refer to them).
  static Result<size_t> CountSegments(Env* env, const std::string& store_dir);
  ~DiskBlockStore() override;

  // BlockStore
  Result<BlockLocation> Save(const BlockId& id, std::string_view bytes) override;
  Result<RefPtr<BlockBuffer>> Load(const BlockId& id, const BlockLocation& where,
                                   MemoryAccountant* accountant) override;
  // A raw copy: only the chunks that hold the range, in one read. A
  // compressed one: the whole block.
  bool LoadsRange(const BlockLocation& where, uint32_t block_length) const override;
  Result<Range> LoadRange(const BlockId& id, const BlockLocation& where, uint32_t block_length,
                          uint32_t offset, uint32_t length, MemoryAccountant* accountant) override;
  Status Delete(const BlockId& id, const BlockLocation& where) override;
  Status Sync() override;
  bool persistent() const override { return true; }
  BlockStoreStats Stats() const override;

  // Recovery: counts `where` as live (the replayed keyspace holds it); after
  // FinishRecovery the live counts are exact and segments with nothing live
  // are retired.
  void MarkLive(const BlockLocation& where) override EXCLUDES(mu_);
  void FinishRecovery() override EXCLUDES(mu_);
  // Segments retired from now on are tagged with `epoch` (the journal's
  // generation); ReleaseBefore removes the files of those retired before
  // `epoch` (their bytes come back to the filesystem).
  void SetEpoch(uint64_t epoch) override { set_epoch(epoch); }
  Status ReleaseBefore(uint64_t epoch) override { return RemoveRetired(epoch); }

  // --- compaction ----------------------------------------------------------
  struct SegmentInfo {
    uint32_t id = 0;
    uint64_t bytes = 0;
    uint64_t live_bytes = 0;
    bool active = false;
    bool retired = false;
  };
  std::vector<SegmentInfo> Segments() const EXCLUDES(mu_);
  // Every block record in segment `id` with its location, read from the
  // file (an IO thread). A torn or damaged record ends the listing there.
  Result<std::vector<std::pair<BlockId, BlockLocation>>> ListSegment(uint32_t id) EXCLUDES(mu_);
  // Copies the record `id` at `from`, checked, to the segment being
  // written; durable after the next Sync. The old copy stays live until it
  // is deleted.
  Result<BlockLocation> Relocate(const BlockId& id, const BlockLocation& from) EXCLUDES(mu_);
  // Segments retired from now on are tagged with `epoch` (the journal's
  // generation).
  void set_epoch(uint64_t epoch) EXCLUDES(mu_);

  // --- the reserve ---------------------------------------------------------
  // Space set aside (blocks/reserve, allocated, empty) so that a full disk
  // can still be emptied: giving space back takes a journal rewrite, which
  // must write a little. DropReserve frees it for that; KeepReserve takes it
  // again when there is room. From the loop thread (file IO, but small).
  Status KeepReserve(uint64_t bytes);
  bool DropReserve();
  bool has_reserve() const { return reserve_held_; }
  uint64_t segment_bytes() const { return options_.segment_bytes; }
  // Removes the files of segments retired before `epoch`; their bytes come
  // back to the filesystem.
  Status RemoveRetired(uint64_t epoch) EXCLUDES(mu_);

 private:
  struct Segment {
    uint32_t id = 0;
    std::shared_ptr<RandomAccessFile> file;
    uint64_t size = 0;        // bytes allotted, header included
    uint64_t live_bytes = 0;
    bool dirty = false;       // written since the last Sync
    bool retired = false;
    uint64_t retired_epoch = 0;
  };

  DiskBlockStore(Env* env, std::string dir, const DiskStoreOptions& options)
      : env_(env), dir_(std::move(dir)), options_(options) {}
  std::string SegmentPath(uint32_t id) const;
  // "FILE offset N": where a record is, for messages.
  std::string Place(const BlockLocation& where) const;
  // Makes a new segment the one being written.
  Status StartSegment() REQUIRES(mu_);
  // Allots `bytes` in the segment being written (starting a new one when
  // full); returns the segment and the offset.
  Result<std::pair<Segment*, uint64_t>> Allot(uint64_t bytes) REQUIRES(mu_);
  Result<BlockLocation> Append(std::string_view record) EXCLUDES(mu_);
  Result<std::shared_ptr<RandomAccessFile>> SegmentFile(const BlockLocation& where) EXCLUDES(mu_);
  Result<RefPtr<BlockBuffer>> ReadBlock(const BlockId& id, const BlockLocation& where,
                                        MemoryAccountant* accountant) EXCLUDES(mu_);
  // The record at `where`, in this thread's scratch buffer: valid until the
  // thread's next Save, Load or Relocate.
  Result<std::string_view> ReadRecord(const BlockLocation& where) EXCLUDES(mu_);
  void MaybeRetire(Segment* segment) REQUIRES(mu_);
  void CountDamage(const Status& status) EXCLUDES(mu_);

  Env* const env_;
  const std::string dir_;  // STORE/blocks
  bool reserve_held_ = false;  // loop thread only
  const DiskStoreOptions options_;

  Mutex sync_mu_;  // one Sync at a time, so that each covers what came before it
  mutable Mutex mu_;
  std::map<uint32_t, Segment> segments_ GUARDED_BY(mu_);
  Segment* active_ GUARDED_BY(mu_) = nullptr;
  uint32_t next_id_ GUARDED_BY(mu_) = 1;  // invariant 2
  bool dir_dirty_ GUARDED_BY(mu_) = false;  // a segment file created since the last Sync
  bool recovering_ GUARDED_BY(mu_) = true;
  uint64_t epoch_ GUARDED_BY(mu_) = 0;
  BlockStoreStats counters_ GUARDED_BY(mu_);
};

}  // namespace keyfs
