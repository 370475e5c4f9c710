#!/usr/bin/env bash
# Per-file control of the cache (issue 13, item 2), through a real mount with
# a small max_memory, over the disk store (and, as file_control_test.swap,
# over the swap file):
#  - user.keyfs.evict / keyfs-ctl evict: a file's clean blocks leave memory at
#    once and its unsaved ones after their save (long before flush_delay),
#    which .keyfs/info's block memory shows; the data reads back the same;
#  - user.keyfs.prefetch / keyfs-ctl prefetch --wait: the blocks come back,
#    and the next read of the file is all cache hits, no miss;
#  - a file larger than max_memory is prefetched as far as it fits, and
#    --wait says so instead of waiting for ever;
#  - -r walks a tree; bad input (a bad value, a directory without -r, a
#    missing path, a file on another filesystem, a bad option) gets a clear
#    error and changes nothing.
source "$(dirname "$0")/lib.sh" "$1"

info() { sed -n "s/^$1://p" "$MNT/.keyfs/info"; }
state_of() { getfattr --only-values -n user.keyfs.state "$1" 2>/dev/null; }
count() { state_of "$1" | tr ' ' '\n' | sed -n "s/^$2://p"; }
# The kernel's page cache would answer reads without asking keyfs.
drop_page_cache() { sync; echo 3 > /proc/sys/vm/drop_caches; }
all_evicted() { [ "$(count "$1" memory)" = 0 ] && [ "$(count "$1" dirty)" = 0 ] &&
                [ "$(count "$1" saving)" = 0 ] && [ "$(count "$1" loading)" = 0 ]; }

# A long flush_delay: a written block stays unsaved unless evict asks.
start_keyfs -o max_memory=64M,block_size=64K,flush_delay=120s
head -c 4M /dev/urandom > "$WORK/a"
# In writes smaller than a block: whole blocks go to the store as they are
# written (and are clean at once), parts of blocks stay in memory, unsaved.
check "write a 4 MiB file, 4000 bytes at a time" \
  dd if="$WORK/a" of="$MNT/a" bs=4000 status=none
check "... its blocks are in memory, unsaved ($(state_of "$MNT/a"))" \
  [ "$(count "$MNT/a" dirty)" -gt 0 ]
blocks_before=$(info used_memory_blocks)

check "keyfs-ctl evict" "$KEYFS_CTL" evict "$MNT/a"
check "... saves the unsaved blocks and drops every one (now: $(state_of "$MNT/a"))" \
  wait_until 30 all_evicted "$MNT/a"
check "... without waiting for flush_delay" [ "$(info saves_total)" -gt 0 ]
check "... block memory went down ($blocks_before -> $(info used_memory_blocks))" \
  [ "$(info used_memory_blocks)" -lt $((blocks_before - (3 << 20))) ]
drop_page_cache
check "... and the file reads back the same" cmp "$WORK/a" "$MNT/a"

# Prefetch after evicting again: the read that follows is all hits.
check "setfattr -n user.keyfs.evict" setfattr -n user.keyfs.evict -v 1 "$MNT/a"
check "... drops it all again" wait_until 30 all_evicted "$MNT/a"
check "keyfs-ctl prefetch --wait" "$KEYFS_CTL" prefetch --wait "$MNT/a"
check "... every block is in memory ($(state_of "$MNT/a"))" \
  eval '[ "$(count "$MNT/a" memory)" = "$(count "$MNT/a" blocks)" ]'
check "... counted in prefetches_total" [ "$(info prefetches_total)" -ge 64 ]
drop_page_cache
hits=$(info cache_hits) misses=$(info cache_misses)
check "... the read after it is the same data" cmp "$WORK/a" "$MNT/a"
check "... and only hits: $(( $(info cache_hits) - hits )) hits, $(( $(info cache_misses) - misses )) misses" \
  eval '[ "$(info cache_misses)" -eq "$misses" ] && [ "$(info cache_hits)" -gt "$hits" ]'

# A file larger than the cache: prefetched as far as it fits.
head -c 96M /dev/urandom > "$WORK/big"
check "write a 96 MiB file (max_memory 64M)" cp "$WORK/big" "$MNT/big"
check "... evicted" "$KEYFS_CTL" evict "$MNT/big"
check "... all of it" wait_until 60 all_evicted "$MNT/big"
"$KEYFS_CTL" prefetch --wait "$MNT/big" > "$WORK/out" 2>&1
status=$?
check "prefetch --wait of more than fits returns 0 ($status)" [ "$status" -eq 0 ]
check "... and says it did not fit ($(cat "$WORK/out"))" grep -q "did not fit" "$WORK/out"
check "... with part of it in memory ($(state_of "$MNT/big"))" [ "$(count "$MNT/big" memory)" -gt 0 ]
drop_page_cache
check "... which reads back the same" cmp "$WORK/big" "$MNT/big"

# -r over a tree.
mkdir -p "$MNT/tree/sub"
for i in $(seq 1 50); do head -c 70000 /dev/urandom > "$MNT/tree/sub/f$i"; done
for i in $(seq 1 20); do echo "small $i" > "$MNT/tree/s$i"; done
check "keyfs-ctl evict -r" "$KEYFS_CTL" evict -r "$MNT/tree"
tree_evicted() {
  local f
  for f in "$MNT"/tree/sub/f*; do all_evicted "$f" || return 1; done
}
check "... evicts every file under it" wait_until 30 tree_evicted
check "keyfs-ctl prefetch -r --wait" "$KEYFS_CTL" prefetch -r --wait "$MNT/tree"
check "... brings them back ($(state_of "$MNT/tree/sub/f7"))" \
  eval '[ "$(count "$MNT/tree/sub/f7" memory)" = 2 ]'

# Bad input: a clear error, nothing changed.
check "a value other than 1 is refused" eval "! setfattr -n user.keyfs.evict -v 2 '$MNT/a' 2>/dev/null"
check "... on a directory too" eval "! setfattr -n user.keyfs.prefetch -v 1 '$MNT/tree' 2>/dev/null"
"$KEYFS_CTL" evict "$MNT/tree" > /dev/null 2> "$WORK/err"; status=$?
check "keyfs-ctl evict DIR without -r fails ($status: $(cat "$WORK/err"))" \
  eval '[ "$status" -eq 1 ] && grep -q -- "-r" "$WORK/err"'
"$KEYFS_CTL" evict "$MNT/none" > /dev/null 2> "$WORK/err"; status=$?
check "... a missing path fails ($status: $(cat "$WORK/err"))" \
  eval '[ "$status" -eq 1 ] && grep -q "No such file" "$WORK/err"'
echo x > "$WORK/elsewhere"
"$KEYFS_CTL" evict "$WORK/elsewhere" > /dev/null 2> "$WORK/err"; status=$?
check "... a file on another filesystem fails ($status: $(cat "$WORK/err"))" \
  eval '[ "$status" -eq 1 ] && grep -q "not a file on a keyfs mount" "$WORK/err"'
check "... and gets no attribute" eval "! getfattr -n user.keyfs.evict '$WORK/elsewhere' 2>/dev/null"
"$KEYFS_CTL" prefetch --now "$MNT/a" > /dev/null 2> "$WORK/err"; status=$?
check "... an unknown option is bad usage ($status)" [ "$status" -eq 2 ]
"$KEYFS_CTL" evict > /dev/null 2> "$WORK/err"; status=$?
check "... and no path too ($status)" [ "$status" -eq 2 ]

stop_keyfs
finish
