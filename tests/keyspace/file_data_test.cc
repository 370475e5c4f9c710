#include "src/keyspace/file_data.h"

#include <gtest/gtest.h>

namespace keyfs {
namespace {

constexpr uint32_t kBlock = 1024;

std::string Collect(const std::vector<ReadSlice>& slices) {
  std::string out;
  for (const auto& s : slices) {
    if (s.block) {
      out.append(s.block->data() + s.offset, s.length);
    } else {
      out.append(s.length, '\0');
    }
  }
  return out;
}

class FileDataTest : public ::testing::Test {
 protected:
  explicit FileDataTest(uint64_t limit = 1 << 20) : memory_(limit), data_(&memory_, kBlock) {}

  Result<size_t> Write(uint64_t offset, std::string_view bytes) {
    missing_.clear();
    return data_.Write(offset, bytes, BlockChange{7, ++version_, nullptr}, &missing_);
  }
  std::string Read(uint64_t offset, uint64_t length, uint64_t size) {
    missing_.clear();
    auto slices = data_.Read(offset, length, size, &missing_);
    EXPECT_TRUE(slices.ok()) << slices.status().ToString();
    return slices.ok() ? Collect(*slices) : "";
  }
  // Evicts block `index`, as the cache would after saving it at `where`.
  void Evict(size_t index, BlockLocation where = {1, 100, 0}) {
    BlockSlot& slot = data_.mutable_slot(index);
    slot.stored = where;
    slot.stored_version = slot.version;
    slot.dirty = false;
    slot.buffer = nullptr;
  }

