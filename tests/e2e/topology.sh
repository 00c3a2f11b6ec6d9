#!/usr/bin/env bash
# The network namespaces wgdp's end-to-end test (tests/e2e.rs) and demo
# (scripts/demo.sh) run in. One source of names, addresses, keys and config
# for both. Run as root.
#
#   topology.sh up       keys (wgdp + two peers), namespaces lan/wan/wan2, the
#                        wan<->wan2 veth, and the two wireguard-go peers. Run it
#                        BEFORE wgdp starts: the config needs the peers' keys.
#   topology.sh config   print wgdp's TOML config (after `up`)
#   topology.sh attach   move wgdp's kernel TAP ends into wan and lan, with
#                        addresses and routes. Run it AFTER `wgdp: running`.
#   topology.sh env      print the names, addresses, keys and PIDs as KEY=VALUE
#   topology.sh status   show what is up
#   topology.sh down     kill what `up` started (by PID), delete the
#                        namespaces and the state directory. Idempotent.
#
#            root namespace                 ns wan                       ns wan2
#   +-------------------------+   +--------------------------+   +------------------+
#   | wgdp (DPDK)             |   | wgdp-wan0 203.0.113.2/24 |   | 198.51.100.2/24  |
#   |  tunnel port net_tap0 --+---+  ip_forward=1            |   |  default via .1  |
#   |  plaintext   net_tap1 --+-+ |  198.51.100.1/24 --------+---+--                |
#   |  exception TAPs         | | |  wireguard-go wg<sfx>a   |   | wireguard-go     |
#   |  wgdp-tun 203.0.113.1/24| | |  peer 1: 10.9.0.2/32     |   |  wg<sfx>b peer 2 |
#   |  wgdp-pt  10.0.0.1/24   | | |  :51821, endpoint wgdp   |   |  10.9.0.3/32     |
#   +-------------------------+ | +--------------------------+   |  :51822          |
#                               |   ns lan                       +------------------+
#                               | +--------------------------------------------+
#                               +-+ wgdp-lan0 10.0.0.2/24 mtu 1420             |
#                                 |  10.9.0.0/24 via 10.0.0.1 (the peers)      |
#                                 |  10.55.0.0/24 via 10.0.0.1 (no peer: drop) |
#                                 +--------------------------------------------+
#
# The tunnel network is 203.0.113.0/24 (TEST-NET-3), not 192.0.2.0/24: on the
# test machine 192.0.2.0/24 is eth0's own network (eth0 192.0.2.2, default
# gateway 192.0.2.1), and wgdp's exception TAP lives in the root namespace: a
# root-namespace interface carrying 192.0.2.1 would shadow the gateway and
# answer ARP for it on eth0. `up` refuses to run if the root namespace already
# has an address or route inside any of the test networks.
#
# Environment:
#   E2E_SFX  name suffix, [a-z0-9]{0,6} (default empty): namespaces become
#            lan-SFX/wan-SFX/wan2-SFX, interfaces wgdp-wan0SFX, wgSFXa, ...
#            so that parallel runs never share a name.
#   E2E_DIR  state directory: keys, PID files, wireguard-go logs
#            (default /tmp/wgdp-e2e[-SFX]). `down` removes it.
#   E2E_PEERS    wireguard-go peers, 2..8 (default 2). Peers 3.. run in wan
#            beside peer 1: interfaces wgSFXc, wgSFXd, ..., addresses
#            10.9.0.4, 10.9.0.5, ..., ports 51823, 51824, ..., each with an
#            endpoint in wgdp's config (wgdp initiates). Their route to the
#            LAN is chosen by source address (ip rule from 10.9.0.N).
#   E2E_NETS     0 (default): the networks above; 1: 172.31.113.0/24 (tunnel),
#            10.100.0.0/24 (LAN), 172.31.100.0/24 (wan2), 10.109.0.0/24
#            (peers), 10.155.0.0/24 (unknown), for a run beside the tests.
#   E2E_WORKERS  wgdp worker lcores, 1 up to this machine's CPUs (`nproc`;
#            net_tap's 16 queues at most) (default 1): worker lcore i runs
#            on CPU i mod nproc, the main lcore on CPU 0 (so with as many
#            workers as CPUs the last shares CPU 0 with the main lcore).
#            With N workers both ports get N queues and the kernel picks
#            the TAP queue per flow.
#   Give `up`, `config`, `env` and `down` the same values.
set -euo pipefail

SFX=${E2E_SFX:-}
if ! [[ $SFX =~ ^[a-z0-9]{0,6}$ ]]; then
    echo "topology.sh: E2E_SFX must match [a-z0-9]{0,6} (interface names have 15 characters)" >&2
    exit 2
