#!/usr/bin/env bash
# Issue 9: what a killed or just-unmounted keyfs leaves behind does not get
# in the next one's way, and nothing is stacked or hidden.
#  - a dead keyfs mount (kill -9: "Transport endpoint is not connected") is
#    cleared by the next keyfs, which says so and that the last one did not
#    exit cleanly;
#  - a dead mount of another FUSE filesystem, and a live mount of anything,
#    are refused with the command to run (a live one is allowed with
#    -o nonempty);
#  - a remount right after an unmount waits for the old daemon to finish.
source "$(dirname "$0")/lib.sh" "$1"

mounts_at() { awk -v m="$MNT" '$5 == m' /proc/self/mountinfo | wc -l; }

# --- kill -9 leaves a dead mount; the next keyfs clears it -------------------
start_keyfs -o appendfsync=always
echo survivor > "$MNT/f"
kill -9 "$KEYFS_PID"
wait "$KEYFS_PID" 2>/dev/null
KEYFS_PID=
status=0
ls "$MNT" > /dev/null 2> "$WORK/stat.err" || status=$?
# ENOTCONN; or ECONNABORTED for a request caught while the kernel ends the
# connection, which with io_uring it does just after the process is gone (the
# ring's teardown holds the session file a moment longer).
check "after kill -9 the mount point is dead" \
  grep -qE "Transport endpoint is not connected|Software caused connection abort" "$WORK/stat.err"
check "... and still in the mount table" [ "$(mounts_at)" -eq 1 ]
start_keyfs -o appendfsync=always
# The log is written by spdlog's flusher: wait for the lines, do not race it.
check "keyfs clears the dead mount itself, and says so" \
  wait_until 10 grep -q "cleared a dead keyfs mount at $MNT" "$WORK/keyfs.stderr"
check "... and that the previous keyfs did not exit cleanly" \
  wait_until 10 grep -q "did not exit cleanly" "$WORK/keyfs.stderr"
check "... with what replay recovered" \
  wait_until 10 grep -q "replay recovered [0-9]* records" "$WORK/keyfs.stderr"
check "one mount, not two stacked" [ "$(mounts_at)" -eq 1 ]
check "the data is back" grep -qx survivor "$MNT/f"
stop_keyfs
start_keyfs
check "after a clean stop, no such warning" eval "! grep -q 'did not exit cleanly' '$WORK/keyfs.stderr'"
stop_keyfs

# Daemonized, as a user runs it: the parent's exit status and stderr.
start_keyfs
kill -9 "$KEYFS_PID"; wait "$KEYFS_PID" 2>/dev/null; KEYFS_PID=
status=0
"$KEYFS" "$MNT" -o "store=$STORE" 2> "$WORK/err" || status=$?
check "daemonized keyfs over a dead mount: exit 0 ($(cat "$WORK/err"))" [ "$status" -eq 0 ]
KEYFS_PID=$(sed -n 's/^keyfs pid \([0-9]*\) .*/\1/p' "$STORE/LOCK")
check "... mounted once" [ "$(mounts_at)" -eq 1 ]
check "... logged to the store" wait_until 10 grep -q "cleared a dead keyfs mount" "$STORE/keyfs.log"
fusermount3 -u "$MNT"
wait_until 20 eval "! process_alive $KEYFS_PID"
KEYFS_PID=

# --- a dead mount of another FUSE filesystem is not keyfs's to clear --------
"$KEYFS" "$MNT" -f -o "store=$STORE,subtype=otherfs" 2> /dev/null &
KEYFS_PID=$!
wait_until 20 grep -qs " $MNT fuse.otherfs " /proc/mounts
kill -9 "$KEYFS_PID"; wait "$KEYFS_PID" 2>/dev/null; KEYFS_PID=
status=0
"$KEYFS" "$MNT" -f -o "store=$STORE" 2> "$WORK/err" || status=$?
check "a dead fuse.otherfs mount: refused" [ "$status" -ne 0 ]
check "... with the command to run" grep -q "run \`fusermount3 -u $MNT\`" "$WORK/err"
check "... naming what is there" grep -q "dead mount of fuse.otherfs" "$WORK/err"
check "... nothing stacked" [ "$(mounts_at)" -eq 1 ]
fusermount3 -u "$MNT"
start_keyfs
check "after fusermount3 -u, keyfs mounts" is_mounted "$MNT"
stop_keyfs

