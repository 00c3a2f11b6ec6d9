#!/usr/bin/env bash
# README command 1: install what wgdp needs, build it, and run it as a VPN
# concentrator between two real WireGuard peers (wireguard-go) in network
# namespaces: pings through the tunnels both ways, iperf3 both ways, then
# wgdp's counters. Everything it creates is torn down on exit.
#
#   scripts/demo.sh           the concentrator demo (as root)
#   scripts/demo.sh --smoke   the DPDK smoke run: forwarding between two
#                             net_null vdevs on one worker lcore, then port
#                             statistics (`wgdp smoke`)
#
# The namespaces, keys, peers and config come from tests/e2e/topology.sh,
# the same as the end-to-end test's (docs/testing.md has the diagram).
# Environment: E2E_SFX (name suffix, see topology.sh), WGDP_DEMO_LOG (wgdp's
# log, default /tmp/wgdp-demo.log), WGDP_BIN (the binary to run, default
# ./target/release/wgdp).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == --smoke ]]; then
    shift
    scripts/install.sh
    exec ./target/release/wgdp smoke "$@"
fi
if (($#)); then
    echo "usage: scripts/demo.sh [--smoke [wgdp smoke options]]" >&2
    exit 2
fi

scripts/install.sh

TOPO=tests/e2e/topology.sh
WGDP=${WGDP_BIN:-./target/release/wgdp}
LOG=${WGDP_DEMO_LOG:-/tmp/wgdp-demo.log}
INTERVAL=5

if [[ -t 1 ]]; then
    step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
    step() { printf '\n==> %s\n' "$*"; }
fi

WGDP_PID="" TAIL_PID=""
stop_wgdp() { # SIGTERM, then SIGKILL after 10 s; by PID
    local i
    [[ -n $WGDP_PID && -d /proc/$WGDP_PID ]] || return 0
    kill -TERM "$WGDP_PID" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -d /proc/$WGDP_PID ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$WGDP_PID ]]; then
        echo "wgdp did not stop within 10 s of SIGTERM: SIGKILL" >&2
        kill -KILL "$WGDP_PID" 2>/dev/null || true
    fi
    wait "$WGDP_PID" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    stop_wgdp
    if [[ -n $TAIL_PID ]]; then
        kill "$TAIL_PID" 2>/dev/null || true
        wait "$TAIL_PID" 2>/dev/null || true
    fi
    step "teardown"
    "$TOPO" down || true
    ((rc == 0)) || echo "demo failed (exit $rc); wgdp's log: $LOG" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "topology: keys, namespaces, wireguard-go peers ($TOPO up)"
"$TOPO" up
eval "$("$TOPO" env)"
CONFIG=$DIR/wgdp.toml
"$TOPO" config >"$CONFIG"
echo "config $CONFIG:"
sed 's/^/    /' "$CONFIG"

step "wgdp run --config $CONFIG --report-interval $INTERVAL (log: $LOG)"
"$WGDP" run --config "$CONFIG" --report-interval "$INTERVAL" </dev/null >"$LOG" 2>&1 &
WGDP_PID=$!
tail --pid="$WGDP_PID" -n +1 -f "$LOG" > >(sed -u 's/^/    wgdp | /') &
TAIL_PID=$!
for ((i = 0; i < 200; i++)); do
    grep -q '^wgdp: running' "$LOG" && break
    [[ -d /proc/$WGDP_PID ]] || break
    sleep 0.1
done
if ! grep -q '^wgdp: running' "$LOG"; then
    echo "wgdp did not print 'wgdp: running' within 20 s" >&2
    exit 1
fi

step "attach wgdp's ports: $TAP_WAN -> $NS_WAN, $TAP_LAN -> $NS_LAN ($TOPO attach)"
"$TOPO" attach

step "ping $NS_LAN -> peer 1 ($PEER1_IP): wgdp initiates the handshake"
ip netns exec "$NS_LAN" ping -n -c 3 -i 0.2 -w 10 "$PEER1_IP"

step "ping peer 2 ($NS_WAN2, $PEER2_IP) -> $NS_LAN ($LAN_IP): the peer initiates"
ip netns exec "$NS_WAN2" ping -n -c 3 -i 0.2 -w 10 "$LAN_IP"

step "wg show in $NS_WAN and $NS_WAN2"
ip netns exec "$NS_WAN" wg show "$WG1"
ip netns exec "$NS_WAN2" wg show "$WG2"

iperf() { # server-ns server-ip client-ns
    local spid
    ip netns exec "$1" iperf3 -s -1 -B "$2" </dev/null >/dev/null 2>&1 &
    spid=$!
    for ((i = 0; i < 50; i++)); do
        [[ -n $(ip netns exec "$1" ss -Hltn sport = :5201) ]] && break
        sleep 0.1
    done
    ip netns exec "$3" iperf3 -c "$2" -t 5 -f m | grep -E 'sender|receiver' | sed 's/^/    /'
    wait "$spid" 2>/dev/null || true
}
step "iperf3 TCP 5 s: $NS_LAN -> peer 1"
iperf "$NS_WAN" "$PEER1_IP" "$NS_LAN"
step "iperf3 TCP 5 s: peer 1 -> $NS_LAN"
iperf "$NS_LAN" "$LAN_IP" "$NS_WAN"

step "SIGTERM wgdp: its final report"
kill "$TAIL_PID" 2>/dev/null || true
wait "$TAIL_PID" 2>/dev/null || true
TAIL_PID=""
lines=$(wc -l <"$LOG")
stop_wgdp
tail -n +"$((lines + 1))" "$LOG" | sed 's/^/    /'
WGDP_PID=""
step "done; wgdp's whole log is in $LOG"
