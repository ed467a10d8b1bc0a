# shellcheck shell=bash
# Scenarios of issue 9, sourced by tests/e2e/run.sh (which defines the helpers used here):
#   tls        `regmirror tls init`; skopeo and containerd pull over TLS trusting only the CA;
#              a TLS probe on the plain port leaves no 400 line; TLS vs plain throughput
#   access     a public source address (203.0.113.5, on the netns's own loopback) gets 403,
#              then pulls once --allow admits it; --htpasswd: podman and containerd pull
#              with credentials and fail cleanly without; the password is never logged
#   chain      regmirror (edge) -> regmirror (central) -> distribution, a Docker Hub image
#              and a second, ghcr.io-style upstream through the central's path prefix
#   artifacts  a Helm chart and a cosign signature tag pull through; the referrers API
#              answers (tag schema + cache) while upstream is up and after it is killed

EDGE_ADDR=127.0.0.1:5002
UP2_ADDR=127.0.0.1:5004
PUBLIC_IP=203.0.113.5   # TEST-NET-3 (RFC 5737): "public" to the mirror, only on the netns's lo

# at_addr ADDR CMD...: CMD with the mirror at ADDR (skopeo_copy, pull_verify, … read it).
at_addr() { local MIRROR_ADDR=$1; shift; "$@"; }

# podman_auth FILE ARGS...: podman_ with REGISTRY_AUTH_FILE=FILE.
podman_auth() { (export REGISTRY_AUTH_FILE=$1; shift; podman_ "$@"); }

# curl_exit ARGS...: curl's exit status, printed.
curl_exit() { local rc=0; nsx curl -s -o /dev/null --max-time 30 "$@" || rc=$?; echo "$rc"; }

# no_log_strings FILE STRING...: no STRING (fixed) anywhere in FILE.
no_log_strings() {
    local f=$1 s n; shift
    for s in "$@"; do
        n=$(grep -cF -- "$s" "$f" || true)
        ((n == 0)) || { echo "$f: $n lines contain a secret"; return 1; }
    done
    echo "none of $# strings in $f"
}

# denied_says_allow URL: the answer is DENIED with a message naming --allow.
denied_says_allow() {
    local body
    body=$(nsx curl -s --max-time 30 "$1")
    echo "$body"
    jq -e '.errors[0].code == "DENIED" and (.errors[0].message | contains("--allow"))' <<< "$body" > /dev/null
}

# fails_unauthorized CMD...: CMD fails within 120 s, saying the mirror wants credentials.
fails_unauthorized() {
    local out
    out=$(fails_fast 120 "$@" 2>&1) || { echo "$out"; return 1; }
    echo "$out"
    grep -qiE 'unauthorized|401' <<< "$out"
}

# art_q NAME FILTER: a field of one seeded artifact.
art_q() { jq -r --arg n "$1" ".artifacts[] | select(.name == \$n) | $2" "$IMAGES_JSON"; }

# skopeo_tls REF OUT CERTDIR [args]: skopeo copy over https, trusting only CERTDIR/ca.crt.
skopeo_tls() {
    local ref=$1 out=$2 certs=$3; shift 3
    rm -rf "$out"
    timeout -k 10 "$CLIENT_TIMEOUT" nsenter --net="/run/netns/$NS" -- \
        skopeo --insecure-policy copy --preserve-digests --retry-times 0 --src-tls-verify=true \
        --src-cert-dir "$certs" "$@" "docker://$MIRROR_ADDR/$ref" "dir:$out"
}

# tls_pull_verify REF CERTDIR: skopeo_tls + verify_dir against the seed.
tls_pull_verify() {
    local out=$SCEN_DIR/out-tls
    skopeo_tls "$1" "$out" "$2" --all && verify_dir "$out" "${1%:*}" "${1#*:}" && rm -rf "$out"
}

# no_log_lines PATTERN FILE...: no line of FILE matches PATTERN (grep -E).
no_log_lines() {
    local pat=$1 n; shift
    n=$(cat "$@" | grep -cE -- "$pat" || true)
    echo "$n lines match '$pat'"
    ((n == 0))
}

# curl_speed URL [curl args]: MB/s of one download, printed.
curl_speed() {
    local url=$1; shift
    nsx curl -fs -o /dev/null -w '%{speed_download}\n' --max-time 120 "$@" "$url" |
        awk '{ printf "%.1f\n", $1 / 1e6 }'
}

