#!/usr/bin/env bash
# Installs everything wgdp needs on Debian 12 (as root), reserves hugepages,
# and builds the release binary. Idempotent: run it as often as you like.
#
#   scripts/install.sh              packages + hugepages + release build
#   scripts/install.sh --deps-only  packages + hugepages only
#
# Needs only Debian's repositories and crates.io, plus a Rust toolchain
# (rustup's stable; Debian 12's rustc 1.63 is too old).
set -euo pipefail

cd "$(dirname "$0")/.."
DEPS_ONLY=0
[[ "${1:-}" == "--deps-only" ]] && DEPS_ONLY=1

# The packages the project uses, one reason each.
PACKAGES=(
    build-essential    # cc for the DPDK shim
    pkg-config         # finds DPDK
    libdpdk-dev        # DPDK 22.11 LTS headers and libraries (and its PMDs)
    dpdk               # dpdk-hugepages.py, dpdk-devbind.py, dpdk-testpmd
    clang libclang-dev # bindgen
    libipsec-mb-dev    # Intel ipsec-mb: the AVX-512 ChaCha20-Poly1305 backend
    wireguard-tools    # wg: the standard tool, and the test peer's config
    wireguard-go       # the real WireGuard peer in end-to-end tests
    iperf3             # throughput through the tunnel
    tcpdump            # captures in tests and debugging
    iproute2 ethtool   # namespaces, veth, offload switches
    iputils-ping       # ping through the tunnel in end-to-end tests
    procps             # sysctl and kill in end-to-end tests
    git
)

log() { printf '==> %s\n' "$*"; }

if [[ $EUID -ne 0 ]]; then
    echo "install.sh: run as root (it installs packages and reserves hugepages)" >&2
    exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
    log "Debian packages already installed"
fi

if ! command -v cargo >/dev/null; then
    [[ -x "$HOME/.cargo/bin/cargo" ]] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    cat >&2 <<'MSG'
install.sh: no Rust toolchain found. Install rustup's stable toolchain:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
then run this script again.
MSG
    exit 1
fi
# fmt and clippy run in the test suite; a minimal rustup profile lacks them.
if command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null
fi
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if ((rustc_minor < 80)); then
    echo "install.sh: rustc $(rustc --version) is too old; wgdp needs 1.80 or newer (rustup update stable)" >&2
    exit 1
fi

# Hugepages: 256 x 2 MB, mounted at /dev/hugepages. A machine that cannot
# reserve them still builds and runs the test suite (tests use --no-huge).
want=256
have=$(cat /proc/sys/vm/nr_hugepages)
if ((have < want)); then
    echo "$want" > /proc/sys/vm/nr_hugepages || true
    have=$(cat /proc/sys/vm/nr_hugepages)
fi
if ! mountpoint -q /dev/hugepages; then
    mkdir -p /dev/hugepages
    mount -t hugetlbfs nodev /dev/hugepages || log "warning: could not mount hugetlbfs on /dev/hugepages"
fi
log "hugepages: $have x 2 MB reserved ($(grep -c hugetlbfs /proc/mounts) hugetlbfs mount(s))"

if ((DEPS_ONLY == 0)); then
    log "building the release binary"
    cargo build --release --locked
    log "built $(./target/release/wgdp --version)"
fi
