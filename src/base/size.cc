#include "src/base/size.h"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace keyfs {

Result<uint64_t> ParseSize(std::string_view text) {
  auto invalid = [&] {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not a size (examples: 4096, 64K, 512M, 2G)");
  };
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec == std::errc::result_out_of_range) {
    return Status::Errno(ERANGE, "size '" + std::string(text) + "' is too large");
  }
  if (ec != std::errc() || end == text.data()) return invalid();

  std::string_view suffix(end, text.data() + text.size() - end);
  int shift = 0;
  if (!suffix.empty()) {
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      default: return invalid();
    }
    std::string_view rest = suffix.substr(1);
    if (!(rest.empty() || rest == "B" || rest == "b" || rest == "iB" ||
          rest == "ib")) {
      return invalid();
    }
  }
  if (shift > 0 && number > (UINT64_MAX >> shift)) {
    return Status::Errno(ERANGE, "size '" + std::string(text) + "' is too large");
  }
  return number << shift;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 6) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", value, kUnits[unit]);
  return buf;
}

}  // namespace keyfs
