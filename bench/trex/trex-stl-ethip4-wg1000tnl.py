"""TRex profile: plaintext UDP to the allowed-IP prefixes of 1000 wgdp tunnel(s).

Tables: bench/gen_tables.py --tunnels 1000. Usage and the frame-size tunable:
bench/trex/wgdp_stl.py and bench/README.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wgdp_stl import WgdpTunnels  # noqa: E402

TUNNELS = 1000


def register():
    return WgdpTunnels(TUNNELS)
