#!/bin/bash
# End-to-end suite: real clients (skopeo, podman, containerd, Docker Engine) pull
# seeded images through the mirror under test from a local upstream registry,
# all inside a private loopback-only network namespace.
#
#   sudo tests/e2e/run.sh                                  # regmirror (target/release/regmirror)
#   MIRROR=tests/e2e/mirror-distribution.sh tests/e2e/run.sh   # CNCF distribution's proxy
#   E2E_ONLY=coalesce,crash tests/e2e/run.sh               # some scenarios only
#   E2E_LIST=1 tests/e2e/run.sh                            # list scenarios
#
# Prints `ok N - …` / `not ok N - …` per check, diagnostics as `# …`, and ends with
# `N passed, M failed`. Exit status 1 if anything failed. Logs of the last run are
# kept in tests/e2e/work/run/logs (E2E_KEEP=1 also keeps pulled images and caches).
set -euo pipefail

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Environment (see tests/lib.sh for MIRROR):
#   E2E_WORK      work root (default tests/e2e/work, gitignored)
#   E2E_VERBOSE   1 = pass -v to the mirror (default 1)
#   E2E_TIMEOUT   per client call timeout in seconds (default 300)
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=${E2E_WORK:-$E2E_DIR/work}
UPSTREAM_DATA=$WORK/upstream-data    # seeded once, reused while seed.py is unchanged
IMAGES_JSON=$WORK/images.json
MIRROR_VERBOSE=${E2E_VERBOSE:-1}
CLIENT_TIMEOUT=${E2E_TIMEOUT:-300}
SOCK_DIR=/tmp/rm-e2e-$$

SCENARIOS=(protocol skopeo podman containerd docker coalesce warm offline crash resume budget tls access chain artifacts)
E2E_KEEP=${E2E_KEEP:-0}
KEEP_PULLS=$E2E_KEEP
E2E_MAX_SIZE=${E2E_MAX_SIZE:-150MB}           # passed to --max-size
E2E_MAX_BYTES=${E2E_MAX_BYTES:-150000000}     # what du -sb DIR/blobs must stay under
E2E_STALE_TIMEOUT=${E2E_STALE_TIMEOUT:-60}    # per-client timeout when upstream is down/frozen

# A failing check also shows the mirror log's tail.
check_fail_hook() { show_mirror_log; }

# ------------------------------------------------------------------ helpers

