#include "fuse/fuse_request.h"

#include <sys/mman.h>

namespace keyfs {

namespace {
// More than the largest payload FUSE sends (max_write, at most 1 MiB with
// libfuse 3.14's max_pages): address space only, never memory.
constexpr size_t kUnreadableBytes = size_t{16} << 20;
}  // namespace

const char* UnreadableBytes(size_t bytes) {
  static const char* const reserved = [] {
    void* start = mmap(nullptr, kUnreadableBytes, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return start == MAP_FAILED ? nullptr : static_cast<const char*>(start);
  }();
  return bytes <= kUnreadableBytes ? reserved : nullptr;
}

}  // namespace keyfs
