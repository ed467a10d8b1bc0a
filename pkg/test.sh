#!/usr/bin/env bash
# pkg/test.sh — the amd64 package on a fresh Debian bookworm machine, as a user meets it:
# `apt install ./regmirror_<v>_amd64.deb` leaves a running service on port 5000 that
# skopeo pulls through; an upgrade keeps the configuration file's local edits; purge
# removes the cache.
#
# The "machine" is a bookworm root made with mmdebstrap (systemd, dbus, netbase — what any
# installed Debian has) and booted with `systemd-nspawn --boot`: Debian's own systemd is
# PID 1 of the container, so the package's postinst, the unit, its sandboxing and the
# service user are the real ones. This machine's PID 1 is not systemd, hence nspawn's
# `--register=no --keep-unit`. The container shares a network namespace made here, which
# has only loopback: the upstream (Debian's docker-registry with tests/seed.py's small set),
# the service and skopeo all meet on 127.0.0.1 there, and nothing reaches the internet.
# Commands run inside the container with nsenter into its PID 1 (no machinectl without
# registration).
#
#   pkg/test.sh                 # builds the amd64 .deb (pkg/build.sh) and tests it
#   PKG_DEB=path.deb pkg/test.sh
#
# Prints `ok N - …` / `not ok N - …` and `N passed, M failed`; exits 1 on a failure.
# Needs root (network namespaces, nspawn). KEEP_WORK=1 keeps the work directory.
#
# From tests/lib.sh it uses: test_begin/test_end (scratch dir $WORK, netns $NS, traps),
# check/ok/not_ok/summary, nsx, upstream_start, upstream_mark, upstream_blob_get_total,
# seed_upstream, all_images, skopeo_copy, verify_dir.
set -euo pipefail
# The service is on 5000, as installed; the upstream beside it. Set before the library reads them.
MIRROR_PORT=5000
UP_PORT=5002
export UP_ADDR=127.0.0.1:$UP_PORT MIRROR_ADDR=127.0.0.1:$MIRROR_PORT
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../tests/lib.sh"
apt_ensure mmdebstrap systemd-container docker-registry skopeo jq curl iproute2 python3 util-linux

# Longest wait for the booted container to answer on port 5000, and for it to halt.
BOOT_WAIT=120
HALT_WAIT=60

T0=$SECONDS
test_begin pkg
ROOT=$WORK/root
NSPAWN_PID=

# in_box CMD…: run CMD in the booted container (its namespaces and root, a clean env).
in_box() {
    local leader
    leader=$(pgrep -P "$NSPAWN_PID" -x systemd | head -n1)
    [ -n "$leader" ] || { echo "the container's systemd is not running"; return 1; }
    nsenter -t "$leader" -a -r -w -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Run by test_end before it stops our servers and deletes the netns: halt the container.
test_cleanup_hook() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true
        timeout "$HALT_WAIT" tail --pid="$NSPAWN_PID" -f /dev/null || kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    fi
}

# --- the packages: the one under test, and the same with a higher version for the upgrade
DEB=${PKG_DEB:-}
if [ -z "$DEB" ]; then
    DEB=$("$REPO_ROOT/pkg/build.sh" amd64 | tail -n1)
fi
VERSION=$(dpkg-deb -f "$DEB" Version)
UPGRADE_DEB=$(PKG_OUT=$WORK/upgrade PKG_VERSION="$VERSION+test1" "$REPO_ROOT/pkg/build.sh" amd64 | tail -n1)
echo "# $DEB ($(stat -c %s "$DEB") bytes), upgrade to $VERSION+test1"

package_contents() {
    dpkg-deb -f "$DEB" Architecture | grep -qx amd64 || return 1
    dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | grep -qx /etc/regmirror/regmirror.conf || return 1
    local want got
    for want in ./usr/bin/regmirror ./lib/systemd/system/regmirror.service \
        ./etc/regmirror/regmirror.conf ./usr/share/man/man1/regmirror.1.gz \
        ./usr/lib/sysusers.d/regmirror.conf ./usr/share/doc/regmirror/copyright; do
        dpkg-deb -c "$DEB" | awk '{print $6}' | grep -qx "$want" || { echo "no $want"; return 1; }
    done
    got=$(dpkg-deb -c "$DEB" | wc -l); echo "$got entries, conffile listed"
}
check "package metadata and contents" package_contents
if command -v lintian >/dev/null; then
    # Informational: a hand-assembled package of a static binary draws a few tags.
    lintian --tag-display-limit 0 "$DEB" 2>&1 | sed 's/^/#   lintian: /' | head -n 20 || true
