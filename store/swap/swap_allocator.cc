#include "store/swap/swap_allocator.h"

#include <cassert>

#include <fmt/format.h>

namespace keyfs {

namespace {
// A red-black tree node: three pointers and a colour, then the value.
constexpr size_t kNodeOverhead = 32;
}  // namespace

SwapAllocator::SwapAllocator(uint64_t first, uint64_t end) : first_(first), end_(end) {
  if (end > first) Insert(first, end - first);
}

void SwapAllocator::Insert(uint64_t first, uint64_t count) {
  by_start_.emplace(first, count);
  by_size_.emplace(count, first);
  free_pages_ += count;
}

void SwapAllocator::Erase(std::map<uint64_t, uint64_t>::iterator it) {
  by_size_.erase({it->second, it->first});
  free_pages_ -= it->second;
  by_start_.erase(it);
}

std::optional<uint64_t> SwapAllocator::Allocate(uint64_t count) {
  if (count == 0) return std::nullopt;
  auto fit = by_size_.lower_bound({count, 0});
  if (fit == by_size_.end()) return std::nullopt;
  auto [length, first] = *fit;
  Erase(by_start_.find(first));
  if (length > count) Insert(first + count, length - count);
  return first;
}

bool SwapAllocator::Free(uint64_t first, uint64_t count) {
  if (count == 0 || first < first_ || first > end_ || count > end_ - first) return false;
  uint64_t end = first + count;
  // The free extent at or after `first`, and the one before it: neither may
  // reach into the run (invariant 1 then says no other one does).
  auto next = by_start_.lower_bound(first);
  if (next != by_start_.end() && next->first < end) return false;
  auto prev = next == by_start_.begin() ? by_start_.end() : std::prev(next);
  if (prev != by_start_.end() && prev->first + prev->second > first) return false;
  // Merge with the neighbours it touches.
  if (prev != by_start_.end() && prev->first + prev->second == first) {
    first = prev->first;
    Erase(prev);
  }
  if (next != by_start_.end() && next->first == end) {
    end += next->second;
    Erase(next);
  }
  Insert(first, end - first);
  assert(by_start_.size() == by_size_.size());
  return true;
}

uint64_t SwapAllocator::largest_free_extent() const {
  return by_size_.empty() ? 0 : by_size_.rbegin()->first;
}

size_t SwapAllocator::heap_bytes() const {
  return by_start_.size() * (kNodeOverhead + sizeof(std::pair<const uint64_t, uint64_t>)) +
         by_size_.size() * (kNodeOverhead + sizeof(std::pair<uint64_t, uint64_t>));
}

std::string SwapAllocator::CheckInvariants() const {
  if (by_start_.size() != by_size_.size()) {
    return fmt::format("{} extents by start, {} by size", by_start_.size(), by_size_.size());
  }
  uint64_t sum = 0, last_end = 0;
  bool first_extent = true;
  for (const auto& [start, length] : by_start_) {
    if (length == 0) return fmt::format("an empty extent at {}", start);
    if (start < first_ || start + length > end_) {
      return fmt::format("extent [{}, {}) outside [{}, {})", start, start + length, first_, end_);
    }
    if (!first_extent && start <= last_end) {
      return fmt::format("extent at {} overlaps or touches the one ending at {}", start, last_end);
    }
    if (!by_size_.contains({length, start})) {
      return fmt::format("extent [{}, +{}) missing by size", start, length);
    }
    first_extent = false;
    last_end = start + length;
    sum += length;
  }
  if (sum != free_pages_) return fmt::format("free_pages {} but extents sum to {}", free_pages_, sum);
  return "";
}

}  // namespace keyfs
