#pragma once

// MemoryBlockStore: a BlockStore in memory, for tests — what keyfs's
// "everything in memory" mode became. It keeps copies of saved blocks in a
// map, checks identities like a real store, and can be told to fail.
// Not persistent. Thread-safe.

#include <map>

#include "src/base/mutex.h"
#include "store/block_store.h"

namespace keyfs {

class MemoryBlockStore final : public BlockStore {
 public:
  Result<BlockLocation> Save(const BlockId& id, std::string_view bytes) override {
    MutexLock lock(&mu_);
    if (save_error_ != 0) return Status::Errno(std::exchange(save_error_, 0), "injected");
    if (sticky_save_error_ != 0) return Status::Errno(sticky_save_error_, "injected");
    BlockLocation where{1, static_cast<uint32_t>(bytes.size() + 48), next_offset_};
    next_offset_ += where.size;
    blocks_[where.offset] = {id, std::string(bytes), where.size};
    ++stats_.saves;
    stats_.raw_bytes_saved += bytes.size();
    return where;
  }
  Result<RefPtr<BlockBuffer>> Load(const BlockId& id, const BlockLocation& where,
                                   MemoryAccountant* accountant) override {
    MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(const Stored* stored, Find(id, where));
    const std::string& bytes = stored->bytes;
    auto buffer = BlockBuffer::Create(accountant, bytes.size(), bytes.size());
    std::memcpy(buffer->mutable_data(), bytes.data(), bytes.size());
    ++stats_.loads;
    return buffer;
  }
  bool LoadsRange(const BlockLocation&, uint32_t) const override {
    MutexLock lock(&mu_);
    return serve_ranges_;
  }
  Result<Range> LoadRange(const BlockId& id, const BlockLocation& where, uint32_t block_length,
                          uint32_t offset, uint32_t length, MemoryAccountant* accountant) override {
    if (!LoadsRange(where, block_length)) {
      return BlockStore::LoadRange(id, where, block_length, offset, length, accountant);
    }
    MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(const Stored* stored, Find(id, where));
    std::string_view part = std::string_view(stored->bytes).substr(offset, length);
    auto buffer = BlockBuffer::Create(accountant, part.size(), part.size());
    std::memcpy(buffer->mutable_data(), part.data(), part.size());
    ++stats_.range_loads;
    return Range{std::move(buffer), false};
  }
  // Takes the mutex: good for a rewrite in this process (fork_rewrite off,
  // as tests run it), not in a forked child.
  Result<RefPtr<BlockBuffer>> LoadForSnapshot(const BlockId& id, const BlockLocation& where,
                                              MemoryAccountant* accountant) const override {
    return const_cast<MemoryBlockStore*>(this)->Load(id, where, accountant);
  }
  Status Delete(const BlockId&, const BlockLocation& where) override {
    MutexLock lock(&mu_);
    blocks_.erase(where.offset);
    ++stats_.deletes;
    return Status::Ok();
  }
  Status Sync() override {
    MutexLock lock(&mu_);
    ++syncs_;
    return Status::Ok();
  }
  bool persistent() const override { return false; }
  BlockStoreStats Stats() const override {
    MutexLock lock(&mu_);
    BlockStoreStats stats = stats_;
    for (const auto& [offset, block] : blocks_) stats.live_bytes += block.size;
    stats.saved_bytes = stats.live_bytes;
    return stats;
  }

  // The next Save / Load fails with `err`.
  void FailNextSave(int err) {
    MutexLock lock(&mu_);
    save_error_ = err;
  }
  // Every Save fails with `err` until called with 0.
  void FailAllSaves(int err) {
    MutexLock lock(&mu_);
    sticky_save_error_ = err;
  }
  // Reads parts of blocks (LoadRange) as the disk store does raw copies;
  // off by default: whole blocks only.
  void ServeRanges(bool on) {
    MutexLock lock(&mu_);
    serve_ranges_ = on;
  }
  void FailNextLoad(int err) {
    MutexLock lock(&mu_);
    load_error_ = err;
  }
  size_t block_count() const {
    MutexLock lock(&mu_);
    return blocks_.size();
  }
  int syncs() const {
    MutexLock lock(&mu_);
    return syncs_;
  }

 private:
  struct Stored {
    BlockId id;
    std::string bytes;
    uint32_t size = 0;
  };
  // The copy of `id` at `where` (a Load's checks and injected failures).
  Result<const Stored*> Find(const BlockId& id, const BlockLocation& where) REQUIRES(mu_) {
    if (load_error_ != 0) return Status::Errno(std::exchange(load_error_, 0), "injected");
    auto it = blocks_.find(where.offset);
    if (where.segment != 1 || it == blocks_.end() || !(it->second.id == id)) {
      ++stats_.damaged;
      return Status::Errno(EIO, "no such block in the memory store");
    }
    return &it->second;
  }

  mutable Mutex mu_;
  std::map<uint64_t, Stored> blocks_ GUARDED_BY(mu_);
  uint64_t next_offset_ GUARDED_BY(mu_) = 0;
  int save_error_ GUARDED_BY(mu_) = 0;
  int sticky_save_error_ GUARDED_BY(mu_) = 0;
  int load_error_ GUARDED_BY(mu_) = 0;
  int syncs_ GUARDED_BY(mu_) = 0;
  bool serve_ranges_ GUARDED_BY(mu_) = false;
  BlockStoreStats stats_ GUARDED_BY(mu_);
};

}  // namespace keyfs
