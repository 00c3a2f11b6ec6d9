"""Checks of bench/ that need no NIC, TRex or pktgen (run by tests/bench.rs):

- X25519 against RFC 7748 and `wg pubkey`;
- gen_tables.py's tables pass `wgdp check` ($WGDP_BIN) and carry the address
  plan; peers.tsv's keys match the table's;
- the TRex profiles compile (as py_compile would), have the structure TRex loads (register(), a
  TUNNELS matching the file name), and their field-engine writes land every
  tunnel index in that tunnel's allowed-IP prefix;
- the pktgen Lua scripts parse (`luac5.4 -p`), and imix.pcap / pcapgen.py
  frames are well formed, 7:4:1, to the tunnels' prefixes.
"""

import ast
import base64
import glob
import ipaddress
import os
import re
import struct
import subprocess
import sys
import tempfile
import tomllib
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchnet  # noqa: E402
import pcapgen  # noqa: E402


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack_from("<I", data, 0)
    assert magic == 0xA1B2C3D4, hex(magic)
    frames, off = [], 24
    while off < len(data):
        _, _, incl, orig = struct.unpack_from("<IIII", data, off)
        assert incl == orig
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def ip_checksum_ok(header):
    return pcapgen.checksum(header) == 0


class X25519(unittest.TestCase):
    def test_rfc7748_vector(self):
        k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
        u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
        self.assertEqual(
            benchnet.x25519(k, u).hex(),
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        )

    def test_matches_wg_pubkey(self):
        for label in ("dut", "peer0", "peer9999"):
            priv = benchnet.private_key("seed", label)
            wg = subprocess.run(["wg", "pubkey"], input=base64.b64encode(priv) + b"\n",
                                capture_output=True, check=True).stdout.decode().strip()
            self.assertEqual(base64.b64encode(benchnet.public_key(priv)).decode(), wg)


