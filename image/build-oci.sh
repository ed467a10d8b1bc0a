#!/usr/bin/env bash
# image/build-oci.sh — assemble a multi-arch OCI image layout of regmirror FROM
# scratch, without any container engine, reproducibly.
#
#   platform      binary (cross/build.sh)
#   linux/amd64   x86_64-unknown-linux-gnu
#   linux/arm64   aarch64-unknown-linux-gnu       (variant v8)
#   linux/arm/v7  armv7-unknown-linux-gnueabihf
#   linux/arm/v6  arm-unknown-linux-gnueabi       (soft-float, runs on ARMv6 and up; see cross/build.sh)
#
# Each image is one layer: /regmirror (static, 0755 root) and the cache volume
# /var/lib/regmirror (0755, owned by 65532:65532, the image's non-root User, so a
# fresh named volume is writable). No CA files: the roots are compiled in
# (webpki-roots); no /etc/passwd: the User is numeric. Docker and podman provide
# /etc/resolv.conf and /etc/hosts at run time.
#
# Entrypoint ["/regmirror","serve","--cache-dir","/var/lib/regmirror"], Cmd []:
# arguments after the image name are more `serve` flags, e.g.
#   docker run … regmirror --upstream ghcr.io=https://ghcr.io --max-size 20G
#
# Reproducible: tar --sort=name --mtime=@SOURCE_DATE_EPOCH --owner/--group
# --numeric-owner --format=gnu, gzip -n, JSON with sorted keys and no spaces,
# `created` = SOURCE_DATE_EPOCH (default: the HEAD commit's time). Same binaries
# and epoch → same digests.
#
# Beside the layout, one docker-archive per platform (the format of `docker save`, which
# `docker load` and `podman load` read with no registry involved), tagged
# regmirror:<crate version>: target/oci/regmirror-<version>-linux-amd64.tar,
# -linux-arm64, -linux-arm-v7, -linux-arm-v6 (override the dir with OCI_ARCHIVE_DIR). Each
# holds manifest.json, the same config and gzip layer as the layout (so the image ID is the
# same however the image arrives); the archive itself is a plain tar (podman 4's
# docker-archive reader takes no compressed archive; the layer inside is compressed).
#
# Binaries come from cross/build.sh TARGET (target/cross; a quick no-op for the
# ones already built and up to date). Output: target/oci/regmirror (override with OCI_OUT), tags
# `latest` and the crate version; its path is the last line on stdout.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"

OUT=${OCI_OUT:-$REPO_ROOT/target/oci/regmirror}
ARCHIVE_DIR=${OCI_ARCHIVE_DIR:-$(dirname "$OUT")}
UIDGID=65532
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
VERSION=$(crate_version)
CREATED=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
command -v python3 >/dev/null || apt_ensure python3

# short-name  oci-arch  oci-variant  `file` must say
PLATFORMS=(
    "amd64   amd64  -   x86-64"
    "aarch64 arm64  v8  ARM aarch64"
    "armv7   arm    v7  ARM, EABI5"
    "armv6   arm    v6  ARM, EABI5"
)

WORK=$(mktemp -d /tmp/regmirror-oci.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$OUT.new"
mkdir -p "$OUT.new/blobs/sha256"

# put_blob FILE → prints "sha256:<hex> <size>", stores FILE in the layout.
put_blob() {
    local hex size
    hex=$(sha256sum < "$1" | cut -d' ' -f1); size=$(stat -c %s "$1")
    cp "$1" "$OUT.new/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

ENTRIES=()
for p in "${PLATFORMS[@]}"; do
    read -r short arch variant want <<< "$p"
    # cargo makes this a few-second no-op when the binary is up to date.
    bin=$(timeout 3600 "$REPO_ROOT/cross/build.sh" "$short" | tail -n1)
    case "$(file -b "$bin")" in
        *"$want"*"statically linked"*|*"$want"*"static-pie linked"*) ;;
        *) die "$bin is not a static $want binary: $(file -b "$bin")" ;;
    esac

    # The layer: root-owned entries first, then the volume dir owned by the
    # runtime user (appended, so one `tar` call each keeps --owner simple).
    st=$WORK/$short/root
    mkdir -p "$st/var/lib/regmirror"
    install -m 0755 "$bin" "$st/regmirror"
    chmod 0755 "$st/var" "$st/var/lib" "$st/var/lib/regmirror"
    TAR=(tar --format=gnu --sort=name --mtime="@$SOURCE_DATE_EPOCH" --numeric-owner --no-recursion -C "$st")
    "${TAR[@]}" --owner=0 --group=0 -cf "$WORK/$short/layer.tar" regmirror var var/lib
    "${TAR[@]}" --owner=$UIDGID --group=$UIDGID -rf "$WORK/$short/layer.tar" var/lib/regmirror
    diff_id="sha256:$(sha256sum < "$WORK/$short/layer.tar" | cut -d' ' -f1)"
    gzip -n -9 -c "$WORK/$short/layer.tar" > "$WORK/$short/layer.tar.gz"
    read -r layer_digest layer_size <<< "$(put_blob "$WORK/$short/layer.tar.gz")"

    python3 - "$arch" "$variant" "$CREATED" "$diff_id" "$UIDGID" "$VERSION" > "$WORK/$short/config.json" <<'PY'
