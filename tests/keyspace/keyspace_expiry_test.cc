// Files' lifetimes in the keyspace (keyspace.h, "lifetimes"), on an injected
// clock: nothing sleeps, time moves when the test says.

#include <linux/fs.h>  // RENAME_EXCHANGE

#include "tests/keyspace/keyspace_test_util.h"

namespace keyfs {
namespace {

// Wall time stays where the test puts it; every reading of the monotonic
// clock moves it on by a millisecond, as if each step took that long.
class SlowClock final : public Clock {
 public:
  timespec Now() const override { return {wall_seconds_, 0}; }
  int64_t MonotonicNanos() const override { return nanos_ += 1'000'000; }
  void set_wall_seconds(time_t seconds) { wall_seconds_ = seconds; }

 private:
  time_t wall_seconds_ = 1'700'000'000;
  mutable int64_t nanos_ = 0;
};

class KeyspaceExpiryTest : public KeyspaceTest {
 protected:
  KeyspaceExpiryTest() { keyspace_.set_expiry_clock(&clock_); }
  int64_t NowMs() const {
    return int64_t{clock_.Now().tv_sec} * 1000 + clock_.Now().tv_nsec / 1'000'000;
  }
  void AdvanceSeconds(int64_t seconds) { clock_.AdvanceNanos(seconds * 1'000'000'000); }
  static constexpr int64_t kNoDeadline = INT64_MAX;
};

TEST_F(KeyspaceExpiryTest, SetReadAndClear) {
  Ino file = MakeFile(kRootIno, "f");
  EXPECT_FALSE(keyspace_.ExpiryOf(file));
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() + 5000).ok());
  EXPECT_EQ(keyspace_.ExpiryOf(file), NowMs() + 5000);
  EXPECT_EQ(keyspace_.keys_with_ttl(), 1u);
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() + 9000).ok());  // moved, not added
  EXPECT_EQ(keyspace_.keys_with_ttl(), 1u);
  ASSERT_TRUE(keyspace_.ClearExpiry(file).ok());
  EXPECT_FALSE(keyspace_.ExpiryOf(file));
  EXPECT_EQ(ErrnoOf(keyspace_.ClearExpiry(file)), ENODATA);
  EXPECT_EQ(keyspace_.keys_with_ttl(), 0u);
}

TEST_F(KeyspaceExpiryTest, DirectoriesHaveNoLifetime) {
  Ino dir = MakeDir(kRootIno, "d");
  EXPECT_EQ(ErrnoOf(keyspace_.SetExpiry(dir, NowMs() + 1000)), EINVAL);
  EXPECT_FALSE(keyspace_.ExpiryOf(dir));
}

TEST_F(KeyspaceExpiryTest, LazyExpiryHidesDueFilesAndANewFileTakesTheName) {
  Ino a = MakeFile(kRootIno, "a");
  Ino b = MakeFile(kRootIno, "b");
  Ino c = MakeFile(kRootIno, "c");
  for (Ino ino : {a, b, c}) ASSERT_TRUE(keyspace_.SetExpiry(ino, NowMs() + 1000).ok());
  EXPECT_TRUE(keyspace_.Lookup(kRootIno, "a").ok());  // not yet
  AdvanceSeconds(1);
  // No cron ran: lookups and listings no longer see them...
  EXPECT_EQ(ErrnoOf(keyspace_.Lookup(kRootIno, "a")), ENOENT);
  EXPECT_TRUE(keyspace_.IsDueName(kRootIno, "a"));
  auto listing = keyspace_.OpenDirectory(kRootIno);
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->entries().size(), 2u);  // "." and ".." only
  keyspace_.ReleaseDirectory(kRootIno);
  // ...the server's agent does (to remove them through the mount)...
  EXPECT_TRUE(keyspace_.Lookup(kRootIno, "a", /*hide_due=*/false).ok());
  EXPECT_EQ(InoOf(kRootIno, "c"), c);
  // ...and a new file taking a due name removes the due one first.
  auto created = keyspace_.Create(kRootIno, "b", 0644, O_CREAT | O_EXCL | O_WRONLY, caller_);
  ASSERT_TRUE(created.ok()) << created.status().ToString();  // O_EXCL: b was gone
  EXPECT_NE(created->ino, b);
  EXPECT_EQ(keyspace_.expired_keys(), 1u);
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 2u);
  EXPECT_EQ(keyspace_.keys_with_ttl(), 0u);
}

