// The Journal's live side: opening (replay), recording, group commit, fsync
// policy and recovery from write errors. Rewrites are in journal_rewrite.cc.

#include "src/journal/journal.h"

#include <signal.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/size.h"
#include "src/journal/records.h"

namespace keyfs {

using namespace journal;

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kEverySecInterval = kSecond;
constexpr int64_t kFirstRetry = 100'000'000;  // 100 ms, doubling
constexpr int64_t kMaxRetry = 5 * kSecond;
constexpr int64_t kErrorLogInterval = 10 * kSecond;

}  // namespace

std::string_view AppendFsyncName(AppendFsync policy) {
  switch (policy) {
    case AppendFsync::kAlways: return "always";
    case AppendFsync::kEverySec: return "everysec";
    case AppendFsync::kNo: return "no";
  }
  return "?";
}

Journal::Journal(Env* env, std::string dir, const JournalOptions& options, Keyspace* keyspace,
                 EventLoop* loop, MemoryAccountant* accountant, const Clock* clock,
                 BlockStore* store)
    : env_(env), dir_(std::move(dir)), options_(options), keyspace_(keyspace), loop_(loop),
      accountant_(accountant), clock_(clock), store_(store) {}

Result<std::unique_ptr<Journal>> Journal::Open(Env* env, const std::string& dir,
                                               const JournalOptions& options,
                                               Keyspace* keyspace, EventLoop* loop,
                                               MemoryAccountant* accountant,
                                               const Clock* clock, BlockStore* store) {
  std::unique_ptr<Journal> journal(
      new Journal(env, dir, options, keyspace, loop, accountant, clock, store));
  ASSIGN_OR_RETURN(journal->loaded_,
                   LoadJournal(env, dir, options.load_truncated, keyspace, clock, store));
  const LoadedJournal& loaded = journal->loaded_;
  const JournalFiles& files = loaded.files;
  if (loaded.bytes > 0) {
    double rate = loaded.seconds > 0 ? loaded.records / loaded.seconds : 0;
    spdlog::info("journal replayed: {} records, {} inodes, {} in {:.2f}s ({:.0f} records/s){}",
                 loaded.records, keyspace->inode_count(), FormatSize(loaded.bytes),
                 loaded.seconds, rate,
                 loaded.spilled > 0 ? fmt::format("; {} blocks went to the swap file to stay "
                                                  "within max_memory", loaded.spilled)
                                    : "");
  }
  if (loaded.skipped > 0) {
    spdlog::info("{} journal records were about files deleted while open, and were skipped",
                 loaded.skipped);
  }

  journal->base_gen_ = files.base_gen;
  journal->base_bytes_ = loaded.base_bytes;
  if (!files.incr_gens.empty()) {
    journal->gen_ = files.incr_gens.back();
    std::string live = journal->Path(JournalIncrName(journal->gen_));
    if (loaded.live_cut_in_header) {
      ASSIGN_OR_RETURN(journal->writer_, JournalWriter::Create(env, live, loaded.last_seq));
    } else {
      ASSIGN_OR_RETURN(journal->writer_, JournalWriter::Continue(env, live, loaded.live_good_offset,
                                                                 loaded.last_seq));
    }
    for (size_t i = 0; i + 1 < files.incr_gens.size(); ++i) {
      ASSIGN_OR_RETURN(uint64_t size,
                       env->GetFileSize(journal->Path(JournalIncrName(files.incr_gens[i]))));
      journal->closed_incr_bytes_ += size;
    }
  } else {
    journal->gen_ = files.base_gen.value_or(1);
    ASSIGN_OR_RETURN(journal->writer_,
                     JournalWriter::Create(env, journal->Path(JournalIncrName(journal->gen_)),
                                           loaded.last_seq));
  }
  // A new store: its first record is the root, so that the root's own
  // attributes (its access time, for one) come back as they were.
  if (!files.base_gen && loaded.last_seq == 0) {
    journal->NodeCreated(0, "", *keyspace->FindInode(kRootIno));
  }
  journal->written_seq_ = journal->synced_seq_ = loaded.last_seq;
  journal->rewrite_base_size_ = journal->JournalBytes();
  std::vector<std::string> obsolete;
  for (const auto& name : files.obsolete) obsolete.push_back(journal->Path(name));
  if (!obsolete.empty()) {
    spdlog::info("removing {} journal file(s) left by an interrupted rewrite", obsolete.size());
    journal->RemoveInBackground(std::move(obsolete));
  }
  keyspace->set_log(journal.get());
  return journal;
}

