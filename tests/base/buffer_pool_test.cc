// The pool of freed block buffers: reuse, the budget it is part of, and its
// bound.

#include "src/base/buffer_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"
#include "tests/base/wait_for.h"

namespace keyfs {
namespace {

constexpr size_t kBlock = 256 << 10;

TEST(BufferPoolTest, AFreedBlockBufferIsTheNextOnesMemory) {
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(2 << 20);
  const void* first;
  {
    auto buffer = BlockBuffer::Create(&memory, kBlock, kBlock);
    first = buffer.get();
  }
  EXPECT_EQ(memory.Used(MemoryComponent::kBlocks), 0u);
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), BlockBuffer::ChargeFor(kBlock));
  // Idle pooled memory is resident (Used) but free for the budget.
  EXPECT_EQ(memory.Used(), BlockBuffer::ChargeFor(kBlock));
  EXPECT_EQ(memory.InUse(), 0u);
  EXPECT_EQ(memory.Available(), memory.limit());
  auto again = BlockBuffer::CreateForFill(&memory, kBlock);
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), 0u);
  EXPECT_EQ(memory.Used(MemoryComponent::kBlocks), BlockBuffer::ChargeFor(kBlock));
  // Create still zeroes what it hands out, reused or not.
  again = nullptr;
  auto zeroed = BlockBuffer::Create(&memory, kBlock, kBlock);
  for (size_t i = 0; i < kBlock; i += 4096) ASSERT_EQ(zeroed->data()[i], 0) << i;
}

TEST(BufferPoolTest, ItHoldsAtMostItsBoundAndNoSmallBuffers) {
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(1 << 20);  // room for three 256 KiB buffers
  {
    std::vector<RefPtr<BlockBuffer>> buffers;
    for (int i = 0; i < 10; ++i) buffers.push_back(BlockBuffer::Create(&memory, kBlock, 0));
    buffers.push_back(BlockBuffer::Create(&memory, 4096, 0));
  }
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), 3 * BlockBuffer::ChargeFor(kBlock));
  EXPECT_EQ(memory.buffer_pool()->idle_bytes(), memory.Used(MemoryComponent::kPool));
  EXPECT_EQ(memory.Used(MemoryComponent::kBlocks), 0u);
}

TEST(BufferPoolTest, AnAllocationItCannotServeFreesIdleBuffersToStayInTheBudget) {
  const uint64_t limit = 4 * BlockBuffer::ChargeFor(kBlock);
  MemoryAccountant memory(limit);
  memory.EnableBufferPool(limit);
  {
    std::vector<RefPtr<BlockBuffer>> buffers;
    for (int i = 0; i < 4; ++i) buffers.push_back(BlockBuffer::Create(&memory, kBlock, 0));
  }
  EXPECT_EQ(memory.Used(), limit);  // all four idle in the pool
  // Another size: not served by the pool, so idle ones are freed for it.
  auto other = BlockBuffer::Create(&memory, 2 * kBlock, 0);
  EXPECT_LE(memory.Used(), limit);
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), 2 * BlockBuffer::ChargeFor(kBlock));
}

TEST(BufferPoolTest, BuffersComeAndGoFromManyThreads) {
  MemoryAccountant memory(256 << 20);
  memory.EnableBufferPool(4 << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&memory, t] {
      for (int i = 0; i < 500; ++i) {
        auto buffer = BlockBuffer::CreateForFill(&memory, kBlock);
        buffer->mutable_data()[i % kBlock] = static_cast<char>(t);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(memory.Used(MemoryComponent::kBlocks), 0u);
  EXPECT_EQ(memory.Used(), memory.Used(MemoryComponent::kPool));
  EXPECT_LE(memory.Used(), uint64_t{4} << 20);
}

// Whether every page wholly inside [data, data + length) is resident.
bool Resident(const char* data, size_t length) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) & ~(page - 1);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + length) & ~(page - 1);
  std::vector<unsigned char> pages((end - begin) / page);
  if (mincore(reinterpret_cast<void*>(begin), end - begin, pages.data()) != 0) return false;
  for (unsigned char p : pages) {
    if (!(p & 1)) return false;
  }
  return true;
}

