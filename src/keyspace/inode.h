#pragma once

// Inode: one file, directory, symlink or special file, with its first name.
//
// Invariants (checked where they could break, in keyspace.cc):
//  1. `nlink` counts the directory entries naming this inode; for a directory
//     it is 2 + its subdirectories ("." and the name in the parent), 0 once
//     removed.
//  2. An inode is freed when nlink == 0, lookups == 0 and opens == 0: the
//     kernel forgot it and no directory handle is open, so nothing can reach
//     it again. An unlinked file that is still open stays readable until it
//     is closed: the kernel keeps its reference (lookups) while any file is
//     open on it and sends FORGET only after the last close. That reference
//     is the only thing that keeps an open file alive: the adapter answers
//     OPEN with ENOSYS, after which the kernel sends no OPEN, FLUSH or RELEASE
//     for any file, not even for files it made with CREATE, so an open count
//     for files could never drop (that leaked every file created after the
//     first open, issue 9). `opens` counts directory handles only (OPENDIR is
//     answered, so RELEASEDIR always comes).
//  3. Inode numbers are never reused (InodeTable hands out increasing ones), so
//     a stale kernel reference can never reach a different file.
//  4. (`parent`, `name`) is the inode's first name: while nlink > 0 the
//     directory `parent` maps `name` to this inode. A file with several names
//     (hard links) has the others in the keyspace (Keyspace::extra_names_);
//     when its first name goes, one of those takes its place. A removed
//     inode (nlink 0, still open) has an empty name; a removed directory
//     keeps `parent` (".." of a directory removed while open). Names are
//     kept with the inode so that keyfs can remove a file it knows only by
//     number (an expired TTL) and say where it was.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "src/keyspace/directory.h"
#include "src/keyspace/file_data.h"
#include "src/keyspace/xattr_map.h"

namespace keyfs {

constexpr Ino kRootIno = 1;

// What a special file (fifo, socket, device node) holds: a device number for
// character and block devices, 0 otherwise.
struct SpecialContent {
  dev_t rdev = 0;
};

struct Inode {
  Inode(Ino number, mode_t file_mode) : ino(number), mode(file_mode) {}

  bool is_dir() const { return S_ISDIR(mode); }
  bool is_regular() const { return S_ISREG(mode); }
  bool is_symlink() const { return S_ISLNK(mode); }

  FileData& file() { return std::get<FileData>(content); }
  const FileData& file() const { return std::get<FileData>(content); }
  Directory& dir() { return *std::get<std::unique_ptr<Directory>>(content); }
  const Directory& dir() const { return *std::get<std::unique_ptr<Directory>>(content); }
  const std::string& symlink_target() const { return std::get<std::string>(content); }
  dev_t rdev() const {
    auto* special = std::get_if<SpecialContent>(&content);
    return special ? special->rdev : 0;
  }

  const Ino ino;
  mode_t mode;  // type and permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  timespec atime{}, mtime{}, ctime{};

  uint64_t lookups = 0;  // the kernel's references (FUSE lookup count)
  uint32_t opens = 0;    // open directory handles (files: see invariant 2)
  bool pinned = false;   // user.keyfs.pin: its blocks stay in memory (Keyspace::SetPinned)
  Ino parent = 0;        // the directory of its first name (invariant 4)
  std::string name;      // its first name there

  std::unique_ptr<XattrMap> xattrs;  // null until the first attribute is set
  std::variant<SpecialContent, FileData, std::unique_ptr<Directory>, std::string> content;
};

}  // namespace keyfs
