# shellcheck shell=bash
# Part of tests/lib.sh: the upstream registry (Debian's docker-registry, CNCF distribution
# 2.8) on $UP_ADDR in the netns, its access log, seeding it with tests/seed.py, the seed
# JSON that seed.py writes ($IMAGES_JSON), and digest checks of what a client pulled.

# registry_config FILE DATA_DIR ADDR [PROXY_URL]: a distribution config: filesystem storage
# in DATA_DIR, access log on; with PROXY_URL a pull-through mirror of that URL.
registry_config() {
    local conf=$1 data=$2 addr=$3 proxy=${4:-}
    mkdir -p "$data"
    {
        echo "version: 0.1"
        echo "log: {level: info, formatter: text, accesslog: {disabled: false}}"
        echo "storage: {filesystem: {rootdirectory: $data}, delete: {enabled: true}, maintenance: {uploadpurging: {enabled: false}}}"
        echo "http: {addr: $addr}"
        [[ -z $proxy ]] || echo "proxy: {remoteurl: $proxy}"
    } > "$conf"
}

# upstream_start [LOGFILE]: distribution on $UP_ADDR in the netns (listening on $UP_LISTEN
# instead when set, e.g. 0.0.0.0:PORT for containers on a bridge to reach it), storage in
# $UPSTREAM_DATA (default $WORK/upstream-data), log appended to LOGFILE (default
# $LOGS/upstream.log). Sets UP_PID, UP_LOG; resets the access-log mark.
upstream_start() {
    UP_LOG=${1:-${LOGS:-$WORK}/upstream.log}
    UPSTREAM_DATA=${UPSTREAM_DATA:-$WORK/upstream-data}
    ! port_busy "$UP_ADDR" || die "something already listens on $UP_ADDR"
    : >> "$UP_LOG"
    registry_config "$(dirname "$UP_LOG")/upstream.yml" "$UPSTREAM_DATA" "${UP_LISTEN:-$UP_ADDR}"
    ns_spawn "$UP_LOG" docker-registry serve "$(dirname "$UP_LOG")/upstream.yml"
    UP_PID=$SPAWNED_PID
    UP_MARK=$(wc -l < "$UP_LOG")
    if ! wait_http "http://$UP_ADDR/v2/" 20 "$UP_PID"; then
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

# seed_upstream [SET]: push seed.py's image set SET (full | small; default full) to the
# running upstream and write $IMAGES_JSON (default $WORK/images.json). Skipped when
# $UPSTREAM_DATA was already seeded with that set by this very seed.py.
seed_upstream() {
    local set=${1:-full} stamp want
    IMAGES_JSON=${IMAGES_JSON:-$WORK/images.json}
    stamp=$UPSTREAM_DATA/.seeded-by
    want="$(sha256sum "$SEED_PY" | cut -d' ' -f1) $set"
    if [[ -f $IMAGES_JSON && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        log "seed: upstream already seeded with '$set' by this seed.py"
        return 0
    fi
    # The .debs come from Debian's mirror: fetch them here, where there is a network; the
    # seeding below runs in the netns, which has none.
    "$PY" "$SEED_PY" --fetch-only --cache "$SEED_CACHE" >&2 ||
        log "seed: busybox .debs unavailable; images get generated files (docker run will fail)"
    nsx timeout 600 "$PY" "$SEED_PY" --registry "$UP_ADDR" --out "$IMAGES_JSON" --set "$set" \
        --cache "$SEED_CACHE" >&2
    echo "$want" > "$stamp"
}

# img_q REPO TAG JQ-FILTER: query one image of the seed JSON (. = the image).
img_q() { jq -r --arg r "$1" --arg t "$2" ".images[] | select(.repo == \$r and .tag == \$t) | $3" "$IMAGES_JSON"; }
img_digest() { img_q "$1" "$2" .digest; }
# plat_q REPO TAG ARCH FILTER (. = the platform entry)
plat_q() { img_q "$1" "$2" ".platforms[] | select(.architecture == \"$3\") | $4"; }
all_images() { jq -r '.images[] | "\(.repo) \(.tag)"' "$IMAGES_JSON"; }
all_image_bytes() { jq '[.images[].platforms[].blobs[] | {(.digest): .size}] | add | add' "$IMAGES_JSON"; }

# file_sha FILE -> sha256:<hex>
file_sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# verify_dir OUT REPO TAG [ARCH]: a `skopeo copy … dir:OUT` matches the seed JSON.
# Without ARCH: the top manifest (index/list or single manifest) and, for each
# platform, its manifest and every blob. With ARCH: that platform only, its
# manifest as the top manifest. Prints the first problem and returns 1.
verify_dir() {
    local out=$1 repo=$2 tag=$3 arch=${4:-} top got a d mdig archs multi
    if [[ -n $arch ]]; then
        top=$(plat_q "$repo" "$tag" "$arch" .digest)
    else
        top=$(img_digest "$repo" "$tag")
    fi
    [[ -n $top ]] || { echo "no $repo:$tag ${arch} in seed JSON"; return 1; }
    [[ -f $out/manifest.json ]] || { echo "$out/manifest.json missing"; return 1; }
    got=$(file_sha "$out/manifest.json")
    [[ $got == "$top" ]] || { echo "manifest.json is $got, want $top"; return 1; }
    if [[ -n $arch ]]; then archs=$arch; else archs=$(img_q "$repo" "$tag" '.platforms[].architecture'); fi
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
    echo "$repo:$tag${arch:+ ($arch)}: manifest $top and every blob as seeded"
}

# check_dir_copy DIR DIGEST — a `skopeo copy … dir:DIR` of an image that is not in the seed
# JSON: the top-level manifest has DIGEST and every stored blob's sha256 matches its file
# name. Prints the number of digest-named files checked.
check_dir_copy() {
    local dir=$1 want=$2 f n=0 got
    [ -f "$dir/manifest.json" ] || { echo "no $dir/manifest.json"; return 1; }
    got=$(file_sha "$dir/manifest.json")
    [ "$got" = "$want" ] || { echo "manifest digest $got != $want"; return 1; }
    for f in "$dir"/*; do
        [[ $(basename "$f") =~ ^[0-9a-f]{64}$ ]] || continue
        got=$(sha256sum < "$f" | cut -d' ' -f1)
        [ "$got" = "$(basename "$f")" ] || { echo "blob $f has sha256 $got"; return 1; }
        n=$((n + 1))
    done
    echo "manifest $want, $n digest-named files verified"
}

# skopeo_copy REPO:TAG OUTDIR [extra args]: pull from the mirror ($MIRROR_ADDR) into dir:.
# --preserve-digests: skopeo must fail rather than rewrite a manifest. CLIENT_CPUS (a
# taskset list) pins skopeo to those CPUs.
skopeo_copy() {
    local ref=$1 out=$2; shift 2
    local -a pin=()
    [[ -z ${CLIENT_CPUS:-} ]] || pin=(taskset -c "$CLIENT_CPUS")
    rm -rf "$out"
    timeout -k 10 "${SKOPEO_TIMEOUT:-$CLIENT_TIMEOUT}" nsenter --net="/run/netns/$NS" -- \
        "${pin[@]}" skopeo --insecure-policy copy --preserve-digests --retry-times 0 --src-tls-verify=false "$@" \
        "docker://$MIRROR_ADDR/$ref" "dir:$out"
}

# pull_verify REPO TAG OUT [ARCH] [extra skopeo args]: skopeo copy (--all, or
# --override-arch ARCH) + verify_dir; OUT is removed afterwards unless KEEP_PULLS=1.
pull_verify() {
    local repo=$1 tag=$2 out=$3 arch=${4:-}; shift 4 || shift $#
    if [[ -n $arch ]]; then
        skopeo_copy "$repo:$tag" "$out" --override-arch "$arch" "$@" || return 1
    else
        skopeo_copy "$repo:$tag" "$out" --all "$@" || return 1
    fi
    verify_dir "$out" "$repo" "$tag" "$arch" || return 1
    [[ ${KEEP_PULLS:-0} == 1 ]] || rm -rf "$out"
}
