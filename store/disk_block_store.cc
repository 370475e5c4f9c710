#include "store/disk_block_store.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "store/block_format.h"
#include "store/record_io.h"

namespace keyfs {

namespace {

constexpr char kSegmentMagic[8] = {'K', 'E', 'Y', 'F', 'S', 'S', 'E', 'G'};
constexpr uint32_t kSegmentFormat = 1;
constexpr std::string_view kSegmentPrefix = "segment-";
constexpr std::string_view kSegmentSuffix = ".seg";

std::string SegmentHeader(uint32_t id) {
  std::string header(kSegmentMagic, sizeof(kSegmentMagic));
  PutFixed32(&header, kSegmentFormat);
  PutFixed32(&header, id);
  header.append(12, '\0');
  PutFixed32(&header, crc32c::Mask(crc32c::Value(header)));
  return header;
}

std::optional<uint32_t> SegmentIdOf(std::string_view name) {
  if (!name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix)) return std::nullopt;
  std::string_view digits = name.substr(kSegmentPrefix.size(),
                                        name.size() - kSegmentPrefix.size() - kSegmentSuffix.size());
  uint32_t id = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id == 0) return std::nullopt;
  return id;
}

}  // namespace

std::string DiskBlockStore::SegmentPath(uint32_t id) const {
  return fmt::format("{}/{}{:06}{}", dir_, kSegmentPrefix, id, kSegmentSuffix);
}

Result<std::unique_ptr<DiskBlockStore>> DiskBlockStore::Open(Env* env,
                                                             const std::string& store_dir,
                                                             const DiskStoreOptions& options) {
  std::string dir = store_dir + "/" + kDirName;
  RETURN_IF_ERROR(env->CreateDirs(dir));
  std::unique_ptr<DiskBlockStore> store(new DiskBlockStore(env, dir, options));
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  store->reserve_held_ = env->FileExists(dir + "/reserve");
  MutexLock lock(&store->mu_);
  for (const std::string& name : names) {
    std::optional<uint32_t> id = SegmentIdOf(name);
    if (!id) continue;
    Segment segment;
    segment.id = *id;
    ASSIGN_OR_RETURN(segment.file, env->OpenRandomAccessFile(store->SegmentPath(*id), false));
    ASSIGN_OR_RETURN(segment.size, segment.file->Size());
    store->segments_.emplace(*id, std::move(segment));
    store->next_id_ = std::max(store->next_id_, *id + 1);
  }
  return store;
}

Result<size_t> DiskBlockStore::CountSegments(Env* env, const std::string& store_dir) {
  std::string dir = store_dir + "/" + kDirName;
  if (!env->FileExists(dir)) return 0;
  ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  return static_cast<size_t>(std::count_if(names.begin(), names.end(), [](const std::string& name) {
    return SegmentIdOf(name).has_value();
  }));
}

DiskBlockStore::~DiskBlockStore() = default;

Status DiskBlockStore::StartSegment() {
  uint32_t id = next_id_;
  ASSIGN_OR_RETURN(std::shared_ptr<RandomAccessFile> file,
                   env_->OpenRandomAccessFile(SegmentPath(id), true));
  std::string header = SegmentHeader(id);
  Status written = file->WriteAt(0, header);
  if (!written.ok()) {
    file.reset();
    (void)env_->RemoveFile(SegmentPath(id));
    return written;
  }
  Segment segment;
  segment.id = id;
  segment.file = std::move(file);
  segment.size = header.size();
  segment.dirty = true;
  Segment* previous = active_;
  active_ = &segments_.emplace(id, std::move(segment)).first->second;
  next_id_ = id + 1;
  dir_dirty_ = true;
  if (previous) MaybeRetire(previous);
  return Status::Ok();
}

Result<std::pair<DiskBlockStore::Segment*, uint64_t>> DiskBlockStore::Allot(uint64_t bytes) {
  if (!active_ || (active_->size + bytes > options_.segment_bytes &&
                   active_->size > kSegmentHeaderSize)) {
    RETURN_IF_ERROR(StartSegment());
  }
  uint64_t offset = active_->size;
  active_->size += bytes;
  return std::make_pair(active_, offset);
}

Result<BlockLocation> DiskBlockStore::Append(std::string_view record) {
  std::shared_ptr<RandomAccessFile> file;
  BlockLocation where;
  {
    MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(auto allotted, Allot(record.size()));
    Segment* segment = allotted.first;
    file = segment->file;
    where = {segment->id, static_cast<uint32_t>(record.size()), allotted.second};
    segment->live_bytes += record.size();
  }
  Status written = file->WriteAt(where.offset, record);
  MutexLock lock(&mu_);
  auto it = segments_.find(where.segment);
  if (!written.ok()) {
    // The space is lost to a hole; it counts as dead.
    if (it != segments_.end()) it->second.live_bytes -= record.size();
    return written;
  }
  if (it != segments_.end()) it->second.dirty = true;
  return where;
}

