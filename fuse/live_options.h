#pragma once

// Options that change on a running mount (`keyfs-ctl config`, Redis's CONFIG
// SET; tmpfs users expect `-o remount,size=`, which FUSE never passes to the
// daemon). A new value is parsed by the mount option parser itself
// (ApplyMountOption), so it is refused in the words `keyfs -o` would use,
// and nothing changes then. A change lasts until unmount: the next mount
// takes its options from its command line again.
//
// Every other option shapes something built once at mount (the store, the
// block size, the threads, the kernel's mount), so it is refused, saying so.
//
// Pure, no I/O: the server applies what WithLiveOption returns
// (server_config.cc); keyfs-ctl calls the same functions first, so that it
// can print the parser's words (a setxattr carries only an errno back).

#include <string>
#include <string_view>

#include "fuse/options.h"
#include "src/base/status.h"

namespace keyfs {

// The control attributes on the root of a mount (fuse_adapter.h,
// ServerControl): "user.keyfs.config" reads every live option as INFO-style
// "name:value" lines, "user.keyfs.config.NAME" reads or sets one.
inline constexpr std::string_view kConfigAttribute = "user.keyfs.config";

// In the order `keyfs-ctl config get` lists them.
inline constexpr std::string_view kLiveOptions[] = {
    "max_memory",  "flush_delay",           "appendfsync", "auto_rewrite_percentage",
    "auto_rewrite_min_size", "log_level"};

bool IsLiveOption(std::string_view name);

// `options` with live option `name` set to `value`. Errors, with the line to
// show: the parser's (EINVAL) for a bad value, ENOENT for a name that is no
// option, EPERM for an option that can only be set at mount.
Result<MountOptions> WithLiveOption(const MountOptions& options, std::string_view name,
                                    std::string_view value, const MachineFacts& facts);

// The value of live option `name` in `options`, written as `-o` takes it:
// "64M", "250ms", "everysec", "warn". Empty for any other name.
std::string LiveOptionValue(const MountOptions& options, std::string_view name);

}  // namespace keyfs
