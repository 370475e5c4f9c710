#include "store/block_format.h"

#include <lz4.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace keyfs::block_format {

namespace {

Status Damaged(const std::string& where, std::string_view what) {
  return Status::Errno(EIO, fmt::format("damaged block at {}: {}", where, what));
}

// The record CRC: the header's first 40 bytes, and a compressed payload (a
// raw one is covered chunk by chunk).
uint32_t RecordCrc(std::string_view header, std::string_view compressed_payload) {
  uint32_t crc = crc32c::Value(header.data(), kCrcOffset);
  crc = crc32c::Extend(crc, compressed_payload.data(), compressed_payload.size());
  return crc32c::Mask(crc);
}

uint32_t ChunkCrc(const BlockId& id, uint32_t chunk, const char* data, size_t n) {
  char seed[28];
  EncodeFixed64(seed, id.ino);
  EncodeFixed64(seed + 8, id.index);
  EncodeFixed64(seed + 16, id.version);
  EncodeFixed32(seed + 24, chunk);
  return crc32c::Mask(crc32c::Extend(crc32c::Value(seed, sizeof seed), data, n));
}

std::string BlockName(const BlockId& id) {
  return fmt::format("block {} of inode {} version {}", id.index, id.ino, id.version);
}

// Whether lz4 is worth trying on `data`: blocks of incompressible bytes
// (media, archives, encrypted or random data) are most of a big store, and
// lz4 spends as long failing on them as the rest of a SAVE takes. A few
// samples decide (the early-abort heuristics of btrfs and ZFS do the same):
// if none of them shrinks by an eighth, the block is stored raw.
bool WorthCompressing(std::string_view data) {
  constexpr size_t kSample = 4096;
  if (data.size() <= 4 * kSample) return true;  // small: just try
  char out[LZ4_COMPRESSBOUND(kSample)];
  for (size_t at : {size_t{0}, data.size() / 2 - kSample / 2, data.size() - kSample}) {
    int n = LZ4_compress_default(data.data() + at, out, static_cast<int>(kSample), sizeof(out));
    if (n > 0 && static_cast<size_t>(n) < kSample - kSample / 8) return true;
  }
  return false;
}

}  // namespace

void Encode(const BlockId& id, std::string_view data, bool compress, std::string* out) {
  size_t start = out->size();
  out->resize(start + kHeaderSize);
  uint8_t codec = kNone;
  size_t payload = 0;
  if (compress && !data.empty() && WorthCompressing(data)) {
    int bound = LZ4_compressBound(static_cast<int>(data.size()));
    out->resize(start + kHeaderSize + static_cast<size_t>(bound));
    int n = LZ4_compress_default(data.data(), out->data() + start + kHeaderSize,
                                 static_cast<int>(data.size()), bound);
    if (n > 0 && static_cast<size_t>(n) < data.size()) {
      codec = kLz4;
      payload = static_cast<size_t>(n);
    }
  }
  if (codec == kNone) {
    uint32_t raw = static_cast<uint32_t>(data.size());
    payload = RawPayloadLength(raw);
    out->resize(start + kHeaderSize + payload);
    char* to = out->data() + start + kHeaderSize;
    for (uint32_t chunk = 0; chunk < ChunkCount(raw); ++chunk) {
      size_t at = size_t{chunk} * kChunkSize;
      size_t n = std::min<size_t>(kChunkSize, data.size() - at);
      std::memcpy(to, data.data() + at, n);
      EncodeFixed32(to + n, ChunkCrc(id, chunk, data.data() + at, n));
      to += n + kChunkCrcSize;
    }
  }
  out->resize(start + kHeaderSize + payload);
  char* p = out->data() + start;
  EncodeFixed32(p, kMagic);
  p[4] = static_cast<char>(kFormat);
  p[5] = static_cast<char>(codec);
  p[6] = p[7] = 0;
  EncodeFixed64(p + 8, id.ino);
  EncodeFixed64(p + 16, id.index);
  EncodeFixed64(p + 24, id.version);
  EncodeFixed32(p + 32, static_cast<uint32_t>(data.size()));
  EncodeFixed32(p + 36, static_cast<uint32_t>(payload));
  EncodeFixed32(p + 44, 0);
  std::string_view header(p, kHeaderSize);
  std::string_view compressed =
      codec == kLz4 ? std::string_view(p + kHeaderSize, payload) : std::string_view();
  EncodeFixed32(p + kCrcOffset, RecordCrc(header, compressed));
}

