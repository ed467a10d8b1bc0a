# shellcheck shell=bash
# Part of tests/lib.sh: the private network namespace every test runs in. It has only
# loopback, so a client that falls back to registry-1.docker.io (Docker, podman and
# containerd do when a mirror fails) cannot leave the box. We enter it with nsenter, not
# `ip netns exec`: the latter remounts /sys and dockerd then fails ("Devices cgroup isn't
# mounted").

# ns_create NAME: a netns with only loopback up; sets NS.
ns_create() {
    NS=$1
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
}

# nsx CMD...: run CMD in the netns, in the foreground.
nsx() { nsenter --net="/run/netns/$NS" -- "$@"; }

# ns_spawn LOG CMD...: start CMD in the background in the netns, output appended to LOG;
# sets SPAWNED_PID to CMD's own PID (nsenter execs it) and tracks it.
ns_spawn() {
    local logf=$1; shift
    nsenter --net="/run/netns/$NS" -- "$@" >> "$logf" 2>&1 < /dev/null &
    SPAWNED_PID=$!
    track_pid "$SPAWNED_PID"
}

# ns_kill_all: end whatever is still inside the netns (only our processes can
# be there: servers and clients), by PID: TERM, then KILL.
ns_kill_all() {
    [[ -n $NS && -e /run/netns/$NS ]] || return 0
    local pids p i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$NS" 2>/dev/null || true)
        [[ -n $pids ]] || break
        for p in $pids; do
            kill -CONT "$p" 2>/dev/null || true
            if ((i < 4)); then kill -TERM "$p" 2>/dev/null || true; else kill -KILL "$p" 2>/dev/null || true; fi
        done
        sleep 1
    done
}

# ns_destroy: ns_kill_all, then delete the netns.
ns_destroy() {
    [[ -n $NS && -e /run/netns/$NS ]] || return 0
    ns_kill_all
    ip netns delete "$NS" || true
}

# wait_http URL [SECONDS] [PID]: until URL answers with any HTTP status from inside the
# netns (20 s by default); gives up early when PID (a server we started) has exited.
wait_http() {
    local url=$1 secs=${2:-20} pid=${3:-} i
    for ((i = 0; i < secs * 10; i++)); do
        if nsx curl -s -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

port_busy() { nsx curl -s -o /dev/null --max-time 2 "http://$1/" 2>/dev/null; }
