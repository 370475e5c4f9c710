#!/usr/bin/env bash
# max_memory is honoured: df shows it, writing past it fails with ENOSPC (as a
# full tmpfs does), what was written before is intact, and deleting frees room.
source "$(dirname "$0")/lib.sh" "$1"
start_keyfs -o max_memory=32M

size_kib=$(df -k --output=size "$MNT" | tail -1 | tr -d ' ')
check "df shows max_memory as the size" [ "$size_kib" -eq $((32 * 1024)) ]
echo precious > "$MNT/keep"
used_before=$(df -k --output=used "$MNT" | tail -1 | tr -d ' ')
dd if=/dev/urandom of="$MNT/half" bs=1M count=16 status=none
used_after=$(df -k --output=used "$MNT" | tail -1 | tr -d ' ')
check "df used grows by what was written" [ $((used_after - used_before)) -ge $((16 * 1024)) ]
check "and not by much more" [ $((used_after - used_before)) -le $((17 * 1024)) ]

status=0
dd if=/dev/zero of="$MNT/fill" bs=1M count=64 status=none 2> "$WORK/dd.err" || status=$?
check "writing past max_memory fails" [ "$status" -ne 0 ]
check "with ENOSPC" grep -q "No space left on device" "$WORK/dd.err"
check "what fitted was written" [ "$(stat -c %s "$MNT/fill")" -gt $((8 << 20)) ]
check "df reports the mount full" [ "$(df -k --output=avail "$MNT" | tail -1 | tr -d ' ')" -lt 1024 ]
check "earlier data is intact" [ "$(cat "$MNT/keep")" = precious ]
check "creating more files fails too" eval "! (for i in \$(seq 1 5000); do echo x > '$MNT/more'\$i || exit 1; done) 2>/dev/null"

rm -f "$MNT/fill" "$MNT"/more*
check "after deleting, writes work again" dd if=/dev/zero of="$MNT/again" bs=1M count=8 status=none
check "and read back" cmp <(head -c $((8 << 20)) /dev/zero) "$MNT/again"
stop_keyfs
finish
