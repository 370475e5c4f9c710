// The swap file beyond the block store contract: its page layout and checks
// byte by byte (a damaged page is EIO, never wrong bytes), when pages may be
// reused (never under a snapshot), a full file, and what it does with the
// file it is given: lock, refuse to clobber, remove.

#include "store/swap/swap_file.h"

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

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

class SwapFileTest : public ::testing::Test {
 protected:
  SwapFileTest() : env_(Env::Default()) {}

  SwapFileOptions Options(uint64_t size = 4 << 20) const {
    SwapFileOptions options;
    options.path = dir_.File("swap");
    options.size = size;
    options.owner = "keyfs pid 1234 on /mnt/test";
    return options;
  }
  std::unique_ptr<SwapFile> Create(SwapFileOptions options) {
    auto swap = SwapFile::Create(&env_, options, &memory_);
    EXPECT_TRUE(swap.ok()) << swap.status().ToString();
    if (!swap.ok()) return nullptr;
    if (finish_recovery_) (*swap)->FinishRecovery();
    return std::move(swap).value();
  }
  BlockLocation Save(SwapFile* swap, const BlockId& id, std::string_view bytes) {
    auto where = swap->Save(id, bytes);
    EXPECT_TRUE(where.ok()) << where.status().ToString();
    return where.ok() ? *where : BlockLocation{};
  }
  int ErrnoOfLoad(SwapFile* swap, const BlockId& id, const BlockLocation& where) {
    auto block = swap->Load(id, where, &memory_);
    return block.ok() ? 0 : block.status().code();
  }
  std::string LoadOk(SwapFile* swap, const BlockId& id, const BlockLocation& where) {
    auto block = swap->Load(id, where, &memory_);
    EXPECT_TRUE(block.ok()) << block.status().ToString();
    return block.ok() ? std::string((*block)->data(), (*block)->length()) : "";
  }
  void Poke(const BlockLocation& where, uint64_t at, char xor_with) {
    std::fstream file(dir_.File("swap"), std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(where.offset + at));
    char c;
    file.read(&c, 1);
    c ^= xor_with;
    file.seekp(static_cast<std::streamoff>(where.offset + at));
    file.write(&c, 1);
  }

  ScopedTempDir dir_;
  FaultInjectionEnv env_;
  MemoryAccountant memory_{uint64_t{1} << 32};
  bool finish_recovery_ = true;
};

TEST_F(SwapFileTest, ABlockTakesARunOfWholePagesAfterTheHeaderPage) {
  auto swap = Create(Options());
  ASSERT_TRUE(swap);
  SwapStats empty = swap->swap_stats();
  EXPECT_EQ(empty.size, 4u << 20);
  EXPECT_EQ(empty.pages, (4u << 20) / 4096 - 1);
  EXPECT_EQ(empty.pages_used, 0u);
  EXPECT_EQ(empty.free_extents, 1u);
  std::string raw = Random(10000, 1);  // three pages raw (10000 + header + chunk CRCs)
  BlockLocation where = Save(swap.get(), {7, 0, 3}, raw);
  EXPECT_EQ(where.offset % 4096, 0u);
  EXPECT_GE(where.offset, 4096u);
  EXPECT_EQ(where.size, block_format::RawRecordSize(10000));
  EXPECT_EQ(swap->swap_stats().pages_used, 3u);
  EXPECT_EQ(LoadOk(swap.get(), {7, 0, 3}, where), raw);
  // Compressed when that is smaller: one page.
  BlockLocation small = Save(swap.get(), {7, 1, 3}, std::string(10000, 'z'));
  EXPECT_LT(small.size, 4096u);
  EXPECT_EQ(swap->swap_stats().pages_used, 4u);
  EXPECT_EQ(LoadOk(swap.get(), {7, 1, 3}, small), std::string(10000, 'z'));
  EXPECT_GT(memory_.Used(MemoryComponent::kStore), 0u);
}

