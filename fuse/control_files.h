#pragma once

// ControlFiles: the read-only `.keyfs/` directory at the root of a mount and
// its `info` file, keyfs's INFO in Redis's style (DESIGN §9).
//
// `.keyfs` answers a lookup in the root but is in no listing, so `ls`, `cp
// -a` and `rsync` of a mount never see it; it cannot be created, renamed,
// removed or written, and in the root it hides a user file of that name
// (keyfs refuses to make one). Its numbers are at the top of the inode range,
// which the keyspace's increasing numbers never reach.
//
// Files are not opened towards keyfs (OPEN is answered ENOSYS once, and from
// then on the kernel keeps a file's pages across opens), so a file whose text
// changes cannot rely on the page cache being dropped. Instead every lookup
// of `info` takes a snapshot of the text under a new inode number, with
// entry and attribute timeouts of 0: each `cat` looks the name up again and
// reads a fresh inode. A snapshot is freed when the kernel forgets it.
//
// Loop thread only.

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "src/keyspace/block_slot.h"

namespace keyfs {

class ControlFiles {
 public:
  static constexpr Ino kDirIno = ~Ino{0} - 1;
  static constexpr std::string_view kDirName = ".keyfs";
  static constexpr std::string_view kInfoName = "info";

  struct Entry {
    Ino ino = 0;
    struct stat attr {};
    double timeout = 0;  // entry and attribute timeout the kernel may keep it for
  };

  ControlFiles(std::function<std::string()> info, uid_t uid, gid_t gid, timespec mounted);

  // Whether `ino` is one of these files.
  static bool Owns(Ino ino) { return ino >= kLowestIno; }
  // Whether `name` in `parent` is a control name (taken, whatever the keyspace holds).
  static bool Reserved(Ino parent, std::string_view name);

  // A lookup of `name` in `parent`: the entry (one kernel reference more),
  // ENOENT for a name that is not there in the control directory, or
  // nothing when this is not a control lookup at all.
  std::optional<Result<Entry>> Lookup(Ino parent, std::string_view name);
  void Forget(Ino ino, uint64_t count);
  Result<struct stat> GetAttr(Ino ino) const;
  // The bytes of snapshot `ino` at [offset, offset+size).
  Result<std::string_view> Read(Ino ino, uint64_t offset, size_t size) const;
  size_t snapshots() const { return snapshots_.size(); }

 private:
  // Snapshot numbers count down from just below the directory's.
  static constexpr Ino kLowestIno = kDirIno - (Ino{1} << 32);
  struct Snapshot {
    std::string text;
    uint64_t lookups = 0;
    timespec taken{};
  };
  struct stat DirAttr() const;
  struct stat FileAttr(const Snapshot& snapshot) const;

  std::function<std::string()> info_;
  uid_t uid_;
  gid_t gid_;
  timespec mounted_;
  std::map<Ino, Snapshot> snapshots_;
  Ino next_ino_ = kDirIno - 1;
};

}  // namespace keyfs
