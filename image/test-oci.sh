#!/usr/bin/env bash
# image/test-oci.sh [LAYOUT] — check the OCI layout from image/build-oci.sh.
#
#  1. skopeo inspects every platform (--override-arch/--override-variant) and the
#     image config (User, Entrypoint, ExposedPorts, Volumes, arch/variant).
#  2. A second build into a temp dir gives the same bytes (reproducible).
#  3. In a private, loopback-only network namespace: a local upstream (Debian's
#     docker-registry) gets the layout pushed with `skopeo copy --all` and a tiny
#     generated test image; Docker Engine (dockerd started by hand in the netns
#     via nsenter, with --registry-mirror pointing at the container) pulls the
#     amd64 image and `docker run`s it with --network host and a named volume;
#     skopeo and Docker itself then pull through that container, digests checked,
#     and the cache is found on the volume, written by the non-root user.
# Prints `ok`/`not ok` lines and a summary; exits non-zero on any failure.
set -euo pipefail
. "$(dirname "$0")/../cross/lib.sh"

[ "$(id -u)" = 0 ] || die "needs root (network namespaces, dockerd)"
apt_ensure skopeo docker-registry docker.io containerd iproute2 jq python3 curl util-linux
OCI=${1:-$REPO_ROOT/target/oci/regmirror}
[ -f "$OCI/index.json" ] || OCI=$("$(dirname "$0")/build-oci.sh" | tail -n1)

