#!/usr/bin/env bash
# Pinned files (issue 13, item 2: user.keyfs.pin, keyfs-ctl pin|unpin),
# through a real mount with a small max_memory, over the disk store (and, as
# pin_test.swap, over the swap file):
#  - a pinned file's evicted blocks are loaded at once; under pressure that
#    evicts everything else (data three times max_memory written and read),
#    user.keyfs.state still shows every block of it in memory, and reading it
#    costs no cache miss;
#  - pinning more than max_memory allows gets ENOSPC and changes nothing;
#    so does a write that would grow a pinned file past it (the rule:
#    pinned memory is a reservation, see Keyspace::SetPinned), while
#    shrinking it works; a smaller max_memory must leave the pins room;
#  - the pin belongs to the inode: rename and hard link keep it, and so do
#    a remount and a journal rewrite;
#  - setfattr -x unpins; bad values, directories and other files are refused.
source "$(dirname "$0")/lib.sh" "$1"

info() { sed -n "s/^$1://p" "$MNT/.keyfs/info"; }
state_of() { getfattr --only-values -n user.keyfs.state "$1" 2>/dev/null; }
pin_of() { getfattr --only-values -n user.keyfs.pin "$1" 2>/dev/null; }
count() { state_of "$1" | tr ' ' '\n' | sed -n "s/^$2://p"; }
# The kernel's page cache would answer reads without asking keyfs.
drop_page_cache() { sync; echo 3 > /proc/sys/vm/drop_caches; }
all_in_memory() { [ "$(count "$1" "$EVICTED_STATE")" = 0 ] && [ "$(count "$1" loading)" = 0 ]; }
all_evicted() { [ "$(count "$1" memory)" = 0 ] && [ "$(count "$1" dirty)" = 0 ] &&
                [ "$(count "$1" saving)" = 0 ] && [ "$(count "$1" loading)" = 0 ]; }
errno_of() { "$@" 2>&1 >/dev/null | tail -n 1; }

OPTIONS=max_memory=32M,block_size=64K
start_keyfs -o "$OPTIONS"
head -c 4M /dev/urandom > "$WORK/hot"
check "write a 4 MiB file" cp "$WORK/hot" "$MNT/hot"
check "... not pinned: user.keyfs.pin is 0" [ "$(pin_of "$MNT/hot")" = 0 ]
check "... evicted" "$KEYFS_CTL" evict "$MNT/hot"
check "... all of it ($(state_of "$MNT/hot"))" wait_until 30 all_evicted "$MNT/hot"

check "keyfs-ctl pin" "$KEYFS_CTL" pin "$MNT/hot"
check "... user.keyfs.pin reads 1" [ "$(pin_of "$MNT/hot")" = 1 ]
check "... its blocks are loaded ($(state_of "$MNT/hot"))" wait_until 30 all_in_memory "$MNT/hot"
check "... pinned_files 1, pinned_bytes $(info pinned_bytes) of $(info pinned_bytes_limit)" \
  eval '[ "$(info pinned_files)" = 1 ] && [ "$(info pinned_bytes)" -ge $((4 << 20)) ] &&
        [ "$(info pinned_bytes)" -le "$(info pinned_bytes_limit)" ]'

# Pressure: three times max_memory written and read back.
evictions=$(info evictions_total)
for i in 1 2 3; do
  head -c 32M /dev/urandom > "$WORK/other"
  cp "$WORK/other" "$MNT/other$i"
  drop_page_cache
  cmp -s "$WORK/other" "$MNT/other$i" || echo "other$i read back differently" >&2
done
check "96 MiB of other files through the 32 MiB cache evicted blocks" \
  [ "$(info evictions_total)" -gt "$evictions" ]
check "... but no block of the pinned file ($(state_of "$MNT/hot"))" all_in_memory "$MNT/hot"
drop_page_cache
misses=$(info cache_misses) hits=$(info cache_hits)
check "the pinned file reads back the same" cmp "$WORK/hot" "$MNT/hot"
check "... with no cache miss ($(( $(info cache_misses) - misses )) misses, $(( $(info cache_hits) - hits )) hits)" \
  eval '[ "$(info cache_misses)" -eq "$misses" ] && [ "$(info cache_hits)" -gt "$hits" ]'
