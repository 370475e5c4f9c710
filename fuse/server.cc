#include "fuse/server.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "keyfs_version.h"
#include "src/base/block_buffer.h"
#include "src/base/logging.h"
#include "src/base/size.h"
#include "store/block_format.h"

namespace keyfs {

namespace {

// Requests handled per wake-up before the loop looks at its other sources.
constexpr auto kCronInterval = std::chrono::milliseconds(100);
// Appended files give back their unused room after one to two seconds idle.
constexpr uint64_t kTrimSlackTicks = 10;
// Files are expired through the mount (ExpireThroughMount) as fast as the
// expiry agent goes, some ten thousand a second. Those still there this long
// after their end (a million ending at once) the keyspace removes itself,
// for at most this long per tick (Redis's active expire cycle takes up to
// 25% of its 100 ms tick too); the rest go next tick.
constexpr int64_t kExpiryLagMs = 2000;
constexpr int64_t kCronExpiryNs = 25'000'000;
// How long SIGTERM waits for the expiry thread's job in hand.
constexpr int64_t kStopWaitNs = 5'000'000'000;
// Warn when the budget is this full, at most once a minute.
constexpr double kMemoryWarningRatio = 0.9;
constexpr int64_t kMemoryWarningIntervalNs = 60'000'000'000;
// Refused changes are reported at once, then at most every 10 seconds.
constexpr int64_t kRefusalWarningIntervalNs = 10'000'000'000;
// Unmount waits this long for the dirty blocks to be saved.
constexpr int64_t kDrainTimeoutNs = 60'000'000'000;

// Segments of the disk store: big enough to write in long runs, small enough
// that reclaiming one (at most its size in free space) works on a small disk.
uint64_t SegmentBytesFor(Env* env, const std::string& dir) {
  constexpr uint64_t kMax = uint64_t{32} << 20, kMin = uint64_t{1} << 20;
  auto space = env->GetSpace(dir);
  if (!space.ok()) return kMax;
  return std::clamp(space->total / 32, kMin, kMax);
}

}  // namespace

Server::Server(const MountOptions& options)
    : options_(options),
      clock_(SystemClock::Default()),
      memory_(options.max_memory),
      keyspace_(KeyspaceOptions{options.block_size}, &memory_, clock_),
      replies_(&memory_),
      adapter_(&keyspace_, &replies_, this, options.adapter) {
  // A share of the budget (a sixteenth) in freed block buffers, kept for the next
  // blocks (src/base/buffer_pool.h): more than one eviction from the high
  // watermark to the low one frees (5%), so that an eviction hands its
  // buffers to the loads that follow instead of unmapping them one by one.
  memory_.EnableBufferPool(options.max_memory / kPoolShare);
  // Memory faulted in ahead (buffer_pool.h): blocks for the writes and
  // loads that fill them, 4 MiB of them and at least two; and copies of
  // full-size write payloads (max_write), which a write keeps while it
  // waits for room or for blocks to load (fuse_request.h; a whole-block
  // write needs none: its blocks are its copy).
  memory_.buffer_pool()->KeepReady(
      BlockBuffer::RequestFor(options.block_size),
      std::clamp<size_t>((size_t{4} << 20) / options.block_size, 2, 64));
  memory_.buffer_pool()->KeepReady(options.adapter.max_write, 4);
}

Server::~Server() {
  // Send what is queued before the session goes away.
  replies_.Flush();
}


Result<std::unique_ptr<Server>> Server::Start(
    const MountOptions& options, Env* env,
    const std::function<void(const LoadedJournal&)>& replayed) {
  std::unique_ptr<Server> server(new Server(options));
  server->env_ = env;
  ASSIGN_OR_RETURN(server->loop_, EventLoop::Create(EventLoopOptions{options.io_uring, options.busy_poll_ns}));
  RETURN_IF_ERROR(server->OpenStore(options, env));
  server->io_ = std::make_unique<IoQueue>(server->store_, &server->memory_, options.io_threads);
  ASSIGN_OR_RETURN(server->journal_,
                   Journal::Open(env, options.store_dir, options.journal, &server->keyspace_,
                                 server->loop_.get(), &server->memory_, server->clock_,
                                 server->store_));
  replayed(server->journal_->loaded());
  // Replay in swap mode fills the budget and swaps out as it goes: those
  // refusals were its own, not changes refused.
  server->logged_refusals_ = server->memory_.refusals();

  // The cache learns every block replay left (rule 6 of block_cache.h: what
  // the keyspace refers to is live in the store, the rest is dead space).
  Server* raw = server.get();
  CacheOptions cache_options;
  cache_options.flush_delay_ns = options.flush_delay_ns;
  // 4 MiB ahead of a sequential reader, in blocks: enough to keep both IO
  // threads and the disk busy (scripts/bench-cache: 4 blocks of 256 KiB read
  // at 440 MiB/s, 16 at 570-750).
  cache_options.readahead_blocks =
      static_cast<uint32_t>(std::clamp<uint64_t>((4 << 20) / options.block_size, 2, 64));
  raw->cache_ = std::make_unique<BlockCache>(&raw->keyspace_, raw->store_, raw->io_.get(),
                                             &raw->memory_, raw->clock_, cache_options,
                                             raw->journal_.get());
  raw->cache_->OnJournalGeneration(raw->journal_->generation());
  raw->cache_->Attach([raw](const BlockLocation& where) { raw->store_->MarkLive(where); });
  raw->store_->FinishRecovery();
  if (raw->disk_) {
    CompactorOptions compactor_options;
    compactor_options.reserve_bytes = std::min<uint64_t>(raw->disk_->segment_bytes(), 8 << 20);
    raw->compactor_ = std::make_unique<Compactor>(raw->disk_.get(), raw->cache_.get(),
                                                  raw->journal_.get(), raw->clock_,
                                                  compactor_options);
  }
  raw->journal_->set_generation_listener([raw](uint64_t gen) { raw->cache_->OnJournalGeneration(gen); });
  raw->journal_->set_rewritten_listener([raw](uint64_t base) {
    raw->cache_->OnJournalRewritten(base, [raw] {
      if (raw->compactor_) raw->compactor_->OnReleased();
    });
  });
  // When blocks cannot be saved for want of disk space, changes that add
  // data are refused at once (ENOSPC means the disk is full), so what waits
  // in memory unsaved stays small.
  raw->MeasureDisk();
  raw->journal_->set_space_check([raw] { return raw->CheckDiskRoom(); });
  raw->adapter_.set_cache(raw->cache_.get());
  // Lifetimes run from now on; files whose lifetime ended while keyfs was
  // not mounted go before anyone can see them.
  raw->keyspace_.set_expiry_clock(raw->clock_);
  if (!options.read_only) {
    if (size_t expired = raw->keyspace_.ExpireDue(INT64_MAX); expired > 0) {
      spdlog::info("{} file(s) whose lifetime ended while unmounted were removed", expired);
    }
  }
  raw->keyspace_.TakeRemovedNames();  // the kernel has seen none of them
  // After the expiry: pinned files that expired take no room.
  RETURN_IF_ERROR(raw->CheckPinsFit());

  std::vector<std::string> kernel_options = options.kernel_options;
  kernel_options.push_back("default_permissions");
  bool has_fsname = false, has_subtype = false;
  for (const auto& option : kernel_options) {
    has_fsname |= option.starts_with("fsname=");
    has_subtype |= option.starts_with("subtype=");
  }
  if (!has_fsname) kernel_options.push_back("fsname=" + options.store_dir);
  if (!has_subtype) kernel_options.push_back("subtype=keyfs");

  ASSIGN_OR_RETURN(server->session_,
                   FuseSession::Mount(options.mountpoint, kernel_options, options.debug,
                                      FuseAdapter::Operations(), &server->adapter_));

  raw->started_ns_ = raw->clock_->MonotonicNanos();
  RETURN_IF_ERROR(raw->loop_->WatchReadable(raw->io_->wake_fd(), [raw] { raw->cache_->OnIoReady(); }));
  RETURN_IF_ERROR(raw->session_->Attach(raw->loop_.get(), options.adapter.max_write, [raw] {
    spdlog::info("{} was unmounted", raw->options_.mountpoint);
    raw->expiry_agent_->Drop();  // its paths would now name whatever is there
    raw->loop_->Stop();
  }));
  raw->session_->set_gather([raw] { return raw->journal_->CommitWillSync(); });
  raw->expiry_agent_ =
      std::make_unique<ExpiryAgent>(raw->session_.get(), raw->loop_.get(), options.mountpoint);
  ExpiryAgent* agent = raw->expiry_agent_.get();
  raw->adapter_.set_expiry_agent_tid([agent] { return agent->tid(); });
  RETURN_IF_ERROR(raw->loop_->WatchSignals({SIGTERM, SIGINT, SIGHUP},
                                           [raw](int signo) { raw->OnSignal(signo); }));
  RETURN_IF_ERROR(raw->loop_->AddTimer(kCronInterval, [raw] { raw->Cron(); }));
  raw->loop_->AddBeforeSleep([raw] { raw->BeforeSleep(); });

  BlockStoreStats stored = raw->store_->Stats();
  std::string where = raw->swap_ ? fmt::format("swap file {} of {}, page_size {}",
                                               raw->swap_->path(),
                                               FormatSize(raw->swap_->swap_stats().size),
                                               FormatSize(options.page_size))
                                 : "disk store";
  spdlog::info("keyfs mounted {} (store {}, mode {} ({}), max_memory {}, block_size {}, "
               "flush_delay {}ms, io_threads {}, compression {}, appendfsync {}, requests "
               "through {}; {} inodes, {} {})",
               options.mountpoint, options.store_dir, raw->swap_ ? "swap" : "disk", where,
               FormatSize(options.max_memory), FormatSize(options.block_size),
               options.flush_delay_ns / 1'000'000, options.io_threads,
               options.compress ? "lz4" : "none", AppendFsyncName(options.journal.appendfsync),
               raw->loop_->uses_io_uring()
                   ? fmt::format("io_uring, busy_poll {}us", options.busy_poll_ns / 1000)
                   : std::string("epoll"),
               raw->keyspace_.inode_count(), FormatSize(stored.live_bytes),
               raw->swap_ ? "swapped out by replay" : "in the store");
  return server;
}

Status Server::OpenStore(const MountOptions& options, Env* env) {
  if (options.mode == StoreMode::kSwap) {
    // The journal of a store that has been mounted with mode=disk may refer
    // to blocks in its disk store, which swap mode does not read. (The other
    // way round works: a swap-mode journal holds every byte.)
    ASSIGN_OR_RETURN(size_t segments, DiskBlockStore::CountSegments(env, options.store_dir));
    if (segments > 0) {
      return Status::Errno(EINVAL, fmt::format("the store {} keeps blocks in its disk store ({} "
                                               "segment files in {}/blocks): mount it with "
                                               "mode=disk (a store used only with mode=swap "
                                               "mounts either way)",
                                               options.store_dir, segments, options.store_dir));
    }
    SwapFileOptions swap;
    swap.path = options.swap_file;
    swap.size = options.swap_size;
    swap.page_size = options.page_size;
    // The header page and the largest block keyfs makes, with its header.
    swap.min_size = block_format::RawRecordSize(options.block_size) + 2 * options.page_size;
    swap.compress = options.compress;
    swap.owner = fmt::format("keyfs pid {} on {}, store {}", getpid(), options.mountpoint,
                             options.store_dir);
    ASSIGN_OR_RETURN(swap_, SwapFile::Create(env, swap, &memory_));
    store_ = swap_.get();
    return Status::Ok();
  }
  DiskStoreOptions disk;
  disk.compress = options.compress;
  disk.segment_bytes = SegmentBytesFor(env, options.store_dir);
  ASSIGN_OR_RETURN(disk_, DiskBlockStore::Open(env, options.store_dir, disk));
  store_ = disk_.get();
  return Status::Ok();
}

Status Server::Run(const std::function<void()>& on_stopping) {
  Status status = loop_->Run();
  on_stopping();
  if (swap_) {
    // The journal holds every byte and the swap file goes: nothing to save,
    // only the IO in flight to wait for.
    if (!cache_->DrainIo(kDrainTimeoutNs)) spdlog::warn("unmounting with IO still in flight");
  } else if (!cache_->SaveAllAndDrain(kDrainTimeoutNs)) {
    // Everything dirty goes to the store, so the next mount replays little.
    // Should the store refuse (a full or failing disk), nothing is lost: the
    // journal holds those blocks' bytes.
    spdlog::warn("unmounting with {} blocks not saved to the store ({}); they are in the "
                 "journal and come back at the next mount",
                 cache_->dirty_blocks(), cache_->Info().find("last_save_status:ok") != std::string::npos
                                             ? "time ran out" : "saving failed");
  }
  cache_->AbandonAll(EIO);
  Status closed = journal_->Close();
  if (closed.ok()) replies_.ReleaseParked();
  if (swap_) {
    // Nothing in it is of use past this process (the journal has every
    // byte); IO still running after a drain that timed out keeps its
    // descriptor, and the file goes from the directory now.
    Status removed = swap_->Remove();
    if (!removed.ok()) {
      spdlog::warn("could not remove the swap file: {}; it is no longer used: remove {} by hand "
                   "(the next mount takes it over otherwise)",
                   removed.ToString(), swap_->path());
    }
  }
  replies_.Flush();
  expiry_agent_->Stop();
  session_->Unmount();
  spdlog::info("keyfs stopped serving {}", options_.mountpoint);
  if (!status.ok()) return status;
  return closed;
}

// The cache's IO first (what requests that ran again queued), then the
// journal: no reply of this iteration may leave before the records of its
// changes are written (and synced, when that is due).
void Server::BeforeSleep() {
  // Through the reply queue, after every reply queued before the removal:
  // a reply parked until the journal is synced (a lookup that found the
  // file) must not reach the kernel after the news that it is gone.
  for (RemovedName& removed : keyspace_.TakeRemovedNames()) {
    replies_.Defer([agent = expiry_agent_.get(), removed = std::move(removed)]() mutable {
      agent->NotifyRemoved(removed.parent, removed.child, std::move(removed.name));
    });
  }
  cache_->Flush();
  if (!journal_->Commit()) replies_.Park();
  if (journal_->durable()) replies_.ReleaseParked();
  replies_.Flush();
}

std::string Server::MemoryInfo() const {
  std::string out = fmt::format("max_memory:{}\nused_memory:{}\n", memory_.limit(), memory_.Used());
  for (int i = 0; i < static_cast<int>(MemoryComponent::kCount); ++i) {
    auto component = static_cast<MemoryComponent>(i);
    out += fmt::format("used_memory_{}:{}\n", MemoryComponentName(component),
                       memory_.Used(component));
  }
  out += fmt::format("refused_for_memory:{}\n", memory_.refusals());
  return out;
}

// Redis's INFO: sections of "name:value" lines.
std::string Server::Info() const {
  int64_t uptime_ns = clock_->MonotonicNanos() - started_ns_;
  std::string out = "# Server\n";
  out += fmt::format("keyfs_version:{}\n", KEYFS_VERSION);
  out += fmt::format("pid:{}\n", getpid());
  out += fmt::format("mountpoint:{}\n", options_.mountpoint);
  out += fmt::format("store:{}\n", options_.store_dir);
  out += fmt::format("uptime_in_seconds:{}\n", uptime_ns / 1'000'000'000);
  out += fmt::format("request_path:{}\n", loop_->uses_io_uring() ? "io_uring" : "epoll");
  out += fmt::format("busy_poll_us:{}\n",
                     loop_->uses_io_uring() ? options_.busy_poll_ns / 1000 : 0);
  out += fmt::format("loop_iterations:{}\n", loop_->iterations());
  out += "\n# Stats\n" + StatsInfo();
  out += "\n# Keyspace\n";
  out += fmt::format("inodes:{}\n", keyspace_.inode_count());
  out += fmt::format("keys_with_ttl:{}\n", keyspace_.keys_with_ttl());
  out += fmt::format("block_size:{}\n", keyspace_.block_size());
  out += "\n# Memory\n" + MemoryInfo();
  out += "\n" + cache_->Info();
  out += StoreInfo();
  out += "\n# Journal\n" + journal_->Info();
  return out;
}

std::string Server::StatsInfo() const {
  const RequestStats& stats = adapter_.stats();
  std::string out = fmt::format("requests_total:{}\n", stats.requests);
  out += fmt::format("reads_total:{}\n", stats.reads);
  out += fmt::format("read_bytes_total:{}\n", stats.read_bytes);
  out += fmt::format("writes_total:{}\n", stats.writes);
  out += fmt::format("written_bytes_total:{}\n", stats.written_bytes);
  out += fmt::format("expired_keys:{}\n", keyspace_.expired_keys());
  ExpiryAgent::Stats expiry = expiry_agent_ ? expiry_agent_->stats() : ExpiryAgent::Stats{};
  out += fmt::format("expired_unlinks_total:{}\n", expiry.unlinked);
  out += fmt::format("expired_unlinks_failed_total:{}\n", expiry.unlink_failed);
  out += fmt::format("expiry_notifications_total:{}\n", expiry.notified);
  return out;
}

std::string Server::StoreInfo() const {
  BlockStoreStats stats = store_->Stats();
  std::string out;
  if (swap_) {
    SwapStats swap = swap_->swap_stats();
    out += "\n# Swap\n";
    out += "mode:swap\n";
    out += fmt::format("swap_file:{}\n", swap_->path());
    out += fmt::format("compression:{}\n", options_.compress ? "lz4" : "none");
    out += fmt::format("swap_size:{}\n", swap.size);
    out += fmt::format("swap_page_size:{}\n", swap.page_size);
    out += fmt::format("swap_pages:{}\n", swap.pages);
    out += fmt::format("swap_pages_used:{}\n", swap.pages_used);
    out += fmt::format("swap_pages_held:{}\n", swap.pages_held);
    out += fmt::format("swap_free_extents:{}\n", swap.free_extents);
    out += fmt::format("swap_largest_free_extent:{}\n", swap.largest_free_extent);
    out += fmt::format("swap_live_bytes:{}\n", stats.live_bytes);
    out += fmt::format("swap_ins_total:{}\n", stats.loads + stats.range_loads);
    out += fmt::format("swap_outs_total:{}\n", stats.saves);
    out += fmt::format("swap_saved_raw_bytes:{}\n", stats.raw_bytes_saved);
    out += fmt::format("swap_saved_stored_bytes:{}\n", stats.stored_bytes_saved);
    out += fmt::format("swap_damaged_blocks:{}\n", stats.damaged);
    return out;
  }
  out += "\n# Store\n";
  out += "mode:disk\n";
  out += fmt::format("compression:{}\n", options_.compress ? "lz4" : "none");
  out += fmt::format("store_bytes:{}\n", stats.saved_bytes);
  out += fmt::format("store_live_bytes:{}\n", stats.live_bytes);
  out += fmt::format("store_dead_bytes:{}\n", stats.saved_bytes - std::min(stats.saved_bytes, stats.live_bytes));
  out += fmt::format("store_segments:{}\n", stats.segments);
  out += fmt::format("store_retired_segments:{}\n", stats.retired_segments);
  out += fmt::format("store_saved_raw_bytes:{}\n", stats.raw_bytes_saved);
  out += fmt::format("store_saved_stored_bytes:{}\n", stats.stored_bytes_saved);
  out += fmt::format("store_damaged_blocks:{}\n", stats.damaged);
  out += compactor_->Info();
  return out;
}

Result<std::string> Server::GetFileControl(Ino ino, std::string_view name) {
  name.remove_prefix(kPrefix.size());
  if (IsLifetimeName(name)) return GetLifetime(ino, name);
  if (name == "state") {
    std::string state = cache_->StateOf(ino);
    if (!state.empty()) return state;
  }
  if (name == "pin") {
    const Inode* inode = keyspace_.FindInode(ino);
    if (inode && inode->is_regular()) return std::string(inode->pinned ? "1" : "0");
  }
  return Status::Errno(ENODATA);
}

Status Server::SetPin(Ino ino, bool pinned) {
  Status status = keyspace_.SetPinned(ino, pinned);
  if (status.code() == ENOSPC) {
    spdlog::info("pinning inode {} refused: {}", ino, status.message());
  } else if (status.ok()) {
    spdlog::debug("inode {} {}pinned: {} pinned in {} files", ino, pinned ? "" : "un",
                  FormatSize(keyspace_.pinned_bytes()), keyspace_.pinned_files());
  }
  return status;
}

Status Server::CheckOwner(Ino ino, uid_t uid) const {
  const Inode* inode = keyspace_.FindInode(ino);
  if (!inode) return Status::Errno(ENOENT);
  if (uid != 0 && uid != inode->uid) return Status::Errno(EPERM);
  return Status::Ok();
}

Status Server::RemoveFileControl(Ino ino, std::string_view name, uid_t uid) {
  name.remove_prefix(kPrefix.size());
  if (name != "pin" && !IsLifetimeName(name)) return Status::Errno(EPERM);
  if (ino == kRootIno) return Status::Errno(ENODATA);
  RETURN_IF_ERROR(CheckOwner(ino, uid));
  return name == "pin" ? SetPin(ino, false) : keyspace_.ClearExpiry(ino);
}

Status Server::SetFileControl(Ino ino, std::string_view name, std::string_view value,
                              uid_t uid) {
  name.remove_prefix(kPrefix.size());
  if (IsLifetimeName(name) || name == "pin") {
    // Removing a file by its lifetime, or holding memory for it, is its
    // owner's decision, as chmod is: not any writer's (a writer of a file in
    // a sticky directory may not remove it either).
    RETURN_IF_ERROR(CheckOwner(ino, uid));
  }
  if (IsLifetimeName(name)) return SetLifetime(ino, name, value);
  if (name == "pin") {
    if (value != "0" && value != "1") return Status::Errno(EINVAL);
    return SetPin(ino, value == "1");
  }
  if (name != "evict" && name != "prefetch") return Status::Errno(EPERM);
  // Any of "", "1" (setfattr -n NAME FILE, or -v 1): the act, not a setting.
  if (!value.empty() && value != "1") return Status::Errno(EINVAL);
  const Inode* inode = keyspace_.FindInode(ino);
  if (!inode) return Status::Errno(ENOENT);
  if (inode->is_dir()) return Status::Errno(EISDIR);  // keyfs-ctl -r walks the tree
  if (!inode->is_regular()) return Status::Errno(EINVAL);
  if (name == "evict" && inode->pinned) return Status::Errno(EBUSY);  // unpin it first
  BlockCache::FileAction action =
      name == "evict" ? cache_->EvictFile(ino) : cache_->PrefetchFile(ino);
  spdlog::debug("{} of inode {}: {} now, {} after their save, {} skipped", name, ino,
                action.now, action.later, action.skipped);
  return Status::Ok();
}

FsStats Server::StatFs() {
  FsStats stats = keyspace_.StatFs();
  // The size is the store's disk (what the data can grow to), not the cache.
  auto space = env_->GetSpace(options_.store_dir);
  if (space.ok()) {
    stats.bytes_limit = space->total;
    stats.bytes_used = space->total - std::min(space->total, space->available);
  }
  return stats;
}

Result<std::string> Server::GetControl(std::string_view name) {
  name.remove_prefix(kPrefix.size());
  if (name == "info") return Info();
  if (name == "cache") return cache_->Info();
  if (name == "journal") return journal_->Info();
  if (name == "memory") return MemoryInfo();
  if (name.starts_with(kConfigName)) return GetConfig(name);
  return Status::Errno(ENODATA);
}

Status Server::SetControl(std::string_view name, std::string_view value) {
  name.remove_prefix(kPrefix.size());
  if (name.starts_with(kConfigName)) return SetConfig(name, value);
  if (name == "rewrite") return journal_->StartRewrite();
  if (name == "compact") {
    if (!compactor_) return Status::Errno(EINVAL, "mode=swap has no store to compact");
    return compactor_->Start("asked for");
  }
  if (name == "sync") {
    journal_->RequestSync();
    return Status::Ok();
  }
  if (IsLifetimeName(name)) return Status::Errno(EINVAL, "a directory has no lifetime");
  return Status::Errno(EPERM);
}

void Server::OnSignal(int signo) {
  if (signo == SIGHUP && !LoggingToStderr()) {
    // logrotate's postrotate: the old file was moved away; write to a new one.
    // (Logging to stderr, keyfs -f in a terminal: SIGHUP is the terminal
    // going away, and unmounts as SIGTERM does.)
    Status reopened = ReopenLog();
    if (reopened.ok()) {
      if (!LogFilePath().empty()) spdlog::info("log file {} reopened (SIGHUP)", LogFilePath());
    } else {
      spdlog::warn("{}; still logging to the old file: make the directory writable and send "
                   "SIGHUP again (kill -HUP {})",
                   reopened.message(), getpid());
    }
    return;
  }
  spdlog::info("received {}, unmounting {}", strsignal(signo), options_.mountpoint);
  StopServing();
}

void Server::StopServing() {
  if (stop_requested_ns_ == 0) stop_requested_ns_ = clock_->MonotonicNanos();
  expiry_agent_->RequestStop([this] { loop_->Stop(); });
}

// Expired files leave through the mount, as a user's rm would: the kernel
// then tells inotify watchers (expiry_agent.h). A file the agent could not
// remove (a permission, a rename meanwhile) the keyspace removes itself.
void Server::ExpireThroughMount() {
  constexpr size_t kMaxExpiring = 256;
  if (expiring_.size() >= kMaxExpiring) return;
  keyspace_.ForEachDue([this](Ino ino) {
    if (expiring_.contains(ino)) return true;
    std::vector<std::string> paths;
    for (const NameRef& ref : keyspace_.NamesOf(ino)) {
      auto path = keyspace_.PathOf(ref.parent, ref.name);
      if (path.ok()) paths.push_back(*std::move(path));
    }
    expiring_.insert(ino);
    expiry_agent_->Unlink(std::move(paths), [this, ino](bool ok) {
      expiring_.erase(ino);
      if (!ok) keyspace_.ExpireIfDue(ino);
    });
    return expiring_.size() < kMaxExpiring;
  });
}

// --- room on the disk -------------------------------------------------------------
//
// Every byte written goes to the journal at once and to the store when its
// block is saved; a journal rewrite then gives the journal's copy back. So a
// change that adds data is accepted only while the store's disk keeps room
// to save every block memory holds unsaved (and the new bytes), beyond the
// reserve kept for a rewrite (Compactor). Then a full disk never strands
// dirty blocks, and deleting files in keyfs always gets space back. The
// disk is measured 10 times a second; in between, what keyfs wrote since is
// taken off.

Status Server::CheckPinsFit() const {
  uint64_t pinned = keyspace_.pinned_bytes();
  if (pinned <= keyspace_.PinLimit()) return Status::Ok();
  uint64_t needed = keyspace_.MemoryNeeded();
  return Status::Errno(
      ENOSPC, fmt::format("the {} pinned files (user.keyfs.pin) take {}, more than max_memory {} "
                          "leaves them beside what keyfs cannot evict ({}) and room for {} "
                          "blocks: mount with max_memory={} or more, then unpin what need "
                          "not stay in memory (keyfs-ctl unpin)",
                          keyspace_.pinned_files(), FormatSize(pinned),
                          FormatSize(memory_.limit()), FormatSize(memory_.Unevictable()),
                          Keyspace::kMinBlocksRoom, FormatSize(needed)));
}

void Server::MeasureDisk() {
  auto space = env_->GetSpace(options_.store_dir);
  disk_available_ = space.ok() ? space->available : UINT64_MAX;
  disk_total_ = space.ok() ? space->total : 0;
  journal_bytes_measured_ = journal_ ? journal_->size() : 0;
  store_bytes_measured_ = store_->Stats().saved_bytes;
}

Status Server::CheckDiskRoom() {
  if (disk_available_ == UINT64_MAX) return Status::Ok();
  // A write's record and its block, with room to spare; less on a tiny disk.
  uint64_t margin = std::clamp<uint64_t>(disk_total_ / 16, 256 << 10, 3 << 20);
  // Each figure is read once: IO threads change the store's (a segment
  // removed on one between two reads would make the difference wrap).
  uint64_t journal_bytes = journal_->size();
  // The swap file is preallocated: what it holds takes no more of the disk.
  uint64_t store_bytes = swap_ ? 0 : store_->Stats().saved_bytes;
  uint64_t written = (journal_bytes - std::min(journal_bytes, journal_bytes_measured_)) +
                     (store_bytes - std::min(store_bytes, store_bytes_measured_));
  uint64_t available = disk_available_ > written ? disk_available_ - written : 0;
  // In swap mode unsaved blocks need no room on the disk (the swap file has
  // its own, and a full one makes writers wait for memory, BlockCache).
  uint64_t needed = (swap_ ? 0 : cache_->dirty_bytes()) + margin;
  bool store_full = !swap_ && cache_->disk_full();
  if (available >= needed && !store_full) return Status::Ok();
  int64_t now = clock_->MonotonicNanos();
  if (now - last_disk_warning_ >= kRefusalWarningIntervalNs) {
    last_disk_warning_ = now;
    spdlog::warn("changes that add data fail with ENOSPC: the store's disk ({}) has {} free "
                 "({} measured, {} written since), and "
                 "keyfs keeps room to save the {} in memory not yet saved{}; free space there, "
                 "or delete files in keyfs (that works on a full disk, and gives the space back)",
                 options_.store_dir, FormatSize(available), FormatSize(disk_available_),
                 FormatSize(written), FormatSize(cache_->dirty_bytes()),
                 store_full ? " (saving fails for want of space)" : "");
  }
  return Status::Errno(ENOSPC, "the store's disk is full");
}

void Server::Cron() {
  MeasureDisk();
  journal_->Cron();
  cache_->Cron();
  if (compactor_) compactor_->Cron();
  if (++cron_ticks_ % kTrimSlackTicks == 0) keyspace_.TrimSlack();
  // A read-only mount changes nothing: due files stay hidden. A journal
  // that takes no records cannot take their removal either (next tick).
  // (Writable reserves journal room: asked only when there is a removal.)
  if (!options_.read_only && keyspace_.HasDue() &&
      journal_->Writable(SpaceEffect::kFrees).ok()) {
    ExpireThroughMount();
    keyspace_.ExpireDue(clock_->MonotonicNanos() + kCronExpiryNs, kExpiryLagMs);
  }
  if (stop_requested_ns_ != 0 && clock_->MonotonicNanos() - stop_requested_ns_ > kStopWaitNs) {
    spdlog::warn("the expiry thread did not end its job in {} s; stopping anyway",
                 kStopWaitNs / 1'000'000'000);
    loop_->Stop();
  }
  WarnAboutMemory();
}

std::string Server::MemoryBreakdown() const {
  std::string parts;
  for (int i = 0; i < static_cast<int>(MemoryComponent::kCount); ++i) {
    auto component = static_cast<MemoryComponent>(i);
    if (memory_.Used(component) == 0) continue;
    if (!parts.empty()) parts += ", ";
    parts += fmt::format("{} {}", MemoryComponentName(component),
                         FormatSize(memory_.Used(component)));
  }
  return parts;
}

void Server::WarnAboutMemory() {
  int64_t now = clock_->MonotonicNanos();
  uint64_t used = memory_.InUse();
  uint64_t refusals = memory_.refusals();
  if (refusals > logged_refusals_ && now - last_refusal_warning_ >= kRefusalWarningIntervalNs) {
    last_refusal_warning_ = now;
    spdlog::warn("{} change(s) refused with ENOSPC: {}. {} of max_memory {} in use ({}).",
                 refusals - logged_refusals_,
                 cache_->disk_full()
                     ? (swap_ ? "memory is full of blocks the swap file has no room for; "
                                "delete files, or mount with a larger swap_size"
                              : "memory is full of blocks that cannot be saved because the "
                                "store's disk is full; free space on it")
                     : "max_memory is full of what cannot be evicted (the namespace: inodes, "
                       "names, xattrs); delete files, or mount with a larger max_memory",
                 FormatSize(used), FormatSize(memory_.limit()), MemoryBreakdown());
    logged_refusals_ = refusals;
    last_memory_warning_ = now;
    return;
  }
  // Blocks are a cache: a full budget is normal. What is not evicted is.
  uint64_t fixed = used - memory_.Used(MemoryComponent::kBlocks) - memory_.Used(MemoryComponent::kIo);
  if (fixed < memory_.limit() * kMemoryWarningRatio) return;
  if (now - last_memory_warning_ < kMemoryWarningIntervalNs) return;
  last_memory_warning_ = now;
  spdlog::warn("the namespace (inodes, names, xattrs, requests) takes {} of max_memory {} "
               "({}); new files fail with ENOSPC when it is full: delete files, or mount with a "
               "larger max_memory",
               FormatSize(fixed), FormatSize(memory_.limit()), MemoryBreakdown());
}

}  // namespace keyfs
