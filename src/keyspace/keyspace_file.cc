// The Keyspace's content operations: open, create, read, write, truncate,
// fallocate, and directory listings.

#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <span>
#include <utility>

#include "src/keyspace/keyspace.h"

namespace keyfs {

BlockChange Keyspace::ChangeOf(const Inode& inode) {
  // Live: the number of the record about to be written. Replay: the
  // record's. Neither (tests, snapshot records of format 1): a counter, so
  // that versions still grow.
  uint64_t version = log_ ? log_->next_seq() : replay_seq_ ? replay_seq_ : ++unlogged_changes_;
  return BlockChange{inode.ino, version, observer_};
}

Status Keyspace::NeedBlocks(Ino ino, const std::vector<uint64_t>& missing) {
  needed_.clear();
  needed_parts_.clear();
  for (uint64_t index : missing) needed_.push_back({ino, index});
  return Status::Errno(kNeedBlocks);
}

Status Keyspace::TruncateFile(Inode* inode, uint64_t size, timespec now) {
  if (size > kMaxFileSize) return Status::Errno(EFBIG);
  if (size != inode->size) {
    uint64_t blocks = inode->file().block_count();
    PinnedChange pinned(this, inode, size / options_.block_size, blocks ? blocks - 1 : 0);
    inode->file().Truncate(size, ChangeOf(*inode));
    inode->size = size;
  }
  // truncate(2) updates the times even when the size does not change.
  TouchModify(inode, now);
  return Status::Ok();
}

Status Keyspace::Open(Ino ino, int flags) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EISDIR);
  // Linux truncates on O_TRUNC whatever the access mode (the kernel has
  // checked write permission already).
  if ((flags & O_TRUNC) && inode->is_regular()) {
    RETURN_IF_ERROR(CheckWritable(SpaceEffect::kFrees));
    RETURN_IF_ERROR(TruncateFile(inode, 0, clock_->Now()));
    if (log_) log_->AttributesSet(*inode, kAttrSize | kAttrMtime);
  }
  return Status::Ok();
}

Result<Entry> Keyspace::Create(Ino parent, std::string_view name, mode_t mode,
                               int flags, const Caller& caller) {
  ASSIGN_OR_RETURN(Inode * dir, GetDirectory(parent));
  RETURN_IF_ERROR(CheckName(name));
  if (Ino existing = dir->dir().Find(name); existing != 0 && !ExpireIfDue(existing)) {
    if (flags & O_EXCL) return Status::Errno(EEXIST);
    RETURN_IF_ERROR(Open(existing, flags));
    return MakeEntry(inodes_.Find(existing));
  }
  return MakeNode(parent, name, S_IFREG | (mode & 07777), 0, caller);
}

void Keyspace::Release(Ino ino) {
  Inode* inode = inodes_.Find(ino);
  // Appends left up to half a block of slack; give it back on close.
  if (inode && inode->is_regular()) inode->file().ShrinkToFit();
}

Result<std::vector<ReadSlice>> Keyspace::Read(Ino ino, uint64_t offset,
                                              size_t size) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EISDIR);
  if (!inode->is_regular()) return Status::Errno(EINVAL);
  // relatime: the access time moves when it is older than the last change or
  // a day old, so readers do not dirty the inode on every read.
  timespec now = clock_->Now();
  auto older = [](const timespec& a, const timespec& b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec <= b.tv_nsec);
  };
  std::vector<uint64_t> missing;
  std::vector<LoadedRange> ranges;
  if (const std::vector<LoadedRange>* offered = std::exchange(offered_ranges_, nullptr)) {
    for (const LoadedRange& range : *offered) {
      if (range.key.ino == ino) ranges.push_back(range);
    }
  }
  auto slices = inode->file().Read(offset, size, inode->size, &missing,
                                   ranges.empty() ? nullptr : &ranges);
  if (slices.status().code() == kNeedBlocks) {
    Status status = NeedBlocks(ino, missing);
    uint64_t block_size = inode->file().block_size();
    uint64_t end = std::min<uint64_t>(inode->size, offset + size);
    for (uint64_t index : missing) {
      uint64_t start = index * block_size;
      uint64_t from = std::max(offset, start);
      uint64_t to = std::min({end, start + block_size,
                              start + inode->file().slot(index).length});
      needed_parts_.push_back({static_cast<uint32_t>(from - start),
                               static_cast<uint32_t>(to > from ? to - from : 0)});
    }
    return status;
  }
  if (older(inode->atime, inode->mtime) || older(inode->atime, inode->ctime) ||
      now.tv_sec - inode->atime.tv_sec >= 24 * 3600) {
    inode->atime = now;
    // An access time is worth a record, not a failed read: when the log
    // cannot take it the new time is simply not kept across a remount.
    if (log_ && log_->Writable(SpaceEffect::kAdds).ok()) log_->Accessed(ino, now);
  }
  return slices;
}

