#include "src/journal/snapshot.h"

#include <unordered_set>

#include "src/journal/records.h"
#include "store/journal_writer.h"

namespace keyfs {

using namespace journal;

namespace {

// The buffer is written out whenever it holds this much.
constexpr size_t kFlushBytes = 4u << 20;

class SnapshotWriter {
 public:
  SnapshotWriter(JournalWriter* writer, const BlockStore* store)
      : writer_(writer), store_(store), store_persists_(!store || store->persistent()) {}

  // Encoded straight into the writer's buffer: a block's bytes are copied
  // once, not into a payload first.
  template <typename Record>
  Status Add(uint8_t type, const Record& record) {
    writer_->AddEncoded(type, [&record](std::string* out) { AppendPayload(record, out); });
    ++records_;
    if (writer_->pending_bytes() >= kFlushBytes) return writer_->Flush();
    return Status::Ok();
  }

  Status Node(Ino parent, std::string_view name, const Inode& inode) {
    RETURN_IF_ERROR(Add(kNode, NodeRecordOf(parent, name, inode)));
    if (inode.is_regular()) RETURN_IF_ERROR(Blocks(inode));
    if (inode.pinned) RETURN_IF_ERROR(Add(kSetPin, SetPinRecord{inode.ino, 1}));
    if (inode.xattrs) {
      for (const auto& [attr_name, value] : inode.xattrs->entries()) {
        RETURN_IF_ERROR(Add(kSnapshotXattr, XattrRecord{inode.ino, {}, attr_name, value}));
      }
    }
    return Status::Ok();
  }

  Status Blocks(const Inode& inode) {
    const FileData& file = inode.file();
    for (size_t i = 0; i < file.block_count(); ++i) {
      const BlockSlot& slot = file.slot(i);
      if (slot.hole() || slot.length == 0) continue;
      bool saved = slot.stored.valid() && !slot.dirty && store_persists_;
      if (saved) {
        RETURN_IF_ERROR(Add(kSnapshotStoredBlock,
                            StoredBlockRecord{inode.ino, i, slot.length, slot.version,
                                              slot.stored_version,
                                              LocationFields::Of(slot.stored)}));
        continue;
      }
      RefPtr<BlockBuffer> read_back;
      const BlockBuffer* bytes = slot.buffer.get();
      if (!bytes) {
        ASSIGN_OR_RETURN(read_back, ReadBack(inode.ino, i, slot));
        bytes = read_back.get();
      }
      RETURN_IF_ERROR(Add(kSnapshotBlockData,
                          BlockDataRecord{inode.ino, i, slot.version,
                                          std::string_view(bytes->data(), slot.length)}));
    }
    return Status::Ok();
  }

  // An evicted block of a store that does not persist: its bytes, from there.
  Result<RefPtr<BlockBuffer>> ReadBack(Ino ino, size_t index, const BlockSlot& slot) {
    auto where = [&] {
      return "block " + std::to_string(index) + " of inode " + std::to_string(ino);
    };
    if (!store_) return Status::Errno(EIO, where() + " is evicted, and there is no block store");
    auto block = store_->LoadForSnapshot({ino, index, slot.stored_version}, slot.stored, &scratch_);
    if (!block.ok()) {
      return Status::Errno(block.status().code(),
                           "reading " + where() + " back: " + block.status().ToString());
    }
    if ((*block)->length() < slot.length) {
      return Status::Errno(EIO, where() + " is shorter in the store than in the keyspace");
    }
    return block;
  }

  Status Link(Ino ino, Ino parent, std::string_view name) {
    return Add(kSnapshotLink, LinkRecord{ino, parent, {}, name});
  }

  uint64_t records() const { return records_; }

 private:
  JournalWriter* writer_;
  const BlockStore* const store_;
  const bool store_persists_;
  // Buffers read back are charged here, not to the server's budget (this
  // may be a forked child, whose memory is its own).
  MemoryAccountant scratch_{UINT64_MAX};
  uint64_t records_ = 0;
};

}  // namespace

Result<SnapshotStats> WriteSnapshot(const Keyspace& keyspace, uint64_t covers_seq, Env* env,
                                    const std::string& path, const BlockStore* store) {
  ASSIGN_OR_RETURN(auto writer, JournalWriter::Create(env, path, /*base_seq=*/0));
  SnapshotWriter snapshot(writer.get(), store);
  const Inode* root = keyspace.FindInode(kRootIno);
  RETURN_IF_ERROR(snapshot.Node(0, "", *root));

  SnapshotStats stats;
  stats.inodes = 1;
  std::unordered_set<Ino> linked;  // inodes with several names, written once
  Status status;
  keyspace.ForEachName([&](Ino parent, std::string_view name, const Inode& inode) {
    if (!status.ok()) return;
    if (!inode.is_dir() && inode.nlink > 1 && !linked.insert(inode.ino).second) {
      status = snapshot.Link(inode.ino, parent, name);
      return;
    }
    ++stats.inodes;
    status = snapshot.Node(parent, name, inode);
  });
  RETURN_IF_ERROR(status);
  // Lifetimes after every inode, so that each record finds its inode.
  keyspace.ForEachExpiry([&](Ino ino, int64_t at_ms) {
    if (status.ok()) status = snapshot.Add(kSetExpiry, ExpiryRecord{ino, static_cast<uint64_t>(at_ms)});
  });
  RETURN_IF_ERROR(status);

  RETURN_IF_ERROR(
      snapshot.Add(kSnapshotEnd, SnapshotEndRecord{covers_seq, keyspace.next_ino(), stats.inodes}));
  RETURN_IF_ERROR(writer->Flush());
  RETURN_IF_ERROR(writer->Sync());
  stats.records = snapshot.records();
  stats.bytes = writer->written_size();
  return stats;
}

}  // namespace keyfs
