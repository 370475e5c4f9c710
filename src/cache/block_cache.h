#pragma once

// BlockCache: memory as a cache over a block store (DESIGN §4; Redis's
// dscache.c, built the way its TODO list says it should have been).
//
// The keyspace holds every block's slot (block_slot.h): its bytes when they
// are in memory, and where the store keeps a copy. This cache decides what
// moves between the two, and when:
//
//  - SAVE. A block that is written becomes dirty (BlockObserver::Dirtied) and
//    is queued, once however often it is written, to be saved `flush_delay`
//    later. When its turn comes, the SAVE takes the block's current buffer (a
//    reference: the buffer is immutable from then on, and a write copies it).
//    SAVEs go to the IO threads in batches; a batch ends with one Sync, and
//    only then are its locations used. A block written again while it is
//    being saved stays dirty and is saved again. A SAVE that fails keeps the
//    block dirty and is retried with backoff. Once dirty blocks not yet in a
//    SAVE fill `dirty_background` of the budget, the oldest are saved at
//    once, before their delay is up.
//  - LOAD. A request that needs an evicted block is parked (PendingRequest):
//    it waits on each missing block, a LOAD is scheduled once however many
//    requests wait, room for it is set aside when it is scheduled, and the
//    request runs again when its last block is in, holding the blocks it
//    waited for so that eviction cannot take them away before it has run.
//    LOADs go to the head of the IO queue. A LOAD that comes back for a block
//    that changed or went away meanwhile is not installed; its waiters run
//    again and find the current state.
//  - Eviction. From a high watermark down to a low one, in the cron and when
//    an allocation needs room (Reclaimer), the best of a few sampled resident
//    blocks is dropped: clean, unshared, not in IO, idle longest for its size
//    (Redis's swappability, idle × log(1 + size)). Dirty blocks are never
//    dropped: when memory is full of them, their SAVEs go out at once and
//    whatever needs memory waits (back-pressure, RoomFor's kLater) until
//    SAVEs have made blocks clean. ENOSPC only when nothing can free memory:
//    the budget is full of what cannot be evicted, or the disk takes no more
//    saves.
//  - Pinned files (user.keyfs.pin, Inode::pinned; the keyspace keeps the
//    flag, the count and the budget, keyspace.h). A pinned file's blocks are
//    never evicted, in either mode: they are kept out of the eviction sample
//    set, so no sampling round ever looks at them. They are still saved as
//    any block is (pinned is not unsaved: a SAVE makes a pinned block clean,
//    it only stays). Its evicted blocks (pinned while on disk, or left
//    evicted by replay) are loaded as readahead loads (the pin returns at
//    once), and those there was no room for yet are tried again by the cron
//    until all are in. Unpinned, its clean blocks are candidates again.
//  - Readahead. A reader going through a file block by block gets the next
//    blocks loaded before it asks.
//  - Partial reads. A small read (at most `range_read_max`) of an evicted
//    block that is not part of a sequential read is served from the part of
//    the stored copy it reads (a range LOAD, BlockStore::LoadRange): a 4 KiB
//    random read costs a 4 KiB disk read, not a block's. The part goes to
//    the request that asked (LoadedRange, Keyspace::OfferRanges) and is not
//    cached: the kernel's page cache keeps what it was sent. A block read in
//    part `range_reads_before_load` times is loaded whole (ski rental: by
//    then the parts have cost about what the whole block does).
//  - Whole-block writes. With a persistent store, a write of whole blocks at
//    an offset is stored before it is applied (a journaling filesystem's
//    ordered data mode): Keyspace::Write answers kNeedStore with copies of
//    the blocks, the request parks, one SAVE job (at the head of the queue,
//    no Sync of its own) writes them to the store, and the request runs
//    again with their locations: the blocks become resident and clean, and
//    the journal records only where they are (kWriteStored). Each byte of a
//    large sequential write reaches the disk once, and such blocks never
//    wait in memory for a SAVE. A failed store makes the write go the usual
//    way (its bytes in the journal, the block dirty); copies the write did
//    not take (interrupted, failed, or changed its mind) are deleted.
//
// Rules (DESIGN §4.1), and where they are kept:
//  1. One job in flight per block (io_ flags; a range LOAD is not one: it
//     only reads a stored copy, and its bytes are used only while the slot
//     is still that copy; a whole-block write's SAVE
//     is not one: it writes bytes no slot holds yet, to a new location, and
//     the write that takes them drops what the slot held, rules 1-2 then
//     dealing with jobs still running for the old bytes): a block is not saved while
//     its SAVE or LOAD runs, and not loaded while a SAVE of it runs or is
//     queued (it is resident then anyway). The store never overwrites: a
//     SAVE writes a new copy at a new location, so a late SAVE cannot bring a
//     dead block back: when it returns for a block that is gone, its copy is
//     deleted at once (it was never recorded anywhere).
//  2. A LOAD's result is installed only if the slot is still the evicted copy
//     the LOAD read (FileData::Install compares the location). A LOAD that
//     failed for a copy that is no longer the slot's is no error: the swap
//     file reuses the space of deleted copies, so the read may have found
//     another block's bytes; its waiters run again (IsCopyOf).
//  3. Store and journal. A SAVE's location is recorded (kBlockSaved, a
//     snapshot) only after the Sync that made it durable, so the journal
//     never points at bytes that are not there. A whole-block write's
//     location (kWriteStored) is recorded once the store has written it (in
//     the page cache: a crash of the process loses nothing) and before it is
//     synced; the journal syncs the store before every fdatasync of its own
//     and before a rewrite's snapshot (Journal::SyncStore), so no durable
//     record names a copy that is not durable. Otherwise the journal's
//     records hold every byte until a rewrite replaces them with locations, and a copy the cache deletes stays on disk until no journal
//     file can refer to it — its segment is removed only after a rewrite of a
//     later generation (DiskBlockStore::RemoveRetired; the cache hands the
//     journal's generation to the store before the rewrite forks). A SAVE
//     need not wait for the journal to be synced: a copy nobody recorded is
//     dead space, found at mount.
//  4. Parked requests own their inputs (the adapter copies a write's payload)
//     and hold the blocks they waited for until they have run. A whole-block
//     write's inputs are its copies: it keeps only its payload's length
//     (KeepCopied), runs again only with them offered (RunAgain), and if the
//     store fails it is given the bytes back from them (RestorePayload)
//     before they are dropped.
//  5. Room for a LOAD is set aside when it is scheduled (kIo), not when it
//     returns.
//  6. At mount, every slot the replayed keyspace holds is counted live in the
//     store; everything else in the store is dead space (orphans).
//  7. A pinned file's blocks are never in clean_, the eviction sample set
//     (AddClean refuses them; PinChanged takes them out), so eviction never
//     drops one; EvictFile leaves a pinned file alone. Every evicted block of
//     a pinned file is loading, or its file is in pin_loading_.
//
// Threading: the loop thread owns all of it. IO threads see only the jobs
// (io_queue.h); their results are applied here, in OnIoReady.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>