class Tables(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.wgdp = os.environ.get("WGDP_BIN") or os.path.join(HERE, "..", "target", "debug", "wgdp")
        assert os.access(cls.wgdp, os.X_OK), f"no wgdp binary at {cls.wgdp} (set WGDP_BIN)"

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def generate(self, n, *extra):
        out = os.path.join(self.tmp.name, f"t{n}")
        subprocess.run([sys.executable, os.path.join(HERE, "gen_tables.py"), "--tunnels", str(n),
                        "--out", out, "--dut-plaintext-mac", "02:00:00:00:0a:01", *extra],
                       check=True, capture_output=True)
        return out

    def test_tables_pass_wgdp_check(self):
        for n in (1, 100):
            out = self.generate(n)
            r = subprocess.run([self.wgdp, "check", "--config", os.path.join(out, "wgdp.toml")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"ok: {n} peers, {n} allowed-ip prefixes, 2 workers", r.stdout)

    def test_rejects_bad_tunnel_counts(self):
        for n in ("0", str(benchnet.MAX_TUNNELS + 1)):
            r = subprocess.run([sys.executable, os.path.join(HERE, "gen_tables.py"), "--tunnels", n,
                                "--out", os.path.join(self.tmp.name, "bad")], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("tunnels must be", r.stderr)

    def test_table_peers_and_far_ends_agree(self):
        out = self.generate(100, "--seed", "x")
        with open(os.path.join(out, "wgdp.toml"), "rb") as f:
            table = tomllib.load(f)
        rows = [line.split("\t") for line in open(os.path.join(out, "peers.tsv")) if not line.startswith("#")]
        self.assertEqual(len(table["peers"]), 100)
        self.assertEqual(len(rows), 100)
        for k, (peer, row) in enumerate(zip(table["peers"], rows)):
            idx, priv, pub, port, prefix, ddst = (c.strip() for c in row)
            self.assertEqual(int(idx), k)
            self.assertEqual(peer["public_key"], pub)
            self.assertEqual(base64.b64encode(benchnet.public_key(base64.b64decode(priv))).decode(), pub)
            self.assertEqual(peer["allowed_ips"], [prefix])
            self.assertEqual(peer["endpoint"], f"{benchnet.PEER_BOX_DUT_SIDE.ip}:{port}")
            self.assertIn(ipaddress.ip_address(ddst), benchnet.TG0_NET)
        self.assertEqual(len({p["public_key"] for p in table["peers"]}), 100)
        env = dict(line.strip().split("=", 1) for line in open(os.path.join(out, "peer-box.env")))
        dut_priv = base64.b64decode(open(os.path.join(out, "wgdp.key")).read().strip())
        self.assertEqual(env["DUT_PUBLIC_KEY"], base64.b64encode(benchnet.public_key(dut_priv)).decode())
        self.assertEqual(os.stat(os.path.join(out, "wgdp.key")).st_mode & 0o077, 0)
        self.assertEqual(os.stat(os.path.join(out, "peers.tsv")).st_mode & 0o077, 0)

    def test_imix_pcap_reaches_every_tunnel_in_ratio(self):
        n = 10
        out = self.generate(n)
        frames = read_pcap(os.path.join(out, "imix.pcap"))
        self.assertEqual(len(frames), 60)  # lcm(10, 12)
        sizes = [len(f) for f in frames]
        self.assertEqual((sizes.count(60), sizes.count(566), sizes.count(1514)), (35, 20, 5))
        seen = set()
        for f in frames:
            self.assertEqual(f[:6], pcapgen.mac_bytes("02:00:00:00:0a:01"))
            self.assertTrue(ip_checksum_ok(f[14:34]))
            dst = ipaddress.ip_address(f[30:34])
            k = next(k for k in range(n) if dst in benchnet.tunnel_prefix(k))
            seen.add(k)
        self.assertEqual(seen, set(range(n)))
        lua = open(os.path.join(out, "pktgen-env.lua")).read()
        self.assertIn(f'dst_max = "{benchnet.encap_dst(n - 1)}"', lua)


class TrexProfiles(unittest.TestCase):
    def test_profiles_compile_and_register(self):
        files = sorted(glob.glob(os.path.join(HERE, "trex", "*.py")))
        counts = set()
        for path in files:
            compile(open(path).read(), path, "exec")  # what py_compile checks, writing nothing
            name = os.path.basename(path)
            tree = ast.parse(open(path).read(), path)
            m = re.fullmatch(r"trex-stl-ethip4-wg(\d+)tnl\.py", name)
            if not m:
                self.assertEqual(name, "wgdp_stl.py")
                cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "WgdpTunnels")
                method = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "get_streams")
                self.assertEqual([a.arg for a in method.args.args], ["self", "direction", "size"])
                self.assertIsNotNone(method.args.kwarg)
                continue
            funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            self.assertIn("register", funcs, name)
            tunnels = next(n.value.value for n in tree.body if isinstance(n, ast.Assign)
                           and n.targets[0].id == "TUNNELS")
            self.assertEqual(tunnels, int(m.group(1)), name)
            counts.add(tunnels)
        self.assertEqual(counts, {1, 100, 1000, 10000})

    def test_field_engine_writes_stay_in_the_tunnels(self):
        enc = int(benchnet.encap_dst(0))
        dsrc, ddst = int(benchnet.encap_dst(0)), int(benchnet.decap_dst(0))
        for k in list(range(0, 10000, 7)) + [9999]:
            prefix = benchnet.tunnel_prefix(k)
            e = ipaddress.ip_address(benchnet.mask_write(enc, k, benchnet.TUNNEL_MASK, benchnet.TUNNEL_SHIFT))
            self.assertEqual(e, benchnet.encap_dst(k))
            self.assertIn(e, prefix)
            s = ipaddress.ip_address(benchnet.mask_write(dsrc, k, benchnet.TUNNEL_MASK, benchnet.TUNNEL_SHIFT))
            self.assertIn(s, prefix)
            d = ipaddress.ip_address(benchnet.mask_write(ddst, k, benchnet.DECAP_DST_MASK, benchnet.DECAP_DST_SHIFT))
            self.assertEqual(d, benchnet.decap_dst(k))
        prefixes = {benchnet.tunnel_prefix(k) for k in range(10000)}
        self.assertEqual(len(prefixes), 10000)


class Pktgen(unittest.TestCase):
    def test_lua_scripts_parse(self):
        scripts = sorted(glob.glob(os.path.join(HERE, "pktgen", "*.lua")))
        self.assertEqual([os.path.basename(s) for s in scripts], ["imix.lua", "rfc2544.lua"])
        for s in scripts:  # one file per call: luac 5.4.4 crashes on several
            r = subprocess.run(["luac5.4", "-p", s], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_pcapgen_frames(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "g.pcap")
            subprocess.run([sys.executable, os.path.join(HERE, "pcapgen.py"), "udp", "--out", out,
                            "--dst-mac", "02:70:63:61:70:00", "--src-ip", "10.0.0.2",
                            "--dst-net", "10.1.0.0/30", "--size", "imix", "--imix-large", "1438",
                            "--flows", "2"], check=True)
            frames = read_pcap(out)
            self.assertEqual(sorted({len(f) for f in frames}), [60, 566, 1434])
            for f in frames:
                self.assertTrue(ip_checksum_ok(f[14:34]))
                ip_len = struct.unpack_from("!H", f, 16)[0]
                self.assertEqual(ip_len, len(f) - 14)
                pseudo = f[26:34] + struct.pack("!BBH", 0, 17, ip_len - 20)
                self.assertEqual(pcapgen.checksum(pseudo + f[34:]), 0)
            self.assertEqual({str(ipaddress.ip_address(f[30:34])) for f in frames}, {"10.1.0.1", "10.1.0.2"})
            r = subprocess.run([sys.executable, os.path.join(HERE, "pcapgen.py"), "udp", "--out", out,
                                "--dst-mac", "02:00:00:00:00:01", "--src-ip", "10.0.0.2",
                                "--dst-net", "10.1.0.0/30", "--size", "20"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("outside 60..=9000", r.stderr)


if __name__ == "__main__":
    unittest.main()
