// FuseAdapter: the trampolines, init, and the namespace and attribute
// operations. File and directory IO are in fuse_adapter_io.cc.

#include "fuse/fuse_adapter.h"
#include "fuse/fuse_session.h"

#include <sys/xattr.h>

#include <unistd.h>

#include <new>
#include <string>

#include <spdlog/spdlog.h>

namespace keyfs {

namespace {

FuseAdapter* Self(fuse_req_t req) {
  return static_cast<FuseAdapter*>(fuse_req_userdata(req));
}

// Thunk<&FuseAdapter::X>::Call has exactly the signature libfuse wants for X
// and forwards to the member function; no exception gets through it.
template <auto Method>
struct Thunk;
template <typename... Args, void (FuseAdapter::*Method)(fuse_req_t, Args...)>
struct Thunk<Method> {
  static void Call(fuse_req_t req, Args... args) {
    Self(req)->CountRequest();
    try {
      (Self(req)->*Method)(req, args...);
    } catch (const std::bad_alloc&) {
      spdlog::error("out of memory while handling a request");
      fuse_reply_err(req, ENOMEM);
    } catch (const std::exception& e) {
      spdlog::error("unexpected exception while handling a request: {}", e.what());
      fuse_reply_err(req, EIO);
    }
  }
};

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = [](void* userdata, fuse_conn_info* conn) {
    static_cast<FuseAdapter*>(userdata)->Init(conn);
  };
  ops.lookup = Thunk<&FuseAdapter::Lookup>::Call;
  ops.forget = Thunk<&FuseAdapter::Forget>::Call;
  ops.forget_multi = Thunk<&FuseAdapter::ForgetMulti>::Call;
  ops.getattr = Thunk<&FuseAdapter::GetAttr>::Call;
  ops.setattr = Thunk<&FuseAdapter::SetAttr>::Call;
  ops.readlink = Thunk<&FuseAdapter::ReadLink>::Call;
  ops.mknod = Thunk<&FuseAdapter::MakeNode>::Call;
  ops.mkdir = Thunk<&FuseAdapter::MakeDirectory>::Call;
  ops.unlink = Thunk<&FuseAdapter::Unlink>::Call;
  ops.rmdir = Thunk<&FuseAdapter::RemoveDirectory>::Call;
  ops.symlink = Thunk<&FuseAdapter::Symlink>::Call;
  ops.rename = Thunk<&FuseAdapter::Rename>::Call;
  ops.link = Thunk<&FuseAdapter::Link>::Call;
  ops.statfs = Thunk<&FuseAdapter::StatFs>::Call;
  ops.setxattr = Thunk<&FuseAdapter::SetXattr>::Call;
  ops.getxattr = Thunk<&FuseAdapter::GetXattr>::Call;
  ops.listxattr = Thunk<&FuseAdapter::ListXattr>::Call;
  ops.removexattr = Thunk<&FuseAdapter::RemoveXattr>::Call;
  ops.open = Thunk<&FuseAdapter::Open>::Call;
  ops.create = Thunk<&FuseAdapter::Create>::Call;
  ops.read = Thunk<&FuseAdapter::Read>::Call;
  ops.write = Thunk<&FuseAdapter::Write>::Call;
  ops.release = Thunk<&FuseAdapter::Release>::Call;
  ops.fsync = Thunk<&FuseAdapter::Fsync>::Call;
  ops.fallocate = Thunk<&FuseAdapter::Fallocate>::Call;
  ops.opendir = Thunk<&FuseAdapter::OpenDir>::Call;
  ops.readdir = Thunk<&FuseAdapter::ReadDir>::Call;
  ops.readdirplus = Thunk<&FuseAdapter::ReadDirPlus>::Call;
  ops.releasedir = Thunk<&FuseAdapter::ReleaseDir>::Call;
  ops.fsyncdir = Thunk<&FuseAdapter::FsyncDir>::Call;
  return ops;
}

}  // namespace

