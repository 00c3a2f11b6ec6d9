#!/usr/bin/env bash
# Builds the container image from docker/Dockerfile as a user would and runs
# wgdp from it (as root):
#
#   docker/test.sh          the full form: `docker build -f docker/Dockerfile .`
#                           (podman build where docker has no daemon), both
#                           stages, the release build with LTO included
#   docker/test.sh --quick  the CI form (scripts/test.sh): the same build of
#                           the same Dockerfile, except that its build stage
#                           is replaced by this host's debug binary
#                           (`--build-context build=DIR` with DIR holding
#                           src/target/release/wgdp, built by `cargo build`):
#                           the runtime stage, the image and every check
#                           below are the full form's
#
# Then, in containers of the image:
#   1. `wgdp --version`, `wgdp check` of the example tables the image ships,
#      `wgdp smoke` on net_null vdevs without hugepages;
#   2. the concentrator, as docker/compose.yaml runs it (host networking,
#      /dev/net/tun, the table and key in a volume at /etc/wgdp, the host's
#      /var/run/wireguard as a volume), with every capability dropped but
#      NET_ADMIN, against the demo topology's wireguard-go peers on the host
#      (tests/e2e/topology.sh, on its second set of networks): pings both
#      ways, iperf3 both ways, `wg show` on the host over the shared UAPI
#      socket, then SIGTERM (`$ENGINE stop`): exit 0 and `mbufs_in_use 0`.
#
# Base images: those the Dockerfile names are used when present and pulled
# when not; only when a pull fails does this script make local stand-ins
# (and says so): debian:12-slim from debootstrap (minbase, made slim like
# the real one), and the Rust image from that plus the toolchain installed
# here (rustc, cargo; the host's extra CA certificates so that cargo reaches
# crates.io through this machine's egress proxy). The stand-ins carry the
# label org.wgdp.stand-in and are reused by later runs.
#
# podman runs with runc and without default ulimits (CONTAINERS_CONF points
# at a file of this script's): crun refuses hybrid cgroups, and some hosts do
# not let a container runtime set rlimits. scripts/install.sh installs
# podman, runc and debootstrap.
#
# Environment: WGDP_IMAGE (the tag built, default wgdp:test).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
case "${1:-}" in
"") ;;
--quick) QUICK=1 ;;
*)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
[[ $EUID -eq 0 ]] || { echo "docker/test.sh: run as root" >&2; exit 1; }

