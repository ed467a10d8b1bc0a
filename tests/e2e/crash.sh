#!/bin/bash
# Crash test: rounds of `kill -9` of the mirror at a random moment during 3 simultaneous cold
# pulls of the ~200 MB image, then a restart on the same cache dir, checked each round.
#
#   sudo tests/e2e/crash.sh                 # CRASH_ROUNDS rounds (default 200)
#   CRASH_ROUNDS=10 tests/e2e/crash.sh      # what tests/all.sh's e2e stage runs
#
# One round:
#   1. an empty cache dir; the mirror starts; 3 `skopeo copy --all library/big:latest` start
#      at once (cold: every blob is a fill);
#   2. after a random 0–5000 ms the mirror gets SIGKILL. What was under way is recorded from
#      the cache dir at that moment: `before` (nothing on disk yet), `mid-fill` (a partial in
#      tmp/ shorter than its blob), `at-commit` (a partial as long as its blob: hashed
#      complete, its rename into blobs/ pending — the commit window), `after` (nothing in
#      tmp/, blobs committed);
#   3. `regmirror verify` on the killed cache: exit 0, no BAD and no STRAY line;
#   4. the mirror restarts on that cache: tmp/ holds only partials kept for a resume
#      (`<hex>.part` + `<hex>.from`, see src/cache/partial.rs), no `*.tmp` file anywhere
#      (tag and state writes);
#   5. a pull after the restart: every digest as seeded upstream (tests/seed.py's JSON); then
#      a second, warm pull, same check, and the mirror is stopped.
# Prints one line per round and last `rounds N, kills before/mid-fill/at-commit/after …,
# failures F`; exit status 1 if any round failed. A failed round keeps its cache and logs in
# the scratch dir (printed).
#
# Needs root and the e2e packages (tests/e2e/install-deps.sh), a release build
# (target/release/regmirror or MIRROR=…). The upstream is seeded as tests/e2e/run.sh seeds it
# (tests/e2e/work/upstream-data, reused while tests/seed.py is unchanged).
set -euo pipefail
# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

ROUNDS=${CRASH_ROUNDS:-200}
# The kill falls in [0, KILL_WINDOW_MS): the big image's fills take a few seconds here, so
# this spans "nothing fetched yet" to "everything committed".
KILL_WINDOW_MS=${CRASH_KILL_WINDOW_MS:-5000}
# Clients: how many pull at once, and how long one may take (3 cold pulls of the big image
# took 1–3 s on the 2-core build machine; longer when it is loaded).
PULLERS=3
PULL_TIMEOUT=120
E2E_WORK=${E2E_WORK:-$REPO_ROOT/tests/e2e/work}
UPSTREAM_DATA=$E2E_WORK/upstream-data
IMAGES_JSON=$E2E_WORK/images.json
MIRROR_VERBOSE=0
SCENARIO=crash

