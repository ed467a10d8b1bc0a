#!/usr/bin/env bash
# image/boot-test.sh [IMG] — boot the SD image from image/build-sd.sh in
# `qemu-system-aarch64 -M virt` and pull through the regmirror inside it.
#
# Everything runs in a private network namespace (loopback only): a local
# upstream (Debian's docker-registry on 127.0.0.1 with tests/seed.py's small set),
# qemu with user networking `restrict=on` (the guest can reach nothing but what
# is forwarded: hostfwd 127.0.0.1:P → guest :5000, and guestfwd
# 10.0.2.100:5000 → the upstream), and skopeo as the client. guestfwd uses the
# `cmd:` form (socat per connection): the `tcp:` form opens one connection when
# qemu starts and carries a single guest connection.
#
# A copy of the image is enlarged to 2 GiB (so first-boot growth of the cache
# partition runs) and its regmirror.txt is rewritten with mtools (no loop mount)
# to point regmirror at the forwarded upstream. Before booting, the image's
# dynamic tools and SNTP client are run under qemu-user. Boot 1: growth, clock restored
# from the build time (the virt RTC is set to 2000 to stand in for the Pi's
# missing RTC), DHCP, the console's address and name lines, the mDNS responder
# up, Wi-Fi settings left unused while the cable is up (and the passphrase
# never on the console), /run/regmirror-os/network.json, pulls through the mirror
# with digests checked, regmirror killed and restarted by init, `poweroff` on the
# serial console → clean unmount.
# Boot 2 (same disk, upstream stopped, regmirror.txt now with ADDRESS=10.0.2.50/24,
# GATEWAY and DNS): the fixed address with no DHCP, resolv.conf and the default
# route as set, the cache survived, the clock is restored from the time saved
# at shutdown, and a pull by digest is served from the SD card at the fixed
# address. Boot 3: a USB disk (qemu-xhci + usb-storage) whose ext4 is labelled
# REGMIRROR takes the cache.
#
# What qemu's virt board cannot exercise — check these on a real Pi:
#  - The Pi firmware path: bootcode.bin/start*.elf, config.txt (arm_64bit,
#    upstream_kernel, kernel=, initramfs followkernel), cmdline.txt and the
#    choice of device tree (bcm2837-rpi-3-b*.dtb, bcm2711-rpi-4-b.dtb, …): qemu
#    boots the kernel and initrd directly, never the GPU firmware.
#  - Real drivers: SD host (sdhci-iproc on Pi 4, bcm2835 sdhost on Pi 3), USB
#    (dwc2, xhci + VL805 reset on Pi 4), ethernet (genet on Pi 4, smsc95xx /
#    lan78xx on Pi 3B / 3B+, USB adapters on Zero 2 W), the hardware RNG and
#    cpufreq. qemu uses virtio disk, NIC and RNG instead (the disk shows up as
#    /dev/vda instead of /dev/mmcblk0; the scripts find it by MBR signature).
#  - The Pi's own USB controllers and how long a real USB disk takes to show
#    up (the REGMIRROR-labelled disk is tested on qemu's xhci only).
#  - Consoles: serial on GPIO 14/15 (ttyS1) and HDMI + USB keyboard (tty1).
#  - SNTP against real servers (restrict=on forwards no UDP): here only the
#    "no answer → keep the restored clock and go on" path runs.
#  - Real power loss (a cut is not a `poweroff`), SD card speed and wear.
#  - Wi-Fi (qemu has no Broadcom radio; image/test-sd-net.sh checks the settings,
#    the wpa_supplicant.conf the boot script writes and that the image's
#    wpa_supplicant reads it; boot 1 here checks it stays off while a cable is up
#    and that the passphrase never reaches the console). On each board, with no
#    cable and WIFI_SSID/WIFI_PSK/WIFI_COUNTRY set, check: brcmfmac loads its
#    firmware (`dmesg | grep brcmfmac`: Pi 3B and Zero 2 W with chip BCM43430/1 →
#    brcmfmac43430-sdio.*; Pi 3A+/3B+/4/400/CM4 → brcmfmac43455-sdio.*; the NVRAM
#    file is the board's own or the chip's generic copy of the Pi 3B's / Pi 4's —
#    the Pi 400, CM4 and Zero 2 W use the generic one); Zero 2 Ws with chip
#    BCM43430/2 want brcmfmac43436-sdio.bin, which Debian bookworm's
#    firmware-brcm80211 does not have (Wi-Fi cannot work there: use a USB
#    Ethernet adapter); wlan0 associates with a WPA2 and with a WPA3 access point
#    ("Wi-Fi: associated" on the console), gets a DHCP lease, and WIFI_COUNTRY
#    shows in `iw reg get` (iw is not in the image: `cat
#    /sys/module/cfg80211/parameters/ieee80211_regdom`, dmesg's regulatory lines);
#    pulling the cable of a Pi 4 does not bring Wi-Fi up (by design: decided at
#    boot).
#  - mDNS on a real LAN (qemu's user network carries no multicast; the responder
#    is resolved by image/test-sd-net.sh in a network namespace, and boot 1 here
#    checks that it starts): `ping regmirror.local` and
#    `curl http://regmirror.local:5000/v2/` from a Mac and a Linux desktop with
#    nss-mdns, over Ethernet and over Wi-Fi; a second box with the same HOSTNAME
#    becomes regmirror-2.local (shown on its console).
#  - A fixed ADDRESS on a real router's LAN (boot 2 here uses qemu's 10.0.2.0/24).
#
# Prints `ok N - …`/`not ok N - …` lines and `N passed, M failed`; exits non-zero on a failure.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

