// The contract every BlockStore keeps (store/block_store.h), one typed suite
// run against each implementation, in the manner of CryFS's
// test/blockstore: what is saved loads back byte for byte; a load never
// returns another block's bytes; locations are never reused; saves and loads
// from many threads at once; deleted space is counted; and, for persistent
// stores, synced blocks survive a reopen and a crash.

#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "store/disk_block_store.h"
#include "store/swap/swap_file.h"
#include "tests/store/fault_injection_env.h"
#include "tests/store/memory_block_store.h"
#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

// How each implementation is made, and made again after a restart.
struct DiskStoreMaker {
  static Result<std::unique_ptr<BlockStore>> Make(Env* env, const std::string& dir) {
    DiskStoreOptions options;
    options.segment_bytes = 1 << 20;  // small, so that tests cross segments
    ASSIGN_OR_RETURN(auto store, DiskBlockStore::Open(env, dir, options));
    store->FinishRecovery();
    return std::unique_ptr<BlockStore>(std::move(store));
  }
};

struct SwapFileMaker {
  static Result<std::unique_ptr<BlockStore>> Make(Env* env, const std::string& dir) {
    SwapFileOptions options;
    options.path = dir + "/swap";
    options.size = 64 << 20;
    ASSIGN_OR_RETURN(auto swap, SwapFile::Create(env, options, nullptr));
    swap->FinishRecovery();
    return std::unique_ptr<BlockStore>(std::move(swap));
  }
};

struct MemoryStoreMaker {
  static Result<std::unique_ptr<BlockStore>> Make(Env*, const std::string&) {
    return std::unique_ptr<BlockStore>(new MemoryBlockStore);
  }
};

std::string Bytes(size_t n, uint32_t seed, bool compressible) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = compressible ? static_cast<char>('a' + (i / 97 + seed) % 7) : static_cast<char>(rng());
  }
  return out;
}


template <typename Maker>
class BlockStoreContractTest : public ::testing::Test {
 protected:
  BlockStoreContractTest() : env_(Env::Default()) { Reopen(); }

  void Reopen() {
    store_.reset();
    auto store = Maker::Make(&env_, dir_.path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  BlockLocation SaveOk(const BlockId& id, std::string_view bytes) {
    auto where = store_->Save(id, bytes);
    EXPECT_TRUE(where.ok()) << where.status().ToString();
    return where.ok() ? *where : BlockLocation{};
  }

  std::string LoadOk(const BlockId& id, const BlockLocation& where) {
    auto block = store_->Load(id, where, &memory_);
    EXPECT_TRUE(block.ok()) << block.status().ToString();
    return block.ok() ? std::string((*block)->data(), (*block)->length()) : "";
  }

  ScopedTempDir dir_;
  FaultInjectionEnv env_;
  MemoryAccountant memory_{uint64_t{1} << 32};
  std::unique_ptr<BlockStore> store_;
};

using Makers = ::testing::Types<DiskStoreMaker, SwapFileMaker, MemoryStoreMaker>;
TYPED_TEST_SUITE(BlockStoreContractTest, Makers);

TYPED_TEST(BlockStoreContractTest, SavedBlocksLoadBackByteForByte) {
  std::vector<std::tuple<BlockId, BlockLocation, std::string>> saved;
  uint64_t index = 0;
  for (size_t size : {0u, 1u, 100u, 4095u, 4096u, 65536u, 300000u, 1u << 20}) {
    for (bool compressible : {false, true}) {
      BlockId id{7, index++, 1000 + size};
      std::string bytes = Bytes(size, static_cast<uint32_t>(index), compressible);
      saved.emplace_back(id, this->SaveOk(id, bytes), bytes);
    }
  }
  ASSERT_TRUE(this->store_->Sync().ok());
  for (const auto& [id, where, bytes] : saved) {
    EXPECT_EQ(this->LoadOk(id, where), bytes) << "block " << id.index;
  }
}

TYPED_TEST(BlockStoreContractTest, ARangeHoldsThoseBytesOrTheWholeBlock) {
  uint64_t index = 0;
  for (bool compressible : {false, true}) {
    std::string bytes = Bytes(300000, 5, compressible);
    BlockId id{9, index++, 3};
    BlockLocation where = this->SaveOk(id, bytes);
    for (uint32_t offset : {0u, 1u, 4095u, 150000u, 299000u}) {
      uint32_t length = std::min<uint32_t>(5000, bytes.size() - offset);
      auto range = this->store_->LoadRange(id, where, bytes.size(), offset, length, &this->memory_);
      ASSERT_TRUE(range.ok()) << range.status().ToString();
      std::string got(range->buffer->data(), range->buffer->length());
      EXPECT_EQ(got, range->whole ? bytes : bytes.substr(offset, length))
          << "offset " << offset << (compressible ? ", compressible" : "");
    }
    auto wrong = this->store_->LoadRange({9, index + 5, 3}, where, bytes.size(), 0, 100, &this->memory_);
    EXPECT_EQ(wrong.status().code(), EIO);
  }
}

TYPED_TEST(BlockStoreContractTest, LoadNeverReturnsAnotherBlocksBytes) {
  BlockId id{7, 3, 42};
  BlockLocation where = this->SaveOk(id, "the right bytes");
  for (BlockId wrong : {BlockId{8, 3, 42}, BlockId{7, 4, 42}, BlockId{7, 3, 41}, BlockId{7, 3, 43}}) {
    auto block = this->store_->Load(wrong, where, &this->memory_);
    ASSERT_FALSE(block.ok());
    EXPECT_EQ(block.status().code(), EIO);
  }
  BlockLocation nowhere = where;
  nowhere.offset += 1;
  EXPECT_EQ(this->store_->Load(id, nowhere, &this->memory_).status().code(), EIO);
  EXPECT_EQ(this->LoadOk(id, where), "the right bytes");
}

TYPED_TEST(BlockStoreContractTest, LocationsAreNeverReused) {
  std::set<std::tuple<uint32_t, uint64_t>> seen;
  for (uint64_t i = 0; i < 500; ++i) {
    BlockLocation where = this->SaveOk({1, i, 1}, Bytes(1000 + i * 37 % 5000, uint32_t(i), true));
    ASSERT_TRUE(where.valid());
    EXPECT_TRUE(seen.insert({where.segment, where.offset}).second);
    if (i % 3 == 0) {
      ASSERT_TRUE(this->store_->Delete({1, i, 1}, where).ok());
    }
  }
}

TYPED_TEST(BlockStoreContractTest, SavesAndLoadsFromManyThreadsAtOnce) {
  constexpr int kThreads = 4, kBlocks = 150;
  std::vector<std::vector<BlockLocation>> where(kThreads, std::vector<BlockLocation>(kBlocks));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlocks; ++i) {
        BlockId id{uint64_t(t + 1), uint64_t(i), 5};
        std::string bytes = Bytes(2000 + i * 13, uint32_t(t * 1000 + i), i % 2);
        auto saved = this->store_->Save(id, bytes);
        if (!saved.ok()) {
          ++failures;
          continue;
        }
        where[t][i] = *saved;
        // Read back something written earlier, maybe by this thread.
        int j = i / 2;
        if (where[t][j].valid()) {
          auto block = this->store_->Load({uint64_t(t + 1), uint64_t(j), 5}, where[t][j],
                                          &this->memory_);
          if (!block.ok() || std::string((*block)->data(), (*block)->length()) !=
                                 Bytes(2000 + j * 13, uint32_t(t * 1000 + j), j % 2)) {
            ++failures;
          }
        }
        if (i % 50 == 0 && !this->store_->Sync().ok()) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kBlocks; i += 7) {
      EXPECT_EQ(this->LoadOk({uint64_t(t + 1), uint64_t(i), 5}, where[t][i]),
                Bytes(2000 + i * 13, uint32_t(t * 1000 + i), i % 2));
    }
  }
}

