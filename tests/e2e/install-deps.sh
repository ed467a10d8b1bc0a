#!/bin/bash
# Install what the e2e suite and tests/e2e/bench.sh need (Debian bookworm, as root).
# Idempotent: one dpkg-query per package when everything is present (apt_ensure in
# tests/lib.sh, which keeps its .debs in a private archives dir: see there why).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

apt_ensure docker-registry skopeo podman containerd docker.io iproute2 util-linux curl jq \
    python3 uidmap nginx-light crun runc ca-certificates xz-utils procps coreutils findutils
log "all packages present"
