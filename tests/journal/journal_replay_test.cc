// The journal above the file format: every record type round-trips; a
// keyspace rebuilt from the journal (live records, or a rewrite's snapshot)
// equals the one that wrote it; crashes through the FaultInjectionEnv lose
// nothing acknowledged and show nothing half applied; write and fsync errors
// reach the caller and heal.

#include <fcntl.h>
#include <linux/fs.h>
#include <linux/falloc.h>
#include <sys/sysmacros.h>

#include <memory>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "src/base/clock.h"
#include "src/journal/journal.h"
#include "src/journal/records.h"
#include "src/journal/snapshot.h"
#include "src/keyspace/keyspace.h"
#include "tests/store/fault_injection_env.h"
#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

using namespace journal;

// --- records ------------------------------------------------------------------

template <typename Record>
void ExpectRoundTrip(Record record) {
  std::string payload, again;
  Encode(record, &payload);
  Record decoded;
  ASSERT_TRUE(Decode(payload, &decoded));
  Encode(decoded, &again);
  EXPECT_EQ(payload, again);
  // One byte short or one too many never decodes.
  Record broken;
  EXPECT_FALSE(Decode(std::string_view(payload).substr(0, payload.size() - 1), &broken));
  EXPECT_FALSE(Decode(payload + "x", &broken));
}