# mirror_cpu_ticks: user+system ticks (1/100 s) of the running mirror.
mirror_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$MIRROR_PID/stat"; }

sc_tls() {
    upstream_start "$LOGS/upstream-$SCENARIO.log"
    local certs=$SCEN_DIR/certs tls=$SCEN_DIR/tls
    # Plain port first: skopeo's https probe (insecure mirror) leaves no 400 in the log.
    mirror_start "$SCEN_DIR/cache-plain" --tag-ttl 1h
    check "tls: skopeo through a plain-HTTP mirror (it probes https first)" \
        pull_verify library/busybox v2 "$SCEN_DIR/out" ""
    check "tls: that https probe left no 400 line in the mirror log" \
        no_log_lines ' 400 |TLS handshake on a plain' "$MIRROR_LOG"
    mirror_stop
    local -a cmd
    read -r -a cmd <<< "$MIRROR"
    check "tls: regmirror tls init --name localhost --ip 127.0.0.1" \
        "${cmd[@]}" tls init --dir "$tls" --name localhost --ip 127.0.0.1 --port "${MIRROR_ADDR##*:}"
    mkdir -p "$certs" && cp "$tls/ca.crt" "$certs/ca.crt"
    mirror_start "$SCEN_DIR/cache" --tag-ttl 1h --tls-cert "$tls/server.crt" --tls-key "$tls/server.key"
    check "tls: curl without the CA refuses the certificate (exit 60)" \
        expect_eq 60 curl_exit "https://$MIRROR_ADDR/v2/"
    check "tls: curl --cacert ca.crt https://$MIRROR_ADDR/v2/ is 200" \
        expect_eq 200 http_code --cacert "$tls/ca.crt" "https://$MIRROR_ADDR/v2/"
    check "tls: plain http on the same port still answers" expect_eq 200 http_code "http://$MIRROR_ADDR/v2/"
    local ref
    for ref in library/alpine:latest myorg/team/app:1.0; do
        check "tls: skopeo copy --all $ref over https, only the CA trusted" \
            tls_pull_verify "$ref" "$certs"
    done
    containerd_start "$SCEN_DIR/containerd" || { not_ok "tls: containerd did not start"; return 0; }
    cat > "$CTRD_HOSTS/docker.io/hosts.toml" <<EOF
server = "https://registry-1.docker.io"
[host."https://$MIRROR_ADDR"]
  capabilities = ["pull", "resolve"]
  ca = "$tls/ca.crt"
EOF
    check "tls: ctr pull docker.io/library/debian:bookworm over https (hosts.toml ca = …)" \
        ctr_ images pull --hosts-dir "$CTRD_HOSTS" docker.io/library/debian:bookworm
    check "tls: containerd's debian:bookworm target digest is the seeded one" \
        expect_eq "$(img_digest library/debian bookworm)" ctr_image_digest docker.io/library/debian:bookworm
    # shellcheck disable=SC2046
    check "tls: every amd64 blob of debian is in containerd's content store" \
        ctr_content_has $(plat_q library/debian bookworm amd64 '.digest, .blobs[].digest')
    # The cost of TLS: no sendfile, a copy through a buffer and encryption.
    local layer plain tlsrate t0 t1 t2
    layer=$(plat_q library/big latest amd64 '.layers[1]')
    nsx curl -fs -o /dev/null "http://$MIRROR_ADDR/v2/library/big/blobs/$layer"   # cache it
    t0=$(mirror_cpu_ticks)
    plain=$(curl_speed "http://$MIRROR_ADDR/v2/library/big/blobs/$layer")
    t1=$(mirror_cpu_ticks)
    tlsrate=$(curl_speed "https://$MIRROR_ADDR/v2/library/big/blobs/$layer" --cacert "$tls/ca.crt")
    t2=$(mirror_cpu_ticks)
    echo "#   cached $(plat_q library/big latest amd64 '.blobs[2].size') B blob: plain ${plain} MB/s, mirror CPU $((t1 - t0))0 ms; TLS ${tlsrate} MB/s, mirror CPU $((t2 - t1))0 ms"
}

