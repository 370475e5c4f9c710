#!/usr/bin/env bash
# keyfs-ctl config (issue 13): the live options of a running mount.
#  - config get lists them as mounted; set changes one until unmount, and
#    the change is logged;
#  - shrinking max_memory below what is cached evicts down to it, and
#    writes go on under the new limit (back-pressure), data intact;
#  - a bad value, an option fixed at mount, an unknown name are refused in
#    the words `keyfs -o` uses, by keyfs-ctl and by keyfs itself (a raw
#    setxattr), and nothing changes;
#  - a remount takes its options from its command line again.
source "$(dirname "$0")/lib.sh" "$1"

info() { sed -n "s/^$1://p" "$MNT/.keyfs/info"; }
# What the budget counts as held (the idle buffer pool is free for it).
in_use() { echo $(( $(info used_memory) - $(info used_memory_pool) )); }
ctl() { "$KEYFS_CTL" "$@"; }
# ctl_fails STATUS TEXT ARGS...: keyfs-ctl exits STATUS and says TEXT.
ctl_fails() {
  local status=$1 text=$2 got=0; shift 2
  "$KEYFS_CTL" "$@" > "$WORK/ctl.out" 2> "$WORK/ctl.err" || got=$?
  [ "$got" -eq "$status" ] && grep -qF -- "$text" "$WORK/ctl.err"
}
# What `keyfs -o OPTION` says about OPTION (it fails before mounting).
mount_error() { "$KEYFS" "$WORK/nowhere" -f -o "store=$WORK/nostore,$1" 2>&1 >/dev/null | head -n 1 | sed 's/^keyfs: //'; }

start_keyfs -o max_memory=64M,block_size=256K,flush_delay=1s

expected="max_memory:64M
flush_delay:1s
appendfsync:everysec
auto_rewrite_percentage:100
auto_rewrite_min_size:64M
log_level:info"
check "config get lists the live options as mounted" [ "$(ctl config get "$MNT")" = "$expected" ]
check "config get NAME prints one" [ "$(ctl config get "$MNT" max_memory)" = 64M ]

# --- max_memory: shrink under what is cached ------------------------------------
mkdir -p "$WORK/src"
for i in 1 2 3 4 5 6; do head -c 8M /dev/urandom > "$WORK/src/f$i"; done
cp "$WORK/src"/f* "$MNT/"
check "48 MiB written and saved" wait_until 30 eval '[ "$(info dirty_bytes)" -eq 0 ]'
check "... and cached: more than 16 MiB in use" [ "$(in_use)" -gt $((16 << 20)) ]
check "config set max_memory 16M" eval "ctl config set '$MNT' max_memory 16M > '$WORK/set.out'"
check "... says what changed" grep -qx "max_memory: 64M -> 16M (until unmount)" "$WORK/set.out"
check "... .keyfs/info has the new limit" [ "$(info max_memory)" -eq $((16 << 20)) ]
check "... memory is evicted down to it" wait_until 20 eval '[ "$(in_use)" -le $((16 << 20)) ]'
check "... the change is logged" grep -q "config: max_memory changed from 64M to 16M" "$WORK/keyfs.stderr"
for i in 7 8 9 10 11 12; do head -c 8M /dev/urandom > "$WORK/src/f$i"; done
check "48 MiB more written under the 16M limit" cp "$WORK/src"/f7 "$WORK/src"/f8 "$WORK/src"/f9 \
  "$WORK/src"/f10 "$WORK/src"/f11 "$WORK/src"/f12 "$MNT/"
check "... memory within it" wait_until 20 eval '[ "$(in_use)" -le $((16 << 20)) ]'
sync; echo 3 > /proc/sys/vm/drop_caches
check "every file reads back identical" eval "(for f in '$WORK/src'/f*; do cmp -s \"\$f\" '$MNT'/\$(basename \"\$f\") || exit 1; done)"
check "config set max_memory 128M grows it" eval "ctl config set '$MNT' max_memory 128M > /dev/null && [ \$(info max_memory) -eq $((128 << 20)) ]"

# --- the other live options -------------------------------------------------------
check "config set flush_delay 0" eval "ctl config set '$MNT' flush_delay 0 > /dev/null && [ \"\$(ctl config get '$MNT' flush_delay)\" = 0s ]"
check "config set appendfsync always: the journal syncs every commit" \
  eval "ctl config set '$MNT' appendfsync always > /dev/null && [ \"\$(info appendfsync)\" = always ]"
