#!/usr/bin/env bash
# Scale benchmark (issue #6): a tunnel table of N peers with real keys is
# checked, loaded by a real `wgdp run` on two net_null ports, inspected
# with `wg show dump` and changed with `wg set` and `wg setconf`; prints
# how long each step took and the process's memory. Figures, not
# thresholds: it fails only when a step fails or a peer count is wrong.
#
#   scripts/bench-scale.sh [--peers N] [--extra M] [--bin PATH] [--keys FILE]
#
#   --peers N    peers in the table (default 100000)
#   --extra M    peers added by one `wg set` and removed again by
#                `wg setconf` (default 1000)
#   --bin PATH   the wgdp binary (default target/release/wgdp)
#   --keys FILE  reuse key pairs (`wgdp gen-keys` output, N+M+1 lines)
#
# Needs root (the exception TAPs), `wg` and `ip`. Every figure is printed
# as a line `scale NAME VALUE`; docs/scale.md records them at 100k.
set -euo pipefail
cd "$(dirname "$0")/.."

peers=100000
extra=1000
bin=target/release/wgdp
keys=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --peers) peers="$2"; shift 2 ;;
    --extra) extra="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --keys) keys="$2"; shift 2 ;;
    *) echo "bench-scale: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $EUID -eq 0 ]] || { echo "bench-scale: needs root (exception TAPs)" >&2; exit 1; }
for tool in wg ip awk; do
    command -v "$tool" >/dev/null || { echo "bench-scale: needs $tool" >&2; exit 1; }
done
[[ -x "$bin" ]] || { echo "bench-scale: no binary at $bin (cargo build --release)" >&2; exit 1; }
(( peers >= 1 && peers <= 4000000 && extra >= 0 )) || { echo "bench-scale: bad counts" >&2; exit 2; }

