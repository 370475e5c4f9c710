// FuseAdapter: open files and directories, read, write, readdir.

#include <fcntl.h>
#include <sys/uio.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "fuse/fuse_adapter.h"
#include "fuse/fuse_session.h"

namespace keyfs {

namespace {

// The kernel passes the file's open flags (O_APPEND) with every write it sends
// for a write(2); the writeback cache's page writes have offsets and times of
// the kernel's own.
Keyspace::WriteAt WriteAtOf(const fuse_file_info* fi) {
  if (fi && fi->writepage) return Keyspace::WriteAt::kWriteback;
  if (fi && (fi->flags & O_APPEND)) return Keyspace::WriteAt::kEnd;
  return Keyspace::WriteAt::kOffset;
}

// Holes and the unwritten tail of a block are sent from here. It is never
// written, so its pages stay the kernel's shared zero page and cost no memory.
constexpr size_t kZeroBytes = 1 << 20;
const char kZeros[kZeroBytes] = {};

}  // namespace

// keyfs needs nothing from an open of an existing file: a file's data lives
// as long as the kernel holds a reference to its inode (which an open file
// does), writes and reads are applied as they come, and O_TRUNC arrives as a
// SETATTR (Init does not ask for ATOMIC_O_TRUNC). ENOSYS tells the kernel so
// once: it stops sending OPEN and RELEASE for files and caches their pages
// across opens (keep_cache), saving two round trips per open and close.
// Directories are still opened: their listing is taken at opendir.
void FuseAdapter::Open(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  ReplyError(req, Status::Errno(ENOSYS));
}

void FuseAdapter::Create(fuse_req_t req, fuse_ino_t parent, const char* name,
                         mode_t mode, fuse_file_info* fi) {
  if (RefuseControl(req, parent, name)) return;
  Caller caller = CallerOf(req);
  fuse_file_info info = *fi;
  Dispatch(req, 0, [=, this, name = std::string(name)](std::string_view) {
    auto entry = keyspace_->Create(parent, name, mode, info.flags, caller);
    if (!entry.ok()) return ReplyOrWait(req, entry.status());
    fuse_entry_param param = EntryParam(*entry);
    // The created file lives by the entry's lookup reference, like every open
    // file (keyspace.h, Open): the kernel sends RELEASE for it only while OPEN
    // has not yet been answered with ENOSYS, so nothing may wait for one.
    fuse_file_info reply = info;
    reply.fh = entry->ino;
    reply.keep_cache = 1;
    replies_->Defer([this, req, param, reply] {
      ReplyOrUndo([&] { return fuse_reply_create(req, &param, &reply); },
                  [this, ino = param.ino] { keyspace_->Forget(ino, 1); });
    });
    return Status::Ok();
  });
}

void FuseAdapter::Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       fuse_file_info*) {
  if (off < 0) return ReplyError(req, Status::Errno(EINVAL));
  if (ControlFiles::Owns(ino)) {
    auto text = controls_->Read(ino, static_cast<uint64_t>(off), size);
    if (!text.ok()) return ReplyError(req, text.status());
    return replies_->Defer([req, text = std::string(*text)] {
      fuse_reply_buf(req, text.data(), text.size());
    });
  }
  Dispatch(req, 0, [=, this](std::string_view) {
    auto slices = keyspace_->Read(ino, static_cast<uint64_t>(off), size);
    if (!slices.ok()) return ReplyOrWait(req, slices.status());
    if (cache_) cache_->NoteRead(ino, static_cast<uint64_t>(off), size);
    ++stats_.reads;
    for (const ReadSlice& slice : *slices) stats_.read_bytes += slice.length;
    ReplySlices(req, std::move(slices).value());
    return Status::Ok();
  });
}

void FuseAdapter::ReplySlices(fuse_req_t req, std::vector<ReadSlice> slices) {
  // The slices hold references to the blocks, so a write before the reply goes
  // out copies the block instead of changing the bytes under it.
  replies_->Defer([req, slices = std::move(slices)] {
    std::vector<iovec> iov;
    iov.reserve(slices.size());
    for (const ReadSlice& slice : slices) {
      if (slice.block) {
        iov.push_back({const_cast<char*>(slice.block->data() + slice.offset), slice.length});
        continue;
      }
      for (size_t left = slice.length; left > 0;) {
        size_t chunk = std::min(left, kZeroBytes);
        iov.push_back({const_cast<char*>(kZeros), chunk});
        left -= chunk;
      }
    }
    fuse_reply_iov(req, iov.data(), static_cast<int>(iov.size()));
  });
}

// A write that must wait for a block or for room keeps its order among the
// changes to its file (O_APPEND), and its payload is copied then (rule 4).
void FuseAdapter::Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size,
                        off_t off, fuse_file_info* fi) {
  if (off < 0) return ReplyError(req, Status::Errno(EINVAL));
  if (RefuseControl(req, ino)) return;
  Keyspace::WriteAt at = WriteAtOf(fi);
  Dispatch(
      req, ino,
      [=, this](std::string_view data) {
        auto written = keyspace_->Write(ino, static_cast<uint64_t>(off), data, at);
        if (!written.ok()) return ReplyOrWait(req, written.status());
        size_t count = *written;
        ++stats_.writes;
        stats_.written_bytes += count;
        replies_->Defer([req, count] { fuse_reply_write(req, count); });
        return Status::Ok();
      },
      std::string_view(buf, size));
}

