#!/bin/bash
# Benchmark regmirror — against the same seeded upstream straight, CNCF distribution's proxy
# and nginx — inside a loopback-only network namespace. Prints figures and ratios; not
# pass/fail. One run prints everything (about 5 minutes on 2 cores; the first run also builds
# tests/tools/sha-cost and regmirror with sha2's soft backend into target/, a few minutes more):
#
#   tests/e2e/bench.sh                         # regmirror = target/release/regmirror
#   REGMIRROR=/path/to/regmirror tests/e2e/bench.sh
#   BENCH_ONLY=cold,load tests/e2e/bench.sh    # some parts only (the list below)
#
# Parts (BENCH_ONLY, comma-separated; default all):
#   regmirror, distribution — the side-by-side table, per mirror (run one after the other:
#     on 2 cores, running them together would make each one's numbers depend on the other):
#     - 8 simultaneous cold skopeo pulls of library/big:latest (fresh cache): upstream GETs
#       per blob and upstream bytes, from the upstream access log; the mirror's VmHWM
#     - one cold and one warm skopeo pull of library/big:latest (fresh cache)
#     - time of a TLS ClientHello against the plain port (skopeo/podman probe https first;
#       that time is part of every skopeo pull)
#     - idle VmRSS after start on the warm cache; cached 100 MiB blob throughput with 1 and
#       16 parallel curls; VmHWM of a freshly started mirror under 32 parallel GETs
#   cold — ratios, in pairs (bench-cold.sh): cold 100 MiB GET vs direct and vs distribution;
#     CPU-s/GB filled and served (the server's and the whole machine's), warm vs nginx
#     sendfile; skopeo cold pull vs direct; 8 cold pulls vs one direct
#   pinned — (bench-apart.sh) the cold GET vs distribution and the skopeo pull vs direct with
#     the mirror on a core of its own (CPU 1; client and upstream on CPU 0)
#   link — (bench-apart.sh) the cold skopeo pulls (one, and 8 at once) vs direct with the
#     upstream behind a BENCH_LINK_RATE link (default 1gbit; tc htb on what its port sends)
#   restart, sha, softfill, load — (bench-bounds.sh): restart to the first HIT with 10 000 /
#     100 000 blobs; SHA-256 CPU-s/GB native and soft (Pi 4), and a cold fill's CPU-s/GB by
#     regmirror built with the soft backend; RSS and /v2/ latency under 500 idle,
#     500 slowloris and 64 slow-reader connections, beside the buffer-size bound
set -euo pipefail

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=tests/e2e/bench-cold.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-cold.sh"
# shellcheck source=tests/e2e/bench-apart.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-apart.sh"
# shellcheck source=tests/e2e/bench-bounds.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench-bounds.sh"

# The same work dir, seeded upstream and image JSON as tests/e2e/run.sh.
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${E2E_WORK:-$E2E_DIR/work}
UPSTREAM_DATA=$WORK/upstream-data
IMAGES_JSON=$WORK/images.json
SOCK_DIR=/tmp/rm-bench-$$

REGMIRROR=${REGMIRROR:-$REPO_ROOT/target/release/regmirror}
DISTRIBUTION=$E2E_DIR/mirror-distribution.sh
BENCH_ONLY=${BENCH_ONLY:-regmirror,distribution,cold,pinned,link,restart,sha,softfill,load}
BENCH_REPS=${BENCH_REPS:-3}      # repetitions of the single-curl throughput run (median)
MIRROR_VERBOSE=0                 # no per-request debug logging while measuring
SKOPEO_TIMEOUT=300

declare -A R=()
NAMES=()

ms_now() { echo $(($(date +%s%N) / 1000000)); }
# pulls_at_once N DIR LOG: N simultaneous `skopeo copy --all library/big:latest` from
# $MIRROR_ADDR into DIR/out1..N (logs DIR/LOG1..N.log); prints "MILLISECONDS FAILED".
pulls_at_once() {
  local n=$1 dir=$2 log=$3 i t0 failed=0
  local -a pids=()
  t0=$(ms_now)
  for ((i = 1; i <= n; i++)); do
    skopeo_copy library/big:latest "$dir/out$i" --all > "$dir/$log$i.log" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=$((failed + 1)); done
  echo "$(($(ms_now) - t0)) $failed"
}
kib_of() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }     # KiB -> MiB

