#pragma once

// Human sizes for options and reports: "512M" <-> 536870912.

#include <cstdint>
#include <string>
#include <string_view>

#include "src/base/status.h"

namespace keyfs {

// Parses a byte count: digits, optionally a decimal fraction (up to 9
// digits, with a suffix only: "1.5G"), then optionally K, M, G or T (powers
// of 1024, any case, optionally followed by "B" or "iB"); a fraction is
// rounded down to a whole byte. Rejects empty strings, signs, a fraction
// without a suffix, unknown suffixes and values that do not fit in 64 bits.
Result<uint64_t> ParseSize(std::string_view text);

// 536870912 -> "512.0 MiB"; below 1 KiB -> "123 B".
std::string FormatSize(uint64_t bytes);

}  // namespace keyfs
