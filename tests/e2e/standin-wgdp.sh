#!/usr/bin/env bash
# A stand-in for `wgdp run`, for checking tests/e2e.rs and topology.sh
# without wgdp: WGDP_E2E_BIN=tests/e2e/standin-wgdp.sh cargo nextest run -p
# wgdp --test e2e. It is NOT wgdp and tests nothing of it.
#
#   standin-wgdp.sh run --config FILE [--report-interval SECS]
#
# It reads the parts of wgdp's config that topology.sh writes and builds the
# same outside view from kernel parts: a namespace (standin-PID) holding the
# "ports" (veth pairs whose root-namespace ends get the config's iface= names,
# for `topology.sh attach` to move) and a third wireguard-go with wgdp's key,
# listen port and peers, with IP forwarding between them. It prints the
# `wgdp run` contract's lines: `port ROLE DEVICE mac MAC`, `wgdp: running`,
# and reports whose figures come from real events:
#   counter drop.no_route               IpExt InNoRoutes of the namespace
#   counter drop.inner_source_spoofed   wireguard-go's "disallowed source" log lines
#   counter control.handshakes_completed  peers with a handshake
#   peer KEY handshakes= rx_bytes= tx_bytes= endpoint=   from `wg show dump`
#   mbufs_in_use 0
# SIGTERM/SIGINT: final report, namespace and wireguard-go removed, exit 0.
# (A SIGKILL leaves namespace standin-PID and its wireguard-go behind.)
set -euo pipefail

[[ ${1:-} == run ]] || {
    echo "usage: $0 run --config FILE [--report-interval SECS]" >&2
    exit 2
}
shift
CONFIG="" INTERVAL=0
while (($#)); do
    case $1 in
    --config) CONFIG=$2 && shift 2 ;;
    --report-interval) INTERVAL=$2 && shift 2 ;;
    *) echo "standin: unknown argument $1" >&2 && exit 2 ;;
    esac
done
[[ -f $CONFIG ]] || {
    echo "standin: no config file '$CONFIG'" >&2
    exit 1
}