Result<BlockLocation> DiskBlockStore::Save(const BlockId& id, std::string_view bytes) {
  std::string& record = record_io::Scratch();
  record.clear();
  block_format::Encode(id, bytes, options_.compress, &record);
  ASSIGN_OR_RETURN(BlockLocation where, Append(record));
  MutexLock lock(&mu_);
  ++counters_.saves;
  counters_.raw_bytes_saved += bytes.size();
  counters_.stored_bytes_saved += record.size();
  return where;
}

std::string DiskBlockStore::Place(const BlockLocation& where) const {
  return fmt::format("{} offset {}", SegmentPath(where.segment), where.offset);
}

Result<std::shared_ptr<RandomAccessFile>> DiskBlockStore::SegmentFile(const BlockLocation& where) {
  MutexLock lock(&mu_);
  auto it = segments_.find(where.segment);
  if (it == segments_.end()) {
    return Status::Errno(EIO, fmt::format("damaged block at {}: segment {} is missing",
                                          SegmentPath(where.segment), where.segment));
  }
  return it->second.file;
}

Result<std::string_view> DiskBlockStore::ReadRecord(const BlockLocation& where) {
  ASSIGN_OR_RETURN(std::shared_ptr<RandomAccessFile> file, SegmentFile(where));
  return record_io::Read(*file, where.offset, where.size, Place(where));
}

void DiskBlockStore::CountDamage(const Status& status) {
  spdlog::error("{}", status.ToString());
  MutexLock lock(&mu_);
  ++counters_.damaged;
}

Result<RefPtr<BlockBuffer>> DiskBlockStore::Load(const BlockId& id, const BlockLocation& where,
                                                 MemoryAccountant* accountant) {
  auto block = ReadBlock(id, where, accountant);
  if (!block.ok()) {
    if (block.status().code() == EIO) CountDamage(block.status());
    return block.status();
  }
  MutexLock lock(&mu_);
  ++counters_.loads;
  return block;
}

Result<RefPtr<BlockBuffer>> DiskBlockStore::ReadBlock(const BlockId& id, const BlockLocation& where,
                                                      MemoryAccountant* accountant) {
  if (where.size < block_format::kHeaderSize) {
    return Status::Errno(EIO, "damaged block at " + Place(where) + ": shorter than a block header");
  }
  ASSIGN_OR_RETURN(std::string_view record, ReadRecord(where));
  return block_format::Decode(record, id, accountant, Place(where));
}

bool DiskBlockStore::LoadsRange(const BlockLocation& where, uint32_t block_length) const {
  return where.size == block_format::RawRecordSize(block_length);
}

// The chunks of a raw record that hold the range are read in one pread: a
// 4 KiB read of a cold block costs one 4 KiB disk read, as in a plain file,
// not a whole block. Their CRCs name the block, so the header is not read.
Result<BlockStore::Range> DiskBlockStore::LoadRange(const BlockId& id, const BlockLocation& where,
                                                    uint32_t block_length, uint32_t offset,
                                                    uint32_t length, MemoryAccountant* accountant) {
  if (!block_format::ReadsInPart(where.size, block_length, offset, length)) {
    ASSIGN_OR_RETURN(RefPtr<BlockBuffer> block, Load(id, where, accountant));
    return Range{std::move(block), true};
  }
  auto read = [&]() -> Result<RefPtr<BlockBuffer>> {
    ASSIGN_OR_RETURN(std::shared_ptr<RandomAccessFile> file, SegmentFile(where));
    return record_io::ReadRange(*file, where.offset, id, block_length, offset, length, accountant,
                                Place(where));
  };
  auto range = read();
  if (!range.ok()) {
    if (range.status().code() == EIO) CountDamage(range.status());
    return range.status();
  }
  MutexLock lock(&mu_);
  ++counters_.range_loads;
  return Range{std::move(range).value(), false};
}

void DiskBlockStore::MaybeRetire(Segment* segment) {
  if (recovering_ || segment == active_ || segment->retired || segment->live_bytes > 0) return;
  segment->retired = true;
  segment->retired_epoch = epoch_;
}

Status DiskBlockStore::Delete(const BlockId&, const BlockLocation& where) {
  MutexLock lock(&mu_);
  ++counters_.deletes;
  auto it = segments_.find(where.segment);
  if (it == segments_.end()) return Status::Ok();
  Segment& segment = it->second;
  segment.live_bytes -= std::min<uint64_t>(segment.live_bytes, where.size);
  MaybeRetire(&segment);
  return Status::Ok();
}

Status DiskBlockStore::Sync() {
  MutexLock serial(&sync_mu_);
  std::vector<std::pair<uint32_t, std::shared_ptr<RandomAccessFile>>> files;
  bool dir;
  {
    MutexLock lock(&mu_);
    for (auto& [id, segment] : segments_) {
      if (!segment.dirty) continue;
      segment.dirty = false;
      files.emplace_back(id, segment.file);
    }
    dir = dir_dirty_;
    dir_dirty_ = false;
  }
  Status status;
  for (auto& [id, file] : files) {
    if (status.ok()) status = file->Sync();
  }
  if (status.ok() && dir) status = env_->SyncDir(dir_);
  if (!status.ok()) {
    // What was not made durable must be synced again by the next call.
    MutexLock lock(&mu_);
    for (auto& [id, file] : files) {
      if (auto it = segments_.find(id); it != segments_.end()) it->second.dirty = true;
    }
    dir_dirty_ |= dir;
  }
  return status;
}