check "config set auto_rewrite_percentage 0" eval "ctl config set '$MNT' auto_rewrite_percentage 0 > /dev/null"
check "config set auto_rewrite_min_size 1G" eval "ctl config set '$MNT' auto_rewrite_min_size 1G > /dev/null"
check "config set log_level error" eval "ctl config set '$MNT' log_level error > /dev/null"
check "... logged before the log goes quiet" grep -q "config: log_level changed from info to error" "$WORK/keyfs.stderr"
check "config set flush_delay 2s" eval "ctl config set '$MNT' flush_delay 2s > /dev/null"
check "... not logged at log_level error" eval "! grep -q 'flush_delay changed from 0s to 2s' '$WORK/keyfs.stderr'"
check "config set log_level warn" eval "ctl config set '$MNT' log_level warn > /dev/null"
expected="max_memory:128M
flush_delay:2s
appendfsync:always
auto_rewrite_percentage:0
auto_rewrite_min_size:1G
log_level:warn"
check "config get shows every change" [ "$(ctl config get "$MNT")" = "$expected" ]
echo after > "$MNT/after-changes"
check "a write is still durable with them" eval "ctl sync '$MNT' && [ \"\$(cat '$MNT/after-changes')\" = after ]"
check "config set log_level info: logged once the log is open again" \
  eval "ctl config set '$MNT' log_level info > /dev/null && grep -q 'config: log_level changed from warn to info' '$WORK/keyfs.stderr'"

# --- bad input: refused, nothing changed -----------------------------------------
# Back to everysec: the 60000 creates below would otherwise each wait for an
# fsync of the journal (a minute on this disk) for nothing they check.
check "config set appendfsync everysec" eval "ctl config set '$MNT' appendfsync everysec > /dev/null"
before=$(ctl config get "$MNT")
check "a bad value: exit 2, in keyfs -o's words" \
  ctl_fails 2 "$(mount_error max_memory=lots)" config set "$MNT" max_memory lots
check "a bad appendfsync" ctl_fails 2 "$(mount_error appendfsync=sometimes)" config set "$MNT" appendfsync sometimes
check "an option fixed at mount" ctl_fails 2 "option 'block_size' can only be set at mount" config set "$MNT" block_size 1M
check "... and config get of it" ctl_fails 2 "can only be set at mount" config get "$MNT" store
check "an unknown name" ctl_fails 2 "$(mount_error bogus=1)" config set "$MNT" bogus 1
check "a missing value" ctl_fails 2 "usage: keyfs-ctl config" config set "$MNT" max_memory
check "an unknown config command" ctl_fails 2 "usage: keyfs-ctl config" config frob "$MNT"
check "not a keyfs mount" ctl_fails 2 "is not a keyfs mount" config get "$WORK" max_memory
check "keyfs refuses a bad value itself (EINVAL)" \
  eval "! setfattr -n user.keyfs.config.max_memory -v lots '$MNT' 2> '$WORK/err' && grep -q 'Invalid argument' '$WORK/err'"
check "... and an option fixed at mount (EPERM)" \
  eval "! setfattr -n user.keyfs.config.block_size -v 1M '$MNT' 2> '$WORK/err' && grep -q 'not permitted' '$WORK/err'"
check "... and an unknown one" eval "! setfattr -n user.keyfs.config.bogus -v 1 '$MNT' 2> /dev/null"
# A namespace larger than the smallest max_memory: a limit below it would
# make every new file fail, so it is refused.
mkdir "$MNT/many"
(cd "$MNT/many" && seq 1 60000 | xargs touch)
fixed=$(( $(in_use) - $(info used_memory_blocks) - $(info used_memory_io) ))
check "60000 names take more than 4 MiB ($fixed bytes)" [ "$fixed" -gt $((4 << 20)) ]
check "max_memory below the namespace: exit 1, saying why" \
  ctl_fails 1 "max_memory 4M is less than what keyfs holds and cannot evict" config set "$MNT" max_memory 4M
check "nothing changed" [ "$(ctl config get "$MNT")" = "$before" ]
check "refusals are logged as such" grep -q "config set max_memory lots refused, nothing changed" "$WORK/keyfs.stderr"
stop_keyfs

# --- until unmount ------------------------------------------------------------------
start_keyfs -o max_memory=64M
check "a remount has its command line's options again" \
  eval "[ \"\$(ctl config get '$MNT' max_memory)\" = 64M ] && [ \"\$(ctl config get '$MNT' appendfsync)\" = everysec ]"
check "... and the data" eval "(for f in '$WORK/src'/f*; do cmp -s \"\$f\" '$MNT'/\$(basename \"\$f\") || exit 1; done)"
stop_keyfs
finish
