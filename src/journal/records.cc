#include "src/journal/records.h"

#include <fmt/format.h>

#include "src/base/coding.h"

namespace keyfs::journal {

std::string_view RecordTypeName(uint8_t type) {
  switch (type) {
    case kNode: return "node";
    case kLink: return "link";
    case kUnlink: return "unlink";
    case kRmdir: return "rmdir";
    case kRename: return "rename";
    case kSetAttr: return "setattr";
    case kWrite: return "write";
    case kAllocate: return "allocate";
    case kSetXattr: return "setxattr";
    case kRemoveXattr: return "removexattr";
    case kAccess: return "access";
    case kSnapshotLink: return "snapshot-link";
    case kSnapshotData: return "snapshot-data";
    case kSnapshotXattr: return "snapshot-xattr";
    case kSnapshotEnd: return "snapshot-end";
    case kBlockSaved: return "block-saved";
    case kSnapshotStoredBlock: return "snapshot-stored-block";
    case kSnapshotBlockData: return "snapshot-block-data";
    case kWriteStored: return "write-stored";
    case kSetExpiry: return "set-expiry";
    case kSetPin: return "set-pin";
  }
  return "unknown";
}

NodeRecord NodeRecordOf(uint64_t parent, std::string_view name, const Inode& inode) {
  NodeRecord r;
  r.parent = parent;
  r.ino = inode.ino;
  r.mode = inode.mode;
  r.uid = inode.uid;
  r.gid = inode.gid;
  r.rdev = inode.rdev();
  r.size = inode.size;
  r.atime = inode.atime;
  r.mtime = inode.mtime;
  r.ctime = inode.ctime;
  r.name = name;
  if (inode.is_symlink()) r.content = inode.symlink_target();
  return r;
}

void FieldWriter::operator()(uint32_t v) { PutFixed32(out_, v); }
void FieldWriter::operator()(uint64_t v) { PutFixed64(out_, v); }
void FieldWriter::operator()(const timespec& t) {
  PutFixed64(out_, static_cast<uint64_t>(t.tv_sec));
  PutFixed32(out_, static_cast<uint32_t>(t.tv_nsec));
}
void FieldWriter::operator()(std::string_view s) {
  PutFixed32(out_, static_cast<uint32_t>(s.size()));
  out_->append(s);
}

bool FieldReader::Take(size_t n, const char** p) {
  if (!ok_ || in_.size() < n) {
    ok_ = false;
    return false;
  }
  *p = in_.data();
  in_.remove_prefix(n);
  return true;
}

void FieldReader::operator()(uint32_t& v) {
  const char* p;
  v = Take(4, &p) ? DecodeFixed32(p) : 0;
}

void FieldReader::operator()(uint64_t& v) {
  const char* p;
  v = Take(8, &p) ? DecodeFixed64(p) : 0;
}

void FieldReader::operator()(timespec& t) {
  uint64_t sec;
  uint32_t nsec;
  (*this)(sec);
  (*this)(nsec);
  if (nsec >= 1'000'000'000) ok_ = false;
  t.tv_sec = static_cast<time_t>(sec);
  t.tv_nsec = ok_ ? nsec : 0;
}

void FieldReader::operator()(std::string_view& s) {
  uint32_t length;
  (*this)(length);
  const char* p;
  s = Take(length, &p) ? std::string_view(p, length) : std::string_view();
}

// --- dump ---------------------------------------------------------------------

namespace {

std::string Time(const timespec& t) { return fmt::format("{}.{:09}", t.tv_sec, t.tv_nsec); }

// A name or short content shown as a quoted string, non-printing bytes escaped;
// long contents are shown by length only.
std::string Quote(std::string_view s, size_t limit = 64) {
  std::string out = "\"";
  for (char c : s.substr(0, limit)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  if (s.size() > limit) out += fmt::format("...({} bytes)", s.size());
  return out;
}

}  // namespace

std::string DescribeRecord(uint8_t type, std::string_view payload) {
  std::string_view name = RecordTypeName(type);
  auto bad = [&] { return fmt::format("{} (payload of {} bytes does not decode)", name, payload.size()); };
  switch (type) {
    case kNode: {
      NodeRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} parent={} name={} mode={:o} uid={} gid={} rdev={} size={} "
                         "ctime={} flags={} content={}",
                         name, r.ino, r.parent, Quote(r.name), r.mode, r.uid, r.gid, r.rdev,
                         r.size, Time(r.ctime), r.flags, Quote(r.content));
    }
    case kLink:
    case kSnapshotLink: {
      LinkRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} parent={} name={} time={}", name, r.ino, r.parent,
                         Quote(r.name), Time(r.time));
    }
    case kUnlink:
    case kRmdir: {
      UnlinkRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} parent={} name={} time={}", name, r.parent, Quote(r.name),
                         Time(r.time));
    }
    case kRename: {
      RenameRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} parent={} name={} new_parent={} new_name={} flags={} time={}", name,
                         r.parent, Quote(r.name), r.new_parent, Quote(r.new_name), r.flags,
                         Time(r.time));
    }
    case kSetAttr: {
      SetAttrRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} fields={:#x} mode={:o} uid={} gid={} size={} atime={} "
                         "mtime={} ctime={}",
                         name, r.ino, r.fields, r.mode, r.uid, r.gid, r.size, Time(r.atime),
                         Time(r.mtime), Time(r.ctime));
    }
    case kWrite:
    case kSnapshotData: {
      WriteRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} offset={} length={} time={} data={}", name, r.ino, r.offset,
                         r.data.size(), Time(r.time), Quote(r.data, 32));
    }
    case kAllocate: {
      AllocateRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} mode={:#x} offset={} length={} time={}", name, r.ino, r.mode,
                         r.offset, r.length, Time(r.time));
    }
    case kSetXattr:
    case kRemoveXattr:
    case kSnapshotXattr: {
      XattrRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} name={} value={} time={}", name, r.ino, Quote(r.name),
                         Quote(r.value), Time(r.time));
    }
    case kAccess: {
      AccessRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} atime={}", name, r.ino, Time(r.atime));
    }
    case kSetExpiry: {
      ExpiryRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} at_ms={}", name, r.ino, r.at_ms);
    }
    case kSnapshotEnd: {
      SnapshotEndRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} covers_seq={} next_ino={} inodes={}", name, r.covers_seq,
                         r.next_ino, r.inodes);
    }
    case kBlockSaved: {
      BlockSavedRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} index={} version={} at={}:{}+{}", name, r.ino, r.index,
                         r.version, r.where.segment, r.where.offset, r.where.size);
    }
    case kWriteStored: {
      WriteStoredRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} index={} length={} time={} stored_version={} at={}:{}+{}",
                         name, r.ino, r.index, r.length, Time(r.time), r.stored_version,
                         r.where.segment, r.where.offset, r.where.size);
    }
    case kSetPin: {
      SetPinRecord r;
      if (!Decode(payload, &r) || r.pinned > 1) return bad();
      return fmt::format("{} ino={} pinned={}", name, r.ino, r.pinned);
    }
    case kSnapshotStoredBlock: {
      StoredBlockRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} index={} length={} version={} stored_version={} at={}:{}+{}",
                         name, r.ino, r.index, r.length, r.version, r.stored_version,
                         r.where.segment, r.where.offset, r.where.size);
    }
    case kSnapshotBlockData: {
      BlockDataRecord r;
      if (!Decode(payload, &r)) return bad();
      return fmt::format("{} ino={} index={} version={} length={} data={}", name, r.ino, r.index,
                         r.version, r.data.size(), Quote(r.data, 32));
    }
  }
  return fmt::format("unknown type {} ({} bytes)", type, payload.size());
}

}  // namespace keyfs::journal
