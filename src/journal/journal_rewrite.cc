// The Journal's background rewrite (BGREWRITEAOF): a forked child writes the
// keyspace as a snapshot while the loop keeps serving.
//
// Why a fork: the child gets a copy of the whole keyspace at one instant for
// the price of copying page tables, and the kernel copies a page only when
// the loop changes it (copy on write) — the way Redis does it. The loop's
// part is short: write out and sync the live segment, open the next one, fork.
// Mutations made during the rewrite go to that next segment, which the
// snapshot does not replace; nothing is copied back at the end (see
// journal_files.h).
//
// The child touches nothing but its copy of the keyspace and the files it
// writes; it must not log (another thread may have held the logger's lock at
// the fork) and leaves with _exit. It dies with the parent (PR_SET_PDEATHSIG),
// so a killed keyfs does not leave a child holding the FUSE device open.
// It reports one line on a pipe: "ok <inodes> <records> <bytes>" or the error.

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/size.h"
#include "src/journal/journal.h"
#include "src/journal/snapshot.h"

namespace keyfs {

namespace {

constexpr int64_t kFirstRewriteRetry = 1'000'000'000;  // 1 s, doubling
constexpr int64_t kMaxRewriteRetry = 60'000'000'000;


void WriteAll(int fd, const std::string& text) {
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

// The rewrite's own work: writes the snapshot, renames it into place, syncs
// the directory. Returns the line to report: "ok <inodes> <records> <bytes>"
// or the error.
std::string WriteBase(const Keyspace& keyspace, uint64_t covers_seq, Env* env,
                      const std::string& dir, uint64_t gen, const BlockStore* store) {
  std::string final_path = dir + "/" + JournalBaseName(gen);
  std::string tmp_path = final_path + ".tmp";
  Result<SnapshotStats> stats = WriteSnapshot(keyspace, covers_seq, env, tmp_path, store);
  Status status = stats.status();
  if (status.ok()) status = env->RenameFile(tmp_path, final_path);
  if (status.ok()) status = env->SyncDir(dir);
  if (!status.ok()) return status.ToString();
  return "ok " + std::to_string(stats->inodes) + " " + std::to_string(stats->records) + " " +
         std::to_string(stats->bytes);
}

// In the child: WriteBase, reported on `fd`. Never returns.
[[noreturn]] void RunRewriteChild(const Keyspace& keyspace, uint64_t covers_seq, Env* env,
                                  const std::string& dir, uint64_t gen, const BlockStore* store,
                                  pid_t parent, int fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(2);  // the parent died before prctl
  std::string line = WriteBase(keyspace, covers_seq, env, dir, gen, store);
  WriteAll(fd, line);
  _exit(line.starts_with("ok ") ? 0 : 1);
}

}  // namespace

Status Journal::StartRewrite(std::string_view why) {
  if (rewrite_running()) return Status::Errno(EBUSY, "a journal rewrite is already running");
  if (error_kind_ == ErrorKind::kWrite) return error_;
  // Wanted until one succeeds: a failed one is retried (Cron).
  rewrite_wanted_ = true;
  int64_t start = clock_->MonotonicNanos();

  // The live segment is complete on disk before the next one starts, so the
  // two follow each other even after a crash. After a failed fsync it cannot
  // be trusted, and need not be: the snapshot replaces it.
  if (error_kind_ != ErrorKind::kSync && !WriteOut(/*sync=*/true)) return error_;
  // The snapshot names the copies the blocks have now: they must be durable
  // before it is. WriteOut synced the store first; after a failed fsync it
  // was skipped, so sync it here.
  if (error_kind_ == ErrorKind::kSync) RETURN_IF_ERROR(SyncStore(store_));
  uint64_t covers_seq = writer_->last_seq();
  uint64_t next_gen = gen_ + 1;
  if (writer_->written_size() == journal::kFileHeaderSize && writer_->pending_bytes() == 0 &&
      gen_ != base_gen_) {
    // The live segment holds no record yet (a rewrite that failed opened it,
    // and nothing happened since): the snapshot can take its generation, so
    // that retries do not leave a segment each behind.
    next_gen = gen_;
  } else {
    ASSIGN_OR_RETURN(auto next, JournalWriter::Create(env_, Path(JournalIncrName(next_gen)),
                                                      covers_seq));
    uint64_t closed_size = writer_->written_size();
    std::string closed = Path(JournalIncrName(gen_));
    closed_incr_bytes_ += closed_size;
    reserved_to_ = 0;
    writer_ = std::move(next);
    gen_ = next_gen;
    written_seq_ = covers_seq;
    // The room reserved past the closed segment's end moves to the new one
    // (truncating to its size frees the preallocated blocks): on a full disk
    // the reserve for changes that free room must not stay behind in a
    // segment nothing writes to any more (issue 9: rm on a full disk).
    Status trimmed = env_->TruncateFile(closed, closed_size);
    if (!trimmed.ok()) spdlog::warn("could not trim {}: {}; its preallocated room stays taken until the next "
                                      "rewrite removes it (keyfs-ctl rewrite)",
                                      closed, trimmed.ToString());
    (void)ReserveRoom(SpaceEffect::kAdds);
  }

  // Whatever goes dead from now on may still be referred to by the
  // snapshot about to be taken: it belongs to the new generation.
  if (on_generation_) on_generation_(gen_);
  // The snapshot may read copies in the store (swap mode): their space must
  // not be reused until it is done (BlockStore::SnapshotStarted).
  if (store_) store_->SnapshotStarted();
  if (!options_.fork_rewrite) {
    // Tests: the same steps in this process, so that every file operation
    // goes through the test's Env and a crash can be simulated between any
    // two of them.
    child_gen_ = next_gen;
    rewrite_started_ns_ = clock_->MonotonicNanos();
    rewrite_logged_ = LogThisRewrite();
    std::string line = WriteBase(*keyspace_, covers_seq, env_, dir_, next_gen, store_);
    FinishRewrite(line.starts_with("ok "), line);
    return Status::Ok();
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    int err = errno;
    if (store_) store_->SnapshotEnded();
    return Status::Errno(err, "pipe for the rewrite");
  }
  pid_t parent = getpid();
  int64_t fork_start = clock_->MonotonicNanos();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    if (store_) store_->SnapshotEnded();
    return Status::Errno(err, "fork for the journal rewrite");
  }
  if (pid == 0) {
    close(fds[0]);
    RunRewriteChild(*keyspace_, covers_seq, env_, dir_, next_gen, store_, parent,
                    fds[1]);
  }
  close(fds[1]);
  last_fork_ms_ = (clock_->MonotonicNanos() - fork_start) / 1e6;
  child_pid_ = pid;
  child_pipe_ = fds[0];
  child_gen_ = next_gen;
  child_output_.clear();
  rewrite_started_ns_ = clock_->MonotonicNanos();
  Status watch = loop_->WatchReadable(child_pipe_, [this] { OnRewriteOutput(); });
  if (!watch.ok()) {
    kill(child_pid_, SIGKILL);
    FinishRewrite(false, watch.ToString());
    return watch;
  }
  last_rewrite_start_ms_ = (rewrite_started_ns_ - start) / 1e6;
  max_rewrite_start_ms_ = std::max(max_rewrite_start_ms_, last_rewrite_start_ms_);
  rewrite_logged_ = LogThisRewrite();
  spdlog::log(rewrite_logged_ ? spdlog::level::info : spdlog::level::debug,
              "journal rewrite started ({}; pid {}, snapshot of {} inodes up to record {}; "
              "the loop paused {:.2f} ms for it, {:.2f} ms of which in fork)",
              why, pid, keyspace_->inode_count(), covers_seq, last_rewrite_start_ms_,
              last_fork_ms_);
  return Status::Ok();
}

// Rewrites that follow each other closely (a small auto_rewrite_min_size
// under steady writes) are logged as one summary a minute, not one by one.
bool Journal::LogThisRewrite() {
  int64_t now = clock_->MonotonicNanos();
  if (now - rewrite_log_window_ns_ < kRewriteLogIntervalNs) return false;
  LogRewriteSummary();
  rewrite_log_window_ns_ = now;
  return true;
}

void Journal::LogRewriteSummary() {
  if (rewrites_unlogged_ == 0) return;
  spdlog::info("{} more journal rewrites in the last {}s (last one: {:.2f}s, {} base)",
               rewrites_unlogged_, kRewriteLogIntervalNs / 1'000'000'000, last_rewrite_seconds_,
               FormatSize(base_bytes_));
  rewrites_unlogged_ = 0;
}

void Journal::OnRewriteOutput() {
  char buffer[512];
  ssize_t n = read(child_pipe_, buffer, sizeof(buffer));
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n > 0) {
    child_output_.append(buffer, static_cast<size_t>(n));
    return;
  }
  // End of the pipe: the child has exited (or is exiting).
  int wstatus = 0;
  waitpid(child_pid_, &wstatus, 0);
  child_pid_ = -1;  // reaped: FinishRewrite must not wait again
  bool ok = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0 && child_output_.starts_with("ok ");
  std::string message = child_output_;
  if (!ok && message.empty()) {
    message = WIFSIGNALED(wstatus)
                  ? std::string("the rewrite process was killed by ") + strsignal(WTERMSIG(wstatus))
                  : "the rewrite process exited with status " + std::to_string(WEXITSTATUS(wstatus));
  }
  FinishRewrite(ok, message);
}

