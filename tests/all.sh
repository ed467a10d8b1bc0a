#!/usr/bin/env bash
# The whole test suite, as README.md gives it: `tests/all.sh` as root (or `sudo tests/all.sh`).
#
# Installs what it needs (Debian packages: git, and Debian's Rust with its rustfmt and clippy
# if no cargo is on PATH), then runs, in order, each stage as one pass/fail line:
#   rust     cargo fmt --check, clippy -D warnings, cargo test (unit tests + in-process
#            integration tests against our fake upstream)
#   fuzz     every fuzz target (fuzz/, cargo-fuzz + libFuzzer) for FUZZ_SECONDS (20) each,
#            from its seed corpus; installs cargo-fuzz (crates.io) and g++ if missing
#   e2e      real clients (skopeo, podman, containerd, dockerd) through a release build,
#            Debian's docker-registry as upstream, all in a private network namespace; then
#            tests/e2e/crash.sh with CRASH_ROUNDS (10) rounds of kill -9 during cold pulls
#   ui       the status page in Debian's headless chromium after a scripted session, checked
#            against the JSON and /metrics, in a private network namespace; saves and
#            prints its screenshots (tests/ui/run.sh)
#   cross    static aarch64 and armv6 builds, each pulled through under qemu-user
#   image    the multi-arch FROM-scratch OCI image and its docker-archives (skopeo, docker
#            load + run with no registry, podman load, the README's container and
#            boot2docker commands), the static binary in an empty root, the Pi SD image's
#            network pieces (settings, wpa_supplicant, mDNS resolved from a netns), and the
#            SD image booted in qemu-system-aarch64 (DHCP, then a fixed address) serving pulls
#   docs     README.zh-CN.md gives the same commands as README.md (tests/e2e/readme-sync.py)
#   pkg      the amd64 .deb installed into a fresh bookworm root booted with systemd-nspawn,
#            pulled through with skopeo, upgraded and purged (pkg/test.sh); then the arm64,
#            armhf and armel .debs from the cross binaries (pkg/build.sh)
# Select stages with STAGES="rust e2e" (default: all). Needs root (network namespaces,
# dockerd). Prints `stages: N passed, M failed` last and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
STAGES=${STAGES:-rust fuzz e2e ui cross image docs pkg}
[ "$(id -u)" = 0 ] || { echo "tests/all.sh: run as root (network namespaces, dockerd)" >&2; exit 2; }

passed=0 failed=0 failures=()
stage() { # stage NAME COMMAND...
    local name=$1 t0=$SECONDS; shift
    echo "=== $name: $*"
    if "$@"; then
        passed=$((passed + 1)); echo "=== ok - $name ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1)); failures+=("$name"); echo "=== not ok - $name ($((SECONDS - t0)) s)"
    fi
}
want() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }

# apt_ensure PKG…: install what is missing (tests/lib.sh's, in a subshell so that its other
# helpers stay out of this script).
apt_ensure() { bash -c '. tests/lib.sh && apt_ensure "$@"' _ "$@"; }
apt_ensure git ca-certificates || { echo "could not install git" >&2; exit 1; }

# Rust: the machine's toolchain if there is one (rustup), else Debian's rustc-web 1.96 —
# with Debian's rustfmt and clippy, so that the rust stage checks formatting and lints too.
if ! command -v cargo >/dev/null; then
    # rustc-web installs /usr/bin/cargo and /usr/bin/rustc.
    cross/setup-debian.sh >/dev/null || { echo "could not install Debian's Rust" >&2; exit 1; }
fi
if [ "$(command -v cargo)" = /usr/bin/cargo ]; then
    apt_ensure rustfmt-web rust-web-clippy || { echo "could not install rustfmt and clippy" >&2; exit 1; }
fi

rust_checks() {
    if cargo fmt --version >/dev/null 2>&1; then cargo fmt --all -- --check || return 1
    else echo "(rustfmt not in this toolchain: skipped)"; fi
    if cargo clippy --version >/dev/null 2>&1; then cargo clippy --all-targets --locked -- -D warnings || return 1
    else echo "(clippy not in this toolchain: skipped)"; fi
    cargo test --locked
}

# fuzz: cargo-fuzz from crates.io if missing (about 3 min to build), g++ for libFuzzer
# itself; AddressSanitizer when the toolchain ships its runtime (rustup's does), else
# coverage-guided without it (Debian's rustc-web may not ship it).
fuzz_targets() {
    apt_ensure g++ || return 1
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        cargo install --locked cargo-fuzz || return 1
    fi
    if cargo fmt --version >/dev/null 2>&1; then
        cargo fmt --manifest-path fuzz/Cargo.toml -- --check || return 1
    fi
    local triple san=none
    triple=$(rustc -vV | sed -n 's/^host: //p')
    if compgen -G "$(rustc --print sysroot)/lib/rustlib/$triple/lib/*rt.asan.a" >/dev/null; then
        san=address
    fi
    FUZZ_SANITIZER=$san fuzz/run.sh "${FUZZ_SECONDS:-20}"
}

e2e() {
    tests/e2e/install-deps.sh && cargo build --release --locked &&
        MIRROR="$PWD/target/release/regmirror" tests/e2e/run.sh &&
        CRASH_ROUNDS=${CRASH_ROUNDS:-10} MIRROR="$PWD/target/release/regmirror" tests/e2e/crash.sh
}

cross_target() { # build and test one ARM target under qemu-user
    cross/setup-debian.sh && cross/build.sh "$1" && cross/test.sh "$1"
}

packages() { # the amd64 .deb booted and pulled through; then every other architecture's
    pkg/test.sh && pkg/build.sh arm64 armhf armel
}

images() {
    image/build-oci.sh && image/test-oci.sh && image/test-bare.sh && {
        img=$(image/build-sd.sh | tail -n 1) && image/test-sd-net.sh "$img" && image/boot-test.sh "$img"
    }
}

want rust && stage rust rust_checks
want fuzz && stage fuzz fuzz_targets
want e2e && stage e2e e2e
want ui && stage ui tests/ui/run.sh
want cross && stage cross-aarch64 cross_target aarch64
want cross && stage cross-armv6 cross_target armv6
want image && stage image images
want docs && stage docs python3 tests/e2e/readme-sync.py
want pkg && stage pkg packages

[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
