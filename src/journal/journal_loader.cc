#include "src/journal/journal_loader.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/size.h"
#include "src/journal/records.h"
#include "src/journal/journal_read_ahead.h"
#include "src/journal/replayer.h"
#include "store/journal_reader.h"

namespace keyfs {

namespace {

constexpr int64_t kProgressIntervalNs = 1'000'000'000;
constexpr int kRecordsPerClockRead = 1024;

std::string RepairAdvice(const std::string& dir) {
  return "; `keyfs-check --fix " + dir +
         "` cuts the journal at the last good record (what follows it is lost)";
}

// Swap mode: replay swaps blocks out (SpillToStore) and later records may
// drop them (an unlink, a truncation) with no cache to give their copies
// back; this does, so that a journal that rewrites its files many times does
// not need swap for every version it ever held.
class DropCopies final : public BlockObserver {
 public:
  explicit DropCopies(BlockStore* store) : store_(store) {}
  void Dirtied(Ino, uint64_t, BlockSlot&, bool) override {}
  void Stored(Ino, uint64_t, BlockSlot&) override {}
  void PinChanged(Ino, bool) override {}  // the cache loads pinned blocks after replay
  void Dropping(Ino ino, uint64_t index, BlockSlot& slot) override {
    if (slot.stored.valid()) (void)store_->Delete({ino, index, slot.stored_version}, slot.stored);
  }

 private:
  BlockStore* const store_;
};

class Loader {
 public:
  Loader(Env* env, std::string dir, bool load_truncated, Keyspace* keyspace,
         const Clock* clock, BlockStore* store)
      : env_(env), dir_(std::move(dir)), load_truncated_(load_truncated),
        keyspace_(keyspace), clock_(clock), store_(store),
        replayer_(keyspace, clock, [this](const std::vector<BlockKey>& keys) {
          return Fetch(keys);
        }),
        drop_copies_(store) {}

  Result<LoadedJournal> Load() {
    ASSIGN_OR_RETURN(result_.files, FindJournalFiles(env_, dir_));
    const JournalFiles& files = result_.files;
    std::vector<std::string> order;
    if (files.base_gen) order.push_back(JournalBaseName(*files.base_gen));
    for (uint64_t gen : files.incr_gens) order.push_back(JournalIncrName(gen));
    for (const auto& name : order) {
      ASSIGN_OR_RETURN(uint64_t size, env_->GetFileSize(Path(name)));
      total_bytes_ += size;
    }
    start_ns_ = last_progress_ns_ = clock_->MonotonicNanos();
    bool swap_mode = store_ && !store_->persistent();
    if (swap_mode) keyspace_->set_observer(&drop_copies_);
    Result<LoadedJournal> loaded = LoadFiles(order);
    if (swap_mode) keyspace_->set_observer(nullptr);
    return loaded;
  }

  Result<LoadedJournal> LoadFiles(const std::vector<std::string>& order) {
    const JournalFiles& files = result_.files;
    if (total_bytes_ > 0) {
      spdlog::info("replaying journal: {} in {} file(s)", FormatSize(total_bytes_), order.size());
    }
    for (size_t i = 0; i < order.size(); ++i) {
      bool is_base = files.base_gen && i == 0;
      bool is_live = i + 1 == order.size() && !is_base;
      RETURN_IF_ERROR(LoadFile(order[i], is_base, is_live));
    }
    result_.records = replayer_.applied();
    result_.spilled = spilled_;
    result_.skipped = replayer_.skipped();
    result_.seconds = (clock_->MonotonicNanos() - start_ns_) / 1e9;
    return result_;
  }

