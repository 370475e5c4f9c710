#!/usr/bin/env bash
# Files' lifetimes (issue 13 item 1, Redis's EXPIRE/TTL/PERSIST) through a
# real mount, with real shell tools:
#  - user.keyfs.ttl and user.keyfs.expire_at set, read and remove a lifetime;
#    bad values (negative, not a number, on a directory) get EINVAL and
#    change nothing;
#  - the lifetime belongs to the inode: it follows rename and hard links;
#  - when it ends, the kernel is told: a name it had cached (for a day, by
#    keyfs's entry_timeout) stops resolving at once; `ls` no longer shows the
#    file, every name of it is gone, and a remount does not bring it back;
#  - a rewrite of the journal and a remount keep lifetimes that have not
#    ended; a file whose lifetime ends while unmounted is gone at mount.
source "$(dirname "$0")/lib.sh" "$1"

info() { sed -n "s/^$1://p" "$MNT/.keyfs/info"; }
ttl_of() { getfattr --only-values -n user.keyfs.ttl "$1" 2>/dev/null; }
expire_at_of() { getfattr --only-values -n user.keyfs.expire_at "$1" 2>/dev/null; }
absent() { [ ! -e "$1" ]; }

start_keyfs
mkdir -p "$MNT/dir" "$MNT/other"
echo value > "$MNT/dir/a"

# Bad values: EINVAL, nothing set.
for bad in -5 abc 1.5 "" " 7" 99999999999999999999; do
  check "ttl '$bad' is refused" eval "! setfattr -n user.keyfs.ttl -v '$bad' '$MNT/dir/a' 2>'$WORK/err'"
  check "... with EINVAL ($(cat "$WORK/err"))" grep -q "Invalid argument" "$WORK/err"
done
check "... and the file has no lifetime" eval '[ -z "$(ttl_of "$MNT/dir/a")" ]'
check "a lifetime on a directory is refused" \
  eval "! setfattr -n user.keyfs.ttl -v 60 '$MNT/dir' 2>'$WORK/err'"
check "... with EINVAL" grep -q "Invalid argument" "$WORK/err"
check "... on the root too" eval "! setfattr -n user.keyfs.ttl -v 60 '$MNT' 2>/dev/null"
check "a file without a lifetime: getfattr finds no ttl" \
  eval "! getfattr -n user.keyfs.ttl '$MNT/dir/a' 2>/dev/null"

# Set, read, follow renames and links, remove.
check "setfattr user.keyfs.ttl 3600" setfattr -n user.keyfs.ttl -v 3600 "$MNT/dir/a"
check "... getfattr reads what is left ($(ttl_of "$MNT/dir/a"))" \
  eval '[ "$(ttl_of "$MNT/dir/a")" -le 3600 ] && [ "$(ttl_of "$MNT/dir/a")" -ge 3590 ]'
now=$(date +%s)
check "... expire_at is about now + 3600 ($(expire_at_of "$MNT/dir/a") vs $now)" \
  eval '[ $(( $(expire_at_of "$MNT/dir/a") - now )) -ge 3590 ] && [ $(( $(expire_at_of "$MNT/dir/a") - now )) -le 3601 ]'
check "counted in keys_with_ttl" [ "$(info keys_with_ttl)" = 1 ]
mv "$MNT/dir/a" "$MNT/other/renamed"
ln "$MNT/other/renamed" "$MNT/dir/link"
check "the lifetime follows rename and hard link" \
  eval '[ -n "$(ttl_of "$MNT/other/renamed")" ] && [ -n "$(ttl_of "$MNT/dir/link")" ]'
check "setfattr -x user.keyfs.ttl removes it (PERSIST)" setfattr -x user.keyfs.ttl "$MNT/dir/link"
check "... both names have none" \
  eval '[ -z "$(ttl_of "$MNT/other/renamed")" ] && [ -z "$(ttl_of "$MNT/dir/link")" ]'
check "... removing it again: ENODATA" eval "! setfattr -x user.keyfs.ttl '$MNT/dir/link' 2>/dev/null"
at=$((now + 7200))
check "setfattr user.keyfs.expire_at" setfattr -n user.keyfs.expire_at -v "$at" "$MNT/dir/link"
check "... reads back the same Unix time" [ "$(expire_at_of "$MNT/dir/link")" = "$at" ]

# A short lifetime running out. Both names are in the kernel's cache, so
# without the notification `stat` would go on finding the file for a day.
echo short > "$MNT/dir/short"
ln "$MNT/dir/short" "$MNT/other/short-link"
stat "$MNT/dir/short" "$MNT/other/short-link" > /dev/null
expired_before=$(info expired_keys)
check "setfattr user.keyfs.ttl 1" setfattr -n user.keyfs.ttl -v 1 "$MNT/dir/short"
check "when it runs out, the cached name stops resolving" wait_until 15 absent "$MNT/dir/short"
told_of_both() { [ "$(info expiry_notifications_total)" -ge 2 ]; }
check "... the kernel is told of both names" wait_until 5 told_of_both
check "ls no longer shows it" eval "! ls '$MNT/dir' | grep -qx short"
check "... nor its other name" absent "$MNT/other/short-link"
check "... and it cannot be read" eval "! cat '$MNT/dir/short' 2>/dev/null"
check "counted in expired_keys" [ "$(info expired_keys)" -gt "$expired_before" ]
check "the name can be used again" eval "echo new > '$MNT/dir/short' && [ \"\$(cat '$MNT/dir/short')\" = new ]"
check "... by a file with no lifetime" eval '[ -z "$(ttl_of "$MNT/dir/short")" ]'

# A lifetime that ends while unmounted; one that does not; a rewrite between.
echo later > "$MNT/dir/later"
check "a file with 2 s to live" setfattr -n user.keyfs.ttl -v 2 "$MNT/dir/later"
later_at=$(expire_at_of "$MNT/dir/later")
echo "sleep" > "$MNT/dir/expired-gone"  # expired and removed before the rewrite
setfattr -n user.keyfs.ttl -v 0 "$MNT/dir/expired-gone"
check "ttl 0 removes the file (as EXPIRE with a past time)" wait_until 5 absent "$MNT/dir/expired-gone"
check "keyfs-ctl rewrite" "$KEYFS_CTL" rewrite "$MNT"
stop_keyfs
check "the journal checks clean" "$KEYFS_CHECK" "$STORE"
check "wait until the 2 s lifetime has ended (Unix time past $later_at)" \
  wait_until 10 eval '[ "$(date +%s)" -gt "$later_at" ]'
start_keyfs
check "after remount: the file whose lifetime ended while unmounted is gone" absent "$MNT/dir/later"
check "... counted in expired_keys" [ "$(info expired_keys)" -ge 1 ]
check "... the expired file did not come back" eval "[ \"\$(cat '$MNT/dir/short')\" = new ]"
check "... the lifetime that has not ended is kept ($(expire_at_of "$MNT/dir/link"))" \
  [ "$(expire_at_of "$MNT/dir/link")" = "$at" ]
check "... on both names" [ "$(expire_at_of "$MNT/other/renamed")" = "$at" ]
stop_keyfs
finish
