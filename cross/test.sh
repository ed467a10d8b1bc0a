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
# network namespace that has only loopback (tests/lib.sh). Upstream is Debian's
# docker-registry holding tests/seed.py's small set (an OCI index amd64 + arm64 and a
# Docker v2 manifest, real busybox inside); regmirror is told it is Docker Hub
# (--upstream docker.io=http://127.0.0.1:5000). Prints `ok N - …` / `not ok N - …`
# lines and `N passed, M failed`; exits non-zero on a failure.
#
# TEST_MIRROR=distribution swaps regmirror for distribution's proxy mode
# (tests/e2e/mirror-distribution.sh) to debug this harness; --help is still checked.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

[ $# -eq 1 ] || die "usage: $0 aarch64|armv7|armv6|amd64|armv5"
SHORT=$1
TRIPLE=$(target_triple "$SHORT")
BIN=$(binary_path "$SHORT")
[ -x "$BIN" ] || BIN=$("$(dirname "$0")/build.sh" "$SHORT" | tail -n1)
read -r -a QEMU <<< "$(qemu_for "$SHORT")"
apt_ensure qemu-user docker-registry skopeo curl jq iproute2 python3 file

test_begin cross
check_fail_hook() { show_mirror_log; }
echo "# $TRIPLE: $BIN ($(stat -c %s "$BIN") bytes) under ${QEMU[*]:-native}"

# 0. Static, and within the size budget (3 MiB) the Pi packaging promises.
size_ok() {
    local size
    size=$(stat -c %s "$BIN")
    is_static "$BIN" || { file -b "$BIN"; return 1; }
    echo "$size bytes = $(awk -v s="$size" 'BEGIN{printf "%.2f", s/1048576}') MiB, static"
    [ "$size" -le $((3 * 1024 * 1024)) ]
}
check "$SHORT: static binary within the 3 MiB budget" size_ok

# 1. The binary starts at all on this CPU (SIGILL would show here first).
help_runs() { timeout 60 "${QEMU[@]}" "$BIN" --help | grep -m1 serve; }
check "$SHORT: regmirror --help runs under ${QEMU[*]:-native}" help_runs

# 2. A local upstream with the small image set.
upstream_start
seed_upstream small

# 3. The mirror, under qemu-user.
if [ "${TEST_MIRROR:-regmirror}" = distribution ]; then
    MIRROR=$REPO_ROOT/tests/e2e/mirror-distribution.sh
else
    MIRROR="${QEMU[*]} $BIN"
fi
MIRROR_START_WAIT=60
if mirror_start "$WORK/cache"; then
    ok "$SHORT: regmirror serve answers /v2/"
else
    not_ok "$SHORT: regmirror serve answers /v2/"; show_mirror_log
fi

check "$SHORT: pull multi-arch OCI index through the mirror (all platforms, digests match)" \
    pull_verify library/alpine latest "$WORK/out-multi" ""
check "$SHORT: pull the arm64 platform of it alone (--override-arch arm64)" \
    pull_verify library/alpine latest "$WORK/out-arm64" arm64
check "$SHORT: pull Docker v2 manifest through the mirror (digests match)" \
    pull_verify library/busybox v2 "$WORK/out-v2" ""

# 4. Stop the upstream: what was pulled is served from the cache.
upstream_stop
pull_by_digest() {
    local d out=$WORK/out-cached
    d=$(img_digest library/alpine latest)
    skopeo_copy "library/alpine@$d" "$out" --all || return 1
    verify_dir "$out" library/alpine latest
}
check "$SHORT: pull by digest again with upstream down (from cache)" pull_by_digest

if kill -0 "$MIRROR_PID" 2>/dev/null; then
    ok "$SHORT: mirror still running at the end"
else
    not_ok "$SHORT: mirror still running at the end"; show_mirror_log
fi
summary
