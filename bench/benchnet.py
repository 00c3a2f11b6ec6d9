"""The address plan and keys of wgdp's hardware benchmarks (bench/README.md).

One source for the table generator (gen_tables.py), the TRex profiles
(trex/), the pktgen-dpdk environment it writes, and their tests, so that
the traffic always lands in the allowed IPs of the tunnels that exist.

    TG port 0 -- DUT plaintext port 198.18.0.1/24 (TG0 at 198.18.0.2)
                 DUT tunnel port    198.19.0.1/24 -- peer box 198.19.0.2
                                                      peer box 198.19.128.1/24 -- TG port 1 (198.19.128.2)

Tunnel k (0-based, k < 65536) owns the allowed-IP prefix 16.H.L.0/24
(H.L = k as two bytes); the peer box terminates it on its own WireGuard
interface listening on UDP 20000 + k (k < 45536 here: 65535 - 20000).
Encap direction: TG0 sends 48.0.0.1 -> 16.H.L.1. Decap direction: TG1
sends 16.H.L.1 -> 48.1.H.L, which the peer box routes into tunnel k.

Keys are derived from a seed (reproducible tables); X25519 is computed
here in plain Python (RFC 7748), not in constant time: benchmark keys only.
"""

import hashlib
import ipaddress

MAX_TUNNELS = 65535 - 20000

DUT_PLAINTEXT = ipaddress.ip_interface("198.18.0.1/24")
TG0_IP = ipaddress.ip_address("198.18.0.2")
DUT_TUNNEL = ipaddress.ip_interface("198.19.0.1/24")
PEER_BOX_DUT_SIDE = ipaddress.ip_interface("198.19.0.2/24")
PEER_BOX_TG_SIDE = ipaddress.ip_interface("198.19.128.1/24")
TG1_IP = ipaddress.ip_address("198.19.128.2")
DUT_LISTEN_PORT = 51820
PEER_PORT_BASE = 20000

TUNNEL_BASE = ipaddress.ip_address("16.0.0.0")  # tunnel k: TUNNEL_BASE + k * 256, /24
TUNNEL_PREFIX_LEN = 24
TG0_NET = ipaddress.ip_network("48.0.0.0/8")  # hosts behind TG port 0
ENCAP_SRC = ipaddress.ip_address("48.0.0.1")
DECAP_DST_BASE = ipaddress.ip_address("48.1.0.0")  # tunnel k: + k

# TRex field-engine writes: the tunnel index k, shifted and masked into
# the 32-bit address (STLVmWrMaskFlowVar semantics: the field keeps its
# bits outside `mask` and takes (k << shift) & mask inside it).
TUNNEL_MASK, TUNNEL_SHIFT = 0x00FFFF00, 8  # 16.H.L.x
DECAP_DST_MASK, DECAP_DST_SHIFT = 0x0000FFFF, 0  # 48.1.H.L

# Frame sizes with the FCS, as generators count them; IMIX is 7:4:1.
IMIX = ((64, 7), (570, 4), (1518, 1))
ETH_FCS = 4


def imix_cycle(large=1518):
    """One IMIX cycle: 12 frame sizes without the FCS, interleaved so that a
    short stretch of traffic already has the mix's ratio; `large` replaces
    the 1518-byte class (frame size with the FCS)."""
    sizes = []
    for size, weight in IMIX:
        sizes += [(large if size == 1518 else size) - ETH_FCS] * weight
    return [sizes[i] for i in (0, 7, 1, 2, 8, 3, 11, 4, 9, 5, 10, 6)]


def check_tunnels(n):
    if not 1 <= n <= MAX_TUNNELS:
        raise ValueError(f"tunnels must be 1..={MAX_TUNNELS}, not {n}")


def tunnel_prefix(k):
    """The allowed-IP prefix of tunnel k."""
    check_tunnels(k + 1)
    return ipaddress.ip_network((int(TUNNEL_BASE) + (k << 8), TUNNEL_PREFIX_LEN))


def encap_dst(k):
    """The destination TG0 sends to for tunnel k: the first host of its prefix."""
    return tunnel_prefix(k).network_address + 1


def decap_dst(k):
    """The destination TG1 sends to for tunnel k (routed into it by the peer box)."""
    check_tunnels(k + 1)
    return DECAP_DST_BASE + k


def peer_port(k):
    check_tunnels(k + 1)
    return PEER_PORT_BASE + k


def mask_write(field, value, mask, shift):
    """What a TRex STLVmWrMaskFlowVar write of `value` leaves in `field`."""
    return (field & ~mask & 0xFFFFFFFF) | ((value << shift) & mask)


# --- keys -------------------------------------------------------------------

_P = 2**255 - 19
_A24 = 121665


def x25519(scalar, u):
    """RFC 7748 X25519 (Montgomery ladder); 32-byte little-endian in and out."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        if swap ^ bit:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = (x2 + z2) % _P, (x2 - z2) % _P
        aa, bb = a * a % _P, b * b % _P
        e = (aa - bb) % _P
        c, d = (x3 + z3) % _P, (x3 - z3) % _P
        da, cb = d * a % _P, c * b % _P
        x3 = (da + cb) ** 2 % _P
        z3 = x1 * (da - cb) ** 2 % _P
        x2 = aa * bb % _P
        z2 = e * (aa + _A24 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def private_key(seed, label):
    """A clamped X25519 private key derived from `seed` and `label`."""
    k = bytearray(hashlib.blake2s(label.encode(), key=seed.encode()[:32]).digest())
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def public_key(private):
    return x25519(private, (9).to_bytes(32, "little"))