TEST(RecordsTest, EveryRecordTypeRoundTrips) {
  timespec t{1'700'000'000, 123456789};
  NodeRecord node;
  node.parent = 1, node.ino = 7, node.mode = S_IFREG | 0644, node.uid = 5, node.gid = 6;
  node.size = 3, node.atime = node.mtime = node.ctime = t, node.flags = kTouchParent;
  node.name = "name", node.content = "abc";
  ExpectRoundTrip(node);
  ExpectRoundTrip(LinkRecord{7, 1, t, "other"});
  ExpectRoundTrip(UnlinkRecord{1, t, "gone"});
  ExpectRoundTrip(RenameRecord{1, 2, RENAME_EXCHANGE, t, "a", "b"});
  ExpectRoundTrip(SetAttrRecord{7, kAttrMode | kAttrSize, 0600, 0, 0, 42, t, t, t});
  ExpectRoundTrip(WriteRecord{7, 4096, t, std::string(10000, 'x')});
  ExpectRoundTrip(WriteRecord{7, 0, t, ""});
  ExpectRoundTrip(AllocateRecord{7, FALLOC_FL_KEEP_SIZE, 0, 8192, t});
  ExpectRoundTrip(XattrRecord{7, t, "user.a", std::string(65536, 'v')});
  ExpectRoundTrip(AccessRecord{7, t});
  ExpectRoundTrip(SnapshotEndRecord{99, 100, 12});
  ExpectRoundTrip(ExpiryRecord{7, 1'700'000'000'123});
  ExpectRoundTrip(SetPinRecord{7, 1});
  ExpectRoundTrip(SetPinRecord{7, 0});
  for (int type = kNode; type <= kSetPin; ++type) {
    EXPECT_NE(RecordTypeName(static_cast<uint8_t>(type)), "unknown") << type;
  }
  EXPECT_EQ(RecordTypeName(kSetPin), "set-pin");
  EXPECT_EQ(static_cast<int>(kSetPin), 21);
}

TEST(RecordsTest, SetPinDescribesItselfAndRefusesOtherValues) {
  std::string payload;
  Encode(SetPinRecord{42, 1}, &payload);
  EXPECT_EQ(DescribeRecord(kSetPin, payload), "set-pin ino=42 pinned=1");
  Encode(SetPinRecord{42, 2}, &payload);
  EXPECT_NE(DescribeRecord(kSetPin, payload).find("does not decode"), std::string::npos);
}

TEST(RecordsTest, NanosecondsOutOfRangeDoNotDecode) {
  std::string payload;
  Encode(AccessRecord{7, {1, 999'999'999}}, &payload);
  payload[8 + 8] = '\xff', payload[8 + 9] = '\xff', payload[8 + 10] = '\xff';
  AccessRecord record;
  EXPECT_FALSE(Decode(payload, &record));
}

// --- a keyspace and its journal ------------------------------------------------

// Everything a remount must keep, as text: equal text, equal state.
std::string Dump(const Keyspace& keyspace) {
  auto describe = [&](const Inode& inode) {
    std::string out = fmt::format("ino={} mode={:o} uid={} gid={} nlink={} size={} rdev={} "
                                  "mtime={}.{} ctime={}.{} atime={}.{}",
                                  inode.ino, inode.mode, inode.uid, inode.gid, inode.nlink,
                                  inode.size, inode.rdev(), inode.mtime.tv_sec, inode.mtime.tv_nsec,
                                  inode.ctime.tv_sec, inode.ctime.tv_nsec, inode.atime.tv_sec,
                                  inode.atime.tv_nsec);
    if (inode.is_symlink()) out += " -> " + inode.symlink_target();
    if (inode.is_regular()) {
      std::string bytes;
      std::vector<uint64_t> missing;
      auto slices = inode.file().Read(0, inode.size, inode.size, &missing);
      if (!slices.ok()) return out + " (blocks not in memory)";
      for (const ReadSlice& slice : *slices) {
        bytes += slice.block ? std::string(slice.block->data() + slice.offset, slice.length)
                             : std::string(slice.length, '\0');
      }
      out += fmt::format(" bytes={}:{:x}", bytes.size(), std::hash<std::string>()(bytes));
    }
    if (inode.xattrs) {
      for (const auto& [name, value] : inode.xattrs->entries()) out += " " + name + "=" + value;
    }
    if (auto at = keyspace.ExpiryOf(inode.ino)) out += fmt::format(" expires={}", *at);
    if (inode.pinned) out += " pinned";
    return out;
  };
  std::string out = fmt::format("pinned_files={} pinned_bytes={}\n", keyspace.pinned_files(),
                                keyspace.pinned_bytes());
  out += "/ " + describe(*keyspace.FindInode(kRootIno)) + "\n";
  keyspace.ForEachName([&](Ino parent, std::string_view name, const Inode& inode) {
    out += fmt::format("{}/{} {}\n", parent, name, describe(inode));
  });
  return out;
}

class JournalTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kBlockSize = 4096;

  JournalTest() : env_(Env::Default()) {}

  // A fresh keyspace on the store, its journal replayed.
  struct Mount {
    MemoryAccountant memory;
    Keyspace keyspace;
    std::unique_ptr<EventLoop> loop;
    std::unique_ptr<Journal> journal;
    Mount(const Clock* clock, uint64_t max_memory)
        : memory(max_memory), keyspace(KeyspaceOptions{kBlockSize}, &memory, clock) {}
  };

  std::unique_ptr<Mount> Open(AppendFsync policy = AppendFsync::kAlways) {
    auto mount = TryOpen(policy, /*load_truncated=*/true);
    EXPECT_TRUE(mount.ok()) << mount.status().ToString();
    return mount.ok() ? std::move(mount).value() : nullptr;
  }

  Result<std::unique_ptr<Mount>> TryOpen(AppendFsync policy, bool load_truncated) {
    auto mount = std::make_unique<Mount>(&clock_, max_memory_);
    ASSIGN_OR_RETURN(mount->loop, EventLoop::Create());
    JournalOptions options;
    options.appendfsync = policy;
    options.auto_rewrite_percentage = 0;
    options.load_truncated = load_truncated;
    ASSIGN_OR_RETURN(mount->journal, Journal::Open(&env_, dir_.path(), options, &mount->keyspace,
                                                   mount->loop.get(), &mount->memory, &clock_));
    return mount;
  }

  // A bit of everything, each change committed as the loop would.
  void MakeHistory(Mount* m) {
    Keyspace& ks = m->keyspace;
    auto step = [&] {
      clock_.AdvanceNanos(1'000'003);
      ASSERT_TRUE(m->journal->Commit());
    };
    Caller caller{1000, 100};
    Ino dir = ks.MakeDirectory(kRootIno, "dir", 02775, caller)->ino;
    step();
    Ino file = ks.Create(dir, "file", 0640, O_WRONLY, caller)->ino;
    step();
    ASSERT_TRUE(ks.Write(file, 0, std::string(10000, 'a'), Keyspace::WriteAt::kOffset).ok());
    ASSERT_TRUE(ks.Write(file, 5000, "overwrite", Keyspace::WriteAt::kOffset).ok());
    ASSERT_TRUE(ks.Write(file, 0, "appended", Keyspace::WriteAt::kEnd).ok());
    step();
    ks.Release(file);
    ASSERT_TRUE(ks.MakeSymlink(dir, "link", "file", caller).ok());
    ASSERT_TRUE(ks.MakeNode(kRootIno, "fifo", S_IFIFO | 0600, 0, caller).ok());
    ASSERT_TRUE(ks.MakeNode(kRootIno, "dev", S_IFCHR | 0600, makedev(1, 3), caller).ok());
    ASSERT_TRUE(ks.Link(file, kRootIno, "hardlink").ok());
    step();
    // Lifetimes: one kept (it follows the file's names), one set and
    // removed, one on a file removed later.
    ASSERT_TRUE(ks.SetExpiry(file, 4'000'000'000'000).ok());
    ASSERT_TRUE(ks.SetPinned(file, true).ok());  // it has two names
    ASSERT_TRUE(ks.SetXattr(file, "user.k", "v", XattrMap::SetMode::kAny).ok());
    ASSERT_TRUE(ks.SetXattr(file, "user.gone", "x", XattrMap::SetMode::kAny).ok());
    ASSERT_TRUE(ks.RemoveXattr(file, "user.gone").ok());
    SetAttrRequest chmod;
    chmod.mode = 0600;
    chmod.uid = 7;
    chmod.mtime = {TimeChange::kSet, {1'000'000'000, 5}};
    ASSERT_TRUE(ks.SetAttr(file, chmod).ok());
    step();
    Ino sparse = ks.MakeNode(kRootIno, "sparse", S_IFREG | 0644, 0, caller)->ino;
    ASSERT_TRUE(ks.SetExpiry(sparse, 4'100'000'000'000).ok());
    ASSERT_TRUE(ks.ClearExpiry(sparse).ok());
    ASSERT_TRUE(ks.Write(sparse, 100000, "end", Keyspace::WriteAt::kOffset).ok());
    ASSERT_TRUE(ks.Fallocate(sparse, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 8192).ok());
    ASSERT_TRUE(ks.Fallocate(sparse, 0, 0, 200000).ok());
    SetAttrRequest shrink;
    shrink.size = 150000;
    ASSERT_TRUE(ks.SetAttr(sparse, shrink).ok());
    step();
    Ino a = ks.Create(kRootIno, "a", 0644, O_WRONLY, caller)->ino;
    ASSERT_TRUE(ks.SetPinned(a, true).ok());  // then renamed twice
    ASSERT_TRUE(ks.Write(a, 0, "pinned", Keyspace::WriteAt::kOffset).ok());
    ASSERT_TRUE(ks.Create(kRootIno, "b", 0644, O_WRONLY, caller).ok());
    ASSERT_TRUE(ks.Rename(kRootIno, "a", kRootIno, "b", RENAME_EXCHANGE).ok());
    ASSERT_TRUE(ks.Rename(kRootIno, "b", dir, "moved", 0).ok());
    ASSERT_TRUE(ks.Unlink(kRootIno, "a").ok());
    Ino sub = ks.MakeDirectory(dir, "sub", 0700, caller)->ino;
    ASSERT_TRUE(ks.Rename(dir, "sub", kRootIno, "sub2", 0).ok());
    ASSERT_TRUE(ks.MakeDirectory(sub, "empty", 0700, caller).ok());
    ASSERT_TRUE(ks.RemoveDirectory(sub, "empty").ok());
    step();
    // Opened, unlinked, written: gone after a remount, and its writes skipped.
    Ino doomed = ks.Create(kRootIno, "doomed", 0644, O_WRONLY, caller)->ino;
    ASSERT_TRUE(ks.SetExpiry(doomed, 4'200'000'000'000).ok());
    ASSERT_TRUE(ks.SetPinned(doomed, true).ok());  // gone with it
    ASSERT_TRUE(ks.Unlink(kRootIno, "doomed").ok());
    ASSERT_TRUE(ks.Write(doomed, 0, "late", Keyspace::WriteAt::kOffset).ok());
    ks.Release(doomed);
    ks.Forget(doomed, 1);  // freed, and its pin with it
    // O_TRUNC on open, and a read that moves the access time.
    ASSERT_TRUE(ks.Open(file, O_WRONLY | O_TRUNC).ok());
    ASSERT_TRUE(ks.Write(file, 0, "short", Keyspace::WriteAt::kOffset).ok());
    ks.Release(file);
    clock_.AdvanceNanos(int64_t{2} * 86400 * 1'000'000'000);
    ASSERT_TRUE(ks.Read(file, 0, 5).ok());
    step();
  }

  static uint64_t LastSeq(const Journal& journal) {
    std::string info = journal.Info();
    size_t at = info.find("journal_last_seq:");
    return std::stoull(info.substr(at + std::string_view("journal_last_seq:").size()));
  }
  template <typename T>
  static int ErrnoOf(const Result<T>& result) {
    return result.ok() ? 0 : result.status().code();
  }
  static int ErrnoOf(const Status& status) { return status.code(); }

  uint64_t max_memory_ = 256 << 20;
  ManualClock clock_;
  ScopedTempDir dir_;
  FaultInjectionEnv env_;
};

TEST_F(JournalTest, ReplayRebuildsTheSameKeyspace) {
  std::string before;
  {
    auto m = Open();
    ASSERT_NO_FATAL_FAILURE(MakeHistory(m.get()));
    before = Dump(m->keyspace);
    ASSERT_TRUE(m->journal->Close().ok());
  }
  auto m = Open();
  EXPECT_EQ(Dump(m->keyspace), before);
  EXPECT_EQ(m->keyspace.keys_with_ttl(), 1u);  // the removed file's went with it
  EXPECT_GT(m->journal->loaded().records, 20u);
  EXPECT_GE(m->journal->loaded().skipped, 1u);  // the write to the unlinked file
  // And replaying again (a remount of a remount) changes nothing.
  ASSERT_TRUE(m->journal->Close().ok());
  m.reset();
  EXPECT_EQ(Dump(Open()->keyspace), before);
}

TEST_F(JournalTest, SnapshotRebuildsTheSameKeyspace) {
  auto m = Open();
  ASSERT_NO_FATAL_FAILURE(MakeHistory(m.get()));
  std::string before = Dump(m->keyspace);
  Ino next_ino = m->keyspace.next_ino();
  uint64_t covers = 1000;
  auto stats = WriteSnapshot(m->keyspace, covers, &env_, dir_.File(JournalBaseName(5)));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  ASSERT_TRUE(m->journal->Close().ok());
  m.reset();
  // The base of generation 5 replaces every older file; its incr continues
  // from the record it covers.
  ASSERT_TRUE(JournalWriter::Create(&env_, dir_.File(JournalIncrName(5)), covers).ok());
  auto reopened = Open();
  EXPECT_EQ(Dump(reopened->keyspace), before);
  EXPECT_EQ(reopened->keyspace.inode_count(), stats->inodes);
  // A new inode never takes a number the snapshot had handed out.
  auto entry = reopened->keyspace.MakeNode(kRootIno, "new", S_IFREG | 0644, 0, {});
  ASSERT_TRUE(entry.ok());
  EXPECT_GE(entry->ino, next_ino);
}

// The pin belongs to the inode: it follows a rename and a hard link, and a
// replay and a rewrite's snapshot both bring it back; an unpin too.
TEST_F(JournalTest, APinFollowsTheInodeThroughRenameLinkReplayAndRewrite) {
  std::string before;
  {
    auto m = Open();
    Keyspace& ks = m->keyspace;
    Ino kept = ks.Create(kRootIno, "kept", 0644, O_WRONLY, {})->ino;
    ASSERT_TRUE(
        ks.Write(kept, 0, std::string(3 * kBlockSize, 'k'), Keyspace::WriteAt::kOffset).ok());
    Ino dropped = ks.Create(kRootIno, "dropped", 0644, O_WRONLY, {})->ino;
    ASSERT_TRUE(ks.SetPinned(kept, true).ok());
    ASSERT_TRUE(ks.SetPinned(dropped, true).ok());
    ASSERT_TRUE(m->journal->Commit());
    ASSERT_TRUE(ks.Rename(kRootIno, "kept", kRootIno, "renamed", 0).ok());
    ASSERT_TRUE(ks.Link(kept, kRootIno, "linked").ok());
    ASSERT_TRUE(ks.SetPinned(dropped, false).ok());
    ASSERT_TRUE(m->journal->Commit());
    before = Dump(ks);
    EXPECT_EQ(ks.pinned_files(), 1u);
    ASSERT_TRUE(m->journal->Close().ok());
  }
  auto m = Open();
  EXPECT_EQ(Dump(m->keyspace), before);
  auto renamed = m->keyspace.Lookup(kRootIno, "renamed");
  auto linked = m->keyspace.Lookup(kRootIno, "linked");
  ASSERT_TRUE(renamed.ok() && linked.ok());
  EXPECT_EQ(renamed->ino, linked->ino);
  EXPECT_TRUE(m->keyspace.FindInode(renamed->ino)->pinned);
  EXPECT_FALSE(m->keyspace.FindInode(m->keyspace.Lookup(kRootIno, "dropped")->ino)->pinned);
  EXPECT_EQ(m->keyspace.pinned_files(), 1u);
  EXPECT_GT(m->keyspace.pinned_bytes(), 3u * kBlockSize);
  // A rewrite's snapshot: only the pin that holds, as a set-pin record.
  uint64_t covers = 1000;
  ASSERT_TRUE(WriteSnapshot(m->keyspace, covers, &env_, dir_.File(JournalBaseName(5))).ok());
  ASSERT_TRUE(m->journal->Close().ok());
  m.reset();
  ASSERT_TRUE(JournalWriter::Create(&env_, dir_.File(JournalIncrName(5)), covers).ok());
  EXPECT_EQ(Dump(Open()->keyspace), before);
}

TEST_F(JournalTest, CrashKeepsEverythingSyncedAndNothingHalfApplied) {
  std::string committed;
  {
    auto m = Open(AppendFsync::kAlways);
    ASSERT_NO_FATAL_FAILURE(MakeHistory(m.get()));
    committed = Dump(m->keyspace);
    // Changes made but never committed (their replies never left): a crash
    // must not show any of them.
    Ino f = m->keyspace.MakeNode(kRootIno, "uncommitted", S_IFREG | 0644, 0, {})->ino;
    ASSERT_TRUE(m->keyspace.Write(f, 0, "x", Keyspace::WriteAt::kOffset).ok());
    m.reset();  // the process dies: no Close
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_EQ(Dump(Open()->keyspace), committed);
}

// Issue 9: a crash while a new segment is created (at a rewrite's start, or
// a store's first mount) leaves it cut inside its 32-byte header. It holds
// no record: a torn tail like any other when it is the newest file.
TEST_F(JournalTest, NewestSegmentCutInsideItsHeaderIsATornTail) {
  std::string state;
  uint64_t last_seq = 0;
  {
    auto m = Open();
    ASSERT_NO_FATAL_FAILURE(MakeHistory(m.get()));
    state = Dump(m->keyspace);
    ASSERT_TRUE(m->journal->Close().ok());
    last_seq = LastSeq(*m->journal);
  }
  uint64_t gen = 1;
  for (uint64_t cut : {0, 1, 7, 8, 20, 31}) {
    SCOPED_TRACE(cut);
    std::string newest = dir_.File(JournalIncrName(++gen));
    ASSERT_TRUE(JournalWriter::Create(&env_, newest, last_seq).ok());
    ASSERT_TRUE(env_.TruncateFile(newest, cut).ok());
    EXPECT_EQ(ErrnoOf(TryOpen(AppendFsync::kAlways, /*load_truncated=*/false)), EINVAL);
    auto m = Open();
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(Dump(m->keyspace), state);
    EXPECT_TRUE(m->journal->loaded().live_cut_in_header);
    // The segment is written anew and continues the history.
    ASSERT_TRUE(m->keyspace.MakeNode(kRootIno, "after-" + std::to_string(cut),
                                     S_IFREG | 0644, 0, {}).ok());
    ASSERT_TRUE(m->journal->Commit());
    state = Dump(m->keyspace);
    ASSERT_TRUE(m->journal->Close().ok());
    last_seq = LastSeq(*m->journal);
    m.reset();
    auto again = Open();
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(Dump(again->keyspace), state);
    EXPECT_FALSE(again->journal->loaded().live_cut_in_header);
  }
}

TEST_F(JournalTest, SegmentCutInsideItsHeaderBeforeTheNewestIsCorruption) {
  uint64_t last_seq = 0;
  {
    auto m = Open();
    ASSERT_TRUE(m->keyspace.MakeNode(kRootIno, "f", S_IFREG | 0644, 0, {}).ok());
    ASSERT_TRUE(m->journal->Commit());
    ASSERT_TRUE(m->journal->Close().ok());
    last_seq = LastSeq(*m->journal);
  }
  ASSERT_TRUE(JournalWriter::Create(&env_, dir_.File(JournalIncrName(2)), last_seq).ok());
  ASSERT_TRUE(JournalWriter::Create(&env_, dir_.File(JournalIncrName(3)), last_seq).ok());
  ASSERT_TRUE(env_.TruncateFile(dir_.File(JournalIncrName(2)), 5).ok());
  EXPECT_EQ(ErrnoOf(TryOpen(AppendFsync::kAlways, /*load_truncated=*/true)), EINVAL);
}

// Issue 9: a mount refused because the journal needs more memory than
// max_memory says how much to give.
TEST_F(JournalTest, JournalTooBigForMaxMemorySaysHowMuchItNeeds) {
  {
    auto m = Open();
    for (int i = 0; i < 16; ++i) {
      Ino f = m->keyspace.MakeNode(kRootIno, "f" + std::to_string(i), S_IFREG | 0644, 0, {})->ino;
      ASSERT_TRUE(m->keyspace.Write(f, 0, std::string(256 << 10, 'x'),
                                    Keyspace::WriteAt::kOffset).ok());
      ASSERT_TRUE(m->journal->Commit());
    }
    ASSERT_TRUE(m->journal->Close().ok());
  }
  max_memory_ = 1 << 20;
  auto refused = TryOpen(AppendFsync::kAlways, true);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ENOSPC);
  std::string message = refused.status().message();
  size_t at = message.find("Mount with max_memory=");
  ASSERT_NE(at, std::string::npos) << message;
  uint64_t suggested = std::stoull(message.substr(at + 22)) << 20;
  EXPECT_GE(suggested, uint64_t{4} << 20) << message;
  EXPECT_LE(suggested, uint64_t{8} << 20) << message;
  max_memory_ = suggested;
  EXPECT_NE(Open(), nullptr);
}

TEST_F(JournalTest, EverySecWithoutSyncMayLoseTheTailButNeverHalfARecord) {
  {
    auto m = Open(AppendFsync::kNo);
    ASSERT_NO_FATAL_FAILURE(MakeHistory(m.get()));
    m.reset();
  }
  ASSERT_TRUE(env_.SimulateCrash().ok());
  auto m = Open();
  ASSERT_NE(m, nullptr);  // replay of what survived works; nothing was synced
  EXPECT_EQ(m->keyspace.inode_count(), 1u);
}

TEST_F(JournalTest, WriteErrorHoldsRepliesRefusesChangesAndHeals) {
  auto m = Open(AppendFsync::kAlways);
  Keyspace& ks = m->keyspace;
  ASSERT_TRUE(ks.MakeNode(kRootIno, "before", S_IFREG | 0644, 0, {}).ok());
  ASSERT_TRUE(m->journal->Commit());

  env_.FailNth(FaultInjectionEnv::kAppend, 1, ENOSPC);
  ASSERT_TRUE(ks.MakeNode(kRootIno, "during", S_IFREG | 0644, 0, {}).ok());
  EXPECT_FALSE(m->journal->Commit());  // the reply must wait
  EXPECT_FALSE(m->journal->durable());
  auto refused = ks.MakeNode(kRootIno, "refused", S_IFREG | 0644, 0, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ENOSPC);
  EXPECT_TRUE(ks.Lookup(kRootIno, "before").ok());  // reads go on
  EXPECT_FALSE(ks.Lookup(kRootIno, "refused").ok());  // nothing applied

  env_.ClearFailures();
  clock_.AdvanceNanos(1'000'000'000);
  m->journal->Cron();
  EXPECT_TRUE(m->journal->durable());
  ASSERT_TRUE(ks.MakeNode(kRootIno, "after", S_IFREG | 0644, 0, {}).ok());
  ASSERT_TRUE(m->journal->Commit());
  std::string state = Dump(ks);
  m.reset();
  ASSERT_TRUE(env_.SimulateCrash().ok());
  EXPECT_EQ(Dump(Open()->keyspace), state);
}

TEST_F(JournalTest, FullDiskIsFoundBeforeTheChange) {
  auto m = Open(AppendFsync::kAlways);
  env_.FailFrom(FaultInjectionEnv::kReserve, ENOSPC);
  // The first change needs room reserved; the disk has none.
  auto refused = m->keyspace.MakeNode(kRootIno, "f", S_IFREG | 0644, 0, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ENOSPC);
  EXPECT_EQ(m->keyspace.inode_count(), 1u);
  env_.ClearFailures();
  clock_.AdvanceNanos(1'000'000'000);
  EXPECT_TRUE(m->keyspace.MakeNode(kRootIno, "f", S_IFREG | 0644, 0, {}).ok());
}

// Issue 9: on a full disk, rm, truncate and mv failed with ENOSPC too, so a
// full store could not be emptied. They may use a reserve the others leave.
TEST_F(JournalTest, FullDiskStillTakesChangesThatFreeRoom) {
  auto m = Open(AppendFsync::kAlways);
  Keyspace& ks = m->keyspace;
  std::vector<Ino> files;
  for (int i = 0; i < 4; ++i) {
    files.push_back(ks.MakeNode(kRootIno, "f" + std::to_string(i), S_IFREG | 0644, 0, {})->ino);
  }
  ASSERT_TRUE(m->journal->Commit());
  env_.FailFrom(FaultInjectionEnv::kReserve, ENOSPC);  // the disk is full from now on
  // Writes go on into the room already reserved, then fail before anything
  // is changed.
  std::string chunk(1 << 20, 'd');
  Status refused;
  for (int i = 0; i < 64 && refused.ok(); ++i) {
    auto written = ks.Write(files[i % 4], uint64_t(i / 4) << 20, chunk, Keyspace::WriteAt::kOffset);
    if (written.ok()) {
      ASSERT_TRUE(m->journal->Commit());
    } else {
      refused = written.status();
    }
  }
  ASSERT_EQ(refused.code(), ENOSPC);
  EXPECT_EQ(ErrnoOf(ks.MakeNode(kRootIno, "new", S_IFREG | 0644, 0, {})), ENOSPC);
  EXPECT_EQ(ErrnoOf(ks.SetXattr(files[0], "user.a", "v", XattrMap::SetMode::kAny)), ENOSPC);
  SetAttrRequest grow;
  grow.size = uint64_t{1} << 30;
  EXPECT_EQ(ErrnoOf(ks.SetAttr(files[0], grow)), ENOSPC);
  // What gives room back still works, and is journaled.
  EXPECT_TRUE(ks.Unlink(kRootIno, "f0").ok());
  EXPECT_TRUE(ks.Rename(kRootIno, "f1", kRootIno, "f2", 0).ok());
  SetAttrRequest shrink;
  shrink.size = 10;
  EXPECT_TRUE(ks.SetAttr(files[3], shrink).ok());
  EXPECT_TRUE(ks.Fallocate(files[2], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096).ok());
  ASSERT_TRUE(m->journal->Commit());
  std::string state = Dump(ks);
  ASSERT_TRUE(m->journal->Close().ok());
  m.reset();
  env_.ClearFailures();
  EXPECT_EQ(Dump(Open()->keyspace), state);
}

// Issue 9: a failed rewrite said "retrying in 1s" and never did, and each
// attempt left one more journal segment behind.
TEST_F(JournalTest, FailedRewriteIsRetriedAndLeavesNoSegmentBehind) {
  auto m = Open(AppendFsync::kAlways);
  Keyspace& ks = m->keyspace;
  ASSERT_TRUE(ks.MakeNode(kRootIno, "kept", S_IFREG | 0644, 0, {}).ok());
  ASSERT_TRUE(m->journal->Commit());
  // The rewrite process inherits the failure: its rename into place fails.
  env_.FailFrom(FaultInjectionEnv::kRename, ENOSPC);
  ASSERT_TRUE(m->journal->StartRewrite().ok());
  env_.ClearFailures();  // in this process; the child keeps it
  // Cron retries after the backoff; the second attempt fails as well, the
  // third succeeds.
  auto has = [&](std::string_view line) {
    return m->journal->Info().find(std::string(line) + "\n") != std::string::npos;
  };
  bool failed_again = false;
  ASSERT_TRUE(m->loop->AddTimer(std::chrono::milliseconds(5), [&] {
    clock_.AdvanceNanos(200'000'000);
    if (m->journal->rewrite_running()) return;
    if (has("rewrites_failed:1") && !failed_again) {
      failed_again = true;
      env_.FailFrom(FaultInjectionEnv::kRename, ENOSPC);
    } else if (has("rewrites_failed:2")) {
      env_.ClearFailures();
    }
    if (has("rewrites:1")) {
      m->loop->Stop();
      return;
    }
    m->journal->Cron();
  }).ok());
  ASSERT_TRUE(m->loop->Run().ok());
  EXPECT_NE(m->journal->Info().find("rewrites_failed:2"), std::string::npos) << m->journal->Info();
  std::string state = Dump(ks);
  ASSERT_TRUE(m->journal->Close().ok());
  m.reset();  // obsolete segments are removed in the background: wait for it
  // One base and the segment it continues into; the failed attempts reused it.
  auto names = env_.ListDir(dir_.path());
  ASSERT_TRUE(names.ok());
  std::vector<std::string> journal;
  for (const auto& name : *names) {
    if (name.starts_with("journal-")) journal.push_back(name);
  }
  std::sort(journal.begin(), journal.end());
  EXPECT_EQ(journal, (std::vector<std::string>{JournalBaseName(2), JournalIncrName(2)}));
  EXPECT_EQ(Dump(Open()->keyspace), state);
}

TEST_F(JournalTest, FsyncErrorIsHealedByARewrite) {
  auto m = Open(AppendFsync::kAlways);
  Keyspace& ks = m->keyspace;
  ASSERT_TRUE(ks.MakeNode(kRootIno, "before", S_IFREG | 0644, 0, {}).ok());
  ASSERT_TRUE(m->journal->Commit());
  env_.FailNth(FaultInjectionEnv::kSync, 1, EIO);
  ASSERT_TRUE(ks.MakeNode(kRootIno, "during", S_IFREG | 0644, 0, {}).ok());
  EXPECT_FALSE(m->journal->Commit());  // never success after a failed fsync
  auto refused = ks.MakeNode(kRootIno, "refused", S_IFREG | 0644, 0, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), EIO);

  // Cron starts a rewrite (a forked child); the loop collects its result.
  clock_.AdvanceNanos(1'000'000'000);
  ASSERT_TRUE(m->loop->AddTimer(std::chrono::milliseconds(5), [&] {
    clock_.AdvanceNanos(100'000'000);
    m->journal->Cron();
    if (m->journal->durable()) m->loop->Stop();
  }).ok());
  ASSERT_TRUE(m->loop->Run().ok());
  EXPECT_TRUE(m->journal->durable());
  EXPECT_NE(m->journal->Info().find("rewrites:1"), std::string::npos) << m->journal->Info();
  std::string state = Dump(ks);
  m.reset();
  EXPECT_EQ(Dump(Open()->keyspace), state);
}

}  // namespace
}  // namespace keyfs
