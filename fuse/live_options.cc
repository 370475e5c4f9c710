#include "fuse/live_options.h"

#include <cerrno>

#include <fmt/format.h>

#include "src/base/logging.h"

namespace keyfs {

namespace {

// 67108864 -> "64M": the largest unit that divides it, so that the text
// parses back to the same number.
std::string SizeText(uint64_t bytes) {
  static constexpr char kUnits[] = {'T', 'G', 'M', 'K'};
  for (int i = 0; i < 4; ++i) {
    uint64_t unit = uint64_t{1} << (10 * (4 - i));
    if (bytes != 0 && bytes % unit == 0) return fmt::format("{}{}", bytes / unit, kUnits[i]);
  }
  return std::to_string(bytes);
}

// 1500000000 -> "1500ms", the same way.
std::string DurationText(int64_t ns) {
  if (ns % 1'000'000'000 == 0) return fmt::format("{}s", ns / 1'000'000'000);
  if (ns % 1'000'000 == 0) return fmt::format("{}ms", ns / 1'000'000);
  return fmt::format("{}us", ns / 1'000);
}

std::string LiveNames() {
  std::string names;
  for (std::string_view name : kLiveOptions) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

}  // namespace

bool IsLiveOption(std::string_view name) {
  for (std::string_view live : kLiveOptions) {
    if (live == name) return true;
  }
  return false;
}

Result<MountOptions> WithLiveOption(const MountOptions& options, std::string_view name,
                                    std::string_view value, const MachineFacts& facts) {
  MountOptions changed = options;
  if (name.empty() || name.find_first_of("=,") != std::string_view::npos) {
    return Status::Errno(ENOENT, fmt::format("'{}' is not an option name", name));
  }
  if (!IsLiveOption(name)) {
    // Whether it is an option at all: the parser says ENOENT only for a
    // name it does not know, whatever the value.
    Status known = ApplyMountOption(std::string(name), facts, &changed);
    if (known.code() == ENOENT) return known;
    return Status::Errno(EPERM, fmt::format("option '{}' can only be set at mount (keyfs -o "
                                            "{}=...); options that change live: {}",
                                            name, name, LiveNames()));
  }
  RETURN_IF_ERROR(ApplyMountOption(fmt::format("{}={}", name, value), facts, &changed));
  return changed;
}

std::string LiveOptionValue(const MountOptions& options, std::string_view name) {
  if (name == "max_memory") return SizeText(options.max_memory);
  if (name == "flush_delay") return DurationText(options.flush_delay_ns);
  if (name == "appendfsync") return std::string(AppendFsyncName(options.journal.appendfsync));
  if (name == "auto_rewrite_percentage") {
    return std::to_string(options.journal.auto_rewrite_percentage);
  }
  if (name == "auto_rewrite_min_size") return SizeText(options.journal.auto_rewrite_min_size);
  if (name == "log_level") return std::string(LogLevelName(options.log_level));
  return "";
}

}  // namespace keyfs