TEST_F(KeyspaceExpiryTest, ChangingTheLifetimeOfADueFileIsTooLate) {
  Ino a = MakeFile(kRootIno, "a");
  Ino b = MakeFile(kRootIno, "b");
  ASSERT_TRUE(keyspace_.SetExpiry(a, NowMs() + 1000).ok());
  ASSERT_TRUE(keyspace_.SetExpiry(b, NowMs() + 1000).ok());
  AdvanceSeconds(1);
  EXPECT_EQ(ErrnoOf(keyspace_.SetExpiry(a, NowMs() + 60'000)), ENOENT);
  EXPECT_EQ(ErrnoOf(keyspace_.ClearExpiry(b)), ENOENT);
  EXPECT_EQ(InoOf(kRootIno, "a"), 0u);
  EXPECT_EQ(InoOf(kRootIno, "b"), 0u);
}

TEST_F(KeyspaceExpiryTest, ALinkOverAnotherNameOfADueFileDoesNotBringItBack) {
  Ino file = MakeFile(kRootIno, "a");
  ASSERT_TRUE(keyspace_.Link(file, kRootIno, "b").ok());
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() + 1000).ok());
  AdvanceSeconds(1);
  // ln a b, through a stale cached name: "b" is the due file itself.
  EXPECT_EQ(ErrnoOf(keyspace_.Link(file, kRootIno, "b")), ENOENT);
  EXPECT_EQ(InodeOf(file).nlink, 0u);
  EXPECT_TRUE(keyspace_.NamesOf(file).empty());
}

TEST_F(KeyspaceExpiryTest, ActiveExpiryRemovesOnlyDueFilesAndEveryName) {
  Ino dir = MakeDir(kRootIno, "d");
  Ino soon = MakeFile(dir, "soon");
  Ino later = MakeFile(dir, "later");
  ASSERT_TRUE(keyspace_.Link(soon, kRootIno, "soon-link").ok());
  ASSERT_TRUE(keyspace_.SetExpiry(soon, NowMs() + 1000).ok());
  ASSERT_TRUE(keyspace_.SetExpiry(later, NowMs() + 60'000).ok());
  EXPECT_FALSE(keyspace_.HasDue());
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 0u);
  AdvanceSeconds(2);
  EXPECT_TRUE(keyspace_.HasDue());
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 1u);
  EXPECT_FALSE(keyspace_.HasDue());  // `later` is not due yet
  EXPECT_EQ(InoOf(dir, "soon"), 0u);
  EXPECT_EQ(InoOf(kRootIno, "soon-link"), 0u);
  EXPECT_EQ(InoOf(dir, "later"), later);
  // Both names go to the kernel; the inode lives on while it holds it.
  std::vector<RemovedName> removed = keyspace_.TakeRemovedNames();
  ASSERT_EQ(removed.size(), 2u);
  for (const RemovedName& name : removed) EXPECT_EQ(name.child, soon);
  EXPECT_EQ(InodeOf(soon).nlink, 0u);
  EXPECT_TRUE(keyspace_.TakeRemovedNames().empty());
}

TEST_F(KeyspaceExpiryTest, TheLifetimeFollowsRenameExchangeAndLinks) {
  Ino file = MakeFile(kRootIno, "f");
  Ino other = MakeFile(kRootIno, "g");
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() + 1000).ok());
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "f", kRootIno, "renamed", 0).ok());
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "renamed", kRootIno, "g", RENAME_EXCHANGE).ok());
  ASSERT_TRUE(keyspace_.Link(file, kRootIno, "link").ok());
  ASSERT_TRUE(keyspace_.Unlink(kRootIno, "g").ok());  // its first name goes
  EXPECT_EQ(keyspace_.ExpiryOf(file), NowMs() + 1000);
  AdvanceSeconds(1);
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 1u);
  EXPECT_EQ(InoOf(kRootIno, "link"), 0u);
  EXPECT_EQ(InoOf(kRootIno, "renamed"), other);  // the exchanged file stays
}

