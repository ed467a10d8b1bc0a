# shellcheck shell=bash
# Part of tests/e2e/bench.sh (sourced): what regmirror costs at rest and under load.
#   - restart time to the first HIT, and RSS, with 10 000 and 100 000 cached blobs
#     (tests/tools/fake-cache.py, tests/tools/restart-to-hit.sh; warm page cache)
#   - SHA-256 CPU-s per GB with the sha2 regmirror uses: this machine's backend, and the
#     portable software one a Pi 4 runs (tests/tools/sha-cost, built both ways); and the CPU
#     per GB of a cold fill by regmirror itself built with the soft backend
#   - idle RSS (anonymous and file pages), also of the static binary the packages ship
#   - load bounds (issue 6): RSS with 500 idle connections, 500 slowloris ones (a byte a
#     second), 64 clients each reading a cached blob at 10 KB/s, and /v2/ latency during
#     each (tests/e2e/load.py), beside the bound the buffer sizes give
# Results go to R[bounds,…]; rows to print are in bench_bounds_rows.

LOAD_SECONDS=${LOAD_SECONDS:-15}   # each load run
# The static amd64 binary (cross/build.sh amd64), measured idle beside the release build.
REGMIRROR_STATIC=${REGMIRROR_STATIC:-$REPO_ROOT/target/cross/x86_64-unknown-linux-gnu/regmirror}
SHA_MIB=${SHA_MIB:-1024}           # bytes hashed per SHA-256 figure

# Per-connection memory, from the code (src/server/connection.rs's module doc; the sizes of
# the two futures are what its test an_idle_connection_is_a_small_future prints, in
# the debug build it runs in):
MAX_CONNS=128          # config.rs DEFAULT_MAX_CONNECTIONS: connections held at once
HEAD_BUF_KIB=8         # http::MAX_HEAD_BYTES: the head buffer, only while a head is read
TASK_KIB=2             # a connection's task (its future: 2048 bytes; the test bounds it at 4 KiB)
HANDLER_KIB=4.5        # the request handler's future (4576 bytes), boxed while a reply runs

