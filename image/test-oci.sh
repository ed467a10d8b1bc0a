#!/usr/bin/env bash
# image/test-oci.sh [LAYOUT] — check what image/build-oci.sh writes: the OCI layout and the
# docker-archives beside it, and the README's container and boot2docker commands.
#
#  1. skopeo inspects every platform (--override-arch/--override-variant) and the
#     image config (User, Entrypoint, ExposedPorts, Volumes, arch/variant); each
#     docker-archive is tagged regmirror:<version> and holds that platform's config.
#  2. A second build into temp dirs gives the same bytes (reproducible).
#  3. In a private, loopback-only network namespace, Docker Engine (dockerd started by
#     hand via nsenter, with a bridge inside the netns and no registry mirror) loads the
#     amd64 archive while no registry runs at all, and runs it — the commands of README.md's
#     "Run as a container" block as written, plus an --upstream for the local registry.
#     podman loads the same archive. Then a local upstream (Debian's docker-registry,
#     tests/seed.py's small set) comes up and skopeo pulls through the container.
#  4. README.md's "boot2docker-like hosts" steps 1 and 2 as written (the persistent dir is a
#     scratch dir, `/etc/init.d/docker restart` restarts our dockerd with the profile's
#     EXTRA_ARGS): the container comes back after the daemon restart and the daemon's own
#     `docker pull` goes through it; the cache is on the bind mount, written by uid 65532,
#     and --memory 32m was enough (no OOM kill).
#  5. The layout pushed to the upstream with `skopeo copy --all`: Docker pulls it (amd64
#     chosen) with the same image ID as the loaded archive, and skopeo pulls it through the
#     mirror.
# Prints `ok N - …`/`not ok N - …` lines and `N passed, M failed`; exits non-zero on a failure.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

apt_ensure skopeo docker-registry docker.io containerd podman iproute2 jq python3 curl util-linux
OCI=${1:-$REPO_ROOT/target/oci/regmirror}
[ -f "$OCI/index.json" ] || OCI=$("$(dirname "$0")/build-oci.sh" | tail -n1)
ARCHIVES=$(dirname "$OCI")
VERSION=$(crate_version)

test_begin oci
UP_ADDR=127.0.0.1:5002 UP_LISTEN=0.0.0.0:5002   # containers on the bridge reach it as 172.17.0.1:5002
BRIDGE_UP=docker.io=http://172.17.0.1:5002
MIRROR_ADDR=127.0.0.1:5000                     # where the README's commands put the mirror
B2D=$WORK/b2d                                  # stands in for /var/lib/boot2docker
test_cleanup_hook() {
    [ -n "${DOCKERD_PID:-}" ] || return 0
    docker_ rm -f regmirror >/dev/null 2>&1
    docker_ volume rm regmirror-cache >/dev/null 2>&1
    dockerd_stop
}
check_fail_hook() { [ -z "${DOCKERD_PID:-}" ] || docker_ logs regmirror 2>&1 | tail -8 | cut -c1-300 | diag; }
# What the README's commands call: our daemon, and root already.
docker() { docker_ "$@"; }
sudo() { "$@"; }

INDEX_DIGEST=$(jq -r '.manifests[0].digest' "$OCI/index.json")
echo "# layout $OCI, index $INDEX_DIGEST"
blob() { cat "$OCI/blobs/sha256/${1#sha256:}"; }
config_of() {  # ARCH VARIANT: that platform's config digest in the layout
    local m
    m=$(blob "$INDEX_DIGEST" | jq -r --arg a "$1" --arg v "$2" \
        '.manifests[] | select(.platform.architecture == $a and ($v == "-" or .platform.variant == $v)) | .digest')
    blob "$m" | jq -r .config.digest
}

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

