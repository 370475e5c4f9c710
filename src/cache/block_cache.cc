#include "src/cache/block_cache.h"

#include <poll.h>

#include <algorithm>
#include <cassert>
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/size.h"

namespace keyfs {

namespace {

constexpr int64_t kFirstSaveRetryNs = 100'000'000;  // 100 ms, doubling
constexpr int64_t kMaxSaveRetryNs = 10'000'000'000;
constexpr int64_t kSaveErrorLogIntervalNs = 10'000'000'000;
// How often a final save (Drain) logs how much is left.
constexpr int64_t kDrainProgressNs = 5'000'000'000;
// Sampling rounds without a candidate before eviction gives up.
constexpr int kFruitlessRounds = 8;
// The cron's eviction per tick (10 Hz): a quarter of the tick at most.
constexpr int64_t kCronEvictionNs = 25'000'000;
// Sequential-read tracking is for the files being read now.
constexpr size_t kMaxTrackedReaders = 4096;
constexpr size_t kMaxTrackedRanges = 65536;
// What a parked request costs beyond its payload.
constexpr size_t kParkedCost = 160;

}  // namespace

BlockCache::BlockCache(Keyspace* keyspace, BlockStore* store, IoQueue* io,
                       MemoryAccountant* memory, const Clock* clock, const CacheOptions& options,
                       MutationLog* log)
    : keyspace_(keyspace), store_(store), io_(io), memory_(memory), clock_(clock),
      options_(options), log_(log), rng_(options.seed) {}

BlockCache::~BlockCache() {
  if (keyspace_->observer() == this) keyspace_->set_observer(nullptr);
  memory_->set_reclaimer(nullptr);
  for (auto& [key, state] : io_state_) memory_->Release(MemoryComponent::kIo, state.reserved);
  for (auto& [id, parked] : parked_) memory_->Release(MemoryComponent::kRequests, parked.charged);
}

BlockSlot* BlockCache::Slot(const BlockKey& key) {
  Inode* inode = keyspace_->MutableInode(key.ino);
  if (!inode || !inode->is_regular() || key.index >= inode->file().block_count()) return nullptr;
  return &inode->file().mutable_slot(key.index);
}

const BlockSlot* BlockCache::Slot(const BlockKey& key) const {
  return const_cast<BlockCache*>(this)->Slot(key);
}

void BlockCache::Attach(const std::function<void(const BlockLocation&)>& live) {
  int64_t now = clock_->MonotonicNanos();
  std::vector<Ino> pinned;
  keyspace_->ForEachFile([&](Ino ino, FileData& file) {
    if (IsPinned(ino)) pinned.push_back(ino);
    for (size_t i = 0; i < file.block_count(); ++i) {
      BlockSlot& slot = file.mutable_slot(i);
      BlockKey key{ino, i};
      if (slot.stored.valid()) live(slot.stored);
      if (!slot.resident()) continue;
      if (slot.dirty) {
        ++dirty_blocks_;
        CountDirty(slot);
        io_state_[key].flags |= kSaveQueued;
        dirty_queue_.push_back({key, now});
      } else {
        AddClean(key, slot);
      }
    }
  });
  keyspace_->set_observer(this);
  keyspace_->set_stores_whole_blocks(store_->persistent() && log_ != nullptr);
  memory_->set_reclaimer(this);
  // Replay may have left pinned blocks evicted (saved in disk mode, swapped
  // out in swap mode): they come back now (rule 7).
  for (Ino ino : pinned) {
    if (!LoadPinned(ino)) pin_loading_.insert(ino);
  }
}

// --- the keyspace's news ---------------------------------------------------------

void BlockCache::Dirtied(Ino ino, uint64_t index, BlockSlot& slot, bool was_dirty) {
  BlockKey key{ino, index};
  if (!was_dirty) {
    ++dirty_blocks_;
    RemoveClean(slot);
  }
  CountDirty(slot);
  IoState& state = io_state_[key];
  if (!(state.flags & kSaveQueued)) {
    state.flags |= kSaveQueued;
    dirty_queue_.push_back({key, clock_->MonotonicNanos() + options_.flush_delay_ns});
  }
}

void BlockCache::Dropping(Ino ino, uint64_t index, BlockSlot& slot) {
  BlockKey key{ino, index};
  RemoveClean(slot);
  if (slot.dirty) --dirty_blocks_;
  UncountDirty(slot);
  if (slot.stored.valid()) QueueDelete(key, slot.stored_version, slot.stored);
  evict_when_saved_.erase(key);
  auto it = io_state_.find(key);
  if (it == io_state_.end()) return;
  // A queued SAVE is forgotten (its queue entry is skipped); a SAVE or LOAD
  // that is running finds the block gone when it returns (rules 1 and 2).
  it->second.flags &= ~kSaveQueued;
  if (it->second.flags == 0 && it->second.waiters.empty()) io_state_.erase(it);
}

void BlockCache::Stored(Ino ino, uint64_t index, BlockSlot& slot) {
  if (slot.resident()) AddClean(BlockKey{ino, index}, slot);
}

// Rule 7: a pinned file's blocks leave the sample set and its evicted ones
// are loaded; unpinned, its clean blocks are candidates again.
void BlockCache::PinChanged(Ino ino, bool pinned) {
  Inode* inode = keyspace_->MutableInode(ino);
  if (!inode || !inode->is_regular()) return;
  FileData& file = inode->file();
  if (!pinned) {
    pin_loading_.erase(ino);
    for (uint64_t index = 0; index < file.block_count(); ++index) {
      BlockSlot& slot = file.mutable_slot(index);
      if (slot.resident() && !slot.dirty) AddClean(BlockKey{ino, index}, slot);
    }
    return;
  }
  for (uint64_t index = 0; index < file.block_count(); ++index) {
    RemoveClean(file.mutable_slot(index));
    evict_when_saved_.erase(BlockKey{ino, index});  // an evict asked before the pin
  }
  if (!LoadPinned(ino)) pin_loading_.insert(ino);
}

bool BlockCache::LoadPinned(Ino ino) {
  const Inode* inode = keyspace_->FindInode(ino);
  if (!inode || !inode->pinned) return true;
  const FileData& file = inode->file();
  bool started_all = true;
  for (uint64_t index = 0; index < file.block_count(); ++index) {
    if (!file.slot(index).evicted()) continue;
    switch (LoadAhead(BlockKey{ino, index})) {
      case Ahead::kStarted:
        ++stats_.pin_loads;
        break;
      case Ahead::kLoading:
        break;
      case Ahead::kNoRoom:
        started_all = false;
        break;
    }
  }
  return started_all;
}

void BlockCache::QueueDelete(const BlockKey& key, uint64_t version, const BlockLocation& where) {
  deletes_.push_back({BlockId{key.ino, key.index, version}, where});
  ++stats_.deletes;
}

void BlockCache::SendDeletes() {
  if (deletes_.empty()) return;
  auto job = std::make_unique<IoJob>();
  job->kind = IoJob::Kind::kDelete;
  // A copy a LOAD is reading is deleted once it has read it: a store that
  // reuses space (the swap file) would otherwise hand it to another block
  // under the reader, which then finds the wrong record (not wrong bytes:
  // the LOAD fails its checks and reruns, rule 2, but it is logged as
  // damage).
  std::vector<std::pair<BlockId, BlockLocation>> later;
  for (auto& item : deletes_) {
    auto state = io_state_.find(BlockKey{item.first.ino, item.first.index});
    bool loading = state != io_state_.end() && (state->second.flags & kLoading);
    (loading ? later : job->deletes).push_back(std::move(item));
  }
  deletes_ = std::move(later);
  if (job->deletes.empty()) return;
  ++jobs_in_flight_;
  io_->Submit(std::move(job));
}

// --- requests -----------------------------------------------------------------

uint64_t BlockCache::Submit(std::unique_ptr<PendingRequest> request) {
  uint64_t id = next_id_++;
  Ino ino = request->changes();
  auto order = ino ? change_order_.find(ino) : change_order_.end();
  bool behind = order != change_order_.end() && !order->second.empty();
  Status status;
  if (!behind) {
    status = request->Run();
    if (ino == 0) {
      if (status.ok()) {
        ++stats_.hits;
      } else {
        ++stats_.misses;
      }
    }
    if (status.ok()) return 0;
  }
  // A whole-block write keeps its payload once its copies are made
  // (StoreWholeBlocks), and then only if they do not hold all of it.
  if (behind || status.code() != kNeedStore) request->Keep();
  Parked& parked = parked_[id];
  parked.request = std::move(request);
  ChargeHeld(parked);
  ++stats_.parked_total;
  if (ino) change_order_[ino].push_back(id);
  if (!behind) Park(id, status);
  return id;
}

void BlockCache::Park(uint64_t id, Status why) {
  Parked& parked = parked_.at(id);
  if (why.code() == kNeedRoom) {
    parked.for_room = true;
    room_waiters_.push_back(id);
    pressure_ = true;  // save what is dirty now, so that it can be evicted
    return;
  }
  if (why.code() == kNeedStore) return StoreWholeBlocks(id);
  if (why.code() != kNeedBlocks) {
    spdlog::error("a parked request failed to run: {}", why.ToString());
    parked.request->Abandon(EIO);
    Finish(id);
    return;
  }
  std::vector<BlockKey> needed = keyspace_->needed();
  std::vector<Keyspace::BlockPart> parts = keyspace_->needed_parts();  // a read's
  uint64_t part_bytes = 0;
  for (const Keyspace::BlockPart& part : parts) part_bytes += part.length;
  if (part_bytes > options_.range_read_max) parts.clear();  // a large read: whole blocks
  // LOADs go to the head of the queue: scheduled last to first, they run in
  // file order.
  for (size_t i = needed.size(); i-- > 0;) {
    const BlockKey& key = needed[i];
    if (i < parts.size() && WantsRange(key, parts[i]) && ScheduleRangeLoad(key, parts[i], id)) {
      ++parked.waiting;
      continue;
    }
    if (!ScheduleLoad(key, id, /*urgent=*/true)) continue;
    io_state_[key].waiters.push_back(id);
    ++parked.waiting;
  }
  if (parked.waiting == 0) {
    // The blocks it needs are in memory after all: run it again next.
    MakeReady(id);
  }
}

void BlockCache::RunParked(uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  Parked& parked = it->second;
  Status status = RunAgain(parked);
  if (status.ok()) return Finish(id);
  // It needs something else now (the file changed meanwhile): wait again,
  // without what it held for the last try.
  parked.held.clear();
  parked.ranges.clear();
  Park(id, status);
}

Status BlockCache::RunAgain(Parked& parked) {
  // Its payload only in its copies: it may run only with them (rule 4).
  assert(!parked.payload_in_copies || parked.stored_back);
  if (parked.stored_back) keyspace_->OfferStored(&parked.stored);
  if (!parked.ranges.empty()) keyspace_->OfferRanges(&parked.ranges);
  Status status = parked.request->Run();
  keyspace_->OfferStored(nullptr);
  keyspace_->OfferRanges(nullptr);
  return status;
}

void BlockCache::RunReady() {
  while (!ready_.empty()) {
    uint64_t id = ready_.front();
    ready_.pop_front();
    RunParked(id);
  }
}

void BlockCache::Finish(uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  Ino ino = it->second.request->changes();
  DropUntakenCopies(it->second);
  memory_->Release(MemoryComponent::kRequests, it->second.charged);
  parked_.erase(it);
  if (ino == 0) return;
  auto order = change_order_.find(ino);
  if (order == change_order_.end()) return;
  std::deque<uint64_t>& queue = order->second;
  bool was_head = !queue.empty() && queue.front() == id;
  queue.erase(std::remove(queue.begin(), queue.end(), id), queue.end());
  if (queue.empty()) {
    change_order_.erase(order);
  } else if (was_head) {
    MakeReady(queue.front());  // the next change to this inode may run now
  }
}

void BlockCache::Interrupt(uint64_t id) {
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  ++stats_.interrupted;
  it->second.request->Abandon(EINTR);
  Finish(id);  // the LOADs it waited for go on; their completion skips it
  RunReady();
}

void BlockCache::AbandonAll(int err) {
  std::vector<uint64_t> ids;
  for (const auto& [id, parked] : parked_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids) {
    auto it = parked_.find(id);
    if (it == parked_.end()) continue;
    it->second.request->Abandon(err);
    memory_->Release(MemoryComponent::kRequests, it->second.charged);
    parked_.erase(it);
  }
  change_order_.clear();
  room_waiters_.clear();
  ready_.clear();
}

void BlockCache::WakeRoomWaiters() {
  while (!room_waiters_.empty()) {
    uint64_t id = room_waiters_.front();
    auto it = parked_.find(id);
    if (it == parked_.end()) {
      room_waiters_.pop_front();
      continue;
    }
    Status status = RunAgain(it->second);
    if (status.code() == kNeedRoom) return;  // still none: the rest wait behind it
    room_waiters_.pop_front();
    it->second.for_room = false;
    if (status.ok()) {
      Finish(id);
    } else {
      Park(id, status);
    }
  }
}

void BlockCache::ReleaseWaiters(std::vector<uint64_t> waiters, const BlockRef& block) {
  for (uint64_t id : waiters) {
    auto it = parked_.find(id);
    if (it == parked_.end()) continue;  // interrupted meanwhile
    Parked& parked = it->second;
    if (block) parked.held.push_back(block);
    if (parked.waiting > 0 && --parked.waiting == 0) MakeReady(id);
  }
}

// --- LOAD ------------------------------------------------------------------------

std::unique_ptr<IoJob> BlockCache::LoadJob(IoJob::Kind kind, const BlockKey& key,
                                           const BlockSlot& slot, uint64_t reserved) {
  auto job = std::make_unique<IoJob>();
  job->kind = kind;
  job->key = key;
  job->id = BlockId{key.ino, key.index, slot.stored_version};
  job->where = slot.stored;
  job->reserved = reserved;
  return job;
}

bool BlockCache::ScheduleLoad(const BlockKey& key, uint64_t waiter, bool urgent) {
  BlockSlot* slot = Slot(key);
  if (!slot || !slot->evicted()) return false;
  IoState& state = io_state_[key];
  if (state.flags & (kLoading | kLoadWanted)) return true;  // one LOAD for all who wait
  assert(!(state.flags & kSaving));  // an evicted block is clean and not being saved
  uint64_t reserve = BlockBuffer::ChargeFor(slot->length);
  // Any clean block may make room, this file's too: the blocks a waiting
  // request already has are held, so cannot go (rule 4).
  Room room = memory_->RoomFor(reserve);
  if (room != Room::kYes) {
    if (waiter == 0) {  // readahead waits for nobody
      if (state.flags == 0 && state.waiters.empty()) io_state_.erase(key);
      return false;
    }
    state.flags |= kLoadWanted;
    pending_loads_.push_back(key);
    return true;
  }
  memory_->Charge(MemoryComponent::kIo, reserve);
  state.reserved = reserve;
  state.flags |= kLoading;
  ++loading_;
  auto job = LoadJob(IoJob::Kind::kLoad, key, *slot, reserve);
  ++jobs_in_flight_;
  if (urgent) {
    io_->SubmitUrgent(std::move(job));
  } else {
    io_->Submit(std::move(job));
  }
  return true;
}

void BlockCache::StartPendingLoads() {
  if (pending_loads_.empty()) return;
  std::vector<BlockKey> pending = std::move(pending_loads_);
  pending_loads_.clear();
  for (size_t i = 0; i < pending.size(); ++i) {
    const BlockKey& key = pending[i];
    auto it = io_state_.find(key);
    if (it == io_state_.end() || !(it->second.flags & kLoadWanted)) continue;
    it->second.flags &= ~kLoadWanted;
    BlockSlot* slot = Slot(key);
    if (!slot || !slot->evicted()) {
      // Changed meanwhile: its waiters run again and see.
      ReleaseWaiters(std::move(it->second.waiters), nullptr);
      it->second.waiters.clear();
      if (it->second.flags == 0) io_state_.erase(it);
      continue;
    }
    ScheduleLoad(key, /*waiter=*/1, /*urgent=*/true);
    auto again = io_state_.find(key);
    if (again != io_state_.end() && (again->second.flags & kLoadWanted)) {
      // Still no room: the others wait too, in order.
      pending_loads_.insert(pending_loads_.end(), pending.begin() + i + 1, pending.end());
      return;
    }
  }
}

void BlockCache::ApplyLoad(IoJob& job) {
  IoState& state = io_state_[job.key];
  state.flags &= ~kLoading;
  --loading_;
  memory_->Release(MemoryComponent::kIo, state.reserved);
  state.reserved = 0;
  std::vector<uint64_t> waiters = std::move(state.waiters);
  state.waiters.clear();
  if (state.flags == 0) io_state_.erase(job.key);
  if (!job.loaded.ok() && !IsCopyOf(job)) {
    // The copy was replaced (and its space may have been reused: the swap
    // file) while it was read: the waiters run again and find what is there.
    ReleaseWaiters(std::move(waiters), nullptr);
    return;
  }
  if (!job.loaded.ok()) {
    ++stats_.load_errors;
    int err = job.loaded.status().code() == ENOMEM ? ENOMEM : EIO;
    for (uint64_t id : waiters) {
      auto it = parked_.find(id);
      if (it == parked_.end()) continue;
      it->second.request->Abandon(err);
      Finish(id);
    }
    return;
  }
  ++stats_.loads;
  // Not installed (rule 2): the block changed or went while it was loading;
  // the waiters run again and find what is there now.
  BlockRef installed = InstallLoaded(job.key, std::move(job.loaded).value(), job.where);
  ReleaseWaiters(std::move(waiters), installed);
}

bool BlockCache::IsCopyOf(const IoJob& job) const {
  const BlockSlot* slot = Slot(job.key);
  return slot && slot->evicted() && slot->stored == job.where &&
         slot->stored_version == job.id.version;
}

BlockRef BlockCache::InstallLoaded(const BlockKey& key, RefPtr<BlockBuffer> block,
                                   const BlockLocation& where) {
  BlockSlot* slot = Slot(key);
  if (!slot || !keyspace_->MutableInode(key.ino)->file().Install(key.index, std::move(block), where)) {
    return nullptr;
  }
  AddClean(key, *slot);
  range_reads_.erase(key);
  return slot->buffer;
}

// --- partial reads ---------------------------------------------------------------

bool BlockCache::WantsRange(const BlockKey& key, const Keyspace::BlockPart& part) {
  if (part.length == 0) return false;
  const BlockSlot* slot = Slot(key);
  if (!slot || !slot->evicted() || uint64_t{part.length} * 2 > slot->length ||
      !store_->LoadsRange(slot->stored, slot->length)) {
    return false;
  }
  // A LOAD of the whole block is coming anyway: wait for it.
  auto state = io_state_.find(key);
  if (state != io_state_.end() && (state->second.flags & (kLoading | kLoadWanted))) return false;
  // A sequential reader wants whole blocks (and readahead).
  auto end = read_ends_.find(key.ino);
  uint64_t start = key.index * keyspace_->block_size() + part.offset;
  if (end != read_ends_.end() && end->second == start) return false;
  if (range_reads_.size() >= kMaxTrackedRanges && !range_reads_.contains(key)) range_reads_.clear();
  uint32_t& count = range_reads_[key];
  if (++count >= options_.range_reads_before_load) {
    range_reads_.erase(key);
    return false;
  }
  return true;
}

bool BlockCache::ScheduleRangeLoad(const BlockKey& key, const Keyspace::BlockPart& part,
                                   uint64_t waiter) {
  const BlockSlot* slot = Slot(key);
  uint64_t reserve = BlockBuffer::ChargeFor(part.length);
  if (memory_->RoomFor(reserve) != Room::kYes) return false;  // the LOAD way waits for room
  memory_->Charge(MemoryComponent::kIo, reserve);
  auto job = LoadJob(IoJob::Kind::kLoadRange, key, *slot, reserve);
  job->range_offset = part.offset;
  job->range_length = part.length;
  job->block_length = slot->length;
  job->waiter = waiter;
  ++jobs_in_flight_;
  io_->SubmitUrgent(std::move(job));
  return true;
}

void BlockCache::ApplyRangeLoad(IoJob& job) {
  memory_->Release(MemoryComponent::kIo, job.reserved);
  auto it = parked_.find(job.waiter);
  if (!job.loaded.ok()) {
    if (it == parked_.end()) return;
    if (!IsCopyOf(job)) {
      // The copy was replaced (and may be gone) while it was read: the
      // request runs again and finds what is there now.
      if (it->second.waiting > 0 && --it->second.waiting == 0) MakeReady(job.waiter);
      return;
    }
    ++stats_.load_errors;
    it->second.request->Abandon(job.loaded.status().code() == ENOMEM ? ENOMEM : EIO);
    return Finish(job.waiter);
  }
  ++stats_.range_loads;
  // The block may have been loaded whole or changed meanwhile: the request
  // runs again and uses what is current (FileData::Read checks the version).
  BlockRef installed;
  if (job.whole) installed = InstallLoaded(job.key, std::move(job.loaded).value(), job.where);
  if (it == parked_.end()) return;  // interrupted meanwhile
  Parked& parked = it->second;
  if (installed) {
    parked.held.push_back(installed);
  } else if (!job.whole) {
    parked.ranges.push_back({job.key, job.id.version, job.range_offset, std::move(job.loaded).value()});
  }
  if (parked.waiting > 0 && --parked.waiting == 0) MakeReady(job.waiter);
}

void BlockCache::NoteRead(Ino ino, uint64_t offset, size_t size) {
  uint64_t end = offset + size;
  auto it = read_ends_.find(ino);
  bool sequential = it != read_ends_.end() && it->second == offset;
  if (read_ends_.size() >= kMaxTrackedReaders && it == read_ends_.end()) read_ends_.clear();
  read_ends_[ino] = end;
  if (!sequential || options_.readahead_blocks == 0) return;
  // A full cache does not stop readahead: ScheduleLoad evicts clean blocks
  // for it, or skips it when there is no room now.
  uint64_t block_size = keyspace_->block_size();
  uint64_t first = (end + block_size - 1) / block_size;
  for (uint64_t index = first; index < first + options_.readahead_blocks; ++index) {
    BlockKey key{ino, index};
    const BlockSlot* slot = Slot(key);
    if (!slot) break;
    if (slot->evicted() && LoadAhead(key) == Ahead::kStarted) ++stats_.readaheads;
  }
}

BlockCache::Ahead BlockCache::LoadAhead(const BlockKey& key) {
  auto state = io_state_.find(key);
  if (state != io_state_.end() && (state->second.flags & (kLoading | kLoadWanted))) {
    return Ahead::kLoading;
  }
  return ScheduleLoad(key, /*waiter=*/0, /*urgent=*/false) ? Ahead::kStarted : Ahead::kNoRoom;
}

// --- SAVE ------------------------------------------------------------------------

void BlockCache::SubmitSaves(bool all) {
  int64_t now = clock_->MonotonicNanos();
  if (now < retry_saves_at_ns_) return;  // backing off after a failure
  bool everything = all || pressure_;
  // Unsaved dirty bytes past this are saved now, due or not.
  uint64_t background = static_cast<uint64_t>(memory_->limit() * options_.dirty_background);
  uint64_t unsaved = dirty_bytes_ - std::min(dirty_bytes_, saving_bytes_);
  uint64_t batch_bytes = std::min(options_.save_batch_bytes, memory_->limit() / 4);
  std::vector<DirtyEntry> deferred;
  while (jobs_in_flight_ < options_.max_jobs && !dirty_queue_.empty()) {
    auto job = std::make_unique<IoJob>();
    job->kind = IoJob::Kind::kSave;
    uint64_t bytes = 0;
    while (!dirty_queue_.empty() && job->saves.size() < options_.save_batch_blocks &&
           (bytes < batch_bytes || job->saves.empty())) {
      DirtyEntry entry = dirty_queue_.front();
      if (!everything && entry.due_ns > now && unsaved <= background) break;
      dirty_queue_.pop_front();
      auto state = io_state_.find(entry.key);
      if (state == io_state_.end() || !(state->second.flags & kSaveQueued)) continue;  // stale
      BlockSlot* slot = Slot(entry.key);
      if (!slot || !slot->resident() || !slot->dirty) {
        state->second.flags &= ~kSaveQueued;
        if (state->second.flags == 0 && state->second.waiters.empty()) io_state_.erase(state);
        continue;
      }
      if (state->second.flags & kSaving) {
        deferred.push_back({entry.key, now});  // after the SAVE in progress (rule 1)
        continue;
      }
      state->second.flags = (state->second.flags & ~kSaveQueued) | kSaving;
      ++saving_;
      saving_bytes_ += slot->length;
      unsaved -= std::min<uint64_t>(unsaved, slot->length);
      IoJob::SaveItem item;
      item.key = entry.key;
      item.id = BlockId{entry.key.ino, entry.key.index, slot->version};
      item.buffer = slot->buffer;
      item.length = slot->length;
      bytes += slot->length;
      job->saves.push_back(std::move(item));
    }
    if (job->saves.empty()) break;
    ++jobs_in_flight_;
    io_->Submit(std::move(job));
  }
  for (DirtyEntry& entry : deferred) dirty_queue_.push_back(entry);
}

// A SAVE (of dirty blocks, or of a write's whole blocks) failed: the store
// takes no more for now, and a full disk is noticed (ENOSPC for changes that
// add data, Server::CheckDiskRoom).
void BlockCache::SaveFailed(const Status& status) {
  int64_t now = clock_->MonotonicNanos();
  ++stats_.save_errors;
  last_save_error_ = status;
  saves_failing_ = true;
  disk_full_ = status.code() == ENOSPC;
  save_backoff_ns_ = save_backoff_ns_ == 0 ? kFirstSaveRetryNs
                                           : std::min(save_backoff_ns_ * 2, kMaxSaveRetryNs);
  retry_saves_at_ns_ = now + save_backoff_ns_;
  if (now - last_save_error_log_ns_ >= kSaveErrorLogIntervalNs) {
    last_save_error_log_ns_ = now;
    spdlog::error("saving blocks to the store failed: {}; they stay in memory, dirty, and "
                  "are saved again in {:.1f}s (nothing is lost: the journal has them too){}",
                  status.ToString(), save_backoff_ns_ / 1e9,
                  !disk_full_ ? ""
                  : store_->persistent()
                      ? ". The store's filesystem is full: free space there; until then "
                        "writes wait, and fail with ENOSPC once memory is full"
                      : ". The swap file is full: writes wait, and fail with ENOSPC once memory "
                        "is full of blocks it cannot take; delete files, or mount with a larger "
                        "swap_size");
  }
}

void BlockCache::SaveWorked() {
  if (saves_failing_) spdlog::info("saving blocks to the store works again");
  saves_failing_ = disk_full_ = false;
  save_backoff_ns_ = 0;
}

void BlockCache::ApplySave(IoJob::SaveItem& item) {
  auto state = io_state_.find(item.key);
  if (state != io_state_.end()) {
    state->second.flags &= ~kSaving;
    if (state->second.flags == 0 && state->second.waiters.empty()) io_state_.erase(state);
  }
  --saving_;
  saving_bytes_ -= item.length;
  BlockSlot* slot = Slot(item.key);
  int64_t now = clock_->MonotonicNanos();
  if (!item.saved.ok()) {
    SaveFailed(item.saved.status());
    if (slot && slot->resident() && slot->dirty) {
      IoState& again = io_state_[item.key];
      if (!(again.flags & kSaveQueued)) {
        again.flags |= kSaveQueued;
        dirty_queue_.push_back({item.key, now + save_backoff_ns_});
      }
    }
    return;
  }
  const BlockLocation& where = *item.saved;
  ++stats_.saves;
  SaveWorked();
  // EvictFile asked for the block once this SAVE is in (a failed one keeps
  // the request for its retry).
  bool evict = evict_when_saved_.erase(item.key) > 0;
  if (!slot || slot->hole()) {
    // Gone while it was being saved: nobody recorded this copy (rule 1).
    QueueDelete(item.key, item.id.version, where);
    return;
  }
  if (slot->stored.valid() && slot->stored_version > item.id.version) {
    QueueDelete(item.key, item.id.version, where);  // a newer copy exists already
    return;
  }
  if (slot->stored.valid()) QueueDelete(item.key, slot->stored_version, slot->stored);
  slot->stored = where;
  slot->stored_version = item.id.version;
  if (log_ && store_->persistent()) {
    log_->BlockSaved(item.key.ino, item.key.index, item.id.version, where);
  }
  if (slot->dirty && slot->version == item.id.version) {
    // Unchanged since the SAVE took it (a truncation keeps the version: the
    // copy cut to the length is still the block, block_slot.h 1).
    slot->dirty = false;
    --dirty_blocks_;
    UncountDirty(*slot);
    if (slot->resident()) AddClean(item.key, *slot);
  }
  if (evict) {
    item.buffer = nullptr;  // the SAVE's own reference: the block is not held by it now
    if (Evictable(item.key, *slot)) Evict(item.key, *slot);
  }
}

// --- one file, on request ----------------------------------------------------------

BlockCache::FileAction BlockCache::EvictFile(Ino ino) {
  FileAction action;
  Inode* inode = keyspace_->MutableInode(ino);
  if (!inode || !inode->is_regular()) return action;
  FileData& file = inode->file();
  if (inode->pinned) {  // rule 7
    action.skipped = file.block_count();
    return action;
  }
  int64_t now = clock_->MonotonicNanos();
  for (uint64_t index = 0; index < file.block_count(); ++index) {
    BlockKey key{ino, index};
    BlockSlot& slot = file.mutable_slot(index);
    if (!slot.resident()) continue;
    if (Evictable(key, slot)) {
      Evict(key, slot);
      ++action.now;
      continue;
    }
    auto state = io_state_.find(key);
    uint8_t flags = state == io_state_.end() ? 0 : state->second.flags;
    if (!slot.dirty || (flags & kLoading)) {
      ++action.skipped;  // held by a reply, or IO on it: a later evict gets it
      continue;
    }
    evict_when_saved_.insert(key);
    ++action.later;
    if (flags & kSaveQueued) {
      // Due now: an entry at the front is taken first; the one further back
      // is skipped as stale once the flag is gone (SubmitSaves).
      dirty_queue_.push_front({key, now});
    }
    // kSaving: the SAVE in flight applies it; a block written since is saved
    // again after it, at its own delay.
  }
  if (action.later > 0) SubmitSaves(/*all=*/false);
  return action;
}

BlockCache::FileAction BlockCache::PrefetchFile(Ino ino) {
  FileAction action;
  const Inode* inode = keyspace_->FindInode(ino);
  if (!inode || !inode->is_regular()) return action;
  const FileData& file = inode->file();
  for (uint64_t index = 0; index < file.block_count(); ++index) {
    if (!file.slot(index).evicted()) continue;
    switch (LoadAhead(BlockKey{ino, index})) {
      case Ahead::kStarted:
        ++stats_.prefetches;
        [[fallthrough]];
      case Ahead::kLoading:
        ++action.now;
        break;
      case Ahead::kNoRoom:
        ++action.skipped;
        break;
    }
  }
  return action;
}

// --- whole-block writes ----------------------------------------------------------

void BlockCache::StoreWholeBlocks(uint64_t id) {
  Parked& parked = parked_.at(id);
  DropUntakenCopies(parked);  // of an earlier try
  Keyspace::ToStore to_store = keyspace_->TakeToStore();
  auto job = std::make_unique<IoJob>();
  job->kind = IoJob::Kind::kSave;
  job->for_request = id;
  // Newer than every version a block has now (block_slot.h, 2): the copy
  // holds no change made after the write's own records, which come next.
  uint64_t version = log_->next_seq();
  parked.stored_first = BlockKey{to_store.ino, to_store.first};
  size_t copied = 0;
  for (const RefPtr<BlockBuffer>& block : to_store.blocks) copied += block->length();
  if (parked.request->KeepCopied(copied)) {
    parked.payload_in_copies = true;
  } else {
    ChargeHeld(parked);  // it kept a copy after all
  }
  for (size_t i = 0; i < to_store.blocks.size(); ++i) {
    BlockKey key{to_store.ino, to_store.first + i};
    IoJob::SaveItem item;
    item.key = key;
    item.id = BlockId{key.ino, key.index, version};
    item.buffer = to_store.blocks[i];
    item.length = static_cast<uint32_t>(to_store.blocks[i]->length());
    job->saves.push_back(std::move(item));
    parked.stored.push_back(StoredBlock{std::move(to_store.blocks[i]), {}, version});
  }
  ++jobs_in_flight_;
  io_->SubmitUrgent(std::move(job));  // a writer waits for it
}

void BlockCache::ApplyStored(IoJob& job) {
  auto it = parked_.find(job.for_request);
  Status failed;
  for (const IoJob::SaveItem& item : job.saves) {
    if (!item.saved.ok() && failed.ok()) failed = item.saved.status();
  }
  if (it == parked_.end() || !failed.ok()) {
    // Interrupted meanwhile, or the store failed: the copies are nobody's.
    for (const IoJob::SaveItem& item : job.saves) {
      if (item.saved.ok()) QueueDelete(item.key, item.id.version, *item.saved);
    }
    if (!failed.ok()) SaveFailed(failed);  // the write keeps its bytes in the journal
    if (it == parked_.end()) return;
    RestorePayload(it->second);
    it->second.stored.clear();
  } else {
    for (size_t i = 0; i < job.saves.size(); ++i) it->second.stored[i].where = *job.saves[i].saved;
    stats_.saves += job.saves.size();
    SaveWorked();
  }
  it->second.stored_back = true;
  MakeReady(job.for_request);
}

void BlockCache::RestorePayload(Parked& parked) {
  if (!parked.payload_in_copies) return;
  parked.payload_in_copies = false;
  std::string bytes;
  for (const StoredBlock& copy : parked.stored) {
    bytes.append(copy.buffer->data(), copy.buffer->length());
  }
  parked.request->RestorePayload(std::move(bytes));
  ChargeHeld(parked);
}

void BlockCache::ChargeHeld(Parked& parked) {
  size_t charge = kParkedCost + parked.request->held_bytes();
  if (charge > parked.charged) {
    memory_->Charge(MemoryComponent::kRequests, charge - parked.charged);
  } else if (charge < parked.charged) {
    memory_->Release(MemoryComponent::kRequests, parked.charged - charge);
  }
  parked.charged = charge;
}

void BlockCache::DropUntakenCopies(Parked& parked) {
  for (size_t i = 0; i < parked.stored.size(); ++i) {
    const StoredBlock& copy = parked.stored[i];
    if (!copy.where.valid()) continue;  // not stored (yet)
    BlockKey key{parked.stored_first.ino, parked.stored_first.index + i};
    const BlockSlot* slot = Slot(key);
    if (slot && slot->stored == copy.where) continue;  // the write took it
    QueueDelete(key, copy.stored_version, copy.where);
  }
  parked.stored.clear();
  parked.stored_back = false;
}

// --- IO results -------------------------------------------------------------------

void BlockCache::OnIoReady() {
  for (std::unique_ptr<IoJob>& job : io_->TakeProcessed()) {
    --jobs_in_flight_;
    switch (job->kind) {
      case IoJob::Kind::kLoad:
        ApplyLoad(*job);
        // A pinned block that is not in after all (the LOAD failed, or the
        // copy changed while it was read): the cron tries again (rule 7).
        if (const BlockSlot* slot = Slot(job->key);
            slot && slot->evicted() && IsPinned(job->key.ino)) {
          pin_loading_.insert(job->key.ino);
        }
        break;
      case IoJob::Kind::kLoadRange:
        ApplyRangeLoad(*job);
        break;
      case IoJob::Kind::kSave:
        if (job->for_request != 0) {
          ApplyStored(*job);
        } else {
          for (IoJob::SaveItem& item : job->saves) ApplySave(item);
        }
        break;
      case IoJob::Kind::kDelete:
        if (!job->status.ok()) spdlog::warn("freeing stored blocks: {}", job->status.ToString());
        break;
      case IoJob::Kind::kWork:
        if (job->done) job->done();
        break;
    }
  }
  StartPendingLoads();
  WakeRoomWaiters();
  RunReady();
}

void BlockCache::Cron() {
  BlockBuffer::AdvanceAccessClock(++tick_);
  // A full disk is noticed by a failed SAVE and forgotten by a good one;
  // with nothing left to save, try again after the backoff.
  if (saves_failing_ && dirty_blocks_ == 0 && clock_->MonotonicNanos() >= retry_saves_at_ns_) {
    saves_failing_ = disk_full_ = false;
  }
  uint64_t limit = memory_->limit();
  if (memory_->InUse() > limit * options_.high_watermark) {
    // Bounded, like Redis's activeExpireCycle: after max_memory shrank by
    // gigabytes there are more blocks to drop than one tick should take;
    // the next ticks go on, and writers wait for room meanwhile.
    EvictDownTo(static_cast<uint64_t>(limit * options_.low_watermark), {}, kCronEvictionNs);
  }
  // Pinned blocks that had no room to load yet (rule 7).
  if (!pin_loading_.empty()) {
    std::vector<Ino> loaded;
    for (Ino ino : pin_loading_) {
      if (LoadPinned(ino)) loaded.push_back(ino);
    }
    for (Ino ino : loaded) pin_loading_.erase(ino);
  }
  // Memory full of dirty blocks: save them now, whatever flush_delay says.
  if (memory_->InUse() > limit * options_.high_watermark) pressure_ = true;
  if (pressure_ && room_waiters_.empty() && memory_->InUse() < limit * options_.low_watermark) {
    pressure_ = false;
  }
  Flush();
}

void BlockCache::Flush() {
  SubmitSaves(false);
  SendDeletes();
  StartPendingLoads();
  WakeRoomWaiters();
  RunReady();
}

void BlockCache::SubmitWork(std::function<void()> work, std::function<void()> done) {
  auto job = std::make_unique<IoJob>();
  job->kind = IoJob::Kind::kWork;
  job->work = std::move(work);
  job->done = std::move(done);
  ++jobs_in_flight_;
  io_->Submit(std::move(job));
}

void BlockCache::OnJournalGeneration(uint64_t gen) {
  generation_ = gen;
  store_->SetEpoch(gen);
}

void BlockCache::OnJournalRewritten(uint64_t base_gen, std::function<void()> released) {
  BlockStore* store = store_;
  auto status = std::make_shared<Status>();
  SubmitWork([store, base_gen, status] { *status = store->ReleaseBefore(base_gen); },
             [status, released = std::move(released)] {
               if (!status->ok()) {
                 spdlog::warn("giving back the store's dead space: {}", status->ToString());
               }
               if (released) released();
             });
}

bool BlockCache::SaveAllAndDrain(int64_t timeout_ns) { return Drain(timeout_ns, /*save=*/true); }

bool BlockCache::DrainIo(int64_t timeout_ns) { return Drain(timeout_ns, /*save=*/false); }

bool BlockCache::Drain(int64_t timeout_ns, bool save) {
  int64_t start = clock_->MonotonicNanos();
  int64_t deadline = start + timeout_ns;
  int64_t next_progress = start + kDrainProgressNs;
  for (;;) {
    if (save && clock_->MonotonicNanos() >= next_progress) {
      // A long final save (many small files) says how far it is.
      next_progress += kDrainProgressNs;
      spdlog::info("saving to the store before exit: {} blocks ({}) left, {}s to go at most",
                   dirty_blocks_, FormatSize(dirty_bytes_),
                   (deadline - clock_->MonotonicNanos()) / 1'000'000'000);
    }
    if (save) {
      retry_saves_at_ns_ = std::min(retry_saves_at_ns_, clock_->MonotonicNanos());
      SubmitSaves(/*all=*/true);
      SendDeletes();
    }
    if (jobs_in_flight_ == 0) {
      if (!save || dirty_blocks_ == 0) return true;
      if (dirty_queue_.empty()) return false;  // dirty but nothing to save: should not be
    }
    if (clock_->MonotonicNanos() >= deadline) return false;
    if (io_->threads() == 0) {
      io_->RunNext();
    } else {
      pollfd fd{io_->wake_fd(), POLLIN, 0};
      poll(&fd, 1, 100);
    }
    OnIoReady();
    if (save && saves_failing_) {
      // Wait out the backoff before trying again.
      pollfd none{-1, 0, 0};
      poll(&none, 0, static_cast<int>(std::min<int64_t>(save_backoff_ns_ / 1'000'000, 1000)));
    }
  }
}

// --- eviction ---------------------------------------------------------------------

// Bytes that must still be saved: what the disk must keep room for. A
// truncated dirty block counts its old length until it is saved.
void BlockCache::CountDirty(BlockSlot& slot) {
  if (slot.length > slot.dirty_counted) {
    dirty_bytes_ += slot.length - slot.dirty_counted;
    slot.dirty_counted = slot.length;
  }
}

void BlockCache::UncountDirty(BlockSlot& slot) {
  dirty_bytes_ -= std::min<uint64_t>(dirty_bytes_, slot.dirty_counted);
  slot.dirty_counted = 0;
}

void BlockCache::AddClean(const BlockKey& key, BlockSlot& slot) {
  if (slot.resident_pos != 0 || IsPinned(key.ino)) return;  // rule 7
  clean_.push_back(key);
  slot.resident_pos = static_cast<uint32_t>(clean_.size());
}

void BlockCache::RemoveClean(BlockSlot& slot) {
  if (slot.resident_pos == 0) return;
  size_t at = slot.resident_pos - 1;
  slot.resident_pos = 0;
  if (at + 1 != clean_.size()) {
    clean_[at] = clean_.back();
    if (BlockSlot* moved = Slot(clean_[at])) moved->resident_pos = static_cast<uint32_t>(at + 1);
  }
  clean_.pop_back();
}

bool BlockCache::Evictable(const BlockKey& key, const BlockSlot& slot) const {
  if (!slot.resident() || slot.dirty || slot.buffer.use_count() != 1 || !slot.stored.valid()) {
    return false;
  }
  auto state = io_state_.find(key);
  return state == io_state_.end() || state->second.flags == 0;
}

void BlockCache::Evict(const BlockKey& key, BlockSlot& slot) {
  RemoveClean(slot);
  slot.buffer = nullptr;  // frees it: its charge goes with it
  ++stats_.evictions;
}

uint64_t BlockCache::EvictDownTo(uint64_t target, const BusyBlocks& busy, int64_t budget_ns) {
  uint64_t before = memory_->InUse();
  int fruitless = 0;
  std::uniform_int_distribution<size_t> pick;
  int64_t deadline = budget_ns > 0 ? clock_->MonotonicNanos() + budget_ns : 0;
  uint64_t rounds = 0;
  while (memory_->InUse() > target && !clean_.empty() && fruitless < kFruitlessRounds) {
    if (deadline != 0 && ++rounds % 64 == 0 && clock_->MonotonicNanos() >= deadline) break;
    BlockSlot* best = nullptr;
    BlockKey best_key;
    double best_score = -1;
    for (int i = 0; i < options_.eviction_samples; ++i) {
      size_t at = pick(rng_) % clean_.size();
      BlockKey key = clean_[at];
      BlockSlot* slot = Slot(key);
      if (!slot || busy.Contains(key.ino, key.index) || !Evictable(key, *slot)) continue;
      // Swappability: idle time times log(1 + size), as Redis's VM.
      double idle = static_cast<double>(tick_ - slot->buffer->touched()) + 1;
      double score = idle * std::log2(2.0 + slot->length);
      if (score > best_score) {
        best_score = score;
        best = slot;
        best_key = key;
      }
    }
    if (!best) {
      ++fruitless;
      continue;
    }
    fruitless = 0;
    Evict(best_key, *best);
  }
  uint64_t after = memory_->InUse();
  return before > after ? before - after : 0;
}

Room BlockCache::Reclaim(uint64_t bytes, const BusyBlocks& busy) {
  uint64_t limit = memory_->limit();
  if (bytes > limit) return Room::kNo;
  // Evict a little more than asked, to the low watermark, so that the next
  // allocations find room too.
  uint64_t target = std::min<uint64_t>(limit - bytes, limit * options_.low_watermark);
  EvictDownTo(target, busy);
  if (bytes <= memory_->Available()) return Room::kYes;
  pressure_ = true;
  if (saves_failing_) return Room::kNo;  // nothing dirty can become clean now
  // Block memory (dirty blocks being saved, loads, blocks held by replies)
  // becomes free with time; other memory (the namespace) does not.
  uint64_t block_memory = memory_->Used(MemoryComponent::kBlocks) + memory_->Used(MemoryComponent::kIo);
  // Pinned blocks never become free. Once all are in, they take at least
  // their footprint; while some are still to load, that much is not in
  // block memory yet, and none is taken off (waiting a little is better
  // than an ENOSPC that was not due).
  uint64_t pinned = pin_loading_.empty() ? keyspace_->pinned_bytes() : 0;
  uint64_t freeable = block_memory > pinned ? block_memory - pinned : 0;
  return freeable >= bytes ? Room::kLater : Room::kNo;
}

// --- reporting -----------------------------------------------------------------

std::string BlockCache::StateOf(Ino ino) const {
  const Inode* inode = keyspace_->FindInode(ino);
  if (!inode || !inode->is_regular()) return "";
  const FileData& file = inode->file();
  uint64_t memory = 0, dirty = 0, saving = 0, on_disk = 0, loading = 0, holes = 0;
  // Evicted means in the disk store, or in the swap file (which does not persist).
  const char* evicted = store_->persistent() ? "on-disk" : "swapped";
  std::string single;
  for (size_t i = 0; i < file.block_count(); ++i) {
    const BlockSlot& slot = file.slot(i);
    auto state = io_state_.find(BlockKey{ino, i});
    uint8_t flags = state == io_state_.end() ? 0 : state->second.flags;
    if (flags & kSaving) {
      ++saving, single = "saving";
    } else if (flags & (kLoading | kLoadWanted)) {
      ++loading, single = "loading";
    } else if (slot.hole()) {
      ++holes, single = "hole";
    } else if (slot.evicted()) {
      ++on_disk, single = evicted;
    } else if (slot.dirty) {
      ++dirty, single = "dirty";
    } else {
      ++memory, single = "memory";
    }
  }
  if (file.block_count() == 0) return "empty";
  if (file.block_count() == 1) return single;
  return fmt::format("blocks:{} memory:{} dirty:{} saving:{} {}:{} loading:{} holes:{}",
                     file.block_count(), memory, dirty, saving, evicted, on_disk, loading, holes);
}

void BlockCache::SetFlushDelay(int64_t ns) {
  options_.flush_delay_ns = ns;
  // A min() with one value keeps the queue in the order it was in.
  int64_t latest = clock_->MonotonicNanos() + ns;
  for (DirtyEntry& entry : dirty_queue_) entry.due_ns = std::min(entry.due_ns, latest);
}

std::string BlockCache::Info() const {
  std::string out;
  auto line = [&](std::string_view key, const auto& value) {
    out += fmt::format("{}:{}\n", key, value);
  };
  out += "# Cache\n";
  line("flush_delay_ms", options_.flush_delay_ns / 1'000'000);
  line("blocks_resident", resident_blocks());
  line("blocks_clean", clean_.size());
  line("blocks_dirty", dirty_blocks_);
  line("dirty_bytes", dirty_bytes_);
  line("blocks_saving", saving_);
  line("blocks_loading", loading_);
  line("cache_hits", stats_.hits);
  line("cache_misses", stats_.misses);
  line("loads_total", stats_.loads);
  line("range_loads_total", stats_.range_loads);
  line("load_errors", stats_.load_errors);
  line("saves_total", stats_.saves);
  line("save_errors", stats_.save_errors);
  line("last_save_status", saves_failing_ ? last_save_error_.ToString() : std::string("ok"));
  line("evictions_total", stats_.evictions);
  line("deletes_total", stats_.deletes);
  line("readaheads_total", stats_.readaheads);
  line("prefetches_total", stats_.prefetches);
  line("pinned_files", keyspace_->pinned_files());
  line("pinned_bytes", keyspace_->pinned_bytes());
  line("pinned_bytes_limit", keyspace_->PinLimit());
  line("pinned_files_loading", pin_loading_.size());
  line("pin_loads_total", stats_.pin_loads);
  line("parked_requests", parked_.size());
  line("parked_total", stats_.parked_total);
  line("interrupted_total", stats_.interrupted);
  line("waiting_for_memory", room_waiters_.size());
  line("memory_pressure", pressure_ ? 1 : 0);
  out += "\n# IO\n";
  line("io_threads", io_->threads());
  line("io_queue_length", io_->queued());
  line("io_processing", io_->processing());
  line("io_jobs_in_flight", jobs_in_flight_);
  line("dirty_queue_length", dirty_queue_.size());
  return out;
}

}  // namespace keyfs
