#pragma once

// Journal: every mutation, recorded before it is acknowledged, replayed at
// mount, compacted in the background (DESIGN §6; Redis's AOF).
//
// The Keyspace reports each change (MutationLog); the Journal encodes it as a
// record (records.h) into the live segment's buffer. Once per loop iteration,
// before any reply of that iteration is sent, Commit() writes the buffer with
// one write(2) — the group commit — and, with appendfsync=always or when a
// client called fsync(), fdatasyncs it. With everysec a worker thread
// fdatasyncs once a second; with no, the kernel decides.
//
// When the journal cannot be written or synced:
//  - a full disk is found before a change is made: the journal keeps disk
//    space allocated ahead of its end (fallocate), and a change whose record
//    might not fit fails with ENOSPC before it is applied;
//  - when a write or fsync fails anyway, the replies of that iteration are held back (Commit says so; nothing is
//    acknowledged that is not durable as the policy promises);
//  - every new mutation fails with the error (ENOSPC for a full disk, EIO
//    otherwise) before it changes anything, while reads go on;
//  - cron retries with backoff — a failed write by writing again (the writer
//    repairs its tail first), a failed fsync by a rewrite, since after a
//    failed fsync the kernel may have dropped the pages and a second fsync
//    could succeed without them: a fresh snapshot from memory is the only
//    safe copy. When it succeeds the held replies go out and mutations work
//    again. Errors are logged, at most once per interval.
//
// Rewrite (journal_rewrite.cc): a forked child writes the keyspace it
// inherited as a snapshot while the loop goes on serving; see journal_files.h
// for the files and why no mutation made meanwhile can be lost.
//
// Threading: loop thread only, except the worker's jobs (which hold their own
// reference to the file they sync and report back through EventLoop::Post).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "src/base/clock.h"
#include "src/base/memory_accountant.h"
#include "src/base/status.h"
#include "src/journal/journal_loader.h"
#include "src/keyspace/keyspace.h"
#include "src/keyspace/mutation_log.h"
#include "src/loop/background_worker.h"
#include "src/loop/event_loop.h"
#include "store/env.h"
#include "store/journal_writer.h"

namespace keyfs {

enum class AppendFsync { kAlways, kEverySec, kNo };
std::string_view AppendFsyncName(AppendFsync policy);

struct JournalOptions {
  AppendFsync appendfsync = AppendFsync::kEverySec;
  bool load_truncated = true;
  // A rewrite starts when the journal has grown by this percentage since the
  // last one (0: never automatically) and is at least auto_rewrite_min_size.
  uint32_t auto_rewrite_percentage = 100;
  uint64_t auto_rewrite_min_size = uint64_t{64} << 20;
  // Rewrites run in a forked child. Tests turn it off to run the same steps
  // in this process, through their Env, one at a time.
  bool fork_rewrite = true;
};

class Journal final : public MutationLog {
 public:
  // Replays the journal in `dir` into `keyspace` (which must be fresh), then
  // continues it and attaches itself as the keyspace's log. `store` holds
  // the blocks the journal says are stored (null: none).
  static Result<std::unique_ptr<Journal>> Open(Env* env, const std::string& dir,
                                               const JournalOptions& options,
                                               Keyspace* keyspace, EventLoop* loop,
                                               MemoryAccountant* accountant, const Clock* clock,
                                               BlockStore* store = nullptr);
  // Stops a rewrite in progress; does not flush (Close does).
  ~Journal() override;
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // --- the loop's side ------------------------------------------------------
  // Before the replies of this iteration go out: writes (and syncs, when due)
  // the records of this iteration. False when they could not be made durable:
  // the replies queued so far must be held until durable() is true again.
  bool Commit();
  // No records are waiting to be made durable after an error.
  bool durable() const { return error_kind_ == ErrorKind::kNone; }
  // A client called fsync(): the next Commit fdatasyncs whatever the policy.
  void RequestSync() { sync_requested_ = true; }
  // The next Commit will fdatasync records: requests that already wait are
  // worth taking into this iteration first, to share that fdatasync.
  bool CommitWillSync() const;
  // Periodic work: everysec fsync, retries after errors, automatic rewrite.
  void Cron();
  // Starts a background rewrite; `why` goes into its log line. EBUSY when
  // one is running. Until one succeeds, a failed one is retried with backoff.
  Status StartRewrite(std::string_view why = "asked for");
  // At unmount: ends a rewrite in progress, writes and fsyncs everything.
  Status Close();

