#include "src/keyspace/inode_table.h"

#include <cassert>

namespace keyfs {

InodeTable::~InodeTable() {
  accountant_->Release(MemoryComponent::kInodes,
                       inodes_.size() * kInodeCost + charged_table_);
}

void InodeTable::ChargeTable() {
  // A slot (key and pointer) and a control byte per entry of capacity.
  size_t now = inodes_.capacity() == 0
                   ? 0
                   : HeapChunk(inodes_.capacity() * (sizeof(Ino) + sizeof(void*) + 1));
  if (now > charged_table_) {
    accountant_->Charge(MemoryComponent::kInodes, now - charged_table_);
  } else {
    accountant_->Release(MemoryComponent::kInodes, charged_table_ - now);
  }
  charged_table_ = now;
}

Inode* InodeTable::Create(mode_t mode) { return CreateWithNumber(next_ino_, mode); }

Inode* InodeTable::CreateWithNumber(Ino ino, mode_t mode) {
  assert(inodes_.count(ino) == 0);
  ReserveUpTo(ino + 1);
  auto inode = std::make_unique<Inode>(ino, mode);
  Inode* raw = inode.get();
  inodes_.emplace(ino, std::move(inode));
  accountant_->Charge(MemoryComponent::kInodes, kInodeCost);
  ChargeTable();
  return raw;
}

void InodeTable::Erase(Ino ino) {
  if (inodes_.erase(ino) > 0) {
    accountant_->Release(MemoryComponent::kInodes, kInodeCost);
    ChargeTable();  // absl tables do not shrink on erase; this is cheap
  }
}

}  // namespace keyfs
