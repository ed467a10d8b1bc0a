#!/usr/bin/env bash
# image/build-sd.sh — a flashable, compressed SD-card image of regmirror-os for
# the 64-bit Raspberry Pis: 3B, 3B+, 3A+, 4B, 400, CM3/CM4, Zero 2 W (not Pi 5:
# bookworm's 6.1 kernel and 2022 firmware do not boot it; not Pi 1/2/Zero: they
# are 32-bit — use the armv6/armv7 binaries or container images there).
#
# Userland: busybox, in an initramfs that *is* the OS. Why not a minimal Debian:
#  - It builds in well under a minute without emulation; Debian + systemd needs
#    mmdebstrap under qemu-user (~4 min at best, far more with initramfs-tools).
#  - The appliance runs one static binary. Nothing needs a package manager, and
#    an OS in RAM cannot be corrupted by a power cut: the SD card is only read
#    at boot (FAT) and written by the cache (ext4, journalled, regmirror commits
#    with fsync+rename). Updating = replacing files on the FAT partition.
#  - Byte-for-byte reproducibility is easy to control (cpio, mkfs with fixed
#    times/UUIDs) — much harder for a dpkg-installed root.
# What Debian's busybox lacks comes from Debian arm64 packages (dynamic, with
# their libc and exactly the libraries they need): toybox for `sntp` (busybox
# here has no ntpd), e2fsprogs for e2fsck/resize2fs (busybox has neither),
# wpasupplicant for Wi-Fi (with firmware-brcm80211's Pi files), avahi-daemon for
# mDNS (HOSTNAME.local; run without D-Bus, but linked with libdbus: that and
# its libsystemd are shipped, and are also what wpa_supplicant links).
#
# Layout of the .img (MBR, disk signature 0x5245474d):
#   p1  FAT32 "RMBOOT"   256 MiB  Pi firmware, DTBs, vmlinuz, initrd.img,
#                                 config.txt, cmdline.txt, regmirror.txt (settings)
#   p2  ext4  "RMSDCACHE" 64 MiB  the cache; grown at boot to fill the card
# A USB disk with an ext4 filesystem labelled REGMIRROR, present at boot, holds
# the cache instead (`mkfs.ext4 -L REGMIRROR /dev/sdX1`).
#
# Boot: firmware → kernel + initramfs → /init (busybox init): coldplug modules,
# find the disk by signature, grow p2, read regmirror.txt, mount the cache
# (e2fsck -p first), restore the last saved time, the network (the cable if one
# is up, else Wi-Fi; a fixed ADDRESS or DHCP), mDNS for HOSTNAME.local, SNTP
# (DHCP-announced servers, then NTP_SERVERS) for up to SNTP_WAIT s, then start
# regmirror as uid 65532 (init respawns it if it dies); hourly SNTP + clock
# save; `poweroff` stops regmirror, saves the clock and unmounts the cache.
#
# Inputs: the aarch64 binary (cross/build.sh aarch64; a no-op when built) and
# Debian bookworm arm64 packages fetched with a private APT_CONFIG (nothing is
# added to /etc/apt). Same binary + same package versions + same
# SOURCE_DATE_EPOCH (default: HEAD's commit time) → same bytes: fixed mtimes,
# cpio --reproducible, xz -T1, E2FSPROGS_FAKE_TIME + fixed UUID/hash seed (and
# no -d: it would copy host ctimes),
# mkfs.vfat with a fixed volume id under faketime, xz -T1.
#
# Output: target/sd/regmirror-os-arm64.img.xz (+ .sha256, and the unpacked
# boot files beside it); its path is the last line on stdout.
# Env: SD_OUT (output dir), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

HERE=$REPO_ROOT/image/sd
OUTDIR=${SD_OUT:-$REPO_ROOT/target/sd}
IMG_NAME=regmirror-os-arm64.img
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
DISKSIG=0x5245474d            # "MGER" little-endian at MBR offset 440
FAT_ID=52474d42               # FAT volume id
EXT_UUID=5245474d-4952-4f52-9000-0000000000c0
EXT_HASH=5245474d-4952-4f52-9000-0000000000c1
BOOT_MIB=256 CACHE_MIB=64 ALIGN_MIB=4
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH TZ=UTC LC_ALL=C
STAMP=$(date -u -d "@$SOURCE_DATE_EPOCH" '+%Y-%m-%d %H:%M:%S')

