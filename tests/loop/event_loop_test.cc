#include "src/loop/event_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "src/loop/reply_queue.h"

namespace keyfs {
namespace {

// Every loop test runs twice: with the loop's io_uring (the default) and
// with epoll (io_uring=no, or a kernel without it).
class EventLoopTest : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<EventLoop> NewLoop(int64_t busy_poll_ns = 0) {
    auto loop = EventLoop::Create(EventLoopOptions{GetParam(), busy_poll_ns});
    EXPECT_TRUE(loop.ok()) << loop.status().ToString();
    // The ring is what keyfs uses by default: it must be what is tested here.
    EXPECT_EQ((*loop)->uses_io_uring(), GetParam()) << "io_uring unavailable on this machine?";
    return std::move(loop).value();
  }
};

INSTANTIATE_TEST_SUITE_P(Waits, EventLoopTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "io_uring" : "epoll"; });

// A pipe whose read end is non-blocking (what WatchReads wants), with room
// for `capacity` bytes.
struct Pipe {
  explicit Pipe(int capacity = 0) {
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    if (capacity > 0) {
      EXPECT_GE(fcntl(fds[1], F_SETPIPE_SZ, capacity), capacity);
    }
  }
  ~Pipe() {
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
  }
  std::string Drain() {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, n);
    return out;
  }
  int fds[2] = {-1, -1};
};

