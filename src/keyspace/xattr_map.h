#pragma once

// XattrMap: a file's extended attributes. Only the "user." namespace is
// stored; the kernel already refuses user.* on anything but regular files and
// directories. Limits follow Linux (XATTR_NAME_MAX, XATTR_SIZE_MAX,
// XATTR_LIST_MAX) so that whatever `getfattr -d` lists can be set back.
//
// A small vector: most files have no attributes (then no XattrMap exists at
// all) or one or two. Charges names and values to kXattrs. Owner thread only.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/base/memory_accountant.h"
#include "src/base/status.h"

namespace keyfs {

class XattrMap {
 public:
  static constexpr size_t kMaxNameLength = 255;    // XATTR_NAME_MAX
  static constexpr size_t kMaxValueSize = 65536;   // XATTR_SIZE_MAX
  static constexpr size_t kMaxListSize = 65536;    // XATTR_LIST_MAX
  static constexpr size_t kMaxTotalBytes = 1 << 20;  // names + values per file

  enum class SetMode { kAny, kCreateOnly, kReplaceOnly };  // XATTR_CREATE/REPLACE

  explicit XattrMap(MemoryAccountant* accountant);
  ~XattrMap();
  XattrMap(const XattrMap&) = delete;
  XattrMap& operator=(const XattrMap&) = delete;

  // Checks the name: ERANGE when too long, EOPNOTSUPP outside "user.".
  static Status CheckName(std::string_view name);

  // EEXIST (kCreateOnly, present), ENODATA (kReplaceOnly, absent), E2BIG
  // (value too large), ENOSPC (per-file total, list size or memory budget).
  Status Set(std::string_view name, std::string_view value, SetMode mode);
  // ENODATA when absent.
  Result<std::string> Get(std::string_view name) const;
  Status Remove(std::string_view name);
  // The names, each followed by a NUL, as listxattr(2) returns them.
  std::string List() const;

  bool empty() const { return attrs_.empty(); }
  // (name, value) pairs in the order they were first set.
  const std::vector<std::pair<std::string, std::string>>& entries() const { return attrs_; }

 private:
  static size_t Cost(std::string_view name, size_t value_size);
  std::vector<std::pair<std::string, std::string>>::iterator Find(std::string_view name);

  MemoryAccountant* accountant_;
  std::vector<std::pair<std::string, std::string>> attrs_;
  size_t total_bytes_ = 0;  // names + values, for kMaxTotalBytes
  size_t list_bytes_ = 0;   // names + NULs, for kMaxListSize
};

}  // namespace keyfs
