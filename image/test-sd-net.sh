#!/usr/bin/env bash
# image/test-sd-net.sh [IMG] — the SD image's network pieces that qemu's virt board cannot
# show, tested outside the VM on the image's own unpacked initramfs:
#
#  1. regmirror.txt parsing (/etc/settings-functions, run by Debian's busybox sh, the same
#     busybox version the image has): fixed address, DNS, Wi-Fi settings with quotes and `$`
#     in them, CRLF line ends, bad values refused with a console line and the default kept,
#     the Wi-Fi passphrase never on the console.
#  2. The wpa_supplicant configuration the boot script writes (/etc/net-functions): root
#     only, the SSID hex-encoded, WPA2 + WPA3 (SAE) key management; and the image's own
#     wpa_supplicant (arm64, its shipped libraries, under qemu-user) reads it without a
#     complaint and never prints the passphrase, while a broken file is refused (so the check
#     can fail). There is no Wi-Fi radio here: it stops at the missing interface.
#  3. mDNS: the image's avahi-daemon (arm64, qemu-user) with the configuration the boot script
#     writes runs in one network namespace; from a second one, joined by a veth pair (only
#     link-local 169.254.0.0/16 and IPv6 link-local addresses, nothing routed), a real mDNS
#     resolver (python-zeroconf, from PyPI into target/pyenv) resolves regmirror.local to the
#     responder's address (over IPv6: see below why not IPv4 here); a name nobody has stays
#     unresolved.
# Prints `ok N - …`/`not ok N - …` lines and `N passed, M failed`; exits non-zero on a failure.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

apt_ensure qemu-user busybox-static xz-utils fdisk mtools cpio jq iproute2 python3 python3-venv
IMG=${1:-$REPO_ROOT/target/sd/regmirror-os-arm64.img.xz}
[ -f "$IMG" ] || IMG=$("$(dirname "$0")/build-sd.sh" | tail -n1)
ZEROCONF_VERSION=0.154.0     # python-zeroconf, the resolver
PYENV=$REPO_ROOT/target/pyenv
if ! "$PYENV/bin/python" -c "import zeroconf, sys; sys.exit(zeroconf.__version__ != '$ZEROCONF_VERSION')" 2>/dev/null; then
    python3 -m venv "$PYENV"
    timeout 600 "$PYENV/bin/pip" install -q "zeroconf==$ZEROCONF_VERSION" >&2
fi

test_begin sdnet
T0=$(date +%s)

# The initramfs, unpacked: the image's own files are what runs below.
R=$WORK/rootfs
mkdir -p "$R"
xz -dc "$IMG" > "$WORK/disk.img"
P1_OFF=$(( $(sfdisk -J "$WORK/disk.img" | jq '.partitiontable.partitions[0].start') * 512 ))
mcopy -n -i "$WORK/disk.img@@$P1_OFF" ::initrd.img "$WORK/initrd.img"
rm -f "$WORK/disk.img"
(cd "$R" && xz -dc "$WORK/initrd.img" | cpio -idm --quiet --no-absolute-filenames)

