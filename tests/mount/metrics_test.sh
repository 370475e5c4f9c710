#!/usr/bin/env bash
# Watching a mount (issue 13): keyfs-ctl info prints .keyfs/info, watch
# prints the key figures a line at a time, metrics prints them in the
# Prometheus text format, which a strict parser (tests/tools/prom_check.cc)
# accepts; bad arguments are refused with exit 2.
source "$(dirname "$0")/lib.sh" "$1"
PROM_CHECK=$BUILD_DIR/tests/prom_check

info() { sed -n "s/^$1://p" "$MNT/.keyfs/info"; }
ctl() { "$KEYFS_CTL" "$@"; }
# ctl_fails TEXT ARGS...: keyfs-ctl exits 2 and says TEXT.
ctl_fails() {
  local text=$1 got=0; shift
  "$KEYFS_CTL" "$@" > "$WORK/ctl.out" 2> "$WORK/ctl.err" || got=$?
  [ "$got" -eq 2 ] && grep -qF -- "$text" "$WORK/ctl.err"
}
keys() { sed 's/:.*//'; }

start_keyfs -o max_memory=64M
head -c 3M /dev/urandom > "$WORK/data"
cp "$WORK/data" "$MNT/data"
check "data written" cmp -s "$WORK/data" "$MNT/data"

# --- info -----------------------------------------------------------------------
ctl info "$MNT" > "$WORK/ctl-info"
check "keyfs-ctl info prints .keyfs/info (same fields, in order)" \
  eval "diff <(keys < '$WORK/ctl-info') <(keys < '$MNT/.keyfs/info')"
check "... with its figures" grep -qx "inodes:$(info inodes)" "$WORK/ctl-info"
check "# Stats counts the requests" [ "$(info requests_total)" -gt 0 ]
check "... the writes, and their bytes" \
  eval "[ \$(info writes_total) -ge 3 ] && [ \$(info written_bytes_total) -ge $((3 << 20)) ]"

# --- metrics --------------------------------------------------------------------
ctl metrics "$MNT" > "$WORK/metrics"
check "keyfs-ctl metrics exits 0" [ $? -eq 0 ]
check "its output parses as the Prometheus text format" "$PROM_CHECK" < "$WORK/metrics"
if command -v promtool > /dev/null; then
  check "... and promtool check metrics accepts it" eval "promtool check metrics < '$WORK/metrics'"
fi
label="{mountpoint=\"$MNT\"}"
check "a gauge per INFO figure, labelled with the mountpoint" \
  grep -qx "keyfs_inodes$label $(info inodes)" "$WORK/metrics"
check "... typed" grep -qx "# TYPE keyfs_inodes gauge" "$WORK/metrics"
check "counters end in _total: cache_hits" grep -qx "# TYPE keyfs_cache_hits_total counter" "$WORK/metrics"
check "... writes_total" grep -q "^keyfs_writes_total$label [0-9]" "$WORK/metrics"
check "... with HELP" grep -q "^# HELP keyfs_writes_total ." "$WORK/metrics"
check "text fields are labels of keyfs_info" \
  grep -q "^keyfs_info{mountpoint=\"$MNT\",keyfs_version=\"[^\"]*\",request_path=\"[a-z_]*\".*mode=\"disk\".*} 1$" "$WORK/metrics"
check "every numeric INFO field is there" eval '(
  for key in $(grep -E "^[a-z_]+:-?[0-9.]+$" "$MNT/.keyfs/info" | keys | grep -vx -e pid -e keyfs_version); do
    grep -Eq "^keyfs_${key}(_total)?\{" "$WORK/metrics" || { echo "missing: $key" >&2; exit 1; }
  done)'
# The parser is no rubber stamp.
bad() { ! printf "$1" | "$PROM_CHECK" > /dev/null 2>&1; }
check "prom_check refuses a counter not named _total" bad '# HELP a x\n# TYPE a counter\na 1\n'
check "... a sample before its TYPE" bad '# HELP a x\na 1\n# TYPE a gauge\n'
check "... a series given twice" bad '# HELP a x\n# TYPE a gauge\na{m="1"} 1\na{m="1"} 2\n'
check "... a bad value" bad '# HELP a x\n# TYPE a gauge\na one\n'
check "... a bad escape" bad '# HELP a x\n# TYPE a gauge\na{m="\\q"} 1\n'
check "... and takes a good one" eval "printf '# HELP a x\n# TYPE a gauge\na{m=\"\\\\\\\\\"} 1.5e3\n' | '$PROM_CHECK' > /dev/null"

# --- watch -----------------------------------------------------------------------
check "keyfs-ctl watch MNT 0.1 3: three lines, then exit 0" eval "ctl watch '$MNT' 0.1 3 > '$WORK/watch'"
check "... under a two-line header" eval "head -n 2 '$WORK/watch' | tail -n 1 | grep -q 'ops/s.*hit%.*used.*max.*dirty'"
check "... three figure lines" [ "$(tail -n +3 "$WORK/watch" | wc -l)" -eq 3 ]
check "... the first without rates" eval "sed -n 3p '$WORK/watch' | grep -Eq '^ +- +- +- +- +- '"
check "... the next with them" eval "sed -n 4p '$WORK/watch' | grep -Eq '^ +[0-9]+ +[0-9]+ +[0-9]+ '"
check "... and max_memory" eval "sed -n 5p '$WORK/watch' | grep -q '64.0 MiB'"
check "watch: SECONDS 0 refused" ctl_fails "is not a number of seconds" watch "$MNT" 0
check "... SECONDS x refused" ctl_fails "is not a number of seconds" watch "$MNT" x
check "... COUNT 0 refused" ctl_fails "is not a count of lines" watch "$MNT" 1 0
check "watch of what is not a mount" ctl_fails "is not a keyfs mount" watch "$WORK" 0.1 1
check "metrics of what is not a mount" ctl_fails "is not a keyfs mount" metrics "$WORK"
check "info of what is not a mount" ctl_fails "is not a keyfs mount" info "$WORK"
stop_keyfs
finish