 private:
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  Status LoadFile(const std::string& name, bool is_base, bool is_live) {
    std::string path = Path(name);
    if (is_live) {
      ASSIGN_OR_RETURN(bool cut, JournalReader::IsCutInHeader(env_, path));
      if (cut) return LiveCutInHeader(path);
    }
    ASSIGN_OR_RETURN(auto opened, JournalReader::Open(env_, path));
    if (!is_base && opened->header().base_seq != result_.last_seq) {
      return Status::Errno(EINVAL, "journal files do not follow each other: " + path +
                                       " continues from record " +
                                       std::to_string(opened->header().base_seq) +
                                       " but the files before it end at record " +
                                       std::to_string(result_.last_seq) +
                                       " (a journal file is missing or from another store)");
    }
    uint64_t done_before = done_bytes_;
    JournalReadAhead ahead(std::move(opened));
    JournalReadAhead::Record record;
    JournalReader::Outcome outcome;
    while ((outcome = ahead.Next(&record)) == JournalReader::Outcome::kRecord) {
      uint64_t seq = is_base ? 0 : record.seq;
      Status status = replayer_.Apply(record.type, seq, record.payload);
      // Records are all or nothing: after a spill, the record again.
      for (int round = 0; status.code() == ENOSPC && round < 2 && SpillToStore(); ++round) {
        status = replayer_.Apply(record.type, seq, record.payload);
      }
      if (status.code() == ENOSPC) return TooBigForMemory(done_before + record.offset);
      if (!status.ok()) {
        return Status::Errno(EINVAL, path + ": record " + std::to_string(record.seq) + " (" +
                                         std::string(journal::RecordTypeName(record.type)) +
                                         ") at offset " + std::to_string(record.offset) +
                                         " does not apply: " + status.ToString() +
                                         RepairAdvice(dir_));
      }
      done_bytes_ = done_before + record.end;
      MaybeLogProgress();
    }
    const JournalReader* reader = &ahead.reader();
    done_bytes_ = done_before + reader->file_size();

    switch (outcome) {
      case JournalReader::Outcome::kEnd:
        break;
      case JournalReader::Outcome::kTornTail:
        if (!is_live) return Status::Errno(EINVAL, reader->problem() + RepairAdvice(dir_));
        if (!load_truncated_) {
          return Status::Errno(EINVAL, reader->problem() +
                                           "; mount with -o journal_load_truncated=yes to cut "
                                           "it there, or run `keyfs-check --fix " + dir_ + "`");
        }
        spdlog::warn("{}; cutting the journal at offset {} ({} dropped: an operation that "
                     "was never acknowledged as synced)",
                     reader->problem(), reader->good_offset(),
                     FormatSize(reader->file_size() - reader->good_offset()));
        result_.torn_bytes = reader->file_size() - reader->good_offset();
        result_.torn_file = path;
        break;
      case JournalReader::Outcome::kCorrupt:
        return Status::Errno(EINVAL, reader->problem() + RepairAdvice(dir_));
      case JournalReader::Outcome::kRecord:
        break;
    }

    result_.bytes += reader->good_offset();
    if (is_base) {
      if (!replayer_.saw_snapshot_end()) {
        return Status::Errno(EINVAL, path + " is an incomplete snapshot (no snapshot-end record)" +
                                         RepairAdvice(dir_));
      }
      result_.last_seq = replayer_.snapshot_covers_seq();
      result_.base_bytes = reader->good_offset();
    } else {
      result_.last_seq = reader->last_seq();
    }
    if (is_live) result_.live_good_offset = reader->good_offset();
    return Status::Ok();
  }

  // The newest segment was being created when the store stopped: it holds
  // no record, so it is a torn tail like any other (docs/journal-format.md).
  Status LiveCutInHeader(const std::string& path) {
    std::string problem = path + " was cut inside its header (a crash while it was created)";
    if (!load_truncated_) {
      return Status::Errno(EINVAL, problem + "; mount with -o journal_load_truncated=yes to "
                                             "start it again, or run `keyfs-check --fix " +
                                             dir_ + "`");
    }
    ASSIGN_OR_RETURN(uint64_t size, env_->GetFileSize(path));
    spdlog::warn("{}; it holds no record, so nothing is lost: starting it again", problem);
    result_.live_cut_in_header = true;
    result_.live_good_offset = 0;
    result_.torn_bytes = size;
    result_.torn_file = path;
    return Status::Ok();
  }

  // Replay filled max_memory after `done` of the journal's bytes: what it
  // needs, extrapolated from how far it got (an estimate: later records may
  // overwrite or delete what came before).
  Status TooBigForMemory(uint64_t done) {
    const MemoryAccountant& memory = keyspace_->memory();
    double fraction = total_bytes_ > 0 ? double(std::max<uint64_t>(done, 1)) / total_bytes_ : 1;
    uint64_t estimate = static_cast<uint64_t>(memory.Used() / std::min(fraction, 1.0) * 1.1);
    uint64_t mib = (std::max(estimate, memory.limit() + 1) + (1 << 20) - 1) >> 20;
    if (swap_full_) {
      return Status::Errno(
          ENOSPC, fmt::format("the journal in {} holds more than max_memory={} and the swap file "
                              "can take together: replay filled both after {:.0f}% of the "
                              "journal ({} of {}). Mount with a larger swap_size (or "
                              "max_memory)", dir_, FormatSize(memory.limit()), fraction * 100,
                              FormatSize(done), FormatSize(total_bytes_)));
    }
    return Status::Errno(
        ENOSPC, fmt::format("the journal in {} holds more than max_memory={} allows: replay "
                            "had used it all after {:.0f}% of the journal ({} of {}). Mount "
                            "with max_memory={}M or more (an estimate from how far replay got)",
                            dir_, FormatSize(memory.limit()), fraction * 100,
                            FormatSize(done), FormatSize(total_bytes_), mib));
  }

