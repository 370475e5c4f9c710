#pragma once

// JournalReader: reads a journal file record by record and says exactly where
// and why it stops (docs/journal-format.md, "Reading").
//
//  kEnd       the file ends after a good record: clean.
//  kTornTail  what a crash during an append leaves: the file ends in one
//             damaged or incomplete record, or in zeros. Everything before
//             good_offset() is good; replay may cut the file there.
//  kCorrupt   the file was damaged: it is not safe to cut silently.
//
// The rule that tells them apart: appends leave whole records followed by at
// most one partial record. So damage at offset X is a torn tail only if the
// rest of the file could be a single record (at most kRecordHeaderSize +
// kMaxPayload bytes) and no valid record starts anywhere after X. A record
// with a good checksum but the wrong sequence number is always corruption.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/env.h"
#include "store/journal_format.h"

namespace keyfs {

class JournalReader {
 public:
  enum class Outcome { kRecord, kEnd, kTornTail, kCorrupt };

  struct Record {
    uint8_t type = 0;
    uint64_t seq = 0;
    uint64_t offset = 0;      // where the record starts in the file
    std::string_view payload;  // valid until the next call to Next()
  };

  // Opens `path` and checks its file header (EINVAL with a message naming the
  // file when it is not a keyfs journal or of another version).
  static Result<std::unique_ptr<JournalReader>> Open(Env* env, const std::string& path);
  // Whether `path` was cut inside its file header — what a crash while the
  // file was being created leaves: shorter than a header, and what is there
  // is the start of one (or zeros, which a crash can leave too). Such a file
  // holds no record; Open refuses it as not a journal.
  static Result<bool> IsCutInHeader(Env* env, const std::string& path);

  Outcome Next(Record* record);

  const journal::FileHeader& header() const { return header_; }
  uint64_t good_offset() const { return good_offset_; }  // end of the last good record
  uint64_t last_seq() const { return last_seq_; }
  uint64_t file_size() const { return file_size_; }
  uint64_t records() const { return records_; }
  // For kTornTail and kCorrupt: what is wrong, and at which offset.
  const std::string& problem() const { return problem_; }

 private:
  // What the reader reads at a time: large enough that a system call is
  // rare next to the records it brings (about 4 per small file before).
  static constexpr size_t kChunk = 1 << 20;

  JournalReader(std::string path, std::unique_ptr<SequentialFile> file, uint64_t file_size)
      : path_(std::move(path)), file_(std::move(file)), file_size_(file_size) {}
  // Makes the next `n` bytes of the file (fewer only where it ends) the
  // start of window(), reading as much more as fits in the buffer.
  Status Fill(size_t n);
  // The bytes read and not yet consumed; offset_ is the file offset of the
  // first.
  std::string_view window() const { return {buffer_.data() + begin_, end_ - begin_}; }
  void Consume(size_t n) { begin_ += n, offset_ += n; }
  Outcome Stop(Outcome outcome, std::string problem);
  // Classifies damage found in the record starting at offset_ (nothing of
  // it consumed).
  Outcome Damaged(const std::string& what);
  bool RestIsZero();

  std::string path_;
  std::unique_ptr<SequentialFile> file_;
  uint64_t file_size_;
  journal::FileHeader header_;
  uint64_t offset_ = 0;  // file offset of window()'s first byte
  uint64_t good_offset_ = 0;
  uint64_t last_seq_ = 0;
  uint64_t records_ = 0;
  // Records are parsed where they were read: a payload points into buffer_
  // and stays valid until the next call to Next (which may move the window).
  std::string buffer_;
  size_t begin_ = 0, end_ = 0;  // window() is buffer_[begin_, end_)
  std::string problem_;
  bool stopped_ = false;
};

}  // namespace keyfs
