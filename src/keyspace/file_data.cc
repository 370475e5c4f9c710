#include "src/keyspace/file_data.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace keyfs {

FileData::FileData(MemoryAccountant* accountant, uint32_t block_size)
    : accountant_(accountant), block_size_(block_size) {}

FileData::~FileData() {
  accountant_->Release(MemoryComponent::kBlocks, SlotBytes(blocks_.capacity()));
}

FileData::FileData(FileData&& other) noexcept
    : accountant_(other.accountant_),
      block_size_(other.block_size_),
      blocks_(std::move(other.blocks_)),
      stored_bytes_(other.stored_bytes_) {
  // The moved-from InlinedVector is left empty with no heap array: it is
  // charged nothing, and its destructor releases nothing.
  other.stored_bytes_ = 0;
  other.blocks_ = {};
}

size_t FileData::SlotBytes(size_t capacity) {
  // One slot lives inside the FileData; more take a heap array.
  return capacity <= kInlineSlots ? 0 : HeapChunk(capacity * sizeof(BlockSlot));
}

void FileData::ChargeSlots(size_t old_capacity) {
  size_t before = SlotBytes(old_capacity), now = SlotBytes(blocks_.capacity());
  if (now > before) {
    accountant_->Charge(MemoryComponent::kBlocks, now - before);
  } else {
    accountant_->Release(MemoryComponent::kBlocks, before - now);
  }
}

int64_t FileData::SlotsCost(size_t count) const {
  if (blocks_.capacity() >= count) return 0;
  size_t capacity = std::max(count, blocks_.capacity() * 2);
  return static_cast<int64_t>(SlotBytes(capacity)) -
         static_cast<int64_t>(SlotBytes(blocks_.capacity()));
}

void FileData::EnsureSlots(size_t count) {
  if (blocks_.size() >= count) return;
  size_t old_capacity = blocks_.capacity();
  if (old_capacity < count) blocks_.reserve(std::max(count, old_capacity * 2));
  blocks_.resize(count);
  ChargeSlots(old_capacity);
}

void FileData::SetLength(BlockSlot& slot, uint32_t length) {
  stored_bytes_ = stored_bytes_ - slot.length + length;
  slot.length = length;
}

Status FileData::Room(int64_t bytes, const BusyBlocks& busy) {
  if (bytes <= 0) return Status::Ok();
  switch (accountant_->RoomFor(static_cast<uint64_t>(bytes), busy)) {
    case keyfs::Room::kYes: return Status::Ok();
    case keyfs::Room::kLater: return Status::Errno(kNeedRoom);
    case keyfs::Room::kNo: break;
  }
  return Status::Errno(ENOSPC);
}

void FileData::MarkChanged(size_t index, const BlockChange& change) {
  BlockSlot& slot = blocks_[index];
  bool was_dirty = slot.dirty;
  slot.version = change.version;
  slot.dirty = true;
  slot.buffer->Touch();
  if (change.observer) change.observer->Dirtied(change.ino, index, slot, was_dirty);
}

void FileData::Drop(size_t index, Ino ino, BlockObserver* observer) {
  BlockSlot& slot = blocks_[index];
  if (slot.hole()) return;
  if (observer) observer->Dropping(ino, index, slot);
  SetLength(slot, 0);
  slot = BlockSlot();
}

Result<std::vector<ReadSlice>> FileData::Read(uint64_t offset, uint64_t length,
                                              uint64_t file_size,
                                              std::vector<uint64_t>* missing,
                                              const std::vector<LoadedRange>* ranges) const {
  std::vector<ReadSlice> slices;
  if (offset >= file_size || length == 0) return slices;
  uint64_t end = std::min(file_size, offset + length);
  // The loaded range that holds bytes [in_block, in_block + n) of evicted
  // block `index`, or null.
  auto range_for = [&](size_t index, size_t in_block, size_t n) -> const LoadedRange* {
    if (!ranges) return nullptr;
    const BlockSlot& slot = blocks_[index];
    for (const LoadedRange& range : *ranges) {
      if (range.key.index == index && range.version == slot.stored_version &&
          range.offset <= in_block && in_block + n <= range.offset + range.bytes->length()) {
        return &range;
      }
    }
    return nullptr;
  };
  size_t missing_before = missing->size();
  for (uint64_t pos = offset; pos < end;) {
    size_t index = pos / block_size_;
    size_t in_block = pos % block_size_;
    if (index < blocks_.size() && blocks_[index].evicted() && in_block < blocks_[index].length) {
      size_t n = std::min<uint64_t>({block_size_ - in_block, end - pos,
                                     blocks_[index].length - in_block});
      if (!range_for(index, in_block, n)) missing->push_back(index);
    }
    pos = (uint64_t{index} + 1) * block_size_;
  }
  if (missing->size() > missing_before) return Status::Errno(kNeedBlocks);
  while (offset < end) {
    size_t index = offset / block_size_;
    size_t in_block = offset % block_size_;
    size_t chunk = std::min<uint64_t>(block_size_ - in_block, end - offset);
    const BlockSlot* slot = index < blocks_.size() ? &blocks_[index] : nullptr;
    if (slot && !slot->hole() && in_block < slot->length) {
      size_t from_block = std::min<size_t>(chunk, slot->length - in_block);
      if (slot->resident()) {
        slot->buffer->Touch();
        slices.push_back({slot->buffer, in_block, from_block});
      } else {
        const LoadedRange* range = range_for(index, in_block, from_block);
        slices.push_back({range->bytes, in_block - range->offset, from_block});
      }
      if (from_block < chunk) slices.push_back({nullptr, 0, chunk - from_block});
    } else {
      slices.push_back({nullptr, 0, chunk});
    }
    offset += chunk;
  }
  return slices;
}

