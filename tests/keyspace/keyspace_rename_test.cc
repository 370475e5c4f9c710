#include <linux/fs.h>

#include <gtest/gtest.h>

#include "tests/keyspace/keyspace_test_util.h"

namespace keyfs {
namespace {

class RenameTest : public KeyspaceTest {};

TEST_F(RenameTest, MovesAFileWithinADirectory) {
  Ino ino = MakeFile(kRootIno, "a");
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(InoOf(kRootIno, "a"), 0u);
  EXPECT_EQ(InoOf(kRootIno, "b"), ino);
}

TEST_F(RenameTest, MovesADirectoryBetweenParentsAndFixesLinkCounts) {
  Ino from = MakeDir(kRootIno, "from");
  Ino to = MakeDir(kRootIno, "to");
  Ino moved = MakeDir(from, "moved");
  ASSERT_TRUE(keyspace_.Rename(from, "moved", to, "here", 0).ok());
  EXPECT_EQ(InodeOf(from).nlink, 2u);
  EXPECT_EQ(InodeOf(to).nlink, 3u);
  EXPECT_EQ(InodeOf(moved).parent, to);
  EXPECT_EQ(keyspace_.Lookup(moved, "..")->ino, to);
}

TEST_F(RenameTest, ReplacesAnExistingFileAtomically) {
  Ino a = MakeFile(kRootIno, "a");
  Ino b = MakeFile(kRootIno, "b");
  WriteString(a, 0, "new");
  WriteString(b, 0, "old");
  keyspace_.Forget(b, 1);  // the kernel no longer references b
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(InoOf(kRootIno, "b"), a);
  EXPECT_EQ(ReadAll(a), "new");
  EXPECT_EQ(keyspace_.FindInode(b), nullptr);  // the replaced file was freed
}

TEST_F(RenameTest, ReplacedOpenFileStaysReadable) {
  Ino a = MakeFile(kRootIno, "a");
  Ino b = MakeFile(kRootIno, "b");
  WriteString(b, 0, "old");
  ASSERT_TRUE(keyspace_.Open(b, O_RDONLY).ok());
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(InodeOf(b).nlink, 0u);
  EXPECT_EQ(ReadAll(b), "old");
  EXPECT_EQ(InoOf(kRootIno, "b"), a);
}

TEST_F(RenameTest, ReplacesAnEmptyDirectory) {
  Ino a = MakeDir(kRootIno, "a");
  MakeDir(kRootIno, "b");
  ASSERT_EQ(InodeOf(kRootIno).nlink, 4u);
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(InoOf(kRootIno, "b"), a);
  EXPECT_EQ(InodeOf(kRootIno).nlink, 3u);
}

TEST_F(RenameTest, RefusesANonEmptyTargetDirectory) {
  MakeDir(kRootIno, "a");
  Ino b = MakeDir(kRootIno, "b");
  MakeFile(b, "inside");
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "a", kRootIno, "b", 0)), ENOTEMPTY);
}

TEST_F(RenameTest, DirectoryOverFileAndFileOverDirectory) {
  MakeDir(kRootIno, "dir");
  MakeFile(kRootIno, "file");
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "dir", kRootIno, "file", 0)), ENOTDIR);
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "file", kRootIno, "dir", 0)), EISDIR);
}

TEST_F(RenameTest, RefusesToMoveADirectoryIntoItsOwnSubtree) {
  Ino a = MakeDir(kRootIno, "a");
  Ino b = MakeDir(a, "b");
  Ino c = MakeDir(b, "c");
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "a", c, "a", 0)), EINVAL);
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "a", a, "self", 0)), EINVAL);
  // Moving it up is fine.
  EXPECT_TRUE(keyspace_.Rename(b, "c", kRootIno, "c", 0).ok());
}

TEST_F(RenameTest, MissingSourceAndBadParents) {
  Ino file = MakeFile(kRootIno, "f");
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "none", kRootIno, "x", 0)), ENOENT);
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "f", file, "x", 0)), ENOTDIR);
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "f", kRootIno, "x", 0x80)), EINVAL);
}

TEST_F(RenameTest, HardLinksToTheSameInodeAreLeftAlone) {
  Ino ino = MakeFile(kRootIno, "a");
  ASSERT_TRUE(keyspace_.Link(ino, kRootIno, "b").ok());
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(InoOf(kRootIno, "a"), ino);  // POSIX: nothing happens
  EXPECT_EQ(InoOf(kRootIno, "b"), ino);
  EXPECT_EQ(InodeOf(ino).nlink, 2u);
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "a", 0).ok());
  EXPECT_EQ(InoOf(kRootIno, "a"), ino);
}

TEST_F(RenameTest, NoReplaceRefusesAnExistingTarget) {
  MakeFile(kRootIno, "a");
  MakeFile(kRootIno, "b");
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "a", kRootIno, "b", RENAME_NOREPLACE)),
            EEXIST);
  EXPECT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "c", RENAME_NOREPLACE).ok());
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "c", kRootIno, "d",
                                     RENAME_NOREPLACE | RENAME_EXCHANGE)),
            EINVAL);
}

TEST_F(RenameTest, ExchangeSwapsTwoNames) {
  Ino a = MakeFile(kRootIno, "a");
  Ino d = MakeDir(kRootIno, "d");
  Ino sub = MakeDir(d, "sub");
  Ino e = MakeFile(d, "e");
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", d, "sub", RENAME_EXCHANGE).ok());
  EXPECT_EQ(InoOf(kRootIno, "a"), sub);
  EXPECT_EQ(InoOf(d, "sub"), a);
  EXPECT_EQ(InodeOf(sub).parent, kRootIno);
  EXPECT_EQ(InodeOf(d).nlink, 2u);         // lost its subdirectory
  EXPECT_EQ(InodeOf(kRootIno).nlink, 4u);  // d and the moved sub
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "a", d, "none", RENAME_EXCHANGE)), ENOENT);
  (void)e;
}

TEST_F(RenameTest, ExchangeRefusesToPutADirectoryInsideItself) {
  Ino a = MakeDir(kRootIno, "a");
  MakeDir(a, "inner");
  EXPECT_EQ(ErrnoOf(keyspace_.Rename(kRootIno, "a", a, "inner", RENAME_EXCHANGE)), EINVAL);
}

TEST_F(RenameTest, RenameMovesTheChangeTime) {
  Ino ino = MakeFile(kRootIno, "a");
  clock_.AdvanceNanos(3'000'000'000);
  ASSERT_TRUE(keyspace_.Rename(kRootIno, "a", kRootIno, "b", 0).ok());
  EXPECT_EQ(keyspace_.GetAttr(ino)->st_ctim.tv_sec, clock_.Now().tv_sec);
}

}  // namespace
}  // namespace keyfs