FuseAdapter::FuseAdapter(Keyspace* keyspace, ReplyQueue* replies, ServerControl* control,
                         AdapterConfig config, BlockCache* cache)
    : keyspace_(keyspace), replies_(replies), control_(control), config_(config), cache_(cache) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  controls_ = std::make_unique<ControlFiles>([control] { return control->InfoText(); },
                                             getuid(), getgid(), now);
}

const fuse_lowlevel_ops& FuseAdapter::Operations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

void FuseAdapter::Init(fuse_conn_info* conn) {
  conn->max_write = config_.max_write;
  conn->max_background = config_.max_background;
  conn->congestion_threshold = config_.max_background * 3 / 4;
  // keyfs answers OPEN with ENOSYS (see Open), so the kernel truncates for
  // O_TRUNC with a SETATTR; with ATOMIC_O_TRUNC it would expect OPEN to do it.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  // Pages change only through the kernel, so a new mtime is no reason to drop them.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  if (config_.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  } else {
    // Without it a write is applied (and journaled) before write(2) returns.
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  spdlog::debug("FUSE protocol {}.{}, max_write {}, max_background {}, capabilities {:#x}",
                conn->proto_major, conn->proto_minor, conn->max_write, conn->max_background,
                conn->want);
}

// --- replies ------------------------------------------------------------------

void FuseAdapter::ReplyError(fuse_req_t req, const Status& status) {
  int err = status.code();
  if (IsRetryLater(status) || err < 0 || err >= 4096) {
    // Not an errno: a code of the keyspace's that must never reach the kernel.
    spdlog::error("internal status {} reached the FUSE reply; answering EIO", err);
    err = EIO;
  }
  replies_->Defer([req, err] { fuse_reply_err(req, err); });
}

// --- waiting ---------------------------------------------------------------------

Status FuseAdapter::ReplyOrWait(fuse_req_t req, const Status& status) {
  if (IsRetryLater(status)) return status;
  ReplyError(req, status);
  return Status::Ok();
}

void FuseAdapter::OnInterrupt(fuse_req_t req, void* data) {
  // Called by libfuse on the loop thread when INTERRUPT arrives (or at once,
  // if it came first). The request is answered through the reply queue, not
  // from inside libfuse's lock.
  auto* self = static_cast<FuseAdapter*>(fuse_req_userdata(req));
  if (self->cache_) self->cache_->Interrupt(reinterpret_cast<uintptr_t>(data));
}

void FuseAdapter::Dispatch(fuse_req_t req, Ino changes, FuseRequest::Work work,
                           std::string_view payload) {
  if (!cache_) {
    Status status = work(payload);
    if (IsRetryLater(status)) ReplyError(req, Status::Errno(EIO));
    return;
  }
  auto request = std::make_unique<FuseRequest>(
      req, changes, payload, std::move(work),
      [this](fuse_req_t r, int err) { ReplyError(r, Status::Errno(err)); },
      keyspace_->mutable_memory());
  uint64_t id = cache_->Submit(std::move(request));
  if (id != 0) fuse_req_interrupt_func(req, &FuseAdapter::OnInterrupt, reinterpret_cast<void*>(id));
}

// --- the control directory ------------------------------------------------------

bool FuseAdapter::RefuseControl(fuse_req_t req, Ino parent, std::string_view name) {
  if (!ControlFiles::Reserved(parent, name)) return false;
  ReplyError(req, Status::Errno(EPERM));
  return true;
}

bool FuseAdapter::RefuseControl(fuse_req_t req, Ino ino) {
  if (!ControlFiles::Owns(ino)) return false;
  ReplyError(req, Status::Errno(EPERM));
  return true;
}

void FuseAdapter::ReplyControlEntry(fuse_req_t req, const Result<ControlFiles::Entry>& entry) {
  fuse_entry_param param{};
  if (!entry.ok()) {
    param.entry_timeout = 0;  // a miss in the control directory is not cached
  } else {
    param.ino = entry->ino;
    param.attr = entry->attr;
    param.attr_timeout = param.entry_timeout = entry->timeout;
  }
  replies_->Defer([this, req, param] {
    ReplyOrUndo([&] { return fuse_reply_entry(req, &param); }, [this, ino = param.ino] {
      if (ino != 0) controls_->Forget(ino, 1);
    });
  });
}

