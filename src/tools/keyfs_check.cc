// keyfs-check: verifies a store's journal and repairs a damaged one, like
// redis-check-aof (docs/journal-format.md).
//
//   keyfs-check STORE_DIR            verify; exit 0 only for a clean journal
//   keyfs-check --fix [--yes] STORE_DIR
//                                    cut the journal at the last good record
//                                    (asks first unless --yes)
//   keyfs-check --dump STORE_DIR     print every record, one per line
//
// Verifying reads the files in replay order (journal_files.h), checks every
// frame and checksum, that each record decodes, and that the files follow
// each other. It does not replay (that needs the memory the data takes);
// mounting does.

#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "src/journal/journal_files.h"
#include "src/journal/records.h"
#include "store/env.h"
#include "store/journal_reader.h"
#include "store/store_dir.h"

namespace keyfs {
namespace {

struct Args {
  std::string dir;
  bool fix = false;
  bool yes = false;
  bool dump = false;
};

constexpr const char* kUsage =
    "usage: keyfs-check [--fix [--yes]] [--dump] STORE_DIR\n"
    "Verifies the journal of a keyfs store; exit status 0 only when it is clean.\n"
    "  --fix    cut the journal at its last good record (what follows is lost)\n"
    "  --yes    do not ask before fixing\n"
    "  --dump   print every record\n";

// Where verification stopped, if it did.
struct Damage {
  size_t file_index = 0;
  std::string path;
  uint64_t good_offset = 0;
  std::string problem;
  bool fixable = true;  // by cutting this incr at good_offset
  bool header_cut = false;  // the newest incr, cut in its header: set it aside
};

class Checker {
 public:
  Checker(Env* env, const Args& args) : env_(env), args_(args) {}

  // 0 clean, 1 damaged (fixed or not), 2 cannot check.
  int Run() {
    auto files = FindJournalFiles(env_, args_.dir);
    if (!files.ok()) return Error(files.status().ToString());
    if (files->base_gen) order_.push_back(JournalBaseName(*files->base_gen));
    for (uint64_t gen : files->incr_gens) order_.push_back(JournalIncrName(gen));
    if (order_.empty()) {
      std::printf("%s: no journal (an empty store)\n", args_.dir.c_str());
      return 0;
    }
    std::optional<Damage> damage;
    uint64_t last_seq = 0;
    for (size_t i = 0; i < order_.size() && !damage; ++i) {
      damage = CheckFile(i, files->base_gen.has_value() && i == 0, &last_seq);
    }
    std::printf("%llu records in %zu file(s), last %srecord %llu\n",
                static_cast<unsigned long long>(records_), order_.size(), damage ? "good " : "",
                static_cast<unsigned long long>(last_seq));
    if (!damage) {
      std::printf("journal is clean\n");
      return 0;
    }
    std::printf("DAMAGED: %s\n", damage->problem.c_str());
    std::printf("last good record ends at offset %llu of %s\n",
                static_cast<unsigned long long>(damage->good_offset), damage->path.c_str());
    if (!args_.fix) {
      std::printf("run `keyfs-check --fix %s` to cut the journal there\n", args_.dir.c_str());
      return 1;
    }
    return Fix(*damage);
  }

 private:
  std::string Path(const std::string& name) const { return args_.dir + "/" + name; }

  int Error(const std::string& message) {
    std::fprintf(stderr, "keyfs-check: %s\n", message.c_str());
    return 2;
  }

  std::optional<Damage> CheckFile(size_t index, bool is_base, uint64_t* last_seq) {
    std::string path = Path(order_[index]);
    Damage damage{index, path, 0, "", !is_base};
    bool newest = index + 1 == order_.size();
    if (!is_base && newest) {
      auto cut = JournalReader::IsCutInHeader(env_, path);
      if (cut.ok() && *cut) {
        // What a crash while the segment was being created leaves: no
        // record in it, so setting it aside loses nothing.
        damage.problem = path + " was cut inside its header (a crash while it was created); "
                                "it holds no record";
        damage.header_cut = true;
        return damage;
      }
    }
    auto reader = JournalReader::Open(env_, path);
    if (!reader.ok()) {
      damage.problem = reader.status().ToString();
      damage.fixable = false;
      return damage;
    }
    JournalReader& r = **reader;
    if (!is_base && r.header().base_seq != *last_seq) {
      damage.problem = fmt::format("{} continues from record {} but the files before it end "
                                   "at record {}",
                                   path, r.header().base_seq, *last_seq);
      damage.good_offset = journal::kFileHeaderSize;
      return damage;
    }
    bool ended_snapshot = false;
    JournalReader::Record record;
    JournalReader::Outcome outcome;
    while ((outcome = r.Next(&record)) == JournalReader::Outcome::kRecord) {
      ++records_;
      std::string line = journal::DescribeRecord(record.type, record.payload);
      if (line.find("does not decode") != std::string::npos ||
          line.starts_with("unknown type")) {
        damage.problem = fmt::format("{}: record {} at offset {}: {}", path, record.seq,
                                     record.offset, line);
        damage.good_offset = record.offset;
        if (!is_base) *last_seq = record.seq - 1;
        return damage;
      }
      if (args_.dump) std::printf("%s %llu #%llu %s\n", order_[index].c_str(),
                                  static_cast<unsigned long long>(record.offset),
                                  static_cast<unsigned long long>(record.seq), line.c_str());
      if (record.type == journal::kSnapshotEnd) {
        journal::SnapshotEndRecord end;
        journal::Decode(record.payload, &end);
        *last_seq = end.covers_seq;
        ended_snapshot = true;
      }
    }
    std::printf("%s: %llu bytes, %llu records, good up to offset %llu\n", order_[index].c_str(),
                static_cast<unsigned long long>(r.file_size()),
                static_cast<unsigned long long>(r.records()),
                static_cast<unsigned long long>(r.good_offset()));
    damage.good_offset = r.good_offset();
    if (outcome != JournalReader::Outcome::kEnd) {
      damage.problem = r.problem();
      if (!is_base) *last_seq = r.last_seq();  // the last good record
      return damage;
    }
    if (is_base && !ended_snapshot) {
      damage.problem = path + " is an incomplete snapshot (no snapshot-end record)";
      return damage;
    }
    if (!is_base) *last_seq = r.last_seq();
    return std::nullopt;
  }

