# shellcheck shell=bash
# Part of tests/lib.sh: logging, installing Debian packages, and the names of the Rust
# targets cross/build.sh builds (where each binary goes, which qemu-user CPU runs it).

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

# crate_version — the version in Cargo.toml (of REGMIRROR_SRC when set).
crate_version() {
    sed -n 's/^version *= *"\(.*\)"/\1/p' "${REGMIRROR_SRC:-$REPO_ROOT}/Cargo.toml" | head -n1
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

# is_static FILE: `file` calls it a statically linked executable.
is_static() {
    case "$(file -b "$1")" in *"statically linked"*|*"static-pie linked"*) return 0 ;; esac
    return 1
}
