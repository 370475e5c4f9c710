#include "src/keyspace/inode_table.h"

#include <cassert>

namespace keyfs {

InodeTable::~InodeTable() {
  accountant_->Release(MemoryComponent::kInodes, inodes_.size() * kInodeCost);
}

Inode* InodeTable::Create(mode_t mode) { return CreateWithNumber(next_ino_, mode); }

Inode* InodeTable::CreateWithNumber(Ino ino, mode_t mode) {
  assert(inodes_.count(ino) == 0);
  ReserveUpTo(ino + 1);
  auto inode = std::make_unique<Inode>(ino, mode);
  Inode* raw = inode.get();
  inodes_.emplace(ino, std::move(inode));
  accountant_->Charge(MemoryComponent::kInodes, kInodeCost);
  return raw;
}

void InodeTable::Erase(Ino ino) {
  if (inodes_.erase(ino) > 0) {
    accountant_->Release(MemoryComponent::kInodes, kInodeCost);
  }
}

}  // namespace keyfs