[[ -x ${MIRROR%% *} ]] || die "no mirror at $MIRROR: cargo build --release"
test_begin crash
mkdir -p "$E2E_WORK"
upstream_start "$LOGS/upstream.log"
seed_upstream full
REPO=library/big TAG=latest
# Blob sizes by hex digest, to tell a partial that is complete (at-commit) from one that is not.
declare -A SIZE=()
while read -r d s; do SIZE[${d#sha256:}]=$s; done < <(plat_q "$REPO" "$TAG" amd64 '.blobs[] | "\(.digest) \(.size)"')

# kill_state CACHE: what the cache dir holds at the kill (see the header).
kill_state() {
    local f hex size state=after n=0
    for f in "$1"/tmp/*.part; do
        [[ -e $f ]] || continue
        n=$((n + 1))
        hex=$(basename "$f" .part)
        size=$(stat -c %s "$f")
        if [[ -n ${SIZE[$hex]:-} && $size == "${SIZE[$hex]}" ]]; then echo at-commit; return; fi
        state=mid-fill
    done
    if ((n == 0)) && [[ -z $(find "$1/blobs" -type f 2>/dev/null | head -n1) ]]; then state=before; fi
    echo "$state"
}

# no_stray_temp CACHE: tmp/ holds only resumable partials; no `*.tmp` anywhere.
no_stray_temp() {
    local stray
    stray=$( (find "$1/tmp" -mindepth 1 2>/dev/null || true) | grep -Ev '/[0-9a-f]{64}\.(part|from)$' || true)
    stray+=$(find "$1" -name '*.tmp' 2>/dev/null || true)
    [[ -z $stray ]] || { echo "stray temp files: $stray"; return 1; }
}

# verify_clean CACHE: `regmirror verify` exits 0 and reports no bad blob and no stray file.
verify_clean() {
    local -a cmd
    read -r -a cmd <<< "$MIRROR"
    timeout -k 5 300 "${cmd[@]}" verify --cache-dir "$1" > "$LOGS/verify.out" 2>&1 || {
        cat "$LOGS/verify.out"; return 1; }
    ! grep -Eq '^(BAD|STRAY) ' "$LOGS/verify.out" || { cat "$LOGS/verify.out"; return 1; }
}

T_START=$SECONDS
declare -A KILLS=([before]=0 [mid-fill]=0 [at-commit]=0 [after]=0)
failures=0
for ((round = 1; round <= ROUNDS; round++)); do
    cache=$WORK/cache
    rm -rf "$cache" "$WORK"/out*
    why=
    mirror_start "$cache" --tag-ttl 1h || { echo "round $round: mirror did not start"; failures=$((failures + 1)); break; }
    pids=()
    for ((i = 1; i <= PULLERS; i++)); do
        SKOPEO_TIMEOUT=$PULL_TIMEOUT skopeo_copy "$REPO:$TAG" "$WORK/out$i" --all > "$LOGS/pull$i.log" 2>&1 &
        pids+=($!)
    done
    delay_ms=$((RANDOM % KILL_WINDOW_MS))
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    kill -KILL "$MIRROR_PID"
    state=$(kill_state "$cache")
    mirror_kill9
    KILLS[$state]=$((KILLS[$state] + 1))
    completed=0
    for p in "${pids[@]}"; do if wait "$p"; then completed=$((completed + 1)); fi; done
    rm -rf "$WORK"/out*
    verify_clean "$cache" > "$LOGS/round.out" 2>&1 || why="verify after the kill: $(head -c 300 "$LOGS/round.out")"
    if [[ -z $why ]]; then
        if mirror_start "$cache" --tag-ttl 1h; then
            no_stray_temp "$cache" > "$LOGS/round.out" 2>&1 || why=$(head -c 300 "$LOGS/round.out")
            for pull in after-restart warm; do
                [[ -z $why ]] || break
                KEEP_PULLS=0 pull_verify "$REPO" "$TAG" "$WORK/out" "" > "$LOGS/round.out" 2>&1 ||
                    why="$pull pull: $(tail -c 300 "$LOGS/round.out")"
            done
            mirror_stop
        else
            why="mirror did not restart on the killed cache"
        fi
    fi
    if [[ -n $why ]]; then
        failures=$((failures + 1))
        mkdir -p "$WORK/failed-$round" && mv "$cache" "$WORK/failed-$round/" && cp "$MIRROR_LOG" "$WORK/failed-$round/"
        echo "not ok round $round: killed at ${delay_ms} ms ($state, $completed/$PULLERS pulls done): $why"
    else
        echo "ok round $round: killed at ${delay_ms} ms ($state, $completed/$PULLERS pulls done)"
    fi
done
rm -rf "$WORK/cache" "$WORK"/out*
echo "rounds $((round - 1)) in $((SECONDS - T_START)) s, kills before ${KILLS[before]}, mid-fill ${KILLS[mid-fill]}, at-commit ${KILLS[at-commit]}, after ${KILLS[after]}; failures $failures"
((failures == 0)) || { KEEP_WORK=1; exit 1; }
