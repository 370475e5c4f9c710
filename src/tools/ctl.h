#pragma once

// keyfs-ctl's commands (keyfs_ctl.cc has main and the usage) and what they
// share: reading the control attributes on the root of a mount
// (fuse_adapter.h, ServerControl) and the INFO text they carry.

#include <string>
#include <vector>

namespace keyfs::ctl {

// Exit statuses: 0 done, 1 keyfs reported a failure, 2 bad usage or not a
// keyfs mount.
inline constexpr int kOk = 0, kFailed = 1, kUsage = 2;

// getxattr of `name` on `mount`, whatever its size. False with errno set.
bool Get(const std::string& mount, const char* name, std::string* out);
// The value of "key:" in INFO-style text, or "".
std::string Field(const std::string& info, const std::string& key);
// Prints that `mount` is not a keyfs mount (with errno's text); kUsage.
int NotKeyfs(const std::string& mount);

// keyfs-ctl config get|set MOUNTPOINT [NAME [VALUE]] (ctl_config.cc).
int Config(const std::vector<std::string>& args);

// keyfs-ctl evict|prefetch|pin|unpin [-r] [--wait] PATH... (ctl_files.cc):
// `action` is the command, `args` what follows it (--wait: prefetch only).
int FileControl(const std::string& action, const std::vector<std::string>& args);
// keyfs-ctl metrics (ctl_metrics.cc): .keyfs/info's figures in the
// Prometheus text format.
std::string InfoToMetrics(const std::string& info);
int Metrics(const std::string& mount);

// keyfs-ctl watch (ctl_watch.cc): a line of key figures every `seconds`,
// `count` lines (0: until interrupted).
int Watch(const std::string& mount, double seconds, long count);

}  // namespace keyfs::ctl
