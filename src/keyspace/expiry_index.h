#pragma once

// ExpiryIndex: the inodes that have a lifetime (a TTL, Redis's EXPIRE), by
// number and by the time their lifetime ends.
//
// Times are Unix milliseconds (wall clock, as Redis keeps them), so a
// lifetime set before an unmount ends at the same moment after it. The
// index by time is ordered, so the keyspace finds every inode that is due
// by reading the front: where Redis samples random keys of its unordered
// table and estimates how many are due, keyfs removes exactly the due ones,
// oldest first, as far as a tick's time budget goes (Keyspace::ExpireDue).
//
// Invariants:
//  1. by_ino_ and by_time_ hold the same (ino, time) pairs.
//  2. Only inodes that have a name are in it: the keyspace erases an inode
//     when its last name goes (a removed file has nothing left to expire).
//
// Charges kEntryCost per inode to kInodes. Owner thread only.

#include <cstdint>
#include <optional>
#include <utility>

#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>

#include "src/base/memory_accountant.h"
#include "src/keyspace/directory.h"

namespace keyfs {

class ExpiryIndex {
 public:
  // A slot of the hash table (16 bytes and a control byte, at 7/8 load) and
  // of the B-tree (16 bytes in nodes about three quarters full).
  static constexpr size_t kEntryCost = 20 + 22;

  explicit ExpiryIndex(MemoryAccountant* accountant) : accountant_(accountant) {}
  ~ExpiryIndex() { accountant_->Release(MemoryComponent::kInodes, by_ino_.size() * kEntryCost); }
  ExpiryIndex(const ExpiryIndex&) = delete;
  ExpiryIndex& operator=(const ExpiryIndex&) = delete;

  // Sets or moves the lifetime of `ino` to end at `at_ms`.
  void Set(Ino ino, int64_t at_ms) {
    auto [it, added] = by_ino_.try_emplace(ino, at_ms);
    if (added) {
      accountant_->Charge(MemoryComponent::kInodes, kEntryCost);
    } else {
      by_time_.erase({it->second, ino});
      it->second = at_ms;
    }
    by_time_.insert({at_ms, ino});
  }
  // False when `ino` had no lifetime.
  bool Erase(Ino ino) {
    auto it = by_ino_.find(ino);
    if (it == by_ino_.end()) return false;
    by_time_.erase({it->second, ino});
    by_ino_.erase(it);
    accountant_->Release(MemoryComponent::kInodes, kEntryCost);
    return true;
  }
  std::optional<int64_t> Find(Ino ino) const {
    if (by_ino_.empty()) return std::nullopt;  // the common case: no lifetimes at all
    auto it = by_ino_.find(ino);
    if (it == by_ino_.end()) return std::nullopt;
    return it->second;
  }
  bool IsDue(Ino ino, int64_t now_ms) const {
    std::optional<int64_t> at = Find(ino);
    return at && *at <= now_ms;
  }
  // The inode whose lifetime ends first, if it has ended at `now_ms`.
  std::optional<Ino> FirstDue(int64_t now_ms) const {
    if (by_time_.empty() || by_time_.begin()->first > now_ms) return std::nullopt;
    return by_time_.begin()->second;
  }

  // visit(ino) for each inode due at `now_ms`, soonest first, while visit
  // returns true.
  template <typename Visit>
  void ForEachDue(int64_t now_ms, Visit&& visit) const {
    for (const auto& [at_ms, ino] : by_time_) {
      if (at_ms > now_ms || !visit(ino)) return;
    }
  }

  bool empty() const { return by_ino_.empty(); }
  size_t size() const { return by_ino_.size(); }
  // visit(ino, at_ms) for each, soonest first.
  template <typename Visit>
  void ForEach(Visit&& visit) const {
    for (const auto& [at_ms, ino] : by_time_) visit(ino, at_ms);
  }

 private:
  MemoryAccountant* accountant_;
  absl::flat_hash_map<Ino, int64_t> by_ino_;
  absl::btree_set<std::pair<int64_t, Ino>> by_time_;
};

}  // namespace keyfs
