#!/usr/bin/env bash
# Several processes at once: writers filling their own directories, a reader
# listing and reading meanwhile, renames crossing directories. keyfs serves
# them all from one event loop; afterwards every file has the bytes written.
source "$(dirname "$0")/lib.sh" "$1"
start_keyfs -o max_memory=512M

writer() {
  local dir=$MNT/w$1
  mkdir -p "$dir"
  for i in $(seq 1 300); do
    head -c $(( (i * 37) % 9000 + 1 )) /dev/urandom > "$WORK/w$1.tmp"
    cp "$WORK/w$1.tmp" "$dir/f$i"
    md5sum < "$WORK/w$1.tmp" | cut -d' ' -f1 > "$WORK/w$1.sum.$i"
  done
  # Move a third of them into a shared directory, under unique names.
  mkdir -p "$MNT/shared"
  for i in $(seq 1 3 300); do mv "$dir/f$i" "$MNT/shared/w$1-f$i"; done
}
reader() {
  while [ ! -e "$WORK/done" ]; do
    ls -lR "$MNT" > /dev/null 2>&1
    cat "$MNT"/w*/f1* > /dev/null 2>&1
  done
}

reader & reader_pid=$!
EXTRA_PIDS=$reader_pid
pids=()
for w in 1 2 3 4; do writer $w & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done
touch "$WORK/done"
wait "$reader_pid"

bad=0
for w in 1 2 3 4; do
  for i in $(seq 1 300); do
    if [ $(( (i - 1) % 3 )) -eq 0 ]; then f=$MNT/shared/w$w-f$i; else f=$MNT/w$w/f$i; fi
    [ "$(md5sum < "$f" | cut -d' ' -f1)" = "$(cat "$WORK/w$w.sum.$i")" ] || bad=$((bad + 1))
  done
done
check "all 1200 files hold what their writer wrote" [ "$bad" -eq 0 ]
check "the shared directory has 400 entries" [ "$(ls "$MNT/shared" | wc -l)" -eq 400 ]
check "each writer's directory has 200 left" \
  [ "$(ls "$MNT"/w1 "$MNT"/w2 "$MNT"/w3 "$MNT"/w4 | grep -c '^f')" -eq 800 ]
stop_keyfs
finish
