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

TEST(FileDataTest, SmallWriteCostsItsOwnLength) {
  MemoryAccountant memory(1 << 20);
  FileData data(&memory, kBlock);
  ASSERT_TRUE(data.Write(0, "hello").ok());
  ASSERT_EQ(data.block_count(), 1u);
  EXPECT_EQ(data.block(0)->capacity(), 5u);
  EXPECT_EQ(data.stored_bytes(), 5u);
}

TEST(FileDataTest, AppendingGrowsGeometricallyAndShrinkToFitTrims) {
  MemoryAccountant memory(1 << 20);
  FileData data(&memory, 64 * 1024);
  std::string piece(100, 'p');
  const BlockBuffer* last = nullptr;
  int reallocations = 0;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(data.Write(i * 100, piece).ok());
    if (data.block(0) != last) ++reallocations;
    last = data.block(0);
  }
  EXPECT_LT(reallocations, 10);  // doubling, not one copy per append
  data.ShrinkToFit();
  EXPECT_EQ(data.block(0)->capacity(), 30000u);
  EXPECT_EQ(Collect(data.Read(0, 30000, 30000)), std::string(30000, 'p'));
}

TEST(FileDataTest, ReadPastTheStoredBytesGivesZerosUpToTheSize) {
  MemoryAccountant memory(1 << 20);
  FileData data(&memory, kBlock);
  ASSERT_TRUE(data.Write(0, "abc").ok());
  EXPECT_EQ(Collect(data.Read(0, 100, 10)), std::string("abc") + std::string(7, '\0'));
}

TEST(FileDataTest, TruncateThenGrowDoesNotResurrectOldBytes) {
  MemoryAccountant memory(1 << 20);
  FileData data(&memory, kBlock);
  ASSERT_TRUE(data.Write(0, "0123456789").ok());
  ASSERT_TRUE(data.Truncate(4).ok());
  EXPECT_EQ(Collect(data.Read(0, 10, 10)), std::string("0123") + std::string(6, '\0'));
}

TEST(FileDataTest, TruncateOfASharedBlockCopies) {
  MemoryAccountant memory(1 << 20);
  FileData data(&memory, kBlock);
  ASSERT_TRUE(data.Write(0, "0123456789").ok());
  auto held = data.Read(0, 10, 10);
  ASSERT_TRUE(data.Truncate(4).ok());
  EXPECT_EQ(Collect(held), "0123456789");
  EXPECT_EQ(data.block(0)->length(), 4u);
}

TEST(FileDataTest, WriteThatDoesNotFitChangesNothing) {
  MemoryAccountant memory(3000);
  FileData data(&memory, kBlock);
  ASSERT_TRUE(data.Write(0, std::string(kBlock, 'a')).ok());
  auto written = data.Write(kBlock, std::string(4 * kBlock, 'b'));
  // A short write: what fitted is there, the rest is not.
  ASSERT_TRUE(written.ok());
  EXPECT_LT(*written, 4u * kBlock);
  EXPECT_EQ(*written % kBlock, 0u);
  EXPECT_LE(memory.Used(), memory.limit());
  auto none = data.Write(10 * kBlock, std::string(kBlock, 'c'));
  EXPECT_EQ(none.status().code(), ENOSPC);
  EXPECT_EQ(Collect(data.Read(0, kBlock, kBlock)), std::string(kBlock, 'a'));
}

TEST(FileDataTest, MovingKeepsTheCharges) {
  MemoryAccountant memory(1 << 20);
  {
    FileData data(&memory, kBlock);
    ASSERT_TRUE(data.Write(0, std::string(3 * kBlock, 'm')).ok());
    FileData moved(std::move(data));
    EXPECT_EQ(moved.stored_bytes(), 3u * kBlock);
    EXPECT_GT(memory.Used(), 3u * kBlock);
  }
  EXPECT_EQ(memory.Used(), 0u);
}

}  // namespace
}  // namespace keyfs
