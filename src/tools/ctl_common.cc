#include <sys/xattr.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "src/tools/ctl.h"

namespace keyfs::ctl {

bool Get(const std::string& mount, const char* name, std::string* out) {
  for (;;) {
    ssize_t size = getxattr(mount.c_str(), name, nullptr, 0);
    if (size < 0) return false;
    out->resize(static_cast<size_t>(size) + 256);  // room for a value that grows meanwhile
    ssize_t n = getxattr(mount.c_str(), name, out->data(), out->size());
    if (n >= 0) {
      out->resize(static_cast<size_t>(n));
      return true;
    }
    if (errno != ERANGE) return false;
  }
}

std::string Field(const std::string& info, const std::string& key) {
  // At the start of a line, so that "hits" does not match "cache_hits".
  std::string needle = key + ":";
  size_t at = info.starts_with(needle) ? 0 : info.find("\n" + needle);
  if (at == std::string::npos) return "";
  if (at > 0) ++at;
  at += needle.size();
  return info.substr(at, info.find('\n', at) - at);
}

int NotKeyfs(const std::string& mount) {
  std::fprintf(stderr, "keyfs-ctl: %s is not a keyfs mount (%s)\n", mount.c_str(),
               std::strerror(errno));
  return kUsage;
}

}  // namespace keyfs::ctl
