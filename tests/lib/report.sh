# shellcheck shell=bash
# Part of tests/lib.sh: the reporter. One line per check, `ok N - WHAT` or `not ok N - WHAT`,
# diagnostics as `#   …`, and last `N passed, M failed`. Results are appended to $RESULTS
# (a file, not variables) so checks run in subshells (tests/e2e/run.sh's scenarios) count.

report_init() { RESULTS=$1; : > "$RESULTS"; }

_report() { # _report ok|fail TEXT
    local n
    n=$(($(wc -l < "$RESULTS") + 1))
    echo "$1" >> "$RESULTS"
    if [[ $1 == ok ]]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi
}
ok() { _report ok "$*"; }
not_ok() { _report fail "$*"; }
diag() { sed 's/^/#   /'; }

# check WHAT CMD...: run CMD with its output in ${CHECK_DIR:-$WORK}/check-K.out; ok or
# not ok. On success the output's last line is shown, on failure its tail, the exit status,
# and whatever `check_fail_hook` prints (a script may define it, e.g. to show a server log).
# CMD runs as a background job that is waited for: `CMD || rc=$?` would switch errexit off
# inside every function CMD calls, and a failing step would go unseen. So CMD runs in a
# subshell: variables it sets are not seen afterwards.
CHECK_K=0
check() {
    local what=$1 rc=0 t0=$SECONDS out; shift
    CHECK_K=$((CHECK_K + 1))
    out=${CHECK_DIR:-$WORK}/check-$CHECK_K.out
    (trap - ERR; "$@") > "$out" 2>&1 < /dev/null &
    wait $! || rc=$?
    if ((rc == 0)); then
        ok "$what"
        tail -n1 "$out" | cut -c1-200 | diag
    else
        not_ok "$what"
        echo "#   command: $* (exit $rc)"
        tail -n 15 "$out" | cut -c1-300 | diag
        if declare -F check_fail_hook >/dev/null; then check_fail_hook || true; fi
    fi
    ((SECONDS - t0 < 5)) || echo "#   took $((SECONDS - t0)) s"
    return 0
}

# failed_so_far: how many checks failed until now.
failed_so_far() { grep -cx fail "$RESULTS" || true; }

# summary: the closing `N passed, M failed` line; fails if any check failed.
summary() {
    local pass fail
    pass=$(grep -cx ok "$RESULTS" || true)
    fail=$(grep -cx fail "$RESULTS" || true)
    echo "$pass passed, $fail failed"
    ((fail == 0))
}