TEST_F(SwapFileTest, EveryDamagedByteOfARecordReadsAsEioNeverAsWrongBytes) {
  auto swap = Create(Options());
  ASSERT_TRUE(swap);
  for (bool compressible : {false, true}) {
    std::string bytes = compressible ? std::string(8900, 'q') + Random(100, 2) : Random(9000, 3);
    BlockId id{5, compressible, 9};
    BlockLocation where = Save(swap.get(), id, bytes);
    // Header fields, the payload's first, middle and last byte, a chunk CRC.
    std::vector<uint64_t> spots = {0, 5, 9, 17, 25, 33, 37, 41, 48, where.size / 2, where.size - 1};
    if (!compressible) spots.push_back(block_format::kHeaderSize + block_format::kChunkSize + 1);
    for (uint64_t at : spots) {
      Poke(where, at, 0x20);
      EXPECT_EQ(ErrnoOfLoad(swap.get(), id, where), EIO) << "byte " << at;
      if (!compressible) {
        // A small read of a raw record reads the first chunk only, without
        // the header: damage there is EIO, damage elsewhere is not read.
        ASSERT_TRUE(swap->LoadsRange(where, 9000));
        auto range = swap->LoadRange(id, where, 9000, 0, 100, &memory_);
        bool in_first_chunk = at >= block_format::kHeaderSize &&
                              at < block_format::kHeaderSize + block_format::kChunkStride;
        if (in_first_chunk) {
          EXPECT_EQ(range.status().code(), EIO) << "byte " << at;
        } else {
          ASSERT_TRUE(range.ok()) << "byte " << at << ": " << range.status().ToString();
          EXPECT_FALSE(range->whole);
          EXPECT_EQ(std::string(range->buffer->data(), 100), bytes.substr(0, 100)) << at;
        }
      }
      Poke(where, at, 0x20);
      EXPECT_EQ(LoadOk(swap.get(), id, where), bytes) << "byte " << at << " put back";
    }
  }
  EXPECT_GT(swap->Stats().damaged, 0u);
}

TEST_F(SwapFileTest, ALoadOfAnotherBlocksPlaceIsEio) {
  auto swap = Create(Options());
  ASSERT_TRUE(swap);
  BlockLocation a = Save(swap.get(), {1, 0, 1}, Random(5000, 4));
  EXPECT_EQ(ErrnoOfLoad(swap.get(), {1, 0, 2}, a), EIO);  // another version
  EXPECT_EQ(ErrnoOfLoad(swap.get(), {2, 0, 1}, a), EIO);  // another file
  BlockLocation stray = a;
  stray.offset += 1;  // not a page
  EXPECT_EQ(ErrnoOfLoad(swap.get(), {1, 0, 1}, stray), EIO);
  stray.offset = uint64_t{1} << 40;  // past the end
  EXPECT_EQ(ErrnoOfLoad(swap.get(), {1, 0, 1}, stray), EIO);
}

TEST_F(SwapFileTest, AFullFileSaysEnospcNamingTheOptionAndADeleteMakesRoom) {
  auto swap = Create(Options(64 << 10));  // 15 pages for blocks
  ASSERT_TRUE(swap);
  std::vector<BlockLocation> saved;
  for (uint64_t i = 0;; ++i) {
    auto where = swap->Save({3, i, 1}, Random(4000, uint32_t(i)));
    if (!where.ok()) {
      EXPECT_EQ(where.status().code(), ENOSPC);
      EXPECT_NE(where.status().ToString().find("swap_size"), std::string::npos)
          << where.status().ToString();
      break;
    }
    saved.push_back(*where);
  }
  EXPECT_EQ(saved.size(), 15u);
  ASSERT_TRUE(swap->Delete({3, 4, 1}, saved[4]).ok());
  BlockLocation again = Save(swap.get(), {3, 99, 1}, Random(4000, 99));
  EXPECT_EQ(again.offset, saved[4].offset);  // the space is reused...
  EXPECT_NE(again, saved[4]);                // ...the location never is
  for (uint64_t i = 0; i < saved.size(); ++i) {
    if (i == 4) continue;
    EXPECT_EQ(LoadOk(swap.get(), {3, i, 1}, saved[i]), Random(4000, uint32_t(i)));
  }
}

TEST_F(SwapFileTest, PagesDeletedDuringASnapshotAreNotReusedUntilItEnds) {
  auto swap = Create(Options(64 << 10));
  ASSERT_TRUE(swap);
  std::vector<BlockLocation> saved;
  for (uint64_t i = 0; i < 15; ++i) saved.push_back(Save(swap.get(), {4, i, 1}, Random(4000, i)));
  swap->SnapshotStarted();
  for (uint64_t i = 0; i < 15; i += 2) ASSERT_TRUE(swap->Delete({4, i, 1}, saved[i]).ok());
  EXPECT_EQ(swap->swap_stats().pages_held, 8u);
  // Swap-out goes on, but not into pages the snapshot may still read.
  EXPECT_EQ(swap->Save({4, 100, 1}, Random(4000, 100)).status().code(), ENOSPC);
  for (uint64_t i = 0; i < 15; ++i) {
    auto block = swap->LoadForSnapshot({4, i, 1}, saved[i], &memory_);
    ASSERT_TRUE(block.ok()) << i << ": " << block.status().ToString();
    EXPECT_EQ(std::string((*block)->data(), (*block)->length()), Random(4000, i));
  }
  swap->SnapshotEnded();
  EXPECT_EQ(swap->swap_stats().pages_held, 0u);
  EXPECT_EQ(swap->swap_stats().pages_used, 7u);
  Save(swap.get(), {4, 100, 1}, Random(4000, 100));
}

