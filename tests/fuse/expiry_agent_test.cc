// The expiry agent removes expired files through the mount as root may: it
// must never leave the mount, whatever a user made of the path meanwhile.

#include "fuse/expiry_agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

class UnlinkBeneathTest : public ::testing::Test {
 protected:
  UnlinkBeneathTest() {
    root_path_ = dir_.File("root");
    outside_ = dir_.File("outside");
    mkdir(root_path_.c_str(), 0755);
    mkdir((root_path_ + "/a").c_str(), 0755);
    mkdir(outside_.c_str(), 0755);
    Touch(root_path_ + "/a/file");
    Touch(root_path_ + "/top");
    Touch(outside_ + "/file");
    root_ = open(root_path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  }
  ~UnlinkBeneathTest() override { close(root_); }
  static void Touch(const std::string& path) { std::ofstream(path) << "x"; }
  static bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

  ScopedTempDir dir_;
  std::string root_path_, outside_;
  int root_ = -1;
};

TEST_F(UnlinkBeneathTest, RemovesFilesBelowTheRoot) {
  EXPECT_EQ(ExpiryAgent::UnlinkBeneath(root_, "a/file"), 0);
  EXPECT_FALSE(Exists(root_path_ + "/a/file"));
  EXPECT_EQ(ExpiryAgent::UnlinkBeneath(root_, "top"), 0);
  EXPECT_FALSE(Exists(root_path_ + "/top"));
  EXPECT_EQ(ExpiryAgent::UnlinkBeneath(root_, "a/file"), ENOENT);
}

TEST_F(UnlinkBeneathTest, ADirectoryReplacedByASymlinkIsNotFollowed) {
  // A user turned "a" into a symlink to a directory outside after the path
  // "a/file" was taken.
  ASSERT_EQ(rename((root_path_ + "/a").c_str(), (root_path_ + "/a.old").c_str()), 0);
  ASSERT_EQ(symlink(outside_.c_str(), (root_path_ + "/a").c_str()), 0);
  EXPECT_EQ(ExpiryAgent::UnlinkBeneath(root_, "a/file"), ELOOP);
  EXPECT_TRUE(Exists(outside_ + "/file"));
  // A relative symlink is refused the same way.
  ASSERT_EQ(unlink((root_path_ + "/a").c_str()), 0);
  ASSERT_EQ(symlink("../outside", (root_path_ + "/a").c_str()), 0);
  EXPECT_EQ(ExpiryAgent::UnlinkBeneath(root_, "a/file"), ELOOP);
  EXPECT_TRUE(Exists(outside_ + "/file"));
}

TEST_F(UnlinkBeneathTest, DotDotCannotLeaveTheRoot) {
  EXPECT_EQ(ExpiryAgent::UnlinkBeneath(root_, "../outside/file"), EXDEV);
  EXPECT_TRUE(Exists(outside_ + "/file"));
}

TEST_F(UnlinkBeneathTest, ASymlinkAsTheLastNameIsRemovedNotFollowed) {
  ASSERT_EQ(symlink((outside_ + "/file").c_str(), (root_path_ + "/link").c_str()), 0);
  EXPECT_EQ(ExpiryAgent::UnlinkBeneath(root_, "link"), 0);
  EXPECT_TRUE(Exists(outside_ + "/file"));
}

}  // namespace
}  // namespace keyfs
