#include "fuse/options.h"

#include <charconv>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string_view>

#include <fmt/format.h>

#include "src/base/logging.h"
#include "src/base/size.h"
#include "store/swap/swap_file.h"

namespace keyfs {

namespace {

constexpr uint64_t kMinMaxMemory = 4 << 20;  // 4 MiB: a few blocks and a FUSE write
constexpr int kMaxIoThreads = 64;
constexpr int64_t kMaxFlushDelaySeconds = 3600;
constexpr int64_t kMaxBusyPollNs = 1'000'000;
constexpr uint32_t kMinBlockSize = 4096;
constexpr uint32_t kMaxBlockSize = 16 << 20;
constexpr double kMaxTimeout = 365 * 24 * 3600;  // a year

// Mount options the kernel (through libfuse) understands, passed on as given.
constexpr std::string_view kKernelFlags[] = {
    "allow_other", "auto_unmount", "rw", "dev", "nodev", "suid", "nosuid",
    "exec", "noexec", "async", "sync", "dirsync", "atime", "noatime",
    "relatime", "norelatime", "strictatime", "nostrictatime", "lazytime",
    "nolazytime", "diratime", "nodiratime"};
constexpr std::string_view kKernelValued[] = {"fsname", "subtype", "max_read"};
// fstab bookkeeping that mount(8) or mount.fuse3 may leave in the list; they
// mean nothing to a mounted filesystem.
constexpr std::string_view kFstabOnly[] = {"defaults", "auto", "noauto", "user",
                                           "users", "nouser", "nofail", "_netdev"};

// "1s", "250ms", "100us", "0", "1.5" (seconds) -> nanoseconds, at most
// `max_ns`; `range` names the limits in the error.
Result<int64_t> ParseDuration(std::string_view value, int64_t max_ns, std::string_view range) {
  double scale = 1e9;
  if (value.ends_with("ms")) {
    scale = 1e6;
    value.remove_suffix(2);
  } else if (value.ends_with("us")) {
    scale = 1e3;
    value.remove_suffix(2);
  } else if (value.ends_with("s")) {
    value.remove_suffix(1);
  }
  double number = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !(number >= 0) ||
      number * scale > static_cast<double>(max_ns)) {
    return Status::InvalidArgument("must be a duration " + std::string(range));
  }
  return static_cast<int64_t>(number * scale);
}

template <size_t N>
bool Contains(const std::string_view (&list)[N], std::string_view value) {
  for (auto item : list) {
    if (item == value) return true;
  }
  return false;
}

Status OptionError(std::string_view option, const std::string& why) {
  return Status::InvalidArgument("option '" + std::string(option) + "': " + why);
}

std::string Absolute(const std::string& path, const MachineFacts& facts) {
  std::string result = path.starts_with("/") ? path : facts.cwd + "/" + path;
  while (result.size() > 1 && result.ends_with("/")) result.pop_back();
  return result;
}

// Splits "a,b=c\,d" into {"a", "b=c,d"}: a backslash escapes a comma, as in
// libfuse's option syntax.
std::vector<std::string> SplitOptions(std::string_view list) {
  std::vector<std::string> options;
  std::string current;
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i] == '\\' && i + 1 < list.size()) {
      current.push_back(list[++i]);
    } else if (list[i] == ',') {
      if (!current.empty()) options.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(list[i]);
    }
  }
  if (!current.empty()) options.push_back(std::move(current));
  return options;
}

Result<uint64_t> ParseMemory(std::string_view value, const MachineFacts& facts) {
  if (value.ends_with("%")) {
    auto percent = ParseSize(value.substr(0, value.size() - 1));
    if (!percent.ok() || *percent == 0 || *percent > 100) {
      return Status::InvalidArgument(
          fmt::format("'{}' is not a percentage between 1% and 100%", value));
    }
    return facts.physical_memory * *percent / 100;  // no overflow below 2^57 bytes of RAM
  }
  return ParseSize(value);
}

// A size that must be a power of two within [min, max] (`range` says it).
Result<uint32_t> ParsePowerOfTwo(std::string_view key, std::string_view value, uint32_t min,
                                 uint32_t max, std::string_view range) {
  auto bytes = ParseSize(value);
  if (!bytes.ok()) return OptionError(key, bytes.status().message());
  if (*bytes < min || *bytes > max || (*bytes & (*bytes - 1))) {
    return OptionError(key, "must be a power of two from " + std::string(range));
  }
  return static_cast<uint32_t>(*bytes);
}

}  // namespace

