#pragma once

// Directory: the names in one directory, each pointing at an inode number.
// Names live here, not in the inode, so one inode can have several names (hard
// links). Sorted, so listings come out in a stable order. A B-tree
// (absl::btree_map): entries sit side by side in 256-byte nodes instead of a
// 72-byte tree node each.
//
// Charges every entry (its share of a node + out-of-line name bytes) to kNames.
// Owner thread only.

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>

#include <absl/container/btree_map.h>

#include "src/base/memory_accountant.h"
#include "src/base/heap_size.h"

namespace keyfs {

using Ino = uint64_t;

class Directory {
 public:
  // A slot (std::string and inode number) in a node that is about three
  // quarters full on average, plus its share of the node header.
  static constexpr size_t kEntryOverhead = (sizeof(std::string) + 8) * 4 / 3 + 8;
  static size_t EntryCost(std::string_view name) {
    return kEntryOverhead + StringHeapBytes(name.size());
  }

  explicit Directory(MemoryAccountant* accountant) : accountant_(accountant) {
    accountant_->Charge(MemoryComponent::kNames, HeapChunk(sizeof(Directory)));
  }
  ~Directory() {
    accountant_->Release(MemoryComponent::kNames, HeapChunk(sizeof(Directory)));
    for (const auto& [name, ino] : entries_) Uncharge(name);
  }
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  // 0 when absent.
  Ino Find(std::string_view name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? 0 : it->second;
  }
  // Adds `name`, which the caller has just found absent (one search of the
  // tree, not two: creating a file costs a Find and this).
  void Insert(std::string_view name, Ino ino) {
    accountant_->Charge(MemoryComponent::kNames, EntryCost(name));
    [[maybe_unused]] bool added = entries_.emplace(std::string(name), ino).second;
    assert(added);
  }
  void Erase(std::string_view name) {
    auto it = entries_.find(name);
    if (it == entries_.end()) return;
    Uncharge(it->first);
    entries_.erase(it);
  }

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  void Uncharge(const std::string& name) {
    accountant_->Release(MemoryComponent::kNames, EntryCost(name));
  }

  MemoryAccountant* accountant_;
  absl::btree_map<std::string, Ino, std::less<>> entries_;
};

}  // namespace keyfs
