// The Keyspace's namespace operations: lookup, creation, links, removal.
// Attributes are in keyspace_attr.cc, contents in keyspace_file.cc, rename in
// keyspace_rename.cc.

#include "src/keyspace/keyspace.h"

#include <algorithm>
#include <cassert>

namespace keyfs {

Keyspace::Keyspace(const KeyspaceOptions& options, MemoryAccountant* accountant,
                   const Clock* clock)
    : options_(options),
      accountant_(accountant),
      clock_(clock),
      inodes_(accountant),
      expiry_(accountant) {
  Inode* root = inodes_.Create(S_IFDIR | 0755);
  assert(root->ino == kRootIno);
  root->content = std::make_unique<Directory>(accountant_);
  root->nlink = 2;
  root->parent = kRootIno;
  root->atime = root->mtime = root->ctime = clock_->Now();
}

// --- helpers -----------------------------------------------------------------

Result<Inode*> Keyspace::Get(Ino ino) const {
  Inode* inode = inodes_.Find(ino);
  if (!inode) return Status::Errno(ENOENT);
  return inode;
}

Result<Inode*> Keyspace::GetDirectory(Ino ino) const {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->is_dir()) return Status::Errno(ENOTDIR);
  return inode;
}

Status Keyspace::CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." ||
      name.find('/') != std::string_view::npos ||
      name.find('\0') != std::string_view::npos) {
    return Status::Errno(EINVAL);
  }
  if (name.size() > kMaxNameLength) return Status::Errno(ENAMETOOLONG);
  return Status::Ok();
}

Result<Inode*> Keyspace::DirectoryForNewEntry(Ino parent, std::string_view name) {
  ASSIGN_OR_RETURN(Inode * dir, GetDirectory(parent));
  RETURN_IF_ERROR(CheckName(name));
  if (dir->nlink == 0) return Status::Errno(ENOENT);  // removed, still open
  if (Ino existing = dir->dir().Find(name); existing != 0) {
    if (!ExpireIfDue(existing) || dir->dir().Find(name) != 0) return Status::Errno(EEXIST);
  }
  return dir;
}

Status Keyspace::Reserve(uint64_t bytes) const {
  switch (accountant_->RoomFor(bytes)) {
    case Room::kYes: return Status::Ok();
    case Room::kLater: return Status::Errno(kNeedRoom);
    case Room::kNo: break;
  }
  return Status::Errno(ENOSPC);
}

Status Keyspace::CheckWritable(SpaceEffect effect) const {
  return log_ ? log_->Writable(effect) : Status::Ok();
}

Inode* Keyspace::AddInode(Inode* dir, std::string_view name, mode_t mode,
                          const Caller& caller, timespec now) {
  Inode* inode = inodes_.Create(mode);
  inode->uid = caller.uid;
  inode->gid = caller.gid;
  if (dir->mode & S_ISGID) {
    // POSIX: a set-group-ID directory gives its group to what is created in
    // it, and its set-group-ID bit to new subdirectories.
    inode->gid = dir->gid;
    if (S_ISDIR(mode)) inode->mode |= S_ISGID;
  }
  inode->nlink = 1;
  inode->atime = inode->mtime = inode->ctime = now;
  NameAdded(inode, dir, name);  // DirectoryForNewEntry found it absent
  TouchModify(dir, now);
  return inode;
}

Entry Keyspace::MakeEntry(Inode* inode) {
  ++inode->lookups;
  Entry entry;
  entry.ino = inode->ino;
  FillStat(*inode, &entry.attr);
  return entry;
}

void Keyspace::TouchChange(Inode* inode, timespec now) { inode->ctime = now; }

void Keyspace::TouchModify(Inode* inode, timespec now) {
  inode->mtime = inode->ctime = now;
}

void Keyspace::DropName(Inode* inode, timespec now) {
  if (inode->is_dir()) {
    inode->nlink = 0;
  } else {
    assert(inode->nlink > 0);
    --inode->nlink;
  }
  if (inode->nlink == 0) expiry_.Erase(inode->ino);  // ExpiryIndex, invariant 2
  TouchChange(inode, now);
}

void Keyspace::MaybeFree(Inode* inode) {
  if (inode->ino == kRootIno) return;
  if (inode->nlink > 0 || inode->lookups > 0 || inode->opens > 0) return;
  if (inode->is_symlink()) {
    accountant_->Release(MemoryComponent::kNames,
                         StringHeapBytes(inode->symlink_target()));
  }
  assert(!inode->is_dir() || inode->dir().empty());
  assert(inode->name.empty() && !extra_names_.contains(inode->ino));
  if (inode->is_regular()) {
    if (inode->pinned) {
      pinned_bytes_ -= std::min(pinned_bytes_, inode->file().Footprint());
      --pinned_files_;
    }
    inode->file().DropAll(inode->ino, observer_);
  }
  inodes_.Erase(inode->ino);  // frees blocks, xattrs and directory with it
}