#include "src/base/clock.h"
#include "src/base/memory_accountant.h"
#include "src/cache/io_queue.h"
#include "src/keyspace/block_slot.h"
#include "src/keyspace/keyspace.h"
#include "src/keyspace/mutation_log.h"
#include "store/block_store.h"

namespace keyfs {

struct CacheOptions {
  int64_t flush_delay_ns = 1'000'000'000;
  // Memory (of max_memory) above which eviction starts, and where it stops.
  double high_watermark = 0.95;
  double low_watermark = 0.90;
  // Dirty bytes (of max_memory) above which the oldest dirty blocks are
  // saved before their flush_delay is up, so that a writer faster than the
  // delay finds clean blocks to evict instead of waiting for SAVEs to start
  // (the kernel's dirty_background_ratio).
  double dirty_background = 0.25;
  // Blocks sampled for each eviction.
  int eviction_samples = 16;
  // A SAVE job holds at most this many blocks and bytes (one Sync for all),
  // and at most a quarter of max_memory, so that a small cache is not held
  // by one job. Small files make small blocks: one Sync per 64 of them made
  // the final save of 1 M small files a minute of fdatasyncs.
  size_t save_batch_blocks = 1024;
  uint64_t save_batch_bytes = uint64_t{16} << 20;
  // Jobs in the IO queue at once.
  size_t max_jobs = 16;
  // Blocks loaded ahead of a sequential reader.
  uint32_t readahead_blocks = 4;
  // Partial reads: a read of at most this many bytes of an evicted block
  // reads only that part of it (0: whole blocks always), until the block
  // has been read in part this many times.
  uint32_t range_read_max = 64 << 10;
  uint32_t range_reads_before_load = 8;
  uint64_t seed = 0x6b657966;  // eviction sampling
};

// A request that could not finish yet (Keyspace said kNeedBlocks or
// kNeedRoom): the adapter's, parked here until it can run again.
class PendingRequest {
 public:
  virtual ~PendingRequest() = default;
  // Runs the request again. OK when it has finished (its reply is queued,
  // whatever it was); kNeedBlocks (Keyspace::needed() says which) or
  // kNeedRoom when it must wait again.
  virtual Status Run() = 0;
  // Gives up: answers the request with `err` (EINTR when interrupted, EIO
  // when a block could not be read, ...).
  virtual void Abandon(int err) = 0;
  // The inode it changes, or 0 for one that changes nothing (a read).
  // Changes to one inode run in the order they came (O_APPEND writes).
  virtual Ino changes() const = 0;
  // It is being parked: it must copy whatever it refers to that lives only
  // for the first try (a write's payload in the receive buffer).
  virtual void Keep() {}
  // It is being parked while the copies of a whole-block write are stored
  // (kNeedStore), and those copies hold `copied` bytes of its payload, in
  // order. If that is all of it, it may keep only the payload's length
  // (true): run again with the stored copies, the write reads no byte of
  // it (Keyspace::Write). If the store fails, the cache gives the bytes back
  // from the copies (RestorePayload) before the write runs the usual way.
  // Otherwise it keeps the payload as Keep() does (false).
  virtual bool KeepCopied(size_t copied) {
    (void)copied;
    Keep();
    return false;
  }
  // The payload's bytes, after KeepCopied said true.
  virtual void RestorePayload(std::string bytes) { (void)bytes; }
  // Memory it holds while parked (its payload), which the cache charges to
  // kRequests; what it charges itself (a payload copy in pool memory) is not
  // counted here.
  virtual size_t held_bytes() const = 0;
};

struct CacheStats {
  uint64_t hits = 0, misses = 0;  // block reads served from memory / that waited
  uint64_t loads = 0, load_errors = 0;
  uint64_t range_loads = 0;  // parts of blocks read for one request
  uint64_t saves = 0, save_errors = 0;
  uint64_t evictions = 0;
  uint64_t deletes = 0;
  uint64_t readaheads = 0;
  uint64_t prefetches = 0;  // blocks loaded for user.keyfs.prefetch
  uint64_t pin_loads = 0;   // blocks loaded because their file is pinned
  uint64_t parked_total = 0, interrupted = 0;
};

class BlockCache final : public BlockObserver, public Reclaimer {
 public:
  // `log` gets kBlockSaved records when the store persists (may be null).
  BlockCache(Keyspace* keyspace, BlockStore* store, IoQueue* io, MemoryAccountant* memory,
             const Clock* clock, const CacheOptions& options, MutationLog* log);
  ~BlockCache() override;
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;

