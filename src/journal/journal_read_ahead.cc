#include "src/journal/journal_read_ahead.h"

#include <pthread.h>

#include <cassert>

namespace keyfs {

JournalReadAhead::JournalReadAhead(std::unique_ptr<JournalReader> reader)
    : reader_(std::move(reader)) {
  {
    MutexLock lock(&mu_);
    for (int i = 0; i < kBatches; ++i) free_.push_back(std::make_unique<Batch>());
  }
  thread_ = std::thread([this] { Run(); });
}

JournalReadAhead::~JournalReadAhead() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  changed_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void JournalReadAhead::Run() {
  pthread_setname_np(pthread_self(), "keyfs-replay");
  for (;;) {
    std::unique_ptr<Batch> batch;
    {
      MutexLock lock(&mu_);
      while (free_.empty() && !stop_) changed_.Wait(&mu_);
      if (stop_) return;
      batch = std::move(free_.back());
      free_.pop_back();
    }
    FillBatch(batch.get());  // outside the lock: this is the work
    bool last = batch->last;
    {
      MutexLock lock(&mu_);
      filled_.push_back(std::move(batch));
    }
    changed_.SignalAll();
    if (last) return;
  }
}

void JournalReadAhead::FillBatch(Batch* batch) {
  batch->bytes.clear();
  batch->entries.clear();
  batch->last = false;
  JournalReader::Record record;
  while (batch->bytes.size() < kBatchBytes && batch->entries.size() < kBatchRecords) {
    JournalReader::Outcome outcome = reader_->Next(&record);
    if (outcome != JournalReader::Outcome::kRecord) {
      batch->last = true;
      batch->outcome = outcome;
      return;
    }
    // The payload is copied: the reader's window moves on at its next call.
    batch->entries.push_back({record.type, record.seq, record.offset, reader_->good_offset(),
                              batch->bytes.size(), record.payload.size()});
    batch->bytes.append(record.payload);
  }
}

JournalReader::Outcome JournalReadAhead::Next(Record* record) {
  assert(!done_);
  while (!current_ || next_ == current_->entries.size()) {
    if (current_ && current_->last) {
      // Every record is out: the thread has ended (or is about to).
      done_ = true;
      JournalReader::Outcome outcome = current_->outcome;
      thread_.join();
      return outcome;
    }
    MutexLock lock(&mu_);
    if (current_) free_.push_back(std::move(current_));
    changed_.SignalAll();
    while (filled_.empty()) changed_.Wait(&mu_);
    current_ = std::move(filled_.front());
    filled_.pop_front();
    next_ = 0;
  }
  const Batch::Entry& entry = current_->entries[next_++];
  record->type = entry.type;
  record->seq = entry.seq;
  record->offset = entry.offset;
  record->end = entry.end;
  record->payload = std::string_view(current_->bytes).substr(entry.at, entry.size);
  return JournalReader::Outcome::kRecord;
}

const JournalReader& JournalReadAhead::reader() const {
  assert(done_);
  return *reader_;
}

}  // namespace keyfs
