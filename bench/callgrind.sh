#!/usr/bin/env bash
# Instructions per packet of the worker loop's encapsulation, by function,
# counted by callgrind (this VM has no hardware performance counters; an
# instruction count is exact and does not move with the machine's load).
#
# It runs `wgdp bench --short` under valgrind with one worker, 16 peers and
# the ring backend (valgrind 3.19 has no AVX-512, so not ipsec-mb's path),
# EAL without hugepages. Under valgrind the bench's timing windows cannot
# be met, so it stops after its first batch: encapsulation of 64-byte
# packets, every packet of which the worker handles all the same. The
# counts are that batch's: inclusive instructions of each function divided
# by its calls.
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
echo "==> callgrind: $bin bench, encap 64 B, 16 peers, 1 worker, ring ($packets packets a try)" >&2
# The bench exits non-zero when no try could be timed: expected here.
valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" bench --short \
    --peers 16 --workers 1 --repeat 1 --packets "$packets" --aead ring \
    --crypto-device none \
    --eal "--lcores=0@0,1@1 --no-huge -m 512 --no-pci --log-level=lib.eal:error" \
    >/dev/null 2>&1 || true

# "<Ir> (<pct>) > <file>:<function> (<calls>x)" lines of the call tree, one
# per caller of each function. A function the floor measurement calls too
# (the cipher) has several: the one whose calls match the packets counts.
callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null |
    awk '
    /^ *[0-9,]+ \( *[0-9.]+%\)  >/ {
        ir = $1; gsub(",", "", ir)
        calls = $NF; if ($NF ~ /^\[/) calls = $(NF-1)
        gsub(/[(x),]/, "", calls)
        name = $0; sub(/^[^>]*>  *[^:]*:/, "", name); sub(/ \([0-9,]+x\).*/, "", name)
        k++; f[k] = name; c[k] = calls + 0; i[k] = ir + 0
        if (name ~ /::plaintext_packet$/ && calls + 0 > packets) packets = calls + 0
    }
    END {
        split("plaintext_packet classify encapsulate strip_inner pad_for_seal seal_and_send Session::seal TransportKey::seal_with_aad send_outer", order, " ")
        split("the whole packet, from the RX burst on|parse: Ethernet/IP/UDP|peer state, staging check, seal and send|trim the Ethernet header|padding and room for the tag|session seal, WireGuard header, outer headers|keypair checks and the cipher|ChaCha20-Poly1305 alone|outer routing, neighbour, headers, TX burst", what, "|")
        printf "%-28s %8s %10s  %s\n", "function", "calls", "instr/call", "what"
        for (o = 1; o <= 9; o++) {
            best = 0
            for (j = 1; j <= k; j++) {
                if (f[j] !~ ("(^|::)" order[o] "$") || c[j] < packets || c[j] > packets + 64) continue
                if (i[j] > i[best]) best = j
            }
            if (best) printf "%-28s %8d %10.0f  %s\n", order[o], c[best], i[best] / c[best], what[o]
        }
        if (!packets) print "no packets counted (did the bench start? run valgrind by hand)" > "/dev/stderr"
    }'
