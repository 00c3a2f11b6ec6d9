#!/usr/bin/env bash
# The far ends of a wgdp hardware benchmark's tunnels, on the "peer box":
# one kernel WireGuard interface per tunnel (each tunnel needs its own key,
# so one WireGuard identity per tunnel), from the tables gen_tables.py wrote.
#
#   bench/peer-box.sh DIR up DUT_IF TG_IF   (as root, on the peer box)
#   bench/peer-box.sh DIR down
#
# DIR holds peers.tsv and peer-box.env (gen_tables.py --out DIR). DUT_IF is
# the NIC cabled to the DUT's tunnel port, TG_IF the NIC cabled to TG port 1.
# `up` makes, for tunnel k: interface wgbK listening on UDP 20000+k, the DUT
# as its only peer (endpoint the DUT's tunnel port, allowed IPs 48.0.0.0/8:
# TG port 0's side), and the route of k's decap destination 48.1.H.L into
# it. Packets the DUT encrypted come out of wgbK and are routed to TG port 1
# (16.0.0.0/8 via TG1). Needs Linux's WireGuard module (or wireguard-go as
# WG_IMPL=wireguard-go, far slower) and wireguard-tools.
set -euo pipefail

DIR=${1:?usage: peer-box.sh DIR up DUT_IF TG_IF | DIR down}
CMD=${2:?usage: peer-box.sh DIR up DUT_IF TG_IF | DIR down}
[[ -f $DIR/peers.tsv && -f $DIR/peer-box.env ]] || { echo "peer-box.sh: $DIR has no peers.tsv/peer-box.env (gen_tables.py --out $DIR)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$DIR/peer-box.env"
IMPL=${WG_IMPL:-kernel}

up() {
    local dut_if=${1:?DUT_IF} tg_if=${2:?TG_IF} k priv pub port prefix ddst ifc
    ip addr replace "$DUT_SIDE_ADDRESS" dev "$dut_if"
    ip addr replace "$TG_SIDE_ADDRESS" dev "$tg_if"
    ip link set "$dut_if" mtu 1600 up
    ip link set "$tg_if" up
    sysctl -qw net.ipv4.ip_forward=1
    ip route replace "$TUNNELS_NET" via "$TG1_IP" dev "$tg_if"
    while IFS=$'\t' read -r k priv pub port prefix ddst; do
        [[ $k == \#* ]] && continue
        ifc=wgb$k
        if [[ $IMPL == wireguard-go ]]; then
            wireguard-go "$ifc"
        else
            ip link add "$ifc" type wireguard
        fi
        wg set "$ifc" private-key <(printf '%s\n' "$priv") listen-port "$port" \
            peer "$DUT_PUBLIC_KEY" endpoint "$DUT_ENDPOINT" allowed-ips "$TG0_NET"
        ip link set "$ifc" mtu 1500 up
        ip route replace "$ddst/32" dev "$ifc"
    done <"$DIR/peers.tsv"
    echo "peer-box.sh: $(grep -vc '^#' "$DIR/peers.tsv") tunnels up"
}

down() {
    local k _
    while IFS=$'\t' read -r k _; do
        [[ $k == \#* ]] && continue
        ip link del "wgb$k" 2>/dev/null || true
    done <"$DIR/peers.tsv"
    ip route del "$TUNNELS_NET" 2>/dev/null || true
    echo "peer-box.sh: down"
}

case $CMD in
up) up "${3:-}" "${4:-}" ;;
down) down ;;
*) echo "usage: peer-box.sh DIR up DUT_IF TG_IF | DIR down" >&2; exit 2 ;;
esac