check "evict leaves a pinned file alone" \
  eval '"$KEYFS_CTL" evict "$MNT/hot" | grep -q "1 pinned file(s) left in memory"'
check "... in memory ($(state_of "$MNT/hot"))" all_in_memory "$MNT/hot"

# More than fits.
head -c 40M /dev/urandom > "$WORK/big"
cp "$WORK/big" "$MNT/big"
check "pinning 40 MiB more in a 32 MiB budget: ENOSPC" \
  eval '[[ "$(errno_of setfattr -n user.keyfs.pin -v 1 "$MNT/big")" == *"No space left"* ]]'
"$KEYFS_CTL" pin "$MNT/big" > /dev/null 2> "$WORK/err"; status=$?
check "... keyfs-ctl pin fails ($status) saying what is pinned and the limit: $(cat "$WORK/err")" \
  eval '[ "$status" -eq 1 ] && grep -q "no room to pin" "$WORK/err" &&
        grep -q "$(info pinned_bytes) bytes are pinned" "$WORK/err" &&
        grep -q "$(info pinned_bytes_limit) bytes" "$WORK/err"'
check "... nothing changed" \
  eval '[ "$(pin_of "$MNT/big")" = 0 ] && [ "$(info pinned_files)" = 1 ]'
rm "$MNT/big"

# A pinned file grows only as far as the limit: the write past it fails.
status=0
head -c 40M /dev/zero | dd of="$MNT/hot" bs=1M oflag=append conv=notrunc status=none \
  2> "$WORK/err" || status=$?
check "appending 40 MiB to the pinned file fails ($status: $(cat "$WORK/err"))" \
  eval '[ "$status" -ne 0 ] && grep -q "No space left" "$WORK/err"'
check "... it grew up to the limit: $(info pinned_bytes) of $(info pinned_bytes_limit)" \
  eval '[ "$(info pinned_bytes)" -le "$(info pinned_bytes_limit)" ] &&
        [ "$(stat -c %s "$MNT/hot")" -gt $((16 << 20)) ]'
check "... and shrinks back" truncate -s 4M "$MNT/hot"
check "... to what it was" cmp "$WORK/hot" "$MNT/hot"
check "... pinned_bytes follows ($(info pinned_bytes))" [ "$(info pinned_bytes)" -lt $((5 << 20)) ]
check "a smaller max_memory must leave the pinned files room" \
  eval '! "$KEYFS_CTL" config set "$MNT" max_memory 4M 2> "$WORK/err" && grep -q "pinned" "$WORK/err"'

# Bad input: a clear error, nothing changed.
mkdir "$MNT/dir"
mkfifo "$MNT/fifo"
check "a value other than 0 or 1 is refused" \
  eval '[[ "$(errno_of setfattr -n user.keyfs.pin -v 2 "$MNT/hot")" == *"Invalid argument"* ]]'
check "... and changes nothing" [ "$(pin_of "$MNT/hot")" = 1 ]
check "a directory: EISDIR" \
  eval '[[ "$(errno_of setfattr -n user.keyfs.pin -v 1 "$MNT/dir")" == *"Is a directory"* ]]'
# (The kernel allows user.* attributes on regular files and directories
# only: it refuses a fifo itself, with EPERM; keyfs would say EINVAL.)
check "a fifo: refused" \
  eval '[[ "$(errno_of setfattr -n user.keyfs.pin -v 1 "$MNT/fifo")" == *"not permitted"* ]]'
check "removing another control attribute is still refused" \
  eval '[[ "$(errno_of setfattr -x user.keyfs.evict "$MNT/hot")" == *"not permitted"* ]]'

