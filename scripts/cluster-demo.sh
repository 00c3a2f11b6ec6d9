#!/usr/bin/env bash
# An active-active wgdp cluster behind ECMP, in network namespaces
# (docs/cluster.md): two wgdp instances with the same tunnel table and
# private key, an upstream router spreading the peers' outer flows over
# them with a resilient next-hop group, and a LAN router that learns, over
# BGP from a BIRD beside each instance, which instance holds which peer's
# session ([cluster] export_table). Four wireguard-go peers.
#
#   1. traffic both ways for every peer (two on each instance);
#   2. instance A is killed (SIGKILL: a crash);
#   3. the time until every peer flows again, the routes withdrawn from
#      and re-announced to the LAN router (birdc show route), and the
#      counters showing that no peer on instance B moved;
#   4. A restarts, takes its share of the ECMP buckets back, and new
#      peers come up on it, while B's peers stay where they are.
#
# It fails (exit 1) when any of that does not happen; scripts/test.sh runs
# it with --test. Everything it creates is torn down on exit.
#
#   scripts/cluster-demo.sh           install (scripts/install.sh), then the demo
#                                     with the release binary
#   scripts/cluster-demo.sh --test    no install; the debug binary (target/debug/wgdp)
#
# Environment: WGDP_BIN (the binary), CLUSTER_DIR (state: keys, configs,
# logs; default /tmp/wgdp-cluster-SFX, removed at exit unless
# CLUSTER_KEEP=1), CLUSTER_SFX (name suffix, [a-z0-9]{1,4}; default from
# the PID).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=demo
case ${1:-} in
"") ;;
--test) MODE=test ;;
*)
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
[[ $EUID -eq 0 ]] || { echo "cluster-demo.sh: run as root (network namespaces)" >&2; exit 1; }
if [[ $MODE == demo ]]; then
    scripts/install.sh
    WGDP=${WGDP_BIN:-./target/release/wgdp}
else
    WGDP=${WGDP_BIN:-./target/debug/wgdp}
fi
WGDP=$(realpath "$WGDP")
for t in ip wg wireguard-go bird birdc ethtool ping python3; do
    command -v "$t" >/dev/null || { echo "cluster-demo.sh: $t missing (scripts/install.sh --deps-only)" >&2; exit 1; }
done

SFX=${CLUSTER_SFX:-$(printf '%x' $(($$ % 65536)))}
[[ $SFX =~ ^[a-z0-9]{1,4}$ ]] || { echo "CLUSTER_SFX must match [a-z0-9]{1,4}" >&2; exit 2; }
DIR=${CLUSTER_DIR:-/tmp/wgdp-cluster-$SFX}

# Names: namespaces, interfaces (at most 15 characters), processes.
NS_UP=cl$SFX-up      # the upstream router (ECMP over the instances)
NS_LAN=cl$SFX-lan    # the LAN router (BIRD, BGP to each instance)
ns_inst() { echo "cl$SFX-$1"; }      # a, b: a wgdp instance and its BIRD
ns_peer() { echo "cl$SFX-p$1"; }     # 1..6: a wireguard-go peer
tun_tap() { echo "c${SFX}$1w"; }     # instance tunnel port (net_tap), moved to NS_UP
lan_veth() { echo "c${SFX}$1l"; }    # instance plaintext port (af_packet on veth)
lan_far() { echo "c${SFX}$1r"; }     # its far end, in NS_LAN
exc_tun() { echo "c${SFX}$1t"; }     # exception TAPs, in the instance's namespace
exc_pt() { echo "c${SFX}$1p"; }
peer_veth() { echo "c${SFX}n$1"; }   # peer's outer link
peer_far() { echo "c${SFX}u$1"; }    # its far end, in NS_UP
peer_wg() { echo "wg${SFX}c$1"; }    # wireguard-go interface (global UAPI socket)
wgdp_name() { echo "wgdp${SFX}$1"; } # wgdp's UAPI name

