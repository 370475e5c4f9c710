#!/usr/bin/env bash
# Issue 9: the documented fstab and mount(8) forms work once keyfs is
# installed. mount(8) and mount.fuse3 find the program by name in a fixed
# PATH (/usr/local/bin among it), not in the build tree, so this installs the
# build under test with `cmake --install` and, in a private mount namespace
# (nothing outside it sees the change), puts that installation's bin/ over
# /usr/local/bin. Then it mounts from a clean environment (env -i) with
# `mount -t fuse.keyfs`, `mount.fuse3 'keyfs#STORE'` and an fstab line.
source "$(dirname "$0")/lib.sh" "$1"

PREFIX=$WORK/prefix
cmake --install "$BUILD_DIR" --prefix "$PREFIX" > "$WORK/install.log" 2>&1
check "cmake --install puts keyfs, keyfs-ctl and keyfs-check in bin/" \
  test -x "$PREFIX/bin/keyfs" -a -x "$PREFIX/bin/keyfs-ctl" -a -x "$PREFIX/bin/keyfs-check"
check "... and nothing else" [ "$(ls "$PREFIX/bin" | wc -l)" -eq 3 ]

cat > "$WORK/fstab" <<FSTAB
keyfs#$STORE  $MNT  fuse  max_memory=64M,noauto  0 0
FSTAB

# The daemons started inside the namespace write their pid here, so that the
# EXIT trap can stop them if the script dies half way (their mounts die with
# the namespace).
PIDS_FILE=$WORK/daemon-pids
: > "$PIDS_FILE"
cleanup_daemons() { for pid in $(cat "$PIDS_FILE" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done; }
trap 'cleanup_daemons; cleanup' EXIT

unshare -m --propagation private bash -s "$PREFIX" "$STORE" "$MNT" "$WORK" > "$WORK/inner.log" 2>&1 <<'INNER'
set -u
prefix=$1 store=$2 mnt=$3 work=$4
mount --bind "$prefix/bin" /usr/local/bin || exit 99
daemon_pid() { sed -n 's/^keyfs pid \([0-9]*\) .*/\1/p' "$store/LOCK"; }
# unmount, then wait for the daemon to exit (its pid is in the store's lock)
unmount() {
  local pid; pid=$(daemon_pid)
  env -i /bin/umount "$mnt" || return 1
  for _ in $(seq 1 400); do [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" || return 0; sleep 0.05; done
  return 1
}
step() { echo "step $1: $2"; }

env -i /bin/mount -t fuse.keyfs "$store" "$mnt" -o max_memory=64M; step mount-t $?
echo "$(daemon_pid)" >> "$work/daemon-pids"
grep " $mnt fuse.keyfs " /proc/mounts > /dev/null; step mounted-t $?
echo hello > "$mnt/greeting"; step write $?
# a shell's default PATH has /usr/local/bin
env -i /bin/sh -c 'keyfs-ctl sync "$1" && keyfs-check --help > /dev/null' sh "$mnt"; step ctl $?
unmount; step umount-t $?

env -i /sbin/mount.fuse3 "keyfs#$store" "$mnt" -o max_memory=64M; step mount.fuse3 $?
echo "$(daemon_pid)" >> "$work/daemon-pids"
[ "$(cat "$mnt/greeting")" = hello ]; step read-back $?
unmount; step umount-fuse3 $?

env -i /bin/mount --fstab "$work/fstab" "$mnt"; step fstab $?
echo "$(daemon_pid)" >> "$work/daemon-pids"
[ "$(cat "$mnt/greeting")" = hello ]; step read-fstab $?
unmount; step umount-fstab $?
echo done
INNER
inner=$?
check "the namespace script ran (exit $inner)" [ "$inner" -eq 0 ]
for step in mount-t mounted-t write ctl umount-t mount.fuse3 read-back umount-fuse3 fstab read-fstab umount-fstab; do
  check "env -i ... $step" grep -qx "step $step: 0" "$WORK/inner.log"
done
grep -v '^step .*: 0$' "$WORK/inner.log" | grep -v '^done$' >&2
daemons_gone() {
  local pid
  for pid in $(cat "$PIDS_FILE"); do process_alive "$pid" && return 1; done
  return 0
}
check "three daemons ran ($(wc -l < "$PIDS_FILE"))" [ "$(wc -l < "$PIDS_FILE")" -eq 3 ]
check "and are gone" daemons_gone
finish
