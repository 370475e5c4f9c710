#pragma once

// A Keyspace on a ManualClock with a small block size, so that multi-block
// behaviour shows up in small tests.

#include <fcntl.h>

#include <string>

#include <gtest/gtest.h>

#include "src/base/clock.h"
#include "src/base/memory_accountant.h"
#include "src/keyspace/keyspace.h"

namespace keyfs {

class KeyspaceTest : public ::testing::Test {
 protected:
  static constexpr uint32_t kBlockSize = 4096;

  explicit KeyspaceTest(uint64_t limit = 64 << 20)
      : memory_(limit), keyspace_(KeyspaceOptions{kBlockSize}, &memory_, &clock_) {}

  Ino MakeFile(Ino parent, const std::string& name, mode_t mode = 0644) {
    auto entry = keyspace_.MakeNode(parent, name, S_IFREG | mode, 0, caller_);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    return entry.ok() ? entry->ino : 0;
  }
  Ino MakeDir(Ino parent, const std::string& name, mode_t mode = 0755) {
    auto entry = keyspace_.MakeDirectory(parent, name, mode, caller_);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    return entry.ok() ? entry->ino : 0;
  }
  void WriteString(Ino ino, uint64_t offset, const std::string& data) {
    auto written = keyspace_.Write(ino, offset, data, Keyspace::WriteAt::kOffset);
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    ASSERT_EQ(*written, data.size());
  }
  std::string ReadAll(Ino ino) {
    auto attr = keyspace_.GetAttr(ino);
    EXPECT_TRUE(attr.ok());
    return ReadRange(ino, 0, attr->st_size);
  }
  std::string ReadRange(Ino ino, uint64_t offset, size_t size) {
    auto slices = keyspace_.Read(ino, offset, size);
    EXPECT_TRUE(slices.ok()) << slices.status().ToString();
    std::string out;
    for (const auto& slice : *slices) {
      if (slice.block) {
        out.append(slice.block->data() + slice.offset, slice.length);
      } else {
        out.append(slice.length, '\0');
      }
    }
    return out;
  }
  int ErrnoOf(const Status& status) { return status.code(); }
  template <typename T>
  int ErrnoOf(const Result<T>& result) {
    return result.status().code();
  }
  Ino InoOf(Ino parent, const std::string& name) {
    const Inode* dir = keyspace_.FindInode(parent);
    return dir ? dir->dir().Find(name) : 0;
  }
  const Inode& InodeOf(Ino ino) { return *keyspace_.FindInode(ino); }

  ManualClock clock_;
  MemoryAccountant memory_;
  Keyspace keyspace_;
  Caller caller_{1000, 1000};
};

}  // namespace keyfs
