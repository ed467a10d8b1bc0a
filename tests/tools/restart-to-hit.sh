#!/bin/bash
# restart-to-hit.sh BIN CACHE_DIR DIGEST [cold]: starts `BIN serve` on a cache made by
# fake-cache.py and prints the time from the start of the process to the first HIT of
# DIGEST (curl retried every 5 ms), then — once the index is rebuilt — the process's RSS
# and peak RSS. `cold` drops the page cache first (root; affects the whole machine).
# Listens on 127.0.0.1:5501; no upstream is reachable (127.0.0.1:9).
set -u
BIN=$1 DIR=$2 DIGEST=$3 MODE=${4:-warm}
PORT=5501
[[ $MODE == cold ]] && { sync; echo 3 > /proc/sys/vm/drop_caches; }
LOG=$(mktemp)
t0=$(date +%s.%N)
"$BIN" serve --listen 127.0.0.1:$PORT --cache-dir "$DIR" --upstream docker.io=http://127.0.0.1:9 >"$LOG" 2>&1 &
PID=$!
until [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/library/x/blobs/$DIGEST") == 200 ]]; do
  kill -0 $PID 2>/dev/null || { echo "died:"; cat "$LOG"; exit 1; }
  sleep 0.005
done
t1=$(date +%s.%N)
# Wait for the background index (a binary that scans before listening never logs it).
for _ in $(seq 100); do
  grep -q "index rebuilt" "$LOG" && break
  sleep 0.05
done
rss=$(awk '/VmRSS/{print $2}' /proc/$PID/status); hwm=$(awk '/VmHWM/{print $2}' /proc/$PID/status)
kill $PID; wait $PID 2>/dev/null
awk -v a="$t0" -v b="$t1" -v r="$rss" -v h="$hwm" -v m="$MODE" \
  'BEGIN{printf "%s: first HIT after %.3f s; RSS %.1f MiB, peak %.1f MiB\n", m, b-a, r/1024, h/1024}'
grep -h "index rebuilt\|listening" "$LOG" | sed 's/^/  /' | cut -c1-160
rm -f "$LOG"