Result<size_t> Keyspace::Write(Ino ino, uint64_t offset, std::string_view data,
                               WriteAt at) {
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EISDIR);
  if (!inode->is_regular()) return Status::Errno(EINVAL);
  if (at == WriteAt::kEnd) offset = inode->size;
  if (data.empty()) return size_t{0};
  if (offset >= kMaxFileSize) return Status::Errno(EFBIG);
  data = data.substr(0, std::min<uint64_t>(data.size(), kMaxFileSize - offset));
  const std::vector<StoredBlock>* offered = std::exchange(offered_, nullptr);
  RETURN_IF_ERROR(CheckPinnedGrowth(*inode, offset, data.size()));
  uint32_t block_size = options_.block_size;
  PinnedChange pinned(this, inode, offset / block_size, (offset + data.size() - 1) / block_size);
  if (stores_whole_blocks_ && at == WriteAt::kOffset && offset % block_size == 0 &&
      data.size() % block_size == 0 && log_ &&
      !(offered && offered->size() < data.size() / block_size)) {
    return WriteWholeBlocks(inode, offset, data, offered);
  }
  std::vector<uint64_t> missing;
  auto result = inode->file().Write(offset, data, ChangeOf(*inode), &missing);
  if (result.status().code() == kNeedBlocks) return NeedBlocks(ino, missing);
  ASSIGN_OR_RETURN(size_t written, result);
  inode->size = std::max<uint64_t>(inode->size, offset + written);
  if (inode->file().has_slack()) slack_recent_.insert(ino);
  timespec now = clock_->Now();
  if (at != WriteAt::kWriteback) TouchModify(inode, now);
  if (log_) {
    log_->Written(ino, offset, data.substr(0, written), now);
    // Replay of the write sets mtime and ctime; put back the kernel's.
    if (at == WriteAt::kWriteback) log_->AttributesSet(*inode, kAttrMtime);
  }
  return written;
}

Result<size_t> Keyspace::WriteWholeBlocks(Inode* inode, uint64_t offset, std::string_view data,
                                          const std::vector<StoredBlock>* offered) {
  size_t first = offset / options_.block_size;
  if (!offered) {
    ASSIGN_OR_RETURN(auto copies, inode->file().CopyWholeBlocks(first, data, ChangeOf(*inode)));
    to_store_ = ToStore{inode->ino, first, std::move(copies)};
    return Status::Errno(kNeedStore);
  }
  // The blocks are in the store (CheckWritable said the log takes records);
  // a record each says where (block_slot.h, 2:
  // block first + i gets the number of the i-th record).
  std::span<const StoredBlock> blocks(offered->data(), data.size() / options_.block_size);
  RETURN_IF_ERROR(inode->file().WriteStored(first, blocks, ChangeOf(*inode)));
  inode->size = std::max<uint64_t>(inode->size, offset + data.size());
  timespec now = clock_->Now();
  TouchModify(inode, now);
  for (size_t i = 0; i < blocks.size(); ++i) {
    log_->WrittenStored(inode->ino, first + i, options_.block_size, now,
                        blocks[i].stored_version, blocks[i].where);
  }
  return data.size();
}