// Replay swaps blocks out, then may drop them with no cache to say so (an
// unlink later in the journal): what the replayed keyspace does not name is
// freed when recovery ends.
TEST_F(SwapFileTest, RunsReplayDroppedAreFreedWhenRecoveryEnds) {
  finish_recovery_ = false;
  auto swap = Create(Options());
  ASSERT_TRUE(swap);
  BlockLocation kept = Save(swap.get(), {1, 0, 1}, Random(9000, 1));
  Save(swap.get(), {2, 0, 1}, Random(9000, 2));
  BlockLocation deleted = Save(swap.get(), {3, 0, 1}, Random(9000, 3));
  ASSERT_TRUE(swap->Delete({3, 0, 1}, deleted).ok());
  EXPECT_EQ(swap->swap_stats().pages_used, 6u);
  swap->MarkLive(kept);
  swap->FinishRecovery();
  EXPECT_EQ(swap->swap_stats().pages_used, 3u);
  EXPECT_EQ(swap->Stats().live_bytes, kept.size);
  EXPECT_EQ(LoadOk(swap.get(), {1, 0, 1}, kept), Random(9000, 1));
}

// Invariant 2, stepped by hand: an IO thread is held inside its read of a
// copy while the copy is deleted and other blocks are saved; they must not
// get its pages until the read has ended.
TEST_F(SwapFileTest, ARunIsNotReusedWhileAReadThatBeganBeforeItsDeleteRuns) {
  auto swap = Create(Options(64 << 10));  // 15 pages
  ASSERT_TRUE(swap);
  std::vector<BlockLocation> saved;
  for (uint64_t i = 0; i < 15; ++i) saved.push_back(Save(swap.get(), {6, i, 1}, Random(4000, i)));
  std::mutex mu;
  std::condition_variable cv;
  bool reading = false, go_on = false;
  env_.SetReadHook([&](const std::string&) {
    std::unique_lock<std::mutex> lock(mu);
    if (go_on) return;
    reading = true;
    cv.notify_all();
    cv.wait(lock, [&] { return go_on; });
  });
  std::string got;
  std::thread reader([&] { got = LoadOk(swap.get(), {6, 7, 1}, saved[7]); });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return reading; });
  }
  ASSERT_TRUE(swap->Delete({6, 7, 1}, saved[7]).ok());
  EXPECT_EQ(swap->swap_stats().pages_held, 1u);
  EXPECT_EQ(swap->Save({6, 100, 1}, Random(4000, 100)).status().code(), ENOSPC);
  {
    std::lock_guard<std::mutex> lock(mu);
    go_on = true;
  }
  cv.notify_all();
  reader.join();
  EXPECT_EQ(got, Random(4000, 7));  // the old copy, whole
  EXPECT_EQ(swap->swap_stats().pages_held, 0u);
  BlockLocation reused = Save(swap.get(), {6, 100, 1}, Random(4000, 100));
  EXPECT_EQ(reused.offset, saved[7].offset);  // free once the read ended
  env_.SetReadHook(nullptr);
}

TEST_F(SwapFileTest, ASecondKeyfsOnTheSameFileFailsAtOnceNamingTheHolder) {
  auto first = Create(Options());
  ASSERT_TRUE(first);
  auto second = SwapFile::Create(&env_, Options(), &memory_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), EWOULDBLOCK);
  EXPECT_NE(second.status().ToString().find("keyfs pid 1234 on /mnt/test"), std::string::npos)
      << second.status().ToString();
  // The first one's blocks are untouched.
  BlockLocation where = Save(first.get(), {1, 0, 1}, "still here");
  EXPECT_EQ(LoadOk(first.get(), {1, 0, 1}, where), "still here");
}

TEST_F(SwapFileTest, AFileThatIsNotASwapFileIsLeftAlone) {
  std::ofstream(dir_.File("swap")) << "someone's notes";
  auto swap = SwapFile::Create(&env_, Options(), &memory_);
  ASSERT_FALSE(swap.ok());
  EXPECT_EQ(swap.status().code(), EEXIST);
  std::ifstream in(dir_.File("swap"));
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "someone's notes");
}