Status ApplyMountOption(const std::string& option, const MachineFacts& facts,
                        MountOptions* options, bool* store_given) {
  size_t eq = option.find('=');
  std::string key = option.substr(0, eq);
  bool has_value = eq != std::string::npos;
  std::string value = has_value ? option.substr(eq + 1) : "";
  auto need_value = [&]() -> Status {
    if (!has_value || value.empty()) return OptionError(key, "needs a value (" + key + "=...)");
    return Status::Ok();
  };
  auto no_value = [&]() -> Status {
    if (has_value) return OptionError(key, "takes no value");
    return Status::Ok();
  };

  if (key == "store") {
    RETURN_IF_ERROR(need_value());
    options->store_dir = Absolute(value, facts);
    if (store_given) *store_given = true;
  } else if (key == "max_memory") {
    RETURN_IF_ERROR(need_value());
    auto bytes = ParseMemory(value, facts);
    if (!bytes.ok()) return OptionError(key, bytes.status().message());
    if (*bytes < kMinMaxMemory) return OptionError(key, "must be at least 4M");
    options->max_memory = *bytes;
  } else if (key == "block_size") {
    RETURN_IF_ERROR(need_value());
    ASSIGN_OR_RETURN(options->block_size,
                     ParsePowerOfTwo(key, value, kMinBlockSize, kMaxBlockSize, "4K to 16M"));
  } else if (key == "mode") {
    RETURN_IF_ERROR(need_value());
    if (value == "disk") {
      options->mode = StoreMode::kDisk;
    } else if (value == "swap") {
      options->mode = StoreMode::kSwap;
    } else {
      return OptionError(key, "must be disk or swap");
    }
  } else if (key == "swap_file") {
    RETURN_IF_ERROR(need_value());
    options->swap_file = Absolute(value, facts);
  } else if (key == "swap_size") {
    RETURN_IF_ERROR(need_value());
    auto bytes = ParseSize(value);
    if (!bytes.ok()) return OptionError(key, bytes.status().message());
    if (*bytes == 0) return OptionError(key, "must be more than 0");
    options->swap_size = *bytes;
  } else if (key == "page_size") {
    RETURN_IF_ERROR(need_value());
    ASSIGN_OR_RETURN(options->page_size, ParsePowerOfTwo(key, value, SwapFile::kMinPageSize,
                                                         SwapFile::kMaxPageSize, "512 to 1M"));
  } else if (key == "flush_delay") {
    RETURN_IF_ERROR(need_value());
    auto delay = ParseDuration(value, kMaxFlushDelaySeconds * 1'000'000'000,
                               "from 0 to 3600s (examples: 1s, 250ms, 0)");
    if (!delay.ok()) return OptionError(key, delay.status().message());
    options->flush_delay_ns = *delay;
  } else if (key == "io_threads") {
    RETURN_IF_ERROR(need_value());
    int threads = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), threads);
    if (ec != std::errc() || end != value.data() + value.size() || threads < 1 ||
        threads > kMaxIoThreads) {
      return OptionError(key, "must be a whole number from 1 to 64");
    }
    options->io_threads = threads;
  } else if (key == "compression") {
    RETURN_IF_ERROR(need_value());
    if (value != "lz4" && value != "none") return OptionError(key, "must be lz4 or none");
    options->compress = value == "lz4";
  } else if (key == "appendfsync") {
    RETURN_IF_ERROR(need_value());
    if (value == "always") {
      options->journal.appendfsync = AppendFsync::kAlways;
    } else if (value == "everysec") {
      options->journal.appendfsync = AppendFsync::kEverySec;
    } else if (value == "no") {
      options->journal.appendfsync = AppendFsync::kNo;
    } else {
      return OptionError(key, "must be always, everysec or no");
    }
  } else if (key == "auto_rewrite_percentage") {
    RETURN_IF_ERROR(need_value());
    uint32_t percent = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), percent);
    if (ec != std::errc() || end != value.data() + value.size() || percent > 100000) {
      return OptionError(key, "must be a whole number from 0 (never) to 100000");
    }
    options->journal.auto_rewrite_percentage = percent;
  } else if (key == "auto_rewrite_min_size") {
    RETURN_IF_ERROR(need_value());
    auto bytes = ParseSize(value);
    if (!bytes.ok()) return OptionError(key, bytes.status().message());
    options->journal.auto_rewrite_min_size = *bytes;
  } else if (key == "journal_load_truncated") {
    RETURN_IF_ERROR(need_value());
    if (value != "yes" && value != "no") return OptionError(key, "must be yes or no");
    options->journal.load_truncated = value == "yes";
  } else if (key == "entry_timeout" || key == "attr_timeout" || key == "negative_timeout") {
    RETURN_IF_ERROR(need_value());
    double seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || end != value.data() + value.size() || !(seconds >= 0) ||
        seconds > kMaxTimeout) {
      return OptionError(key, "must be a number of seconds from 0 to 31536000");
    }
    double* field = key == "entry_timeout"  ? &options->adapter.entry_timeout
                    : key == "attr_timeout" ? &options->adapter.attr_timeout
                                            : &options->adapter.negative_timeout;
    *field = seconds;
  } else if (key == "writeback_cache") {
    RETURN_IF_ERROR(need_value());
    if (value != "yes" && value != "no") return OptionError(key, "must be yes or no");
    options->adapter.writeback_cache = value == "yes";
  } else if (key == "busy_poll") {
    RETURN_IF_ERROR(need_value());
    auto spin = ParseDuration(value, kMaxBusyPollNs, "from 0 to 1ms (examples: 100us, 0)");
    if (!spin.ok()) return OptionError(key, spin.status().message());
    options->busy_poll_ns = *spin;
  } else if (key == "io_uring") {
    RETURN_IF_ERROR(need_value());
    if (value != "yes" && value != "no") return OptionError(key, "must be yes or no");
    options->io_uring = value == "yes";
  } else if (key == "max_background") {
    RETURN_IF_ERROR(need_value());
    unsigned count = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), count);
    if (ec != std::errc() || end != value.data() + value.size() || count < 1 || count > 65535) {
      return OptionError(key, "must be a whole number from 1 to 65535");
    }
    options->adapter.max_background = count;
  } else if (key == "log") {
    RETURN_IF_ERROR(need_value());
    // A file named syslog is "./syslog".
    options->log_file = value == kSyslogTarget ? std::string(value) : Absolute(value, facts);
  } else if (key == "log_level") {
    RETURN_IF_ERROR(need_value());
    auto level = ParseLogLevel(value);
    if (!level.ok()) return OptionError(key, level.status().message());
    options->log_level = *level;
  } else if (key == "default_permissions") {
    // Always on: the kernel checks mode bits for keyfs.
    RETURN_IF_ERROR(no_value());
  } else if (key == "nonempty") {
    // libfuse 3 dropped this option (it mounts over non-empty directories);
    // keyfs uses the familiar name for "mount over an existing mount".
    RETURN_IF_ERROR(no_value());
    options->mount_over = true;
  } else if (key == "ro") {
    RETURN_IF_ERROR(no_value());
    options->read_only = true;
    options->kernel_options.push_back("ro");
  } else if (Contains(kKernelFlags, key)) {
    RETURN_IF_ERROR(no_value());
    options->kernel_options.push_back(key);
  } else if (Contains(kKernelValued, key)) {
    RETURN_IF_ERROR(need_value());
    options->kernel_options.push_back(option);
  } else if (Contains(kFstabOnly, key) || key.starts_with("x-")) {
    // Ignored on purpose, see kFstabOnly.
  } else {
    return Status::Errno(ENOENT, "option '" + key + "': unknown option (see keyfs --help)");
  }
  return Status::Ok();
}