TEST_F(KeyspaceExpiryTest, ARemovedFileLeavesTheIndex) {
  Ino file = MakeFile(kRootIno, "f");
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() + 1000).ok());
  ASSERT_TRUE(keyspace_.Unlink(kRootIno, "f").ok());
  EXPECT_EQ(keyspace_.keys_with_ttl(), 0u);
  // A rename over a file with a lifetime removes it too.
  Ino target = MakeFile(kRootIno, "target");
  MakeFile(kRootIno, "source");
  ASSERT_TRUE(keyspace_.SetExpiry(target, NowMs() + 1000).ok());
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "source", kRootIno, "target", 0).ok());
  EXPECT_EQ(keyspace_.keys_with_ttl(), 0u);
  AdvanceSeconds(5);
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 0u);
  EXPECT_EQ(keyspace_.expired_keys(), 0u);
}

TEST_F(KeyspaceExpiryTest, AnEndAlreadyPastRemovesTheFileAtOnce) {
  Ino file = MakeFile(kRootIno, "f");
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs()).ok());  // EXPIRE key 0
  EXPECT_EQ(InoOf(kRootIno, "f"), 0u);
  EXPECT_EQ(keyspace_.TakeRemovedNames().size(), 1u);
}

TEST_F(KeyspaceExpiryTest, NothingExpiresWithoutAnExpiryClock) {
  keyspace_.set_expiry_clock(nullptr);  // replay: records apply as recorded
  Ino file = MakeFile(kRootIno, "f");
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() - 1000).ok());
  EXPECT_TRUE(keyspace_.Lookup(kRootIno, "f").ok());
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 0u);
  keyspace_.set_expiry_clock(&clock_);  // the mount starts
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 1u);
  EXPECT_EQ(InoOf(kRootIno, "f"), 0u);
}

TEST_F(KeyspaceExpiryTest, RemovalFromOutsideTakesOnlyDueFiles) {
  // What the server's expiry agent does: finds due files with ForEachDue,
  // their paths with PathOf, and unlinks them through the mount, which
  // reaches the keyspace as UnlinkDue (lookups with expire_due false).
  Ino dir = MakeDir(kRootIno, "d");
  Ino sub = MakeDir(dir, "sub");
  Ino due = MakeFile(sub, "due");
  ASSERT_TRUE(keyspace_.Link(due, kRootIno, "due-link").ok());
  Ino fresh = MakeFile(sub, "fresh");
  ASSERT_TRUE(keyspace_.SetExpiry(due, NowMs() + 1000).ok());
  ASSERT_TRUE(keyspace_.SetExpiry(fresh, NowMs() + 60'000).ok());
  AdvanceSeconds(1);
  std::vector<Ino> found;
  keyspace_.ForEachDue([&](Ino ino) {
    found.push_back(ino);
    return true;
  });
  EXPECT_EQ(found, std::vector<Ino>{due});
  EXPECT_EQ(*keyspace_.PathOf(sub, "due"), "d/sub/due");
  EXPECT_EQ(*keyspace_.PathOf(kRootIno, "due-link"), "due-link");
  EXPECT_TRUE(keyspace_.Lookup(sub, "due", /*expire_due=*/false).ok());
  EXPECT_EQ(InoOf(sub, "due"), due);  // the agent's lookup removed nothing
  EXPECT_EQ(ErrnoOf(keyspace_.UnlinkDue(sub, "fresh")), ENOENT);  // not due: left alone
  ASSERT_TRUE(keyspace_.UnlinkDue(sub, "due").ok());
  EXPECT_EQ(keyspace_.expired_keys(), 0u);  // one name left
  ASSERT_TRUE(keyspace_.UnlinkDue(kRootIno, "due-link").ok());
  EXPECT_EQ(keyspace_.expired_keys(), 1u);
  EXPECT_EQ(InoOf(sub, "fresh"), fresh);
  EXPECT_TRUE(keyspace_.TakeRemovedNames().empty());  // the kernel did these itself
  // A removed directory on the way: no path.
  Ino gone = MakeDir(kRootIno, "gone");
  ASSERT_TRUE(keyspace_.RemoveDirectory(kRootIno, "gone").ok());
  EXPECT_EQ(ErrnoOf(keyspace_.PathOf(gone, "x")), ENOENT);
}

TEST_F(KeyspaceExpiryTest, TheCronsOwnCycleTakesOnlyFilesOverdueByTheLag) {
  Ino file = MakeFile(kRootIno, "f");
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() + 1000).ok());
  AdvanceSeconds(2);  // due for 1 s
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline, /*overdue_ms=*/2000), 0u);
  AdvanceSeconds(1);
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline, /*overdue_ms=*/2000), 1u);
}

