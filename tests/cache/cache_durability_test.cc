// The cache, the disk store (or the swap file) and the journal together, through the
// FaultInjectionEnv, wired as the server wires them (and with the IO stepped
// by hand): a crash at every step of a SAVE, of a compaction and of a journal
// rewrite loses nothing acknowledged and shows nothing half done; EIO and
// ENOSPC on SAVE and on LOAD keep every byte; replay after saves needs
// neither the bytes nor the memory of what was saved.

#include <fcntl.h>

#include <functional>
#include <map>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "src/cache/block_cache.h"
#include "src/cache/compactor.h"
#include "src/cache/io_queue.h"
#include "src/journal/journal.h"
#include "store/disk_block_store.h"
#include "store/swap/swap_file.h"
#include "tests/store/fault_injection_env.h"
#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

constexpr uint32_t kBlock = 4096;

class Request final : public PendingRequest {
 public:
  Request(std::function<Status()> run, int* error) : run_(std::move(run)), error_(error) {}
  Status Run() override { return run_(); }
  void Abandon(int err) override { *error_ = err; }
  Ino changes() const override { return 0; }
  size_t held_bytes() const override { return 0; }

 private:
  std::function<Status()> run_;
  int* error_;
};

// A write as the FUSE adapter parks it (fuse/fuse_request.h): its payload
// lies in a receive buffer that the next request overwrites, so a parked
// write has only what Keep or KeepCopied kept. A payload kept by length only
// reads as '#' here: a write that used its bytes would store wrong ones.
class WriteRequest final : public PendingRequest {
 public:
  struct Outcome {
    bool done = false;
    int error = 0;
    int restored = 0;  // RestorePayload calls
  };
  WriteRequest(Keyspace* keyspace, Ino ino, uint64_t offset, std::string_view payload,
               Outcome* outcome)
      : keyspace_(keyspace), ino_(ino), offset_(offset), payload_(payload), outcome_(outcome) {}
  Status Run() override {
    auto written = keyspace_->Write(ino_, offset_, payload_, Keyspace::WriteAt::kOffset);
    if (!written.ok() && IsRetryLater(written.status())) return written.status();
    outcome_->error = written.ok() ? 0 : written.status().code();
    outcome_->done = true;
    return Status::Ok();
  }
  void Abandon(int err) override { outcome_->error = err; }
  Ino changes() const override { return ino_; }
  size_t held_bytes() const override { return kept_.capacity(); }
  void Keep() override {
    if (is_kept_) return;
    is_kept_ = true;
    kept_.assign(payload_);
    payload_ = kept_;
  }
  bool KeepCopied(size_t copied) override {
    if (is_kept_ || copied != payload_.size()) {
      Keep();
      return false;
    }
    is_kept_ = true;
    kept_.assign(copied, '#');
    payload_ = kept_;
    return true;
  }
  void RestorePayload(std::string bytes) override {
    ++outcome_->restored;
    kept_ = std::move(bytes);
    payload_ = kept_;
  }

 private:
  Keyspace* keyspace_;
  Ino ino_;
  uint64_t offset_;
  std::string_view payload_;
  bool is_kept_ = false;
  std::string kept_;
  Outcome* outcome_;
};