# --- a live mount is not hidden unless asked --------------------------------
mount -t tmpfs -o size=1m tmpfs "$MNT"
EXTRA_MOUNTS="$MNT"
echo mine > "$MNT/tmpfs-file"
status=0
"$KEYFS" "$MNT" -f -o "store=$STORE" 2> "$WORK/err" || status=$?
check "over a live tmpfs: refused" [ "$status" -ne 0 ]
check "... saying what is mounted and how to go on" grep -q "already a mount point (tmpfs.*-o nonempty" "$WORK/err"
start_keyfs -o nonempty
check "with -o nonempty keyfs mounts over it" is_mounted "$MNT"
check "... and serves its own files" grep -qx survivor "$MNT/f"
stop_keyfs
check "the tmpfs is there again, untouched" grep -qx mine "$MNT/tmpfs-file"
umount "$MNT"
EXTRA_MOUNTS=

# --- remount right after unmount --------------------------------------------
# The old daemon writes and fsyncs what it holds after the kernel has let
# umount return; the new one waits for it.
ok=0
for round in 1 2 3 4 5; do
  start_keyfs -o appendfsync=no
  head -c 30M /dev/urandom > "$MNT/big$round"
  md5sum < "$MNT/big$round" > "$WORK/sum$round"
  old=$KEYFS_PID
  umount "$MNT"
  start_keyfs -o appendfsync=no   # at once
  if cmp -s <(md5sum < "$MNT/big$round") "$WORK/sum$round"; then ok=$((ok + 1)); fi
  wait "$old" 2>/dev/null
  stop_keyfs > /dev/null
done
check "umount then mount at once, 5 times: every mount succeeded with its data ($ok)" [ "$ok" -eq 5 ]

# A holder that is finishing its shutdown, made to take a while: the new
# keyfs waits, says so, and mounts when the lock is free.
mkfifo "$WORK/go"
flock -x "$STORE/LOCK" sh -c 'echo "keyfs pid $$ on /not/mounted/any/more (stopping)" > "$1"; read x < "$2"' \
  sh "$STORE/LOCK" "$WORK/go" &
HOLDER=$!
EXTRA_PIDS=$HOLDER
wait_until 10 grep -q "(stopping)" "$STORE/LOCK"
"$KEYFS" "$MNT" -f -o "store=$STORE" 2> "$WORK/keyfs.stderr" &
KEYFS_PID=$!
check "keyfs waits for a keyfs finishing its shutdown, and says so" \
  wait_until 10 grep -q "finishing its shutdown; waiting for it" "$WORK/keyfs.stderr"
check "... without mounting meanwhile" eval "! is_mounted '$MNT'"
echo go > "$WORK/go"
wait "$HOLDER"
check "... and mounts once it has finished" wait_until 20 is_mounted "$MNT"
stop_keyfs

# A holder that is starting up (replaying its journal) will mount: no wait.
flock -x "$STORE/LOCK" sh -c 'echo "keyfs pid $$ on /elsewhere (starting)" > "$1"; read x < "$2"' \
  sh "$STORE/LOCK" "$WORK/go" &
HOLDER=$!
EXTRA_PIDS=$HOLDER
wait_until 10 grep -q "(starting)" "$STORE/LOCK"
status=0
timeout 10 "$KEYFS" "$MNT" -f -o "store=$STORE" 2> "$WORK/err" || status=$?
check "a store held by a keyfs starting up: refused at once" [ "$status" -eq 1 ]
check "... naming it" grep -q "in use by another keyfs.*on /elsewhere (starting)" "$WORK/err"
echo go > "$WORK/go"
wait "$HOLDER"
EXTRA_PIDS=
finish