TEST(BufferPoolTest, AfterTheFirstMissBuffersAreMadeAheadAlreadyFaultedIn) {
  const size_t request = BlockBuffer::RequestFor(kBlock);
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(8 << 20);
  BufferPool* pool = memory.buffer_pool();
  pool->KeepReady(request, 3);
  EXPECT_EQ(pool->prefaulted_total(), 0u);  // nothing before the first use
  auto first = BlockBuffer::CreateForFill(&memory, kBlock);  // the miss
  ASSERT_TRUE(WaitFor([&] { return pool->idle_bytes() == 3 * HeapChunk(request); }));
  EXPECT_EQ(pool->prefaulted_total(), 3u);
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), 3 * HeapChunk(request));
  EXPECT_EQ(memory.InUse(), BlockBuffer::ChargeFor(kBlock));
  // The next buffers are resident before anyone writes them, and taking
  // them has the thread make more.
  std::vector<RefPtr<BlockBuffer>> taken;
  for (int i = 0; i < 3; ++i) {
    taken.push_back(BlockBuffer::CreateForFill(&memory, kBlock));
    EXPECT_TRUE(Resident(taken.back()->data(), kBlock)) << i;
  }
  // Back to three idle (six made in all); a buffer of another size is not
  // made ahead.
  ASSERT_TRUE(WaitFor([&] { return pool->prefaulted_total() == 6; }));
  ASSERT_TRUE(WaitFor([&] { return pool->idle_bytes() == 3 * HeapChunk(request); }));
  auto other = BlockBuffer::CreateForFill(&memory, 2 * kBlock);
  auto other_freed = BlockBuffer::CreateForFill(&memory, 2 * kBlock);
  other_freed = nullptr;  // to the pool: idle, but not a size kept ready
  auto reuse = BlockBuffer::CreateForFill(&memory, 2 * kBlock);
  EXPECT_EQ(pool->idle_bytes(), 3 * HeapChunk(request));
  EXPECT_EQ(pool->prefaulted_total(), 6u);
}

TEST(BufferPoolTest, BuffersAreMadeAheadOnlyWhileTheBudgetHasRoom) {
  const size_t request = BlockBuffer::RequestFor(kBlock);
  const uint64_t limit = 3 * HeapChunk(request);
  MemoryAccountant memory(limit);
  memory.EnableBufferPool(limit);
  BufferPool* pool = memory.buffer_pool();
  pool->KeepReady(request, 8);
  auto held = BlockBuffer::CreateForFill(&memory, kBlock);
  // Room for two beside the one held, though eight are asked for. (The
  // thread may make a third before `held` is charged: that allocation then
  // frees one idle buffer to stay within the limit.)
  ASSERT_TRUE(WaitFor([&] { return pool->idle_bytes() == 2 * HeapChunk(request); }));
  EXPECT_EQ(memory.Used(), limit);
  std::vector<RefPtr<BlockBuffer>> taken;
  for (int i = 0; i < 2; ++i) taken.push_back(BlockBuffer::CreateForFill(&memory, kBlock));
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), 0u);
  EXPECT_EQ(memory.Used(), limit);
  // Freed buffers come back to the pool; taking one again leaves room for one
  // more to be made ahead.
  taken.clear();
  EXPECT_EQ(memory.Used(), limit);
  auto again = BlockBuffer::CreateForFill(&memory, kBlock);
  EXPECT_EQ(memory.Used(), limit);
  EXPECT_EQ(pool->idle_bytes(), HeapChunk(request));
}

TEST(BufferPoolTest, ThePoolStopsItsThreadWhileItWorks) {
  // Destroyed while its thread may be faulting a buffer in: the thread is
  // joined and the buffer freed (ASan would see a leak, TSan a race).
  for (int round = 0; round < 20; ++round) {
    MemoryAccountant memory(64 << 20);
    memory.EnableBufferPool(16 << 20);
    memory.buffer_pool()->KeepReady(BlockBuffer::RequestFor(kBlock), 32);
    auto miss = BlockBuffer::CreateForFill(&memory, kBlock);
  }
}

}  // namespace
}  // namespace keyfs
