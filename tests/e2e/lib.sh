# shellcheck shell=bash
# Shared helpers for tests/e2e/run.sh and tests/bench.sh. Source it; needs root.
#
# Everything (upstream registry, mirror under test, every client) runs inside a
# private network namespace with only loopback, so a client that falls back to
# registry-1.docker.io cannot leave the box. Servers listen on 127.0.0.1 there.
#
# Environment:
#   MIRROR        mirror under test (a command; default target/release/regmirror);
#                 tests/e2e/mirror-distribution.sh runs CNCF distribution instead
#   E2E_WORK      work root (default tests/e2e/work, gitignored)
#   E2E_VERBOSE   1 = pass -v to the mirror (default 1)
#   E2E_TIMEOUT   per client call timeout in seconds (default 300)

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)
WORK=${E2E_WORK:-$E2E_DIR/work}
MIRROR=${MIRROR:-$REPO_ROOT/target/release/regmirror}
E2E_VERBOSE=${E2E_VERBOSE:-1}
E2E_TIMEOUT=${E2E_TIMEOUT:-300}
UP_PORT=5000
MIRROR_PORT=5001
UP_ADDR=127.0.0.1:$UP_PORT
MIRROR_ADDR=127.0.0.1:$MIRROR_PORT
UPSTREAM_DATA=$WORK/upstream-data    # seeded once, reused while seed.py is unchanged
# Daemons' runtime state (unix sockets, podman's runroot) must not depend on where the
# checkout lives: socket paths stop at 108 bytes and podman's runroot at 50 characters.
E2E_RUN=/tmp/rm-e2e-$$
IMAGES_JSON=$WORK/images.json
PY=/usr/bin/python3
DOCKER_CLI=/usr/bin/docker           # Debian's 20.10 CLI (/usr/local/bin/docker is another one)

NS=${NS:-}
RUN=${RUN:-}                         # this run's scratch dir (logs, caches, client dirs)
PIDFILE=${PIDFILE:-}                 # every server PID we start, for the safety net