  // After replay, before serving: learns every resident block, queues the
  // dirty ones for saving, and calls `live` for every stored copy the
  // keyspace refers to (rule 6). Attaches itself to the keyspace and the
  // memory budget.
  void Attach(const std::function<void(const BlockLocation&)>& live);

  // --- requests ---------------------------------------------------------------
  // Runs `request`, or parks it until it can run. Returns the id it is parked
  // under (for Interrupt), or 0 when it finished at once.
  uint64_t Submit(std::unique_ptr<PendingRequest> request);
  // The kernel interrupted parked request `id`: it is answered EINTR now;
  // the loads it waited for go on.
  void Interrupt(uint64_t id);
  // A read of `size` bytes at `offset` of `ino` was served (readahead, hits).
  void NoteRead(Ino ino, uint64_t offset, size_t size);

  // --- the loop ---------------------------------------------------------------
  // The IO queue's eventfd is readable: applies what the IO threads did.
  void OnIoReady();
  // 10 Hz: due SAVEs, eviction down to the low watermark, retries.
  void Cron();
  // End of a loop iteration: sends the IO work the iteration made.
  void Flush();
  // A journal rewrite starts generation `gen`: copies deleted from now on
  // may be in its snapshot (rule 3).
  void OnJournalGeneration(uint64_t gen);
  // A rewrite made generation `base_gen` the base: copies deleted before it
  // started are no longer referred to by any journal file, and their space
  // is given back (on an IO thread; then `released` runs).
  void OnJournalRewritten(uint64_t base_gen, std::function<void()> released = nullptr);
  // Unmount: saves every dirty block and waits for all IO. Blocks the loop
  // thread; call it after the loop has stopped. False when some blocks could
  // not be saved (they are still in the journal).
  bool SaveAllAndDrain(int64_t timeout_ns);
  // Unmount in swap mode: waits for the IO in flight and saves nothing (the
  // swap file goes; the journal holds every byte). False on a timeout.
  bool DrainIo(int64_t timeout_ns);
  // Answers every parked request with `err` (the server stops).
  void AbandonAll(int err);
  // A new flush_delay on a running mount (keyfs-ctl config): blocks
  // dirtied from now on wait `ns`; those waiting already, at most that.
  void SetFlushDelay(int64_t ns);
  // --- one file, on request (user.keyfs.evict / user.keyfs.prefetch) -------------
  struct FileAction {
    uint64_t now = 0;      // evict: dropped; prefetch: loading (scheduled now or before)
    uint64_t later = 0;    // evict: dirty, saved now and dropped once saved
    uint64_t skipped = 0;  // evict: in use (held by a reply, IO running); prefetch: no room
  };
  // Drops the clean blocks of `ino` from memory now; its dirty blocks are
  // saved now rather than at their flush_delay, and dropped when saved
  // (unless written again meanwhile). Nothing is lost: a block is only ever
  // dropped with a stored copy.
  FileAction EvictFile(Ino ino);
  // LOADs the evicted blocks of `ino`, as readahead does (no request waits
  // for them): as many as there is room for now, clean blocks of other
  // files evicted for them as for any load.
  FileAction PrefetchFile(Ino ino);
  // Files pinned whose blocks are not all in memory yet.
  size_t pinned_loading() const { return pin_loading_.size(); }

