#pragma once

// Command line and mount options of the `keyfs` program (DESIGN §8).
//
//   keyfs [STORE] MOUNTPOINT [-o opt[,opt...]] [-f] [-d] [--help] [--version]
//
// The two-argument form is what mount.fuse3 runs for an fstab line
// `keyfs#STORE MOUNTPOINT fuse.keyfs OPTIONS` (or `STORE ... fuse.keyfs`).
// Parsing is pure: defaults that depend on the machine come in through
// MachineFacts, and nothing on disk is touched, so every bad input can be
// tested. An error is one line that names the option and says what is wrong.

#include <cstdint>
#include <string>
#include <vector>

#include <spdlog/common.h>

#include "src/base/status.h"
#include "fuse/fuse_adapter.h"
#include "src/journal/journal.h"

namespace keyfs {

struct MachineFacts {
  uint64_t physical_memory = 0;  // bytes
  std::string home;              // $HOME, may be empty
  std::string xdg_data_home;     // $XDG_DATA_HOME, may be empty
  std::string cwd;               // to make relative paths absolute

  static MachineFacts FromEnvironment();
};

// Where blocks that are not in memory live (DESIGN §5).
enum class StoreMode {
  kDisk,  // the disk store in STORE/blocks: persistent, the journal's base
  kSwap,  // a swap file, made at mount: the journal is the only copy
};

struct MountOptions {
  std::string mountpoint;  // absolute
  std::string store_dir;   // absolute
  uint64_t max_memory = 0;
  uint32_t block_size = 256 * 1024;
  // Empty: stderr in the foreground, store/keyfs.log otherwise; an absolute
  // path; or "syslog" (kSyslogTarget).
  std::string log_file;
  spdlog::level::level_enum log_level = spdlog::level::info;
  bool foreground = false;
  bool debug = false;  // -d: foreground, debug logs, libfuse's request trace
  bool read_only = false;
  // The cache (DESIGN §4): how long a dirty block waits before it is saved,
  // how many IO threads, and whether stored blocks are lz4-compressed.
  int64_t flush_delay_ns = 1'000'000'000;
  int io_threads = 2;
  bool compress = true;
  bool io_uring = true;  // the loop waits and answers requests through io_uring
  int64_t busy_poll_ns = 100'000;  // the loop's longest spin for a request (event_loop.h)
  StoreMode mode = StoreMode::kDisk;
  // mode=swap: the file (empty: STORE/swap), its size (0: a quarter of the
  // free space there, at most 64G), its page size.
  std::string swap_file;
  uint64_t swap_size = 0;
  uint32_t page_size = 4096;
  bool mount_over = false;  // nonempty: mount even where something is mounted
  JournalOptions journal;  // appendfsync, auto_rewrite_*, journal_load_truncated
  AdapterConfig adapter;   // *_timeout, writeback_cache, max_background
  // Options for the kernel mount, in libfuse's "-o" syntax.
  std::vector<std::string> kernel_options;
};

enum class CommandLineAction { kMount, kHelp, kVersion };

// Fills `options` from argv. On error the Status message is the line to print.
Result<CommandLineAction> ParseCommandLine(int argc, const char* const* argv,
                                           const MachineFacts& facts,
                                           MountOptions* options);

// Applies one "-o" option ("name=value", or a flag's "name") to `options`,
// as the command line does; `store_given` (may be null) is set by store=.
// The error is the line keyfs prints: ENOENT for a name that is no option,
// EINVAL for a bad or missing value. keyfs-ctl config parses through it too
// (live_options.h), so a change made live is refused in the same words.
Status ApplyMountOption(const std::string& option, const MachineFacts& facts,
                        MountOptions* options, bool* store_given = nullptr);

// The --help text: usage and every option with its default.
std::string UsageText(const MachineFacts& facts);

// The store directory used when none is given: one per mount point, under
// $XDG_DATA_HOME/keyfs (or ~/.local/share/keyfs), named after the mount point
// with '/' turned into '-' ("/mnt/kv" -> "mnt-kv").
Result<std::string> DefaultStoreDir(const std::string& mountpoint,
                                    const MachineFacts& facts);

}  // namespace keyfs
