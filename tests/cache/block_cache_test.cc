// The cache's scheduling, with the IO threads stepped by hand (an IoQueue of
// no threads: RunNext runs one job here) and time on a ManualClock, so each
// race is set up exactly, without sleeping: one LOAD for many waiters; a SAVE
// against truncate, unlink, punch hole and overwrite (a dead block never
// comes back); a LOAD against a write; eviction against waiters;
// back-pressure that lets writers go as SAVEs finish; an interrupted waiter;
// failed SAVEs and LOADs; the order of changes to one file; readahead.

#include "src/cache/block_cache.h"

#include <fcntl.h>
#include <linux/falloc.h>

#include <functional>

#include <gtest/gtest.h>

#include "src/cache/io_queue.h"
#include "src/keyspace/keyspace.h"
#include "tests/store/memory_block_store.h"

namespace keyfs {
namespace {

constexpr uint32_t kBlock = 4096;

// A request made of a function, as the adapter's are made of handlers.
class FakeRequest final : public PendingRequest {
 public:
  FakeRequest(std::function<Status()> run, Ino changes, int* abandoned)
      : run_(std::move(run)), changes_(changes), abandoned_(abandoned) {}
  Status Run() override { return run_(); }
  void Abandon(int err) override { *abandoned_ = err; }
  Ino changes() const override { return changes_; }
  size_t held_bytes() const override { return 0; }

 private:
  std::function<Status()> run_;
  Ino changes_;
  int* abandoned_;
};

class BlockCacheTest : public ::testing::Test {
 protected:
  explicit BlockCacheTest(uint64_t limit = 8 << 20)
      : memory_(limit),
        keyspace_(KeyspaceOptions{kBlock}, &memory_, &clock_),
        io_(&store_, &memory_, /*threads=*/0),
        cache_(&keyspace_, &store_, &io_, &memory_, &clock_, Options(), nullptr) {
    cache_.Attach([](const BlockLocation&) {});
  }
  static CacheOptions Options() {
    CacheOptions options;
    options.flush_delay_ns = 1'000'000'000;
    options.readahead_blocks = 2;
    return options;
  }

