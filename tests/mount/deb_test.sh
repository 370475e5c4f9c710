#!/usr/bin/env bash
# Installed like a system program (issue 13): `cpack -G DEB` makes a .deb of
# this build with the right dependencies; it installs with dpkg -i, `mount -t
# fuse.keyfs` mounts with the installed keyfs (through mount.fuse3), `man -l`
# renders each installed page; then the package is removed. The package and
# any daemon it started are removed on every exit path.
source "$(dirname "$0")/lib.sh" "$1"

if dpkg-query -W -f='${Status}' keyfs 2>/dev/null | grep -q "install ok installed"; then
  echo "a keyfs package is installed already; this test installs and removes its own" >&2
  exit 1
fi
INSTALLED=0
DAEMON_PID=
remove_package() {
  [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
  grep -qs " $MNT " /proc/mounts && umount -l "$MNT"
  [ "$INSTALLED" -eq 1 ] && dpkg -r keyfs > /dev/null 2>&1
}
trap 'remove_package; cleanup' EXIT

(cd "$BUILD_DIR" && cpack -G DEB -B "$WORK/pkg") > "$WORK/cpack.log" 2>&1
DEB=$(ls "$WORK"/pkg/keyfs_*.deb 2>/dev/null | head -n 1)
check "cpack -G DEB builds a .deb" [ -n "$DEB" ]
[ -n "$DEB" ] || { cat "$WORK/cpack.log" >&2; finish; exit 1; }
depends=$(dpkg-deb -f "$DEB" Depends)
echo "Depends: $depends"
check "it depends on fuse3 (mount.fuse3, fusermount3)" eval "echo '$depends' | grep -Eq '(^|, )fuse3(,|$| )'"
check "... and on the libraries keyfs links (libfuse3, liburing, libc)" \
  eval "echo '$depends' | grep -q libfuse3 && echo '$depends' | grep -q liburing && echo '$depends' | grep -q libc6"
contents=$(dpkg-deb -c "$DEB")
for path in usr/bin/keyfs usr/bin/keyfs-ctl usr/bin/keyfs-check usr/share/man/man8/keyfs.8.gz \
            usr/share/man/man1/keyfs-ctl.1.gz usr/share/man/man1/keyfs-check.1.gz; do
  check "it holds /$path" eval "echo \"\$contents\" | grep -q ' ./$path\$'"
done

INSTALLED=1
check "dpkg -i installs it" eval "dpkg -i '$DEB' > '$WORK/dpkg.log' 2>&1"
check "mount -t fuse.keyfs mounts with the installed keyfs" \
  eval "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin mount -t fuse.keyfs '$STORE' '$MNT' -o max_memory=64M"
DAEMON_PID=$(sed -n 's/^keyfs pid \([0-9]*\) .*/\1/p' "$STORE/LOCK" 2>/dev/null)
check "... and it is /usr/bin/keyfs" [ "$(readlink "/proc/$DAEMON_PID/exe" 2>/dev/null)" = /usr/bin/keyfs ]
echo hello > "$MNT/greeting"
check "the mount works" eval "/usr/bin/keyfs-ctl sync '$MNT' && [ \"\$(cat '$MNT/greeting')\" = hello ]"
check "umount" umount "$MNT"
check "... and keyfs exits" wait_until 60 eval "! process_alive '$DAEMON_PID'"
DAEMON_PID=
for page in /usr/share/man/man8/keyfs.8.gz /usr/share/man/man1/keyfs-ctl.1.gz \
            /usr/share/man/man1/keyfs-check.1.gz; do
  check "man -l $page renders, without warnings" \
    eval "MANWIDTH=80 man -l '$page' > '$WORK/page' 2> '$WORK/page.err' && [ ! -s '$WORK/page.err' ] && grep -q '^NAME' '$WORK/page'"
done
check "dpkg -r removes it" eval "dpkg -r keyfs > /dev/null 2>&1"
INSTALLED=0
check "... /usr/bin/keyfs is gone" [ ! -e /usr/bin/keyfs ]
finish