void Keyspace::TrimSlack() {
  // A file still being appended to stays in slack_recent_ and keeps its room
  // to grow; one left alone for a whole round gives it back.
  for (Ino ino : slack_older_) {
    if (slack_recent_.contains(ino)) continue;
    Inode* inode = inodes_.Find(ino);
    if (inode && inode->is_regular()) inode->file().ShrinkToFit();
  }
  slack_older_ = std::move(slack_recent_);
  slack_recent_.clear();
}

Status Keyspace::Fallocate(Ino ino, int mode, uint64_t offset, uint64_t length) {
  bool punch = mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  RETURN_IF_ERROR(CheckWritable(punch ? SpaceEffect::kFrees : SpaceEffect::kAdds));
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EISDIR);
  if (!inode->is_regular()) return Status::Errno(ENODEV);
  if (length == 0) return Status::Errno(EINVAL);
  if (offset + length > kMaxFileSize || offset + length < offset) {
    return Status::Errno(EFBIG);
  }
  uint64_t end = offset + length;
  timespec now = clock_->Now();
  if (punch) {
    std::vector<uint64_t> missing;
    PinnedChange pinned(this, inode, offset / options_.block_size, (end - 1) / options_.block_size);
    Status punched = inode->file().PunchHole(offset, length, ChangeOf(*inode), &missing);
    if (punched.code() == kNeedBlocks) return NeedBlocks(ino, missing);
    RETURN_IF_ERROR(punched);
    TouchModify(inode, now);
    if (log_) log_->Allocated(ino, mode, offset, length, now);
    return Status::Ok();
  }
  if (mode != 0 && mode != FALLOC_FL_KEEP_SIZE) return Status::Errno(EOPNOTSUPP);
  if (mode == 0 && end > inode->size) {
    inode->size = end;
    TouchModify(inode, now);
  }
  if (log_) log_->Allocated(ino, mode, offset, length, now);
  return Status::Ok();
}

Result<DirListing> Keyspace::OpenDirectory(Ino ino) {
  ASSIGN_OR_RETURN(Inode * dir, GetDirectory(ino));
  std::vector<DirEntry> entries;
  entries.reserve(dir->dir().size() + 2);
  entries.push_back({".", dir->ino, S_IFDIR});
  entries.push_back({"..", dir->parent, S_IFDIR});
  // Lazy expiry: due files are not listed (the server removes them).
  bool hide_due = expiry_clock_ && !expiry_.empty();
  int64_t now_ms = hide_due ? ExpiryNowMs() : 0;
  for (const auto& [name, child_ino] : dir->dir()) {
    if (hide_due && expiry_.IsDue(child_ino, now_ms)) continue;
    const Inode* child = inodes_.Find(child_ino);
    entries.push_back({name, child_ino, child ? (child->mode & S_IFMT) : 0});
  }
  ++dir->opens;
  return DirListing(accountant_, std::move(entries));
}

void Keyspace::ReleaseDirectory(Ino ino) {
  Inode* inode = inodes_.Find(ino);
  if (!inode) return;
  if (inode->opens > 0) --inode->opens;
  MaybeFree(inode);
}

// --- DirListing -------------------------------------------------------------

DirListing::DirListing(MemoryAccountant* accountant, std::vector<DirEntry> entries)
    : accountant_(accountant), entries_(std::move(entries)) {
  charged_ = HeapChunk(entries_.capacity() * sizeof(DirEntry));
  for (const auto& entry : entries_) charged_ += StringHeapBytes(entry.name);
  accountant_->Charge(MemoryComponent::kHandles, charged_);
}

DirListing::~DirListing() { Uncharge(); }

void DirListing::Uncharge() {
  if (accountant_ && charged_ > 0) {
    accountant_->Release(MemoryComponent::kHandles, charged_);
  }
  charged_ = 0;
}

DirListing::DirListing(DirListing&& other) noexcept
    : accountant_(other.accountant_),
      entries_(std::move(other.entries_)),
      charged_(other.charged_) {
  other.charged_ = 0;
}

DirListing& DirListing::operator=(DirListing&& other) noexcept {
  if (this != &other) {
    Uncharge();
    accountant_ = other.accountant_;
    entries_ = std::move(other.entries_);
    charged_ = other.charged_;
    other.charged_ = 0;
  }
  return *this;
}

}  // namespace keyfs