fi
DIR=${E2E_DIR:-/tmp/wgdp-e2e${SFX:+-$SFX}}
MARKER=.wgdp-e2e-topology

# Names.
NS_LAN=lan${SFX:+-$SFX}
NS_WAN=wan${SFX:+-$SFX}
NS_WAN2=wan2${SFX:+-$SFX}
TAP_WAN=wgdp-wan0$SFX   # kernel end of wgdp's tunnel port (net_tap0)
TAP_LAN=wgdp-lan0$SFX   # kernel end of wgdp's plaintext port (net_tap1)
EXC_TUN=wgdp-tun$SFX    # wgdp's exception TAP of the tunnel port
EXC_PT=wgdp-pt$SFX      # wgdp's exception TAP of the plaintext port
WG1=wg${SFX}a           # peer 1 (wan); unique: the UAPI socket path is global
WG2=wg${SFX}b           # peer 2 (wan2)
VETH_WAN=veth-w$SFX
VETH_WAN2=veth-x$SFX
FILE_PREFIX=wgdp-e2e$SFX
PEERS=${E2E_PEERS:-2}
WORKERS=${E2E_WORKERS:-1}
CPUS=$(nproc)
MAX_WORKERS=$((CPUS < 16 ? CPUS : 16))
if ! [[ $PEERS =~ ^[2-8]$ ]]; then
    echo "topology.sh: E2E_PEERS must be 2..8" >&2
    exit 2
fi
if ! [[ $WORKERS =~ ^[1-9][0-9]*$ ]] || ((WORKERS > MAX_WORKERS)); then
    echo "topology.sh: E2E_WORKERS must be 1..$MAX_WORKERS (this machine has $CPUS CPUs, net_tap 16 queues at most)" >&2
    exit 2
fi
LETTERS=(_ a b c d e f g h)
# Peer i >= 3: interface, address, port.
peer_if() { echo "wg${SFX}${LETTERS[$1]}"; }

peer_port() { echo $((51820 + $1)); }

# Addresses: the /24s of the diagram, or with E2E_NETS=1 a second set, so
# that a long run (scripts/soak.sh) and the tests can be up at once (wgdp's
# exception TAPs put the tunnel and LAN networks in the root namespace).
case ${E2E_NETS:-0} in
0) NET_WAN=203.0.113 NET_LAN=10.0.0 NET_WAN2=198.51.100 NET_PEERS=10.9.0 NET_UNKNOWN=10.55.0 ;;
1) NET_WAN=172.31.113 NET_LAN=10.100.0 NET_WAN2=172.31.100 NET_PEERS=10.109.0 NET_UNKNOWN=10.155.0 ;;
*) echo "topology.sh: E2E_NETS is 0 or 1" >&2; exit 2 ;;
esac
peer_ip() { echo "$NET_PEERS.$(($1 + 1))"; }
WAN_NET=$NET_WAN.0/24
WGDP_WAN_IP=$NET_WAN.1
WAN_IP=$NET_WAN.2
LAN_NET=$NET_LAN.0/24
WGDP_LAN_IP=$NET_LAN.1
LAN_IP=$NET_LAN.2
LAN_MTU=1420
WAN2_NET=$NET_WAN2.0/24
WAN_WAN2_IP=$NET_WAN2.1
WAN2_IP=$NET_WAN2.2
PEER_NET=$NET_PEERS.0/24
PEER1_IP=$(peer_ip 1)
PEER2_IP=$(peer_ip 2)
UNKNOWN_NET=$NET_UNKNOWN.0/24
UNKNOWN_IP=$NET_UNKNOWN.1
WGDP_PORT=51820
PEER1_PORT=51821
PEER2_PORT=51822

log() { printf 'topology: %s\n' "$*" >&2; }
die() {
    printf 'topology.sh: %s\n' "$*" >&2
    exit 1
}

