#!/usr/bin/env python3
"""Writes pcap files of Ethernet/IPv4/UDP frames for wgdp benchmarks.

Standard library only. Used by bench/side-by-side.sh to feed a DPDK
net_pcap vdev (plaintext towards wgdp, replayed with infinite_rx=1), and
usable on real hardware as a pktgen-dpdk pcap stream (`-s P:file.pcap`)
or for tcpreplay.

  pcapgen.py udp --out F --dst-mac MAC --src-ip A --dst-net 10.1.0.0/24 \
             --size 64|1420|imix [--flows N]
  pcapgen.py arp --out F --mac MAC --ip A   (one gratuitous ARP request)

Sizes are Ethernet frame sizes without the FCS (pktgen and TRex count
64 B with the FCS: their 64 B is 60 B here; `--size` is what lands in
the pcap). `imix` is the 7:4:1 mix of 64/570/1518-byte frames (with FCS,
i.e. 60/566/1514 here) that wgdp bench and bench/trex use; the file
holds 12 frames per flow in that ratio. `--imix-large 1438` makes the
large ones 1420-byte IP packets, for paths whose MTU is 1420.
"""

import argparse
import ipaddress
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchnet  # noqa: E402

SRC_MAC_DEFAULT = "02:00:00:00:0a:02"


def mac_bytes(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text}")
    return bytes(int(p, 16) for p in parts)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp_frame(dst_mac, src_mac, src_ip, dst_ip, sport, dport, frame_len):
    """An Ethernet/IPv4/UDP frame of `frame_len` bytes (no FCS)."""
    ip_len = frame_len - 14
    udp_len = ip_len - 20
    if udp_len < 8:
        raise ValueError(f"frame of {frame_len} B is too short for IPv4/UDP")
    payload = bytes((i & 0xFF) for i in range(udp_len - 8))
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000, 64, 17, 0, src_ip.packed, dst_ip.packed
    )
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    pseudo = src_ip.packed + dst_ip.packed + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp


def arp_announce(mac, ip):
    """A gratuitous ARP request (sender = target = `ip`), padded to 60 B."""
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, ip.packed, b"\0" * 6, ip.packed)
    frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
    return frame + b"\0" * (60 - len(frame))


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1_000_000, i % 1_000_000, len(frame), len(frame)))
            f.write(frame)


def sizes_for(spec, imix_large=1518):
    """Frame sizes (no FCS) for one flow: one size, or the IMIX cycle with
    its large frames at `imix_large` (with FCS)."""
    if spec == "imix":
        return benchnet.imix_cycle(imix_large)
    size = int(spec)
    if not 60 <= size <= 9000:
        raise ValueError(f"frame size {size} outside 60..=9000")
    return [size]


def cmd_udp(a):
    dst_net = ipaddress.ip_network(a.dst_net)
    hosts = list(dst_net.hosts()) or [dst_net.network_address]
    src_ip = ipaddress.ip_address(a.src_ip)
    dst_mac, src_mac = mac_bytes(a.dst_mac), mac_bytes(a.src_mac)
    frames = []
    for flow in range(a.flows):
        dst = hosts[flow % len(hosts)]
        for size in sizes_for(a.size, a.imix_large):
            frames.append(udp_frame(dst_mac, src_mac, src_ip, dst, 1024 + flow % 60000, 5201, size))
    write_pcap(a.out, frames)


def cmd_arp(a):
    write_pcap(a.out, [arp_announce(mac_bytes(a.mac), ipaddress.ip_address(a.ip))])


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("udp", help="IPv4/UDP frames from one source to the hosts of a prefix")
    u.add_argument("--out", required=True)
    u.add_argument("--dst-mac", required=True, help="the receiving port's MAC (wgdp's plaintext port)")
    u.add_argument("--src-mac", default=SRC_MAC_DEFAULT)
    u.add_argument("--src-ip", required=True)
    u.add_argument("--dst-net", required=True, help="destinations: the hosts of this prefix, round-robin")
    u.add_argument("--size", default="64", help="frame size without FCS (60..=9000), or imix")
    u.add_argument("--imix-large", type=int, default=1518,
                   help="size of IMIX's large frames, with FCS (1518; 1438 fits a 1420 MTU)")
    u.add_argument("--flows", type=int, default=1, help="flows (source ports / destinations)")
    u.set_defaults(func=cmd_udp)
    r = sub.add_parser("arp", help="one gratuitous ARP request announcing MAC/IP")
    r.add_argument("--out", required=True)
    r.add_argument("--mac", required=True)
    r.add_argument("--ip", required=True)
    r.set_defaults(func=cmd_arp)
    a = p.parse_args(argv)
    try:
        a.func(a)
    except ValueError as e:
        p.error(str(e))


if __name__ == "__main__":
    main(sys.argv[1:])
