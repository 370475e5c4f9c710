// keyfs-ctl metrics: .keyfs/info in the Prometheus text exposition format
// (version 0.0.4), for node_exporter's textfile collector or any scraper.
//
// Every numeric INFO field becomes one family, keyfs_<field>, labelled with
// the mountpoint (so that the files of several mounts can sit side by side).
// Fields that only grow are counters and end in _total, as Prometheus names
// them: INFO's *_total fields keep their names, the older counters
// (cache_hits, rewrites, ...) get the suffix here. Text fields (mode,
// appendfsync, the request path, the version) become labels of one
// keyfs_info gauge of value 1. Nothing here is computed: the figures are
// INFO's, so the two never disagree.

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "src/tools/ctl.h"

namespace keyfs::ctl {

namespace {

// INFO fields that only grow but are not named *_total.
const std::set<std::string_view> kCounters = {
    "loop_iterations", "cache_hits",        "cache_misses",       "load_errors",
    "save_errors",     "refused_for_memory", "compactions",       "segments_compacted",
    "blocks_relocated", "write_errors",     "rewrites",           "rewrites_failed",
    "store_saved_raw_bytes", "store_saved_stored_bytes", "swap_saved_raw_bytes",
    "swap_saved_stored_bytes", "expired_keys"};

// Fields that are no measurement.
const std::set<std::string_view> kSkipped = {"pid"};

// INFO's text fields that become labels of keyfs_info.
const std::set<std::string_view> kInfoLabels = {"keyfs_version", "mode", "request_path",
                                                "appendfsync", "compression"};

// What the key figures mean; the rest say where they come from.
const std::map<std::string_view, std::string_view> kHelp = {
    {"uptime_in_seconds", "Seconds since the mount began serving."},
    {"requests_total", "FUSE requests received from the kernel."},
    {"reads_total", "Read requests answered."},
    {"read_bytes_total", "Bytes returned by read requests."},
    {"writes_total", "Write requests answered."},
    {"written_bytes_total", "Bytes accepted by write requests."},
    {"inodes", "Files, directories and other inodes in the namespace."},
    {"max_memory", "The memory budget in bytes (max_memory)."},
    {"used_memory", "Bytes of the memory budget in use, all components."},
    {"refused_for_memory_total", "Changes refused with ENOSPC for want of memory."},
    {"blocks_resident", "Blocks held in memory."},
    {"blocks_dirty", "Blocks in memory not yet saved to the store."},
    {"dirty_bytes", "Bytes in memory not yet saved to the store."},
    {"cache_hits_total", "Block reads served from memory."},
    {"cache_misses_total", "Block reads that had to load from the store."},
    {"loads_total", "Blocks loaded from the store."},
    {"saves_total", "Blocks saved to the store."},
    {"evictions_total", "Clean blocks dropped from memory to make room."},
    {"pinned_files", "Files pinned in memory (user.keyfs.pin)."},
    {"pinned_bytes", "Memory the pinned files' blocks take, in bytes."},
    {"pinned_bytes_limit",
     "Bytes pinned files may take: max_memory less what cannot be evicted and the cache's room."},
    {"parked_requests", "Requests waiting now for a block or for memory."},
    {"io_queue_length", "IO jobs queued for the IO threads."},
    {"io_jobs_in_flight", "IO jobs queued or running."},
    {"journal_size", "Bytes in the journal files."},
    {"rewrites_total", "Journal rewrites completed."},
    {"rewrites_failed_total", "Journal rewrites that failed."},
    {"rewrite_in_progress", "1 while a journal rewrite runs."},
    {"write_errors_total", "Failed writes of the journal."},
};

bool IsNumber(std::string_view text) {
  if (text.empty()) return false;
  bool digit = false, dot = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else if (!(c == '-' && i == 0)) {
      return false;
    }
  }
  return digit;
}

// A label value: backslash, double quote and newline escaped.
std::string Quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out + "\"";
}

}  // namespace

std::string InfoToMetrics(const std::string& info) {
  std::string mount = Field(info, "mountpoint");
  std::string labels = "{mountpoint=" + Quoted(mount) + "}";
  std::string out, info_labels = "mountpoint=" + Quoted(mount);
  std::set<std::string> emitted;
  std::string section;
  size_t at = 0;
  while (at < info.size()) {
    size_t end = info.find('\n', at);
    if (end == std::string::npos) end = info.size();
    std::string_view line(info.data() + at, end - at);
    at = end + 1;
    if (line.starts_with("# ")) {
      section = line.substr(2);
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    if (kInfoLabels.contains(key)) {
      if (!emitted.insert("label " + std::string(key)).second) continue;
      info_labels += "," + std::string(key) + "=" + Quoted(value);
      continue;
    }
    if (kSkipped.contains(key) || !IsNumber(value)) continue;
    bool counter = key.ends_with("_total") || kCounters.contains(key);
    std::string name = std::string(key) + (counter && !key.ends_with("_total") ? "_total" : "");
    // A field in two sections is one figure: the first says it.
    if (!emitted.insert(name).second) continue;
    auto help = kHelp.find(name);
    std::string help_text = help != kHelp.end()
                                ? std::string(help->second)
                                : "INFO field " + std::string(key) + " of section " + section +
                                      " in .keyfs/info.";
    out += "# HELP keyfs_" + name + " " + help_text + "\n";
    out += "# TYPE keyfs_" + name + (counter ? " counter\n" : " gauge\n");
    out += "keyfs_" + name + labels + " " + std::string(value) + "\n";
  }
  return "# HELP keyfs_info The mount's version and modes, as labels; always 1.\n"
         "# TYPE keyfs_info gauge\n"
         "keyfs_info{" + info_labels + "} 1\n" + out;
}

int Metrics(const std::string& mount) {
  std::string info;
  if (!Get(mount, "user.keyfs.info", &info)) return NotKeyfs(mount);
  std::fputs(InfoToMetrics(info).c_str(), stdout);
  return kOk;
}

}  // namespace keyfs::ctl
