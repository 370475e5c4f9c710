// The Keyspace's pinned files (user.keyfs.pin): the flag on the inode, the
// count of what pinned files take, and the budget they are held to. See
// keyspace.h, "pinned files", for the rules; the cache keeps the blocks in
// memory (block_cache.h, "Pinned files").
//
// Threading: the loop thread owns the pins as it owns the rest of the
// keyspace; IO threads never see an inode.

#include <fmt/format.h>

#include "src/base/size.h"
#include "src/keyspace/keyspace.h"

namespace keyfs {

uint64_t Keyspace::MemoryNeeded() const {
  return accountant_->Unevictable() + pinned_bytes_ + kMinBlocksRoom * options_.block_size;
}

uint64_t Keyspace::PinLimit() const {
  uint64_t kept = MemoryNeeded() - pinned_bytes_;
  uint64_t limit = accountant_->limit();
  return limit > kept ? limit - kept : 0;
}

Status Keyspace::SetPinned(Ino ino, bool pinned) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EISDIR);
  if (!inode->is_regular()) return Status::Errno(EINVAL);
  if (inode->pinned == pinned) return Status::Ok();
  RETURN_IF_ERROR(CheckWritable(pinned ? SpaceEffect::kAdds : SpaceEffect::kFrees));
  uint64_t footprint = inode->file().Footprint();
  if (pinned) {
    uint64_t limit = PinLimit();
    if (pinned_bytes_ + footprint > limit) {
      return Status::Errno(ENOSPC, fmt::format("pinning {} more would pass the {} that pinned "
                                               "files may take ({} pinned now, in {} files)",
                                               FormatSize(footprint), FormatSize(limit),
                                               FormatSize(pinned_bytes_), pinned_files_));
    }
    pinned_bytes_ += footprint;
    ++pinned_files_;
  } else {
    pinned_bytes_ -= std::min(pinned_bytes_, footprint);
    --pinned_files_;
  }
  inode->pinned = pinned;
  if (log_) log_->PinSet(ino, pinned);
  if (observer_) observer_->PinChanged(ino, pinned);
  return Status::Ok();
}

Status Keyspace::RestorePin(Ino ino, bool pinned) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->is_regular()) return Status::Errno(EINVAL, "a pin of a file that is not regular");
  inode->pinned = pinned;
  return Status::Ok();
}

void Keyspace::RecountPinned() {
  pinned_bytes_ = pinned_files_ = 0;
  inodes_.ForEach([&](Inode& inode) {
    if (!inode.pinned) return;
    pinned_bytes_ += inode.file().Footprint();
    ++pinned_files_;
  });
}

Status Keyspace::CheckPinnedGrowth(const Inode& inode, uint64_t offset, uint64_t length) const {
  if (!inode.pinned || replay_seq_ != 0 || length == 0) return Status::Ok();
  const FileData& file = inode.file();
  uint64_t first = offset / options_.block_size;
  uint64_t last = (offset + length - 1) / options_.block_size;
  uint64_t after = file.FootprintAfterWrite(offset, length);
  uint64_t before = file.Footprint(first, last);
  if (after <= before) return Status::Ok();
  uint64_t limit = PinLimit();
  if (pinned_bytes_ + (after - before) <= limit) return Status::Ok();
  return Status::Errno(ENOSPC, fmt::format("a pinned file may not grow past the {} that pinned "
                                           "files may take ({} pinned)",
                                           FormatSize(limit), FormatSize(pinned_bytes_)));
}

Keyspace::PinnedChange::PinnedChange(Keyspace* keyspace, Inode* inode, uint64_t first,
                                     uint64_t last)
    : keyspace_(keyspace), inode_(inode->pinned ? inode : nullptr), first_(first), last_(last) {
  if (inode_) before_ = inode_->file().Footprint(first_, last_);
}

Keyspace::PinnedChange::~PinnedChange() {
  if (!inode_) return;
  uint64_t after = inode_->file().Footprint(first_, last_);
  uint64_t& pinned = keyspace_->pinned_bytes_;
  pinned = pinned + after > before_ ? pinned + after - before_ : 0;
}

}  // namespace keyfs
