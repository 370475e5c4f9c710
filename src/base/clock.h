#pragma once

// Time is injected: file timestamps, TTLs, delayed saves and cron all read a
// Clock, so tests drive time with ManualClock instead of sleeping.

#include <ctime>
#include <cstdint>

namespace keyfs {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, for file timestamps (CLOCK_REALTIME).
  virtual timespec Now() const = 0;
  // Monotonic nanoseconds, for intervals and deadlines (CLOCK_MONOTONIC).
  virtual int64_t MonotonicNanos() const = 0;
};

// Wall-clock time as Unix milliseconds (files' lifetimes, as Redis keeps them).
inline int64_t UnixMillis(const Clock& clock) {
  timespec now = clock.Now();
  return int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1'000'000;
}

class SystemClock final : public Clock {
 public:
  timespec Now() const override {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
  }
  int64_t MonotonicNanos() const override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }
  static SystemClock* Default();
};

// A clock that only moves when told to. Not thread-safe: tests drive it from
// the thread that owns the code under test.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(timespec start = {1'700'000'000, 0}) : now_(start) {}
  timespec Now() const override { return now_; }
  int64_t MonotonicNanos() const override {
    return int64_t{now_.tv_sec} * 1'000'000'000 + now_.tv_nsec;
  }
  void Set(timespec now) { now_ = now; }
  void AdvanceNanos(int64_t nanos) {
    int64_t total = MonotonicNanos() + nanos;
    now_.tv_sec = total / 1'000'000'000;
    now_.tv_nsec = total % 1'000'000'000;
  }

 private:
  timespec now_;
};

}  // namespace keyfs
