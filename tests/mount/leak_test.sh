#!/usr/bin/env bash
# Issue 9, regression: deleted files are freed. Once any existing file has
# been opened (keyfs answers that OPEN with ENOSYS), the kernel sends no
# RELEASE for any file, not even one made by CREATE; keyfs counted a handle
# for created files that then never dropped, so every such file outlived its
# unlink and FORGET with all its bytes: 100 rounds of "write 1 MiB, delete"
# left 105 MB in use and a 64M mount returned ENOSPC at round 64. Here the
# measured sequence runs, and df, the inode count and the daemon's RSS come
# back to where they were.
source "$(dirname "$0")/lib.sh" "$1"

field() { "$KEYFS_CTL" status "$MNT" | sed -n "s/^$1://p"; }
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$KEYFS_PID/status"; }
# df shows the store's disk; what keyfs itself holds there is the store's
# live bytes.
df_used_kib() { echo $(( $(field store_live_bytes) / 1024 )); }

start_keyfs -o max_memory=64M
echo existing > "$MNT/existing"
cat "$MNT/existing" > /dev/null  # the first open: answered ENOSYS, no RELEASE from now on
# One round first, so that the baseline includes what a round leaves for
# good (the inode table's slots, the journal's buffer, malloc's arenas).
head -c 1M /dev/urandom > "$MNT/warmup" && rm "$MNT/warmup"
wait_until 10 eval '[ "$(field inodes)" -eq 2 ]'
inodes_before=$(field inodes)
used_before=$(df_used_kib)
memory_before=$(field used_memory)
rss_before=$(rss_kib)

failed=0
for i in $(seq 1 100); do
  { head -c 1M /dev/urandom > "$MNT/f$i" && rm "$MNT/f$i"; } 2>> "$WORK/errors" || failed=$((failed + 1))
done
check "100 rounds of write 1 MiB + delete in a 64M mount all succeed ($failed failed)" [ "$failed" -eq 0 ]
check "... with no ENOSPC" eval "! grep -q 'No space' '$WORK/errors'"
# FORGET comes from the kernel asynchronously, after the unlink.
check "the inode count returns to baseline ($inodes_before)" \
  wait_until 10 eval '[ "$(field inodes)" -eq "$inodes_before" ]'
check "used_memory returns to baseline ($memory_before, now $(field used_memory))" \
  wait_until 10 eval '[ "$(field used_memory)" -le "$memory_before" ]'
check "the store's live bytes return to baseline ($used_before KiB, now $(df_used_kib))" \
  wait_until 10 eval '[ "$(df_used_kib)" -le "$used_before" ]'
rss_after=$(rss_kib)
if ldd "$KEYFS" | grep -q -e libasan -e libtsan; then
  # A sanitizer's allocator holds freed memory back on purpose (ASan's
  # quarantine, TSan's shadow): RSS says nothing about keyfs there.
  echo "RSS: $rss_before KiB before, $rss_after KiB after (sanitizer build: not checked)"
else
  check "RSS returns to baseline: $rss_before KiB before, $rss_after KiB after (allowed +8 MiB)" \
    [ "$rss_after" -le $((rss_before + 8192)) ]
fi

# The same through cp (CREATE with O_TRUNC) and with a file kept open while
# it is deleted: it stays readable until closed, then it is freed.
head -c 1M /dev/urandom > "$WORK/src"
for i in $(seq 1 20); do cp "$WORK/src" "$MNT/c$i" && rm "$MNT/c$i"; done
exec 7< <(true)
exec 7>"$MNT/held"
printf 'held open' >&7
rm "$MNT/held"
check "an unlinked file still open is still there" [ "$(cat /proc/self/fd/7 2>/dev/null)" = "held open" ]
check "... and counted" [ "$(field inodes)" -eq $((inodes_before + 1)) ]
exec 7>&-
check "after its close it is freed" wait_until 10 eval '[ "$(field inodes)" -eq "$inodes_before" ]'
stop_keyfs
finish