# expect_eq WANT CMD...: CMD's stdout (trimmed) must equal WANT.
expect_eq() {
  local want=$1 got; shift
  got=$("$@") || { echo "command failed: $*"; return 1; }
  got=${got//$'\r'/}
  [[ $got == "$want" ]] || { echo "got '$got', want '$want'"; return 1; }
}

# blobs_within_budget DIR
blobs_within_budget() {
  local n
  n=$(du -sb "$1/blobs" 2>/dev/null | cut -f1)
  echo "du -sb blobs = ${n:-0} bytes, budget $E2E_MAX_BYTES"
  ((${n:-0} <= E2E_MAX_BYTES))
}

# blob_files_good DIR: every file under DIR/blobs named by its sha256 hashes to
# that name (regmirror: blobs/sha256/ab/<hex>; distribution: …/sha256/ab/<hex>/data).
blob_files_good() {
  local f name got n=0 bad=0
  while IFS= read -r -d '' f; do
    name=$(basename "$f")
    [[ $name == data ]] && name=$(basename "$(dirname "$f")")
    [[ $name =~ ^[0-9a-f]{64}$ ]] || continue
    got=$(sha256sum "$f" | cut -d' ' -f1)
    n=$((n + 1))
    [[ $got == "$name" ]] || { echo "BAD $f hashes to $got"; bad=$((bad + 1)); }
  done < <(find "$1/blobs" -type f -print0 2>/dev/null)
  echo "$n blob files checked, $bad bad"
  ((bad == 0))
}

# tmp_holds_only_partials DIR: after a crash, tmp/ keeps only what start-up accounts for —
# partial blobs kept for a resume (`<64 hex>.part` with its `.from` record) — nothing else.
tmp_holds_only_partials() {
  local stray
  [[ -d $1/tmp ]] || { echo "no $1/tmp"; return 0; }
  find "$1/tmp" -mindepth 1 | sed 's/^/#   tmp: /'
  stray=$(find "$1/tmp" -mindepth 1 | grep -Ev '/[0-9a-f]{64}\.(part|from)$' || true)
  [[ -z $stray ]] || { echo "not partial blobs: $stray"; return 1; }
}

tmp_is_empty() {
  local n
  [[ -d $1/tmp ]] || { echo "no $1/tmp"; return 0; }
  n=$(find "$1/tmp" -mindepth 1 2>/dev/null | wc -l)
  echo "$n entries in $1/tmp"
  find "$1/tmp" -mindepth 1 2>/dev/null | head -5
  ((n == 0))
}

# tls_probe_fast ADDR: skopeo, podman and cri-o with `insecure = true` first try
# https on the mirror's port and fall back to http only when that fails; a
# server that waits for a header timeout there delays every such pull.
tls_probe_fast() {
  local t0 rc=0 ms
  t0=$(date +%s%N)
  nsx curl -sk -o /dev/null --max-time 10 "https://$1/v2/" || rc=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  echo "curl https://$1/v2/ exit $rc after $ms ms"
  ((rc != 0 && rc != 28 && ms < 3000))
}

http_code() { nsx curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@"; }
hdr() { # hdr NAME CURL-ARGS...: value of a response header
  local name=$1; shift
  nsx curl -s -D - -o /dev/null --max-time 30 "$@" | tr -d '\r' |
    awk -v n="$name" -F': ' 'tolower($1) == tolower(n) { print $2 }' | tail -1
}
body_sha() { nsx curl -fs --max-time 60 "$@" | sha256sum | sed 's/ .*//; s/^/sha256:/'; }
ACCEPT_ALL='Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

# ------------------------------------------------------------------ scenarios

# Plain HTTP against the mirror: headers, digests, ranges, errors.
sc_protocol() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
  local M=http://$MIRROR_ADDR top mt amd arm layer
  top=$(img_digest library/alpine latest)
  mt=$(img_q library/alpine latest .media_type)
  amd=$(plat_q library/alpine latest amd64 .digest)
  arm=$(plat_q library/alpine latest arm64 .digest)
  layer=$(plat_q library/alpine latest amd64 '.layers[0]')
  check "protocol: GET /v2/ is 200 with Docker-Distribution-API-Version" \
    expect_eq registry/2.0 hdr Docker-Distribution-API-Version "$M/v2/"
  check "protocol: GET manifest by tag has the seeded Docker-Content-Digest" \
    expect_eq "$top" hdr Docker-Content-Digest -H "$ACCEPT_ALL" "$M/v2/library/alpine/manifests/latest"
  check "protocol: GET manifest by tag has the stored Content-Type" \
    expect_eq "$mt" hdr Content-Type -H "$ACCEPT_ALL" "$M/v2/library/alpine/manifests/latest"
  check "protocol: manifest body by tag hashes to its digest" \
    expect_eq "$top" body_sha -H "$ACCEPT_ALL" "$M/v2/library/alpine/manifests/latest"
  check "protocol: HEAD manifest by tag gives the digest" \
    expect_eq "$top" hdr Docker-Content-Digest -I -H "$ACCEPT_ALL" "$M/v2/library/alpine/manifests/latest"
  check "protocol: GET arm64 manifest by digest" \
    expect_eq "$arm" body_sha -H "$ACCEPT_ALL" "$M/v2/library/alpine/manifests/$arm"
  check "protocol: GET manifest with ?ns=docker.io (containerd style)" \
    expect_eq "$amd" body_sha -H "$ACCEPT_ALL" "$M/v2/library/alpine/manifests/$amd?ns=docker.io"
  check "protocol: GET blob hashes to its digest" \
    expect_eq "$layer" body_sha "$M/v2/library/alpine/blobs/$layer"
  check "protocol: HEAD blob gives Content-Length" \
    expect_eq "$(plat_q library/alpine latest amd64 '.blobs[1].size')" hdr Content-Length -I "$M/v2/library/alpine/blobs/$layer"
  check "protocol: Range bytes=100-199 of a blob is 206" \
    expect_eq 206 http_code -r 100-199 "$M/v2/library/alpine/blobs/$layer"
  check "protocol: single-segment name (alpine -> library/alpine)" \
    expect_eq "$top" hdr Docker-Content-Digest -H "$ACCEPT_ALL" "$M/v2/alpine/manifests/latest"
  check "protocol: unknown tag is 404" \
    expect_eq 404 http_code -H "$ACCEPT_ALL" "$M/v2/library/alpine/manifests/nosuchtag"
  check "protocol: unknown blob is 404" \
    expect_eq 404 http_code "$M/v2/library/alpine/blobs/sha256:$(printf '0%.0s' {1..64})"
  check "protocol: a TLS ClientHello on the plain-HTTP port is refused within 3 s (podman/skopeo try https first)" \
    tls_probe_fast "$MIRROR_ADDR"
  check "protocol: push (POST upload) is refused with 405" \
    expect_eq 405 http_code -X POST "$M/v2/library/alpine/blobs/uploads/"
}

# skopeo copy --all of every image, and --override-arch arm64 of the lists.
sc_skopeo() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
  local repo tag
  while read -r repo tag; do
    check "skopeo: copy --all $repo:$tag, every digest as seeded" \
      pull_verify "$repo" "$tag" "$SCEN_DIR/out" ""
  done < <(all_images)
  for repo in library/alpine:latest library/debian:bookworm; do
    check "skopeo: copy --override-arch arm64 ${repo}" \
      pull_verify "${repo%:*}" "${repo#*:}" "$SCEN_DIR/out" arm64
  done
  check "skopeo: warm copy --all library/alpine:latest" \
    pull_verify library/alpine latest "$SCEN_DIR/out" ""
}