// One mounted keyfs without FUSE: replayed at construction.
struct Mount {
  // `whole_block_writes`: writes of whole blocks are stored before they are
  // applied, as in keyfs (block_cache.h); off, every write's bytes go to the
  // journal and its blocks are saved later, the path most tests here follow.
  // `swap_bytes`: mode=swap, with a swap file of that size in `dir`; 0:
  // mode=disk.
  Mount(Env* env, const std::string& dir, const Clock* clock, uint64_t max_memory,
        bool whole_block_writes, uint64_t swap_bytes = 0)
      : memory(max_memory), keyspace(KeyspaceOptions{kBlock}, &memory, clock) {
    auto created = EventLoop::Create();
    EXPECT_TRUE(created.ok());
    loop = std::move(created).value();
    if (swap_bytes > 0) {
      SwapFileOptions swap_options;
      swap_options.path = dir + "/swap";
      swap_options.size = swap_bytes;
      auto opened = SwapFile::Create(env, swap_options, &memory);
      status = opened.status();
      if (!opened.ok()) return;
      swap = std::move(opened).value();
      store = swap.get();
    } else {
      DiskStoreOptions store_options;
      store_options.segment_bytes = 64 << 10;
      auto opened = DiskBlockStore::Open(env, dir, store_options);
      EXPECT_TRUE(opened.ok()) << opened.status().ToString();
      if (!opened.ok()) return;
      disk = std::move(opened).value();
      store = disk.get();
    }
    io = std::make_unique<IoQueue>(store, &memory, 0);
    JournalOptions options;
    options.appendfsync = AppendFsync::kAlways;
    options.auto_rewrite_percentage = 0;
    options.fork_rewrite = false;
    auto journal_opened = Journal::Open(env, dir, options, &keyspace, loop.get(), &memory, clock,
                                        store);
    status = journal_opened.status();
    if (!journal_opened.ok()) return;
    journal = std::move(journal_opened).value();
    CacheOptions cache_options;
    cache_options.flush_delay_ns = 0;
    cache = std::make_unique<BlockCache>(&keyspace, store, io.get(), &memory, clock,
                                         cache_options, journal.get());
    cache->OnJournalGeneration(journal->generation());
    cache->Attach([this](const BlockLocation& where) { store->MarkLive(where); });
    if (!whole_block_writes) keyspace.set_stores_whole_blocks(false);
    store->FinishRecovery();
    if (disk) {
      compactor = std::make_unique<Compactor>(disk.get(), cache.get(), journal.get(), clock,
                                              CompactorOptions{});
    }
    journal->set_generation_listener([this](uint64_t gen) { cache->OnJournalGeneration(gen); });
    journal->set_rewritten_listener([this](uint64_t base) {
      cache->OnJournalRewritten(base, [this] {
        if (compactor) compactor->OnReleased();
      });
    });
  }
  ~Mount() {
    // As a killed process: no Close. The journal goes before what it uses.
    compactor.reset();
    cache.reset();
    journal.reset();
    io.reset();
  }

  // Runs the IO there is, applies it, and commits the journal (as the loop
  // does between requests). False when the commit failed.
  bool Step() {
    bool committed = true;
    for (int round = 0; round < 100; ++round) {
      cache->Flush();
      bool ran = false;
      while (io->RunNext()) {
        ran = true;
        cache->OnIoReady();
      }
      cache->OnIoReady();
      committed = journal->Commit() && committed;
      if (!ran && io->queued() == 0) break;
    }
    return committed;
  }

  // Reads all of `ino` through the cache (loading what is evicted).
  Result<std::string> ReadAll(Ino ino) {
    std::string out;
    int error = 0;
    bool done = false;
    cache->Submit(std::make_unique<Request>(
        [&]() -> Status {
          auto attr = keyspace.GetAttr(ino);
          if (!attr.ok()) return Status::Ok();
          auto slices = keyspace.Read(ino, 0, attr->st_size);
          if (!slices.ok()) {
            if (IsRetryLater(slices.status())) return slices.status();
            error = slices.status().code();
            done = true;
            return Status::Ok();
          }
          out.clear();
          for (const ReadSlice& slice : *slices) {
            out += slice.block ? std::string(slice.block->data() + slice.offset, slice.length)
                               : std::string(slice.length, '\0');
          }
          done = true;
          return Status::Ok();
        },
        &error));
    for (int i = 0; i < 100 && !done && error == 0; ++i) Step();
    if (error != 0) return Status::Errno(error);
    return out;
  }

  // Every name and its bytes: what must survive.
  std::map<std::string, std::string> Files() {
    std::map<std::string, std::string> files;
    std::vector<std::pair<std::string, Ino>> names;
    keyspace.ForEachName([&](Ino, std::string_view name, const Inode& inode) {
      if (inode.is_regular()) names.emplace_back(std::string(name), inode.ino);
    });
    for (const auto& [name, ino] : names) {
      auto bytes = ReadAll(ino);
      files[name] = bytes.ok() ? *bytes : fmt::format("<{}>", bytes.status().ToString());
    }
    return files;
  }