apt_ensure dosfstools mtools e2fsprogs fdisk faketime xz-utils cpio kmod gzip file \
    binutils-aarch64-linux-gnu debian-archive-keyring ca-certificates

START=$(date +%s)
WORK=$(mktemp -d /tmp/regmirror-sd.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# --- 1. the binary
BIN=$(timeout 3600 "$REPO_ROOT/cross/build.sh" aarch64 | tail -n1)   # no-op when up to date
case "$(file -b "$BIN")" in *"ARM aarch64"*"statically linked"*) ;; *) die "$BIN is not a static aarch64 binary" ;; esac

# --- 2. arm64 packages through a private apt configuration
APTDIR=/var/cache/regmirror-sd-apt
mkdir -p "$APTDIR"/{lists/partial,archives/partial,cache,state,etc/apt.conf.d,etc/preferences.d,etc/sources.list.d,debs}
touch "$APTDIR/state/status"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
cat > "$APTDIR/etc/sources.list" <<SRC
deb [arch=arm64 signed-by=$KEYRING] $MIRROR bookworm main non-free-firmware
deb [arch=arm64 signed-by=$KEYRING] $MIRROR bookworm-updates main non-free-firmware
deb [arch=arm64 signed-by=$KEYRING] $SECURITY bookworm-security main non-free-firmware
SRC
cat > "$APTDIR/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$APTDIR/state";
Dir::State::Lists "$APTDIR/lists";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
Dir::Cache::Archives "$APTDIR/archives";
Dir::Etc::SourceList "$APTDIR/etc/sources.list";
Dir::Etc::SourceParts "$APTDIR/etc/sources.list.d";
Dir::Etc::Parts "$APTDIR/etc/apt.conf.d";
Dir::Etc::Preferences "$APTDIR/etc/preferences";
Dir::Etc::PreferencesParts "$APTDIR/etc/preferences.d";
Acquire::Languages "none";
Acquire::Retries "3";
CONF
export APT_CONFIG=$APTDIR/apt.conf
updated=no
for i in 1 2 3; do
    if timeout 300 apt-get -q update >&2; then updated=yes; break; fi
    log "apt-get update (arm64) failed, try $i"; sleep $((i * 5))
done
[ $updated = yes ] || ls "$APTDIR"/lists/*Packages* >/dev/null 2>&1 || die "no arm64 package lists"
KPKG=$(apt-cache show --no-all-versions linux-image-arm64 | sed -n 's/^Depends: *\(linux-image-[^ ,]*\).*/\1/p' | head -n1)
[ -n "$KPKG" ] || die "cannot resolve linux-image-arm64"
# Wi-Fi: firmware-brcm80211 (non-free-firmware) + wireless-regdb + wpasupplicant; mDNS:
# avahi-daemon; then every library the three dynamic tools and those two need (DT_NEEDED,
# checked below: a missing one stops the build).
PKGS=("$KPKG" raspi-firmware busybox-static toybox libc6 libcrypt1
      e2fsprogs libext2fs2 libcom-err2 libblkid1 libuuid1 libss2
      firmware-brcm80211 wireless-regdb wpasupplicant avahi-daemon
      libavahi-common3 libavahi-core7 libdaemon0 libexpat1 libdbus-1-3 libsystemd0 libcap2
      libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1
      libnl-3-200 libnl-genl-3-200 libnl-route-3-200 libpcsclite1 libssl3)
