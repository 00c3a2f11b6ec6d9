#!/usr/bin/env python3
"""Writes the tunnel tables for a wgdp hardware benchmark with N tunnels.

  gen_tables.py --tunnels N --out DIR [--seed S]
                [--tunnel-device 0000:3b:00.0] [--plaintext-device 0000:3b:00.1]
                [--lcores 0-2] [--workers 1,2] [--eal-arg ARG ...]
                [--plaintext-mtu 1500] [--tunnel-mtu 1600] [--dut-plaintext-mac MAC]

DIR receives (bench/README.md explains the set-up):
  wgdp.toml, wgdp.key   the DUT's table: N peers, tunnel k allowing 16.H.L.0/24
                        (benchnet.py), endpoint the peer box at 198.19.0.2:20000+k
  peers.tsv             the far ends, one line per tunnel: index, private key,
                        public key, listen port, allowed-IP prefix, decap
                        destination; bench/peer-box.sh reads it
  peer-box.env          the DUT's public key, endpoint and the addresses the
                        peer box uses
  pktgen-env.lua        what bench/pktgen/*.lua read: tunnels, addresses, MACs
  imix.pcap             IMIX (7:4:1 of 64/570/1518 B) to every tunnel, for
                        pktgen's pcap mode (pktgen -s 0:DIR/imix.pcap)

The same seed gives the same keys. Run `wgdp check --config DIR/wgdp.toml`
on the result; bench/test_bench.py does.
"""

import argparse
import base64
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchnet  # noqa: E402
from pcapgen import udp_frame, write_pcap, mac_bytes, SRC_MAC_DEFAULT  # noqa: E402


def b64(key):
    return base64.b64encode(key).decode()


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def toml_list(items):
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def dut_toml(a, peers):
    eal = ["-l", a.lcores, "--in-memory"] + a.eal_arg
    workers = ", ".join(str(int(w)) for w in a.workers.split(","))
    lines = [
        f"# wgdp benchmark table: {a.tunnels} tunnels (bench/gen_tables.py, seed {a.seed!r})",
        "[interface]",
        'private_key_file = "wgdp.key"',
        f"listen_port = {benchnet.DUT_LISTEN_PORT}",
        "",
        "[dpdk]",
        f"eal_args = {toml_list(eal)}",
        f"workers = [{workers}]",
        f"mbufs = {a.mbufs}",
        "",
        "[ports.tunnel]",
        f'device = "{a.tunnel_device}"',
        f'address = ["{benchnet.DUT_TUNNEL}"]',
        f"mtu = {a.tunnel_mtu}",
        'tap = "wgdp-tun"',
        "",
        "[ports.plaintext]",
        f'device = "{a.plaintext_device}"',
        f'address = ["{benchnet.DUT_PLAINTEXT}"]',
        f'gateway = "{benchnet.TG0_IP}"',
        f"mtu = {a.plaintext_mtu}",
        'tap = "wgdp-pt"',
    ]
    for k, (_, pub) in enumerate(peers):
        lines += [
            "",
            "[[peers]]",
            f'public_key = "{b64(pub)}"',
            f'endpoint = "{benchnet.PEER_BOX_DUT_SIDE.ip}:{benchnet.peer_port(k)}"',
            f'allowed_ips = ["{benchnet.tunnel_prefix(k)}"]',
        ]
    return "\n".join(lines) + "\n"


def peers_tsv(peers):
    out = ["# index\tprivate_key\tpublic_key\tlisten_port\tallowed_prefix\tdecap_dst"]
    for k, (priv, pub) in enumerate(peers):
        out.append(
            f"{k}\t{b64(priv)}\t{b64(pub)}\t{benchnet.peer_port(k)}\t"
            f"{benchnet.tunnel_prefix(k)}\t{benchnet.decap_dst(k)}"
        )
    return "\n".join(out) + "\n"


