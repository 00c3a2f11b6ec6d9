#!/usr/bin/env bash
# pktgen-dpdk against real `wgdp run` processes over memif (as root): the
# whole tunnel in the loop, no NIC, no kernel on the path -
#
#   pktgen port 0 --memif--> wgdp A plaintext   (A encrypts)
#                            wgdp A tunnel --memif--> wgdp B tunnel (B decrypts)
#   pktgen port 1 <--memif-- wgdp B plaintext
#
# For each peer count and frame size, bench/pktgen/rfc2544.lua searches for
# the highest rate port 1 receives with zero loss, and with at most 0.1 %
# loss; the in-process `wgdp bench` figures of the same cases (same binary,
# same run, one worker) are printed beside them.
#
#   bench/pktgen/run.sh [--quick] [--peers LIST] [--sizes LIST] [--trial-ms MS]
#
#   --peers LIST    peer counts of wgdp A's table (default 1,1024,100000).
#                   One of them is B, the rest are idle peers (their own keys,
#                   their own /24 each): the traffic crosses one tunnel while
#                   A looks routes and sessions up in a table of that size.
#   --sizes LIST    inner IP packet sizes as `wgdp bench` names them (default
#                   64,512,1420,imix); frames are 18 bytes longer (pktgen
#                   counts the FCS). imix: 7:4:1 of 64/570/1438-byte frames
#                   (memif in DPDK 22.11 carries no frame above 1518 B).
#   --trial-ms MS   trial length (default 5000)
#   --quick         a functional pass in about a minute: 1 peer, 1420 B, 1 s
#                   trials, a coarse zero-loss search, no in-process figure;
#                   fails unless traffic crossed both wgdp processes
#
# Cores (this machine has 2): pktgen's port lcore has core 1 to itself, its
# main lcore and both wgdp workers share core 0. Every process runs with
# --no-huge (anonymous memory, no hugepages taken from other users of the
# machine), its own --file-prefix (removed on exit) and, for pktgen, the
# smaller pools of bench/pktgen/wgdp.patch (~140 MB).
#
# Environment: WGDP_BIN (default ./target/release/wgdp), PKTGEN_BIN (default:
# built by bench/pktgen/build.sh), PG_SFX (name suffix, [a-z0-9]{1,4},
# default from the PID), PG_DIR (state and logs, default /tmp/wgdp-pg-SFX;
# removed on exit unless PG_KEEP=1 or the run failed).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

PEERS=1,1024,100000 SIZES=64,512,1420,imix TRIAL_MS=5000 QUICK=0
while (($#)); do
    case $1 in
    --quick) QUICK=1; shift ;;
    --peers) PEERS=${2:?--peers needs a list}; shift 2 ;;
    --sizes) SIZES=${2:?--sizes needs a list}; shift 2 ;;
    --trial-ms) TRIAL_MS=${2:?--trial-ms needs milliseconds}; shift 2 ;;
    *) sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
