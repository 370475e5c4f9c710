#pragma once

// Snapshot: the state of a Keyspace written as a compact journal — what a
// background rewrite produces (DESIGN §6, "Background rewrite").
//
// One kNode record per inode (the root first, every directory before what it
// holds), one kSnapshotLink per further hard link, one record per block of a
// regular file (holes are skipped) — kSnapshotStoredBlock, a location and no
// bytes, when the block's bytes are safely in a persistent block store
// (evicted, or resident and clean); kSnapshotBlockData with the bytes
// otherwise (dirty, or the store does not persist: then an evicted block's
// bytes are read back from it, BlockStore::LoadForSnapshot) — kSnapshotXattr per
// extended attribute, and a closing kSnapshotEnd that says which live record
// the state follows. So in disk mode a snapshot holds the namespace, the
// block map and only the bytes not yet saved (DESIGN §6). Time stamps
// are those of the keyspace; replaying the file into an empty keyspace gives
// an equal one. Inodes that are unlinked but still open are left out: after a
// remount nothing can reach them.
//
// Runs in the rewrite child process, on its copy of the keyspace, so it may
// take as long as the data takes to write without holding up the server.

#include <cstdint>
#include <string>

#include "src/base/status.h"
#include "src/keyspace/keyspace.h"
#include "store/block_store.h"
#include "store/env.h"

namespace keyfs {

struct SnapshotStats {
  uint64_t inodes = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;  // file size
};

// Writes the snapshot to `path` (replacing it) and fsyncs it; the caller
// renames it into place.
// `store`: where evicted blocks are (null: none). If it persists (the disk
// store), their locations are written; if not (the swap file), their bytes,
// read with LoadForSnapshot, which is safe in a forked child.
Result<SnapshotStats> WriteSnapshot(const Keyspace& keyspace, uint64_t covers_seq, Env* env,
                                    const std::string& path, const BlockStore* store = nullptr);

}  // namespace keyfs