uint64_t FileData::Footprint(size_t first, size_t last) const {
  uint64_t bytes = 0;
  for (size_t index = first; index <= last && index < blocks_.size(); ++index) {
    const BlockSlot& slot = blocks_[index];
    if (!slot.hole()) bytes += BlockBuffer::ChargeFor(slot.length);
  }
  return bytes;
}

uint64_t FileData::FootprintAfterWrite(uint64_t offset, uint64_t length) const {
  if (length == 0) return 0;
  uint64_t bytes = 0;
  for (uint64_t index = offset / block_size_; index <= (offset + length - 1) / block_size_;
       ++index) {
    uint64_t block_start = index * block_size_;
    uint64_t end = std::min<uint64_t>(offset + length - block_start, block_size_);
    uint64_t old = index < blocks_.size() && !blocks_[index].hole() ? blocks_[index].length : 0;
    bytes += BlockBuffer::ChargeFor(std::max(old, end));
  }
  return bytes;
}

size_t FileData::GrownCapacity(size_t current_capacity, size_t end) const {
  // Appending doubles the capacity (amortized O(1) copies); a write that lands
  // in a fresh block gets exactly what it needs, so a small file written in
  // one go costs its own length. ShrinkToFit() trims the slack later.
  size_t doubled = current_capacity ? std::max<size_t>(current_capacity * 2, 4096) : 0;
  return std::min<size_t>(block_size_, std::max(end, doubled));
}

int64_t FileData::WriteCost(size_t index, size_t end) const {
  const BlockSlot* slot = index < blocks_.size() ? &blocks_[index] : nullptr;
  const BlockBuffer* current = slot ? slot->buffer.get() : nullptr;
  bool unshared = current && slot->buffer.use_count() == 1;
  if (current && unshared && current->capacity() >= end) return 0;
  size_t length = std::max<size_t>(end, slot ? slot->length : 0);
  size_t capacity = current && current->capacity() >= length
                        ? current->capacity()
                        : GrownCapacity(current ? current->capacity() : 0, length);
  int64_t needed = static_cast<int64_t>(BlockBuffer::ChargeFor(capacity));
  // Replacing an unshared buffer frees it right after; count that.
  int64_t freed = unshared ? static_cast<int64_t>(current->ChargedBytes()) : 0;
  return needed - freed;
}

BlockBuffer* FileData::WritableBlock(size_t index, size_t from, size_t end) {
  assert(from <= end && end <= block_size_);
  BlockSlot& slot = blocks_[index];
  BlockBuffer* current = slot.buffer.get();
  bool unshared = current && slot.buffer.use_count() == 1;
  if (current && unshared && current->capacity() >= end) {
    // Bytes past the slot's length (left by a truncation) read as zeros.
    if (current->length() > slot.length) current->Resize(slot.length);
    if (current->length() < end) current->Resize(end);
    SetLength(slot, static_cast<uint32_t>(std::max<size_t>(slot.length, end)));
    return current;
  }
  size_t keep = current ? std::min<size_t>(current->length(), slot.length) : 0;
  size_t length = std::max<size_t>(end, slot.length);
  size_t capacity = current && current->capacity() >= length
                        ? current->capacity()
                        : GrownCapacity(current ? current->capacity() : 0, length);
  RefPtr<BlockBuffer> fresh;
  if (current) {
    fresh = BlockBuffer::CopyOf(accountant_, *current, keep, capacity);
    fresh->Resize(length);
  } else {
    // A new block: zeros only where the caller does not write at once (a
    // whole small file, or a replayed block, is not zeroed to be overwritten).
    fresh = BlockBuffer::Create(accountant_, capacity, from);
    fresh->GrowForFill(end);
    fresh->Resize(length);
  }
  BlockBuffer* raw = fresh.get();
  slot.buffer = std::move(fresh);
  SetLength(slot, static_cast<uint32_t>(length));
  return raw;
}