# Addresses.
ANYCAST=198.51.100.10 # every instance's WireGuard endpoint
PORT=51820
link_net() { case $1 in a) echo 100.64.1 ;; b) echo 100.64.2 ;; esac; } # .1 upstream, .2 wgdp /30
lan_net() { case $1 in a) echo 10.60.1 ;; b) echo 10.60.2 ;; esac; }   # .1 LAN router, .2 wgdp
nh_id() { case $1 in a) echo 1 ;; b) echo 2 ;; esac; }
LAN_HOST=10.60.0.1 # on the LAN router's lo
peer_outer() { echo "198.18.$1.2"; }
peer_inner() { echo "10.70.$1.1"; }
GROUP=10 # the resilient next-hop group
EXPORT_TABLE=100
PEERS=4       # the peers of steps 1-3
ALL_PEERS=6   # and the new ones of step 4

if [[ -t 1 ]]; then
    step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    step() { printf '\n==> %s\n' "$*"; }
fi
say() { printf '    %s\n' "$*"; }
die() {
    printf 'cluster-demo.sh: FAIL: %s\n' "$*" >&2
    exit 1
}
nsx() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# --- processes -------------------------------------------------------------

PIDS=() # "pid:comm" of everything started
start_bg() { # log comm ns cmd...: starts cmd in ns, records its PID in LAST_PID
    local log=$1 comm=$2 ns=$3
    shift 3
    ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID:$comm")
}
kill_pid() { # pid [comm]: TERM, then KILL after 5 s; only if it is still ours
    local pid=$1 comm=${2:-} i
    [[ -d /proc/$pid ]] || return 0
    [[ -z $comm || "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm"* ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? entry ns i
    trap - EXIT
    step "teardown"
    for entry in "${PIDS[@]}"; do
        kill_pid "${entry%%:*}" "${entry#*:}"
    done
    for ns in "$NS_UP" "$NS_LAN" "$(ns_inst a)" "$(ns_inst b)" $(for ((i = 1; i <= ALL_PEERS; i++)); do ns_peer $i; done); do
        ip netns list | awk '{print $1}' | grep -qx -- "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill_pid "$pid"
        done
        ip netns del "$ns"
    done
    for ((i = 1; i <= ALL_PEERS; i++)); do rm -f "/var/run/wireguard/$(peer_wg $i).sock"; done
    rm -f "/var/run/wireguard/$(wgdp_name a).sock" "/var/run/wireguard/$(wgdp_name b).sock"
    rm -rf "/var/run/dpdk/cl${SFX}a" "/var/run/dpdk/cl${SFX}b"
    if ((rc != 0)); then
        echo "cluster demo failed (exit $rc); logs in $DIR" >&2
    elif [[ ${CLUSTER_KEEP:-0} != 1 && -f $DIR/.cluster-demo ]]; then
        rm -rf "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- configuration -----------------------------------------------------------

# BIRD beside instance $1: learns the export table, announces it to the
# LAN router over eBGP, with BFD to notice a dead neighbour in 2 s.
bird_instance_conf() {
    local x=$1 net
    net=$(lan_net "$x")
    cat <<EOF
# BIRD beside wgdp instance $x (docs/cluster.md)
router id $net.2;
log "$DIR/bird-$x.log" all;
debug protocols { states };

protocol device {
    scan time 10;
}

# wgdp's live routes: [cluster] export_table = $EXPORT_TABLE, proto 201 on the
# plaintext exception TAP. learn: import routes another program put there.
protocol kernel wgdp_live {
    kernel table $EXPORT_TABLE;
    learn;
    scan time 10;
    ipv4 {
        import all;
        export none;
    };
}

protocol bfd {
    interface "$(exc_pt "$x")" {
        min rx interval 200 ms;
        min tx interval 200 ms;
        multiplier 10;
    };
}

protocol bgp lan {
    local $net.2 as 65001;
    neighbor $net.1 as 65000;
    bfd on;
    hold time 6;
    keepalive time 2;
    connect retry time 1;
    error wait time 1, 5;
    ipv4 {
        import none;
        export where proto = "wgdp_live";
        next hop self;
    };
}
EOF
}

# BIRD of the LAN router: a session to each instance, the routes into its
# kernel's main table.
bird_lan_conf() {
    cat <<EOF
# BIRD of the LAN router (docs/cluster.md)
router id $LAN_HOST;
log "$DIR/bird-lan.log" all;
debug protocols { states };

protocol device {
    scan time 10;
}

protocol kernel {
    ipv4 {
        import none;
        export all;
    };
}

protocol bfd {
    interface "$(lan_far a)", "$(lan_far b)" {
        min rx interval 200 ms;
        min tx interval 200 ms;
        multiplier 10;
    };
}

template bgp wgdp_instance {
    local as 65000;
    bfd on;
    hold time 6;
    keepalive time 2;
    connect retry time 1;
    error wait time 1, 5;
    ipv4 {
        import all;
        export none;
    };
}

protocol bgp inst_a from wgdp_instance {
    neighbor $(lan_net a).2 as 65001;
    source address $(lan_net a).1;
}

protocol bgp inst_b from wgdp_instance {
    neighbor $(lan_net b).2 as 65001;
    source address $(lan_net b).1;
}
EOF
}

# wgdp's table for instance $1: the same key and peers on both; only the
# ports, the DPDK names and the lcore pinning differ.
wgdp_conf() {
    local x=$1 lcores i
    lcores="0@0,1@1"
    [[ $x == b ]] && lcores="0@1,1@0"
    cat <<EOF
# wgdp instance $x of the cluster demo (scripts/cluster-demo.sh)
[interface]
name = "$(wgdp_name "$x")"
private_key_file = "$DIR/wgdp.key"
listen_port = $PORT

[dpdk]
eal_args = ["--lcores=$lcores", "--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--file-prefix=cl${SFX}$x"]
workers = [1]
mbufs = 8191
idle_sleep_us = 50
idle_polls = 256
handshake_threads = 0

[ports.tunnel]
device = "net_tap0,iface=$(tun_tap "$x")"
address = ["$ANYCAST/32", "$(link_net "$x").2/30"]
gateway = "$(link_net "$x").1"
tap = "$(exc_tun "$x")"

[ports.plaintext]
device = "net_af_packet0,iface=$(lan_veth "$x")"
address = ["$(lan_net "$x").2/24"]
gateway = "$(lan_net "$x").1"
tap = "$(exc_pt "$x")"

[cluster]
export_table = $EXPORT_TABLE
EOF
    for ((i = 1; i <= ALL_PEERS; i++)); do
        cat <<EOF

[[peers]]
public_key = "$(cat "$DIR/peer$i.pub")"
allowed_ips = ["10.70.$i.0/24"]
EOF
    done
}

# --- topology ----------------------------------------------------------------

offloads_off() { nsx "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true; }

make_ns() {
    ip netns add "$1"
    ip -n "$1" link set lo up
    nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# The outer flow of peer $1 from UDP port $2: which instance the upstream
# router's group sends it to now (a or b).
flow_instance() {
    local out
    out=$(ip -n "$NS_UP" route get "$ANYCAST" from "$(peer_outer "$1")" iif "$(peer_far "$1")" \
        ipproto udp sport "$2" dport "$PORT" 2>/dev/null || true)
    case $out in
    *"dev $(tun_tap a) "*) echo a ;;
    *"dev $(tun_tap b) "*) echo b ;;
    *) echo "?" ;;
    esac
}

# A listen port for peer $1 whose flow goes to instance $2.
port_for() {
    local p
    for ((p = 40001; p < 40400; p++)); do
        if [[ $(flow_instance "$1" "$p") == "$2" ]]; then
            echo "$p"
            return 0
        fi
    done
    die "no UDP port of peer $1 hashes to instance $2"
}

start_peer() { # i port
    local i=$1 port=$2 ns wg
    ns=$(ns_peer "$i") wg=$(peer_wg "$i")
    start_bg "$DIR/$wg.log" wireguard-go "$ns" env LOG_LEVEL=error wireguard-go -f "$wg"
    for ((k = 0; k < 100; k++)); do
        [[ -S /var/run/wireguard/$wg.sock ]] && break
        sleep 0.1
    done
    [[ -S /var/run/wireguard/$wg.sock ]] || die "wireguard-go $wg: no UAPI socket"
    nsx "$ns" wg set "$wg" private-key "$DIR/peer$i.key" listen-port "$port" \
        peer "$(cat "$DIR/wgdp.pub")" endpoint "$ANYCAST:$PORT" allowed-ips 10.60.0.0/16
    ip -n "$ns" addr add "$(peer_inner "$i")/32" dev "$wg"
    ip -n "$ns" link set "$wg" up
    ip -n "$ns" route add 10.60.0.0/16 dev "$wg"
}

declare -A WGDP_PID BIRD_PID
start_wgdp() { # instance
    local x=$1 ns log i
    ns=$(ns_inst "$x") log=$DIR/wgdp-$x.log
    : >"$log"
    start_bg "$log" wgdp "$ns" "$WGDP" run --config "$DIR/wgdp-$x.toml"
    WGDP_PID[$x]=$LAST_PID
    for ((i = 0; i < 300; i++)); do
        grep -q '^wgdp: running' "$log" && break
        [[ -d /proc/${WGDP_PID[$x]} ]] || break
        sleep 0.1
    done
    grep -q '^wgdp: running' "$log" || die "wgdp $x did not start: $(tail -20 "$log")"
    # Its tunnel port's kernel end goes to the upstream router, with its
    # own MAC (a net_tap's starts with the DPDK port's).
    local tap
    tap=$(tun_tap "$x")
    ip -n "$ns" link set "$tap" netns "$NS_UP"
    ip -n "$NS_UP" link set "$tap" address "02:00:00:00:0$(nh_id "$x"):01"
    offloads_off "$NS_UP" "$tap"
    ip -n "$NS_UP" addr add "$(link_net "$x").1/30" dev "$tap"
    ip -n "$NS_UP" link set "$tap" up
    ip -n "$NS_UP" nexthop replace id "$(nh_id "$x")" via "$(link_net "$x").2" dev "$tap"
}

# The resilient group over the nexthops that exist. idle_timer 3: a bucket
# moves to a returning instance only after 3 s without traffic, so peers
# that are talking stay where they are.
set_group() {
    local members=$1
    if ip -n "$NS_UP" nexthop show id "$GROUP" >/dev/null 2>&1; then
        ip -n "$NS_UP" nexthop replace id "$GROUP" group "$members" type resilient buckets 32 idle_timer 3
    else
        ip -n "$NS_UP" nexthop add id "$GROUP" group "$members" type resilient buckets 32 idle_timer 3
        ip -n "$NS_UP" route add "$ANYCAST/32" nhid "$GROUP"
    fi
}

buckets() { # instance: the group's buckets on its nexthop
    ip -n "$NS_UP" nexthop bucket show id "$GROUP" 2>/dev/null | grep -c " nhid $(nh_id "$1") " || true
}

start_bird() { # name ns conf
    local name=$1 ns=$2
    start_bg "$DIR/bird-$name.out" bird "$ns" bird -f -c "$DIR/bird-$name.conf" \
        -s "$DIR/bird-$name.ctl" -P "$DIR/bird-$name.pid"
    BIRD_PID[$name]=$LAST_PID
    for ((i = 0; i < 50; i++)); do
        [[ -S $DIR/bird-$name.ctl ]] && return 0
        sleep 0.1
    done
    die "bird $name: no control socket: $(cat "$DIR/bird-$name.out")"
}
lan_birdc() { nsx "$NS_LAN" birdc -s "$DIR/bird-lan.ctl" "$@"; }

# Where the LAN router sends peer $1's inner prefix now: a, b or "-".
lan_route() {
    local out
    out=$(ip -n "$NS_LAN" route show "10.70.$1.0/24" 2>/dev/null)
    case $out in
    *"via $(lan_net a).2 "*) echo a ;;
    *"via $(lan_net b).2 "*) echo b ;;
    *) echo - ;;
    esac
}