# Busybox applets of the host's busybox-static, for running the image's shell functions.
BB=$WORK/bb
mkdir -p "$BB"
for a in $(busybox --list); do ln -s "$(command -v busybox)" "$BB/$a"; done
# in_image_sh SCRIPT: run SCRIPT in busybox sh with the image's /etc functions sourced;
# say() writes to $WORK/console.
in_image_sh() {
    env -i PATH="$BB" ETC="$R/etc" CONSOLE="$WORK/console" HOME=/nonexistent \
        "$(command -v busybox)" sh -c ". \"$R/etc/settings-functions\"; . \"$R/etc/net-functions\"
logger() { :; }
say() { echo \"regmirror-os: \$*\" >> \"\$CONSOLE\"; }
$1"
}

# 1. regmirror.txt
PSK='pa$$ "quoted" '"'"'word'    # 18 characters with every kind of quote
SSID='Office "5G" $HOME'
printf '%s\r\n' "# a comment" "HOSTNAME=box-1" "ADDRESS=192.168.1.50/24" "GATEWAY=192.168.1.1" \
    "DNS=192.168.1.1 2001:db8::53" "ADDRESS6=2001:db8::50/64" "WIFI_SSID=$SSID" \
    "WIFI_PSK=$PSK" "WIFI_COUNTRY=de" > "$WORK/good.txt"
printf '%s' "SNTP_WAIT=7" >> "$WORK/good.txt"    # no newline at the end
settings_good() {
    : > "$WORK/console"
    in_image_sh "read_settings '$WORK/good.txt' > '$WORK/good.conf'; . '$WORK/good.conf'
printf '%s\n' \"\$HOSTNAME\" \"\$ADDRESS\" \"\$GATEWAY\" \"\$DNS\" \"\$ADDRESS6\" \"\$WIFI_SSID\" \"\$WIFI_PSK\" \"\$WIFI_COUNTRY\" \"\$SNTP_WAIT\" \"\$USB_WAIT\"" > "$WORK/good.out"
    printf '%s\n' box-1 192.168.1.50/24 192.168.1.1 "192.168.1.1 2001:db8::53" 2001:db8::50/64 \
        "$SSID" "$PSK" DE 7 15 > "$WORK/good.want"
    diff "$WORK/good.want" "$WORK/good.out" || return 1
    [ ! -s "$WORK/console" ] || { cat "$WORK/console"; return 1; }
    echo "all 10 values as written, no console line"
}
check "settings: regmirror.txt with a fixed address and Wi-Fi (quotes, \$, CRLF) reads back exactly" settings_good

SECRET=never-print-this-9
printf '%s\n' "ADDRESS=192.168.1.300/24" "GATEWAY=gw" "HOSTNAME=bad_name" "DNS=1.1.1.1 x" \
    "WIFI_PSK=short" "WIFI_COUNTRY=DEU" "SNTP_WAIT=-1" "NOSUCHKEY=1" "WIFI_SSID=" > "$WORK/bad.txt"
printf '%s\n' "ADDRESS=10.0.0.1" "WIFI_PSK=$SECRET too long $(printf 'x%.0s' {1..60})" > "$WORK/bad2.txt"
settings_bad() {
    : > "$WORK/console"
    in_image_sh "for f in '$WORK/bad.txt' '$WORK/bad2.txt'; do read_settings \$f > \$f.conf; done
. '$WORK/bad.txt.conf'; printf '%s|' \"\$ADDRESS\" \"\$GATEWAY\" \"\$HOSTNAME\" \"\$DNS\" \"\$WIFI_PSK\" \"\$WIFI_COUNTRY\" \"\$SNTP_WAIT\" \"\$WIFI_SSID\"
. '$WORK/bad2.txt.conf'; printf '%s|' \"\$ADDRESS\" \"\$WIFI_PSK\"" > "$WORK/bad.out"
    [ "$(cat "$WORK/bad.out")" = "||regmirror||||20||||" ] || { echo "values: $(cat "$WORK/bad.out")"; return 1; }
    cat "$WORK/console"
    [ "$(grep -c 'ignored' "$WORK/console")" = 10 ] || { echo "want 10 'ignored' lines"; return 1; }
    ! grep -F -e "$SECRET" -e short "$WORK/console" || { echo "the passphrase reached the console"; return 1; }
    echo "every bad value refused with its default kept; no passphrase on the console"
}
check "settings: bad values are refused, defaults kept, and the passphrase is never shown" settings_bad

# 2. wpa_supplicant's configuration, and the image's wpa_supplicant reading it.
wpa_conf_written() {
    in_image_sh ". '$WORK/good.conf'; write_wpa_conf '$WORK/wpa.conf'" || return 1
    [ "$(stat -c %a "$WORK/wpa.conf")" = 600 ] || { echo "mode $(stat -c %a "$WORK/wpa.conf")"; return 1; }
    local hex
    hex=$(sed -n 's/^\tssid=//p' "$WORK/wpa.conf")
    [ "$(python3 -c 'import sys; sys.stdout.write(bytes.fromhex(sys.argv[1]).decode())' "$hex")" = "$SSID" ] \
        || { echo "ssid=$hex"; return 1; }
    grep -qx $'\tkey_mgmt=WPA-PSK WPA-PSK-SHA256 SAE' "$WORK/wpa.conf" && grep -qx 'country=DE' "$WORK/wpa.conf" \
        && grep -qxF "	psk=\"$PSK\"" "$WORK/wpa.conf" || { cat "$WORK/wpa.conf"; return 1; }
    echo "mode 600, ssid hex = '$SSID', WPA2/WPA3, country DE"
}
check "wifi: the boot script's wpa_supplicant.conf (root only, SSID hex, WPA2+WPA3)" wpa_conf_written
wpa_reads() {  # CONF: the image's wpa_supplicant parses CONF; stops at the missing radio
    local out
    out=$(timeout 30 qemu-aarch64 -L "$R" "$R/sbin/wpa_supplicant" -dd -i rmtest0 -D nl80211 -c "$1" 2>&1 || true)
    echo "$out" > "$WORK/wpa.out"
    grep -E "^Line [0-9]+:|Failed to read or parse configuration|error while loading" "$WORK/wpa.out" && return 1
    grep -q "Reading configuration file '$1'" "$WORK/wpa.out" || { tail -5 "$WORK/wpa.out"; return 1; }
    grep -q "ssid - hexdump_ascii" "$WORK/wpa.out" || { tail -5 "$WORK/wpa.out"; return 1; }
    ! grep -qF "$PSK" "$WORK/wpa.out" || { echo "wpa_supplicant printed the passphrase"; return 1; }
    grep -m1 -E "PSK \(ASCII passphrase\)" "$WORK/wpa.out"
    grep -m1 -E "rmtest0|nl80211" "$WORK/wpa.out"
}
check "wifi: the image's wpa_supplicant (qemu-user) reads that configuration, passphrase not printed" wpa_reads "$WORK/wpa.conf"
wpa_refuses_broken() {
    sed 's/^\tkey_mgmt=.*/\tkey_mgmt=NO-SUCH-MODE/' "$WORK/wpa.conf" > "$WORK/wpa-broken.conf"
    if wpa_reads "$WORK/wpa-broken.conf" >/dev/null; then echo "a broken configuration was accepted"; return 1; fi
    grep -m1 -E "^Line [0-9]+:|Failed to read" "$WORK/wpa.out"
}
check "wifi: ... and refuses a broken one (the check above can fail)" wpa_refuses_broken
hex_psk() {  # a 64-hex-digit key: raw WPA2 PSK, no SAE; wpa_supplicant takes it
    local key
    key=$(printf '0123456789abcdef%.0s' 1 2 3 4)
    in_image_sh "WIFI_SSID=x WIFI_PSK=$key WIFI_COUNTRY=; write_wpa_conf '$WORK/wpa-hex.conf'" || return 1
    grep -qx $'\tkey_mgmt=WPA-PSK WPA-PSK-SHA256' "$WORK/wpa-hex.conf" && grep -qx $'\tpsk='"$key" "$WORK/wpa-hex.conf" \
        || { cat "$WORK/wpa-hex.conf"; return 1; }
    wpa_reads "$WORK/wpa-hex.conf" >/dev/null || { tail -3 "$WORK/wpa.out"; return 1; }
    echo "hex key written unquoted with WPA2 key management, and read"
}
check "wifi: a 64-hex-digit key is a raw WPA2 PSK, read by wpa_supplicant" hex_psk

# 3. mDNS across a veth pair between two namespaces.
NS_R=$NS                       # the responder's (test_begin made it)
NS_C=rmsdnetc-$$
ip netns add "$NS_C"; ip netns exec "$NS_C" ip link set lo up
test_cleanup_hook() { NS=$NS_C ns_destroy; }
ip link add rmr$$ netns "$NS_R" type veth peer name rmc$$ netns "$NS_C"
# No duplicate address detection: a tentative IPv6 address that turns valid a second later
# makes avahi drop the interface and pick it up again, racing the resolver.
ip netns exec "$NS_R" sysctl -qw "net.ipv6.conf.rmr$$.accept_dad=0"
ip netns exec "$NS_C" sysctl -qw "net.ipv6.conf.rmc$$.accept_dad=0"
ip netns exec "$NS_R" ip addr add 169.254.77.1/16 dev rmr$$
ip netns exec "$NS_R" ip link set rmr$$ up
ip netns exec "$NS_C" ip addr add 169.254.77.2/16 dev rmc$$
ip netns exec "$NS_C" ip link set rmc$$ up
for _ in $(seq 1 50); do   # both ends' link-local addresses in place
    [ -n "$(ip netns exec "$NS_R" ip -6 -o addr show dev rmr$$ scope link)" ] &&
        [ -n "$(ip netns exec "$NS_C" ip -6 -o addr show dev rmc$$ scope link)" ] && break
    sleep 0.1
done
mdns_start() {
    in_image_sh "HOSTNAME=regmirror; write_avahi_conf '$WORK/avahi-daemon.conf'"
    # A private /run (avahi-daemon writes /run/avahi-daemon/pid) and the image's files.
    ns_spawn "$LOGS/avahi.log" unshare --mount --propagation private -- sh -c \
        'mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon && exec "$@"' _ \
        qemu-aarch64 -L "$R" "$R/sbin/avahi-daemon" --no-chroot --no-rlimits \
        --no-proc-title -f "$WORK/avahi-daemon.conf"
    MDNS_PID=$SPAWNED_PID
    local i
    for i in $(seq 1 60); do
        grep -q "Server startup complete" "$LOGS/avahi.log" && return 0
        kill -0 "$MDNS_PID" 2>/dev/null || break
        sleep 0.5
    done
    tail -20 "$LOGS/avahi.log"
    return 1
}
if mdns_start > "$WORK/mdns-start.out" 2>&1; then
    ok "mdns: the image's avahi-daemon (qemu-user, the boot script's config, no D-Bus) starts"
    grep -m1 "Host name is" "$LOGS/avahi.log" | diag
else
    not_ok "mdns: the image's avahi-daemon starts"; diag < "$WORK/mdns-start.out"
fi
resolve() {  # NAME: resolved from the client namespace
    ip netns exec "$NS_C" timeout 60 "$PYENV/bin/python" "$REPO_ROOT/image/mdns-resolve.py" "$1" 10
}
# Under qemu-user avahi's IPv4 group join fails (IP_ADD_MEMBERSHIP: "No such device", qemu's
# translation of struct ip_mreqn; the IPv6 join works), so here the answer comes over IPv6,
# with the responder's link-local address; image/boot-test.sh checks in the VM, natively,
# that the IPv4 address record is published too.
resolves_to_responder() {
    local out mine
    mine=$(ip netns exec "$NS_R" ip -6 -o addr show dev rmr$$ scope link | awk '{print $4}' | cut -d/ -f1)
    out=$(resolve regmirror.local) || return 1
    echo "$out"
    grep -qE "^(169\.254\.77\.1|${mine}(%.*)?)\$" <<< "$out" || { echo "not the responder's ($mine, 169.254.77.1)"; return 1; }
}
check "mdns: python-zeroconf in another netns resolves regmirror.local to the responder's address" resolves_to_responder
unresolved() { if resolve nosuchbox.local; then return 1; fi; echo "nosuchbox.local: no answer"; }
check "mdns: a name nobody answers stays unresolved (the check above can fail)" unresolved

echo "# network tests took $(( $(date +%s) - T0 )) s"
summary