need_root_and_tools() {
    [[ $EUID -eq 0 ]] || die "run as root (it creates network namespaces)"
    local t missing=()
    for t in ip wg wireguard-go ethtool ping iperf3 sysctl; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (scripts/install.sh --deps-only installs them)"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }
nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}
offloads_off() { nsx "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true; }

# Kills one PID we started, if it is still the program we started.
kill_pid() {
    local pid=$1 comm=${2:-} i
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    [[ -d /proc/$pid ]] || return 0
    if [[ -n $comm && "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$comm" ]]; then
        return 0 # the PID was reused by something else
    fi
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Refuses to shadow a network the root namespace already uses.
check_root_namespace_free() {
    local net used
    for net in "$WAN_NET" "$LAN_NET" "$WAN2_NET" "$PEER_NET" "$UNKNOWN_NET"; do
        used=$(ip -4 route show root "$net" table all 2>/dev/null | grep -v '^local\|^broadcast' || true)
        used+=$(ip -4 -o addr show to "$net" 2>/dev/null || true)
        [[ -z $used ]] || die "the root namespace already uses $net; refusing to shadow it:
$used"
    done
}

# The route to the LAN goes through the peer's interface: in the main table
# for the first peer of a namespace; for peers 3.., which share wan with
# peer 1, in a table of their own chosen by source address (ping -I,
# iperf3 -B, a socket bound to the peer's address).
start_peer() { # ns ifname keyfile listen-port address [table]
    local ns=$1 ifc=$2 key=$3 port=$4 addr=$5 table=${6:-} i
    [[ -e /var/run/wireguard/$ifc.sock ]] && die "/var/run/wireguard/$ifc.sock exists: another wireguard-go uses $ifc (E2E_SFX?)"
    LOG_LEVEL=verbose ip netns exec "$ns" wireguard-go -f "$ifc" </dev/null >"$DIR/$ifc.log" 2>&1 &
    echo $! >"$DIR/$ifc.pid"
    for ((i = 0; i < 100; i++)); do
        [[ -S /var/run/wireguard/$ifc.sock ]] && break
        [[ -d /proc/$(cat "$DIR/$ifc.pid") ]] || die "wireguard-go $ifc exited: $(cat "$DIR/$ifc.log")"
        sleep 0.1
    done
    [[ -S /var/run/wireguard/$ifc.sock ]] || die "wireguard-go $ifc: no UAPI socket after 10 s: $(cat "$DIR/$ifc.log")"
    nsx "$ns" wg set "$ifc" private-key "$DIR/$key" listen-port "$port" \
        peer "$(cat "$DIR/wgdp.pub")" endpoint "$WGDP_WAN_IP:$WGDP_PORT" allowed-ips "$LAN_NET"
    ip -n "$ns" addr add "$addr/32" dev "$ifc"
    ip -n "$ns" link set "$ifc" up
    if [[ -z $table ]]; then
        ip -n "$ns" route add "$LAN_NET" dev "$ifc"
    else
        ip -n "$ns" route add "$LAN_NET" dev "$ifc" table "$table"
        ip -n "$ns" rule add from "$addr" table "$table"
    fi
}

cmd_up() {
    need_root_and_tools
    local ns
    for ns in "$NS_LAN" "$NS_WAN" "$NS_WAN2"; do
        ns_exists "$ns" && die "namespace $ns exists: run 'topology.sh down' first (same E2E_SFX)"
    done
    check_root_namespace_free
    mkdir -p "$DIR"
    chmod 700 "$DIR"
    touch "$DIR/$MARKER"

    log "keys in $DIR"
    local k
    for k in wgdp $(seq -f 'peer%g' 1 "$PEERS"); do
        (umask 077 && wg genkey >"$DIR/$k.key")
        wg pubkey <"$DIR/$k.key" >"$DIR/$k.pub"
    done

    log "namespaces $NS_LAN $NS_WAN $NS_WAN2"
    for ns in "$NS_LAN" "$NS_WAN" "$NS_WAN2"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # IPv4 only: no router solicitations or MLD reports in the counters.
        nsx "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    done
    nsx "$NS_WAN" sysctl -qw net.ipv4.ip_forward=1

    ip link add "$VETH_WAN" netns "$NS_WAN" type veth peer name "$VETH_WAN2" netns "$NS_WAN2"
    offloads_off "$NS_WAN" "$VETH_WAN"
    offloads_off "$NS_WAN2" "$VETH_WAN2"
    ip -n "$NS_WAN" addr add "$WAN_WAN2_IP/24" dev "$VETH_WAN"
    ip -n "$NS_WAN2" addr add "$WAN2_IP/24" dev "$VETH_WAN2"
    ip -n "$NS_WAN" link set "$VETH_WAN" up
    ip -n "$NS_WAN2" link set "$VETH_WAN2" up
    ip -n "$NS_WAN2" route add default via "$WAN_WAN2_IP"

    log "wireguard-go $WG1 in $NS_WAN (peer 1), $WG2 in $NS_WAN2 (peer 2)"
    start_peer "$NS_WAN" "$WG1" peer1.key "$PEER1_PORT" "$PEER1_IP"
    start_peer "$NS_WAN2" "$WG2" peer2.key "$PEER2_PORT" "$PEER2_IP"
    local i
    for ((i = 3; i <= PEERS; i++)); do
        log "wireguard-go $(peer_if $i) in $NS_WAN (peer $i)"
        start_peer "$NS_WAN" "$(peer_if $i)" "peer$i.key" "$(peer_port $i)" "$(peer_ip $i)" $((100 + i))
    done
    log "up; start wgdp with the output of 'topology.sh config', then 'topology.sh attach'"
}

cmd_attach() {
    need_root_and_tools
    ns_exists "$NS_WAN" && ns_exists "$NS_LAN" || die "namespaces missing: run 'topology.sh up' first"
    local ifc ns pair
    for pair in "$TAP_WAN:$NS_WAN" "$TAP_LAN:$NS_LAN"; do
        ifc=${pair%%:*} ns=${pair#*:}
        if ip -n "$ns" link show dev "$ifc" >/dev/null 2>&1; then
            continue # attached already
        fi
        ip link show dev "$ifc" >/dev/null 2>&1 ||
            die "no interface $ifc in the root namespace: is wgdp running (it creates it)?"
        ip link set dev "$ifc" netns "$ns"
    done
    # A net_tap device's kernel side starts with the DPDK port's own MAC
    # (a NIC's far end never does): give each far end its own, or wgdp
    # rightly ignores their ARP as its own frames.
    ip -n "$NS_WAN" link set "$TAP_WAN" address 02:00:00:00:0b:02
    ip -n "$NS_LAN" link set "$TAP_LAN" address 02:00:00:00:0a:02
    offloads_off "$NS_WAN" "$TAP_WAN"
    ip -n "$NS_WAN" addr replace "$WAN_IP/24" dev "$TAP_WAN"
    ip -n "$NS_WAN" link set "$TAP_WAN" up

    offloads_off "$NS_LAN" "$TAP_LAN"
    ip -n "$NS_LAN" link set "$TAP_LAN" mtu "$LAN_MTU"
    ip -n "$NS_LAN" addr replace "$LAN_IP/24" dev "$TAP_LAN"
    ip -n "$NS_LAN" link set "$TAP_LAN" up
    ip -n "$NS_LAN" route replace "$PEER_NET" via "$WGDP_LAN_IP" dev "$TAP_LAN"
    ip -n "$NS_LAN" route replace "$UNKNOWN_NET" via "$WGDP_LAN_IP" dev "$TAP_LAN"
    log "attached $TAP_WAN to $NS_WAN, $TAP_LAN to $NS_LAN"
}

cmd_config() {
    # Main lcore 0 on CPU 0; worker lcore i on CPU i mod nproc.
    local LCORES="0@0" WORKER_LIST="" i
    for ((i = 1; i <= WORKERS; i++)); do
        LCORES+=",$i@$((i % CPUS))"
        WORKER_LIST+="${WORKER_LIST:+, }$i"
    done
    [[ -f $DIR/wgdp.key && -f $DIR/peer1.pub && -f $DIR/peer2.pub ]] ||
        die "no keys in $DIR: run 'topology.sh up' first"
    cat <<EOF
# wgdp config for the end-to-end topology (tests/e2e/topology.sh config)
[interface]
private_key_file = "$DIR/wgdp.key"
listen_port = $WGDP_PORT

[dpdk]
eal_args = ["--lcores=$LCORES", "--no-huge", "--no-shconf", "-m", "512", "--no-pci", "--file-prefix=$FILE_PREFIX"]
workers = [$WORKER_LIST]
idle_sleep_us = 50
idle_polls = 256

[ports.tunnel]
device = "net_tap0,iface=$TAP_WAN"
address = ["$WGDP_WAN_IP/24"]
gateway = "$WAN_IP"
mtu = 1500
tap = "$EXC_TUN"

[ports.plaintext]
device = "net_tap1,iface=$TAP_LAN"
address = ["$WGDP_LAN_IP/24"]
mtu = $LAN_MTU
tap = "$EXC_PT"

# peer 1: wireguard-go in $NS_WAN; wgdp initiates
[[peers]]
public_key = "$(cat "$DIR/peer1.pub")"
endpoint = "$WAN_IP:$PEER1_PORT"
allowed_ips = ["$PEER1_IP/32"]

# peer 2: wireguard-go in $NS_WAN2, behind $NS_WAN; no endpoint: it initiates
[[peers]]
public_key = "$(cat "$DIR/peer2.pub")"
allowed_ips = ["$PEER2_IP/32"]
EOF
    local i
    for ((i = 3; i <= PEERS; i++)); do
        cat <<EOF

# peer $i: wireguard-go in $NS_WAN; wgdp initiates
[[peers]]
public_key = "$(cat "$DIR/peer$i.pub")"
endpoint = "$WAN_IP:$(peer_port $i)"
allowed_ips = ["$(peer_ip $i)/32"]
EOF
    done
}

cmd_env() {
    local v
    for v in SFX DIR NS_LAN NS_WAN NS_WAN2 TAP_WAN TAP_LAN EXC_TUN EXC_PT WG1 WG2 \
        VETH_WAN VETH_WAN2 FILE_PREFIX WAN_NET WGDP_WAN_IP WAN_IP LAN_NET WGDP_LAN_IP \
        LAN_IP LAN_MTU WAN2_NET WAN_WAN2_IP WAN2_IP PEER_NET PEER1_IP PEER2_IP \
        UNKNOWN_NET UNKNOWN_IP WGDP_PORT PEER1_PORT PEER2_PORT; do
        printf '%s=%s\n' "$v" "${!v}"
    done
    for v in wgdp peer1 peer2; do
        [[ -f $DIR/$v.pub ]] && printf '%s_PUB=%s\n' "${v^^}" "$(cat "$DIR/$v.pub")"
    done
    [[ -f $DIR/$WG1.pid ]] && printf 'WG1_PID=%s\n' "$(cat "$DIR/$WG1.pid")"
    [[ -f $DIR/$WG2.pid ]] && printf 'WG2_PID=%s\n' "$(cat "$DIR/$WG2.pid")"
    printf 'PEERS=%s\nWORKERS=%s\n' "$PEERS" "$WORKERS"
    local i
    for ((i = 3; i <= PEERS; i++)); do
        printf 'WG%s=%s\nPEER%s_IP=%s\nPEER%s_PORT=%s\n' "$i" "$(peer_if $i)" "$i" "$(peer_ip $i)" "$i" "$(peer_port $i)"
        [[ -f $DIR/peer$i.pub ]] && printf 'PEER%s_PUB=%s\n' "$i" "$(cat "$DIR/peer$i.pub")"
    done
    return 0
}

cmd_status() {
    local ns
    for ns in "$NS_LAN" "$NS_WAN" "$NS_WAN2"; do
        if ns_exists "$ns"; then
            echo "== $ns (pids: $(ip netns pids "$ns" | tr '\n' ' '))"
            ip -n "$ns" -br addr
            ip -n "$ns" route
        else
            echo "== $ns: absent"
        fi
    done
    ns_exists "$NS_WAN" && nsx "$NS_WAN" wg show "$WG1" 2>/dev/null || true
    ns_exists "$NS_WAN2" && nsx "$NS_WAN2" wg show "$WG2" 2>/dev/null || true
    local ifc
    for ifc in "$TAP_WAN" "$TAP_LAN" "$EXC_TUN" "$EXC_PT"; do
        ip -br addr show dev "$ifc" 2>/dev/null || true
    done
}

cmd_down() {
    [[ $EUID -eq 0 ]] || die "run as root"
    local ifc ns pid
    local extra=() i
    for ((i = 3; i <= PEERS; i++)); do extra+=("$(peer_if $i)"); done
    for ifc in "$WG1" "$WG2" "${extra[@]}"; do
        [[ -f $DIR/$ifc.pid ]] && kill_pid "$(cat "$DIR/$ifc.pid")" wireguard-go
    done
    for ns in "$NS_LAN" "$NS_WAN" "$NS_WAN2"; do
        ns_exists "$ns" || continue
        # Anything still running inside (an iperf3 left over): ours, by construction.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill_pid "$pid"
        done
        ip netns del "$ns"
    done
    for ifc in "$WG1" "$WG2" "${extra[@]}"; do
        rm -f "/var/run/wireguard/$ifc.sock"
    done
    # Leftover TAP interfaces (a killed run), persistent ones: wgdp's own
    # TAPs disappear with its process.
    for ifc in "$TAP_WAN" "$TAP_LAN"; do
        ip link show dev "$ifc" >/dev/null 2>&1 && ip link del dev "$ifc" 2>/dev/null || true
    done
    rm -rf "/var/run/dpdk/$FILE_PREFIX"
    if [[ -f $DIR/$MARKER ]]; then
        rm -rf "$DIR"
    fi
    log "down"
}

case "${1:-}" in
up) cmd_up ;;
attach) cmd_attach ;;
config) cmd_config ;;
env) cmd_env ;;
status) cmd_status ;;
down) cmd_down ;;
*)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
