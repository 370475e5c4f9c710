#pragma once

// BlockStore: where blocks that do not stay in memory live (DESIGN §5).
//
// A block is identified by its file's inode number, its index in the file and
// its version — the journal sequence number of the last change its bytes
// include — so a store never hands back an old or a foreign block for a new
// one: Load checks all three against what it finds and says EIO otherwise.
//
// Save returns where the block went (a BlockLocation, opaque outside the
// store that made it); the keyspace keeps it in the block's slot and the
// journal records it, so the store needs no index of its own. A location is
// never reused for another block. Delete says a saved copy is no longer
// needed (the block was overwritten, truncated, or its file deleted), so its
// space may be reclaimed.
//
// Durability: what Save wrote is durable once a later Sync returned OK.
// Nobody may rely on a location (record it in the journal) before that.
//
// Threading: every method may be called from any thread, concurrently (IO
// threads call Save and Load; the loop thread reads Stats).
//
// Implementations: DiskBlockStore (store/disk_block_store.h, mode=disk);
// SwapFile (store/swap/swap_file.h, mode=swap); MemoryBlockStore for tests
// (tests/store/memory_block_store.h). All pass one contract suite
// (tests/store/block_store_contract_test.cc).

#include <cerrno>
#include <cstdint>
#include <string>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"
#include "src/base/ref_ptr.h"
#include "src/base/status.h"

namespace keyfs {

struct BlockId {
  uint64_t ino = 0;
  uint64_t index = 0;
  uint64_t version = 0;

  bool operator==(const BlockId&) const = default;
};

// Where a store keeps one saved block. segment 0 means nowhere.
struct BlockLocation {
  uint32_t segment = 0;
  uint32_t size = 0;    // bytes the saved copy takes in the store
  uint64_t offset = 0;

  bool valid() const { return segment != 0; }
  bool operator==(const BlockLocation&) const = default;
};

struct BlockStoreStats {
  uint64_t saved_bytes = 0;     // bytes the store's files take on disk
  uint64_t live_bytes = 0;      // of which saved copies not deleted
  uint64_t segments = 0;        // files (0 for stores without)
  uint64_t retired_segments = 0;  // wholly dead, waiting to be removed
  uint64_t saves = 0, loads = 0, deletes = 0;
  uint64_t range_loads = 0;       // parts of blocks read (LoadRange), not whole blocks
  uint64_t raw_bytes_saved = 0;   // block bytes given to Save
  uint64_t stored_bytes_saved = 0;  // what they took after compression
  uint64_t damaged = 0;           // loads refused: damaged or not the block asked for
};

class BlockStore {
 public:
  virtual ~BlockStore() = default;

  // Writes `bytes` (a block's bytes, at most 16 MiB) as `id`; durable after
  // the next Sync.
  virtual Result<BlockLocation> Save(const BlockId& id, std::string_view bytes) = 0;
  // Reads the block saved as `id` at `where` into a new buffer charged to
  // `accountant`. EIO, logged, when what is there is damaged or is not `id`:
  // never wrong bytes.
  virtual Result<RefPtr<BlockBuffer>> Load(const BlockId& id, const BlockLocation& where,
                                           MemoryAccountant* accountant) = 0;
  // Whether LoadRange reads the copy at `where` in part (else it reads it
  // whole): the cache asks before it sets memory aside for a part only.
  virtual bool LoadsRange(const BlockLocation& where, uint32_t block_length) const {
    return false;
  }
  // Reads bytes [offset, offset + length) of the block saved as `id` at
  // `where`, a block of `block_length` bytes, into a new buffer (a small
  // random read of an evicted block needs no more). A store may read more
  // and say so: `whole` means `buffer` is the whole block (a compressed copy
  // cannot be read in part). The range is within the block. Checked as Load.
  struct Range {
    RefPtr<BlockBuffer> buffer;
    bool whole = false;
  };
  virtual Result<Range> LoadRange(const BlockId& id, const BlockLocation& where,
                                  uint32_t block_length, uint32_t offset, uint32_t length,
                                  MemoryAccountant* accountant) {
    ASSIGN_OR_RETURN(RefPtr<BlockBuffer> block, Load(id, where, accountant));
    return Range{std::move(block), true};
  }
  // The copy at `where` is no longer needed.
  virtual Status Delete(const BlockId& id, const BlockLocation& where) = 0;
  // Everything saved before this call is durable when it returns OK.
  virtual Status Sync() = 0;
  // Whether saved blocks survive a restart (the disk store) or not (the
  // swap file, the memory store): the journal records locations only then.
  virtual bool persistent() const = 0;
  virtual BlockStoreStats Stats() const = 0;

  // --- the journal's snapshot, for stores that do not persist ---------------
  // The journal's rewrite writes every block's bytes when the store does not
  // persist (DESIGN §6), reading the evicted ones here, maybe in a forked
  // child: this must take no lock another thread may hold (DESIGN §4.1,
  // rule 7) and changes nothing. Checked as Load.
  virtual Result<RefPtr<BlockBuffer>> LoadForSnapshot(const BlockId& id,
                                                      const BlockLocation& where,
                                                      MemoryAccountant* accountant) const {
    return Status::Errno(ENOTSUP, "this block store has no snapshot reads");
  }
  // Between the two, a snapshot may read any copy that was not deleted
  // before SnapshotStarted: space deleted meanwhile is not reused until
  // SnapshotEnded. From the loop thread.
  virtual void SnapshotStarted() {}
  virtual void SnapshotEnded() {}

  // --- life cycle, for stores that outlive a mount (no-ops otherwise) ------
  // At mount, before FinishRecovery: `where` is referred to by the replayed
  // keyspace (it is live).
  virtual void MarkLive(const BlockLocation& where) {}
  // Every live location has been named; the rest is dead space.
  virtual void FinishRecovery() {}
  // Space of copies deleted from now on may still be referred to by journal
  // files of generation `epoch` and later.
  virtual void SetEpoch(uint64_t epoch) {}
  // Journal files before generation `epoch` are gone: space of copies
  // deleted before that epoch began may be given back now (slow: file IO).
  virtual Status ReleaseBefore(uint64_t epoch) { return Status::Ok(); }
};

}  // namespace keyfs
