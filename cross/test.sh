#!/usr/bin/env bash
# cross/test.sh TARGET — run the binary from cross/build.sh under qemu-user with
# the smallest Pi CPU of that family and pull images through it.
#
#   aarch64 → qemu-aarch64 -cpu cortex-a53 (Pi 3, Zero 2 W)
#   armv7   → qemu-arm -cpu cortex-a7      (Pi 2)
#   armv6   → qemu-arm -cpu arm1176        (Pi Zero / Pi 1)
#   armv5   → qemu-arm -cpu arm926         (not a Pi; see cross/build.sh)
#   amd64   → native
#
# Everything (a local upstream registry, regmirror, skopeo) runs inside a private
# network namespace that has only loopback. Upstream is Debian's docker-registry
# holding a tiny generated image set (cross/testimage.py); regmirror is told it
# is Docker Hub (--upstream docker.io=http://127.0.0.1:UP). Prints TAP-ish
# `ok N - …` / `not ok N - …` lines and a summary; exits non-zero on a failure.
#
# TEST_MIRROR=distribution swaps regmirror for distribution's proxy mode (to
# debug this harness before `regmirror serve` exists); --help is still checked.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || die "usage: $0 aarch64|armv7|armv6|amd64|armv5"
SHORT=$1
TRIPLE=$(target_triple "$SHORT")
BIN=$(binary_path "$SHORT")
[ -x "$BIN" ] || BIN=$("$(dirname "$0")/build.sh" "$SHORT" | tail -n1)
read -r -a QEMU <<< "$(qemu_for "$SHORT")"
apt_ensure qemu-user docker-registry skopeo curl iproute2 python3
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

WORK=$(mktemp -d /tmp/regmirror-crosstest.XXXXXX)
NS=rmx-$$
PIDS=()
cleanup() {
    local rc=$?
    stop_pids "${PIDS[@]}"
    netns_delete "$NS"
    finish_work "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


echo "# $TRIPLE: $BIN ($(stat -c %s "$BIN") bytes) under ${QEMU[*]:-native}"
netns_create "$NS"

# 0. Static, and within the size budget (3 MiB) the Pi packaging promises.
size_ok() {
    local size desc
    size=$(stat -c %s "$BIN"); desc=$(file -b "$BIN")
    case "$desc" in *"statically linked"*|*"static-pie linked"*) ;; *) echo "$desc"; return 1 ;; esac
    echo "$size bytes = $(awk -v s="$size" 'BEGIN{printf "%.2f", s/1048576}') MiB, static"
    [ "$size" -le $((3 * 1024 * 1024)) ]
}
check "$SHORT: static binary within the 3 MiB budget" size_ok

# 1. The binary starts at all on this CPU (SIGILL would show here first).
check "$SHORT: regmirror --help runs under ${QEMU[*]:-native}" \
    bash -c '"$@" --help | grep -m1 serve' _ timeout 60 "${QEMU[@]}" "$BIN"

# 2. A local upstream with a tiny image set.
UP=5001 MP=5000
start_registry "$NS" "$WORK/upstream" $UP
UP_PID=$REGISTRY_PID; PIDS+=("$UP_PID")
in_ns "$NS" timeout 120 python3 "$(dirname "$0")/testimage.py" http://127.0.0.1:$UP library/tiny > "$WORK/digests.json"
MULTI=$(jq -r .multi "$WORK/digests.json"); V2=$(jq -r .v2 "$WORK/digests.json")
echo "# upstream: library/tiny:multi=$MULTI library/tiny:v2=$V2"

# 3. The mirror.
if [ "${TEST_MIRROR:-regmirror}" = distribution ]; then
    start_registry "$NS" "$WORK/mirror" $MP http://127.0.0.1:$UP
    MIRROR_PID=$REGISTRY_PID; MIRROR_LOG=$WORK/mirror/log
else
    MIRROR_LOG=$WORK/regmirror.log
    ip netns exec "$NS" "${QEMU[@]}" "$BIN" serve --listen 127.0.0.1:$MP \
        --cache-dir "$WORK/cache" --upstream docker.io=http://127.0.0.1:$UP -v \
        > "$MIRROR_LOG" 2>&1 &
    MIRROR_PID=$!
fi
PIDS+=("$MIRROR_PID")
if in_ns "$NS" bash -c "$(declare -f wait_http); wait_http http://127.0.0.1:$MP/v2/ 60"; then
    ok "$SHORT: regmirror serve answers /v2/"
else
    not_ok "$SHORT: regmirror serve answers /v2/"; tail -8 "$MIRROR_LOG" | cut -c1-300 | sed 's/^/#   /'
fi

pull() {  # pull REF OUTDIR WANT_DIGEST [skopeo args…]
    local ref=$1 out=$2 want=$3; shift 3
    in_ns "$NS" timeout 180 skopeo --override-arch arm64 copy -q --retry-times 0 "$@" \
        --src-tls-verify=false "docker://127.0.0.1:$MP/$ref" "dir:$out" || return 1
    local n; n=$(check_dir_copy "$out" "$want") || return 1
    echo "manifest $want, $n digest-named files verified"
}

check "$SHORT: pull multi-arch OCI index through the mirror (all platforms, digests match)" \
    pull library/tiny:multi "$WORK/out-multi" "$MULTI" --all
check "$SHORT: pull Docker v2 manifest through the mirror (digests match)" \
    pull library/tiny:v2 "$WORK/out-v2" "$V2"

# 4. Stop the upstream: what was pulled is served from the cache.
kill "$UP_PID" 2>/dev/null || true
timeout 10 tail --pid="$UP_PID" -f /dev/null || true
check "$SHORT: pull by digest again with upstream down (from cache)" \
    pull "library/tiny@$MULTI" "$WORK/out-cached" "$MULTI" --all

if ! kill -0 "$MIRROR_PID" 2>/dev/null; then
    not_ok "$SHORT: mirror still running at the end"; tail -8 "$MIRROR_LOG" | cut -c1-300 | sed 's/^/#   /'
else
    ok "$SHORT: mirror still running at the end"
fi
[ $FAILED -eq 0 ] || { echo "# mirror log tail:"; tail -8 "$MIRROR_LOG" | cut -c1-300 | sed 's/^/#   /'; }
echo "$((N - FAILED)) passed, $FAILED failed"
[ $FAILED -eq 0 ]