// A journal that takes records until told otherwise, and counts unlinks.
class RefusingLog final : public MutationLog {
 public:
  // Writable answers EIO once `allowed` more changes were taken.
  uint64_t allowed = UINT64_MAX;
  int unlinks = 0;

  Status Writable(SpaceEffect) override {
    if (allowed == 0) return Status::Errno(EIO, "the journal's disk failed");
    --allowed;
    return Status::Ok();
  }
  uint64_t next_seq() const override { return 1; }
  void NodeCreated(Ino, std::string_view, const Inode&) override {}
  void Linked(Ino, Ino, std::string_view, timespec) override {}
  void Unlinked(Ino, std::string_view, bool, timespec) override { ++unlinks; }
  void Renamed(Ino, std::string_view, Ino, std::string_view, unsigned, timespec) override {}
  void AttributesSet(const Inode&, unsigned) override {}
  void Written(Ino, uint64_t, std::string_view, timespec) override {}
  void WrittenStored(Ino, uint64_t, uint32_t, timespec, uint64_t, const BlockLocation&) override {}
  void Allocated(Ino, int, uint64_t, uint64_t, timespec) override {}
  void XattrSet(Ino, std::string_view, std::string_view, timespec) override {}
  void XattrRemoved(Ino, std::string_view, timespec) override {}
  void ExpirySet(Ino, int64_t) override {}
  void Accessed(Ino, timespec) override {}
  void PinSet(Ino, bool) override {}
  void BlockSaved(Ino, uint64_t, uint64_t, const BlockLocation&) override {}
};

TEST_F(KeyspaceExpiryTest, AJournalThatRefusesStopsTheRemovalAndALaterCycleFinishesIt) {
  RefusingLog log;
  keyspace_.set_log(&log);
  Ino file = MakeFile(kRootIno, "a");
  ASSERT_TRUE(keyspace_.Link(file, kRootIno, "b").ok());
  ASSERT_TRUE(keyspace_.SetExpiry(file, NowMs() + 1000).ok());
  AdvanceSeconds(1);
  // The first name's unlink is taken, the second's refused: half done.
  log.allowed = 1;
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 0u);
  EXPECT_EQ(log.unlinks, 1);
  EXPECT_EQ(keyspace_.NamesOf(file).size(), 1u);
  EXPECT_TRUE(keyspace_.HasDue());  // still due, still hidden
  EXPECT_EQ(keyspace_.expired_keys(), 0u);
  // Nothing at all while it refuses; the cycle stops instead of spinning.
  log.allowed = 0;
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 0u);
  EXPECT_EQ(log.unlinks, 1);
  // Healed: the next cycle removes what is left, journaled.
  log.allowed = UINT64_MAX;
  EXPECT_EQ(keyspace_.ExpireDue(kNoDeadline), 1u);
  EXPECT_EQ(log.unlinks, 2);
  EXPECT_TRUE(keyspace_.NamesOf(file).empty());
  EXPECT_EQ(keyspace_.expired_keys(), 1u);
  keyspace_.set_log(nullptr);
}

