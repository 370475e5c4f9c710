// Keyspace::Rename: rename(2) and renameat2(2) with RENAME_NOREPLACE and
// RENAME_EXCHANGE. The checks come first and change nothing; once they pass,
// the rename cannot fail half way (it allocates at most one directory entry,
// which is charged but never refused: like tmpfs, keyfs lets a rename through
// at a full budget rather than fail a metadata operation).

#include <linux/fs.h>  // RENAME_NOREPLACE, RENAME_EXCHANGE

#include "src/keyspace/keyspace.h"

namespace keyfs {

Status Keyspace::Rename(Ino parent, std::string_view name, Ino new_parent,
                        std::string_view new_name, unsigned flags) {
  RETURN_IF_ERROR(CheckWritable(SpaceEffect::kFrees));
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return Status::Errno(EINVAL);
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
    return Status::Errno(EINVAL);
  }
  ASSIGN_OR_RETURN(Inode * from_dir, GetDirectory(parent));
  ASSIGN_OR_RETURN(Inode * to_dir, GetDirectory(new_parent));
  RETURN_IF_ERROR(CheckName(name));
  RETURN_IF_ERROR(CheckName(new_name));
  Ino source_ino = from_dir->dir().Find(name);
  if (source_ino == 0) return Status::Errno(ENOENT);
  if (to_dir->nlink == 0) return Status::Errno(ENOENT);
  ASSIGN_OR_RETURN(Inode * source, Get(source_ino));
  Ino target_ino = to_dir->dir().Find(new_name);
  Inode* target = target_ino ? inodes_.Find(target_ino) : nullptr;

  if (flags & RENAME_EXCHANGE) {
    if (!target) return Status::Errno(ENOENT);
    if (source == target) return Status::Ok();
    // Neither directory may end up inside itself.
    if (source->is_dir() && IsWithin(to_dir->ino, source->ino)) {
      return Status::Errno(EINVAL);
    }
    if (target->is_dir() && IsWithin(from_dir->ino, target->ino)) {
      return Status::Errno(EINVAL);
    }
    NameRemoved(source, from_dir, name);
    NameRemoved(target, to_dir, new_name);
    NameAdded(source, to_dir, new_name);
    NameAdded(target, from_dir, name);
    if (from_dir != to_dir) {
      if (source->is_dir()) {
        --from_dir->nlink;
        ++to_dir->nlink;
      }
      if (target->is_dir()) {
        --to_dir->nlink;
        ++from_dir->nlink;
      }
    }
    timespec now = clock_->Now();
    TouchChange(source, now);
    TouchChange(target, now);
    TouchModify(from_dir, now);
    TouchModify(to_dir, now);
    if (log_) log_->Renamed(parent, name, new_parent, new_name, flags, now);
    return Status::Ok();
  }

  if (target && (flags & RENAME_NOREPLACE)) return Status::Errno(EEXIST);
  // Two names of one inode (or one name twice): POSIX says do nothing.
  if (source == target) return Status::Ok();
  if (source->is_dir()) {
    if (IsWithin(to_dir->ino, source->ino)) return Status::Errno(EINVAL);
    if (to_dir->nlink >= kMaxLinks && from_dir != to_dir && !target) {
      return Status::Errno(EMLINK);
    }
  }
  if (target) {
    if (source->is_dir() && !target->is_dir()) return Status::Errno(ENOTDIR);
    if (!source->is_dir() && target->is_dir()) return Status::Errno(EISDIR);
    if (target->is_dir() && !target->dir().empty()) return Status::Errno(ENOTEMPTY);
  }

  // All checks passed: from here on nothing fails.
  timespec now = clock_->Now();
  if (log_) log_->Renamed(parent, name, new_parent, new_name, flags, now);
  if (target) {
    if (target->is_dir()) --to_dir->nlink;
    DropName(target, now);
    NameRemoved(target, to_dir, new_name);
  }
  NameRemoved(source, from_dir, name);
  NameAdded(source, to_dir, new_name);
  if (source->is_dir() && from_dir != to_dir) {
    --from_dir->nlink;
    ++to_dir->nlink;
  }
  TouchChange(source, now);
  TouchModify(from_dir, now);
  TouchModify(to_dir, now);
  if (target) MaybeFree(target);
  return Status::Ok();
}

}  // namespace keyfs
