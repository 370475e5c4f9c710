#pragma once
// JournalReadAhead: reads a journal file on a thread of its own, a batch of
// records ahead of replay, so that reading, framing and checking records
// (JournalReader::Next: the read system calls and the checksums, a fifth of
// replay's time for small files) overlaps with applying them to the keyspace
// on the mounting thread. The mounting thread sees the same sequence of
// records and the same outcome as from the reader itself.
//
// Who owns what:
//  - the reader (and through it the file) belongs to the read-ahead thread
//    from construction until that thread has ended; Next() joins it before it
//    returns anything but kRecord, and only then does reader() hand it out;
//  - a batch belongs to the thread filling it, then to the queue (under mu_),
//    then to the consumer, which gives it back to be filled again. There are
//    at most kBatches, so read-ahead holds a few MiB at most whatever the
//    journal's size, and their memory is reused, not freshly touched.
//  - the destructor stops the thread wherever it is (replay gave up early).
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "src/base/mutex.h"
#include "store/journal_reader.h"

namespace keyfs {

class JournalReadAhead {
 public:
  struct Record {
    uint8_t type = 0;
    uint64_t seq = 0;
    uint64_t offset = 0;  // where the record starts in the file
    uint64_t end = 0;     // where it ends: the reader's good_offset() after it
    std::string_view payload;  // valid until the next call to Next()
  };

  explicit JournalReadAhead(std::unique_ptr<JournalReader> reader);
  ~JournalReadAhead();
  JournalReadAhead(const JournalReadAhead&) = delete;
  JournalReadAhead& operator=(const JournalReadAhead&) = delete;

  // As JournalReader::Next.
  JournalReader::Outcome Next(Record* record);
  // The reader, once Next() has returned its outcome (the thread has ended).
  const JournalReader& reader() const;

 private:
  static constexpr int kBatches = 3;
  static constexpr size_t kBatchBytes = 1 << 20;  // payload bytes per batch, about
  static constexpr size_t kBatchRecords = 8192;

  struct Batch {
    struct Entry {
      uint8_t type;
      uint64_t seq, offset, end;
      size_t at, size;  // the payload: bytes[at, at + size)
    };
    std::string bytes;
    std::vector<Entry> entries;
    bool last = false;  // the reader stopped after these, with `outcome`
    JournalReader::Outcome outcome = JournalReader::Outcome::kEnd;
  };

  void Run();  // the read-ahead thread
  void FillBatch(Batch* batch);

  std::unique_ptr<JournalReader> reader_;
  Mutex mu_;
  CondVar changed_{&mu_};  // a batch was queued or given back, or stop_ set
  std::deque<std::unique_ptr<Batch>> filled_ GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Batch>> free_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_;

  // The consumer's side (the mounting thread).
  std::unique_ptr<Batch> current_;
  size_t next_ = 0;  // current_'s next entry
  bool done_ = false;
};

}  // namespace keyfs
