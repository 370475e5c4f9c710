#include "fuse/server.h"

#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "keyfs_version.h"
#include "src/base/size.h"

namespace keyfs {

namespace {

// Requests handled per wake-up before the loop looks at its other sources.
constexpr int kRequestBudget = 64;
constexpr auto kCronInterval = std::chrono::milliseconds(100);
// Appended files give back their unused room after one to two seconds idle.
constexpr uint64_t kTrimSlackTicks = 10;
// Warn when the budget is this full, at most once a minute.
constexpr double kMemoryWarningRatio = 0.9;
constexpr int64_t kMemoryWarningIntervalNs = 60'000'000'000;
// Refused changes are reported at once, then at most every 10 seconds.
constexpr int64_t kRefusalWarningIntervalNs = 10'000'000'000;

}  // namespace

Server::Server(const MountOptions& options)
    : options_(options),
      clock_(SystemClock::Default()),
      memory_(options.max_memory),
      keyspace_(KeyspaceOptions{options.block_size}, &memory_, clock_),
      replies_(&memory_),
      adapter_(&keyspace_, &replies_, this, options.adapter) {}

Server::~Server() {
  // Send what is queued before the session goes away.
  replies_.Flush();
}


Result<std::unique_ptr<Server>> Server::Start(
    const MountOptions& options, Env* env,
    const std::function<void(const LoadedJournal&)>& replayed) {
  std::unique_ptr<Server> server(new Server(options));
  ASSIGN_OR_RETURN(server->loop_, EventLoop::Create());
  ASSIGN_OR_RETURN(server->journal_,
                   Journal::Open(env, options.store_dir, options.journal, &server->keyspace_,
                                 server->loop_.get(), &server->memory_, server->clock_));
  replayed(server->journal_->loaded());

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

  Server* raw = server.get();
  raw->started_ns_ = raw->clock_->MonotonicNanos();
  RETURN_IF_ERROR(raw->loop_->WatchReadable(raw->session_->fd(), [raw] {
    if (!raw->session_->ProcessAvailable(kRequestBudget)) {
      spdlog::info("{} was unmounted", raw->options_.mountpoint);
      raw->loop_->Stop();
    }
  }));
  RETURN_IF_ERROR(raw->loop_->WatchSignals({SIGTERM, SIGINT, SIGHUP},
                                           [raw](int signo) { raw->OnSignal(signo); }));
  RETURN_IF_ERROR(raw->loop_->AddTimer(kCronInterval, [raw] { raw->Cron(); }));
  raw->loop_->AddBeforeSleep([raw] { raw->BeforeSleep(); });

  spdlog::info("keyfs mounted {} (store {}, max_memory {}, block_size {}, appendfsync {}, "
               "{} inodes)",
               options.mountpoint, options.store_dir, FormatSize(options.max_memory),
               FormatSize(options.block_size), AppendFsyncName(options.journal.appendfsync),
               raw->keyspace_.inode_count());
  return server;
}

Status Server::Run(const std::function<void()>& on_stopping) {
  Status status = loop_->Run();
  on_stopping();
  Status closed = journal_->Close();
  if (closed.ok()) replies_.ReleaseParked();
  replies_.Flush();
  session_->Unmount();
  spdlog::info("keyfs stopped serving {}", options_.mountpoint);
  if (!status.ok()) return status;
  return closed;
}

// The journal first: no reply of this iteration may leave before the
// records of its changes are written (and synced, when that is due).
void Server::BeforeSleep() {
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
  out += "\n# Keyspace\n";
  out += fmt::format("inodes:{}\n", keyspace_.inode_count());
  out += fmt::format("block_size:{}\n", keyspace_.block_size());
  out += "\n# Memory\n" + MemoryInfo();
  out += "\n# Journal\n" + journal_->Info();
  return out;
}

Result<std::string> Server::GetControl(std::string_view name) {
  name.remove_prefix(kPrefix.size());
  if (name == "info") return Info();
  if (name == "journal") return journal_->Info();
  if (name == "memory") return MemoryInfo();
  return Status::Errno(ENODATA);
}

Status Server::SetControl(std::string_view name, std::string_view) {
  name.remove_prefix(kPrefix.size());
  if (name == "rewrite") return journal_->StartRewrite();
  if (name == "sync") {
    journal_->RequestSync();
    return Status::Ok();
  }
  return Status::Errno(EPERM);
}

void Server::OnSignal(int signo) {
  spdlog::info("received {}, unmounting {}", strsignal(signo), options_.mountpoint);
  loop_->Stop();
}

void Server::Cron() {
  journal_->Cron();
  if (++cron_ticks_ % kTrimSlackTicks == 0) keyspace_.TrimSlack();
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
  uint64_t used = memory_.Used();
  uint64_t refusals = memory_.refusals();
  if (refusals > logged_refusals_ && now - last_refusal_warning_ >= kRefusalWarningIntervalNs) {
    last_refusal_warning_ = now;
    spdlog::warn("{} change(s) refused with ENOSPC because max_memory is full: {} of {} in use "
                 "({}). Delete files, or mount with a larger max_memory (-o max_memory=SIZE)",
                 refusals - logged_refusals_, FormatSize(used), FormatSize(memory_.limit()),
                 MemoryBreakdown());
    logged_refusals_ = refusals;
    last_memory_warning_ = now;
    return;
  }
  if (used < memory_.limit() * kMemoryWarningRatio) return;
  if (now - last_memory_warning_ < kMemoryWarningIntervalNs) return;
  last_memory_warning_ = now;
  spdlog::warn("memory {} of max_memory {} in use ({}); changes fail with ENOSPC when it is "
               "full: delete files, or mount with a larger max_memory",
               FormatSize(used), FormatSize(memory_.limit()), MemoryBreakdown());
}

}  // namespace keyfs
