# shellcheck shell=bash
# Part of tests/e2e/bench.sh (sourced): the cold path as ratios, each measured in pairs so that
# a shared machine's drift cancels out (issue 11 item 1's targets):
#   - a cold GET of the 100 MiB layer: straight from upstream, through regmirror, through
#     distribution's proxy (fresh cache each time); the CPU seconds each mirror spent on it
#   - the same blob warm: CPU-s per GB served by regmirror and by nginx (`sendfile on`)
#     serving the very file regmirror stored
#   - a cold skopeo pull of library/big through regmirror vs the same pull from upstream
#   - 8 simultaneous cold pulls through regmirror vs one pull from upstream, and the same 8
#     pulls straight from upstream (what the clients alone cost here)
#   - beside each server's own CPU, the whole machine's (/proc/stat), which the loopback
#     TCP stack cannot move from one process to another
# Results go to R[cold,…]; rows to print are in bench_cold_rows. The same measures with the
# mirror apart from the client and the upstream are bench-apart.sh's.

BENCH_PAIRS=${BENCH_PAIRS:-5}          # pairs of the single-blob GET
BENCH_PULL_PAIRS=${BENCH_PULL_PAIRS:-3} # pairs of the skopeo pulls (one and eight)
WARM_GETS=${WARM_GETS:-10}             # warm GETs of the 100 MiB blob per CPU sample (1 GiB)
NGINX_ADDR=127.0.0.1:5002

# cpu_s PID: CPU seconds of the process's threads so far, to the nanosecond (schedstat's
# time on a CPU, summed over /proc/PID/task: /proc/PID/stat counts 10 ms ticks, too coarse
# for a 0.15 s fill).
cpu_s() { cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{ s += $1 } END { printf "%.4f", s / 1e9 }'; }

# median: of the numbers on stdin, one a line.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }

# curl_s URL: seconds for one GET of URL to /dev/null (fails on an HTTP error); pinned to
# CLIENT_CPUS when set.
curl_s() {
  local -a pin=()
  [[ -z ${CLIENT_CPUS:-} ]] || pin=(taskset -c "$CLIENT_CPUS")
  nsx "${pin[@]}" timeout -k 5 120 curl -fsS -o /dev/null -w '%{time_total}' "$1"
}

# busy_s: CPU seconds the whole machine has spent busy so far (/proc/stat: user, nice,
# system, irq, softirq; 10 ms ticks). On loopback the kernel does much of a transfer's
# work — the receiving side's TCP too — in whichever process happens to be sending, so
# one process's CPU can shift to another's without the work changing; the machine's total
# does not.
busy_s() { awk '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / 100 }' /proc/stat; }

# minus A B: A - B.
minus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a - b }'; }

# ratio A B [FMT]: A / B.
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b > 0 && a != "-") printf f, a / b; else print "-" }'; }

# per_gb CPU_S BYTES: CPU seconds per 1e9 bytes.
per_gb() { awk -v c="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", c / (b / 1e9); else print "-" }'; }

# cold_get MIRROR_CMD CACHE: start the mirror on an empty CACHE, one GET of the big layer;
# sets COLD_T (seconds), COLD_CPU (the mirror's CPU seconds over the GET and its commit),
# COLD_BUSY (the whole machine's: upstream, mirror and curl, plus 0.3 s of idle) and
# COLD_SCHED: how the main thread spent the GET — on a CPU, runnable but waiting for one,
# asleep (waiting for I/O: a stall) — from /proc/PID/task/PID/schedstat. For regmirror
# that thread does all the work; for distribution it is one of many and means little.
# The mirror is left running (MIRROR_PID).
cold_get() {
  local MIRROR=$1 c0 on0 q0 on1 q1 b0 _
  rm -rf "$2"
  mirror_start "$2" --tag-ttl 1h > /dev/null || return 1
  c0=$(cpu_s "$MIRROR_PID")
  read -r on0 q0 _ < "/proc/$MIRROR_PID/task/$MIRROR_PID/schedstat"
  b0=$(busy_s)
  COLD_T=$(curl_s "http://$MIRROR_ADDR/v2/library/big/blobs/$BIG_LAYER") || return 1
  read -r on1 q1 _ < "/proc/$MIRROR_PID/task/$MIRROR_PID/schedstat"
  COLD_SCHED=$(awk -v t="$COLD_T" -v on=$((on1 - on0)) -v q=$((q1 - q0)) \
    'BEGIN { a = t - on / 1e9 - q / 1e9; if (a < 0) a = 0; printf "%.3f %.3f %.3f", on / 1e9, q / 1e9, a }')
  sleep 0.3 # the commit's fsync comes after the last byte
  COLD_CPU=$(awk -v a="$c0" -v b="$(cpu_s "$MIRROR_PID")" 'BEGIN { printf "%.4f", b - a }')
  COLD_BUSY=$(minus "$(busy_s)" "$b0")
}

