// What a keyfs reads at start-up about the one before it: the words in the
// store's lock file (LockOwner) and the kernel's mount table.

#include <gtest/gtest.h>

#include "fuse/lock_owner.h"
#include "fuse/mount_table.h"

namespace keyfs {
namespace {

TEST(LockOwnerTest, RoundTripsEveryState) {
  for (auto state : {LockOwner::State::kStarting, LockOwner::State::kServing,
                     LockOwner::State::kStopping, LockOwner::State::kStopped}) {
    LockOwner owner{4242, "/mnt/with space (and parens)", state};
    auto parsed = LockOwner::Parse(owner.Format());
    ASSERT_TRUE(parsed) << owner.Format();
    EXPECT_EQ(parsed->pid, 4242);
    EXPECT_EQ(parsed->mountpoint, owner.mountpoint);
    EXPECT_EQ(parsed->state, state);
  }
  LockOwner serving{7, "/mnt/kv", LockOwner::State::kServing};
  EXPECT_EQ(serving.Format(), "keyfs pid 7 on /mnt/kv (serving)");
}

TEST(LockOwnerTest, ReadsWhatOlderVersionsAndShellsWrite) {
  auto legacy = LockOwner::Parse("keyfs pid 12 on /mnt/kv");  // keyfs 0.1: no state
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->state, LockOwner::State::kServing);
  EXPECT_EQ(legacy->mountpoint, "/mnt/kv");
  auto echoed = LockOwner::Parse("keyfs pid 12 on /mnt/kv (stopping)\n");
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->state, LockOwner::State::kStopping);
}

TEST(LockOwnerTest, OtherHoldersAreNotKeyfs) {
  for (const char* text : {"", "keyfs-check pid 9", "keyfs pid x on /m", "keyfs pid 0 on /m",
                           "keyfs pid 5", "keyfs pid 5 on ", "nonsense"}) {
    EXPECT_FALSE(LockOwner::Parse(text)) << text;
  }
}

TEST(MountTableTest, ParsesMountinfoWithEscapesAndOptionalFields) {
  std::string text =
      "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
      "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
      "40 22 0:50 / /mnt/with\\040space rw,nosuid shared:7 unbindable - fuse.keyfs "
      "/var/lib/my\\040store rw,user_id=0\n"
      "41 40 0:51 / /mnt/with\\040space rw - tmpfs tmpfs rw\n"
      "garbage line\n";
  std::vector<MountEntry> table = ParseMountInfo(text);
  ASSERT_EQ(table.size(), 4u);
  EXPECT_EQ(table[1].mount_point, "/mnt/parent");
  EXPECT_EQ(table[1].fstype, "ext3");
  EXPECT_EQ(table[2].mount_point, "/mnt/with space");
  EXPECT_EQ(table[2].source, "/var/lib/my store");
  EXPECT_TRUE(table[2].is_keyfs());
  EXPECT_TRUE(table[2].is_fuse());
  EXPECT_FALSE(table[3].is_fuse());
  auto stacked = MountsAt(table, "/mnt/with space");
  ASSERT_EQ(stacked.size(), 2u);
  EXPECT_EQ(stacked.back().fstype, "tmpfs");  // the top one, what the path shows
  EXPECT_TRUE(MountsAt(table, "/mnt").empty());
}

TEST(MountTableTest, ReadsThisProcesssTable) {
  auto table = ReadMountTable();
  ASSERT_TRUE(table.ok());
  EXPECT_FALSE(MountsAt(*table, "/").empty());
}

}  // namespace
}  // namespace keyfs
