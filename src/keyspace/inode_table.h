#pragma once

// InodeTable: inode number -> Inode, and the only place inode numbers come
// from. Numbers increase and are never reused (invariant 3 of inode.h).
// An open-addressing table (absl::flat_hash_map: 17 bytes a slot, no node per
// entry); the Inodes themselves are separate allocations, so pointers to them
// stay valid while the table grows. Charges each Inode, and the table's slot
// array as it grows and shrinks, to kInodes.
// Owner thread only.

#include <algorithm>
#include <memory>

#include <absl/container/flat_hash_map.h>
#include <absl/hash/hash.h>

#include "src/base/memory_accountant.h"
#include "src/base/heap_size.h"
#include "src/keyspace/inode.h"

namespace keyfs {

// The table's hash. Inode numbers are handed out in order, and the inodes
// made together are used together (a directory's files, a replayed journal),
// so numbers that are close share a run of slots: each run of 64 numbers
// lies in 64 adjacent slots (absl takes the slot from the bits above the 7
// low ones), and the runs are placed at random. The low 7 bits, which absl
// compares first, are the number's own, distinct within a run. Replaying a
// million small files finds most inodes in a cache line already read, where
// a fully mixed hash missed the cache on each.
struct InoHash {
  size_t operator()(uint64_t ino) const {
    uint64_t run = absl::Hash<uint64_t>{}(ino >> 6);
    return (run << 13) | ((ino & 63) << 7) | (ino & 127);
  }
};

class InodeTable {
 public:
  // The Inode allocation (the table's slots are charged as they grow).
  static constexpr size_t kInodeCost = HeapChunk(sizeof(Inode));

  explicit InodeTable(MemoryAccountant* accountant) : accountant_(accountant) {}
  ~InodeTable();
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  // A new inode with the next number (the first one is kRootIno).
  Inode* Create(mode_t mode);
  // A new inode with number `ino`, which must not be in use (journal replay:
  // numbers come from the record). Later numbers are higher.
  Inode* CreateWithNumber(Ino ino, mode_t mode);
  void ReserveUpTo(Ino next) { next_ino_ = std::max(next_ino_, next); }
  Inode* Find(Ino ino) const {
    auto it = inodes_.find(ino);
    return it == inodes_.end() ? nullptr : it->second.get();
  }
  void Erase(Ino ino);

  size_t size() const { return inodes_.size(); }
  template <typename Visit>
  void ForEach(Visit&& visit) {
    for (auto& [ino, inode] : inodes_) visit(*inode);
  }
  Ino next_ino() const { return next_ino_; }

 private:
  void ChargeTable();  // brings the charge for the slot array up to date

  MemoryAccountant* accountant_;
  absl::flat_hash_map<Ino, std::unique_ptr<Inode>, InoHash> inodes_;
  size_t charged_table_ = 0;
  Ino next_ino_ = kRootIno;
};

}  // namespace keyfs