MachineFacts MachineFacts::FromEnvironment() {
  MachineFacts facts;
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    facts.physical_memory = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
  }
  if (const char* home = std::getenv("HOME")) facts.home = home;
  if (const char* xdg = std::getenv("XDG_DATA_HOME")) facts.xdg_data_home = xdg;
  char cwd[4096];
  if (getcwd(cwd, sizeof(cwd))) facts.cwd = cwd;
  return facts;
}

Result<std::string> DefaultStoreDir(const std::string& mountpoint,
                                    const MachineFacts& facts) {
  std::string base;
  if (!facts.xdg_data_home.empty() && facts.xdg_data_home.starts_with("/")) {
    base = facts.xdg_data_home + "/keyfs";
  } else if (!facts.home.empty()) {
    base = facts.home + "/.local/share/keyfs";
  } else {
    return Status::InvalidArgument(
        "no store directory: give -o store=DIR (neither $XDG_DATA_HOME nor $HOME is set)");
  }
  std::string name = mountpoint.substr(1);
  for (char& c : name) {
    if (c == '/') c = '-';
  }
  if (name.empty()) name.assign(1, '-');
  return base + "/" + name;
}

Result<CommandLineAction> ParseCommandLine(int argc, const char* const* argv,
                                           const MachineFacts& facts,
                                           MountOptions* options) {
  *options = MountOptions();
  std::vector<std::string> positional;
  std::vector<std::string> option_list;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") return CommandLineAction::kHelp;
    if (arg == "-V" || arg == "--version") return CommandLineAction::kVersion;
    if (arg == "-f") {
      options->foreground = true;
    } else if (arg == "-d" || arg == "--debug") {
      options->debug = true;
      options->foreground = true;
    } else if (arg == "-s") {
      // libfuse's "single-threaded": keyfs always serves from one thread.
    } else if (arg == "-o") {
      if (i + 1 >= argc) return Status::InvalidArgument("-o needs a list of options");
      for (auto& option : SplitOptions(argv[++i])) option_list.push_back(option);
    } else if (arg.starts_with("-o")) {
      for (auto& option : SplitOptions(arg.substr(2))) option_list.push_back(option);
    } else if (arg.starts_with("-")) {
      return Status::InvalidArgument("unknown flag '" + std::string(arg) +
                                     "' (see keyfs --help)");
    } else {
      positional.emplace_back(arg);
    }
  }

  if (positional.empty()) {
    return Status::InvalidArgument("no mount point given (usage: keyfs MOUNTPOINT [-o OPTIONS])");
  }
  if (positional.size() > 2) {
    return Status::InvalidArgument("too many arguments: '" + positional[2] +
                                   "' (usage: keyfs [STORE] MOUNTPOINT [-o OPTIONS])");
  }
  options->mountpoint = Absolute(positional.back(), facts);

  bool store_given = false;
  options->max_memory = facts.physical_memory / 4;
  for (const auto& option : option_list) {
    RETURN_IF_ERROR(ApplyMountOption(option, facts, options, &store_given));
  }
  if (positional.size() == 2) {
    std::string source = Absolute(positional[0], facts);
    if (store_given && source != options->store_dir) {
      return Status::InvalidArgument("two store directories given: '" + source +
                                     "' and store=" + options->store_dir);
    }
    options->store_dir = source;
    store_given = true;
  }
  if (!store_given) {
    ASSIGN_OR_RETURN(options->store_dir, DefaultStoreDir(options->mountpoint, facts));
  }
  if (options->mode != StoreMode::kSwap) {
    for (const auto& option : option_list) {
      std::string key = option.substr(0, option.find('='));
      if (key == "swap_file" || key == "swap_size" || key == "page_size") {
        return OptionError(key, "belongs to mode=swap (add mode=swap, or leave it out)");
      }
    }
  } else if (options->swap_file.empty()) {
    options->swap_file = options->store_dir + "/swap";
  }
  if (options->max_memory < kMinMaxMemory) {
    return OptionError("max_memory", "could not work out a default; give max_memory=SIZE");
  }
  if (options->debug) options->log_level = spdlog::level::debug;
  return CommandLineAction::kMount;
}

