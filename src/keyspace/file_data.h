#pragma once

// FileData: a regular file's bytes as a vector of block slots (DESIGN §3;
// block_slot.h for the states a block can be in).
//
// Block i covers bytes [i*block_size, (i+1)*block_size). A hole reads as
// zeros; so do the bytes of a block past its length and up to the file size.
// A small file is one block of its own length, not a block_size allocation.
//
// FileData does not know the file size; the Inode does, and passes it in.
// Changes are all or nothing: before anything is changed, an operation checks
// that every evicted block it needs the old bytes of is loaded (else
// kNeedBlocks, with the blocks' indexes in `missing`) and that the memory it
// takes is there (MemoryAccountant::RoomFor: else kNeedRoom, or ENOSPC). So
// an operation that has to wait can be run again from the start, and an
// O_APPEND write is never applied twice.
//
// It charges its slot vector to the accountant (the buffers charge
// themselves). Owner (loop) thread only.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <absl/container/inlined_vector.h>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"
#include "src/base/status.h"
#include "src/keyspace/block_slot.h"

namespace keyfs {

// A piece of a read: `length` bytes at `offset` in `block`, or zeros when block
// is null. The reference keeps the bytes alive until the reply has been sent.
struct ReadSlice {
  BlockRef block;
  size_t offset = 0;
  size_t length = 0;
};

class FileData {
 public:
  FileData(MemoryAccountant* accountant, uint32_t block_size);
  ~FileData();
  FileData(FileData&& other) noexcept;
  FileData& operator=(FileData&&) = delete;
  FileData(const FileData&) = delete;

  // Slices covering [offset, offset+length), clipped to `file_size`.
  // kNeedBlocks when a block the range reads from is evicted, unless
  // `ranges` (of this file) holds the part of its stored copy that is read.
  Result<std::vector<ReadSlice>> Read(uint64_t offset, uint64_t length, uint64_t file_size,
                                      std::vector<uint64_t>* missing,
                                      const std::vector<LoadedRange>* ranges = nullptr) const;

  // Writes all of `data` at `offset`, or nothing: kNeedBlocks when it keeps
  // part of an evicted block (a write covering a block's whole length needs
  // no load), kNeedRoom or ENOSPC when the memory is not there.
  Result<size_t> Write(uint64_t offset, std::string_view data, const BlockChange& change,
                       std::vector<uint64_t>* missing);

  // Drops everything at or past `new_size` (the bytes read as zero if the
  // file grows again). Needs no memory and no load: a cut block keeps its
  // buffer or stored copy, with a shorter length (block_slot.h, 1).
  void Truncate(uint64_t new_size, const BlockChange& change);

  // A write of whole blocks that is stored before it is applied: copies of
  // `data` (whole blocks from block `first`), one buffer per block, or
  // kNeedRoom / ENOSPC when the memory is not there.
  Result<std::vector<RefPtr<BlockBuffer>>> CopyWholeBlocks(size_t first, std::string_view data,
                                                          const BlockChange& change);
  // Makes blocks `first`.. the stored copies `blocks` (resident and clean;
  // block first + i gets version change.version + i: one record each), or
  // nothing (kNeedRoom / ENOSPC for the slots).
  Status WriteStored(size_t first, std::span<const StoredBlock> blocks, const BlockChange& change);
  // Replay of a stored whole-block write: block `index` is the copy at
  // `where`, evicted; what it held before is gone.
  void RestoreWriteStored(size_t index, uint32_t length, uint64_t version,
                          uint64_t stored_version, const BlockLocation& where);

  // Makes [offset, offset+length) read as zeros, dropping whole blocks;
  // kNeedBlocks / kNeedRoom / ENOSPC as Write, for the blocks it cuts into.
  Status PunchHole(uint64_t offset, uint64_t length, const BlockChange& change,
                   std::vector<uint64_t>* missing);

  // Drops every block: the file is being freed.
  void DropAll(Ino ino, BlockObserver* observer);