# warm_cpu PID URL: CPU seconds PID spends serving WARM_GETS GETs of URL, and the whole
# machine's (server and curl): "SERVER MACHINE".
warm_cpu() {
  local c0 b0 i
  c0=$(cpu_s "$1") b0=$(busy_s)
  for ((i = 0; i < WARM_GETS; i++)); do curl_s "$2" > /dev/null || return 1; done
  echo "$(minus "$(cpu_s "$1")" "$c0") $(minus "$(busy_s)" "$b0")"
}

# nginx_start ROOT: nginx in the netns serving ROOT on NGINX_ADDR, one process (no master),
# `sendfile on`, no access log. Sets NGINX_PID.
nginx_start() {
  local conf=$RUN/nginx.conf
  cat > "$conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $RUN/nginx.pid;
error_log $LOGS/nginx.log;
events { worker_connections 64; }
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path $RUN/nginx-tmp;
  proxy_temp_path $RUN/nginx-tmp;
  fastcgi_temp_path $RUN/nginx-tmp;
  uwsgi_temp_path $RUN/nginx-tmp;
  scgi_temp_path $RUN/nginx-tmp;
  server { listen $NGINX_ADDR; root $1; }
}
EOF
  mkdir -p "$RUN/nginx-tmp"
  ns_spawn "$LOGS/nginx.log" nginx -c "$conf"
  NGINX_PID=$SPAWNED_PID
  wait_http "http://$NGINX_ADDR/" 10 "$NGINX_PID"
}

# pull_pair DIR KEY: one cold skopeo pull of library/big straight from upstream, then one
# through $MIRROR on a fresh cache (DIR/cache1); sets PAIR to "DIRECT_MS MIRROR_MS". A failed
# pull or start sets R[KEY,error] and returns 1. The mirror's log stays in MIRROR_LOG.
pull_pair() {
  local dir=$1 key=$2 t0 direct
  t0=$(ms_now)
  MIRROR_ADDR=$UP_ADDR skopeo_copy library/big:latest "$dir/out" --all > "$dir/direct.log" 2>&1 ||
    { R[$key,error]="direct skopeo pull failed"; return 1; }
  direct=$(($(ms_now) - t0))
  rm -rf "$dir/out"
  mirror_start "$dir/cache1" --tag-ttl 1h || { R[$key,error]="regmirror did not start"; return 1; }
  t0=$(ms_now)
  skopeo_copy library/big:latest "$dir/out" --all > "$dir/one.log" 2>&1 ||
    R[$key,error]="a pull through regmirror failed"
  PAIR="$direct $(($(ms_now) - t0))"
  mirror_stop
  rm -rf "$dir/out" "$dir/cache1"
  [[ -z ${R[$key,error]:-} ]]
}

# pull_results KEY: R[KEY,pull_direct_s], R[KEY,pull_rm_s] (median seconds) and
# R[KEY,pull_rm_vs_direct] (median ratio, and _all: every pair's) from the caller's arrays
# pd, pr (milliseconds, direct and through regmirror) and r1 (their ratios).
pull_results() {
  R[$1,pull_direct_s]=$(ratio "$(printf '%s\n' "${pd[@]}" | median)" 1000)
  R[$1,pull_rm_s]=$(ratio "$(printf '%s\n' "${pr[@]}" | median)" 1000)
  R[$1,pull_rm_vs_direct]=$(printf '%s\n' "${r1[@]}" | median)
  R[$1,pull_rm_vs_direct_all]="${r1[*]}"
}

