#!/bin/sh
# sysinit: mounts, drivers, the disk, the clock, the network, SNTP. When this
# returns, init starts regmirror (/etc/regmirror.run) and /etc/timesync.run.
# Nothing here is fatal: a step that fails is logged and boot goes on.
. /etc/os-functions

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
ln -sf /proc/mounts /etc/mtab
syslogd -C1024
klogd
say "booting $(cat /etc/os-release-line 2>/dev/null), kernel $(uname -r)"

# --- drivers: load modules for every device present (coldplug), and have
# mdev (netlink daemon, /etc/mdev.conf) load them for devices that appear later
# (USB disks and NICs; Debian's kernel has no uevent helper).
mdev -d
for i in 1 2 3 4; do
    find /sys/devices -name modalias -exec cat {} + 2>/dev/null | sort -u > /run/modaliases
    modprobe -qa $(cat /run/modaliases) 2>/dev/null
    sleep 0.5
done
for m in ext4 vfat nls_cp437 nls_ascii nls_utf8 crc32c_generic; do modprobe -q "$m"; done

# --- the boot disk: the one whose MBR carries our disk signature.
DISKSIG=$(cat /etc/disk-signature)
part() { case "$1" in *[0-9]) echo "${1}p$2" ;; *) echo "$1$2" ;; esac; }
DISK=
for t in $(seq 1 60); do
    for d in /sys/block/mmcblk* /sys/block/sd* /sys/block/vd* /sys/block/nvme*; do
        [ -e "$d" ] || continue
        n=${d##*/}
        sig=$(dd if="/dev/$n" bs=1 skip=440 count=4 2>/dev/null | od -An -tx1 | tr -d ' \n')
        [ "$sig" = "$DISKSIG" ] && { DISK=$n; break 2; }
    done
    sleep 0.5
done
if [ -z "$DISK" ]; then
    say "boot disk (signature $DISKSIG) not found; the cache will live in RAM"
else
    P1=$(part "$DISK" 1) P2=$(part "$DISK" 2)
    say "boot disk /dev/$DISK"
    # Grow partition 2 to the end of the card (first boot, or a bigger card):
    # rewrite its MBR sector count, re-read the table, resize2fs after mount.
    total=$(cat "/sys/block/$DISK/size"); start=$(cat "/sys/block/$DISK/$P2/start")
    size=$(cat "/sys/block/$DISK/$P2/size")
    want=$(( (total - start) / 2048 * 2048 ))
    [ "$want" -gt 4294967295 ] && want=$(( (4294967295 - start) / 2048 * 2048 ))   # MBR limit
    if [ "$want" -gt $((size + 16384)) ]; then
        b() { printf '\\%03o' $(( ($1 >> $2) & 255 )); }
        printf "$(b $want 0)$(b $want 8)$(b $want 16)$(b $want 24)" \
            | dd of="/dev/$DISK" bs=1 seek=474 count=4 conv=notrunc 2>/dev/null
        sync
        blockdev --rereadpt "/dev/$DISK" || partprobe "/dev/$DISK"
        for t in $(seq 1 20); do
            [ "$(cat "/sys/block/$DISK/$P2/size" 2>/dev/null)" = "$want" ] && break
            sleep 0.5
        done
        say "cache partition /dev/$P2 grown from $((size / 2048)) MiB to $((want / 2048)) MiB"
    fi
    # umask=077: regmirror.txt may hold the Wi-Fi passphrase; only root reads it.
    mount -t vfat -o ro,umask=077 "/dev/$P1" /boot || say "cannot mount boot partition /dev/$P1"
fi

# --- settings: /boot/regmirror.txt (KEY=VALUE), only known keys, checked, safely quoted
# (/etc/settings-functions). Root only: it may hold the Wi-Fi passphrase.
( umask 077; read_settings /boot/regmirror.txt > /run/regmirror-os.conf )
. /run/regmirror-os.conf
hostname "$HOSTNAME"

# --- the cache: an ext4 filesystem labelled REGMIRROR (USB disk) if one shows
# up, else partition 2 of the boot disk.
CACHE_DEV=
if ls -d /sys/bus/usb/devices/usb* >/dev/null 2>&1 && [ "$USB_WAIT" -gt 0 ]; then
    i=0
    while [ $i -lt $((USB_WAIT * 2)) ]; do
        CACHE_DEV=$(findfs LABEL=REGMIRROR 2>/dev/null) && break
        CACHE_DEV=
        # No USB mass-storage interface after 4 s: no disk is coming.
        if [ $i -ge 8 ] && ! grep -qx 08 /sys/bus/usb/devices/*/bInterfaceClass 2>/dev/null; then break; fi
        sleep 0.5; i=$((i + 1))
    done
fi
fsck_mount() {  # DEV: check (preen), then mount as the cache
    e2fsck -p "$1" > /run/fsck.log 2>&1
    rc=$?; [ $rc -ge 4 ] && say "e2fsck $1 exit $rc: $(tail -n1 /run/fsck.log)"
    mount -t ext4 -o noatime "$1" "$CACHE_MNT"
}
if [ -n "$CACHE_DEV" ] && fsck_mount "$CACHE_DEV"; then
    say "cache on USB disk $CACHE_DEV (label REGMIRROR)"
elif [ -n "$DISK" ] && fsck_mount "/dev/$P2"; then
    CACHE_DEV=/dev/$P2
    resize2fs "$CACHE_DEV" > /run/resize.log 2>&1 || say "resize2fs: $(tail -n1 /run/resize.log)"
    say "cache on $CACHE_DEV"
else
    CACHE_DEV=
    say "WARNING: no cache disk; using RAM (lost at power-off)"
fi
[ -n "$CACHE_DEV" ] && say "cache filesystem: $(df -h "$CACHE_MNT" | awk 'NR==2{print $2" total, "$4" free"}')"
restore_clock

# --- network (/etc/net-functions): the cable if one is plugged in (every ethernet port and
# USB adapter), else Wi-Fi when WIFI_SSID is set; ADDRESS in regmirror.txt gives a fixed
# address, otherwise DHCP. IPv6 SLAAC is the kernel's own.
ip link set lo up
for i in $(seq 1 40); do ls /sys/class/net | grep -qE '^(eth|usb|en|wlan)' && break; sleep 0.5; done
for ifc in $(ethernets); do ip link set "$ifc" up; done
LINK=$(cable_up 6)
WIFI=
if [ -n "$WIFI_SSID" ]; then
    if [ -n "$LINK" ]; then
        say "Wi-Fi not used: cable up on $LINK"
    elif start_wifi; then
        WIFI=wlan0 LINK=wlan0
    fi
fi
if [ -n "$ADDRESS" ]; then
    net_static "${LINK:-$(ethernets | head -n1)}"
else
    for ifc in $(ethernets) $WIFI; do net_dhcp "$ifc"; done
    [ -e /run/dhcp.bound ] || say "no DHCP lease yet; udhcpc keeps trying in the background"
fi

# --- time over SNTP before regmirror's first upstream fetch (TLS needs a sane
# clock), bounded by SNTP_WAIT so an offline mirror still comes up.
end=$(( $(cut -d. -f1 /proc/uptime) + SNTP_WAIT ))
while :; do
    if sync_clock; then
        say "clock set by SNTP from $(cat /run/clock.synced): $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        save_clock; break
    fi
    [ "$(cut -d. -f1 /proc/uptime)" -ge "$end" ] && { say "no SNTP answer in ${SNTP_WAIT}s; keeping the restored clock, retrying every minute"; break; }
    sleep 2
done

mkdir -p "$CACHE_MNT/regmirror"
chown 65532:65532 "$CACHE_MNT/regmirror"
net_report
say "starting regmirror on port 5000, cache $CACHE_MNT/regmirror"