  // Runs `work` on an IO thread, then `done` here (compaction's steps).
  void SubmitWork(std::function<void()> work, std::function<void()> done);
  // The stored copy of `key` at `where` is no longer needed.
  void DeleteCopy(const BlockKey& key, uint64_t version, const BlockLocation& where) {
    QueueDelete(key, version, where);
  }
  // Block slot `key`, or null when the block is not there.
  BlockSlot* FindSlot(const BlockKey& key) { return Slot(key); }

  // --- what it holds ------------------------------------------------------------
  size_t parked() const { return parked_.size(); }
  uint64_t resident_blocks() const { return clean_.size() + dirty_blocks_; }
  uint64_t dirty_blocks() const { return dirty_blocks_; }
  // Bytes of dirty blocks (at most: a truncated one counts its old length).
  uint64_t dirty_bytes() const { return dirty_bytes_; }
  uint64_t saving_blocks() const { return saving_; }
  uint64_t loading_blocks() const { return loading_; }
  bool disk_full() const { return disk_full_; }
  const CacheStats& stats() const { return stats_; }
  // "memory", "dirty", "saving", "on-disk", "loading", or counts per state
  // for a file of several blocks (user.keyfs.state).
  std::string StateOf(Ino ino) const;
  // INFO lines of the # Cache and # IO sections.
  std::string Info() const;

  // BlockObserver
  void Dirtied(Ino ino, uint64_t index, BlockSlot& slot, bool was_dirty) override;
  void Dropping(Ino ino, uint64_t index, BlockSlot& slot) override;
  void Stored(Ino ino, uint64_t index, BlockSlot& slot) override;
  void PinChanged(Ino ino, bool pinned) override;
  // Reclaimer
  Room Reclaim(uint64_t bytes, const BusyBlocks& busy) override;

