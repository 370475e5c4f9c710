# Shared harness for mount tests: sourced, not run. Usage in a test:
#
#   source "$(dirname "$0")/lib.sh" "$1"     # $1: path to the keyfs binary
#   start_keyfs -o max_memory=256M           # mounts at $MNT, store in $STORE
#   ... real shell tools on $MNT ...
#   stop_keyfs                               # unmounts, checks exit status 0
#   finish                                   # prints "N passed, N failed"
#
# Every mount made here is unmounted and every keyfs started here is killed on
# any exit path (EXIT trap), so a failing test leaves nothing behind.

set -u
KEYFS=${1:?usage: $0 PATH_TO_KEYFS}
KEYFS=$(readlink -f "$KEYFS")
BUILD_DIR=$(dirname "$(dirname "$KEYFS")")
KEYFS_CHECK=$BUILD_DIR/src/keyfs-check
KEYFS_CTL=$BUILD_DIR/src/keyfs-ctl
RENAMEAT2=$BUILD_DIR/tests/renameat2
WORK=$(mktemp -d /tmp/keyfs-mount-test.XXXXXX)
MNT=$WORK/mnt
STORE=$WORK/store
mkdir -p "$MNT"
KEYFS_PID=
PASSED=0
FAILED=0

cleanup() {
  if grep -qs " $MNT " /proc/mounts; then fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"; fi
  if [ -n "$KEYFS_PID" ] && process_alive "$KEYFS_PID"; then kill -9 "$KEYFS_PID" 2>/dev/null; fi
  for extra in ${EXTRA_MOUNTS:-}; do
    grep -qs " $extra " /proc/mounts && { fusermount3 -u -z "$extra" 2>/dev/null || umount -l "$extra"; }
  done
  for pid in ${EXTRA_PIDS:-}; do kill -9 "$pid" 2>/dev/null; done
  cd /
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

is_mounted() { grep -qs " $1 fuse.keyfs " /proc/mounts; }
# Mounted and answering (a dead mount left by a killed keyfs is mounted, but
# statfs fails on it with ENOTCONN; stat may be answered from the kernel's
# cache).
is_serving() { is_mounted "$1" && stat -f "$1" > /dev/null 2>&1; }

# process_alive PID: running, and not a zombie (a daemon that exited but whose
# new parent, init, has not reaped it yet has finished all the same).
process_alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# wait_until SECONDS COMMAND...: polls COMMAND until it succeeds or time runs out.
wait_until() {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# Options every keyfs of the test gets last, so they win: the CMake tests
# run some scripts a second time with a tiny cache (KEYFS_TEST_OPTIONS=
# max_memory=16M,block_size=64K,flush_delay=0), so that eviction, loading
# and back-pressure sit under everything they check.
TEST_OPTIONS=()
[ -n "${KEYFS_TEST_OPTIONS:-}" ] && TEST_OPTIONS=(-o "$KEYFS_TEST_OPTIONS")
# The store mode those options choose (the swap twins add mode=swap), for
# the checks that differ: where evicted blocks are (the disk store or the
# swap file) and what the journal holds.
MODE=disk
case ",${KEYFS_TEST_OPTIONS:-}," in *,mode=swap,*) MODE=swap ;; esac
if [ "$MODE" = swap ]; then
  EVICTED_STATE=swapped    # user.keyfs.state of a block not in memory
  LIVE_BYTES=swap_live_bytes
else
  EVICTED_STATE=on-disk
  LIVE_BYTES=store_live_bytes
fi

# start_keyfs [ARGS...]: runs keyfs in the foreground (-f) in the background,
# with the store in $STORE, and waits for the mount.
start_keyfs() {
  "$KEYFS" "$MNT" -f -o "store=$STORE" "$@" "${TEST_OPTIONS[@]}" 2>"$WORK/keyfs.stderr" &
  KEYFS_PID=$!
  if ! wait_until 20 is_serving "$MNT"; then
    echo "keyfs did not mount; its stderr:" >&2
    cat "$WORK/keyfs.stderr" >&2
    exit 1
  fi
}

# stop_keyfs [COMMAND...]: unmounts (default fusermount3 -u) and checks that
# keyfs exits 0 and the mount is gone.
stop_keyfs() {
  if [ $# -eq 0 ]; then set -- fusermount3 -u "$MNT"; fi
  "$@"
  local status=0
  wait "$KEYFS_PID" || status=$?
  KEYFS_PID=
  check "keyfs exits 0 after: $*" [ "$status" -eq 0 ]
  check "no mount left after: $*" eval "! is_mounted '$MNT'"
}

# tree_state DIR: everything a remount must keep, one line per name: type,
# mode, owner, size, link count, mtime and ctime to the nanosecond, symlink
# target, contents' checksum, extended attributes. (Access times are left
# out: reading the files to checksum them moves them.)
tree_state() {
  (cd "$1" && find . -printf '%p %y %m %U:%G %s %n %T@ %C@ %l\n' | LC_ALL=C sort &&
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r md5sum &&
    getfattr -R -h -d -m '^user\.' . 2>/dev/null)
}

# check NAME COMMAND...: one assertion.
check() {
  local name=$1; shift
  if "$@"; then
    PASSED=$((PASSED + 1))
  else
    FAILED=$((FAILED + 1))
    echo "FAILED: $name" >&2
    # What the daemon warned of last, to tell a cause from CI output alone.
    if [ -s "$WORK/keyfs.stderr" ]; then
      grep -E ' (warning|error|critical) \[' "$WORK/keyfs.stderr" | tail -n 5 | sed 's/^/  keyfs: /' >&2
    fi
  fi
}

finish() {
  echo "$(basename "$0" .sh): $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
