#include "tests/store/fault_injection_env.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

namespace keyfs {

namespace {

bool SameDir(const std::string& path, const std::string& dir) { return DirName(path) == dir; }

}  // namespace

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionEnv* env, std::string path,
                    std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(std::string_view data) override {
    RETURN_IF_ERROR(env_->Inject(FaultInjectionEnv::kAppend, path_));
    return base_->Append(data);
  }
  Status Sync() override {
    RETURN_IF_ERROR(env_->Inject(FaultInjectionEnv::kSync, path_));
    RETURN_IF_ERROR(base_->Sync());
    env_->RecordSync(path_, base_->Size());
    return Status::Ok();
  }
  Status Close() override { return base_->Close(); }
  Status Reserve(uint64_t from, uint64_t bytes) override {
    RETURN_IF_ERROR(env_->Inject(FaultInjectionEnv::kReserve, path_));
    return base_->Reserve(from, bytes);
  }
  uint64_t Size() const override { return base_->Size(); }

 private:
  FaultInjectionEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

class FaultRandomAccessFile final : public RandomAccessFile {
 public:
  FaultRandomAccessFile(FaultInjectionEnv* env, std::string path,
                        std::unique_ptr<RandomAccessFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Result<size_t> ReadAt(uint64_t offset, size_t n, char* scratch) const override {
    env_->RunReadHook(path_);
    RETURN_IF_ERROR(env_->Inject(FaultInjectionEnv::kRead, path_));
    return base_->ReadAt(offset, n, scratch);
  }
  Status WriteAt(uint64_t offset, std::string_view data) override {
    RETURN_IF_ERROR(env_->Inject(FaultInjectionEnv::kAppend, path_));
    return base_->WriteAt(offset, data);
  }
  Status Sync() override {
    RETURN_IF_ERROR(env_->Inject(FaultInjectionEnv::kSync, path_));
    ASSIGN_OR_RETURN(uint64_t size, base_->Size());
    RETURN_IF_ERROR(base_->Sync());
    env_->RecordSync(path_, size);
    return Status::Ok();
  }
  Status Reserve(uint64_t offset, uint64_t bytes) override {
    RETURN_IF_ERROR(env_->Inject(FaultInjectionEnv::kReserve, path_));
    return base_->Reserve(offset, bytes);
  }
  Result<uint64_t> Size() const override { return base_->Size(); }

 private:
  FaultInjectionEnv* env_;
  std::string path_;
  std::unique_ptr<RandomAccessFile> base_;
};

namespace {

// Every FaultInjectionEnv alive, for the fork handlers.
Mutex g_envs_mu;
std::set<FaultInjectionEnv*>* g_envs GUARDED_BY(g_envs_mu) = nullptr;

}  // namespace

FaultInjectionEnv::FaultInjectionEnv(Env* base) : base_(base) {
  static bool installed = [] {
    pthread_atfork(&FaultInjectionEnv::LockAllForFork, &FaultInjectionEnv::UnlockAllAfterFork,
                   &FaultInjectionEnv::UnlockAllAfterFork);
    return true;
  }();
  (void)installed;
  MutexLock lock(&g_envs_mu);
  if (!g_envs) g_envs = new std::set<FaultInjectionEnv*>;
  g_envs->insert(this);
}

FaultInjectionEnv::~FaultInjectionEnv() {
  MutexLock lock(&g_envs_mu);
  g_envs->erase(this);
}

// Before fork: hold every env's mutex, so that the child gets them unlocked
// and consistent; after it, in both processes, let go.
void FaultInjectionEnv::LockAllForFork() NO_THREAD_SAFETY_ANALYSIS {
  g_envs_mu.Lock();
  for (FaultInjectionEnv* env : *g_envs) env->mu_.Lock();
}

void FaultInjectionEnv::UnlockAllAfterFork() NO_THREAD_SAFETY_ANALYSIS {
  for (FaultInjectionEnv* env : *g_envs) env->mu_.Unlock();
  g_envs_mu.Unlock();
}

Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::OpenRandomAccessFile(
    const std::string& path, bool create) {
  RETURN_IF_ERROR(Inject(kOpen, path));
  bool existed = base_->FileExists(path);
  ASSIGN_OR_RETURN(auto file, base_->OpenRandomAccessFile(path, create));
  {
    MutexLock lock(&mu_);
    // The model: such files are appended to (block store segments); a crash
    // drops what was written past the last Sync.
    if (!existed) {
      synced_size_[path] = 0;
      unsynced_creations_.insert(path);
    } else if (!synced_size_.count(path)) {
      ASSIGN_OR_RETURN(synced_size_[path], file->Size());
    }
  }
  return std::unique_ptr<RandomAccessFile>(new FaultRandomAccessFile(this, path, std::move(file)));
}

// Not persistent (the swap file): nothing to drop at a crash.
Result<std::unique_ptr<RandomAccessFile>> FaultInjectionEnv::OpenExclusiveFile(
    const std::string& path) {
  RETURN_IF_ERROR(Inject(kOpen, path));
  ASSIGN_OR_RETURN(auto file, base_->OpenExclusiveFile(path));
  return std::unique_ptr<RandomAccessFile>(new FaultRandomAccessFile(this, path, std::move(file)));
}

void FaultInjectionEnv::SetReadHook(std::function<void(const std::string&)> hook) {
  MutexLock lock(&mu_);
  read_hook_ = std::move(hook);
}

void FaultInjectionEnv::RunReadHook(const std::string& path) {
  std::function<void(const std::string&)> hook;
  {
    MutexLock lock(&mu_);
    hook = read_hook_;
  }
  if (hook) hook(path);
}

void FaultInjectionEnv::FailNth(unsigned ops, int n, int err, std::string only) {
  MutexLock lock(&mu_);
  failures_.push_back({ops, n, err, std::move(only)});
}

void FaultInjectionEnv::FailFrom(unsigned ops, int err, std::string only) {
  MutexLock lock(&mu_);
  failures_.push_back({ops, -1, err, std::move(only)});
}

void FaultInjectionEnv::ClearFailures() {
  MutexLock lock(&mu_);
  failures_.clear();
  crash_countdown_ = -1;
}

void FaultInjectionEnv::CrashAfter(int n) {
  MutexLock lock(&mu_);
  crash_countdown_ = n;
}

int FaultInjectionEnv::calls(unsigned ops) const {
  MutexLock lock(&mu_);
  int total = 0;
  for (const auto& [op, count] : calls_) {
    if (op & ops) total += count;
  }
  return total;
}

Status FaultInjectionEnv::Inject(Op op, const std::string& path) {
  MutexLock lock(&mu_);
  ++calls_[op];
  if (crash_countdown_ == 0) return Status::Errno(EIO, path + " (crashed)");
  if (crash_countdown_ > 0) --crash_countdown_;
  for (auto it = failures_.begin(); it != failures_.end(); ++it) {
    if (!(it->ops & op)) continue;
    if (!it->only.empty() && path.find(it->only) == std::string::npos) continue;
    if (it->countdown < 0) return Status::Errno(it->err, path + " (injected)");
    if (--it->countdown == 0) {
      int err = it->err;
      failures_.erase(it);
      return Status::Errno(err, path + " (injected)");
    }
  }
  return Status::Ok();
}

void FaultInjectionEnv::RecordSync(const std::string& path, uint64_t size) {
  MutexLock lock(&mu_);
  synced_size_[path] = size;
}

Result<std::string> FaultInjectionEnv::BackUp(const std::string& path) {
  std::string backup = DirName(path) + "/.fault-injection-backup-" + std::to_string(getpid()) +
                       "-" + std::to_string(++backups_);
  if (link(path.c_str(), backup.c_str()) != 0) return Status::Errno(errno, "backup of " + path);
  return backup;
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::Wrap(
    const std::string& path, bool existed, Result<std::unique_ptr<WritableFile>> file) {
  if (!file.ok()) return file.status();
  {
    MutexLock lock(&mu_);
    // What is in the file now counts as durable unless the file is new.
    synced_size_[path] = existed ? (*file)->Size() : 0;
    if (!existed) unsynced_creations_.insert(path);
  }
  return std::unique_ptr<WritableFile>(
      new FaultWritableFile(this, path, std::move(file).value()));
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(
    const std::string& path) {
  RETURN_IF_ERROR(Inject(kOpen, path));
  bool existed = base_->FileExists(path);
  auto file = Wrap(path, existed, base_->NewWritableFile(path));
  if (file.ok() && existed) {
    MutexLock lock(&mu_);
    synced_size_[path] = 0;  // truncated, and the truncation is not synced either
  }
  return file;
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewAppendableFile(
    const std::string& path) {
  RETURN_IF_ERROR(Inject(kOpen, path));
  bool existed = base_->FileExists(path);
  return Wrap(path, existed, base_->NewAppendableFile(path));
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  RETURN_IF_ERROR(Inject(kRename, from));
  MutexLock lock(&mu_);
  std::string backup;
  if (base_->FileExists(to)) {
    ASSIGN_OR_RETURN(backup, BackUp(to));
  }
  Status status = base_->RenameFile(from, to);
  if (!status.ok()) {
    if (!backup.empty()) unlink(backup.c_str());
    return status;
  }
  pending_.push_back({from, to, backup});
  if (auto it = synced_size_.find(from); it != synced_size_.end()) {
    synced_size_[to] = it->second;
    synced_size_.erase(it);
  }
  if (unsynced_creations_.erase(from)) unsynced_creations_.insert(to);
  return Status::Ok();
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  RETURN_IF_ERROR(Inject(kRemove, path));
  MutexLock lock(&mu_);
  bool fresh = unsynced_creations_.count(path) > 0;
  std::string backup;
  if (!fresh && base_->FileExists(path)) {
    ASSIGN_OR_RETURN(backup, BackUp(path));
  }
  Status status = base_->RemoveFile(path);
  if (!status.ok()) {
    if (!backup.empty()) unlink(backup.c_str());
    return status;
  }
  unsynced_creations_.erase(path);
  if (!backup.empty()) pending_.push_back({"", path, backup});
  return Status::Ok();
}

Status FaultInjectionEnv::TruncateFile(const std::string& path, uint64_t size) {
  RETURN_IF_ERROR(Inject(kTruncate, path));
  return base_->TruncateFile(path, size);
}

Status FaultInjectionEnv::SyncDir(const std::string& path) {
  RETURN_IF_ERROR(Inject(kSyncDir, path));
  RETURN_IF_ERROR(base_->SyncDir(path));
  MutexLock lock(&mu_);
  for (auto it = unsynced_creations_.begin(); it != unsynced_creations_.end();) {
    it = SameDir(*it, path) ? unsynced_creations_.erase(it) : std::next(it);
  }
  auto durable = [&](const PendingChange& change) {
    if (!SameDir(change.to, path)) return false;
    if (!change.backup.empty()) unlink(change.backup.c_str());
    return true;
  };
  pending_.erase(std::remove_if(pending_.begin(), pending_.end(), durable), pending_.end());
  return Status::Ok();
}

Status FaultInjectionEnv::SimulateCrash() {
  MutexLock lock(&mu_);
  // Undo namespace changes, newest first.
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    if (!it->from.empty() && base_->FileExists(it->to)) {
      RETURN_IF_ERROR(base_->RenameFile(it->to, it->from));
      if (auto size = synced_size_.find(it->to); size != synced_size_.end()) {
        synced_size_[it->from] = size->second;
        synced_size_.erase(size);
      }
      if (unsynced_creations_.erase(it->to)) unsynced_creations_.insert(it->from);
    }
    if (!it->backup.empty()) RETURN_IF_ERROR(base_->RenameFile(it->backup, it->to));
  }
  pending_.clear();
  for (const auto& path : unsynced_creations_) {
    if (base_->FileExists(path)) RETURN_IF_ERROR(base_->RemoveFile(path));
    synced_size_.erase(path);
  }
  unsynced_creations_.clear();
  for (const auto& [path, size] : synced_size_) {
    if (!base_->FileExists(path)) continue;
    ASSIGN_OR_RETURN(uint64_t now, base_->GetFileSize(path));
    if (now > size) RETURN_IF_ERROR(base_->TruncateFile(path, size));
  }
  synced_size_.clear();
  return Status::Ok();
}

}  // namespace keyfs
