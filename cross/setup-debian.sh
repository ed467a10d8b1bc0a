#!/usr/bin/env bash
# Install everything cross/ needs on Debian bookworm: Debian's own Rust (rustc-web
# 1.96 + the std source, since rustup cannot fetch ARM targets here), the ARM
# cross gccs + libcs (linkers and the static glibc), qemu-user to run the
# results, and the tools cross/test.sh uses. Idempotent: a second run costs one
# dpkg-query per package.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

apt_ensure \
    rustc-web cargo-web rust-web-src \
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-arm-linux-gnueabi \
    libc6-dev-arm64-cross libc6-dev-armhf-cross libc6-dev-armel-cross \
    gcc libc6-dev \
    qemu-user file \
    docker-registry skopeo curl jq iproute2 python3 ca-certificates

[ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] || die "rustc-web did not install /usr/bin/rustc"
log "ready: $(/usr/bin/rustc --version)"
