#include "store/journal_writer.h"

namespace keyfs {

Result<std::unique_ptr<JournalWriter>> JournalWriter::Create(Env* env, const std::string& path,
                                                             uint64_t base_seq) {
  ASSIGN_OR_RETURN(auto file, env->NewWritableFile(path));
  std::string header;
  journal::EncodeFileHeader(journal::FileHeader{journal::kVersion, 0, base_seq}, &header);
  Status status = file->Append(header);
  if (status.ok()) status = file->Sync();
  if (status.ok()) status = env->SyncDir(DirName(path));
  if (!status.ok()) {
    // Leave no headless file behind (a full disk): the journal goes on in
    // the segment it had. Should this fail too, replay takes a segment cut
    // in its header for a torn tail.
    file.reset();
    (void)env->RemoveFile(path);
    return status;
  }
  return std::unique_ptr<JournalWriter>(
      new JournalWriter(env, path, std::move(file), header.size(), base_seq));
}

Result<std::unique_ptr<JournalWriter>> JournalWriter::Continue(Env* env, const std::string& path,
                                                               uint64_t good_offset,
                                                               uint64_t last_seq) {
  ASSIGN_OR_RETURN(uint64_t size, env->GetFileSize(path));
  if (size > good_offset) {
    RETURN_IF_ERROR(env->TruncateFile(path, good_offset));
  }
  ASSIGN_OR_RETURN(auto file, env->NewAppendableFile(path));
  if (size > good_offset) RETURN_IF_ERROR(file->Sync());  // make the cut durable
  return std::unique_ptr<JournalWriter>(
      new JournalWriter(env, path, std::move(file), good_offset, last_seq));
}

uint64_t JournalWriter::Add(uint8_t type, std::string_view payload) {
  journal::EncodeRecord(type, ++last_seq_, payload, &pending_);
  return last_seq_;
}

Status JournalWriter::RepairTail() {
  // A failed append may have left part of the buffer in the file. Cut it off
  // and reopen, so the retried buffer starts right after the last whole record.
  file_.reset();
  RETURN_IF_ERROR(env_->TruncateFile(path_, written_size_));
  ASSIGN_OR_RETURN(file_, env_->NewAppendableFile(path_));
  tail_suspect_ = false;
  return Status::Ok();
}

Status JournalWriter::Flush() {
  if (pending_.empty()) return Status::Ok();
  if (tail_suspect_) RETURN_IF_ERROR(RepairTail());
  Status status = file_->Append(pending_);
  if (!status.ok()) {
    tail_suspect_ = true;
    return status;
  }
  written_size_ += pending_.size();
  pending_.clear();
  return Status::Ok();
}

Status JournalWriter::Sync() {
  if (!file_) return Status::IoError(path_ + ": journal is not open");
  return file_->Sync();
}

}  // namespace keyfs