# setfattr -x and -v 0 unpin.
echo small > "$MNT/small"
check "pin by setfattr" setfattr -n user.keyfs.pin -v 1 "$MNT/small"
check "... unpinned by setfattr -x" setfattr -x user.keyfs.pin "$MNT/small"
check "... reads 0" [ "$(pin_of "$MNT/small")" = 0 ]
check "pin, -v 0 unpins" \
  eval 'setfattr -n user.keyfs.pin -v 1 "$MNT/small" && setfattr -n user.keyfs.pin -v 0 "$MNT/small" &&
        [ "$(pin_of "$MNT/small")" = 0 ] && [ "$(info pinned_files)" = 1 ]'

# -r over a tree.
mkdir -p "$MNT/tree/sub"
for i in $(seq 1 20); do head -c 70000 /dev/urandom > "$MNT/tree/sub/f$i"; done
check "keyfs-ctl pin -r" eval '"$KEYFS_CTL" pin -r "$MNT/tree" | grep -q "pinned: 20 file(s)"'
check "... pins every file ($(info pinned_files) pinned)" [ "$(info pinned_files)" = 21 ]
check "keyfs-ctl unpin -r" "$KEYFS_CTL" unpin -r "$MNT/tree"
check "... unpins them ($(info pinned_files) pinned)" [ "$(info pinned_files)" = 1 ]
check "keyfs-ctl pin DIR without -r fails" eval '! "$KEYFS_CTL" pin "$MNT/tree" 2>/dev/null'

# The pin is the inode's.
mv "$MNT/hot" "$MNT/renamed"
ln "$MNT/renamed" "$MNT/linked"
check "a renamed pinned file is pinned" [ "$(pin_of "$MNT/renamed")" = 1 ]
check "... and so is its hard link" [ "$(pin_of "$MNT/linked")" = 1 ]

stop_keyfs
start_keyfs -o "$OPTIONS"
check "after a remount the file is pinned" [ "$(pin_of "$MNT/linked")" = 1 ]
check "... counted ($(info pinned_files) files, $(info pinned_bytes) bytes)" \
  eval '[ "$(info pinned_files)" = 1 ] && [ "$(info pinned_bytes)" -ge $((4 << 20)) ]'
check "... its blocks in memory ($(state_of "$MNT/renamed"))" wait_until 30 all_in_memory "$MNT/renamed"
check "... the others not pinned" [ "$(pin_of "$MNT/small")" = 0 ]
check "... the data the same" cmp "$WORK/hot" "$MNT/renamed"
check "keyfs-ctl rewrite" "$KEYFS_CTL" rewrite "$MNT"
stop_keyfs
start_keyfs -o "$OPTIONS"
check "after a rewrite and a remount the file is pinned" \
  eval '[ "$(pin_of "$MNT/renamed")" = 1 ] && [ "$(info pinned_files)" = 1 ]'
check "... its blocks in memory ($(state_of "$MNT/renamed"))" wait_until 30 all_in_memory "$MNT/renamed"
check "... the data the same" cmp "$WORK/hot" "$MNT/renamed"
check "keyfs-check knows the set-pin record" \
  eval '"$KEYFS_CHECK" --dump "$STORE" | grep -q "set-pin ino="'
stop_keyfs

# A max_memory too small for the pins: the mount is refused, naming what it
# needs (a mount that served would be ended by the timeout, and fail this).
status=0
timeout 60 "$KEYFS" "$MNT" -f -o "store=$STORE,max_memory=4M,block_size=64K" \
  "${TEST_OPTIONS[@]}" 2> "$WORK/err" || status=$?
check "mounting with max_memory=4M is refused ($status): $(grep -o 'the 1 pinned.*' "$WORK/err")" \
  eval '[ "$status" -ne 0 ] && [ "$status" -ne 124 ] && grep -q "mount with max_memory=" "$WORK/err"'
check "... and nothing is left mounted" eval "! is_mounted '$MNT'"
start_keyfs -o "$OPTIONS"
check "... while the old max_memory mounts, the file still pinned" [ "$(pin_of "$MNT/renamed")" = 1 ]
stop_keyfs
finish
