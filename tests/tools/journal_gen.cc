// journal_gen: writes a keyfs journal holding FILES regular files of SIZE
// bytes each, in directories of 1000, exactly as a live keyfs would record
// them (a node record and a write record per file) — the input of the replay
// benchmark (scripts/bench-journal), made without going through a mount.
//
//   journal_gen STORE_DIR FILES SIZE

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "src/journal/journal_files.h"
#include "src/journal/records.h"
#include "store/env.h"
#include "store/journal_writer.h"

using namespace keyfs;
using namespace keyfs::journal;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: journal_gen STORE_DIR FILES SIZE\n");
    return 2;
  }
  std::string dir = argv[1];
  uint64_t files = std::strtoull(argv[2], nullptr, 10);
  size_t size = std::strtoull(argv[3], nullptr, 10);
  Env* env = Env::Default();
  if (!env->CreateDirs(dir).ok()) return 1;
  auto writer = JournalWriter::Create(env, dir + "/" + JournalIncrName(1), 0);
  if (!writer.ok()) {
    std::fprintf(stderr, "%s\n", writer.status().ToString().c_str());
    return 1;
  }
  timespec now{1'700'000'000, 0};
  std::string data(size, 'v');
  uint64_t ino = 2, dir_ino = 0;
  auto node = [&](uint64_t parent, const std::string& name, uint32_t mode) {
    NodeRecord r;
    r.parent = parent, r.ino = ino++, r.mode = mode;
    r.atime = r.mtime = r.ctime = now;
    r.flags = kTouchParent;
    r.name = name;
    (*writer)->AddEncoded(kNode, [&r](std::string* out) { AppendPayload(r, out); });
    return r.ino;
  };
  for (uint64_t i = 0; i < files; ++i) {
    if (i % 1000 == 0) dir_ino = node(1, fmt::format("d{}", i / 1000), S_IFDIR | 0755);
    uint64_t file = node(dir_ino, fmt::format("f{}", i), S_IFREG | 0644);
    WriteRecord write{file, 0, now, data};
    (*writer)->AddEncoded(kWrite, [&write](std::string* out) { AppendPayload(write, out); });
    if ((*writer)->pending_bytes() > (8u << 20) && !(*writer)->Flush().ok()) return 1;
    now.tv_nsec = static_cast<long>(i % 1'000'000'000);
  }
  if (!(*writer)->Flush().ok() || !(*writer)->Sync().ok()) return 1;
  std::printf("%llu files, %llu journal bytes\n", static_cast<unsigned long long>(files),
              static_cast<unsigned long long>((*writer)->written_size()));
  return 0;
}