WORK=$(mktemp -d /tmp/regmirror-ocitest.XXXXXX)
NS=rmo-$$
PIDS=() DOCKERD_PID=
SOCK=$WORK/docker.sock
dk() { timeout 300 docker -H "unix://$SOCK" "$@"; }
cleanup() {
    local rc=$? p
    if [ -n "$DOCKERD_PID" ]; then
        dk rm -f "rm-$$" >/dev/null 2>&1 || true
        dk volume rm "rmcache-$$" >/dev/null 2>&1 || true
        kill "$DOCKERD_PID" 2>/dev/null || true
        timeout 30 tail --pid="$DOCKERD_PID" -f /dev/null || kill -9 "$DOCKERD_PID" 2>/dev/null || true
    fi
    stop_pids "${PIDS[@]}"
    # dockerd unmounts its overlays on a clean stop; be sure before rm -rf.
    grep -o " $WORK[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    netns_delete "$NS"
    finish_work "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


INDEX_DIGEST=$(jq -r '.manifests[0].digest' "$OCI/index.json")
echo "# layout $OCI, index $INDEX_DIGEST"

# 1. Every platform, and the config a runtime will use.
inspect_platform() {  # ARCH VARIANT
    local arch=$1 variant=$2 args=(--override-os linux --override-arch "$1") cfg
    [ "$variant" = - ] || args+=(--override-variant "$variant")
    cfg=$(timeout 60 skopeo "${args[@]}" inspect --config "oci:$OCI:latest") || return 1
    echo "$cfg" | jq -e --arg a "$arch" --arg v "$variant" '
        .architecture == $a and (($v == "-") or .variant == $v) and .os == "linux"
        and .config.User == "65532:65532"
        and .config.Entrypoint == ["/regmirror","serve","--cache-dir","/var/lib/regmirror"]
        and (.config.ExposedPorts | has("5000/tcp"))
        and (.config.Volumes | has("/var/lib/regmirror"))' >/dev/null \
        || { echo "$cfg"; return 1; }
    timeout 60 skopeo "${args[@]}" inspect "oci:$OCI:latest" | jq -c '{Digest, Architecture, Os, Layers}'
}
check "oci: linux/amd64 inspects with the expected config" inspect_platform amd64 -
check "oci: linux/arm64 inspects with the expected config" inspect_platform arm64 -
check "oci: linux/arm/v7 inspects with the expected config" inspect_platform arm v7
check "oci: linux/arm/v6 inspects with the expected config" inspect_platform arm v6

layer_listing() {  # the amd64 layer holds exactly /regmirror and the volume dir
    local m l
    m=$(jq -r '.manifests[0].digest' "$OCI/index.json"); m=${m#sha256:}
    m=$(jq -r '.manifests[] | select(.platform.architecture=="amd64") | .digest' "$OCI/blobs/sha256/$m"); m=${m#sha256:}
    l=$(jq -r '.layers[0].digest' "$OCI/blobs/sha256/$m"); l=${l#sha256:}
    tar -tvzf "$OCI/blobs/sha256/$l" --numeric-owner | tee "$WORK/listing"
    [ "$(awk '{print $6}' "$WORK/listing" | tr '\n' ' ')" = "regmirror var/ var/lib/ var/lib/regmirror/ " ]
    awk '$6=="var/lib/regmirror/" && $2=="65532/65532"{f=1} END{exit !f}' "$WORK/listing"
    awk '$6=="regmirror" && $2=="0/0" && $1=="-rwxr-xr-x"{f=1} END{exit !f}' "$WORK/listing"
}
check "oci: layer is /regmirror (root, 0755) + /var/lib/regmirror (65532)" layer_listing

# 2. Reproducible.
rebuild_same() {  # same binaries and the layout's own SOURCE_DATE_EPOCH
    local created epoch
    created=$(jq -r '.annotations["org.opencontainers.image.created"]' "$OCI/blobs/sha256/${INDEX_DIGEST#sha256:}")
    epoch=$(date -u -d "$created" +%s) || return 1
    SOURCE_DATE_EPOCH=$epoch OCI_OUT=$WORK/rebuild "$(dirname "$0")/build-oci.sh" >/dev/null 2>"$WORK/rebuild.log" \
        || { tail -5 "$WORK/rebuild.log"; return 1; }
    diff -r "$OCI" "$WORK/rebuild" && echo "second build: identical, index $INDEX_DIGEST"
}
check "oci: a second build gives identical bytes" rebuild_same

# 3. Push it, run it in Docker, pull through it.
netns_create "$NS"
UP=5001 MP=5000
start_registry "$NS" "$WORK/upstream" $UP
PIDS+=("$REGISTRY_PID")
in_ns "$NS" timeout 120 python3 "$REPO_ROOT/cross/testimage.py" http://127.0.0.1:$UP library/tiny > "$WORK/digests.json"
MULTI=$(jq -r .multi "$WORK/digests.json")
IMAGE=127.0.0.1:$UP/regmirror/regmirror:latest

push_layout() {
    in_ns "$NS" timeout 300 skopeo copy -q --all --dest-tls-verify=false "oci:$OCI:latest" "docker://$IMAGE" || return 1
    local got
    got=$(in_ns "$NS" timeout 60 skopeo inspect --raw --tls-verify=false "docker://$IMAGE" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$INDEX_DIGEST" ] && echo "pushed index digest sha256:$got"
}
check "oci: skopeo copy --all pushes the layout to a registry (same index digest)" push_layout

mkdir -p "$WORK/docker/data" "$WORK/docker/exec"
nsenter --net="/run/netns/$NS" dockerd --data-root "$WORK/docker/data" --exec-root "$WORK/docker/exec" \
    --pidfile "$WORK/docker/pid" -H "unix://$SOCK" --registry-mirror="http://127.0.0.1:$MP" \
    --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 \
    > "$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 120); do dk info >/dev/null 2>&1 && break; sleep 0.5; done
if dk info >/dev/null 2>&1; then ok "docker: dockerd is up in the netns"; else
    not_ok "docker: dockerd is up in the netns"; tail -20 "$WORK/dockerd.log" | sed 's/^/#   /'
    echo "$((N - FAILED)) passed, $FAILED failed"; exit 1
fi

docker_pull_image() {
    dk pull -q "$IMAGE" || return 1
    dk image inspect -f '{{.Architecture}} {{.Os}} {{.Config.User}} {{json .Config.Entrypoint}}' "$IMAGE" \
        | tee /dev/stderr | grep '^amd64 linux 65532:65532 \["/regmirror","serve"' >/dev/null
}
check "docker: pulls the image (amd64 variant chosen, non-root user)" docker_pull_image

docker_run() {
    dk run -d --name "rm-$$" --network host -v "rmcache-$$:/var/lib/regmirror" "$IMAGE" \
        --listen 127.0.0.1:$MP --upstream docker.io=http://127.0.0.1:$UP -v || return 1
    local i
    for i in $(seq 1 120); do
        in_ns "$NS" curl -s -o /dev/null --max-time 2 http://127.0.0.1:$MP/v2/ && break
        if [ "$(dk inspect -f '{{.State.Running}}' "rm-$$")" != true ] || [ "$i" = 120 ]; then
            dk ps -a --filter "name=rm-$$" --format '{{.Status}}'; dk logs "rm-$$" 2>&1 | tail -20; return 1
        fi
        sleep 0.5
    done
    in_ns "$NS" curl -sS -i --max-time 10 http://127.0.0.1:$MP/v2/ | head -n1
}
check "docker: docker run serves /v2/ on the host network of the netns" docker_run

skopeo_through() {  # REF WANT_DIGEST
    local out=$WORK/pull-$RANDOM n
    in_ns "$NS" timeout 180 skopeo copy -q --all --retry-times 0 --src-tls-verify=false \
        "docker://127.0.0.1:$MP/$1" "dir:$out" || return 1
    n=$(check_dir_copy "$out" "$2") || return 1
    echo "manifest $2, $n digest-named files verified"
}
check "client: skopeo pulls library/tiny:multi through the container (digests match)" \
    skopeo_through library/tiny:multi "$MULTI"
check "client: skopeo pulls the regmirror image itself through the container" \
    skopeo_through regmirror/regmirror:latest "$INDEX_DIGEST"

docker_pull_through() {  # Docker Engine as the client, via --registry-mirror
    dk pull -q tiny:multi || return 1
    dk image inspect -f '{{json .RepoDigests}}' tiny:multi | tee /dev/stderr | grep "tiny@$MULTI" >/dev/null
}
check "client: docker pull tiny:multi goes through the mirror (RepoDigest matches)" docker_pull_through

cache_on_volume() {
    local mp n
    mp=$(dk volume inspect -f '{{.Mountpoint}}' "rmcache-$$") || return 1
    n=$(find "$mp" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "no files in $mp"; return 1; }
    [ "$(find "$mp" -type f ! -uid 65532 | wc -l)" = 0 ] || { find "$mp" -type f ! -uid 65532 -ls | head; return 1; }
    [ "$(dk inspect -f '{{.State.Running}}' "rm-$$")" = true ] || return 1
    echo "$n files in the volume, all owned by 65532; container still running"
}
check "docker: cache files on the named volume, written by uid 65532" cache_on_volume

if [ $FAILED -ne 0 ] && [ -n "$DOCKERD_PID" ]; then
    echo "# container log tail:"; dk logs "rm-$$" 2>&1 | tail -10 | cut -c1-300 | sed 's/^/#   /' || true
fi
echo "$((N - FAILED)) passed, $FAILED failed"
[ $FAILED -eq 0 ]
