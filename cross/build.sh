#!/usr/bin/env bash
# cross/build.sh TARGET — build a static, size-optimised release binary of
# regmirror for a Raspberry Pi (or amd64, for the container image).
#
#   TARGET   Rust triple                       runs on
#   aarch64  aarch64-unknown-linux-gnu         Pi 3/4/400/5, Zero 2 W, CM3/CM4 (64-bit OS)
#   armv7    armv7-unknown-linux-gnueabihf     Pi 2 and later with a 32-bit OS
#   armv6    arm-unknown-linux-gnueabi         Pi Zero / Zero W / Pi 1 (ARM1176JZF-S) and
#                                              every later 32-bit Pi
#   amd64    x86_64-unknown-linux-gnu          PCs, the linux/amd64 image
#   armv5    armv5te-unknown-linux-gnueabi     (extra; see below)
#
# The armv6 choice. The Pi Zero's ARM1176JZF-S is ARMv6KZ + VFPv2, no NEON.
#  - Debian's armhf glibc is built for ARMv7 (Thumb-2, VFPv3): anything linked
#    with it dies with SIGILL on an ARM1176 (why Raspbian rebuilt armhf).
#  - Rust's ARMv6 hard-float target (arm-unknown-linux-gnueabihf) would need an
#    ARMv6 hard-float glibc to link statically; Debian has none.
#  - Debian's armel glibc is ARMv5TE soft-float, a subset every 32-bit Pi runs.
#    Two Rust targets link with it: armv5te-unknown-linux-gnueabi and
#    arm-unknown-linux-gnueabi (ARMv6, soft-float). armv5te was the first
#    choice, but it has no 64-bit atomics (max_atomic_width 32) and regmirror
#    uses AtomicU64, so it does not compile. ARMv6K has LDREXD/STREXD and the
#    ARMv6 target provides AtomicU64, so `armv6` = arm-unknown-linux-gnueabi +
#    armel glibc. Soft-float costs little: the mirror is I/O- and hash-bound
#    (sha2 is integer code). The binary's only ARMv7/NEON instructions are
#    ring's NEON routines, picked at run time only when the CPU reports NEON
#    (an ARM1176 does not); cross/test.sh runs it with `qemu-arm -cpu arm1176`.
#  - `armv5` (armv5te) stays available for code without 64-bit atomics.
#
# Toolchain: Debian's rustc-web/cargo-web (/usr/bin, 1.96) with the std source
# from rust-web-src, std rebuilt for the target (-Zbuild-std, enabled with
# RUSTC_BOOTSTRAP=1 since this is a stable compiler), Debian's cross gcc as the
# linker and C compiler (ring's C/asm). rustup's toolchain is not used: it is
# first on PATH but has no ARM std and cannot fetch one here.
#
# Output: target/cross/<triple>/regmirror (cargo works in
# target/cross/build-<triple>, apart from the host's target/ so host builds are
# not invalidated). The path is the last line on stdout; the rest is stderr.
#
# Env: REGMIRROR_SRC  source tree to build (default: this repository)
#      CROSS_TARGET_DIR  cargo target dir (default: target/cross of this repository)
#      CROSS_JOBS  cargo -j (default: nproc)
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

[ $# -eq 1 ] || die "usage: $0 aarch64|armv7|armv6|amd64|armv5"
SHORT=$1
TRIPLE=$(target_triple "$SHORT")
SRC=${REGMIRROR_SRC:-$REPO_ROOT}
SRC=$(cd "$SRC" && pwd)
[ -f "$SRC/Cargo.toml" ] || die "no Cargo.toml in $SRC"

case "$TRIPLE" in
    aarch64-*) GCC=aarch64-linux-gnu ;;
    armv7-*)   GCC=arm-linux-gnueabihf ;;
    arm-*|armv5te-*) GCC=arm-linux-gnueabi ;;
    x86_64-*)  GCC=x86_64-linux-gnu ;;
esac
command -v "$GCC-gcc" >/dev/null && [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] \
    || "$(dirname "$0")/setup-debian.sh" >&2

UPPER=$(echo "$TRIPLE" | tr 'a-z-' 'A-Z_')
LOWER=$(echo "$TRIPLE" | tr '-' '_')
export RUSTC=/usr/bin/rustc            # never rustup's (first on PATH, no ARM std)
export RUSTC_BOOTSTRAP=1               # -Zbuild-std on a stable compiler
export "CARGO_TARGET_${UPPER}_LINKER=$GCC-gcc"
export "CC_${LOWER}=$GCC-gcc" "AR_${LOWER}=$GCC-ar"
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
# Static, and the same bytes wherever the tree or the cargo home is checked out.
# With an explicit --target these flags reach only target code, not build scripts.
export RUSTFLAGS="-C target-feature=+crt-static -C force-unwind-tables=no --remap-path-prefix=$SRC=/build/regmirror --remap-path-prefix=$CARGO_HOME=/cargo"
unset CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
# The cc crate (ring's C) tracks SOURCE_DATE_EPOCH: the image scripts export it,
# and a changed value would rebuild ring and everything above it for nothing.
unset SOURCE_DATE_EPOCH

log "building $TRIPLE from $SRC into $CROSS_TARGET_DIR ($($RUSTC --version))"
start=$(date +%s)
(cd "$SRC" && timeout 3600 nice -n 10 /usr/bin/cargo build --release \
    -Zbuild-std=std,panic_abort --target "$TRIPLE" \
    --target-dir "$CROSS_TARGET_DIR/build-$TRIPLE" -j "${CROSS_JOBS:-$(nproc)}" --bin regmirror) >&2

OUT=$CROSS_TARGET_DIR/build-$TRIPLE/$TRIPLE/release/regmirror
[ -x "$OUT" ] || die "no binary at $OUT"
BIN=$(binary_path "$SHORT")
mkdir -p "$(dirname "$BIN")"
cmp -s "$OUT" "$BIN" || cp -p "$OUT" "$BIN"
desc=$(file -b "$BIN")
case "$desc" in
    *"statically linked"*|*"static-pie linked"*) ;;
    *) die "not static: $desc" ;;
esac
size=$(stat -c %s "$BIN")
log "$TRIPLE: $size bytes ($(awk -v s="$size" 'BEGIN{printf "%.2f", s/1048576}') MiB), $(( $(date +%s) - start )) s: $desc"
[ "$size" -le $((3 * 1024 * 1024)) ] || log "warning: $BIN is over the 3 MiB budget"
echo "$BIN"