# podman pull (vfs storage, registries.conf mirror for docker.io).
sc_podman() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
  podman_setup "$SCEN_DIR/podman"
  local ref repo tag cfg
  for ref in library/alpine:latest library/debian:bookworm myorg/team/app:1.0 library/oci:1; do
    repo=${ref%:*} tag=${ref#*:}
    cfg=$(plat_q "$repo" "$tag" amd64 .config)
    check "podman: pull docker.io/$ref" podman_ pull -q "docker.io/$ref"
    check "podman: docker.io/$ref digest is the seeded one" \
      expect_eq "$(img_digest "$repo" "$tag")" podman_ image inspect --format '{{.Digest}}' "docker.io/$ref"
    check "podman: docker.io/$ref image ID is the amd64 config digest" \
      expect_eq "${cfg#sha256:}" podman_ image inspect --format '{{.Id}}' "docker.io/$ref"
  done
  cfg=$(plat_q library/alpine latest arm64 .config)
  check "podman: pull --arch arm64 docker.io/library/alpine:latest" \
    podman_ pull -q --arch arm64 docker.io/library/alpine:latest
  check "podman: arm64 alpine image ID is the arm64 config digest" \
    expect_eq "${cfg#sha256:}" podman_ image inspect --format '{{.Id}}' docker.io/library/alpine:latest
}

# ctr_content_has DIGEST...: every digest is in containerd's content store.
ctr_content_has() {
  local list d
  list=$(ctr_ content ls -q) || return 1
  for d in "$@"; do
    grep -xF -- "$d" <<< "$list" > /dev/null || { echo "$d not in content store"; return 1; }
  done
}