# Pings $2 from namespace $1 (source $3 if given) once; true if answered.
ping_once() {
    nsx "$1" ping -n -c 1 -W 1 ${3:+-I "$3"} "$2" >/dev/null 2>&1
}

# Peer $1's row of `wg show NAME dump` on instance $2: latest handshake,
# rx, tx.
wg_peer() {
    local key
    key=$(cat "$DIR/peer$1.pub")
    nsx "$(ns_inst "$2")" wg show "$(wgdp_name "$2")" dump 2>/dev/null |
        awk -v k="$key" '$1 == k { print $5, $6, $7 }'
}

# Replies missing from peer $1's background ping after time $2: gaps in
# the sequence numbers of the replies.
ping_gaps() {
    awk -v t="$2" -F'[][]' '/bytes from/ {
        split($3, a, "icmp_seq="); split(a[2], s, " ")
        if ($2 > t && prev && s[1] != prev + 1) g++
        prev = s[1]
    } END { print g + 0 }' "$DIR/ping-$1.log"
}

exported() { # instance: the export table as wgdp show reports it
    nsx "$(ns_inst "$1")" "$WGDP" show -i "$(wgdp_name "$1")" --json |
        python3 -c 'import json,sys; e=json.load(sys.stdin).get("route_export") or {}; print(" ".join(e.get("routes", [])))'
}

