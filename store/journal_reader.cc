#include "store/journal_reader.h"

#include <algorithm>
#include <cstring>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace keyfs {

using journal::kFileHeaderSize;
using journal::kRecordHeaderSize;

Result<std::unique_ptr<JournalReader>> JournalReader::Open(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(path));
  ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(path));
  std::unique_ptr<JournalReader> reader(new JournalReader(path, std::move(file), size));
  std::string bytes;
  auto not_a_journal = [&](const std::string& why) {
    return Status::InvalidArgument(path + " is not a keyfs journal: " + why);
  };
  if (size < kFileHeaderSize) return not_a_journal("shorter than its header");
  RETURN_IF_ERROR(reader->ReadExactly(kFileHeaderSize, &bytes));
  if (std::memcmp(bytes.data(), journal::kMagic, sizeof(journal::kMagic)) != 0) {
    return not_a_journal("bad magic");
  }
  uint32_t stored_crc = crc32c::Unmask(DecodeFixed32(bytes.data() + 24));
  if (crc32c::Value(bytes.data(), 24) != stored_crc) return not_a_journal("header checksum mismatch");
  reader->header_.version = DecodeFixed32(bytes.data() + 8);
  reader->header_.flags = DecodeFixed32(bytes.data() + 12);
  reader->header_.base_seq = DecodeFixed64(bytes.data() + 16);
  if (reader->header_.version < journal::kOldestReadableVersion ||
      reader->header_.version > journal::kVersion) {
    return Status::InvalidArgument(path + " is journal format version " +
                                   std::to_string(reader->header_.version) +
                                   "; this keyfs reads version " +
                                   std::to_string(journal::kVersion));
  }
  reader->good_offset_ = kFileHeaderSize;
  reader->last_seq_ = reader->header_.base_seq;
  return reader;
}

Result<bool> JournalReader::IsCutInHeader(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(path));
  if (size > kFileHeaderSize) return false;
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(env, path));
  if (std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; })) return true;
  if (bytes.size() >= kFileHeaderSize) return false;  // a whole header, damaged
  size_t magic = std::min(bytes.size(), sizeof(journal::kMagic));
  return std::memcmp(bytes.data(), journal::kMagic, magic) == 0;
}

Status JournalReader::ReadExactly(size_t n, std::string* out) {
  out->resize(n);
  ASSIGN_OR_RETURN(size_t got, file_->Read(n, out->data()));
  out->resize(got);
  offset_ += got;
  return Status::Ok();
}

JournalReader::Outcome JournalReader::Stop(Outcome outcome, std::string problem) {
  stopped_ = true;
  problem_ = path_ + ": " + problem;
  return outcome;
}

bool JournalReader::RestIsZero(std::string_view already_read) {
  auto zero = [](std::string_view bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
  };
  if (!zero(already_read)) return false;
  std::string chunk;
  while (offset_ < file_size_) {
    if (!ReadExactly(std::min<uint64_t>(1 << 20, file_size_ - offset_), &chunk).ok() ||
        chunk.empty()) {
      return false;
    }
    if (!zero(chunk)) return false;
  }
  return true;
}

namespace {

// True when a CRC-valid record of a non-zero type starts at tail[at].
bool ValidRecordAt(const std::string& tail, size_t at) {
  if (tail.size() - at < kRecordHeaderSize) return false;
  const char* p = tail.data() + at;
  uint32_t length = DecodeFixed32(p + 4);
  auto type = static_cast<uint8_t>(p[8]);
  if (type == 0 || length > tail.size() - at - kRecordHeaderSize) return false;
  std::string_view payload(p + kRecordHeaderSize, length);
  return journal::RecordCrc(type, DecodeFixed64(p + 9), payload) == DecodeFixed32(p);
}

}  // namespace

JournalReader::Outcome JournalReader::Damaged(uint64_t start, std::string consumed,
                                              const std::string& what) {
  std::string where = " at offset " + std::to_string(start);
  if (RestIsZero(consumed)) return Stop(Outcome::kTornTail, "zero-filled tail" + where);
  uint64_t rest = file_size_ - start;
  if (rest > kRecordHeaderSize + journal::kMaxPayload) {
    return Stop(Outcome::kCorrupt, what + where + ", with more data after it than one record");
  }
  std::string tail = std::move(consumed);
  std::string more;
  if (!ReadExactly(rest - tail.size(), &more).ok()) {
    return Stop(Outcome::kCorrupt, what + where + " (and the rest cannot be read)");
  }
  tail += more;
  for (size_t at = 1; at < tail.size(); ++at) {
    if (ValidRecordAt(tail, at)) {
      return Stop(Outcome::kCorrupt, what + where + "; a good record follows at offset " +
                                         std::to_string(start + at));
    }
  }
  return Stop(Outcome::kTornTail, what + where + " (the last record, cut short by a crash)");
}

JournalReader::Outcome JournalReader::Next(Record* record) {
  if (stopped_) return Outcome::kEnd;
  uint64_t start = offset_;
  uint64_t remaining = file_size_ - start;
  if (remaining == 0) {
    stopped_ = true;
    return Outcome::kEnd;
  }
  std::string where = " at offset " + std::to_string(start);
  Status read = ReadExactly(std::min<uint64_t>(kRecordHeaderSize, remaining), &buffer_);
  if (!read.ok()) return Stop(Outcome::kCorrupt, "cannot read" + where + ": " + read.ToString());
  if (buffer_.size() < kRecordHeaderSize) {
    return Damaged(start, buffer_, "incomplete record header");
  }
  uint32_t stored_crc = DecodeFixed32(buffer_.data());
  uint32_t length = DecodeFixed32(buffer_.data() + 4);
  auto type = static_cast<uint8_t>(buffer_[8]);
  uint64_t seq = DecodeFixed64(buffer_.data() + 9);
  if (length > journal::kMaxPayload) {
    return Damaged(start, buffer_, "record length " + std::to_string(length) + " over the maximum");
  }
  if (uint64_t{length} > remaining - kRecordHeaderSize) {
    return Damaged(start, buffer_, "record of " + std::to_string(length) +
                                       " bytes extending past the end of the file");
  }
  std::string header_bytes = buffer_;
  read = ReadExactly(length, &buffer_);
  if (!read.ok() || buffer_.size() < length) {
    return Stop(Outcome::kCorrupt, "cannot read" + where + ": " + read.ToString());
  }
  if (type == 0 || journal::RecordCrc(type, seq, buffer_) != stored_crc) {
    return Damaged(start, header_bytes + buffer_, "checksum mismatch in the record");
  }
  if (seq != last_seq_ + 1) {
    return Stop(Outcome::kCorrupt, "sequence number " + std::to_string(seq) + where +
                                       " where " + std::to_string(last_seq_ + 1) +
                                       " was expected");
  }
  last_seq_ = seq;
  good_offset_ = offset_;
  ++records_;
  record->type = type;
  record->seq = seq;
  record->offset = start;
  record->payload = buffer_;
  return Outcome::kRecord;
}

}  // namespace keyfs