  // keyfs-ctl config on a running mount: `options`' appendfsync and
  // auto_rewrite_* hold from the next commit and cron on; its other fields
  // are fixed at Open and ignored.
  void SetLiveOptions(const JournalOptions& options);

  // Redis INFO style "key:value" lines (keyfs-ctl status, tests).
  std::string Info() const;
  const LoadedJournal& loaded() const { return loaded_; }
  bool rewrite_running() const { return child_pid_ > 0; }
  // The disk has no room for what the journal must take (changes that add
  // data fail with ENOSPC).
  bool out_of_space() const {
    return reserve_error_.code() == ENOSPC || error_.code() == ENOSPC || space_check_failed_;
  }
  // Asked before every change that adds data: a refusal (the store's disk
  // is full, so blocks cannot be saved) fails it with its error.
  void set_space_check(std::function<Status()> check) { space_check_ = std::move(check); }
  // Bytes of the journal's files.
  uint64_t size() const { return JournalBytes(); }
  // The generation of the live segment; a rewrite starts the next one.
  uint64_t generation() const { return gen_; }
  // The generation of the base (0 without one).
  uint64_t base_generation() const { return base_gen_.value_or(0); }
  // Told the new generation when a rewrite starts one (before the fork, so
  // that what the rewrite's snapshot may refer to is known), and the new
  // base's generation when a rewrite has succeeded (files of older
  // generations are gone, and nothing refers to what only they did).
  void set_generation_listener(std::function<void(uint64_t)> listener) {
    on_generation_ = std::move(listener);
  }
  void set_rewritten_listener(std::function<void(uint64_t)> listener) {
    on_rewritten_ = std::move(listener);
  }

  // --- MutationLog ----------------------------------------------------------
  Status Writable(SpaceEffect effect) override;
  uint64_t next_seq() const override { return writer_->last_seq() + 1; }
  void WrittenStored(Ino ino, uint64_t index, uint32_t length, timespec now,
                     uint64_t stored_version, const BlockLocation& where) override;
  void BlockSaved(Ino ino, uint64_t index, uint64_t version, const BlockLocation& where) override;
  void NodeCreated(Ino parent, std::string_view name, const Inode& inode) override;
  void Linked(Ino ino, Ino parent, std::string_view name, timespec now) override;
  void Unlinked(Ino parent, std::string_view name, bool directory, timespec now) override;
  void Renamed(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
               unsigned flags, timespec now) override;
  void AttributesSet(const Inode& inode, unsigned fields) override;
  void Written(Ino ino, uint64_t offset, std::string_view data, timespec now) override;
  void Allocated(Ino ino, int mode, uint64_t offset, uint64_t length, timespec now) override;
  void XattrSet(Ino ino, std::string_view name, std::string_view value,
                timespec now) override;
  void XattrRemoved(Ino ino, std::string_view name, timespec now) override;
  void Accessed(Ino ino, timespec atime) override;
  void ExpirySet(Ino ino, int64_t at_ms) override;
  void PinSet(Ino ino, bool pinned) override;

 private:
  enum class ErrorKind { kNone, kWrite, kSync };
  // Rewrites closer together than this are summed up in one log line.
  static constexpr int64_t kRewriteLogIntervalNs = 60'000'000'000;

