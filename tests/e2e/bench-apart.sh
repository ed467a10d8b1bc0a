# shellcheck shell=bash
# Part of tests/e2e/bench.sh (sourced, after bench-cold.sh, whose helpers it uses): the cold
# path again with the mirror apart, as it is in an office, instead of sharing both cores with
# the upstream and the client:
#   - pinned: the cold GET (regmirror vs distribution's proxy) and the cold skopeo pull (vs
#     direct) with the mirror on CPU 1 and the client and upstream on CPU 0
#   - link: the cold skopeo pulls (one, and 8 at once) with the upstream behind a
#     BENCH_LINK_RATE link (tc HTB on what its port sends), an office's uplink rather than a
#     loopback upstream faster than any
# Results go to R[pin,…] and R[link,…]; rows to print are in bench_pinned_rows and
# bench_link_rows.

# pin_upstream CPUS: moves every thread of the upstream registry to CPUS.
pin_upstream() { taskset -a -p -c "$1" "$UP_PID" > /dev/null; }

# bench_pinned DIR: the cold GET and the cold skopeo pull again with the mirror on a core of
# its own — the mirror pinned to CPU 1, the client and the upstream to CPU 0, for the direct
# pull too. Unpinned, the three share both cores and every cycle the fill spends is one the
# client does not get; in an office the mirror is a box of its own (a Pi Zero has one core
# for it). The client and the upstream share CPU 0 in both runs alike, so the ratio is what
# the mirror adds. Results go to R[pin,…].
bench_pinned() {
  local dir=$1 rep m a b
  if (($(nproc) < 2)); then
    R[pin,error]="one CPU: nothing to pin"
    return 0
  fi
  mkdir -p "$dir"
  SCENARIO=pinned
  local -a gr=() gx=() rx=() pd=() pr=() r1=()
  local CLIENT_CPUS=0 # skopeo_copy and curl_s pin the client with it
  log "bench: pinned (client and upstream on CPU 0, the mirror on CPU 1): cold GET $BENCH_PAIRS rounds, skopeo $BENCH_PULL_PAIRS rounds"
  pin_upstream 0
  for ((rep = 1; rep <= BENCH_PAIRS; rep++)); do
    if ((rep % 2)); then a=regmirror b=distribution; else a=distribution b=regmirror; fi
    for m in $a $b; do
      if [[ $m == regmirror ]]; then
        cold_get "taskset -c 1 $REGMIRROR" "$dir/cache-rm" || R[pin,error]="regmirror cold GET failed"
        gr+=("$COLD_T")
      else
        cold_get "taskset -c 1 $DISTRIBUTION" "$dir/cache-dist" || R[pin,error]="distribution cold GET failed"
        gx+=("$COLD_T")
      fi
      mirror_stop
    done
    [[ -z ${R[pin,error]:-} ]] || break
    rx+=("$(ratio "${gx[-1]}" "${gr[-1]}")")
  done
  rm -rf "$dir"/cache-*
  for ((rep = 1; rep <= BENCH_PULL_PAIRS; rep++)); do
    [[ -z ${R[pin,error]:-} ]] || break
    local MIRROR="taskset -c 1 $REGMIRROR"
    pull_pair "$dir" pin || break
    read -r a b <<< "$PAIR"
    pd+=("$a") pr+=("$b")
    r1+=("$(ratio "${pr[-1]}" "${pd[-1]}")")
  done
  pin_upstream "0-$(($(nproc) - 1))"
  R[pin,get_rm_s]=$(printf '%.3f\n' "${gr[@]}" | median)
  R[pin,get_dist_s]=$(printf '%.3f\n' "${gx[@]}" | median)
  R[pin,get_rm_vs_dist]=$(printf '%s\n' "${rx[@]}" | median)
  R[pin,get_rm_vs_dist_all]="${rx[*]}"
  pull_results pin
}

# bench_pinned_rows: bench_pinned's results as Markdown table rows.
bench_pinned_rows() {
  echo "| pinned, the mirror on a core of its own (CPU 1; client and upstream on CPU 0): cold GET seconds (median of $BENCH_PAIRS) | regmirror ${R[pin,get_rm_s]:--} · distribution ${R[pin,get_dist_s]:--} |"
  echo "| pinned: cold GET, regmirror's speed ÷ distribution's proxy's (per pair: ${R[pin,get_rm_vs_dist_all]:--}) | **${R[pin,get_rm_vs_dist]:--}×** |"
  echo "| pinned: cold skopeo pull of big, seconds (median of $BENCH_PULL_PAIRS) | direct ${R[pin,pull_direct_s]:--} · regmirror ${R[pin,pull_rm_s]:--} |"
  echo "| pinned: cold skopeo pull, regmirror ÷ direct, time (target ≤ 1.1; per pair: ${R[pin,pull_rm_vs_direct_all]:--}) | **${R[pin,pull_rm_vs_direct]:--}×** |"
  [[ -z ${R[pin,error]:-} ]] || echo "| note: pinned | ${R[pin,error]} |"
}