  // Swap mode (a store that does not persist, so the journal holds every
  // byte and may hold more than max_memory): replay has filled the budget,
  // so the blocks in memory go to the swap file, saved and evicted as the
  // cache would, until half the budget is free. True if it freed anything.
  // Not in disk mode: there the journal holds little data (what was not yet
  // saved), and a journal that does not fit says so (TooBigForMemory).
  bool SpillToStore() {
    if (!store_ || store_->persistent()) return false;
    MemoryAccountant& memory = *keyspace_->mutable_memory();
    uint64_t target = memory.limit() / 2;
    uint64_t before = memory.InUse();
    swap_full_ = false;
    Status failed;
    keyspace_->ForEachFile([&](Ino ino, FileData& file) {
      for (size_t i = 0; i < file.block_count() && failed.ok(); ++i) {
        if (memory.InUse() <= target) return;
        BlockSlot& slot = file.mutable_slot(i);
        if (!slot.resident() || slot.length == 0) continue;
        if (slot.dirty || !slot.stored.valid()) {
          std::string_view bytes(slot.buffer->data(), slot.length);
          auto where = store_->Save({ino, i, slot.version}, bytes);
          if (!where.ok()) {
            failed = where.status();
            return;
          }
          if (slot.stored.valid()) (void)store_->Delete({ino, i, slot.stored_version}, slot.stored);
          slot.stored = *where;
          slot.stored_version = slot.version;
          slot.dirty = false;
        }
        slot.buffer = nullptr;  // frees it: its charge goes with it
        ++spilled_;
      }
    });
    if (!failed.ok()) {
      swap_full_ = failed.code() == ENOSPC;
      spdlog::warn("replay could not move blocks to the swap file: {}", failed.ToString());
    }
    return memory.InUse() < before;
  }

  // Loads evicted blocks a record needs, straight from the store (nothing
  // else runs yet).
  Status Fetch(const std::vector<BlockKey>& keys) {
    if (!store_) return Status::Errno(EIO, "the journal refers to a block store, and there is none");
    for (const BlockKey& key : keys) {
      Inode* inode = keyspace_->MutableInode(key.ino);
      if (!inode || !inode->is_regular() || key.index >= inode->file().block_count()) continue;
      const BlockSlot& slot = inode->file().slot(key.index);
      if (!slot.evicted()) continue;
      BlockLocation where = slot.stored;
      ASSIGN_OR_RETURN(RefPtr<BlockBuffer> buffer,
                       store_->Load({key.ino, key.index, slot.stored_version}, where,
                                    keyspace_->mutable_memory()));
      inode->file().Install(key.index, std::move(buffer), where);
    }
    return Status::Ok();
  }

  void MaybeLogProgress() {
    // Reading the clock costs more than applying a small record.
    if (++records_since_clock_ < kRecordsPerClockRead) return;
    records_since_clock_ = 0;
    int64_t now = clock_->MonotonicNanos();
    if (now - last_progress_ns_ < kProgressIntervalNs) return;
    last_progress_ns_ = now;
    double elapsed = (now - start_ns_) / 1e9;
    double fraction = total_bytes_ ? double(done_bytes_) / double(total_bytes_) : 1.0;
    double eta = fraction > 0 ? elapsed / fraction - elapsed : 0;
    spdlog::info("replaying journal: {} of {} ({:.0f}%), {} records, {} inodes, about {:.0f}s left",
                 FormatSize(done_bytes_), FormatSize(total_bytes_), fraction * 100,
                 replayer_.applied(), keyspace_->inode_count(), eta);
  }

  Env* const env_;
  const std::string dir_;
  const bool load_truncated_;
  Keyspace* const keyspace_;
  const Clock* const clock_;
  BlockStore* const store_;
  Replayer replayer_;
  DropCopies drop_copies_;
  LoadedJournal result_;
  uint64_t total_bytes_ = 0;
  uint64_t done_bytes_ = 0;
  uint64_t spilled_ = 0;  // blocks moved to the swap file
  bool swap_full_ = false;  // ... until it had no room
  int64_t start_ns_ = 0;
  int64_t last_progress_ns_ = 0;
  int records_since_clock_ = 0;
};

}  // namespace

Result<LoadedJournal> LoadJournal(Env* env, const std::string& dir, bool load_truncated,
                                  Keyspace* keyspace, const Clock* clock, BlockStore* store) {
  Loader loader(env, dir, load_truncated, keyspace, clock, store);
  return loader.Load();
}

}  // namespace keyfs
