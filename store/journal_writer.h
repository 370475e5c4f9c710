#pragma once

// JournalWriter: appends records to a journal file (docs/journal-format.md).
//
// Add() only encodes into a buffer; Flush() writes the buffer with one
// write(2) — the group commit of one event-loop iteration — and Sync()
// fdatasyncs. A failed Flush keeps the buffer and marks the file's tail as
// suspect: the next Flush first cuts the file back to the last byte known to
// be written whole, then writes the buffer again, so a write error (a full
// disk) heals by itself once writes succeed and never leaves a torn record in
// the middle of the file.
//
// Not thread-safe. To fsync from another thread, sync shared_file(): an
// fdatasync covers whatever was written before it began.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/env.h"
#include "store/journal_format.h"

namespace keyfs {

class JournalWriter {
 public:
  // A new journal at `path` (replacing any file there): header written and
  // synced, directory synced. Its first record gets sequence base_seq + 1.
  // On failure the file is removed again.
  static Result<std::unique_ptr<JournalWriter>> Create(Env* env, const std::string& path,
                                                       uint64_t base_seq);
  // Continues an existing journal after a reader checked it: cuts it to
  // `good_offset` (dropping a torn tail) and numbers on from `last_seq`.
  static Result<std::unique_ptr<JournalWriter>> Continue(Env* env, const std::string& path,
                                                         uint64_t good_offset,
                                                         uint64_t last_seq);

  // Buffers a record; returns its sequence number.
  uint64_t Add(uint8_t type, std::string_view payload);
  // The same, with the payload appended straight into the buffer by
  // `encode(std::string*)` (journal::AppendRecord).
  template <typename EncodePayload>
  uint64_t AddEncoded(uint8_t type, EncodePayload&& encode) {
    journal::AppendRecord(type, ++last_seq_, &pending_, encode);
    return last_seq_;
  }
  Status Flush();
  Status Sync();

  uint64_t last_seq() const { return last_seq_; }
  uint64_t written_size() const { return written_size_; }  // whole records on disk
  size_t pending_bytes() const { return pending_.size(); }
  const std::string& path() const { return path_; }
  // The open file, for a thread that fdatasyncs it while this writer goes
  // on appending (the file stays open as long as either holds it).
  std::shared_ptr<WritableFile> shared_file() const { return file_; }

 private:
  JournalWriter(Env* env, std::string path, std::unique_ptr<WritableFile> file,
                uint64_t written_size, uint64_t last_seq)
      : env_(env), path_(std::move(path)), file_(std::move(file)),
        written_size_(written_size), last_seq_(last_seq) {}
  Status RepairTail();

  Env* const env_;
  const std::string path_;
  std::shared_ptr<WritableFile> file_;
  uint64_t written_size_;  // the file's length up to the last whole flush
  uint64_t last_seq_;
  std::string pending_;
  bool tail_suspect_ = false;  // a flush failed part way
};

}  // namespace keyfs