fuse_entry_param FuseAdapter::EntryParam(const Entry& entry) const {
  fuse_entry_param param{};
  param.ino = entry.ino;
  param.attr = entry.attr;
  param.attr_timeout = config_.attr_timeout;
  param.entry_timeout = config_.entry_timeout;
  return param;
}

void FuseAdapter::ReplyEntry(fuse_req_t req, const Result<Entry>& entry) {
  if (!entry.ok()) return ReplyError(req, entry.status());
  fuse_entry_param param = EntryParam(*entry);
  replies_->Defer([this, req, param] {
    // If the kernel never got the entry (the request was interrupted), it
    // will never forget it either: take the reference back now.
    ReplyOrUndo([&] { return fuse_reply_entry(req, &param); },
                [this, ino = param.ino] { keyspace_->Forget(ino, 1); });
  });
}

void FuseAdapter::ReplyAttr(fuse_req_t req, const struct stat& attr) {
  double timeout = config_.attr_timeout;
  replies_->Defer([req, attr, timeout] { fuse_reply_attr(req, &attr, timeout); });
}

void FuseAdapter::ReplyXattrValue(fuse_req_t req, std::string value, size_t size) {
  if (size == 0) {
    size_t length = value.size();
    replies_->Defer([req, length] { fuse_reply_xattr(req, length); });
  } else if (value.size() > size) {
    ReplyError(req, Status::Errno(ERANGE));
  } else {
    replies_->Defer([req, value = std::move(value)] {
      fuse_reply_buf(req, value.data(), value.size());
    });
  }
}

Caller FuseAdapter::CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return Caller{ctx->uid, ctx->gid};
}

// --- namespace ----------------------------------------------------------------

void FuseAdapter::Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (auto control = controls_->Lookup(parent, name)) return ReplyControlEntry(req, *control);
  auto entry = keyspace_->Lookup(parent, name, /*hide_due=*/!FromExpiryAgent(req));
  if (!entry.ok() && entry.status().code() == ENOENT && keyspace_->IsDueName(parent, name)) {
    // Hidden until the server removes it: a miss the kernel must not cache,
    // or the removal through the mount would not find it.
    return ReplyError(req, entry.status());
  }
  if (!entry.ok() && entry.status().code() == ENOENT) {
    // ino 0 with a timeout: the kernel caches the miss (negative dentry).
    fuse_entry_param param{};
    param.entry_timeout = config_.negative_timeout;
    replies_->Defer([req, param] { fuse_reply_entry(req, &param); });
    return;
  }
  ReplyEntry(req, entry);
}

void FuseAdapter::Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  if (ControlFiles::Owns(ino)) {
    controls_->Forget(ino, nlookup);
  } else {
    keyspace_->Forget(ino, nlookup);
  }
  fuse_reply_none(req);  // sends nothing: no need to wait for before-sleep
}

void FuseAdapter::ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) {
    if (ControlFiles::Owns(forgets[i].ino)) {
      controls_->Forget(forgets[i].ino, forgets[i].nlookup);
    } else {
      keyspace_->Forget(forgets[i].ino, forgets[i].nlookup);
    }
  }
  fuse_reply_none(req);
}

void FuseAdapter::GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ControlFiles::Owns(ino)) {
    auto attr = controls_->GetAttr(ino);
    if (!attr.ok()) return ReplyError(req, attr.status());
    struct stat st = *attr;
    return replies_->Defer([req, st] { fuse_reply_attr(req, &st, 0); });
  }
  auto attr = keyspace_->GetAttr(ino);
  if (!attr.ok()) return ReplyError(req, attr.status());
  ReplyAttr(req, *attr);
}

