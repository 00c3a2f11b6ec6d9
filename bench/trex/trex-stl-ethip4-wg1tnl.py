"""TRex profile: plaintext UDP to the allowed-IP prefixes of 1 wgdp tunnel(s).

Tables: bench/gen_tables.py --tunnels 1. Usage and the frame-size tunable:
bench/trex/wgdp_stl.py and bench/README.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wgdp_stl import WgdpTunnels  # noqa: E402

TUNNELS = 1


def register():
    return WgdpTunnels(TUNNELS)