# --- the demo ---------------------------------------------------------------

step "keys and BIRD configurations in $DIR"
mkdir -p "$DIR"
chmod 700 "$DIR"
touch "$DIR/.cluster-demo"
for k in wgdp $(seq -f 'peer%g' 1 "$ALL_PEERS"); do
    (umask 077 && wg genkey >"$DIR/$k.key")
    wg pubkey <"$DIR/$k.key" >"$DIR/$k.pub"
done
for x in a b; do
    wgdp_conf "$x" >"$DIR/wgdp-$x.toml"
    bird_instance_conf "$x" >"$DIR/bird-$x.conf"
done
bird_lan_conf >"$DIR/bird-lan.conf"
for c in a b lan; do
    bird -p -c "$DIR/bird-$c.conf" || die "bird -p rejects bird-$c.conf"
    say "bird -p -c bird-$c.conf: ok"
done
# The configurations docs/cluster.md shows must parse too.
awk '/^```bird$/ { n++; f = sprintf("'"$DIR"'/doc-%d.conf", n); next } /^```$/ { f = "" } f { print > f }' docs/cluster.md
for c in "$DIR"/doc-*.conf; do
    [[ -e $c ]] || die "docs/cluster.md has no \`\`\`bird block"
    bird -p -c "$c" || die "bird -p rejects the BIRD configuration of docs/cluster.md ($c)"
    say "bird -p on docs/cluster.md's $(basename "$c"): ok"