sc_access() {
    upstream_start "$LOGS/upstream-$SCENARIO.log"
    nsx ip addr add "$PUBLIC_IP/32" dev lo
    local P=$PUBLIC_IP:${MIRROR_ADDR##*:} out=$SCEN_DIR/out
    # Every address of the netns (0.0.0.0), so that a client can come from $PUBLIC_IP.
    MIRROR_ADDR=0.0.0.0:${MIRROR_ADDR##*:} mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
    check "access: from $PUBLIC_IP (public), GET /v2/ is 403" expect_eq 403 http_code "http://$P/v2/"
    check "access: from $PUBLIC_IP, the status page is 403 too" expect_eq 403 http_code "http://$P/_regmirror/status"
    check "access: from $PUBLIC_IP, /metrics is 403 too" expect_eq 403 http_code "http://$P/metrics"
    check "access: the 403 is DENIED and says how to allow the address" \
        denied_says_allow "http://$P/v2/"
    check "access: skopeo from $PUBLIC_IP fails" \
        fails_fast 60 at_addr "$P" skopeo_copy library/alpine:latest "$out" --all
    check "access: from 127.0.0.1 (loopback) skopeo pulls" pull_verify library/alpine latest "$out" ""
    mirror_stop
    MIRROR_ADDR=0.0.0.0:${MIRROR_ADDR##*:} mirror_start "$SCEN_DIR/cache" --tag-ttl 1h \
        --allow private --allow 203.0.113.0/24
    check "access: --allow private --allow 203.0.113.0/24: skopeo from $PUBLIC_IP pulls" \
        at_addr "$P" pull_verify library/alpine latest "$out" ""
    mirror_stop

    # --htpasswd: bcrypt (cost 5, as `htpasswd -B` makes it).
    local user=alice pass=s3cret-e2e-pw auth
    "$PY" -W ignore -c 'import crypt, sys; print("%s:%s" % (sys.argv[1], crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32))))' \
        "$user" "$pass" > "$SCEN_DIR/htpasswd" || htpasswd -Bbn "$user" "$pass" > "$SCEN_DIR/htpasswd"
    nsx ip addr del "$PUBLIC_IP/32" dev lo
    mirror_start "$SCEN_DIR/cache-auth" --tag-ttl 1h --htpasswd "$SCEN_DIR/htpasswd"
    auth=$(printf '%s:%s' "$user" "$pass" | base64)
    check "access: --htpasswd: GET /v2/ without credentials is 401" expect_eq 401 http_code "http://$MIRROR_ADDR/v2/"
    check "access: the 401 carries a Basic challenge" \
        expect_eq 'Basic realm="regmirror", charset="UTF-8"' hdr WWW-Authenticate "http://$MIRROR_ADDR/v2/"
    check "access: /metrics needs no credentials" expect_eq 200 http_code "http://$MIRROR_ADDR/metrics"
    podman_setup "$SCEN_DIR/podman"
    printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$MIRROR_ADDR" "$auth" > "$SCEN_DIR/auth.json"
    echo '{"auths":{}}' > "$SCEN_DIR/no-auth.json"
    check "access: podman pull without credentials fails" \
        fails_unauthorized podman_auth "$SCEN_DIR/no-auth.json" pull -q docker.io/library/busybox:v2
    check "access: podman pull with the mirror's credentials in auth.json" \
        podman_auth "$SCEN_DIR/auth.json" pull -q docker.io/library/busybox:v2
    check "access: podman's busybox:v2 digest is the seeded one" \
        expect_eq "$(img_digest library/busybox v2)" podman_ image inspect --format '{{.Digest}}' docker.io/library/busybox:v2
    containerd_start "$SCEN_DIR/containerd" || { not_ok "access: containerd did not start"; return 0; }
    check "access: ctr pull without credentials fails" \
        fails_unauthorized ctr_ images pull --hosts-dir "$CTRD_HOSTS" docker.io/myorg/team/app:1.0
    check "access: ctr pull --user with the htpasswd user" \
        ctr_ images pull --user "$user:$pass" --hosts-dir "$CTRD_HOSTS" docker.io/myorg/team/app:1.0
    check "access: containerd's myorg/team/app:1.0 digest is the seeded one" \
        expect_eq "$(img_digest myorg/team/app 1.0)" ctr_image_digest docker.io/myorg/team/app:1.0
    check "access: the mirror answered 401s, and never 5xx" \
        sh -c "grep -c ' 401 ' '$MIRROR_LOG' && ! grep -E ' (500|502|503) [0-9]+ ' '$MIRROR_LOG'"
    check "access: neither the password nor the Authorization value is in the mirror's log" \
        no_log_strings "$MIRROR_LOG" "$pass" "$auth"
    check "access: … nor in the upstream's" no_log_strings "$UP_LOG" "$pass" "$auth"
}

sc_chain() {
    # The second, ghcr.io-style registry: another distribution on the same (read-only) data.
    UP_ADDR=$UP2_ADDR upstream_start "$LOGS/upstream2-$SCENARIO.log"
    UP2_PID=$UP_PID UP2_LOG=$UP_LOG
    upstream_start "$LOGS/upstream-$SCENARIO.log"
    mirror_start "$SCEN_DIR/central" --tag-ttl 1h --upstream "ghcr.io=http://$UP2_ADDR"
    CENTRAL_PID=$MIRROR_PID CENTRAL_LOG=$MIRROR_LOG
    local central=$MIRROR_ADDR
    UP_ADDR=$central MIRROR_ADDR=$EDGE_ADDR mirror_start "$SCEN_DIR/edge" --tag-ttl 1h \
        --upstream "ghcr.io=http://$central/ghcr.io"
    EDGE_PID=$MIRROR_PID
    local edge_log=$MIRROR_LOG out=$SCEN_DIR/out
    MIRROR_PID=$CENTRAL_PID MIRROR_LOG=$CENTRAL_LOG
    upstream_mark
    check "chain: edge -> central -> distribution: skopeo copy --all library/alpine:latest" \
        at_addr "$EDGE_ADDR" skopeo_copy library/alpine:latest "$out" --all
    check "chain: alpine's digests are the seeded ones" verify_dir "$out" library/alpine latest
    check "chain: single-segment name through the chain (alpine -> library/alpine)" \
        expect_eq "$(img_digest library/alpine latest)" hdr Docker-Content-Digest -H "$ACCEPT_ALL" "http://$EDGE_ADDR/v2/alpine/manifests/latest"
    check "chain: skopeo copy --all ghcr.io/myorg/team/app:1.0 from the edge (path prefix)" \
        at_addr "$EDGE_ADDR" skopeo_copy ghcr.io/myorg/team/app:1.0 "$out" --all
    check "chain: ghcr.io/myorg/team/app's digests are the seeded ones" verify_dir "$out" myorg/team/app 1.0
    containerd_start "$SCEN_DIR/containerd" || { not_ok "chain: containerd did not start"; return 0; }
    mkdir -p "$CTRD_HOSTS/ghcr.io"
    printf 'server = "https://ghcr.io"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
        "$EDGE_ADDR" > "$CTRD_HOSTS/ghcr.io/hosts.toml"
    check "chain: ctr pull ghcr.io/myorg/team/app:1.0 through the edge (?ns=ghcr.io)" \
        ctr_ images pull --hosts-dir "$CTRD_HOSTS" ghcr.io/myorg/team/app:1.0
    check "chain: containerd's ghcr.io image digest is the seeded one" \
        expect_eq "$(img_digest myorg/team/app 1.0)" ctr_image_digest ghcr.io/myorg/team/app:1.0
    local d n bad=0
    for d in $(plat_q library/alpine latest amd64 '.layers[]') $(plat_q myorg/team/app 1.0 amd64 '.layers[]'); do
        for c in central edge; do
            [[ -f $SCEN_DIR/$c/blobs/sha256/${d:7:2}/${d#sha256:} ]] || { echo "$c lacks $d"; bad=1; }
        done
    done
    check "chain: each level keeps every layer it served" test "$bad" -eq 0
    check "chain: docker.io's registry sent alpine's amd64 layer once" \
        expect_eq 1 upstream_blob_gets "$(plat_q library/alpine latest amd64 '.layers[0]')"
    check "chain: the ghcr.io-style registry was asked for myorg/team/app by its own name" \
        asked_by_own_name "$UP2_LOG"
    local mark
    mark=$(wc -l < "$CENTRAL_LOG")
    check "chain: warm pull of ghcr.io/myorg/team/app:1.0 at the edge" \
        at_addr "$EDGE_ADDR" skopeo_copy ghcr.io/myorg/team/app:1.0 "$out" --all
    check "chain: the warm pull asked the central mirror for no blob" \
        expect_eq 0 sh -c "tail -n +$((mark + 1)) '$CENTRAL_LOG' | grep -c '/blobs/sha256' || true"
    echo "#   edge log: $(MIRROR_LOG=$edge_log mirror_log_summary)"
    echo "#   central log: $(mirror_log_summary)"
}

# asked_by_own_name LOG: distribution's LOG has GETs of /v2/myorg/team/app/blobs/, none of
# /v2/ghcr.io/…
asked_by_own_name() {
    local n
    n=$(grep -c '"GET /v2/myorg/team/app/blobs/' "$1" || true)
    echo "$n blob GETs of myorg/team/app; $(grep -c '/v2/ghcr.io/' "$1" || true) requests for /v2/ghcr.io/…"
    ((n > 0)) && ! grep -q '/v2/ghcr.io/' "$1"
}

# copy_check REF OUT DIGEST: skopeo copy (one manifest) + check_dir_copy.
copy_check() { skopeo_copy "$1" "$2" && check_dir_copy "$2" "$3"; }

# referrers_list DIGEST [QUERY]: "digest artifactType" lines of the mirror's referrers answer.
referrers_list() {
    nsx curl -fs --max-time 60 "http://$MIRROR_ADDR/v2/library/alpine/referrers/$1${2:-}" |
        jq -r '.manifests[] | "\(.digest) \(.artifactType)"' | sort
}

sc_artifacts() {
    upstream_start "$LOGS/upstream-$SCENARIO.log"
    mirror_start "$SCEN_DIR/cache" --tag-ttl 1h
    local chart layer sig sigtag sbom alpine out=$SCEN_DIR/out
    [[ -n $(art_q helm .digest) ]] || { not_ok "artifacts: the seed has no artifacts (seed.py --set full)"; return 0; }
    chart=$(art_q helm .digest)
    layer=$(art_q helm '.blobs[] | select(.media_type | endswith("tar+gzip")) | .digest')
    check "artifacts: helm-style GET of charts/hello:0.1.0 (OCI manifest) has the pushed digest" \
        expect_eq "$chart" body_sha -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$MIRROR_ADDR/v2/charts/hello/manifests/0.1.0"
    check "artifacts: the chart's .tgz layer hashes to its digest" \
        expect_eq "$layer" body_sha "http://$MIRROR_ADDR/v2/charts/hello/blobs/$layer"
    check "artifacts: the chart unpacks to hello/Chart.yaml" \
        sh -c "nsenter --net=/run/netns/$NS -- curl -fs http://$MIRROR_ADDR/v2/charts/hello/blobs/$layer | tar -xzO hello/Chart.yaml | grep -x 'name: hello'"
    check "artifacts: skopeo copy charts/hello:0.1.0 (config $(art_q helm '.blobs[0].media_type'))" \
        copy_check charts/hello:0.1.0 "$out" "$chart"
    sig=$(art_q signature .digest) sigtag=$(art_q signature .tag)
    check "artifacts: cosign signature tag library/alpine:${sigtag:0:20}….sig pulls with its digest" \
        copy_check "library/alpine:$sigtag" "$out" "$sig"
    check "artifacts: the signature layer keeps its cosign annotation" \
        sh -c "jq -e '.layers[0].annotations[\"dev.cosignproject.cosign/signature\"]' $out/manifest.json"
    sbom=$(art_q sbom .digest) alpine=$(img_digest library/alpine latest)
    check "artifacts: referrers of library/alpine:latest list the SBOM (upstream has no referrers API)" \
        expect_eq "$sbom application/spdx+json" referrers_list "$alpine"
    check "artifacts: ?artifactType=application/spdx%2Bjson says OCI-Filters-Applied" \
        expect_eq artifactType hdr OCI-Filters-Applied "http://$MIRROR_ADDR/v2/library/alpine/referrers/$alpine?artifactType=application/spdx%2Bjson"
    check "artifacts: the SBOM manifest by digest" \
        expect_eq "$sbom" body_sha -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$MIRROR_ADDR/v2/library/alpine/manifests/$sbom"
    upstream_kill
    echo "#   upstream killed (SIGKILL)"
    check "artifacts: upstream down: the referrers API still answers from the cache" \
        expect_eq "$sbom application/spdx+json" referrers_list "$alpine"
    check "artifacts: upstream down: a filter that matches nothing gives an empty list" \
        expect_eq "" referrers_list "$alpine" "?artifactType=application/x-none"
    check "artifacts: upstream down: the chart pulls from the cache" \
        stale_timeout copy_check charts/hello:0.1.0 "$out" "$chart"
    echo "#   mirror log: $(mirror_log_summary)"
}