archive_ok() {  # FILE ARCH VARIANT: tag, config = the layout's, layer = the config's diff_id
    local f=$ARCHIVES/$1 m cfg want got diff
    m=$(tar -xOf "$f" manifest.json) || return 1
    echo "$m" | jq -e --arg t "regmirror:$VERSION" 'length == 1 and .[0].RepoTags == [$t] and (.[0].Layers | length) == 1' >/dev/null \
        || { echo "manifest.json: $m"; return 1; }
    cfg=$(echo "$m" | jq -r '.[0].Config')
    want=$(config_of "$2" "$3")
    got=sha256:$(tar -xOf "$f" "$cfg" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$want" ] && [ "$cfg" = "${want#sha256:}.json" ] || { echo "config $cfg hashes to $got, layout has $want"; return 1; }
    diff=$(tar -xOf "$f" "$cfg" | jq -r '.rootfs.diff_ids[0]')
    got=sha256:$(tar -xOf "$f" "$(echo "$m" | jq -r '.[0].Layers[0]')" | gzip -dc | sha256sum | cut -d' ' -f1)
    [ "$got" = "$diff" ] || { echo "layer hashes to $got, config says $diff"; return 1; }
    echo "$1: regmirror:$VERSION, config $want, $(stat -c %s "$f") bytes"
}
check "archive: linux/amd64 docker-archive tagged regmirror:$VERSION with the layout's config" archive_ok "regmirror-$VERSION-linux-amd64.tar" amd64 -
check "archive: linux/arm64 docker-archive likewise" archive_ok "regmirror-$VERSION-linux-arm64.tar" arm64 -
check "archive: linux/arm/v7 docker-archive likewise" archive_ok "regmirror-$VERSION-linux-arm-v7.tar" arm v7
check "archive: linux/arm/v6 docker-archive likewise" archive_ok "regmirror-$VERSION-linux-arm-v6.tar" arm v6

# 2. Reproducible.
rebuild_same() {  # same binaries and the layout's own SOURCE_DATE_EPOCH
    local created epoch a
    created=$(blob "$INDEX_DIGEST" | jq -r '.annotations["org.opencontainers.image.created"]')
    epoch=$(date -u -d "$created" +%s) || return 1
    SOURCE_DATE_EPOCH=$epoch OCI_OUT=$WORK/rebuild/regmirror OCI_ARCHIVE_DIR=$WORK/rebuild \
        "$(dirname "$0")/build-oci.sh" >/dev/null 2>"$WORK/rebuild.log" || { tail -5 "$WORK/rebuild.log"; return 1; }
    diff -r "$OCI" "$WORK/rebuild/regmirror" || return 1
    for a in "$WORK"/rebuild/*.tar; do cmp "$a" "$ARCHIVES/$(basename "$a")" || return 1; done
    echo "second build: identical layout (index $INDEX_DIGEST) and $(ls "$WORK"/rebuild/*.tar | wc -l) archives"
}
check "oci: a second build gives identical bytes (layout and archives)" rebuild_same

# 3. docker load with no registry anywhere, then the README's docker run.
if DOCKERD_BRIDGE=1 dockerd_start "$WORK/docker" "" >"$WORK/dockerd-start.out" 2>&1; then
    ok "docker: dockerd is up in the netns (no registry mirror configured)"
else
    not_ok "docker: dockerd is up in the netns"; diag < "$WORK/dockerd-start.out"
    summary; exit 1
fi
no_listeners() {  # not one TCP listener in the netns: no registry to pull from
    local l
    l=$(nsx ss -Hltn)
    [ -z "$l" ] || { echo "listening: $l"; return 1; }
    echo "no TCP listener in the netns"
}
check "docker: no registry is running (nothing listens in the netns)" no_listeners
mirror_answers() {  # SECONDS: the mirror answers /v2/ on $MIRROR_ADDR
    wait_http "http://$MIRROR_ADDR/v2/" "$1" || { docker_ ps -a; docker_ logs regmirror 2>&1 | tail; return 1; }
    nsx curl -sS -i --max-time 10 "http://$MIRROR_ADDR/v2/" | head -n1
}
readme_container() {
    cd "$ARCHIVES"
    run_readme "Run as a container" 1 "\$ s|\$| --upstream $BRIDGE_UP|" | tee "$WORK/readme-container.out"
    grep -qx "Loaded image: regmirror:$VERSION" "$WORK/readme-container.out" || { echo "no 'Loaded image: regmirror:$VERSION'"; return 1; }
    mirror_answers 60
}
check "readme: 'Run as a container' as written: docker load + docker run -p 5000:5000 (no registry)" readme_container
image_id_is_config() {  # CLI-FUNCTION: the loaded image's ID is the amd64 config digest
    local got want
    want=$(config_of amd64 -)
    got=$("$1" image inspect -f '{{.Id}}' "regmirror:$VERSION") || return 1
    got=${got#sha256:}
    [ "$got" = "${want#sha256:}" ] && echo "image ID $want"
}
check "docker: the loaded image's ID is the layout's amd64 config digest" image_id_is_config docker_
podman_setup "$WORK/podman"
podman_load() {
    podman_ load -i "$ARCHIVES/regmirror-$VERSION-linux-amd64.tar" | tee -a /dev/stderr | grep -F "regmirror:$VERSION" >/dev/null
    image_id_is_config podman_
}
check "podman: podman load reads the same archive (same image ID)" podman_load

upstream_start
seed_upstream small
check "client: skopeo pulls library/alpine:latest through the loaded container (digests match)" \
    pull_verify library/alpine latest "$WORK/pull-alpine" ""
not_oom() {  # NAME: running, never OOM-killed
    docker_ inspect -f '{{.State.Running}} oom={{.State.OOMKilled}} memory={{.HostConfig.Memory}} restarts={{.RestartCount}}' "$1" \
        | tee -a /dev/stderr | grep '^true oom=false memory=33554432 ' >/dev/null
}
check "docker: the container runs under --memory 32m, not OOM-killed" not_oom regmirror
docker_ rm -f regmirror >/dev/null || true; docker_ volume rm regmirror-cache >/dev/null || true
memory_6m() {  # README's figure: Docker's smallest --memory, 8 simultaneous cold pulls
    local port=5003 i pid hwm rc=0 pids=()
    docker_ run -d --name regmirror-6m --memory 6m -p "$port:5000" -v regmirror-6m:/var/lib/regmirror \
        "regmirror:$VERSION" --upstream "$BRIDGE_UP" >/dev/null || return 1
    wait_http "http://127.0.0.1:$port/v2/" 60 || { docker_ logs regmirror-6m 2>&1 | tail -5; return 1; }
    for i in 1 2 3 4; do
        MIRROR_ADDR=127.0.0.1:$port pull_verify library/alpine latest "$WORK/m6-a$i" "" & pids+=($!)
        MIRROR_ADDR=127.0.0.1:$port pull_verify library/busybox v2 "$WORK/m6-b$i" "" & pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || rc=1; done
    pid=$(docker_ inspect -f '{{.State.Pid}}' regmirror-6m)
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
    docker_ inspect -f '{{.State.Running}} oom={{.State.OOMKilled}} memory={{.HostConfig.Memory}}' regmirror-6m \
        | tee -a /dev/stderr | grep '^true oom=false memory=6291456$' >/dev/null || rc=1
    echo "8 simultaneous cold pulls (4 x alpine --all, 4 x busybox:v2) under --memory 6m: rc $rc, peak resident $hwm kB"
    docker_ rm -f regmirror-6m >/dev/null || true; docker_ volume rm regmirror-6m >/dev/null || true
    return $rc
}
check "docker: 8 simultaneous cold pulls under --memory 6m (Docker's smallest), not OOM-killed" memory_6m

# 4. boot2docker, as the README says.
mkdir -p "$B2D"
echo "EXTRA_ARGS='--label provider=regmirror-test'" > "$B2D/profile"   # as docker-machine writes it
b2d_docker_restart() {  # /etc/init.d/docker restart: the daemon again, flags from the profile
    local EXTRA_ARGS
    set +u; . "$B2D/profile"; set -u
    dockerd_stop
    # shellcheck disable=SC2086  # EXTRA_ARGS is a list of flags, as the init script uses it
    DOCKERD_BRIDGE=1 dockerd_start "$WORK/docker" "" $EXTRA_ARGS
}
B2D_SED=("s|/var/lib/boot2docker|$B2D|g" "s|sudo /etc/init.d/docker restart|b2d_docker_restart|")
readme_b2d_step1() {
    cd "$ARCHIVES"
    run_readme "boot2docker-like hosts" 1 "${B2D_SED[@]}" "\$ s|\$| --upstream docker.io=http://$UP_ADDR|"
    mirror_answers 60
}
check "readme: boot2docker step 1 as written: load, cache dir on the persistent disk, run --network host" readme_b2d_step1
readme_b2d_step2() {
    run_readme "boot2docker-like hosts" 2 "${B2D_SED[@]}"
    docker_ info -f '{{json .RegistryConfig.Mirrors}} {{json .Labels}}' | tee -a /dev/stderr \
        | grep -F '["http://127.0.0.1:5000/"] ["provider=regmirror-test"]' >/dev/null || return 1
    mirror_answers 60
}
check "readme: boot2docker step 2 as written: EXTRA_ARGS in the profile, daemon restart, mirror back up" readme_b2d_step2
docker_pull_through() {  # Docker Engine as the client, via --registry-mirror
    local want
    want=$(img_digest library/busybox v2)
    docker_ pull -q busybox:v2 || return 1
    docker_ image inspect -f '{{json .RepoDigests}}' busybox:v2 | tee -a /dev/stderr | grep "busybox@$want" >/dev/null || return 1
    # Read the whole log first: `grep -m1` at the end of a pipe can stop docker's writes with
    # SIGPIPE, which pipefail turns into a failure (seen: exit 141).
    local log
    log=$(docker_ logs regmirror 2>&1)
    grep -m1 -E '(GET|HEAD) /v2/library/busybox/manifests/v2 200' <<< "$log"
}
check "boot2docker: the host's own docker pull busybox:v2 goes through the mirror" docker_pull_through
cache_on_disk() {
    local d=$B2D/regmirror-cache n
    n=$(find "$d" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "no files in $d"; return 1; }
    [ "$(find "$d" -type f ! -uid 65532 | wc -l)" = 0 ] || { find "$d" -type f ! -uid 65532 -ls | head; return 1; }
    echo "$n files in $d, all owned by 65532"
}
check "boot2docker: the cache is on the persistent dir, written by uid 65532" cache_on_disk
check "boot2docker: running under --memory 32m after the restart, not OOM-killed" not_oom regmirror

# 5. The same image through a registry.
push_layout() {
    nsx timeout 300 skopeo copy -q --all --dest-tls-verify=false "oci:$OCI:latest" "docker://$UP_ADDR/regmirror/regmirror:latest" || return 1
    local got
    got=$(nsx timeout 60 skopeo inspect --raw --tls-verify=false "docker://$UP_ADDR/regmirror/regmirror:latest" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$INDEX_DIGEST" ] && echo "pushed index digest sha256:$got"
}
check "oci: skopeo copy --all pushes the layout to a registry (same index digest)" push_layout
docker_pull_image() {
    local ref=$UP_ADDR/regmirror/regmirror:latest want
    want=$(config_of amd64 -)
    docker_ pull -q "$ref" || return 1
    docker_ image inspect -f '{{.Id}} {{.Architecture}} {{.Os}} {{.Config.User}} {{json .Config.Entrypoint}}' "$ref" \
        | tee -a /dev/stderr | grep "^$want amd64 linux 65532:65532 \\[\"/regmirror\",\"serve\"" >/dev/null
}
check "docker: pulls it from the registry (amd64 chosen, same image ID as the archive)" docker_pull_image
regmirror_through() {
    skopeo_copy regmirror/regmirror:latest "$WORK/pull-self" --all || return 1
    check_dir_copy "$WORK/pull-self" "$INDEX_DIGEST"
}
check "client: skopeo pulls the regmirror image itself through the container" regmirror_through
summary