TEST_P(EventLoopTest, PostFromAnotherThreadRunsOnTheLoopThread) {
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

TEST_P(EventLoopTest, ReadableFdCallsBackUntilUnwatched) {
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

TEST_P(EventLoopTest, TimerTicksRepeatedly) {
  auto loop = NewLoop();
  int ticks = 0;
  ASSERT_TRUE(loop->AddTimer(std::chrono::milliseconds(1), [&] {
    if (++ticks == 3) loop->Stop();
  }).ok());
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(ticks, 3);
}

TEST_P(EventLoopTest, SignalsArriveThroughTheLoop) {
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

TEST_P(EventLoopTest, BeforeSleepRunsEachIterationAndOnceMoreAtTheEnd) {
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

TEST_P(EventLoopTest, WatchReadsHandsOverEachReadUntilToldToStop) {
  auto loop = NewLoop();
  Pipe pipe;
  std::vector<char> buffer(64);
  std::vector<std::string> reads;
  ASSERT_TRUE(loop->WatchReads(pipe.fds[0], buffer, [&](ssize_t n) {
    EXPECT_GT(n, 0);
    reads.emplace_back(buffer.data(), n > 0 ? n : 0);
    if (reads.size() < 3) {
      // The next message is written only now: each read is its own wake-up.
      std::string next = "message " + std::to_string(reads.size());
      EXPECT_EQ(write(pipe.fds[1], next.data(), next.size()), static_cast<ssize_t>(next.size()));
      return true;
    }
    loop->Stop();
    return false;
  }).ok());
  ASSERT_EQ(write(pipe.fds[1], "message 0", 9), 9);
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(reads, (std::vector<std::string>{"message 0", "message 1", "message 2"}));
}

TEST_P(EventLoopTest, WatchReadsReportsTheEndOfTheFile) {
  auto loop = NewLoop();
  Pipe pipe;
  std::vector<char> buffer(64);
  std::vector<ssize_t> results;
  ASSERT_TRUE(loop->WatchReads(pipe.fds[0], buffer, [&](ssize_t n) {
    results.push_back(n);
    if (n == 0) loop->Stop();
    return n > 0;
  }).ok());
  ASSERT_EQ(write(pipe.fds[1], "last", 4), 4);
  close(pipe.fds[1]);
  pipe.fds[1] = -1;
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(results, (std::vector<ssize_t>{4, 0}));
}

// Run() returns only when the kernel can no longer write into a source's
// buffer: the armed read is cancelled, not left to take data later.
TEST_P(EventLoopTest, AnArmedReadEndsWithTheLoopAndTakesNothingAfterIt) {
  auto loop = NewLoop();
  Pipe pipe;
  std::vector<char> buffer(16, 'x');
  int calls = 0;
  ASSERT_TRUE(loop->WatchReads(pipe.fds[0], buffer, [&](ssize_t) {
    ++calls;
    return true;
  }).ok());
  loop->Post([&] { loop->Stop(); });
  ASSERT_TRUE(loop->Run().ok());
  ASSERT_EQ(write(pipe.fds[1], "after", 5), 5);
  EXPECT_EQ(pipe.Drain(), "after");  // still in the pipe: no read was left armed
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(std::string(buffer.data(), buffer.size()), std::string(16, 'x'));
}

TEST_P(EventLoopTest, UnwatchEndsAReadSourceAndLeavesItsDataUnread) {
  auto loop = NewLoop();
  Pipe pipe;
  std::vector<char> buffer(16);
  int calls = 0;
  ASSERT_TRUE(loop->WatchReads(pipe.fds[0], buffer, [&](ssize_t) { return ++calls, true; }).ok());
  loop->Post([&] {
    loop->Unwatch(pipe.fds[0]);
    EXPECT_EQ(write(pipe.fds[1], "ignored", 7), 7);
    // Stop only after the loop had a chance to (wrongly) read it.
    EXPECT_TRUE(loop->AddTimer(std::chrono::milliseconds(20), [&] { loop->Stop(); }).ok());
  });
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(pipe.Drain(), "ignored");
}

// A request answered through the ring costs one pass of the loop: the
// completion of its reply's write is not a wake-up of its own.
TEST_P(EventLoopTest, AReplysCompletionIsNotAPassOfTheLoop) {
  auto loop = NewLoop();
  Pipe requests, replies;
  std::vector<char> buffer(16);
  constexpr int kRounds = 200;
  int answered = 0;
  ASSERT_TRUE(loop->WatchReads(requests.fds[0], buffer, [&](ssize_t n) {
    iovec iov{buffer.data(), static_cast<size_t>(n)};
    EXPECT_EQ(loop->Writev(replies.fds[1], &iov, 1), n);
    if (++answered == kRounds) loop->Stop();
    return true;
  }).ok());
  fcntl(replies.fds[0], F_SETFL, 0);  // the client blocks for each reply
  std::thread client([&] {
    for (int i = 0; i < kRounds; ++i) {
      char c = static_cast<char>('a' + i % 26), got = 0;
      EXPECT_EQ(write(requests.fds[1], &c, 1), 1);
      if (i + 1 < kRounds) {
        EXPECT_EQ(read(replies.fds[0], &got, 1), 1);
        EXPECT_EQ(got, c);
      }
    }
  });
  ASSERT_TRUE(loop->Run().ok());
  client.join();
  EXPECT_EQ(answered, kRounds);
  EXPECT_LE(loop->iterations(), static_cast<uint64_t>(kRounds) + 5);
}

// Writes made while the loop runs go out in the order made, whether they
// were queued in the ring (small) or written at once (large), and none is
// sent before the wait that follows the hooks.
TEST_P(EventLoopTest, WritesGoOutInTheOrderMadeSmallAndLarge) {
  auto loop = NewLoop();
  Pipe pipe(1 << 20);
  std::string large(EventLoop::kMaxQueuedWrite + 1000, 'L');
  std::string expected;
  loop->Post([&] {
    for (int i = 0; i < 300; ++i) {  // more than the ring's entries: it submits early
      std::string small = "<" + std::to_string(i) + ">";
      iovec iov[2] = {{small.data(), 1}, {small.data() + 1, small.size() - 1}};
      EXPECT_EQ(loop->Writev(pipe.fds[1], iov, 2), static_cast<ssize_t>(small.size()));
      expected += small;
      if (i == 150) {
        iovec big{large.data(), large.size()};
        EXPECT_EQ(loop->Writev(pipe.fds[1], &big, 1), static_cast<ssize_t>(large.size()));
        expected += large;
      }
    }
    loop->Stop();
  });
  ASSERT_TRUE(loop->Run().ok());
  EXPECT_EQ(pipe.Drain(), expected);
}

TEST_P(EventLoopTest, AWriteThatFailsIsReported) {
  signal(SIGPIPE, SIG_IGN);
  auto loop = NewLoop();
  Pipe pipe;
  close(pipe.fds[0]);
  pipe.fds[0] = -1;
  std::vector<std::pair<int, int>> failures;
  std::vector<int> own_failures;
  loop->set_write_error_handler([&](int fd, int error) { failures.emplace_back(fd, error); });
  ssize_t returned = 0, returned_own = 0;
  int returned_errno = 0;
  loop->Post([&] {
    iovec iov{const_cast<char*>("lost"), 4};
    returned = loop->Writev(pipe.fds[1], &iov, 1);
    returned_errno = errno;
    // With its own failure action, which replaces the handler.
    returned_own = loop->Writev(pipe.fds[1], &iov, 1, [&](int error) {
      own_failures.push_back(error);
    });
    loop->Stop();
  });
  ASSERT_TRUE(loop->Run().ok());
  if (GetParam()) {  // queued: the failure comes with its completion
    EXPECT_EQ(returned, 4);
    EXPECT_EQ(returned_own, 4);
    EXPECT_EQ(failures, (std::vector<std::pair<int, int>>{{pipe.fds[1], EPIPE}}));
    EXPECT_EQ(own_failures, std::vector<int>{EPIPE});
  } else {  // written at once: the caller sees it, and nothing else is called
    EXPECT_EQ(returned, -1);
    EXPECT_EQ(returned_errno, EPIPE);
    EXPECT_EQ(returned_own, -1);
    EXPECT_TRUE(failures.empty());
    EXPECT_TRUE(own_failures.empty());
  }
}

TEST_P(EventLoopTest, WritesOutsideRunAreWrittenAtOnce) {
  auto loop = NewLoop();
  Pipe pipe;
  iovec iov{const_cast<char*>("now"), 3};
  EXPECT_EQ(loop->Writev(pipe.fds[1], &iov, 1), 3);
  EXPECT_EQ(pipe.Drain(), "now");
}

// With busy polling the loop spins between completions that come close
// together; what it delivers must not change: each message once, in order,
// with posted tasks and timers still run.
TEST_P(EventLoopTest, BusyPollingDeliversTheSameAsSleeping) {
  auto loop = NewLoop(/*busy_poll_ns=*/200'000);
  Pipe pipe;
  std::vector<char> buffer(64);
  std::string received;
  int ticks = 0;
  std::atomic<bool> done{false};
  ASSERT_TRUE(loop->WatchReads(pipe.fds[0], buffer, [&](ssize_t n) {
    received.append(buffer.data(), n > 0 ? n : 0);
    return true;
  }).ok());
  ASSERT_TRUE(loop->AddTimer(std::chrono::milliseconds(1), [&] {
    ++ticks;
    if (done && ticks > 2) loop->Stop();
  }).ok());
  std::string expected;
  for (int i = 0; i < 200; ++i) expected += "m" + std::to_string(i) + ";";
  std::thread writer([&] {
    for (int i = 0; i < 200; ++i) {
      std::string message = "m" + std::to_string(i) + ";";
      EXPECT_EQ(write(pipe.fds[1], message.data(), message.size()),
                static_cast<ssize_t>(message.size()));
      if (i % 20 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    loop->Post([&] { done = true; });
  });
  ASSERT_TRUE(loop->Run().ok());
  writer.join();
  received += pipe.Drain();  // what came after the last read, if any
  EXPECT_EQ(received, expected);
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
