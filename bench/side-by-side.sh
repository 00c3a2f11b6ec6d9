#!/usr/bin/env bash
# wgdp side by side on the namespace testbed, in one run (as root):
#
#   (a) wgdp      iperf3 TCP through wgdp (tests/e2e/topology.sh: lan ->
#                 wgdp -> wireguard-go peer 1 in wan), 1 and 4 streams,
#                 both directions, MTU 1420
#   (b) wg-go     the same iperf3 runs through a wireguard-go pair: two
#                 namespaces tunnelled over a veth, MTU 1420
#   (c) fwd       the same iperf3 runs through plain DPDK forwarding
#                 (dpdk-testpmd, io mode) between the same kind of net_tap
#                 ports: what the TAP path itself carries
#   (d) memif     wgdp to wgdp over memif, no kernel on the path: a net_pcap
#                 source replays UDP into A's plaintext port, A encrypts to
#                 B over memif, B decrypts into a net_pcap sink; Mpps and
#                 Gbit/s at 64 B, 1420 B and IMIX (7:4:1 of 64/570/1438-byte
#                 frames: DPDK 22.11's memif carries no frame above 1518 B,
#                 and a 1518-byte frame needs a 1580-byte tunnel MTU)
#   (l) lanes     (d) with 2 workers on each side (memif with 2 queue pairs,
#                 a pcap file per source queue so both of A's workers get
#                 plaintext), 1420 B, one tunnel: peer `lanes = 1`, then
#                 `lanes = 2` (docs/lanes.md); the lane counters and the ratio
#
# and prints the figures with the ratios wgdp/wg-go and wgdp/fwd.
#
#   bench/side-by-side.sh [--time SECS] [--quick] [--only a,b,c,d,l]
#
#   --time SECS   seconds per iperf3 run and per memif measurement (default 10)
#   --quick       2-second runs, 1 stream only, memif at 1420 B only: a
#                 functional pass of every path in about a minute
#   --only LIST   run only these scenarios (the summary leaves out the rest)
#
# Cores (this machine has 2): the device under test gets core 1 alone, the
# far end and the traffic endpoints share core 0 -
#   (a) wgdp (worker lcore and control thread) on core 1; wireguard-go peer
#       1, both iperf3 ends on core 0
#   (b) the near wireguard-go on core 1; the far wireguard-go and both
#       iperf3 ends on core 0
#   (c) dpdk-testpmd (forwarding lcore and main) on core 1; iperf3 on core 0
#   (d) wgdp A's worker on core 0, wgdp B's worker on core 1; each control
#       thread on the other core (they sleep when idle)
#   (l) each core runs one worker of A and one of B: 4 busy lcores on 2
#       cores, so the lanes ratio here cannot show scaling
# Workers busy-poll (idle_sleep_us = 0) in (a), (d) and (l).
#
# Environment: WGDP_BIN (default ./target/release/wgdp), SBS_SFX (name
# suffix, [a-z0-9]{1,4}, default from the PID), SBS_DIR (state and logs,
# default /tmp/wgdp-sbs-SFX; removed on exit unless SBS_KEEP=1).
# net.core.rmem_default/wmem_default are raised to 4 MiB for the run (the
# 212 KB default drops UDP at ~1 Gbit/s) and restored on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TIME=10 QUICK=0 ONLY=a,b,c,d,l
while (($#)); do
    case $1 in
    --time) TIME=${2:?--time needs seconds}; shift 2 ;;
    --quick) QUICK=1; TIME=2; shift ;;
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    *) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[[ $TIME =~ ^[1-9][0-9]*$ ]] || { echo "side-by-side.sh: --time wants whole seconds" >&2; exit 2; }
want() { [[ ,$ONLY, == *,$1,* ]]; }
STREAMS=(1 4)
((QUICK)) && STREAMS=(1)
SIZES=(64 1420 imix)
((QUICK)) && SIZES=(1420)

WGDP=${WGDP_BIN:-$ROOT/target/release/wgdp}
TOPO=$ROOT/tests/e2e/topology.sh
PCAPGEN=$ROOT/bench/pcapgen.py
SFX=${SBS_SFX:-$(($$ % 10000))}
[[ $SFX =~ ^[a-z0-9]{1,4}$ ]] || { echo "side-by-side.sh: SBS_SFX must match [a-z0-9]{1,4}" >&2; exit 2; }
DIR=${SBS_DIR:-/tmp/wgdp-sbs-$SFX}
TSFX=s$SFX # topology.sh suffix for (a)
IPERF_PORT=5201

log() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'side-by-side.sh: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (namespaces, TAP devices)"
for t in ip wg wireguard-go iperf3 ethtool ss taskset python3 dpdk-testpmd; do
    command -v "$t" >/dev/null || die "missing $t (scripts/install.sh --deps-only installs it)"
done
[[ -x $WGDP ]] || die "no wgdp binary at $WGDP: cargo build --release (or set WGDP_BIN)"

# --- bookkeeping: everything started is killed by PID, everything made is removed.
PIDS=() NSS=() PREFIXES=() TOPO_UP=0 RMEM_OLD="" WMEM_OLD=""
mkdir -p "$DIR"
chmod 700 "$DIR"

kill_pid() { # PID...: SIGTERM to all at once, SIGKILL to those left after 5 s
    local pid i left
    for pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        left=0
        for pid; do [[ -d /proc/$pid ]] && left=1; done
        ((left)) || break
        sleep 0.1
    done
    for pid; do
        [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null || true
    done
}
cleanup() {
    local rc=$? p ns pid
    trap - EXIT INT TERM
    ((${#PIDS[@]} == 0)) || kill_pid "${PIDS[@]}"
    for ns in "${NSS[@]}"; do
        ip netns list | awk '{print $1}' | grep -qx -- "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill_pid "$pid"; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -f /var/run/wireguard/wg"$SFX"c.sock /var/run/wireguard/wg"$SFX"d.sock
    ((TOPO_UP)) && E2E_SFX=$TSFX E2E_DIR=$DIR/topo "$TOPO" down >/dev/null 2>&1 || true
    for p in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$p"; done
    [[ -n $RMEM_OLD ]] && sysctl -qw net.core.rmem_default="$RMEM_OLD" || true
    [[ -n $WMEM_OLD ]] && sysctl -qw net.core.wmem_default="$WMEM_OLD" || true
    if [[ ${SBS_KEEP:-0} == 1 || $rc -ne 0 ]]; then
        echo "side-by-side.sh: logs kept in $DIR" >&2
    else
        rm -rf "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

RMEM_OLD=$(sysctl -n net.core.rmem_default)
WMEM_OLD=$(sysctl -n net.core.wmem_default)
sysctl -qw net.core.rmem_default=4194304 net.core.wmem_default=4194304

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
mkns() { ip netns add "$1"; NSS+=("$1"); ip -n "$1" link set lo up; }
offloads_off() { nsx "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true; }

# Waits until a process prints a line matching a regex in its log.
wait_log() { # file regex pid seconds
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        [[ -d /proc/$3 ]] || die "process $3 exited; its log $1:
$(tail -20 "$1")"
        sleep 0.1
    done
    die "no '$2' in $1 after $4 s:
$(tail -20 "$1")"
}
wait_link() { # ifname seconds: until the interface exists in the root namespace
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        ip link show dev "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "interface $1 did not appear"
}

# An iperf3 server pinned to core 0, until the end of the run.
iperf_server() { # ns ip
    nsx "$1" taskset -c 0 iperf3 -s -B "$2" -p $IPERF_PORT >"$DIR/iperf-$1.log" 2>&1 &
    PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -n $(nsx "$1" ss -Hlnt sport = :$IPERF_PORT 2>/dev/null) ]] && return 0
        sleep 0.05
    done
    die "iperf3 server in $1 not listening"
}

# One iperf3 TCP run from the client namespace; prints Gbit/s received.
# Direction "out": client sends (towards the tunnel); "in": -R.
iperf_gbps() { # client-ns server-ip streams out|in tag
    local rev=() json="$DIR/iperf-$5-$3-$4.json"
    [[ $4 == in ]] && rev=(-R)
    if ! nsx "$1" taskset -c 0 iperf3 -c "$2" -p $IPERF_PORT -P "$3" -t "$TIME" -O 1 "${rev[@]}" -J >"$json" 2>&1; then
        die "iperf3 $5 ($1 -> $2, $3 streams, $4) failed: $(tail -5 "$json")"
    fi
    python3 -c 'import json,sys; print("%.3f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))' "$json"
}

declare -A R # R[scenario:streams:dir] = Gbit/s
iperf_matrix() { # scenario client-ns server-ip
    local n d
    for n in "${STREAMS[@]}"; do
        for d in out in; do
            R[$1:$n:$d]=$(iperf_gbps "$2" "$3" "$n" "$d" "$1")
            log "$1: $n stream(s) $d: ${R[$1:$n:$d]} Gbit/s"
            [[ ${R[$1:$n:$d]} != 0.000 ]] || die "$1: $n stream(s) $d: nothing received; $DIR/iperf-$1-$n-$d.json"
        done
    done
}

# ---------------------------------------------------------------- (a) wgdp
run_wgdp() {
    log "(a) wgdp between lan and wireguard-go peer 1 (topology.sh, suffix $TSFX)"
    mkdir -p "$DIR/topo"
    TOPO_UP=1
    E2E_SFX=$TSFX E2E_DIR=$DIR/topo "$TOPO" up 2>"$DIR/topology.log"
    local -A E
    local k v
    while IFS='=' read -r k v; do E[$k]=$v; done < <(E2E_SFX=$TSFX E2E_DIR=$DIR/topo "$TOPO" env)
    PREFIXES+=("${E[FILE_PREFIX]}")
    # The topology's config, with wgdp on core 1 alone, busy polling, and
    # its own UAPI name.
    E2E_SFX=$TSFX E2E_DIR=$DIR/topo "$TOPO" config |
        sed -e "s/^\[interface\]$/[interface]\nname = \"wgdp$TSFX\"/" \
            -e 's/"--lcores=[^"]*"/"--lcores=0@1,1@1"/' \
            -e 's/^idle_sleep_us = .*/idle_sleep_us = 0/' >"$DIR/wgdp-a.toml"
    chmod 600 "$DIR/wgdp-a.toml"
    "$WGDP" check --config "$DIR/wgdp-a.toml" >/dev/null
    taskset -c 1 "$WGDP" run --config "$DIR/wgdp-a.toml" --report-interval 3600 >"$DIR/wgdp-a.log" 2>&1 &
    local wpid=$!
    PIDS+=("$wpid")
    wait_log "$DIR/wgdp-a.log" '^wgdp: running' "$wpid" 60
    E2E_SFX=$TSFX E2E_DIR=$DIR/topo "$TOPO" attach 2>>"$DIR/topology.log"
    taskset -a -p -c 0 "${E[WG1_PID]}" >/dev/null
    taskset -a -p -c 0 "${E[WG2_PID]}" >/dev/null
    nsx "${E[NS_LAN]}" ping -n -c 3 -i 0.2 -w 10 "${E[PEER1_IP]}" >"$DIR/ping-a.log" ||
        die "(a) no ping through wgdp: $(cat "$DIR/ping-a.log")"
    iperf_server "${E[NS_WAN]}" "${E[PEER1_IP]}"
    iperf_matrix wgdp "${E[NS_LAN]}" "${E[PEER1_IP]}"
    "$WGDP" show --interface "wgdp$TSFX" >"$DIR/wgdp-a.show" 2>&1 || true
    kill_pid "$wpid"
    grep -q '^mbufs_in_use 0$' "$DIR/wgdp-a.log" || log "(a) warning: wgdp did not return every mbuf: $(grep mbufs_in_use "$DIR/wgdp-a.log")"
    E2E_SFX=$TSFX E2E_DIR=$DIR/topo "$TOPO" down 2>>"$DIR/topology.log"
    TOPO_UP=0
}

# ---------------------------------------------------------------- (b) wireguard-go pair
run_wggo() {
    local a=sbg-a$SFX b=sbg-b$SFX wa=wg${SFX}c wb=wg${SFX}d
    log "(b) wireguard-go pair: $a ($wa, core 1) <-veth-> $b ($wb, core 0)"
    mkns "$a"
    mkns "$b"
    ip link add "sbgva$SFX" netns "$a" type veth peer name "sbgvb$SFX" netns "$b"
    offloads_off "$a" "sbgva$SFX"
    offloads_off "$b" "sbgvb$SFX"
    ip -n "$a" addr add 172.31.250.1/30 dev "sbgva$SFX"
    ip -n "$b" addr add 172.31.250.2/30 dev "sbgvb$SFX"
    ip -n "$a" link set "sbgva$SFX" up
    ip -n "$b" link set "sbgvb$SFX" up
    (umask 077 && wg genkey >"$DIR/ga.key" && wg genkey >"$DIR/gb.key")
    local side ns ifc core key peer ep addr i
    for side in a b; do
        if [[ $side == a ]]; then
            ns=$a ifc=$wa core=1 key=ga peer=gb ep=172.31.250.2 addr=10.88.0.1
        else
            ns=$b ifc=$wb core=0 key=gb peer=ga ep=172.31.250.1 addr=10.88.0.2
        fi
        [[ -e /var/run/wireguard/$ifc.sock ]] && die "/var/run/wireguard/$ifc.sock exists (SBS_SFX in use?)"
        nsx "$ns" taskset -c $core wireguard-go -f "$ifc" </dev/null >"$DIR/$ifc.log" 2>&1 &
        PIDS+=($!)
        for ((i = 0; i < 100; i++)); do
            [[ -S /var/run/wireguard/$ifc.sock ]] && break
            sleep 0.1
        done
        [[ -S /var/run/wireguard/$ifc.sock ]] || die "wireguard-go $ifc did not start: $(cat "$DIR/$ifc.log")"
        nsx "$ns" wg set "$ifc" private-key "$DIR/$key.key" listen-port 51820 \
            peer "$(wg pubkey <"$DIR/$peer.key")" endpoint "$ep:51820" allowed-ips 10.88.0.0/24
        ip -n "$ns" addr add "$addr/24" dev "$ifc"
        ip -n "$ns" link set "$ifc" mtu 1420 up
    done
    nsx "$a" ping -n -c 3 -i 0.2 -w 10 10.88.0.2 >"$DIR/ping-b.log" ||
        die "(b) no ping through the wireguard-go pair: $(cat "$DIR/ping-b.log")"
    iperf_server "$b" 10.88.0.2
    iperf_matrix wggo "$a" 10.88.0.2
}

# ---------------------------------------------------------------- (c) plain DPDK forwarding
run_fwd() {
    local l=sbf-l$SFX w=sbf-w$SFX tl=sbfl$SFX tw=sbfw$SFX prefix=wgdp-sbs-fwd$SFX
    log "(c) dpdk-testpmd io forwarding between net_tap $tl ($l) and $tw ($w), core 1"
    mkns "$l"
    mkns "$w"
    PREFIXES+=("$prefix")
    taskset -c 1 dpdk-testpmd --lcores=0@1,1@1 --no-huge --no-shconf -m 256 --no-pci \
        --file-prefix="$prefix" --vdev "net_tap0,iface=$tl" --vdev "net_tap1,iface=$tw" -- \
        --forward-mode=io --auto-start --stats-period 3600 --total-num-mbufs=8192 \
        </dev/null >"$DIR/testpmd.log" 2>&1 &
    local tpid=$!
    PIDS+=("$tpid")
    wait_log "$DIR/testpmd.log" 'io packet forwarding' "$tpid" 30
    wait_link "$tl" 5
    wait_link "$tw" 5
    local pair ifc ns addr
    for pair in "$tl:$l:10.77.0.1" "$tw:$w:10.77.0.2"; do
        IFS=: read -r ifc ns addr <<<"$pair"
        ip link set dev "$ifc" netns "$ns"
        offloads_off "$ns" "$ifc"
        ip -n "$ns" link set "$ifc" mtu 1420
        ip -n "$ns" addr add "$addr/24" dev "$ifc"
        ip -n "$ns" link set "$ifc" up
    done
    nsx "$l" ping -n -c 3 -i 0.2 -w 10 10.77.0.2 >"$DIR/ping-c.log" ||
        die "(c) no ping through testpmd: $(cat "$DIR/ping-c.log")"
    iperf_server "$w" 10.77.0.2
    iperf_matrix fwd "$l" 10.77.0.2
    kill_pid "$tpid"
}

# ---------------------------------------------------------------- (d) wgdp to wgdp over memif
declare -A M # M[size:mpps], M[size:gbps], M[size:drops]
# The sum of lcore events and ports' counters of a running wgdp, as
# "decapsulated decap_bytes encapsulated tx_full".
wgdp_totals() { # interface
    "$WGDP" show --interface "$1" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
ev = lambda k: sum(l["events"][k] for l in d["lcores"])
drops = sum(sum(l["drops"].values()) for l in d["lcores"])
print(ev("decapsulated"), ev("decap_bytes"), ev("encapsulated"), drops)'
}
# One side's table: side a (memif server, pcap source, one rx_pcap per
# worker: queue q replays gen<q>.pcap) or b (memif client, pcap sink).
# Lcores: with one worker, A's worker on core 0 and B's on core 1; with
# two, each core runs one worker of A and one of B.
memif_config() { # side(a|b) dir mtu workers lanes
    local s=$1 other pt_dev tun_dev lcores workers q
    if [[ $s == a ]]; then
        other=b
        tun_dev="net_memif0,role=server,id=0,socket=$2/memif.sock"
        pt_dev="net_pcap0,infinite_rx=1"
        for ((q = 0; q < $4; q++)); do pt_dev+=",rx_pcap=$2/gen$q.pcap,tx_pcap=/dev/null"; done
    else
        other=a
        tun_dev="net_memif0,role=client,id=0,socket=$2/memif.sock"
        pt_dev="net_pcap0"
        for ((q = 0; q < $4; q++)); do pt_dev+=",rx_pcap=$2/arp.pcap,tx_pcap=/dev/null"; done
    fi
    if (($4 == 1)); then
        lcores=$([[ $s == a ]] && echo 0@1,1@0 || echo 0@0,1@1) workers=1
    else
        lcores=$([[ $s == a ]] && echo 0@0,1@0,2@1 || echo 0@1,1@0,2@1) workers=1,2
    fi
    cat <<EOF
[interface]
name = "sbm$s$SFX"
private_key_file = "$2/$s.key"
listen_port = 51820

[dpdk]
eal_args = ["--lcores=$lcores", "--no-huge", "--no-shconf", "-m", "512", "--no-pci", "--file-prefix=wgdp-sbs-m$s$SFX"]
workers = [$workers]
idle_sleep_us = 0

[ports.tunnel]
device = "$tun_dev"
address = ["203.0.113.$([[ $s == a ]] && echo 1 || echo 2)/24"]
mtu = $(($3 + 80))
tap = "sbm${s}t$SFX"
$( (($4 > 1)) && echo "lane_ports = \"51830-$((51829 + $4))\"")

[ports.plaintext]
device = "$pt_dev"
address = ["$([[ $s == a ]] && echo 10.0.0.1 || echo 10.1.0.1)/24"]
mtu = $3
tap = "sbm${s}p$SFX"

[[peers]]
public_key = "$(wg pubkey <"$2/$other.key")"
endpoint = "203.0.113.$([[ $s == a ]] && echo 2 || echo 1):51820"
allowed_ips = ["$([[ $s == a ]] && echo 10.1.0.0/24 || echo 10.0.0.0/24)"]
lanes = $5
EOF
}
# The last value of "counter NAME" in a wgdp log (the report on exit).
report_counter() { # log name
    awk -v n="$2" '$1 == "counter" && $2 == n { v = $3 } END { print v == "" ? "-" : v }' "$1"
}
# One measurement of wgdp A -> memif -> wgdp B; figures in M[tag:size:...].
run_memif_size() { # tag size workers lanes
    local tag=$1 size=$2 workers=$3 lanes=$4 d="$DIR/memif-$1-$2" mtu=1420 q
    log "($tag) wgdp A -> memif -> wgdp B, $size, $workers worker(s) each, peer lanes = $lanes"
    mkdir -p "$d"
    (umask 077 && wg genkey >"$d/a.key" && wg genkey >"$d/b.key")
    # net_pcap's MAC is 02:70:63:61:70:<index of the pcap vdev in the process>.
    local frame=$size
    [[ $size == 1420 ]] && frame=1434
    [[ $size == 64 ]] && frame=60
    # One file per source queue, each from its own address: every worker
    # of A gets 16 inner flows of its own.
    for ((q = 0; q < workers; q++)); do
        python3 "$PCAPGEN" udp --out "$d/gen$q.pcap" --dst-mac 02:70:63:61:70:00 \
            --src-ip "10.0.0.$((2 + q))" --dst-net 10.1.0.2/32 --size "$frame" --imix-large 1438 --flows 16
    done
    python3 "$PCAPGEN" arp --out "$d/arp.pcap" --mac 02:00:00:00:0c:02 --ip 10.1.0.2
    memif_config a "$d" $mtu "$workers" "$lanes" >"$d/a.toml"
    memif_config b "$d" $mtu "$workers" "$lanes" >"$d/b.toml"
    chmod 600 "$d/a.toml" "$d/b.toml"
    PREFIXES+=("wgdp-sbs-ma$SFX" "wgdp-sbs-mb$SFX")
    # The memif server (A) must listen before the client (B) starts.
    "$WGDP" run --config "$d/a.toml" --report-interval 3600 >"$d/a.log" 2>&1 &
    local apid=$!
    PIDS+=("$apid")
    wait_log "$d/a.log" '^wgdp: running' "$apid" 60
    log "($tag) A running"
    grep -q 'port plaintext .* mac 02:70:63:61:70:00 ' "$d/a.log" ||
        die "($tag) A's plaintext port MAC is not the one the pcap was built for: $(grep '^port plaintext' "$d/a.log")"
    "$WGDP" run --config "$d/b.toml" --report-interval 3600 >"$d/b.log" 2>&1 &
    local bpid=$!
    PIDS+=("$bpid")
    wait_log "$d/b.log" '^wgdp: running' "$bpid" 60
    log "($tag) B running"
    # Warm-up: the handshake, then traffic flowing.
    local i t0 t1 x0 x1
    for ((i = 0; i < 100; i++)); do
        read -r x0 _ < <(wgdp_totals "sbmb$SFX")
        ((x0 > 0)) && break
        sleep 0.1
    done
    ((x0 > 0)) || die "($tag) $size: nothing decapsulated by B within 10 s; logs in $d"
    sleep 1
    t0=$(date +%s.%N)
    read -r x0 b0 _ < <(wgdp_totals "sbmb$SFX")
    read -r _ _ e0 dr0 < <(wgdp_totals "sbma$SFX")
    sleep "$TIME"
    t1=$(date +%s.%N)
    read -r x1 b1 _ < <(wgdp_totals "sbmb$SFX")
    read -r _ _ e1 dr1 < <(wgdp_totals "sbma$SFX")
    read -r M[$tag:$size:mpps] M[$tag:$size:gbps] M[$tag:$size:encmpps] < <(python3 -c '
import sys
t0, t1, x0, x1, b0, b1, e0, e1 = map(float, sys.argv[1:])
t = t1 - t0
print("%.3f %.3f %.3f" % ((x1 - x0) / t / 1e6, (b1 - b0) * 8 / t / 1e9, (e1 - e0) / t / 1e6))' \
        "$t0" "$t1" "$x0" "$x1" "$b0" "$b1" "$e0" "$e1")
    M[$tag:$size:drops]=$((dr1 - dr0))
    log "($tag) $size: B decapsulated ${M[$tag:$size:mpps]} Mpps, ${M[$tag:$size:gbps]} Gbit/s of inner packets; A encapsulated ${M[$tag:$size:encmpps]} Mpps, A dropped ${M[$tag:$size:drops]} (source faster than the tunnel)"
    "$WGDP" show --interface "sbma$SFX" >"$d/a.show" 2>&1 || true
    "$WGDP" show --interface "sbmb$SFX" >"$d/b.show" 2>&1 || true
    # Both at once: while one busy-polls both CPUs, this VM's kernel can
    # take minutes to reap the other (docs/testing.md, "The two cores").
    kill_pid "$bpid" "$apid"
    local c
    for i in a b; do
        grep -q '^mbufs_in_use 0$' "$d/$i.log" || log "($tag) warning: wgdp $i did not return every mbuf"
        for c in lane_encap lane_decap plaintext_handoff tunnel_handoff; do
            M[$tag:$size:$i:$c]=$(report_counter "$d/$i.log" "event.$c")
        done
    done
}
run_memif() {
    local s
    for s in "${SIZES[@]}"; do run_memif_size d "$s" 1 1; done
}

# ---------------------------------------------------------------- (l) one tunnel, 1 lane and 2 lanes
LANE_SIZE=1420
run_lanes() {
    run_memif_size l1 $LANE_SIZE 2 1
    run_memif_size l2 $LANE_SIZE 2 2
    local c
    for c in a:lane_encap b:lane_decap; do
        [[ ${M[l2:$LANE_SIZE:$c]} =~ ^[1-9][0-9]*$ ]] ||
            die "(l) lanes = 2: ${c#*:} on ${c%:*} is ${M[l2:$LANE_SIZE:$c]}: the second lane carried nothing; logs in $DIR/memif-l2-$LANE_SIZE"
    done
}

# ---------------------------------------------------------------- run and report
log "side by side: ${TIME}s per run, scenarios $ONLY, state in $DIR"
want a && run_wgdp
want b && run_wggo
want c && run_fwd
want d && run_memif
want l && run_lanes

ratio() { # a b
    python3 -c 'import sys; a, b = sys.argv[1:]; print("-" if a in ("", "-") or b in ("", "-") or float(b) == 0 else "%.2f" % (float(a) / float(b)))' "${1:--}" "${2:--}"
}
if want a || want b || want c; then
echo
echo "== iperf3 TCP, MTU 1420, Gbit/s received (${TIME}s per run; out = from lan into the tunnel, in = -R)"
printf '%-8s %-4s %8s %8s %8s %10s %10s\n' streams dir wgdp wg-go fwd wgdp/wg-go wgdp/fwd
for n in "${STREAMS[@]}"; do
    for d in out in; do
        a=${R[wgdp:$n:$d]:--} b=${R[wggo:$n:$d]:--} c=${R[fwd:$n:$d]:--}
        printf '%-8s %-4s %8s %8s %8s %10s %10s\n' "$n" "$d" "$a" "$b" "$c" "$(ratio "$a" "$b")" "$(ratio "$a" "$c")"
    done
done
fi
if want d; then
    echo
    echo "== wgdp -> memif -> wgdp (one worker each), ${TIME}s per size"
    printf '%-6s %12s %14s %12s\n' size "B Mpps" "B Gbit/s" "A encap Mpps"
    for s in "${SIZES[@]}"; do
        printf '%-6s %12s %14s %12s\n' "$s" "${M[d:$s:mpps]}" "${M[d:$s:gbps]}" "${M[d:$s:encmpps]}"
    done
    echo "(Gbit/s: inner IP packets delivered by B; sizes are frames without FCS: 64 = 60-byte frames, 1420 = 1420-byte IP packets, imix = 7:4:1 of 64/570/1438-byte frames: net_memif in DPDK 22.11 carries at most 1518-byte frames, so the large ones are 1420-byte packets as at MTU 1420)"
fi
if want l; then
    echo
    echo "== one tunnel, wgdp -> memif (2 queues) -> wgdp, 2 workers each, $LANE_SIZE B, ${TIME}s per run"
    printf '%-6s %8s %9s %12s %12s %12s %13s %13s\n' lanes "B Mpps" "B Gbit/s" "A encap Mpps" \
        "A lane_encap" "B lane_decap" "A pt_handoff" "B tun_handoff"
    for t in l1 l2; do
        printf '%-6s %8s %9s %12s %12s %12s %13s %13s\n' "${t#l}" "${M[$t:$LANE_SIZE:mpps]}" \
            "${M[$t:$LANE_SIZE:gbps]}" "${M[$t:$LANE_SIZE:encmpps]}" "${M[$t:$LANE_SIZE:a:lane_encap]}" \
            "${M[$t:$LANE_SIZE:b:lane_decap]}" "${M[$t:$LANE_SIZE:a:plaintext_handoff]}" \
            "${M[$t:$LANE_SIZE:b:tunnel_handoff]}"
    done
    echo "lanes ratio (B Mpps, 2 lanes / 1 lane): $(ratio "${M[l2:$LANE_SIZE:mpps]}" "${M[l1:$LANE_SIZE:mpps]}")"
    echo "(lane_encap, lane_decap and the handoffs (pt: plaintext, tun: tunnel) are totals over each whole"
    echo " run, from the report on exit. A's source replays one pcap per queue, 16 flows each, so both of A's"
    echo " workers receive plaintext for the peer; with 1 lane the second hands it to the owner."
    echo " Not a scaling figure: memif queue q of A is queue q of B, and worker q of each side runs on core q"
    echo " here, so with 1 lane A's owner and B's worker on its queue share one core for all the crypto while"
    echo " the other core runs a handoff loop and an idle poller; with 2 lanes both cores do crypto. The"
    echo " target (>= 1.8x) wants 2 cores per side: 4 busy workers on $(nproc) CPUs time-share them)"
fi
echo
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; other work on the machine skews these figures)"
