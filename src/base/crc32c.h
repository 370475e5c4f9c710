#pragma once

// CRC32C (Castagnoli), the checksum of every on-disk record keyfs writes.
// Computed by Intel ISA-L (Debian's libisal), which picks the SSE4.2 / AVX-512
// instructions at run time.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace keyfs::crc32c {

// The CRC32C of data[0, n) continued from `crc`, the CRC32C of what came before.
uint32_t Extend(uint32_t crc, const char* data, size_t n);

inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view data) { return Value(data.data(), data.size()); }

// A CRC stored next to the data it covers is masked, so that the CRC of a
// string that itself contains CRCs (a journal inside a journal, say) is not
// degenerate. Same transform as leveldb's.
constexpr uint32_t kMaskDelta = 0xa282ead8u;
inline uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace keyfs::crc32c
