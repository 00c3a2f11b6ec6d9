#!/usr/bin/env bash
# README command 2, and what .ci/run calls: installs the dependencies, then
# checks formatting and lints, and runs the whole test suite (EAL tests on
# vdevs, end-to-end tests in network namespaces: needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh --deps-only
[[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> tests"
if command -v cargo-nextest >/dev/null; then
    # One process per test: each test gets its own EAL.
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
