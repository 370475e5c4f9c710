#pragma once

// The format of one saved block, shared by every store that writes blocks to
// files (the disk store's segments, the swap file). docs/store-format.md is
// the specification; keep the two in step.
//
//   record := header payload
//   header (48 bytes, little-endian):
//     magic u32 ("KFBK") | format u8 (2) | codec u8 (0 none, 1 lz4) | zero u16 |
//     ino u64 | index u64 | version u64 | raw_length u32 | payload_length u32 |
//     crc u32 | zero u32
//   payload, codec lz4: the lz4 block compression (LZ4_compress_default) of
//     the block's raw_length bytes, kept only when smaller than they are;
//     crc = masked CRC32C of header bytes 0..39 and the payload.
//   payload, codec none: the raw bytes in chunks of 4 KiB (the last one
//     shorter), each followed by its chunk crc u32 = masked CRC32C of
//     (ino u64, index u64, version u64, chunk number u32) and the chunk's
//     bytes; crc = masked CRC32C of header bytes 0..39.
//
// Chunks let a reader check a few KiB of a block without reading it whole (a
// small random read of an evicted block, DiskBlockStore::LoadRange); the
// identity in each chunk's CRC catches a read from the wrong place without
// the header. A reader checks the magic, format, lengths and CRCs, then that
// ino, index and version are the ones it asked for; anything else is EIO.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"
#include "src/base/ref_ptr.h"
#include "src/base/status.h"
#include "store/block_store.h"

namespace keyfs::block_format {

inline constexpr uint32_t kMagic = 0x4b42464b;  // "KFBK" little-endian
inline constexpr uint8_t kFormat = 2;
inline constexpr size_t kHeaderSize = 48;
inline constexpr size_t kCrcOffset = 40;
// The largest block keyfs makes (block_size is at most 16 MiB).
inline constexpr uint32_t kMaxRawLength = 16u << 20;

enum Codec : uint8_t { kNone = 0, kLz4 = 1 };

// Codec none: the chunks of a raw payload.
inline constexpr uint32_t kChunkSize = 4096;
inline constexpr uint32_t kChunkCrcSize = 4;
inline constexpr uint32_t kChunkStride = kChunkSize + kChunkCrcSize;
constexpr uint32_t ChunkCount(uint32_t raw_length) {
  return (raw_length + kChunkSize - 1) / kChunkSize;
}
// The payload length of a raw block of `raw_length` bytes.
constexpr uint32_t RawPayloadLength(uint32_t raw_length) {
  return raw_length + ChunkCount(raw_length) * kChunkCrcSize;
}
// The size of a raw record: always larger than the block, where a
// compressed one is smaller (lz4 is kept only when it saves), so the size
// alone says which a record is.
constexpr uint64_t RawRecordSize(uint32_t raw_length) {
  return kHeaderSize + RawPayloadLength(raw_length);
}

// Whether bytes [offset, offset + length) of a block of `block_length`
// bytes can be read in part from its record of `record_size` bytes: the
// record is raw (only a raw payload is chunked) and the range is a real part
// of the block. Otherwise the whole record is read.
constexpr bool ReadsInPart(uint64_t record_size, uint32_t block_length, uint32_t offset,
                           uint32_t length) {
  return record_size == RawRecordSize(block_length) && length > 0 &&
         uint64_t{offset} + length <= block_length;
}

// Checks chunks first_chunk.. of a raw payload of block `id`, as stored
// (bytes and CRCs, starting at a chunk), and copies their bytes to `out`
// (null: checks only). EIO naming `where` on a mismatch.
Status UnpackChunks(std::string_view stored, const BlockId& id, uint32_t first_chunk, char* out,
                    const std::string& where);

// Appends the record of `data` as `id` to `out`; lz4-compressed when
// `compress` and that is smaller.
void Encode(const BlockId& id, std::string_view data, bool compress, std::string* out);

// What a header says, once its own fields are checked.
struct Header {
  BlockId id;
  uint8_t codec = kNone;
  uint32_t raw_length = 0;
  uint32_t payload_length = 0;
};
// Parses the 48 bytes at `bytes`; EIO naming `where` when they are not a
// header of this format.
Result<Header> ParseHeader(std::string_view bytes, const std::string& where);

// Checks `record` (a whole header and payload) against `expected` and
// decodes it into a new buffer. EIO naming `where` on any mismatch.
Result<RefPtr<BlockBuffer>> Decode(std::string_view record, const BlockId& expected,
                                   MemoryAccountant* accountant, const std::string& where);

// Checks the CRCs of a whole record, and that it is block `expected`,
// without decoding it (a compaction copies records as they are).
Status Verify(std::string_view record, const BlockId& expected, const std::string& where);

}  // namespace keyfs::block_format
