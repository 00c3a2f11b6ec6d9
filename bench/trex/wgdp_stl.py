"""TRex stateless streams for wgdp benchmarks: plaintext UDP towards the
allowed-IP prefixes of N tunnels (bench/benchnet.py has the address plan).

The trex-stl-ethip4-wg*tnl.py profiles next to this file each fix N and
register a `WgdpTunnels`; the frame size is a tunable:

    start -f bench/trex/trex-stl-ethip4-wg1000tnl.py -p 0 1 -m 10mpps -t size=64
    (size=64, 1518 or imix; with the FCS, as TRex counts frame sizes)

Port 0 (direction 0, facing the DUT's plaintext port) sends 48.0.0.1 ->
16.H.L.1, one tunnel after the other (the DUT encrypts); port 1 (direction
1, facing the peer box) sends 16.H.L.1 -> 48.1.H.L (the peer box encrypts
into tunnel H.L, the DUT decrypts). UDP checksums are 0 (valid for IPv4).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchnet  # noqa: E402
from trex_stl_lib.api import IP, UDP, STLVM, Ether, STLPktBuilder, STLStream, STLTXCont  # noqa: E402


class WgdpTunnels:
    """Streams for `tunnels` tunnels; direction 0 encap, 1 decap."""

    def __init__(self, tunnels):
        benchnet.check_tunnels(tunnels)
        self.tunnels = tunnels

    def _vm(self, direction):
        if self.tunnels == 1:
            return None  # the packet already carries tunnel 0's addresses
        vm = STLVM()
        vm.var(name="tunnel", min_value=0, max_value=self.tunnels - 1, size=4, op="inc")
        if direction == 0:
            vm.write_mask(fv_name="tunnel", pkt_offset="IP.dst", pkt_cast_size=4,
                          mask=benchnet.TUNNEL_MASK, shift=benchnet.TUNNEL_SHIFT)
        else:
            vm.write_mask(fv_name="tunnel", pkt_offset="IP.src", pkt_cast_size=4,
                          mask=benchnet.TUNNEL_MASK, shift=benchnet.TUNNEL_SHIFT)
            vm.write_mask(fv_name="tunnel", pkt_offset="IP.dst", pkt_cast_size=4,
                          mask=benchnet.DECAP_DST_MASK, shift=benchnet.DECAP_DST_SHIFT)
        vm.fix_chksum(offset="IP")
        return vm

    def _packet(self, direction, frame_size):
        if direction == 0:
            src, dst = benchnet.ENCAP_SRC, benchnet.encap_dst(0)
        else:
            src, dst = benchnet.encap_dst(0), benchnet.decap_dst(0)
        base = Ether() / IP(src=str(src), dst=str(dst)) / UDP(sport=1024, dport=5201, chksum=0)
        pad = frame_size - benchnet.ETH_FCS - len(base)
        if pad < 0:
            raise ValueError(f"frame size {frame_size} is too small for Ethernet/IPv4/UDP")
        return STLPktBuilder(pkt=base / (b"x" * pad), vm=self._vm(direction))

    def get_streams(self, direction=0, size="64", **kwargs):
        """`size`: 64, 1518 (any frame size with the FCS) or imix."""
        direction = int(direction) % 2
        if str(size) == "imix":
            mix = benchnet.IMIX
        else:
            mix = ((int(size), 1),)
        return [
            STLStream(packet=self._packet(direction, frame), mode=STLTXCont(pps=weight))
            for frame, weight in mix
        ]
