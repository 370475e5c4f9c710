#pragma once

// BlockSlot: one block of a file, wherever its bytes are (DESIGN §4.1), and
// what the keyspace tells the cache about blocks (BlockObserver).
//
// A slot is in one of these states:
//   hole      no buffer, nothing stored: reads as zeros
//   resident  a buffer; `dirty` when the store has no copy of these bytes
//             (never saved, or changed since), clean otherwise
//   evicted   no buffer, a stored copy: the bytes are in the block store and
//             must be loaded before they are read or partly changed
// The loop thread's cache moves slots between resident and evicted (loading,
// evicting) and from dirty to clean (a SAVE that came back); every other
// change is the keyspace's.
//
// Invariants:
//  1. `length` is the block's length in every state. A buffer or a stored
//     copy may hold more (a truncation cuts `length` only, so it never needs
//     memory or a load): only the first `length` bytes count, and what lies
//     past them reads as zeros.
//  2. `version` is the journal sequence number of the record of the last
//     change to the block's bytes; `stored_version` is the version the stored
//     copy holds. A copy of version v holds every change up to v, and none
//     after (the SAVE took the buffer after change v and before v + 1).
//  3. A clean resident slot, or an evicted one, is the stored copy cut to
//     `length`: evicting it and loading it again gives the same bytes.
//  4. A buffer referenced by anyone else (a SAVE job, a read reply, a parked
//     request) is never written in place (block_buffer.h) and never evicted.

#include <cstdint>

#include "src/base/block_buffer.h"
#include "src/base/ref_ptr.h"
#include "src/base/status.h"
#include "store/block_store.h"

namespace keyfs {

using Ino = uint64_t;

// Which block of which file.
struct BlockKey {
  Ino ino = 0;
  uint64_t index = 0;
  bool operator==(const BlockKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const BlockKey& key) {
    return H::combine(std::move(h), key.ino, key.index);
  }
};

// Error codes the keyspace uses between itself, the cache and the adapter;
// they never reach the kernel. Above errno's range on purpose.
// kNeedBlocks: blocks the operation needs are evicted; Keyspace::needed()
// names them; nothing was changed. Load them and run it again.
inline constexpr int kNeedBlocks = 100001;
// kNeedRoom: memory is full of dirty blocks being saved; nothing was
// changed. Wait for room (back-pressure) and run it again.
inline constexpr int kNeedRoom = 100002;
// kNeedStore: a write of whole blocks is to be stored before it is applied
// (Keyspace::set_stores_whole_blocks); nothing was changed. Store the blocks
// Keyspace::to_store() holds and run it again with them offered
// (Keyspace::OfferStored).
inline constexpr int kNeedStore = 100003;
inline bool IsRetryLater(const Status& status) {
  return status.code() == kNeedBlocks || status.code() == kNeedRoom ||
         status.code() == kNeedStore;
}

struct BlockSlot {
  RefPtr<BlockBuffer> buffer;  // resident bytes, or null
  BlockLocation stored;        // the copy in the block store, or !valid()
  uint64_t version = 0;
  uint64_t stored_version = 0;
  uint32_t length = 0;
  uint32_t resident_pos = 0;  // the cache's: 1 + index in its resident set, 0 if not there
  uint32_t dirty_counted = 0;  // the cache's: the bytes it counts as dirty for this block
  bool dirty = false;

  bool hole() const { return !buffer && !stored.valid(); }
  bool resident() const { return static_cast<bool>(buffer); }
  bool evicted() const { return !buffer && stored.valid(); }
};

// What the keyspace tells the block cache (src/cache/block_cache.h). Calls
// come on the loop thread, from inside keyspace operations.
class BlockObserver {
 public:
  virtual ~BlockObserver() = default;
  // The bytes of block `index` of `ino` changed: it is resident and dirty
  // (a SAVE is due), and its version is new. `was_dirty`: it was dirty
  // before this change already.
  virtual void Dirtied(Ino ino, uint64_t index, BlockSlot& slot, bool was_dirty) = 0;
  // Block `index` of `ino` goes away (truncated, punched out, its file
  // freed): its stored copy is no longer needed, and it leaves memory.
  virtual void Dropping(Ino ino, uint64_t index, BlockSlot& slot) = 0;
  // Block `index` of `ino` was replaced by a copy that was stored before the
  // change was made (a write of whole blocks): it is resident and clean.
  // Dropping() was called for what it held before.
  virtual void Stored(Ino ino, uint64_t index, BlockSlot& slot) = 0;
  // Regular file `ino` was pinned (Inode::pinned: its blocks are to stay in
  // memory, and its evicted ones to be loaded) or unpinned (its blocks are
  // a cache again).
  virtual void PinChanged(Ino ino, bool pinned) = 0;
};

// A block stored before the write that makes it the file's (kNeedStore):
// its bytes, and where the store put them as of `stored_version`.
struct StoredBlock {
  RefPtr<BlockBuffer> buffer;
  BlockLocation where;
  uint64_t stored_version = 0;
};

// Part of an evicted block's stored copy, read for one request (a small
// random read need not load the whole block, BlockStore::LoadRange): bytes
// [offset, offset + bytes->length()) of block `key` as of `version`. Good
// only while the slot is that evicted copy (Keyspace::OfferRanges).
struct LoadedRange {
  BlockKey key;
  uint64_t version = 0;
  uint32_t offset = 0;
  RefPtr<BlockBuffer> bytes;
};

// The context of one change to a file's blocks.
struct BlockChange {
  Ino ino = 0;
  uint64_t version = 0;              // the journal sequence number of its record
  BlockObserver* observer = nullptr;  // null: no cache
};

}  // namespace keyfs