done

step "namespaces: upstream $NS_UP, LAN router $NS_LAN, instances $(ns_inst a) $(ns_inst b), peers"
make_ns "$NS_UP"
make_ns "$NS_LAN"
nsx "$NS_UP" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
nsx "$NS_LAN" sysctl -qw net.ipv4.ip_forward=1
ip -n "$NS_LAN" addr add "$LAN_HOST/32" dev lo
for x in a b; do
    make_ns "$(ns_inst "$x")"
    ip link add "$(lan_veth "$x")" netns "$(ns_inst "$x")" type veth peer name "$(lan_far "$x")" netns "$NS_LAN"
    offloads_off "$(ns_inst "$x")" "$(lan_veth "$x")"
    offloads_off "$NS_LAN" "$(lan_far "$x")"
    ip -n "$(ns_inst "$x")" link set "$(lan_veth "$x")" up
    ip -n "$NS_LAN" addr add "$(lan_net "$x").1/24" dev "$(lan_far "$x")"
    ip -n "$NS_LAN" link set "$(lan_far "$x")" up
done
for ((i = 1; i <= ALL_PEERS; i++)); do
    make_ns "$(ns_peer $i)"
    ip link add "$(peer_veth $i)" netns "$(ns_peer $i)" type veth peer name "$(peer_far $i)" netns "$NS_UP"
    offloads_off "$(ns_peer $i)" "$(peer_veth $i)"
    offloads_off "$NS_UP" "$(peer_far $i)"
    ip -n "$(ns_peer $i)" addr add "$(peer_outer $i)/24" dev "$(peer_veth $i)"
    ip -n "$(ns_peer $i)" link set "$(peer_veth $i)" up
    ip -n "$(ns_peer $i)" route add default via "198.18.$i.1"
    ip -n "$NS_UP" addr add "198.18.$i.1/24" dev "$(peer_far $i)"
    ip -n "$NS_UP" link set "$(peer_far $i)" up