// --- recording -----------------------------------------------------------------

template <typename Record>
void Journal::Add(uint8_t type, const Record& record) {
  writer_->AddEncoded(type, [&record](std::string* out) { AppendPayload(record, out); });
  ChargePending();
}

void Journal::ChargePending() {
  uint64_t pending = writer_->pending_bytes();
  if (pending > charged_) {
    accountant_->Charge(MemoryComponent::kJournal, pending - charged_);
  } else {
    accountant_->Release(MemoryComponent::kJournal, charged_ - pending);
  }
  charged_ = pending;
}

void Journal::NodeCreated(Ino parent, std::string_view name, const Inode& inode) {
  NodeRecord r = NodeRecordOf(parent, name, inode);
  r.flags = kTouchParent;
  Add(kNode, r);
}

void Journal::Linked(Ino ino, Ino parent, std::string_view name, timespec now) {
  Add(kLink, LinkRecord{ino, parent, now, name});
}

void Journal::Unlinked(Ino parent, std::string_view name, bool directory, timespec now) {
  Add(directory ? kRmdir : kUnlink, UnlinkRecord{parent, now, name});
}

void Journal::Renamed(Ino parent, std::string_view name, Ino new_parent,
                      std::string_view new_name, unsigned flags, timespec now) {
  Add(kRename, RenameRecord{parent, new_parent, flags, now, name, new_name});
}

void Journal::AttributesSet(const Inode& inode, unsigned fields) {
  SetAttrRecord r;
  r.ino = inode.ino;
  r.fields = fields;
  if (fields & kAttrMode) r.mode = inode.mode & 07777;
  if (fields & kAttrUid) r.uid = inode.uid;
  if (fields & kAttrGid) r.gid = inode.gid;
  if (fields & kAttrSize) r.size = inode.size;
  if (fields & kAttrAtime) r.atime = inode.atime;
  if (fields & kAttrMtime) r.mtime = inode.mtime;
  r.ctime = inode.ctime;
  Add(kSetAttr, r);
}

void Journal::Written(Ino ino, uint64_t offset, std::string_view data, timespec now) {
  Add(kWrite, WriteRecord{ino, offset, now, data});
}

void Journal::Allocated(Ino ino, int mode, uint64_t offset, uint64_t length, timespec now) {
  Add(kAllocate, AllocateRecord{ino, static_cast<uint32_t>(mode), offset, length, now});
}

void Journal::XattrSet(Ino ino, std::string_view name, std::string_view value,
                       timespec now) {
  Add(kSetXattr, XattrRecord{ino, now, name, value});
}

void Journal::XattrRemoved(Ino ino, std::string_view name, timespec now) {
  Add(kRemoveXattr, XattrRecord{ino, now, name, {}});
}

void Journal::Accessed(Ino ino, timespec atime) { Add(kAccess, AccessRecord{ino, atime}); }

void Journal::ExpirySet(Ino ino, int64_t at_ms) {
  Add(kSetExpiry, ExpiryRecord{ino, static_cast<uint64_t>(at_ms)});
}
void Journal::PinSet(Ino ino, bool pinned) { Add(kSetPin, SetPinRecord{ino, pinned ? 1u : 0u}); }

void Journal::WrittenStored(Ino ino, uint64_t index, uint32_t length, timespec now,
                            uint64_t stored_version, const BlockLocation& where) {
  Add(kWriteStored,
      WriteStoredRecord{ino, index, length, now, stored_version, LocationFields::Of(where)});
}