BENCH_LINK_RATE=${BENCH_LINK_RATE:-1gbit} # the upstream's link in the `link` part (tc rate)

# link_shape PORT RATE: in the netns, what is sent from PORT (the upstream) goes through an
# HTB class of RATE; everything else through one too fast to matter. Fails where the kernel
# has no HTB.
link_shape() {
  {
    nsx tc qdisc add dev lo root handle 1: htb default 10 &&
      nsx tc class add dev lo parent 1: classid 1:10 htb rate 100gbit quantum 200000 &&
      nsx tc class add dev lo parent 1: classid 1:1 htb rate "$2" ceil "$2" quantum 200000 &&
      nsx tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport "$1" 0xffff flowid 1:1
  } 2> /dev/null
}
link_unshape() { nsx tc qdisc del dev lo root 2> /dev/null || true; }

# bench_link DIR: the cold skopeo pulls again with the upstream behind a BENCH_LINK_RATE link
# (an office's uplink, not a loopback upstream faster than any): one pull direct and through
# regmirror, 8 at once through regmirror and straight from upstream. Results go to R[link,…].
bench_link() {
  local dir=$1 rep a b ms failed
  local -a pd=() pr=() p8=() d8=() r1=() r8=() r88=()
  mkdir -p "$dir"
  SCENARIO=link
  log "bench: cold skopeo pulls with the upstream behind a $BENCH_LINK_RATE link, $BENCH_PULL_PAIRS rounds"
  if ! link_shape "${UP_ADDR##*:}" "$BENCH_LINK_RATE"; then
    link_unshape
    R[link,error]="the kernel has no tc htb: not measured"
    return 0
  fi
  local MIRROR=$REGMIRROR
  for ((rep = 1; rep <= BENCH_PULL_PAIRS; rep++)); do
    pull_pair "$dir" link || break
    read -r a b <<< "$PAIR"
    pd+=("$a") pr+=("$b")
    mirror_start "$dir/cache8" --tag-ttl 1h || { R[link,error]="regmirror did not start"; break; }
    read -r ms failed < <(pulls_at_once 8 "$dir" out)
    ((failed == 0)) || R[link,error]="$failed of 8 pulls through regmirror failed"
    p8+=("$ms")
    mirror_stop
    rm -rf "$dir"/out? "$dir/cache8"
    read -r ms failed < <(MIRROR_ADDR=$UP_ADDR pulls_at_once 8 "$dir" direct)
    ((failed == 0)) || R[link,error]="$failed of 8 direct pulls failed"
    d8+=("$ms")
    rm -rf "$dir"/out?
    r1+=("$(ratio "${pr[-1]}" "${pd[-1]}")")
    r8+=("$(ratio "${p8[-1]}" "${pd[-1]}")")
    r88+=("$(ratio "${p8[-1]}" "${d8[-1]}")")
  done
  link_unshape
  pull_results link
  R[link,pull8_rm_s]=$(ratio "$(printf '%s\n' "${p8[@]}" | median)" 1000)
  R[link,direct8_s]=$(ratio "$(printf '%s\n' "${d8[@]}" | median)" 1000)
  R[link,pull8_vs_direct]=$(printf '%s\n' "${r8[@]}" | median)
  R[link,pull8_vs_direct_all]="${r8[*]}"
  R[link,pull8_vs_direct8]=$(printf '%s\n' "${r88[@]}" | median)
  R[link,pull8_vs_direct8_all]="${r88[*]}"
}

# bench_link_rows: bench_link's results as Markdown table rows.
bench_link_rows() {
  local l=$BENCH_LINK_RATE
  echo "| upstream behind a $l link: cold skopeo pull of big, seconds (median of $BENCH_PULL_PAIRS) | direct ${R[link,pull_direct_s]:--} · regmirror ${R[link,pull_rm_s]:--} |"
  echo "| upstream behind a $l link: cold skopeo pull, regmirror ÷ direct, time (target ≤ 1.1; per pair: ${R[link,pull_rm_vs_direct_all]:--}) | **${R[link,pull_rm_vs_direct]:--}×** |"
  echo "| upstream behind a $l link: 8 simultaneous cold pulls, seconds (median) | through regmirror ${R[link,pull8_rm_s]:--} · straight from upstream ${R[link,direct8_s]:--} |"
  echo "| upstream behind a $l link: 8 cold pulls through regmirror ÷ one direct pull (target ≤ 1.15; per pair: ${R[link,pull8_vs_direct_all]:--}) | **${R[link,pull8_vs_direct]:--}×** |"
  echo "| upstream behind a $l link: 8 cold pulls through regmirror ÷ the same 8 straight from upstream (per pair: ${R[link,pull8_vs_direct8_all]:--}) | ${R[link,pull8_vs_direct8]:--}× |"
  [[ -z ${R[link,error]:-} ]] || echo "| note: link | ${R[link,error]} |"
}
