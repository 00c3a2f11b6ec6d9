#!/usr/bin/env bash
# The long fuzzing run recorded in docs/fuzzing.md: every target for
# RUNS executions (default 10 million), one after the other; prints each
# target's executions, time and rate. Run it on a quiet machine.
#
#   scripts/fuzz-long.sh [RUNS] [TARGET...]
set -euo pipefail
runs="${1:-10000000}"
shift $(($# > 0 ? 1 : 0))
exec "$(dirname "$0")/fuzz.sh" --runs "$runs" "$@"
