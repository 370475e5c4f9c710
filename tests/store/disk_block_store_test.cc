// The disk store's own behaviour beyond the contract: the block format's
// checks, byte by byte (a damaged block is EIO, never wrong bytes),
// compression, segments and their reclaiming, recovery at mount, and disk
// errors.

#include "store/disk_block_store.h"

#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "src/base/coding.h"
#include "store/block_format.h"
#include "tests/store/fault_injection_env.h"
#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

std::string Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

class DiskBlockStoreTest : public ::testing::Test {
 protected:
  DiskBlockStoreTest() : env_(Env::Default()) {}

  std::unique_ptr<DiskBlockStore> Open(DiskStoreOptions options = {}) {
    auto store = DiskBlockStore::Open(&env_, dir_.path(), options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  BlockLocation Save(DiskBlockStore* store, const BlockId& id, std::string_view bytes) {
    auto where = store->Save(id, bytes);
    EXPECT_TRUE(where.ok()) << where.status().ToString();
    return where.ok() ? *where : BlockLocation{};
  }
  std::string SegmentFile(uint32_t id) const {
    char name[64];
    std::snprintf(name, sizeof(name), "/blocks/segment-%06u.seg", id);
    return dir_.path() + name;
  }
  // Byte surgery on a saved block, in its segment file.
  void Poke(const BlockLocation& where, uint64_t at, char xor_with) {
    std::fstream file(SegmentFile(where.segment), std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(where.offset + at));
    char c;
    file.read(&c, 1);
    c ^= xor_with;
    file.seekp(static_cast<std::streamoff>(where.offset + at));
    file.write(&c, 1);
  }
  int ErrnoOfLoad(DiskBlockStore* store, const BlockId& id, const BlockLocation& where) {
    auto block = store->Load(id, where, &memory_);
    return block.ok() ? 0 : block.status().code();
  }

  ScopedTempDir dir_;
  FaultInjectionEnv env_;
  MemoryAccountant memory_{uint64_t{1} << 32};
};

// --- the block format ------------------------------------------------------

TEST_F(DiskBlockStoreTest, EveryDamagedByteOfASmallBlockIsEio) {
  auto store = Open();
  BlockId id{5, 2, 77};
  BlockLocation where = Save(store.get(), id, "a small block of forty-odd bytes, stored raw");
  ASSERT_TRUE(store->Sync().ok());
  for (uint64_t at = 0; at < where.size; ++at) {
    if (at >= 44 && at < 48) continue;  // the zero padding is not read
    Poke(where, at, 0x20);
    EXPECT_EQ(ErrnoOfLoad(store.get(), id, where), EIO) << "byte " << at;
    Poke(where, at, 0x20);  // put it back
  }
  EXPECT_EQ(ErrnoOfLoad(store.get(), id, where), 0);
  EXPECT_GT(store->Stats().damaged, 40u);
}

TEST_F(DiskBlockStoreTest, DamageInACompressedPayloadIsEio) {
  auto store = Open();
  std::string text(200000, 'x');
  for (size_t i = 0; i < text.size(); i += 100) text[i] = static_cast<char>('a' + i % 26);
  BlockId id{5, 0, 1};
  BlockLocation where = Save(store.get(), id, text);
  EXPECT_LT(where.size, text.size() / 4);  // it compressed
  Poke(where, block_format::kHeaderSize + where.size / 2, 0x01);
  EXPECT_EQ(ErrnoOfLoad(store.get(), id, where), EIO);
}

TEST_F(DiskBlockStoreTest, ATornRecordIsEio) {
  auto store = Open();
  BlockId id{5, 0, 1};
  BlockLocation where = Save(store.get(), id, Random(10000, 1));
  ASSERT_TRUE(store->Sync().ok());
  store.reset();
  ASSERT_TRUE(env_.TruncateFile(SegmentFile(where.segment), where.offset + where.size - 1).ok());
  store = Open();
  EXPECT_EQ(ErrnoOfLoad(store.get(), id, where), EIO);
}

TEST_F(DiskBlockStoreTest, ARecordWithAnotherIdentityIsEioEvenWithAGoodChecksum) {
  auto store = Open();
  BlockLocation where = Save(store.get(), {5, 0, 1}, "bytes of version 1");
  EXPECT_EQ(ErrnoOfLoad(store.get(), {5, 0, 2}, where), EIO);
  EXPECT_EQ(ErrnoOfLoad(store.get(), {6, 0, 1}, where), EIO);
  EXPECT_EQ(ErrnoOfLoad(store.get(), {5, 1, 1}, where), EIO);
}

TEST_F(DiskBlockStoreTest, EveryDamagedByteOfAChunkedBlockIsEio) {
  // A raw block of two chunks and a bit: every byte of the record counts,
  // the CRC after each chunk included.
  auto store = Open();
  BlockId id{5, 2, 77};
  BlockLocation where = Save(store.get(), id, Random(2 * 4096 + 100, 9));
  ASSERT_EQ(where.size, block_format::RawRecordSize(2 * 4096 + 100));
  ASSERT_TRUE(store->Sync().ok());
  for (uint64_t at = 0; at < where.size; at += at < 48 ? 1 : 61) {
    if (at >= 44 && at < 48) continue;
    Poke(where, at, 0x20);
    EXPECT_EQ(ErrnoOfLoad(store.get(), id, where), EIO) << "byte " << at;
    Poke(where, at, 0x20);
  }
  for (uint64_t at : {48u + 4096u, 48u + 4099u, 48u + 4100u + 4096u + 3u}) {  // chunk CRCs
    Poke(where, at, 0x01);
    EXPECT_EQ(ErrnoOfLoad(store.get(), id, where), EIO) << "byte " << at;
    Poke(where, at, 0x01);
  }
  EXPECT_EQ(ErrnoOfLoad(store.get(), id, where), 0);
}

// --- reading part of a block ---------------------------------------------------

TEST_F(DiskBlockStoreTest, ARangeOfARawBlockReadsOnlyItsChunks) {
  auto store = Open();
  std::string bytes = Random(256 * 1024 - 1000, 11);  // the last chunk is short
  BlockId id{7, 3, 9};
  BlockLocation where = Save(store.get(), id, bytes);
  struct Case { uint32_t offset, length; };
  for (Case c : {Case{0, 4096}, Case{4096, 4096}, Case{100, 10}, Case{4000, 200},
                 Case{8191, 8194}, Case{static_cast<uint32_t>(bytes.size()) - 5000, 5000},
                 Case{static_cast<uint32_t>(bytes.size()) - 1, 1}}) {
    auto range = store->LoadRange(id, where, bytes.size(), c.offset, c.length, &memory_);
    ASSERT_TRUE(range.ok()) << range.status().ToString();
    EXPECT_FALSE(range->whole);
    EXPECT_EQ(std::string(range->buffer->data(), range->buffer->length()),
              bytes.substr(c.offset, c.length))
        << c.offset << "+" << c.length;
  }
  EXPECT_EQ(store->Stats().range_loads, 7u);
  EXPECT_EQ(store->Stats().loads, 0u);
}

TEST_F(DiskBlockStoreTest, ARangeOfACompressedBlockIsTheWholeBlock) {
  auto store = Open();
  std::string text(100000, 'y');
  BlockId id{7, 0, 1};
  BlockLocation where = Save(store.get(), id, text);
  ASSERT_LT(where.size, text.size());
  auto range = store->LoadRange(id, where, text.size(), 5000, 4096, &memory_);
  ASSERT_TRUE(range.ok());
  EXPECT_TRUE(range->whole);
  EXPECT_EQ(std::string(range->buffer->data(), range->buffer->length()), text);
}

TEST_F(DiskBlockStoreTest, ADamagedOrForeignRangeIsEio) {
  auto store = Open();
  std::string bytes = Random(64 * 1024, 12);
  BlockId id{7, 1, 4};
  BlockLocation where = Save(store.get(), id, bytes);
  auto errno_of = [&](const BlockId& asked, uint32_t offset) {
    auto range = store->LoadRange(asked, where, bytes.size(), offset, 4096, &memory_);
    return range.ok() ? 0 : range.status().code();
  };
  EXPECT_EQ(errno_of(id, 3 * 4096), 0);
  // Another identity: the chunk CRCs name the block, without the header.
  EXPECT_EQ(errno_of({7, 1, 5}, 3 * 4096), EIO);
  EXPECT_EQ(errno_of({7, 2, 4}, 3 * 4096), EIO);
  EXPECT_EQ(errno_of({8, 1, 4}, 3 * 4096), EIO);
  Poke(where, block_format::kHeaderSize + 3 * block_format::kChunkStride + 77, 0x10);
  EXPECT_EQ(errno_of(id, 3 * 4096), EIO);
  EXPECT_EQ(errno_of(id, 4 * 4096), 0);  // the chunks around it are whole
  EXPECT_EQ(errno_of(id, 2 * 4096), 0);
  EXPECT_GE(store->Stats().damaged, 4u);
}

TEST_F(DiskBlockStoreTest, CompressionOnlyWhenItIsSmallerAndOnlyWhenAsked) {
  auto store = Open();
  std::string zeros(100000, '\0'), noise = Random(100000, 3);
  BlockLocation z = Save(store.get(), {1, 0, 1}, zeros);
  BlockLocation n = Save(store.get(), {1, 1, 1}, noise);
  EXPECT_LT(z.size, 2000u);
  EXPECT_EQ(n.size, block_format::RawRecordSize(noise.size()));  // stored raw
  store.reset();
  DiskStoreOptions raw;
  raw.compress = false;
  store = Open(raw);
  BlockLocation z2 = Save(store.get(), {1, 2, 1}, zeros);
  EXPECT_EQ(z2.size, block_format::RawRecordSize(zeros.size()));
  auto back = store->Load({1, 0, 1}, z, &memory_);  // the compressed one still reads
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::string((*back)->data(), (*back)->length()), zeros);
}

TEST_F(DiskBlockStoreTest, ABlockWithIncompressibleStartStillCompressesItsRest) {
  // lz4 is tried only where samples of the block shrink (block_format.cc):
  // a block that starts with noise and ends in zeros is still compressed.
  auto store = Open();
  std::string mixed = Random(128 * 1024, 7) + std::string(128 * 1024, '\0');
  BlockLocation where = Save(store.get(), {1, 0, 1}, mixed);
  EXPECT_LT(where.size, mixed.size() * 6 / 10);
  auto back = store->Load({1, 0, 1}, where, &memory_);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::string((*back)->data(), (*back)->length()), mixed);
}