 private:
  // Per block with IO scheduled or running (DESIGN: the io_queued flags).
  enum Flag : uint8_t {
    kSaveQueued = 1,   // in dirty_queue_
    kSaving = 2,       // in a SAVE job
    kLoading = 4,      // in a LOAD job
    kLoadWanted = 8,   // in pending_loads_: waits for room to be loaded
  };
  struct IoState {
    uint8_t flags = 0;
    uint64_t reserved = 0;            // kLoading: room set aside
    std::vector<uint64_t> waiters;    // parked requests waiting for its LOAD
  };
  struct Parked {
    std::unique_ptr<PendingRequest> request;
    size_t waiting = 0;             // blocks still loading
    bool for_room = false;          // in room_waiters_
    std::vector<BlockRef> held;     // rule 4
    std::vector<LoadedRange> ranges;  // parts of blocks read for it
    size_t charged = 0;
    // A write of whole blocks (kNeedStore): its copies, stored or being
    // stored; `stored_back` once the store has answered (an empty `stored`
    // then: it failed, and the write goes the usual way).
    std::vector<StoredBlock> stored;
    BlockKey stored_first;  // stored[i] is block stored_first.index + i
    bool stored_back = false;
    // Its payload is only in `stored` (PendingRequest::KeepCopied): the
    // copies must not be dropped before it is given back.
    bool payload_in_copies = false;
  };
  struct DirtyEntry {
    BlockKey key;
    int64_t due_ns;
  };

  BlockSlot* Slot(const BlockKey& key);
  const BlockSlot* Slot(const BlockKey& key) const;

  // Requests.
  void Park(uint64_t id, Status why);
  void RunParked(uint64_t id);
  void Finish(uint64_t id);
  void WakeRoomWaiters();
  // Schedules a LOAD of `key` for request `waiter` (0: readahead). False
  // when the block need not be loaded (not evicted any more).
  bool ScheduleLoad(const BlockKey& key, uint64_t waiter, bool urgent);
  // A LOAD of evicted block `key` that no request waits for (readahead,
  // prefetch): one is running or wanted already, this one started, or
  // there is no room for it now (it is not tried again).
  enum class Ahead { kLoading, kStarted, kNoRoom };
  Ahead LoadAhead(const BlockKey& key);
  void StartPendingLoads();
  // A LOAD (or range LOAD) of the stored copy `slot` holds, with `reserved`
  // bytes of the budget set aside for it.
  std::unique_ptr<IoJob> LoadJob(IoJob::Kind kind, const BlockKey& key, const BlockSlot& slot,
                                 uint64_t reserved);
  // Whether `part` of evicted block `key`, read by a request, is better read
  // alone than with the whole block (see "Partial reads").
  bool WantsRange(const BlockKey& key, const Keyspace::BlockPart& part);
  // Schedules a range LOAD for `waiter`. False when there is no room now.
  bool ScheduleRangeLoad(const BlockKey& key, const Keyspace::BlockPart& part, uint64_t waiter);
  void ApplyRangeLoad(IoJob& job);
  bool Drain(int64_t timeout_ns, bool save);
  // Whether the slot of the LOAD's block is still the copy it read (a LOAD
  // that failed for a copy replaced meanwhile is no error: rule 2).
  bool IsCopyOf(const IoJob& job) const;
  // Makes `block` (loaded from `where`) the resident copy of `key` if the
  // slot is still that copy (rule 2); returns it then, null otherwise.
  BlockRef InstallLoaded(const BlockKey& key, RefPtr<BlockBuffer> block,
                         const BlockLocation& where);

  // SAVEs.
  void SubmitSaves(bool all);
  void ApplySave(IoJob::SaveItem& item);
  void SaveFailed(const Status& status);
  void SaveWorked();
  // Whole-block writes: stores the blocks Keyspace::to_store() names for
  // parked request `id`; ApplyStored hands the locations to it.
  void StoreWholeBlocks(uint64_t id);
  // Runs a parked request again, with what was stored and read for it
  // (OfferStored, OfferRanges).
  Status RunAgain(Parked& parked);
  // Gives a request whose payload is only in its copies the bytes back.
  void RestorePayload(Parked& parked);
  // Brings what kRequests is charged for a parked request up to date with
  // what it holds.
  void ChargeHeld(Parked& parked);
  void ApplyStored(IoJob& job);
  // Deletes the copies stored for `parked` that its write did not take.
  void DropUntakenCopies(Parked& parked);
  void ApplyLoad(IoJob& job);
  void QueueDelete(const BlockKey& key, uint64_t version, const BlockLocation& where);

