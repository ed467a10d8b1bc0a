#!/bin/bash
# Install what the e2e suite and tests/bench.sh need (Debian bookworm, as root).
# Idempotent: exits at once when everything is present. Uses a private archives
# dir because the image's docker-clean hook empties the shared one whenever any
# other apt run ends ("cannot stat pathname … .deb" when two installs overlap).
set -euo pipefail

PKGS=(docker-registry skopeo podman containerd docker.io iproute2 util-linux curl jq
      python3 uidmap crun runc ca-certificates xz-utils procps coreutils findutils)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ $st == installed ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"

ARCHIVES=/var/cache/regmirror-apt
mkdir -p "$ARCHIVES/partial"
APT=(apt-get -o DPkg::Lock::Timeout=900 -o Dir::Cache::Archives="$ARCHIVES")
export DEBIAN_FRONTEND=noninteractive

# `apt-get update` does not wait for the lists lock and may fail on a foreign-arch
# index; retry a few times and carry on with whatever lists we have.
for i in 1 2 3; do
  if "${APT[@]}" update; then break; fi
  echo "install-deps: apt-get update failed (attempt $i), tolerating" >&2
  sleep 5
done
"${APT[@]}" install -y --no-install-recommends "${missing[@]}"