void Journal::BlockSaved(Ino ino, uint64_t index, uint64_t version, const BlockLocation& where) {
  Add(kBlockSaved, BlockSavedRecord{ino, index, version, LocationFields::Of(where)});
}

// --- room on disk --------------------------------------------------------------

namespace {

// The largest record one change makes: a 1 MiB write (the FUSE maximum) with
// its header, with room to spare for xattrs (64 KiB) and names.
constexpr uint64_t kLargestRecord = (1u << 20) + (64u << 10);
// The largest record of a change that frees room (an unlink, a rename: two
// names of at most 255 bytes, a few numbers).
constexpr uint64_t kFreeingRecord = 4u << 10;
// Room kept, beyond the largest record, for changes that free room only:
// when the disk is full they can still be made (some hundreds of them), so
// a full store can be emptied.
constexpr uint64_t kFreeingReserve = 1u << 20;
constexpr uint64_t kReserveChunk = 8u << 20;
constexpr int64_t kReserveRetry = 100'000'000;  // 100 ms after a refusal

}  // namespace

// Space on disk is allocated ahead of the journal's end (fallocate), so that
// a full disk is found before a change is made, not when its record is
// written. A change that adds to the store needs room for the largest record
// plus the freeing reserve; one that frees room needs room for a small
// record only, and may eat into the reserve the others leave.
Status Journal::Writable(SpaceEffect effect) {
  if (!error_.ok()) return error_;
  if (effect == SpaceEffect::kAdds && space_check_) {
    Status space = space_check_();
    space_check_failed_ = !space.ok();
    RETURN_IF_ERROR(space);
  }
  return ReserveRoom(effect);
}

Status Journal::ReserveRoom(SpaceEffect effect) {
  uint64_t tail = writer_->written_size() + writer_->pending_bytes();
  uint64_t full = tail + kLargestRecord + kFreeingReserve;
  uint64_t least = effect == SpaceEffect::kFrees ? tail + kFreeingRecord : full;
  if (least <= reserved_to_) return Status::Ok();
  int64_t now = clock_->MonotonicNanos();
  // After a failure, adding changes wait for the retry time; a freeing one
  // (a few KiB) always tries, so that deleting works as soon as anything
  // gave room back.
  if (!reserve_error_.ok() && now < reserve_retry_at_ns_ && effect != SpaceEffect::kFrees) {
    return reserve_error_;
  }
  uint64_t from = writer_->written_size();
  uint64_t target = full + kReserveChunk;
  Status status = writer_->shared_file()->Reserve(from, target - from);
  if (status.code() == ENOSPC) {  // a nearly full disk: the least that will do
    target = least;
    status = writer_->shared_file()->Reserve(from, target - from);
  }
  if (!status.ok()) {
    bool first = reserve_error_.ok();
    reserve_error_ = Status::Errno(status.code() == ENOSPC ? ENOSPC : EIO,
                                   "no room for the journal: " + status.ToString());
    reserve_retry_at_ns_ = now + kReserveRetry;
    if (first || now - last_error_log_ns_ >= kErrorLogInterval) {
      last_error_log_ns_ = now;
      if (status.code() == ENOSPC) {
        spdlog::error("{} ({}); changes that add data fail with ENOSPC until there is room: "
                      "free space on that filesystem. Deleting and truncating files in keyfs "
                      "still works (a reserve is kept for it), and reads go on",
                      reserve_error_.message(), DiskSpaceText());
      } else {
        spdlog::error("{}; changes fail with EIO until the journal can be written, reads go on",
                      reserve_error_.message());
      }
    }
    return reserve_error_;
  }
  if (!reserve_error_.ok()) {
    spdlog::info("the journal has room again; changes are accepted");
    reserve_error_ = Status::Ok();
  }
  reserved_to_ = target;
  return Status::Ok();
}

// --- commit --------------------------------------------------------------------

