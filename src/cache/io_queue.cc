#include "src/cache/io_queue.h"

#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

namespace keyfs {

IoQueue::IoQueue(BlockStore* store, MemoryAccountant* accountant, int threads)
    : store_(store), accountant_(accountant),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

IoQueue::~IoQueue() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  work_.SignalAll();
  for (auto& worker : workers_) worker.join();
  close(wake_fd_);
}

void IoQueue::Submit(std::unique_ptr<IoJob> job) {
  {
    MutexLock lock(&mu_);
    new_.push_back(std::move(job));
  }
  work_.Signal();
}

void IoQueue::SubmitUrgent(std::unique_ptr<IoJob> job) {
  {
    MutexLock lock(&mu_);
    new_.push_front(std::move(job));
  }
  work_.Signal();
}

std::vector<std::unique_ptr<IoJob>> IoQueue::TakeProcessed() {
  uint64_t count;
  while (read(wake_fd_, &count, sizeof(count)) > 0) {
  }
  MutexLock lock(&mu_);
  return std::move(processed_);
}

size_t IoQueue::in_flight() const {
  MutexLock lock(&mu_);
  return new_.size() + processing_ + processed_.size();
}

size_t IoQueue::queued() const {
  MutexLock lock(&mu_);
  return new_.size();
}

size_t IoQueue::processing() const {
  MutexLock lock(&mu_);
  return processing_;
}

bool IoQueue::RunNext() {
  std::unique_ptr<IoJob> job;
  {
    MutexLock lock(&mu_);
    if (new_.empty()) return false;
    job = std::move(new_.front());
    new_.pop_front();
    ++processing_;
  }
  Run(job.get());
  Finish(std::move(job));
  return true;
}

void IoQueue::Work() {
  // An IO thread copies and checks whole blocks; the loop answers requests
  // from memory. When the CPUs are busy, the scheduler must prefer the loop
  // (and other processes' reads of hot data) to a load that is under way:
  // "nothing else waits for a load" holds for CPU time too. Nice applies to
  // the calling thread on Linux; a failure leaves the default, harmlessly.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kIoThreadNice);
  pthread_setname_np(pthread_self(), "keyfs-io");
  for (;;) {
    std::unique_ptr<IoJob> job;
    {
      MutexLock lock(&mu_);
      while (new_.empty() && !stopping_) work_.Wait(&mu_);
      if (stopping_) return;
      job = std::move(new_.front());
      new_.pop_front();
      ++processing_;
    }
    Run(job.get());
    Finish(std::move(job));
  }
}

void IoQueue::Finish(std::unique_ptr<IoJob> job) {
  {
    MutexLock lock(&mu_);
    --processing_;
    processed_.push_back(std::move(job));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void IoQueue::Run(IoJob* job) {
  switch (job->kind) {
    case IoJob::Kind::kLoad:
      job->loaded = store_->Load(job->id, job->where, accountant_);
      break;
    case IoJob::Kind::kLoadRange: {
      auto range = store_->LoadRange(job->id, job->where, job->block_length, job->range_offset,
                                     job->range_length, accountant_);
      if (range.ok()) {
        job->whole = range->whole;
        job->loaded = std::move(range->buffer);
      } else {
        job->loaded = range.status();
      }
      break;
    }
    case IoJob::Kind::kSave: {
      std::vector<BlockLocation> written(job->saves.size());
      Status first_error;
      for (size_t i = 0; i < job->saves.size(); ++i) {
        IoJob::SaveItem& item = job->saves[i];
        Result<BlockLocation> saved =
            store_->Save(item.id, std::string_view(item.buffer->data(), item.length));
        if (saved.ok()) {
          written[i] = *saved;
        } else {
          item.saved = saved.status();
        }
      }
      Status synced = job->for_request != 0 ? Status::Ok() : store_->Sync();
      for (size_t i = 0; i < job->saves.size(); ++i) {
        IoJob::SaveItem& item = job->saves[i];
        if (!written[i].valid()) continue;
        if (synced.ok()) {
          item.saved = written[i];
        } else {
          // Not durable, so not usable: the copy is dead space.
          item.saved = synced;
          (void)store_->Delete(item.id, written[i]);
        }
      }
      // The buffers go back with the job: the loop thread drops its
      // references, so a buffer is freed on the thread that owns it.
      break;
    }
    case IoJob::Kind::kDelete:
      for (const auto& [id, where] : job->deletes) {
        Status status = store_->Delete(id, where);
        if (!status.ok() && job->status.ok()) job->status = status;
      }
      break;
    case IoJob::Kind::kWork:
      if (job->work) job->work();
      break;
  }
}

}  // namespace keyfs