if ((QUICK)); then PEERS=1 SIZES=1420 TRIAL_MS=1000; fi
[[ $TRIAL_MS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --trial-ms wants whole milliseconds" >&2; exit 2; }
[[ $PEERS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "run.sh: --peers wants counts, e.g. 1,1024" >&2; exit 2; }
[[ $SIZES =~ ^(imix|[0-9]+)(,(imix|[0-9]+))*$ ]] || { echo "run.sh: --sizes wants 64,512,1420,imix" >&2; exit 2; }

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
if [[ -z ${PKTGEN_BIN:-} ]]; then
    PKTGEN_BIN=$(bench/pktgen/build.sh | tail -1)
fi
[[ -x $PKTGEN_BIN ]] || die "no pktgen at $PKTGEN_BIN"
PKTGEN_SRC=$(cd "$(dirname "$PKTGEN_BIN")/../.." && pwd) # its Pktgen.lua

# --- bookkeeping: everything started is killed by PID, everything made is removed.
PIDS=() GRANDCHILDREN=() PREFIXES=()
mkdir -p "$DIR"
chmod 700 "$DIR"
kill_pid() { # pid [nowait]: SIGTERM, SIGKILL after 5 s; reaped unless not our child
    local pid=$1 i
    [[ -d /proc/$pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    [[ -d /proc/$pid ]] && kill -KILL "$pid" 2>/dev/null
    [[ ${2:-} == nowait ]] || wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${GRANDCHILDREN[@]}"; do kill_pid "$p" nowait; done
    for ((p = ${#PIDS[@]} - 1; p >= 0; p--)); do kill_pid "${PIDS[p]}"; done
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
# pcap can address A's plaintext port before A runs.
MAC_A_PT=02:00:00:00:0a:01 MAC_B_PT=02:00:00:00:0b:01
MAC_A_TUN=02:00:00:00:0a:02 MAC_B_TUN=02:00:00:00:0b:02
MAC_PG0=02:00:00:00:0c:00 MAC_PG1=02:00:00:00:0c:01

# wgdp A's table: memif server of pktgen port 0 (plaintext) and of B's
# tunnel port; B and PEERS-1 idle peers, one /24 each in 16.0.0.0/8+.
table_a() { # dir peers
    cat <<EOF
[interface]
name = "pga$SFX"
private_key_file = "$1/a.key"
listen_port = 51820

[dpdk]
eal_args = ["--lcores=0@1,1@0", "--no-huge", "--no-shconf", "-m", "$(($2 > 10000 ? 1024 : 512))", "--no-pci", "--file-prefix=wgdp-pg-a$SFX"]
workers = [1]
idle_sleep_us = 0

[ports.tunnel]
device = "net_memif0,role=server,id=0,socket=$1/tun.sock,mac=$MAC_A_TUN"
address = ["203.0.113.1/24"]
mtu = 1500
tap = "pgat$SFX"

[ports.plaintext]
device = "net_memif1,role=server,id=0,socket=$1/pa.sock,mac=$MAC_A_PT"
address = ["10.0.0.1/24"]
mtu = 1420
tap = "pgap$SFX"

[[peers]]
public_key = "$(cut -d' ' -f2 "$1/b.pair")"
endpoint = "203.0.113.2:51820"
allowed_ips = ["10.1.0.0/24"]
EOF
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
    cat <<EOF
[interface]
name = "pgb$SFX"
private_key_file = "$1/b.key"
listen_port = 51820

[dpdk]
eal_args = ["--lcores=0@1,1@0", "--no-huge", "--no-shconf", "-m", "512", "--no-pci", "--file-prefix=wgdp-pg-b$SFX"]
workers = [1]
idle_sleep_us = 0

[ports.tunnel]
device = "net_memif0,role=client,id=0,socket=$1/tun.sock,mac=$MAC_B_TUN"
address = ["203.0.113.2/24"]
mtu = 1500
tap = "pgbt$SFX"

[ports.plaintext]
device = "net_memif1,role=server,id=0,socket=$1/pb.sock,mac=$MAC_B_PT"
address = ["10.1.0.1/24"]
mtu = 1420
tap = "pgbp$SFX"

[[peers]]
public_key = "$(cut -d' ' -f2 "$1/a.pair")"
endpoint = "203.0.113.1:51820"
allowed_ips = ["10.0.0.0/24"]
EOF
}
# What rfc2544.lua reads (the format bench/gen_tables.py writes).
pktgen_env() { # peers
    cat <<EOF
return {
    tunnels = $1,
    tx_port = "0",
    rx_port = "1",
    dut_plaintext_mac = "$MAC_A_PT",
    src_ip = "10.0.0.2/24",
    dst_min = "10.1.0.2",
    dst_max = "10.1.0.2",
    dst_inc = "0.0.0.0",
    rx_ip = "10.1.0.2/24",
}
EOF
}
# pktgen frame sizes (FCS included) for `wgdp bench` inner IP sizes.
frame_sizes() {
    local s out=()
    for s in ${SIZES//,/ }; do
        if [[ $s == imix ]]; then out+=(imix); else out+=($((s + 18))); fi
    done
    (IFS=,; echo "${out[*]}")
}

declare -A R # R[peers:size:loss] = "rate_percent tx_pps rx_pps loss" ; R[peers:size:inproc:dir] = Mpps
run_peers() { # peers
    local n=$1 d="$DIR/p$1"
    log "wgdp A ($n peers) -> memif -> wgdp B, pktgen on both ends"
    mkdir -p "$d"
    (umask 077 && "$WGDP" gen-keys --count 1 >"$d/a.pair" && "$WGDP" gen-keys --count 1 >"$d/b.pair" &&
        cut -d' ' -f1 "$d/a.pair" >"$d/a.key" && cut -d' ' -f1 "$d/b.pair" >"$d/b.key")
    (umask 077 && table_a "$d" "$n" >"$d/a.toml" && table_b "$d" >"$d/b.toml")
    pktgen_env "$n" >"$d/env.lua"
    python3 bench/pcapgen.py udp --out "$d/imix.pcap" --dst-mac $MAC_A_PT --src-mac $MAC_PG0 \
        --src-ip 10.0.0.2 --dst-net 10.1.0.2/32 --size imix --imix-large 1438 --flows 16 >/dev/null
    PREFIXES+=("wgdp-pg-a$SFX" "wgdp-pg-b$SFX" "wgdp-pg-g$SFX")

    "$WGDP" run --config "$d/a.toml" --report-interval 3600 >"$d/a.log" 2>&1 &
    local apid=$!
    PIDS+=("$apid")
    wait_log "$d/a.log" '^wgdp: running' "$apid" $((n > 10000 ? 300 : 60))
    "$WGDP" run --config "$d/b.toml" --report-interval 3600 >"$d/b.log" 2>&1 &
    local bpid=$!
    PIDS+=("$bpid")
    wait_log "$d/b.log" '^wgdp: running' "$bpid" 60
    log "A and B running"

    # The search: from 3 % of memif's 100 Gbit/s (4.5 Mpps at 64 B, 0.26
    # Mpps at 1438 B) down to 0.01 %, pktgen's lowest rate. --quick: 0.02 %
    # and 0.01 % only (~870 pps at 1438 B, which a debug build of wgdp
    # carries), since CI runs it on the debug binary.
    local res=0.01 max=3 loss=0,0.1 settle=1000 warm=20
    ((QUICK)) && res=0.01 max=0.02 loss=0 settle=500
    # pktgen: lcore 0 (main, display) on core 0, lcore 1 (both ports) on
    # core 1. It needs a terminal: script(1) gives it one.
    # The shell under script(1) writes its PID and becomes pktgen, so that
    # pktgen itself is killed on the way out, not only script.
    local pg_cmd pg_args
    printf -v pg_args '%q ' "$PKTGEN_BIN" --lcores=0@0,1@1 --no-huge -m 512 --no-pci --no-shconf \
        --file-prefix=wgdp-pg-g$SFX \
        --vdev="net_memif0,role=client,id=0,socket=$d/pa.sock,mac=$MAC_PG0" \
        --vdev="net_memif1,role=client,id=0,socket=$d/pb.sock,mac=$MAC_PG1" \
        -- -T -P -m 1.[0-1] -s "0:$d/imix.pcap" -f "$ROOT/bench/pktgen/rfc2544.lua"
    pg_cmd="echo \$\$ >$(printf %q "$d/pktgen.pid"); exec $pg_args"
    (cd "$PKTGEN_SRC" && WGDP_BENCH_ENV=$d/env.lua RFC2544_SIZES=$(frame_sizes) RFC2544_LOSS=$loss \
        RFC2544_TRIAL_MS=$TRIAL_MS RFC2544_SETTLE_MS=$settle RFC2544_MAX=$max RFC2544_RES=$res \
        RFC2544_WARMUP_S=$warm RFC2544_OUT=$d/rfc2544.csv RFC2544_LOG=$d/trials.log RFC2544_QUIT=1 \
        script -qfec "$pg_cmd" /dev/null </dev/null >"$d/pktgen.log" 2>&1) &
    local gpid=$! i
    PIDS+=("$gpid")
    for ((i = 0; i < 100; i++)); do
        [[ -s $d/pktgen.pid ]] && break
        sleep 0.1
    done
    [[ -s $d/pktgen.pid ]] || die "pktgen did not start; $d/pktgen.log"
    GRANDCHILDREN+=("$(cat "$d/pktgen.pid")")
    # Each trial: TRIAL_MS + 500 ms + settle, up to ~12 trials per search,
    # under load up to twice that; plus the warm-up and start-up.
    local budget=$((120 + (TRIAL_MS + 500 + settle) * 24 * 2 * $(tr , '\n' <<<"$SIZES" | wc -l) / 1000))
    for ((i = 0; i < budget; i++)); do
        [[ -d /proc/$gpid ]] || break
        sleep 1
    done
    [[ -d /proc/$gpid ]] && die "pktgen still running after $budget s; $d/pktgen.log"
    wait "$gpid" || true
    [[ -s $d/trials.log ]] || die "pktgen ran no trial; $d/pktgen.log"
    if grep -q '^rfc2544 error' "$d/trials.log"; then die "pktgen: $(grep '^rfc2544 error' "$d/trials.log"); $d"; fi
    [[ -s $d/rfc2544.csv ]] || die "pktgen wrote no results; $d/pktgen.log"
    while read -r line; do log "$n peers: $line"; done <"$d/trials.log"
    "$WGDP" show --interface "pga$SFX" >"$d/a.show" 2>&1 || true
    "$WGDP" show --interface "pgb$SFX" >"$d/b.show" 2>&1 || true
    kill_pid "$bpid"
    kill_pid "$apid"

    local size loss_l rate txp rxp lossp
    while IFS=, read -r size loss_l rate txp rxp lossp; do
        [[ $size == \#* || $size == size ]] && continue
        [[ $size != imix ]] && size=$((size - 18))
        R[$n:$size:$loss_l]="$rate $txp $rxp $lossp"
    done <"$d/rfc2544.csv"
    # Traffic crossed both wgdp processes in the trials: port 1 received
    # what B decrypted (figures are printed, not asserted: this machine is
    # shared).
    local trial_rx
    trial_rx=$(awk '$1 == "trial" { for (i = 2; i <= NF; i++) if ($i ~ /^rx=/) s += substr($i, 4) } END { print s + 0 }' "$d/trials.log")
    log "$n peers: pktgen port 1 received $trial_rx packets in the trials"
    ((trial_rx > 0)) || die "$n peers: pktgen port 1 received nothing in the trials; logs in $d"
    ((QUICK)) && return 0

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
}

log "pktgen -> wgdp A -> memif -> wgdp B -> pktgen: peers $PEERS, sizes $SIZES, trials of $TRIAL_MS ms, state in $DIR"
for n in ${PEERS//,/ }; do run_peers "$n"; done

echo "== RFC 2544 through wgdp A -> wgdp B (one worker each, both on core 0; pktgen on core 1), trials of ${TRIAL_MS} ms"
printf '%-7s %-5s %-10s %-9s %-9s %-10s %-9s %-9s %-9s\n' peers size "0%:Mpps" "Gbit/s" "0.1%:Mpps" "in-proc rt" "encap" "decap" "rt/0%"
for n in ${PEERS//,/ }; do
    for s in ${SIZES//,/ }; do
        read -r _ _ rx0 _ <<<"${R[$n:$s:0]:-- - - -}"
        read -r _ _ rx1 _ <<<"${R[$n:$s:0.1]:-- - - -}"
        python3 - "$n" "$s" "$rx0" "$rx1" "${R[$n:$s:inproc:roundtrip]:-}" "${R[$n:$s:inproc:encap]:-}" "${R[$n:$s:inproc:decap]:-}" <<'EOF'
import sys
n, s, rx0, rx1, rt, enc, dec = sys.argv[1:]
# Gbit/s of inner IP packets (IMIX: 7:4:1 of 46/552/1420-byte packets).
mean = (7 * 46 + 4 * 552 + 1420) / 12 if s == "imix" else float(s)
# A search that found no rate wrote rx_pps 0: "none".
mpps = lambda x: "-" if x == "-" else "none" if float(x) == 0 else "%.3f" % (float(x) / 1e6)
m0 = float(rx0) / 1e6 if rx0 != "-" else 0.0
gbps = "%.3f" % (m0 * mean * 8 / 1e3) if m0 > 0 else "-"
ratio = "%.1f" % (float(rt) / m0) if rt and m0 > 0 else "-"
print("%-7s %-5s %-10s %-9s %-9s %-10s %-9s %-9s %-9s" % (
    n, s, mpps(rx0), gbps, mpps(rx1), rt or "-", enc or "-", dec or "-", ratio))
EOF
    done
done
echo "(Mpps: what pktgen port 1 received at the highest rate with zero loss (0%) and with at most 0.1 % loss; Gbit/s: inner IP packets at the zero-loss rate; in-process: \`wgdp bench --workers 1\` of the same binary in the same run, roundtrip = encap and decap on one worker, the closest case to A and B sharing core 0)"