// Records may name copies the store has written but not synced (whole-block
// writes, kWriteStored): the journal is never made durable past such a
// record before the copy is (block_cache.h, rule 3). Any thread.
Status Journal::SyncStore(BlockStore* store) {
  if (store == nullptr || !store->persistent()) return Status::Ok();
  Status status = store->Sync();
  if (!status.ok()) return Status::Errno(status.code(), "syncing the block store: " + status.ToString());
  return status;
}

bool Journal::WriteOut(bool sync) {
  Status status = writer_->Flush();
  ChargePending();
  if (!status.ok()) {
    SetError(ErrorKind::kWrite, status);
    return false;
  }
  written_seq_ = writer_->last_seq();
  if (sync && synced_seq_ < written_seq_) {
    status = SyncStore(store_);
    if (status.ok()) status = writer_->Sync();
    if (!status.ok()) {
      SetError(ErrorKind::kSync, status);
      return false;
    }
    synced_seq_ = written_seq_;
    last_sync_ns_ = clock_->MonotonicNanos();
  }
  return true;
}

bool Journal::CommitWillSync() const {
  return SyncDue() && (writer_->pending_bytes() > 0 || synced_seq_ < writer_->last_seq());
}

bool Journal::Commit() {
  bool sync = SyncDue();
  bool has_new = writer_->pending_bytes() > 0 || (sync && synced_seq_ < writer_->last_seq());
  if (!has_new) {
    sync_requested_ = false;
    return true;
  }
  if (error_kind_ != ErrorKind::kNone) return false;  // cron is on it
  bool ok = WriteOut(sync);
  if (ok) sync_requested_ = false;
  return ok;
}

void Journal::SetError(ErrorKind kind, const Status& cause) {
  int code = cause.code() == ENOSPC ? ENOSPC : EIO;
  bool first = error_kind_ == ErrorKind::kNone;
  // A failed fsync outranks a failed write: it needs a rewrite to heal.
  if (first || kind == ErrorKind::kSync) error_kind_ = kind;
  error_ = Status::Errno(code, "the journal cannot be " +
                                   std::string(kind == ErrorKind::kSync ? "synced" : "written") +
                                   ": " + cause.ToString());
  ++errors_;
  int64_t now = clock_->MonotonicNanos();
  if (first || now - last_error_log_ns_ >= kErrorLogInterval) {
    last_error_log_ns_ = now;
    spdlog::error("{}; changes fail with {} until it can, reads go on{}", error_.message(),
                  code == ENOSPC ? "ENOSPC" : "EIO",
                  kind == ErrorKind::kSync ? " (a rewrite will make the state durable again)"
                                           : "");
  }
  if (first) retry_backoff_ns_ = kFirstRetry;
  retry_at_ns_ = now + retry_backoff_ns_;
}

void Journal::ClearError() {
  if (error_kind_ == ErrorKind::kNone) return;
  spdlog::info("the journal is writable again; changes are accepted");
  error_kind_ = ErrorKind::kNone;
  error_ = Status::Ok();
  retry_backoff_ns_ = 0;
}

void Journal::ScheduleRetry() {
  retry_backoff_ns_ = std::min(retry_backoff_ns_ * 2, kMaxRetry);
  retry_at_ns_ = clock_->MonotonicNanos() + retry_backoff_ns_;
}

// --- cron ----------------------------------------------------------------------

void Journal::SubmitEverySecSync() {
  if (sync_in_flight_ || synced_seq_ >= written_seq_) return;
  int64_t now = clock_->MonotonicNanos();
  if (now - last_sync_ns_ < kEverySecInterval) return;
  sync_in_flight_ = true;
  last_sync_ns_ = now;
  uint64_t seq = written_seq_;
  std::shared_ptr<WritableFile> file = writer_->shared_file();
  BlockStore* store = store_;
  worker_.Submit([this, file, store, seq] {
    Status status = SyncStore(store);
    if (status.ok()) status = file->Sync();
    loop_->Post([this, status, seq] {
      sync_in_flight_ = false;
      if (!status.ok()) {
        SetError(ErrorKind::kSync, status);
      } else {
        synced_seq_ = std::max(synced_seq_, seq);
      }
    });
  });
}