# The config, as topology.sh writes it: one key = value per line.
section_value() { # section key -> value without quotes/brackets
    awk -v s="[$1]" -v k="$2" '
        /^\[/ { cur = $0 }
        cur == s && $1 == k { sub(/^[^=]*= */, ""); gsub(/[]["]/, ""); print; exit }' "$CONFIG"
}
KEY_FILE=$(section_value interface private_key_file)
LISTEN=$(section_value interface listen_port)
TUN_DEV=$(section_value ports.tunnel device)
TUN_ADDR=$(section_value ports.tunnel address)
TUN_GW=$(section_value ports.tunnel gateway)
PT_DEV=$(section_value ports.plaintext device)
PT_ADDR=$(section_value ports.plaintext address)
PT_MTU=$(section_value ports.plaintext mtu)
TUN_IF=${TUN_DEV#*iface=}
PT_IF=${PT_DEV#*iface=}
# Peers: "key endpoint|none allowed-ips" per line.
PEERS=$(awk '
    /^\[\[peers\]\]/ { if (k) print k, (e ? e : "none"), a; k = e = a = ""; p = 1; next }
    /^\[/ { p = 0 }
    p && $1 == "public_key" { k = $3; gsub(/"/, "", k) }
    p && $1 == "endpoint" { e = $3; gsub(/"/, "", e) }
    p && $1 == "allowed_ips" { sub(/^[^=]*= */, ""); gsub(/[]["[:space:]]/, ""); a = $0 }
    END { if (k) print k, (e ? e : "none"), a }' "$CONFIG")

NS=standin-$$
WG=wgsi$$
WG=${WG:0:15}
cleanup() {
    [[ -n ${WG_PID:-} && -d /proc/$WG_PID ]] && kill -TERM "$WG_PID" 2>/dev/null && wait "$WG_PID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null || true
    rm -f "/var/run/wireguard/$WG.sock"
    rm -f "${LOG:-}"
}
trap cleanup EXIT

ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
# "Ports": veth pairs; the root-namespace ends carry the config's iface names.
ip link add "$TUN_IF" type veth peer name tun netns "$NS"
ip link add "$PT_IF" type veth peer name pt netns "$NS"
ip link set "$PT_IF" mtu "$PT_MTU"
for i in tun pt; do
    ip netns exec "$NS" ethtool -K "$i" tx off tso off gso off gro off >/dev/null 2>&1 || true
done
ethtool -K "$TUN_IF" tx off tso off gso off gro off >/dev/null 2>&1 || true
ethtool -K "$PT_IF" tx off tso off gso off gro off >/dev/null 2>&1 || true
ip -n "$NS" link set pt mtu "$PT_MTU"
ip -n "$NS" addr add "$TUN_ADDR" dev tun
ip -n "$NS" addr add "$PT_ADDR" dev pt
ip -n "$NS" link set tun up
ip -n "$NS" link set pt up
ip link set "$TUN_IF" up
ip link set "$PT_IF" up
ip -n "$NS" route add 198.51.100.0/24 via "$TUN_GW" dev tun onlink

LOG=$(mktemp /tmp/standin-wg.XXXXXX)
LOG_LEVEL=verbose ip netns exec "$NS" wireguard-go -f "$WG" </dev/null >"$LOG" 2>&1 &
WG_PID=$!
for ((i = 0; i < 100; i++)); do
    [[ -S /var/run/wireguard/$WG.sock ]] && break
    sleep 0.1
done
ip netns exec "$NS" wg set "$WG" private-key "$KEY_FILE" listen-port "$LISTEN"
ip -n "$NS" link set "$WG" up
while read -r key endpoint allowed; do
    [[ -n $key ]] || continue
    args=(peer "$key" allowed-ips "$allowed")
    [[ $endpoint != none ]] && args+=(endpoint "$endpoint")
    ip netns exec "$NS" wg set "$WG" "${args[@]}"
    for a in ${allowed//,/ }; do ip -n "$NS" route add "$a" dev "$WG"; done
done <<<"$PEERS"

echo "standin: not wgdp; a wireguard-go in namespace $NS"
echo "port tunnel $TUN_DEV mac $(ip -n "$NS" -br link show tun | awk '{print $3}')"
echo "port plaintext $PT_DEV mac $(ip -n "$NS" -br link show pt | awk '{print $3}')"
echo "wgdp: running"

report() {
    local noroutes spoofed hs=0 key endpoint rx tx latest
    noroutes=$(ip netns exec "$NS" awk '/^IpExt:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["InNoRoutes"] }' /proc/net/netstat)
    spoofed=$(grep -c 'disallowed source' "$LOG" || true)
    local peers
    peers=$(ip netns exec "$NS" wg show "$WG" dump | tail -n +2)
    while IFS=$'\t' read -r key _ endpoint _ latest rx tx _; do
        ((latest > 0)) && hs=$((hs + 1))
    done <<<"$peers"
    echo "counter drop.no_route $noroutes"
    echo "counter drop.inner_source_spoofed $spoofed"
    echo "counter control.handshakes_completed $hs"
    while IFS=$'\t' read -r key _ endpoint _ latest rx tx _; do
        [[ $endpoint == "(none)" ]] && endpoint=none
        echo "peer $key handshakes=$((latest > 0 ? 1 : 0)) rx_bytes=$rx tx_bytes=$tx endpoint=$endpoint"
    done <<<"$peers"
    echo "mbufs_in_use 0"
}

STOP=0
trap 'STOP=1' TERM INT
while ((STOP == 0)); do
    if ((INTERVAL > 0)); then
        sleep "$INTERVAL" &
    else
        sleep 3600 &
    fi
    SLEEP_PID=$!
    wait "$SLEEP_PID" || true
    kill "$SLEEP_PID" 2>/dev/null || true
    ((STOP == 0 && INTERVAL > 0)) && report
done
report
exit 0
