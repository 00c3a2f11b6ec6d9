#!/usr/bin/env bash
# Instructions per packet of the worker loop, by function, for
# encapsulation and for decapsulation, counted by callgrind (this VM has no
# hardware performance counters; an instruction count is exact and does not
# move with the machine's load).
#
# Each direction runs `wgdp bench --repeat 1 --directions DIR` under valgrind
# with one worker, PEERS peers and the ring backend (valgrind 3.19 has no
# AVX-512, so not ipsec-mb's path), EAL without hugepages, and the cold
# set only where the binary has `--sets`. Valgrind runs one thread at a
# time; with `--fair-sched=yes` it takes turns often enough for the
# bench's timing windows, so every size is measured: 64, 512, 1420 B and
# IMIX, in that order. Callgrind dumps its counts before each batch
# (`Harness::run`), so each dump holds one size's batch (or its retries).
# The counts are each batch's: the inclusive instructions of each function
# divided by its calls. The loop around the packets (RX and TX bursts,
# flushes, commands) is left out: under valgrind it also spins through
# empty polls between batches.
#
# Usage: bench/callgrind.sh [PACKETS]   (default 4096 per batch)
# Environment: WGDP_BIN (default ./target/release/wgdp), PEERS (default
# 16), DIRECTIONS (default "encap decap"), SIZES (the sizes printed, of
# "64 512 1420 imix"; default all).
set -euo pipefail

packets=${1:-4096}
bin=${WGDP_BIN:-./target/release/wgdp}
peers=${PEERS:-16}
directions=${DIRECTIONS:-encap decap}
sizes=${SIZES:-64 512 1420 imix}
all_sizes=(64 512 1420 imix)
for tool in valgrind callgrind_annotate; do
    command -v "$tool" >/dev/null || {
        echo "bench/callgrind.sh: $tool not found (apt-get install valgrind)" >&2
        exit 1
    }
done
[ -x "$bin" ] || { echo "bench/callgrind.sh: $bin not found (cargo build --release)" >&2; exit 1; }

dir_out=$(mktemp -d /tmp/wgdp-callgrind.XXXXXX)
trap 'rm -rf "$dir_out"' EXIT
sets=()
if "$bin" bench --help 2>/dev/null | grep -q -- '--sets'; then
    sets=(--sets cold)
fi

# profile DIR ENTRY "function|what;function|what;..."
profile() {
    local dir=$1 entry=$2 rows=$3
    echo "==> callgrind: $bin bench, $dir, $peers peers, 1 worker, ring ($packets packets a batch)" >&2
    rm -f "$dir_out"/cg.*
    valgrind --tool=callgrind --fair-sched=yes --dump-before='*rig::Harness::run' \
        --callgrind-out-file="$dir_out/cg.%p" "$bin" bench \
        --peers "$peers" --workers 1 --repeat 1 --packets "$packets" --aead ring \
        --crypto-device none --directions "$dir" "${sets[@]}" \
        --eal "--lcores=0@0,1@1 --no-huge -m 512 --no-pci --file-prefix=wgdp-cg-$$ --log-level=lib.eal:error" \
        >"$dir_out/bench.out" 2>"$dir_out/bench.err" || true
    # The dumps in order: the start (no batch), then one per size; the
    # last is written at exit.
    local dumps=() f size i=0
    mapfile -t dumps < <(ls "$dir_out"/cg.*.* 2>/dev/null | sort -t. -k3 -n)
    dumps+=("$(ls "$dir_out"/cg.* | grep -v '\.[0-9]*\.[0-9]*$' | head -1)")
    for f in "${dumps[@]:1}"; do
        size=${all_sizes[$i]:-?}
        i=$((i + 1))
        [[ " $sizes " == *" $size "* ]] || continue
        echo "$dir, $size B, $peers peers:"
        annotate "$f" "$entry" "$rows" || true
    done
}

# annotate FILE ENTRY ROWS: the table of one dump.
annotate() {
    local out=$1 entry=$2 rows=$3
    # "<Ir> (<pct>) > <file>:<function> (<calls>x)" lines of the call tree,
    # one per caller of each function. A function the harness or the floor
    # calls too (the cipher) has several: the one whose calls match the
    # packets counts.
    callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null |
        awk -v entry="$entry" -v rows="$rows" '
        /^ *[0-9,]+ \( *[0-9.]+%\)  >/ {
            ir = $1; gsub(",", "", ir)
            calls = $NF; if ($NF ~ /^\[/) calls = $(NF-1)
            gsub(/[(x),]/, "", calls)
            name = $0; sub(/^[^>]*>  *[^:]*:/, "", name); sub(/ \([0-9,]+x\).*/, "", name)
            k++; f[k] = name; c[k] = calls + 0; i[k] = ir + 0
            if (name ~ ("::" entry "$") && calls + 0 > packets) packets = calls + 0
        }
        END {
            if (!packets) { print "no packets counted (did the bench start? run valgrind by hand)" > "/dev/stderr"; exit 1 }
            printf "  %-30s %8s %10s  %s\n", "function", "calls", "instr/pkt", "what"
            n = split(rows, row, ";")
            for (o = 1; o <= n; o++) {
                split(row[o], part, "|")
                best = 0
                for (j = 1; j <= k; j++) {
                    if (f[j] !~ ("(^|::)" part[1] "$")) continue
                    if (c[j] < packets || c[j] > packets + 64) continue
                    if (i[j] > i[best]) best = j
                }
                if (best) printf "  %-30s %8d %10.0f  %s\n", part[1], c[best], i[best] / c[best], part[2]
            }
        }'
}

[[ " $directions " == *" encap "* ]] && profile encap plaintext_packet "plaintext_packet|one packet, from the RX burst on;classify|parse: Ethernet/IP/UDP;encapsulate|peer state, staging check, seal and send;strip_inner|trim the Ethernet header;pad_for_seal|padding and room for the tag;seal_and_send|session seal, WireGuard header, outer headers;Session::seal|keypair checks and the cipher;TransportKey::seal_with_aad|ChaCha20-Poly1305 alone;send_outer|outer headers from the peer's template, TX burst"
[[ " $directions " == *" decap "* ]] && profile decap tunnel_packet "tunnel_packet|one packet, from the RX burst on;classify|parse: Ethernet/IP/UDP;wireguard|message type, receiver index, decapsulation;decapsulate|the open and its bookkeeping;Session::open_message|keypair by index, replay window, the cipher;Keypair::open|replay window and the cipher;TransportKey::open_with_aad|ChaCha20-Poly1305 alone;owner_received|arrivals, roaming, our address;deliver|inner checks, allowed IPs, TTL, Ethernet header, TX burst"
true