  // Eviction: clean_ holds the clean resident blocks, the candidates.
  void AddClean(const BlockKey& key, BlockSlot& slot);
  void RemoveClean(BlockSlot& slot);
  void ReleaseWaiters(std::vector<uint64_t> waiters, const BlockRef& block);
  void MakeReady(uint64_t id) { ready_.push_back(id); }
  void CountDirty(BlockSlot& slot);
  void UncountDirty(BlockSlot& slot);
  void RunReady();
  void SendDeletes();
  // Loads the evicted blocks of pinned file `ino` as room allows; true when
  // none is left to start (all in memory or loading).
  bool LoadPinned(Ino ino);
  bool IsPinned(Ino ino) const {
    const Inode* inode = keyspace_->FindInode(ino);
    return inode && inode->pinned;
  }
  // Evicts until `target` bytes of the budget are used (or nothing more can
  // go, or `budget_ns` has passed when it is not 0); never the `busy`
  // blocks. Returns the bytes freed.
  uint64_t EvictDownTo(uint64_t target, const BusyBlocks& busy, int64_t budget_ns = 0);
  bool Evictable(const BlockKey& key, const BlockSlot& slot) const;
  void Evict(const BlockKey& key, BlockSlot& slot);


  Keyspace* const keyspace_;
  BlockStore* const store_;
  IoQueue* const io_;
  MemoryAccountant* const memory_;
  const Clock* const clock_;
  CacheOptions options_;
  MutationLog* const log_;
  std::mt19937_64 rng_;

  absl::flat_hash_map<BlockKey, IoState> io_state_;
  // Dirty blocks EvictFile asked to drop once their SAVE is applied.
  absl::flat_hash_set<BlockKey> evict_when_saved_;
  std::deque<DirtyEntry> dirty_queue_;   // in due order
  std::vector<BlockKey> clean_;          // for sampling; slot.resident_pos indexes it
  std::vector<std::pair<BlockId, BlockLocation>> deletes_;  // to send
  std::vector<BlockKey> pending_loads_;  // waiting for room to be scheduled
  // Pinned files with evicted blocks that had no room to load yet (the
  // cron tries again; rule 7).
  absl::flat_hash_set<Ino> pin_loading_;

  absl::flat_hash_map<uint64_t, Parked> parked_;
  std::deque<uint64_t> ready_;  // parked requests to run again, in order
  uint64_t next_id_ = 1;
  std::deque<uint64_t> room_waiters_;
  // Parked requests that change an inode, in arrival order; the first is
  // the one that waits for blocks or room, the others wait for it.
  absl::flat_hash_map<Ino, std::deque<uint64_t>> change_order_;

  // Sequential readers: where the last read of an inode ended.
  absl::flat_hash_map<Ino, uint64_t> read_ends_;
  // Partial reads of each block since it was last loaded whole (bounded:
  // forgotten all at once when it grows past kMaxTrackedRanges).
  absl::flat_hash_map<BlockKey, uint32_t> range_reads_;

  uint64_t dirty_blocks_ = 0;
  uint64_t dirty_bytes_ = 0;
  uint64_t saving_ = 0, loading_ = 0;
  uint64_t saving_bytes_ = 0;  // of the blocks in SAVE jobs
  size_t jobs_in_flight_ = 0;
  bool pressure_ = false;     // memory is short: save everything now
  bool disk_full_ = false;    // the last SAVE failed with ENOSPC
  bool saves_failing_ = false;  // the last SAVE failed
  int64_t save_backoff_ns_ = 0;
  int64_t retry_saves_at_ns_ = 0;
  int64_t last_save_error_log_ns_ = INT64_MIN / 2;
  Status last_save_error_;
  uint64_t generation_ = 0;
  uint32_t tick_ = 0;
  CacheStats stats_;
};

}  // namespace keyfs
