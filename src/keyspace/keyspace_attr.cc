// The Keyspace's attribute operations: stat, setattr, extended attributes,
// statfs.

#include <cstring>

#include "src/keyspace/keyspace.h"

namespace keyfs {

namespace {

// What `ls -l` and `du` see as a directory's size; ext4 shows the same for a
// small directory.
constexpr off_t kDirectorySize = 4096;

}  // namespace

void Keyspace::FillStat(const Inode& inode, struct stat* st) const {
  std::memset(st, 0, sizeof(*st));
  st->st_ino = inode.ino;
  st->st_mode = inode.mode;
  st->st_nlink = inode.nlink;
  st->st_uid = inode.uid;
  st->st_gid = inode.gid;
  st->st_rdev = inode.rdev();
  st->st_blksize = options_.block_size;
  st->st_atim = inode.atime;
  st->st_mtim = inode.mtime;
  st->st_ctim = inode.ctime;
  if (inode.is_dir()) {
    st->st_size = kDirectorySize;
    st->st_blocks = kDirectorySize / 512;
  } else {
    st->st_size = static_cast<off_t>(inode.size);
    if (inode.is_regular()) st->st_blocks = (inode.file().stored_bytes() + 511) / 512;
  }
}

Result<struct stat> Keyspace::GetAttr(Ino ino) const {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  struct stat st;
  FillStat(*inode, &st);
  return st;
}

Result<struct stat> Keyspace::SetAttr(Ino ino, const SetAttrRequest& request) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  bool shrinks = request.size && *request.size <= inode->size;
  RETURN_IF_ERROR(CheckWritable(shrinks ? SpaceEffect::kFrees : SpaceEffect::kAdds));
  timespec now = clock_->Now();
  unsigned changed = 0;
  // The size first: it is the only change that can fail.
  if (request.size) {
    if (inode->is_dir()) return Status::Errno(EISDIR);
    if (!inode->is_regular()) return Status::Errno(EINVAL);
    RETURN_IF_ERROR(TruncateFile(inode, *request.size, now));
    changed |= kAttrSize | kAttrMtime;
  }
  if (request.mode) {
    inode->mode = (inode->mode & S_IFMT) | (*request.mode & 07777);
    changed |= kAttrMode;
  }
  if (request.uid) {
    inode->uid = *request.uid;
    changed |= kAttrUid;
  }
  if (request.gid) {
    inode->gid = *request.gid;
    changed |= kAttrGid;
  }
  auto apply = [&](const TimeChange& change, timespec* field, unsigned bit) {
    if (change.kind == TimeChange::kOmit) return;
    *field = change.kind == TimeChange::kNow ? now : change.value;
    changed |= bit;
  };
  apply(request.atime, &inode->atime, kAttrAtime);
  apply(request.mtime, &inode->mtime, kAttrMtime);
  inode->ctime = request.ctime ? *request.ctime : now;
  if (log_) log_->AttributesSet(*inode, changed);
  struct stat st;
  FillStat(*inode, &st);
  return st;
}

Status Keyspace::SetXattr(Ino ino, std::string_view name, std::string_view value,
                          XattrMap::SetMode mode) {
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  RETURN_IF_ERROR(XattrMap::CheckName(name));
  bool created = false;
  if (!inode->xattrs) {
    if (mode == XattrMap::SetMode::kReplaceOnly) return Status::Errno(ENODATA);
    RETURN_IF_ERROR(Reserve(HeapChunk(sizeof(XattrMap))));
    inode->xattrs = std::make_unique<XattrMap>(accountant_);
    created = true;
  }
  Status status = inode->xattrs->Set(name, value, mode);
  if (!status.ok()) {
    if (created) inode->xattrs.reset();
    return status;
  }
  timespec now = clock_->Now();
  TouchChange(inode, now);
  if (log_) log_->XattrSet(ino, name, value, now);
  return Status::Ok();
}

Result<std::string> Keyspace::GetXattr(Ino ino, std::string_view name) const {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (name.size() > XattrMap::kMaxNameLength) return Status::Errno(ERANGE);
  if (!inode->xattrs) return Status::Errno(ENODATA);
  return inode->xattrs->Get(name);
}

Result<std::string> Keyspace::ListXattr(Ino ino) const {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->xattrs) return std::string();
  return inode->xattrs->List();
}

Status Keyspace::RemoveXattr(Ino ino, std::string_view name) {
  RETURN_IF_ERROR(CheckWritable(SpaceEffect::kFrees));
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (name.size() > XattrMap::kMaxNameLength) return Status::Errno(ERANGE);
  if (!inode->xattrs) return Status::Errno(ENODATA);
  RETURN_IF_ERROR(inode->xattrs->Remove(name));
  if (inode->xattrs->empty()) inode->xattrs.reset();
  timespec now = clock_->Now();
  TouchChange(inode, now);
  if (log_) log_->XattrRemoved(ino, name, now);
  return Status::Ok();
}

FsStats Keyspace::StatFs() const {
  FsStats stats;
  stats.bytes_limit = accountant_->limit();
  stats.bytes_used = accountant_->Used();
  stats.inodes = inodes_.size();
  // A new empty file costs an inode and a short directory entry.
  uint64_t per_file = InodeTable::kInodeCost + Directory::kEntryOverhead;
  stats.inodes_possible = stats.inodes + accountant_->Available() / per_file;
  return stats;
}

}  // namespace keyfs