import json, sys
arch, variant, created, diff_id, uid, version = sys.argv[1:]
cfg = {
    "architecture": arch, "os": "linux", "created": created,
    "config": {
        "User": f"{uid}:{uid}",
        "Entrypoint": ["/regmirror", "serve", "--cache-dir", "/var/lib/regmirror"],
        "Cmd": [],
        "ExposedPorts": {"5000/tcp": {}},
        "Volumes": {"/var/lib/regmirror": {}},
        "WorkingDir": "/var/lib/regmirror",
        "Env": ["PATH=/"],
        "Labels": {
            "org.opencontainers.image.title": "regmirror",
            "org.opencontainers.image.description": "Pull-through Docker/OCI registry mirror",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.licenses": "MIT OR Apache-2.0",
        },
    },
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": created, "created_by": "image/build-oci.sh: /regmirror + /var/lib/regmirror"}],
}
if variant != "-":
    cfg["variant"] = variant
sys.stdout.write(json.dumps(cfg, sort_keys=True, separators=(",", ":")))
PY
    read -r cfg_digest cfg_size <<< "$(put_blob "$WORK/$short/config.json")"

    python3 - "$cfg_digest" "$cfg_size" "$layer_digest" "$layer_size" > "$WORK/$short/manifest.json" <<'PY'
import json, sys
cd, cs, ld, ls = sys.argv[1:]
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": int(cs)},
     "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": int(ls)}]}
sys.stdout.write(json.dumps(m, sort_keys=True, separators=(",", ":")))
PY
    read -r man_digest man_size <<< "$(put_blob "$WORK/$short/manifest.json")"
    ENTRIES+=("$man_digest $man_size $arch $variant")
    plat=linux/$arch; [ "$variant" = - ] || plat+=/$variant

    # The docker-archive: manifest.json naming the config (<hex>.json), the layer (the
    # layout's gzip blob, <digest hex>.tar.gz: docker and podman load compressed layers,
    # but podman 4 cannot read a compressed archive) and the tag, nothing else.
    da=$WORK/$short/docker-archive cfg_hex=${cfg_digest#sha256:} layer_hex=${layer_digest#sha256:}
    mkdir -p "$da"
    cp "$WORK/$short/layer.tar.gz" "$da/$layer_hex.tar.gz"
    cp "$WORK/$short/config.json" "$da/$cfg_hex.json"
    printf '[{"Config":"%s.json","Layers":["%s.tar.gz"],"RepoTags":["regmirror:%s"]}]' \
        "$cfg_hex" "$layer_hex" "$VERSION" > "$da/manifest.json"
    aname=linux-$arch; [ "$variant" = - ] || [ "$arch" = arm64 ] || aname+=-$variant
    archive=$ARCHIVE_DIR/regmirror-$VERSION-$aname.tar
    mkdir -p "$ARCHIVE_DIR"
    "${TAR[@]}" --owner=0 --group=0 -C "$da" -cf "$archive.new" manifest.json "$cfg_hex.json" "$layer_hex.tar.gz"
    mv "$archive.new" "$archive"
    log "$plat: manifest $man_digest, layer $layer_size bytes; $(basename "$archive") $(stat -c %s "$archive") bytes"
done

python3 - "$VERSION" "$CREATED" "${ENTRIES[@]}" > "$WORK/index-blob.json" <<'PY'
import json, sys
version, created, *entries = sys.argv[1:]
ms = []
for e in entries:
    d, s, arch, variant = e.split()
    plat = {"architecture": arch, "os": "linux"}
    if variant != "-":
        plat["variant"] = variant
    ms.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d,
               "size": int(s), "platform": plat})
idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ms,
       "annotations": {"org.opencontainers.image.created": created,
                       "org.opencontainers.image.version": version}}
sys.stdout.write(json.dumps(idx, sort_keys=True, separators=(",", ":")))
PY
read -r idx_digest idx_size <<< "$(put_blob "$WORK/index-blob.json")"

python3 - "$idx_digest" "$idx_size" "$VERSION" > "$OUT.new/index.json" <<'PY'
import json, sys
d, s, version = sys.argv[1:]
ms = [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": int(s),
       "annotations": {"org.opencontainers.image.ref.name": tag}} for tag in ("latest", version)]
sys.stdout.write(json.dumps({"schemaVersion": 2, "manifests": ms}, sort_keys=True, separators=(",", ":")))
PY
printf '{"imageLayoutVersion":"1.0.0"}' > "$OUT.new/oci-layout"

rm -rf "$OUT"
mv "$OUT.new" "$OUT"
log "image index $idx_digest (tags latest, $VERSION), created $CREATED"
echo "$OUT"