std::string UsageText(const MachineFacts& facts) {
  std::ostringstream out;
  out << "usage: keyfs [STORE] MOUNTPOINT [-o OPTION[,OPTION...]] [-f] [-d]\n"
         "\n"
         "Mounts a keyfs key-value store at MOUNTPOINT. Files are values, paths are keys.\n"
         "Unmount with 'fusermount3 -u MOUNTPOINT' (or umount, or SIGTERM).\n"
         "\n"
         "keyfs options (-o):\n"
         "  store=DIR              store directory: lock, journal, block store, log; one\n"
         "                         per mount.\n"
         "                         default: $XDG_DATA_HOME/keyfs/<mountpoint with / as ->\n"
         "                         or ~/.local/share/keyfs/<...>\n"
         "  max_memory=SIZE        the cache: memory for everything keyfs holds; file data\n"
         "                         that does not fit lives in the store. SIZE takes K, M, G,\n"
         "                         T (1.5G) or a percentage of RAM (25%); at least 4M.\n"
         "                         default: 25% of RAM (currently "
      << FormatSize(facts.physical_memory / 4)
      << ")\n"
         "  mode=disk|swap         where data that is not in memory lives. disk: the disk\n"
         "                         store in the store directory, kept across mounts; the\n"
         "                         journal holds only what is not saved there yet. swap: a\n"
         "                         swap file made at mount and removed at unmount; the\n"
         "                         journal holds every byte (README, 'Choosing a mode').\n"
         "                         default: disk\n"
         "  swap_file=PATH         mode=swap: the swap file (locked while mounted).\n"
         "                         default: STORE/swap\n"
         "  swap_size=SIZE         mode=swap: its size, preallocated at mount; refused when\n"
         "                         its filesystem cannot hold it. default: a quarter of the\n"
         "                         free space there, at most 64G\n"
         "  page_size=SIZE         mode=swap: its page, the unit of allocation, a power of\n"
         "                         two from 512 to 1M. default: 4K\n"
         "  flush_delay=TIME       how long a written block waits before it is saved to the\n"
         "                         store (1s, 250ms, 0); rewrites within it are saved once.\n"
         "                         default: 1s\n"
         "  io_threads=N           threads that load and save blocks, 1..64. default: 2\n"
         "  compression=lz4|none   compress stored blocks with lz4 when that is smaller.\n"
         "                         default: lz4\n"
         "  block_size=SIZE        unit of caching and IO, power of two, 4K..16M. default: 256K\n"
         "  appendfsync=POLICY     when the journal is fdatasynced: always (before every\n"
         "                         reply to a change), everysec (once a second, in the\n"
         "                         background), no (when the kernel decides). fsync(2) on a\n"
         "                         file always syncs. default: everysec\n"
         "  auto_rewrite_percentage=N  rewrite the journal when it has grown N% since the\n"
         "                         last rewrite; 0 never. default: 100\n"
         "  auto_rewrite_min_size=SIZE  ... and is at least SIZE. default: 64M\n"
         "  journal_load_truncated=yes|no  at mount, cut a journal that ends in a torn\n"
         "                         record (what a crash leaves) at its last good record\n"
         "                         (yes), or refuse to mount (no). default: yes\n"
         "  entry_timeout=S, attr_timeout=S, negative_timeout=S  seconds the kernel may\n"
         "                         cache names, attributes, and absent names. keyfs is the\n"
         "                         only writer of its files, so long is right. default: 86400\n"
         "  writeback_cache=yes|no the kernel's writeback cache: faster small writes, but a\n"
         "                         write reaches the journal only when the kernel writes\n"
         "                         its pages back (at the latest on fsync or close), so a\n"
         "                         crash of the machine can lose writes write(2) already\n"
         "                         returned from (README, 'Durability'). default: no\n"
         "  max_background=N       readahead and writeback requests in flight. default: 12\n"
         "  io_uring=yes|no        read requests and send replies through io_uring, one\n"
         "                         system call a request (epoll where the kernel has no\n"
         "                         io_uring, or with no). default: yes\n"
         "  busy_poll=TIME         with io_uring: how long keyfs may spin for the next\n"
         "                         request instead of sleeping, while requests come close\n"
         "                         together (it adapts, and an idle mount never spins):\n"
         "                         small-file work about twice as fast for some CPU while\n"
         "                         busy. 0 never spins. default: 100us\n"
         "  log=FILE|syslog        log file, or syslog (facility daemon); SIGHUP reopens the\n"
         "                         file (logrotate). default: stderr with -f, else\n"
         "                         STORE/keyfs.log\n"
         "  log_level=LEVEL        trace, debug, info, warn, error, critical, off. default: info\n"
         "  nonempty               mount even where another filesystem is mounted (hiding\n"
         "                         it); without it that is refused. A dead keyfs mount left\n"
         "                         by a killed keyfs is cleared either way.\n"
         "\n"
         "mount options passed to the kernel:\n"
         "  allow_other            let other users use the mount (permission checks by mode\n"
         "                         bits always apply: keyfs mounts with default_permissions)\n"
         "  ro                     read-only mount\n"

         "  auto_unmount           unmount if keyfs dies\n"
         "  fsname=NAME, subtype=NAME, max_read=N, and the usual flags: rw, dev, nodev,\n"
         "  suid, nosuid, exec, noexec, sync, async, dirsync, atime, noatime, relatime, ...\n"
         "\n"
         "flags:\n"
         "  -f                     stay in the foreground, log to stderr\n"
         "  -d, --debug            -f plus log_level=debug and a trace of every FUSE request\n"
         "  -h, --help             this text\n"
         "  -V, --version          the version\n";
  return out.str();
}

}  // namespace keyfs