done

step "wgdp instances A and B (one worker each, idle sleep), the same table and key"
for x in a b; do
    start_wgdp "$x"
    say "wgdp $x: pid ${WGDP_PID[$x]}, $(grep '^route export' "$DIR/wgdp-$x.log")"
done
set_group "$(nh_id a)/$(nh_id b)"
say "upstream: $ANYCAST/32 nhid $GROUP: $(ip -n "$NS_UP" nexthop show id "$GROUP")"
say "buckets: A $(buckets a), B $(buckets b)"

step "BIRD beside each instance and in the LAN router"
for x in a b; do start_bird "$x" "$(ns_inst "$x")"; done
start_bird lan "$NS_LAN"
for ((i = 0; i < 100; i++)); do
    est=$(lan_birdc show protocols | grep -c 'Established' || true)
    ((est == 2)) && break
    sleep 0.2
done
lan_birdc show protocols | sed 's/^/    /'
((est == 2)) || die "BGP sessions to both instances not established"

step "four peers, two hashed to each instance (ports chosen with ip route get in $NS_UP)"
declare -A HOME_OF PORT_OF
for ((i = 1; i <= PEERS; i++)); do
    want=a
    ((i > 2)) && want=b
    PORT_OF[$i]=$(port_for "$i" "$want")
    HOME_OF[$i]=$want
    start_peer "$i" "${PORT_OF[$i]}"
    say "peer $i: $(peer_outer $i):${PORT_OF[$i]} -> instance $want, inner $(peer_inner $i)"
done

step "1. traffic both ways for every peer"
for ((i = 1; i <= PEERS; i++)); do
    ok=0
    for ((k = 0; k < 20; k++)); do
        if ping_once "$(ns_peer $i)" "$LAN_HOST" "$(peer_inner $i)"; then ok=1; break; fi
    done
    ((ok)) || die "peer $i cannot reach the LAN ($LAN_HOST)"
done
for ((k = 0; k < 50; k++)); do
    missing=0
    for ((i = 1; i <= PEERS; i++)); do
        [[ $(lan_route $i) == "${HOME_OF[$i]}" ]] || missing=1
    done
    ((missing == 0)) && break
    sleep 0.1
done
for ((i = 1; i <= PEERS; i++)); do
    [[ $(lan_route $i) == "${HOME_OF[$i]}" ]] || die "LAN router: 10.70.$i.0/24 not via instance ${HOME_OF[$i]} ($(ip -n "$NS_LAN" route show 10.70.$i.0/24))"
    ping_once "$NS_LAN" "$(peer_inner $i)" "$LAN_HOST" || die "LAN -> peer $i failed"
    say "peer $i: peer -> LAN ok, LAN -> peer ok, LAN route via instance ${HOME_OF[$i]}"
done
for x in a b; do say "instance $x exports: $(exported "$x")"; done
say "LAN router (birdc show route):"
lan_birdc show route | sed 's/^/      /'

# Traffic that keeps flowing: each peer pings the LAN every 0.2 s (the
# data whose silence makes a moved peer re-handshake), timestamped.
for ((i = 1; i <= PEERS; i++)); do
    start_bg "$DIR/ping-$i.log" ping "$(ns_peer $i)" ping -n -D -i 0.2 -W 1 -I "$(peer_inner $i)" "$LAN_HOST"
    PING_PID[$i]=$LAST_PID
