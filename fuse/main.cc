// keyfs: mounts a key-value store as a filesystem. See README.md and --help.

#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

#include "fuse/daemon.h"
#include "fuse/lock_owner.h"
#include "fuse/options.h"
#include "fuse/server.h"
#include "fuse/startup.h"
#include "keyfs_version.h"
#include "src/base/logging.h"
#include "src/base/size.h"
#include "store/env.h"
#include "store/store_dir.h"

namespace keyfs {
namespace {

// How long a new keyfs waits for an old one on the same store that was
// unmounted and is still writing out what it holds.
constexpr auto kShutdownPatience = std::chrono::seconds(60);

int Fail(const std::string& message) {
  std::fprintf(stderr, "keyfs: %s\n", message.c_str());
  return 1;
}

// Checks made before anything is forked, created or mounted. A mount point
// that is a dead mount ("Transport endpoint is not connected") passes:
// PrepareMountPoint deals with it once the store is locked.
Status CheckPaths(const MountOptions& options) {
  struct stat st;
  if (stat(options.mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN || errno == ECONNABORTED) return Status::Ok();
    return Status::Errno(errno, "mount point " + options.mountpoint);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::Errno(ENOTDIR, "mount point " + options.mountpoint);
  }
  if (options.store_dir == options.mountpoint ||
      options.store_dir.starts_with(options.mountpoint + "/")) {
    return Status::InvalidArgument("the store directory " + options.store_dir +
                                   " cannot be inside the mount point");
  }
  return Status::Ok();
}

// The words a keyfs that did not stop cleanly left in the lock file, and what
// replay brought back (the user asks "did I lose anything?").
void ReportUncleanStop(const StoreDir& store, const LoadedJournal& loaded) {
  auto previous = LockOwner::Parse(store.previous_owner());
  if (!previous || previous->state == LockOwner::State::kStopped) return;
  std::string torn =
      loaded.torn_bytes > 0
          ? fmt::format("; a record cut short by the stop was dropped ({} at the end of {})",
                        FormatSize(loaded.torn_bytes), loaded.torn_file)
          : "";
  spdlog::warn("the previous keyfs on this store (pid {} on {}, {}) did not exit cleanly: it "
               "was killed or crashed, or the machine stopped. The journal replay recovered "
               "{} records ({} of journal){}; everything it acknowledged as synced is back",
               previous->pid, previous->mountpoint, LockStateName(previous->state),
               loaded.records, FormatSize(loaded.bytes), torn);
}

// glibc's malloc, made to honour the budget (measured: docs/benchmarks.md).
// Left alone, it gives each thread that allocates its own arena (the IO
// threads allocate the blocks they load, the loop thread frees them) and
// raises its mmap threshold after the first large free, so freed blocks
// stay in arenas: a 64M cache then ran at 137 MB resident. One arena and a
// fixed threshold (blocks of 128 KiB and more get pages of their own, given
// back when freed) keep it at the budget plus about 10 MiB.
void TuneMalloc() {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

int Main(int argc, char** argv) {
  TuneMalloc();
  MachineFacts facts = MachineFacts::FromEnvironment();
  MountOptions options;
  auto action = ParseCommandLine(argc, argv, facts, &options);
  if (!action.ok()) return Fail(action.status().message());
  if (*action == CommandLineAction::kHelp) {
    std::fputs(UsageText(facts).c_str(), stdout);
    return 0;
  }
  if (*action == CommandLineAction::kVersion) {
    std::printf("keyfs %s (libfuse %s)\n", KEYFS_VERSION, fuse_pkgversion());
    return 0;
  }
  if (Status status = CheckPaths(options); !status.ok()) return Fail(status.ToString());

  Daemon daemon = Daemon::Start(options.foreground);
  auto fail = [&](const std::string& message) {
    spdlog::error("{}", message);
    int code = Fail(message);
    daemon.ReportFailure();
    return code;
  };

  // Signals are taken through a signalfd in the event loop: block them before
  // any thread exists, so every thread inherits the mask.
  sigset_t mask;
  sigemptyset(&mask);
  for (int signo : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, signo);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);

  LockOwner owner{getpid(), options.mountpoint, LockOwner::State::kStarting};
  std::string waited;  // said on stderr now, logged once there is a log
  auto store = AcquireStore(Env::Default(), options.store_dir, owner, kShutdownPatience,
                            [&](const std::string& notice) {
                              std::fprintf(stderr, "keyfs: %s\n", notice.c_str());
                              waited = notice;
                            });
  if (!store.ok()) return fail(store.status().ToString());

  std::string log_file = options.log_file;
  if (log_file.empty() && !options.foreground) log_file = (*store)->FilePath(StoreDir::kLogName);
  if (Status status = ConfigureLogging(log_file, options.log_level); !status.ok()) {
    return fail(status.ToString());
  }
  if (!waited.empty()) spdlog::info("{}; it has finished", waited);

  auto cleared = PrepareMountPoint(options.mountpoint, options.mount_over);
  if (!cleared.ok()) return fail(cleared.status().ToString());
  for (const std::string& note : *cleared) spdlog::warn("{}", note);

  auto server = Server::Start(options, Env::Default(), [&](const LoadedJournal& loaded) {
    ReportUncleanStop(**store, loaded);
  });
  if (!server.ok()) return fail(server.status().ToString());
  auto set_state = [&](LockOwner::State state) {
    owner.state = state;
    if (Status status = (*store)->SetOwner(owner.Format()); !status.ok()) {
      spdlog::warn("could not update the store's lock file: {}; keyfs-check and the next mount "
                   "may report this keyfs's state wrongly: check the store directory's disk",
                   status.ToString());
    }
  };
  set_state(LockOwner::State::kServing);
  spdlog::default_logger()->flush();
  daemon.ReportReady();

  Status status = (*server)->Run([&] { set_state(LockOwner::State::kStopping); });
  server->reset();
  if (!status.ok()) {
    spdlog::error("keyfs stopped with an error: {}", status.ToString());
    std::fprintf(stderr, "keyfs: %s\n", status.ToString().c_str());
    return 1;
  }
  set_state(LockOwner::State::kStopped);
  spdlog::info("keyfs exited cleanly");
  spdlog::shutdown();
  return 0;
}

}  // namespace
}  // namespace keyfs

int main(int argc, char** argv) { return keyfs::Main(argc, argv); }
