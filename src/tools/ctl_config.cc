// keyfs-ctl config: reads and changes the live options of a mount
// (fuse/live_options.h), through the attributes user.keyfs.config[.NAME]
// on its root.
//
// A name or value is checked here first, with keyfs's own option parser:
// a setxattr carries only an errno back, and the operator should read the
// same words `keyfs -o` would print. keyfs checks it again.

#include <sys/xattr.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "fuse/live_options.h"
#include "src/tools/ctl.h"

namespace keyfs::ctl {

namespace {

std::string Attribute(const std::string& name) {
  return std::string(kConfigAttribute) + "." + name;
}

// Whether `name` is a live option; prints why not.
bool CheckName(const std::string& name) {
  if (IsLiveOption(name)) return true;
  auto refused = WithLiveOption(MountOptions(), name, "", MachineFacts::FromEnvironment());
  std::fprintf(stderr, "keyfs-ctl: %s\n", refused.status().message().c_str());
  return false;
}

int Get(const std::string& mount, const std::string& name) {
  if (!name.empty() && !CheckName(name)) return kUsage;
  std::string value;
  std::string attribute = name.empty() ? std::string(kConfigAttribute) : Attribute(name);
  if (!ctl::Get(mount, attribute.c_str(), &value)) return NotKeyfs(mount);
  std::printf(name.empty() ? "%s" : "%s\n", value.c_str());
  return kOk;
}

int Set(const std::string& mount, const std::string& name, const std::string& value) {
  if (!CheckName(name)) return kUsage;
  auto parsed = WithLiveOption(MountOptions(), name, value, MachineFacts::FromEnvironment());
  if (!parsed.ok()) {
    std::fprintf(stderr, "keyfs-ctl: %s; nothing changed\n", parsed.status().message().c_str());
    return kUsage;
  }
  std::string attribute = Attribute(name), before, after;
  if (!ctl::Get(mount, attribute.c_str(), &before)) return NotKeyfs(mount);
  if (setxattr(mount.c_str(), attribute.c_str(), value.data(), value.size(), 0) != 0) {
    if (errno == ENOSPC && name == "max_memory") {
      std::string info, pins;
      if (ctl::Get(mount, "user.keyfs.info", &info) && Field(info, "pinned_bytes") != "0" &&
          !Field(info, "pinned_bytes").empty()) {
        pins = " plus the " + Field(info, "pinned_bytes") + " bytes of the " +
               Field(info, "pinned_files") + " pinned files (keyfs-ctl unpin frees them)";
      }
      std::fprintf(stderr,
                   "keyfs-ctl: max_memory %s is less than what keyfs holds and cannot evict "
                   "(the namespace: inodes, names, xattrs; see used_memory_* in keyfs-ctl info "
                   "%s)%s plus room for 8 blocks; nothing changed (keyfs's log gives the least "
                   "value it takes)\n",
                   value.c_str(), mount.c_str(), pins.c_str());
    } else if (errno == EPERM) {
      std::fprintf(stderr,
                   "keyfs-ctl: %s refused %s=%s: only root or the user keyfs runs as may change "
                   "a mount's options; nothing changed\n",
                   mount.c_str(), name.c_str(), value.c_str());
    } else {
      std::fprintf(stderr, "keyfs-ctl: %s refused %s=%s (%s); nothing changed\n", mount.c_str(),
                   name.c_str(), value.c_str(), std::strerror(errno));
    }
    return kFailed;
  }
  if (!ctl::Get(mount, attribute.c_str(), &after)) return NotKeyfs(mount);
  std::printf("%s: %s -> %s (until unmount)\n", name.c_str(), before.c_str(), after.c_str());
  return kOk;
}

}  // namespace

int Config(const std::vector<std::string>& args) {
  // args: get MOUNTPOINT [NAME] | set MOUNTPOINT NAME VALUE
  if (args.size() >= 2 && args.size() <= 3 && args[0] == "get") {
    return Get(args[1], args.size() == 3 ? args[2] : "");
  }
  if (args.size() == 4 && args[0] == "set") return Set(args[1], args[2], args[3]);
  std::fputs("usage: keyfs-ctl config get MOUNTPOINT [NAME]\n"
             "       keyfs-ctl config set MOUNTPOINT NAME VALUE\n",
             stderr);
  return kUsage;
}

}  // namespace keyfs::ctl
