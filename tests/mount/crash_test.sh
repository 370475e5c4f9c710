#!/usr/bin/env bash
# Crashes and full disks, for real: keyfs killed with SIGKILL at random
# moments while a writer works with appendfsync=always — after each remount
# every operation the writer saw acknowledged is there; the journal cut at
# many offsets mounts a prefix of the history; a kill during replay changes
# nothing; a rewrite under concurrent writers loses nothing; a store on a tiny
# tmpfs gives ENOSPC, loses nothing acknowledged, and works again once space
# is freed.
source "$(dirname "$0")/lib.sh" "$1"

# --- kill -9 rounds --------------------------------------------------------------
# The writer logs an operation to $LOG only after it returned: with
# appendfsync=always, returned means in the journal and fdatasynced.
# The writer logs "try NAMES" before an operation and the operation after it
# returned: with appendfsync=always, returned means in the journal and
# fdatasynced. The operation in flight when keyfs dies may be half done (an
# `echo >` that truncated but did not write): its names are exempt.
writer() {
  local round=$1 i=0 a b
  while :; do
    i=$((i + 1))
    a=r$round-$i
    echo "try $a" >> "$LOG"
    echo "$a" > "$MNT/w/$a" || return
    echo "create $a" >> "$LOG"
    if [ $((i % 3)) -eq 0 ]; then
      a=r$round-$((i - 1))
      echo "try $a" >> "$LOG"
      echo "over $i" > "$MNT/w/$a" || return
      echo "overwrite $a over $i" >> "$LOG"
    fi
    if [ $((i % 5)) -eq 0 ]; then
      a=r$round-$((i - 2)) b=m$round-$i
      echo "try $a $b" >> "$LOG"
      mv "$MNT/w/$a" "$MNT/w/$b" || return
      echo "rename $a $b" >> "$LOG"
    fi
    if [ $((i % 7)) -eq 0 ]; then
      a=r$round-$((i - 4))
      echo "try $a" >> "$LOG"
      rm -f "$MNT/w/$a" || return
      echo "delete $a" >> "$LOG"
    fi
  done
}

# Replays $LOG into the expected state (a directory of files) and compares.
# Every "try" not followed by its operation (one per kill) exempts its names.
verify_log() {
  local expect=$WORK/expect op a b c pending="" exempt=" "
  rm -rf "$expect" && mkdir -p "$expect"
  while read -r op a b c; do
    case $op in
      try) exempt="$exempt$pending"; pending="$a $b " ;;
      create) echo "$a" > "$expect/$a"; pending="" ;;
      overwrite) echo "$b $c" > "$expect/$a"; pending="" ;;
      rename) mv "$expect/$a" "$expect/$b"; pending="" ;;
      delete) rm -f "$expect/$a"; pending="" ;;
    esac
  done < "$LOG"
  exempt="$exempt$pending"
  local name
  for name in $(ls "$expect"); do
    case $exempt in *" $name "*) continue ;; esac
    cmp -s "$expect/$name" "$MNT/w/$name" || { echo "missing or wrong: $name" >&2; return 1; }
  done
  # And nothing unacknowledged appears beyond the one operation in flight.
  for name in $(ls "$MNT/w"); do
    case $exempt in *" $name "*) continue ;; esac
    [ -e "$expect/$name" ] || { echo "unexpected: $name" >&2; return 1; }
  done
}

LOG=$WORK/log
: > "$LOG"
start_keyfs -o appendfsync=always
mkdir "$MNT/w"
for round in 1 2 3 4 5; do
  writer "$round" 2>/dev/null &
  WRITER=$!
  EXTRA_PIDS="$WRITER"
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 "$KEYFS_PID"
  wait "$WRITER" 2>/dev/null
  wait "$KEYFS_PID" 2>/dev/null
  fusermount3 -u -z "$MNT" 2>/dev/null
  KEYFS_PID=
  start_keyfs -o appendfsync=always
  check "kill -9 round $round: every acknowledged operation survived ($(wc -l < "$LOG") logged)" verify_log
done
tree_state "$MNT" > "$WORK/before"
stop_keyfs

