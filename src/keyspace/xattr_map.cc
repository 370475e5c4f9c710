#include "src/keyspace/xattr_map.h"

#include <algorithm>

#include "src/base/heap_size.h"
#include "src/keyspace/block_slot.h"

namespace keyfs {

namespace {
constexpr std::string_view kUserPrefix = "user.";
}

XattrMap::XattrMap(MemoryAccountant* accountant) : accountant_(accountant) {
  accountant_->Charge(MemoryComponent::kXattrs, HeapChunk(sizeof(XattrMap)));
}

XattrMap::~XattrMap() {
  accountant_->Release(MemoryComponent::kXattrs, HeapChunk(sizeof(XattrMap)));
  for (const auto& [name, value] : attrs_) {
    accountant_->Release(MemoryComponent::kXattrs, Cost(name, value.size()));
  }
}

size_t XattrMap::Cost(std::string_view name, size_t value_size) {
  // A vector slot holds two std::strings; the characters live on the heap.
  return 2 * sizeof(std::string) + StringHeapBytes(name.size()) +
         StringHeapBytes(value_size);
}

Status XattrMap::CheckName(std::string_view name) {
  if (name.size() > kMaxNameLength) return Status::Errno(ERANGE);
  if (name.size() <= kUserPrefix.size() || !name.starts_with(kUserPrefix)) {
    return Status::Errno(EOPNOTSUPP);
  }
  return Status::Ok();
}

std::vector<std::pair<std::string, std::string>>::iterator XattrMap::Find(
    std::string_view name) {
  return std::find_if(attrs_.begin(), attrs_.end(),
                      [&](const auto& attr) { return attr.first == name; });
}

Status XattrMap::Set(std::string_view name, std::string_view value, SetMode mode) {
  RETURN_IF_ERROR(CheckName(name));
  if (value.size() > kMaxValueSize) return Status::Errno(E2BIG);
  auto it = Find(name);
  if (it != attrs_.end() && mode == SetMode::kCreateOnly) return Status::Errno(EEXIST);
  if (it == attrs_.end() && mode == SetMode::kReplaceOnly) return Status::Errno(ENODATA);

  size_t old_value = it == attrs_.end() ? 0 : it->second.size();
  size_t new_total = total_bytes_ - old_value + value.size() +
                     (it == attrs_.end() ? name.size() : 0);
  size_t new_list = list_bytes_ + (it == attrs_.end() ? name.size() + 1 : 0);
  if (new_total > kMaxTotalBytes || new_list > kMaxListSize) {
    return Status::Errno(ENOSPC);
  }
  size_t old_cost = it == attrs_.end() ? 0 : Cost(name, old_value);
  size_t new_cost = Cost(name, value.size());
  if (new_cost > old_cost) {
    Room room = accountant_->RoomFor(new_cost - old_cost);
    if (room == Room::kLater) return Status::Errno(kNeedRoom);
    if (room == Room::kNo) return Status::Errno(ENOSPC);
  }

  if (it == attrs_.end()) {
    attrs_.emplace_back(std::string(name), std::string(value));
  } else {
    it->second.assign(value);
    it->second.shrink_to_fit();
  }
  accountant_->Release(MemoryComponent::kXattrs, old_cost);
  accountant_->Charge(MemoryComponent::kXattrs, new_cost);
  total_bytes_ = new_total;
  list_bytes_ = new_list;
  return Status::Ok();
}

Result<std::string> XattrMap::Get(std::string_view name) const {
  for (const auto& [key, value] : attrs_) {
    if (key == name) return value;
  }
  return Status::Errno(ENODATA);
}

Status XattrMap::Remove(std::string_view name) {
  auto it = Find(name);
  if (it == attrs_.end()) return Status::Errno(ENODATA);
  accountant_->Release(MemoryComponent::kXattrs, Cost(it->first, it->second.size()));
  total_bytes_ -= it->first.size() + it->second.size();
  list_bytes_ -= it->first.size() + 1;
  attrs_.erase(it);
  return Status::Ok();
}

std::string XattrMap::List() const {
  std::string list;
  list.reserve(list_bytes_);
  for (const auto& attr : attrs_) {
    list += attr.first;
    list.push_back('\0');
  }
  return list;
}

}  // namespace keyfs
