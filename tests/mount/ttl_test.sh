#!/usr/bin/env bash
# Files' lifetimes (issue 13 item 1, Redis's EXPIRE/TTL/PERSIST) through a
# real mount, with real shell tools:
#  - user.keyfs.ttl and user.keyfs.expire_at set, read and remove a lifetime;
#    bad values (negative, not a number, on a directory) get EINVAL and
#    change nothing;
#  - the lifetime belongs to the inode: it follows rename and hard links;
#  - when it ends, an inotifywait watcher of the directory gets the delete
#    event (keyfs removes it through the mount), a name the kernel had cached
#    (for a day, by keyfs's entry_timeout) stops resolving, `ls` no longer
#    shows it, every name of it is gone, and a remount does not bring it
#    back; a file met by a lookup after its end is gone too (lazy expiry);
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

# A short lifetime running out, watched by inotifywait. Both names are in the
# kernel's cache: `stat` would go on finding the file for a day if the
# kernel were not told.
echo short > "$MNT/dir/short"
ln "$MNT/dir/short" "$MNT/other/short-link"
stat "$MNT/dir/short" "$MNT/other/short-link" > /dev/null
inotifywait -m -e delete --format '%e %w%f' "$MNT/dir" "$MNT/other" \
  > "$WORK/events" 2> "$WORK/inotify.err" &
WATCHER=$!
check "inotifywait watches $MNT/dir" wait_until 10 grep -q "Watches established" "$WORK/inotify.err"
expired_before=$(info expired_keys)
check "setfattr user.keyfs.ttl 1" setfattr -n user.keyfs.ttl -v 1 "$MNT/dir/short"
check "when it runs out, the watcher gets the delete event" \
  wait_until 15 grep -qx "DELETE $MNT/dir/short" "$WORK/events"
check "... for its other name too" wait_until 5 grep -qx "DELETE $MNT/other/short-link" "$WORK/events"
kill "$WATCHER" 2>/dev/null; wait "$WATCHER" 2>/dev/null
check "the cached name no longer resolves" absent "$MNT/dir/short"
check "ls no longer shows it" eval "! ls '$MNT/dir' | grep -qx short"
check "... nor its other name" absent "$MNT/other/short-link"
check "... and it cannot be read" eval "! cat '$MNT/dir/short' 2>/dev/null"
check "counted in expired_keys" [ "$(info expired_keys)" -gt "$expired_before" ]
check "the name can be used again" eval "echo new > '$MNT/dir/short' && [ \"\$(cat '$MNT/dir/short')\" = new ]"
check "... by a file with no lifetime" eval '[ -z "$(ttl_of "$MNT/dir/short")" ]'

# Many lifetimes ending while another process creates and removes files in
# the same directory: the expiry thread's unlinks wait for the directory's
# lock, which that process's requests hold while keyfs answers them.
mkdir "$MNT/busy"
failed_before=$(info expired_unlinks_failed_total)
for i in $(seq 1 300); do echo "$i" > "$MNT/busy/e$i"; done
for i in $(seq 1 300); do setfattr -n user.keyfs.ttl -v 1 "$MNT/busy/e$i"; done
(for i in $(seq 1 3000); do echo x > "$MNT/busy/w$((i % 50))"; rm -f "$MNT/busy/w$(((i + 25) % 50))"; done) &
WRITER=$!
only_long_lifetimes_left() { [ "$(info keys_with_ttl)" = 1 ]; }  # dir/link's
check "300 lifetimes end while another process works in their directory" \
  wait_until 60 only_long_lifetimes_left
check "... that process finishes" wait_until 120 eval "! kill -0 $WRITER 2>/dev/null"
wait "$WRITER"
check "... and none of the 300 is left" eval '[ -z "$(ls "$MNT/busy" | grep "^e")" ]'
check "... every one removed through the mount (none by keyfs itself)" \
  [ "$(info expired_unlinks_failed_total)" = "$failed_before" ]

# A lifetime that ends while unmounted; one that does not; a rewrite between.
echo later > "$MNT/dir/later"
check "a file with 2 s to live" setfattr -n user.keyfs.ttl -v 2 "$MNT/dir/later"
later_at=$(expire_at_of "$MNT/dir/later")
echo "sleep" > "$MNT/dir/expired-gone"  # expired and removed before the rewrite
setfattr -n user.keyfs.ttl -v 0 "$MNT/dir/expired-gone"
check "ttl 0 removes the file (as EXPIRE with a past time)" wait_until 5 absent "$MNT/dir/expired-gone"

# Lazy expiry: a name the kernel has not cached is looked up after its end.
echo lazy > "$MNT/dir/lazy"
check "expire_at a second from now" setfattr -n user.keyfs.expire_at -v $(( $(date +%s) + 1 )) "$MNT/dir/lazy"
echo 2 > /proc/sys/vm/drop_caches  # forget cached names: the next access looks it up
check "after its end a lookup does not find it" wait_until 10 absent "$MNT/dir/lazy"
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
