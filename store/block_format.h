#pragma once

// The format of one saved block, shared by every store that writes blocks to
// files (the disk store's segments, the swap file). docs/store-format.md is
// the specification; keep the two in step.
//
//   record := header payload
//   header (48 bytes, little-endian):
//     magic u32 ("KFBK") | format u8 (1) | codec u8 (0 none, 1 lz4) | zero u16 |
//     ino u64 | index u64 | version u64 | raw_length u32 | payload_length u32 |
//     crc u32 (masked CRC32C of header bytes 0..39 and the payload) | zero u32
//   payload: the block's raw_length bytes, or their lz4 block compression
//     (LZ4_compress_default) when that is smaller
//
// A reader checks the magic, format, lengths and CRC, then that ino, index
// and version are the ones it asked for; anything else is EIO.

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
inline constexpr uint8_t kFormat = 1;
inline constexpr size_t kHeaderSize = 48;
inline constexpr size_t kCrcOffset = 40;
// The largest block keyfs makes (block_size is at most 16 MiB).
inline constexpr uint32_t kMaxRawLength = 16u << 20;

enum Codec : uint8_t { kNone = 0, kLz4 = 1 };

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

// Checks a record read in two parts (a raw payload read straight into the
// block's buffer): the header's bytes, as parsed into `header`, and the
// payload, for their CRC and for being block `expected`. EIO naming `where`.
Status VerifyParts(std::string_view header_bytes, const Header& header,
                   std::string_view payload, const BlockId& expected, const std::string& where);

// Checks the CRC of a whole record without decoding it (a compaction copies
// records as they are).
Status Verify(std::string_view record, const std::string& where);

}  // namespace keyfs::block_format
