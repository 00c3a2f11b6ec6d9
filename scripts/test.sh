#!/usr/bin/env bash
# README command 2, and what .ci/run calls: installs the dependencies, then
# checks formatting, lints and import circles, and runs the whole test suite (EAL tests on
# vdevs, end-to-end tests in network namespaces: needs root), then builds the
# container image and runs wgdp from it (docker/test.sh --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --deps-only
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> no import circle among the files of dataplane and control"
scripts/import-cycles.py dataplane control
echo "==> tests"
if command -v cargo-nextest >/dev/null; then
    # One process per test: each test gets its own EAL.
    cargo nextest run --workspace --locked --no-fail-fast
else
    # One test at a time: the namespace tests must not overlap (nextest's
    # test groups in .config/nextest.toml do this where it is installed).
    cargo test --workspace --locked --no-fail-fast -- --test-threads=1
fi
# The benchmark in its short mode: figures only, no threshold (the figures
# of a debug build say little; BENCHMARKS.md has the release ones).
echo "==> per-stage cycle counters (dataplane feature stages)"
cargo test --locked -q -p dataplane --features stages --lib cycle_profile
echo "==> wgdp bench --short"
cargo run --locked -q -- bench --short
echo "==> wgdp bench --handshakes --short"
cargo run --locked -q -- bench --handshakes --short
echo "==> pktgen-dpdk against wgdp over memif: encap, decap, tunnel (bench/pktgen/run.sh --quick)"
# Builds pktgen (bench/pktgen/build.sh, from ../shared/vendor when present)
# and runs a short RFC 2544 search and an IMIX pass per case on the debug
# binary: one wgdp's encap and decap (1 and 1024 peers, handshakes by
# `wgdp bench-peers`), and wgdp A -> memif -> wgdp B; fails unless every
# case moved traffic.
WGDP_BIN=target/debug/wgdp bench/pktgen/run.sh --quick
echo "==> cluster of two wgdp instances behind ECMP, BGP by BIRD (scripts/cluster-demo.sh --test)"
# Fails unless every peer flows again after an instance is killed, the
# routes move in the LAN router, and no peer of the surviving instance
# moves (docs/cluster.md).
WGDP_BIN=target/debug/wgdp scripts/cluster-demo.sh --test
echo "==> fuzz seeds (fuzz/tests/seeds.rs)"
# The fuzz crate is its own workspace; its tests share the main target dir.
cargo test --manifest-path fuzz/Cargo.toml --locked --target-dir target
echo "==> fuzzing: every target briefly from its seeds (docs/fuzzing.md)"
scripts/fuzz.sh --seconds "${WGDP_FUZZ_SECONDS:-20}"
echo "==> container image: docker/test.sh --quick (docker/Dockerfile built and run)"
docker/test.sh --quick
