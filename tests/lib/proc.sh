# shellcheck shell=bash
# Part of tests/lib.sh: the processes a script starts (every server PID goes to $PIDFILE so a
# trap can end them all) and its scratch dirs (kept when a run fails).

track_pid() { [[ -z $PIDFILE ]] || echo "$1" >> "$PIDFILE"; }

# stop_pid PID [SECONDS]: TERM, wait, then KILL. Also CONTs a stopped process.
stop_pid() {
    local pid=$1 secs=${2:-15} i
    [[ -n $pid ]] || return 0
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# stop_tracked [SECONDS]: TERM every recorded PID at once, give them SECONDS (10) to go,
# then KILL what is left.
stop_tracked() {
    [[ -n $PIDFILE && -f $PIDFILE ]] || return 0
    local secs=${1:-10} p i alive
    while read -r p; do
        kill -CONT "$p" 2>/dev/null || true
        kill -TERM "$p" 2>/dev/null || true
    done < "$PIDFILE"
    for ((i = 0; i < secs * 10; i++)); do
        alive=0
        while read -r p; do if kill -0 "$p" 2>/dev/null; then alive=1; fi; done < "$PIDFILE"
        ((alive)) || break
        sleep 0.1
    done
    kill_tracked
}

# kill_tracked: safety net, KILL every PID we recorded.
kill_tracked() {
    [[ -n $PIDFILE && -f $PIDFILE ]] || return 0
    local p
    while read -r p; do
        kill -CONT "$p" 2>/dev/null || true
        kill -KILL "$p" 2>/dev/null || true
    done < "$PIDFILE"
}

# umount_under DIR: lazy-unmount anything (overlay, shm) left mounted below DIR.
umount_under() {
    local dir=$1 m
    [[ -n $dir ]] || return 0
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

# finish_work RC: delete $WORK, unless the run failed or KEEP_WORK=1.
finish_work() {
    [[ -n $WORK && -d $WORK ]] || return 0
    if [ "$1" -ne 0 ] || [ "${KEEP_WORK:-}" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}

# test_begin NAME: the frame of a stand-alone test script (cross/test.sh, image/*-test*.sh):
# root, a scratch dir /tmp/regmirror-NAME.*, its logs/, the results file, a netns
# rmNAME-PID, and an EXIT trap (test_end) that runs the script's test_cleanup_hook if it
# defines one, stops every tracked server, deletes the netns and the scratch dir.
test_begin() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    WORK=$(mktemp -d "/tmp/regmirror-$1.XXXXXX")
    LOGS=$WORK/logs PIDFILE=$WORK/pids
    mkdir -p "$LOGS"
    : > "$PIDFILE"
    report_init "$WORK/results"
    trap test_end EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    ns_create "rm$1-$$"
}

test_end() {
    local rc=$?
    trap - EXIT INT TERM
    set +e   # clean up everything, whatever fails on the way
    if declare -F test_cleanup_hook >/dev/null; then test_cleanup_hook || true; fi
    stop_tracked 10
    ns_destroy
    umount_under "$SOCK_DIR"; rm -rf "$SOCK_DIR"
    umount_under "$WORK"
    finish_work "$rc"
    exit "$rc"
}