void Journal::FinishRewrite(bool ok, const std::string& message) {
  if (child_pid_ > 0) waitpid(child_pid_, nullptr, 0);
  child_pid_ = -1;
  if (child_pipe_ >= 0) {
    loop_->Unwatch(child_pipe_);
    close(child_pipe_);
    child_pipe_ = -1;
  }
  if (store_) store_->SnapshotEnded();
  double seconds = (clock_->MonotonicNanos() - rewrite_started_ns_) / 1e9;
  if (!ok) {
    ++rewrites_failed_;
    last_rewrite_status_ = "failed: " + message;
    BackOffRewrite();
    spdlog::error("journal rewrite failed after {:.1f}s: {}; the journal is intact, retrying "
                  "in {}s",
                  seconds, message, rewrite_backoff_ns_ / 1'000'000'000);
    RemoveInBackground({Path(JournalBaseName(child_gen_)) + ".tmp"});
    return;
  }

  // The new base is in place: older files describe nothing the base and the
  // live segment do not.
  std::vector<std::string> obsolete;
  if (base_gen_) obsolete.push_back(Path(JournalBaseName(*base_gen_)));
  for (uint64_t gen = base_gen_.value_or(1); gen < child_gen_; ++gen) {
    obsolete.push_back(Path(JournalIncrName(gen)));
  }
  uint64_t inodes = 0, records = 0, bytes = 0;
  std::sscanf(message.c_str(), "ok %lu %lu %lu", &inodes, &records, &bytes);
  base_gen_ = child_gen_;
  base_bytes_ = bytes;
  closed_incr_bytes_ = 0;
  rewrite_base_size_ = JournalBytes();
  rewrite_backoff_ns_ = 0;
  rewrite_wanted_ = false;
  ++rewrites_;
  last_rewrite_status_ = "ok";
  last_rewrite_seconds_ = seconds;
  if (!rewrite_logged_) ++rewrites_unlogged_;
  spdlog::log(rewrite_logged_ ? spdlog::level::info : spdlog::level::debug,
              "journal rewritten in {:.2f}s: {} inodes in {} records, {}", seconds, inodes,
              records, FormatSize(bytes));
  RemoveInBackground(std::move(obsolete));
  if (on_rewritten_) on_rewritten_(*base_gen_);
  // After a failed fsync, the snapshot is the durable copy that was missing.
  if (error_kind_ == ErrorKind::kSync) {
    synced_seq_ = written_seq_ = writer_->last_seq();
    ClearError();
  }
}

void Journal::BackOffRewrite() {
  rewrite_backoff_ns_ = rewrite_backoff_ns_ == 0
                            ? kFirstRewriteRetry
                            : std::min(rewrite_backoff_ns_ * 2, kMaxRewriteRetry);
  rewrite_retry_at_ns_ = clock_->MonotonicNanos() + rewrite_backoff_ns_;
}

void Journal::MaybeAutoRewrite() {
  if (rewrite_running() || error_kind_ != ErrorKind::kNone) return;
  if (clock_->MonotonicNanos() < rewrite_retry_at_ns_) return;
  if (rewrite_wanted_) {
    // One was asked for (or started automatically) and failed: try again.
    if (Status status = StartRewrite("retrying the last one, which failed"); !status.ok()) {
      BackOffRewrite();
      spdlog::warn("could not start the journal rewrite: {}; retrying in {}s", status.ToString(),
                   rewrite_backoff_ns_ / 1'000'000'000);
    }
    return;
  }
  if (options_.auto_rewrite_percentage == 0) return;
  uint64_t size = JournalBytes();
  if (size < options_.auto_rewrite_min_size) return;
  uint64_t base = std::max<uint64_t>(rewrite_base_size_, 1);
  if (size <= base) return;
  if ((size - base) * 100 / base < options_.auto_rewrite_percentage) return;
  std::string why = fmt::format("the journal grew to {}, from {} after the last rewrite; "
                                "auto_rewrite_percentage={}, auto_rewrite_min_size={}",
                                FormatSize(size), FormatSize(rewrite_base_size_),
                                options_.auto_rewrite_percentage,
                                FormatSize(options_.auto_rewrite_min_size));
  if (Status status = StartRewrite(why); !status.ok()) {
    BackOffRewrite();
    spdlog::warn("could not start the journal rewrite: {}; retrying in {}s", status.ToString(),
                 rewrite_backoff_ns_ / 1'000'000'000);
  }
}

void Journal::RemoveInBackground(std::vector<std::string> paths) {
  Env* env = env_;
  worker_.Submit([env, paths = std::move(paths)] {
    for (const auto& path : paths) {
      Status status = env->RemoveFile(path);
      if (!status.ok() && status.code() != ENOENT) {
        spdlog::warn("could not remove {}: {}; it is no longer used: remove it by hand", path,
                     status.ToString());
      }
    }
  });
}

Journal::~Journal() {
  if (rewrite_running()) {
    kill(child_pid_, SIGKILL);
    FinishRewrite(false, "stopped");
  }
  if (keyspace_) keyspace_->set_log(nullptr);
  if (charged_ > 0) accountant_->Release(MemoryComponent::kJournal, charged_);
}

}  // namespace keyfs
