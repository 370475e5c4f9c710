#pragma once

// FileData: a regular file's bytes as a vector of blocks (DESIGN §3).
//
// Block i covers bytes [i*block_size, (i+1)*block_size). A missing block (null)
// is a hole and reads as zeros; so do the bytes of a block past its length() and
// up to the file size. A small file is one block of its own length, not a
// block_size allocation.
//
// FileData does not know the file size; the Inode does, and passes it in. It
// charges its slot vector to the accountant (the buffers charge themselves) and
// asks the accountant before every allocation, so a write that does not fit
// fails with ENOSPC before anything is changed in the block it would touch.
//
// Owner thread only.

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <absl/container/inlined_vector.h>

#include "src/base/memory_accountant.h"
#include "src/base/status.h"
#include "src/base/block_buffer.h"

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
  std::vector<ReadSlice> Read(uint64_t offset, uint64_t length,
                              uint64_t file_size) const;

  // Writes `data` at `offset`. Returns the number of bytes written: all of
  // them, or fewer if memory ran out part way (ENOSPC if none fit).
  Result<size_t> Write(uint64_t offset, std::string_view data);

  // Drops everything at or past `new_size` (the bytes read as zero if the file
  // grows again). Never allocates more than one tail block, never fails unless
  // that copy does not fit.
  Status Truncate(uint64_t new_size);

  // Materializes zero-filled blocks over [offset, offset+length) that are holes
  // now, so that later writes there need no new memory (fallocate mode 0).
  Status Allocate(uint64_t offset, uint64_t length);

  // Makes [offset, offset+length) read as zeros, freeing whole blocks.
  Status PunchHole(uint64_t offset, uint64_t length);

  // Gives back the slack that appending left in the last block.
  void ShrinkToFit();
  // Whether ShrinkToFit() would give memory back.
  bool has_slack() const;

  // Bytes held in blocks (sum of block lengths): what st_blocks reports.
  uint64_t stored_bytes() const { return stored_bytes_; }
  size_t block_count() const { return blocks_.size(); }
  const BlockBuffer* block(size_t index) const { return blocks_[index].get(); }
  uint32_t block_size() const { return block_size_; }

 private:
  // Returns block `index` ready to be written over [0, end): unshared, with
  // capacity >= end and length >= end. Copies a shared or too small buffer.
  Result<BlockBuffer*> WritableBlock(size_t index, size_t end);
  // Makes room for `count` block slots; ENOSPC when the slot vector cannot grow.
  Status EnsureSlots(size_t count);
  // Charges or releases the change in slot-array bytes since `old_capacity`.
  void ChargeSlots(size_t old_capacity);
  void SetBlock(size_t index, RefPtr<BlockBuffer> buffer);
  static size_t SlotBytes(size_t capacity);  // heap bytes of the slot array
  size_t GrownCapacity(const BlockBuffer* old, size_t end) const;

  MemoryAccountant* accountant_;
  uint32_t block_size_;
  // Most files are one block: its slot is inline, no heap array.
  static constexpr size_t kInlineSlots = 1;
  absl::InlinedVector<RefPtr<BlockBuffer>, kInlineSlots> blocks_;
  uint64_t stored_bytes_ = 0;
};

}  // namespace keyfs
