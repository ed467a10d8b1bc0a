#!/usr/bin/env bash
# pkg/build.sh ARCH… — Debian packages of regmirror, regmirror_<version>_<ARCH>.deb, made
# from the static binaries cross/build.sh produces (the same binaries the SD image and the
# container image are built from).
#
#   ARCH   binary (cross/build.sh)                    for
#   amd64  amd64: x86_64-unknown-linux-gnu            PCs and servers, Debian/Ubuntu
#   arm64  aarch64: aarch64-unknown-linux-gnu         Pi 3/4/400/5, Zero 2 W (64-bit OS)
#   armhf  armv6: arm-unknown-linux-gnueabi           Raspberry Pi OS 32-bit (every Pi),
#                                                     Debian armhf (Pi 2 and later)
#   armel  armv6: arm-unknown-linux-gnueabi           Debian armel (Pi Zero / Pi 1)
#   all    the four above
#
# Why armhf gets the ARMv6 binary, not the ARMv7 one: Raspberry Pi OS's 32-bit "armhf" is
# ARMv6 (Raspbian's rebuild, so that it runs on a Pi Zero and Pi 1), Debian's is ARMv7, and
# a package cannot tell which one it is installed on: an ARMv7 binary would die with
# SIGILL on a Pi Zero running the Pi's own OS. The binary is static, so the system's float
# ABI does not matter, and cross/test.sh armv6 runs this build on an emulated ARM1176.
#
# Why pkg/ next to cross/ and image/, not inside cross/: cross/ turns source into a static
# binary per CPU and checks it under qemu; packaging is one of three ways (with image/'s
# SD card and container image) to deliver those binaries, and like image/ it only consumes
# cross/build.sh's output.
#
# Each package holds /usr/bin/regmirror, the systemd unit (pkg/regmirror.service), the
# service user (pkg/sysusers.conf, created by the postinst), the configuration file
# /etc/regmirror/regmirror.conf (pkg/regmirror.conf; a conffile, so upgrades keep local
# edits), the man page (pkg/regmirror.1), and a copyright file listing the licences of the
# crates linked into the binary. Output is reproducible for a given commit: file times are
# SOURCE_DATE_EPOCH (default: the last commit's time), owners root, gzip without names.
#
# Output: PKG_OUT/regmirror_<version>_<ARCH>.deb (PKG_OUT defaults to target/pkg); the paths
# are printed on stdout, one per line, everything else goes to stderr.
# Env: PKG_VERSION  package version (default: Cargo.toml's)
#      PKG_MAINTAINER  the control file's Maintainer
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

PKG_DIR=$REPO_ROOT/pkg
OUT=${PKG_OUT:-$REPO_ROOT/target/pkg}
MAINTAINER=${PKG_MAINTAINER:-regmirror developers <regmirror@localhost>}
VERSION=${PKG_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/Cargo.toml" | head -n1)}
[ -n "$VERSION" ] || die "no version in Cargo.toml"

# Memory limits of the unit, sized for a Pi Zero (512 MB shared with the OS); see
# pkg/README.md for the measurements behind them.
MEMORY_HIGH=96M
MEMORY_MAX=128M

[ $# -ge 1 ] || die "usage: $0 amd64|arm64|armhf|armel|all …"
ARCHES=()
for a in "$@"; do
    case "$a" in
        all) ARCHES+=(amd64 arm64 armhf armel) ;;
        amd64|arm64|armhf|armel) ARCHES+=("$a") ;;
        *) die "unknown architecture '$a' (want amd64, arm64, armhf, armel or all)" ;;
    esac
done

command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (package dpkg)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH
COMMIT=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

binary_for() {
    case "$1" in
        amd64) echo amd64 ;;
        arm64) echo aarch64 ;;
        armhf|armel) echo armv6 ;;
    esac
}

# SystemCallArchitectures= of the unit: a 32-bit ARM binary may run on a 64-bit kernel.
syscall_archs() {
    case "$1" in
        armhf|armel) echo "native arm" ;;
        *) echo native ;;
    esac
}

# crate_licences SHORT: the licence of every crate linked into the binary for that target
# (normal dependencies of the regmirror package on that platform, not dev-dependencies),
# from cargo's own metadata.
crate_licences() {
    (cd "$REPO_ROOT" && RUSTC=/usr/bin/rustc /usr/bin/cargo metadata --format-version 1 --locked \
        --filter-platform "$(target_triple "$1")") | python3 -c '
import json, sys
m = json.load(sys.stdin)
pkgs = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
root = m["resolve"]["root"]
seen, todo = set(), [root]
while todo:
    i = todo.pop()
    if i in seen:
        continue
    seen.add(i)
    for d in nodes[i]["deps"]:
        if any(k["kind"] is None for k in d["dep_kinds"]):
            todo.append(d["pkg"])
seen.discard(root)
for p in sorted((pkgs[i] for i in seen), key=lambda p: (p["name"], p["version"])):
    print(" %s %s: %s" % (p["name"], p["version"], p.get("license") or "see its source"))
'
}