Result<size_t> FileData::Write(uint64_t offset, std::string_view data, const BlockChange& change,
                               std::vector<uint64_t>* missing) {
  if (data.empty()) return size_t{0};
  size_t first = offset / block_size_;
  size_t last = (offset + data.size() - 1) / block_size_;
  // 1. The old bytes it keeps must be here.
  size_t missing_before = missing->size();
  for (size_t index = first; index <= last; ++index) {
    if (index >= blocks_.size() || !blocks_[index].evicted()) continue;
    uint64_t block_start = uint64_t{index} * block_size_;
    uint64_t from = std::max(offset, block_start) - block_start;
    uint64_t to = std::min<uint64_t>(offset + data.size() - block_start, block_size_);
    bool keeps_old = from > 0 || to < blocks_[index].length;
    if (keeps_old) missing->push_back(index);
  }
  if (missing->size() > missing_before) return Status::Errno(kNeedBlocks);
  // 2. The memory it takes must be there.
  int64_t cost = SlotsCost(last + 1);
  for (size_t index = first; index <= last; ++index) {
    uint64_t block_start = uint64_t{index} * block_size_;
    size_t end = static_cast<size_t>(
        std::min<uint64_t>(offset + data.size() - block_start, block_size_));
    cost += WriteCost(index, end);
  }
  RETURN_IF_ERROR(Room(cost, BusyBlocks{change.ino, first, last}));
  // 3. Nothing can fail from here on.
  EnsureSlots(last + 1);
  size_t written = 0;
  while (written < data.size()) {
    uint64_t pos = offset + written;
    size_t index = pos / block_size_;
    size_t in_block = pos % block_size_;
    size_t chunk = std::min<size_t>(block_size_ - in_block, data.size() - written);
    BlockBuffer* block = WritableBlock(index, in_block, in_block + chunk);
    std::memcpy(block->mutable_data() + in_block, data.data() + written, chunk);
    MarkChanged(index, change);
    written += chunk;
  }
  return written;
}

Result<std::vector<RefPtr<BlockBuffer>>> FileData::CopyWholeBlocks(size_t first,
                                                                   std::string_view data,
                                                                   const BlockChange& change) {
  assert(data.size() % block_size_ == 0 && !data.empty());
  size_t count = data.size() / block_size_;
  RETURN_IF_ERROR(Room(static_cast<int64_t>(count * BlockBuffer::ChargeFor(block_size_)),
                       BusyBlocks{change.ino, first, first + count - 1}));
  std::vector<RefPtr<BlockBuffer>> copies;
  copies.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    RefPtr<BlockBuffer> copy = BlockBuffer::CreateForFill(accountant_, block_size_);
    std::memcpy(copy->mutable_data(), data.data() + i * block_size_, block_size_);
    copies.push_back(std::move(copy));
  }
  return copies;
}

Status FileData::WriteStored(size_t first, std::span<const StoredBlock> blocks,
                             const BlockChange& change) {
  size_t end = first + blocks.size();
  RETURN_IF_ERROR(Room(SlotsCost(end), BusyBlocks{change.ino, first, end - 1}));
  EnsureSlots(end);  // what Room checked
  for (size_t i = 0; i < blocks.size(); ++i) {
    size_t index = first + i;
    const StoredBlock& block = blocks[i];
    ReplaceWithStored(index, static_cast<uint32_t>(block.buffer->length()), change.version + i,
                      block.stored_version, block.where, change.ino, change.observer);
    BlockSlot& slot = blocks_[index];
    slot.buffer = block.buffer;
    slot.buffer->Touch();
    if (change.observer) change.observer->Stored(change.ino, index, slot);
  }
  return Status::Ok();
}

void FileData::RestoreWriteStored(size_t index, uint32_t length, uint64_t version,
                                  uint64_t stored_version, const BlockLocation& where) {
  // Replay: the slot vector's memory is checked by the replay's budget.
  ReplaceWithStored(index, length, version, stored_version, where, 0, nullptr);
}

void FileData::ReplaceWithStored(size_t index, uint32_t length, uint64_t version,
                                 uint64_t stored_version, const BlockLocation& where, Ino ino,
                                 BlockObserver* observer) {
  EnsureSlots(index + 1);
  Drop(index, ino, observer);
  RestoreStored(index, length, version, stored_version, where);
}