TYPED_TEST(BlockStoreContractTest, DeletedCopiesStopCountingAsLive) {
  BlockLocation a = this->SaveOk({1, 0, 1}, Bytes(50000, 1, false));
  BlockLocation b = this->SaveOk({1, 1, 1}, Bytes(50000, 2, false));
  uint64_t live = this->store_->Stats().live_bytes;
  EXPECT_GE(live, 100000u);
  ASSERT_TRUE(this->store_->Delete({1, 0, 1}, a).ok());
  EXPECT_EQ(this->store_->Stats().live_bytes, live - a.size);
  EXPECT_EQ(this->LoadOk({1, 1, 1}, b), Bytes(50000, 2, false));
}

TYPED_TEST(BlockStoreContractTest, LoadedBuffersAreChargedToTheBudget) {
  BlockLocation where = this->SaveOk({1, 0, 1}, Bytes(100000, 1, true));
  uint64_t before = this->memory_.Used();
  {
    auto block = this->store_->Load({1, 0, 1}, where, &this->memory_);
    ASSERT_TRUE(block.ok());
    EXPECT_GE(this->memory_.Used(), before + 100000);
  }
  EXPECT_EQ(this->memory_.Used(), before);
}

// The part of the contract only a persistent store (one that outlives the
// mount: BlockStore::persistent()) signs.
template <typename Maker>
class PersistentBlockStoreContractTest : public BlockStoreContractTest<Maker> {};

using PersistentMakers = ::testing::Types<DiskStoreMaker>;
TYPED_TEST_SUITE(PersistentBlockStoreContractTest, PersistentMakers);

TYPED_TEST(PersistentBlockStoreContractTest, ClaimsToBePersistent) {
  EXPECT_TRUE(this->store_->persistent());
}

TYPED_TEST(PersistentBlockStoreContractTest, SyncedBlocksSurviveAReopenAndACrash) {
  std::vector<std::pair<BlockLocation, std::string>> synced;
  for (uint64_t i = 0; i < 40; ++i) {
    std::string bytes = Bytes(30000 + i, uint32_t(i), i % 2);
    synced.emplace_back(this->SaveOk({9, i, 1}, bytes), bytes);
  }
  ASSERT_TRUE(this->store_->Sync().ok());
  BlockLocation unsynced = this->SaveOk({9, 99, 1}, Bytes(30000, 99, false));
  this->store_.reset();
  ASSERT_TRUE(this->env_.SimulateCrash().ok());
  this->Reopen();
  for (uint64_t i = 0; i < synced.size(); ++i) {
    EXPECT_EQ(this->LoadOk({9, i, 1}, synced[i].first), synced[i].second);
  }
  // What was never synced may be gone, but never reads as other bytes.
  auto lost = this->store_->Load({9, 99, 1}, unsynced, &this->memory_);
  if (lost.ok()) {
    EXPECT_EQ(std::string((*lost)->data(), (*lost)->length()), Bytes(30000, 99, false));
  } else {
    EXPECT_EQ(lost.status().code(), EIO);
  }
}

}  // namespace
}  // namespace keyfs
