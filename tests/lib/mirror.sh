# shellcheck shell=bash
# Part of tests/lib.sh: the mirror under test ($MIRROR, a command: the release binary, a
# cross-built one behind qemu-user, or tests/e2e/mirror-distribution.sh) on $MIRROR_ADDR in
# the netns, with $UP_ADDR as its docker.io upstream.

MIRROR_N=0
# mirror_start CACHE_DIR [extra serve args...]: start $MIRROR in the netns, wait for /v2/
# (MIRROR_START_WAIT seconds, default 20). Sets MIRROR_PID, MIRROR_LOG
# ($LOGS/mirror-$SCENARIO-N.log).
mirror_start() {
    local cache=$1; shift
    local -a cmd v=()
    read -r -a cmd <<< "$MIRROR"
    ((MIRROR_VERBOSE)) && v=(-v)
    MIRROR_N=$((MIRROR_N + 1))
    MIRROR_LOG=${LOGS:-$WORK}/mirror-${SCENARIO:-x}-$MIRROR_N.log
    mkdir -p "$(dirname "$MIRROR_LOG")"   # not the cache dir: the mirror makes it (it may be a path in a chroot)
    if port_busy "$MIRROR_ADDR"; then
        log "# something already listens on $MIRROR_ADDR"
        return 1
    fi
    echo "# $(date +%T) ${cmd[*]} serve --listen $MIRROR_ADDR --cache-dir $cache --upstream docker.io=http://$UP_ADDR $* ${v[*]}" >> "$MIRROR_LOG"
    ns_spawn "$MIRROR_LOG" "${cmd[@]}" serve --listen "$MIRROR_ADDR" --cache-dir "$cache" \
        --upstream "docker.io=http://$UP_ADDR" "$@" "${v[@]}"
    MIRROR_PID=$SPAWNED_PID
    if ! wait_http "http://$MIRROR_ADDR/v2/" "${MIRROR_START_WAIT:-20}" "$MIRROR_PID"; then
        log "# mirror did not answer GET /v2/ within ${MIRROR_START_WAIT:-20} s; log tail:"
        tail -20 "$MIRROR_LOG" | sed 's/^/#   /' >&2
        return 1
    fi
}

mirror_stop() { stop_pid "${MIRROR_PID:-}"; MIRROR_PID=; }
mirror_kill9() { kill -KILL "$MIRROR_PID" 2>/dev/null || true; wait "$MIRROR_PID" 2>/dev/null || true; MIRROR_PID=; }

# mirror_verify CACHE_DIR: `$MIRROR verify --cache-dir DIR`, output to the log.
mirror_verify() {
    local -a cmd
    read -r -a cmd <<< "$MIRROR"
    timeout -k 5 300 "${cmd[@]}" verify --cache-dir "$1" >> "${LOGS:-$WORK}/verify-${SCENARIO:-x}.log" 2>&1
}

# mirror_log_summary: counts of HIT/MISS/COALESCED/STALE/PASS in the current log.
mirror_log_summary() {
    [[ -f ${MIRROR_LOG:-} ]] || return 0
    local w out=
    for w in HIT MISS COALESCED STALE PASS; do
        out+="$w=$(grep -cw "$w" "$MIRROR_LOG" || true) "
    done
    echo "$out"
}

# show_mirror_log: the current mirror log's last non-debug lines, as diagnostics.
show_mirror_log() {
    if [[ -n ${MIRROR_LOG:-} && -f $MIRROR_LOG ]]; then
        echo "#   mirror log ($MIRROR_LOG), last lines:"
        grep -Ev "^time=.* level=(debug|info) " "$MIRROR_LOG" | tail -n 8 | cut -c1-300 | diag
    fi
}