# containerd 1.6 `ctr images pull --hosts-dir` (requests carry ?ns=docker.io).
sc_containerd() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
  containerd_start "$SCEN_DIR/containerd" || { not_ok "containerd: containerd did not start"; return 0; }
  local ref repo tag
  for ref in library/alpine:latest library/debian:bookworm myorg/team/app:1.0; do
    repo=${ref%:*} tag=${ref#*:}
    check "containerd: ctr pull docker.io/$ref" \
      ctr_ images pull --hosts-dir "$CTRD_HOSTS" "docker.io/$ref"
    check "containerd: docker.io/$ref target digest is the seeded one" \
      expect_eq "$(img_digest "$repo" "$tag")" ctr_image_digest "docker.io/$ref"
    # shellcheck disable=SC2046
    check "containerd: every amd64 blob of $ref is in the content store" \
      ctr_content_has $(plat_q "$repo" "$tag" amd64 '.digest, .blobs[].digest')
  done
  check "containerd: ctr pull --platform linux/arm64 docker.io/library/alpine:latest" \
    ctr_ images pull --platform linux/arm64 --hosts-dir "$CTRD_HOSTS" docker.io/library/alpine:latest
  # shellcheck disable=SC2046
  check "containerd: every arm64 blob of alpine is in the content store" \
    ctr_content_has $(plat_q library/alpine latest arm64 '.digest, .blobs[].digest')
  local n
  n=$(grep -c 'ns=docker.io' "$MIRROR_LOG" || true)
  echo "#   mirror log lines mentioning ns=docker.io: $n"
}

ctr_image_digest() { ctr_ images ls | awk -v r="$1" '$1 == r { print $3 }'; }

# Docker Engine 20.10 with --registry-mirror.
sc_docker() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
  dockerd_start "$SCEN_DIR/docker" || { not_ok "docker: dockerd did not start"; return 0; }
  local ref repo tag short cfg
  for ref in library/alpine:latest library/debian:bookworm myorg/team/app:1.0; do
    repo=${ref%:*} tag=${ref#*:}
    short=${ref#library/}
    cfg=$(plat_q "$repo" "$tag" amd64 .config)
    check "docker: pull $short" docker_ pull -q "$short"
    check "docker: $short RepoDigest is the seeded one" \
      expect_eq "${short%:*}@$(img_digest "$repo" "$tag")" docker_ image inspect --format '{{index .RepoDigests 0}}' "$short"
    check "docker: $short image ID is the amd64 config digest" \
      expect_eq "$cfg" docker_ image inspect --format '{{.Id}}' "$short"
  done
  check "docker: run --network none alpine (layers unpack and execute)" \
    expect_eq "e2e-ok" docker_ run --rm --network none alpine /bin/sh -c 'grep -q regmirror-e2e /etc/os-release && echo e2e-ok'
  check "docker: pull --platform linux/arm64 alpine" docker_ pull -q --platform linux/arm64 alpine
  check "docker: arm64 alpine image ID is the arm64 config digest" \
    expect_eq "$(plat_q library/alpine latest arm64 .config)" docker_ image inspect --format '{{.Id}}' alpine
  check "docker: arm64 alpine Architecture" \
    expect_eq arm64 docker_ image inspect --format '{{.Architecture}}' alpine
}

# run_parallel N REPO TAG OUTPREFIX: N simultaneous skopeo copies; sets PAR_FAILED.
run_parallel() {
  local n=$1 repo=$2 tag=$3 prefix=$4 i
  local -a pids=()
  for ((i = 1; i <= n; i++)); do
    skopeo_copy "$repo:$tag" "$prefix$i" --all > "$prefix$i.log" 2>&1 &
    pids+=($!)
  done
  PAR_FAILED=0
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { PAR_FAILED=$((PAR_FAILED + 1)); echo "#   pull $((i + 1)) failed:"; tail -3 "$prefix$((i + 1)).log" | diag; }
  done
}

# every_blob_fetched_once REPO TAG: upstream GETs per blob since the mark == 1.
every_blob_fetched_once() {
  local d n bad=0
  for d in $(img_q "$1" "$2" '.platforms[].blobs[].digest'); do
    n=$(upstream_blob_gets "$d")
    echo "$d: $n upstream GETs"
    ((n == 1)) || bad=1
  done
  ((bad == 0))
}

# Eight simultaneous cold pulls of big: each blob fetched from upstream once.
sc_coalesce() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
  upstream_mark
  local t0=$SECONDS i vfail=0
  run_parallel 8 library/big latest "$SCEN_DIR/out"
  echo "#   8 cold pulls of library/big:latest took $((SECONDS - t0)) s"
  check "coalesce: 8 simultaneous cold pulls of library/big:latest succeed" test "$PAR_FAILED" -eq 0
  for ((i = 1; i <= 8; i++)); do
    verify_dir "$SCEN_DIR/out$i" library/big latest > "$SCEN_DIR/verify$i.out" 2>&1 || { vfail=$((vfail + 1)); cat "$SCEN_DIR/verify$i.out"; }
    [[ $E2E_KEEP == 1 ]] || rm -rf "$SCEN_DIR/out$i"
  done
  check "coalesce: all 8 copies have every digest as seeded" test "$vfail" -eq 0
  check "coalesce: every blob of big was GET from upstream exactly once" \
    every_blob_fetched_once library/big latest
  echo "#   upstream blob GETs: $(upstream_blob_get_total), upstream bytes: $(upstream_bytes_total) (image: $(img_q library/big latest .total_blob_bytes))"
  echo "#   mirror log: $(mirror_log_summary)"
}

