#!/usr/bin/env bash
# Logs an operator can run (issue 13):
#  - SIGHUP reopens the log file (logrotate's postrotate): after a move,
#    lines go to a new file of the same name, the mount serves on; when the
#    new file cannot be opened, logging goes on in the old one, with a
#    warning that says what to do;
#  - log=syslog sends the lines to syslog: in a private mount namespace a
#    datagram socket stands in for /dev/log (nothing outside it changes).
source "$(dirname "$0")/lib.sh" "$1"

LOG=$WORK/keyfs.log
start_keyfs -o "log=$LOG"
echo hello > "$MNT/greeting"
# Info lines reach the file within a second (spdlog's flush_every).
check "the log file has the mount line" wait_until 10 grep -q "keyfs mounted $MNT" "$LOG"
mv "$LOG" "$LOG.1"
kill -HUP "$KEYFS_PID"
check "SIGHUP: a new log file, saying so" wait_until 10 grep -qs "log file $LOG reopened (SIGHUP)" "$LOG"
check "... the mount still serves" eval "[ \"\$(cat '$MNT/greeting')\" = hello ]"
"$KEYFS_CTL" config set "$MNT" flush_delay 2s > /dev/null
check "... new lines go to the new file" wait_until 10 grep -q "flush_delay changed" "$LOG"
check "... none to the old one" eval "! grep -q 'flush_delay changed' '$LOG.1'"
# A log path keyfs cannot open: a directory there.
mv "$LOG" "$LOG.2"
mkdir "$LOG"
kill -HUP "$KEYFS_PID"
check "SIGHUP when the new file cannot be opened: warned in the old one, with what to do" \
  wait_until 10 grep -qs "cannot reopen log file $LOG.*still logging to the old file: .*send SIGHUP again" "$LOG.2"
rmdir "$LOG"
kill -HUP "$KEYFS_PID"
check "... and the next SIGHUP works" wait_until 10 grep -qs "reopened (SIGHUP)" "$LOG"
stop_keyfs
check "the unmount is logged in the new file" grep -q "keyfs exited cleanly" "$LOG"

# Logging to stderr (-f without log=), SIGHUP is the terminal going away.
start_keyfs
kill -HUP "$KEYFS_PID"
check "SIGHUP to a keyfs logging to stderr unmounts it" wait_until 20 eval "! is_mounted '$MNT'"
stop_keyfs true

# --- log=syslog ---------------------------------------------------------------------
# The namespace's /dev is a tmpfs with the devices keyfs needs bound in, and
# /dev/log a socket whose datagrams a listener appends to $WORK/syslog.
PIDS_FILE=$WORK/daemon-pids
: > "$PIDS_FILE"
trap 'for pid in $(cat "$PIDS_FILE" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done; cleanup' EXIT
unshare -m --propagation private bash -s "$KEYFS" "$MNT" "$STORE" "$WORK" > "$WORK/inner.log" 2>&1 <<'INNER'
set -u
keyfs=$1 mnt=$2 store=$3 work=$4
mkdir "$work/olddev" && mount --bind /dev "$work/olddev" && mount -t tmpfs tmpfs /dev || exit 99
for node in null zero random urandom fuse; do
  touch "/dev/$node" && mount --bind "$work/olddev/$node" "/dev/$node" || exit 99
done
python3 - "$work/syslog" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1] + ".ready", "w"):
    pass
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
PY
listener=$!
echo "$listener" >> "$work/daemon-pids"
for _ in $(seq 1 200); do [ -e "$work/syslog.ready" ] && break; sleep 0.05; done
"$keyfs" "$mnt" -o "store=$store,log=syslog"; echo "step mount: $?"
pid=$(sed -n 's/^keyfs pid \([0-9]*\) .*/\1/p' "$store/LOCK")
echo "$pid" >> "$work/daemon-pids"
[ "$(cat "$mnt/greeting")" = hello ]; echo "step read: $?"
umount "$mnt"; echo "step umount: $?"
for _ in $(seq 1 400); do [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" || break; sleep 0.05; done
[ ! -e "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status"; echo "step exited: $?"
kill "$listener"
INNER
check "the syslog namespace script ran" [ $? -eq 0 ]
for step in mount read umount exited; do
  check "log=syslog: $step" grep -qx "step $step: 0" "$WORK/inner.log"
done
grep -v '^step .*: 0$' "$WORK/inner.log" >&2
# <30> is facility daemon (3) * 8 + priority info (6).
check "syslog got the mount line as keyfs[pid], facility daemon, info" \
  grep -aq "^<30>.*keyfs\[[0-9]*\]: keyfs mounted $MNT" "$WORK/syslog"
check "... and the clean exit" grep -aq "keyfs exited cleanly" "$WORK/syslog"
check "... without keyfs's own time stamp and level" eval "! grep -aq ' info \[' '$WORK/syslog'"
finish
