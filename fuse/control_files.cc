#include "fuse/control_files.h"

#include <ctime>

namespace keyfs {

namespace {

constexpr Ino kRoot = 1;
// The directory is stable: the kernel may keep it as long as anything.
constexpr double kDirTimeout = 86400;

}  // namespace

ControlFiles::ControlFiles(std::function<std::string()> info, uid_t uid, gid_t gid,
                           timespec mounted)
    : info_(std::move(info)), uid_(uid), gid_(gid), mounted_(mounted) {}

bool ControlFiles::Reserved(Ino parent, std::string_view name) {
  return (parent == kRoot && name == kDirName) || parent == kDirIno;
}

struct stat ControlFiles::DirAttr() const {
  struct stat st {};
  st.st_ino = kDirIno;
  st.st_mode = S_IFDIR | 0555;
  st.st_nlink = 2;
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_size = 4096;
  st.st_blksize = 4096;
  st.st_atim = st.st_mtim = st.st_ctim = mounted_;
  return st;
}

struct stat ControlFiles::FileAttr(const Snapshot& snapshot) const {
  struct stat st {};
  st.st_mode = S_IFREG | 0444;
  st.st_nlink = 1;
  st.st_uid = uid_;
  st.st_gid = gid_;
  st.st_size = static_cast<off_t>(snapshot.text.size());
  st.st_blocks = (st.st_size + 511) / 512;
  st.st_blksize = 4096;
  st.st_atim = st.st_mtim = st.st_ctim = snapshot.taken;
  return st;
}

std::optional<Result<ControlFiles::Entry>> ControlFiles::Lookup(Ino parent, std::string_view name) {
  if (parent == kRoot && name == kDirName) return Entry{kDirIno, DirAttr(), kDirTimeout};
  if (parent != kDirIno) return std::nullopt;
  if (name == ".") return Entry{kDirIno, DirAttr(), kDirTimeout};
  if (name == "..") return Status::Errno(ENOENT);  // the kernel resolves ".." itself
  if (name != kInfoName) return Status::Errno(ENOENT);
  Ino ino = next_ino_--;
  if (next_ino_ < kLowestIno) next_ino_ = kDirIno - 1;  // after 4 billion lookups
  Snapshot& snapshot = snapshots_[ino];
  snapshot.text = info_();
  snapshot.lookups = 1;
  clock_gettime(CLOCK_REALTIME, &snapshot.taken);
  struct stat st = FileAttr(snapshot);
  st.st_ino = ino;
  return Entry{ino, st, 0};
}

void ControlFiles::Forget(Ino ino, uint64_t count) {
  auto it = snapshots_.find(ino);
  if (it == snapshots_.end()) return;
  it->second.lookups -= std::min(it->second.lookups, count);
  if (it->second.lookups == 0) snapshots_.erase(it);
}

Result<struct stat> ControlFiles::GetAttr(Ino ino) const {
  if (ino == kDirIno) return DirAttr();
  auto it = snapshots_.find(ino);
  if (it == snapshots_.end()) return Status::Errno(ENOENT);
  struct stat st = FileAttr(it->second);
  st.st_ino = ino;
  return st;
}

Result<std::string_view> ControlFiles::Read(Ino ino, uint64_t offset, size_t size) const {
  if (ino == kDirIno) return Status::Errno(EISDIR);
  auto it = snapshots_.find(ino);
  if (it == snapshots_.end()) return Status::Errno(ENOENT);
  std::string_view text = it->second.text;
  if (offset >= text.size()) return std::string_view();
  return text.substr(offset, size);
}

}  // namespace keyfs
