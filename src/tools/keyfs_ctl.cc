// keyfs-ctl: asks a mounted keyfs to do something, through the control
// attributes on the root of its mount (fuse_adapter.h, ServerControl).
//
//   keyfs-ctl rewrite MOUNTPOINT   rewrite the journal now; waits for the end
//   keyfs-ctl sync MOUNTPOINT      returns when everything written so far is
//                                  durable in the journal
//   keyfs-ctl compact MOUNTPOINT   give the store's dead space back; waits
//   keyfs-ctl info MOUNTPOINT      the daemon's figures in Redis's INFO style
//                                  (.keyfs/info): store, pid, uptime, inodes,
//                                  memory, cache, journal; `status` is the same
//   keyfs-ctl watch MOUNTPOINT [SECONDS [COUNT]]
//                                  key figures every SECONDS (redis-cli --stat)
//   keyfs-ctl metrics MOUNTPOINT   the figures in Prometheus's text format
//   keyfs-ctl config get MOUNTPOINT [NAME]
//   keyfs-ctl config set MOUNTPOINT NAME VALUE
//                                  the options that change on a running mount
//   keyfs-ctl evict [-r] PATH...   drop files' blocks from memory (saved first)
//   keyfs-ctl prefetch [-r] [--wait] PATH...
//                                  load files' blocks into memory ahead of use
//   keyfs-ctl pin [-r] PATH...     keep files' blocks in memory (user.keyfs.pin)
//   keyfs-ctl unpin [-r] PATH...   make them a cache again
//
// Exit status 0 on success, 1 when keyfs reports a failure, 2 on bad usage
// or when MOUNTPOINT is not a keyfs mount.

#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "src/tools/ctl.h"

