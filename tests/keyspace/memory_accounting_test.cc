// Does the memory budget count what keyfs really holds? This binary replaces
// the global operator new/delete to measure the heap bytes that are live, and
// compares them with what the MemoryAccountant was told.
//
// The documented tolerance (README, "Memory"): the count is within
// kPerInodeTolerance bytes per inode of the real heap use (glibc malloc
// chunks), and within 1% for block bytes. What differs: hash-table bucket
// arrays and vector capacity grow in steps, while the accountant charges a
// smooth estimate.

#include <malloc.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "src/base/heap_size.h"
#include "tests/keyspace/keyspace_test_util.h"

namespace {
std::atomic<int64_t> g_live_heap_bytes{0};

// The bytes glibc's malloc takes for `p`: its chunk. malloc_usable_size() is
// the chunk less its header under glibc and the requested size under ASan;
// rounding either up the way glibc does gives the glibc chunk in both builds.
int64_t Footprint(void* p) {
  return static_cast<int64_t>(keyfs::HeapChunk(malloc_usable_size(p)));
}

void* CountedAlloc(size_t size) {
  void* p = std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  g_live_heap_bytes += Footprint(p);
  return p;
}
void CountedFree(void* p) {
  if (!p) return;
  g_live_heap_bytes -= Footprint(p);
  std::free(p);
}
}  // namespace

void* operator new(size_t size) { return CountedAlloc(size); }
void* operator new[](size_t size) { return CountedAlloc(size); }
void operator delete(void* p) noexcept { CountedFree(p); }
void operator delete[](void* p) noexcept { CountedFree(p); }
void operator delete(void* p, size_t) noexcept { CountedFree(p); }
void operator delete[](void* p, size_t) noexcept { CountedFree(p); }

namespace keyfs {
namespace {

constexpr int64_t kPerInodeTolerance = 32;

class MemoryAccountingTest : public KeyspaceTest {
 protected:
  MemoryAccountingTest() : KeyspaceTest(uint64_t{1} << 32) {}

  int64_t Heap() const { return g_live_heap_bytes.load(); }
  int64_t Counted() const { return static_cast<int64_t>(memory_.Used()); }
};

TEST_F(MemoryAccountingTest, SmallFilesAreCountedWithinTheDocumentedOverhead) {
  constexpr int kFiles = 20000;
  int64_t heap_before = Heap();
  int64_t counted_before = Counted();
  std::vector<Ino> dirs;
  for (int d = 0; d < 20; ++d) dirs.push_back(MakeDir(kRootIno, fmt::format("directory-{}", d)));
  for (int i = 0; i < kFiles; ++i) {
    // Short and long names (the long ones do not fit in std::string's buffer).
    std::string name = i % 3 ? fmt::format("f{}", i)
                             : fmt::format("a-rather-long-file-name-number-{}", i);
    Ino ino = MakeFile(dirs[i % dirs.size()], name);
    WriteString(ino, 0, std::string(100 + i % 50, 'x'));
    if (i % 10 == 0) {
      ASSERT_TRUE(keyspace_.SetXattr(ino, "user.tag", "value", XattrMap::SetMode::kAny).ok());
    }
    keyspace_.Release(ino);  // as close(2) would: trims append slack
  }
  int64_t heap = Heap() - heap_before;
  int64_t counted = Counted() - counted_before;
  int64_t inodes = kFiles + static_cast<int64_t>(dirs.size());
  std::printf("per inode: heap %lld bytes, counted %lld bytes\n",
              static_cast<long long>(heap / inodes), static_cast<long long>(counted / inodes));
  EXPECT_NEAR(static_cast<double>(counted), static_cast<double>(heap),
              static_cast<double>(inodes * kPerInodeTolerance))
      << "heap " << heap << " counted " << counted << " per inode: heap "
      << heap / inodes << " counted " << counted / inodes;
}

TEST_F(MemoryAccountingTest, LargeFilesAreCountedWithinOnePercent) {
  int64_t heap_before = Heap();
  int64_t counted_before = Counted();
  Ino ino = MakeFile(kRootIno, "large");
  std::string chunk(128 * 1024, 'y');
  for (uint64_t i = 0; i < 160; ++i) WriteString(ino, i * chunk.size(), chunk);  // 20 MiB
  int64_t heap = Heap() - heap_before;
  int64_t counted = Counted() - counted_before;
  EXPECT_NEAR(static_cast<double>(counted), static_cast<double>(heap), heap * 0.01)
      << "heap " << heap << " counted " << counted;
}

TEST_F(MemoryAccountingTest, EverythingIsGivenBackWhenFilesGo) {
  int64_t counted_before = Counted();
  int64_t heap_before = Heap();
  for (int i = 0; i < 1000; ++i) {
    std::string name = "file-with-a-long-enough-name-" + std::to_string(i);
    Ino ino = MakeFile(kRootIno, name);
    WriteString(ino, 0, std::string(5000, 'z'));
    ASSERT_TRUE(keyspace_.SetXattr(ino, "user.k", std::string(100, 'v'),
                                   XattrMap::SetMode::kAny).ok());
    ASSERT_TRUE(keyspace_.Unlink(kRootIno, name).ok());
    keyspace_.Forget(ino, 1);
  }
  // The inode table keeps its grown slot array (counted); nothing else may stay.
  EXPECT_GE(Counted(), counted_before);
  EXPECT_LT(Counted() - counted_before, 1024);
  EXPECT_LT(Heap() - heap_before, 64 * 1024);
}

TEST_F(MemoryAccountingTest, CopyOnWriteCopiesStayCountedUntilTheReaderLetsGo) {
  Ino ino = MakeFile(kRootIno, "f");
  WriteString(ino, 0, std::string(kBlockSize, 'a'));
  int64_t before = Counted();
  auto slices = keyspace_.Read(ino, 0, kBlockSize);  // a pending reply holds block 0
  WriteString(ino, 0, "b");                          // so this copies it
  EXPECT_GE(Counted() - before, static_cast<int64_t>(kBlockSize));
  slices = Status::Errno(EIO);  // the reply was sent: the old block is freed
  EXPECT_LT(Counted() - before, 64);
}

}  // namespace
}  // namespace keyfs
