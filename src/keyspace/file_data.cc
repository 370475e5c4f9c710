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
  return capacity <= kInlineSlots ? 0 : HeapChunk(capacity * sizeof(RefPtr<BlockBuffer>));
}

void FileData::ChargeSlots(size_t old_capacity) {
  size_t before = SlotBytes(old_capacity), now = SlotBytes(blocks_.capacity());
  if (now > before) {
    accountant_->Charge(MemoryComponent::kBlocks, now - before);
  } else {
    accountant_->Release(MemoryComponent::kBlocks, before - now);
  }
}

Status FileData::EnsureSlots(size_t count) {
  if (blocks_.size() >= count) return Status::Ok();
  size_t old_capacity = blocks_.capacity();
  if (old_capacity < count) {
    size_t capacity = std::max(count, old_capacity * 2);
    size_t bytes = SlotBytes(capacity), charged = SlotBytes(old_capacity);
    if (bytes > charged && !accountant_->HasRoomFor(bytes - charged)) {
      return Status::Errno(ENOSPC);
    }
    blocks_.reserve(capacity);
  }
  blocks_.resize(count);
  ChargeSlots(old_capacity);
  return Status::Ok();
}

void FileData::SetBlock(size_t index, RefPtr<BlockBuffer> buffer) {
  auto& slot = blocks_[index];
  if (slot) stored_bytes_ -= slot->length();
  if (buffer) stored_bytes_ += buffer->length();
  slot = std::move(buffer);
}

std::vector<ReadSlice> FileData::Read(uint64_t offset, uint64_t length,
                                      uint64_t file_size) const {
  std::vector<ReadSlice> slices;
  if (offset >= file_size) return slices;
  uint64_t end = std::min(file_size, offset + length);
  while (offset < end) {
    size_t index = offset / block_size_;
    size_t in_block = offset % block_size_;
    size_t chunk = std::min<uint64_t>(block_size_ - in_block, end - offset);
    const BlockBuffer* buffer = index < blocks_.size() ? blocks_[index].get() : nullptr;
    if (buffer && in_block < buffer->length()) {
      size_t from_buffer = std::min(chunk, buffer->length() - in_block);
      slices.push_back({blocks_[index], in_block, from_buffer});
      if (from_buffer < chunk) slices.push_back({nullptr, 0, chunk - from_buffer});
    } else {
      slices.push_back({nullptr, 0, chunk});
    }
    offset += chunk;
  }
  return slices;
}

size_t FileData::GrownCapacity(const BlockBuffer* old, size_t end) const {
  // Appending doubles the capacity (amortized O(1) copies); a write that lands
  // in a fresh block gets exactly what it needs, so a small file written in
  // one go costs its own length. ShrinkToFit() trims the slack on close.
  size_t doubled = old ? std::max<size_t>(old->capacity() * 2, 4096) : 0;
  return std::min<size_t>(block_size_, std::max(end, doubled));
}

Result<BlockBuffer*> FileData::WritableBlock(size_t index, size_t end) {
  assert(end <= block_size_);
  BlockBuffer* current = blocks_[index].get();
  bool unshared = blocks_[index].use_count() == 1;
  if (current && unshared && current->capacity() >= end) {
    if (current->length() < end) {
      stored_bytes_ += end - current->length();
      current->Resize(end);
    }
    return current;
  }
  size_t length = std::max(end, current ? current->length() : 0);
  size_t capacity = current && current->capacity() >= length
                        ? current->capacity()
                        : GrownCapacity(current, length);
  size_t needed = BlockBuffer::ChargeFor(capacity);
  // Replacing an unshared buffer frees it right after; count that.
  size_t freed = current && unshared ? current->ChargedBytes() : 0;
  if (needed > freed && !accountant_->HasRoomFor(needed - freed)) {
    return Status::Errno(ENOSPC);
  }
  auto fresh = current ? BlockBuffer::CopyOf(accountant_, *current, length, capacity)
                       : BlockBuffer::Create(accountant_, capacity, length);
  BlockBuffer* raw = fresh.get();
  SetBlock(index, std::move(fresh));
  return raw;
}

