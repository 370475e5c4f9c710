#include "src/base/crc32c.h"

#include <isa-l/crc.h>

#include <climits>

namespace keyfs::crc32c {

uint32_t Extend(uint32_t crc, const char* data, size_t n) {
  // ISA-L works on the inverted register and takes an int length.
  uint32_t state = ~crc;
  auto* bytes = reinterpret_cast<unsigned char*>(const_cast<char*>(data));
  while (n > 0) {
    int chunk = n > INT_MAX ? INT_MAX : static_cast<int>(n);
    state = crc32_iscsi(bytes, chunk, state);
    bytes += chunk;
    n -= static_cast<size_t>(chunk);
  }
  return ~state;
}

}  // namespace keyfs::crc32c