bench_cold() {
  local dir=$RUN/cold rep a b m t pulls8 i t0 failed ms
  mkdir -p "$dir"
  SCENARIO=cold
  local son sq sa
  local -a gon=() gq=() ga=() gd=() gr=() gc=() gb=() gx=() gxc=() gxb=() rr=() rx=() wr=() wn=() pd=() pr=() p8=() d8=() pb=() r1=() r8=() rd8=() r88=()
  log "bench: cold single-blob GET, $BENCH_PAIRS rounds (direct, regmirror, distribution)"
  for ((rep = 1; rep <= BENCH_PAIRS; rep++)); do
    t=$(curl_s "http://$UP_ADDR/v2/library/big/blobs/$BIG_LAYER") || { R[cold,error]="direct GET failed"; return 0; }
    gd+=("$t")
    # Alternate which mirror goes first.
    if ((rep % 2)); then a=regmirror b=distribution; else a=distribution b=regmirror; fi
    for m in $a $b; do
      if [[ $m == regmirror ]]; then
        cold_get "$REGMIRROR" "$dir/cache-rm" || { R[cold,error]="regmirror cold GET failed"; mirror_stop; return 0; }
        gr+=("$COLD_T") gc+=("$COLD_CPU") gb+=("$COLD_BUSY")
        read -r son sq sa <<< "$COLD_SCHED"
        gon+=("$son") gq+=("$sq") ga+=("$sa")
        rr+=("$(ratio "${gd[-1]}" "$COLD_T")")
      else
        cold_get "$DISTRIBUTION" "$dir/cache-dist" || { R[cold,error]="distribution cold GET failed"; mirror_stop; return 0; }
        gx+=("$COLD_T") gxc+=("$COLD_CPU") gxb+=("$COLD_BUSY")
      fi
      mirror_stop
    done
    rx+=("$(ratio "${gx[-1]}" "${gr[-1]}")")
  done
  R[cold,get_direct_s]=$(printf '%.3f\n' "${gd[@]}" | median)
  R[cold,get_rm_s]=$(printf '%.3f\n' "${gr[@]}" | median)
  R[cold,get_dist_s]=$(printf '%.3f\n' "${gx[@]}" | median)
  R[cold,get_rm_vs_dist]=$(printf '%s\n' "${rx[@]}" | median)
  R[cold,get_rm_vs_direct]=$(printf '%s\n' "${rr[@]}" | median)
  R[cold,get_rm_vs_dist_all]="${rx[*]}"
  R[cold,sched]="$(printf '%s\n' "${gon[@]}" | median) s on a CPU · $(printf '%s\n' "${gq[@]}" | median) s waiting for one · $(printf '%s\n' "${ga[@]}" | median) s asleep"
  R[cold,fill_cpu_gb]=$(per_gb "$(printf '%s\n' "${gc[@]}" | median)" "$BIG_SIZE")
  R[cold,dist_fill_cpu_gb]=$(per_gb "$(printf '%s\n' "${gxc[@]}" | median)" "$BIG_SIZE")
  R[cold,fill_busy]=$(printf '%s\n' "${gb[@]}" | median)
  R[cold,dist_fill_busy]=$(printf '%s\n' "${gxb[@]}" | median)

  # Warm: regmirror on the cache the last cold GET filled, nginx on the same file.
  log "bench: warm CPU per GB, regmirror vs nginx sendfile ($WARM_GETS GETs each, 3 rounds)"
  local MIRROR=$REGMIRROR hex=${BIG_LAYER#sha256:}
  mirror_start "$dir/cache-rm" --tag-ttl 1h || { R[cold,error]="regmirror did not restart"; return 0; }
  nginx_start "$dir/cache-rm/blobs/sha256" || { R[cold,error]="nginx did not start"; mirror_stop; return 0; }
  local wm=() wnm=() cpu busy
  for rep in 1 2 3; do
    read -r cpu busy < <(warm_cpu "$MIRROR_PID" "http://$MIRROR_ADDR/v2/library/big/blobs/$BIG_LAYER")
    wr+=("$cpu") wm+=("$busy")
    read -r cpu busy < <(warm_cpu "$NGINX_PID" "http://$NGINX_ADDR/${hex:0:2}/$hex")
    wn+=("$cpu") wnm+=("$busy")
  done
  stop_pid "$NGINX_PID"
  mirror_stop
  local served=$((WARM_GETS * BIG_SIZE))
  R[cold,serve_cpu_gb]=$(per_gb "$(printf '%s\n' "${wr[@]}" | median)" $served)
  R[cold,nginx_cpu_gb]=$(per_gb "$(printf '%s\n' "${wn[@]}" | median)" $served)
  R[cold,serve_vs_nginx]=$(ratio "${R[cold,serve_cpu_gb]}" "${R[cold,nginx_cpu_gb]}")
  R[cold,serve_busy_gb]=$(per_gb "$(printf '%s\n' "${wm[@]}" | median)" $served)
  R[cold,nginx_busy_gb]=$(per_gb "$(printf '%s\n' "${wnm[@]}" | median)" $served)
  R[cold,serve_busy_vs_nginx]=$(ratio "${R[cold,serve_busy_gb]}" "${R[cold,nginx_busy_gb]}")
  rm -rf "$dir"/cache-*

  log "bench: cold skopeo pulls, $BENCH_PULL_PAIRS rounds (one direct, one through regmirror, eight through regmirror)"
  for ((rep = 1; rep <= BENCH_PULL_PAIRS; rep++)); do
    local MIRROR=$REGMIRROR
    pull_pair "$dir" cold || return 0
    read -r a b <<< "$PAIR"
    pd+=("$a") pr+=("$b")
    # The mirror's access log: how long its blob GETs took, added up — about the whole
    # pull when the client asks for one blob after another.
    pb+=("$(awk '$4 == "GET" && $5 ~ /\/blobs\// { ms = $(NF - 1); sub(/ms$/, "", ms); s += ms } END { print s + 0 }' "$MIRROR_LOG")")
    mirror_start "$dir/cache8" --tag-ttl 1h || { R[cold,error]="regmirror did not start"; return 0; }
    read -r ms failed < <(pulls_at_once 8 "$dir" out)
    p8+=("$ms")
    ((failed == 0)) || R[cold,pull8_failed]=$failed
    mirror_stop
    rm -rf "$dir"/out? "$dir/cache8"
    # The same 8 pulls straight from upstream: what the clients' own work costs on this
    # machine, with no mirror in the way (the bound any mirror's 8-pull ratio meets).
    read -r ms failed < <(MIRROR_ADDR=$UP_ADDR pulls_at_once 8 "$dir" direct)
    ((failed == 0)) || R[cold,direct8_failed]=$failed
    d8+=("$ms")
    rm -rf "$dir"/out?
    rd8+=("$(ratio "${d8[-1]}" "${pd[-1]}")")
    r88+=("$(ratio "${p8[-1]}" "${d8[-1]}")")
    r1+=("$(ratio "${pr[-1]}" "${pd[-1]}")")
    r8+=("$(ratio "${p8[-1]}" "${pd[-1]}")")
  done
  pulls8=$(printf '%s\n' "${p8[@]}" | median)
  pull_results cold
  R[cold,pull8_rm_s]=$(ratio "$pulls8" 1000)
  R[cold,pull8_vs_direct]=$(printf '%s\n' "${r8[@]}" | median)
  R[cold,pull8_vs_direct_all]="${r8[*]}"
  R[cold,direct8_s]=$(ratio "$(printf '%s\n' "${d8[@]}" | median)" 1000)
  R[cold,direct8_vs_direct]=$(printf '%s\n' "${rd8[@]}" | median)
  R[cold,direct8_vs_direct_all]="${rd8[*]}"
  R[cold,pull8_vs_direct8]=$(printf '%s\n' "${r88[@]}" | median)
  R[cold,pull8_vs_direct8_all]="${r88[*]}"
  R[cold,pull_blob_s]=$(ratio "$(printf '%s\n' "${pb[@]}" | median)" 1000)
}

# bench_cold_rows: the results as a Markdown table.
bench_cold_rows() {
  local mib=$((BIG_SIZE / 1048576))
  echo "| cold GET of the $mib MiB layer: seconds (median of $BENCH_PAIRS) | direct ${R[cold,get_direct_s]:--} · regmirror ${R[cold,get_rm_s]:--} · distribution ${R[cold,get_dist_s]:--} |"
  echo "| cold GET: regmirror's speed ÷ distribution's proxy's (target ≥ 1.0; per pair: ${R[cold,get_rm_vs_dist_all]:--}) | **${R[cold,get_rm_vs_dist]:--}×** |"
  echo "| cold GET: regmirror's speed ÷ straight from upstream | ${R[cold,get_rm_vs_direct]:--}× |"
  echo "| cold GET through regmirror: its one thread's time (medians; asleep = stalled on I/O) | ${R[cold,sched]:--} |"
  echo "| server CPU-s per GB filled (cold GET, one client) | regmirror ${R[cold,fill_cpu_gb]:--} · distribution ${R[cold,dist_fill_cpu_gb]:--} |"
  echo "| the whole machine's CPU-s for that cold GET (upstream, mirror, curl; median) | regmirror ${R[cold,fill_busy]:--} · distribution ${R[cold,dist_fill_busy]:--} |"
  echo "| server CPU-s per GB served (warm, $WARM_GETS GETs, median of 3) | regmirror ${R[cold,serve_cpu_gb]:--} · nginx sendfile ${R[cold,nginx_cpu_gb]:--} (ratio ${R[cold,serve_vs_nginx]:--}) |"
  echo "| the whole machine's CPU-s per GB served (server and curl: on loopback the kernel's TCP work lands in either) | regmirror ${R[cold,serve_busy_gb]:--} · nginx sendfile ${R[cold,nginx_busy_gb]:--} (ratio **${R[cold,serve_busy_vs_nginx]:--}**) |"
  echo "| cold skopeo pull of big: seconds (median of $BENCH_PULL_PAIRS) | direct ${R[cold,pull_direct_s]:--} · regmirror ${R[cold,pull_rm_s]:--} |"
  echo "| that pull through regmirror: its blob GETs' durations added up (s; skopeo's \`dir:\` copy asks for one blob after another) | ${R[cold,pull_blob_s]:--} of ${R[cold,pull_rm_s]:--} |"
  echo "| cold skopeo pull: regmirror ÷ direct, time (target ≤ 1.1; per pair: ${R[cold,pull_rm_vs_direct_all]:--}) | **${R[cold,pull_rm_vs_direct]:--}×** |"
  echo "| 8 simultaneous cold pulls through regmirror: seconds (median) | ${R[cold,pull8_rm_s]:--} |"
  echo "| 8 cold pulls ÷ one direct pull, time (target ≤ 1.15; per pair: ${R[cold,pull8_vs_direct_all]:--}) | **${R[cold,pull8_vs_direct]:--}×** |"
  echo "| the same 8 pulls straight from upstream ÷ one direct pull, time (no mirror: the clients' own cost; per pair: ${R[cold,direct8_vs_direct_all]:--}) | ${R[cold,direct8_vs_direct]:--}× (${R[cold,direct8_s]:--} s) |"
  echo "| 8 cold pulls through regmirror ÷ the same 8 straight from upstream, time (per pair: ${R[cold,pull8_vs_direct8_all]:--}) | ${R[cold,pull8_vs_direct8]:--}× |"
  local k
  for k in error pull_failed pull8_failed direct8_failed; do
    [[ -z ${R[cold,$k]:-} ]] || echo "| note: $k | ${R[cold,$k]} |"
  done
}