  MemoryAccountant memory_;
  FileData data_;
  std::vector<uint64_t> missing_;
  uint64_t version_ = 0;
};

TEST_F(FileDataTest, SmallWriteCostsItsOwnLength) {
  ASSERT_TRUE(Write(0, "hello").ok());
  ASSERT_EQ(data_.block_count(), 1u);
  EXPECT_EQ(data_.block(0)->capacity(), 5u);
  EXPECT_EQ(data_.stored_bytes(), 5u);
  EXPECT_TRUE(data_.slot(0).dirty);
  EXPECT_EQ(data_.slot(0).version, 1u);
}

TEST_F(FileDataTest, AppendingGrowsGeometricallyAndShrinkToFitTrims) {
  FileData data(&memory_, 64 * 1024);
  std::string piece(100, 'p');
  const BlockBuffer* last = nullptr;
  int reallocations = 0;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(data.Write(i * 100, piece, BlockChange{1, 1, nullptr}, &missing_).ok());
    if (data.block(0) != last) ++reallocations;
    last = data.block(0);
  }
  EXPECT_LT(reallocations, 10);  // doubling, not one copy per append
  data.ShrinkToFit();
  EXPECT_EQ(data.block(0)->capacity(), 30000u);
  auto slices = data.Read(0, 30000, 30000, &missing_);
  ASSERT_TRUE(slices.ok());
  EXPECT_EQ(Collect(*slices), std::string(30000, 'p'));
}

TEST_F(FileDataTest, ReadPastTheStoredBytesGivesZerosUpToTheSize) {
  ASSERT_TRUE(Write(0, "abc").ok());
  EXPECT_EQ(Read(0, 100, 10), std::string("abc") + std::string(7, '\0'));
}

TEST_F(FileDataTest, TruncateThenGrowDoesNotResurrectOldBytes) {
  ASSERT_TRUE(Write(0, "0123456789").ok());
  data_.Truncate(4, BlockChange{7, 9, nullptr});
  EXPECT_EQ(Read(0, 10, 10), std::string("0123") + std::string(6, '\0'));
  ASSERT_TRUE(Write(8, "xy").ok());
  EXPECT_EQ(Read(0, 10, 10), std::string("0123") + std::string(4, '\0') + "xy");
}

TEST_F(FileDataTest, TruncateOfASharedBlockNeedsNoCopy) {
  ASSERT_TRUE(Write(0, "0123456789").ok());
  auto held = data_.Read(0, 10, 10, &missing_);
  uint64_t used = memory_.Used();
  data_.Truncate(4, BlockChange{7, 9, nullptr});
  EXPECT_EQ(memory_.Used(), used);  // the length is cut, the shared buffer stays
  EXPECT_EQ(Collect(*held), "0123456789");
  EXPECT_EQ(data_.slot(0).length, 4u);
  EXPECT_EQ(Read(0, 10, 10), std::string("0123") + std::string(6, '\0'));
  ASSERT_TRUE(Write(6, "ab").ok());  // copies now, without the cut bytes
  EXPECT_EQ(Read(0, 10, 10), std::string("0123") + std::string(2, '\0') + "ab" +
                                 std::string(2, '\0'));
  EXPECT_EQ(Collect(*held), "0123456789");
}

TEST_F(FileDataTest, AWriteThatDoesNotFitChangesNothing) {
  FileData data(&memory_, kBlock);
  MemoryAccountant small(3000);
  FileData tight(&small, kBlock);
  ASSERT_TRUE(tight.Write(0, std::string(kBlock, 'a'), BlockChange{1, 1, nullptr}, &missing_).ok());
  auto refused = tight.Write(kBlock, std::string(4 * kBlock, 'b'), BlockChange{1, 2, nullptr}, &missing_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ENOSPC);  // all or nothing: no short write
  EXPECT_EQ(tight.block_count(), 1u);
  EXPECT_LE(small.Used(), small.limit());
  EXPECT_EQ(small.refusals(), 1u);
}

TEST_F(FileDataTest, MovingKeepsTheCharges) {
  MemoryAccountant memory(1 << 20);
  {
    FileData data(&memory, kBlock);
    ASSERT_TRUE(data.Write(0, std::string(3 * kBlock, 'm'), BlockChange{1, 1, nullptr}, &missing_).ok());
    FileData moved(std::move(data));
    EXPECT_EQ(moved.stored_bytes(), 3u * kBlock);
    EXPECT_GT(memory.Used(), 3u * kBlock);
  }
  EXPECT_EQ(memory.Used(), 0u);
}

// --- evicted blocks --------------------------------------------------------------

TEST_F(FileDataTest, ReadingAnEvictedBlockNeedsItAndChangesNothing) {
  ASSERT_TRUE(Write(0, std::string(3 * kBlock, 'e')).ok());
  Evict(1);
  missing_.clear();
  auto slices = data_.Read(0, 3 * kBlock, 3 * kBlock, &missing_);
  ASSERT_FALSE(slices.ok());
  EXPECT_EQ(slices.status().code(), kNeedBlocks);
  EXPECT_EQ(missing_, (std::vector<uint64_t>{1}));
  // Around it, no load is needed.
  EXPECT_EQ(Read(0, kBlock, 3 * kBlock), std::string(kBlock, 'e'));
  EXPECT_EQ(Read(2 * kBlock, kBlock, 3 * kBlock), std::string(kBlock, 'e'));
  EXPECT_TRUE(missing_.empty());
}

TEST_F(FileDataTest, APartialWriteToAnEvictedBlockNeedsItAWholeOneDoesNot) {
  ASSERT_TRUE(Write(0, std::string(2 * kBlock, 'o')).ok());
  Evict(0);
  Evict(1);
  uint64_t used = memory_.Used();
  auto partial = Write(10, "x");
  EXPECT_EQ(partial.status().code(), kNeedBlocks);
  EXPECT_EQ(missing_, (std::vector<uint64_t>{0}));
  EXPECT_EQ(memory_.Used(), used);  // nothing happened
  EXPECT_FALSE(data_.slot(0).resident());
  // Covering block 1 whole: no load; it is dirty, with its old copy noted.
  ASSERT_TRUE(Write(kBlock, std::string(kBlock, 'n')).ok());
  EXPECT_TRUE(data_.slot(1).resident());
  EXPECT_TRUE(data_.slot(1).dirty);
  EXPECT_TRUE(data_.slot(1).stored.valid());
  EXPECT_GT(data_.slot(1).version, data_.slot(1).stored_version);
  // A write spanning an evicted block's whole length and past it: no load.
  data_.Truncate(kBlock / 2, BlockChange{7, ++version_, nullptr});
  Evict(0);
  ASSERT_TRUE(Write(0, std::string(kBlock / 2 + 10, 'w')).ok());
  EXPECT_EQ(Read(0, kBlock / 2 + 10, kBlock / 2 + 10), std::string(kBlock / 2 + 10, 'w'));
}

TEST_F(FileDataTest, TruncatingAnEvictedBlockCutsItsLengthWithoutALoad) {
  ASSERT_TRUE(Write(0, "0123456789").ok());
  Evict(0);
  data_.Truncate(4, BlockChange{7, ++version_, nullptr});
  EXPECT_TRUE(data_.slot(0).evicted());
  EXPECT_EQ(data_.slot(0).length, 4u);
  EXPECT_EQ(data_.stored_bytes(), 4u);
  // The copy comes back cut to the block's length.
  auto copy = BlockBuffer::Create(&memory_, 10, 10);
  std::memcpy(copy->mutable_data(), "0123456789", 10);
  EXPECT_FALSE(data_.Install(0, copy, {1, 100, 8}));  // not the copy it has
  ASSERT_TRUE(data_.Install(0, copy, {1, 100, 0}));
  EXPECT_FALSE(data_.slot(0).dirty);
  EXPECT_EQ(Read(0, 10, 10), std::string("0123") + std::string(6, '\0'));
}

TEST_F(FileDataTest, PunchingIntoAnEvictedBlockNeedsItDroppingAWholeOneDoesNot) {
  ASSERT_TRUE(Write(0, std::string(2 * kBlock, 'p')).ok());
  Evict(0);
  Evict(1);
  Status partial = data_.PunchHole(100, 10, BlockChange{7, ++version_, nullptr}, &missing_);
  EXPECT_EQ(partial.code(), kNeedBlocks);
  missing_.clear();
  ASSERT_TRUE(data_.PunchHole(kBlock, kBlock, BlockChange{7, ++version_, nullptr}, &missing_).ok());
  EXPECT_TRUE(missing_.empty());
  EXPECT_TRUE(data_.slot(1).hole());
  EXPECT_EQ(data_.stored_bytes(), kBlock);
}

}  // namespace
}  // namespace keyfs
