#!/usr/bin/env bash
# Instructions per packet of the worker loop, by function, for
# encapsulation and for decapsulation, counted by callgrind (this VM has no
# hardware performance counters; an instruction count is exact and does not
# move with the machine's load).
#
# Each direction runs `wgdp bench --short --directions DIR` under valgrind
# with one worker, 16 peers and the ring backend (valgrind 3.19 has no
# AVX-512, so not ipsec-mb's path), EAL without hugepages. Under valgrind
# the bench's timing windows cannot be met, so it stops after its first
# batch (64-byte packets), every packet of which the worker handles all the
# same. The counts are that batch's: the inclusive instructions of each
# function divided by its calls. The loop around the packets (RX and TX
# bursts, flushes, commands) is left out: under valgrind it also spins
# through empty polls between batches.
#
# Usage: bench/callgrind.sh [PACKETS]   (default 4096 per try; 5 tries)
# Environment: WGDP_BIN (default ./target/release/wgdp)
set -euo pipefail

packets=${1:-4096}
bin=${WGDP_BIN:-./target/release/wgdp}
for tool in valgrind callgrind_annotate; do
    command -v "$tool" >/dev/null || {
        echo "bench/callgrind.sh: $tool not found (apt-get install valgrind)" >&2
        exit 1
    }
done
[ -x "$bin" ] || { echo "bench/callgrind.sh: $bin not found (cargo build --release)" >&2; exit 1; }

out=$(mktemp /tmp/wgdp-callgrind.XXXXXX)
trap 'rm -f "$out"' EXIT

# profile DIR ENTRY "function|what;function|what;..."
profile() {
    local dir=$1 entry=$2 rows=$3
    echo "==> callgrind: $bin bench, $dir 64 B, 16 peers, 1 worker, ring ($packets packets a try)" >&2
    # The bench exits non-zero when no try could be timed: expected here.
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" bench --short \
        --peers 16 --workers 1 --repeat 1 --packets "$packets" --aead ring \
        --crypto-device none --directions "$dir" \
        --eal "--lcores=0@0,1@1 --no-huge -m 512 --no-pci --log-level=lib.eal:error" \
        >/dev/null 2>&1 || true
    echo "$dir, 64 B:"
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

profile encap plaintext_packet "plaintext_packet|one packet, from the RX burst on;classify|parse: Ethernet/IP/UDP;encapsulate|peer state, staging check, seal and send;strip_inner|trim the Ethernet header;pad_for_seal|padding and room for the tag;seal_and_send|session seal, WireGuard header, outer headers;Session::seal|keypair checks and the cipher;TransportKey::seal_with_aad|ChaCha20-Poly1305 alone;send_outer|outer headers from the peer's template, TX burst"
profile decap tunnel_packet "tunnel_packet|one packet, from the RX burst on;classify|parse: Ethernet/IP/UDP;wireguard|message type, receiver index, decapsulation;Session::open_message|keypair by index, replay window, the cipher;Keypair::open|replay window and the cipher;TransportKey::open_with_aad|ChaCha20-Poly1305 alone;deliver|inner checks, allowed IPs, TTL, Ethernet header, TX burst"
