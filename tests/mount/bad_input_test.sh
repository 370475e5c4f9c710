#!/usr/bin/env bash
# Bad options and paths: one clear line on stderr, a non-zero exit status,
# nothing mounted, no daemon left. Also --help, --version and a second
# keyfs on the same store.
source "$(dirname "$0")/lib.sh" "$1"

# refused DESCRIPTION EXPECTED_TEXT ARGS...: keyfs must fail before mounting.
refused() {
  local description=$1 expected=$2; shift 2
  local status=0
  timeout 20 "$KEYFS" "$@" > "$WORK/out" 2> "$WORK/err" || status=$?
  check "$description: non-zero exit" [ "$status" -ne 0 ]
  check "$description: not a timeout" [ "$status" -ne 124 ]
  check "$description: one line on stderr" [ "$(wc -l < "$WORK/err")" -eq 1 ]
  check "$description: says '$expected'" grep -qF -- "$expected" "$WORK/err"
  check "$description: nothing mounted" eval "! is_mounted '${TARGET:-$MNT}'"
  [ "$FAILED" -eq 0 ] || { echo "stderr was:"; cat "$WORK/err"; } >&2
}

refused "unknown option" "option 'bogus': unknown option" "$MNT" -o bogus
refused "malformed size" "option 'max_memory': 'ten' is not a size" "$MNT" -o max_memory=ten
refused "size too small" "must be at least 4M" "$MNT" -o max_memory=100K
refused "bad block size" "power of two" "$MNT" -o block_size=5000
refused "bad log level" "is not a log level" "$MNT" -o log_level=chatty
refused "a swap option without mode=swap" "belongs to mode=swap" "$MNT" -o swap_file=/tmp/swap
refused "a page_size that is not a power of two" "power of two from 512" "$MNT" -o mode=swap,page_size=3000
refused "bad fsync policy" "must be always, everysec or no" "$MNT" -o appendfsync=sometimes
refused "unknown flag" "unknown flag '--frobnicate'" "$MNT" --frobnicate
refused "no mount point" "no mount point given" -o max_memory=1G
refused "missing mount point" "mount point $WORK/absent: No such file or directory" "$WORK/absent"
touch "$WORK/plainfile"
refused "mount point is a file" "Not a directory" "$WORK/plainfile"
refused "store inside the mount point" "cannot be inside the mount point" "$MNT" -o "store=$MNT/state"
refused "store that cannot be created" "cannot create store directory $WORK/plainfile" \
  "$MNT" -o "store=$WORK/plainfile/store"
refused "store that cannot be created (foreground)" "cannot create store directory" \
  "$MNT" -f -o "store=$WORK/plainfile/store"

help_status=0
"$KEYFS" --help > "$WORK/help" 2>&1 || help_status=$?
check "--help exits 0" [ "$help_status" -eq 0 ]
for option in store= max_memory= block_size= log= log_level= allow_other " -f " "-d, --debug"; do
  check "--help lists '$option'" grep -qF -- "$option" "$WORK/help"
done
check "--version names keyfs and libfuse" eval "'$KEYFS' --version | grep -q 'keyfs .* (libfuse 3'"

# A second keyfs on a store in use fails at once and names the first.
start_keyfs -o max_memory=64M
mkdir -p "$WORK/mnt2"
EXTRA_MOUNTS="$WORK/mnt2"
TARGET=$WORK/mnt2 refused "second keyfs on the same store" "is in use by another keyfs (" \
  "$WORK/mnt2" -o "store=$STORE"
check "the message names the first one's pid" grep -qF "pid $KEYFS_PID" "$WORK/err"
check "the first keyfs still serves" eval "echo still > '$MNT/f' && [ \"\$(cat '$MNT/f')\" = still ]"
stop_keyfs
finish
