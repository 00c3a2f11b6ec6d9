#!/usr/bin/env bash
# pktgen-dpdk against real `wgdp run` processes over memif (as root), no NIC,
# no kernel on the path. Three cases:
#
#   encap   pktgen port 0 --memif--> wgdp plaintext   (wgdp encrypts)
#           pktgen port 1 <--memif-- wgdp tunnel      (counts sealed frames)
#   decap   pktgen port 1 --memif--> wgdp tunnel      (replays sealed data
#           pktgen port 0 <--memif-- wgdp plaintext    messages; wgdp decrypts)
#   tunnel  pktgen port 0 --memif--> wgdp A plaintext (A encrypts)
#                                    wgdp A tunnel --memif--> wgdp B tunnel
#           pktgen port 1 <--memif-- wgdp B plaintext (B decrypts)
#
# encap and decap: one wgdp with N peers whose endpoints sit behind pktgen's
# port 1 (gateway 203.0.113.254). pktgen cannot do a WireGuard handshake, so
# before each measurement `wgdp bench-peers handshake` takes port 1's place
# on wgdp's tunnel socket, completes a real handshake for every peer
# (protocol crate; the peer initiates, a keepalive confirms wgdp's session)
# and, for decap, writes the pcap pktgen replays: data messages sealed with
# the fresh keypairs, each counter once (wgdp's replay window drops a
# repeated counter, so the decap run is bounded to one pass of the pcap:
# every trial sends at most RFC2544_TRIAL_COUNT frames, the run at most the
# pcap's frames). Fresh sessions for each size; a search ends where the
# first of them reaches REJECT_AFTER_TIME (180 s), after which wgdp may
# not use it (rfc2544.lua's RFC2544_DEADLINE; at 100,000 peers, whose
# round can take most of that, a search may be cut there, marked *). In
# encap, wgdp hears nothing back from its peers, so 15 s after it starts
# sending it begins handshake initiations towards port 1 (WireGuard's
# new_handshake timer): port 1's
# count is taken less the initiations and keepalives wgdp sent (its control
# counters) and the ARP frames port 1 saw.
#
# For each case, peer count and size, bench/pktgen/rfc2544.lua searches for
# the highest rate the receiving port gets with zero loss and with at most
# 0.1 % loss; bench/pktgen/imix.lua then sends IMIX at a fixed rate for a
# few seconds (when the sizes include imix); the in-process `wgdp bench`
# figures of the same binary, same run, one worker, are printed beside them.
#
#   bench/pktgen/run.sh [--quick] [--cases LIST] [--peers LIST] [--sizes LIST]
#                       [--trial-ms MS]
#
#   --cases LIST    encap,decap,tunnel (default all three)
#   --peers LIST    peer counts (default 1,1024,100000). encap/decap: peers of
#                   wgdp's table, each with its own session and traffic
#                   (fixed sizes: every peer in turn; IMIX: the first 1022
#                   at most). tunnel: the size of A's table, B plus idle peers.
#   --sizes LIST    inner IP packet sizes as `wgdp bench` names them (default
#                   64,512,1420,imix); frames are 18 bytes longer (pktgen
#                   counts the FCS). imix: 7:4:1 of 46/552/1420-byte packets
#                   (memif in DPDK 22.11 carries no frame above 1518 B).
#   --trial-ms MS   trial length (default 5000)
#   --quick         a functional pass (CI, a minute or two): encap and decap
#                   with 1 and 1024 peers, tunnel with 1, 1420 B only, 1 s
#                   trials, a coarse zero-loss search, a short IMIX pass, no
#                   in-process figure; fails unless every case moved traffic
#
# Cores (this machine has 2): pktgen's port lcore has core 1 to itself, its
# main lcore and the wgdp workers share core 0. Every process runs with
# --no-huge (anonymous memory, no hugepages taken from other users of the
# machine), its own --file-prefix (removed on exit) and, for pktgen, the
# smaller pools of bench/pktgen/wgdp.patch (~140 MB, plus the decap pcap).
#
# Environment: WGDP_BIN (default ./target/release/wgdp), PKTGEN_BIN (default:
# built by bench/pktgen/build.sh), PG_SFX (name suffix, [a-z0-9]{1,4},
# default from the PID), PG_DIR (state and logs, default /tmp/wgdp-pg-SFX;
# removed on exit unless PG_KEEP=1 or the run failed).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

CASES=encap,decap,tunnel PEERS=1,1024,100000 SIZES=64,512,1420,imix TRIAL_MS=5000 QUICK=0
while (($#)); do
    case $1 in
    --quick) QUICK=1; shift ;;
    --cases) CASES=${2:?--cases needs a list}; shift 2 ;;
    --peers) PEERS=${2:?--peers needs a list}; shift 2 ;;
    --sizes) SIZES=${2:?--sizes needs a list}; shift 2 ;;
    --trial-ms) TRIAL_MS=${2:?--trial-ms needs milliseconds}; shift 2 ;;
    *) sed -n '2,65p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
