#pragma once

// FaultInjectionEnv: an Env for tests that makes the OS fail on purpose.
//
//  - Failures: FailNth() makes the n-th matching call from now fail once with
//    an errno (EIO, ENOSPC, ...); FailFrom() makes every matching call fail
//    until ClearFailures() (a disk that filled up, then got room again).
//  - Crashes: SimulateCrash() leaves the files as a power cut could:
//    data appended since a file's last Sync is dropped; files created since
//    their directory's last SyncDir disappear; renames and removals not yet
//    followed by a SyncDir of their directory are undone. (A real file system
//    may keep more; code that is right under this model is right under that.)
//
// Writers must be destroyed before SimulateCrash(), as a dying process's are.
// Thread-safe.

#include <map>
#include <set>
#include <string>
#include <functional>
#include <vector>

#include "src/base/mutex.h"
#include "store/env.h"

namespace keyfs {

class FaultInjectionEnv final : public Env {
 public:
  enum Op : unsigned {
    kOpen = 1 << 0,  // NewWritableFile, NewAppendableFile, Open*File
    kAppend = 1 << 1,  // and RandomAccessFile::WriteAt
    kSync = 1 << 2,
    kRename = 1 << 3,
    kRemove = 1 << 4,
    kTruncate = 1 << 5,
    kSyncDir = 1 << 6,
    kReserve = 1 << 7,
    kRead = 1 << 8,  // RandomAccessFile::ReadAt
    kAllOps = (1 << 9) - 1,
  };

  // Fork-safe: the mutex is taken around fork() (pthread_atfork), so a
  // forked journal rewrite never inherits it locked by an IO thread (DESIGN
  // §4.1, rule 7).
  explicit FaultInjectionEnv(Env* base);
  ~FaultInjectionEnv() override;

  // `only`: when not empty, only calls on paths containing it fail.
  void FailNth(unsigned ops, int n, int err, std::string only = {}) EXCLUDES(mu_);
  void FailFrom(unsigned ops, int err, std::string only = {}) EXCLUDES(mu_);
  void ClearFailures() EXCLUDES(mu_);
  // Runs `hook(path)` at the start of every RandomAccessFile::ReadAt, outside
  // the env's mutex (a test holds an IO thread there to step a race).
  void SetReadHook(std::function<void(const std::string&)> hook) EXCLUDES(mu_);
  void RunReadHook(const std::string& path) EXCLUDES(mu_);
  // The process dies after `n` more calls: every call from then on fails
  // with EIO (nothing more reaches the disk) until ClearFailures.
  void CrashAfter(int n) EXCLUDES(mu_);
  // Matching calls made so far (failed ones included).
  int calls(unsigned ops) const EXCLUDES(mu_);

  Status SimulateCrash() EXCLUDES(mu_);

  // Env
  Status CreateDirs(const std::string& path) override { return base_->CreateDirs(path); }
  Result<std::unique_ptr<FileLock>> LockFile(const std::string& path,
                                             const std::string& owner,
                                             std::string* previous) override {
    return base_->LockFile(path, owner, previous);
  }
  Status CheckWritableDir(const std::string& path) override {
    return base_->CheckWritableDir(path);
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> NewAppendableFile(const std::string& path) override;
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    return base_->NewSequentialFile(path);
  }
  Result<std::unique_ptr<RandomAccessFile>> OpenRandomAccessFile(const std::string& path,
                                                                 bool create) override;
  Result<std::unique_ptr<RandomAccessFile>> OpenExclusiveFile(const std::string& path) override;
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  Result<uint64_t> GetFileSize(const std::string& path) override {
    return base_->GetFileSize(path);
  }
  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    return base_->ListDir(path);
  }
  Status RenameFile(const std::string& from, const std::string& to) override;
  Status RemoveFile(const std::string& path) override;
  Status TruncateFile(const std::string& path, uint64_t size) override;
  Status SyncDir(const std::string& path) override;
  Result<FsSpace> GetSpace(const std::string& path) override { return base_->GetSpace(path); }

 private:
  friend class FaultWritableFile;
  friend class FaultRandomAccessFile;
  static void LockAllForFork();
  static void UnlockAllAfterFork();

  // Counts the call and returns the injected failure, if any.
  Status Inject(Op op, const std::string& path) EXCLUDES(mu_);
  std::function<void(const std::string&)> read_hook_ GUARDED_BY(mu_);
  void RecordSync(const std::string& path, uint64_t size) EXCLUDES(mu_);
  Result<std::unique_ptr<WritableFile>> Wrap(const std::string& path, bool existed,
                                             Result<std::unique_ptr<WritableFile>> file);
  // Hard-links `path` to a hidden name in its directory, so that a crash can
  // bring back what a rename replaced or a removal took away.
  Result<std::string> BackUp(const std::string& path) REQUIRES(mu_);

  struct Failure {
    unsigned ops;
    int countdown;  // fails when it reaches 0; -1: every time (sticky)
    int err;
    std::string only;
  };
  // A namespace change not yet made durable by SyncDir.
  struct PendingChange {
    std::string from;    // rename source; empty for a removal
    std::string to;      // rename target, or the removed path
    std::string backup;  // hard link to what `to` was before; empty if nothing
  };

  Env* const base_;
  mutable Mutex mu_;
  std::vector<Failure> failures_ GUARDED_BY(mu_);
  int crash_countdown_ GUARDED_BY(mu_) = -1;  // -1: no crash coming
  std::map<unsigned, int> calls_ GUARDED_BY(mu_);
  std::map<std::string, uint64_t> synced_size_ GUARDED_BY(mu_);
  std::set<std::string> unsynced_creations_ GUARDED_BY(mu_);
  std::vector<PendingChange> pending_ GUARDED_BY(mu_);
  int backups_ GUARDED_BY(mu_) = 0;
};

}  // namespace keyfs