(cd "$APTDIR/debs" && timeout 900 apt-get -q download "${PKGS[@]}" >&2) || die "apt-get download failed"
mkdir -p "$WORK/x"
: > "$WORK/VERSIONS.txt"
for p in "${PKGS[@]}"; do
    # Older downloads may sit beside the candidate; take exactly the candidate.
    deb=
    ver=$(apt-cache show --no-all-versions "$p" | sed -n 's/^Version: //p' | head -n1)
    for f in "$APTDIR/debs/${p}_"*.deb; do
        [ -f "$f" ] || continue
        [ "$(dpkg-deb -f "$f" Version)" = "$ver" ] && deb=$f
    done
    [ -f "$deb" ] || die "no .deb for $p"
    dpkg-deb -x "$deb" "$WORK/x"
    echo "$p $ver" >> "$WORK/VERSIONS.txt"
done
KVER=${KPKG#linux-image-}
X=$WORK/x
log "packages: $(tr '\n' ' ' < "$WORK/VERSIONS.txt")"

# --- 3. the initramfs (= the whole OS)
R=$WORK/initramfs
mkdir -p "$R"/{bin,sbin,etc,lib,proc,sys,dev,run,tmp,mnt/cache,boot,root}
cp -a "$HERE/rootfs/." "$R/"
install -m 0755 "$X/bin/busybox" "$R/bin/busybox"
install -m 0755 "$BIN" "$R/bin/regmirror"
install -m 0755 "$X/bin/toybox" "$R/bin/toybox"
ln -s toybox "$R/bin/sntp"
for t in e2fsck resize2fs wpa_supplicant; do install -m 0755 "$X/sbin/$t" "$R/sbin/$t"; done
install -m 0755 "$X/usr/sbin/avahi-daemon" "$R/sbin/avahi-daemon"
# Shared libraries the dynamic tools need, found by walking DT_NEEDED.
mkdir -p "$R/lib/aarch64-linux-gnu"
cp -a "$X/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" "$R/lib/aarch64-linux-gnu/"
ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$R/lib/ld-linux-aarch64.so.1"
needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'; }
queue=("$R/bin/toybox" "$R/sbin/e2fsck" "$R/sbin/resize2fs" "$R/sbin/wpa_supplicant" "$R/sbin/avahi-daemon")
while [ ${#queue[@]} -gt 0 ]; do
    f=${queue[0]}; queue=("${queue[@]:1}")
    for lib in $(needed "$f"); do
        [ -e "$R/lib/aarch64-linux-gnu/$lib" ] && continue
        src=
        for d in "$X/lib/aarch64-linux-gnu" "$X/usr/lib/aarch64-linux-gnu"; do
            [ -e "$d/$lib" ] && { src=$d/$lib; break; }
        done
        [ -n "$src" ] || die "$lib (needed by ${f#$R}) is in none of the packages"
        cp -L "$src" "$R/lib/aarch64-linux-gnu/$lib"
        queue+=("$R/lib/aarch64-linux-gnu/$lib")
    done
done
# Wi-Fi firmware for the Pis' Broadcom/Cypress chips (links resolved): CYW43438 (Pi 3B,
# Zero 2 W with chip BCM43430/1) and CYW43455 (Pi 3A+/3B+, 4, 400, CM4), with the Pi NVRAM
# files Debian ships; a board without its own NVRAM file falls back to the chip's generic name,
# which is given the Pi 3B's and the Pi 4's. The regulatory database Debian's kernel trusts.
FW=$X/lib/firmware
mkdir -p "$R/lib/firmware/brcm"
for f in brcmfmac43430-sdio.bin brcmfmac43430-sdio.clm_blob \
         brcmfmac43430-sdio.raspberrypi,3-model-b.txt brcmfmac43430-sdio.raspberrypi,model-zero-w.txt \
         brcmfmac43455-sdio.bin brcmfmac43455-sdio.clm_blob brcmfmac43455-sdio.raspberrypi,3-model-a-plus.txt \
         brcmfmac43455-sdio.raspberrypi,3-model-b-plus.txt brcmfmac43455-sdio.raspberrypi,4-model-b.txt; do
    [ -e "$FW/brcm/$f" ] || die "firmware-brcm80211 has no brcm/$f"
    cp -L "$FW/brcm/$f" "$R/lib/firmware/brcm/$f"
done
cp -L "$FW/brcm/brcmfmac43430-sdio.raspberrypi,3-model-b.txt" "$R/lib/firmware/brcm/brcmfmac43430-sdio.txt"
cp -L "$FW/brcm/brcmfmac43455-sdio.raspberrypi,4-model-b.txt" "$R/lib/firmware/brcm/brcmfmac43455-sdio.txt"
cp -L "$FW/regulatory.db-debian" "$R/lib/firmware/regulatory.db"
cp -L "$FW/regulatory.db.p7s-debian" "$R/lib/firmware/regulatory.db.p7s"
echo "$SOURCE_DATE_EPOCH" > "$R/etc/build-epoch"
printf '%s\n' "${DISKSIG#0x}" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/' > "$R/etc/disk-signature"
echo "regmirror-os $(sed -n 's/^version *= *"\(.*\)"/\1/p' "${REGMIRROR_SRC:-$REPO_ROOT}/Cargo.toml" | head -n1) ($STAMP UTC)" > "$R/etc/os-release-line"
cp "$WORK/VERSIONS.txt" "$R/etc/VERSIONS.txt"

# Kernel modules: what a Pi 3/4/Zero 2 W (and qemu's virt board, for the boot
# test) needs to reach the SD card, USB disks, ethernet and the filesystems,
# plus their dependencies. Everything else in the 290 MB tree stays out.
WANT=(
  sdhci-iproc bcm2835 sdhci-pltfm                          # SD: Pi 4 emmc2, Pi 3 sdhost
  gpio-regulator                                           # Pi 4 SD I/O voltage
  dwc2 phy-generic xhci-pci xhci-hcd reset-raspberrypi     # USB: Pi 3/Zero 2, Pi 4 (VL805)
  usb-storage uas sd_mod                                   # USB disks
  genet broadcom mdio-bcm-unimac                           # Pi 4 ethernet (bcmgenet)
  smsc95xx lan78xx microchip                               # Pi 3B / 3B+ ethernet
  cdc_ether cdc_ncm r8152 ax88179_178a asix                # USB ethernet adapters (Zero 2 W)
  usbhid hid-generic                                       # console keyboard
  bcm2835-rng iproc-rng200 virtio-rng                      # entropy for TLS
  raspberrypi-cpufreq cpufreq-dt                           # full CPU speed
  ext4 vfat nls_cp437 nls_ascii nls_utf8 crc32c_generic    # filesystems
  virtio_pci virtio_mmio virtio_blk virtio_net             # qemu -M virt (boot test)
  brcmfmac brcmutil cfg80211 pwrseq_simple                 # Wi-Fi (SDIO on the sdhci-iproc host)
)
KM=$X/lib/modules/$KVER
depmod -b "$X" "$KVER"
declare -A have=()
add_mod() {  # module name → its file and, recursively, its dependencies
    local name=${1//-/_} path dep
    path=$(awk -v n="$name" -F: '{f=$1; sub(/.*\//,"",f); sub(/\.ko.*$/,"",f); gsub(/-/,"_",f); if (f==n) {print $1; exit}}' "$KM/modules.dep")
    if [ -z "$path" ]; then
        grep -qE "/${1//_/[-_]}\.ko" "$KM/modules.builtin" && return 0
        log "warning: module $1 not in $KVER"; return 0
    fi
    [ -n "${have[$path]:-}" ] && return 0
    have[$path]=1
    for dep in $(awk -v p="$path" -F': *' '$1==p{print $2; exit}' "$KM/modules.dep"); do
        add_mod "$(basename "${dep%%.ko*}")"
    done
}
for m in "${WANT[@]}"; do add_mod "$m"; done
for path in "${!have[@]}"; do
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$path")"
    cp "$KM/$path" "$R/lib/modules/$KVER/$path"
done
cp "$KM"/modules.builtin "$KM"/modules.builtin.modinfo "$KM"/modules.order "$R/lib/modules/$KVER/"
depmod -b "$R" "$KVER"
log "initramfs: ${#have[@]} modules, $(du -sh "$R/lib/modules" | cut -f1)"

find "$R" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$R" && find . -mindepth 1 -print0 | sort -z \
    | cpio --null --create --format=newc --reproducible --owner=0:0 --quiet) \
    | xz -T1 -9 --check=crc32 > "$WORK/initrd.img"   # the kernel's xz: CRC32, no BCJ filter

# --- 4. the boot partition (FAT32)
B=$WORK/bootfs
mkdir -p "$B"
cp "$X/usr/lib/raspi-firmware/"* "$B/"
cp "$X/usr/lib/linux-image-$KVER/broadcom/"bcm*.dtb "$B/"
cp "$X/boot/vmlinuz-$KVER" "$B/vmlinuz"
cp "$WORK/initrd.img" "$B/initrd.img"
cp "$HERE/boot/"* "$B/"
{ echo "regmirror-os built $STAMP UTC (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
  echo "regmirror sha256 $(sha256sum < "$BIN" | cut -d' ' -f1)"; cat "$WORK/VERSIONS.txt"; } > "$B/VERSIONS.txt"
find "$B" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$WORK/boot.vfat"
truncate -s "${BOOT_MIB}M" "$WORK/boot.vfat"
FT=(faketime -f "$STAMP")
"${FT[@]}" mkfs.vfat -F 32 -n RMBOOT -i "$FAT_ID" "$WORK/boot.vfat" >/dev/null
# mcopy in sorted order, so directory entries are always in the same order.
(cd "$B" && for f in $(ls | sort); do "${FT[@]}" mcopy -m -i "$WORK/boot.vfat" "$f" "::$f"; done)
used=$(du -sm "$B" | cut -f1)
log "boot partition: ${used} MiB used of ${BOOT_MIB} MiB"

# --- 5. the cache partition (ext4, grown at first boot), empty: regmirror/
# and .regmirror-os/ are made at boot. (No `mkfs.ext4 -d`: it copies each
# source file's ctime, which no tool can set, so the bytes would vary.)
truncate -s "${CACHE_MIB}M" "$WORK/cache.ext4"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mkfs.ext4 -q -F -b 4096 -T default -L RMSDCACHE -U "$EXT_UUID" \
    -E "hash_seed=$EXT_HASH,root_owner=0:0" "$WORK/cache.ext4"

# --- 6. the disk
S=$((1024 * 1024 / 512))
P1_START=$((ALIGN_MIB * S)); P1_SIZE=$((BOOT_MIB * S))
P2_START=$((P1_START + P1_SIZE)); P2_SIZE=$((CACHE_MIB * S))
IMG=$WORK/$IMG_NAME
truncate -s $(( (P2_START + P2_SIZE) * 512 )) "$IMG"
sfdisk --quiet --no-reread --no-tell-kernel "$IMG" <<PT
label: dos
label-id: $DISKSIG
unit: sectors

start=$P1_START, size=$P1_SIZE, type=c, bootable
start=$P2_START, size=$P2_SIZE, type=83
PT
dd if="$WORK/boot.vfat" of="$IMG" bs=1M seek=$((P1_START / S)) conv=notrunc,sparse status=none
dd if="$WORK/cache.ext4" of="$IMG" bs=1M seek=$((P2_START / S)) conv=notrunc,sparse status=none

mkdir -p "$OUTDIR"
xz -T1 -6 -c "$IMG" > "$OUTDIR/$IMG_NAME.xz.new"
mv "$OUTDIR/$IMG_NAME.xz.new" "$OUTDIR/$IMG_NAME.xz"
(cd "$OUTDIR" && sha256sum "$IMG_NAME.xz" > "$IMG_NAME.xz.sha256")
rm -rf "${OUTDIR:?}/boot"; cp -a "$B" "$OUTDIR/boot"    # for updates without reflashing
log "$OUTDIR/$IMG_NAME.xz: $(stat -c %s "$OUTDIR/$IMG_NAME.xz") bytes compressed, $(stat -c %s "$IMG") raw, sha256 $(cut -d' ' -f1 "$OUTDIR/$IMG_NAME.xz.sha256"), $(( $(date +%s) - START )) s"
echo "$OUTDIR/$IMG_NAME.xz"