done
sleep 2
declare -A HS_BEFORE
for ((i = 3; i <= PEERS; i++)); do
    HS_BEFORE[$i]=$(wg_peer $i b)
done
BUCKETS_B_BEFORE=$(ip -n "$NS_UP" nexthop bucket show id "$GROUP" | awk '/ nhid 2 /{print $4}' | sort)

step "2. kill instance A (SIGKILL)"
# Disowned: bash says nothing of its death; the loop below sees it.
disown "${WGDP_PID[a]}"
T_KILL=$(now)
kill -KILL "${WGDP_PID[a]}"
say "killed wgdp A (pid ${WGDP_PID[a]}) at $(date -u +%T.%N | cut -c1-12)"

step "3. failover: until every peer flows again"
T_WITHDRAWN="" T_NH=""
declare -A T_ROUTE T_FLOW
for ((k = 0; k < 600; k++)); do
    t=$(now)
    if [[ -z $T_NH ]] && ! ip -n "$NS_UP" nexthop show id "$(nh_id a)" >/dev/null 2>&1; then
        T_NH=$t
    fi
    if [[ -z $T_WITHDRAWN ]] && [[ $(lan_route 1) != a && $(lan_route 2) != a ]]; then
        T_WITHDRAWN=$t
    fi
    done_all=1
    for i in 1 2; do
        if [[ -z ${T_ROUTE[$i]:-} && $(lan_route $i) == b ]]; then T_ROUTE[$i]=$t; fi
        [[ -n ${T_ROUTE[$i]:-} ]] || done_all=0
    done
    ((done_all)) && break
    sleep 0.05
done
for ((k = 0; k < 100; k++)); do
    [[ -d /proc/${WGDP_PID[a]} ]] || break
    sleep 0.1
done
sleep 1
for i in 1 2; do
    # The first reply after the kill, from the ping's own timestamps.
    T_FLOW[$i]=$(awk -v t="$T_KILL" -F'[][]' '/bytes from/ && $2 > t + 0.3 { print $2; exit }' "$DIR/ping-$i.log")
done
say "upstream next hop of A gone (its link went with the process): +$(since "$T_KILL" "${T_NH:-$T_KILL}") s"
# The LAN router's BIRD logs the session's end (debug protocols { states }).
bgp_down=$(awk '/inst_a: State changed to stop/ { t = $1 " " $2 } END { print t }' "$DIR/bird-lan.log")
[[ -n $bgp_down ]] || die "the LAN router's session to A never went down"
say "LAN router's BGP session to A down (BFD timeout):            +$(since "$T_KILL" "$(date -d "$bgp_down" +%s.%N)") s"
say "A's routes gone from the LAN router's kernel table:          +$(since "$T_KILL" "${T_WITHDRAWN:-$T_KILL}") s"
for i in 1 2; do
    [[ -n ${T_ROUTE[$i]:-} ]] || die "peer $i's route never re-announced via B"
    [[ -n ${T_FLOW[$i]} ]] || die "peer $i never flowed again"
    say "peer $i: re-handshake with B, route re-announced via B: +$(since "$T_KILL" "${T_ROUTE[$i]}") s; first reply: +$(since "$T_KILL" "${T_FLOW[$i]}") s"
done
[[ -n $T_WITHDRAWN && -n $T_NH ]] || die "A's routes or next hop were not withdrawn"
worst=$(printf '%s\n' "${T_FLOW[1]}" "${T_FLOW[2]}" | sort -n | tail -1)
say "every peer flows again after $(since "$T_KILL" "$worst") s"
echo "failover_seconds $(since "$T_KILL" "$worst")" >"$DIR/figures"
say "LAN router (birdc show route):"
lan_birdc show route | sed 's/^/      /'
say "instance B exports: $(exported b)"
say "instance B dropped the moved peers' old-session data as unknown_index: $(nsx "$(ns_inst b)" "$WGDP" show -i "$(wgdp_name b)" | grep -m1 'drop unknown_index' | sed 's/^ *//')"

