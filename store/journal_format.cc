#include "store/journal_format.h"

#include <cassert>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace keyfs::journal {

void EncodeFileHeader(const FileHeader& header, std::string* out) {
  size_t start = out->size();
  out->append(kMagic, sizeof(kMagic));
  PutFixed32(out, header.version);
  PutFixed32(out, header.flags);
  PutFixed64(out, header.base_seq);
  PutFixed32(out, crc32c::Mask(crc32c::Value(out->data() + start, 24)));
  PutFixed32(out, 0);
}

uint32_t RecordCrc(uint8_t type, uint64_t seq, std::string_view payload) {
  char prefix[9];
  prefix[0] = static_cast<char>(type);
  for (int i = 0; i < 8; ++i) prefix[1 + i] = static_cast<char>(seq >> (8 * i));
  uint32_t crc = crc32c::Value(prefix, sizeof(prefix));
  return crc32c::Mask(crc32c::Extend(crc, payload.data(), payload.size()));
}

void FillRecordHeader(uint8_t type, uint64_t seq, std::string_view payload, char* header) {
  assert(type != 0 && payload.size() <= kMaxPayload);
  EncodeFixed32(header, RecordCrc(type, seq, payload));
  EncodeFixed32(header + 4, static_cast<uint32_t>(payload.size()));
  header[8] = static_cast<char>(type);
  EncodeFixed64(header + 9, seq);
}

void EncodeRecord(uint8_t type, uint64_t seq, std::string_view payload, std::string* out) {
  AppendRecord(type, seq, out, [payload](std::string* to) { to->append(payload); });
}

}  // namespace keyfs::journal
