#!/usr/bin/env bash
# allow_other lets other users in; mode bits are enforced (keyfs always mounts
# with default_permissions). Uses setpriv to act as user nobody (65534).
source "$(dirname "$0")/lib.sh" "$1"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
chmod 755 "$WORK"  # mktemp made it 0700: let nobody reach the mount point

start_keyfs -o max_memory=64M
echo secret > "$MNT/private"
check "without allow_other another user cannot even look" eval "! as_nobody ls '$MNT' 2>/dev/null"
stop_keyfs

start_keyfs -o max_memory=64M,allow_other
chmod 755 "$MNT"
echo secret > "$MNT/private"; chmod 600 "$MNT/private"
echo public > "$MNT/public"; chmod 644 "$MNT/public"
mkdir "$MNT/closed"; chmod 700 "$MNT/closed"
mkdir "$MNT/open"; chmod 777 "$MNT/open"
mkdir "$MNT/sticky"; chmod 1777 "$MNT/sticky"; echo root-owned > "$MNT/sticky/roots"

check "other user reads a 644 file" [ "$(as_nobody cat "$MNT/public")" = public ]
check "other user cannot read a 600 file" eval "! as_nobody cat '$MNT/private' 2>/dev/null"
check "the refusal is EACCES" eval "as_nobody cat '$MNT/private' 2>&1 | grep -q 'Permission denied'"
check "other user cannot write a 644 file" eval "! as_nobody sh -c 'echo x >> $MNT/public' 2>/dev/null"
check "other user cannot list a 700 directory" eval "! as_nobody ls '$MNT/closed' 2>/dev/null"
check "other user cannot create in the root (755)" eval "! as_nobody touch '$MNT/mine' 2>/dev/null"
check "other user creates in a 777 directory" as_nobody touch "$MNT/open/mine"
check "what they create is theirs" [ "$(stat -c '%u:%g' "$MNT/open/mine")" = "65534:65534" ]
check "other user cannot chmod root's file" eval "! as_nobody chmod 777 '$MNT/public' 2>/dev/null"
check "other user cannot chown" eval "! as_nobody chown 65534 '$MNT/public' 2>/dev/null"
check "sticky bit: other user cannot delete root's file" eval "! as_nobody rm -f '$MNT/sticky/roots' 2>/dev/null"
check "root's file is still there" [ -f "$MNT/sticky/roots" ]
check "other user deletes their own file" as_nobody rm "$MNT/open/mine"
# A write by someone without CAP_FSETID clears set-user-ID and set-group-ID,
# as on any Linux filesystem.
echo x > "$MNT/open/setid" && chmod 6777 "$MNT/open/setid"
as_nobody sh -c "echo y >> '$MNT/open/setid'"
check "a write by another user clears set-user-ID and set-group-ID" \
  [ "$(stat -c %a "$MNT/open/setid")" = 777 ]
# A mount's options are the operator's, even where others may write the root.
chmod 777 "$MNT"
delay=$(getfattr --only-values -n user.keyfs.config.flush_delay "$MNT")
check "other user cannot change a live option (EPERM)" \
  eval "as_nobody setfattr -n user.keyfs.config.flush_delay -v 7s '$MNT' 2>&1 | grep -q 'not permitted'"
check "... nothing changed" [ "$(getfattr --only-values -n user.keyfs.config.flush_delay "$MNT")" = "$delay" ]
check "... keyfs-ctl says who may" \
  eval "as_nobody '$KEYFS_CTL' config set '$MNT' flush_delay 7s 2>&1 | grep -q 'only root or the user keyfs runs as'"
check "... while root may" setfattr -n user.keyfs.config.flush_delay -v 7s "$MNT"
# A file's lifetime and pin are its owner's (or root's), as its mode is:
# being able to write a file is not the right to remove it or hold memory.
echo shared > "$MNT/shared"; chmod 666 "$MNT/shared"
for attr in "user.keyfs.ttl -v 0" "user.keyfs.pin -v 1"; do
  check "another user who may write a root's file cannot set ${attr%% *}" \
    eval "as_nobody setfattr -n $attr '$MNT/shared' 2>&1 | grep -q 'not permitted'"
done
check "... nor remove its lifetime" \
  eval "setfattr -n user.keyfs.ttl -v 3600 '$MNT/shared' && as_nobody setfattr -x user.keyfs.ttl '$MNT/shared' 2>&1 | grep -q 'not permitted'"
check "... the file is still there, its lifetime kept" \
  eval '[ "$(cat "$MNT/shared")" = shared ] && [ -n "$(getfattr --only-values -n user.keyfs.ttl "$MNT/shared")" ]'
mkdir "$MNT/nobodys"; chown 65534:65534 "$MNT/nobodys"
as_nobody sh -c "echo mine > '$MNT/nobodys/own'"
check "the owner may" as_nobody setfattr -n user.keyfs.ttl -v 3600 "$MNT/nobodys/own"
chmod 755 "$MNT"
stop_keyfs

start_keyfs -o max_memory=64M,ro
check "ro: writing fails" eval "! touch '$MNT/x' 2>/dev/null"
check "ro: the error is EROFS" eval "touch '$MNT/x' 2>&1 | grep -q 'Read-only file system'"
stop_keyfs
finish
