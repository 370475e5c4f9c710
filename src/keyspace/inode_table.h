#pragma once

// InodeTable: inode number -> Inode, and the only place inode numbers come
// from. Numbers increase and are never reused (invariant 3 of inode.h).
// Charges each inode (struct, table node, bucket slot) to kInodes.
// Owner thread only.

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "src/base/memory_accountant.h"
#include "src/keyspace/heap_size.h"
#include "src/keyspace/inode.h"

namespace keyfs {

class InodeTable {
 public:
  // The Inode allocation, its hash-table node and one bucket pointer.
  static constexpr size_t kInodeCost =
      HeapChunk(sizeof(Inode)) + HeapChunk(8 + 8 + 8) + 8;

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
  Ino next_ino() const { return next_ino_; }

 private:
  MemoryAccountant* accountant_;
  std::unordered_map<Ino, std::unique_ptr<Inode>> inodes_;
  Ino next_ino_ = kRootIno;
};

}  // namespace keyfs
