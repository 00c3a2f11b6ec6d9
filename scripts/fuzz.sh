#!/usr/bin/env bash
# Runs wgdp's libFuzzer targets (fuzz/, cargo-fuzz) from the committed seed
# corpora and prints one line of figures per target:
#
#   fuzz TARGET runs N seconds S exec_per_s X corpus C crashes 0
#
#   scripts/fuzz.sh                      every target, 20 s each (CI)
#   scripts/fuzz.sh --seconds 60 uapi    one target, 60 s
#   scripts/fuzz.sh --runs 10000000      every target, 10M executions each
#                                        (scripts/fuzz-long.sh)
#
# Stable Rust: built with `cargo fuzz build -s none` (coverage
# instrumentation and libFuzzer, no sanitizer: wgdp's parsers are safe Rust
# and ASan needs nightly's -Zsanitizer). Debug assertions and overflow
# checks are on. A crash stops the run with a non-zero exit; libFuzzer
# leaves the input in fuzz/artifacts/TARGET/ (turn it into a regression
# test in the crate concerned). New corpus entries go to a scratch copy,
# not into the committed seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

SECONDS_EACH=20
RUNS=""
TARGETS=()
while (($#)); do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz.sh: cargo-fuzz is missing: scripts/install.sh installs it" >&2
    exit 1
fi
((${#TARGETS[@]})) || mapfile -t TARGETS < <(cargo fuzz list)

echo "==> cargo fuzz build -s none (${#TARGETS[@]} targets)"
cargo fuzz build -s none >/dev/null

scratch=$(mktemp -d /tmp/wgdp-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in "${TARGETS[@]}"; do
    corpus="$scratch/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    cp fuzz/corpus/"$t"/* "$corpus"/
    limit=(-max_total_time="$SECONDS_EACH")
    [[ -n "$RUNS" ]] && limit=(-runs="$RUNS")
    log="$scratch/$t.log"
    start=$(date +%s)
    rc=0
    cargo fuzz run -s none "$t" "$corpus" -- "${limit[@]}" -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1 || rc=$?
    secs=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    files=$(find "$corpus" -type f | wc -l)
    printf 'fuzz %s runs %s seconds %s exec_per_s %s corpus %s crashes %s\n' \
        "$t" "${runs:-?}" "$secs" "${rate:-?}" "$files" "$((rc != 0 ? 1 : 0))"
    if ((rc != 0)); then
        echo "fuzz.sh: $t failed (exit $rc); the last lines of its log:" >&2
        tail -40 "$log" >&2
        status=1
    fi
done
exit "$status"
