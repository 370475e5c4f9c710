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
  auto not_a_journal = [&](const std::string& why) {
    return Status::InvalidArgument(path + " is not a keyfs journal: " + why);
  };
  if (size < kFileHeaderSize) return not_a_journal("shorter than its header");
  RETURN_IF_ERROR(reader->Fill(kFileHeaderSize));
  std::string_view bytes = reader->window();
  if (bytes.size() < kFileHeaderSize) return not_a_journal("shorter than its header");
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
  reader->Consume(kFileHeaderSize);
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

Status JournalReader::Fill(size_t n) {
  n = std::min<uint64_t>(n, file_size_ - offset_);
  if (end_ - begin_ >= n) return Status::Ok();
  // Keep what is left of the window, at the front of a buffer that holds n.
  size_t kept = end_ - begin_;
  std::memmove(buffer_.data(), buffer_.data() + begin_, kept);
  begin_ = 0, end_ = kept;
  if (buffer_.size() < std::max(n, kChunk)) buffer_.resize(std::max(n, kChunk));
  uint64_t unread = file_size_ - offset_ - kept;
  size_t want = static_cast<size_t>(std::min<uint64_t>(buffer_.size() - end_, unread));
  ASSIGN_OR_RETURN(size_t got, file_->Read(want, buffer_.data() + end_));
  end_ += got;
  if (end_ < n) {
    // The file is shorter than it was when opened: only what is there counts.
    file_size_ = offset_ + end_;
  }
  return Status::Ok();
}

JournalReader::Outcome JournalReader::Stop(Outcome outcome, std::string problem) {
  stopped_ = true;
  problem_ = path_ + ": " + problem;
  return outcome;
}

bool JournalReader::RestIsZero() {
  auto zero = [](std::string_view bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
  };
  while (offset_ < file_size_) {
    if (!Fill(kChunk).ok() || window().empty() || !zero(window())) return false;
    Consume(window().size());
  }
  return true;
}

namespace {

// True when a CRC-valid record of a non-zero type starts at tail[at].
bool ValidRecordAt(std::string_view tail, size_t at) {
  if (tail.size() - at < kRecordHeaderSize) return false;
  const char* p = tail.data() + at;
  uint32_t length = DecodeFixed32(p + 4);
  auto type = static_cast<uint8_t>(p[8]);
  if (type == 0 || length > tail.size() - at - kRecordHeaderSize) return false;
  std::string_view payload(p + kRecordHeaderSize, length);
  return journal::RecordCrc(type, DecodeFixed64(p + 9), payload) == DecodeFixed32(p);
}

}  // namespace

JournalReader::Outcome JournalReader::Damaged(const std::string& what) {
  uint64_t start = offset_;
  std::string where = " at offset " + std::to_string(start);
  uint64_t rest = file_size_ - start;
  if (rest > kRecordHeaderSize + journal::kMaxPayload) {
    return RestIsZero() ? Stop(Outcome::kTornTail, "zero-filled tail" + where)
                        : Stop(Outcome::kCorrupt,
                               what + where + ", with more data after it than one record");
  }
  // The rest could be one record: all of it in the window.
  if (!Fill(rest).ok() || window().size() < rest) {
    return Stop(Outcome::kCorrupt, what + where + " (and the rest cannot be read)");
  }
  std::string_view tail = window();
  if (std::all_of(tail.begin(), tail.end(), [](char c) { return c == 0; })) {
    return Stop(Outcome::kTornTail, "zero-filled tail" + where);
  }
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
  if (offset_ == file_size_) {
    stopped_ = true;
    return Outcome::kEnd;
  }
  auto cannot_read = [&](const Status& read) {
    return Stop(Outcome::kCorrupt,
                "cannot read at offset " + std::to_string(offset_) + ": " + read.ToString());
  };
  Status read = Fill(kRecordHeaderSize);
  if (!read.ok()) return cannot_read(read);
  if (window().size() < kRecordHeaderSize) return Damaged("incomplete record header");
  const char* header = window().data();
  uint32_t stored_crc = DecodeFixed32(header);
  uint32_t length = DecodeFixed32(header + 4);
  auto type = static_cast<uint8_t>(header[8]);
  uint64_t seq = DecodeFixed64(header + 9);
  if (length > journal::kMaxPayload) {
    return Damaged("record length " + std::to_string(length) + " over the maximum");
  }
  if (uint64_t{length} > file_size_ - offset_ - kRecordHeaderSize) {
    return Damaged("record of " + std::to_string(length) +
                   " bytes extending past the end of the file");
  }
  read = Fill(kRecordHeaderSize + length);
  if (!read.ok()) return cannot_read(read);
  if (window().size() < kRecordHeaderSize + length) {
    return Damaged("record of " + std::to_string(length) +
                   " bytes extending past the end of the file");
  }
  std::string_view payload = window().substr(kRecordHeaderSize, length);
  if (type == 0 || journal::RecordCrc(type, seq, payload) != stored_crc) {
    return Damaged("checksum mismatch in the record");
  }
  if (seq != last_seq_ + 1) {
    return Stop(Outcome::kCorrupt, "sequence number " + std::to_string(seq) + " at offset " +
                                       std::to_string(offset_) + " where " +
                                       std::to_string(last_seq_ + 1) + " was expected");
  }
  record->type = type;
  record->seq = seq;
  record->offset = offset_;
  record->payload = payload;
  Consume(kRecordHeaderSize + length);
  last_seq_ = seq;
  good_offset_ = offset_;
  ++records_;
  return Outcome::kRecord;
}

}  // namespace keyfs