# par_curl N URL: N parallel GETs to /dev/null; echoes wall ms; fails if any failed.
par_curl() {
  local n=$1 url=$2 i t0 bad=0
  local -a pids=()
  t0=$(ms_now)
  for ((i = 0; i < n; i++)); do
    timeout -k 5 300 nsenter --net="/run/netns/$NS" -- curl -fsS -o /dev/null "$url" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || bad=$((bad + 1)); done
  echo $(($(ms_now) - t0))
  ((bad == 0))
}

mibps() { awk -v b="$1" -v ms="$2" 'BEGIN { if (ms <= 0) ms = 1; printf "%.0f", b / 1048576 / (ms / 1000) }'; }

bench_one() {
  local name=$1 mcmd=$2 dir=$RUN/$1 big_layer big_size i t0 ms failed
  MIRROR=$mcmd
  SCENARIO=$name
  NAMES+=("$name")
  mkdir -p "$dir"
  big_layer=$(jq -r '[.images[] | select(.repo == "library/big") | .platforms[0].blobs[]] | max_by(.size) | .digest' "$IMAGES_JSON")
  big_size=$(jq -r --arg d "$big_layer" '[.images[].platforms[].blobs[] | select(.digest == $d)][0].size' "$IMAGES_JSON")
  local url=http://$MIRROR_ADDR/v2/library/big/blobs/$big_layer
  log "bench: $name ($mcmd)"

  # 1. 8 simultaneous cold pulls.
  mirror_start "$dir/cache-cold8" --tag-ttl 1h || { R[$name,error]="did not start"; return 0; }
  upstream_mark
  read -r ms failed < <(pulls_at_once 8 "$dir" out)
  R[$name,cold8_s]=$(awk -v ms="$ms" 'BEGIN { printf "%.1f", ms / 1000 }')
  R[$name,cold8_failed]=$failed
  R[$name,cold8_hwm]=$(mb "$(kib_of "$MIRROR_PID" VmHWM)")
  mirror_stop
  rm -rf "$dir"/out?
  local rep
  rep=$(upstream_blob_report)
  R[$name,big_gets]=$(awk -v d="$big_layer" '$1 == d { print $2 }' <<< "$rep")
  R[$name,gets_range]=$(awk 'NR == 1 { lo = hi = $2 } { if ($2 < lo) lo = $2; if ($2 > hi) hi = $2; s += $2 }
    END { printf "%d-%d (%d total)", lo, hi, s }' <<< "$rep")
  R[$name,up_mb]=$(awk -v b="$(upstream_bytes_total)" 'BEGIN { printf "%.1f", b / 1e6 }')
  rm -rf "$dir/cache-cold8"

  # 2. One cold, one warm pull; TLS probe.
  mirror_start "$dir/cache" --tag-ttl 1h || { R[$name,error]="did not restart"; return 0; }
  t0=$(ms_now)
  nsx curl -sk -o /dev/null --max-time 30 "https://$MIRROR_ADDR/v2/" || true
  R[$name,tls_ms]=$(($(ms_now) - t0))
  t0=$(ms_now)
  skopeo_copy library/big:latest "$dir/out" --all > "$dir/cold.log" 2>&1 || R[$name,cold_failed]=1
  R[$name,cold_s]=$(awk -v ms=$(($(ms_now) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
  t0=$(ms_now)
  skopeo_copy library/big:latest "$dir/out" --all > "$dir/warm.log" 2>&1 || R[$name,warm_failed]=1
  R[$name,warm_s]=$(awk -v ms=$(($(ms_now) - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
  rm -rf "$dir/out"
  mirror_stop

  # 3. Idle RSS and cached-blob throughput on the warm cache.
  mirror_start "$dir/cache" --tag-ttl 1h || { R[$name,error]="did not restart"; return 0; }
  sleep 1
  R[$name,idle_rss]=$(mb "$(kib_of "$MIRROR_PID" VmRSS)")
  local -a one=()
  for ((i = 0; i < BENCH_REPS; i++)); do
    ms=$(par_curl 1 "$url") || R[$name,curl_failed]=1
    one+=("$(mibps "$big_size" "$ms")")
  done
  R[$name,tp1]=$(printf '%s\n' "${one[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  ms=$(par_curl 16 "$url") || R[$name,curl_failed]=1
  R[$name,tp16]=$(mibps $((16 * big_size)) "$ms")
  mirror_stop

  # 4. Peak RSS of a fresh process under 32 parallel GETs of the cached blob.
  mirror_start "$dir/cache" --tag-ttl 1h || { R[$name,error]="did not restart"; return 0; }
  ms=$(par_curl 32 "$url") || R[$name,curl_failed]=1
  R[$name,hwm32]=$(mb "$(kib_of "$MIRROR_PID" VmHWM)")
  R[$name,tp32]=$(mibps $((32 * big_size)) "$ms")
  mirror_stop
  rm -rf "$dir/cache"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  kill_tracked
  ns_destroy
  exit "$rc"
}

row() { # row LABEL KEY [SUFFIX]
  local label=$1 key=$2 n line
  line=$(printf '%-52s' "$label")
  for n in "${NAMES[@]}"; do line+=$(printf ' %16s' "${R[$n,$key]:--}"); done
  echo "$line"
}

# part NAME: whether BENCH_ONLY includes NAME.
part() { [[ ",$BENCH_ONLY," == *",$1,"* ]]; }

main() {
  [[ $EUID -eq 0 ]] || die "run as root"
  mkdir -p "$WORK"
  RUN=$WORK/bench
  rm -rf "$RUN"
  LOGS=$RUN/logs
  mkdir -p "$LOGS"
  PIDFILE=$RUN/pids
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ns_create "rmbench-$$"
  upstream_start "$LOGS/upstream.log"
  seed_upstream full

  BIG_LAYER=$(jq -r '[.images[] | select(.repo == "library/big") | .platforms[0].blobs[]] | max_by(.size) | .digest' "$IMAGES_JSON")
  BIG_SIZE=$(jq -r --arg d "$BIG_LAYER" '[.images[].platforms[].blobs[] | select(.digest == $d)][0].size' "$IMAGES_JSON")
  [[ -x $REGMIRROR ]] || die "no $REGMIRROR (cargo build --release, or set REGMIRROR)"
  local t0=$SECONDS load0
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  part regmirror && bench_one regmirror "$REGMIRROR"
  part distribution && bench_one distribution "$DISTRIBUTION"
  part cold && bench_cold
  part pinned && bench_pinned "$RUN/pinned"
  part link && bench_link "$RUN/link"
  part restart && bench_restart
  part sha && bench_sha
  part softfill && bench_softfill
  part load && bench_load
  upstream_stop
  local big line n
  big=$(img_q library/big latest .total_blob_bytes)
  echo
  echo "$("$REGMIRROR" --version 2>/dev/null || echo "regmirror ?"), $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, loopback; load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $((SECONDS - t0)) s"
  echo "library/big:latest: $(awk -v b="$big" 'BEGIN { printf "%.1f MB", b / 1e6 }') in $(img_q library/big latest '.platforms[0].blobs | length') blobs; its largest layer $BIG_SIZE bytes"
  if ((${#NAMES[@]})); then
    echo
    line=$(printf '%-52s' "")
    for n in "${NAMES[@]}"; do line+=$(printf ' %16s' "$n"); done
    echo "$line"
    row "8 cold pulls of big: upstream GETs of 100 MiB layer" big_gets
    row "8 cold pulls of big: upstream GETs per blob" gets_range
    row "8 cold pulls of big: upstream MB" up_mb
    row "8 cold pulls of big: wall s" cold8_s
    row "8 cold pulls of big: failed pulls" cold8_failed
    row "8 cold pulls of big: peak RSS MiB (VmHWM)" cold8_hwm
    row "skopeo cold pull of big: wall s" cold_s
    row "skopeo warm pull of big: wall s" warm_s
    row "TLS ClientHello on the plain port: ms to refuse" tls_ms
    row "cached 100 MiB blob, 1 curl: MiB/s (median)" tp1
    row "cached 100 MiB blob, 16 curls: MiB/s" tp16
    row "cached 100 MiB blob, 32 curls: MiB/s" tp32
    row "idle RSS MiB (VmRSS after start, warm cache)" idle_rss
    row "peak RSS MiB, 32 parallel GETs (VmHWM)" hwm32
    for n in "${NAMES[@]}"; do
      for k in error cold_failed warm_failed curl_failed; do
        [[ -z ${R[$n,$k]:-} ]] || echo "note: $n: $k ${R[$n,$k]}"
      done
    done
    echo "(skopeo wall times include the TLS probe row: skopeo tries https on the port first)"
  fi
  if part cold || part pinned || part link || part restart || part sha || part softfill || part load; then
    echo
    echo "| figure | value |"
    echo "|---|---|"
    if part cold; then bench_cold_rows; fi
    if part pinned; then bench_pinned_rows; fi
    if part link; then bench_link_rows; fi
    if part restart || part sha || part softfill || part load; then bench_bounds_rows; fi
  fi
  echo "logs: $LOGS"
}

main "$@"
