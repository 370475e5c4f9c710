#include "fuse/lock_owner.h"

#include <charconv>

namespace keyfs {

namespace {

constexpr std::string_view kPrefix = "keyfs pid ";
constexpr std::string_view kOn = " on ";
constexpr LockOwner::State kStates[] = {LockOwner::State::kStarting, LockOwner::State::kServing,
                                        LockOwner::State::kStopping, LockOwner::State::kStopped};

}  // namespace

std::string_view LockStateName(LockOwner::State state) {
  switch (state) {
    case LockOwner::State::kStarting: return "starting";
    case LockOwner::State::kServing: return "serving";
    case LockOwner::State::kStopping: return "stopping";
    case LockOwner::State::kStopped: return "stopped";
  }
  return "?";
}

std::string LockOwner::Format() const {
  return std::string(kPrefix) + std::to_string(pid) + std::string(kOn) + mountpoint + " (" +
         std::string(LockStateName(state)) + ")";
}

std::optional<LockOwner> LockOwner::Parse(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (!text.starts_with(kPrefix)) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  LockOwner owner;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), owner.pid);
  if (ec != std::errc() || owner.pid <= 0) return std::nullopt;
  text.remove_prefix(static_cast<size_t>(end - text.data()));
  if (!text.starts_with(kOn)) return std::nullopt;
  text.remove_prefix(kOn.size());
  owner.state = State::kServing;
  for (State state : kStates) {
    std::string suffix = " (" + std::string(LockStateName(state)) + ")";
    if (text.ends_with(suffix)) {
      owner.state = state;
      text.remove_suffix(suffix.size());
      break;
    }
  }
  if (text.empty()) return std::nullopt;
  owner.mountpoint = std::string(text);
  return owner;
}

}  // namespace keyfs