fi

# --- the upstream, in the loopback-only network namespace test_begin made
upstream_start
seed_upstream small
mapfile -t IMAGES < <(all_images)
echo "# upstream on $UP_ADDR with ${#IMAGES[@]} images"

# --- a fresh bookworm machine
t=$SECONDS
check "mmdebstrap: a fresh bookworm root with systemd" \
    mmdebstrap --variant=apt --include=systemd,systemd-sysv,dbus,netbase bookworm "$ROOT"
echo "#   $((SECONDS - t)) s"
cp "$DEB" "$UPGRADE_DEB" "$ROOT/root/"
echo regmirror-test > "$ROOT/etc/hostname"

t=$SECONDS
systemd-nspawn -D "$ROOT" --boot --register=no --keep-unit --console=passive \
    --network-namespace-path="/run/netns/$NS" < /dev/null > "$LOGS/nspawn.log" 2>&1 &
NSPAWN_PID=$!
booted() {
    local i
    for ((i = 0; i < BOOT_WAIT; i++)); do
        state=$(in_box systemctl is-system-running 2>/dev/null || true)
        case "$state" in running|degraded) echo "$state after $((SECONDS - t)) s"; return 0 ;; esac
        kill -0 "$NSPAWN_PID" 2>/dev/null || { tail -n 20 "$LOGS/nspawn.log"; return 1; }
        sleep 1
    done
    echo "still ${state:-not up} after $BOOT_WAIT s"; return 1
}
check "systemd-nspawn --boot: Debian's systemd is up" booted

# --- the README's install command
check "apt install ./regmirror_${VERSION}_amd64.deb" \
    in_box sh -c "cd /root && apt-get install -y ./$(basename "$DEB")"