# --- a kill during replay changes nothing ---------------------------------------
"$KEYFS" "$MNT" -f -o "store=$STORE" "${TEST_OPTIONS[@]}" 2>/dev/null &
pid=$!
sleep 0.05
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
fusermount3 -u -z "$MNT" 2>/dev/null
start_keyfs
tree_state "$MNT" > "$WORK/after"
check "kill during replay, remount: the same state" diff "$WORK/before" "$WORK/after"
stop_keyfs

# --- the journal cut at many offsets mounts a prefix of the history -------------
rm -rf "$STORE"
start_keyfs -o auto_rewrite_percentage=0
for i in $(seq 1 60); do echo "v$i" > "$MNT/p$i"; done
stop_keyfs
INCR=$(ls "$STORE"/journal-*.incr)
cp "$INCR" "$WORK/full.incr"
size=$(stat -c %s "$INCR")
prefix_ok=0
prefix_bad=0
for cut in $(seq 40 $(( (size - 40) / 37 )) "$size") "$size"; do
  head -c "$cut" "$WORK/full.incr" > "$INCR"
  start_keyfs
  n=0
  while [ -e "$MNT/p$((n + 1))" ]; do n=$((n + 1)); done
  ok=1
  for i in $(seq 1 $((n - 1))); do grep -qx "v$i" "$MNT/p$i" || ok=0; done
  [ "$n" -eq 0 ] || grep -qx "v$n" "$MNT/p$n" || [ ! -s "$MNT/p$n" ] || ok=0
  [ "$(ls "$MNT" | wc -l)" -eq "$n" ] || ok=0
  if [ $ok -eq 1 ]; then prefix_ok=$((prefix_ok + 1)); else prefix_bad=$((prefix_bad + 1)); fi
  stop_keyfs > /dev/null
done
check "journal cut at $((prefix_ok + prefix_bad)) offsets: always a prefix of the history" \
  [ "$prefix_bad" -eq 0 ]
check "the whole journal has every file" test "$n" -eq 60

# --- rewrite under load (Redis's aof-race) ----------------------------------------
rm -rf "$STORE"
start_keyfs -o auto_rewrite_percentage=0
mkdir "$MNT/load"
load_writer() {
  local w=$1 i
  for i in $(seq 1 400); do echo "$w-$i" > "$MNT/load/$w-$i" || return 1; done
}
load_writer a & A=$!
load_writer b & B=$!
EXTRA_PIDS="$A $B"
rewrites=0
while process_alive "$A" || process_alive "$B"; do
  "$KEYFS_CTL" rewrite "$MNT" > /dev/null && rewrites=$((rewrites + 1))
done
wait "$A"; sa=$?
wait "$B"; sb=$?
check "writers during rewrites succeeded" [ "$sa" -eq 0 ] && [ "$sb" -eq 0 ]
check "at least one rewrite ran during the writes ($rewrites)" [ "$rewrites" -ge 1 ]
"$KEYFS_CTL" rewrite "$MNT" > /dev/null
tree_state "$MNT" > "$WORK/before"
stop_keyfs
start_keyfs
tree_state "$MNT" > "$WORK/after"
check "rewrite under load, remount: nothing missing" diff "$WORK/before" "$WORK/after"
check "all 800 files" test "$(ls "$MNT/load" | wc -l)" -eq 800
stop_keyfs

# --- a store on a tiny tmpfs that fills up ---------------------------------------
TINY=$WORK/tiny
mkdir -p "$TINY"
mount -t tmpfs -o size=4m tmpfs "$TINY"
EXTRA_MOUNTS="$TINY"
STORE=$TINY/store
start_keyfs -o appendfsync=always,auto_rewrite_percentage=0
mkdir "$MNT/dir"
acked=0
for i in $(seq 1 100); do
  if head -c 100000 /dev/zero | tr '\0' "x" > "$MNT/fill$i" 2>/dev/null; then
    acked=$i
  else
    break
  fi