void FuseAdapter::SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                          fuse_file_info*) {
  if (RefuseControl(req, ino)) return;
  SetAttrRequest request;
  if (to_set & FUSE_SET_ATTR_MODE) request.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) request.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) request.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) request.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    request.atime.kind = TimeChange::kNow;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    request.atime = {TimeChange::kSet, attr->st_atim};
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    request.mtime.kind = TimeChange::kNow;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    request.mtime = {TimeChange::kSet, attr->st_mtim};
  }
  if (to_set & FUSE_SET_ATTR_CTIME) request.ctime = attr->st_ctim;
  auto result = keyspace_->SetAttr(ino, request);
  if (!result.ok()) return ReplyError(req, result.status());
  ReplyAttr(req, *result);
}

void FuseAdapter::ReadLink(fuse_req_t req, fuse_ino_t ino) {
  if (ControlFiles::Owns(ino)) return ReplyError(req, Status::Errno(EINVAL));
  auto target = keyspace_->ReadLink(ino);
  if (!target.ok()) return ReplyError(req, target.status());
  replies_->Defer([req, target = std::move(target).value()] {
    fuse_reply_readlink(req, target.c_str());
  });
}

// Creating takes memory for the inode and the name; when memory is full of
// blocks being saved, the request waits (names are copied: the receive
// buffer is reused).
void FuseAdapter::MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name,
                           mode_t mode, dev_t rdev) {
  if (RefuseControl(req, parent, name)) return;
  Caller caller = CallerOf(req);
  Dispatch(req, 0, [=, this, name = std::string(name)](std::string_view) {
    auto entry = keyspace_->MakeNode(parent, name, mode, rdev, caller);
    if (!entry.ok()) return ReplyOrWait(req, entry.status());
    ReplyEntry(req, entry);
    return Status::Ok();
  });
}

void FuseAdapter::MakeDirectory(fuse_req_t req, fuse_ino_t parent, const char* name,
                                mode_t mode) {
  if (RefuseControl(req, parent, name)) return;
  Caller caller = CallerOf(req);
  Dispatch(req, 0, [=, this, name = std::string(name)](std::string_view) {
    auto entry = keyspace_->MakeDirectory(parent, name, mode, caller);
    if (!entry.ok()) return ReplyOrWait(req, entry.status());
    ReplyEntry(req, entry);
    return Status::Ok();
  });
}

void FuseAdapter::Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (RefuseControl(req, parent, name)) return;
  ReplyError(req, FromExpiryAgent(req) ? keyspace_->UnlinkDue(parent, name)
                                       : keyspace_->Unlink(parent, name));
}

void FuseAdapter::RemoveDirectory(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (RefuseControl(req, parent, name)) return;
  ReplyError(req, keyspace_->RemoveDirectory(parent, name));
}

void FuseAdapter::Symlink(fuse_req_t req, const char* target, fuse_ino_t parent,
                          const char* name) {
  if (RefuseControl(req, parent, name)) return;
  Caller caller = CallerOf(req);
  Dispatch(req, 0, [=, this, name = std::string(name), target = std::string(target)](
                       std::string_view) {
    auto entry = keyspace_->MakeSymlink(parent, name, target, caller);
    if (!entry.ok()) return ReplyOrWait(req, entry.status());
    ReplyEntry(req, entry);
    return Status::Ok();
  });
}

void FuseAdapter::Rename(fuse_req_t req, fuse_ino_t parent, const char* name,
                         fuse_ino_t new_parent, const char* new_name, unsigned int flags) {
  if (RefuseControl(req, parent, name) || RefuseControl(req, new_parent, new_name)) return;
  ReplyError(req, keyspace_->Rename(parent, name, new_parent, new_name, flags));
}

void FuseAdapter::Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent,
                       const char* new_name) {
  if (RefuseControl(req, ino) || RefuseControl(req, new_parent, new_name)) return;
  Dispatch(req, 0, [=, this, new_name = std::string(new_name)](std::string_view) {
    auto entry = keyspace_->Link(ino, new_parent, new_name);
    if (!entry.ok()) return ReplyOrWait(req, entry.status());
    ReplyEntry(req, entry);
    return Status::Ok();
  });
}

// --- attributes -----------------------------------------------------------------

