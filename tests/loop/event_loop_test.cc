#include "src/loop/event_loop.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "src/loop/reply_queue.h"

namespace keyfs {
namespace {

std::unique_ptr<EventLoop> NewLoop() {
  auto loop = EventLoop::Create();
  EXPECT_TRUE(loop.ok()) << loop.status().ToString();
  return std::move(loop).value();
}

TEST(EventLoopTest, PostFromAnotherThreadRunsOnTheLoopThread) {
  auto loop = NewLoop();
  std::thread::id loop_thread = std::this_thread::get_id();
  std::atomic<int> ran{0};
  std::thread::id seen;
  std::thread helper([&] {
    for (int i = 0; i < 100; ++i) {
      loop->Post([&, i] {
        seen = std::this_thread::get_id();
        if (++ran == 100) loop->Stop();
        (void)i;
      });
    }
  });
  ASSERT_TRUE(loop->Run().ok());
  helper.join();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_EQ(seen, loop_thread);
}

TEST(EventLoopTest, ReadableFdCallsBackUntilUnwatched) {
  auto loop = NewLoop();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string received;
  ASSERT_TRUE(loop->WatchReadable(fds[0], [&] {
    char buf[16];
    ssize_t n = read(fds[0], buf, sizeof(buf));
    received.append(buf, n > 0 ? n : 0);
    if (received == "ping") {
      loop->Unwatch(fds[0]);
      loop->Stop();
    }
  }).ok());
  ASSERT_EQ(write(fds[1], "ping", 4), 4);
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(received, "ping");
  close(fds[0]);
  close(fds[1]);
}

TEST(EventLoopTest, TimerTicksRepeatedly) {
  auto loop = NewLoop();
  int ticks = 0;
  ASSERT_TRUE(loop->AddTimer(std::chrono::milliseconds(1), [&] {
    if (++ticks == 3) loop->Stop();
  }).ok());
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(ticks, 3);
}

TEST(EventLoopTest, SignalsArriveThroughTheLoop) {
  sigset_t mask, old;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &mask, &old), 0);
  auto loop = NewLoop();
  int got = 0;
  ASSERT_TRUE(loop->WatchSignals({SIGUSR1}, [&](int signo) {
    got = signo;
    loop->Stop();
  }).ok());
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(got, SIGUSR1);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

TEST(EventLoopTest, BeforeSleepRunsEachIterationAndOnceMoreAtTheEnd) {
  auto loop = NewLoop();
  std::vector<std::string> order;
  loop->AddBeforeSleep([&] { order.push_back("journal"); });
  loop->AddBeforeSleep([&] { order.push_back("replies"); });
  loop->Post([&] {
    order.push_back("request");
    loop->Stop();
  });
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(order, (std::vector<std::string>{"journal", "replies", "request", "journal",
                                             "replies"}));
}

TEST(ReplyQueueTest, RepliesWaitForFlushAndGoOutInOrder) {
  MemoryAccountant memory(1 << 20);
  ReplyQueue replies(&memory);
  std::vector<int> sent;
  for (int i = 0; i < 5; ++i) replies.Defer([&, i] { sent.push_back(i); });
  EXPECT_TRUE(sent.empty());
  EXPECT_EQ(replies.pending(), 5u);
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), 5 * ReplyQueue::kReplyCost);
  replies.Flush();
  EXPECT_EQ(sent, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(memory.Used(MemoryComponent::kRequests), 0u);
  EXPECT_EQ(replies.sent(), 5u);
}

TEST(ReplyQueueTest, RepliesQueuedWhileFlushingAreSentToo) {
  MemoryAccountant memory(1 << 20);
  ReplyQueue replies(&memory);
  int sent = 0;
  replies.Defer([&] {
    ++sent;
    replies.Defer([&] { ++sent; });
  });
  replies.Flush();
  EXPECT_EQ(sent, 2);
  EXPECT_EQ(replies.pending(), 0u);
}

}  // namespace
}  // namespace keyfs