step "3b. the peers on B did not move"
for ((i = 3; i <= PEERS; i++)); do
    before=${HS_BEFORE[$i]} after=$(wg_peer $i b)
    # The latest handshake is the same: no re-handshake; rx grew.
    [[ ${before%% *} == "${after%% *}" ]] || die "peer $i re-handshaked on B (latest handshake ${before%% *} -> ${after%% *})"
    rx0=$(echo "$before" | cut -d' ' -f2) rx1=$(echo "$after" | cut -d' ' -f2)
    ((rx1 > rx0)) || die "peer $i: no traffic on B during the failover"
    gaps=$(ping_gaps "$i" "$T_KILL")
    ((gaps == 0)) || die "peer $i lost pings during the failover ($gaps gaps)"
    say "peer $i: latest handshake unchanged (${before%% *}), rx $rx0 -> $rx1 B, no ping lost"
done
after=$(ip -n "$NS_UP" nexthop bucket show id "$GROUP" | awk '/ nhid 2 /{print $4}' | sort)
kept=$(comm -12 <(echo "$BUCKETS_B_BEFORE") <(echo "$after") | wc -l)
say "upstream buckets on B before: $(echo "$BUCKETS_B_BEFORE" | wc -l), still on B: $kept, now on B: $(buckets b)/32"
((kept == $(echo "$BUCKETS_B_BEFORE" | wc -l))) || die "a bucket of B moved"

step "4. restart instance A; it takes the idle buckets back and new peers"
start_wgdp a
set_group "$(nh_id a)/$(nh_id b)"
for ((k = 0; k < 100; k++)); do
    (($(buckets a) > 0)) && break
    sleep 0.2
done
say "wgdp A again: pid ${WGDP_PID[a]}; buckets A $(buckets a), B $(buckets b)"
(($(buckets a) > 0)) || die "no bucket went back to A"
for ((k = 0; k < 100; k++)); do
    est=$(lan_birdc show protocols | grep -c 'Established' || true)
    ((est == 2)) && break
    sleep 0.2
done
((est == 2)) || die "BGP session to A not re-established"
for ((i = PEERS + 1; i <= ALL_PEERS; i++)); do
    PORT_OF[$i]=$(port_for "$i" a)
    start_peer "$i" "${PORT_OF[$i]}"
    ok=0
    for ((k = 0; k < 20; k++)); do
        if ping_once "$(ns_peer $i)" "$LAN_HOST" "$(peer_inner $i)"; then ok=1; break; fi
    done
    ((ok)) || die "new peer $i cannot reach the LAN"
    for ((k = 0; k < 50; k++)); do
        [[ $(lan_route $i) == a ]] && break
        sleep 0.1
    done
    [[ $(lan_route $i) == a ]] || die "new peer $i's route not via A"
    ping_once "$NS_LAN" "$(peer_inner $i)" "$LAN_HOST" || die "LAN -> new peer $i failed"
    hs=$(wg_peer $i a)
    [[ -n $hs && ${hs%% *} != 0 ]] || die "new peer $i has no session on A"
    say "new peer $i: $(peer_outer $i):${PORT_OF[$i]} -> instance A, handshake on A, both ways ok, LAN route via A"
done
for i in 1 2 3 4; do
    [[ $(lan_route $i) == b ]] || die "peer $i moved when A came back (LAN route via $(lan_route $i))"
done
# Not one reply lost since the kill (peers 3, 4) or since their move to B
# (peers 1, 2), A's restart included.
sleep 1
for ((i = 1; i <= PEERS; i++)); do
    from=$T_KILL
    ((i <= 2)) && from=${T_FLOW[$i]}
    gaps=$(ping_gaps "$i" "$from")
    ((gaps == 0)) || die "peer $i lost pings while A came back ($gaps gaps)"
done
say "peers 1-4 stay on B (LAN routes via B), no ping lost since the failover"
say "instance A exports: $(exported a)"
say "LAN router (birdc show route):"
lan_birdc show route | sed 's/^/      /'

step "done: failover $(cut -d' ' -f2 "$DIR/figures") s"
