# shellcheck shell=bash
# The one shell library of regmirror's scripts: cross/*.sh, image/*.sh and tests/e2e/*.sh all
# source this file (`. "$(dirname "$0")/../tests/lib.sh"`). It only defines variables and
# functions; it runs nothing. It lives in tests/ because most of it is test harness (network
# namespaces, the upstream registry, the mirror, the clients, TAP reporting); the build
# scripts use only its first part (logging, apt, target names).
#
# Parts, by concern (each file says what it owns):
#   lib/base.sh      log/die, apt_ensure, Rust target names, where cross builds go, qemu-user
#   lib/proc.sh      processes we start (tracked PIDs, stop, kill) and scratch dirs
#   lib/netns.sh     the private loopback-only network namespace every test runs in
#   lib/report.sh    `ok N - …` / `not ok N - …` lines, `check`, the `N passed, M failed` line
#   lib/registry.sh  the upstream (Debian's docker-registry), seeding it (tests/seed.py),
#                    the seed JSON, digest checks of pulled copies, skopeo
#   lib/mirror.sh    the mirror under test: start, stop, kill -9, verify, log summary
#   lib/clients.sh   podman, containerd and Docker Engine, configured to pull through a mirror
#   lib/readme.sh    running README.md's code blocks as written
#
# Settings (environment, or assign after sourcing):
#   MIRROR          the mirror under test, a command (default target/release/regmirror);
#                   tests/e2e/mirror-distribution.sh puts CNCF distribution there instead
#   UP_ADDR         upstream registry address inside the netns (127.0.0.1:5000)
#   MIRROR_ADDR     mirror address inside the netns (127.0.0.1:5001)
#   MIRROR_VERBOSE  1 = pass -v to the mirror (default 1)
#   CLIENT_TIMEOUT  seconds per client call (default 300)
#   KEEP_WORK=1     keep a test's scratch dir even when it passed

TESTS_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TESTS_LIB_DIR/.." && pwd)
export REPO_ROOT

UP_ADDR=${UP_ADDR:-127.0.0.1:5000}
MIRROR_ADDR=${MIRROR_ADDR:-127.0.0.1:5001}
MIRROR=${MIRROR:-$REPO_ROOT/target/release/regmirror}
MIRROR_VERBOSE=${MIRROR_VERBOSE:-1}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-300}
PY=/usr/bin/python3
DOCKER_CLI=/usr/bin/docker           # Debian's 20.10 CLI (/usr/local/bin/docker is another one)
SEED_PY=$TESTS_LIB_DIR/seed.py
SEED_CACHE=${SEED_CACHE:-$REPO_ROOT/target/seed-cache}   # busybox .debs, fetched once

# Per-run state, set by the scripts (or test_begin): the netns, the scratch dir, its logs,
# the results file the reporter counts, the PIDs of every server started.
NS=${NS:-} WORK=${WORK:-} LOGS=${LOGS:-} RESULTS=${RESULTS:-} PIDFILE=${PIDFILE:-}
# Daemons' unix sockets and runroots go under a short /tmp path: socket paths stop at 108
# bytes and podman's runroot at 50 characters, wherever the checkout lives.
SOCK_DIR=${SOCK_DIR:-/tmp/rm-run-$$}

for _part in base proc netns report registry mirror clients readme; do
    # shellcheck source=/dev/null
    . "$TESTS_LIB_DIR/lib/$_part.sh"
done
unset _part