log() { printf '%s\n' "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# ------------------------------------------------------------------ namespace

# ns_create NAME: a netns with only loopback up.
ns_create() {
  NS=$1
  ip netns add "$NS"
  ip netns exec "$NS" ip link set lo up
}

# nsx CMD...: run CMD in the netns. nsenter (not `ip netns exec`, which remounts
# /sys and breaks dockerd). Not for servers in the background: see upstream_start.
nsx() { nsenter --net="/run/netns/$NS" -- "$@"; }

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

track_pid() { [[ -z $PIDFILE ]] || echo "$1" >> "$PIDFILE"; }

# stop_pid PID [SECONDS]: TERM, wait, then KILL. Also CONTs a stopped process.
stop_pid() {
  local pid=$1 secs=${2:-15} i
  [[ -n $pid ]] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# kill_tracked: safety net, every PID we recorded.
kill_tracked() {
  [[ -n $PIDFILE && -f $PIDFILE ]] || return 0
  local p
  while read -r p; do
    kill -CONT "$p" 2>/dev/null || true
    kill -KILL "$p" 2>/dev/null || true
  done < "$PIDFILE"
}

# umount_under DIR: lazy-unmount anything (overlay, shm) left mounted below DIR.
umount_under() {
  local dir=$1 m
  [[ -n $dir ]] || return 0
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

# wait_http URL SECONDS: until URL answers 200 from inside the netns.
wait_http() {
  local url=$1 secs=${2:-20} i
  for ((i = 0; i < secs * 10; i++)); do
    if nsx curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

port_busy() { nsx curl -s -o /dev/null --max-time 2 "http://$1/" 2>/dev/null; }

# ------------------------------------------------------------------ upstream

# upstream_start LOGFILE: distribution on 127.0.0.1:5000, filesystem storage in
# $UPSTREAM_DATA, access log on. Sets UP_PID, UP_LOG; resets the mark.
upstream_start() {
  UP_LOG=$1
  ! port_busy "$UP_ADDR" || die "something already listens on $UP_ADDR"
  local conf=$RUN/upstream.yml
  : >> "$UP_LOG"
  mkdir -p "$UPSTREAM_DATA"
  cat > "$conf" <<YML
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $UPSTREAM_DATA
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $UP_ADDR
YML
  # A simple command with &: bash execs nsenter, nsenter execs the program, so
  # $! is the server itself (a function like nsx would leave a bash in between).
  nsenter --net="/run/netns/$NS" -- docker-registry serve "$conf" >> "$UP_LOG" 2>&1 &
  UP_PID=$!
  track_pid "$UP_PID"
  UP_MARK=$(wc -l < "$UP_LOG")
  if ! wait_http "http://$UP_ADDR/v2/" 20 || ! kill -0 "$UP_PID" 2>/dev/null; then
    tail -20 "$UP_LOG" >&2
    die "upstream did not start"
  fi
}

upstream_stop() { stop_pid "${UP_PID:-}"; UP_PID=; }
upstream_kill() { kill -KILL "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; UP_PID=; }
upstream_freeze() { kill -STOP "$UP_PID"; }
upstream_thaw() { kill -CONT "$UP_PID" 2>/dev/null || true; }

# upstream_mark: count access-log lines from here on.
upstream_mark() { sleep 0.3; UP_MARK=$(wc -l < "$UP_LOG"); }

# upstream_access: access-log lines (combined log format) since the mark.
upstream_access() {
  sleep 0.3   # distribution logs a request when its response is complete
  tail -n "+$((UP_MARK + 1))" "$UP_LOG" | awk '$2 == "-" && $3 == "-" && $4 ~ /^\[/' || true
}

# upstream_blob_gets DIGEST: upstream GETs of that blob since the mark.
upstream_blob_gets() {
  upstream_access | awk -v d="/blobs/$1" '$6 == "\"GET" { p = $7; sub(/\?.*/, "", p)
      if (length(p) >= length(d) && substr(p, length(p) - length(d) + 1) == d) n++ } END { print n + 0 }'
}

# upstream_blob_report: "<digest> <GETs> <bytes>" per blob GET since the mark.
upstream_blob_report() {
  upstream_access | awk '$6 == "\"GET" && $7 ~ /\/blobs\/sha256:/ {
      d = $7; sub(/.*\/blobs\//, "", d); sub(/\?.*/, "", d); n[d]++; b[d] += ($10 == "-" ? 0 : $10) }
    END { for (d in n) print d, n[d], b[d] }'
}

upstream_blob_get_total() { upstream_access | awk '$6 == "\"GET" && $7 ~ /\/blobs\//' | wc -l; }
upstream_bytes_total() { upstream_access | awk '$6 == "\"GET" { s += ($10 == "-" ? 0 : $10) } END { print s + 0 }'; }

# seed_upstream: push the test images (skipped when the storage was seeded by
# this very seed.py). Needs a running upstream.
seed_upstream() {
  local stamp=$UPSTREAM_DATA/.seeded-by want
  want=$(sha256sum "$E2E_DIR/seed.py" | cut -d' ' -f1)
  if [[ -f $IMAGES_JSON && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    log "seed: upstream already seeded by this seed.py"
    return 0
  fi
  # The .debs come from Debian's mirror: fetch them here, where there is a network; the
  # seeding below runs in the netns, which has none.
  "$PY" "$E2E_DIR/seed.py" --fetch-only --cache "$WORK/seed-cache" >&2 ||
    log "seed: busybox .debs unavailable; images get generated files (docker run will fail)"
  nsx "$PY" "$E2E_DIR/seed.py" --registry "$UP_ADDR" --out "$IMAGES_JSON" \
      --cache "$WORK/seed-cache" >&2
  echo "$want" > "$stamp"
}

# ------------------------------------------------------------------ seed JSON

# img_q REPO TAG JQ-FILTER: query one image of the seed JSON (. = the image).
img_q() { jq -r --arg r "$1" --arg t "$2" ".images[] | select(.repo == \$r and .tag == \$t) | $3" "$IMAGES_JSON"; }
img_digest() { img_q "$1" "$2" .digest; }
# plat_q REPO TAG ARCH FILTER (. = the platform entry)
plat_q() { img_q "$1" "$2" ".platforms[] | select(.architecture == \"$3\") | $4"; }
all_images() { jq -r '.images[] | "\(.repo) \(.tag)"' "$IMAGES_JSON"; }
all_image_bytes() { jq '[.images[].platforms[].blobs[] | {(.digest): .size}] | add | add' "$IMAGES_JSON"; }

# --------------------------------------------------------------------- mirror

MIRROR_N=0
# mirror_start CACHE_DIR [extra serve args...]: start $MIRROR in the netns on
# 127.0.0.1:5001, wait for /v2/. Sets MIRROR_PID, MIRROR_LOG.
mirror_start() {
  local cache=$1; shift
  local -a cmd v=()
  read -r -a cmd <<< "$MIRROR"
  ((E2E_VERBOSE)) && v=(-v)
  MIRROR_N=$((MIRROR_N + 1))
  MIRROR_LOG=$RUN/logs/mirror-${SCENARIO:-x}-$MIRROR_N.log
  mkdir -p "$cache" "$RUN/logs"
  if port_busy "$MIRROR_ADDR"; then
    log "# something already listens on $MIRROR_ADDR"
    return 1
  fi
  {
    echo "# $(date +%T) ${cmd[*]} serve --listen $MIRROR_ADDR --cache-dir $cache --upstream docker.io=http://$UP_ADDR $* ${v[*]}"
  } >> "$MIRROR_LOG"
  nsenter --net="/run/netns/$NS" -- "${cmd[@]}" serve --listen "$MIRROR_ADDR" --cache-dir "$cache" \
      --upstream "docker.io=http://$UP_ADDR" "$@" "${v[@]}" >> "$MIRROR_LOG" 2>&1 &
  MIRROR_PID=$!
  track_pid "$MIRROR_PID"
  if ! wait_http "http://$MIRROR_ADDR/v2/" 20 || ! kill -0 "$MIRROR_PID" 2>/dev/null; then
    log "# mirror did not answer GET /v2/ within 20 s; log tail:"
    tail -20 "$MIRROR_LOG" | sed 's/^/#   /' >&2
    return 1
  fi
}

mirror_stop() { stop_pid "${MIRROR_PID:-}"; MIRROR_PID=; }
mirror_kill9() { kill -KILL "$MIRROR_PID" 2>/dev/null || true; wait "$MIRROR_PID" 2>/dev/null || true; MIRROR_PID=; }

# mirror_verify CACHE_DIR: `$MIRROR verify --cache-dir DIR`, output to the log.
mirror_verify() {
  local -a cmd
  read -r -a cmd <<< "$MIRROR"
  timeout -k 5 300 "${cmd[@]}" verify --cache-dir "$1" >> "$RUN/logs/verify-${SCENARIO:-x}.log" 2>&1
}

# mirror_log_summary: counts of HIT/MISS/COALESCED/STALE/PASS in the current log.
mirror_log_summary() {
  [[ -f ${MIRROR_LOG:-} ]] || return 0
  local w out=
  for w in HIT MISS COALESCED STALE PASS; do
    out+="$w=$(grep -cw "$w" "$MIRROR_LOG" || true) "
  done
  echo "$out"
}

# --------------------------------------------------------------------- clients

# skopeo_copy REPO:TAG OUTDIR [extra args]: pull through the mirror into a dir:.
# --preserve-digests: skopeo must fail rather than rewrite a manifest.
skopeo_copy() {
  local ref=$1 out=$2; shift 2
  rm -rf "$out"
  timeout -k 10 "${SKOPEO_TIMEOUT:-$E2E_TIMEOUT}" nsenter --net="/run/netns/$NS" -- \
    skopeo --insecure-policy copy --preserve-digests --retry-times 0 --src-tls-verify=false "$@" \
    "docker://$MIRROR_ADDR/$ref" "dir:$out"
}

# file_sha FILE -> sha256:<hex>
file_sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# verify_dir OUT REPO TAG [ARCH]: the dir: copy matches the seed JSON.
# Without ARCH: the top manifest (index/list or single manifest) and, for each
# platform, its manifest and every blob. With ARCH: that platform only, its
# manifest as the top manifest. Prints the first problem and returns 1.
verify_dir() {
  local out=$1 repo=$2 tag=$3 arch=${4:-} top got a d mdig
  if [[ -n $arch ]]; then
    top=$(plat_q "$repo" "$tag" "$arch" .digest)
  else
    top=$(img_digest "$repo" "$tag")
  fi
  [[ -n $top ]] || { echo "no $repo:$tag ${arch} in seed JSON"; return 1; }
  [[ -f $out/manifest.json ]] || { echo "$out/manifest.json missing"; return 1; }
  got=$(file_sha "$out/manifest.json")
  [[ $got == "$top" ]] || { echo "manifest.json is $got, want $top"; return 1; }
  local archs
  if [[ -n $arch ]]; then archs=$arch; else archs=$(img_q "$repo" "$tag" '.platforms[].architecture'); fi
  local multi
  multi=$(img_q "$repo" "$tag" .multiarch)
  for a in $archs; do
    mdig=$(plat_q "$repo" "$tag" "$a" .digest)
    if [[ $multi == true && -z $arch ]]; then
      local mf=$out/${mdig#sha256:}.manifest.json
      [[ -f $mf ]] || { echo "$a manifest $mdig missing"; return 1; }
      got=$(file_sha "$mf")
      [[ $got == "$mdig" ]] || { echo "$a manifest file hashes to $got, want $mdig"; return 1; }
    fi
    for d in $(plat_q "$repo" "$tag" "$a" '.blobs[].digest'); do
      [[ -f $out/${d#sha256:} ]] || { echo "$a blob $d missing"; return 1; }
      got=$(file_sha "$out/${d#sha256:}")
      [[ $got == "$d" ]] || { echo "$a blob $d hashes to $got"; return 1; }
    done
  done
}

# ---------------------------------------------------------- podman / ctr / dockerd

# podman_setup DIR: config for podman pulling docker.io through the mirror.
podman_setup() {
  PODMAN_DIR=$1
  PODMAN_RUN=$E2E_RUN/podman
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
  timeout -k 10 "$E2E_TIMEOUT" env CONTAINERS_REGISTRIES_CONF="$PODMAN_DIR/registries.conf" \
    CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf" CONTAINERS_CONF="$PODMAN_DIR/containers.conf" \
    TMPDIR="$PODMAN_DIR/tmp" nsenter --net="/run/netns/$NS" -- podman --root "$PODMAN_DIR/root" \
    --runroot "$PODMAN_RUN" --storage-driver vfs "$@"
}

# containerd_start DIR: a private containerd (no CRI) in the netns; hosts dir
# DIR/certs.d with docker.io -> the mirror. Sets CTRD_PID, CTRD_SOCK, CTRD_HOSTS.
containerd_start() {
  local dir=$1 i state=$E2E_RUN/containerd
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
  nsenter --net="/run/netns/$NS" -- containerd --config "$dir/config.toml" > "$dir/containerd.log" 2>&1 &
  CTRD_PID=$!
  track_pid "$CTRD_PID"
  for ((i = 0; i < 200; i++)); do
    if ctr --address "$CTRD_SOCK" version > /dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  tail -20 "$dir/containerd.log" >&2
  return 1
}

ctr_() { timeout -k 10 "$E2E_TIMEOUT" nsenter --net="/run/netns/$NS" -- ctr --address "$CTRD_SOCK" --namespace e2e "$@"; }

# dockerd_start DIR: Docker Engine with --registry-mirror=http://127.0.0.1:5001.
# Sets DOCKERD_PID, DOCKER_HOST_SOCK.
dockerd_start() {
  local dir=$1 i
  mkdir -p "$dir/data" "$E2E_RUN/docker" "$dir/config"
  DOCKER_HOST_SOCK=unix://$E2E_RUN/docker/d.sock
  DOCKER_CFG=$dir/config
  nsenter --net="/run/netns/$NS" -- dockerd --data-root "$dir/data" --exec-root "$E2E_RUN/docker/exec" \
    --pidfile "$dir/d.pid" -H "$DOCKER_HOST_SOCK" --registry-mirror "http://$MIRROR_ADDR" \
    --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
    > "$dir/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  track_pid "$DOCKERD_PID"
  for ((i = 0; i < 300; i++)); do
    if docker_ version > /dev/null 2>&1; then return 0; fi
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$dir/dockerd.log" >&2
  return 1
}

docker_() { timeout -k 10 "$E2E_TIMEOUT" "$DOCKER_CLI" --config "$DOCKER_CFG" -H "$DOCKER_HOST_SOCK" "$@"; }
