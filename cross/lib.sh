# shellcheck shell=bash
# Helpers sourced by cross/*.sh and image/*.sh. Not executable on its own.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Shared apt settings. The stock image's docker-clean hook empties
# /var/cache/apt/archives whenever *any* apt run ends, which breaks installs that
# run concurrently with another engineer's ("cannot stat pathname … .deb"), so we
# keep downloaded .debs in a private archive dir and wait for the dpkg lock.
APT_ARCHIVES=/var/cache/regmirror-apt
APT_OPTS=(-o DPkg::Lock::Timeout=900 -o Dir::Cache::Archives="$APT_ARCHIVES")

SUDO=(); [ "$(id -u)" = 0 ] || SUDO=(sudo)

# apt_ensure PKG… — install whatever is missing; a no-op (one dpkg-query) when
# everything is there already, so scripts can call it on every run.
apt_ensure() {
    local missing=() p st
    for p in "$@"; do
        st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
        [ "$st" = installed ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    "${SUDO[@]}" mkdir -p "$APT_ARCHIVES/partial"
    export DEBIAN_FRONTEND=noninteractive
    # `update` does not wait for the lists lock and a mirror sync can make it
    # fail: retry a few times, then go on with the lists we have.
    local i
    for i in 1 2 3; do
        if timeout 600 "${SUDO[@]}" apt-get "${APT_OPTS[@]}" -q update >&2; then break; fi
        log "apt-get update failed (try $i), retrying"; sleep $((i * 5))
    done
    timeout 1800 "${SUDO[@]}" apt-get "${APT_OPTS[@]}" -q -y --no-install-recommends \
        install "${missing[@]}" >&2
}

# Rust target triple for one of our short names.
target_triple() {
    case "$1" in
        aarch64|arm64)            echo aarch64-unknown-linux-gnu ;;
        armv7|armhf|arm/v7)       echo armv7-unknown-linux-gnueabihf ;;
        armv6|arm/v6)             echo arm-unknown-linux-gnueabi ;;
        armv5|armv5te|armel)      echo armv5te-unknown-linux-gnueabi ;;
        amd64|x86_64)             echo x86_64-unknown-linux-gnu ;;
        *) die "unknown target '$1' (want aarch64, armv7, armv6 or amd64)" ;;
    esac
}

# Where cross/build.sh leaves the binary for a short target name. Each triple
# gets its own cargo target dir (build-<triple>): with -Zbuild-std, targets that
# share one dir overwrite each other's host build scripts (compiler_builtins)
# and every switch of target rebuilds everything.
CROSS_TARGET_DIR=${CROSS_TARGET_DIR:-$REPO_ROOT/target/cross}
binary_path() { echo "$CROSS_TARGET_DIR/$(target_triple "$1")/regmirror"; }

# qemu-user command for the smallest board of each target (empty for the host).
qemu_for() {
    case "$(target_triple "$1")" in
        aarch64-*) echo "qemu-aarch64 -cpu cortex-a53" ;;   # Pi 3 / Zero 2 W
        armv7-*)   echo "qemu-arm -cpu cortex-a7" ;;        # Pi 2
        arm-*)     echo "qemu-arm -cpu arm1176" ;;          # Pi Zero / Zero W / Pi 1
        armv5te-*) echo "qemu-arm -cpu arm926" ;;           # ARMv5TE (no Pi)
        x86_64-*)  echo "" ;;
    esac
}

# free_port — an unused TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS — poll until URL answers (any HTTP status).
wait_http() {
    local url=$1 secs=${2:-30} i
    for ((i = 0; i < secs * 5; i++)); do
        if curl -s -o /dev/null --max-time 2 "$url"; then return 0; fi
        sleep 0.2
    done
    return 1
}

# A private network namespace with loopback only: every client (and the servers
# it talks to) runs there, so a failing mirror can never make anything fall back
# to registry-1.docker.io on the internet. netns_create NAME; in_ns NAME cmd…
netns_create() {
    ip netns add "$1"
    ip netns exec "$1" ip link set lo up
}
netns_delete() { ip netns delete "$1" 2>/dev/null || true; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# start_registry NS DIR PORT [PROXY_URL] — Debian's docker-registry (CNCF
# distribution 2.8) on 127.0.0.1:PORT inside netns NS, storage and log under DIR.
# With PROXY_URL it is a pull-through mirror of that URL. Sets REGISTRY_PID.
start_registry() {
    local ns=$1 dir=$2 port=$3 proxy=${4:-}
    mkdir -p "$dir/data"
    {
        echo "version: 0.1"
        echo "log: {level: info, accesslog: {disabled: false}}"
        echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$port}"
        [ -z "$proxy" ] || echo "proxy: {remoteurl: $proxy}"
    } > "$dir/config.yml"
    ip netns exec "$ns" docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
    REGISTRY_PID=$!
    in_ns "$ns" bash -c "$(declare -f wait_http); wait_http http://127.0.0.1:$port/v2/ 30" \
        || { tail -20 "$dir/log" >&2; die "registry on :$port did not start"; }
}

# check_dir_copy DIR DIGEST — verify a `skopeo copy … dir:DIR`: the top-level
# manifest has DIGEST and every stored blob's sha256 matches its file name.
# Prints the number of digest-named files checked.
check_dir_copy() {
    local dir=$1 want=$2 f n=0 got
    [ -f "$dir/manifest.json" ] || { log "no $dir/manifest.json"; return 1; }
    got="sha256:$(sha256sum < "$dir/manifest.json" | cut -d' ' -f1)"
    [ "$got" = "$want" ] || { log "manifest digest $got != $want"; return 1; }
    for f in "$dir"/*; do
        [[ $(basename "$f") =~ ^[0-9a-f]{64}$ ]] || continue
        got=$(sha256sum < "$f" | cut -d' ' -f1)
        [ "$got" = "$(basename "$f")" ] || { log "blob $f has sha256 $got"; return 1; }
        n=$((n + 1))
    done
    echo "$n"
}

# --- shared by the test scripts (cross/test.sh, image/test-oci.sh, image/boot-test.sh)

# TAP-style reporting: ok/not_ok count into N and FAILED; `check WHAT CMD…` runs CMD with
# its output in $WORK/check.out and shows its last line (or its tail on failure).
N=0 FAILED=0
ok()     { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
check()  {
    local what=$1; shift
    if "$@" >"$WORK/check.out" 2>&1; then
        ok "$what"; tail -n1 "$WORK/check.out" | cut -c1-200 | sed 's/^/#   /'
    else
        not_ok "$what"; tail -15 "$WORK/check.out" | cut -c1-300 | sed 's/^/#   /'
    fi
}

# stop_pids PID…: TERM each, give each 10 s to go, then KILL.
stop_pids() {
    local p
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true; done
}

# finish_work RC: delete $WORK, unless the run failed or KEEP_WORK=1.
finish_work() {
    if [ "$1" -ne 0 ] || [ "${KEEP_WORK:-}" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
