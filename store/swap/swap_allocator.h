#pragma once

// SwapAllocator: which pages of the swap file are free (docs/swap-format.md,
// "Free space").
//
// Free space is a set of extents — runs of free pages — kept in two ordered
// trees: by first page, to merge a freed run with the free runs beside it,
// and by (length, first page), for best fit: the shortest run that holds the
// request, the lowest of those that are equally short. Allocate and Free
// cost O(log extents) however full or fragmented the file is. vm.c kept a
// bitmap and scanned it from a moving hint for a long enough run of zeros,
// which costs more the fuller the file (and the longer the run) gets; a
// bitmap is smaller (one bit per page) but its scan is the cost that matters
// on a hot path, and the trees are small too: two nodes per free extent, and
// best fit with merging keeps extents few.
//
// Invariants (CheckInvariants tests them; an assert guards each in Free):
//  1. Free extents lie within [first, end), never overlap and never touch:
//     a freed run is merged with free neighbours at once.
//  2. by_start_ and by_size_ hold the same extents.
//  3. free_pages_ is the sum of their lengths.
// A page is allocated exactly when no extent covers it, so a run given out
// by Allocate is never given out again before it is freed.
//
// Not thread-safe: the swap file calls it under its mutex.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace keyfs {

class SwapAllocator {
 public:
  // Pages [first, end) start free.
  SwapAllocator(uint64_t first, uint64_t end);

  // The first page of a run of `count` (> 0) pages taken from free space;
  // nullopt when no free run is that long.
  std::optional<uint64_t> Allocate(uint64_t count);
  // Pages [first, first + count) become free. False, changing nothing, when
  // they are not all allocated (a double free: a bug the caller reports).
  bool Free(uint64_t first, uint64_t count);

  uint64_t pages() const { return end_ - first_; }
  uint64_t free_pages() const { return free_pages_; }
  uint64_t free_extents() const { return by_start_.size(); }
  uint64_t largest_free_extent() const;
  // Heap bytes the trees take (for the memory budget), an estimate.
  size_t heap_bytes() const;

  // "" when invariants 1-3 hold, else what is wrong (tests).
  std::string CheckInvariants() const;

 private:
  void Insert(uint64_t first, uint64_t count);
  void Erase(std::map<uint64_t, uint64_t>::iterator it);

  const uint64_t first_, end_;
  std::map<uint64_t, uint64_t> by_start_;            // first page -> length
  std::set<std::pair<uint64_t, uint64_t>> by_size_;  // (length, first page)
  uint64_t free_pages_ = 0;
};

}  // namespace keyfs