done
check "a full store disk gives an error ($acked files fitted)" [ "$acked" -lt 100 ]
# A refusal keeps room for what memory has not saved yet; once that is
# saved, a small file may still fit (in swap mode a save goes to the
# preallocated swap file and gives the room kept for it back). Fill with
# small ones until none does, each tried with nothing left unsaved, so that
# a refusal is not undone by a save that ends just after it. The refusal is
# what is checked: after it, keyfs itself starts to give room back on a full
# disk (a compaction, then a rewrite, which gives up the store's reserve), so
# a later change may fit, at a time no test can foresee.
all_saved() { grep -qx "dirty_bytes:0" "$MNT/.keyfs/info"; }
refused=0
for i in $(seq 1 500); do
  wait_until 10 all_saved || true
  if ! sh -c 'echo small > "$1"' sh "$MNT/small$i" 2>"$WORK/err"; then
    refused=1
    break
  fi
done
check "... new changes fail while it is full" [ "$refused" -eq 1 ]
check "... with ENOSPC" grep -q "No space left" "$WORK/err"
check "... reads go on" test "$(head -c 5 "$MNT/fill1")" = "xxxxx"
# More than keyfs can give back by itself (its store's reserve is 1 MiB here).
check "... writing still fails" eval "! head -c 2M /dev/zero 2>/dev/null > '$MNT/more'"
# Changes that only give room back use a reserve kept for them (issue 9:
# rm, truncate and mv failed too, so a full store could not be emptied),
# also while the rewrite keyfs starts on a full disk runs: its new journal
# segment takes the reserve over. Started here, so that it always does.
setfattr -n user.keyfs.rewrite -v 1 "$MNT" 2>/dev/null
check "... on the full disk rm works" rm "$MNT/fill1"
check "... truncate works" truncate -s 10 "$MNT/fill2"
check "... mv works" mv "$MNT/fill3" "$MNT/moved3"
check "... rmdir works" rmdir "$MNT/dir"
# Deleting half of it gives the space back, without a remount (issue 9): the
# dead journal records and store segments go at the next rewrite, which
# keyfs starts itself when the disk is full.
for i in $(seq 4 2 "$acked"); do rm "$MNT/fill$i"; done
if [ "$MODE" = swap ]; then
  # Not in swap mode: the journal is the only copy, so its rewrite writes
  # all that is left, and needs that much free space; a disk this full has
  # none (README, "Choosing a mode"). Room made by the administrator, next,
  # works in both modes.
  echo "(swap mode: deleting does not give the disk back without room for a rewrite)"
else
  check "after deleting half, writes work again without a remount" \
    wait_until 30 eval "head -c 100000 /dev/zero 2>/dev/null > '$MNT/after-delete'"
  check "... and read back" test "$(stat -c %s "$MNT/after-delete")" -eq 100000
fi
# Make room, as an administrator would: here by growing the tmpfs.
mount -o remount,size=16m "$TINY"
check "writes work again once there is space" \
  wait_until 20 eval "echo again 2>/dev/null > '$MNT/again'"
check "... and read back" grep -qx again "$MNT/again"
stop_keyfs
start_keyfs -o appendfsync=always
ok=1
for i in $(seq 5 2 "$acked"); do [ "$(stat -c %s "$MNT/fill$i")" -eq 100000 ] || ok=0; done
for i in $(seq 4 2 "$acked"); do [ ! -e "$MNT/fill$i" ] || ok=0; done
[ "$MODE" = swap ] || [ "$(stat -c %s "$MNT/after-delete")" -eq 100000 ] || ok=0
check "after remount every acknowledged file is whole, the deleted ones gone" [ "$ok" -eq 1 ]
check "... and the changes made on the full disk are kept" \
  eval "[ ! -e '$MNT/fill1' ] && [ \"\$(stat -c %s '$MNT/fill2')\" -eq 10 ] && [ \"\$(stat -c %s '$MNT/moved3')\" -eq 100000 ] && [ ! -e '$MNT/dir' ]"
check "... and the one written after recovery" grep -qx again "$MNT/again"
stop_keyfs
umount "$TINY"
EXTRA_MOUNTS=

finish
