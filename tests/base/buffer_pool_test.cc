// The pool of freed block buffers: reuse, the budget it is part of, and its
// bound.

#include "src/base/buffer_pool.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"

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

}  // namespace
}  // namespace keyfs