  Ino Create(const std::string& name) {
    auto entry = keyspace.MakeNode(kRootIno, name, S_IFREG | 0644, 0, {});
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    return entry.ok() ? entry->ino : 0;
  }
  // Writes `data` through the cache as the adapter does (WriteRequest),
  // running the IO until it is answered; true once it is applied (false: it
  // failed or never finished, as when a crash stopped the IO).
  bool Write(Ino ino, uint64_t offset, const std::string& data,
             WriteRequest::Outcome* outcome_out = nullptr) {
    WriteRequest::Outcome outcome;
    std::string receive = data;
    cache->Submit(std::make_unique<WriteRequest>(&keyspace, ino, offset, receive, &outcome));
    receive.assign(receive.size(), '!');  // the next request arrives
    for (int i = 0; i < 100 && !outcome.done && outcome.error == 0; ++i) Step();
    if (outcome_out) *outcome_out = outcome;
    return outcome.done && outcome.error == 0;
  }

  MemoryAccountant memory;
  Keyspace keyspace;
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<DiskBlockStore> disk;  // one of the two
  std::unique_ptr<SwapFile> swap;
  BlockStore* store = nullptr;
  std::unique_ptr<IoQueue> io;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<BlockCache> cache;
  std::unique_ptr<Compactor> compactor;
  Status status;
};

std::string Bytes(size_t n, int seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (i * 7 + seed * 13) % 26);
  return out;
}

class CacheDurabilityTest : public ::testing::Test {
 protected:
  CacheDurabilityTest() : env_(Env::Default()) {}

  std::unique_ptr<Mount> Open(uint64_t max_memory = 8 << 20, bool whole_block_writes = false) {
    auto mount = std::make_unique<Mount>(&env_, dir_->path(), &clock_, max_memory,
                                         whole_block_writes);
    EXPECT_TRUE(mount->status.ok()) << mount->status.ToString();
    return mount;
  }
  // A store with a few files, everything acknowledged; returns their bytes.
  std::map<std::string, std::string> Populate(Mount* m) {
    for (int f = 0; f < 4; ++f) {
      Ino ino = m->Create(fmt::format("f{}", f));
      EXPECT_TRUE(m->Write(ino, 0, Bytes(3 * kBlock + 100 * f, f)));
    }
    EXPECT_TRUE(m->journal->Commit());
    return m->Files();
  }
  // Kills the mount, simulates the power cut, mounts again.
  std::unique_ptr<Mount> CrashAndReopen(std::unique_ptr<Mount> m) {
    m.reset();
    env_.ClearFailures();
    Status crashed = env_.SimulateCrash();
    EXPECT_TRUE(crashed.ok()) << crashed.ToString();
    return Open();
  }
  // A new, empty store for the next round (the last round's mount is gone;
  // what it left unsynced is forgotten with its directory).
  void NewStore() {
    env_.ClearFailures();
    EXPECT_TRUE(env_.SimulateCrash().ok());
    dir_ = std::make_unique<ScopedTempDir>();
  }

  ManualClock clock_;
  std::unique_ptr<ScopedTempDir> dir_ = std::make_unique<ScopedTempDir>();
  FaultInjectionEnv env_;
};