# kv KEY LINE: the value of KEY=… in a line of key=value pairs.
kv() { tr ' ' '\n' <<< "$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

bench_restart() {
  local dir=$RUN/restart n digest line
  mkdir -p "$dir"
  for n in 10000 100000; do
    log "bench: restart to first HIT with $n cached blobs (writing them)"
    digest=$("$PY" "$REPO_ROOT/tests/tools/fake-cache.py" "$dir/cache" "$n") || { R[bounds,restart_error]="fake-cache failed"; return 0; }
    line=$(nsx bash "$REPO_ROOT/tests/tools/restart-to-hit.sh" "$REGMIRROR" "$dir/cache" "$digest" | head -n1)
    # "warm: first HIT after 0.012 s; RSS 3.1 MiB, peak 3.4 MiB"
    R[bounds,hit_$n]=$(sed -n 's/.*first HIT after \([0-9.]*\) s.*/\1/p' <<< "$line")
    R[bounds,rss_$n]=$(sed -n 's/.*; RSS \([0-9.]*\) MiB.*/\1/p' <<< "$line")
    R[bounds,peak_$n]=$(sed -n 's/.*peak \([0-9.]*\) MiB.*/\1/p' <<< "$line")
  done
  rm -rf "$dir"
}

bench_sha() {
  local tool=$REPO_ROOT/tests/tools/sha-cost kind out
  for kind in native soft; do
    log "bench: SHA-256 cost, $kind backend (building tests/tools/sha-cost)"
    local -a flags=()
    [[ $kind == soft ]] && flags=(--config "build.rustflags=['--cfg','sha2_backend=\"soft\"']")
    if ! CARGO_TARGET_DIR=$REPO_ROOT/target/sha-cost-$kind cargo build -q --release "${flags[@]}" \
      --manifest-path "$tool/Cargo.toml" >> "$LOGS/sha-cost.log" 2>&1; then
      R[bounds,sha_error]="sha-cost did not build (see $LOGS/sha-cost.log)"
      return 0
    fi
    out=$("$REPO_ROOT/target/sha-cost-$kind/release/sha-cost" "$SHA_MIB")
    R[bounds,sha_$kind]=$(kv cpu_s_per_gb "$out")
    R[bounds,sha_${kind}_mbs]=$(kv mb_per_s "$out")
  done
}

# bench_softfill: regmirror itself built with sha2's soft backend (target/soft; the first
# build takes minutes, later ones are incremental): CPU-s per GB of a cold fill, median of 3.
bench_softfill() {
  local soft=$REPO_ROOT/target/soft/release/regmirror dir=$RUN/softfill i
  local -a c=()
  log "bench: regmirror with sha2's soft backend (building target/soft)"
  if ! (cd "$REPO_ROOT" && CARGO_TARGET_DIR=$REPO_ROOT/target/soft RUSTFLAGS='--cfg sha2_backend="soft"' \
    nice cargo build -q --release) >> "$LOGS/softfill.log" 2>&1; then
    R[bounds,softfill_error]="the soft build failed (see $LOGS/softfill.log)"
    return 0
  fi
  SCENARIO=softfill
  for i in 1 2 3; do
    cold_get "$soft" "$dir/cache" || { R[bounds,softfill_error]="cold GET failed"; mirror_stop; return 0; }
    c+=("$COLD_CPU")
    mirror_stop
  done
  rm -rf "$dir"
  R[bounds,softfill_gb]=$(per_gb "$(printf '%s\n' "${c[@]}" | median)" "$BIG_SIZE")
}

bench_load() {
  local dir=$RUN/load mode out base big_path
  mkdir -p "$dir"
  SCENARIO=load
  local MIRROR=$REGMIRROR
  mirror_start "$dir/cache" --tag-ttl 1h || { R[bounds,load_error]="did not start"; return 0; }
  big_path=/v2/library/big/blobs/$BIG_LAYER
  nsx curl -fsS -o /dev/null "http://$MIRROR_ADDR$big_path" || { R[bounds,load_error]="fill failed"; mirror_stop; return 0; }
  mirror_stop
  # Each load against a fresh process on the warm cache, so each starts from the same RSS.
  for mode in idle slowloris slowread; do
    mirror_start "$dir/cache" --tag-ttl 1h || { R[bounds,load_error]="did not restart"; return 0; }
    sleep 1
    if [[ $mode == idle ]]; then
      R[bounds,rest_rss]=$(mb "$(kib_of "$MIRROR_PID" VmRSS)")
      # At rest (rest_*; idle_* are the 500-idle-connections load's). What of it is the
      # process's own (heap, stacks) rather than clean pages of the binary
      # and of libc, which the kernel shares and may drop.
      R[bounds,rest_private]=$(mb "$(awk '/^Private_Dirty:/ { print $2 }' "/proc/$MIRROR_PID/smaps_rollup")")
      R[bounds,rest_pss]=$(mb "$(awk '/^Pss:/ { print $2 }' "/proc/$MIRROR_PID/smaps_rollup")")
      R[bounds,rest_anon]=$(mb "$(kib_of "$MIRROR_PID" RssAnon)")
      R[bounds,rest_file]=$(mb "$(kib_of "$MIRROR_PID" RssFile)")
    fi
    log "bench: load $mode for $LOAD_SECONDS s"
    local -a args=(--conns 500)
    [[ $mode == slowread ]] && args=(--conns 64 --rate 10240 --path "$big_path")
    out=$(nsx timeout -k 5 $((LOAD_SECONDS + 60)) "$PY" "$REPO_ROOT/tests/e2e/load.py" \
      --addr "$MIRROR_ADDR" --pid "$MIRROR_PID" --mode "$mode" --seconds "$LOAD_SECONDS" "${args[@]}") || true
    echo "$out" >> "$LOGS/load.log"
    base=$(kv rss_before_kib "$out")
    R[bounds,${mode}_rss]=$(mb "$(kv rss_max_kib "$out")")
    R[bounds,${mode}_delta]=$(mb $(($(kv rss_max_kib "$out") - base)))
    # Growth per connection the mirror holds: all 64 readers; of 500 idle or slowloris
    # sockets at most MAX_CONNS (the rest are closed for newcomers).
    R[bounds,${mode}_per]=$(awk -v d=$(($(kv rss_max_kib "$out") - base)) -v n="$([[ $mode == slowread ]] && echo 64 || echo $MAX_CONNS)" \
      'BEGIN { printf "%.1f", d / n }')
    R[bounds,${mode}_v2]="$(kv v2_median_ms "$out") / $(kv v2_max_ms "$out")"
    R[bounds,${mode}_failed]=$(kv probes_failed "$out")
    mirror_stop
  done
  # The static binary the packages and images ship (no libc.so or ld.so mapped beside it).
  if [[ -x $REGMIRROR_STATIC ]]; then
    local MIRROR=$REGMIRROR_STATIC
    if mirror_start "$dir/cache" --tag-ttl 1h; then
      sleep 1
      R[bounds,static_rss]=$(mb "$(kib_of "$MIRROR_PID" VmRSS)")
      R[bounds,static_anon]=$(mb "$(kib_of "$MIRROR_PID" RssAnon)")
      R[bounds,static_file]=$(mb "$(kib_of "$MIRROR_PID" RssFile)")
      R[bounds,static_size]=$(mb $(($(stat -c %s "$REGMIRROR_STATIC") / 1024)))
      mirror_stop
    fi
  fi
  rm -rf "$dir/cache"
}

# bench_bounds_rows: the results as a Markdown table.
bench_bounds_rows() {
  local n
  for n in 10000 100000; do
    echo "| restart → first HIT with $n cached blobs: s · RSS after the index · peak (MiB) | ${R[bounds,hit_$n]:--} s · ${R[bounds,rss_$n]:--} · ${R[bounds,peak_$n]:--} |"
  done
  echo "| idle RSS (MiB, fresh process on a warm cache; target ≤ 3) · of it private dirty · PSS | ${R[bounds,rest_rss]:--} · ${R[bounds,rest_private]:--} · ${R[bounds,rest_pss]:--} |"
  echo "| that idle RSS: anonymous (heap, stacks) · file pages (the binary's code, and libc's: shared, clean) | ${R[bounds,rest_anon]:--} · ${R[bounds,rest_file]:--} |"
  echo "| idle RSS of the static binary packages and images ship (${REGMIRROR_STATIC#"$REPO_ROOT"/}, ${R[bounds,static_size]:--} MiB; \`cross/build.sh amd64\` makes it): MiB · anonymous · file | ${R[bounds,static_rss]:--} · ${R[bounds,static_anon]:--} · ${R[bounds,static_file]:--} |"
  echo "| regmirror built with sha2's soft backend: CPU-s per GB filled (cold GET, median of 3) | ${R[bounds,softfill_gb]:--} |"
  echo "| SHA-256 CPU-s per GB: this machine's backend · sha2 soft (as a Pi 4 runs) | ${R[bounds,sha_native]:--} (${R[bounds,sha_native_mbs]:--} MB/s) · ${R[bounds,sha_soft]:--} (${R[bounds,sha_soft_mbs]:--} MB/s) |"
  # Per connection, by design: an idle one its task; a slowloris one also the head buffer;
  # a reader its task and the boxed handler (sendfile: no user-space buffer).
  local slow rd
  slow=$(awk -v a=$TASK_KIB -v b=$HEAD_BUF_KIB 'BEGIN { print a + b }')
  rd=$(awk -v a=$TASK_KIB -v b=$HANDLER_KIB 'BEGIN { print a + b }')
  echo "| 500 idle connections ($MAX_CONNS held): RSS max (MiB) · growth ÷ $MAX_CONNS · by design (task) | ${R[bounds,idle_rss]:--} · ${R[bounds,idle_per]:--} KiB · $TASK_KIB KiB |"
  echo "| 500 idle: /v2/ latency median / max (ms), failed probes | ${R[bounds,idle_v2]:--}, ${R[bounds,idle_failed]:--} failed |"
  echo "| 500 slowloris, 1 byte/s ($MAX_CONNS held): RSS max · growth ÷ $MAX_CONNS · by design (task + head buffer) | ${R[bounds,slowloris_rss]:--} · ${R[bounds,slowloris_per]:--} KiB · $slow KiB |"
  echo "| 500 slowloris: /v2/ latency median / max (ms), failed probes | ${R[bounds,slowloris_v2]:--}, ${R[bounds,slowloris_failed]:--} failed |"
  echo "| 64 readers of a cached blob at 10 KB/s: RSS max · growth ÷ 64 · by design (task + handler; sendfile, no buffer) | ${R[bounds,slowread_rss]:--} · ${R[bounds,slowread_per]:--} KiB · $rd KiB |"
  echo "| 64 slow readers: /v2/ latency median / max (ms), failed probes | ${R[bounds,slowread_v2]:--}, ${R[bounds,slowread_failed]:--} failed |"
  local k
  for k in restart_error sha_error softfill_error load_error; do
    [[ -z ${R[bounds,$k]:-} ]] || echo "| note: $k | ${R[bounds,$k]} |"
  done
}
