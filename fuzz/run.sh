#!/bin/bash
# Runs every fuzz target for a bounded time and fails on any crash:
#
#   fuzz/run.sh SECONDS [TARGET...]      # default: every target in fuzz/Cargo.toml
#   FUZZ_RUNS=10000000 FUZZ_SANITIZER=none fuzz/run.sh 0     # the long run (see README.md)
#
# Each target runs in turn, one process (the machine is shared), for SECONDS with
# libFuzzer's -max_total_time (0: no time bound), or until FUZZ_RUNS inputs when that is
# set. It starts from its seed corpus in fuzz/corpus/TARGET/, which stays as it is: new
# inputs go to a scratch corpus (FUZZ_WORK/TARGET, default a temporary dir removed
# afterwards). A panic (a target's property assertions included), a sanitizer report, a
# leak, a timeout (FUZZ_TIMEOUT seconds for one input, default 10) or running out of
# memory (2 GiB) stops that target; its input is kept in fuzz/artifacts/TARGET/ and the
# exit status is 1. Prints one line per target: executions, seconds, result.
#
# FUZZ_MAX_LEN: libFuzzer's -max_len, the longest input tried (default: its own, 4096
# bytes or the longest corpus input).
# FUZZ_TARGET_DIR: where the targets are built (default fuzz/target). The targets are built
# once, then their binaries run: edits to the sources during a long run change nothing.
# FUZZ_SANITIZER: cargo fuzz's -s (default address; none is ~10x faster — our code is
# `forbid(unsafe_code)`, and overflow checks and debug assertions stay on either way).
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, -Cpasses=sancov-module) to
# rustc; on a stable toolchain RUSTC_BOOTSTRAP=1 lets it accept them, which is what this
# script sets (a nightly toolchain would not need it). Needs `cargo install cargo-fuzz`.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
export RUSTC_BOOTSTRAP=1
sanitizer=(-s "${FUZZ_SANITIZER:-address}")
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
target_dir=${FUZZ_TARGET_DIR:-$PWD/target}
triple=$(rustc -vV | sed -n 's/^host: //p')
cargo fuzz build "${sanitizer[@]}" --target-dir "$target_dir" || exit 1
if [ -n "${FUZZ_WORK:-}" ]; then
    work=$FUZZ_WORK
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
limits=(-max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -print_final_stats=1)
[ -z "${FUZZ_RUNS:-}" ] || limits+=(-runs="$FUZZ_RUNS")
[ -z "${FUZZ_MAX_LEN:-}" ] || limits+=(-max_len="$FUZZ_MAX_LEN")
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/$t" "artifacts/$t"
    log=$work/$t.log
    t0=$SECONDS
    "$target_dir/$triple/release/$t" -artifact_prefix="artifacts/$t/" "${limits[@]}" \
        "$work/$t" "corpus/$t" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    if [ $rc -eq 0 ]; then
        echo "ok     $t: ${runs:-?} executions in $((SECONDS - t0)) s, 0 crashes"
    else
        failed+=("$t")
        echo "CRASH  $t (exit $rc): ${runs:-?} executions; input in fuzz/artifacts/$t/; log tail:"
        grep -v '^#' "$log" | grep -Ev '^ +([0-9]+: |at )' | tail -n 25 | sed 's/^/    /'
    fi
done
[ ${#failed[@]} -eq 0 ] || {
    echo "fuzz: crashes in ${failed[*]}; reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/FILE"
    exit 1
}
echo "fuzz: ${#targets[@]} targets, no crash"
