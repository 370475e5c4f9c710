#include "src/base/size.h"

#include <cctype>
#include <charconv>
#include <cstdio>

#include <fmt/format.h>

namespace keyfs {

Result<uint64_t> ParseSize(std::string_view text) {
  auto invalid = [&] {
    return Status::InvalidArgument(
        fmt::format("'{}' is not a size (examples: 4096, 64K, 1.5G, 512M)", text));
  };
  auto too_large = [&] {
    return Status::Errno(ERANGE, fmt::format("size '{}' is too large", text));
  };
  const char* const begin = text.data();
  const char* const last = text.data() + text.size();
  uint64_t whole = 0;
  auto [end, ec] = std::from_chars(begin, last, whole);
  if (ec == std::errc::result_out_of_range) return too_large();
  if (ec != std::errc() || end == begin) return invalid();

  // A fraction, as in 1.5G: up to 9 digits, exact in integers below.
  uint64_t fraction = 0, scale = 1;
  if (end != last && *end == '.') {
    const char* digits = ++end;
    while (end != last && std::isdigit(static_cast<unsigned char>(*end))) {
      if (end - digits >= 9) return invalid();
      fraction = fraction * 10 + static_cast<uint64_t>(*end - '0');
      scale *= 10;
      ++end;
    }
    if (end == digits) return invalid();  // "1." or "1.G"
  }

  std::string_view suffix(end, static_cast<size_t>(last - end));
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
  if (shift > 0 && whole > (UINT64_MAX >> shift)) return too_large();
  uint64_t bytes = whole << shift;
  if (scale > 1) {
    // fraction / scale of a unit, rounded down to a whole byte; a fraction of
    // a byte is refused ("1.5" alone is not a byte count).
    if (shift == 0) return invalid();
    unsigned __int128 part = (static_cast<unsigned __int128>(fraction) << shift) / scale;
    if (bytes > UINT64_MAX - static_cast<uint64_t>(part)) return too_large();
    bytes += static_cast<uint64_t>(part);
  }
  return bytes;
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