sfx=$$
iface="wgsc$sfx"
prefix="wgdp-scale$sfx"
dir=$(mktemp -d /tmp/wgdp-scale.XXXXXX)
pid=""
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
umask 077

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
figure() { printf 'scale %-22s %s\n' "$1" "$2"; }
fail() {
    echo "bench-scale: $*" >&2
    for f in run.out run.err; do
        [[ -s "$dir/$f" ]] && { echo "--- $f (tail)" >&2; tail -n 20 "$dir/$f" >&2; }
    done
    exit 1
}
rss_mb() { awk -v k="$2:" '$1 == k { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# Keys: line 1 is the interface, then the table's peers, then the extra ones.
total=$((peers + extra + 1))
if [[ -z "$keys" ]]; then
    keys="$dir/keys"
    t0=$EPOCHREALTIME
    "$bin" gen-keys --count "$total" >"$keys"
    figure keygen_s "$(elapsed "$t0" "$EPOCHREALTIME")"
fi
[[ $(wc -l <"$keys") -ge $total ]] || fail "$keys has fewer than $total key pairs"

# Peer i (from 0): allowed 100.64.0.0/10 host i + 2 (.1 is ours), endpoint 198.18.x.y:51820.
peer_awk='function ip(i) { i += 2; return sprintf("100.%d.%d.%d", 64 + int(i / 65536), int(i / 256) % 256, i % 256) }
function ep(i) { return sprintf("198.18.%d.%d:51820", int(i / 256) % 256, i % 256) }'
{
    cat <<EOF
[interface]
name = "$iface"
private_key = "$(head -n 1 "$keys" | cut -d' ' -f1)"
listen_port = 51820

[dpdk]
eal_args = ["-l", "0-1", "--no-huge", "--no-shconf", "--no-pci", "-m", "256", "--file-prefix=$prefix", "--vdev", "net_null0,no-rx=1", "--vdev", "net_null1,no-rx=1"]
workers = [1]
mbufs = 4095
idle_sleep_us = 100
idle_polls = 256

[ports.tunnel]
device = "net_null0"
address = ["198.18.0.1/15"]
tap = "wsct$sfx"

[ports.plaintext]
device = "net_null1"
address = ["100.64.0.1/10"]
tap = "wscp$sfx"
EOF
    awk -v n="$peers" "$peer_awk"'
        NR > 1 && NR <= n + 1 { i = NR - 2
            printf "\n[[peers]]\npublic_key = \"%s\"\nendpoint = \"%s\"\nallowed_ips = [\"%s/32\"]\n", $2, ep(i), ip(i) }' "$keys"
} >"$dir/table.toml"
# The same peers for `wg setconf`, which drops every peer it does not list
# and sets the private key and port (to zero when absent: restate them).
awk -v n="$peers" "$peer_awk"'
    NR == 1 { printf "[Interface]\nPrivateKey = %s\nListenPort = 51820\n", $1 }
    NR > 1 && NR <= n + 1 { i = NR - 2
        printf "\n[Peer]\nPublicKey = %s\nEndpoint = %s\nAllowedIPs = %s/32\n", $2, ep(i), ip(i) }' \
    "$keys" >"$dir/setconf.conf"
figure peers "$peers"
figure cpus "$(nproc)"
figure loadavg "$(cut -d' ' -f1 /proc/loadavg)"
figure table_mb "$(du -m "$dir/table.toml" | cut -f1)"

t0=$EPOCHREALTIME
"$bin" check --config "$dir/table.toml" >"$dir/check.out" || fail "wgdp check refused the table"
figure check_s "$(elapsed "$t0" "$EPOCHREALTIME")"
grep -q "ok: $peers peers" "$dir/check.out" || fail "check: $(cat "$dir/check.out")"

# Ready: the UAPI socket answers. `wg set IF listen-port P` restating the
# port changes nothing, and it is a round trip through the control
# thread, which serves the socket only once every peer is in.
deadline=$((SECONDS + 120))
t0=$EPOCHREALTIME
"$bin" run --config "$dir/table.toml" >"$dir/run.out" 2>"$dir/run.err" &
pid=$!
until wg set "$iface" listen-port 51820 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || fail "wgdp run exited"
    ((SECONDS < deadline)) || fail "not ready after 120 s"
    sleep 0.01
done
figure ready_s "$(elapsed "$t0" "$EPOCHREALTIME")"
figure rss_ready_mb "$(rss_mb "$pid" VmRSS)"

count_dump() { wg show "$iface" dump >"$dir/dump" || fail "wg show dump"; echo $(($(wc -l <"$dir/dump") - 1)); }
for run in 1 2 3; do
    t0=$EPOCHREALTIME
    n=$(count_dump)
    figure "show_dump_s" "$(elapsed "$t0" "$EPOCHREALTIME")"
done
figure show_peers "$n"
[[ $n -eq $peers ]] || fail "wg show dump listed $n peers, not $peers"
figure rss_loaded_mb "$(rss_mb "$pid" VmRSS)"
# CPU of the idle process (control thread, idle worker) over 2 s: the
# per-peer scans of the control thread show here.
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
c0=$(ticks)
sleep 2
figure idle_cpu_pct "$(( ($(ticks) - c0) * 100 / $(getconf CLK_TCK) / 2 ))"

# One `wg set` adding the extra peers.
if (( extra > 0 )); then
    mapfile -t args < <(awk -v n="$peers" -v m="$extra" "$peer_awk"'
        NR > n + 1 && NR <= n + m + 1 { i = NR - 2
            print "peer"; print $2; print "allowed-ips"; print ip(i) "/32"; print "endpoint"; print ep(i) }' "$keys")
    t0=$EPOCHREALTIME
    wg set "$iface" "${args[@]}" || fail "wg set of $extra peers"
    figure set_batch_s "$(elapsed "$t0" "$EPOCHREALTIME")"
    n=$(count_dump)
    figure set_peers "$n"
    [[ $n -eq $((peers + extra)) ]] || fail "after wg set: $n peers, not $((peers + extra))"
fi
# The table file as written back by that `wg set` (before the reply, so
# it is there now): every peer, the extra ones included. Checked here, as
# the `wg setconf` below restores the original peer set.
"$bin" check --config "$dir/table.toml" >"$dir/check.out" || fail "the table written back after wg set does not load"
n=$(sed -n 's/.*ok: \([0-9]*\) peers.*/\1/p' "$dir/check.out")
figure written_back_set_peers "$n"
[[ $n -eq $((peers + extra)) ]] || fail "the table written back after wg set has $n peers, not $((peers + extra))"

# The first peer gets a pre-shared key, a keepalive and a second prefix;
# `wg setconf` (replace_peers) must give it exactly its listed
# configuration again: none of the three.
first=$(sed -n 2p "$keys" | cut -d' ' -f2)
"$bin" gen-keys --count 1 | cut -d' ' -f1 >"$dir/psk"
wg set "$iface" peer "$first" preshared-key "$dir/psk" persistent-keepalive 25 \
    allowed-ips 100.64.0.2/32,10.200.0.0/24 || fail "wg set of the first peer"
peer_line() { wg show "$iface" dump | awk -v k="$1" '$1 == k { print $2, $4, $8 }'; }
line=$(peer_line "$first")
[[ $line == "$(cat "$dir/psk") "*10.200.0.0/24*" 25" ]] || fail "wg set did not take: $line"
# The first peer's entry in the table file: the three changes written back.
peer_entry() { awk -v k="public_key = \"$first\"" '$0 == k { on = 1; next } /^\[\[peers\]\]/ { on = 0 } on' "$dir/table.toml"; }
entry=$(peer_entry)
[[ $entry == *'"10.200.0.0/24"'* && $entry == *preshared_key* && $entry == *'persistent_keepalive = 25'* ]] ||
    fail "after wg set the written-back entry of the first peer is: $entry"

# `wg setconf` back to the table's peers: the extra ones are removed.
t0=$EPOCHREALTIME
wg setconf "$iface" "$dir/setconf.conf" || fail "wg setconf"
figure setconf_s "$(elapsed "$t0" "$EPOCHREALTIME")"
n=$(count_dump)
figure setconf_peers "$n"
[[ $n -eq $peers ]] || fail "after wg setconf: $n peers, not $peers"
line=$(peer_line "$first")
[[ $line == "(none) 100.64.0.2/32 off" ]] || fail "after wg setconf the first peer is: $line"
figure rss_mb "$(rss_mb "$pid" VmRSS)"
figure rss_peak_mb "$(rss_mb "$pid" VmHWM)"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[[ $rc -eq 0 ]] || fail "wgdp run exited $rc"
grep -q "^mbufs_in_use 0$" "$dir/run.out" || fail "mbufs not all returned"
# The table as written back by the live changes still loads, same peers.
"$bin" check --config "$dir/table.toml" >"$dir/check.out" || fail "the written-back table does not load"
n=$(sed -n 's/.*ok: \([0-9]*\) peers.*/\1/p' "$dir/check.out")
figure written_back_peers "$n"
[[ $n -eq $peers ]] || fail "written-back table has $n peers, not $peers"
entry=$(peer_entry)
[[ $entry == *'allowed_ips = ["100.64.0.2/32"]'* && $entry != *preshared_key* && $entry != *persistent_keepalive* ]] ||
    fail "the written-back entry of the first peer is: $entry"