apt_ensure qemu-system-arm qemu-user mtools fdisk xz-utils cpio e2fsprogs docker-registry skopeo curl jq iproute2 python3 socat
IMG=${1:-$REPO_ROOT/target/sd/regmirror-os-arm64.img.xz}
[ -f "$IMG" ] || IMG=$("$(dirname "$0")/build-sd.sh" | tail -n1)
BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}

test_begin boot
QEMU_PID=
HP=5080                       # hostfwd 127.0.0.1:HP in the netns → the guest's :5000
MIRROR_ADDR=127.0.0.1:$HP     # what skopeo_copy / pull_verify pull from
T0=$(date +%s)

# --- the disk: a writable, enlarged copy with test settings
DISK=$WORK/disk.img
case "$IMG" in *.xz) xz -dc "$IMG" > "$DISK" ;; *) cp --sparse=always "$IMG" "$DISK" ;; esac
truncate -s 2G "$DISK"
P1_OFF=$(( $(sfdisk -J "$DISK" | jq '.partitiontable.partitions[0].start') * 512 ))
FAT="$DISK@@$P1_OFF"
mcopy -n -i "$FAT" ::vmlinuz ::initrd.img ::regmirror.txt "$WORK/"
# Boot 1: DHCP, and Wi-Fi settings that must stay unused (a cable is up) and unseen.
PSK_SECRET=never-on-the-console-$$
sed -e "s|^SERVE_ARGS=.*|SERVE_ARGS=--upstream docker.io=http://10.0.2.100:5000 -v|" \
    -e "s|^NTP_SERVERS=.*|NTP_SERVERS=10.0.2.2|" -e "s|^SNTP_WAIT=.*|SNTP_WAIT=8|" \
    -e "s|^LOG_CONSOLE=.*|LOG_CONSOLE=yes|" -e "s|^WIFI_SSID=.*|WIFI_SSID=Office|" \
    -e "s|^WIFI_PSK=.*|WIFI_PSK=$PSK_SECRET|" -e "s|^WIFI_COUNTRY=.*|WIFI_COUNTRY=DE|" \
    "$WORK/regmirror.txt" > "$WORK/regmirror.test.txt"
mcopy -o -i "$FAT" "$WORK/regmirror.test.txt" ::regmirror.txt
# Boots 2 and 3: a fixed address (qemu's user network takes any 10.0.2.x; hostfwd then
# names the guest address).
STATIC_IP=10.0.2.50
sed -e "s|^ADDRESS=.*|ADDRESS=$STATIC_IP/24|" -e "s|^GATEWAY=.*|GATEWAY=10.0.2.2|" \
    -e "s|^DNS=.*|DNS=10.0.2.3|" "$WORK/regmirror.test.txt" > "$WORK/regmirror.static.txt"
GUEST_IP=                     # empty: the DHCP address (hostfwd's default guest)

upstream_start
seed_upstream small
MULTI=$(img_digest library/alpine latest)