def peer_box_env(dut_pub):
    return (
        f"DUT_PUBLIC_KEY={b64(dut_pub)}\n"
        f"DUT_ENDPOINT={benchnet.DUT_TUNNEL.ip}:{benchnet.DUT_LISTEN_PORT}\n"
        f"DUT_SIDE_ADDRESS={benchnet.PEER_BOX_DUT_SIDE}\n"
        f"TG_SIDE_ADDRESS={benchnet.PEER_BOX_TG_SIDE}\n"
        f"TG1_IP={benchnet.TG1_IP}\n"
        f"TG0_NET={benchnet.TG0_NET}\n"
        f"TUNNELS_NET={benchnet.TUNNEL_BASE}/8\n"
    )


def pktgen_env(a):
    last = a.tunnels - 1
    return f"""-- bench/gen_tables.py: the address plan of a {a.tunnels}-tunnel wgdp benchmark
return {{
    tunnels = {a.tunnels},
    tx_port = "0", -- faces the DUT's plaintext port
    rx_port = "1", -- faces the peer box
    dut_plaintext_mac = "{a.dut_plaintext_mac}",
    src_ip = "{benchnet.ENCAP_SRC}/{benchnet.TG0_NET.prefixlen}",
    dst_min = "{benchnet.encap_dst(0)}",
    dst_max = "{benchnet.encap_dst(last)}",
    dst_inc = "0.0.1.0", -- one tunnel prefix (/24) per packet
    imix_pcap = "imix.pcap",
}}
"""


def imix_frames(a):
    """IMIX frames cycling over every tunnel: lcm(N, 12) frames."""
    cycle = benchnet.imix_cycle()
    dst_mac, src_mac = mac_bytes(a.dut_plaintext_mac), mac_bytes(SRC_MAC_DEFAULT)
    count = a.tunnels * len(cycle) // math.gcd(a.tunnels, len(cycle))
    return [
        udp_frame(dst_mac, src_mac, benchnet.ENCAP_SRC, benchnet.encap_dst(i % a.tunnels),
                  1024 + i % 4096, 5201, cycle[i % len(cycle)])
        for i in range(count)
    ]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tunnels", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", default="wgdp-bench")
    p.add_argument("--tunnel-device", default="0000:3b:00.0", help="the DUT port facing the peer box")
    p.add_argument("--plaintext-device", default="0000:3b:00.1", help="the DUT port facing TG port 0")
    p.add_argument("--lcores", default="0-2", help="EAL -l: the main lcore (control thread) and the workers")
    p.add_argument("--workers", default="1,2", help="worker lcores")
    p.add_argument("--eal-arg", action="append", default=[], help="one more EAL argument (repeatable)")
    p.add_argument("--mbufs", type=int, default=65535)
    p.add_argument("--plaintext-mtu", type=int, default=1500)
    p.add_argument("--tunnel-mtu", type=int, default=1600, help="1500-byte inner packets need 1580")
    p.add_argument("--dut-plaintext-mac", default="02:00:00:00:00:01",
                   help="MAC of the DUT's plaintext port (pktgen and imix.pcap send to it)")
    a = p.parse_args(argv)
    try:
        benchnet.check_tunnels(a.tunnels)
        mac_bytes(a.dut_plaintext_mac)
    except ValueError as e:
        p.error(str(e))
    os.makedirs(a.out, exist_ok=True)
    dut_priv = benchnet.private_key(a.seed, "dut")
    peers = []
    for k in range(a.tunnels):
        priv = benchnet.private_key(a.seed, f"peer{k}")
        peers.append((priv, benchnet.public_key(priv)))
    write_private(os.path.join(a.out, "wgdp.key"), b64(dut_priv) + "\n")
    write_private(os.path.join(a.out, "wgdp.toml"), dut_toml(a, peers))
    write_private(os.path.join(a.out, "peers.tsv"), peers_tsv(peers))
    with open(os.path.join(a.out, "peer-box.env"), "w") as f:
        f.write(peer_box_env(benchnet.public_key(dut_priv)))
    with open(os.path.join(a.out, "pktgen-env.lua"), "w") as f:
        f.write(pktgen_env(a))
    write_pcap(os.path.join(a.out, "imix.pcap"), imix_frames(a))
    print(f"{a.out}: {a.tunnels} tunnels: wgdp.toml wgdp.key peers.tsv peer-box.env pktgen-env.lua imix.pcap")


if __name__ == "__main__":
    main(sys.argv[1:])
