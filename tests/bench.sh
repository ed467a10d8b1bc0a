#!/bin/bash
# The benchmark's well-known name: it lives with the e2e harness it shares (netns, upstream,
# seeding), in tests/e2e/bench.sh, which says what it measures and how to choose parts.
exec "$(dirname "${BASH_SOURCE[0]}")/e2e/bench.sh" "$@"