boot() {  # boot N [qemu args]: start qemu on the disk, console on a socket + log file
    local n=$1; shift
    CONSOLE_LOG=$WORK/console$n.log CONSOLE_SOCK=$WORK/console$n.sock
    : > "$CONSOLE_LOG"
    ns_spawn "$LOGS/qemu$n.log" timeout 1200 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
        -display none -monitor none -no-reboot \
        -chardev "socket,id=con,path=$CONSOLE_SOCK,server=on,wait=off,logfile=$CONSOLE_LOG" \
        -serial chardev:con \
        -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
        -append "console=ttyAMA0 net.ifnames=0 panic=10" \
        -rtc base=2000-01-01T00:00:00 \
        -drive "file=$DISK,format=raw,if=none,id=d0" -device virtio-blk-pci,drive=d0 \
        -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$HP-$GUEST_IP:5000,guestfwd=tcp:10.0.2.100:5000-cmd:socat STDIO TCP:$UP_ADDR" \
        -device virtio-net-pci,netdev=n0,romfile= \
        -device virtio-rng-pci "$@"
    QEMU_PID=$SPAWNED_PID
}
console_has() { grep -q -- "$1" "$CONSOLE_LOG"; }
wait_console() {  # PATTERN SECONDS
    local i
    for ((i = 0; i < $2 * 2; i++)); do
        console_has "$1" && return 0
        kill -0 "$QEMU_PID" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}
type_console() {  # send keystrokes to the serial console
    python3 - "$CONSOLE_SOCK" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
for line in sys.argv[2].split("\n"):
    s.sendall(line.encode() + b"\r"); time.sleep(0.5)
time.sleep(0.5); s.close()
PY
}
wait_mirror() { wait_http "http://$MIRROR_ADDR/v2/" "$1" "$QEMU_PID"; }
pull_by_digest() {  # OUT: library/alpine by its index digest
    skopeo_copy "library/alpine@$MULTI" "$1" --all || return 1
    verify_dir "$1" library/alpine latest
}
show_console() { echo "# console tail:"; tail -n "${1:-25}" "$CONSOLE_LOG" | tr -d '\r' | cut -c1-200 | diag; }
booted() {  # N WHAT: the console says regmirror started and it answers; ok / not ok
    local b0 n=$1; shift
    b0=$(date +%s)
    if wait_console "starting regmirror" "$BOOT_TIMEOUT" && wait_mirror 120; then
        ok "boot $n: $* ($(( $(date +%s) - b0 )) s after qemu start)"
    else
        not_ok "boot $n: $*"; show_console 40
        return 1
    fi
}

# --- before booting: the image's dynamic tools (toybox sntp, e2fsck,
# resize2fs, wpa_supplicant, avahi-daemon) run with the libraries shipped in the initramfs, and its SNTP
# client sets time from an SNTP server (qemu-user, loopback; restrict=on
# forwards no UDP to the guest, so SNTP is checked here).
R=$WORK/rootfs
mkdir -p "$R"
(cd "$R" && xz -dc "$WORK/initrd.img" | cpio -idm --quiet --no-absolute-filenames)
dynamic_tools_run() {  # each prints its name/version (usage exits non-zero)
    local t out
    for t in "sbin/e2fsck -V" sbin/resize2fs "bin/toybox sntp --help" "sbin/wpa_supplicant -v" "sbin/avahi-daemon --version"; do
        # shellcheck disable=SC2086  # $t is a command and its arguments
        out=$(timeout 60 qemu-aarch64 -L "$R" "$R"/$t 2>&1 || true)
        case "$out" in
            *"error while loading shared libraries"*|"") echo "$t: $out"; return 1 ;;
        esac
        echo "$t: $(echo "$out" | head -n1)"
    done
}
check "image: toybox sntp, e2fsck, resize2fs, wpa_supplicant, avahi-daemon load their shipped libraries (qemu-user)" dynamic_tools_run
sntp_works() {
    nsenter --net="/run/netns/$NS" -- timeout 60 qemu-aarch64 -L "$R" "$R/bin/toybox" sntp -S -p 11123 127.0.0.1 &
    local srv=$! out rc=1
    sleep 2
    if out=$(nsx timeout 20 qemu-aarch64 -L "$R" "$R/bin/toybox" sntp -p 11123 127.0.0.1); then
        echo "$out"
        # The answer is the host's clock: same minute.
        [ "$(date -u -d "$(echo "$out" | head -n1 | cut -d' ' -f1,2)" +%s 2>/dev/null || echo 0)" -gt $(( $(date +%s) - 120 )) ] && rc=0
    fi
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
    return $rc
}
check "image: its SNTP client gets the time from an SNTP server (qemu-user)" sntp_works

