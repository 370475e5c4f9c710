#pragma once

// IoQueue: the IO threads and their job queues (DESIGN §2; dscache.c's
// newjobs -> processing -> processed).
//
// The loop thread submits jobs; IO threads take them from `new`, keep them in
// `processing` while they run against the block store, and put them in
// `processed`; the loop thread is woken through an eventfd and takes the
// processed jobs back (TakeProcessed) to apply their results. All three
// lists are under one mutex. A job is owned by exactly one list at a time,
// and its result fields are written only by the thread that runs it, before
// it moves to `processed`, so the loop thread reads them without a race.
//
// What may run when (one job per block, a LOAD never ahead of a SAVE of its
// own block, ...) is the scheduler's business (block_cache.h); this queue
// only keeps the order it is given: SubmitUrgent puts a job at the head (a
// LOAD someone waits for), Submit at the tail.
//
// With `threads == 0` nothing runs by itself: a test calls RunNext() to run
// the next job on its own thread, and so steps the IO by hand.
//
// Threading: Submit*, TakeProcessed, RunNext from the loop thread (RunNext:
// the test's thread); the workers are internal. Destruction waits for the
// job that is running and drops the rest.

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"
#include "src/base/mutex.h"
#include "src/keyspace/block_slot.h"
#include "store/block_store.h"

namespace keyfs {

struct IoJob {
  enum class Kind { kLoad, kLoadRange, kSave, kDelete, kWork };

  // One block of a SAVE: the buffer it had when the job was submitted, and
  // how many of its bytes are the block's (block_slot.h, 1).
  struct SaveItem {
    BlockKey key;
    BlockId id;
    RefPtr<const BlockBuffer> buffer;
    uint32_t length = 0;
    Result<BlockLocation> saved = Status::Errno(EINPROGRESS);
  };

  Kind kind = Kind::kLoad;

  // kLoad: read `id` at `where`; the result is `loaded`. `reserved` bytes of
  // the budget were set aside for it when it was scheduled.
  BlockKey key;
  BlockId id;
  BlockLocation where;
  uint64_t reserved = 0;
  Result<RefPtr<BlockBuffer>> loaded = Status::Errno(EINPROGRESS);

  // kLoadRange: read bytes [range_offset, range_offset + range_length) of
  // block `id` (of `block_length` bytes) at `where` for parked request
  // `waiter`; the result is `loaded`, the whole block when `whole`
  // (BlockStore::LoadRange). `reserved` as for kLoad.
  uint32_t range_offset = 0, range_length = 0, block_length = 0;
  uint64_t waiter = 0;
  bool whole = false;

  // kSave: save every item, then one Sync; each item's `saved` is only a
  // location once that Sync succeeded (nobody may rely on it before).
  std::vector<SaveItem> saves;
  // kSave of whole blocks a write stores before it is applied: the parked
  // request that waits for it (block_cache.h, "Whole-block writes"); 0 for
  // a SAVE of dirty blocks. Such a job does not Sync: the journal syncs the
  // store before it syncs a record that names these copies.
  uint64_t for_request = 0;

  // kDelete: the copies at these locations are no longer needed.
  std::vector<std::pair<BlockId, BlockLocation>> deletes;

  // kWork: anything else to run on an IO thread (compaction steps); the
  // callback runs on the loop thread when the job comes back.
  std::function<void()> work;
  std::function<void()> done;

  Status status;  // kDelete, kWork: how it went
};

class IoQueue {
 public:
  // The CPU priority (nice) of IO threads: below the loop's (io_queue.cc).
  static constexpr int kIoThreadNice = 10;

  IoQueue(BlockStore* store, MemoryAccountant* accountant, int threads);
  ~IoQueue();
  IoQueue(const IoQueue&) = delete;
  IoQueue& operator=(const IoQueue&) = delete;

  // Readable when processed jobs are waiting (an eventfd, for the loop).
  int wake_fd() const { return wake_fd_; }

  void Submit(std::unique_ptr<IoJob> job) EXCLUDES(mu_);
  void SubmitUrgent(std::unique_ptr<IoJob> job) EXCLUDES(mu_);
  // Clears the eventfd and returns what has finished, in the order it did.
  std::vector<std::unique_ptr<IoJob>> TakeProcessed() EXCLUDES(mu_);
  // Jobs submitted and not yet taken back.
  size_t in_flight() const EXCLUDES(mu_);
  size_t queued() const EXCLUDES(mu_);       // in `new`
  size_t processing() const EXCLUDES(mu_);
  int threads() const { return static_cast<int>(workers_.size()); }

  // threads == 0 only: runs the next job of `new` here. False when none.
  bool RunNext() EXCLUDES(mu_);

 private:
  void Work() EXCLUDES(mu_);
  void Run(IoJob* job);
  void Finish(std::unique_ptr<IoJob> job) EXCLUDES(mu_);

  BlockStore* const store_;
  MemoryAccountant* const accountant_;
  const int wake_fd_;

  mutable Mutex mu_;
  CondVar work_{&mu_};
  std::deque<std::unique_ptr<IoJob>> new_ GUARDED_BY(mu_);
  size_t processing_ GUARDED_BY(mu_) = 0;
  std::vector<std::unique_ptr<IoJob>> processed_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace keyfs
