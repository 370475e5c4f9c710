// The Keyspace's lifetimes (keyspace.h, "lifetimes"; expiry_index.h).
//
// Expiring a file is an unlink of each of its names, made and journaled as a
// user's unlink would be: replay needs no notion of time to reach the same
// state, and a journal replayed after the lifetime ended holds the same
// unlinks as one replayed before (ExpireDue at mount removes the rest). The
// lifetime record (kSetExpiry) itself only sets the time.

#include <cassert>

#include "src/keyspace/keyspace.h"

namespace keyfs {

int64_t Keyspace::ExpiryNowMs() const { return UnixMillis(*expiry_clock_); }

bool Keyspace::IsDue(Ino ino) const {
  return expiry_clock_ && expiry_.IsDue(ino, ExpiryNowMs());
}

bool Keyspace::IsDueName(Ino parent, std::string_view name) const {
  const Inode* dir = inodes_.Find(parent);
  if (!dir || !dir->is_dir() || name.size() > kMaxNameLength || expiry_.empty()) return false;
  Ino ino = dir->dir().Find(name);
  return ino != 0 && IsDue(ino);
}

Status Keyspace::SetExpiry(Ino ino, int64_t at_ms) {
  ASSIGN_OR_RETURN(Inode * inode, Get(ino));
  if (inode->is_dir()) return Status::Errno(EINVAL, "a directory has no lifetime");
  RETURN_IF_ERROR(CheckWritable());
  if (ExpireIfDue(ino)) return Status::Errno(ENOENT);
  if (inode->nlink == 0) return Status::Errno(ENOENT);  // removed, still open
  // Charged, never refused (a few dozen bytes, like a rename's entry).
  expiry_.Set(ino, at_ms);
  if (log_) log_->ExpirySet(ino, at_ms);
  // An end already past goes at once, as EXPIRE with a past time deletes.
  ExpireIfDue(ino);
  return Status::Ok();
}

Status Keyspace::ClearExpiry(Ino ino) {
  RETURN_IF_ERROR(CheckWritable(SpaceEffect::kFrees));
  if (ExpireIfDue(ino)) return Status::Errno(ENOENT);  // too late for PERSIST
  RETURN_IF_ERROR(Get(ino).status());
  if (!expiry_.Erase(ino)) return Status::Errno(ENODATA);
  if (log_) log_->ExpirySet(ino, 0);
  return Status::Ok();
}

bool Keyspace::ExpireIfDue(Ino ino) {
  if (!IsDue(ino)) return false;
  Inode* inode = inodes_.Find(ino);
  // A file whose unlink cannot be journaled now (a failing disk) is still
  // absent for readers; the cron removes it once the journal takes records.
  if (inode) (void)Expire(inode);
  return true;
}

Status Keyspace::Expire(Inode* inode) {
  const Ino ino = inode->ino;
  for (NameRef& ref : NamesOf(ino)) {
    // The last unlink may free the inode: only `ino` is used after it.
    RETURN_IF_ERROR(Unlink(ref.parent, ref.name));
    removed_names_.push_back({ref.parent, ino, std::move(ref.name)});
  }
  assert(!expiry_.Find(ino));  // the last unlink took it out
  ++expired_keys_;
  return Status::Ok();
}

Status Keyspace::UnlinkDue(Ino parent, std::string_view name) {
  ASSIGN_OR_RETURN(Inode * dir, GetDirectory(parent));
  Ino ino = dir->dir().Find(name);
  if (ino == 0 || !IsDue(ino)) return Status::Errno(ENOENT);
  bool last_name = inodes_.Find(ino)->nlink == 1;
  RETURN_IF_ERROR(Unlink(parent, name));
  if (last_name) ++expired_keys_;
  return Status::Ok();
}

Result<std::string> Keyspace::PathOf(Ino parent, std::string_view name) const {
  std::vector<std::string_view> parts{name};
  for (Ino dir = parent; dir != kRootIno;) {
    const Inode* inode = inodes_.Find(dir);
    if (!inode || inode->name.empty()) return Status::Errno(ENOENT);
    parts.push_back(inode->name);
    dir = inode->parent;
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (!path.empty()) path += '/';
    path += *it;
  }
  return path;
}

size_t Keyspace::ExpireDue(int64_t deadline_ns, int64_t overdue_ms) {
  if (!expiry_clock_) return 0;
  // Reading the clock costs more than removing a small file: every 32.
  constexpr size_t kCheckEvery = 32;
  int64_t now_ms = ExpiryNowMs() - overdue_ms;
  size_t removed = 0;
  while (std::optional<Ino> ino = expiry_.FirstDue(now_ms)) {
    Inode* inode = inodes_.Find(*ino);
    assert(inode && inode->nlink > 0);  // ExpiryIndex, invariant 2
    if (!inode) {
      expiry_.Erase(*ino);
      continue;
    }
    // A large file takes longer to drop (its blocks): the clock is read
    // after each of those.
    bool large = inode->is_regular() && inode->file().block_count() > kCheckEvery;
    if (!Expire(inode).ok()) break;  // the journal refused: next tick
    if ((++removed % kCheckEvery == 0 || large) &&
        expiry_clock_->MonotonicNanos() >= deadline_ns) {
      break;
    }
  }
  return removed;
}

}  // namespace keyfs
