// The swap file's page allocator against a model that cannot be wrong (one
// flag per page): whatever the order of allocations and frees, no page is
// ever given out twice, every free page can be found, and the free extents
// stay merged.

#include "store/swap/swap_allocator.h"

#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace keyfs {
namespace {

// One flag per page, and the runs handed out.
class Model {
 public:
  Model(uint64_t first, uint64_t end) : first_(first), used_(end, false) {}
  // Marks a run allocated; false when any page of it already was.
  bool Take(uint64_t first, uint64_t count) {
    if (first < first_ || first + count > used_.size()) return false;
    for (uint64_t p = first; p < first + count; ++p) {
      if (used_[p]) return false;
    }
    for (uint64_t p = first; p < first + count; ++p) used_[p] = true;
    return true;
  }
  void Give(uint64_t first, uint64_t count) {
    for (uint64_t p = first; p < first + count; ++p) used_[p] = false;
  }
  uint64_t free_pages() const {
    uint64_t n = 0;
    for (uint64_t p = first_; p < used_.size(); ++p) n += !used_[p];
    return n;
  }
  uint64_t longest_free_run() const {
    uint64_t best = 0, run = 0;
    for (uint64_t p = first_; p < used_.size(); ++p) {
      run = used_[p] ? 0 : run + 1;
      best = std::max(best, run);
    }
    return best;
  }
  uint64_t free_runs() const {
    uint64_t runs = 0;
    for (uint64_t p = first_; p < used_.size(); ++p) {
      if (!used_[p] && (p == first_ || used_[p - 1])) ++runs;
    }
    return runs;
  }

 private:
  uint64_t first_;
  std::vector<bool> used_;
};

TEST(SwapAllocatorTest, FillsTheWholeRangeThenRefuses) {
  SwapAllocator allocator(1, 101);
  EXPECT_EQ(allocator.pages(), 100u);
  std::vector<uint64_t> got;
  for (int i = 0; i < 100; ++i) {
    auto first = allocator.Allocate(1);
    ASSERT_TRUE(first.has_value());
    got.push_back(*first);
  }
  EXPECT_FALSE(allocator.Allocate(1).has_value());
  EXPECT_EQ(allocator.free_pages(), 0u);
  std::sort(got.begin(), got.end());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], uint64_t(i + 1));  // page 0 never
  EXPECT_EQ(allocator.CheckInvariants(), "");
}

TEST(SwapAllocatorTest, FreedNeighboursMergeIntoOneExtent) {
  SwapAllocator allocator(0, 30);
  uint64_t a = *allocator.Allocate(10), b = *allocator.Allocate(10), c = *allocator.Allocate(10);
  EXPECT_EQ(allocator.free_extents(), 0u);
  ASSERT_TRUE(allocator.Free(a, 10));
  ASSERT_TRUE(allocator.Free(c, 10));
  EXPECT_EQ(allocator.free_extents(), 2u);
  EXPECT_FALSE(allocator.Allocate(11).has_value());
  ASSERT_TRUE(allocator.Free(b, 10));
  EXPECT_EQ(allocator.free_extents(), 1u);
  EXPECT_EQ(allocator.largest_free_extent(), 30u);
  EXPECT_EQ(allocator.Allocate(30), std::optional<uint64_t>(0));
  EXPECT_EQ(allocator.CheckInvariants(), "");
}

TEST(SwapAllocatorTest, BestFitTakesTheShortestRunThatHolds) {
  SwapAllocator allocator(0, 100);
  // Free runs of 20 (at 0), 5 (at 30), 8 (at 50) and what is left at 70.
  uint64_t all = *allocator.Allocate(100);
  ASSERT_EQ(all, 0u);
  ASSERT_TRUE(allocator.Free(0, 20));
  ASSERT_TRUE(allocator.Free(30, 5));
  ASSERT_TRUE(allocator.Free(50, 8));
  ASSERT_TRUE(allocator.Free(70, 30));
  EXPECT_EQ(allocator.Allocate(6), std::optional<uint64_t>(50));
  EXPECT_EQ(allocator.Allocate(5), std::optional<uint64_t>(30));
  EXPECT_EQ(allocator.Allocate(20), std::optional<uint64_t>(0));
  EXPECT_EQ(allocator.Allocate(2), std::optional<uint64_t>(56));  // what is left of the 8
  EXPECT_EQ(allocator.CheckInvariants(), "");
}

TEST(SwapAllocatorTest, DoubleAndStrayFreesAreRefusedAndChangeNothing) {
  SwapAllocator allocator(1, 50);
  uint64_t a = *allocator.Allocate(10);
  ASSERT_TRUE(allocator.Free(a, 10));
  EXPECT_FALSE(allocator.Free(a, 10));       // twice
  EXPECT_FALSE(allocator.Free(a + 5, 2));    // inside free space
  uint64_t b = *allocator.Allocate(4);
  EXPECT_FALSE(allocator.Free(b, 5));        // reaches into free space
  EXPECT_FALSE(allocator.Free(0, 1));        // below the range
  EXPECT_FALSE(allocator.Free(49, 2));       // past its end
  EXPECT_EQ(allocator.free_pages(), 45u);
  EXPECT_EQ(allocator.CheckInvariants(), "");
}

// Random churn of runs of many sizes: the model says whether any page was
// given twice; the allocator must find a run whenever one exists.
TEST(SwapAllocatorTest, RandomChurnNeverOverlapsAndAlwaysFindsAFittingRun) {
  constexpr uint64_t kPages = 4096;
  for (uint32_t seed : {1u, 2u, 3u}) {
    SwapAllocator allocator(1, kPages);
    Model model(1, kPages);
    std::mt19937 rng(seed);
    std::vector<std::pair<uint64_t, uint64_t>> held;
    for (int step = 0; step < 20000; ++step) {
      bool allocate = held.empty() || rng() % 100 < 55;
      if (allocate) {
        // Mostly small runs, some long ones (small files and whole blocks).
        uint64_t count = rng() % 10 < 8 ? 1 + rng() % 4 : 1 + rng() % 300;
        auto first = allocator.Allocate(count);
        if (!first) {
          ASSERT_LT(model.longest_free_run(), count) << "a run of " << count << " was free";
          continue;
        }
        ASSERT_TRUE(model.Take(*first, count)) << "pages at " << *first << " given twice";
        held.emplace_back(*first, count);
      } else {
        size_t i = rng() % held.size();
        ASSERT_TRUE(allocator.Free(held[i].first, held[i].second));
        model.Give(held[i].first, held[i].second);
        held[i] = held.back();
        held.pop_back();
      }
      if (step % 997 == 0) {
        ASSERT_EQ(allocator.CheckInvariants(), "");
        ASSERT_EQ(allocator.free_pages(), model.free_pages());
        ASSERT_EQ(allocator.free_extents(), model.free_runs());
        ASSERT_EQ(allocator.largest_free_extent(), model.longest_free_run());
      }
    }
    for (auto [first, count] : held) ASSERT_TRUE(allocator.Free(first, count));
    EXPECT_EQ(allocator.free_extents(), 1u);
    EXPECT_EQ(allocator.free_pages(), kPages - 1);
  }
}

}  // namespace
}  // namespace keyfs