TEST_F(CacheDurabilityTest, ReplayAfterSavesNeedsNeitherTheBytesNorTheMemory) {
  std::map<std::string, std::string> expected;
  {
    auto m = Open();
    expected = Populate(m.get());
    m->Step();  // saved, block-saved records committed
    EXPECT_EQ(m->cache->dirty_blocks(), 0u);
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  auto m = Open();
  EXPECT_EQ(m->cache->resident_blocks(), 0u) << "replay kept bytes the store has";
  EXPECT_EQ(m->Files(), expected);
}

TEST_F(CacheDurabilityTest, ACrashAtEveryStepOfASaveLosesNothing) {
  auto save = [](Mount* m) { m->Step(); };
  int calls = 0;
  {
    auto m = Open();
    Populate(m.get());
    int before = env_.calls(FaultInjectionEnv::kAllOps);
    save(m.get());
    calls = env_.calls(FaultInjectionEnv::kAllOps) - before;
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  ASSERT_GT(calls, 3);
  for (int k = 0; k <= calls; ++k) {
    SCOPED_TRACE(fmt::format("crash after {} of {} file operations of the SAVE", k, calls));
    NewStore();
    auto m = Open();
    auto expected = Populate(m.get());
    env_.CrashAfter(k);
    save(m.get());
    m = CrashAndReopen(std::move(m));
    EXPECT_EQ(m->Files(), expected);
  }
}

TEST_F(CacheDurabilityTest, ACrashAtEveryStepOfARewriteLosesNothing) {
  auto rewrite = [](Mount* m) {
    m->Step();
    // A block written after its save, so the snapshot holds both kinds.
    Ino ino = m->keyspace.Lookup(kRootIno, "f1")->ino;
    m->keyspace.Forget(ino, 1);
    (void)m->keyspace.Write(ino, 10, "changed", Keyspace::WriteAt::kOffset);
    (void)m->journal->Commit();
    (void)m->journal->StartRewrite("test");
    m->Step();
  };
  int calls = 0;
  std::map<std::string, std::string> full;
  {
    auto m = Open();
    Populate(m.get());
    int before = env_.calls(FaultInjectionEnv::kAllOps);
    rewrite(m.get());
    calls = env_.calls(FaultInjectionEnv::kAllOps) - before;
    full = m->Files();
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());  // forget that store's unsynced changes
  ASSERT_GT(calls, 5);
  for (int k = 0; k <= calls; ++k) {
    SCOPED_TRACE(fmt::format("crash after {} of {} file operations", k, calls));
    NewStore();
    auto m = Open();
    auto before = Populate(m.get());
    env_.CrashAfter(k);
    rewrite(m.get());
    m = CrashAndReopen(std::move(m));
    auto after = m->Files();
    // The change made during the steps was acknowledged only if its commit
    // got through: either state is right, nothing else is.
    EXPECT_TRUE(after == before || after == full) << "a state that was never acknowledged";
  }
}

TEST_F(CacheDurabilityTest, ACrashAtEveryStepOfACompactionLosesNothing) {
  auto compact = [](Mount* m) {
    m->Step();
    // Overwrite half of the blocks: their old copies die, segments go half dead.
    for (int f = 0; f < 4; f += 2) {
      Ino ino = m->keyspace.Lookup(kRootIno, fmt::format("f{}", f))->ino;
      m->keyspace.Forget(ino, 1);
      (void)m->keyspace.Write(ino, 0, Bytes(3 * kBlock, 99), Keyspace::WriteAt::kOffset);
    }
    (void)m->journal->Commit();
    m->Step();
    (void)m->compactor->Start("test");
    for (int i = 0; i < 20 && m->compactor->running(); ++i) m->Step();
  };
  int calls = 0;
  std::map<std::string, std::string> full;
  {
    auto m = Open();
    Populate(m.get());
    int before = env_.calls(FaultInjectionEnv::kAllOps);
    compact(m.get());
    EXPECT_FALSE(m->compactor->running());
    calls = env_.calls(FaultInjectionEnv::kAllOps) - before;
    full = m->Files();
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());  // forget that store's unsynced changes
  ASSERT_GT(calls, 5);
  for (int k = 0; k <= calls; k += 1) {
    SCOPED_TRACE(fmt::format("crash after {} of {} file operations", k, calls));
    NewStore();
    auto m = Open();
    auto before = Populate(m.get());
    env_.CrashAfter(k);
    compact(m.get());
    m = CrashAndReopen(std::move(m));
    auto after = m->Files();
    EXPECT_TRUE(after == before || after == full) << "a state that was never acknowledged";
  }
}

// A write of whole blocks goes to the store before the journal records where
// it is (block_cache.h, rule 3): a crash at any step of it leaves either the
// old bytes or, once the write was acknowledged (its record synced), the new.
TEST_F(CacheDurabilityTest, ACrashAtEveryStepOfAWholeBlockWriteLosesNothing) {
  // Returns whether the write was acknowledged: applied, and its record
  // synced (appendfsync=always).
  auto write = [](Mount* m) {
    m->Step();
    Ino ino = m->keyspace.Lookup(kRootIno, "f1")->ino;
    m->keyspace.Forget(ino, 1);
    bool applied = m->Write(ino, kBlock, Bytes(2 * kBlock, 42));
    return applied && m->journal->Commit() && m->journal->durable();
  };
  int calls = 0;
  std::map<std::string, std::string> full;
  {
    auto m = Open(8 << 20, /*whole_block_writes=*/true);
    Populate(m.get());
    uint64_t saves = m->cache->stats().saves;
    int before = env_.calls(FaultInjectionEnv::kAllOps);
    ASSERT_TRUE(write(m.get()));
    calls = env_.calls(FaultInjectionEnv::kAllOps) - before;
    EXPECT_GT(m->cache->stats().saves, saves);
    Ino ino = m->keyspace.Lookup(kRootIno, "f1")->ino;
    m->keyspace.Forget(ino, 1);
    EXPECT_NE(m->cache->StateOf(ino).find(" dirty:0 "), std::string::npos)
        << "whole blocks written through the store are clean: " << m->cache->StateOf(ino);
    full = m->Files();
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  ASSERT_GT(calls, 3);
  for (int k = 0; k <= calls; ++k) {
    SCOPED_TRACE(fmt::format("crash after {} of {} file operations", k, calls));
    NewStore();
    auto m = Open(8 << 20, /*whole_block_writes=*/true);
    auto before = Populate(m.get());
    env_.CrashAfter(k);
    bool acknowledged = write(m.get());
    m = CrashAndReopen(std::move(m));
    auto after = m->Files();
    if (acknowledged) {
      EXPECT_EQ(after, full) << "an acknowledged write was lost";
    } else {
      EXPECT_TRUE(after == before || after == full) << "a state that was never acknowledged";
    }
  }
}

// Copies a whole-block write stored but did not take are deleted: when it was
// interrupted while they were being stored, and when it is applied they are
// the file's, so the ones they replace are deleted instead.
TEST_F(CacheDurabilityTest, AnInterruptedWholeBlockWriteLeavesNoLiveCopy) {
  auto m = Open(8 << 20, /*whole_block_writes=*/true);
  auto expected = Populate(m.get());
  m->Step();
  uint64_t live = m->store->Stats().live_bytes;
  Ino ino = m->keyspace.Lookup(kRootIno, "f2")->ino;
  m->keyspace.Forget(ino, 1);
  int error = 0;
  std::string data = Bytes(2 * kBlock, 5);
  uint64_t id = m->cache->Submit(std::make_unique<Request>(
      [&]() -> Status {
        auto written = m->keyspace.Write(ino, 0, data, Keyspace::WriteAt::kOffset);
        return written.ok() ? Status::Ok() : written.status();
      },
      &error));
  ASSERT_NE(id, 0u) << "a whole-block write waits for the store";
  m->cache->Interrupt(id);
  EXPECT_EQ(error, EINTR);
  m->Step();  // the store job comes back; its copies are nobody's
  EXPECT_EQ(m->store->Stats().live_bytes, live);
  EXPECT_EQ(m->Files(), expected);
  // Applied, the new copies replace the old ones: the live bytes stay.
  ASSERT_TRUE(m->Write(ino, 0, data));
  m->Step();
  EXPECT_EQ(m->store->Stats().live_bytes, live);
}

// A whole-block write keeps no copy of its payload while its blocks are
// stored: its blocks hold the bytes. When the store fails, the write goes the
// usual way with the bytes given back from those blocks: they reach the
// journal, and are there after a crash.
TEST_F(CacheDurabilityTest, AWholeBlockWriteTheStoreRefusesKeepsItsBytesFromItsCopies) {
  for (int err : {EIO, ENOSPC}) {
    SCOPED_TRACE(err);
    NewStore();
    auto m = Open(8 << 20, /*whole_block_writes=*/true);
    auto expected = Populate(m.get());
    Ino ino = m->keyspace.Lookup(kRootIno, "f1")->ino;
    m->keyspace.Forget(ino, 1);
    uint64_t errors = m->cache->stats().save_errors;
    env_.FailFrom(FaultInjectionEnv::kAppend, err, "/blocks/");  // the store, not the journal
    WriteRequest::Outcome outcome;
    std::string data = Bytes(2 * kBlock, 40 + err);
    ASSERT_TRUE(m->Write(ino, kBlock, data, &outcome));
    EXPECT_EQ(outcome.restored, 1) << "the write ran the usual way, with its bytes given back";
    EXPECT_GT(m->cache->stats().save_errors, errors);
    ASSERT_TRUE(m->journal->Commit());
    expected["f1"].replace(kBlock, 2 * kBlock, data);
    EXPECT_EQ(m->Files(), expected);
    EXPECT_EQ(m->memory.Used(MemoryComponent::kRequests), 0u) << "the copy is given back";
    m = CrashAndReopen(std::move(m));
    EXPECT_EQ(m->Files(), expected);
  }
}

// A whole-block write the store takes keeps only its payload's length while
// it waits: its bytes reach the file from its stored copies.
TEST_F(CacheDurabilityTest, AStoredWholeBlockWriteNeedsNoCopyOfItsPayload) {
  auto m = Open(8 << 20, /*whole_block_writes=*/true);
  auto expected = Populate(m.get());
  m->Step();  // the files' own SAVEs
  Ino ino = m->keyspace.Lookup(kRootIno, "f2")->ino;
  m->keyspace.Forget(ino, 1);
  uint64_t saves = m->cache->stats().saves;
  WriteRequest::Outcome outcome;
  std::string data = Bytes(2 * kBlock, 77);
  ASSERT_TRUE(m->Write(ino, 0, data, &outcome));
  EXPECT_EQ(m->cache->stats().saves, saves + 2) << "written through the store";
  EXPECT_EQ(outcome.restored, 0);
  expected["f2"].replace(0, 2 * kBlock, data);
  EXPECT_EQ(m->Files(), expected);
  m = CrashAndReopen(std::move(m));
  EXPECT_EQ(m->Files(), expected);
}

// A whole-block write whose stored copies must wait for room before they
// become the file's (its slots grow while memory is full of dirty blocks)
// runs again with those copies once SAVEs make room: it has no other bytes.
TEST_F(CacheDurabilityTest, AStoredWholeBlockWriteThatWaitsForRoomRunsWithItsCopies) {
  auto m = Open(1 << 20, /*whole_block_writes=*/true);
  Ino grown = m->Create("grown");
  Ino filler = m->Create("filler");
  m->Step();
  WriteRequest::Outcome outcome;
  std::string data = Bytes(2 * kBlock, 91);
  std::string receive = data;
  m->cache->Submit(std::make_unique<WriteRequest>(&m->keyspace, grown, 0, receive, &outcome));
  receive.assign(receive.size(), '!');  // the next request arrives
  ASSERT_FALSE(outcome.done) << "parked while its copies are stored";
  // Memory full of dirty blocks, which only SAVEs can free; the rest of the
  // budget taken, so that even the new slots wait.
  for (uint64_t index = 0;; ++index) {
    auto written = m->keyspace.Write(filler, index * kBlock + 1, Bytes(kBlock - 1, index),
                                     Keyspace::WriteAt::kOffset);
    if (!written.ok()) {
      ASSERT_EQ(written.status().code(), kNeedRoom) << written.status().ToString();
      break;
    }
  }
  uint64_t slack = m->memory.Available();
  m->memory.Charge(MemoryComponent::kRequests, slack);
  for (int i = 0; i < 100 && !outcome.done && outcome.error == 0; ++i) m->Step();
  m->memory.Release(MemoryComponent::kRequests, slack);
  ASSERT_TRUE(outcome.done);
  EXPECT_EQ(outcome.error, 0);
  EXPECT_EQ(outcome.restored, 0);
  auto read = m->ReadAll(grown);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(*read == data) << "the file holds other bytes than the write's";
}

TEST_F(CacheDurabilityTest, EioAndEnospcOnSaveKeepEveryByte) {
  auto m = Open();
  auto expected = Populate(m.get());
  for (int err : {EIO, ENOSPC}) {
    Ino ino = m->keyspace.Lookup(kRootIno, "f3")->ino;
    m->keyspace.Forget(ino, 1);
    ASSERT_TRUE(m->Write(ino, 0, Bytes(2 * kBlock, err)));
    ASSERT_TRUE(m->journal->Commit());
    expected = m->Files();
    env_.FailFrom(FaultInjectionEnv::kAppend, err, "/blocks/");  // the store, not the journal
    m->Step();
    EXPECT_GT(m->cache->dirty_blocks(), 0u);
    EXPECT_GT(m->cache->stats().save_errors, 0u);
    EXPECT_EQ(m->cache->disk_full(), err == ENOSPC);
    env_.ClearFailures();
    clock_.AdvanceNanos(20'000'000'000);  // past the backoff
    m->Step();
    EXPECT_EQ(m->cache->dirty_blocks(), 0u);
    EXPECT_EQ(m->Files(), expected);
  }
  m = CrashAndReopen(std::move(m));
  EXPECT_EQ(m->Files(), expected);
}

TEST_F(CacheDurabilityTest, EioOnLoadIsAnErrorNeverOtherBytes) {
  std::map<std::string, std::string> expected;
  {
    auto m = Open();
    expected = Populate(m.get());
    m->Step();
  }
  auto m = Open();  // everything evicted: the replay left no bytes in memory
  Ino ino = m->keyspace.Lookup(kRootIno, "f2")->ino;
  env_.FailFrom(FaultInjectionEnv::kRead, EIO, "/blocks/");
  auto failed = m->ReadAll(ino);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), EIO);
  env_.ClearFailures();
  auto again = m->ReadAll(ino);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, expected["f2"]);
}

}  // namespace
}  // namespace keyfs