# --- boot 1
boot 1
booted 1 "regmirror answers /v2/ through hostfwd" || { summary; exit 1; }
check "boot 1: cache partition grown to fill the 2 GiB disk" grep -m1 "cache partition .* grown" "$CONSOLE_LOG"
check "boot 1: clock restored from the build time (no RTC)" grep -m1 "clock restored from build time" "$CONSOLE_LOG"
check "boot 1: DHCP address on eth0" grep -m1 "eth0: 10.0.2." "$CONSOLE_LOG"
check "boot 1: SNTP unreachable → regmirror started anyway" grep -m1 "no SNTP answer" "$CONSOLE_LOG"
check "boot 1: the console shows the address and the name" \
    bash -c 'grep -m1 "address eth0 10.0.2.15/24" "$1" && grep -m1 "name regmirror.local (mDNS)" "$1"' _ "$CONSOLE_LOG"
check "boot 1: the mDNS responder (avahi-daemon) runs and answers as regmirror.local" \
    bash -c 'for i in $(seq 1 60); do grep -m1 "mDNS: answering as regmirror.local" "$1" && exit 0; sleep 0.5; done; exit 1' _ "$CONSOLE_LOG"
mdns_ipv4() {  # natively in the VM, avahi joined the IPv4 group and publishes eth0's address
    type_console $'\nlogread | grep avahi-daemon | grep -E "Joining|IP_ADD_MEMBERSHIP|address record" | sed s/^/AVAHI:/'
    sleep 2
    local l
    l=$(tr -d '\r' < "$CONSOLE_LOG" | grep '^AVAHI:')
    echo "$l"
    grep -q 'Registering new address record for 10.0.2.15 on eth0.IPv4' <<< "$l" || return 1
    grep -A1 'Joining mDNS multicast group on interface eth0.IPv4' <<< "$l" | grep -q 'IP_ADD_MEMBERSHIP failed' && return 1
    grep -q 'Joining mDNS multicast group on interface eth0.IPv4' <<< "$l"
}
check "boot 1: mDNS publishes eth0's IPv4 address (no multicast join failure)" mdns_ipv4
check "boot 1: Wi-Fi settings present, but unused while a cable is up" grep -m1 "Wi-Fi not used: cable up on eth0" "$CONSOLE_LOG"
network_json() {  # what the image knows, for regmirror's status (/run/regmirror-os/network.json)
    type_console $'\ncat /run/regmirror-os/network.json'
    sleep 1
    tr -d '\r' < "$CONSOLE_LOG" | grep -m1 '^{"hostname":' | tee -a /dev/stderr \
        | jq -e '.hostname == "regmirror" and .mdns_name == "regmirror.local" and .mode == "dhcp"
                 and any(.addresses[]; .interface == "eth0" and .address == "10.0.2.15/24")' >/dev/null
}
check "boot 1: /run/regmirror-os/network.json has the name, the mode and the address" network_json
status_host() {  # regmirror reads that file (--host-info) and shows it in its status
    nsx curl -fsS --max-time 10 "http://$MIRROR_ADDR/_regmirror/status" | jq -c .host | tee -a /dev/stderr \
        | jq -e '.mdns_name == "regmirror.local"
                 and any(.addresses[]; .interface == "eth0" and .address == "10.0.2.15/24")' >/dev/null
}
check "boot 1: /_regmirror/status shows the name and the address" status_host
status_memory() {  # the ARM binary's own memory on the guest's kernel (printed: a figure for the note)
    nsx curl -fsS --max-time 10 "http://$MIRROR_ADDR/_regmirror/status" | jq -r '.memory
        | select(.resident_bytes > 0 and .anonymous_bytes < .resident_bytes and .peak_bytes >= .resident_bytes)
        | "resident \(.resident_bytes / 1048576 * 10 | floor / 10) MiB (anonymous \(.anonymous_bytes / 1048576 * 10 | floor / 10) MiB), peak \(.peak_bytes / 1048576 * 10 | floor / 10) MiB"' | grep MiB
}
check "boot 1: /_regmirror/status reports regmirror's memory on the Pi image, idle" status_memory
check "boot 1: pull multi-arch index through the Pi image (digests match)" \
    pull_verify library/alpine latest "$WORK/out1" ""
