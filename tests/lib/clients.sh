# shellcheck shell=bash
# Part of tests/lib.sh: the real clients besides skopeo — podman, containerd (ctr) and
# Docker Engine — each with private state under a dir the caller names and its sockets under
# $SOCK_DIR, configured to pull docker.io through a mirror, all inside the netns.

# podman_setup DIR: config for podman pulling docker.io through $MIRROR_ADDR.
podman_setup() {
    PODMAN_DIR=$1
    PODMAN_RUN=$SOCK_DIR/podman
    mkdir -p "$PODMAN_DIR/root" "$PODMAN_RUN" "$PODMAN_DIR/tmp"
    cat > "$PODMAN_DIR/registries.conf" <<EOF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "$MIRROR_ADDR"
insecure = true
EOF
    cat > "$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$PODMAN_DIR/root"
runroot = "$PODMAN_RUN"
EOF
    cat > "$PODMAN_DIR/containers.conf" <<EOF
[engine]
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
cgroup_manager = "cgroupfs"
tmp_dir = "$PODMAN_DIR/tmp"
EOF
}

podman_() {
    timeout -k 10 "$CLIENT_TIMEOUT" env CONTAINERS_REGISTRIES_CONF="$PODMAN_DIR/registries.conf" \
        CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf" CONTAINERS_CONF="$PODMAN_DIR/containers.conf" \
        TMPDIR="$PODMAN_DIR/tmp" nsenter --net="/run/netns/$NS" -- podman --root "$PODMAN_DIR/root" \
        --runroot "$PODMAN_RUN" --storage-driver vfs "$@"
}

# containerd_start DIR: a private containerd (no CRI) in the netns; hosts dir
# DIR/certs.d with docker.io -> $MIRROR_ADDR. Sets CTRD_PID, CTRD_SOCK, CTRD_HOSTS.
containerd_start() {
    local dir=$1 i state=$SOCK_DIR/containerd
    mkdir -p "$dir/root" "$state" "$dir/certs.d/docker.io"
    CTRD_SOCK=$state/c.sock
    CTRD_HOSTS=$dir/certs.d
    cat > "$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$state/t.sock"
[debug]
  address = "$state/d.sock"
EOF
    cat > "$CTRD_HOSTS/docker.io/hosts.toml" <<EOF
server = "https://registry-1.docker.io"
[host."http://$MIRROR_ADDR"]
  capabilities = ["pull", "resolve"]
EOF
    ns_spawn "$dir/containerd.log" containerd --config "$dir/config.toml"
    CTRD_PID=$SPAWNED_PID
    for ((i = 0; i < 200; i++)); do
        if ctr --address "$CTRD_SOCK" version > /dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    tail -20 "$dir/containerd.log" >&2
    return 1
}

ctr_() { timeout -k 10 "$CLIENT_TIMEOUT" nsenter --net="/run/netns/$NS" -- ctr --address "$CTRD_SOCK" --namespace e2e "$@"; }

# dockerd_start DIR [MIRROR_URL] [extra dockerd args]: Docker Engine in the netns, data
# under DIR, with --registry-mirror MIRROR_URL (default http://$MIRROR_ADDR; "" = none).
# No bridge network unless DOCKERD_BRIDGE=1 (docker0 then lives in the netns, 172.17.0.1,
# and `-p` works through docker-proxy; no iptables either way). Sets DOCKERD_PID,
# DOCKERD_DIR, DOCKER_HOST_SOCK, DOCKER_CFG.
dockerd_start() {
    local dir=$1 mirror=${2-http://$MIRROR_ADDR} i
    shift $(($# < 2 ? $# : 2))
    local -a margs=()
    [[ -z $mirror ]] || margs=(--registry-mirror "$mirror")
    [[ ${DOCKERD_BRIDGE:-0} == 1 ]] || margs+=(--bridge=none)
    DOCKERD_DIR=$dir
    mkdir -p "$dir/data" "$SOCK_DIR/docker" "$dir/config"
    DOCKER_HOST_SOCK=unix://$SOCK_DIR/docker/d.sock
    DOCKER_CFG=$dir/config
    ns_spawn "$dir/dockerd.log" dockerd --data-root "$dir/data" --exec-root "$SOCK_DIR/docker/exec" \
        --pidfile "$dir/d.pid" -H "$DOCKER_HOST_SOCK" "${margs[@]}" \
        --iptables=false --ip6tables=false --storage-driver=overlay2 "$@"
    DOCKERD_PID=$SPAWNED_PID
    for ((i = 0; i < 300; i++)); do
        if docker_ version > /dev/null 2>&1; then return 0; fi
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$dir/dockerd.log" >&2
    return 1
}

# dockerd_stop: stop dockerd (it unmounts its overlays on a clean stop). By its pidfile, so
# that a dockerd restarted in a subshell (a check) is the one stopped.
dockerd_stop() {
    local pid=${DOCKERD_PID:-}
    [[ -z ${DOCKERD_DIR:-} || ! -s $DOCKERD_DIR/d.pid ]] || pid=$(cat "$DOCKERD_DIR/d.pid")
    stop_pid "$pid" 30
    DOCKERD_PID=
}

docker_() { timeout -k 10 "$CLIENT_TIMEOUT" "$DOCKER_CLI" --config "$DOCKER_CFG" -H "$DOCKER_HOST_SOCK" "$@"; }
