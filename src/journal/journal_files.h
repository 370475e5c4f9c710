#pragma once

// The journal's files in a store directory, and the order they replay in
// (docs/journal-format.md, "Files").
//
//   journal-<gen>.base   a snapshot written by a rewrite: the whole state as
//                        of the live record it names in its kSnapshotEnd
//   journal-<gen>.incr   live records, appended; each file's header says the
//                        sequence number it continues from
//   journal-<gen>.base.tmp  a rewrite in progress (or interrupted): ignored
//                        and removed
//
// `gen` is a decimal generation number. A rewrite that starts while
// journal-<g>.incr is live opens journal-<g+1>.incr for new records, writes
// journal-<g+1>.base (the state at the end of journal-<g>.incr), renames it
// into place, and only then removes the older files. So the replay order is:
// the newest base, then every incr of that generation or later, in order; a
// store without a base replays every incr from the first. Files older than
// the newest base are left-overs of a rewrite interrupted after its rename.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "store/env.h"

namespace keyfs {

std::string JournalBaseName(uint64_t gen);
std::string JournalIncrName(uint64_t gen);

struct JournalFiles {
  std::optional<uint64_t> base_gen;  // the newest base
  std::vector<uint64_t> incr_gens;   // to replay after it, ascending
  std::vector<std::string> obsolete;  // names: older bases and incrs, temporaries
};

Result<JournalFiles> FindJournalFiles(Env* env, const std::string& dir);

}  // namespace keyfs
