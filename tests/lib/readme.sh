# shellcheck shell=bash
# Part of tests/lib.sh: running README.md's commands as written. A test takes the Nth fenced
# code block of a `## SECTION` and runs it, after the few substitutions this machine needs
# (no internet: an --upstream pointing at the local registry; a scratch dir for a host path),
# which the test names and prints with the commands, so its output shows what ran.

# readme_block FILE SECTION N: the text of the Nth (from 1) fenced code block under the
# heading `## SECTION` (up to the next `## `), fences indented or not (a block inside a list
# item loses its indentation). Fails if there is no such block.
readme_block() {
    awk -v sec="## $2" -v want="$3" '
        /^## / { insec = ($0 == sec) }
        insec && /^ *```/ {
            if (inblk) { inblk = 0; if (n == want) exit }
            else { inblk = 1; n++; match($0, /^ */); ind = RLENGTH }
            next }
        insec && inblk && n == want {
            line = $0; for (i = 0; i < ind && substr(line, 1, 1) == " "; i++) line = substr(line, 2)
            print line; found = 1 }
        END { exit !found }' "$1"
}

# run_readme SECTION N [SED-EXPR...]: run block N of README.md's SECTION with `bash -e`
# semantics in a subshell, after the sed expressions; prints the commands first. The caller
# defines the shell functions the commands need here (e.g. `docker` for our daemon).
run_readme() {
    local sec=$1 n=$2 text e; shift 2
    text=$(readme_block "$REPO_ROOT/README.md" "$sec" "$n") || { echo "README.md: no block $n in '## $sec'"; return 1; }
    for e in "$@"; do text=$(sed -e "$e" <<< "$text"); done
    echo "+ README.md '## $sec' block $n, as run:"
    sed 's/^/+   /' <<< "$text"
    (set -euo pipefail; eval "$text")
}
