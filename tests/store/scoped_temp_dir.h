#pragma once

// A fresh directory under /tmp for one test, removed with everything in it
// when the test ends.

#include <stdlib.h>

#include <filesystem>
#include <string>

namespace keyfs {

class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string pattern = "/tmp/keyfs-test-XXXXXX";
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }  // empty if it could not be made
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace keyfs
