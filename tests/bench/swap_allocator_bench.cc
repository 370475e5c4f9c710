// Allocation time per block of the swap file's page allocator at 10 %, 50 %
// and 90 % full after random churn (issue 11, "Measure"; goal: flat), next
// to the reference it replaces: vm.c's page bitmap, scanned from a moving
// hint for a run of free pages (vmFindContiguousPages), rebuilt here in its
// plain form. Run by scripts/bench-cache; Google Benchmark.
//
// The file: 1 Mi pages (4 GiB of 4 KiB pages). Runs: 80 % of 1..4 pages
// (small files), 20 % of 65 pages (a 256 KiB block with its record header).
// Churn: the allocator is filled to the level, then as many runs are freed
// at random and allocated again, so free space is fragmented as after a long
// uptime. Each timed iteration allocates one run and frees a random one;
// no_run_% counts allocations that found no free run long enough although
// the pages were free in total (fragmentation).

#include <benchmark/benchmark.h>

#include <optional>
#include <random>
#include <vector>

#include "store/swap/swap_allocator.h"

namespace keyfs {
namespace {

constexpr uint64_t kPages = uint64_t{1} << 20;

uint64_t RunLength(std::mt19937_64& rng) { return rng() % 10 < 8 ? 1 + rng() % 4 : 65; }

// vm.c's way: one bit per page; look for `count` free pages in a row from
// where the last search ended, wrapping once.
class BitmapAllocator {
 public:
  explicit BitmapAllocator(uint64_t pages) : used_(pages, false) {}
  std::optional<uint64_t> Allocate(uint64_t count) {
    uint64_t pages = used_.size(), run = 0, start = next_, scanned = 0;
    for (uint64_t page = next_; scanned < pages + count; ++scanned) {
      if (page == pages) {  // wrap: a run cannot cross the end
        page = 0;
        run = 0;
      }
      if (used_[page]) {
        run = 0;
      } else if (run++ == 0) {
        start = page;
      }
      ++page;
      if (run == count) {
        for (uint64_t p = start; p < start + count; ++p) used_[p] = true;
        next_ = start + count;
        return start;
      }
    }
    return std::nullopt;
  }
  void Free(uint64_t first, uint64_t count) {
    for (uint64_t p = first; p < first + count; ++p) used_[p] = false;
  }

 private:
  std::vector<bool> used_;
  uint64_t next_ = 0;
};

template <typename Allocator>
void BM_Allocate(benchmark::State& state) {
  const double full = state.range(0) / 100.0;
  Allocator allocator(kPages);
  std::mt19937_64 rng(42);
  std::vector<std::pair<uint64_t, uint64_t>> held;
  uint64_t used = 0;
  auto allocate = [&] {
    uint64_t count = RunLength(rng);
    std::optional<uint64_t> first = allocator.Allocate(count);
    if (!first) return false;
    held.emplace_back(*first, count);
    used += count;
    return true;
  };
  auto free_one = [&] {
    size_t i = rng() % held.size();
    allocator.Free(held[i].first, held[i].second);
    used -= held[i].second;
    held[i] = held.back();
    held.pop_back();
  };
  while (used < full * kPages && allocate()) {
  }
  for (size_t i = 0, n = held.size(); i < n; ++i) {  // churn
    free_one();
    allocate();
  }
  double failed = 0, tries = 0;
  for (auto _ : state) {
    ++tries;
    if (!allocate()) ++failed;  // no free run that long: a save would fail
    free_one();
  }
  state.counters["full_%"] = 100.0 * used / kPages;
  state.counters["no_run_%"] = tries > 0 ? 100.0 * failed / tries : 0;
}

// SwapAllocator's constructor takes [first, end).
struct Extents : SwapAllocator {
  explicit Extents(uint64_t pages) : SwapAllocator(0, pages) {}
};

BENCHMARK(BM_Allocate<Extents>)->Arg(10)->Arg(50)->Arg(90)->Name("extents");
BENCHMARK(BM_Allocate<BitmapAllocator>)->Arg(10)->Arg(50)->Arg(90)->Name("bitmap_vm_c");

}  // namespace
}  // namespace keyfs

BENCHMARK_MAIN();
