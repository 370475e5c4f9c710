// keyfs-ctl watch: the key figures of a mount, one line every SECONDS, in
// the manner of `redis-cli --stat` and vmstat: rates over the last interval
// (requests, reads, writes per second, cache hit ratio, evictions), levels
// now (memory in use and its limit, unsaved bytes, IO jobs, journal size).
// The header is printed again every 20 lines. Each line is flushed, so the
// output can be piped or logged.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "src/base/size.h"
#include "src/tools/ctl.h"

namespace keyfs::ctl {

namespace {

constexpr int kHeaderEvery = 20;

uint64_t Number(const std::string& info, const std::string& key) {
  return std::strtoull(Field(info, key).c_str(), nullptr, 10);
}

void PrintHeader() {
  std::printf("%s %s %s %s %s\n", "-------- requests --------", "--- cache ----",
              "------------ memory ------------", "- io -", "-- journal --");
  std::printf("%8s %8s %8s %6s %7s %10s %10s %10s %6s %13s\n", "ops/s", "reads/s", "writes/s",
              "hit%", "evict/s", "used", "max", "dirty", "jobs", "size");
}

// How much a counter grew; 0 when it went back (a remount resets them).
uint64_t Growth(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

// "1234" per second over `seconds`, or "-" on the first line.
std::string Rate(uint64_t now, uint64_t before, double seconds, bool first) {
  if (first) return "-";
  return std::to_string(static_cast<uint64_t>(Growth(now, before) / seconds + 0.5));
}

}  // namespace

int Watch(const std::string& mount, double seconds, long count) {
  std::string before;
  auto then = std::chrono::steady_clock::now();
  for (long line = 0; count == 0 || line < count; ++line) {
    if (line > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    std::string info;
    if (!Get(mount, "user.keyfs.info", &info)) return NotKeyfs(mount);
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - then).count();
    then = now;
    bool first = before.empty();
    auto rate = [&](const char* key) {
      return Rate(Number(info, key), first ? 0 : Number(before, key), elapsed, first);
    };
    std::string hits = "-";
    if (!first) {
      uint64_t hit = Growth(Number(info, "cache_hits"), Number(before, "cache_hits"));
      uint64_t miss = Growth(Number(info, "cache_misses"), Number(before, "cache_misses"));
      if (hit + miss > 0) hits = std::to_string(hit * 100 / (hit + miss));
    }
    uint64_t used = Number(info, "used_memory") - Number(info, "used_memory_pool");
    if (line % kHeaderEvery == 0) PrintHeader();
    std::printf("%8s %8s %8s %6s %7s %10s %10s %10s %6s %13s\n", rate("requests_total").c_str(),
                rate("reads_total").c_str(), rate("writes_total").c_str(), hits.c_str(),
                rate("evictions_total").c_str(), FormatSize(used).c_str(),
                FormatSize(Number(info, "max_memory")).c_str(),
                FormatSize(Number(info, "dirty_bytes")).c_str(),
                Field(info, "io_jobs_in_flight").c_str(),
                FormatSize(Number(info, "journal_size")).c_str());
    std::fflush(stdout);
    before = std::move(info);
  }
  return kOk;
}

}  // namespace keyfs::ctl