BlockStoreStats DiskBlockStore::Stats() const {
  MutexLock lock(&mu_);
  BlockStoreStats stats = counters_;
  for (const auto& [id, segment] : segments_) {
    stats.saved_bytes += segment.size;
    stats.live_bytes += segment.live_bytes;
    ++stats.segments;
    if (segment.retired) ++stats.retired_segments;
  }
  return stats;
}

void DiskBlockStore::MarkLive(const BlockLocation& where) {
  MutexLock lock(&mu_);
  if (auto it = segments_.find(where.segment); it != segments_.end()) {
    it->second.live_bytes += where.size;
  }
}

void DiskBlockStore::FinishRecovery() {
  MutexLock lock(&mu_);
  recovering_ = false;
  for (auto& [id, segment] : segments_) MaybeRetire(&segment);
}

std::vector<DiskBlockStore::SegmentInfo> DiskBlockStore::Segments() const {
  MutexLock lock(&mu_);
  std::vector<SegmentInfo> out;
  for (const auto& [id, segment] : segments_) {
    out.push_back({id, segment.size, segment.live_bytes, &segment == active_, segment.retired});
  }
  return out;
}

Result<std::vector<std::pair<BlockId, BlockLocation>>> DiskBlockStore::ListSegment(uint32_t id) {
  std::shared_ptr<RandomAccessFile> file;
  uint64_t size;
  {
    MutexLock lock(&mu_);
    auto it = segments_.find(id);
    if (it == segments_.end()) return Status::Errno(ENOENT, SegmentPath(id));
    file = it->second.file;
    size = it->second.size;
  }
  std::vector<std::pair<BlockId, BlockLocation>> records;
  std::string header(block_format::kHeaderSize, '\0');
  for (uint64_t offset = kSegmentHeaderSize; offset + block_format::kHeaderSize <= size;) {
    ASSIGN_OR_RETURN(size_t got, file->ReadAt(offset, header.size(), header.data()));
    if (got != header.size()) break;
    auto parsed = block_format::ParseHeader(header, SegmentPath(id));
    if (!parsed.ok()) break;  // a hole left by a failed write, or the torn end
    uint64_t length = block_format::kHeaderSize + parsed->payload_length;
    records.push_back({parsed->id, {id, static_cast<uint32_t>(length), offset}});
    offset += length;
  }
  return records;
}

Result<BlockLocation> DiskBlockStore::Relocate(const BlockId& id, const BlockLocation& from) {
  std::string place = Place(from);
  ASSIGN_OR_RETURN(std::string_view record, ReadRecord(from));
  Status verified = block_format::Verify(record, id, place);
  if (!verified.ok()) {
    CountDamage(verified);
    return verified;
  }
  return Append(record);
}

Status DiskBlockStore::KeepReserve(uint64_t bytes) {
  if (reserve_held_) return Status::Ok();
  std::string path = dir_ + "/reserve";
  ASSIGN_OR_RETURN(auto file, env_->OpenRandomAccessFile(path, true));
  Status status = file->Reserve(0, bytes);
  if (!status.ok()) {
    file.reset();
    (void)env_->RemoveFile(path);
    return status;
  }
  reserve_held_ = true;
  return Status::Ok();
}

bool DiskBlockStore::DropReserve() {
  if (!reserve_held_) return false;
  reserve_held_ = false;
  return env_->RemoveFile(dir_ + "/reserve").ok();
}

void DiskBlockStore::set_epoch(uint64_t epoch) {
  MutexLock lock(&mu_);
  epoch_ = epoch;
}

Status DiskBlockStore::RemoveRetired(uint64_t epoch) {
  std::vector<std::pair<uint32_t, bool>> doomed;  // id, is the highest-numbered
  {
    MutexLock lock(&mu_);
    uint32_t highest = next_id_ - 1;
    for (auto it = segments_.begin(); it != segments_.end();) {
      Segment& segment = it->second;
      if (!segment.retired || segment.retired_epoch >= epoch) {
        ++it;
        continue;
      }
      doomed.emplace_back(it->first, it->first == highest);
      it = segments_.erase(it);
    }
  }
  Status status;
  for (auto [id, highest] : doomed) {
    // The highest number stays taken (invariant 2): its file is emptied, and
    // opened again as an empty retired segment at the next mount.
    Status removed = highest ? env_->TruncateFile(SegmentPath(id), 0) : env_->RemoveFile(SegmentPath(id));
    if (!removed.ok() && removed.code() != ENOENT && status.ok()) status = removed;
  }
  return status;
}

}  // namespace keyfs
