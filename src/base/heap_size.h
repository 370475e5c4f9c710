#pragma once

// What a heap allocation really costs, for the memory budget. glibc's malloc
// hands out chunks of the request plus an 8-byte header, rounded up to 16 bytes,
// never smaller than 32. Charging the chunk rather than the request keeps the
// budget honest for the many small objects a filesystem holds (names, inodes).

#include <cstddef>
#include <string>

namespace keyfs {

constexpr size_t HeapChunk(size_t request) {
  size_t chunk = (request + 8 + 15) & ~size_t{15};
  return chunk < 32 ? 32 : chunk;
}

// Heap bytes behind a std::string's characters: none while they fit in the
// short-string buffer (15 characters in libstdc++).
inline size_t StringHeapBytes(const std::string& s) {
  return s.capacity() > 15 ? HeapChunk(s.capacity() + 1) : 0;
}
inline size_t StringHeapBytes(size_t length) {
  return length > 15 ? HeapChunk(length + 1) : 0;
}

}  // namespace keyfs