void FuseAdapter::StatFs(fuse_req_t req, fuse_ino_t) {
  constexpr uint64_t kUnit = 4096;
  FsStats stats = control_->StatFs();
  struct statvfs st {};
  st.f_bsize = kUnit;
  st.f_frsize = kUnit;
  st.f_blocks = stats.bytes_limit / kUnit;
  uint64_t used_units = (stats.bytes_used + kUnit - 1) / kUnit;
  st.f_bfree = st.f_bavail = st.f_blocks > used_units ? st.f_blocks - used_units : 0;
  st.f_files = stats.inodes_possible;
  st.f_ffree = st.f_favail = stats.inodes_possible - stats.inodes;
  st.f_namemax = Keyspace::kMaxNameLength;
  replies_->Defer([req, st] { fuse_reply_statfs(req, &st); });
}

void FuseAdapter::SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name,
                           const char* value, size_t size, int flags) {
  XattrMap::SetMode mode = XattrMap::SetMode::kAny;
  if (flags & XATTR_CREATE) mode = XattrMap::SetMode::kCreateOnly;
  if (flags & XATTR_REPLACE) mode = XattrMap::SetMode::kReplaceOnly;
  if (std::string_view(name).starts_with(ServerControl::kPrefix)) {
    std::string_view text(value, size);
    if (ino == FUSE_ROOT_ID) {
      // Options are the operator's: with allow_other, other users may write
      // the root too (Redis keeps CONFIG SET for authenticated clients).
      const fuse_ctx* ctx = fuse_req_ctx(req);
      if (std::string_view(name).substr(ServerControl::kPrefix.size()).starts_with("config") &&
          ctx->uid != 0 && ctx->uid != getuid()) {
        return ReplyError(req, Status::Errno(EPERM));
      }
      return ReplyError(req, control_->SetControl(name, text));
    }
    if (ControlFiles::Owns(ino)) return ReplyError(req, Status::Errno(EPERM));
    // user.keyfs.evict, ...: whatever the flags (keyfs-ctl sends XATTR_REPLACE,
    // which other filesystems refuse for an attribute a file lacks).
    return ReplyError(req, control_->SetFileControl(ino, name, text, fuse_req_ctx(req)->uid));
  }
  if (RefuseControl(req, ino)) return;
  Dispatch(req, 0,
           [=, this, name = std::string(name), value = std::string(value, size)](std::string_view) {
             return ReplyOrWait(req, keyspace_->SetXattr(ino, name, value, mode));
           });
}

void FuseAdapter::GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (std::string_view(name).starts_with(ServerControl::kPrefix)) {
    auto value = ino == FUSE_ROOT_ID ? control_->GetControl(name) : Status::Errno(ENODATA);
    if (!value.ok() && value.status().code() == ENODATA && !ControlFiles::Owns(ino)) {
      value = control_->GetFileControl(ino, name);  // user.keyfs.state, on any file
    }
    if (!value.ok()) return ReplyError(req, value.status());
    return ReplyXattrValue(req, std::move(value).value(), size);
  }
  if (ControlFiles::Owns(ino)) return ReplyError(req, Status::Errno(ENODATA));
  auto value = keyspace_->GetXattr(ino, name);
  if (!value.ok()) return ReplyError(req, value.status());
  ReplyXattrValue(req, std::move(value).value(), size);
}

void FuseAdapter::ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  if (ControlFiles::Owns(ino)) return ReplyXattrValue(req, std::string(), size);
  auto list = keyspace_->ListXattr(ino);
  if (!list.ok()) return ReplyError(req, list.status());
  ReplyXattrValue(req, std::move(list).value(), size);
}

void FuseAdapter::RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (std::string_view(name).starts_with(ServerControl::kPrefix)) {
    if (ControlFiles::Owns(ino)) return ReplyError(req, Status::Errno(EPERM));
    return ReplyError(req, control_->RemoveFileControl(ino, name, fuse_req_ctx(req)->uid));
  }
  if (RefuseControl(req, ino)) return;
  ReplyError(req, keyspace_->RemoveXattr(ino, name));
}

}  // namespace keyfs
