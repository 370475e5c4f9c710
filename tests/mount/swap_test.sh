#!/usr/bin/env bash
# The swap file of mode=swap (issue 11), through a real mount:
#  - it is made at mount (in the store directory by default, preallocated to
#    swap_size), locked, and removed at a clean unmount; a kill -9 leaves it,
#    and the next mount takes it over;
#  - a second keyfs on the same swap file (another store) fails at once,
#    naming the holder; a file that is not a swap file is left alone; sizes
#    its filesystem cannot hold are refused;
#  - .keyfs/info has a # Swap section and user.keyfs.state says "swapped";
#  - a swap file too small for the data: writers get ENOSPC only once memory
#    and swap are both full, the log names swap_size, deleting files makes
#    room again, and everything acknowledged survives a remount.
# (The cache's and the tiny-cache suites run in swap mode too: tests/CMakeLists.txt.)
source "$(dirname "$0")/lib.sh" "$1"

info() { sed -n "s/^$1://p" "$MNT/.keyfs/info"; }
state_of() { getfattr --only-values -n user.keyfs.state "$1" 2>/dev/null; }
SWAP=$STORE/swap
SWAP_OPTIONS=mode=swap,max_memory=16M,block_size=64K,flush_delay=0

# --- the file itself ------------------------------------------------------------
start_keyfs -o $SWAP_OPTIONS,swap_size=64M
check "the swap file is made in the store directory" test -f "$SWAP"
check "... at swap_size ($(stat -c %s "$SWAP" 2>/dev/null) bytes)" [ "$(stat -c %s "$SWAP")" -eq $((64 << 20)) ]
check "... preallocated ($(du -k "$SWAP" | cut -f1) KiB on disk)" [ "$(du -k "$SWAP" | cut -f1)" -ge $((60 << 10)) ]
check "info has a # Swap section" grep -q '^# Swap' "$MNT/.keyfs/info"
for field in swap_size swap_pages swap_pages_used swap_free_extents swap_ins_total swap_outs_total; do
  check "info has $field" grep -q "^$field:[0-9]" "$MNT/.keyfs/info"
done
check "... swap_size is the file's" [ "$(info swap_size)" -eq $((64 << 20)) ]
head -c 40M /dev/urandom > "$WORK/data"
cp "$WORK/data" "$MNT/data"
check "40 MiB through a 16M cache: swapped out" \
  wait_until 20 eval '[ "$(info swap_outs_total)" -ge 400 ]'
check "... user.keyfs.state counts swapped blocks ($(state_of "$MNT/data"))" \
  eval "state_of '$MNT/data' | grep -q 'swapped:[1-9]'"
sync; echo 3 > /proc/sys/vm/drop_caches
check "... and reads back (swapped in)" cmp "$WORK/data" "$MNT/data"
check "... swap_ins_total counts it" [ "$(info swap_ins_total)" -gt 100 ]

# A second keyfs with its own store but this swap file.
mkdir -p "$WORK/mnt2"
status=0
timeout 20 "$KEYFS" "$WORK/mnt2" -f -o "store=$WORK/store2,$SWAP_OPTIONS,swap_file=$SWAP" \
  2>"$WORK/err2" || status=$?
grep -qs " $WORK/mnt2 " /proc/mounts && fusermount3 -u -z "$WORK/mnt2"
check "a second keyfs on the same swap file fails" [ "$status" -ne 0 ]
check "... at once, naming the holder ($(head -c 200 "$WORK/err2"))" \
  grep -q "in use by another keyfs (keyfs pid $KEYFS_PID on $MNT" "$WORK/err2"
check "... and mounted nothing" eval "! is_mounted '$WORK/mnt2'"
check "the first still reads right" cmp "$WORK/data" "$MNT/data"
stop_keyfs
check "a clean unmount removes the swap file" test ! -e "$SWAP"

start_keyfs -o $SWAP_OPTIONS,swap_size=64M
kill -9 "$KEYFS_PID"; wait "$KEYFS_PID" 2>/dev/null; KEYFS_PID=
fusermount3 -u -z "$MNT" 2>/dev/null
check "kill -9 leaves the swap file" test -f "$SWAP"
start_keyfs -o $SWAP_OPTIONS,swap_size=32M
check "... the next mount takes it over, at its own size" [ "$(stat -c %s "$SWAP")" -eq $((32 << 20)) ]
check "... and everything is back from the journal" cmp "$WORK/data" "$MNT/data"
stop_keyfs

# --- bad swap options -------------------------------------------------------------
refused() {  # refused NAME GREP OPTIONS: keyfs exits non-zero before mounting, saying GREP
  local name=$1 grep_for=$2; shift 2
  local status=0
  "$KEYFS" "$MNT" -f -o "store=$STORE,$SWAP_OPTIONS,$1" 2>"$WORK/err" || status=$?
  check "$name: refused ($(head -c 200 "$WORK/err"))" eval "[ $status -ne 0 ] && grep -q '$grep_for' '$WORK/err'"
  check "... nothing mounted" eval "! is_mounted '$MNT'"
}
echo "my notes" > "$WORK/notes"
refused "a swap_file that is not a swap file" "is not a keyfs swap file" "swap_file=$WORK/notes"
check "... which is left alone" grep -qx "my notes" "$WORK/notes"
refused "a swap_size its filesystem cannot hold" "does not fit" "swap_size=100000G"
refused "a swap_size too small for one block" "too small" "swap_size=8K"
refused "a swap_file in a missing directory" "cannot open the swap file" "swap_file=$WORK/nowhere/swap"
check "the store still mounts after all that" eval "start_keyfs -o $SWAP_OPTIONS,swap_size=64M && cmp '$WORK/data' '$MNT/data'"
stop_keyfs

# --- a swap file too small for the data --------------------------------------------
rm -rf "$STORE"
start_keyfs -o $SWAP_OPTIONS,swap_size=8M,appendfsync=always
head -c 1M /dev/urandom > "$WORK/m"
acked=0
for i in $(seq 1 100); do
  if cp "$WORK/m" "$MNT/f$i" 2>"$WORK/cp.err"; then acked=$i; else break; fi
done
check "writes fail once memory (16M) and swap (8M) are full ($acked MiB fitted)" \
  eval "[ $acked -lt 100 ] && [ $acked -gt 16 ]"
check "... with ENOSPC" grep -q "No space left" "$WORK/cp.err"
check "... the log names the option to raise" \
  wait_until 5 grep -q "swap_size" "$WORK/keyfs.stderr"
check "... reads go on" cmp "$WORK/m" "$MNT/f1"
rm -f "$MNT/f$((acked + 1))"  # the one that failed, in whatever state
for i in $(seq 2 2 "$acked"); do rm "$MNT/f$i"; done
check "after deleting half, writes work again" \
  wait_until 30 eval "cp '$WORK/m' '$MNT/again' 2>/dev/null"
stop_keyfs
# Memory and swap held it together; at replay, memory has the namespace and
# the journal's buffers to hold as well, so the same budget may not do: a
# larger swap file must (and the error, if any, says so).
start_keyfs -o $SWAP_OPTIONS,swap_size=64M
ok=1
for i in $(seq 1 2 "$acked"); do cmp -s "$WORK/m" "$MNT/f$i" || ok=0; done
for i in $(seq 2 2 "$acked"); do [ ! -e "$MNT/f$i" ] || ok=0; done
cmp -s "$WORK/m" "$MNT/again" || ok=0
check "after a remount every acknowledged file is whole, the deleted ones gone" [ "$ok" -eq 1 ]
stop_keyfs

finish