// --- segments ------------------------------------------------------------------

TEST_F(DiskBlockStoreTest, SegmentsFillUpAndDeadOnesAreRemovedAfterTheirEpoch) {
  DiskStoreOptions options;
  options.segment_bytes = 256 << 10;
  options.compress = false;
  auto store = Open(options);
  store->FinishRecovery();
  std::vector<BlockLocation> where;
  for (uint64_t i = 0; i < 20; ++i) where.push_back(Save(store.get(), {1, i, 1}, Random(60000, i)));
  ASSERT_TRUE(store->Sync().ok());
  auto segments = store->Segments();
  EXPECT_GE(segments.size(), 5u);
  uint32_t first = where[0].segment;
  // Delete everything in the first segment: it retires at the epoch of now.
  store->set_epoch(7);
  for (uint64_t i = 0; i < where.size(); ++i) {
    if (where[i].segment == first) {
      ASSERT_TRUE(store->Delete({1, i, 1}, where[i]).ok());
    }
  }
  EXPECT_EQ(store->Stats().retired_segments, 1u);
  ASSERT_TRUE(store->RemoveRetired(7).ok());  // not yet: retired at 7
  EXPECT_TRUE(env_.FileExists(SegmentFile(first)));
  ASSERT_TRUE(store->RemoveRetired(8).ok());
  EXPECT_FALSE(env_.FileExists(SegmentFile(first)));
  EXPECT_EQ(store->Stats().retired_segments, 0u);
  // The others still load.
  for (uint64_t i = 0; i < where.size(); ++i) {
    if (where[i].segment != first) {
      EXPECT_EQ(ErrnoOfLoad(store.get(), {1, i, 1}, where[i]), 0);
    }
  }
}