// --- swap mode ----------------------------------------------------------------------
// The same wiring over a swap file: the journal keeps every byte, the
// rewrite writes swapped-out blocks' bytes (read back from the swap file),
// and replay of a journal larger than max_memory swaps out as it goes.

namespace keyfs {
namespace {

class SwapModeTest : public CacheDurabilityTest {
 protected:
  std::unique_ptr<Mount> OpenSwap(uint64_t max_memory, uint64_t swap_bytes = 16 << 20) {
    auto mount = std::make_unique<Mount>(&env_, dir_->path(), &clock_, max_memory,
                                         /*whole_block_writes=*/true, swap_bytes);
    EXPECT_TRUE(mount->status.ok()) << mount->status.ToString();
    return mount;
  }
  // 2 MiB in 8 files, through a cache of 1 MiB: most of it is swapped out.
  std::map<std::string, std::string> Fill(Mount* m) {
    for (int f = 0; f < 8; ++f) {
      Ino ino = m->Create(fmt::format("s{}", f));
      EXPECT_TRUE(m->Write(ino, 0, Bytes(64 * kBlock, f)));
      m->Step();  // saved (swapped out), so that the next file finds room
    }
    EXPECT_TRUE(m->journal->Commit());
    return m->Files();
  }
};

TEST_F(SwapModeTest, BlocksAreSwappedOutAndInAndTheJournalNeverNamesTheSwapFile) {
  auto m = OpenSwap(1 << 20);
  ASSERT_TRUE(m->status.ok());
  auto expected = Fill(m.get());
  EXPECT_GT(m->store->Stats().saves, 100u);
  EXPECT_EQ(m->Files(), expected);  // read back: swapped in
  EXPECT_GT(m->store->Stats().loads, 100u);
  m.reset();
  // The swap file is not read at the next mount (it is made again, empty):
  // everything comes from the journal.
  ASSERT_TRUE(env_.SimulateCrash().ok());
  auto again = OpenSwap(8 << 20);
  EXPECT_EQ(again->Files(), expected);
}

TEST_F(SwapModeTest, ARewriteWritesSwappedOutBlocksFromTheSwapFile) {
  std::map<std::string, std::string> expected;
  {
    auto m = OpenSwap(1 << 20);
    expected = Fill(m.get());
    ASSERT_GT(m->swap->swap_stats().pages_used, 256u);  // most of it is in the swap file
    ASSERT_TRUE(m->journal->StartRewrite("test").ok());
    m->Step();
    EXPECT_NE(m->journal->Info().find("last_rewrite_status:ok"), std::string::npos)
        << m->journal->Info();
    EXPECT_EQ(m->swap->swap_stats().pages_held, 0u);  // the rewrite ended
    EXPECT_EQ(m->Files(), expected);
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  // The base alone holds every byte: replay into a cache big enough needs no
  // swap at all.
  auto m = OpenSwap(8 << 20);
  EXPECT_EQ(m->journal->loaded().spilled, 0u);
  EXPECT_EQ(m->Files(), expected);
}

TEST_F(SwapModeTest, ReplayOfAJournalLargerThanMaxMemorySwapsOutAsItGoes) {
  std::map<std::string, std::string> expected;
  {
    auto m = OpenSwap(1 << 20);
    expected = Fill(m.get());
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  auto m = OpenSwap(1 << 20);
  ASSERT_TRUE(m->status.ok()) << m->status.ToString();
  EXPECT_GT(m->journal->loaded().spilled, 100u);
  EXPECT_LE(m->memory.InUse(), m->memory.limit());
  EXPECT_EQ(m->Files(), expected);
}

// Replay swaps out as it goes, and later records drop what it swapped out
// (files written, then deleted): their pages come back at once, so the swap
// file needs room for what is live, not for every version the journal holds.
TEST_F(SwapModeTest, ReplayGivesBackTheSwapOfFilesTheJournalDeletesLater) {
  std::map<std::string, std::string> expected;
  {
    auto m = OpenSwap(1 << 20);
    // Each round: six files, 1.5 MiB, more than the 1 MiB budget (replay
    // must swap some out), then all six deleted.
    for (int round = 0; round < 6; ++round) {
      for (int f = 0; f < 6; ++f) {
        Ino ino = m->Create(fmt::format("scratch{}", f));
        ASSERT_TRUE(m->Write(ino, 0, Bytes(64 * kBlock, round * 6 + f)));
        m->Step();
      }
      for (int f = 0; f < 6; ++f) {
        ASSERT_TRUE(m->keyspace.Unlink(kRootIno, fmt::format("scratch{}", f)).ok());
      }
      m->Step();
    }
    Ino ino = m->Create("kept");
    ASSERT_TRUE(m->Write(ino, 0, Bytes(64 * kBlock, 99)));
    m->Step();
    ASSERT_TRUE(m->journal->Commit());
    expected = m->Files();
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  // 9 MiB of writes in the journal, 256 KiB live: a 2 MiB swap file holds
  // it (without giving back, it would need about 6 MiB).
  auto m = OpenSwap(1 << 20, 2 << 20);
  ASSERT_TRUE(m->status.ok()) << m->status.ToString();
  EXPECT_GT(m->journal->loaded().spilled, 64u);
  EXPECT_LE(m->swap->swap_stats().pages_used, 70u);
  EXPECT_EQ(m->Files(), expected);
}

TEST_F(SwapModeTest, AJournalTooBigForMemoryAndSwapTogetherIsRefusedNamingSwapSize) {
  std::map<std::string, std::string> expected;
  {
    auto m = OpenSwap(1 << 20);
    expected = Fill(m.get());
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  {
    Mount m(&env_, dir_->path(), &clock_, 1 << 20, true, /*swap_bytes=*/256 << 10);
    ASSERT_FALSE(m.status.ok());
    EXPECT_EQ(m.status.code(), ENOSPC);
    EXPECT_NE(m.status.ToString().find("larger swap_size"), std::string::npos)
        << m.status.ToString();
  }
  // Nothing was lost: with room enough, it is all there.
  auto m = OpenSwap(1 << 20);
  EXPECT_EQ(m->Files(), expected);
}

}  // namespace
}  // namespace keyfs