no_upstream_blob_gets() {
  local n
  n=$(upstream_blob_get_total)
  echo "$n upstream blob GETs"
  upstream_blob_report
  ((n == 0))
}

# A second pull of already-pulled images costs no upstream blob GET.
sc_warm() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
  local ref
  for ref in library/alpine:latest library/debian:bookworm library/big:latest; do
    check "warm: cold pull $ref" pull_verify "${ref%:*}" "${ref#*:}" "$SCEN_DIR/out" ""
  done
  upstream_mark
  for ref in library/alpine:latest library/debian:bookworm library/big:latest; do
    check "warm: warm pull $ref" pull_verify "${ref%:*}" "${ref#*:}" "$SCEN_DIR/out" ""
  done
  check "warm: warm pulls caused zero upstream blob GETs" no_upstream_blob_gets
  echo "#   mirror log: $(mirror_log_summary)"
}

# stale_timeout CMD...: CMD with skopeo's timeout set to E2E_STALE_TIMEOUT.
stale_timeout() { local SKOPEO_TIMEOUT=$E2E_STALE_TIMEOUT; "$@"; }

# fails_fast SECS CMD...: CMD must fail on its own in under SECS seconds.
fails_fast() {
  local secs=$1 t0=$SECONDS rc=0; shift
  "$@" || rc=$?
  echo "exit $rc after $((SECONDS - t0)) s"
  ((rc != 0 && rc != 124 && rc != 137 && SECONDS - t0 < secs))
}

# Upstream stopped or frozen: already-pulled tags still pull (stale), --tag-ttl 0s.
sc_offline() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 0s
  local ref refs=(library/alpine:latest myorg/team/app:1.0)
  for ref in "${refs[@]}"; do
    check "offline: pull $ref while upstream is up" pull_verify "${ref%:*}" "${ref#*:}" "$SCEN_DIR/out" ""
  done
  upstream_kill
  echo "#   upstream killed (SIGKILL)"
  for ref in "${refs[@]}"; do
    check "offline: upstream killed: pull $ref from cache (stale tag)" \
      stale_timeout pull_verify "${ref%:*}" "${ref#*:}" "$SCEN_DIR/out" ""
  done
  check "offline: upstream killed: a never-pulled tag fails (and does not hang)" \
    fails_fast "$E2E_STALE_TIMEOUT" stale_timeout skopeo_copy library/busybox:v2 "$SCEN_DIR/out-x"
  # Restart the mirror on the same cache so that no state from the refused
  # connections above (a circuit breaker) spares it the wait on a frozen upstream.
  mirror_stop
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  mirror_start "$SCEN_DIR/cache" --tag-ttl 0s
  upstream_freeze
  echo "#   upstream frozen (SIGSTOP, pid $UP_PID), mirror restarted on the same cache"
  for ref in "${refs[@]}"; do
    check "offline: upstream frozen: pull $ref from cache within ${E2E_STALE_TIMEOUT}s" \
      stale_timeout pull_verify "${ref%:*}" "${ref#*:}" "$SCEN_DIR/out" ""
  done
  check "offline: upstream frozen: a never-pulled tag fails within ${E2E_STALE_TIMEOUT}s" \
    fails_fast "$E2E_STALE_TIMEOUT" stale_timeout skopeo_copy library/oci:1 "$SCEN_DIR/out-x"
  upstream_thaw
  echo "#   upstream thawed (SIGCONT)"
  check "offline: upstream thawed: pull library/alpine:latest" \
    pull_verify library/alpine latest "$SCEN_DIR/out" ""
  echo "#   mirror log: $(mirror_log_summary)"
}