TEST_F(DiskBlockStoreTest, SegmentNumbersAreNeverUsedTwice) {
  DiskStoreOptions options;
  options.segment_bytes = 64 << 10;
  uint32_t highest = 0;
  {
    auto store = Open(options);
    store->FinishRecovery();
    BlockLocation where = Save(store.get(), {1, 0, 1}, Random(50000, 1));
    highest = where.segment;
    ASSERT_TRUE(store->Sync().ok());
    ASSERT_TRUE(store->Delete({1, 0, 1}, where).ok());
    Save(store.get(), {1, 1, 1}, Random(50000, 2));  // a new segment; the first retires
    store->set_epoch(1);
    ASSERT_TRUE(store->RemoveRetired(5).ok());
  }
  for (int round = 0; round < 3; ++round) {
    auto store = Open(options);
    store->FinishRecovery();
    BlockLocation where = Save(store.get(), {2, uint64_t(round), 1}, "x");
    EXPECT_GT(where.segment, highest);
    highest = where.segment;
    // Everything retires and goes, the highest file included.
    ASSERT_TRUE(store->Delete({2, uint64_t(round), 1}, where).ok());
    ASSERT_TRUE(store->RemoveRetired(100).ok());
  }
}

TEST_F(DiskBlockStoreTest, RecoveryCountsOnlyWhatTheKeyspaceNames) {
  DiskStoreOptions options;
  options.segment_bytes = 128 << 10;
  options.compress = false;
  std::vector<BlockLocation> where;
  {
    auto store = Open(options);
    store->FinishRecovery();
    for (uint64_t i = 0; i < 8; ++i) where.push_back(Save(store.get(), {3, i, 1}, Random(50000, i)));
    ASSERT_TRUE(store->Sync().ok());
  }
  auto store = Open(options);
  // The replayed keyspace names only blocks 6 and 7: the rest are orphans.
  store->MarkLive(where[6]);
  store->MarkLive(where[7]);
  store->FinishRecovery();
  BlockStoreStats stats = store->Stats();
  EXPECT_EQ(stats.live_bytes, uint64_t{where[6].size} + where[7].size);
  EXPECT_GE(stats.retired_segments, 1u);
  EXPECT_EQ(ErrnoOfLoad(store.get(), {3, 7, 1}, where[7]), 0);
}

