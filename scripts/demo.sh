#!/usr/bin/env bash
# README command 1: install what wgdp needs, build it, and run it on its
# embedded default. Until the concentrator lands, the embedded default is
# the DPDK smoke run: forwarding between two net_null vdevs on one worker
# lcore, then port statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec ./target/release/wgdp smoke "$@"