Status UnpackChunks(std::string_view stored, const BlockId& id, uint32_t first_chunk, char* out,
                    const std::string& where) {
  uint32_t chunk = first_chunk;
  while (!stored.empty()) {
    if (stored.size() <= kChunkCrcSize) return Damaged(where, "a chunk is cut short");
    size_t n = std::min<size_t>(kChunkSize, stored.size() - kChunkCrcSize);
    if (DecodeFixed32(stored.data() + n) != ChunkCrc(id, chunk, stored.data(), n)) {
      return Damaged(where, fmt::format("checksum mismatch in chunk {} of {} (or it holds "
                                        "another block)",
                                        chunk, BlockName(id)));
    }
    if (out) {
      std::memcpy(out, stored.data(), n);
      out += n;
    }
    stored.remove_prefix(n + kChunkCrcSize);
    ++chunk;
  }
  return Status::Ok();
}

Result<Header> ParseHeader(std::string_view bytes, const std::string& where) {
  if (bytes.size() < kHeaderSize) return Damaged(where, "shorter than a block header");
  const char* p = bytes.data();
  if (DecodeFixed32(p) != kMagic) return Damaged(where, "no block header there (bad magic)");
  if (static_cast<uint8_t>(p[4]) != kFormat) {
    return Damaged(where, fmt::format("block format {} (this keyfs reads {})",
                                      static_cast<unsigned>(static_cast<uint8_t>(p[4])), kFormat));
  }
  Header header;
  header.codec = static_cast<uint8_t>(p[5]);
  header.id = {DecodeFixed64(p + 8), DecodeFixed64(p + 16), DecodeFixed64(p + 24)};
  header.raw_length = DecodeFixed32(p + 32);
  header.payload_length = DecodeFixed32(p + 36);
  if (header.codec > kLz4) return Damaged(where, "unknown codec");
  if (header.raw_length > kMaxRawLength || header.payload_length > kMaxRawLength + 65536 ||
      (header.codec == kNone && header.payload_length != RawPayloadLength(header.raw_length)) ||
      (header.codec == kLz4 && header.payload_length >= header.raw_length)) {
    return Damaged(where, "impossible lengths");
  }
  return header;
}

namespace {
// What Verify and Decode both check: the header is block `expected`, the
// payload has the header's length, and the CRCs hold. A raw payload's bytes
// are copied to `out` (when not null) as they are checked.
Status Check(std::string_view record, const Header& header, const BlockId& expected, char* out,
             const std::string& where) {
  std::string_view header_bytes = record.substr(0, kHeaderSize);
  std::string_view payload = record.substr(kHeaderSize);
  if (payload.size() != header.payload_length) {
    return Damaged(where, "record length does not match its header");
  }
  std::string_view compressed = header.codec == kLz4 ? payload : std::string_view();
  if (DecodeFixed32(header_bytes.data() + kCrcOffset) != RecordCrc(header_bytes, compressed)) {
    return Damaged(where, "checksum mismatch");
  }
  if (!(header.id == expected)) {
    return Damaged(where, fmt::format("it holds {}, not {}", BlockName(header.id),
                                      BlockName(expected)));
  }
  if (header.codec != kNone) return Status::Ok();
  return UnpackChunks(payload, expected, 0, out, where);
}
}  // namespace

Status Verify(std::string_view record, const BlockId& expected, const std::string& where) {
  ASSIGN_OR_RETURN(Header header, ParseHeader(record, where));
  return Check(record, header, expected, nullptr, where);
}

Result<RefPtr<BlockBuffer>> Decode(std::string_view record, const BlockId& expected,
                                   MemoryAccountant* accountant, const std::string& where) {
  ASSIGN_OR_RETURN(Header header, ParseHeader(record, where));
  RefPtr<BlockBuffer> buffer = BlockBuffer::CreateForFill(accountant, header.raw_length);
  RETURN_IF_ERROR(Check(record, header, expected,
                        header.codec == kNone ? buffer->mutable_data() : nullptr, where));
  if (header.codec == kLz4) {
    int n = LZ4_decompress_safe(record.data() + kHeaderSize, buffer->mutable_data(),
                                static_cast<int>(header.payload_length),
                                static_cast<int>(header.raw_length));
    if (n < 0 || static_cast<uint32_t>(n) != header.raw_length) {
      return Damaged(where, "lz4 payload does not decompress to its length");
    }
  }
  return buffer;
}

}  // namespace keyfs::block_format