check "boot 1: pull Docker v2 image through the Pi image (digests match)" \
    pull_verify library/busybox v2 "$WORK/out2" ""
check "boot 1: regmirror's memory on the Pi image after two pulls" status_memory

restart_after_kill() {
    type_console $'\nkillall -9 regmirror'
    wait_console "restart #1" 30 || return 1
    sleep 1; wait_mirror 60 || return 1
    grep -m1 "restart #1" "$CONSOLE_LOG" | tr -d '\r'
}
check "boot 1: init restarts regmirror after kill -9" restart_after_kill

clean_poweroff() {
    type_console $'\npoweroff'
    timeout 120 tail --pid="$QEMU_PID" -f /dev/null || return 1
    grep -q "cache unmounted cleanly" "$CONSOLE_LOG" && grep "shutdown complete" "$CONSOLE_LOG" | tr -d '\r'
}
check "boot 1: poweroff on the console stops regmirror and unmounts the cache" clean_poweroff
check "boot 1: the Wi-Fi passphrase never reached the console" bash -c '! grep -F "$1" "$2" && echo "not in $(wc -l < "$2") console lines"' _ "$PSK_SECRET" "$CONSOLE_LOG"
[ "$(failed_so_far)" = 0 ] || show_console 30
mcopy -o -i "$FAT" "$WORK/regmirror.static.txt" ::regmirror.txt
GUEST_IP=$STATIC_IP

# --- boot 2: upstream gone; the cache and the saved clock survive
upstream_stop
boot 2
booted 2 "regmirror answers again" || true
check "boot 2: clock restored from the time saved at shutdown" grep -m1 "clock restored from saved time" "$CONSOLE_LOG"
check "boot 2: the fixed address from regmirror.txt, no DHCP" \
    bash -c 'grep -m1 "eth0: 10.0.2.50/24 (static) via 10.0.2.2, DNS 10.0.2.3" "$1" && ! grep -E "eth0: 10.0.2.15|\(lease [0-9]|no DHCP lease" "$1"' _ "$CONSOLE_LOG"
static_resolv() {
    type_console $'\ncat /etc/resolv.conf; ip -4 route show default'
    sleep 1
    tr -d '\r' < "$CONSOLE_LOG" | grep -m1 -x 'nameserver 10.0.2.3' && tr -d '\r' < "$CONSOLE_LOG" | grep -m1 '^default via 10.0.2.2 dev eth0'
}
check "boot 2: DNS and the default route as set (resolv.conf, ip route)" static_resolv
check "boot 2: the cache filesystem was clean (no growth, no fsck errors)" \
    bash -c "! grep -E 'grown|e2fsck .* exit' '$CONSOLE_LOG' && grep -m1 'cache on /dev/vda2' '$CONSOLE_LOG'"
check "boot 2: pull by digest with upstream down, served from the SD card at 10.0.2.50" pull_by_digest "$WORK/out3"
check "boot 2: poweroff again" clean_poweroff
[ "$(failed_so_far)" = 0 ] || show_console 30

# --- boot 3: a USB disk with an ext4 filesystem labelled REGMIRROR takes the cache
USB=$WORK/usb.ext4
truncate -s 256M "$USB"
mkfs.ext4 -q -L REGMIRROR "$USB"
upstream_start
boot 3 -device qemu-xhci -drive "file=$USB,format=raw,if=none,id=u0" -device usb-storage,drive=u0
booted 3 "regmirror answers with a USB disk attached" || true
check "boot 3: the cache is on the USB disk labelled REGMIRROR" grep -m1 "cache on USB disk" "$CONSOLE_LOG"
check "boot 3: pull through, cached on the USB disk" pull_verify library/busybox v2 "$WORK/out4" ""
check "boot 3: poweroff" clean_poweroff
usb_has_cache() {
    debugfs -R 'ls -p /regmirror' "$USB" 2>/dev/null | grep -E '/(blobs|tags)/' || return 1
    debugfs -R 'stat /.regmirror-os/clock' "$USB" 2>/dev/null | grep -m1 -i 'size'
}
check "boot 3: the USB disk holds regmirror's cache and the saved clock" usb_has_cache
[ "$(failed_so_far)" = 0 ] || show_console 30

echo "# boot test took $(( $(date +%s) - T0 )) s"
summary