void Keyspace::NameAdded(Inode* inode, Inode* dir, std::string_view name) {
  dir->dir().Insert(name, inode->ino);
  Ino parent = dir->ino;
  if (inode->name.empty()) {
    inode->parent = parent;
    inode->name = name;
    accountant_->Charge(MemoryComponent::kNames, StringHeapBytes(inode->name));
    return;
  }
  extra_names_[inode->ino].push_back({parent, std::string(name)});
  accountant_->Charge(MemoryComponent::kNames, ExtraNameCost(name));
}

void Keyspace::NameRemoved(Inode* inode, Inode* dir, std::string_view name) {
  dir->dir().Erase(name);
  Ino parent = dir->ino;
  auto extra = extra_names_.find(inode->ino);
  if (inode->parent == parent && inode->name == name) {
    accountant_->Release(MemoryComponent::kNames, StringHeapBytes(inode->name));
    if (extra == extra_names_.end()) {
      std::string().swap(inode->name);  // gives its heap bytes back
      if (!inode->is_dir()) inode->parent = 0;
      return;
    }
    // A further name becomes the first.
    NameRef& next = extra->second.back();
    accountant_->Release(MemoryComponent::kNames, ExtraNameCost(next.name));
    inode->parent = next.parent;
    inode->name = std::move(next.name);
    accountant_->Charge(MemoryComponent::kNames, StringHeapBytes(inode->name));
    extra->second.pop_back();
  } else {
    assert(extra != extra_names_.end());
    std::vector<NameRef>& names = extra->second;
    auto it = std::find_if(names.begin(), names.end(), [&](const NameRef& ref) {
      return ref.parent == parent && ref.name == name;
    });
    assert(it != names.end());
    accountant_->Release(MemoryComponent::kNames, ExtraNameCost(it->name));
    *it = std::move(names.back());
    names.pop_back();
  }
  if (extra->second.empty()) extra_names_.erase(extra);
}

std::vector<NameRef> Keyspace::NamesOf(Ino ino) const {
  std::vector<NameRef> names;
  const Inode* inode = inodes_.Find(ino);
  if (!inode || inode->name.empty()) return names;
  names.push_back({inode->parent, inode->name});
  if (auto extra = extra_names_.find(ino); extra != extra_names_.end()) {
    names.insert(names.end(), extra->second.begin(), extra->second.end());
  }
  return names;
}

bool Keyspace::IsWithin(Ino dir, Ino ancestor) const {
  for (Ino cursor = dir;; ) {
    if (cursor == ancestor) return true;
    if (cursor == kRootIno) return false;
    const Inode* inode = inodes_.Find(cursor);
    if (!inode) return false;
    cursor = inode->parent;
  }
}

// --- lookup and forget --------------------------------------------------------

Result<Entry> Keyspace::Lookup(Ino parent, std::string_view name, bool hide_due) {
  ASSIGN_OR_RETURN(Inode * dir, GetDirectory(parent));
  if (name.size() > kMaxNameLength) return Status::Errno(ENAMETOOLONG);
  Ino ino;
  if (name == ".") {
    ino = dir->ino;
  } else if (name == "..") {
    ino = dir->parent;
  } else {
    ino = dir->dir().Find(name);
    if (ino != 0 && hide_due && IsDue(ino)) return Status::Errno(ENOENT);
  }
  if (ino == 0) return Status::Errno(ENOENT);
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  return MakeEntry(inode);
}

void Keyspace::Forget(Ino ino, uint64_t count) {
  Inode* inode = inodes_.Find(ino);
  if (!inode) return;
  assert(inode->lookups >= count);  // the kernel never forgets more than it got
  inode->lookups -= std::min(inode->lookups, count);
  MaybeFree(inode);
}

// --- creation ---------------------------------------------------------------

Result<Entry> Keyspace::MakeNode(Ino parent, std::string_view name, mode_t mode,
                                 dev_t rdev, const Caller& caller) {
  mode_t type = mode & S_IFMT;
  if (type == 0) type = S_IFREG;  // mknod(2): zero means a regular file
  if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK &&
      type != S_IFCHR && type != S_IFBLK) {
    return Status::Errno(EINVAL);
  }
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(Inode * dir, DirectoryForNewEntry(parent, name));
  RETURN_IF_ERROR(Reserve(NewInodeCost(name)));
  Inode* inode = AddInode(dir, name, type | (mode & 07777), caller, clock_->Now());
  if (type == S_IFREG) {
    inode->content.emplace<FileData>(accountant_, options_.block_size);
  } else if (type == S_IFCHR || type == S_IFBLK) {
    inode->content = SpecialContent{rdev};
  }
  if (log_) log_->NodeCreated(parent, name, *inode);
  return MakeEntry(inode);
}