TEST_F(DiskBlockStoreTest, RelocationCopiesTheRecordAsItIs) {
  auto store = Open();
  store->FinishRecovery();
  std::string bytes(300000, 'r');
  BlockLocation from = Save(store.get(), {4, 0, 9}, bytes);
  Save(store.get(), {4, 1, 9}, Random(1000, 1));
  auto listed = store->ListSegment(from.segment);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].first, (BlockId{4, 0, 9}));
  EXPECT_EQ((*listed)[0].second, from);
  auto to = store->Relocate({4, 0, 9}, from);
  ASSERT_TRUE(to.ok());
  EXPECT_NE(to->offset, from.offset);
  EXPECT_EQ(to->size, from.size);
  EXPECT_EQ(store->Relocate({4, 0, 8}, from).status().code(), EIO);  // not that block
  ASSERT_TRUE(store->Delete({4, 0, 9}, from).ok());
  auto back = store->Load({4, 0, 9}, *to, &memory_);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::string((*back)->data(), (*back)->length()), bytes);
}

// --- disk errors ---------------------------------------------------------------

TEST_F(DiskBlockStoreTest, AFailedSaveReportsTheErrorAndCountsNothingLive) {
  auto store = Open();
  store->FinishRecovery();
  BlockLocation first = Save(store.get(), {1, 0, 1}, "first");
  uint64_t live = store->Stats().live_bytes;
  for (int err : {ENOSPC, EIO}) {
    env_.FailNth(FaultInjectionEnv::kAppend, 1, err);
    auto where = store->Save({1, 1, 1}, std::string(5000, 'z'));
    ASSERT_FALSE(where.ok());
    EXPECT_EQ(where.status().code(), err);
    EXPECT_EQ(store->Stats().live_bytes, live);
  }
  env_.FailNth(FaultInjectionEnv::kSync, 1, EIO);
  Save(store.get(), {1, 2, 1}, "after");
  EXPECT_EQ(store->Sync().code(), EIO);
  EXPECT_TRUE(store->Sync().ok());  // the failed one is retried, not forgotten
  env_.FailNth(FaultInjectionEnv::kRead, 1, EIO);
  EXPECT_EQ(ErrnoOfLoad(store.get(), {1, 0, 1}, first), EIO);
  EXPECT_EQ(ErrnoOfLoad(store.get(), {1, 0, 1}, first), 0);
}

}  // namespace
}  // namespace keyfs
