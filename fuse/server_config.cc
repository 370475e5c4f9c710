// keyfs-ctl config: live options on a running mount (live_options.h).
//
// A new value is parsed again here (keyfs-ctl parsed it already, to print
// the parser's words, but any setxattr may come in), and refused with
// nothing changed when it does not parse or cannot hold. Then each part of
// keyfs that holds the option takes the new value, and the change is logged.

#include <spdlog/spdlog.h>

#include "fuse/live_options.h"
#include "fuse/server.h"
#include "src/base/size.h"

namespace keyfs {

static_assert(kConfigAttribute.substr(ServerControl::kPrefix.size()) == Server::kConfigName);

namespace {

// "config.NAME" -> "NAME"; "" for anything else ("configure").
std::string_view OptionName(std::string_view name) {
  name.remove_prefix(Server::kConfigName.size());
  if (!name.starts_with('.')) return "";
  return name.substr(1);
}

}  // namespace

Result<std::string> Server::GetConfig(std::string_view name) const {
  if (name == kConfigName) {
    std::string out;
    for (std::string_view option : kLiveOptions) {
      out += fmt::format("{}:{}\n", option, LiveOptionValue(options_, option));
    }
    return out;
  }
  name = OptionName(name);
  if (!IsLiveOption(name)) return Status::Errno(ENODATA);
  return LiveOptionValue(options_, name);
}

Status Server::SetConfig(std::string_view name, std::string_view value) {
  name = OptionName(name);
  auto changed = WithLiveOption(options_, name, value, MachineFacts::FromEnvironment());
  Status applied = changed.ok() ? ApplyLiveOptions(*changed) : changed.status();
  if (!applied.ok()) {
    spdlog::info("keyfs-ctl config set {} {} refused, nothing changed: {}", name, value,
                 applied.message());
    return applied;
  }
  std::string before = LiveOptionValue(options_, name);
  // Logged at info whichever way the log level moves: before a change that
  // quietens the log, after one that opens it.
  auto log = [&] {
    spdlog::info("config: {} changed from {} to {} (keyfs-ctl config set; lasts until unmount)",
                 name, before, LiveOptionValue(*changed, name));
  };
  if (changed->log_level > options_.log_level) log();
  options_ = *std::move(changed);
  spdlog::set_level(options_.log_level);
  if (options_.log_level <= spdlog::level::info || name != "log_level") log();
  return Status::Ok();
}

Status Server::ApplyLiveOptions(const MountOptions& changed) {
  if (changed.max_memory != options_.max_memory) {
    // What cannot be evicted (the namespace, open handles, parked requests,
    // unwritten journal, the store's tables) and the pinned files must fit
    // with room for some blocks besides, or writes would fail with ENOSPC
    // instead of waiting for saves (BlockCache::Reclaim answers kNo when no
    // block memory is left to free; Keyspace::PinLimit holds pins to the
    // same sum).
    uint64_t fixed = memory_.Unevictable();
    uint64_t pinned = keyspace_.pinned_bytes();
    uint64_t blocks_room = Keyspace::kMinBlocksRoom * keyspace_.block_size();
    if (changed.max_memory < keyspace_.MemoryNeeded()) {
      std::string pins =
          pinned == 0 ? std::string()
                      : fmt::format(" plus the {} pinned files take ({} files; keyfs-ctl unpin "
                                    "frees it)",
                                    FormatSize(pinned), keyspace_.pinned_files());
      return Status::Errno(
          ENOSPC, fmt::format("max_memory {} is less than the {} that keyfs holds and cannot "
                              "evict ({}){} plus room for {} blocks ({}): give at least {}",
                              FormatSize(changed.max_memory), FormatSize(fixed),
                              MemoryBreakdown(), pins, Keyspace::kMinBlocksRoom,
                              FormatSize(blocks_room), FormatSize(keyspace_.MemoryNeeded())));
    }
    // Growth is held to the new limit at once; the cron evicts clean blocks
    // down to it (and saves dirty ones at once while memory is over it), and
    // writers wait for room meanwhile (back-pressure, BlockCache::Reclaim).
    memory_.set_limit(changed.max_memory);
    if (BufferPool* pool = memory_.buffer_pool()) pool->SetMaxBytes(changed.max_memory / kPoolShare);
  }
  if (changed.flush_delay_ns != options_.flush_delay_ns) {
    cache_->SetFlushDelay(changed.flush_delay_ns);
  }
  journal_->SetLiveOptions(changed.journal);
  return Status::Ok();
}

}  // namespace keyfs
