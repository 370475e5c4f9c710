#pragma once

// LockOwner: what a keyfs writes into its store's lock file (StoreDir), and
// reads from another's: who holds the store, where it is mounted, and how far
// along it is. The words are for people too ("keyfs pid 4242 on /mnt/kv
// (serving)"), as the message of a refused second mount quotes them.
//
//   starting  the store is locked, the journal is being replayed, nothing is
//             mounted yet
//   serving   mounted
//   stopping  unmounted or told to stop; writing out what it holds
//   stopped   exited cleanly (the last words a clean keyfs leaves)
//
// A new keyfs uses them to wait for an old one that is finishing its
// shutdown (a remount right after umount), and to tell that the last one did
// not stop cleanly (killed, crashed, or the machine stopped).

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace keyfs {

struct LockOwner {
  enum class State { kStarting, kServing, kStopping, kStopped };

  pid_t pid = 0;
  std::string mountpoint;
  State state = State::kStarting;

  // "keyfs pid 4242 on /mnt/kv (serving)"
  std::string Format() const;
  // The inverse of Format; nullopt for words that are not a keyfs's (another
  // tool holding the lock, an empty file). Words without a state, as keyfs
  // 0.1 wrote them, read as serving.
  static std::optional<LockOwner> Parse(std::string_view text);
};

std::string_view LockStateName(LockOwner::State state);

}  // namespace keyfs