namespace {

using keyfs::ctl::Field;
using keyfs::ctl::Get;
using keyfs::ctl::NotKeyfs;

constexpr const char* kUsage =
    "usage: keyfs-ctl COMMAND MOUNTPOINT [ARGS]\n"
    "  rewrite   compact the journal in the background and wait until it is done\n"
    "  sync      wait until everything written so far is durable\n"
    "  compact   give the store's dead space back now, and wait until it is done\n"
    "  info      print the daemon's figures, .keyfs/info (store, pid, uptime, inodes, memory,\n"
    "            cache, IO, journal)\n"
    "  status    the same as info\n"
    "  watch MOUNTPOINT [SECONDS [COUNT]]\n"
    "            print the key figures every SECONDS (default 1), COUNT times (default: until\n"
    "            interrupted): requests, reads and writes per second, cache hit ratio,\n"
    "            evictions, memory used and max_memory, unsaved bytes, IO jobs, journal size\n"
    "  metrics   print the figures in the Prometheus text format (for node_exporter's\n"
    "            textfile collector)\n"
    "  config get MOUNTPOINT [NAME]\n"
    "            print the options that change live (max_memory, flush_delay, appendfsync,\n"
    "            auto_rewrite_percentage, auto_rewrite_min_size, log_level), or one of them\n"
    "  config set MOUNTPOINT NAME VALUE\n"
    "            change one of them until unmount (VALUE as keyfs -o NAME=VALUE takes it)\n"
    "  evict [-r] PATH...\n"
    "            drop the files' blocks from keyfs's memory now (unsaved ones are saved\n"
    "            first); -r: every file under the directories named\n"
    "  prefetch [-r] [--wait] PATH...\n"
    "            load the files' blocks into memory ahead of use, as much as max_memory\n"
    "            holds; returns at once, or with --wait when the loads are done\n"
    "  pin [-r] PATH...\n"
    "            keep the files' blocks in memory: never evicted, counted against max_memory\n"
    "            (ENOSPC when more would be pinned than it allows); evicted blocks are\n"
    "            loaded at once; the pin lasts across remounts\n"
    "  unpin [-r] PATH...\n"
    "            let the files' blocks be evicted again\n";

int Rewrite(const std::string& mount) {
  std::string info;
  if (!Get(mount, "user.keyfs.journal", &info)) return NotKeyfs(mount);
  long before = std::stol(Field(info, "rewrites")) + std::stol(Field(info, "rewrites_failed"));
  if (setxattr(mount.c_str(), "user.keyfs.rewrite", "1", 1, 0) != 0) {
    if (errno != EBUSY) {
      std::fprintf(stderr, "keyfs-ctl: cannot start a rewrite: %s\n", std::strerror(errno));
      return 1;
    }
    std::printf("a rewrite is already running; waiting for it\n");
  }
  // The rewrite runs in the background; poll its state, which keyfs updates
  // as soon as the rewrite process ends.
  for (;;) {
    if (!Get(mount, "user.keyfs.journal", &info)) return NotKeyfs(mount);
    long done = std::stol(Field(info, "rewrites")) + std::stol(Field(info, "rewrites_failed"));
    if (Field(info, "rewrite_in_progress") == "0" && done > before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::string status = Field(info, "last_rewrite_status");
  if (status != "ok") {
    std::fprintf(stderr, "keyfs-ctl: rewrite %s\n", status.c_str());
    return 1;
  }
  std::printf("journal rewritten in %ss: %s bytes\n", Field(info, "last_rewrite_seconds").c_str(),
              Field(info, "journal_size").c_str());
  return 0;
}

// Waits until the compaction counter passes `before` and none is running,
// printing progress every 5 s. False if the mount went away.
bool WaitForCompaction(const std::string& mount, long before, std::string* info) {
  for (int ticks = 0;; ++ticks) {
    if (!Get(mount, "user.keyfs.info", info)) return false;
    if (Field(*info, "compaction_in_progress") == "0" &&
        std::stol(Field(*info, "compactions")) > before) {
      return true;
    }
    if (ticks > 0 && ticks % 250 == 0) {
      std::printf("compacting: %s segments compacted, %s blocks moved so far\n",
                  Field(*info, "segments_compacted").c_str(),
                  Field(*info, "blocks_relocated").c_str());
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Compaction: starts it, waits for it (it ends with a journal rewrite and
// the release of the dead segments), prints what it gave back. One already
// running (started by keyfs itself) chose its segments before this request:
// wait for it, then compact again, so that everything dead by now goes.
int Compact(const std::string& mount) {
  std::string info;
  if (!Get(mount, "user.keyfs.info", &info)) return NotKeyfs(mount);
  if (Field(info, "mode") == "swap") {
    std::fprintf(stderr, "keyfs-ctl: %s is mounted with mode=swap: there is no disk store to "
                         "compact (swap file pages come back as soon as blocks are deleted)\n",
                 mount.c_str());
    return 1;
  }
  std::string bytes_before = Field(info, "store_bytes");
  for (int attempt = 0;; ++attempt) {
    long before = std::stol(Field(info, "compactions"));
    if (setxattr(mount.c_str(), "user.keyfs.compact", "1", 1, 0) == 0) {
      if (!WaitForCompaction(mount, before, &info)) return NotKeyfs(mount);
      break;
    }
    if (errno != EBUSY || attempt == 3) {
      std::fprintf(stderr, "keyfs-ctl: cannot start a compaction: %s\n", std::strerror(errno));
      return 1;
    }
    std::printf("a compaction is already running; waiting for it, then compacting again\n");
    std::fflush(stdout);
    if (!WaitForCompaction(mount, before, &info)) return NotKeyfs(mount);
  }
  std::printf("store compacted: %s bytes before, %s after (%s live)\n", bytes_before.c_str(),
              Field(info, "store_bytes").c_str(), Field(info, "store_live_bytes").c_str());
  std::string error = Field(info, "last_compaction_error");
  if (error != "none") std::printf("note: %s\n", error.c_str());
  return 0;
}

int Sync(const std::string& mount) {
  // The reply to this setxattr leaves only after the journal was synced.
  if (setxattr(mount.c_str(), "user.keyfs.sync", "1", 1, 0) != 0) {
    if (errno == ENOTSUP || errno == EPERM) return NotKeyfs(mount);
    std::fprintf(stderr, "keyfs-ctl: sync failed: %s\n", std::strerror(errno));
    return 1;
  }
  return 0;
}

int Status(const std::string& mount) {
  std::string info;
  if (!Get(mount, "user.keyfs.info", &info)) return NotKeyfs(mount);
  std::fputs(info.c_str(), stdout);
  return 0;
}

// keyfs-ctl watch MOUNTPOINT [SECONDS [COUNT]]
int Watch(int argc, char** argv) {
  double seconds = 1;
  long count = 0;
  char* end = nullptr;
  if (argc >= 4) {
    seconds = std::strtod(argv[3], &end);
    if (*argv[3] == '\0' || *end != '\0' || !(seconds >= 0.1 && seconds <= 86400)) {
      std::fprintf(stderr, "keyfs-ctl: watch: '%s' is not a number of seconds from 0.1 to 86400\n",
                   argv[3]);
      return 2;
    }
  }
  if (argc == 5) {
    count = std::strtol(argv[4], &end, 10);
    if (*argv[4] == '\0' || *end != '\0' || count < 1) {
      std::fprintf(stderr, "keyfs-ctl: watch: '%s' is not a count of lines (1 or more)\n", argv[4]);
      return 2;
    }
  }
  return keyfs::ctl::Watch(argv[2], seconds, count);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0)) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc >= 2 && std::strcmp(argv[1], "config") == 0) {
    return keyfs::ctl::Config(std::vector<std::string>(argv + 2, argv + argc));
  }
  if (argc >= 3 && argc <= 5 && std::strcmp(argv[1], "watch") == 0) return Watch(argc, argv);
  if (argc >= 2 && (std::strcmp(argv[1], "evict") == 0 || std::strcmp(argv[1], "prefetch") == 0 ||
                    std::strcmp(argv[1], "pin") == 0 || std::strcmp(argv[1], "unpin") == 0)) {
    return keyfs::ctl::FileControl(argv[1], std::vector<std::string>(argv + 2, argv + argc));
  }
  if (argc != 3) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string command = argv[1], mount = argv[2];
  if (command == "rewrite") return Rewrite(mount);
  if (command == "sync") return Sync(mount);
  if (command == "compact") return Compact(mount);
  if (command == "status" || command == "info") return Status(mount);
  if (command == "metrics") return keyfs::ctl::Metrics(mount);
  std::fprintf(stderr, "keyfs-ctl: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}
