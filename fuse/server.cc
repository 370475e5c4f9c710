#include "fuse/server.h"

#include <signal.h>

#include <spdlog/spdlog.h>

#include "src/base/size.h"

namespace keyfs {

namespace {

// Requests handled per wake-up before the loop looks at its other sources.
constexpr int kRequestBudget = 64;
constexpr auto kCronInterval = std::chrono::milliseconds(100);
// Warn when the budget is this full, at most once a minute.
constexpr double kMemoryWarningRatio = 0.9;
constexpr int64_t kMemoryWarningIntervalNs = 60'000'000'000;

}  // namespace

Server::Server(const MountOptions& options)
    : options_(options),
      clock_(SystemClock::Default()),
      memory_(options.max_memory),
      keyspace_(KeyspaceOptions{options.block_size}, &memory_, clock_),
      replies_(&memory_),
      adapter_(&keyspace_, &replies_, AdapterConfig{}) {}

Server::~Server() {
  // Send what is queued before the session goes away.
  replies_.Flush();
}

Result<std::unique_ptr<Server>> Server::Start(const MountOptions& options) {
  std::unique_ptr<Server> server(new Server(options));
  ASSIGN_OR_RETURN(server->loop_, EventLoop::Create());

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
  RETURN_IF_ERROR(raw->loop_->WatchReadable(raw->session_->fd(), [raw] {
    if (!raw->session_->ProcessAvailable(kRequestBudget)) {
      spdlog::info("{} was unmounted", raw->options_.mountpoint);
      raw->loop_->Stop();
    }
  }));
  RETURN_IF_ERROR(raw->loop_->WatchSignals({SIGTERM, SIGINT, SIGHUP},
                                           [raw](int signo) { raw->OnSignal(signo); }));
  RETURN_IF_ERROR(raw->loop_->AddTimer(kCronInterval, [raw] { raw->Cron(); }));
  raw->loop_->AddBeforeSleep([raw] { raw->replies_.Flush(); });

  spdlog::info("keyfs mounted {} (store {}, max_memory {}, block_size {})",
               options.mountpoint, options.store_dir, FormatSize(options.max_memory),
               FormatSize(options.block_size));
  return server;
}

Status Server::Run() {
  Status status = loop_->Run();
  replies_.Flush();
  session_->Unmount();
  spdlog::info("keyfs stopped serving {}", options_.mountpoint);
  return status;
}

void Server::OnSignal(int signo) {
  spdlog::info("received {}, unmounting {}", strsignal(signo), options_.mountpoint);
  loop_->Stop();
}

void Server::Cron() {
  uint64_t used = memory_.Used();
  if (used < memory_.limit() * kMemoryWarningRatio) return;
  int64_t now = clock_->MonotonicNanos();
  if (now - last_memory_warning_ < kMemoryWarningIntervalNs) return;
  last_memory_warning_ = now;
  spdlog::warn("memory {} of max_memory {} used; writes fail with ENOSPC when it is full",
               FormatSize(used), FormatSize(memory_.limit()));
}

}  // namespace keyfs