if ((QUICK)); then PEERS=1,1024 SIZES=1420 TRIAL_MS=1000; fi
[[ $TRIAL_MS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --trial-ms wants whole milliseconds" >&2; exit 2; }
[[ $PEERS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "run.sh: --peers wants counts, e.g. 1,1024" >&2; exit 2; }
[[ $SIZES =~ ^(imix|[0-9]+)(,(imix|[0-9]+))*$ ]] || { echo "run.sh: --sizes wants 64,512,1420,imix" >&2; exit 2; }
[[ $CASES =~ ^(encap|decap|tunnel)(,(encap|decap|tunnel))*$ ]] || { echo "run.sh: --cases wants encap,decap,tunnel" >&2; exit 2; }
for s in ${SIZES//,/ }; do
    [[ $s == imix ]] || ((s >= 46 && s <= 1420)) || { echo "run.sh: size $s is not in 46..1420" >&2; exit 2; }
done
has_case() { [[ ,$CASES, == *,$1,* ]]; }

WGDP=${WGDP_BIN:-$ROOT/target/release/wgdp}
SFX=${PG_SFX:-$(($$ % 10000))}
[[ $SFX =~ ^[a-z0-9]{1,4}$ ]] || { echo "run.sh: PG_SFX must match [a-z0-9]{1,4}" >&2; exit 2; }
DIR=${PG_DIR:-/tmp/wgdp-pg-$SFX}

log() { printf '==> [%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root (DPDK processes)"
for t in script python3 taskset; do
    command -v "$t" >/dev/null || die "missing $t (scripts/install.sh --deps-only installs it)"
done
[[ -x $WGDP ]] || die "no wgdp binary at $WGDP: cargo build --release (or set WGDP_BIN)"
WGDP=$(realpath "$WGDP") # pktgen's scripts run it from pktgen's directory
if [[ -z ${PKTGEN_BIN:-} ]]; then
    PKTGEN_BIN=$(bench/pktgen/build.sh | tail -1)
fi
[[ -x $PKTGEN_BIN ]] || die "no pktgen at $PKTGEN_BIN"
PKTGEN_SRC=$(cd "$(dirname "$PKTGEN_BIN")/../.." && pwd) # its Pktgen.lua

# --- bookkeeping: everything started is killed by PID, everything made is removed.
PIDS=() GRANDCHILDREN=() PREFIXES=()
mkdir -p "$DIR"
chmod 700 "$DIR"
# [--nowait] PID...: SIGTERM to all at once, SIGKILL to those left after
# 5 s; reaped unless --nowait (not our children). At once: while one wgdp
# busy-polls both CPUs, this VM's kernel can take minutes to reap another
# (docs/testing.md, "The two cores").
kill_pid() {
    local reap=1 pid i left
    [[ ${1:-} == --nowait ]] && { reap=0; shift; }
    for pid; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        left=0
        for pid; do [[ -d /proc/$pid ]] && left=1; done
        ((left)) || break
        sleep 0.1
    done
    for pid; do
        [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
        ((reap)) && { wait "$pid" 2>/dev/null || true; }
    done
    return 0
}
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    ((${#GRANDCHILDREN[@]} == 0)) || kill_pid --nowait "${GRANDCHILDREN[@]}"
    ((${#PIDS[@]} == 0)) || kill_pid "${PIDS[@]}"
    for p in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$p"; done
    if [[ ${PG_KEEP:-0} == 1 || $rc -ne 0 ]]; then
        echo "run.sh: logs kept in $DIR" >&2
    else
        rm -rf "$DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_log() { # file regex pid seconds
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        grep -qaE -- "$2" "$1" 2>/dev/null && return 0
        [[ -d /proc/$3 ]] || die "process $3 exited; its log $1:
$(tail -20 "$1")"
        sleep 0.1
    done
    die "no '$2' in $1 after $4 s:
$(tail -20 "$1")"
}

# The MACs the memif vdevs take (mac= devarg), so that pktgen's streams and
# pcaps can address wgdp's ports before it runs. The single-wgdp cases use
# the addresses of `wgdp bench` (src/bench/traffic.rs), which `wgdp
# bench-peers` writes into its frames: wgdp's tunnel 02:00:00:00:01:01
# (203.0.113.1), the gateway 02:00:00:00:01:02 (203.0.113.254, pktgen port
# 1), wgdp's plaintext 02:00:00:00:02:01 (10.0.0.1), the LAN host
# 02:00:00:00:02:02 (10.0.0.2, pktgen port 0).
MAC_A_PT=02:00:00:00:0a:01 MAC_B_PT=02:00:00:00:0b:01
MAC_A_TUN=02:00:00:00:0a:02 MAC_B_TUN=02:00:00:00:0b:02
MAC_PG0=02:00:00:00:0c:00 MAC_PG1=02:00:00:00:0c:01
MAC_S_TUN=02:00:00:00:01:01 MAC_GW=02:00:00:00:01:02
MAC_S_PT=02:00:00:00:02:01 MAC_LAN=02:00:00:00:02:02

# The sections every wgdp table here starts with: wgdp X (a, b or s) is
# interface pgX<sfx> with key DIR/X.key, one worker on CPU 0, and TAPs
# pgXt<sfx> (tunnel) and pgXp<sfx> (plaintext) beside its memif ports.
# idle_sleep_us: DPDK 22.11's memif server unmaps a port's rings when its
# client leaves (pktgen quitting, `bench-peers` handing the tunnel port to
# pktgen) without waiting for an rx_burst in progress on a worker; a
# worker that busy-polls is nearly always inside one, and under this
# machine's load it is preempted there often enough that wgdp died of
# SIGSEGV in librte_net_memif in three --quick runs out of three (core
# dump: the worker in memif's rx, EAL's interrupt thread in munmap). A
# worker that sleeps 100 us between polls once idle (1,024 empty polls,
# as between two pktgen runs) is rarely inside a burst when the client
# leaves; under traffic it never sleeps.
table_head() { # x dir mem_mb tunnel_device tunnel_address plaintext_device plaintext_address [gateway]
    local gw=
    [[ -n ${8:-} ]] && gw=$'\ngateway = "'$8'"'
    cat <<EOF
[interface]
name = "pg$1$SFX"
private_key_file = "$2/$1.key"
listen_port = 51820

[dpdk]
eal_args = ["--lcores=0@1,1@0", "--no-huge", "--no-shconf", "-m", "$3", "--no-pci", "--file-prefix=wgdp-pg-$1$SFX"]
workers = [1]
idle_sleep_us = 100

[ports.tunnel]
device = "$4"
address = ["$5"]$gw
mtu = 1500
tap = "pg$1t$SFX"

[ports.plaintext]
device = "$6"
address = ["$7"]
mtu = 1420
tap = "pg$1p$SFX"
EOF
}
# One [[peers]] entry: the other wgdp of the tunnel case.
peer_entry() { # key_pair_file endpoint allowed_ip
    printf '\n[[peers]]\npublic_key = "%s"\nendpoint = "%s"\nallowed_ips = ["%s"]\n' "$(cut -d' ' -f2 "$1")" "$2" "$3"
}
# wgdp A's table: memif server of pktgen port 0 (plaintext) and of B's
# tunnel port; B and PEERS-1 idle peers, one /24 each in 16.0.0.0/8+.
table_a() { # dir peers
    table_head a "$1" $(($2 > 10000 ? 1024 : 512)) "net_memif0,role=server,id=0,socket=$1/tun.sock,mac=$MAC_A_TUN" \
        203.0.113.1/24 "net_memif1,role=server,id=0,socket=$1/pa.sock,mac=$MAC_A_PT" 10.0.0.1/24
    peer_entry "$1/b.pair" 203.0.113.2:51820 10.1.0.0/24
    # Idle peers: peer k owns 16.0.0.0/8 + k * 256 (a /24), behind an
    # endpoint on the tunnel subnet that never answers.
    "$WGDP" gen-keys --count $(($2 - 1)) | awk '{
        k = NR; n = 16 * 16777216 + k * 256
        printf "\n[[peers]]\npublic_key = \"%s\"\nendpoint = \"203.0.113.%d:%d\"\nallowed_ips = [\"%d.%d.%d.0/24\"]\n",
            $2, 3 + k % 250, 1024 + int(k / 250), int(n / 16777216), int(n / 65536) % 256, int(n / 256) % 256
    }'
}
# wgdp B's table: memif client of A's tunnel port, memif server of pktgen
# port 1; one peer, A.
table_b() { # dir
    table_head b "$1" 512 "net_memif0,role=client,id=0,socket=$1/tun.sock,mac=$MAC_B_TUN" \
        203.0.113.2/24 "net_memif1,role=server,id=0,socket=$1/pb.sock,mac=$MAC_B_PT" 10.1.0.1/24
    peer_entry "$1/a.pair" 203.0.113.1:51820 10.0.0.0/24
}
# The single wgdp of encap and decap: memif server of pktgen port 0
# (plaintext) and of port 1 (tunnel, where `wgdp bench-peers` connects
# first); N peers from `wgdp bench-peers table`, endpoints behind the
# gateway, allowed IPs 10.128.0.0 + p.
table_s() { # dir peers
    table_head s "$1" $(($2 > 10000 ? 1024 : 512)) "net_memif0,role=server,id=0,socket=$1/tun.sock,mac=$MAC_S_TUN" \
        203.0.113.1/24 "net_memif1,role=server,id=0,socket=$1/pt.sock,mac=$MAC_S_PT" 10.0.0.1/24 203.0.113.254
    "$WGDP" bench-peers table --keys "$1/peers.keys"
}
# What rfc2544.lua reads (the format bench/gen_tables.py writes): the
# sending port, the receiving one, the MAC the frames go to, the source,
# the destinations (range mode: min, max, increment), the receiving port's
# address; for decap also the sending port's address and pcap_only.
env_lua() { # peers tx rx dut_mac src_ip dst_min dst_max dst_inc rx_ip [tx_ip]
    cat <<EOF
return {
    tunnels = $1,
    tx_port = "$2",
    rx_port = "$3",
    dut_plaintext_mac = "$4",
    src_ip = "$5",
    dst_min = "$6",
    dst_max = "$7",
    dst_inc = "$8",
    rx_ip = "$9",
EOF
    [[ -n ${10:-} ]] && printf '    tx_ip = "%s",\n    pcap_only = true,\n' "${10}"
    echo "}"
}
env_tunnel() { # peers: to B's side through A
    env_lua "$1" 0 1 "$MAC_A_PT" 10.0.0.2/24 10.1.0.2 10.1.0.2 0.0.0.0 10.1.0.2/24
}
env_encap() { # peers: plaintext to every peer's allowed IP in turn
    local last
    last=$(python3 -c 'import ipaddress, sys; print(ipaddress.ip_address("10.128.0.0") + int(sys.argv[1]) - 1)' "$1")
    env_lua "$1" 0 1 "$MAC_S_PT" 10.0.0.2/24 10.128.0.0 "$last" 0.0.0.1 203.0.113.254/24
}
env_decap() { # peers: port 1 replays the sealed pcap, port 0 receives
    env_lua "$1" 1 0 "$MAC_S_TUN" 203.0.113.254/24 203.0.113.1 203.0.113.1 0.0.0.0 10.0.0.2/24 203.0.113.254/24
}
# pktgen frame size (FCS included) for a `wgdp bench` inner IP size.
frame_size() { if [[ $1 == imix ]]; then echo imix; else echo $(($1 + 18)); fi; }
# Sealed frame length (no FCS) for an inner size: outer 42 + header 16 +
# padded to 16 + tag 16; IMIX: the mean of its cycle.
sealed_len() {
    python3 - "$1" <<'EOF'
import sys
pad = lambda n: 42 + 16 + (n + 15) // 16 * 16 + 16
s = sys.argv[1]
print(round(sum(map(pad, [46, 552, 46, 552, 46, 46, 552, 46, 1420, 46, 552, 46])) / 12) if s == "imix" else pad(int(s)))
EOF
}

# The search: from 3 % of memif's 100 Gbit/s (4.5 Mpps at 64 B, 0.26 Mpps at
# 1438 B) down to 0.01 %, pktgen's lowest rate. --quick: 0.02 % and 0.01 %
# only (~870 pps at 1438 B, which a debug build of wgdp carries), since CI
# runs it on the debug binary. At most 2 x 10 trials per size (20 with the
# first of each search), which the decap pcap must cover.
RES=0.01 MAX=3 LOSS=0,0.1 SETTLE=1000 WARM=20 MAX_TRIALS=22
((QUICK)) && RES=0.01 MAX=0.02 LOSS=0 SETTLE=500 MAX_TRIALS=4
# imix.lua: the fixed rate (percent of line rate) and seconds, after the
# searches when the sizes include imix; --quick runs it once per case,
# with the last peer count.
IMIX_RATE=0.01 IMIX_S=5
((QUICK)) && IMIX_S=2
imix_pass() { # peers
    if ((QUICK)); then [[ $1 == "${PEERS##*,}" ]]; else [[ ,$SIZES, == *,imix,* ]]; fi
}

declare -A R # R[case:peers:size:loss] = "rate_percent tx_pps rx_pps loss cut"; R[peers:size:inproc:dir] = Mpps; R[case:peers:imix] = "tx rx"
# One pktgen run: waits for it, checks its output, fills R. The caller has
# set PG_VDEV0/PG_VDEV1 (ports 0 and 1), PG_PCAP (-s argument) and
# PG_SCRIPT (rfc2544 or imix), and exports the scripts' environment.
pktgen_run() { # case peers size dir mem_mb
    local c=$1 n=$2 size=$3 d=$4 mem=$5
    local tag="$c-$size-$PG_SCRIPT" pg_cmd pg_args
    PREFIXES+=("wgdp-pg-g$SFX")
    # pktgen: lcore 0 (main, display) on core 0, lcore 1 (both ports) on
    # core 1. It needs a terminal: script(1) gives it one. The shell under
    # script(1) writes its PID and becomes pktgen, so that pktgen itself is
    # killed on the way out, not only script.
    printf -v pg_args '%q ' "$PKTGEN_BIN" --lcores=0@0,1@1 --no-huge -m "$mem" --no-pci --no-shconf \
        --file-prefix=wgdp-pg-g$SFX --vdev="$PG_VDEV0" --vdev="$PG_VDEV1" \
        -- -T -P -m 1.[0-1] -s "$PG_PCAP" -f "$ROOT/bench/pktgen/$PG_SCRIPT.lua"
    rm -f "$d/pktgen.pid" "$d/$tag.log" "$d/$tag.csv"
    pg_cmd="echo \$\$ >$(printf %q "$d/pktgen.pid"); exec $pg_args"
    (cd "$PKTGEN_SRC" && WGDP_BENCH_ENV=$d/env.lua RFC2544_OUT=$d/$tag.csv RFC2544_LOG=$d/$tag.log \
        IMIX_LOG=$d/$tag.log RFC2544_QUIT=1 script -qfec "$pg_cmd" /dev/null </dev/null >"$d/pktgen-$tag.log" 2>&1) &
    local gpid=$! i
    PIDS+=("$gpid")
    for ((i = 0; i < 100; i++)); do
        [[ -s $d/pktgen.pid ]] && break
        sleep 0.1
    done
    [[ -s $d/pktgen.pid ]] || die "pktgen did not start; $d/pktgen-$tag.log"
    GRANDCHILDREN+=("$(cat "$d/pktgen.pid")")
    # Each trial: TRIAL_MS + 500 ms + settle and two RX_OTHER commands
    # (`wgdp show`, which lists every peer: ~1 s + 0.1 ms a peer, ~5 s at
    # 100,000 here), up to MAX_TRIALS, under load up to twice that; plus
    # warm-up and start-up.
    local budget=$((120 + (TRIAL_MS + 1500 + SETTLE + 2 * (1000 + n / 10)) * MAX_TRIALS * 2 / 1000))
    for ((i = 0; i < budget; i++)); do
        [[ -d /proc/$gpid ]] || break
        sleep 1
    done
    [[ -d /proc/$gpid ]] && die "pktgen still running after $budget s; $d/pktgen-$tag.log"
    wait "$gpid" || true
    if [[ $PG_SCRIPT == imix ]]; then
        local line
        if grep -q '^imix error' "$d/$tag.log" 2>/dev/null; then die "pktgen: $(grep '^imix error' "$d/$tag.log"); $d"; fi
        line=$(grep -a '^imix [0-9]* tunnels' "$d/$tag.log" 2>/dev/null | tail -1) ||
            die "$c, $n peers: imix.lua wrote no summary; $d/pktgen-$tag.log"
        log "$c, $n peers: $line"
        [[ $line =~ tx\ ([0-9]+)\ rx\ ([0-9]+) ]] || die "$c: cannot read imix.lua's summary: $line"
        R[$c:$n:imix]="${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
        ((BASH_REMATCH[2] > 0)) || die "$c, $n peers: imix.lua: nothing arrived; logs in $d"
        return 0
    fi
    [[ -s $d/$tag.log ]] || die "pktgen ran no trial; $d/pktgen-$tag.log"
    if grep -q '^rfc2544 error' "$d/$tag.log"; then die "pktgen: $(grep '^rfc2544 error' "$d/$tag.log"); $d"; fi
    [[ -s $d/$tag.csv ]] || die "pktgen wrote no results; $d/pktgen-$tag.log"
    while read -r line; do log "$c, $n peers: $line"; done <"$d/$tag.log"
    local sz loss_l rate txp rxp lossp cut
    while IFS=, read -r sz loss_l rate txp rxp lossp cut; do
        [[ $sz == \#* || $sz == size ]] && continue
        R[$c:$n:$size:$loss_l]="$rate $txp $rxp $lossp $cut"
    done <"$d/$tag.csv"
    # Traffic crossed wgdp in the trials (figures are printed, not asserted:
    # this machine is shared).
    local trial_rx
    trial_rx=$(awk '$1 == "trial" { for (i = 2; i <= NF; i++) if ($i ~ /^rx=/) s += substr($i, 4) } END { print s + 0 }' "$d/$tag.log")
    log "$c, $n peers, $size: the receiving port got $trial_rx packets in the trials"
    ((trial_rx > 0)) || die "$c, $n peers, $size: the receiving port got nothing in the trials; logs in $d"
}
# The RFC 2544 environment of one size.
rfc2544_env() { # size
    export RFC2544_SIZES=$(frame_size "$1") RFC2544_LOSS=$LOSS RFC2544_TRIAL_MS=$TRIAL_MS \
        RFC2544_SETTLE_MS=$SETTLE RFC2544_MAX=$MAX RFC2544_RES=$RES RFC2544_WARMUP_S=$WARM
}

inproc() { # peers: the in-process figures of the same binary
    local n=$1 d="$DIR/i$1"
    ((QUICK)) && return 0
    [[ -n ${R[$n:inproc]:-} ]] && return 0
    mkdir -p "$d"
    log "in-process: wgdp bench --peers $n --workers 1"
    PREFIXES+=("wgdp-pg-i$SFX")
    "$WGDP" bench --peers "$n" --workers 1 --directions encap,decap,roundtrip --json \
        --eal "--lcores=0@1,1@0 --no-huge -m 1024 --no-pci --no-shconf --file-prefix=wgdp-pg-i$SFX --log-level=lib.eal:error" \
        >"$d/inproc.json" 2>"$d/inproc.log" || die "wgdp bench failed: $(tail -5 "$d/inproc.log")"
    local k v
    while read -r k v; do R[$n:$k]=$v; done < <(python3 -c '
import json, sys
t = open(sys.argv[1]).read()
d = json.loads(t[t.index("{"):t.rindex("}") + 1])
for f in d["figures"]:
    print("%s:inproc:%s %.3f" % (f["size"], f["direction"], f["mpps"]))' "$d/inproc.json")
    R[$n:inproc]=1
}

# --- tunnel: wgdp A -> memif -> wgdp B.
run_tunnel() { # peers
    local n=$1 d="$DIR/t$1"
    log "tunnel: wgdp A ($n peers) -> memif -> wgdp B, pktgen on both ends"
    mkdir -p "$d"
    (umask 077 && "$WGDP" gen-keys --count 1 >"$d/a.pair" && "$WGDP" gen-keys --count 1 >"$d/b.pair" &&
        cut -d' ' -f1 "$d/a.pair" >"$d/a.key" && cut -d' ' -f1 "$d/b.pair" >"$d/b.key")
    (umask 077 && table_a "$d" "$n" >"$d/a.toml" && table_b "$d" >"$d/b.toml")
    env_tunnel "$n" >"$d/env.lua"
    python3 bench/pcapgen.py udp --out "$d/imix.pcap" --dst-mac $MAC_A_PT --src-mac $MAC_PG0 \
        --src-ip 10.0.0.2 --dst-net 10.1.0.2/32 --size imix --imix-large 1438 --flows 16 >/dev/null
    PREFIXES+=("wgdp-pg-a$SFX" "wgdp-pg-b$SFX")
    "$WGDP" run --config "$d/a.toml" --report-interval 3600 >"$d/a.log" 2>&1 &
    local apid=$!
    PIDS+=("$apid")
    wait_log "$d/a.log" '^wgdp: running' "$apid" $((n > 10000 ? 300 : 60))
    "$WGDP" run --config "$d/b.toml" --report-interval 3600 >"$d/b.log" 2>&1 &
    local bpid=$!
    PIDS+=("$bpid")
    wait_log "$d/b.log" '^wgdp: running' "$bpid" 60
    log "A and B running"
    PG_VDEV0="net_memif0,role=client,id=0,socket=$d/pa.sock,mac=$MAC_PG0"
    PG_VDEV1="net_memif1,role=client,id=0,socket=$d/pb.sock,mac=$MAC_PG1"
    PG_PCAP="0:$d/imix.pcap"
    local s
    for s in ${SIZES//,/ }; do
        PG_SCRIPT=rfc2544
        rfc2544_env "$s"
        pktgen_run tunnel "$n" "$s" "$d" 512
    done
    # (--quick runs the tunnel case once, so its IMIX pass too.)
    if ((QUICK)) || imix_pass "$n"; then
        PG_SCRIPT=imix IMIX_RATE=$IMIX_RATE IMIX_SECONDS=$IMIX_S pktgen_run tunnel "$n" imix "$d" 512
    fi
    "$WGDP" show --interface "pga$SFX" >"$d/a.show" 2>&1 || true
    "$WGDP" show --interface "pgb$SFX" >"$d/b.show" 2>&1 || true
    kill_pid "$bpid" "$apid"
    inproc "$n"
}

# --- encap and decap: one wgdp, its peers emulated by `wgdp bench-peers`.
# (--no-peers: with 100,000 peers the whole document takes seconds to
# build, and rfc2544.lua reads the counters twice a trial.)
control_counter() { # name: wgdp S's control counter
    "$WGDP" show --interface "pgs$SFX" --json --no-peers | python3 -c '
import json, sys
print(json.load(sys.stdin)["control"][sys.argv[1]])' "$1"
}
# Fresh sessions for every peer; with a pcap path, the decap pcap too.
# The sessions may carry data until REJECT_AFTER_TIME (180 s) after their
# handshake, the first of which comes after the round's start: that is
# the next search's RFC2544_DEADLINE ($DEADLINE). (A round of 100,000
# peers takes 25-165 s here, so their searches may be cut; see
# BENCHMARKS.md.)
handshakes() { # dir peers [pcap size frames]
    local d=$1 n=$2 before after extra=()
    [[ $# -gt 2 ]] && extra=(--pcap "$3" --size "$4" --frames "$5")
    before=$(control_counter handshakes_completed)
    DEADLINE=$(($(date +%s) + 180))
    PREFIXES+=("wgdp-pg-e$SFX")
    "$WGDP" bench-peers handshake --keys "$d/peers.keys" --wgdp-key "$(cut -d' ' -f2 "$d/s.pair")" \
        --device "net_memif0,role=client,id=0,socket=$d/tun.sock,mac=$MAC_GW" \
        --eal "--lcores=0@0 --no-huge --no-shconf -m 256 --no-pci --file-prefix=wgdp-pg-e$SFX --log-level=lib.eal:error" \
        "${extra[@]}" >"$d/peers.log" 2>&1 || die "wgdp bench-peers failed: $(tail -5 "$d/peers.log")"
    after=$(control_counter handshakes_completed)
    log "$(grep -a '^bench-peers' "$d/peers.log" | tr '\n' ' ')(wgdp: $((after - before)) handshakes completed)"
    ((after - before == n)) || die "wgdp completed $((after - before)) handshakes, not $n; $d"
}
run_single() { # peers
    local n=$1 d="$DIR/s$1"
    log "single wgdp, $n peers: $(has_case encap && echo encap) $(has_case decap && echo decap)"
    mkdir -p "$d"
    (umask 077 && "$WGDP" gen-keys --count 1 >"$d/s.pair" && cut -d' ' -f1 "$d/s.pair" >"$d/s.key" &&
        "$WGDP" gen-keys --count "$n" >"$d/peers.keys")
    (umask 077 && table_s "$d" "$n" >"$d/s.toml")
    PREFIXES+=("wgdp-pg-s$SFX")
    "$WGDP" run --config "$d/s.toml" --report-interval 3600 >"$d/s.log" 2>&1 &
    local spid=$!
    PIDS+=("$spid")
    wait_log "$d/s.log" '^wgdp: running' "$spid" $((n > 10000 ? 300 : 60))
    # IMIX plaintext to the first peers (12 frames a peer): the hosts of
    # the smallest prefix at 10.128.0.0 that holds the peers' allowed IPs,
    # a /22 (1,022 peers) at most.
    local bits=0
    while ((bits < 10 && (1 << bits) < n)); do bits=$((bits + 1)); done
    python3 bench/pcapgen.py udp --out "$d/imix.pcap" --dst-mac $MAC_S_PT --src-mac $MAC_LAN \
        --src-ip 10.0.0.2 --dst-net "10.128.0.0/$((32 - bits))" \
        --size imix --imix-large 1438 --flows $((n < 1022 ? n : 1022)) >/dev/null
    # The kernel's side of the ports (TAP) sends IPv6 neighbour discovery
    # and MLD through them when they come up: IPv6 off there.
    sysctl -qw "net.ipv6.conf.pgst$SFX.disable_ipv6=1" "net.ipv6.conf.pgsp$SFX.disable_ipv6=1" 2>/dev/null || true
    # The RX_OTHER commands: frames wgdp sends on its own towards the
    # receiving port. encap (port 1): handshake initiations, keepalives;
    # both: what the kernel sent through either TAP (so at worst frames on
    # the other port are taken off too: the loss is never understated).
    local c sum
    for c in encap decap; do
        sum='c["from_kernel"]'
        [[ $c == encap ]] && sum='c["initiations_sent"] + c["keepalives_requested"] + c["from_kernel"]'
        cat >"$d/other-$c.sh" <<EOF
#!/bin/sh
"$WGDP" show --interface "pgs$SFX" --json --no-peers | python3 -c 'import json, sys; c = json.load(sys.stdin)["control"]; print($sum)'
EOF
        chmod +x "$d/other-$c.sh"
    done
    # pktgen's rings to and from wgdp: 16,384 slots (rsize=14; the memif
    # client sets the size), where DPDK's default is 1,024. pktgen polls
    # both ports from one lcore and spins on a full TX ring without
    # polling RX, and on this shared machine either process can be off
    # its CPU for tens of milliseconds: 1,024 frames do not ride that out
    # even at 10-20 kpps (wgdp counted the overflow as tx_full).
    PG_VDEV0="net_memif0,role=client,id=0,socket=$d/pt.sock,mac=$MAC_LAN,rsize=14"
    PG_VDEV1="net_memif1,role=client,id=0,socket=$d/tun.sock,mac=$MAC_GW,rsize=14"
    local s
    if has_case encap; then
        env_encap "$n" >"$d/env.lua"
        PG_PCAP="0:$d/imix.pcap"
        for s in ${SIZES//,/ }; do
            handshakes "$d" "$n"
            PG_SCRIPT=rfc2544
            rfc2544_env "$s"
            RFC2544_DEADLINE=$DEADLINE RFC2544_RX_OTHER_CMD=$d/other-encap.sh pktgen_run encap "$n" "$s" "$d" 512
        done
        if imix_pass "$n"; then
            handshakes "$d" "$n"
            PG_SCRIPT=imix IMIX_RATE=$IMIX_RATE IMIX_SECONDS=$IMIX_S pktgen_run encap "$n" imix "$d" 512
        fi
    fi
    if has_case decap; then
        env_decap "$n" >"$d/env.lua"
        local len frames per mem
        for s in ${SIZES//,/ }; do
            # The pcap: as many distinct messages as pktgen's memory allows
            # (~600 MB of pool, whose elements hold the largest frame; 1M
            # at most), MAX_TRIALS trials' worth, plus the warm-up's 64.
            # --quick: 4096 a trial.
            len=$(sealed_len "$([[ $s == imix ]] && echo 1420 || echo "$s")")
            frames=$((600 * 1024 * 1024 / (len + 400)))
            ((frames > 1048576)) && frames=1048576
            ((QUICK)) && frames=$((4096 * MAX_TRIALS + 64))
            per=$(((frames - 64) / MAX_TRIALS))
            mem=$((512 + frames * (len + 400) / 1048576))
            handshakes "$d" "$n" "$d/decap.pcap" "$s" "$frames"
            PG_PCAP="1:$d/decap.pcap" PG_SCRIPT=rfc2544
            rfc2544_env "$s"
            RFC2544_DEADLINE=$DEADLINE RFC2544_TX_BUDGET=$frames RFC2544_TRIAL_COUNT=$per RFC2544_RX_OTHER_CMD=$d/other-decap.sh \
                pktgen_run decap "$n" "$s" "$d" "$mem"
            rm -f "$d/decap.pcap"
        done
        if imix_pass "$n"; then
            # imix.lua sends IMIX_SECONDS at IMIX_RATE, bounded by a pcap of
            # four times the frames that rate sends at the mean frame length
            # (pktgen paces a pcap faster), plus 8192, and IMIX_COUNT.
            frames=$(python3 -c 'import sys; r, s, l = map(float, sys.argv[1:]); print(int(4 * s * r / 100 * 100e9 / ((l + 24) * 8)) + 8192)' \
                "$IMIX_RATE" "$IMIX_S" "$(sealed_len imix)")
            handshakes "$d" "$n" "$d/decap.pcap" imix "$frames"
            PG_PCAP="1:$d/decap.pcap" PG_SCRIPT=imix IMIX_RATE=$IMIX_RATE IMIX_SECONDS=$IMIX_S IMIX_COUNT=$frames \
                pktgen_run decap "$n" imix "$d" $((512 + frames * (1498 + 400) / 1048576))
            rm -f "$d/decap.pcap"
        fi
    fi
    "$WGDP" show --interface "pgs$SFX" >"$d/s.show" 2>&1 || true
    kill_pid "$spid"
    inproc "$n"
}

log "pktgen and wgdp: cases $CASES, peers $PEERS, sizes $SIZES, trials of $TRIAL_MS ms, state in $DIR"
for n in ${PEERS//,/ }; do
    if has_case encap || has_case decap; then run_single "$n"; fi
    # --quick: the tunnel case with one peer.
    if has_case tunnel && ! ((QUICK && n > 1)); then run_tunnel "$n"; fi
done

# The tables: one row per case, peer count and size.
report() { # case
    local c=$1 n s
    echo "== RFC 2544, $c (one worker per wgdp on core 0, pktgen on core 1), trials of ${TRIAL_MS} ms"
    printf '%-7s %-5s %-10s %-9s %-10s %-9s %-11s %-8s\n' peers size "0%:Mpps" "Gbit/s" "0.1%:Mpps" "loss@0.1%" "in-process" "ratio"
    for n in ${PEERS//,/ }; do
        [[ $c == tunnel ]] && ((QUICK && n > 1)) && continue
        for s in ${SIZES//,/ }; do
            read -r _ _ rx0 _ cut0 <<<"${R[$c:$n:$s:0]:-- - - - 0}"
            read -r _ _ rx1 l1 cut1 <<<"${R[$c:$n:$s:0.1]:-- - - - 0}"
            python3 - "$n" "$s" "$rx0" "$rx1" "$l1" "$c" "$cut0" "$cut1" \
                "${R[$n:$s:inproc:encap]:-}" "${R[$n:$s:inproc:decap]:-}" "${R[$n:$s:inproc:roundtrip]:-}" <<'EOF'
import sys
n, s, rx0, rx1, l1, case, cut0, cut1 = sys.argv[1:9]
enc, dec, rt = sys.argv[-3:]
inproc = {"encap": enc, "decap": dec, "tunnel": rt}[case]
# Gbit/s of inner IP packets (IMIX: 7:4:1 of 46/552/1420-byte packets).
mean = (7 * 46 + 4 * 552 + 1420) / 12 if s == "imix" else float(s)
# A search that found no rate wrote rx_pps 0: "none".
# A search the sessions' lifetime cut short (RFC2544_DEADLINE): "*".
mpps = lambda x, cut: ("-" if x == "-" else "none" if float(x) == 0 else "%.3f" % (float(x) / 1e6)) + ("*" if cut == "1" else "")
m0 = float(rx0) / 1e6 if rx0 != "-" else 0.0
gbps = "%.3f" % (m0 * mean * 8 / 1e3) if m0 > 0 else "-"
ratio = "%.1fx" % (float(inproc) / m0) if inproc and m0 > 0 else "-"
print("%-7s %-5s %-10s %-9s %-10s %-9s %-11s %-8s" % (
    n, s, mpps(rx0, cut0), gbps, mpps(rx1, cut1), (l1 + "%") if l1 != "-" else "-", inproc or "-", ratio))
EOF
        done
        if [[ -n ${R[$c:$n:imix]:-} ]]; then
            read -r itx irx <<<"${R[$c:$n:imix]}"
            echo "        imix.lua at $IMIX_RATE % for $IMIX_S s: sent $itx, received $irx"
        fi
    done
}
for c in encap decap tunnel; do has_case "$c" && report "$c"; done
echo "(Mpps: what the receiving port got at the highest rate with zero loss (0%) and with at most 0.1 % loss, and that search's loss (*: the search was cut short where the sessions of \`bench-peers\` reach REJECT_AFTER_TIME, 180 s after its round began: the best rate found until then); Gbit/s: inner IP packets at the zero-loss rate; in-process: \`wgdp bench --workers 1\` of the same binary in the same run, Mpps of the same direction (tunnel: roundtrip, encap and decap on one worker, the closest case to A and B sharing core 0); ratio: in-process over zero-loss)"
