// fs_bench: one filesystem workload, timed from inside the process (no
// process start, no shell), on any directory: a keyfs mount or one of the
// peers scripts/bench compares it with. Prints one number on stdout; an error
// is a line on stderr and exit status 1.
//
//   fs_bench seqwrite FILE MIB [random]   MiB/s: MIB writes of 1 MiB, fsync, close;
//                                         the bytes repeat every 256 (compress
//                                         well) or, with "random", do not
//   fs_bench seqread FILE cached|uncached MiB/s: read the file in 1 MiB reads
//   fs_bench randread FILE cached|uncached COUNT
//                                         reads/s: COUNT 4 KiB preads at random
//                                         4 KiB-aligned offsets (fixed seed)
//   fs_bench create DIR N                 files/s: create + write 4 KiB + close
//   fs_bench stat DIR N once|repeat       stats/s over f00000..f<N-1>
//   fs_bench read DIR N                   files/s: open + read + close
//   fs_bench readdir DIR                  entries/s: whole listings, repeated
//   fs_bench unlink DIR N                 unlinks/s
//   fs_bench latency FILE COUNT           "p50 p99" in microseconds of COUNT
//                                         4 KiB preads at random offsets of a
//                                         file read once first, each page
//                                         dropped from the kernel's cache
//                                         before it is read, so that the
//                                         filesystem itself answers
//
// "uncached" drops the file's pages with posix_fadvise(POSIX_FADV_DONTNEED)
// first (only this file, not the machine's caches); "cached" reads the whole
// file once before timing. "repeat" and readdir loop over the set until at
// least half a second has passed, so fast targets are timed over enough
// operations; "once" is one pass (the first stats after a mount: cold).

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kMiB = 1 << 20;
constexpr size_t kSmallFileBytes = 4096;
constexpr double kMinRepeatSeconds = 0.5;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fs_bench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string SmallFileName(const std::string& dir, int i) {
  char name[16];
  std::snprintf(name, sizeof name, "/f%05d", i);
  return dir + name;
}

int OpenOrFail(const std::string& path, int flags, mode_t mode = 0) {
  int fd = open(path.c_str(), flags, mode);
  if (fd < 0) Fail("open " + path);
  return fd;
}

// Reads the whole file in 1 MiB reads; returns the bytes read.
uint64_t ReadAll(int fd, std::vector<char>* buffer) {
  uint64_t total = 0;
  for (off_t off = 0;; off += static_cast<off_t>(kMiB)) {
    ssize_t n = pread(fd, buffer->data(), kMiB, off);
    if (n < 0) Fail("read");
    if (n == 0) return total;
    total += static_cast<uint64_t>(n);
  }
}

void DropPages(int fd) {
  // fsync first: only clean pages can be dropped.
  if (fsync(fd) != 0) Fail("fsync");
  errno = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  if (errno != 0) Fail("posix_fadvise");
}

void Prepare(int fd, const std::string& cache, std::vector<char>* buffer) {
  if (cache == "cached") {
    ReadAll(fd, buffer);
  } else if (cache == "uncached") {
    DropPages(fd);
  } else {
    errno = EINVAL;
    Fail("cache mode must be cached or uncached, not " + cache);
  }
}

// xorshift64: cheap enough to make fresh bytes for every write.
uint64_t NextRandom(uint64_t* x) {
  *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
  return *x;
}

double SeqWrite(const std::string& path, uint64_t mib, bool random) {
  std::vector<char> buffer(kMiB);
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<char>(i * 131 + 7);
  uint64_t x = 0x9E3779B97F4A7C15ull;
  double start = Now();
  int fd = OpenOrFail(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  for (uint64_t i = 0; i < mib; ++i) {
    if (random) {
      for (size_t j = 0; j + 8 <= kMiB; j += 8) {
        uint64_t word = NextRandom(&x);
        std::memcpy(buffer.data() + j, &word, 8);
      }
    }
    buffer[0] = static_cast<char>(i);  // no two blocks alike
    if (write(fd, buffer.data(), kMiB) != static_cast<ssize_t>(kMiB)) Fail("write");
  }
  if (fsync(fd) != 0) Fail("fsync");
  if (close(fd) != 0) Fail("close");
  return static_cast<double>(mib) / (Now() - start);
}

double SeqRead(const std::string& path, const std::string& cache) {
  std::vector<char> buffer(kMiB);
  int fd = OpenOrFail(path, O_RDONLY);
  Prepare(fd, cache, &buffer);
  double start = Now();
  uint64_t bytes = ReadAll(fd, &buffer);
  double seconds = Now() - start;
  close(fd);
  return static_cast<double>(bytes) / kMiB / seconds;
}

// The whole 4 KiB pages of an open file; fails on a file shorter than one.
uint64_t PagesOf(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) Fail("fstat");
  uint64_t pages = static_cast<uint64_t>(st.st_size) / 4096;
  if (pages == 0) {
    errno = EINVAL;
    Fail(path + " is shorter than 4 KiB");
  }
  return pages;
}

double RandRead(const std::string& path, const std::string& cache, uint64_t count) {
  std::vector<char> buffer(kMiB);
  int fd = OpenOrFail(path, O_RDONLY);
  uint64_t pages = PagesOf(fd, path);
  Prepare(fd, cache, &buffer);
  uint64_t x = 0x9E3779B97F4A7C15ull;  // fixed: the same offsets for every target
  double start = Now();
  for (uint64_t i = 0; i < count; ++i) {
    off_t off = static_cast<off_t>((NextRandom(&x) % pages) * 4096);
    if (pread(fd, buffer.data(), 4096, off) != 4096) Fail("pread");
  }
  double seconds = Now() - start;
  close(fd);
  return static_cast<double>(count) / seconds;
}

