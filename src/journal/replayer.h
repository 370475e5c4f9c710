#pragma once

// Replayer: applies journal records to a Keyspace, in order (DESIGN §6,
// "Replay at mount").
//
// Live records replay through the Keyspace's own operations with its clock
// set to the time the record carries, so times come out as they were; snapshot
// records through its Restore* methods. A record about an inode that is gone
// is skipped: that is a file that was unlinked while open and then closed,
// whose later writes had nowhere to go. Any other failure means the journal
// does not describe a consistent state; Apply returns it and the caller
// refuses the mount, naming the record.
//
// The Keyspace must not have a MutationLog while replaying (nothing replayed
// is journaled again). A live record changes the blocks it touches to the
// version of its sequence number (block_slot.h, 2). When it needs the bytes
// of an evicted block (a partial write to a block the journal says is in the
// store), `fetch` loads them and the record is applied again.

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "src/base/clock.h"
#include "src/base/status.h"
#include "src/keyspace/keyspace.h"

namespace keyfs {

class Replayer {
 public:
  // Loads the named evicted blocks into the keyspace.
  using BlockFetcher = std::function<Status(const std::vector<BlockKey>&)>;

  // Sets the keyspace's clock to its own for the replayer's lifetime.
  Replayer(Keyspace* keyspace, const Clock* live_clock, BlockFetcher fetch = nullptr);
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // `seq`: the record's sequence number in the live journal; 0 for the
  // records of a snapshot (which carry their blocks' versions themselves).
  Status Apply(uint8_t type, uint64_t seq, std::string_view payload);

  uint64_t applied() const { return applied_; }
  uint64_t skipped() const { return skipped_; }  // about inodes that were gone
  // The last kSnapshotEnd applied, if any.
  bool saw_snapshot_end() const { return saw_snapshot_end_; }
  uint64_t snapshot_covers_seq() const { return snapshot_covers_seq_; }

 private:
  Status ApplyDecoded(uint8_t type, std::string_view payload);
  // ENOENT from an operation on an inode by number: the inode is gone.
  Status SkipIfGone(Status status);

  Keyspace* const keyspace_;
  const Clock* const live_clock_;
  const BlockFetcher fetch_;
  ManualClock clock_;
  uint64_t applied_ = 0;
  uint64_t skipped_ = 0;
  bool saw_snapshot_end_ = false;
  uint64_t snapshot_covers_seq_ = 0;
};

}  // namespace keyfs
