#include "store/block_format.h"

#include <lz4.h>

#include <fmt/format.h>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace keyfs::block_format {

namespace {

Status Damaged(const std::string& where, std::string_view what) {
  return Status::Errno(EIO, fmt::format("damaged block at {}: {}", where, what));
}

uint32_t RecordCrc(std::string_view header, std::string_view payload) {
  uint32_t crc = crc32c::Value(header.data(), kCrcOffset);
  crc = crc32c::Extend(crc, payload.data(), payload.size());
  return crc32c::Mask(crc);
}
uint32_t RecordCrc(std::string_view record) {
  return RecordCrc(record.substr(0, kHeaderSize), record.substr(kHeaderSize));
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
  size_t payload = data.size();
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
  out->resize(start + kHeaderSize + payload);
  char* p = out->data() + start;
  if (codec == kNone) std::memcpy(p + kHeaderSize, data.data(), data.size());
  EncodeFixed32(p, kMagic);
  p[4] = static_cast<char>(kFormat);
  p[5] = static_cast<char>(codec);
  p[6] = p[7] = 0;
  std::string ids;
  PutFixed64(&ids, id.ino);
  PutFixed64(&ids, id.index);
  PutFixed64(&ids, id.version);
  std::memcpy(p + 8, ids.data(), 24);
  EncodeFixed32(p + 32, static_cast<uint32_t>(data.size()));
  EncodeFixed32(p + 36, static_cast<uint32_t>(payload));
  EncodeFixed32(p + 44, 0);
  std::string_view record(p, kHeaderSize + payload);
  EncodeFixed32(p + kCrcOffset, RecordCrc(record));
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
      (header.codec == kNone && header.payload_length != header.raw_length)) {
    return Damaged(where, "impossible lengths");
  }
  return header;
}

namespace {
// What Verify and VerifyParts both check: the payload has the header's
// length, and the CRC over both holds.
Status CheckLengthAndCrc(std::string_view header_bytes, const Header& header,
                         std::string_view payload, const std::string& where) {
  if (payload.size() != header.payload_length) {
    return Damaged(where, "record length does not match its header");
  }
  if (DecodeFixed32(header_bytes.data() + kCrcOffset) != RecordCrc(header_bytes, payload)) {
    return Damaged(where, "checksum mismatch");
  }
  return Status::Ok();
}
}  // namespace

Status Verify(std::string_view record, const std::string& where) {
  ASSIGN_OR_RETURN(Header header, ParseHeader(record, where));
  return CheckLengthAndCrc(record.substr(0, kHeaderSize), header, record.substr(kHeaderSize),
                           where);
}

Status VerifyParts(std::string_view header_bytes, const Header& header,
                   std::string_view payload, const BlockId& expected, const std::string& where) {
  RETURN_IF_ERROR(CheckLengthAndCrc(header_bytes, header, payload, where));
  if (!(header.id == expected)) {
    return Damaged(where, fmt::format("it holds block {} of inode {} version {}, not block {} "
                                      "of inode {} version {}",
                                      header.id.index, header.id.ino, header.id.version,
                                      expected.index, expected.ino, expected.version));
  }
  return Status::Ok();
}

Result<RefPtr<BlockBuffer>> Decode(std::string_view record, const BlockId& expected,
                                   MemoryAccountant* accountant, const std::string& where) {
  ASSIGN_OR_RETURN(Header header, ParseHeader(record, where));
  RETURN_IF_ERROR(VerifyParts(record.substr(0, kHeaderSize), header, record.substr(kHeaderSize),
                              expected, where));
  RefPtr<BlockBuffer> buffer = BlockBuffer::CreateForFill(accountant, header.raw_length);
  const char* payload = record.data() + kHeaderSize;
  if (header.codec == kNone) {
    std::memcpy(buffer->mutable_data(), payload, header.raw_length);
  } else {
    int n = LZ4_decompress_safe(payload, buffer->mutable_data(),
                                static_cast<int>(header.payload_length),
                                static_cast<int>(header.raw_length));
    if (n < 0 || static_cast<uint32_t>(n) != header.raw_length) {
      return Damaged(where, "lz4 payload does not decompress to its length");
    }
  }
  return buffer;
}

}  // namespace keyfs::block_format