check "the service is active right after the install" in_box systemctl is-active regmirror
answers() { # answers URL: GET from the host side of the netns, within BOOT_WAIT s
    local i
    for ((i = 0; i < BOOT_WAIT * 5; i++)); do
        if nsx curl -fsS -o /dev/null --max-time 2 "$1"; then
            nsx curl -sS -D - -o /dev/null "$1" | head -n1; return 0
        fi
        sleep 0.2
    done
    return 1
}
check "the mirror answers GET /v2/ on port $MIRROR_PORT" answers "http://127.0.0.1:$MIRROR_PORT/v2/"
runs_as_regmirror() {
    local pid user
    pid=$(in_box systemctl show -P MainPID regmirror) && user=$(in_box stat -c %U "/proc/$pid") || return 1
    echo "MainPID $pid runs as $user; $(in_box getent passwd regmirror)"
    [ "$user" = regmirror ] && in_box getent passwd regmirror | grep -q nologin
}
check "it runs as the system user regmirror, not root" runs_as_regmirror
cache_owned() {
    in_box stat -c "%U:%G %a %n" /var/cache/regmirror | tee /dev/stderr | grep -q "^regmirror:regmirror 750 "
}
check "its cache is /var/cache/regmirror, owned by regmirror" cache_owned
startup_line() {
    local line
    line=$(in_box journalctl -u regmirror -o cat --no-pager | grep -m1 "listening on") || return 1
    echo "$line"
    case "$line" in *"cache /var/cache/regmirror: "*"budget"*) ;; *) return 1 ;; esac
}
check "the start-up line names the cache and the budget" startup_line
hardening() {
    local show
    in_box systemd-analyze security regmirror --no-pager > "$WORK/security.txt" 2>&1 ||
        { cat "$WORK/security.txt"; return 1; }
    grep -E "Overall exposure" "$WORK/security.txt" || tail -n1 "$WORK/security.txt"
    show=$(in_box systemctl show -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp \
        -p MemoryHigh -p MemoryMax regmirror | tr '\n' ' ')
    echo "$show"
    case "$show" in *NoNewPrivileges=yes*) ;; *) return 1 ;; esac
    case "$show" in *ProtectSystem=strict*) ;; *) return 1 ;; esac
}
check "hardening is in force (systemd-analyze security)" hardening
# Whether the memory limit reaches the kernel depends on the container's cgroups: say what
# this machine does rather than fail where it cannot.
memory_limit() {
    local f
    for f in /sys/fs/cgroup/system.slice/regmirror.service/memory.max \
        /sys/fs/cgroup/memory/system.slice/regmirror.service/memory.limit_in_bytes; do
        if in_box test -e "$f"; then echo "$f = $(in_box cat "$f")"; return 0; fi
    done
    echo "no memory cgroup for the unit in this container"
}
echo "# memory limit: $(memory_limit)"
# --- configure it, as an administrator would: a local edit of the conffile
CONF=/etc/regmirror/regmirror.conf
edits_present() {
    in_box grep -c -e "^upstream = docker.io=http://localhost:$UP_PORT\$" -e '^tag-ttl = 7m$' "$CONF" | grep -qx 2
}
configure() {
    in_box sed -i "s|^#upstream = docker.io=.*|upstream = docker.io=http://localhost:$UP_PORT|" "$CONF" &&
        in_box sed -i 's|^#tag-ttl = 5m$|tag-ttl = 7m|' "$CONF" && edits_present &&
        in_box systemctl restart regmirror && in_box systemctl is-active regmirror &&
        answers "http://$MIRROR_ADDR/v2/"
}
check "point docker.io at the LAN upstream in $CONF and restart" configure
pull() { # pull REPO TAG OUT: skopeo copy --all through the service, checked against the seed
    skopeo_copy "$1:$2" "$3" --all && verify_dir "$3" "$1" "$2" && echo "verified $(ls "$3" | wc -l) files"
}
for img in "${IMAGES[@]}"; do
    read -r repo tag <<< "$img"
    check "skopeo copy --all $repo:$tag through the service" pull "$repo" "$tag" "$WORK/pull-${repo//\//_}-$tag"
done
cached_blobs() {
    local n
    n=$(in_box find /var/cache/regmirror/blobs -type f | wc -l); echo "$n blobs"; [ "$n" -gt 0 ]
}
check "the blobs are in /var/cache/regmirror" cached_blobs

# --- upgrade: local edits survive, the service comes back
check "apt install the upgrade ($VERSION+test1)" \
    in_box sh -c "cd /root && apt-get install -y ./$(basename "$UPGRADE_DEB")"
check "the upgrade kept the local edits of $CONF" edits_present
back_after_upgrade() {
    in_box systemctl is-active regmirror && answers "http://$MIRROR_ADDR/v2/" &&
        in_box dpkg-query -W -f '${Version}\n' regmirror
}
check "the service is active again after the upgrade" back_after_upgrade
read -r repo tag <<< "${IMAGES[0]}"
warm_pull() {
    upstream_mark
    pull "$repo" "$tag" "$WORK/warm" || return 1
    local gets; gets=$(upstream_blob_get_total); echo "upstream blob GETs: $gets"; [ "$gets" -eq 0 ]
}
check "a warm pull of $repo:$tag after the upgrade comes from the kept cache" warm_pull

# --- remove and purge
removed() { in_box apt-get remove -y regmirror > /dev/null && ! in_box systemctl is-active regmirror; }
check "apt remove stops the service" removed
purged() {
    in_box apt-get purge -y regmirror > /dev/null &&
        ! in_box test -e /var/cache/regmirror && ! in_box test -e /etc/regmirror/regmirror.conf
}
check "apt purge deletes the cache and the conffile" purged

halted() {
    kill -TERM "$NSPAWN_PID"
    timeout "$HALT_WAIT" tail --pid="$NSPAWN_PID" -f /dev/null && echo halted
}
check "the container halts on SIGTERM" halted

echo "# pkg/test.sh took $((SECONDS - T0)) s"
summary
