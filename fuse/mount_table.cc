#include "fuse/mount_table.h"

#include <fstream>
#include <sstream>

namespace keyfs {

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string Unescape(std::string_view field) {
  auto octal = [&](size_t k) { return k < field.size() && field[k] >= '0' && field[k] <= '7'; };
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t at = 0;
  while (at < line.size()) {
    size_t space = line.find(' ', at);
    if (space == std::string_view::npos) space = line.size();
    if (space > at) fields.push_back(line.substr(at, space - at));
    at = space + 1;
  }
  return fields;
}

}  // namespace

std::vector<MountEntry> ParseMountInfo(std::string_view text) {
  // id parent major:minor root mount_point options [optional...] - fstype source super_options
  std::vector<MountEntry> entries;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    std::vector<std::string_view> fields = Split(line);
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 5 || dash + 2 >= fields.size()) continue;
    entries.push_back({Unescape(fields[4]), Unescape(fields[dash + 1]),
                       Unescape(fields[dash + 2])});
  }
  return entries;
}

Result<std::vector<MountEntry>> ReadMountTable() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return Status::Errno(errno, "/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return ParseMountInfo(text.str());
}

std::vector<MountEntry> MountsAt(const std::vector<MountEntry>& table, const std::string& path) {
  std::vector<MountEntry> found;
  for (const MountEntry& entry : table) {
    if (entry.mount_point == path) found.push_back(entry);
  }
  return found;
}

}  // namespace keyfs
