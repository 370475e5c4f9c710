#pragma once

// Server: one mounted keyfs. Owns, in this order of construction, the memory
// budget, the keyspace, the event loop, the block store (the disk store or
// the swap file, by mode), the IO threads, the
// journal, the block cache, the reply queue, the FUSE adapter and the mounted
// session, and wires them: the journal is replayed (loading from the store
// what it needs) before the cache learns the blocks and the session is
// mounted; the session fd, the IO threads' eventfd and signals go into the
// loop; before-sleep sends the cache's IO, then commits the journal, then
// sends the replies it allows; cron runs on a 10 Hz timer. At the end every
// dirty block is saved before the journal is closed (mode=disk), or, in
// mode=swap, the IO in flight ends and the swap file is removed once the
// journal, which holds every byte, is closed.
//
// Threading: created and run on the main thread, which then is the loop thread.

#include <functional>
#include <memory>

#include <absl/container/flat_hash_set.h>

#include "fuse/fuse_adapter.h"
#include "fuse/fuse_session.h"
#include "fuse/expiry_agent.h"
#include "fuse/options.h"
#include "src/base/clock.h"
#include "src/base/memory_accountant.h"
#include "src/cache/block_cache.h"
#include "src/cache/compactor.h"
#include "src/cache/io_queue.h"
#include "src/journal/journal.h"
#include "store/disk_block_store.h"
#include "store/swap/swap_file.h"
#include "src/keyspace/keyspace.h"
#include "src/loop/event_loop.h"
#include "src/loop/reply_queue.h"
#include "store/env.h"

namespace keyfs {

class Server final : public ServerControl {
 public:
  // The control attributes of keyfs-ctl config: kPrefix + kConfigName.
  static constexpr std::string_view kConfigName = "config";

  // Replays the journal in options.store_dir (locked by the caller), tells
  // `replayed` what replay did, then mounts. The signals must already be
  // blocked in this and every thread.
  static Result<std::unique_ptr<Server>> Start(
      const MountOptions& options, Env* env,
      const std::function<void(const LoadedJournal&)>& replayed = [](const LoadedJournal&) {});
  ~Server() override;

  // Serves until unmounted from outside or told to stop by a signal; then
  // calls `on_stopping` and writes and syncs the journal and unmounts. OK
  // when the journal is safe.
  Status Run(const std::function<void()>& on_stopping = [] {});

  // ServerControl
  void RequestSync() override { journal_->RequestSync(); }
  Result<std::string> GetControl(std::string_view name) override;
  Status SetControl(std::string_view name, std::string_view value) override;
  Result<std::string> GetFileControl(Ino ino, std::string_view name) override;
  Status SetFileControl(Ino ino, std::string_view name, std::string_view value,
                        uid_t uid) override;
  Status RemoveFileControl(Ino ino, std::string_view name, uid_t uid) override;
  std::string InfoText() override { return Info(); }
  FsStats StatFs() override;

 private:
  explicit Server(const MountOptions& options);
  // The buffer pool keeps up to max_memory / kPoolShare (server.cc).
  static constexpr uint64_t kPoolShare = 16;
  void BeforeSleep();
  void Cron();
  // Hands due files to the expiry agent (at most kMaxExpiring at a time).
  void ExpireThroughMount();
  // SIGTERM and SIGINT: stops once the expiry agent's job in hand is done
  // (or kStopWaitNs later: the cron checks).
  void StopServing();
  int64_t stop_requested_ns_ = 0;  // monotonic; 0 while serving
  void OnSignal(int signo);
  // Whether the store's disk keeps room for what changes need (see
  // server.cc, "room on the disk"); ENOSPC with the reason when not.
  Status CheckDiskRoom();
  void MeasureDisk();
  // At mount: ENOSPC, saying what max_memory they need, when the pinned
  // files replay brought back do not fit in this max_memory.
  Status CheckPinsFit() const;
  // Logs (rate-limited) changes refused for lack of memory, and a nearly
  // full budget, with the figures and what to do.
  void WarnAboutMemory();
  std::string MemoryBreakdown() const;  // "blocks 60.0 MiB, inodes 1.2 MiB, ..."
  std::string MemoryInfo() const;       // INFO lines of the memory budget
  std::string Info() const;             // INFO: every section
  std::string StatsInfo() const;        // # Stats: requests served
  std::string StoreInfo() const;        // # Store (mode=disk) or # Swap (mode=swap)
  // keyfs-ctl config (server_config.cc): "user.keyfs.config" lists the live
  // options, "user.keyfs.config.NAME" reads or sets one. `name` is what
  // follows kPrefix, and starts with kConfigName.
  Result<std::string> GetConfig(std::string_view name) const;
  Status SetConfig(std::string_view name, std::string_view value);
  // user.keyfs.pin set to 1 or 0 (or removed: 0).
  Status SetPin(Ino ino, bool pinned);
  // Makes `changed` (options_ with one live option changed) hold now.
  Status ApplyLiveOptions(const MountOptions& changed);
  // A file's lifetime (server_lifetime.cc): user.keyfs.ttl (seconds left)
  // and user.keyfs.expire_at (Unix seconds); `name` follows kPrefix.
  static bool IsLifetimeName(std::string_view name) {
    return name == "ttl" || name == "expire_at";
  }
  Result<std::string> GetLifetime(Ino ino, std::string_view name) const;
  // EPERM unless `uid` is root or owns `ino` (ENOENT when it is gone).
  Status CheckOwner(Ino ino, uid_t uid) const;
  Status SetLifetime(Ino ino, std::string_view name, std::string_view value);
  // Opens the block store of options.mode.
  Status OpenStore(const MountOptions& options, Env* env);

  // As mounted, but for the live options (live_options.h), which keyfs-ctl
  // config changes until unmount.
  MountOptions options_;
  const Clock* const clock_;
  MemoryAccountant memory_;
  Keyspace keyspace_;
  std::unique_ptr<EventLoop> loop_;
  Env* env_ = nullptr;
  // One of the two, by mode; store_ is the one that is there.
  std::unique_ptr<DiskBlockStore> disk_;
  std::unique_ptr<SwapFile> swap_;
  BlockStore* store_ = nullptr;
  std::unique_ptr<IoQueue> io_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<BlockCache> cache_;
  std::unique_ptr<Compactor> compactor_;  // mode=disk only
  ReplyQueue replies_;
  FuseAdapter adapter_;
  std::unique_ptr<FuseSession> session_;
  std::unique_ptr<ExpiryAgent> expiry_agent_;  // after session_: stopped before it goes
  // Due files the agent is removing now.
  absl::flat_hash_set<Ino> expiring_;
  int64_t last_memory_warning_ = INT64_MIN / 2;  // monotonic ns
  int64_t last_refusal_warning_ = INT64_MIN / 2;
  uint64_t logged_refusals_ = 0;
  uint64_t cron_ticks_ = 0;
  // The store's disk as last measured (MeasureDisk), and what keyfs had
  // written by then.
  uint64_t disk_available_ = UINT64_MAX;
  uint64_t disk_total_ = 0;
  uint64_t journal_bytes_measured_ = 0;
  uint64_t store_bytes_measured_ = 0;
  int64_t last_disk_warning_ = INT64_MIN / 2;
  int64_t started_ns_ = 0;  // monotonic, when serving began
};

}  // namespace keyfs