void Journal::Cron() {
  int64_t now = clock_->MonotonicNanos();
  if (error_kind_ == ErrorKind::kWrite && now >= retry_at_ns_) {
    if (WriteOut(SyncDue())) {
      sync_requested_ = false;
      ClearError();
    } else {
      ScheduleRetry();
    }
  }
  if (error_kind_ == ErrorKind::kSync && now >= retry_at_ns_ && !rewrite_running()) {
    if (!StartRewrite("an fsync of the journal failed: a snapshot makes it durable again").ok()) {
      ScheduleRetry();
    }
  }
  if (options_.appendfsync == AppendFsync::kEverySec && error_kind_ == ErrorKind::kNone) {
    SubmitEverySecSync();
  }
  MaybeAutoRewrite();
  if (rewrites_unlogged_ > 0 && now - rewrite_log_window_ns_ >= kRewriteLogIntervalNs) {
    LogRewriteSummary();
    rewrite_log_window_ns_ = now;
  }
}

Status Journal::Close() {
  if (rewrite_running()) {
    spdlog::info("unmounting: stopping the journal rewrite in progress");
    kill(child_pid_, SIGKILL);
    FinishRewrite(false, "stopped by unmount");
  }
  if (error_kind_ == ErrorKind::kSync) return error_;
  Status status = writer_->Flush();
  ChargePending();
  if (status.ok()) status = SyncStore(store_);
  if (status.ok()) status = writer_->Sync();
  if (!status.ok()) {
    return Status::Errno(status.code(), "the journal could not be written at unmount: " +
                                            status.ToString());
  }
  written_seq_ = synced_seq_ = writer_->last_seq();
  return Status::Ok();
}

void Journal::SetLiveOptions(const JournalOptions& options) {
  options_.appendfsync = options.appendfsync;
  options_.auto_rewrite_percentage = options.auto_rewrite_percentage;
  options_.auto_rewrite_min_size = options.auto_rewrite_min_size;
}

std::string Journal::DiskSpaceText() const {
  auto space = env_->GetSpace(dir_);
  if (!space.ok()) return "free space unknown: " + space.status().ToString();
  return fmt::format("{} free of {} on the filesystem of {}", FormatSize(space->available),
                     FormatSize(space->total), dir_);
}

uint64_t Journal::JournalBytes() const {
  return base_bytes_ + closed_incr_bytes_ + writer_->written_size();
}

std::string Journal::Info() const {
  std::string out;
  auto line = [&](std::string_view key, const auto& value) {
    out += fmt::format("{}:{}\n", key, value);
  };
  line("appendfsync", AppendFsyncName(options_.appendfsync));
  line("journal_size", JournalBytes());
  line("journal_base_size", base_bytes_);
  line("journal_generation", gen_);
  line("journal_last_seq", writer_->last_seq());
  line("journal_synced_seq", synced_seq_);
  line("last_write_status", error_.ok() ? std::string("ok") : error_.message());
  line("write_errors", errors_);
  line("rewrite_in_progress", rewrite_running() ? 1 : 0);
  line("rewrites", rewrites_);
  line("rewrites_failed", rewrites_failed_);
  line("last_rewrite_status", last_rewrite_status_);
  line("last_rewrite_seconds", fmt::format("{:.3f}", last_rewrite_seconds_));
  line("last_rewrite_start_ms", fmt::format("{:.3f}", last_rewrite_start_ms_));
  line("max_rewrite_start_ms", fmt::format("{:.3f}", max_rewrite_start_ms_));
  line("last_fork_ms", fmt::format("{:.3f}", last_fork_ms_));
  line("loaded_records", loaded_.records);
  line("loaded_seconds", fmt::format("{:.3f}", loaded_.seconds));
  line("loaded_swapped_blocks", loaded_.spilled);
  return out;
}

}  // namespace keyfs
