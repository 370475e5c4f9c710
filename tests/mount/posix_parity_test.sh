#!/usr/bin/env bash
# POSIX parity: one session of real shell tools, run in a plain directory on
# the host filesystem and in a keyfs mount; their outputs and exit statuses
# must be the same, line for line (in the style of mergerfs's tests).
source "$(dirname "$0")/lib.sh" "$1"

# step DESCRIPTION COMMAND...: runs COMMAND through bash, prints its output
# (stdout and stderr) and exit status.
step() {
  local description=$1; shift
  echo "## $description"
  bash -c "$*" 2>&1
  echo "exit=$?"
}

session() {
  step "write and read" 'echo hello > greeting; cat greeting'
  step "append" "printf 'a\nb\n' >> greeting; cat greeting; wc -c greeting"
  step "overwrite an existing file (O_TRUNC)" 'printf "a much longer first text\n" > ow; cat ow; printf "x\n" > ow; cat ow; wc -c ow'
  step "O_APPEND from two descriptors" 'exec 5>>ap 6>>ap; echo one >&5; echo two >&6; echo three >&5; exec 5>&- 6>&-; cat ap'
  step "read-write open without truncation" 'printf 0123456789 > rw; exec 7<>rw; printf AB >&7; exec 7>&-; cat rw; echo'
  step "mkdir -p" 'mkdir -p users/42/photos; ls users; ls -d users/42/photos'
  step "mkdir existing" 'mkdir users'
  step "cp" 'cp greeting users/42/; cat users/42/greeting'
  step "mv" 'mv greeting renamed; ls; cat greeting'
  step "hard link" 'ln renamed hard; stat -c "%h %s %F" renamed hard'
  step "hard link to a directory" 'ln users hardtodir'
  step "symlink" 'ln -s renamed soft; readlink soft; cat soft; stat -c "%F %s" soft'
  step "dangling symlink" 'ln -s nowhere dangling; cat dangling; readlink dangling'
  step "ls -l" 'ls -ln --time-style=+ | tail -n +2'
  step "ls -la of a subdirectory" 'ls -lan --time-style=+ users | tail -n +2'
  step "truncate" 'truncate -s 10 renamed; wc -c renamed; truncate -s 3 renamed; od -c renamed'
  step "sparse file" 'truncate -s 100K sparse; stat -c %s sparse; cmp sparse <(head -c 102400 /dev/zero) && echo zeros'
  step "dd" 'dd if=/dev/zero of=zeros bs=4k count=10 status=none; stat -c %s zeros'
  step "overwrite in the middle" 'printf XY | dd of=zeros bs=1 seek=5000 conv=notrunc status=none; od -An -c -j 4998 -N 6 zeros'
  step "fallocate" 'fallocate -l 1M prealloc; stat -c %s prealloc; fallocate -o 2M -l 4096 prealloc; stat -c %s prealloc; cmp prealloc <(head -c 2101248 /dev/zero) && echo zeros'
  step "fallocate keep size and punch hole" 'fallocate -n -l 3M prealloc; stat -c %s prealloc; head -c 8192 /dev/urandom > rnd; cp rnd punched; fallocate -p -o 1000 -l 4000 punched; stat -c %s punched; od -An -tx1 -j 1000 -N 4000 punched | tr -s " \n" | head -c 20; echo; cmp <(head -c 1000 rnd) <(head -c 1000 punched) && echo head-kept'
  step "mmap write and read" 'python3 -c "
import mmap, os
fd = os.open(\"mapped\", os.O_CREAT | os.O_RDWR, 0o644)
os.ftruncate(fd, 8192)
m = mmap.mmap(fd, 8192)
m[4090:4100] = b\"0123456789\"
m.flush(); m.close(); os.close(fd)
print(open(\"mapped\", \"rb\").read()[4088:4102])
" 2>/dev/null || echo "(python3 not installed)"'
  step "cp -a keeps modes, times and links" 'mkdir -p tree/sub; echo 1 > tree/sub/f; chmod 600 tree/sub/f; ln -s sub/f tree/link; touch -d "2001-01-01" tree/sub/f; cp -a tree tree2; stat -c "%a %y %F" tree2/sub/f; stat -c "%a %F" tree2/link; readlink tree2/link'
  step "touch -d" 'touch -d "2020-01-02 03:04:05.123456789" renamed; stat -c "%y %x" renamed'
  step "touch -m and -a" 'touch -m -d "2021-06-07 08:09:10" renamed; touch -a -d "2019-01-01 00:00:00" renamed; stat -c "%y | %x" renamed'
  step "touch a new file" 'touch new-empty; stat -c "%s %F" new-empty'
  step "chmod" 'chmod 640 renamed; stat -c %a renamed; chmod u+s,g+s renamed; stat -c %A renamed; chmod 755 users; stat -c %a users'
  step "setgid directory" 'mkdir sg; chmod 2775 sg; mkdir sg/child; stat -c %A sg/child'
  step "chown" 'chown 1234:5678 renamed; stat -c "%u %g" renamed; chown 0:0 renamed'
  step "xattr set and get" 'setfattr -n user.color -v blue renamed; getfattr -n user.color renamed; getfattr -d renamed'
  step "xattr list and remove" 'setfattr -n user.size -v 10 renamed; getfattr -d renamed; setfattr -x user.color renamed; getfattr -n user.color renamed'
  step "xattr on a directory" 'setfattr -n user.dir -v yes users; getfattr -n user.dir users'
  step "xattr create and replace flags" 'python3 -c "
import os
os.setxattr(\"renamed\", \"user.flag\", b\"1\", os.XATTR_CREATE)
try: os.setxattr(\"renamed\", \"user.flag\", b\"2\", os.XATTR_CREATE)
except OSError as e: print(e.strerror)
try: os.setxattr(\"renamed\", \"user.nope\", b\"2\", os.XATTR_REPLACE)
except OSError as e: print(e.strerror)
print(os.getxattr(\"renamed\", \"user.flag\"))
" 2>/dev/null || echo "(python3 not installed)"'
  step "find" 'find . | sort; find . -type l | sort; find . -name "*.txt"'
  step "tar round trip" 'tar cf archive.tar users renamed soft; mkdir x; tar xf archive.tar -C x; diff -r users x/users && echo same; tar tf archive.tar | sort'
  step "rsync -a" 'touch -d "2022-02-02 02:02:02" users/42/greeting; rsync -a users/ copy/; diff -r users copy && echo same; stat -c "%a %y" copy/42/greeting'
  step "rsync --delete" 'rm users/42/greeting; rsync -a --delete users/ copy/; find copy | sort'
  step "mkfifo" 'mkfifo pipe; stat -c %F pipe; (echo through-fifo > pipe &); cat pipe; wait'
  step "cat a directory" 'cat users'
  step "rmdir non-empty" 'rmdir users'
  step "rmdir a file" 'rmdir renamed'
  step "rm a directory without -r" 'rm users'
  step "move a directory into itself" 'mkdir -p a/b; mv a a/b/; ls a/b'
  step "rename over a non-empty directory" 'mkdir -p d1 d2/inner; mv -T d1 d2'
  step "rename a directory over an empty one" 'mkdir -p e1/kept e2; mv -T e1 e2; ls e2'
  step "rename a file over a directory" 'mv -T renamed d2'
  step "rename replaces a file" 'echo new > r1; echo old > r2; mv r1 r2; cat r2'
  step "renameat2 noreplace" "echo a > n1; echo b > n2; $RENAMEAT2 noreplace n1 n2; cat n1 n2; $RENAMEAT2 noreplace n1 n3; ls n1 n3"
  step "renameat2 exchange" "echo one > x1; mkdir x2; $RENAMEAT2 exchange x1 x2; stat -c %F x1 x2; cat x2"
  step "noclobber uses O_EXCL" 'set -C; echo again > r2; cat r2'
  step "names of 255 and 256 bytes" "touch $(printf 'n%.0s' {1..255}) && echo ok255; touch $(printf 'n%.0s' {1..256}); ls | grep -c nnnnnnnnnn"
  step "unlinked open file is still readable" 'echo keep-me > tmpf; exec 3<tmpf; rm tmpf; cat <&3; ls tmpf'
  step "write to an unlinked open file" 'exec 4<>tmpw; rm tmpw; echo data >&4; cat /proc/self/fd/4 2>/dev/null | head -c 0; echo done'
  step "rm -r" 'rm -r users copy x a tree tree2; ls'
  step "final listing" 'find . -printf "%y %m %n %s %P\n" | grep -v -e " zeros$" | sort'
}

mkdir -p "$WORK/ref"
(cd "$WORK/ref" && session) > "$WORK/ref.out"
sed -i "s#$WORK/ref#ROOT#g" "$WORK/ref.out"

start_keyfs -o max_memory=256M
mkdir "$MNT/ws"
(cd "$MNT/ws" && session) > "$WORK/keyfs.out"
sed -i "s#$MNT/ws#ROOT#g" "$WORK/keyfs.out"

if diff -u "$WORK/ref.out" "$WORK/keyfs.out" > "$WORK/diff"; then
  check "every step matches a plain directory" true
else
  check "every step matches a plain directory" false
  cat "$WORK/diff" >&2
fi
check "the session ran every step" \
  [ "$(grep -c '^## ' "$WORK/keyfs.out")" -eq "$(grep -c '^  step "' "$0")" ]
# ... through the request path asked for (io_uring by default).
expected_path=io_uring
case ",${KEYFS_TEST_OPTIONS:-}," in *,io_uring=no,*) expected_path=epoll ;; esac
check "requests went through $expected_path" \
  grep -qx "request_path:$expected_path" "$MNT/.keyfs/info"
stop_keyfs
finish
