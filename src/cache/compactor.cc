#include "src/cache/compactor.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/size.h"

namespace keyfs {

namespace {

// After a compaction that could not help (a full disk with nothing dead),
// wait this long before trying again.
constexpr int64_t kRetryNs = 10'000'000'000;

}  // namespace

Compactor::Compactor(DiskBlockStore* store, BlockCache* cache, Journal* journal,
                     const Clock* clock, const CompactorOptions& options)
    : store_(store), cache_(cache), journal_(journal), clock_(clock),
      options_(options) {}

bool Compactor::DiskFull() const { return cache_->disk_full() || journal_->out_of_space(); }

Status Compactor::Start(std::string why) {
  if (running()) return Status::Errno(EBUSY, "a compaction is running");
  Begin(/*everything=*/true, std::move(why));
  return Status::Ok();
}

void Compactor::Begin(bool everything, std::string why) {
  why_ = std::move(why);
  victims_.clear();
  std::vector<DiskBlockStore::SegmentInfo> segments = store_->Segments();
  std::sort(segments.begin(), segments.end(),
            [](const auto& a, const auto& b) { return a.live_bytes < b.live_bytes; });
  for (const auto& segment : segments) {
    if (segment.active || segment.retired || segment.bytes <= DiskBlockStore::kSegmentHeaderSize) {
      continue;
    }
    uint64_t dead = segment.bytes - std::min(segment.bytes, segment.live_bytes);
    bool worth = everything ? dead > 0 : dead >= segment.bytes * options_.segment_dead_ratio;
    if (worth) victims_.push_back(segment.id);
  }
  BlockStoreStats stats = store_->Stats();
  bytes_before_ = stats.saved_bytes;
  started_ns_ = clock_->MonotonicNanos();
  phase_ = Phase::kCompacting;
  rewrite_gen_ = 0;
  spdlog::info("compacting the store ({}): {} segment(s) to compact, {} of {} dead", why_,
               victims_.size(), FormatSize(stats.saved_bytes - std::min(stats.saved_bytes, stats.live_bytes)),
               FormatSize(stats.saved_bytes));
  NextSegment();
}

void Compactor::NextSegment() {
  if (victims_.empty()) return RequestRewrite();
  uint32_t segment = victims_.front();
  victims_.pop_front();
  auto listed = std::make_shared<Result<std::vector<std::pair<BlockId, BlockLocation>>>>(
      Status::Errno(EINPROGRESS));
  DiskBlockStore* store = store_;
  cache_->SubmitWork([store, segment, listed] { *listed = store->ListSegment(segment); },
                     [this, segment, listed] {
                       if (!listed->ok()) {
                         last_error_ = listed->status();
                         return NextSegment();
                       }
                       Listed(segment, std::move(*listed).value());
                     });
}

void Compactor::Listed(uint32_t segment, std::vector<std::pair<BlockId, BlockLocation>> records) {
  std::vector<Relocation> moves;
  for (const auto& [id, where] : records) {
    BlockKey key{id.ino, id.index};
    const BlockSlot* slot = cache_->FindSlot(key);
    // Live: the block's copy is still this one.
    if (slot && slot->stored == where && slot->stored_version == id.version) {
      moves.push_back({key, id, where});
    }
  }
  if (moves.empty()) return NextSegment();
  ++segments_compacted_;
  auto work = std::make_shared<std::vector<Relocation>>(std::move(moves));
  auto synced = std::make_shared<Status>();
  DiskBlockStore* store = store_;
  cache_->SubmitWork(
      [store, work, synced] {
        for (Relocation& move : *work) move.to = store->Relocate(move.id, move.from);
        *synced = store->Sync();
      },
      [this, work, synced] { Relocated(std::move(*work), *synced); });
}

void Compactor::Relocated(std::vector<Relocation> moves, Status synced) {
  bool full = false;
  for (Relocation& move : moves) {
    if (move.to.ok() && !synced.ok()) {
      cache_->DeleteCopy(move.key, move.id.version, *move.to);  // not durable: dead
      move.to = synced;
    }
    if (!move.to.ok()) {
      last_error_ = move.to.status();
      full |= move.to.status().code() == ENOSPC;
      continue;
    }
    BlockSlot* slot = cache_->FindSlot(move.key);
    if (!slot || !(slot->stored == move.from) || slot->stored_version != move.id.version) {
      // The block changed while its record was being copied: the copy is dead.
      cache_->DeleteCopy(move.key, move.id.version, *move.to);
      continue;
    }
    slot->stored = *move.to;
    journal_->BlockSaved(move.key.ino, move.key.index, move.id.version, *move.to);
    cache_->DeleteCopy(move.key, move.id.version, move.from);
    ++blocks_relocated_;
  }
  if (full) {
    // No room to copy the rest: what the rewrite gives back may make some.
    spdlog::warn("compaction stopped: no room on the store's disk to copy live blocks ({}); "
                 "rewriting the journal to give back what is dead",
                 last_error_.ToString());
    victims_.clear();
  }
  NextSegment();
}

void Compactor::RequestRewrite() {
  phase_ = Phase::kWaitingForRewrite;
  if (journal_->rewrite_running()) return;  // Cron starts ours after it
  if (DiskFull() && store_->DropReserve()) {
    spdlog::info("the store's disk is full: its reserve is given up, for the rewrite that "
                 "gives space back");
  }
  // Until one succeeds the journal retries by itself (journal.h).
  (void)journal_->StartRewrite("compaction: " + why_);
  rewrite_gen_ = journal_->generation();
}

void Compactor::OnReleased() {
  if (phase_ != Phase::kWaitingForRewrite || rewrite_gen_ == 0) return;
  if (journal_->base_generation() < rewrite_gen_) return;
  phase_ = Phase::kIdle;
  ++compactions_;
  BlockStoreStats stats = store_->Stats();
  double seconds = (clock_->MonotonicNanos() - started_ns_) / 1e9;
  spdlog::info("compaction done in {:.1f}s: {} segment(s) compacted, {} blocks moved; the "
               "store went from {} to {}",
               seconds, segments_compacted_, blocks_relocated_, FormatSize(bytes_before_),
               FormatSize(stats.saved_bytes));
  if (bytes_before_ <= stats.saved_bytes && DiskFull()) next_try_ns_ = clock_->MonotonicNanos() + kRetryNs;
}

void Compactor::Cron() {
  int64_t now = clock_->MonotonicNanos();
  if (phase_ == Phase::kWaitingForRewrite && rewrite_gen_ == 0 && !journal_->rewrite_running()) {
    RequestRewrite();
  }
  if (running()) return;
  if (!store_->has_reserve() && !DiskFull()) (void)store_->KeepReserve(options_.reserve_bytes);
  if (now < next_try_ns_) return;
  BlockStoreStats stats = store_->Stats();
  uint64_t dead = stats.saved_bytes - std::min(stats.saved_bytes, stats.live_bytes);
  if (DiskFull()) {
    next_try_ns_ = now + kRetryNs;
    Begin(/*everything=*/true, "the store's disk is full");
  } else if (dead >= options_.min_dead_bytes && dead >= stats.saved_bytes * options_.dead_ratio) {
    Begin(/*everything=*/false,
          fmt::format("{:.0f}% of the store is dead space", 100.0 * dead / stats.saved_bytes));
  }
}

std::string Compactor::Info() const {
  std::string out;
  auto line = [&](std::string_view key, const auto& value) {
    out += fmt::format("{}:{}\n", key, value);
  };
  line("compaction_in_progress", running() ? 1 : 0);
  line("compactions", compactions_);
  line("segments_compacted", segments_compacted_);
  line("blocks_relocated", blocks_relocated_);
  line("store_reserve", store_->has_reserve() ? 1 : 0);
  line("last_compaction_error", last_error_.ok() ? std::string("none") : last_error_.ToString());
  return out;
}

}  // namespace keyfs