IMAGE=${WGDP_IMAGE:-wgdp:test}
STAND_IN_LABEL=org.wgdp.stand-in
T0=$SECONDS
step() { printf '\n==> [%3ds] %s\n' $((SECONDS - T0)) "$*"; }
die() { printf 'docker/test.sh: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d /tmp/wgdp-docker.XXXXXX)
# Names unique to this run: topology suffix, UAPI interface, container.
SFX=c$(($$ % 100000))
export E2E_SFX=$SFX E2E_NETS=1 E2E_DIR=$WORK/e2e
IFNAME=wg$SFX
CTR=wgdp-test-$SFX
TOPO=tests/e2e/topology.sh
TOPO_UP=0 CTR_UP=0

cleanup() {
    local rc=$?
    if ((CTR_UP)); then
        "$ENGINE" rm -f -t 0 "$CTR" >/dev/null 2>&1 || true
    fi
    if ((TOPO_UP)); then
        "$TOPO" down >/dev/null 2>&1 || true
    fi
    rm -f "/var/run/wireguard/$IFNAME.sock"
    rm -rf "$WORK"
    ((rc == 0)) || echo "docker/test.sh failed (exit $rc)" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the engine ---------------------------------------------------------
if command -v docker >/dev/null && timeout 30 docker info >/dev/null 2>&1; then
    ENGINE=docker
elif command -v podman >/dev/null; then
    ENGINE=podman
    command -v runc >/dev/null || die "podman needs runc here (scripts/install.sh installs it)"
    cat >"$WORK/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
EOF
    export CONTAINERS_CONF=$WORK/containers.conf
else
    die "no container engine: neither a docker daemon nor podman (scripts/install.sh installs podman)"
fi
step "engine: $ENGINE ($("$ENGINE" --version))"

# --- base images --------------------------------------------------------
# The FROM images of the Dockerfile, with its ARG defaults substituted.
rust_version=$(sed -n 's/^ARG RUST_VERSION=//p' docker/Dockerfile)
mapfile -t BASES < <(awk '$1 == "FROM" {print $2}' docker/Dockerfile |
    sed "s/\${RUST_VERSION}/$rust_version/")
((${#BASES[@]} == 2)) || die "expected two FROM lines in docker/Dockerfile, got: ${BASES[*]}"
RUST_BASE=${BASES[0]} DEBIAN_BASE=${BASES[1]}
[[ $RUST_BASE == rust:* && $DEBIAN_BASE == debian:12-slim ]] ||
    die "docker/Dockerfile names $RUST_BASE and $DEBIAN_BASE: this script knows rust:* and debian:12-slim"

# The name a stand-in gets: podman looks short names up under localhost/.
local_name() { if [[ $ENGINE == podman ]]; then echo "localhost/$1"; else echo "$1"; fi; }

# Present (real or a stand-in of an earlier run) or pulled: 0; else 1.
have_or_pull() {
    local name=$1 label
    if "$ENGINE" image inspect "$name" >/dev/null 2>&1; then
        label=$("$ENGINE" image inspect --format "{{index .Config.Labels \"$STAND_IN_LABEL\"}}" "$name")
        if [[ -n $label && $label != "<no value>" ]]; then
            echo "$name: the local stand-in made by an earlier run ($label)"
        else
            echo "$name: present"
        fi
        return 0
    fi
    # podman resolves only some short names (aliases): pull Docker Hub's.
    local remote=$name
    [[ $ENGINE == podman && $name != */* ]] && remote=docker.io/library/$name
    echo "$name: pulling $remote"
    if timeout 300 "$ENGINE" pull "$remote" >"$WORK/pull.log" 2>&1; then
        echo "$name: pulled"
        return 0
    fi
    echo "$name: cannot be pulled ($(tail -n 1 "$WORK/pull.log"))"
    return 1
}

# debian:12-slim: debootstrap minbase of bookworm, with what the real slim
# image leaves out (documentation, man pages, locales, apt lists and cache)
# removed and kept out by the same dpkg path excludes.
make_debian_stand_in() {
    local root=$WORK/debian
    command -v debootstrap >/dev/null || die "debootstrap missing (scripts/install.sh installs it)"
    echo "making a LOCAL STAND-IN for $DEBIAN_BASE: debootstrap --variant=minbase bookworm"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
        die "debootstrap failed: $(tail -n 3 "$WORK/debootstrap.log")"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/{groff,info,linda,locale,man}/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*
    tar -C "$root" -c . | "$ENGINE" import \
        --change "LABEL $STAND_IN_LABEL=debootstrap-minbase-bookworm" \
        --change 'CMD ["bash"]' - "$(local_name "$DEBIAN_BASE")" >/dev/null
    rm -rf "$root"
    echo "$DEBIAN_BASE: stand-in $(local_name "$DEBIAN_BASE") made"
}

# The Rust image (rust:V-slim-bookworm): the debian stand-in, the packages
# the real image adds (ca-certificates gcc libc6-dev), and this host's
# toolchain V under RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo
# as in the real image.
make_rust_stand_in() {
    local ctx=$WORK/rust sysroot tc have_version f
    command -v rustc >/dev/null || [[ -x $HOME/.cargo/bin/rustc ]] ||
        die "no Rust toolchain here to make a stand-in for $RUST_BASE from"
    [[ -x $HOME/.cargo/bin/rustc ]] && export PATH="$HOME/.cargo/bin:$PATH"
    have_version=$(rustc --version | awk '{print $2}')
    [[ $have_version == "$rust_version" || $have_version == "$rust_version".* ]] ||
        die "the stand-in for $RUST_BASE needs rustc $rust_version; this host has $have_version"
    sysroot=$(rustc --print sysroot)
    tc=$(basename "$sysroot")
    echo "making a LOCAL STAND-IN for $RUST_BASE: $DEBIAN_BASE + this host's toolchain $tc (rustc $have_version)"
    mkdir -p "$ctx/rustup/toolchains/$tc" "$ctx/cargo/bin" "$ctx/ca"
    tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$ctx/rustup/toolchains/$tc" -x
    printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$tc" >"$ctx/rustup/settings.toml"
    cp "$(command -v rustup)" "$ctx/cargo/bin/rustup"
    for f in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt rust-gdb rust-lldb; do
        ln -s rustup "$ctx/cargo/bin/$f"
    done
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        echo "  with this host's extra CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
        cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/"
    fi
    cat >"$ctx/Containerfile" <<EOF
FROM $(local_name "$DEBIAN_BASE")
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo RUST_VERSION=$have_version \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL $STAND_IN_LABEL="$DEBIAN_BASE stand-in + host toolchain $tc"
EOF
    "$ENGINE" build -q -f "$ctx/Containerfile" -t "$(local_name "$RUST_BASE")" "$ctx" >/dev/null
    rm -rf "$ctx"
    echo "$RUST_BASE: stand-in $(local_name "$RUST_BASE") made"
}

step "base images"
have_or_pull "$DEBIAN_BASE" || make_debian_stand_in
if ((QUICK)); then
    echo "$RUST_BASE: not needed (--quick replaces the build stage)"
else
    have_or_pull "$RUST_BASE" || make_rust_stand_in
fi

# --- the image ----------------------------------------------------------
BUILD_ARGS=(build -f docker/Dockerfile -t "$IMAGE")
# podman's default OCI format drops HEALTHCHECK; docker's keeps it.
[[ $ENGINE == podman ]] && BUILD_ARGS+=(--format docker)
if ((QUICK)); then
    [[ -x $HOME/.cargo/bin/cargo ]] && export PATH="$HOME/.cargo/bin:$PATH"
    step "--quick: the build stage is this host's debug binary (cargo build --locked)"
    cargo build --locked -q --bin wgdp
    mkdir -p "$WORK/build/src/target/release"
    cp target/debug/wgdp "$WORK/build/src/target/release/wgdp"
    BUILD_ARGS+=(--build-context "build=$WORK/build")
fi
step "$ENGINE ${BUILD_ARGS[*]} ."
t_build=$SECONDS
"$ENGINE" "${BUILD_ARGS[@]}" . 2>&1 | sed -u 's/^/    /'
size=$("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE")
echo "built $IMAGE in $((SECONDS - t_build)) s; image size $((size / 1000000)) MB ($size bytes)"

# --- wgdp in the container ----------------------------------------------
# A test key for the example tables (they read /etc/wgdp/private.key).
mkdir -p "$WORK/key"
(umask 077 && wg genkey >"$WORK/key/private.key")
# One-shot runs: no health checks (podman schedules them through systemd).
ONESHOT=(run --rm)
[[ $ENGINE == podman ]] && ONESHOT+=(--no-healthcheck)
# in_image [ENGINE OPTIONS --] WGDP ARGS
in_image() {
    local opts=()
    if [[ " $* " == *" -- "* ]]; then
        while [[ $1 != -- ]]; do opts+=("$1"); shift; done
        shift
    fi
    "$ENGINE" "${ONESHOT[@]}" -v "$WORK/key:/etc/wgdp:ro" "${opts[@]}" "$IMAGE" "$@"
}

step "wgdp --version"
in_image --version
step "wgdp check: the example tables in /usr/share/doc/wgdp/examples"
# Each names /etc/wgdp/private.key or private.key beside itself: the test key
# is mounted at both.
for t in "example.toml:ok: 2 peers, 3 allowed-ip prefixes, 2 workers" \
    "mlx5-100g.toml:ok: 2 peers, 3 allowed-ip prefixes, 16 workers"; do
    in_image -v "$WORK/key/private.key:/usr/share/doc/wgdp/examples/private.key:ro" -- \
        check --config "/usr/share/doc/wgdp/examples/${t%%:*}" >"$WORK/check.out"
    sed 's/^/    /' "$WORK/check.out"
    grep -q ": ${t#*:}\$" "$WORK/check.out" || die "wgdp check ${t%%:*}: expected '${t#*:}'"
done
step "wgdp smoke: two net_null vdevs, no hugepages"
in_image smoke --seconds 1 --eal "-l 0-1 --no-huge --no-shconf -m 256 --no-pci"
# The same on hugepages, through the host's hugetlbfs as a volume (what
# compose.yaml gives the concentrator), with no capability at all.
free=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo)
if mountpoint -q /dev/hugepages && ((free >= 64)); then
    step "wgdp smoke on hugepages: /dev/hugepages as a volume, --cap-drop ALL"
    in_image --cap-drop ALL -v /dev/hugepages:/dev/hugepages -- smoke --seconds 1 \
        --eal "-l 0-1 --huge-unlink --no-pci --file-prefix wgdp-docker-$SFX -m 64"
else
    step "wgdp smoke on hugepages: SKIPPED, no hugetlbfs at /dev/hugepages or under 64 free pages ($free)"
fi

# --- the concentrator in a container --------------------------------------
step "topology: wireguard-go peers on the host ($TOPO up, E2E_NETS=1, suffix $SFX)"
TOPO_UP=1
"$TOPO" up
eval "$("$TOPO" env)"
# The table as compose.yaml's /etc/wgdp: its key next to it, a UAPI name of
# this run's.
mkdir -p "$WORK/etc"
install -m 600 "$DIR/wgdp.key" "$WORK/etc/private.key"
"$TOPO" config | sed -e "s|^private_key_file = .*|private_key_file = \"/etc/wgdp/private.key\"|" \
    -e "s/^\[interface\]$/[interface]\nname = \"$IFNAME\"/" >"$WORK/etc/wgdp.toml"
mkdir -p /var/run/wireguard

# What docker/compose.yaml's `wgdp` service gives the container, less what
# vdevs do not use (the NIC's device files, hugepages: the table runs EAL
# with --no-huge) and the memlock limit (this host refuses to raise it).
# The CPU set is the table's lcores (--lcores=0@0,1@1).
RUN_ARGS=(--network host --device /dev/net/tun --cpuset-cpus 0-1
    -v "$WORK/etc:/etc/wgdp" -v /var/run/wireguard:/var/run/wireguard
    --stop-signal SIGTERM -e RUST_LOG=info)

# compose.yaml's `setup` service first: it prepares the host for the table
# (here: checks only; a vdev table has no NIC to bind and no hugepages).
SETUP_ARGS=(--privileged --network host -v /sys:/sys -v /dev:/dev)
[[ -d /lib/modules ]] && SETUP_ARGS+=(-v /lib/modules:/lib/modules:ro)
step "the setup service: $ENGINE run ${SETUP_ARGS[*]} $IMAGE setup"
"$ENGINE" "${ONESHOT[@]}" "${SETUP_ARGS[@]}" -v "$WORK/etc:/etc/wgdp:ro" "$IMAGE" \
    setup --config /etc/wgdp/wgdp.toml | sed 's/^/    /'

# NET_ADMIN is needed: without it the TAP ports cannot be created.
step "without NET_ADMIN (--cap-drop ALL): wgdp must fail to create its TAP ports"
if "$ENGINE" "${ONESHOT[@]}" "${RUN_ARGS[@]}" --cap-drop ALL "$IMAGE" \
    run --config /etc/wgdp/wgdp.toml >"$WORK/nocap.log" 2>&1; then
    die "wgdp ran without NET_ADMIN: the documented capability set is not minimal"
fi
grep -E 'TUNSETIFF|wgdp:' "$WORK/nocap.log" | sed 's/^/    /'
grep -q 'Unable to set TUNSETIFF.*Operation not permitted' "$WORK/nocap.log" ||
    die "wgdp without NET_ADMIN failed for another reason than the TAP ports"

RUN_ARGS=(run -d --name "$CTR" "${RUN_ARGS[@]}" --cap-drop ALL --cap-add NET_ADMIN)
step "$ENGINE ${RUN_ARGS[*]} $IMAGE run --config /etc/wgdp/wgdp.toml"
CTR_UP=1
# (podman without systemd cannot time health checks, and says so: that
# message is left out; the check is run by hand below.)
no_timer_noise() { grep -v 'systemd connection' >&2 || true; }
"$ENGINE" "${RUN_ARGS[@]}" "$IMAGE" run --config /etc/wgdp/wgdp.toml >/dev/null 2> >(no_timer_noise)
# Its log, into a file: `logs | grep -q` would fail under pipefail once grep
# quits early and the writer gets SIGPIPE.
running() {
    "$ENGINE" logs "$CTR" >"$WORK/wgdp.log" 2>&1 || true
    grep -q '^wgdp: running' "$WORK/wgdp.log"
}
for ((i = 0; i < 300; i++)); do
    running && break
    [[ $("$ENGINE" inspect --format '{{.State.Running}}' "$CTR") == true ]] || break
    sleep 0.1
done
if ! running; then
    sed 's/^/    wgdp | /' "$WORK/wgdp.log"
    die "wgdp in the container did not print 'wgdp: running' within 30 s"
fi
"$TOPO" attach

step "ping $NS_LAN -> peer 1 ($PEER1_IP): wgdp initiates the handshake"
ip netns exec "$NS_LAN" ping -n -c 3 -i 0.2 -w 10 "$PEER1_IP"
step "ping peer 2 ($NS_WAN2, $PEER2_IP) -> $NS_LAN ($LAN_IP): the peer initiates"
ip netns exec "$NS_WAN2" ping -n -c 3 -i 0.2 -w 10 "$LAN_IP"

iperf() { # server-ns server-ip client-ns
    local spid
    ip netns exec "$1" iperf3 -s -1 -B "$2" </dev/null >/dev/null 2>&1 &
    spid=$!
    for ((i = 0; i < 50; i++)); do
        [[ -n $(ip netns exec "$1" ss -Hltn sport = :5201) ]] && break
        sleep 0.1
    done
    ip netns exec "$3" iperf3 -c "$2" -t 2 -f m | grep -E 'sender|receiver' | sed 's/^/    /'
    wait "$spid"
}
step "iperf3 TCP 2 s: $NS_LAN -> peer 1, then peer 1 -> $NS_LAN"
iperf "$NS_WAN" "$PEER1_IP" "$NS_LAN"
iperf "$NS_LAN" "$LAN_IP" "$NS_WAN"

step "wg show $IFNAME on the host, over the UAPI socket in the shared /var/run/wireguard"
wg show "$IFNAME" | tee "$WORK/wg-show"
for p in "$PEER1_PUB" "$PEER2_PUB"; do
    block=$(grep -A4 "^peer: $p" "$WORK/wg-show" || true)
    [[ $block == *"latest handshake"* ]] || die "wg show: no handshake with peer $p"
done

step "the image's HEALTHCHECK (wgdp show over the UAPI socket)"
if [[ $ENGINE == podman ]]; then
    podman healthcheck run "$CTR" || die "podman healthcheck run: unhealthy"
    echo "    healthy"
else
    docker exec "$CTR" wgdp show --config /etc/wgdp/wgdp.toml >/dev/null || die "wgdp show failed"
    echo "    healthy"
fi

step "SIGTERM ($ENGINE stop): a clean exit with every mbuf back"
# compose.yaml's stop_grace_period: 15 s before SIGKILL.
"$ENGINE" stop -t 15 "$CTR" >/dev/null 2> >(no_timer_noise)
code=$("$ENGINE" inspect --format '{{.State.ExitCode}}' "$CTR")
"$ENGINE" logs "$CTR" >"$WORK/wgdp.log" 2>&1
grep -E '^mbufs_in_use|^wgdp:' "$WORK/wgdp.log" | sed 's/^/    /'
[[ $code == 0 ]] || { sed 's/^/    wgdp | /' "$WORK/wgdp.log"; die "wgdp exited $code"; }
grep -qx 'mbufs_in_use 0' "$WORK/wgdp.log" || die "no 'mbufs_in_use 0' in wgdp's log"

step "done in $((SECONDS - T0)) s: $IMAGE ($((size / 1000000)) MB) builds and runs the concentrator"
