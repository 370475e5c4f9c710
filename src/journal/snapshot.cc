#include "src/journal/snapshot.h"

#include <unordered_set>

#include "src/journal/records.h"
#include "store/journal_writer.h"

namespace keyfs {

using namespace journal;

namespace {

// The buffer is written out whenever it holds this much.
constexpr size_t kFlushBytes = 4u << 20;
// A file whose first block is at most this long goes inline in its kNode.
constexpr size_t kInlineBytes = 64u << 10;

class SnapshotWriter {
 public:
  explicit SnapshotWriter(JournalWriter* writer) : writer_(writer) {}

  Status Add(uint8_t type, const std::string& payload) {
    writer_->Add(type, payload);
    ++records_;
    if (writer_->pending_bytes() >= kFlushBytes) return writer_->Flush();
    return Status::Ok();
  }

  Status Node(Ino parent, std::string_view name, const Inode& inode) {
    NodeRecord r = NodeRecordOf(parent, name, inode);
    size_t first_block = 0;  // blocks already written inline
    if (inode.is_regular() && inode.file().block_count() > 0) {
      const BlockBuffer* block = inode.file().block(0);
      if (block && block->length() <= kInlineBytes) {
        r.content = std::string_view(block->data(), block->length());
        first_block = 1;
      }
    }
    Encode(r, &payload_);
    RETURN_IF_ERROR(Add(kNode, payload_));
    if (inode.is_regular()) RETURN_IF_ERROR(Data(inode, first_block));
    if (inode.xattrs) {
      for (const auto& [attr_name, value] : inode.xattrs->entries()) {
        Encode(XattrRecord{inode.ino, {}, attr_name, value}, &payload_);
        RETURN_IF_ERROR(Add(kSnapshotXattr, payload_));
      }
    }
    return Status::Ok();
  }

  Status Data(const Inode& inode, size_t first_block) {
    const FileData& file = inode.file();
    for (size_t i = first_block; i < file.block_count(); ++i) {
      const BlockBuffer* block = file.block(i);
      if (!block || block->length() == 0) continue;  // a hole
      uint64_t offset = uint64_t{i} * file.block_size();
      if (offset >= inode.size) break;
      size_t length = std::min<uint64_t>(block->length(), inode.size - offset);
      Encode(WriteRecord{inode.ino, offset, {}, std::string_view(block->data(), length)},
             &payload_);
      RETURN_IF_ERROR(Add(kSnapshotData, payload_));
    }
    return Status::Ok();
  }

  Status Link(Ino ino, Ino parent, std::string_view name) {
    Encode(LinkRecord{ino, parent, {}, name}, &payload_);
    return Add(kSnapshotLink, payload_);
  }

  uint64_t records() const { return records_; }

 private:
  JournalWriter* writer_;
  std::string payload_;
  uint64_t records_ = 0;
};

}  // namespace

Result<SnapshotStats> WriteSnapshot(const Keyspace& keyspace, uint64_t covers_seq, Env* env,
                                    const std::string& path) {
  ASSIGN_OR_RETURN(auto writer, JournalWriter::Create(env, path, /*base_seq=*/0));
  SnapshotWriter snapshot(writer.get());
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

  std::string payload;
  Encode(SnapshotEndRecord{covers_seq, keyspace.next_ino(), stats.inodes}, &payload);
  RETURN_IF_ERROR(snapshot.Add(kSnapshotEnd, payload));
  RETURN_IF_ERROR(writer->Flush());
  RETURN_IF_ERROR(writer->Sync());
  stats.records = snapshot.records();
  stats.bytes = writer->written_size();
  return stats;
}

}  // namespace keyfs