// Per-read latency of 4 KiB reads the filesystem answers from its own memory:
// what another process's cold read may delay.
std::pair<double, double> Latency(const std::string& path, uint64_t count) {
  std::vector<char> buffer(kMiB);
  int fd = OpenOrFail(path, O_RDONLY);
  uint64_t pages = PagesOf(fd, path);
  Prepare(fd, "cached", &buffer);
  std::vector<double> micros;
  micros.reserve(count);
  uint64_t x = 0x2545F4914F6CDD1Dull;
  for (uint64_t i = 0; i < count; ++i) {
    off_t off = static_cast<off_t>((NextRandom(&x) % pages) * 4096);
    errno = posix_fadvise(fd, off, 4096, POSIX_FADV_DONTNEED);
    if (errno != 0) Fail("posix_fadvise");
    double start = Now();
    if (pread(fd, buffer.data(), 4096, off) != 4096) Fail("pread");
    micros.push_back((Now() - start) * 1e6);
  }
  close(fd);
  std::sort(micros.begin(), micros.end());
  return {micros[micros.size() / 2], micros[micros.size() * 99 / 100]};
}

double Create(const std::string& dir, int n) {
  std::vector<char> data(kSmallFileBytes, 'k');
  double start = Now();
  for (int i = 0; i < n; ++i) {
    int fd = OpenOrFail(SmallFileName(dir, i), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
      Fail("write");
    }
    if (close(fd) != 0) Fail("close");
  }
  return n / (Now() - start);
}

// Runs `pass` (which does `per_pass` operations) once, or until at least
// kMinRepeatSeconds have passed; returns operations per second.
template <typename Pass>
double Timed(bool repeat, uint64_t per_pass, Pass pass) {
  uint64_t ops = 0;
  double start = Now(), elapsed = 0;
  do {
    pass();
    ops += per_pass;
    elapsed = Now() - start;
  } while (repeat && elapsed < kMinRepeatSeconds);
  return static_cast<double>(ops) / elapsed;
}

double Stat(const std::string& dir, int n, bool repeat) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(SmallFileName(dir, i));
  return Timed(repeat, n, [&] {
    struct stat st;
    for (const auto& name : names) {
      if (stat(name.c_str(), &st) != 0) Fail("stat " + name);
    }
  });
}

double Read(const std::string& dir, int n) {
  std::vector<char> buffer(64 * 1024);
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(SmallFileName(dir, i));
  double start = Now();
  for (const auto& name : names) {
    int fd = OpenOrFail(name, O_RDONLY);
    if (read(fd, buffer.data(), buffer.size()) != static_cast<ssize_t>(kSmallFileBytes)) {
      Fail("read " + name);
    }
    close(fd);
  }
  return n / (Now() - start);
}

double ReadDir(const std::string& dir) {
  uint64_t entries = 0;
  double start = Now(), elapsed = 0;
  do {
    DIR* d = opendir(dir.c_str());
    if (!d) Fail("opendir " + dir);
    errno = 0;
    while (readdir(d) != nullptr) ++entries;
    if (errno != 0) Fail("readdir " + dir);
    closedir(d);
    elapsed = Now() - start;
  } while (elapsed < kMinRepeatSeconds);
  return static_cast<double>(entries) / elapsed;
}

double Unlink(const std::string& dir, int n) {
  double start = Now();
  for (int i = 0; i < n; ++i) {
    std::string name = SmallFileName(dir, i);
    if (unlink(name.c_str()) != 0) Fail("unlink " + name);
  }
  return n / (Now() - start);
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: fs_bench seqwrite FILE MIB [random] | seqread FILE cached|uncached |\n"
               "       randread FILE cached|uncached COUNT | create DIR N |\n"
               "       stat DIR N once|repeat | read DIR N | readdir DIR | unlink DIR N |\n"
               "       latency FILE COUNT\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) Usage();
  std::string op = argv[1], path = argv[2];
  auto arg = [&](int i) -> std::string {
    if (argc <= i) Usage();
    return argv[i];
  };
  auto number = [&](int i) { return std::strtoull(arg(i).c_str(), nullptr, 10); };
  double value;
  if (op == "latency") {
    auto [p50, p99] = Latency(path, number(3));
    std::printf("%.1f %.1f\n", p50, p99);
    return 0;
  }
  if (op == "seqwrite") {
    value = SeqWrite(path, number(3), argc > 4 && arg(4) == "random");
  } else if (op == "seqread") {
    value = SeqRead(path, arg(3));
  } else if (op == "randread") {
    value = RandRead(path, arg(3), number(4));
  } else if (op == "create") {
    value = Create(path, static_cast<int>(number(3)));
  } else if (op == "stat") {
    value = Stat(path, static_cast<int>(number(3)), arg(4) == "repeat");
  } else if (op == "read") {
    value = Read(path, static_cast<int>(number(3)));
  } else if (op == "readdir") {
    value = ReadDir(path);
  } else if (op == "unlink") {
    value = Unlink(path, static_cast<int>(number(3)));
  } else {
    Usage();
  }
  std::printf("%.1f\n", value);
  return 0;
}
