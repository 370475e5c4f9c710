#!/usr/bin/env bash
# A 100 MiB file written and read back byte for byte; 10,000 small files
# created, listed and removed. Prints the rates it saw (information, not a
# pass/fail timing: speed is measured by scripts/bench).
source "$(dirname "$0")/lib.sh" "$1"
start_keyfs -o max_memory=1G

head -c $((100 << 20)) /dev/urandom > "$WORK/source.bin"
t0=$(date +%s.%N)
cp "$WORK/source.bin" "$MNT/big.bin"
t1=$(date +%s.%N)
check "100 MiB file has its size" [ "$(stat -c %s "$MNT/big.bin")" -eq $((100 << 20)) ]
check "100 MiB file reads back identical" cmp "$WORK/source.bin" "$MNT/big.bin"
t2=$(date +%s.%N)
check "a range in the middle reads back identical" \
  cmp <(tail -c +$((37 << 20)) "$WORK/source.bin" | head -c 5000000) \
      <(tail -c +$((37 << 20)) "$MNT/big.bin" | head -c 5000000)
echo "write 100 MiB: $(echo "100 / ($t1 - $t0)" | bc -l | cut -c1-6) MiB/s, read: $(echo "100 / ($t2 - $t1)" | bc -l | cut -c1-6) MiB/s (cmp included)"
rm "$MNT/big.bin"

mkdir "$MNT/many"
t0=$(date +%s.%N)
(cd "$MNT/many" && for i in $(seq 1 10000); do echo "value $i" > "key$i"; done)
t1=$(date +%s.%N)
check "10,000 files listed" [ "$(ls "$MNT/many" | wc -l)" -eq 10000 ]
check "a file among them has its value" [ "$(cat "$MNT/many/key7321")" = "value 7321" ]
check "ls -l sees all of them" [ "$(ls -l "$MNT/many" | grep -c '^-')" -eq 10000 ]
t2=$(date +%s.%N)
rm -r "$MNT/many"
t3=$(date +%s.%N)
check "removed, nothing left" [ -z "$(ls "$MNT")" ]
echo "create 10,000 files: $(echo "10000 / ($t1 - $t0)" | bc -l | cut -d. -f1)/s (one bash redirection each), rm -r: $(echo "10000 / ($t3 - $t2)" | bc -l | cut -d. -f1)/s"

stop_keyfs
finish
