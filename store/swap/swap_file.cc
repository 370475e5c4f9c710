#include "store/swap/swap_file.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "src/base/size.h"
#include "store/block_format.h"
#include "store/record_io.h"

namespace keyfs {

namespace {

constexpr char kMagic[8] = {'K', 'E', 'Y', 'F', 'S', 'S', 'W', 'P'};
constexpr uint32_t kFormat = 1;
constexpr size_t kCrcOffset = 40;
constexpr uint64_t kMaxDefaultSize = uint64_t{64} << 30;

// Page 0 (docs/swap-format.md): magic | format u32 | page_size u32 |
// pages u64 | owner_length u32 | zero[12] | crc u32 | zero u32 | owner.
std::string HeaderPage(uint32_t page_size, uint64_t pages, std::string_view owner) {
  owner = owner.substr(0, page_size - SwapFile::kHeaderSize);
  std::string page(kMagic, sizeof(kMagic));
  PutFixed32(&page, kFormat);
  PutFixed32(&page, page_size);
  PutFixed64(&page, pages);
  PutFixed32(&page, static_cast<uint32_t>(owner.size()));
  page.append(12, '\0');
  uint32_t crc = crc32c::Extend(crc32c::Value(page.data(), kCrcOffset), owner.data(), owner.size());
  PutFixed32(&page, crc32c::Mask(crc));
  PutFixed32(&page, 0);
  page.append(owner);
  return page;
}

// Who holds the swap file at `path`, from its page 0; "" when it does not
// say (not a swap file, or damaged).
std::string HolderOf(Env* env, const std::string& path) {
  auto file = env->OpenRandomAccessFile(path, /*create=*/false);
  if (!file.ok()) return "";
  std::string page(4096, '\0');
  auto got = (*file)->ReadAt(0, page.size(), page.data());
  if (!got.ok() || *got < SwapFile::kHeaderSize || page.compare(0, 8, kMagic, 8) != 0) return "";
  uint32_t length = DecodeFixed32(page.data() + 24);
  if (length > *got - SwapFile::kHeaderSize) return "";
  uint32_t crc = crc32c::Extend(crc32c::Value(page.data(), kCrcOffset),
                                page.data() + SwapFile::kHeaderSize, length);
  if (crc32c::Mask(crc) != DecodeFixed32(page.data() + kCrcOffset)) return "";
  return page.substr(SwapFile::kHeaderSize, length);
}

}  // namespace

uint64_t SwapFile::DefaultSize(uint64_t available) {
  return std::min(available / 4, kMaxDefaultSize);
}

Result<std::unique_ptr<SwapFile>> SwapFile::Create(Env* env, const SwapFileOptions& options,
                                                   MemoryAccountant* accountant) {
  const std::string& path = options.path;
  uint32_t page_size = options.page_size;
  if (page_size < kMinPageSize || page_size > kMaxPageSize || (page_size & (page_size - 1)) != 0) {
    return Status::Errno(EINVAL, fmt::format("page_size={} is not a power of two from {} to {}",
                                             page_size, kMinPageSize, kMaxPageSize));
  }
  auto opened = env->OpenExclusiveFile(path);
  if (!opened.ok()) {
    if (opened.status().code() != EWOULDBLOCK) {
      return Status::Errno(opened.status().code(),
                           "cannot open the swap file: " + opened.status().ToString());
    }
    std::string holder = HolderOf(env, path);
    return Status::Errno(EWOULDBLOCK,
                         fmt::format("the swap file {} is in use by another keyfs{}; give each "
                                     "mount its own (-o swap_file=PATH)",
                                     path, holder.empty() ? "" : " (" + holder + ")"));
  }
  std::unique_ptr<RandomAccessFile> file = std::move(opened).value();
  // A file that is there already must be a swap file (an earlier keyfs's,
  // left by a crash): anything else is the user's, and is left alone.
  ASSIGN_OR_RETURN(uint64_t existing, file->Size());
  if (existing > 0) {
    char magic[sizeof(kMagic)] = {};
    auto got = file->ReadAt(0, sizeof(magic), magic);
    if (!got.ok() || *got != sizeof(magic) || std::memcmp(magic, kMagic, sizeof(magic)) != 0) {
      return Status::Errno(EEXIST, fmt::format("{} exists and is not a keyfs swap file; keyfs "
                                               "leaves it alone: remove it, or give another "
                                               "swap_file", path));
    }
  }
  // Ours now: whatever the earlier keyfs left in it is dropped.
  RETURN_IF_ERROR(env->TruncateFile(path, 0));
  ASSIGN_OR_RETURN(FsSpace space, env->GetSpace(DirName(path)));
  uint64_t size = options.size != 0 ? options.size : DefaultSize(space.available);
  if (options.size == 0) {
    spdlog::info("swap_size not given: {} for {} (a quarter of the {} free there, at most 64G; "
                 "-o swap_size=SIZE sets it)",
                 FormatSize(size), path, FormatSize(space.available));
  }
  uint64_t pages = size / page_size;
  auto refuse = [&](int err, std::string why) -> Status {
    (void)env->RemoveFile(path);
    return Status::Errno(err, std::move(why));
  };
  uint64_t min_size = std::max<uint64_t>(options.min_size, uint64_t{2} * page_size);
  if (pages * page_size < min_size) {
    return refuse(EINVAL, fmt::format("swap_size={} is too small: the swap file must hold at "
                                      "least {} (its header page and the largest block)",
                                      FormatSize(size), FormatSize(min_size)));
  }
  if (pages * page_size > space.available) {
    return refuse(ENOSPC, fmt::format("swap_size={} does not fit where the swap file is ({}: "
                                      "{} free); give a smaller swap_size, or another swap_file",
                                      FormatSize(size), path, FormatSize(space.available)));
  }
  // Page 0 first, and on the device before the file grows: a keyfs killed
  // (or a machine that loses power) anywhere below leaves a file that says
  // it is a swap file, which the next mount takes over. Grown first, a crash
  // left pages of zeros that the check above must refuse as the user's.
  Status headed = file->WriteAt(0, HeaderPage(page_size, pages, options.owner));
  if (headed.ok()) headed = file->Sync();
  if (!headed.ok()) return refuse(headed.code(), "cannot write the swap file: " + headed.ToString());
  // Preallocated where the filesystem can, so that a save never finds the
  // disk full once the mount has started.
  Status reserved = file->Reserve(0, pages * page_size);
  if (!reserved.ok()) {
    return refuse(reserved.code(), fmt::format("cannot preallocate the swap file ({} of {}): {}",
                                               FormatSize(pages * page_size), path,
                                               reserved.ToString()));
  }
  Status sized = env->TruncateFile(path, pages * page_size);
  if (!sized.ok()) return refuse(sized.code(), "cannot write the swap file: " + sized.ToString());
  return std::unique_ptr<SwapFile>(new SwapFile(env, options, std::move(file), pages, accountant));
}

SwapFile::SwapFile(Env* env, const SwapFileOptions& options, std::unique_ptr<RandomAccessFile> file,
                   uint64_t pages, MemoryAccountant* accountant)
    : env_(env), options_(options), file_(std::move(file)), pages_(pages),
      accountant_(accountant), allocator_(1, pages) {
  MutexLock lock(&mu_);
  Recharge();
}

SwapFile::~SwapFile() {
  Status removed = Remove();
  if (!removed.ok()) spdlog::warn("could not remove the swap file: {}", removed.ToString());
  MutexLock lock(&mu_);
  if (accountant_ && charged_) accountant_->Release(MemoryComponent::kStore, charged_);
  charged_ = 0;
}

Status SwapFile::Remove() {
  if (removed_) return Status::Ok();
  removed_ = true;
  return env_->RemoveFile(options_.path);
}

void SwapFile::Recharge() {
  if (!accountant_) return;
  // Tree nodes: about 64 bytes each beside what they hold.
  size_t now = allocator_.heap_bytes() + (limbo_.size() + snapshot_held_.capacity()) * sizeof(Run) +
               recovery_runs_.size() * (64 + sizeof(SavedRun));
  if (now > charged_) accountant_->Charge(MemoryComponent::kStore, now - charged_);
  if (now < charged_) accountant_->Release(MemoryComponent::kStore, charged_ - now);
  charged_ = now;
}

std::string SwapFile::Place(const BlockLocation& where) const {
  return fmt::format("{} page {}", options_.path, where.offset / options_.page_size);
}

Result<SwapFile::Run> SwapFile::RunOf(const BlockLocation& where) const {
  uint64_t first = where.offset / options_.page_size;
  uint64_t count = PagesFor(where.size);
  if (where.offset % options_.page_size != 0 || first == 0 || count == 0 || first > pages_ ||
      count > pages_ - first) {
    return Status::Errno(EIO, fmt::format("damaged block location: offset {} size {} is not a "
                                          "run of pages of {}", where.offset, where.size,
                                          options_.path));
  }
  return Run{first, count, 0};
}

// --- saving ---------------------------------------------------------------------

Result<BlockLocation> SwapFile::Save(const BlockId& id, std::string_view bytes) {
  std::string& record = record_io::Scratch();
  record.clear();
  block_format::Encode(id, bytes, options_.compress, &record);
  uint64_t count = PagesFor(record.size());
  BlockLocation where;
  {
    MutexLock lock(&mu_);
    std::optional<uint64_t> first = allocator_.Allocate(count);
    if (!first) {
      return Status::Errno(
          ENOSPC, fmt::format("the swap file {} is full: no run of {} free pages ({} of {} pages "
                              "free, in {} runs; {} freed and waiting); mount with a larger "
                              "swap_size", options_.path, count, allocator_.free_pages(),
                              allocator_.pages(), allocator_.free_extents(), held_pages_));
    }
    Recharge();
    where = {next_tag_, static_cast<uint32_t>(record.size()), *first * options_.page_size};
    next_tag_ = next_tag_ == UINT32_MAX ? 1 : next_tag_ + 1;
  }
  Status written = file_->WriteAt(where.offset, record);
  MutexLock lock(&mu_);
  if (!written.ok()) {
    // Nobody read or will read it: the run is free again at once.
    allocator_.Free(where.offset / options_.page_size, count);
    Recharge();
    return written;
  }
  if (recovering_) {
    recovery_runs_[where.offset / options_.page_size] = {count, where.size, false};
    Recharge();
  }
  live_bytes_ += record.size();
  ++counters_.saves;
  counters_.raw_bytes_saved += bytes.size();
  counters_.stored_bytes_saved += record.size();
  return where;
}

Status SwapFile::Delete(const BlockId&, const BlockLocation& where) {
  ASSIGN_OR_RETURN(Run run, RunOf(where));
  MutexLock lock(&mu_);
  ++counters_.deletes;
  live_bytes_ -= std::min<uint64_t>(live_bytes_, where.size);
  held_pages_ += run.count;
  if (recovering_) recovery_runs_.erase(run.first);
  if (snapshots_ > 0) {
    snapshot_held_.push_back(run);  // invariant 3
  } else {
    FreeRun(run);
  }
  Recharge();
  return Status::Ok();
}

// Invariant 2: the run waits for the reads running now.
void SwapFile::FreeRun(const Run& run) {
  limbo_.push_back({run.first, run.count, read_tickets_});
  ReleaseLimbo();
}

void SwapFile::ReleaseLimbo() {
  uint64_t oldest = active_reads_.empty() ? UINT64_MAX : *active_reads_.begin();
  while (!limbo_.empty() && limbo_.front().ticket < oldest) {
    const Run& run = limbo_.front();
    if (!allocator_.Free(run.first, run.count)) {
      spdlog::error("swap file {}: pages {}..{} were freed twice (a bug); they stay in use",
                    options_.path, run.first, run.first + run.count - 1);
    }
    held_pages_ -= run.count;
    limbo_.pop_front();
  }
}

void SwapFile::SnapshotStarted() {
  MutexLock lock(&mu_);
  ++snapshots_;
}

void SwapFile::SnapshotEnded() {
  MutexLock lock(&mu_);
  if (snapshots_ > 0 && --snapshots_ > 0) return;
  for (const Run& run : snapshot_held_) FreeRun(run);
  snapshot_held_.clear();
  snapshot_held_.shrink_to_fit();
  Recharge();
}

void SwapFile::MarkLive(const BlockLocation& where) {
  MutexLock lock(&mu_);
  auto it = recovery_runs_.find(where.offset / options_.page_size);
  if (it != recovery_runs_.end()) it->second.live = true;
}

void SwapFile::FinishRecovery() {
  MutexLock lock(&mu_);
  if (!recovering_) return;
  recovering_ = false;
  for (const auto& [first, run] : recovery_runs_) {
    if (run.live) continue;
    live_bytes_ -= std::min<uint64_t>(live_bytes_, run.size);
    held_pages_ += run.count;
    FreeRun({first, run.count, 0});
  }
  recovery_runs_.clear();
  Recharge();
}

// --- loading --------------------------------------------------------------------

uint64_t SwapFile::BeginRead() {
  MutexLock lock(&mu_);
  uint64_t ticket = ++read_tickets_;
  active_reads_.insert(ticket);
  return ticket;
}

void SwapFile::EndRead(uint64_t ticket) {
  MutexLock lock(&mu_);
  active_reads_.erase(ticket);
  if (!limbo_.empty()) {
    ReleaseLimbo();
    Recharge();
  }
}

Result<RefPtr<BlockBuffer>> SwapFile::ReadBlock(const BlockId& id, const BlockLocation& where,
                                                MemoryAccountant* accountant) const {
  RETURN_IF_ERROR(RunOf(where).status());
  if (where.size < block_format::kHeaderSize) {
    return Status::Errno(EIO, "damaged block at " + Place(where) + ": shorter than a block header");
  }
  ASSIGN_OR_RETURN(std::string_view record, record_io::Read(*file_, where.offset, where.size,
                                                            Place(where)));
  return block_format::Decode(record, id, accountant, Place(where));
}

Result<RefPtr<BlockBuffer>> SwapFile::GuardedRead(
    uint64_t BlockStoreStats::*counter, const std::function<Result<RefPtr<BlockBuffer>>()>& read) {
  uint64_t ticket = BeginRead();
  auto result = read();
  EndRead(ticket);
  if (!result.ok() && result.status().code() == EIO) spdlog::error("{}", result.status().ToString());
  MutexLock lock(&mu_);
  if (result.ok()) {
    ++(counters_.*counter);
  } else if (result.status().code() == EIO) {
    ++counters_.damaged;
  }
  return result;
}

Result<RefPtr<BlockBuffer>> SwapFile::Load(const BlockId& id, const BlockLocation& where,
                                           MemoryAccountant* accountant) {
  return GuardedRead(&BlockStoreStats::loads, [&] { return ReadBlock(id, where, accountant); });
}

Result<RefPtr<BlockBuffer>> SwapFile::LoadForSnapshot(const BlockId& id,
                                                      const BlockLocation& where,
                                                      MemoryAccountant* accountant) const {
  return ReadBlock(id, where, accountant);
}

bool SwapFile::LoadsRange(const BlockLocation& where, uint32_t block_length) const {
  return where.size == block_format::RawRecordSize(block_length);
}

Result<BlockStore::Range> SwapFile::LoadRange(const BlockId& id, const BlockLocation& where,
                                              uint32_t block_length, uint32_t offset,
                                              uint32_t length, MemoryAccountant* accountant) {
  if (!block_format::ReadsInPart(where.size, block_length, offset, length)) {
    ASSIGN_OR_RETURN(RefPtr<BlockBuffer> block, Load(id, where, accountant));
    return Range{std::move(block), true};
  }
  ASSIGN_OR_RETURN(RefPtr<BlockBuffer> part,
                   GuardedRead(&BlockStoreStats::range_loads, [&]() -> Result<RefPtr<BlockBuffer>> {
                     RETURN_IF_ERROR(RunOf(where).status());
                     return record_io::ReadRange(*file_, where.offset, id, block_length, offset,
                                                 length, accountant, Place(where));
                   }));
  return Range{std::move(part), false};
}

// --- reporting ------------------------------------------------------------------

BlockStoreStats SwapFile::Stats() const {
  MutexLock lock(&mu_);
  BlockStoreStats stats = counters_;
  stats.saved_bytes = (allocator_.pages() - allocator_.free_pages()) * options_.page_size;
  stats.live_bytes = live_bytes_;
  return stats;
}

SwapStats SwapFile::swap_stats() const {
  MutexLock lock(&mu_);
  SwapStats stats;
  stats.size = pages_ * options_.page_size;
  stats.page_size = options_.page_size;
  stats.pages = allocator_.pages();
  stats.pages_used = allocator_.pages() - allocator_.free_pages();
  stats.pages_held = held_pages_;
  stats.free_extents = allocator_.free_extents();
  stats.largest_free_extent = allocator_.largest_free_extent();
  return stats;
}

}  // namespace keyfs
