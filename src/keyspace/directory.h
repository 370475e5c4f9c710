#pragma once

// Directory: the names in one directory, each pointing at an inode number.
// Names live here, not in the inode, so one inode can have several names (hard
// links). Sorted, so listings come out in a stable order.
//
// Charges every entry (map node + out-of-line name bytes) to kNames.
// Owner thread only.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "src/base/memory_accountant.h"
#include "src/keyspace/heap_size.h"

namespace keyfs {

using Ino = uint64_t;

class Directory {
 public:
  // A std::map node: 32 bytes of tree links, a std::string and the inode number.
  static constexpr size_t kEntryOverhead = HeapChunk(32 + sizeof(std::string) + 8);
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
  // Adds or repoints `name`.
  void Set(std::string_view name, Ino ino) {
    auto it = entries_.find(name);
    if (it != entries_.end()) {
      it->second = ino;
      return;
    }
    accountant_->Charge(MemoryComponent::kNames, EntryCost(name));
    entries_.emplace(std::string(name), ino);
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
  std::map<std::string, Ino, std::less<>> entries_;
};

}  // namespace keyfs
