#!/usr/bin/env bash
# image/test-oci.sh [LAYOUT] — check the OCI layout from image/build-oci.sh.
#
#  1. skopeo inspects every platform (--override-arch/--override-variant) and the
#     image config (User, Entrypoint, ExposedPorts, Volumes, arch/variant).
#  2. A second build into a temp dir gives the same bytes (reproducible).
#  3. In a private, loopback-only network namespace: a local upstream (Debian's
#     docker-registry) gets the layout pushed with `skopeo copy --all` and
#     tests/seed.py's small image set; Docker Engine (dockerd started by hand in the netns
#     via nsenter, with --registry-mirror pointing at the container) pulls the
#     amd64 image and `docker run`s it with --network host and a named volume;
#     skopeo and Docker itself then pull through that container, digests checked,
#     and the cache is found on the volume, written by the non-root user.
# Prints `ok N - …`/`not ok N - …` lines and `N passed, M failed`; exits non-zero on a failure.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

apt_ensure skopeo docker-registry docker.io containerd iproute2 jq python3 curl util-linux
OCI=${1:-$REPO_ROOT/target/oci/regmirror}
[ -f "$OCI/index.json" ] || OCI=$("$(dirname "$0")/build-oci.sh" | tail -n1)

test_begin oci
CNAME=rm-$$ VOLUME=rmcache-$$
test_cleanup_hook() {
    [ -n "${DOCKERD_PID:-}" ] || return 0
    docker_ rm -f "$CNAME" >/dev/null 2>&1
    docker_ volume rm "$VOLUME" >/dev/null 2>&1
    dockerd_stop
}
check_fail_hook() { [ -z "${DOCKERD_PID:-}" ] || docker_ logs "$CNAME" 2>&1 | tail -8 | cut -c1-300 | diag; }

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
upstream_start
seed_upstream small
IMAGE=$UP_ADDR/regmirror/regmirror:latest

push_layout() {
    nsx timeout 300 skopeo copy -q --all --dest-tls-verify=false "oci:$OCI:latest" "docker://$IMAGE" || return 1
    local got
    got=$(nsx timeout 60 skopeo inspect --raw --tls-verify=false "docker://$IMAGE" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$INDEX_DIGEST" ] && echo "pushed index digest sha256:$got"
}
check "oci: skopeo copy --all pushes the layout to a registry (same index digest)" push_layout

if dockerd_start "$WORK/docker" "http://$MIRROR_ADDR" >"$WORK/dockerd-start.out" 2>&1; then
    ok "docker: dockerd is up in the netns"
else
    not_ok "docker: dockerd is up in the netns"; diag < "$WORK/dockerd-start.out"
    summary; exit 1
fi

docker_pull_image() {
    docker_ pull -q "$IMAGE" || return 1
    docker_ image inspect -f '{{.Architecture}} {{.Os}} {{.Config.User}} {{json .Config.Entrypoint}}' "$IMAGE" \
        | tee /dev/stderr | grep '^amd64 linux 65532:65532 \["/regmirror","serve"' >/dev/null
}
check "docker: pulls the image (amd64 variant chosen, non-root user)" docker_pull_image

# docker_run_mirror IMAGE: run it as the mirror on $MIRROR_ADDR of the netns (host network),
# cache on a named volume; wait until it answers /v2/.
docker_run_mirror() {
    docker_ run -d --name "$CNAME" --network host -v "$VOLUME:/var/lib/regmirror" "$1" \
        --listen "$MIRROR_ADDR" --upstream "docker.io=http://$UP_ADDR" -v || return 1
    local i
    for i in $(seq 1 120); do
        nsx curl -s -o /dev/null --max-time 2 "http://$MIRROR_ADDR/v2/" && break
        if [ "$(docker_ inspect -f '{{.State.Running}}' "$CNAME")" != true ] || [ "$i" = 120 ]; then
            docker_ ps -a --filter "name=$CNAME" --format '{{.Status}}'; docker_ logs "$CNAME" 2>&1 | tail -20; return 1
        fi
        sleep 0.5
    done
    nsx curl -sS -i --max-time 10 "http://$MIRROR_ADDR/v2/" | head -n1
}
check "docker: docker run serves /v2/ on the host network of the netns" docker_run_mirror "$IMAGE"

check "client: skopeo pulls library/alpine:latest through the container (digests match)" \
    pull_verify library/alpine latest "$WORK/pull-alpine" ""
regmirror_through() {
    skopeo_copy regmirror/regmirror:latest "$WORK/pull-self" --all || return 1
    check_dir_copy "$WORK/pull-self" "$INDEX_DIGEST"
}
check "client: skopeo pulls the regmirror image itself through the container" regmirror_through

docker_pull_through() {  # Docker Engine as the client, via --registry-mirror
    local want
    want=$(img_digest library/busybox v2)
    docker_ pull -q busybox:v2 || return 1
    docker_ image inspect -f '{{json .RepoDigests}}' busybox:v2 | tee /dev/stderr | grep "busybox@$want" >/dev/null
}
check "client: docker pull busybox:v2 goes through the mirror (RepoDigest matches)" docker_pull_through

cache_on_volume() {
    local mp n
    mp=$(docker_ volume inspect -f '{{.Mountpoint}}' "$VOLUME") || return 1
    n=$(find "$mp" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "no files in $mp"; return 1; }
    [ "$(find "$mp" -type f ! -uid 65532 | wc -l)" = 0 ] || { find "$mp" -type f ! -uid 65532 -ls | head; return 1; }
    [ "$(docker_ inspect -f '{{.State.Running}}' "$CNAME")" = true ] || return 1
    echo "$n files in the volume, all owned by 65532; container still running"
}
check "docker: cache files on the named volume, written by uid 65532" cache_on_volume
summary
