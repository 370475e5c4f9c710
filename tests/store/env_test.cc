// Tests of the real Env and of the FaultInjectionEnv that stands in for it in
// crash tests: the fault injection must fail and crash the way it says, or
// the crash tests built on it prove nothing.

#include "store/env.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/store/fault_injection_env.h"
#include "tests/store/scoped_temp_dir.h"

namespace keyfs {
namespace {

class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }

  std::string Path(const std::string& name) const { return temp_.File(name); }
  void Write(Env* env, const std::string& name, const std::string& data, bool sync) {
    auto file = env->NewWritableFile(Path(name));
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ASSERT_TRUE((*file)->Append(data).ok());
    if (sync) {
      ASSERT_TRUE((*file)->Sync().ok());
    }
    ASSERT_TRUE((*file)->Close().ok());
  }
  std::string Read(const std::string& name) {
    auto contents = ReadFileToString(Env::Default(), Path(name));
    return contents.ok() ? *contents : fmt::format("<{}>", contents.status().ToString());
  }

  ScopedTempDir temp_;
  const std::string dir_ = temp_.path();
  FaultInjectionEnv fault_{Env::Default()};
};

TEST_F(EnvTest, AppendReadRenameRemove) {
  Env* env = Env::Default();
  Write(env, "a", "hello", true);
  auto appendable = env->NewAppendableFile(Path("a"));
  ASSERT_TRUE(appendable.ok());
  EXPECT_EQ((*appendable)->Size(), 5u);
  ASSERT_TRUE((*appendable)->Append(" world").ok());
  EXPECT_EQ((*appendable)->Size(), 11u);
  appendable->reset();
  EXPECT_EQ(Read("a"), "hello world");
  EXPECT_EQ(*env->GetFileSize(Path("a")), 11u);
  ASSERT_TRUE(env->TruncateFile(Path("a"), 5).ok());
  EXPECT_EQ(Read("a"), "hello");
  Write(env, "b", "other", true);
  ASSERT_TRUE(env->RenameFile(Path("a"), Path("b")).ok());
  EXPECT_FALSE(env->FileExists(Path("a")));
  EXPECT_EQ(Read("b"), "hello");
  EXPECT_EQ(*env->ListDir(dir_), std::vector<std::string>{"b"});
  ASSERT_TRUE(env->RemoveFile(Path("b")).ok());
  EXPECT_EQ(env->RemoveFile(Path("b")).code(), ENOENT);
  EXPECT_EQ(env->NewSequentialFile(Path("none")).status().code(), ENOENT);
  EXPECT_TRUE(env->SyncDir(dir_).ok());
}

TEST_F(EnvTest, WriteFileDurablyReplacesAtomically) {
  ASSERT_TRUE(WriteFileDurably(Env::Default(), Path("meta"), "v1").ok());
  ASSERT_TRUE(WriteFileDurably(Env::Default(), Path("meta"), "v2").ok());
  EXPECT_EQ(Read("meta"), "v2");
  EXPECT_FALSE(Env::Default()->FileExists(Path("meta.tmp")));
}

TEST_F(EnvTest, FailNthFailsOnceWithTheGivenErrno) {
  fault_.FailNth(FaultInjectionEnv::kAppend, 2, ENOSPC);
  auto file = fault_.NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE((*file)->Append("1").ok());
  Status second = (*file)->Append("2");
  EXPECT_EQ(second.code(), ENOSPC);
  EXPECT_TRUE((*file)->Append("3").ok());
  EXPECT_EQ(fault_.calls(FaultInjectionEnv::kAppend), 3);
}

TEST_F(EnvTest, FailFromFailsUntilCleared) {
  fault_.FailFrom(FaultInjectionEnv::kSync | FaultInjectionEnv::kSyncDir, EIO);
  auto file = fault_.NewWritableFile(Path("f"));
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->Sync().code(), EIO);
  EXPECT_EQ((*file)->Sync().code(), EIO);
  EXPECT_EQ(fault_.SyncDir(dir_).code(), EIO);
  fault_.ClearFailures();
  EXPECT_TRUE((*file)->Sync().ok());
}

TEST_F(EnvTest, CrashDropsWhatWasNotSynced) {
  Write(&fault_, "log", "", true);
  ASSERT_TRUE(fault_.SyncDir(dir_).ok());
  {
    auto file = fault_.NewAppendableFile(Path("log"));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->Append("synced;").ok());
    ASSERT_TRUE((*file)->Sync().ok());
    ASSERT_TRUE((*file)->Append("lost").ok());
  }
  ASSERT_TRUE(fault_.SimulateCrash().ok());
  EXPECT_EQ(Read("log"), "synced;");
}

TEST_F(EnvTest, CrashRemovesFilesWhoseDirectoryWasNotSynced) {
  Write(&fault_, "new", "data", /*sync=*/true);  // the data is synced, the name is not
  ASSERT_TRUE(fault_.SimulateCrash().ok());
  EXPECT_FALSE(Env::Default()->FileExists(Path("new")));

  Write(&fault_, "kept", "data", true);
  ASSERT_TRUE(fault_.SyncDir(dir_).ok());
  ASSERT_TRUE(fault_.SimulateCrash().ok());
  EXPECT_EQ(Read("kept"), "data");
}

TEST_F(EnvTest, CrashUndoesARenameThatWasNotMadeDurable) {
  Write(&fault_, "current", "old", true);
  Write(&fault_, "next", "new", true);
  ASSERT_TRUE(fault_.SyncDir(dir_).ok());
  ASSERT_TRUE(fault_.RenameFile(Path("next"), Path("current")).ok());
  EXPECT_EQ(Read("current"), "new");
  ASSERT_TRUE(fault_.SimulateCrash().ok());
  EXPECT_EQ(Read("current"), "old");
  EXPECT_EQ(Read("next"), "new");
  EXPECT_EQ(Env::Default()->ListDir(dir_)->size(), 2u);  // no backup left behind
}

TEST_F(EnvTest, CrashKeepsARenameFollowedBySyncDir) {
  Write(&fault_, "current", "old", true);
  ASSERT_TRUE(fault_.SyncDir(dir_).ok());
  ASSERT_TRUE(WriteFileDurably(&fault_, Path("current"), "new").ok());
  ASSERT_TRUE(fault_.SimulateCrash().ok());
  EXPECT_EQ(Read("current"), "new");
  EXPECT_EQ(Env::Default()->ListDir(dir_)->size(), 1u);
}

TEST_F(EnvTest, CrashRestoresARemovalThatWasNotMadeDurable) {
  Write(&fault_, "victim", "still here", true);
  ASSERT_TRUE(fault_.SyncDir(dir_).ok());
  ASSERT_TRUE(fault_.RemoveFile(Path("victim")).ok());
  ASSERT_TRUE(fault_.SimulateCrash().ok());
  EXPECT_EQ(Read("victim"), "still here");
}

TEST_F(EnvTest, DurableReplaceThatFailsLeavesTheOldFile) {
  ASSERT_TRUE(WriteFileDurably(&fault_, Path("meta"), "v1").ok());
  fault_.FailNth(FaultInjectionEnv::kSync, 1, EIO);
  EXPECT_EQ(WriteFileDurably(&fault_, Path("meta"), "v2").code(), EIO);
  EXPECT_EQ(Read("meta"), "v1");
  EXPECT_FALSE(Env::Default()->FileExists(Path("meta.tmp")));
}

}  // namespace
}  // namespace keyfs
