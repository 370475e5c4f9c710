// keyfs: mounts a key-value store as a filesystem. See README.md and --help.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

#include "fuse/daemon.h"
#include "fuse/options.h"
#include "fuse/server.h"
#include "keyfs_version.h"
#include "src/base/logging.h"
#include "store/env.h"
#include "store/store_dir.h"

namespace keyfs {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "keyfs: %s\n", message.c_str());
  return 1;
}

// Checks made before anything is forked, created or mounted.
Status CheckPaths(const MountOptions& options) {
  struct stat st;
  if (stat(options.mountpoint.c_str(), &st) != 0) {
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

int Main(int argc, char** argv) {
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

  std::string owner = "keyfs pid " + std::to_string(getpid()) + " on " + options.mountpoint;
  auto store = StoreDir::Open(Env::Default(), options.store_dir, owner);
  if (!store.ok()) return fail(store.status().ToString());

  std::string log_file = options.log_file;
  if (log_file.empty() && !options.foreground) log_file = (*store)->FilePath(StoreDir::kLogName);
  if (Status status = ConfigureLogging(log_file, options.log_level); !status.ok()) {
    return fail(status.ToString());
  }

  auto server = Server::Start(options, Env::Default());
  if (!server.ok()) return fail(server.status().ToString());
  daemon.ReportReady();

  Status status = (*server)->Run();
  server->reset();
  if (!status.ok()) {
    spdlog::error("keyfs stopped with an error: {}", status.ToString());
    std::fprintf(stderr, "keyfs: %s\n", status.ToString().c_str());
    return 1;
  }
  spdlog::info("keyfs exited cleanly");
  spdlog::shutdown();
  return 0;
}

}  // namespace
}  // namespace keyfs

int main(int argc, char** argv) { return keyfs::Main(argc, argv); }