void FuseAdapter::Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  keyspace_->Release(ino);
  ReplyOk(req);
}

// Every change is in the journal; fsync makes the journal durable before the
// reply goes out, whatever appendfsync says (one fdatasync for all the fsyncs
// of an iteration).
void FuseAdapter::Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  control_->RequestSync();
  ReplyOk(req);
}

void FuseAdapter::Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
                            off_t length, fuse_file_info*) {
  if (offset < 0 || length <= 0) return ReplyError(req, Status::Errno(EINVAL));
  if (RefuseControl(req, ino)) return;
  Dispatch(req, ino, [=, this](std::string_view) {
    return ReplyOrWait(req, keyspace_->Fallocate(ino, mode, static_cast<uint64_t>(offset),
                                                 static_cast<uint64_t>(length)));
  });
}

void FuseAdapter::OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Result<DirListing> listing =
      ino == ControlFiles::kDirIno
          ? Result<DirListing>(DirListing(keyspace_->mutable_memory(),
                                          {{".", ino, S_IFDIR},
                                           {"..", kRootIno, S_IFDIR},
                                           {std::string(ControlFiles::kInfoName), 0, S_IFREG}}))
          : keyspace_->OpenDirectory(ino);
  if (!listing.ok()) return ReplyError(req, listing.status());
  fuse_file_info reply = *fi;
  reply.fh = next_listing_++;
  // The kernel may keep the listing it read, across opens: it drops it itself
  // when it changes the directory, and nothing else does.
  reply.cache_readdir = 1;
  reply.keep_cache = 1;
  listings_.emplace(reply.fh, std::make_unique<DirListing>(std::move(listing).value()));
  replies_->Defer([this, req, reply, ino] {
    ReplyOrUndo([&] { return fuse_reply_open(req, &reply); }, [this, fh = reply.fh, ino] {
      listings_.erase(fh);
      keyspace_->ReleaseDirectory(ino);
    });
  });
}

DirListing* FuseAdapter::FindListing(const fuse_file_info* fi) {
  auto it = listings_.find(fi->fh);
  return it == listings_.end() ? nullptr : it->second.get();
}

void FuseAdapter::ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          fuse_file_info* fi) {
  ReadDirectory(req, ino, size, off, fi, /*plus=*/false);
}

void FuseAdapter::ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                              fuse_file_info* fi) {
  ReadDirectory(req, ino, size, off, fi, /*plus=*/true);
}

void FuseAdapter::ReadDirectory(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                                fuse_file_info* fi, bool plus) {
  DirListing* listing = FindListing(fi);
  if (!listing) return ReplyError(req, Status::Errno(EBADF));
  const std::vector<DirEntry>& entries = listing->entries();
  std::string buffer(size, '\0');
  size_t used = 0;
  for (size_t i = off < 0 ? 0 : static_cast<size_t>(off); i < entries.size(); ++i) {
    const DirEntry& entry = entries[i];
    off_t next = static_cast<off_t>(i + 1);
    char* at = buffer.data() + used;
    size_t room = size - used;
    size_t need;
    if (!plus) {
      struct stat st {};
      st.st_ino = entry.ino;
      st.st_mode = entry.type;
      need = fuse_add_direntry(req, at, room, entry.name.c_str(), &st, next);
    } else {
      need = fuse_add_direntry_plus(req, nullptr, 0, entry.name.c_str(), nullptr, 0);
      if (need > room) break;
      fuse_entry_param param{};
      if (entry.name == "." || entry.name == "..") {
        // ino 0: the kernel takes no reference for these two.
        param.attr.st_ino = entry.ino;
        param.attr.st_mode = entry.type;
      } else if (ino == ControlFiles::kDirIno) {
        auto control = controls_->Lookup(ino, entry.name);
        if (!control || !control->ok()) continue;
        param.ino = (*control)->ino;
        param.attr = (*control)->attr;
      } else {
        // Look the name up now, counting the kernel's new reference; skip it if
        // it was removed since the listing was taken.
        auto current = keyspace_->Lookup(ino, entry.name);
        if (!current.ok()) continue;
        param = EntryParam(*current);
      }
      need = fuse_add_direntry_plus(req, at, room, entry.name.c_str(), &param, next);
    }
    if (need > room) break;
    used += need;
  }
  buffer.resize(used);
  replies_->Defer([req, buffer = std::move(buffer)] {
    fuse_reply_buf(req, buffer.data(), buffer.size());
  });
}

void FuseAdapter::ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  listings_.erase(fi->fh);
  keyspace_->ReleaseDirectory(ino);
  ReplyOk(req);
}

void FuseAdapter::FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  control_->RequestSync();
  ReplyOk(req);
}

}  // namespace keyfs