  // Gives back the slack that appending left in the last block.
  void ShrinkToFit();
  // Whether ShrinkToFit() would give memory back.
  bool has_slack() const;

  // What blocks [first, last] take in memory when resident, wherever they
  // are now: a buffer of each one's length (BlockBuffer::ChargeFor), nothing
  // for holes and blocks past the end. What user.keyfs.pin counts.
  uint64_t Footprint(size_t first, size_t last) const;
  uint64_t Footprint() const { return blocks_.empty() ? 0 : Footprint(0, blocks_.size() - 1); }
  // The footprint of the blocks a write of `length` bytes at `offset` touches,
  // as it would be after the write (a write grows blocks, never shrinks them).
  uint64_t FootprintAfterWrite(uint64_t offset, uint64_t length) const;

  // Sum of the blocks' lengths, wherever they are: what st_blocks reports.
  uint64_t stored_bytes() const { return stored_bytes_; }
  size_t block_count() const { return blocks_.size(); }
  const BlockSlot& slot(size_t index) const { return blocks_[index]; }
  // The cache's access: it installs and evicts buffers and marks blocks
  // clean; it never changes a length.
  BlockSlot& mutable_slot(size_t index) { return blocks_[index]; }
  // The resident buffer of block `index`, or null (tests, snapshots).
  const BlockBuffer* block(size_t index) const { return blocks_[index].buffer.get(); }
  uint32_t block_size() const { return block_size_; }

  // A LOAD came back: block `index` becomes resident and clean with
  // `buffer`, if it is still the evicted copy at `from` (a block changed or
  // dropped while it was loading is not installed: false).
  bool Install(size_t index, RefPtr<BlockBuffer> buffer, const BlockLocation& from);

  // Replay of a snapshot: block `index` as the snapshot recorded it, stored
  // at `where` (no buffer). The block must be a hole now.
  void RestoreStored(size_t index, uint32_t length, uint64_t version, uint64_t stored_version,
                     const BlockLocation& where);

 private:
  // Memory (signed) that making block `index` writable over [0, end) takes.
  int64_t WriteCost(size_t index, size_t end) const;
  // Returns block `index` ready to be written over [from, end): unshared,
  // with capacity >= end and length >= end, holding the slot's bytes outside
  // [from, end) (inside it, a new buffer is not zeroed: the caller writes it
  // at once). Copies a shared, missing or too small buffer. Its memory was
  // checked (WriteCost).
  BlockBuffer* WritableBlock(size_t index, size_t from, size_t end);
  // Grows the slot vector to `count` slots (its memory was checked).
  void EnsureSlots(size_t count);
  int64_t SlotsCost(size_t count) const;
  // Charges or releases the change in slot-array bytes since `old_capacity`.
  void ChargeSlots(size_t old_capacity);
  void SetLength(BlockSlot& slot, uint32_t length);
  void Drop(size_t index, Ino ino, BlockObserver* observer);
  // Block `index` becomes the stored copy at `where` (no buffer); what it
  // held before is dropped (told to `observer`).
  void ReplaceWithStored(size_t index, uint32_t length, uint64_t version, uint64_t stored_version,
                         const BlockLocation& where, Ino ino, BlockObserver* observer);
  static size_t SlotBytes(size_t capacity);  // heap bytes of the slot array
  size_t GrownCapacity(size_t current_capacity, size_t end) const;
  // The room `bytes` more need: OK, or kNeedRoom / ENOSPC.
  Status Room(int64_t bytes, const BusyBlocks& busy);
  void MarkChanged(size_t index, const BlockChange& change);

  MemoryAccountant* accountant_;
  uint32_t block_size_;
  // Most files are one block: its slot is inline, no heap array.
  static constexpr size_t kInlineSlots = 1;
  absl::InlinedVector<BlockSlot, kInlineSlots> blocks_;
  uint64_t stored_bytes_ = 0;
};

}  // namespace keyfs