# kill -9 the mirror during 4 cold pulls of big; restart on the same cache.
sc_crash() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  local cache=$SCEN_DIR/cache i n=0 t0
  mirror_start "$cache" --tag-ttl 1h
  local -a pids=()
  for ((i = 1; i <= 4; i++)); do
    skopeo_copy library/big:latest "$SCEN_DIR/out$i" --all > "$SCEN_DIR/out$i.log" 2>&1 &
    pids+=($!)
  done
  t0=$SECONDS
  while ((SECONDS - t0 < 60)); do
    n=$(du -sb "$cache" | cut -f1)
    ((n < 30000000)) || break
    sleep 0.05
  done
  mirror_kill9
  echo "#   killed the mirror with SIGKILL, cache held $n bytes; tmp: $( (find "$cache/tmp" -type f 2>/dev/null || true) | wc -l) files"
  local done_ok=0
  for i in "${!pids[@]}"; do wait "${pids[$i]}" && done_ok=$((done_ok + 1)); done
  echo "#   $done_ok of 4 pulls had completed before the kill"
  rm -rf "$SCEN_DIR"/out?
  check "crash: after SIGKILL, every file in blobs/ hashes to its name" blob_files_good "$cache"
  check "crash: after SIGKILL, \$MIRROR verify exits 0" mirror_verify "$cache"
  if ! mirror_start "$cache" --tag-ttl 1h; then
    not_ok "crash: mirror restarts on the same cache dir"
    return 0
  fi
  ok "crash: mirror restarts on the same cache dir"
  check "crash: after restart, tmp/ holds only partial blobs kept for a resume" \
    tmp_holds_only_partials "$cache"
  check "crash: pull library/big:latest after restart" pull_verify library/big latest "$SCEN_DIR/out" ""
  check "crash: after the pull, every partial was resumed and tmp/ is empty" tmp_is_empty "$cache"
  mirror_stop
  check "crash: \$MIRROR verify exits 0 after the pull" mirror_verify "$cache"
  check "crash: \$MIRROR verify exits non-zero after one cached blob is corrupted" \
    verify_catches_corruption "$cache"
}

# verify_catches_corruption CACHE: flip one byte of the largest cached blob;
# `$MIRROR verify` must then fail.
verify_catches_corruption() {
  local f
  f=$(find "$1/blobs" -type f -size +1k -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
  [[ -n $f ]] || { echo "no blob to corrupt"; return 1; }
  "$PY" -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096); b = f.read(1); f.seek(4096); f.write(bytes([(b[0] + 1) % 256]))' "$f"
  echo "corrupted byte 4096 of $f"
  if mirror_verify "$1"; then
    echo "verify exited 0"
    return 1
  fi
  tail -3 "$LOGS/verify-$SCENARIO.log"
}

# Issue 11's "Done when": kill -9 halfway through the cold 100 MiB layer, restart, and the
# upstream's access log shows only the remainder fetched — one GET answered 206 with exactly
# the bytes the partial file lacked. The netns's loopback is slowed (tc tbf) for the first
# run so the kill lands mid-blob.
RESUME_RATE=${RESUME_RATE:-80mbit}   # ~10 MB/s: the 100 MiB layer takes ~10 s

