#include "store/record_io.h"

#include <algorithm>
#include <cstring>

#include "store/block_format.h"

namespace keyfs::record_io {

std::string& Scratch() {
  thread_local std::string scratch;
  return scratch;
}

Result<std::string_view> Read(const RandomAccessFile& file, uint64_t offset, uint32_t size,
                              const std::string& place) {
  std::string& record = Scratch();
  if (record.size() < size) record.resize(size);
  ASSIGN_OR_RETURN(size_t got, file.ReadAt(offset, size, record.data()));
  if (got != size) return Status::Errno(EIO, "damaged block at " + place + ": the file ends first");
  return std::string_view(record.data(), size);
}

Result<RefPtr<BlockBuffer>> ReadRange(const RandomAccessFile& file, uint64_t record_offset,
                                      const BlockId& id, uint32_t block_length, uint32_t offset,
                                      uint32_t length, MemoryAccountant* accountant,
                                      const std::string& place) {
  using namespace block_format;
  uint32_t first = offset / kChunkSize;
  uint32_t last = (offset + length - 1) / kChunkSize;
  uint64_t record_end = record_offset + RawRecordSize(block_length);
  uint64_t from = record_offset + kHeaderSize + uint64_t{first} * kChunkStride;
  uint64_t to = std::min<uint64_t>(record_end,
                                   record_offset + kHeaderSize + uint64_t{last + 1} * kChunkStride);
  ASSIGN_OR_RETURN(std::string_view stored,
                   Read(file, from, static_cast<uint32_t>(to - from), place));
  thread_local std::string unpacked;
  unpacked.resize(std::min(block_length, (last + 1) * kChunkSize) - first * kChunkSize);
  RETURN_IF_ERROR(UnpackChunks(stored, id, first, unpacked.data(), place));
  RefPtr<BlockBuffer> range = BlockBuffer::CreateForFill(accountant, length);
  std::memcpy(range->mutable_data(), unpacked.data() + (offset - first * kChunkSize), length);
  return range;
}

}  // namespace keyfs::record_io