TEST_F(KeyspaceExpiryTest, LifetimesAreChargedAndGiveTheirMemoryBack) {
  const uint64_t before = memory_.Used(MemoryComponent::kInodes);
  std::vector<Ino> files;
  for (int i = 0; i < 100; ++i) files.push_back(MakeFile(kRootIno, "f" + std::to_string(i)));
  const uint64_t with_files = memory_.Used(MemoryComponent::kInodes);
  ASSERT_GT(with_files, before);
  for (Ino ino : files) ASSERT_TRUE(keyspace_.SetExpiry(ino, NowMs() + 60'000).ok());
  EXPECT_EQ(memory_.Used(MemoryComponent::kInodes), with_files + 100 * ExpiryIndex::kEntryCost);
  for (Ino ino : files) ASSERT_TRUE(keyspace_.SetExpiry(ino, NowMs() + 90'000).ok());  // moved
  EXPECT_EQ(memory_.Used(MemoryComponent::kInodes), with_files + 100 * ExpiryIndex::kEntryCost);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(keyspace_.ClearExpiry(files[i]).ok());
  for (int i = 50; i < 100; ++i) {
    ASSERT_TRUE(keyspace_.Unlink(kRootIno, "f" + std::to_string(i)).ok());  // leaves the index
  }
  EXPECT_EQ(keyspace_.keys_with_ttl(), 0u);
  EXPECT_EQ(memory_.Used(MemoryComponent::kInodes), with_files);
}

TEST(KeyspaceExpiryBudgetTest, ACycleStopsAtItsDeadlineAndTheNextGoesOn) {
  SlowClock clock;
  MemoryAccountant memory(256 << 20);
  Keyspace keyspace(KeyspaceOptions{4096}, &memory, &clock);
  keyspace.set_expiry_clock(&clock);
  constexpr size_t kFiles = 5000;
  for (size_t i = 0; i < kFiles; ++i) {
    auto entry = keyspace.MakeNode(kRootIno, "f" + std::to_string(i), S_IFREG | 0644, 0, {});
    ASSERT_TRUE(entry.ok());
    ASSERT_TRUE(keyspace.SetExpiry(entry->ino, 1'700'000'001'000).ok());  // in 1 s
  }
  clock.set_wall_seconds(1'700'000'002);  // all due at once
  // A 10 ms budget on a clock that moves 1 ms per reading, read every few
  // dozen removals: the cycle stops after about ten readings.
  size_t first = keyspace.ExpireDue(clock.MonotonicNanos() + 10'000'000);
  EXPECT_GT(first, 0u);
  EXPECT_LE(first, 11u * 32);
  EXPECT_EQ(keyspace.keys_with_ttl(), kFiles - first);
  // The next cycles go on where it stopped, until none is left.
  size_t total = first;
  int cycles = 1;
  while (keyspace.keys_with_ttl() > 0 && cycles < 1000) {
    total += keyspace.ExpireDue(clock.MonotonicNanos() + 10'000'000);
    ++cycles;
  }
  EXPECT_EQ(total, kFiles);
  EXPECT_EQ(keyspace.expired_keys(), kFiles);
  EXPECT_GE(cycles, static_cast<int>(kFiles / (11 * 32)));
  for (size_t i = 0; i < kFiles; i += 499) {
    EXPECT_EQ(keyspace.Lookup(kRootIno, "f" + std::to_string(i)).status().code(), ENOENT);
  }
}

}  // namespace
}  // namespace keyfs