sc_resume() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  local cache=$SCEN_DIR/cache layer size hex part n=0 t0 cpid
  layer=$(jq -r '[.images[] | select(.repo == "library/big") | .platforms[0].blobs[]] | max_by(.size) | .digest' "$IMAGES_JSON")
  size=$(jq -r --arg d "$layer" '[.images[].platforms[].blobs[] | select(.digest == $d)][0].size' "$IMAGES_JSON")
  hex=${layer#sha256:}
  part=$cache/tmp/$hex.part
  nsx tc qdisc add dev lo root tbf rate "$RESUME_RATE" burst 256kb latency 200ms
  mirror_start "$cache" --tag-ttl 1h
  { nsx curl -s -o /dev/null --max-time 120 "http://$MIRROR_ADDR/v2/library/big/blobs/$layer" || true; } &
  cpid=$!   # cut short by the kill
  t0=$SECONDS
  while ((SECONDS - t0 < 60)); do
    n=$(stat -c %s "$part" 2>/dev/null || echo 0)
    ((n < size / 2)) || break
    sleep 0.05
  done
  mirror_kill9
  n=$(stat -c %s "$part" 2>/dev/null || echo 0)
  wait "$cpid" || true
  nsx tc qdisc del dev lo root
  echo "#   killed the mirror with SIGKILL at $n of $size bytes"
  check "resume: the kill landed mid-blob (partial file of $n bytes, blob $size)" \
    test "$n" -gt 0 -a "$n" -lt "$size"
  if ! mirror_start "$cache" --tag-ttl 1h; then
    not_ok "resume: mirror restarts on the same cache dir"
    return 0
  fi
  upstream_mark
  check "resume: the blob after the restart hashes to its digest" \
    expect_eq "$layer" body_sha "http://$MIRROR_ADDR/v2/library/big/blobs/$layer"
  check "resume: upstream sent only the remainder (one GET, 206, $((size - n)) bytes)" \
    only_remainder_fetched "$hex" "$((size - n))"
  check "resume: tmp/ is empty after the resumed fill" tmp_is_empty "$cache"
  mirror_stop
}

# only_remainder_fetched HEX BYTES: since the mark, the upstream answered exactly one GET of
# the blob, with 206 and BYTES bytes.
only_remainder_fetched() {
  local lines
  lines=$(upstream_access | awk -v d="/blobs/sha256:$1" '$6 == "\"GET" && index($7, d) { print $9, $10 }')
  echo "upstream GETs of the blob (status bytes): ${lines:-none}"
  [[ $lines == "206 $2" ]]
}

# --max-size below the sum of all images: pulls succeed, blobs/ stays in budget.
sc_budget() {
  upstream_start "$LOGS/upstream-$SCENARIO.log"
  local cache=$SCEN_DIR/cache round repo tag
  echo "#   all images: $(all_image_bytes) bytes; --max-size $E2E_MAX_SIZE; limit checked: $E2E_MAX_BYTES bytes"
  mirror_start "$cache" --tag-ttl 1h --max-size "$E2E_MAX_SIZE"
  for round in 1 2; do
    while read -r repo tag; do
      check "budget: round $round: pull $repo:$tag" pull_verify "$repo" "$tag" "$SCEN_DIR/out" ""
      check "budget: round $round: after $repo:$tag, blobs/ within budget" blobs_within_budget "$cache"
    done < <(all_images)
  done
  echo "#   mirror log: $(mirror_log_summary)"
}

# Issue 9's scenarios: tls, access, chain, artifacts.
# shellcheck source=tests/e2e/access.sh
source "$E2E_DIR/access.sh"

# ------------------------------------------------------------------ driver

scenario_cleanup() {
  [[ -z ${DOCKERD_PID:-} ]] || stop_pid "$DOCKERD_PID" 30
  [[ -z ${CTRD_PID:-} ]] || stop_pid "$CTRD_PID" 15
  [[ -z ${MIRROR_PID:-} ]] || stop_pid "$MIRROR_PID" 15
  [[ -z ${EDGE_PID:-} ]] || stop_pid "$EDGE_PID" 15
  [[ -z ${UP_PID:-} ]] || stop_pid "$UP_PID" 15
  [[ -z ${UP2_PID:-} ]] || stop_pid "$UP2_PID" 15
  nsx tc qdisc del dev lo root 2> /dev/null || true   # resume's slowed loopback, if it aborted
  umount_under "$SCEN_DIR"
  umount_under "$SOCK_DIR"; rm -rf "$SOCK_DIR"
  if [[ $E2E_KEEP != 1 ]]; then
    rm -rf "$SCEN_DIR"/cache* "$SCEN_DIR"/out* "$SCEN_DIR/central" "$SCEN_DIR/edge" "$SCEN_DIR/podman" "$SCEN_DIR/docker/data" \
      "$SCEN_DIR/containerd/root" 2>/dev/null || true
  fi
}