  Ino MakeFile(const std::string& name, size_t bytes, char fill) {
    auto entry = keyspace_.MakeNode(kRootIno, name, S_IFREG | 0644, 0, {});
    EXPECT_TRUE(entry.ok());
    if (bytes > 0) {
      EXPECT_TRUE(keyspace_.Write(entry->ino, 0, std::string(bytes, fill),
                                  Keyspace::WriteAt::kOffset).ok());
    }
    return entry->ino;
  }
  const BlockSlot& SlotOf(Ino ino, size_t index) {
    return keyspace_.FindInode(ino)->file().slot(index);
  }
  // Runs every IO job there is, applying results, until nothing is left.
  void RunAllIo() {
    do {
      cache_.Flush();  // what the results made (deletes, loads that had to wait)
      while (io_.RunNext()) cache_.OnIoReady();
      cache_.OnIoReady();
      cache_.Flush();
    } while (io_.queued() > 0);
  }
  // Lets the flush delay pass and queues the SAVEs that are due; returns
  // how many jobs there are.
  size_t QueueDueSaves() {
    clock_.AdvanceNanos(2'000'000'000);
    cache_.Flush();
    return io_.queued();
  }
  // Saves everything dirty (flush delay passed) and runs the IO.
  void SaveAll() {
    QueueDueSaves();
    RunAllIo();
  }
  // Saves and evicts every block of `ino`.
  void EvictFile(Ino ino) {
    SaveAll();
    FileData& file = keyspace_.MutableInode(ino)->file();
    for (size_t i = 0; i < file.block_count(); ++i) {
      ASSERT_FALSE(file.slot(i).dirty);
    }
    // Ask for all the memory there is: eviction drops every clean block.
    cache_.Reclaim(memory_.limit(), {});
    for (size_t i = 0; i < file.block_count(); ++i) ASSERT_TRUE(file.slot(i).evicted()) << i;
  }
  // A read of `size` bytes at `offset` of `ino` that keeps what it read.
  std::unique_ptr<PendingRequest> Reader(Ino ino, uint64_t offset, size_t size, std::string* out,
                                         int* abandoned, int* runs = nullptr) {
    return std::make_unique<FakeRequest>(
        [=, this] {
          if (runs) ++*runs;
          auto slices = keyspace_.Read(ino, offset, size);
          if (!slices.ok()) return slices.status();
          out->clear();
          for (const ReadSlice& slice : *slices) {
            out->append(slice.block ? std::string(slice.block->data() + slice.offset, slice.length)
                                    : std::string(slice.length, '\0'));
          }
          return Status::Ok();
        },
        0, abandoned);
  }
  std::unique_ptr<PendingRequest> Writer(Ino ino, uint64_t offset, std::string data,
                                         Keyspace::WriteAt at, int* abandoned,
                                         std::vector<std::string>* log = nullptr) {
    return std::make_unique<FakeRequest>(
        [=, this] {
          auto written = keyspace_.Write(ino, offset, data, at);
          if (!written.ok() && IsRetryLater(written.status())) return written.status();
          if (log) log->push_back(data);
          return Status::Ok();
        },
        ino, abandoned);
  }

  ManualClock clock_;
  MemoryAccountant memory_;
  Keyspace keyspace_;
  MemoryBlockStore store_;
  IoQueue io_;
  BlockCache cache_;
  int abandoned_ = 0;
};

TEST_F(BlockCacheTest, ADirtyBlockIsSavedOnceAfterFlushDelayHoweverOftenWritten) {
  Ino ino = MakeFile("f", 100, 'a');
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(keyspace_.Write(ino, i, "b", Keyspace::WriteAt::kOffset).ok());
  }
  cache_.Flush();
  EXPECT_EQ(io_.queued(), 0u);  // not due yet
  clock_.AdvanceNanos(1'100'000'000);
  cache_.Flush();
  EXPECT_EQ(io_.queued(), 1u);
  RunAllIo();
  EXPECT_EQ(store_.Stats().saves, 1u);
  EXPECT_FALSE(SlotOf(ino, 0).dirty);
  EXPECT_TRUE(SlotOf(ino, 0).stored.valid());
  EXPECT_EQ(cache_.dirty_blocks(), 0u);
}

TEST_F(BlockCacheTest, ABlockWrittenDuringItsSaveStaysDirtyAndIsSavedAgain) {
  Ino ino = MakeFile("f", 100, 'a');
  clock_.AdvanceNanos(2'000'000'000);
  cache_.Flush();  // the SAVE takes the buffer now
  ASSERT_TRUE(keyspace_.Write(ino, 0, "new", Keyspace::WriteAt::kOffset).ok());
  RunAllIo();
  EXPECT_TRUE(SlotOf(ino, 0).dirty);
  EXPECT_TRUE(SlotOf(ino, 0).stored.valid());  // the old copy, for now
  SaveAll();
  EXPECT_FALSE(SlotOf(ino, 0).dirty);
  EXPECT_EQ(store_.Stats().saves, 2u);
  RunAllIo();  // the first copy is deleted
  EXPECT_EQ(store_.block_count(), 1u);
}

TEST_F(BlockCacheTest, OneLoadForManyWaiters) {
  Ino ino = MakeFile("f", 3 * kBlock, 'z');
  EvictFile(ino);
  std::vector<std::string> got(8);
  std::vector<int> abandoned(8, 0);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NE(cache_.Submit(Reader(ino, kBlock, kBlock, &got[i], &abandoned[i])), 0u);
  }
  EXPECT_EQ(io_.queued(), 1u);
  EXPECT_EQ(cache_.parked(), 8u);
  RunAllIo();
  EXPECT_EQ(cache_.parked(), 0u);
  EXPECT_EQ(cache_.stats().loads, 1u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(got[i], std::string(kBlock, 'z'));
    EXPECT_EQ(abandoned[i], 0);
  }
  EXPECT_EQ(cache_.stats().misses, 8u);
}

TEST_F(BlockCacheTest, AnInterruptedWaiterIsAnsweredAtOnceAndTheLoadGoesOn) {
  Ino ino = MakeFile("f", kBlock, 'i');
  EvictFile(ino);
  std::string got, other;
  int abandoned = 0, other_abandoned = 0;
  uint64_t id = cache_.Submit(Reader(ino, 0, 10, &got, &abandoned));
  cache_.Submit(Reader(ino, 0, 10, &other, &other_abandoned));
  cache_.Interrupt(id);
  EXPECT_EQ(abandoned, EINTR);
  EXPECT_EQ(cache_.parked(), 1u);
  RunAllIo();
  EXPECT_EQ(other, std::string(10, 'i'));
  EXPECT_TRUE(SlotOf(ino, 0).resident());
  EXPECT_TRUE(got.empty());  // it never ran again
}

TEST_F(BlockCacheTest, ALoadThatReturnsAfterTheBlockChangedIsNotInstalled) {
  Ino ino = MakeFile("f", kBlock, 'o');
  EvictFile(ino);
  std::string got;
  int abandoned = 0;
  cache_.Submit(Reader(ino, 0, 4, &got, &abandoned));
  // A whole-block write needs no load and makes the block new.
  ASSERT_TRUE(keyspace_.Write(ino, 0, std::string(kBlock, 'n'), Keyspace::WriteAt::kOffset).ok());
  RunAllIo();
  EXPECT_EQ(got, "nnnn");  // the reader ran again and read what is there now
  EXPECT_EQ(SlotOf(ino, 0).buffer->data()[0], 'n');
  EXPECT_EQ(cache_.stats().loads, 1u);  // it came back, and was dropped
}

// The swap file reuses the space of deleted copies: a LOAD of a copy that
// was replaced while it waited can read another block's bytes and fail its
// checks. That is no error of the block: the waiters run again.
TEST_F(BlockCacheTest, ALoadThatFailsAfterTheBlockChangedRerunsItsWaiters) {
  Ino ino = MakeFile("f", kBlock, 'o');
  EvictFile(ino);
  std::string got;
  int abandoned = 0;
  cache_.Submit(Reader(ino, 0, 4, &got, &abandoned));
  ASSERT_TRUE(keyspace_.Write(ino, 0, std::string(kBlock, 'n'), Keyspace::WriteAt::kOffset).ok());
  store_.FailNextLoad(EIO);
  RunAllIo();
  EXPECT_EQ(abandoned, 0);
  EXPECT_EQ(got, "nnnn");
  EXPECT_EQ(cache_.stats().load_errors, 0u);
}

// A SAVE in flight while the block goes away: its copy must not come back.
class SaveRaceTest : public BlockCacheTest,
                     public ::testing::WithParamInterface<std::string> {};

TEST_P(SaveRaceTest, ADeadBlockNeverComesBack) {
  Ino ino = MakeFile("f", 2 * kBlock, 'd');
  clock_.AdvanceNanos(2'000'000'000);
  cache_.Flush();  // the SAVE of both blocks is queued, not yet run
  const std::string change = GetParam();
  if (change == "truncate") {
    SetAttrRequest request;
    request.size = 0;
    ASSERT_TRUE(keyspace_.SetAttr(ino, request).ok());
  } else if (change == "unlink") {
    ASSERT_TRUE(keyspace_.Unlink(kRootIno, "f").ok());
    keyspace_.Forget(ino, 1);
    ASSERT_EQ(keyspace_.FindInode(ino), nullptr);
  } else if (change == "punch") {
    ASSERT_TRUE(keyspace_.Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                                    2 * kBlock).ok());
  }
  RunAllIo();
  RunAllIo();  // and the deletes
  EXPECT_EQ(store_.block_count(), 0u) << "a copy of a dropped block survived";
  if (change != "unlink") {
    const FileData& file = keyspace_.FindInode(ino)->file();
    for (size_t i = 0; i < file.block_count(); ++i) EXPECT_TRUE(file.slot(i).hole());
  }
}

INSTANTIATE_TEST_SUITE_P(Changes, SaveRaceTest, ::testing::Values("truncate", "unlink", "punch"));

TEST_F(BlockCacheTest, AnOverwriteDuringASaveKeepsTheNewBytes) {
  Ino ino = MakeFile("f", kBlock, 'o');
  clock_.AdvanceNanos(2'000'000'000);
  cache_.Flush();
  ASSERT_TRUE(keyspace_.Write(ino, 0, std::string(kBlock, 'N'), Keyspace::WriteAt::kOffset).ok());
  RunAllIo();
  SaveAll();
  EvictFile(ino);
  std::string got;
  cache_.Submit(Reader(ino, 0, kBlock, &got, &abandoned_));
  RunAllIo();
  EXPECT_EQ(got, std::string(kBlock, 'N'));
  RunAllIo();
  EXPECT_EQ(store_.block_count(), 1u);  // the old copy was deleted
}

TEST_F(BlockCacheTest, BlocksARequestWaitedForAreNotEvictedBeforeItRuns) {
  Ino ino = MakeFile("f", 2 * kBlock, 'h');
  EvictFile(ino);
  std::string got;
  cache_.Submit(Reader(ino, 0, 2 * kBlock, &got, &abandoned_));
  ASSERT_EQ(io_.queued(), 2u);
  io_.RunNext();
  cache_.OnIoReady();  // block 0 is in (loads go in file order), held; block 1 is not
  EXPECT_TRUE(SlotOf(ino, 0).resident());
  EXPECT_TRUE(SlotOf(ino, 1).evicted());
  cache_.Reclaim(memory_.limit(), {});  // everything that can go, goes
  EXPECT_TRUE(SlotOf(ino, 0).resident()) << "evicted while a waiter held it (livelock)";
  RunAllIo();
  EXPECT_EQ(got, std::string(2 * kBlock, 'h'));
  cache_.Reclaim(memory_.limit(), {});
  EXPECT_TRUE(SlotOf(ino, 0).evicted());  // once it has run, it may go
}

TEST_F(BlockCacheTest, EvictionDropsOnlyCleanBlocks) {
  Ino clean = MakeFile("clean", 4 * kBlock, 'c');
  SaveAll();
  Ino dirty = MakeFile("dirty", 4 * kBlock, 'd');
  cache_.Reclaim(memory_.limit(), {});
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(SlotOf(clean, i).evicted());
    EXPECT_TRUE(SlotOf(dirty, i).resident() && SlotOf(dirty, i).dirty);
  }
  EXPECT_EQ(cache_.stats().evictions, 4u);
}

class SmallCacheTest : public BlockCacheTest {
 protected:
  SmallCacheTest() : BlockCacheTest(64 << 10) {}
};

TEST_F(SmallCacheTest, AFullCacheMakesWritersWaitUntilSavesFinish) {
  std::vector<Ino> files;
  int parked_writes = 0;
  std::vector<std::string> done;
  for (int i = 0; i < 40; ++i) files.push_back(MakeFile("f" + std::to_string(i), 0, 0));
  for (Ino ino : files) {
    if (cache_.Submit(Writer(ino, 0, std::string(kBlock, 'w'), Keyspace::WriteAt::kOffset,
                             &abandoned_, &done)) != 0) {
      ++parked_writes;
    }
  }
  EXPECT_GT(parked_writes, 0) << "the budget holds 40 blocks?";
  // Everything but the parked requests' own bookkeeping (charged as they
  // park, bounded by what the kernel has outstanding) is within the budget.
  EXPECT_LE(memory_.Used() - memory_.Used(MemoryComponent::kRequests), memory_.limit());
  EXPECT_EQ(abandoned_, 0);  // waiting, not ENOSPC
  // The SAVEs were pushed at once (no flush delay under pressure); as they
  // finish, blocks become clean, are evicted, and the writers go.
  for (int round = 0; round < 100 && cache_.parked() > 0; ++round) {
    cache_.Flush();
    RunAllIo();
  }
  EXPECT_EQ(cache_.parked(), 0u);
  EXPECT_EQ(done.size(), 40u);
  EXPECT_LE(memory_.Used(), memory_.limit());
  for (Ino ino : files) {
    std::string got;
    cache_.Submit(Reader(ino, 0, kBlock, &got, &abandoned_));
    RunAllIo();
    EXPECT_EQ(got, std::string(kBlock, 'w'));
  }
}

// One file written from start to end through a cache smaller than it: the
// file's own saved blocks make room for its next ones at once, with no cron
// in between (eviction must spare only the blocks the write itself touches).
TEST_F(SmallCacheTest, ALongWriteOfOneFileEvictsItsOwnEarlierBlocks) {
  Ino ino = MakeFile("long", 0, 0);
  const size_t blocks = 64;  // 256 KiB through a 64 KiB budget
  for (size_t i = 0; i < blocks; ++i) {
    int parked = 0;
    while (true) {
      auto written = keyspace_.Write(ino, i * kBlock, std::string(kBlock, char('a' + i % 26)),
                                     Keyspace::WriteAt::kOffset);
      if (written.ok()) break;
      ASSERT_TRUE(IsRetryLater(written.status())) << i << ": " << written.status().ToString();
      // Full of dirty blocks: their SAVEs finish (no clock, no cron).
      ASSERT_LT(++parked, 3) << "block " << i << " waits for room that does not come";
      cache_.Flush();
      RunAllIo();
    }
    EXPECT_LE(memory_.Used(), memory_.limit());
  }
  EXPECT_GT(cache_.stats().evictions, 0u);
  SaveAll();
  for (size_t i = 0; i < blocks; i += 13) {
    std::string got;
    cache_.Submit(Reader(ino, i * kBlock, kBlock, &got, &abandoned_));
    RunAllIo();
    EXPECT_EQ(got, std::string(kBlock, char('a' + i % 26))) << "block " << i;
  }
}

// A writer faster than flush_delay: once a quarter of the budget is dirty,
// the oldest blocks are saved before their delay is up.
TEST_F(SmallCacheTest, DirtyBlocksPastTheBackgroundShareAreSavedEarly) {
  Ino ino = MakeFile("f", 0, 0);
  const uint64_t quarter = memory_.limit() / 4;
  size_t blocks = 0;
  while (cache_.dirty_bytes() <= quarter) {
    ASSERT_TRUE(keyspace_.Write(ino, blocks * kBlock, std::string(kBlock, 'd'),
                                Keyspace::WriteAt::kOffset).ok());
    ++blocks;
  }
  cache_.Flush();  // no time has passed: nothing is due
  EXPECT_GT(cache_.saving_blocks(), 0u);
  EXPECT_LT(cache_.saving_blocks(), blocks);  // only the excess, the oldest first
  RunAllIo();
  EXPECT_TRUE(!SlotOf(ino, 0).dirty);
  EXPECT_TRUE(SlotOf(ino, blocks - 1).dirty);
}

TEST_F(SmallCacheTest, ENoSpaceOnlyWhenTheDiskIsFullToo) {
  std::vector<Ino> files;
  for (int i = 0; i < 40; ++i) files.push_back(MakeFile("f" + std::to_string(i), 0, 0));
  store_.FailAllSaves(ENOSPC);  // the disk is full
  std::vector<int> refused(files.size(), 0);
  std::vector<std::string> done;
  for (size_t i = 0; i < files.size(); ++i) {
    cache_.Submit(Writer(files[i], 0, std::string(kBlock, 'x'), Keyspace::WriteAt::kOffset,
                         &refused[i], &done));
    RunAllIo();
  }
  // Memory filled with dirty blocks that cannot be saved: then, and only
  // then, writers get ENOSPC (the Writer records a refusal as done).
  EXPECT_TRUE(cache_.disk_full());
  EXPECT_LE(memory_.Used(), memory_.limit());
  EXPECT_EQ(done.size(), files.size());
  auto refusal = keyspace_.Write(files[0], 5000, std::string(kBlock, 'y'), Keyspace::WriteAt::kOffset);
  EXPECT_EQ(refusal.status().code(), ENOSPC);
  // The disk gets room: the SAVEs go through, and writes work again.
  store_.FailAllSaves(0);
  clock_.AdvanceNanos(20'000'000'000);
  RunAllIo();
  EXPECT_FALSE(cache_.disk_full());
  int again = 0;
  cache_.Submit(Writer(files[0], 5000, std::string(kBlock, 'y'), Keyspace::WriteAt::kOffset, &again));
  for (int round = 0; round < 20 && cache_.parked() > 0; ++round) {
    clock_.AdvanceNanos(1'000'000'000);
    RunAllIo();
  }
  EXPECT_EQ(cache_.parked(), 0u);
}

TEST_F(BlockCacheTest, AFailedSaveKeepsTheBlockDirtyAndIsRetried) {
  Ino ino = MakeFile("f", 100, 'e');
  store_.FailNextSave(EIO);
  SaveAll();
  EXPECT_TRUE(SlotOf(ino, 0).dirty);
  EXPECT_EQ(cache_.stats().save_errors, 1u);
  clock_.AdvanceNanos(500'000'000);  // past the backoff
  SaveAll();
  EXPECT_FALSE(SlotOf(ino, 0).dirty);
  EXPECT_EQ(cache_.stats().saves, 1u);
}

TEST_F(BlockCacheTest, AFailedLoadAnswersItsWaitersWithEio) {
  Ino ino = MakeFile("f", kBlock, 'e');
  EvictFile(ino);
  std::string got;
  int abandoned = 0;
  store_.FailNextLoad(EIO);
  cache_.Submit(Reader(ino, 0, 10, &got, &abandoned));
  RunAllIo();
  EXPECT_EQ(abandoned, EIO);
  EXPECT_TRUE(SlotOf(ino, 0).evicted());
  // The next reader tries again.
  cache_.Submit(Reader(ino, 0, 10, &got, &abandoned));
  RunAllIo();
  EXPECT_EQ(got, std::string(10, 'e'));
}

TEST_F(BlockCacheTest, ChangesToOneFileRunInTheOrderTheyCame) {
  Ino ino = MakeFile("f", 2 * kBlock, 's');
  EvictFile(ino);
  std::vector<std::string> done;
  // A partial write of an evicted block waits for its LOAD; the appends
  // after it must wait behind it, though they need nothing.
  cache_.Submit(Writer(ino, 10, "first", Keyspace::WriteAt::kOffset, &abandoned_, &done));
  cache_.Submit(Writer(ino, 0, "-second", Keyspace::WriteAt::kEnd, &abandoned_, &done));
  cache_.Submit(Writer(ino, 0, "-third", Keyspace::WriteAt::kEnd, &abandoned_, &done));
  EXPECT_EQ(done.size(), 0u);
  RunAllIo();
  RunAllIo();
  ASSERT_EQ(done, (std::vector<std::string>{"first", "-second", "-third"}));
  std::string tail;
  cache_.Submit(Reader(ino, 2 * kBlock, 13, &tail, &abandoned_));
  RunAllIo();
  EXPECT_EQ(tail, "-second-third");
}

TEST_F(BlockCacheTest, ASequentialReaderGetsTheNextBlocksLoadedAhead) {
  Ino ino = MakeFile("f", 6 * kBlock, 'r');
  EvictFile(ino);
  std::string got;
  cache_.Submit(Reader(ino, 0, kBlock, &got, &abandoned_));
  RunAllIo();
  cache_.NoteRead(ino, 0, kBlock);
  cache_.Submit(Reader(ino, kBlock, kBlock, &got, &abandoned_));
  RunAllIo();
  cache_.NoteRead(ino, kBlock, kBlock);  // sequential: blocks 2 and 3 are loaded ahead
  EXPECT_EQ(io_.queued(), 2u);
  RunAllIo();
  EXPECT_TRUE(SlotOf(ino, 2).resident());
  EXPECT_TRUE(SlotOf(ino, 3).resident());
  EXPECT_TRUE(SlotOf(ino, 4).evicted());
  EXPECT_EQ(cache_.stats().readaheads, 2u);
}

// --- live options (keyfs-ctl config set) --------------------------------------------

TEST_F(BlockCacheTest, AShorterFlushDelayAppliesToBlocksWaitingAlready) {
  Ino ino = MakeFile("f", kBlock, 'a');
  RunAllIo();
  EXPECT_EQ(cache_.stats().saves, 0u);  // due in a second
  cache_.SetFlushDelay(0);
  RunAllIo();  // the clock has not moved
  EXPECT_EQ(cache_.stats().saves, 1u);
  EXPECT_FALSE(SlotOf(ino, 0).dirty);
}

TEST_F(BlockCacheTest, AShrunkLimitIsReachedByTheCronAndTheDataStays) {
  Ino ino = MakeFile("f", 256 * kBlock, 'a');
  SaveAll();
  memory_.set_limit(memory_.InUse() / 2);
  cache_.Cron();
  EXPECT_LE(memory_.InUse(), memory_.limit());
  for (uint64_t at = 0; at < 256; at += 16) {  // reads that fit in the new limit
    std::string got;
    cache_.Submit(Reader(ino, at * kBlock, 16 * kBlock, &got, &abandoned_));
    RunAllIo();
    ASSERT_EQ(got, std::string(16 * kBlock, 'a')) << at;
  }
  EXPECT_EQ(abandoned_, 0);
}

// --- one file, on request (user.keyfs.evict / user.keyfs.prefetch) --------------------

TEST_F(BlockCacheTest, EvictFileDropsCleanBlocksNowAndDirtyOnesOnceSaved) {
  Ino ino = MakeFile("f", 2 * kBlock, 'a');
  Ino other = MakeFile("other", 2 * kBlock, 'o');
  SaveAll();
  ASSERT_TRUE(keyspace_.Write(ino, 2 * kBlock, std::string(kBlock, 'b'),
                              Keyspace::WriteAt::kOffset).ok());  // block 2: dirty
  BlockCache::FileAction action = cache_.EvictFile(ino);
  EXPECT_EQ(action.now, 2u);
  EXPECT_EQ(action.later, 1u);
  EXPECT_TRUE(SlotOf(ino, 0).evicted() && SlotOf(ino, 1).evicted());
  EXPECT_TRUE(SlotOf(ino, 2).resident() && SlotOf(ino, 2).dirty);
  // Its SAVE is due now, not after flush_delay (the clock has not moved).
  EXPECT_EQ(io_.queued(), 1u);
  RunAllIo();
  EXPECT_TRUE(SlotOf(ino, 2).evicted());
  EXPECT_TRUE(SlotOf(other, 0).resident() && SlotOf(other, 1).resident());  // not asked
  std::string got;
  cache_.Submit(Reader(ino, 0, 3 * kBlock, &got, &abandoned_));
  RunAllIo();
  EXPECT_EQ(got, std::string(2 * kBlock, 'a') + std::string(kBlock, 'b'));
}

TEST_F(BlockCacheTest, ABlockWrittenAgainBeforeItsSaveIsKept) {
  Ino ino = MakeFile("f", kBlock, 'a');
  cache_.EvictFile(ino);
  cache_.Flush();
  ASSERT_TRUE(io_.RunNext());  // the SAVE of 'a...' ran; its result is not applied yet
  ASSERT_TRUE(keyspace_.Write(ino, 0, "b", Keyspace::WriteAt::kOffset).ok());
  cache_.OnIoReady();
  EXPECT_TRUE(SlotOf(ino, 0).resident() && SlotOf(ino, 0).dirty);  // the new bytes stay
  SaveAll();
  EXPECT_TRUE(SlotOf(ino, 0).resident());  // evict was for the bytes it saw
}

TEST_F(BlockCacheTest, AnEvictionWaitingForASaveForgetsABlockThatIsGone) {
  Ino ino = MakeFile("f", 2 * kBlock, 'a');
  EXPECT_EQ(cache_.EvictFile(ino).later, 2u);
  SetAttrRequest truncate;
  truncate.size = 0;
  ASSERT_TRUE(keyspace_.SetAttr(ino, truncate).ok());  // both blocks dropped before their SAVE
  RunAllIo();
  ASSERT_TRUE(keyspace_.Write(ino, 0, "new", Keyspace::WriteAt::kOffset).ok());
  SaveAll();
  EXPECT_TRUE(SlotOf(ino, 0).resident());  // a new block 0, not asked to go
}

TEST_F(BlockCacheTest, PrefetchFileLoadsEvictedBlocksAndTheReadAfterIsAHit) {
  Ino ino = MakeFile("f", 3 * kBlock, 'p');
  EvictFile(ino);
  BlockCache::FileAction action = cache_.PrefetchFile(ino);
  EXPECT_EQ(action.now, 3u);
  EXPECT_EQ(cache_.PrefetchFile(ino).now, 3u);  // asked twice: still one LOAD each
  EXPECT_EQ(io_.queued(), 3u);
  RunAllIo();
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(SlotOf(ino, i).resident()) << i;
  EXPECT_EQ(cache_.stats().prefetches, 3u);
  uint64_t misses = cache_.stats().misses;
  std::string got;
  EXPECT_EQ(cache_.Submit(Reader(ino, 0, 3 * kBlock, &got, &abandoned_)), 0u);  // at once
  EXPECT_EQ(got, std::string(3 * kBlock, 'p'));
  EXPECT_EQ(cache_.stats().misses, misses);
}

TEST_F(BlockCacheTest, PrefetchLoadsWhatFitsAndSkipsTheRest) {
  Ino ino = MakeFile("f", 32 * kBlock, 'q');
  EvictFile(ino);
  // Room for about 8 of its 32 blocks.
  memory_.set_limit(memory_.InUse() + 8 * BlockBuffer::ChargeFor(kBlock));
  BlockCache::FileAction action = cache_.PrefetchFile(ino);
  EXPECT_GT(action.now, 0u);
  EXPECT_GT(action.skipped, 0u);
  EXPECT_EQ(action.now + action.skipped, 32u);
  RunAllIo();
  EXPECT_LE(memory_.InUse(), memory_.limit());
}

// --- partial reads ---------------------------------------------------------------

class RangeReadTest : public BlockCacheTest {
 protected:
  RangeReadTest() { store_.ServeRanges(true); }
  // A file whose every byte tells where it is.
  Ino MakeNumberedFile(const std::string& name, size_t bytes) {
    Ino ino = MakeFile(name, 0, 0);
    EXPECT_TRUE(keyspace_.Write(ino, 0, Numbered(0, bytes), Keyspace::WriteAt::kOffset).ok());
    return ino;
  }
  static std::string Numbered(size_t offset, size_t n) {
    std::string out(n, '\0');
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>((offset + i) * 7 % 251);
    return out;
  }
};

TEST_F(RangeReadTest, ASmallReadOfAnEvictedBlockReadsOnlyThatPart) {
  Ino ino = MakeNumberedFile("f", 3 * kBlock);
  EvictFile(ino);
  std::string got;
  EXPECT_NE(cache_.Submit(Reader(ino, kBlock + 100, 50, &got, &abandoned_)), 0u);
  EXPECT_EQ(io_.queued(), 1u);
  RunAllIo();
  EXPECT_EQ(got, Numbered(kBlock + 100, 50));
  EXPECT_EQ(cache_.stats().range_loads, 1u);
  EXPECT_EQ(cache_.stats().loads, 0u);
  EXPECT_TRUE(SlotOf(ino, 1).evicted());  // nothing cached: the kernel keeps the page
  // A read across two blocks reads a part of each.
  cache_.Submit(Reader(ino, 2 * kBlock - 30, 60, &got, &abandoned_));
  EXPECT_EQ(io_.queued(), 2u);
  RunAllIo();
  EXPECT_EQ(got, Numbered(2 * kBlock - 30, 60));
  EXPECT_EQ(cache_.stats().range_loads, 3u);
  EXPECT_EQ(abandoned_, 0);
}

TEST_F(RangeReadTest, ABlockReadInPartOftenIsLoadedWhole) {
  Ino ino = MakeNumberedFile("f", kBlock);
  EvictFile(ino);
  std::string got;
  uint32_t times = Options().range_reads_before_load;
  for (uint32_t i = 0; i < times; ++i) {
    cache_.Submit(Reader(ino, i * 300, 100, &got, &abandoned_));
    RunAllIo();
    EXPECT_EQ(got, Numbered(i * 300, 100)) << i;
  }
  EXPECT_EQ(cache_.stats().range_loads, times - 1);
  EXPECT_EQ(cache_.stats().loads, 1u);
  EXPECT_TRUE(SlotOf(ino, 0).resident());
}

TEST_F(RangeReadTest, ASequentialReaderLoadsWholeBlocks) {
  Ino ino = MakeNumberedFile("f", 20 * kBlock);
  EvictFile(ino);
  std::string got;
  cache_.NoteRead(ino, 0, 100);  // it read [0, 100) before
  cache_.Submit(Reader(ino, 100, 100, &got, &abandoned_));
  RunAllIo();
  EXPECT_EQ(got, Numbered(100, 100));
  EXPECT_EQ(cache_.stats().range_loads, 0u);
  EXPECT_EQ(cache_.stats().loads, 1u);
  // A read larger than range_read_max, anywhere, loads whole blocks too.
  size_t large = Options().range_read_max + 1;
  cache_.Submit(Reader(ino, 2 * kBlock + 1000, large, &got, &abandoned_));
  RunAllIo();
  EXPECT_EQ(got, Numbered(2 * kBlock + 1000, large));
  EXPECT_EQ(cache_.stats().range_loads, 0u);
}

TEST_F(RangeReadTest, APartReadBeforeTheBlockChangedIsNotUsed) {
  Ino ino = MakeNumberedFile("f", kBlock);
  EvictFile(ino);
  std::string got;
  cache_.Submit(Reader(ino, 10, 20, &got, &abandoned_));
  ASSERT_TRUE(io_.RunNext());  // the part of the old copy is read
  // Before it is applied, the block is replaced, saved and evicted again.
  ASSERT_TRUE(keyspace_.Write(ino, 0, std::string(kBlock, 'n'), Keyspace::WriteAt::kOffset).ok());
  cache_.OnIoReady();  // the reader runs: the block is resident, new
  EXPECT_EQ(got, std::string(20, 'n'));
  // Again, with the block evicted in its new version when the part returns.
  Ino other = MakeNumberedFile("g", kBlock);
  EvictFile(other);
  cache_.Submit(Reader(other, 10, 20, &got, &abandoned_));
  ASSERT_TRUE(io_.RunNext());
  ASSERT_TRUE(keyspace_.Write(other, 0, std::string(kBlock, 'm'), Keyspace::WriteAt::kOffset).ok());
  EvictFile(other);  // applies the old part too: the reader must not use it
  RunAllIo();
  EXPECT_EQ(got, std::string(20, 'm'));
  EXPECT_EQ(abandoned_, 0);
}

TEST_F(RangeReadTest, AnInterruptedOrFailedPartialRead) {
  Ino ino = MakeNumberedFile("f", kBlock);
  EvictFile(ino);
  std::string got;
  int abandoned = 0;
  uint64_t id = cache_.Submit(Reader(ino, 10, 20, &got, &abandoned));
  cache_.Interrupt(id);
  EXPECT_EQ(abandoned, EINTR);
  RunAllIo();
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(SlotOf(ino, 0).evicted());
  EXPECT_EQ(memory_.Used(MemoryComponent::kIo), 0u);
  abandoned = 0;
  store_.FailNextLoad(EIO);
  cache_.Submit(Reader(ino, 10, 20, &got, &abandoned));
  RunAllIo();
  EXPECT_EQ(abandoned, EIO);
  EXPECT_EQ(cache_.parked(), 0u);
}

// --- pinned files (user.keyfs.pin) ---------------------------------------------------

TEST_F(BlockCacheTest, PinnedBlocksSurvivePressureThatEvictsEverythingElse) {
  Ino pinned = MakeFile("pinned", 4 * kBlock, 'p');
  Ino other = MakeFile("other", 4 * kBlock, 'o');
  SaveAll();
  ASSERT_TRUE(keyspace_.SetPinned(pinned, true).ok());
  EXPECT_TRUE(keyspace_.FindInode(pinned)->pinned);
  EXPECT_EQ(keyspace_.pinned_files(), 1u);
  EXPECT_EQ(keyspace_.pinned_bytes(), 4 * BlockBuffer::ChargeFor(kBlock));
  // Ask for all the memory there is, again and again: whatever can go, goes.
  for (int round = 0; round < 3; ++round) cache_.Reclaim(memory_.limit(), {});
  memory_.set_limit(memory_.InUse() / 2);
  cache_.Cron();
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(SlotOf(other, i).evicted()) << i;
    EXPECT_TRUE(SlotOf(pinned, i).resident()) << "pinned block " << i << " was evicted";
  }
  // Reading it is all hits.
  uint64_t misses = cache_.stats().misses;
  std::string got;
  EXPECT_EQ(cache_.Submit(Reader(pinned, 0, 4 * kBlock, &got, &abandoned_)), 0u);
  EXPECT_EQ(got, std::string(4 * kBlock, 'p'));
  EXPECT_EQ(cache_.stats().misses, misses);
}

// Pressure from writes through a cache much smaller than them: the writer's
// own blocks go, the pinned ones never do.
TEST_F(SmallCacheTest, PinnedBlocksStayWhileALongWriteGoesThroughTheCache) {
  Ino pinned = MakeFile("pinned", 3 * kBlock, 'p');
  ASSERT_TRUE(keyspace_.SetPinned(pinned, true).ok());
  Ino ino = MakeFile("long", 0, 0);
  for (size_t i = 0; i < 64; ++i) {  // 256 KiB through a 64 KiB budget
    for (int tries = 0;; ++tries) {
      auto written = keyspace_.Write(ino, i * kBlock, std::string(kBlock, 'w'),
                                     Keyspace::WriteAt::kOffset);
      if (written.ok()) break;
      ASSERT_TRUE(IsRetryLater(written.status())) << i << ": " << written.status().ToString();
      ASSERT_LT(tries, 3) << "block " << i << " waits for room that does not come";
      cache_.Flush();
      RunAllIo();
    }
    for (size_t b = 0; b < 3; ++b) ASSERT_TRUE(SlotOf(pinned, b).resident()) << i << " " << b;
  }
  EXPECT_GT(cache_.stats().evictions, 0u);
  EXPECT_LE(memory_.Used(), memory_.limit());
}

TEST_F(BlockCacheTest, PinningLoadsEvictedBlocksAndReturnsAtOnce) {
  Ino ino = MakeFile("f", 3 * kBlock, 'l');
  EvictFile(ino);
  ASSERT_TRUE(keyspace_.SetPinned(ino, true).ok());
  EXPECT_EQ(io_.queued(), 3u);  // LOADs queued, none run yet
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(SlotOf(ino, i).evicted()) << i;
  RunAllIo();
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(SlotOf(ino, i).resident()) << i;
  EXPECT_EQ(cache_.stats().pin_loads, 3u);
  EXPECT_EQ(cache_.pinned_loading(), 0u);
  cache_.Reclaim(memory_.limit(), {});
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(SlotOf(ino, i).resident()) << i;
}

TEST_F(BlockCacheTest, UnpinnedBlocksAreEvictableAgain) {
  Ino ino = MakeFile("f", 2 * kBlock, 'u');
  SaveAll();
  ASSERT_TRUE(keyspace_.SetPinned(ino, true).ok());
  cache_.Reclaim(memory_.limit(), {});
  EXPECT_TRUE(SlotOf(ino, 0).resident() && SlotOf(ino, 1).resident());
  EXPECT_EQ(cache_.EvictFile(ino).now, 0u);  // evict leaves a pinned file alone
  EXPECT_TRUE(SlotOf(ino, 0).resident());
  ASSERT_TRUE(keyspace_.SetPinned(ino, false).ok());
  EXPECT_EQ(keyspace_.pinned_files(), 0u);
  EXPECT_EQ(keyspace_.pinned_bytes(), 0u);
  cache_.Reclaim(memory_.limit(), {});
  EXPECT_TRUE(SlotOf(ino, 0).evicted() && SlotOf(ino, 1).evicted());
}

// Pinned is not unsaved: a pinned block written is saved as any block is,
// only never dropped afterwards.
TEST_F(BlockCacheTest, DirtyPinnedBlocksAreStillSaved) {
  Ino ino = MakeFile("f", 2 * kBlock, 'd');
  ASSERT_TRUE(keyspace_.SetPinned(ino, true).ok());
  EXPECT_EQ(cache_.dirty_blocks(), 2u);
  SaveAll();
  EXPECT_EQ(cache_.stats().saves, 2u);
  EXPECT_EQ(cache_.dirty_blocks(), 0u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_FALSE(SlotOf(ino, i).dirty);
    EXPECT_TRUE(SlotOf(ino, i).stored.valid());
  }
  cache_.Reclaim(memory_.limit(), {});
  EXPECT_TRUE(SlotOf(ino, 0).resident() && SlotOf(ino, 1).resident());
  // Written again: saved again.
  ASSERT_TRUE(keyspace_.Write(ino, 10, "again", Keyspace::WriteAt::kOffset).ok());
  EXPECT_TRUE(SlotOf(ino, 0).dirty);
  SaveAll();
  EXPECT_FALSE(SlotOf(ino, 0).dirty);
  EXPECT_EQ(cache_.stats().saves, 3u);
  EXPECT_TRUE(SlotOf(ino, 0).resident());
}

TEST_F(BlockCacheTest, PinningMoreThanFitsIsRefusedWithNothingChanged) {
  Ino small = MakeFile("small", 2 * kBlock, 's');
  Ino big = MakeFile("big", 64 * kBlock, 'b');
  SaveAll();
  // Room for the small file and a few blocks more, beside what cannot be
  // evicted and the cache's own room.
  memory_.set_limit(memory_.Unevictable() + (Keyspace::kMinBlocksRoom + 6) * kBlock);
  ASSERT_TRUE(keyspace_.SetPinned(small, true).ok());
  uint64_t pinned = keyspace_.pinned_bytes();
  EXPECT_LE(pinned, keyspace_.PinLimit());
  Status refused = keyspace_.SetPinned(big, true);
  EXPECT_EQ(refused.code(), ENOSPC) << refused.ToString();
  EXPECT_FALSE(keyspace_.FindInode(big)->pinned);
  EXPECT_EQ(keyspace_.pinned_bytes(), pinned);
  EXPECT_EQ(keyspace_.pinned_files(), 1u);
  EXPECT_EQ(io_.queued(), 0u);  // nothing loaded for it
  // Directories and other files that are not regular.
  EXPECT_EQ(keyspace_.SetPinned(kRootIno, true).code(), EISDIR);
  auto fifo = keyspace_.MakeNode(kRootIno, "fifo", S_IFIFO | 0644, 0, {});
  ASSERT_TRUE(fifo.ok());
  EXPECT_EQ(keyspace_.SetPinned(fifo->ino, true).code(), EINVAL);
}

// The rule for a pinned file that grows: a write that would take pinned
// memory past the limit is refused (ENOSPC, nothing written), as tmpfs
// refuses one past its size; overwriting and shrinking always work.
TEST_F(BlockCacheTest, AWriteThatWouldGrowAPinnedFilePastTheLimitIsRefused) {
  Ino ino = MakeFile("f", 2 * kBlock, 'g');
  ASSERT_TRUE(keyspace_.SetPinned(ino, true).ok());
  memory_.set_limit(memory_.Unevictable() + (Keyspace::kMinBlocksRoom + 4) * kBlock);
  uint64_t limit = keyspace_.PinLimit();
  // Grow it up to the limit, a block at a time.
  uint64_t blocks = 2;
  while (keyspace_.pinned_bytes() + BlockBuffer::ChargeFor(kBlock) <= limit) {
    ASSERT_TRUE(keyspace_.Write(ino, blocks * kBlock, std::string(kBlock, 'g'),
                                Keyspace::WriteAt::kOffset).ok()) << blocks;
    ++blocks;
  }
  uint64_t pinned = keyspace_.pinned_bytes();
  EXPECT_EQ(pinned, blocks * BlockBuffer::ChargeFor(kBlock));
  uint64_t size = keyspace_.FindInode(ino)->size;
  auto refused = keyspace_.Write(ino, size, std::string(kBlock, 'm'), Keyspace::WriteAt::kOffset);
  EXPECT_EQ(refused.status().code(), ENOSPC);
  EXPECT_EQ(keyspace_.FindInode(ino)->size, size);
  EXPECT_EQ(keyspace_.pinned_bytes(), pinned);
  // An unpinned file may still grow (the cache's room is there for it).
  Ino other = MakeFile("other", 0, 0);
  EXPECT_TRUE(keyspace_.Write(other, 0, std::string(kBlock, 'o'), Keyspace::WriteAt::kOffset).ok());
  // Overwriting what it has needs no more.
  EXPECT_TRUE(keyspace_.Write(ino, 100, "over", Keyspace::WriteAt::kOffset).ok());
  // Shrinking gives room back, which the next write may take.
  SetAttrRequest shrink;
  shrink.size = size - kBlock;
  ASSERT_TRUE(keyspace_.SetAttr(ino, shrink).ok());
  EXPECT_EQ(keyspace_.pinned_bytes(), pinned - BlockBuffer::ChargeFor(kBlock));
  EXPECT_TRUE(keyspace_.Write(ino, size - kBlock, "more", Keyspace::WriteAt::kOffset).ok());
  // Punching a hole and unlinking count too.
  ASSERT_TRUE(keyspace_.Fallocate(ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, kBlock).ok());
  EXPECT_EQ(keyspace_.pinned_bytes(),
            (blocks - 2) * BlockBuffer::ChargeFor(kBlock) + BlockBuffer::ChargeFor(4));
  ASSERT_TRUE(keyspace_.Unlink(kRootIno, "f").ok());
  EXPECT_EQ(keyspace_.pinned_files(), 1u);  // the kernel still holds it (an open file)
  keyspace_.Forget(ino, 1);                 // now it is freed
  EXPECT_EQ(keyspace_.pinned_bytes(), 0u);
  EXPECT_EQ(keyspace_.pinned_files(), 0u);
}

// A pin when there is no room to load yet (memory full of unsaved blocks):
// the cron loads its blocks once saves have made room.
TEST_F(SmallCacheTest, PinnedBlocksWithoutRoomNowAreLoadedByTheCronLater) {
  Ino ino = MakeFile("pinned", 3 * kBlock, 'p');
  EvictFile(ino);
  std::vector<Ino> dirty;
  for (int i = 0; memory_.Available() >= 2 * BlockBuffer::ChargeFor(kBlock); ++i) {
    dirty.push_back(MakeFile("d" + std::to_string(i), kBlock, 'd'));
  }
  ASSERT_TRUE(keyspace_.SetPinned(ino, true).ok());
  EXPECT_EQ(cache_.pinned_loading(), 1u);
  EXPECT_TRUE(SlotOf(ino, 2).evicted());
  for (int round = 0; round < 20 && cache_.pinned_loading() > 0; ++round) {
    SaveAll();
    cache_.Cron();
    RunAllIo();
  }
  EXPECT_EQ(cache_.pinned_loading(), 0u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(SlotOf(ino, i).resident()) << i;
  EXPECT_LE(memory_.InUse(), memory_.limit());
}

// Small blocks (small files) are saved many to a job, one Sync for all:
// 2,000 of them in two jobs of at most save_batch_blocks (1,024).
TEST_F(BlockCacheTest, SmallBlocksAreSavedManyToAJob) {
  for (int i = 0; i < 2000; ++i) MakeFile("s" + std::to_string(i), 100, 's');
  EXPECT_EQ(QueueDueSaves(), 2u);
  RunAllIo();
  EXPECT_EQ(cache_.dirty_blocks(), 0u);
}

// A job holds at most a quarter of max_memory (8 MiB here): 1,000 blocks of
// 4 KiB go in two jobs, though save_batch_blocks would take them all.
TEST_F(BlockCacheTest, ASaveJobHoldsAtMostAQuarterOfMaxMemory) {
  for (int i = 0; i < 10; ++i) MakeFile("b" + std::to_string(i), 100 * kBlock, 'b');
  EXPECT_EQ(QueueDueSaves(), 2u);
  RunAllIo();
  EXPECT_EQ(cache_.dirty_blocks(), 0u);
}

TEST_F(BlockCacheTest, SaveAllAndDrainLeavesNothingDirty) {
  for (int i = 0; i < 10; ++i) MakeFile("f" + std::to_string(i), 3 * kBlock, 'u');
  EXPECT_EQ(cache_.dirty_blocks(), 30u);
  EXPECT_TRUE(cache_.SaveAllAndDrain(5'000'000'000));
  EXPECT_EQ(cache_.dirty_blocks(), 0u);
  EXPECT_EQ(io_.in_flight(), 0u);
}

}  // namespace
}  // namespace keyfs
