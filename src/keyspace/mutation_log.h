#pragma once

// MutationLog: what the Keyspace reports about every change it makes, so that
// the journal (src/journal) can record it and a replay can make it again.
//
// Each call carries the change with every value resolved: the inode number a
// creation got, the mode and owner it ended with (umask and set-group-ID
// already applied), the bytes actually written, the one time stamp the whole
// operation used. Replaying the calls in order on the state they started from
// gives the same state, time stamps included.
//
// Calls are made only for changes that happened (never for a failed
// operation) and before the operation returns, on the owner thread.

#include <ctime>
#include <cstdint>
#include <string_view>

#include "src/base/status.h"
#include "store/block_store.h"
#include "src/keyspace/inode.h"

namespace keyfs {

// Which attributes a setattr changed (ctime always changes).
enum AttrField : unsigned {
  kAttrMode = 1u << 0,
  kAttrUid = 1u << 1,
  kAttrGid = 1u << 2,
  kAttrSize = 1u << 3,
  kAttrAtime = 1u << 4,
  kAttrMtime = 1u << 5,
};

// What a change does to the room the store needs on disk. Most changes add
// to it. A few can only give room back: unlink, rmdir, rename (which may
// replace a file), truncating to a smaller size, punching a hole, removing an
// xattr. A full disk refuses the first kind; the second may use a small
// reserve kept for it, so that a store whose disk is full can be emptied.
enum class SpaceEffect { kAdds, kFrees };

class MutationLog {
 public:
  virtual ~MutationLog() = default;

  // Asked before every change: OK when its record can be taken; otherwise the
  // error (EIO, ENOSPC) the change fails with before anything is changed.
  virtual Status Writable(SpaceEffect effect) = 0;
  // The sequence number the next record will get: a change's blocks take
  // it as their version (block_slot.h, 2).
  virtual uint64_t next_seq() const = 0;

  // A file, directory, symlink or special file named `name` in `parent`; the
  // parent's mtime and ctime became the inode's ctime.
  virtual void NodeCreated(Ino parent, std::string_view name, const Inode& inode) = 0;
  virtual void Linked(Ino ino, Ino parent, std::string_view name, timespec now) = 0;
  virtual void Unlinked(Ino parent, std::string_view name, bool directory,
                        timespec now) = 0;
  virtual void Renamed(Ino parent, std::string_view name, Ino new_parent,
                       std::string_view new_name, unsigned flags, timespec now) = 0;
  // `fields` (AttrField bits) say which of the inode's values to record.
  virtual void AttributesSet(const Inode& inode, unsigned fields) = 0;
  virtual void Written(Ino ino, uint64_t offset, std::string_view data, timespec now) = 0;
  // A whole block written by storing it first: block `index` of `ino` is the
  // copy at `where` (synced), of `length` bytes, as of `stored_version`; the
  // file grew to cover it if it was shorter; mtime = ctime = now.
  virtual void WrittenStored(Ino ino, uint64_t index, uint32_t length, timespec now,
                             uint64_t stored_version, const BlockLocation& where) = 0;
  virtual void Allocated(Ino ino, int mode, uint64_t offset, uint64_t length,
                         timespec now) = 0;
  virtual void XattrSet(Ino ino, std::string_view name, std::string_view value,
                        timespec now) = 0;
  virtual void XattrRemoved(Ino ino, std::string_view name, timespec now) = 0;
  // The lifetime of `ino` now ends at `at_ms` (Unix milliseconds); 0: it has
  // none any more.
  virtual void ExpirySet(Ino ino, int64_t at_ms) = 0;
  // A read moved the access time (relatime).
  virtual void Accessed(Ino ino, timespec atime) = 0;
  // user.keyfs.pin: regular file `ino` was pinned (its blocks stay in
  // memory) or unpinned. No time stamp changes.
  virtual void PinSet(Ino ino, bool pinned) = 0;
  // Not a change: the cache saved block `index` of `ino` as of `version` at
  // `where` in a persistent store (synced). Replay then needs neither the
  // bytes nor the memory of that block (Keyspace::RestoreBlockSaved).
  virtual void BlockSaved(Ino ino, uint64_t index, uint64_t version,
                          const BlockLocation& where) = 0;
};

}  // namespace keyfs
