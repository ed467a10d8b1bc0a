#!/usr/bin/env bash
# The status page in a real browser (tests/all.sh's `ui` stage): installs Debian's chromium,
# then runs tests/ui.rs (ignored by a plain cargo test) — the scripted session (pull three images,
# pin one, fill the budget, take the upstream down), the page read with `--dump-dom` and
# checked against the JSON and /metrics, and screenshots taken — inside a private network
# namespace with only loopback, so that nothing the browser might try leaves the box.
# Prints the screenshots' paths (target/tmp/ui/status.png, status-phone.png).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
. tests/lib.sh

apt_ensure chromium iproute2 util-linux fonts-dejavu-core
cargo test --locked --test ui --no-run
ns_create "regmirror-ui-$$"
trap ns_destroy EXIT
nsx cargo test --locked --offline --test ui -- --ignored --nocapture