run_scenario() {
  local rc=0 t0=$SECONDS
  echo "# --- $1"
  # In the background, so that `wait` (unlike a foreground subshell) lets the
  # INT/TERM trap run at once; cleanup() then ends this scenario.
  set +e
  (
    set -Eeuo pipefail
    SCENARIO=$1
    SCEN_DIR=$RUN/$1
    CHECK_DIR=$SCEN_DIR
    mkdir -p "$SCEN_DIR"
    trap scenario_cleanup EXIT
    trap 'exit 143' TERM
    trap 'echo "#   $SCENARIO: unexpected failure at line $LINENO: $BASH_COMMAND" >&2' ERR
    "sc_$1"
  ) &
  SCEN_PID=$!
  wait "$SCEN_PID"
  rc=$?
  SCEN_PID=
  set -e
  ((rc == 0)) || not_ok "$1: scenario aborted (exit $rc)"
  echo "# --- $1 took $((SECONDS - t0)) s"
}

cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  if [[ -n ${SCEN_PID:-} ]] && kill -0 "$SCEN_PID" 2>/dev/null; then
    # Interrupted: the scenario shell exits (running its own cleanup) as soon
    # as the client or server it is waiting on is gone.
    echo "# interrupted: stopping scenario (pid $SCEN_PID)"
    kill -TERM "$SCEN_PID" 2>/dev/null || true
    kill_tracked
    ns_kill_all
    for ((i = 0; i < 300; i++)); do kill -0 "$SCEN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SCEN_PID" 2>/dev/null || true
  fi
  kill_tracked
  umount_under "$SOCK_DIR"; rm -rf "$SOCK_DIR"   # daemons' sockets and runroots (see tests/lib.sh)
  ns_destroy
  umount_under "$RUN"
  if [[ -z ${SUMMARY_DONE:-} && -n ${RESULTS:-} && -f $RESULTS ]]; then
    not_ok "run interrupted or aborted (exit $rc)"
    finish_summary || true
  fi
  exit "$rc"
}

finish_summary() {
  SUMMARY_DONE=1
  echo "# total time $((SECONDS - ${T0:-0})) s; logs in $LOGS"
  summary
}

main() {
  if [[ -n ${E2E_LIST:-} ]]; then printf '%s\n' "${SCENARIOS[@]}"; exit 0; fi
  [[ $EUID -eq 0 ]] || die "run as root (network namespaces, dockerd)"
  local c
  for c in docker-registry skopeo podman containerd ctr dockerd jq curl ip nsenter "$DOCKER_CLI"; do
    command -v "$c" > /dev/null || die "$c missing: run tests/e2e/install-deps.sh"
  done
  local -a mcmd
  read -r -a mcmd <<< "$MIRROR"
  [[ -x ${mcmd[0]} ]] || command -v "${mcmd[0]}" > /dev/null || die "mirror not found: $MIRROR (build it or set MIRROR)"

  local -a selected=()
  if [[ -n ${E2E_ONLY:-} ]]; then
    IFS=', ' read -r -a selected <<< "$E2E_ONLY"
    for c in "${selected[@]}"; do
      [[ " ${SCENARIOS[*]} " == *" $c "* ]] || die "unknown scenario $c (have: ${SCENARIOS[*]})"
    done
  else
    selected=("${SCENARIOS[@]}")
  fi

  mkdir -p "$WORK"
  RUN=$WORK/run
  umount_under "$RUN"
  rm -rf "$RUN"
  LOGS=$RUN/logs
  mkdir -p "$LOGS"
  PIDFILE=$RUN/pids
  report_init "$RUN/results"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ns_create "rme2e-$$"
  export NS

  echo "# mirror: $MIRROR"
  echo "# work: $RUN"
  T0=$SECONDS
  upstream_start "$LOGS/upstream-seed.log"
  seed_upstream full
  upstream_stop
  echo "# seeded upstream in $((SECONDS - T0)) s"

  for c in "${selected[@]}"; do run_scenario "$c"; done
  finish_summary
}

main "$@"
