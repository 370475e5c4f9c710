#pragma once

// Loading a store's journal at mount: every file in replay order
// (journal_files.h) read, checked and applied to the Keyspace, with progress
// logged, before the first request is served (DESIGN §6, "Replay at mount").
//
// What it does with damage (docs/journal-format.md, "Reading"):
//  - a torn tail of the live (last) incr — what a crash during an append
//    leaves — is cut at the last good record with a warning when
//    `load_truncated`, else the load fails; so is a live incr cut inside its
//    header (a crash while it was created: it holds no record);
//  - anything else (a checksum error or garbage in the middle, a damaged or
//    incomplete base, files that do not follow each other, a record that does
//    not apply) fails the load with one message naming the file, the offset
//    and the repair command.

#include <cstdint>
#include <string>

#include "src/base/clock.h"
#include "src/base/status.h"
#include "src/journal/journal_files.h"
#include "src/keyspace/keyspace.h"
#include "store/block_store.h"
#include "store/env.h"

namespace keyfs {

struct LoadedJournal {
  JournalFiles files;
  uint64_t last_seq = 0;           // of the last record applied
  uint64_t live_good_offset = 0;   // where the live incr's good records end (0: no incr)
  uint64_t bytes = 0;              // replayed, over all files
  uint64_t records = 0;
  uint64_t skipped = 0;            // about inodes that were gone (replayer.h)
  uint64_t spilled = 0;            // blocks moved to the swap file to stay in max_memory
  uint64_t base_bytes = 0;         // size of the base, 0 without one
  uint64_t torn_bytes = 0;         // cut from the end of the live incr (a torn tail)
  std::string torn_file;           // ... which is this one
  bool live_cut_in_header = false; // the live incr has no whole header: write it anew
  double seconds = 0;
};

// `store`: where the blocks the journal says are stored are (null: none).
Result<LoadedJournal> LoadJournal(Env* env, const std::string& dir, bool load_truncated,
                                  Keyspace* keyspace, const Clock* clock,
                                  BlockStore* store = nullptr);

}  // namespace keyfs
