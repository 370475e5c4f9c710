// Every inode knows its names (inode.h, invariant 4): its first name is kept
// with the inode and further ones (hard links) in the keyspace, through
// creation, links, renames, exchanges and removals. Random operations on a
// small tree are checked against the directories after each step.

#include <linux/fs.h>  // RENAME_EXCHANGE

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "tests/keyspace/keyspace_test_util.h"

namespace keyfs {
namespace {

class KeyspaceNamesTest : public KeyspaceTest {
 protected:
  // (parent, name) pairs by inode, read from the directories themselves.
  std::map<Ino, std::set<std::pair<Ino, std::string>>> NamesFromDirectories() {
    std::map<Ino, std::set<std::pair<Ino, std::string>>> names;
    keyspace_.ForEachName([&](Ino parent, std::string_view name, const Inode& inode) {
      names[inode.ino].insert({parent, std::string(name)});
    });
    return names;
  }

  // NamesOf agrees with the directories for every inode that has a name, and
  // its first name is the one kept with the inode.
  void CheckNames() {
    for (const auto& [ino, expected] : NamesFromDirectories()) {
      std::vector<NameRef> names = keyspace_.NamesOf(ino);
      std::set<std::pair<Ino, std::string>> got;
      for (const NameRef& ref : names) got.insert({ref.parent, ref.name});
      ASSERT_EQ(got, expected) << "inode " << ino;
      ASSERT_EQ(got.size(), names.size()) << "a name listed twice for inode " << ino;
      ASSERT_EQ(names.front().parent, InodeOf(ino).parent);
      ASSERT_EQ(names.front().name, InodeOf(ino).name);
      ASSERT_EQ(names.size(), InodeOf(ino).is_dir() ? 1u : InodeOf(ino).nlink);
    }
  }
};

TEST_F(KeyspaceNamesTest, FirstNameIsKeptWithTheInode) {
  Ino dir = MakeDir(kRootIno, "d");
  Ino file = MakeFile(dir, "a-name-longer-than-fifteen-characters");
  EXPECT_EQ(InodeOf(file).parent, dir);
  EXPECT_EQ(InodeOf(file).name, "a-name-longer-than-fifteen-characters");
  EXPECT_EQ(InodeOf(dir).parent, kRootIno);
  EXPECT_EQ(InodeOf(dir).name, "d");
  EXPECT_TRUE(keyspace_.NamesOf(kRootIno).empty());
}

TEST_F(KeyspaceNamesTest, AFurtherNameTakesOverWhenTheFirstGoes) {
  Ino file = MakeFile(kRootIno, "first");
  Ino dir = MakeDir(kRootIno, "d");
  ASSERT_TRUE(keyspace_.Link(file, dir, "second").ok());
  ASSERT_TRUE(keyspace_.Link(file, kRootIno, "third").ok());
  EXPECT_EQ(keyspace_.NamesOf(file).size(), 3u);
  ASSERT_TRUE(keyspace_.Unlink(kRootIno, "first").ok());
  CheckNames();
  ASSERT_TRUE(keyspace_.Unlink(dir, "second").ok());
  ASSERT_TRUE(keyspace_.Unlink(kRootIno, "third").ok());
  EXPECT_TRUE(keyspace_.NamesOf(file).empty());
}

TEST_F(KeyspaceNamesTest, AnOpenRemovedInodeHasNoName) {
  Ino file = MakeFile(kRootIno, "f");  // MakeFile's entry holds a kernel reference
  ASSERT_TRUE(keyspace_.Unlink(kRootIno, "f").ok());
  ASSERT_NE(keyspace_.FindInode(file), nullptr);
  EXPECT_TRUE(keyspace_.NamesOf(file).empty());
  EXPECT_EQ(InodeOf(file).parent, 0u);
}

TEST_F(KeyspaceNamesTest, RandomOperationsKeepNamesAndMemory) {
  const uint64_t names_before = memory_.Used(MemoryComponent::kNames);
  std::set<Ino> seen;  // every inode handed out (each holds kernel references)
  auto note = [&](const Result<Entry>& entry) {
    if (entry.ok()) seen.insert(entry->ino);
  };
  std::mt19937 random(12345);
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  std::vector<Ino> dirs{kRootIno, MakeDir(kRootIno, "d1"), MakeDir(kRootIno, "d2")};
  dirs.push_back(MakeDir(dirs[1], "d3"));
  seen.insert(dirs.begin() + 1, dirs.end());
  // Short names and names long enough to leave the short-string buffer.
  auto random_name = [&] {
    static const char* kNames[] = {"a", "b", "c", "a-long-name-of-twenty-chars",
                                   "another-long-name-here"};
    return std::string(kNames[pick(5)]);
  };
  for (int step = 0; step < 3000; ++step) {
    Ino dir = dirs[pick(dirs.size())];
    Ino other = dirs[pick(dirs.size())];
    std::string name = random_name(), other_name = random_name();
    switch (pick(6)) {
      case 0:
        note(keyspace_.MakeNode(dir, name, S_IFREG | 0644, 0, caller_));
        break;
      case 1:
        if (Ino ino = InoOf(dir, name); ino && !InodeOf(ino).is_dir()) {
          note(keyspace_.Link(ino, other, other_name));
        }
        break;
      case 2:
        if (Ino ino = InoOf(dir, name); ino && !InodeOf(ino).is_dir()) {
          ASSERT_TRUE(keyspace_.Unlink(dir, name).ok());
        }
        break;
      case 3:
        (void)keyspace_.Rename(dir, name, other, other_name, 0);
        break;
      case 4:
        (void)keyspace_.Rename(dir, name, other, other_name, RENAME_EXCHANGE);
        break;
      case 5:
        if (Ino ino = InoOf(dir, name); !ino) {
          note(keyspace_.MakeDirectory(dir, name, 0755, caller_));
        } else if (InodeOf(ino).is_dir()) {
          (void)keyspace_.RemoveDirectory(dir, name);
        }
        break;
    }
    CheckNames();
    if (HasFatalFailure()) FAIL() << "at step " << step;
  }
  // Remove everything (deepest first): every name's memory comes back.
  for (int round = 0; round < 10; ++round) {
    for (const auto& [ino, names] : NamesFromDirectories()) {
      for (const auto& [parent, name] : names) {
        if (InodeOf(ino).is_dir()) {
          (void)keyspace_.RemoveDirectory(parent, name);
        } else {
          ASSERT_TRUE(keyspace_.Unlink(parent, name).ok());
        }
      }
    }
  }
  ASSERT_TRUE(NamesFromDirectories().empty());
  // The kernel forgets them all: every inode is freed, and the memory of
  // every name comes back.
  for (Ino ino : seen) {
    if (const Inode* inode = keyspace_.FindInode(ino)) keyspace_.Forget(ino, inode->lookups);
  }
  EXPECT_EQ(keyspace_.inode_count(), 1u);
  EXPECT_EQ(memory_.Used(MemoryComponent::kNames), names_before);
  // (kInodes keeps the table's grown slot array: absl tables do not shrink.)
}

}  // namespace
}  // namespace keyfs
