// A parked request's payload: Keep() copies it out of the receive buffer
// that the next request overwrites, a large one into the pool's memory.

#include "fuse/fuse_request.h"

#include <string>

#include <gtest/gtest.h>

#include "src/base/block_buffer.h"
#include "src/base/memory_accountant.h"

namespace keyfs {
namespace {

// Runs a request whose work records the payload it was given.
struct Recorder {
  std::string seen;
  FuseRequest::Work Work() {
    return [this](std::string_view payload) {
      seen.assign(payload);
      return Status::Ok();
    };
  }
};

FuseRequest::Refuse NoRefusal() {
  return [](fuse_req_t, int) { ADD_FAILURE() << "refused"; };
}

TEST(FuseRequestTest, AKeptLargePayloadSurvivesTheReceiveBufferAndGoesBackToThePool) {
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(8 << 20);
  BufferPool* pool = memory.buffer_pool();
  const size_t size = 512 << 10;
  std::string receive(size, 'a');
  receive[7] = 'b';
  const std::string original = receive;
  Recorder recorder;
  {
    FuseRequest request(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
    request.Keep();
    request.Keep();  // a second park copies nothing again
    EXPECT_EQ(memory.Used(MemoryComponent::kRequests), HeapChunk(size));
    receive.assign(size, 'x');  // the next request arrives
    ASSERT_TRUE(request.Run().ok());
    EXPECT_EQ(recorder.seen, original);
  }
  // Its memory is the pool's now, for the next payload of that size.
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), 0u);
  EXPECT_EQ(pool->idle_bytes(), HeapChunk(size));
  EXPECT_EQ(memory.Used(MemoryComponent::kPool), HeapChunk(size));
  receive.assign(size, 'y');
  FuseRequest next(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
  next.Keep();
  EXPECT_EQ(pool->idle_bytes(), 0u);
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), HeapChunk(size));
  receive.assign(size, 'z');
  ASSERT_TRUE(next.Run().ok());
  EXPECT_EQ(recorder.seen, std::string(size, 'y'));
}

TEST(FuseRequestTest, ASmallPayloadIsKeptInAString) {
  MemoryAccountant memory(64 << 20);
  memory.EnableBufferPool(8 << 20);
  std::string receive = "hello";
  Recorder recorder;
  FuseRequest request(nullptr, 1, receive, recorder.Work(), NoRefusal(), &memory);
  request.Keep();
  receive = "world";
  ASSERT_TRUE(request.Run().ok());
  EXPECT_EQ(recorder.seen, "hello");
  EXPECT_LT(request.held_bytes(), BufferPool::kMinBytes);
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), 0u);  // the cache charges it
  EXPECT_EQ(memory.buffer_pool()->idle_bytes(), 0u);
}

}  // namespace
}  // namespace keyfs
