#include "src/journal/replayer.h"

#include "src/journal/records.h"

namespace keyfs {

using namespace journal;

Replayer::Replayer(Keyspace* keyspace, const Clock* live_clock, BlockFetcher fetch)
    : keyspace_(keyspace), live_clock_(live_clock), fetch_(std::move(fetch)) {
  keyspace_->set_clock(&clock_);
}

Replayer::~Replayer() {
  keyspace_->set_clock(live_clock_);
  keyspace_->set_replay_seq(0);
  keyspace_->RecountPinned();  // replay keeps no count of what pinned files take
}

Status Replayer::SkipIfGone(Status status) {
  if (status.code() == ENOENT) {
    ++skipped_;
    return Status::Ok();
  }
  return status;
}

Status Replayer::Apply(uint8_t type, uint64_t seq, std::string_view payload) {
  keyspace_->set_replay_seq(seq);
  Status status = ApplyDecoded(type, payload);
  // Records are all or nothing (file_data.h): after the load, again.
  for (int round = 0; status.code() == kNeedBlocks && fetch_ && round < 2; ++round) {
    RETURN_IF_ERROR(fetch_(keyspace_->needed()));
    status = ApplyDecoded(type, payload);
  }
  if (status.code() == kNeedBlocks) {
    return Status::Errno(EIO, "the record needs blocks from the store, and there is no store");
  }
  if (status.ok()) ++applied_;
  return status;
}

Status Replayer::ApplyDecoded(uint8_t type, std::string_view payload) {
  auto malformed = [&] {
    return Status::Errno(EINVAL, std::string("malformed ") +
                                     std::string(RecordTypeName(type)) + " record");
  };
  switch (type) {
    case kNode: {
      NodeRecord r;
      if (!Decode(payload, &r)) return malformed();
      NodeAttributes attrs;
      attrs.ino = r.ino;
      attrs.mode = r.mode;
      attrs.uid = r.uid;
      attrs.gid = r.gid;
      attrs.rdev = r.rdev;
      attrs.size = r.size;
      attrs.atime = r.atime;
      attrs.mtime = r.mtime;
      attrs.ctime = r.ctime;
      return keyspace_->RestoreNode(r.parent, r.name, attrs, r.content,
                                    (r.flags & kTouchParent) != 0);
    }
    case kLink: {
      LinkRecord r;
      if (!Decode(payload, &r)) return malformed();
      clock_.Set(r.time);
      Result<Entry> entry = keyspace_->Link(r.ino, r.parent, r.name);
      if (!entry.ok()) return entry.status();
      keyspace_->Forget(r.ino, 1);  // Link counts a kernel reference; replay has none
      return Status::Ok();
    }
    case kSnapshotLink: {
      LinkRecord r;
      if (!Decode(payload, &r)) return malformed();
      return keyspace_->RestoreLink(r.ino, r.parent, r.name);
    }
    case kUnlink:
    case kRmdir: {
      UnlinkRecord r;
      if (!Decode(payload, &r)) return malformed();
      clock_.Set(r.time);
      return type == kUnlink ? keyspace_->Unlink(r.parent, r.name)
                             : keyspace_->RemoveDirectory(r.parent, r.name);
    }
    case kRename: {
      RenameRecord r;
      if (!Decode(payload, &r)) return malformed();
      clock_.Set(r.time);
      return keyspace_->Rename(r.parent, r.name, r.new_parent, r.new_name, r.flags);
    }
    case kSetAttr: {
      SetAttrRecord r;
      if (!Decode(payload, &r)) return malformed();
      clock_.Set(r.ctime);
      SetAttrRequest request;
      if (r.fields & kAttrMode) request.mode = r.mode;
      if (r.fields & kAttrUid) request.uid = r.uid;
      if (r.fields & kAttrGid) request.gid = r.gid;
      if (r.fields & kAttrSize) request.size = r.size;
      if (r.fields & kAttrAtime) request.atime = {TimeChange::kSet, r.atime};
      if (r.fields & kAttrMtime) request.mtime = {TimeChange::kSet, r.mtime};
      request.ctime = r.ctime;
      return SkipIfGone(keyspace_->SetAttr(r.ino, request).status());
    }
    case kWrite: {
      WriteRecord r;
      if (!Decode(payload, &r)) return malformed();
      clock_.Set(r.time);
      Result<size_t> written = keyspace_->Write(r.ino, r.offset, r.data, Keyspace::WriteAt::kOffset);
      if (!written.ok()) return SkipIfGone(written.status());
      if (*written < r.data.size()) return Status::Errno(ENOSPC);
      return Status::Ok();
    }
    case kSnapshotData: {
      WriteRecord r;
      if (!Decode(payload, &r)) return malformed();
      return keyspace_->RestoreData(r.ino, r.offset, r.data);
    }
    case kAllocate: {
      AllocateRecord r;
      if (!Decode(payload, &r)) return malformed();
      clock_.Set(r.time);
      return SkipIfGone(keyspace_->Fallocate(r.ino, static_cast<int>(r.mode), r.offset,
                                             r.length));
    }
    case kSetXattr:
    case kRemoveXattr: {
      XattrRecord r;
      if (!Decode(payload, &r)) return malformed();
      clock_.Set(r.time);
      return SkipIfGone(type == kSetXattr
                            ? keyspace_->SetXattr(r.ino, r.name, r.value, XattrMap::SetMode::kAny)
                            : keyspace_->RemoveXattr(r.ino, r.name));
    }
    case kSnapshotXattr: {
      XattrRecord r;
      if (!Decode(payload, &r)) return malformed();
      return keyspace_->RestoreXattr(r.ino, r.name, r.value);
    }
    case kAccess: {
      AccessRecord r;
      if (!Decode(payload, &r)) return malformed();
      return SkipIfGone(keyspace_->RestoreAccessTime(r.ino, r.atime));
    }
    case kSetExpiry: {
      // Live and in snapshots alike: nothing expires during replay (no
      // expiry clock); what is due goes once the mount starts.
      ExpiryRecord r;
      if (!Decode(payload, &r)) return malformed();
      if (r.at_ms > static_cast<uint64_t>(INT64_MAX)) return malformed();
      if (r.at_ms == 0) {
        Status cleared = keyspace_->ClearExpiry(r.ino);
        return cleared.code() == ENODATA ? Status::Ok() : SkipIfGone(cleared);
      }
      return SkipIfGone(keyspace_->SetExpiry(r.ino, static_cast<int64_t>(r.at_ms)));
    }
    case kBlockSaved: {
      BlockSavedRecord r;
      if (!Decode(payload, &r)) return malformed();
      return keyspace_->RestoreBlockSaved(r.ino, r.index, r.version, r.where.location());
    }
    case kWriteStored: {
      WriteStoredRecord r;
      if (!Decode(payload, &r)) return malformed();
      return SkipIfGone(keyspace_->RestoreWriteStored(r.ino, r.index, r.length, r.time,
                                                      r.stored_version, r.where.location()));
    }
    case kSetPin: {
      SetPinRecord r;
      if (!Decode(payload, &r) || r.pinned > 1) return malformed();
      return SkipIfGone(keyspace_->RestorePin(r.ino, r.pinned == 1));
    }
    case kSnapshotStoredBlock: {
      StoredBlockRecord r;
      if (!Decode(payload, &r)) return malformed();
      return keyspace_->RestoreStoredBlock(r.ino, r.index, r.length, r.version, r.stored_version,
                                           r.where.location());
    }
    case kSnapshotBlockData: {
      BlockDataRecord r;
      if (!Decode(payload, &r)) return malformed();
      return keyspace_->RestoreBlockData(r.ino, r.index, r.version, r.data);
    }
    case kSnapshotEnd: {
      SnapshotEndRecord r;
      if (!Decode(payload, &r)) return malformed();
      if (r.inodes != keyspace_->inode_count()) {
        return Status::Errno(EINVAL, "the snapshot should hold " + std::to_string(r.inodes) +
                                         " inodes but holds " +
                                         std::to_string(keyspace_->inode_count()));
      }
      keyspace_->RestoreNextIno(r.next_ino);
      saw_snapshot_end_ = true;
      snapshot_covers_seq_ = r.covers_seq;
      return Status::Ok();
    }
  }
  return Status::Errno(EINVAL, "unknown record type " + std::to_string(type));
}

}  // namespace keyfs
