#pragma once

// The journal file format, shared by its writer, its reader and keyfs-check.
// docs/journal-format.md is the specification; keep the two in step.
//
//   file   := file_header record*
//   file_header (32 bytes):
//     magic "KEYFSJNL" | version u32 | flags u32 | base_seq u64 |
//     header_crc u32 (masked CRC32C of the 24 bytes before it) | zero u32
//   record := crc u32 | length u32 | type u8 | seq u64 | payload[length]
//     crc: masked CRC32C of type, seq and payload
//     seq: base_seq + 1 for the first record, then + 1 for each
// All integers little-endian. Type 0 is never written, so a zero-filled tail
// reads as torn, not as records.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace keyfs::journal {

inline constexpr char kMagic[8] = {'K', 'E', 'Y', 'F', 'S', 'J', 'N', 'L'};
// 2 adds the block store's records (kBlockSaved, kSnapshotStoredBlock,
// kSnapshotBlockData); 3 adds kWriteStored (whole blocks written to the store
// first); 4 adds kSetExpiry (files' lifetimes) and kSetPin (user.keyfs.pin). A
// reader reads every version from kOldestReadableVersion on.
inline constexpr uint32_t kVersion = 4;
inline constexpr uint32_t kOldestReadableVersion = 1;
inline constexpr size_t kFileHeaderSize = 32;
inline constexpr size_t kRecordHeaderSize = 4 + 4 + 1 + 8;  // crc, length, type, seq
// One data write is at most 1 MiB; a snapshot record of a rewrite may carry a
// whole block (up to 16 MiB) plus metadata.
inline constexpr uint32_t kMaxPayload = 64u << 20;

struct FileHeader {
  uint32_t version = kVersion;
  uint32_t flags = 0;
  uint64_t base_seq = 0;  // the seq before the first record of this file
};

// Appends the encoded file header / record to `out`.
void EncodeFileHeader(const FileHeader& header, std::string* out);
void EncodeRecord(uint8_t type, uint64_t seq, std::string_view payload, std::string* out);

// Writes the header of a record with this payload at `header`
// (kRecordHeaderSize bytes).
void FillRecordHeader(uint8_t type, uint64_t seq, std::string_view payload, char* header);

// Appends a record whose payload `encode(out)` appends to `out` itself, so a
// write's bytes are copied once, into the journal's buffer, and not first
// into a payload of their own: room for the header, the payload, then the
// header, which needs the payload's checksum.
template <typename EncodePayload>
void AppendRecord(uint8_t type, uint64_t seq, std::string* out, EncodePayload&& encode) {
  size_t start = out->size();
  out->resize(start + kRecordHeaderSize);
  encode(out);
  size_t payload_start = start + kRecordHeaderSize;
  FillRecordHeader(type, seq,
                   std::string_view(out->data() + payload_start, out->size() - payload_start),
                   out->data() + start);
}

// The masked CRC32C a record header carries for these contents.
uint32_t RecordCrc(uint8_t type, uint64_t seq, std::string_view payload);

}  // namespace keyfs::journal
