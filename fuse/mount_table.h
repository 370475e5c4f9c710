#pragma once

// The kernel's table of mounts, as /proc/self/mountinfo gives it: what is
// mounted where, so that keyfs can see a dead FUSE mount left at its mount
// point by a killed daemon, refuse to hide a live mount under a new one, and
// tell whether a keyfs holding a store is still mounted.

#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"

namespace keyfs {

struct MountEntry {
  std::string mount_point;  // absolute, unescaped
  std::string fstype;       // "ext4", "fuse.keyfs", ...
  std::string source;       // the device or, for keyfs, the store directory

  bool is_fuse() const { return fstype == "fuse" || fstype.starts_with("fuse."); }
  bool is_keyfs() const { return fstype == "fuse.keyfs"; }
};

// Parses mountinfo text (proc(5)); lines it cannot read are skipped.
std::vector<MountEntry> ParseMountInfo(std::string_view text);

// The mounts of this process's namespace, in mount order.
Result<std::vector<MountEntry>> ReadMountTable();

// The entries mounted at exactly `path`, bottom first (several when mounts
// are stacked; the last one is what `path` shows).
std::vector<MountEntry> MountsAt(const std::vector<MountEntry>& table, const std::string& path);

}  // namespace keyfs
