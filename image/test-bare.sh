#!/usr/bin/env bash
# image/test-bare.sh [BINARY] — the static amd64 binary (cross/build.sh amd64) with nothing
# around it, in a private loopback-only network namespace with a local upstream (Debian's
# docker-registry, tests/seed.py's small set):
#
#  1. An empty root: a directory holding only the binary and a writable cache dir, no libc,
#     no CA files, no /etc, no /dev, no /proc; `chroot --userspec=65532:65532` into it and
#     serve. skopeo pulls through it (digests checked), the cache fills, /_regmirror/status
#     answers, and the process's root really is that directory.
#  2. boot2docker's bootlocal.sh, with the lines README.md's "boot2docker-like hosts" gives
#     (block 3), as written but for the persistent dir (a scratch dir here) and an
#     --upstream for the local registry: the mirror it starts serves a pull.
# Prints `ok N - …`/`not ok N - …` lines and `N passed, M failed`; exits non-zero on a failure.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

apt_ensure docker-registry skopeo curl jq iproute2 python3 coreutils file
BIN=${1:-$(binary_path amd64)}
[ -x "$BIN" ] || BIN=$("$REPO_ROOT/cross/build.sh" amd64 | tail -n1)

test_begin bare
check_fail_hook() { show_mirror_log; }
upstream_start
seed_upstream small

# 1. The empty root.
ROOT=$WORK/root
mkdir -p "$ROOT/cache"
install -m 0755 "$BIN" "$ROOT/regmirror"
chown 65532:65532 "$ROOT/cache"
check "bare: the binary is static (no libc needed)" bash -c 'file -b "$1" | tee /dev/fd/2 | grep -qE "statically linked|static-pie linked"' _ "$ROOT/regmirror"
root_is_empty() {
    local got
    got=$(cd "$ROOT" && find . -mindepth 1 | sort | tr '\n' ' ')
    [ "$got" = "./cache ./regmirror " ] && echo "root holds: $got"
}
check "bare: the root holds only /regmirror and /cache" root_is_empty

MIRROR="chroot --userspec=65532:65532 $ROOT /regmirror"
mirror_start /cache || true   # /cache inside the root
if kill -0 "$MIRROR_PID" 2>/dev/null; then ok "bare: serves from the empty root"; else not_ok "bare: serves from the empty root"; show_mirror_log; fi
in_empty_root() {  # the server's root is $ROOT and it runs as 65532
    local r u
    r=$(readlink "/proc/$MIRROR_PID/root"); u=$(awk '/^Uid:/{print $2}' "/proc/$MIRROR_PID/status")
    [ "$r" = "$ROOT" ] && [ "$u" = 65532 ] && echo "pid $MIRROR_PID: root $r, uid $u"
}
check "bare: the server's root is the empty dir and its uid 65532" in_empty_root
check "bare: skopeo pulls library/alpine:latest through it (digests match)" \
    pull_verify library/alpine latest "$WORK/out1" ""
check "bare: skopeo pulls library/busybox:v2 through it (digests match)" \
    pull_verify library/busybox v2 "$WORK/out2" ""
cache_filled() {
    local n
    n=$(find "$ROOT/cache" -type f | wc -l)
    [ "$n" -gt 0 ] && [ "$(find "$ROOT/cache" -type f ! -uid 65532 | wc -l)" = 0 ] && echo "$n files in the cache, owned by 65532"
}
check "bare: the cache holds the blobs, written by uid 65532" cache_filled
check "bare: /_regmirror/status answers" bash -c 'nsenter --net="/run/netns/$1" -- curl -fsS --max-time 10 "http://$2/_regmirror/status" | jq -c . | cut -c1-150' _ "$NS" "$MIRROR_ADDR"
mirror_stop

# 2. boot2docker's bootlocal.sh, as the README writes it.
B2D=$WORK/b2d
mkdir -p "$B2D"
install -m 0755 "$BIN" "$B2D/regmirror"
bootlocal() {
    local text
    text=$(readme_block "$REPO_ROOT/README.md" "boot2docker-like hosts" 3) || { echo "no block 3 in the README section"; return 1; }
    text=$(sed -e "s|/var/lib/boot2docker|$B2D|g" \
        -e "s|regmirror serve |regmirror serve --listen $MIRROR_ADDR --upstream docker.io=http://$UP_ADDR |" <<< "$text")
    { echo '#!/bin/sh'; echo "$text"; } > "$B2D/bootlocal.sh"
    echo "+ bootlocal.sh as run:"; sed 's/^/+   /' "$B2D/bootlocal.sh"
    nsx sh "$B2D/bootlocal.sh"
    local pid
    pid=$(pgrep -f "^$B2D/regmirror serve") || { echo "no regmirror started"; return 1; }
    echo "$pid" >> "$PIDFILE"
    wait_http "http://$MIRROR_ADDR/v2/" 20 || { tail "$B2D/regmirror.log"; return 1; }
    pull_verify library/busybox v2 "$WORK/out3" "" || { tail "$B2D/regmirror.log"; return 1; }
    [ -n "$(find "$B2D/regmirror-cache" -type f)" ] && echo "pulled through the mirror bootlocal.sh started; cache in $B2D/regmirror-cache"
}
check "readme: boot2docker bootlocal.sh as written starts the static binary, which serves a pull" bootlocal
summary
