#!/bin/bash
# Adapter: run CNCF distribution (Debian's docker-registry) in proxy mode behind
# regmirror's command line, so run.sh and bench.sh can drive either mirror:
#   MIRROR=tests/e2e/mirror-distribution.sh tests/e2e/run.sh
#
#   serve --listen ADDR --cache-dir DIR --upstream docker.io=URL [--max-size S] [--tag-ttl T] [-v]
#   verify --cache-dir DIR
#
# Storage goes to DIR/blobs (so `du -sb DIR/blobs` measures it); there is no
# DIR/tmp. distribution has no byte budget and no tag TTL: --max-size and
# --tag-ttl are accepted and ignored (the budget check is expected to fail).
# `serve` execs docker-registry, so the caller's PID is the registry's.
set -euo pipefail

cmd=${1:-}; shift || true
listen=127.0.0.1:5001 cache='' upstream='' verbose=0
while (($#)); do
  case $1 in
    --listen) listen=$2; shift 2 ;;
    --cache-dir) cache=$2; shift 2 ;;
    --upstream) upstream=${2#*=}; shift 2 ;;
    --max-size|--tag-ttl) shift 2 ;;
    -v|--verbose) verbose=1; shift ;;
    *) echo "mirror-distribution: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $cache ]] || { echo "mirror-distribution: --cache-dir is required" >&2; exit 2; }

case $cmd in
  serve)
    [[ -n $upstream ]] || { echo "mirror-distribution: --upstream is required" >&2; exit 2; }
    mkdir -p "$cache/blobs"
    level=info; ((verbose)) && level=debug
    conf=$cache/distribution.yml
    cat > "$conf" <<YML
version: 0.1
log:
  level: $level
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $cache/blobs
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $listen
proxy:
  remoteurl: $upstream
YML
    exec docker-registry serve "$conf"
    ;;
  verify)
    # Every stored blob's content must hash to its name.
    root=$cache/blobs/docker/registry/v2/blobs/sha256
    bad=0 n=0
    if [[ -d $root ]]; then
      while IFS= read -r -d '' f; do
        want=$(basename "$(dirname "$f")")
        got=$(sha256sum "$f" | cut -d' ' -f1)
        n=$((n + 1))
        if [[ $got != "$want" ]]; then
          echo "BAD sha256:$want (content hashes to $got)" >&2
          bad=$((bad + 1))
        fi
      done < <(find "$root" -name data -type f -print0)
    fi
    echo "verify: $n blobs, $bad bad"
    ((bad == 0))
    ;;
  *) echo "usage: $0 serve|verify ..." >&2; exit 2 ;;
esac
