#include "store/store_dir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

class StoreDirTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(root_.empty()); }
  ScopedTempDir temp_;
  const std::string root_ = temp_.path();
};

TEST_F(StoreDirTest, CreatesMissingDirectoriesAndLocks) {
  std::string path = root_ + "/a/b/store";
  auto store = StoreDir::Open(Env::Default(), path, "keyfs pid 1 on /mnt/x");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  std::ifstream lock(path + "/LOCK");
  std::string owner((std::istreambuf_iterator<char>(lock)), {});
  EXPECT_EQ(owner, "keyfs pid 1 on /mnt/x");
}

TEST_F(StoreDirTest, SecondOpenFailsAndNamesTheHolder) {
  auto first = StoreDir::Open(Env::Default(), root_, "keyfs pid 11 on /mnt/one");
  ASSERT_TRUE(first.ok());
  auto second = StoreDir::Open(Env::Default(), root_, "keyfs pid 22 on /mnt/two");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), EBUSY);
  EXPECT_NE(second.status().message().find("in use by another keyfs"), std::string::npos);
  EXPECT_NE(second.status().message().find("pid 11 on /mnt/one"), std::string::npos);
  first->reset();
  EXPECT_TRUE(StoreDir::Open(Env::Default(), root_, "keyfs pid 33").ok());
}

TEST_F(StoreDirTest, ADirectoryThatCannotBeCreatedIsAClearError) {
  std::ofstream(root_ + "/file") << "x";
  auto store = StoreDir::Open(Env::Default(), root_ + "/file/store", "keyfs");
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), ENOTDIR);
  EXPECT_NE(store.status().ToString().find("cannot create store directory"), std::string::npos);
}

}  // namespace
}  // namespace keyfs
