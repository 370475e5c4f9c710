// A parked request's payload: Keep() copies it out of the receive buffer
// that the next request overwrites, a large one into the pool's memory.

#include "fuse/fuse_request.h"

#include <string>

#include <gtest/gtest.h>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"
#include "tests/base/wait_for.h"

namespace keyfs {
namespace {

// Runs a request whose work records the payload it was given, and where.
struct Recorder {
  std::string seen;
  const char* where = nullptr;
  FuseRequest::Work Work() {
    return [this](std::string_view payload) {
      seen.assign(payload);
      where = payload.data();
      return Status::Ok();
    };
  }
};

FuseRequest::Refuse NoRefusal() {
  return [](fuse_req_t, int) { ADD_FAILURE() << "refused"; };
}


constexpr size_t kPayload = 512 << 10;

TEST(FuseRequestTest, AKeptPayloadOfASizeKeptReadySurvivesTheReceiveBufferInPoolMemory) {
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(8 << 20);
  BufferPool* pool = memory.buffer_pool();
  pool->KeepReady(kPayload, 1);
  std::string receive(kPayload, 'a');
  receive[7] = 'b';
  const std::string original = receive;
  Recorder recorder;
  const char* first_copy;
  {
    FuseRequest request(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
    request.Keep();  // the first miss: the pool's thread makes one ahead
    request.Keep();  // a second park copies nothing again
    EXPECT_EQ(memory.Used(MemoryComponent::kRequests), HeapChunk(kPayload));
    EXPECT_EQ(request.held_bytes(), std::string().capacity());  // the cache charges no copy
    receive.assign(kPayload, 'x');  // the next request arrives
    ASSERT_TRUE(request.Run().ok());
    EXPECT_EQ(recorder.seen, original);
    first_copy = recorder.where;
    EXPECT_NE(first_copy, receive.data());
    ASSERT_TRUE(WaitFor([&] { return pool->idle_bytes() == HeapChunk(kPayload); }));
  }
  // Its memory went back to the pool, charge and all, and is the next copy's.
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), 0u);
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), 2 * HeapChunk(kPayload));
  receive.assign(kPayload, 'y');
  FuseRequest next(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
  next.Keep();
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), HeapChunk(kPayload));
  receive.assign(kPayload, 'z');
  ASSERT_TRUE(next.Run().ok());
  EXPECT_EQ(recorder.seen, std::string(kPayload, 'y'));
  EXPECT_EQ(recorder.where, first_copy);
}

TEST(FuseRequestTest, OtherPayloadsAreKeptInAStringTheCacheCharges) {
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(8 << 20);
  memory.buffer_pool()->KeepReady(kPayload, 1);
  for (size_t size : {size_t{5}, kPayload - 4096}) {  // small; large, not a size kept ready
    std::string receive(size, 'h');
    Recorder recorder;
    {
      FuseRequest request(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
      request.Keep();
      receive.assign(size, 'w');
      ASSERT_TRUE(request.Run().ok());
      EXPECT_EQ(recorder.seen, std::string(size, 'h')) << size;
      EXPECT_GE(request.held_bytes(), size);
      EXPECT_EQ(memory.Used(MemoryComponent::kRequests), 0u) << size;
    }
    EXPECT_EQ(memory.buffer_pool()->idle_bytes(), 0u) << size;
  }
}

TEST(FuseRequestTest, WithoutAPoolALargePayloadIsKeptInAString) {
  MemoryAccountant memory(64 << 20);  // no buffer pool
  std::string receive(kPayload, 'p');
  Recorder recorder;
  FuseRequest request(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
  request.Keep();
  receive.assign(kPayload, 'q');
  ASSERT_TRUE(request.Run().ok());
  EXPECT_EQ(recorder.seen, std::string(kPayload, 'p'));
  EXPECT_GE(request.held_bytes(), kPayload);
}

// A whole-block write parked while its blocks are stored: the blocks hold
// its payload, so it keeps only the length, and the bytes it is given back
// if the store fails.
TEST(FuseRequestTest, APayloadItsBlocksHoldIsKeptByLengthAndGivenBack) {
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(8 << 20);
  memory.buffer_pool()->KeepReady(kPayload, 1);
  std::string receive(kPayload, 'c');
  size_t seen_size = 0;
  const char* seen_where = nullptr;
  FuseRequest request(
      nullptr, 1, receive,
      [&](std::string_view payload) {
        seen_size = payload.size();
        seen_where = payload.data();
        return Status::Ok();
      },
      NoRefusal(), &memory);
  ASSERT_TRUE(request.KeepCopied(kPayload));
  EXPECT_FALSE(request.KeepCopied(kPayload)) << "kept once";
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), 0u) << "no copy in pool memory";
  EXPECT_EQ(request.held_bytes(), std::string().capacity()) << "nor in a string";
  receive.assign(kPayload, 'x');
  ASSERT_TRUE(request.Run().ok());
  EXPECT_EQ(seen_size, kPayload);
  EXPECT_EQ(seen_where, UnreadableBytes(kPayload)) << "its bytes are not the receive buffer's";
  // The store failed: the write runs with the bytes its blocks give back.
  Recorder recorder;
  FuseRequest restored(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
  ASSERT_TRUE(restored.KeepCopied(kPayload));
  restored.RestorePayload(std::string(kPayload, 'c'));
  ASSERT_TRUE(restored.Run().ok());
  EXPECT_EQ(recorder.seen, std::string(kPayload, 'c'));
  EXPECT_GE(restored.held_bytes(), kPayload);
}

TEST(FuseRequestTest, ThePayloadKeptByLengthCannotBeRead) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const char* unreadable = UnreadableBytes(1 << 20);
  ASSERT_NE(unreadable, nullptr);
  EXPECT_DEATH({ [[maybe_unused]] volatile char byte = unreadable[4096]; }, "");
}

// Blocks that hold only part of the payload (a write cut at the largest
// file size) do not stand for it: the request copies it as Keep() does.
TEST(FuseRequestTest, APayloadItsBlocksHoldOnlyInPartIsCopied) {
  MemoryAccountant memory(64 << 20);
  std::string receive(kPayload, 'k');
  Recorder recorder;
  FuseRequest request(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
  EXPECT_FALSE(request.KeepCopied(kPayload - 4096));
  receive.assign(kPayload, 'x');
  ASSERT_TRUE(request.Run().ok());
  EXPECT_EQ(recorder.seen, std::string(kPayload, 'k'));
}

}  // namespace
}  // namespace keyfs
