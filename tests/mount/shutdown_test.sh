#!/usr/bin/env bash
# Every way of stopping keyfs ends the process with status 0 and leaves no
# mount: fusermount3 -u, umount, SIGTERM, SIGINT; and the daemonized form.
source "$(dirname "$0")/lib.sh" "$1"

start_keyfs
echo x > "$MNT/f"
stop_keyfs fusermount3 -u "$MNT"

start_keyfs
stop_keyfs umount "$MNT"

start_keyfs
stop_keyfs kill -TERM "$KEYFS_PID"

start_keyfs
stop_keyfs kill -INT "$KEYFS_PID"

start_keyfs
# Regression: a directory still open when keyfs stops (the kernel sends no
# RELEASEDIR then) leaked its listing; the ASan build fails on that leak.
exec 7<"$MNT"
stop_keyfs kill -TERM "$KEYFS_PID"
exec 7<&-

# Daemonized (the default): the command returns once the mount is there, the
# daemon writes its log to the store directory and exits when unmounted.
status=0
"$KEYFS" "$MNT" -o "store=$STORE" || status=$?
check "daemonizing keyfs returns 0" [ "$status" -eq 0 ]
check "the mount is there when keyfs returns" is_mounted "$MNT"
check "and usable at once" eval "echo hi > '$MNT/now' && [ \"\$(cat '$MNT/now')\" = hi ]"
KEYFS_PID=$(sed -n 's/^keyfs pid \([0-9]*\) .*/\1/p' "$STORE/LOCK")
check "the lock names the daemon's pid" process_alive "$KEYFS_PID"
# (log lines below warning reach the file within a second)
check "the daemon logs to the store" wait_until 10 grep -q "keyfs mounted $MNT" "$STORE/keyfs.log"
fusermount3 -u "$MNT"
check "the daemon exits after unmount" wait_until 20 eval "! process_alive $KEYFS_PID"
check "and says so in its log" grep -q "keyfs exited cleanly" "$STORE/keyfs.log"
check "no mount left" eval "! is_mounted '$MNT'"

# A daemon that fails at start-up makes the command fail, with the message.
touch "$WORK/file"
status=0
"$KEYFS" "$MNT" -o "store=$WORK/file/sub" 2> "$WORK/err" || status=$?
check "a failing daemon start exits non-zero" [ "$status" -ne 0 ]
check "and the user sees why" grep -q "cannot create store directory" "$WORK/err"
check "nothing mounted" eval "! is_mounted '$MNT'"
finish
