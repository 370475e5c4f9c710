#!/usr/bin/env bash
# The journal through a real mount: everything survives unmount + remount
# exactly (names, bytes, modes, owners, links, times, xattrs), also after a
# rewrite; SIGTERM saves like unmount; a torn tail is cut (or refused with
# journal_load_truncated=no); damage in the middle refuses the mount with the
# repair command, which keyfs-check then performs.
source "$(dirname "$0")/lib.sh" "$1"

# A tree using every kind of change the journal records.
populate() {
  cd "$MNT"
  mkdir -p dir/sub "deep/a/b/c" empty
  echo hello > dir/small
  printf 'no newline' > dir/sub/exact
  head -c 3000000 /dev/urandom > dir/big            # several blocks
  truncate -s 10M dir/sparse && echo tail >> dir/sparse
  ln dir/small dir/hardlink
  ln -s ../dir/small deep/symlink
  mkfifo dir/fifo
  setfattr -n user.color -v blue dir/small
  setfattr -n user.gone -v x dir/small && setfattr -x user.gone dir/small
  chmod 640 dir/big && chown 1234:5678 dir/big
  touch -m -d '2001-02-03 04:05:06.123456789' dir/sub/exact
  echo one > r1 && echo two > r2 && mv r1 r2        # rename over a file
  echo x > a && echo y > b && "$RENAMEAT2" exchange a b
  mv deep/a/b deep/moved                           # a directory between parents
  echo temp > t && rm t && rmdir empty
  echo 12345678 > trunc && truncate -s 3 trunc
  fallocate -p -o 4096 -l 8192 dir/sparse 2>/dev/null || true
  echo appended >> dir/sub/exact
  echo "a much longer first version" > over && echo short > over   # O_TRUNC
  # A file deleted while open, written after the unlink: gone after remount.
  exec 8>unlinked && rm unlinked && echo late >&8 && exec 8>&-
  cd /
}

start_keyfs
populate
tree_state "$MNT" > "$WORK/before"
stop_keyfs
check "a clean store passes keyfs-check" "$KEYFS_CHECK" "$STORE"

start_keyfs
tree_state "$MNT" > "$WORK/after"
check "remount: the same tree, byte for byte" diff "$WORK/before" "$WORK/after"

# A rewrite, then more changes on top of it, then SIGTERM.
check "keyfs-ctl rewrite succeeds" "$KEYFS_CTL" rewrite "$MNT"
check "the rewrite left one base and one incr" \
  test "$(ls "$STORE" | grep -c '^journal-')" -eq 2
echo after-rewrite > "$MNT/dir/new" && rm "$MNT/dir/hardlink"
tree_state "$MNT" > "$WORK/before"
stop_keyfs kill -TERM "$KEYFS_PID"
check "keyfs-check after a rewrite" "$KEYFS_CHECK" "$STORE"
start_keyfs
tree_state "$MNT" > "$WORK/after"
check "rewrite + changes + SIGTERM: the same tree" diff "$WORK/before" "$WORK/after"
check "keyfs-ctl status shows the journal" eval "'$KEYFS_CTL' status '$MNT' | grep -q '^appendfsync:everysec'"
check "control names cannot be removed" eval "! setfattr -x user.keyfs.journal '$MNT' 2>/dev/null"
check "control names are the root's only" eval "! setfattr -n user.keyfs.x -v 1 '$MNT/dir/small' 2>/dev/null"
check "keyfs-ctl status names the store" eval "'$KEYFS_CTL' status '$MNT' | grep -qx 'store:$STORE'"
check "... the daemon's pid" eval "'$KEYFS_CTL' status '$MNT' | grep -qx 'pid:$KEYFS_PID'"
check "... its uptime" eval "'$KEYFS_CTL' status '$MNT' | grep -q '^uptime_in_seconds:[0-9]'"
check "... and the inode count" eval "'$KEYFS_CTL' status '$MNT' | grep -q '^inodes:[1-9]'"
# keyfs-check refuses what is not a store (issue 9): it said "no journal (an
# empty store)" and exit 0 for a mount point or any directory.
status=0
"$KEYFS_CHECK" "$MNT" > "$WORK/check" 2>&1 || status=$?
check "keyfs-check MOUNTPOINT: exit 2" [ "$status" -eq 2 ]
check "... saying it is a mount point, not a store" grep -q "is a keyfs mount point" "$WORK/check"
mkdir -p "$WORK/not-a-store"
status=0
"$KEYFS_CHECK" "$WORK/not-a-store" > "$WORK/check" 2>&1 || status=$?
check "keyfs-check on a plain directory: exit 2" [ "$status" -eq 2 ]
check "... saying it is not a store" grep -q "is not a keyfs store" "$WORK/check"
for i in $(seq 1 200); do echo "file $i" > "$MNT/f$i"; done
stop_keyfs
INCR=$(ls "$STORE"/journal-*.incr | tail -1)

# --- a torn tail: the end of a record that a crash cut short ----------------
cp "$INCR" "$WORK/incr.good"
size=$(stat -c %s "$INCR")
head -c $((size - 7)) "$WORK/incr.good" > "$INCR"
status=0
"$KEYFS" "$MNT" -f -o "store=$STORE,journal_load_truncated=no" 2>"$WORK/err" || status=$?
check "torn tail with journal_load_truncated=no: refused" [ "$status" -ne 0 ]
check "... saying where and what to do" grep -q "journal_load_truncated=yes" "$WORK/err"
check "... nothing mounted" eval "! is_mounted '$MNT'"
start_keyfs
check "torn tail: mounts by default, with a warning" grep -q "cutting the journal at offset" "$WORK/keyfs.stderr"
# The last record is f200's bytes or, when the cache saved blocks after it,
# a record of where a block was saved: either way nothing before it is lost.
check "torn tail: f200 is whole or empty (only the last record is lost)" \
  eval "grep -qx 'file 200' '$MNT/f200' || [ ! -s '$MNT/f200' ]"