  int Fix(const Damage& damage) {
    if (!damage.fixable) {
      std::printf("cannot fix: the damage is in a snapshot; cutting it would lose files that "
                  "no later record recreates. Copy the store directory somewhere safe and "
                  "ask for help.\n");
      return 1;
    }
    std::vector<std::string> dropped;
    if (damage.header_cut) dropped.push_back(damage.path);
    for (size_t i = damage.file_index + 1; i < order_.size(); ++i) {
      dropped.push_back(Path(order_[i]));
    }
    auto size = env_->GetFileSize(damage.path);
    uint64_t lost = size.ok() ? *size - damage.good_offset : 0;
    if (damage.header_cut) {
      std::printf("this will set %s aside as *.dropped (it holds no record)", damage.path.c_str());
    } else {
      std::printf("this will cut %s at offset %llu (%llu bytes lost)", damage.path.c_str(),
                  static_cast<unsigned long long>(damage.good_offset),
                  static_cast<unsigned long long>(lost));
    }
    if (dropped.size() > (damage.header_cut ? 1u : 0u)) {
      std::printf(" and set aside %zu later journal file(s) as *.dropped", dropped.size());
    }
    std::printf("\n");
    if (!args_.yes) {
      std::printf("continue? [y/N] ");
      std::fflush(stdout);
      std::string answer;
      if (!std::getline(std::cin, answer) || (answer != "y" && answer != "yes")) {
        std::printf("nothing changed\n");
        return 1;
      }
    }
    Status status = damage.header_cut ? Status::Ok()
                                      : env_->TruncateFile(damage.path, damage.good_offset);
    for (const auto& path : dropped) {
      if (status.ok()) status = env_->RenameFile(path, path + ".dropped");
    }
    if (status.ok()) status = env_->SyncDir(args_.dir);
    if (!status.ok()) return Error("fix failed: " + status.ToString());
    std::printf("fixed: the journal now ends at its last good record\n");
    return 0;
  }

  Env* const env_;
  const Args args_;
  std::vector<std::string> order_;
  uint64_t records_ = 0;
};

// A store directory has a lock file or journal files; a keyfs mount point
// answers keyfs's control attribute. Anything else is a mistake to say so
// about, not "an empty store".
Status CheckIsStore(Env* env, const std::string& dir) {
  char probe[16];
  if (getxattr(dir.c_str(), "user.keyfs.journal", probe, 0) >= 0) {
    return Status::InvalidArgument(dir + " is a keyfs mount point, not a store directory; "
                                   "check the store it serves (the first column of `df " +
                                   dir + "`)");
  }
  auto names = env->ListDir(dir);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    if (name == StoreDir::kLockName || name.starts_with("journal-")) return Status::Ok();
  }
  return Status::InvalidArgument(dir + " is not a keyfs store (it has no LOCK and no "
                                 "journal files)");
}

int Main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--fix") {
      args.fix = true;
    } else if (arg == "--yes" || arg == "-y") {
      args.yes = true;
    } else if (arg == "--dump") {
      args.dump = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg.starts_with("-") || !args.dir.empty()) {
      std::fprintf(stderr, "keyfs-check: unexpected argument '%s'\n%s", arg.c_str(), kUsage);
      return 2;
    } else {
      args.dir = arg;
    }
  }
  if (args.dir.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  Env* env = Env::Default();
  if (!env->FileExists(args.dir)) {
    std::fprintf(stderr, "keyfs-check: %s: no such store directory\n", args.dir.c_str());
    return 2;
  }
  if (Status store = CheckIsStore(env, args.dir); !store.ok()) {
    std::fprintf(stderr, "keyfs-check: %s\n", store.message().c_str());
    return 2;
  }
  // A mounted store is being written: verifying it may see a record half
  // written, and fixing it would cut under the writer's feet. The lock file's
  // words are the last keyfs's (whether it stopped cleanly): put them back.
  std::string keyfs_words;
  auto lock = env->LockFile(args.dir + "/" + StoreDir::kLockName,
                            "keyfs-check pid " + std::to_string(getpid()), &keyfs_words);
  if (!lock.ok()) {
    if (args.fix) {
      std::fprintf(stderr, "keyfs-check: cannot fix %s: it is in use (%s); unmount it first\n",
                   args.dir.c_str(), lock.status().message().c_str());
      return 2;
    }
    std::printf("note: %s is in use (%s); a record being written may show as a torn tail\n",
                args.dir.c_str(), lock.status().message().c_str());
  }
  int result = Checker(env, args).Run();
  if (lock.ok()) (void)(*lock)->SetOwner(keyfs_words);
  return result;
}

}  // namespace
}  // namespace keyfs

int main(int argc, char** argv) { return keyfs::Main(argc, argv); }