Result<Entry> Keyspace::MakeDirectory(Ino parent, std::string_view name,
                                      mode_t mode, const Caller& caller) {
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(Inode * dir, DirectoryForNewEntry(parent, name));
  if (dir->nlink >= kMaxLinks) return Status::Errno(EMLINK);
  RETURN_IF_ERROR(Reserve(NewInodeCost(name) + HeapChunk(sizeof(Directory))));
  Inode* inode = AddInode(dir, name, S_IFDIR | (mode & 07777), caller, clock_->Now());
  inode->content = std::make_unique<Directory>(accountant_);
  inode->nlink = 2;
  ++dir->nlink;
  if (log_) log_->NodeCreated(parent, name, *inode);
  return MakeEntry(inode);
}

Result<Entry> Keyspace::MakeSymlink(Ino parent, std::string_view name,
                                    std::string_view target, const Caller& caller) {
  RETURN_IF_ERROR(CheckWritable());
  if (target.empty()) return Status::Errno(ENOENT);
  if (target.size() > kMaxSymlinkLength) return Status::Errno(ENAMETOOLONG);
  ASSIGN_OR_RETURN(Inode * dir, DirectoryForNewEntry(parent, name));
  size_t target_cost = StringHeapBytes(target.size());
  RETURN_IF_ERROR(Reserve(NewInodeCost(name) + target_cost));
  Inode* inode = AddInode(dir, name, S_IFLNK | 0777, caller, clock_->Now());
  inode->content.emplace<std::string>(target);
  inode->size = target.size();
  accountant_->Charge(MemoryComponent::kNames, target_cost);
  if (log_) log_->NodeCreated(parent, name, *inode);
  return MakeEntry(inode);
}

Result<Entry> Keyspace::Link(Ino ino, Ino new_parent, std::string_view new_name) {
  RETURN_IF_ERROR(CheckWritable());
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EPERM);
  if (inode->nlink == 0) return Status::Errno(ENOENT);  // unlinked, still open
  if (inode->nlink >= kMaxLinks) return Status::Errno(EMLINK);
  ASSIGN_OR_RETURN(Inode * dir, DirectoryForNewEntry(new_parent, new_name));
  // That may have removed a due file of that name: this very inode, when
  // the name was another of its own (its lifetime is over; no new name).
  ASSIGN_OR_RETURN(inode, Get(ino));
  if (inode->nlink == 0) return Status::Errno(ENOENT);
  RETURN_IF_ERROR(Reserve(Directory::EntryCost(new_name) + ExtraNameCost(new_name)));
  timespec now = clock_->Now();
  AddName(inode, dir, new_name, now);
  if (log_) log_->Linked(ino, new_parent, new_name, now);
  return MakeEntry(inode);
}

Result<std::string> Keyspace::ReadLink(Ino ino) const {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->is_symlink()) return Status::Errno(EINVAL);
  return inode->symlink_target();
}

// --- removal ----------------------------------------------------------------

void Keyspace::AddName(Inode* inode, Inode* dir, std::string_view name, timespec now) {
  NameAdded(inode, dir, name);  // DirectoryForNewEntry found it absent
  TouchModify(dir, now);
  ++inode->nlink;
  TouchChange(inode, now);
}

Status Keyspace::Unlink(Ino parent, std::string_view name) {
  RETURN_IF_ERROR(CheckWritable(SpaceEffect::kFrees));
  ASSIGN_OR_RETURN(Inode * dir, GetDirectory(parent));
  if (name.size() > kMaxNameLength) return Status::Errno(ENAMETOOLONG);
  Ino ino = dir->dir().Find(name);
  if (ino == 0) return Status::Errno(ENOENT);
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EISDIR);
  timespec now = clock_->Now();
  if (log_) log_->Unlinked(parent, name, /*directory=*/false, now);
  NameRemoved(inode, dir, name);
  TouchModify(dir, now);
  DropName(inode, now);
  MaybeFree(inode);
  return Status::Ok();
}

Status Keyspace::RemoveDirectory(Ino parent, std::string_view name) {
  RETURN_IF_ERROR(CheckWritable(SpaceEffect::kFrees));
  ASSIGN_OR_RETURN(Inode * dir, GetDirectory(parent));
  if (name == ".") return Status::Errno(EINVAL);
  if (name == "..") return Status::Errno(ENOTEMPTY);
  if (name.size() > kMaxNameLength) return Status::Errno(ENAMETOOLONG);
  Ino ino = dir->dir().Find(name);
  if (ino == 0) return Status::Errno(ENOENT);
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (!inode->is_dir()) return Status::Errno(ENOTDIR);
  if (!inode->dir().empty()) return Status::Errno(ENOTEMPTY);
  timespec now = clock_->Now();
  if (log_) log_->Unlinked(parent, name, /*directory=*/true, now);
  NameRemoved(inode, dir, name);
  --dir->nlink;
  TouchModify(dir, now);
  DropName(inode, now);
  MaybeFree(inode);
  return Status::Ok();
}

}  // namespace keyfs
