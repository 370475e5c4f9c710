// Server: files' lifetimes through extended attributes (issue 13 item 1, the
// TTL of Redis): user.keyfs.ttl sets and reads the seconds left, like
// EXPIRE and TTL; user.keyfs.expire_at the end as a Unix time, like
// EXPIREAT and EXPIRETIME; removing either is PERSIST. The keyspace keeps
// the lifetime (src/keyspace/expiry_index.h) and removes the file when it
// ends; this file only reads and writes the values.

#include <algorithm>
#include <charconv>

#include "fuse/server.h"

namespace keyfs {

namespace {

// Whole seconds, at most this many (about 300,000 years: far beyond any
// use, and far from overflowing milliseconds in 64 bits).
constexpr uint64_t kMaxSeconds = uint64_t{1} << 43;

// A non-negative whole number of seconds: digits only (what setfattr -v
// sends), no sign, no spaces. EINVAL otherwise, with what was wrong.
Result<int64_t> ParseSeconds(std::string_view name, std::string_view value) {
  uint64_t seconds = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (value.empty() || error != std::errc() || end != value.data() + value.size() ||
      seconds > kMaxSeconds) {
    return Status::Errno(EINVAL, fmt::format("user.keyfs.{} takes a whole number of seconds, "
                                             "not \"{}\"", name, value));
  }
  return static_cast<int64_t>(seconds);
}

// Milliseconds as whole seconds, rounded up: a file that has any time left
// shows at least 1, and an end set as a Unix time reads back unchanged.
int64_t CeilSeconds(int64_t ms) { return ms <= 0 ? 0 : (ms + 999) / 1000; }

}  // namespace

Result<std::string> Server::GetLifetime(Ino ino, std::string_view name) const {
  if (keyspace_.IsDue(ino)) return Status::Errno(ENOENT);  // gone for readers
  std::optional<int64_t> at_ms = keyspace_.ExpiryOf(ino);
  if (!at_ms) return Status::Errno(ENODATA);
  int64_t seconds = name == "ttl" ? CeilSeconds(*at_ms - UnixMillis(*clock_)) : CeilSeconds(*at_ms);
  return std::to_string(seconds);
}

Status Server::SetLifetime(Ino ino, std::string_view name, std::string_view value) {
  // (A directory is refused by the keyspace: EINVAL, as for a bad value.)
  ASSIGN_OR_RETURN(int64_t seconds, ParseSeconds(name, value));
  int64_t at_ms = name == "ttl" ? UnixMillis(*clock_) + seconds * 1000 : seconds * 1000;
  at_ms = std::max<int64_t>(at_ms, 1);  // 0 is "no lifetime" in the journal
  // An end already past (ttl 0, an old Unix time) removes the file now.
  return keyspace_.SetExpiry(ino, at_ms);
}

}  // namespace keyfs