Result<size_t> FileData::Write(uint64_t offset, std::string_view data) {
  size_t written = 0;
  if (data.empty()) return written;
  RETURN_IF_ERROR(EnsureSlots((offset + data.size() - 1) / block_size_ + 1));
  while (written < data.size()) {
    uint64_t pos = offset + written;
    size_t index = pos / block_size_;
    size_t in_block = pos % block_size_;
    size_t chunk = std::min<size_t>(block_size_ - in_block, data.size() - written);
    auto block = WritableBlock(index, in_block + chunk);
    if (!block.ok()) {
      if (written > 0) break;  // a short write; the caller sees the count
      return block.status();
    }
    std::memcpy((*block)->mutable_data() + in_block, data.data() + written, chunk);
    written += chunk;
  }
  return written;
}

Status FileData::Truncate(uint64_t new_size) {
  size_t keep_blocks = (new_size + block_size_ - 1) / block_size_;
  if (keep_blocks < blocks_.size()) {
    size_t old_capacity = blocks_.capacity();
    for (size_t i = keep_blocks; i < blocks_.size(); ++i) SetBlock(i, nullptr);
    blocks_.resize(keep_blocks);
    blocks_.shrink_to_fit();
    ChargeSlots(old_capacity);
  }
  size_t tail = new_size % block_size_;
  if (tail == 0 || keep_blocks == 0) return Status::Ok();
  size_t last = keep_blocks - 1;
  BlockBuffer* buffer = last < blocks_.size() ? blocks_[last].get() : nullptr;
  if (!buffer || buffer->length() <= tail) return Status::Ok();
  if (blocks_[last].use_count() == 1) {
    stored_bytes_ -= buffer->length() - tail;
    buffer->Resize(tail);
    return Status::Ok();
  }
  size_t needed = BlockBuffer::ChargeFor(tail);
  if (!accountant_->HasRoomFor(needed)) return Status::Errno(ENOSPC);
  SetBlock(last, BlockBuffer::CopyOf(accountant_, *buffer, tail, tail));
  return Status::Ok();
}

Status FileData::Allocate(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Ok();
  uint64_t end = offset + length;
  RETURN_IF_ERROR(EnsureSlots((end - 1) / block_size_ + 1));
  for (size_t index = offset / block_size_; index * uint64_t{block_size_} < end;
       ++index) {
    uint64_t block_start = index * uint64_t{block_size_};
    size_t want = std::min<uint64_t>(block_size_, end - block_start);
    const BlockBuffer* current = blocks_[index].get();
    if (current && current->length() >= want) continue;
    auto block = WritableBlock(index, want);
    if (!block.ok()) return block.status();
  }
  return Status::Ok();
}

Status FileData::PunchHole(uint64_t offset, uint64_t length) {
  uint64_t end = offset + length;
  for (size_t index = offset / block_size_;
       index < blocks_.size() && index * uint64_t{block_size_} < end; ++index) {
    const BlockBuffer* current = blocks_[index].get();
    if (!current) continue;
    uint64_t block_start = index * uint64_t{block_size_};
    size_t from = offset > block_start ? offset - block_start : 0;
    size_t to = std::min<uint64_t>(current->length(), end - block_start);
    if (from == 0 && to >= current->length()) {
      SetBlock(index, nullptr);  // the whole stored part goes
    } else if (from < to) {
      auto block = WritableBlock(index, current->length());
      if (!block.ok()) return block.status();
      std::memset((*block)->mutable_data() + from, 0, to - from);
    }
  }
  return Status::Ok();
}

bool FileData::has_slack() const {
  if (blocks_.empty() || !blocks_.back()) return false;
  const BlockBuffer& last = *blocks_.back();
  // Only worth a copy when malloc would hand back a smaller chunk.
  return HeapChunk(last.length()) < HeapChunk(last.capacity());
}

void FileData::ShrinkToFit() {
  if (!has_slack() || blocks_.back().use_count() != 1) return;
  auto& last = blocks_.back();
  SetBlock(blocks_.size() - 1,
           BlockBuffer::CopyOf(accountant_, *last, last->length(), last->length()));
}

}  // namespace keyfs