write_copyright() { # write_copyright SHORT
    cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: regmirror
Comment: /usr/bin/regmirror is a static binary. Besides regmirror itself it contains
 the Rust standard library (MIT or Apache-2.0), GNU libc (LGPL-2.1+, statically linked;
 its source is Debian's glibc source package, version $(dpkg-query -W -f='${Version}' libc6 2>/dev/null || echo unknown)),
 and these crates (build-time macro crates included), each under the licence it declares:
$(crate_licences "$1")

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) the regmirror developers
License: MIT or Apache-2.0
 The full texts are in /usr/share/common-licenses/Apache-2.0 and at
 https://opensource.org/license/mit.
EOF
}

mkdir -p "$OUT"

for arch in "${ARCHES[@]}"; do
    short=$(binary_for "$arch")
    # A no-op when the binary is up to date with the source.
    bin=$(timeout 3600 "$REPO_ROOT/cross/build.sh" "$short" | tail -n1) || die "cross/build.sh $short failed"
    root=$OUT/root-$arch
    rm -rf "$root"
    mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/lib/sysusers.d" \
        "$root/etc/regmirror" "$root/usr/share/man/man1" "$root/usr/share/doc/regmirror" \
        "$root/usr/share/lintian/overrides"

    install -m 0755 "$bin" "$root/usr/bin/regmirror"
    sed -e "s/@MEMORY_HIGH@/$MEMORY_HIGH/" -e "s/@MEMORY_MAX@/$MEMORY_MAX/" \
        -e "s/@SYSCALL_ARCHS@/$(syscall_archs "$arch")/" \
        "$PKG_DIR/regmirror.service" > "$root/lib/systemd/system/regmirror.service"
    ! grep -n '@[A-Z_]*@' "$root/lib/systemd/system/regmirror.service" || die "unit template not filled"
    install -m 0644 "$PKG_DIR/sysusers.conf" "$root/usr/lib/sysusers.d/regmirror.conf"
    install -m 0644 "$PKG_DIR/regmirror.conf" "$root/etc/regmirror/regmirror.conf"
    sed -e "s/@VERSION@/$VERSION/" \
        -e "s/^\.TH REGMIRROR 1 \"\"/.TH REGMIRROR 1 \"$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)\"/" \
        "$PKG_DIR/regmirror.1" | gzip -9n > "$root/usr/share/man/man1/regmirror.1.gz"
    write_copyright "$short" > "$root/usr/share/doc/regmirror/copyright" ||
        die "could not list the crates' licences (cargo metadata)"
    {
        echo "regmirror ($VERSION) unstable; urgency=medium"
        echo
        echo "  * Built from commit $COMMIT."
        echo
        echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n > "$root/usr/share/doc/regmirror/changelog.gz"
    # lintian takes a static-pie executable (ELF type DYN) for a shared library.
    echo "regmirror: shared-library-lacks-prerequisites [usr/bin/regmirror]" \
        > "$root/usr/share/lintian/overrides/regmirror"
    for s in postinst prerm postrm; do install -m 0755 "$PKG_DIR/debian/$s" "$root/DEBIAN/$s"; done
    echo /etc/regmirror/regmirror.conf > "$root/DEBIAN/conffiles"

    size_kib=$(du -k --apparent-size -s --exclude=DEBIAN "$root" | cut -f1)
    cat > "$root/DEBIAN/control" <<EOF
Package: regmirror
Version: $VERSION
Architecture: $arch
Maintainer: $MAINTAINER
Installed-Size: $size_kib
Section: net
Priority: optional
Depends: systemd | systemd-standalone-sysusers | systemd-sysusers
Description: pull-through Docker/OCI registry mirror for small boards
 regmirror caches the images that Docker Engine, containerd, k3s, podman and
 skopeo pull: each layer comes from Docker Hub (or ghcr.io, quay.io, ...) once,
 and every later pull is served from the local disk, also when the upstream is
 unreachable. One static binary, one thread, a hard byte budget on the disk.
 .
 This package runs it as a systemd service on port 5000, configured in
 /etc/regmirror/regmirror.conf, with its cache in /var/cache/regmirror.
EOF
    (cd "$root" && find usr lib -type f | LC_ALL=C sort | xargs md5sum) > "$root/DEBIAN/md5sums"
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
    find "$root" -type d -exec chmod 0755 {} +
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

    deb=$OUT/regmirror_${VERSION}_$arch.deb
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
    log "$arch: $deb ($(stat -c %s "$deb") bytes; binary $(stat -c %s "$bin") bytes from $short)"
    rm -rf "$root"
    echo "$deb"
done