all_before=1
for i in $(seq 1 199); do grep -qx "file $i" "$MNT/f$i" || all_before=0; done
check "... and every file before it is there" [ "$all_before" -eq 1 ]
stop_keyfs
check "after the cut the journal is clean" "$KEYFS_CHECK" "$STORE"

# --- damage in the middle: refuse, name the file and offset, repair ----------
cp "$WORK/incr.good" "$INCR"
offset=$(( $(stat -c %s "$INCR") / 2 ))
printf '\xff\xfe\xfd\xfc' | dd of="$INCR" bs=1 seek="$offset" conv=notrunc status=none
status=0
"$KEYFS" "$MNT" -f -o "store=$STORE" 2>"$WORK/err" || status=$?
check "garbage in the middle: mount refused" [ "$status" -ne 0 ]
check "... naming the file" grep -qF "$(basename "$INCR")" "$WORK/err"
check "... and the offset" grep -q "offset" "$WORK/err"
check "... and the repair command" grep -qF "keyfs-check --fix $STORE" "$WORK/err"
check "... nothing mounted" eval "! is_mounted '$MNT'"
status=0
"$KEYFS_CHECK" "$STORE" > "$WORK/check" || status=$?
check "keyfs-check reports the damage (exit 1)" [ "$status" -eq 1 ]
check "... with DAMAGED" grep -q "DAMAGED" "$WORK/check"
check "... and the real last good record" grep -q "last good record [1-9][0-9]*$" "$WORK/check"
cp "$INCR" "$WORK/incr.damaged"
echo n | "$KEYFS_CHECK" --fix "$STORE" > "$WORK/check" || true
check "keyfs-check --fix asks first" grep -q "continue?" "$WORK/check"
check "... and changes nothing on 'n'" cmp -s "$INCR" "$WORK/incr.damaged"
check "keyfs-check --fix --yes repairs" "$KEYFS_CHECK" --fix --yes "$STORE"
check "then the journal is clean" "$KEYFS_CHECK" "$STORE"
start_keyfs
# A prefix of the history: f1..fN-1 whole, fN whole or still empty (its
# create was kept, its write was not), nothing after it.
is_prefix() {
  local count=$1 i
  [ "$count" -gt 0 ] && [ "$count" -lt 200 ] || return 1
  for i in $(seq 1 $((count - 1))); do grep -qx "file $i" "$MNT/f$i" || return 1; done
  grep -qx "file $count" "$MNT/f$count" || [ ! -s "$MNT/f$count" ]
}
count=$(ls "$MNT" | grep -c '^f[0-9]*$')
check "after the repair the files are a prefix of the history ($count of 200)" is_prefix "$count"
stop_keyfs

check "--dump prints records" eval "'$KEYFS_CHECK' --dump '$STORE' | grep -q ' node ino='"

# --- the newest segment cut inside its header (issue 9) ---------------------
# A crash while a new segment is created (a rewrite's start, the first
# mount) leaves 0 to 31 of its 32 header bytes: a torn tail, not damage.
start_keyfs
tree_state "$MNT" > "$WORK/before"
stop_keyfs
LIVE=$(ls "$STORE"/journal-*.incr | tail -1)
gen=$(basename "$LIVE" .incr); gen=$((10#${gen#journal-} + 1))
NEXT=$(printf '%s/journal-%06d.incr' "$STORE" "$gen")
for cut in 0 1 20; do
  head -c "$cut" "$LIVE" > "$NEXT"
  status=0
  "$KEYFS" "$MNT" -f -o "store=$STORE,journal_load_truncated=no" 2> "$WORK/err" || status=$?
  check "segment cut at $cut bytes, journal_load_truncated=no: refused" [ "$status" -ne 0 ]
  status=0
  "$KEYFS_CHECK" "$STORE" > "$WORK/check" || status=$?
  check "... keyfs-check calls it a cut header (exit 1)" grep -q "cut inside its header" "$WORK/check"
  start_keyfs
  check "... mounts by default, with a warning" grep -q "cut inside its header" "$WORK/keyfs.stderr"
  tree_state "$MNT" > "$WORK/after"
  check "... with nothing lost" diff "$WORK/before" "$WORK/after"
  echo "after cut $cut" > "$MNT/cut$cut"
  tree_state "$MNT" > "$WORK/before"
  stop_keyfs
  check "... and the segment is whole again" "$KEYFS_CHECK" "$STORE"
  LIVE=$NEXT
  gen=$((gen + 1)); NEXT=$(printf '%s/journal-%06d.incr' "$STORE" "$gen")
done
head -c 9 "$LIVE" > "$NEXT"
check "keyfs-check --fix sets a cut segment aside" "$KEYFS_CHECK" --fix --yes "$STORE"
check "... leaving a clean journal" "$KEYFS_CHECK" "$STORE"
start_keyfs
tree_state "$MNT" > "$WORK/after"
check "... that mounts with everything" diff "$WORK/before" "$WORK/after"
stop_keyfs

# With the kernel's writeback cache, writes reach keyfs when the kernel writes
# its pages back; everything closed before the unmount is in the journal.
rm -rf "$STORE"
start_keyfs -o writeback_cache=yes
populate
tree_state "$MNT" > "$WORK/before"
stop_keyfs
start_keyfs
tree_state "$MNT" > "$WORK/after"
check "writeback_cache=yes: the same tree after a remount" diff "$WORK/before" "$WORK/after"
stop_keyfs
finish
