// The Keyspace's replay side: recreating inodes, names, bytes and attributes
// exactly as a journal snapshot recorded them. Live operations recorded in
// the journal replay through the ordinary methods (Unlink, Rename, Write, ...)
// with the clock set to the recorded time; only what a snapshot needs, or what
// would otherwise add kernel references, is here.
//
// These run before the mount serves anything, on a keyspace that only replay
// has touched, so a failure means the journal does not describe a consistent
// state: the caller reports it with the record's position.

#include "src/keyspace/keyspace.h"

namespace keyfs {

namespace {

// The attributes a record gives every inode, whatever its kind.
void SetRecordedAttributes(Inode* inode, const NodeAttributes& attrs) {
  inode->mode = attrs.mode;
  inode->uid = attrs.uid;
  inode->gid = attrs.gid;
  inode->atime = attrs.atime;
  inode->mtime = attrs.mtime;
  inode->ctime = attrs.ctime;
}

}  // namespace

Status Keyspace::RestoreNode(Ino parent, std::string_view name,
                             const NodeAttributes& attrs, std::string_view content,
                             bool touch_parent) {
  mode_t type = attrs.mode & S_IFMT;
  if (attrs.ino == kRootIno) {
    Inode* root = inodes_.Find(kRootIno);
    if (type != S_IFDIR) return Status::Errno(EINVAL, "the root must be a directory");
    SetRecordedAttributes(root, attrs);
    return Status::Ok();
  }
  if (attrs.ino < kRootIno || inodes_.Find(attrs.ino)) {
    return Status::Errno(EEXIST, "inode " + std::to_string(attrs.ino) + " exists already");
  }
  ASSIGN_OR_RETURN(Inode * dir, DirectoryForNewEntry(parent, name));
  size_t cost = NewInodeCost(name);
  if (type == S_IFDIR) cost += HeapChunk(sizeof(Directory));
  if (type == S_IFLNK) cost += StringHeapBytes(content.size());
  RETURN_IF_ERROR(Reserve(cost));

  Inode* inode = inodes_.CreateWithNumber(attrs.ino, attrs.mode);
  inode->nlink = 1;
  NameAdded(inode, dir, name);
  if (touch_parent) TouchModify(dir, attrs.ctime);
  switch (type) {
    case S_IFDIR:
      inode->content = std::make_unique<Directory>(accountant_);
      inode->nlink = 2;
      ++dir->nlink;
      break;
    case S_IFLNK:
      inode->content.emplace<std::string>(content);
      inode->size = content.size();
      accountant_->Charge(MemoryComponent::kNames, StringHeapBytes(content.size()));
      break;
    case S_IFREG: {
      inode->content.emplace<FileData>(accountant_, options_.block_size);
      if (!content.empty()) {
        // (journal format 1 put a small file's bytes in its node record)
        std::vector<uint64_t> missing;
        ASSIGN_OR_RETURN(size_t written,
                         inode->file().Write(0, content, ChangeOf(*inode), &missing));
        if (written < content.size()) return Status::Errno(ENOSPC);
      }
      inode->size = std::max<uint64_t>(attrs.size, content.size());
      break;
    }
    case S_IFCHR:
    case S_IFBLK:
      inode->content = SpecialContent{static_cast<dev_t>(attrs.rdev)};
      break;
    default:
      break;
  }
  SetRecordedAttributes(inode, attrs);  // last: writing the content moved the times
  return Status::Ok();
}

Status Keyspace::RestoreLink(Ino ino, Ino parent, std::string_view name) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EPERM);
  ASSIGN_OR_RETURN(Inode * dir, DirectoryForNewEntry(parent, name));
  RETURN_IF_ERROR(Reserve(Directory::EntryCost(name) + ExtraNameCost(name)));
  timespec dir_mtime = dir->mtime, dir_ctime = dir->ctime, ctime = inode->ctime;
  AddName(inode, dir, name, ctime);
  dir->mtime = dir_mtime;
  dir->ctime = dir_ctime;
  return Status::Ok();
}

Status Keyspace::RestoreData(Ino ino, uint64_t offset, std::string_view data) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->is_regular()) return Status::Errno(EINVAL);
  std::vector<uint64_t> missing;
  auto result = inode->file().Write(offset, data, ChangeOf(*inode), &missing);
  if (result.status().code() == kNeedBlocks) return NeedBlocks(ino, missing);
  ASSIGN_OR_RETURN(size_t written, result);
  inode->size = std::max<uint64_t>(inode->size, offset + written);
  return Status::Ok();
}

Status Keyspace::RestoreBlockData(Ino ino, uint64_t index, uint64_t version,
                                  std::string_view data) {
  uint64_t saved_seq = replay_seq_;
  replay_seq_ = version;
  Status status = RestoreData(ino, index * options_.block_size, data);
  replay_seq_ = saved_seq;
  return status;
}

Status Keyspace::RestoreStoredBlock(Ino ino, uint64_t index, uint32_t length, uint64_t version,
                                    uint64_t stored_version, const BlockLocation& where) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->is_regular() || length > options_.block_size || !where.valid()) {
    return Status::Errno(EINVAL);
  }
  FileData& file = inode->file();
  if (index < file.block_count() && !file.slot(index).hole()) return Status::Errno(EEXIST);
  RETURN_IF_ERROR(Reserve(index + 1 > file.block_count() ? sizeof(BlockSlot) * 2 : 0));
  file.RestoreStored(index, length, version, stored_version, where);
  inode->size = std::max<uint64_t>(inode->size, index * options_.block_size + length);
  return Status::Ok();
}

Status Keyspace::RestoreBlockSaved(Ino ino, uint64_t index, uint64_t version,
                                   const BlockLocation& where) {
  Inode* inode = inodes_.Find(ino);
  if (!inode || !inode->is_regular() || index >= inode->file().block_count()) {
    return Status::Ok();
  }
  BlockSlot& slot = inode->file().mutable_slot(index);
  if (slot.hole() || version < slot.stored_version) return Status::Ok();
  slot.stored = where;
  slot.stored_version = version;
  if (slot.version <= version) {
    // Unchanged since that copy was taken: it is the copy (block_slot.h, 3).
    slot.buffer = nullptr;
    slot.dirty = false;
  }
  return Status::Ok();
}

Status Keyspace::RestoreWriteStored(Ino ino, uint64_t index, uint32_t length, timespec time,
                                    uint64_t stored_version, const BlockLocation& where) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->is_regular()) return Status::Errno(EINVAL, "a stored write to a file that is not regular");
  PinnedChange pinned(this, inode, index, index);
  inode->file().RestoreWriteStored(index, length, ChangeOf(*inode).version, stored_version, where);
  inode->size = std::max<uint64_t>(inode->size, index * options_.block_size + length);
  TouchModify(inode, time);
  return Status::Ok();
}

Status Keyspace::RestoreXattr(Ino ino, std::string_view name, std::string_view value) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->xattrs) {
    RETURN_IF_ERROR(Reserve(HeapChunk(sizeof(XattrMap))));
    inode->xattrs = std::make_unique<XattrMap>(accountant_);
  }
  return inode->xattrs->Set(name, value, XattrMap::SetMode::kAny);
}

Status Keyspace::RestoreAccessTime(Ino ino, timespec atime) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  inode->atime = atime;
  return Status::Ok();
}

}  // namespace keyfs