  Journal(Env* env, std::string dir, const JournalOptions& options, Keyspace* keyspace,
          EventLoop* loop, MemoryAccountant* accountant, const Clock* clock, BlockStore* store);
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  template <typename Record>
  void Add(uint8_t type, const Record& record);
  void ChargePending();
  // This iteration's records must be fdatasynced: the policy says always, or
  // a client called fsync().
  bool SyncDue() const {
    return options_.appendfsync == AppendFsync::kAlways || sync_requested_;
  }
  // Writes the buffer; with `sync`, fdatasyncs it. Sets the error state on failure.
  bool WriteOut(bool sync);
  static Status SyncStore(BlockStore* store);
  void SetError(ErrorKind kind, const Status& status);
  void ClearError();
  void ScheduleRetry();
  void SubmitEverySecSync();
  uint64_t JournalBytes() const;
  // "12.0 MiB free of 1.0 GiB on the filesystem of STORE", for messages.
  std::string DiskSpaceText() const;
  // Makes sure the disk has room for one more record of any size in the live
  // segment, or of a small one for a change that frees room (see Writable in
  // journal.cc).
  Status ReserveRoom(SpaceEffect effect);

  // journal_rewrite.cc
  void OnRewriteOutput();
  void FinishRewrite(bool ok, const std::string& message);
  void MaybeAutoRewrite();
  void BackOffRewrite();
  bool LogThisRewrite();
  void LogRewriteSummary();
  void RemoveInBackground(std::vector<std::string> paths);

  Env* const env_;
  const std::string dir_;
  JournalOptions options_;
  Keyspace* const keyspace_;
  EventLoop* const loop_;
  MemoryAccountant* const accountant_;
  const Clock* const clock_;
  BlockStore* const store_;
  BackgroundWorker worker_;
  std::function<void(uint64_t)> on_generation_;
  std::function<void(uint64_t)> on_rewritten_;
  std::function<Status()> space_check_;
  bool space_check_failed_ = false;

  LoadedJournal loaded_;
  std::unique_ptr<JournalWriter> writer_;  // the live incr
  uint64_t gen_ = 0;                       // its generation
  std::optional<uint64_t> base_gen_;
  uint64_t base_bytes_ = 0;       // size of the base file
  uint64_t closed_incr_bytes_ = 0;  // incrs before the live one, since the base
  uint64_t rewrite_base_size_ = 0;  // journal size after the last rewrite or load
  uint64_t charged_ = 0;          // pending bytes charged to kJournal

  bool sync_requested_ = false;
  uint64_t written_seq_ = 0;      // records up to here are in the file
  uint64_t synced_seq_ = 0;       // ... and fdatasynced
  bool sync_in_flight_ = false;
  int64_t last_sync_ns_ = 0;

  uint64_t reserved_to_ = 0;        // file offset up to which space is allocated
  int64_t reserve_retry_at_ns_ = 0;  // after a refused reservation
  Status reserve_error_;
  Status error_;
  ErrorKind error_kind_ = ErrorKind::kNone;
  int64_t retry_at_ns_ = 0;
  int64_t retry_backoff_ns_ = 0;
  int64_t last_error_log_ns_ = 0;
  uint64_t errors_ = 0;

  // Rewrite in progress: the child, the pipe it reports on, what it covers.
  pid_t child_pid_ = -1;
  int child_pipe_ = -1;
  std::string child_output_;
  uint64_t child_gen_ = 0;
  int64_t rewrite_started_ns_ = 0;
  int64_t rewrite_retry_at_ns_ = 0;
  int64_t rewrite_backoff_ns_ = 0;
  bool rewrite_wanted_ = false;   // asked for or due, and not yet done: retried
  bool rewrite_logged_ = false;   // the running rewrite's lines go to info
  int64_t rewrite_log_window_ns_ = INT64_MIN / 2;
  uint64_t rewrites_unlogged_ = 0;
  uint64_t rewrites_ = 0;
  uint64_t rewrites_failed_ = 0;
  std::string last_rewrite_status_ = "none";
  double last_rewrite_seconds_ = 0;
  double last_rewrite_start_ms_ = 0;   // how long starting held up the loop
  double max_rewrite_start_ms_ = 0;
  // Of that, the fork() itself: it copies the page tables, so it grows with
  // resident memory; the rest is the syncs that order the segments.
  double last_fork_ms_ = 0;
};

}  // namespace keyfs