TEST_F(SwapFileTest, ACrashedKeyfssFileIsTakenAndEmptiedAndRemoveDeletesIt) {
  BlockLocation old;
  std::string left;
  {
    auto crashed = Create(Options());
    ASSERT_TRUE(crashed);
    old = Save(crashed.get(), {1, 0, 1}, Random(8000, 5));
    // What a kill -9 leaves: the file as it is now (a clean end removes it).
    auto content = ReadFileToString(&env_, dir_.File("swap"));
    ASSERT_TRUE(content.ok());
    left = *content;
  }
  EXPECT_FALSE(env_.FileExists(dir_.File("swap")));
  std::ofstream(dir_.File("swap"), std::ios::binary) << left;
  auto swap = Create(Options());
  ASSERT_TRUE(swap);
  EXPECT_EQ(swap->swap_stats().pages_used, 0u);
  EXPECT_EQ(ErrnoOfLoad(swap.get(), {1, 0, 1}, old), EIO);  // nothing of it comes back
  EXPECT_EQ(*env_.GetFileSize(dir_.File("swap")), 4u << 20);
  ASSERT_TRUE(swap->Remove().ok());
  EXPECT_FALSE(env_.FileExists(dir_.File("swap")));
}

TEST_F(SwapFileTest, AKeyfsKilledAtAnyStepOfMakingItsFileLeavesOneTheNextTakesOver) {
  // CrashAfter(n): the process dies after n more calls, so nothing after
  // them reaches the disk, its clean-up included (kill -9 during a mount).
  bool made = false;
  for (int steps = 0; steps < 50 && !made; ++steps) {
    env_.CrashAfter(steps);
    {
      auto dying = SwapFile::Create(&env_, Options(), &memory_);
      made = dying.ok();
      env_.ClearFailures();  // the dead process's file handles close here
    }
    auto next = SwapFile::Create(&env_, Options(), &memory_);
    ASSERT_TRUE(next.ok()) << "after a crash " << steps << " calls in: "
                           << next.status().ToString();
    (*next)->FinishRecovery();
    BlockLocation where = Save(next->get(), {1, 0, 1}, "after the crash");
    EXPECT_EQ(LoadOk(next->get(), {1, 0, 1}, where), "after the crash");
  }
  EXPECT_TRUE(made) << "Create never got to the end in 50 calls";
}

TEST_F(SwapFileTest, SizesItCannotUseAreRefusedClearly) {
  SwapFileOptions tiny = Options(4096);
  auto swap = SwapFile::Create(&env_, tiny, &memory_);
  ASSERT_FALSE(swap.ok());
  EXPECT_EQ(swap.status().code(), EINVAL);
  EXPECT_NE(swap.status().ToString().find("too small"), std::string::npos);
  EXPECT_FALSE(env_.FileExists(dir_.File("swap")));

  SwapFileOptions huge = Options(uint64_t{1} << 60);
  swap = SwapFile::Create(&env_, huge, &memory_);
  ASSERT_FALSE(swap.ok());
  EXPECT_EQ(swap.status().code(), ENOSPC);
  EXPECT_NE(swap.status().ToString().find("does not fit"), std::string::npos);

  SwapFileOptions odd = Options();
  odd.page_size = 3000;
  swap = SwapFile::Create(&env_, odd, &memory_);
  ASSERT_FALSE(swap.ok());
  EXPECT_EQ(swap.status().code(), EINVAL);
}

TEST_F(SwapFileTest, WithoutASizeItTakesAQuarterOfTheFreeSpaceAtMost64G) {
  EXPECT_EQ(SwapFile::DefaultSize(uint64_t{40} << 30), uint64_t{10} << 30);
  EXPECT_EQ(SwapFile::DefaultSize(uint64_t{1} << 40), uint64_t{64} << 30);
}

TEST_F(SwapFileTest, AFailedWriteGivesItsPagesBack) {
  auto swap = Create(Options(64 << 10));
  ASSERT_TRUE(swap);
  env_.FailNth(FaultInjectionEnv::kAppend, 1, EIO, "swap");
  EXPECT_EQ(swap->Save({1, 0, 1}, Random(4000, 1)).status().code(), EIO);
  EXPECT_EQ(swap->swap_stats().pages_used, 0u);
  Save(swap.get(), {1, 0, 1}, Random(4000, 1));
}

}  // namespace
}  // namespace keyfs
