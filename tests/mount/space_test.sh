#!/usr/bin/env bash
# Space comes back (issue 10): dead space in the disk store — overwritten,
# truncated and deleted blocks — is reclaimed by compaction and journal
# rewrites, without stopping the server.
#  - after rm -r of 90% of 1 GiB of files, du of the store falls to at most a
#    quarter of its peak once compaction has run (keyfs-ctl compact);
#  - overwriting one 64 MiB file 20 times does not grow the store past 2x;
#  - SAVEs and eviction go on while a journal rewrite runs.
source "$(dirname "$0")/lib.sh" "$1"

info() { sed -n "s/^$1://p" "$MNT/.keyfs/info"; }
du_mib() { du -sm "$STORE" | cut -f1; }

start_keyfs -o max_memory=64M
mkdir "$MNT/data"
for i in $(seq 1 40); do head -c 25M /dev/urandom > "$MNT/data/f$i"; done
"$KEYFS_CTL" sync "$MNT"
wait_until 30 eval '[ "$(info blocks_dirty)" -eq 0 ]'
peak=$(du_mib)
check "1 GiB written: the store holds it ($peak MiB)" [ "$peak" -ge 1000 ]
for i in $(seq 1 36); do rm "$MNT/data/f$i"; done
check "keyfs-ctl compact succeeds" "$KEYFS_CTL" compact "$MNT"
after=$(du_mib)
check "after rm of 90% and a compaction, du falls from $peak to $after MiB (at most a quarter)" \
  [ "$after" -le $((peak / 4)) ]
check "what is left reads back" eval "for i in 37 38 39 40; do [ \"\$(stat -c %s '$MNT/data/f'\$i)\" -eq $((25 << 20)) ] || exit 1; done"
rm -r "$MNT/data"
stop_keyfs

# --- overwriting one file ------------------------------------------------------
rm -rf "$STORE"
start_keyfs -o max_memory=64M
head -c 64M /dev/urandom > "$WORK/f"
cp "$WORK/f" "$MNT/f"
wait_until 30 eval '[ "$(info blocks_dirty)" -eq 0 ]'
base=$(du_mib)
max=$base max_blocks=0
for round in $(seq 1 20); do
  head -c 64M /dev/urandom > "$WORK/f"
  cp "$WORK/f" "$MNT/f"
  now=$(du_mib)
  blocks=$(du -sm "$STORE/blocks" | cut -f1)
  [ "$now" -gt "$max" ] && max=$now
  [ "$blocks" -gt "$max_blocks" ] && max_blocks=$blocks
done
wait_until 60 eval '[ "$(info compaction_in_progress)" -eq 0 ]'
check "the last version reads back" cmp -s "$WORK/f" "$MNT/f"
echo "overwrites: store $base MiB after the first copy, at most $max MiB during 20 more" \
  "(blocks at most $max_blocks MiB)"
check "20 overwrites of 64 MiB: the store stays within 2x ($max MiB, started at $base)" \
  [ "$max" -le $((2 * base)) ]
# The whole directory holds the journal too, which keeps written bytes until
# its next rewrite (up to auto_rewrite_min_size); the segments alone:
check "... its segments within 2x of the file ($max_blocks MiB for 64)" [ "$max_blocks" -le 128 ]
check "... compaction ran by itself" [ "$(info compactions)" -ge 1 ]
stop_keyfs

# --- SAVEs and eviction during a rewrite ---------------------------------------
rm -rf "$STORE"
start_keyfs -o max_memory=32M,flush_delay=0,auto_rewrite_percentage=0
mkdir "$MNT/many"
# A namespace big enough that a rewrite takes a while.
for d in $(seq 1 20); do mkdir "$MNT/many/d$d"; for i in $(seq 1 1000); do : > "$MNT/many/d$d/f$i"; done; done
saves_before=$(info saves_total)
evictions_before=$(info evictions_total)
( head -c 96M /dev/urandom > "$MNT/during" ) & WRITER=$!
EXTRA_PIDS=$WRITER
seen_running=0 saves_while=0
for attempt in $(seq 1 20); do
  setfattr -n user.keyfs.rewrite -v 1 "$MNT" 2>/dev/null
  while [ "$(info rewrite_in_progress)" = 1 ]; do
    seen_running=1
    s=$(info saves_total)
    [ "$s" -gt "$saves_before" ] && saves_while=1
    sleep 0.01
  done
  [ "$saves_while" -eq 1 ] && break
  process_alive "$WRITER" || break
done
wait "$WRITER"
check "rewrites ran during the writes" [ "$seen_running" -eq 1 ]
check "SAVEs went on while a rewrite ran" [ "$saves_while" -eq 1 ]
check "... and evictions" [ "$(info evictions_total)" -gt "$evictions_before" ]
check "the data written meanwhile is whole" [ "$(stat -c %s "$MNT/during")" -eq $((96 << 20)) ]
stop_keyfs
finish