void FileData::Truncate(uint64_t new_size, const BlockChange& change) {
  size_t keep_blocks = (new_size + block_size_ - 1) / block_size_;
  if (keep_blocks < blocks_.size()) {
    size_t old_capacity = blocks_.capacity();
    for (size_t i = keep_blocks; i < blocks_.size(); ++i) Drop(i, change.ino, change.observer);
    blocks_.resize(keep_blocks);
    blocks_.shrink_to_fit();
    ChargeSlots(old_capacity);
  }
  size_t tail = new_size % block_size_;
  if (tail == 0 || keep_blocks == 0 || keep_blocks > blocks_.size()) return;
  BlockSlot& slot = blocks_[keep_blocks - 1];
  if (slot.length <= tail) return;
  // The block keeps its buffer or stored copy; only its first `tail` bytes
  // count from now on (block_slot.h, 1). Its version stays: a copy of it is
  // still that copy, cut shorter.
  SetLength(slot, static_cast<uint32_t>(tail));
  if (slot.resident() && slot.buffer.use_count() == 1 && slot.buffer->length() > tail) {
    slot.buffer->Resize(tail);
  }
}

Status FileData::PunchHole(uint64_t offset, uint64_t length, const BlockChange& change,
                           std::vector<uint64_t>* missing) {
  uint64_t end = offset + length;
  struct Cut {
    size_t index;
    size_t from, to;  // zeroed within the block
  };
  std::vector<size_t> drops;
  std::vector<Cut> cuts;
  size_t missing_before = missing->size();
  int64_t cost = 0;
  for (size_t index = offset / block_size_;
       index < blocks_.size() && uint64_t{index} * block_size_ < end; ++index) {
    const BlockSlot& slot = blocks_[index];
    if (slot.hole()) continue;
    uint64_t block_start = uint64_t{index} * block_size_;
    size_t from = offset > block_start ? offset - block_start : 0;
    size_t to = std::min<uint64_t>(slot.length, end - block_start);
    if (from >= to) continue;
    if (from == 0 && to >= slot.length) {
      drops.push_back(index);  // the whole stored part goes
    } else if (slot.evicted()) {
      missing->push_back(index);
    } else {
      cuts.push_back({index, from, to});
      cost += WriteCost(index, slot.length);
    }
  }
  if (missing->size() > missing_before) return Status::Errno(kNeedBlocks);
  RETURN_IF_ERROR(Room(cost, BusyBlocks{change.ino, offset / block_size_,
                                        end == 0 ? 0 : (end - 1) / block_size_}));
  for (size_t index : drops) Drop(index, change.ino, change.observer);
  for (const Cut& cut : cuts) {
    BlockBuffer* block = WritableBlock(cut.index, blocks_[cut.index].length,
                                       blocks_[cut.index].length);
    std::memset(block->mutable_data() + cut.from, 0, cut.to - cut.from);
    MarkChanged(cut.index, change);
  }
  return Status::Ok();
}

void FileData::DropAll(Ino ino, BlockObserver* observer) {
  for (size_t i = 0; i < blocks_.size(); ++i) Drop(i, ino, observer);
}

void FileData::RestoreStored(size_t index, uint32_t length, uint64_t version,
                             uint64_t stored_version, const BlockLocation& where) {
  EnsureSlots(index + 1);
  BlockSlot& slot = blocks_[index];
  assert(slot.hole());
  SetLength(slot, length);
  slot.version = version;
  slot.stored_version = stored_version;
  slot.stored = where;
}

bool FileData::Install(size_t index, RefPtr<BlockBuffer> buffer, const BlockLocation& from) {
  if (index >= blocks_.size()) return false;
  BlockSlot& slot = blocks_[index];
  if (!slot.evicted() || !(slot.stored == from) || buffer->length() < slot.length) return false;
  // The stored copy may be longer than the block (block_slot.h, 1).
  if (buffer->length() > slot.length) buffer->Resize(slot.length);
  slot.buffer = std::move(buffer);
  slot.dirty = false;
  return true;
}

bool FileData::has_slack() const {
  if (blocks_.empty() || !blocks_.back().resident()) return false;
  const BlockSlot& last = blocks_.back();
  // Only worth a copy when malloc would hand back a smaller chunk.
  return HeapChunk(last.length) < HeapChunk(last.buffer->capacity());
}

void FileData::ShrinkToFit() {
  if (!has_slack() || blocks_.back().buffer.use_count() != 1) return;
  BlockSlot& last = blocks_.back();
  last.buffer = BlockBuffer::CopyOf(accountant_, *last.buffer, last.length, last.length);
}

}  // namespace keyfs
