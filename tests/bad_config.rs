//! The table of bad configurations: every field wrong in every way, each
//! through the real `wgdp check`. Each case must exit 1 and print exactly
//! one error, `FILE:LINE:COLUMN: FIELD: message`, then the summary line.
//! (conf's own tests check the rules through the library; this checks that
//! the operator sees them, with the right position, from the binary.)
#![cfg(unix)]

mod tempdir;

use tempdir::TempDir;

use std::path::Path;
use std::process::Command;

/// A valid table that sets every field, so that each can be made wrong.
/// The cases below name its line numbers.
const BASE: &str = r#"[interface]
private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
listen_port = 51820
name = "wg0"

[dpdk]
eal_args = ["-l", "0-2", "--in-memory"]
workers = [1, 2]
mbufs = 4095
aead = "auto"

[ports.tunnel]
device = "net_tap0"
address = ["192.0.2.1/24", "2001:db8::1/64"]
gateway = "192.0.2.254"
mtu = 1500
tap = "wgdp-tun"

[ports.plaintext]
device = "net_tap1"
address = ["10.9.0.1/24"]
tap = "wgdp-plain"

[[peers]]
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
preshared_key = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="
allowed_ips = ["10.9.1.0/24"]
persistent_keepalive = 25

[[peers]]
public_key = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="
endpoint = "[2001:db8::2]:51820"
allowed_ips = ["10.9.2.0/24", "fd00::/64"]

[metrics]
listen = "127.0.0.1:9586"

[[groups]]
name = "site"
members = ["AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=", "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="]
prefixes = ["10.10.0.0/16", "10.9.2.128/25"]
"#;

/// The public key of the private key in `BASE` (all bytes 1).
const OWN_PUBLIC: &str = "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=";

/// One bad table: `BASE` with line `line` replaced by `text`, and the one
/// error it must give (after `FILE:`), whole or, where the message names
/// something of the host (an OS error), its start.
struct Case {
    line: usize,
    text: &'static str,
    error: &'static str,
}

const fn case(line: usize, text: &'static str, error: &'static str) -> Case {
    Case { line, text, error }
}

/// Where an error ends with `...`, only the start is compared.
const CASES: &[Case] = &[
    // [interface]
    case(2, r#"private_key = "not base64!""#, "2:15: interface.private_key: not base64 of 32 bytes"),
    case(2, r#"private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==""#, "2:15: interface.private_key: not base64 of 32 bytes"),
    case(2, r#"private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB""#, "2:15: interface.private_key: not base64 of 32 bytes"),
    case(2, r#"private_key = """#, "2:15: interface.private_key: not base64 of 32 bytes"),
    case(2, "private_key = 1", "2:15: interface.private_key: expected string, found integer"),
    case(2, "", "1:1: interface.private_key: missing: give private_key or private_key_file"),
    case(4, r#"private_key_file = "private.key""#, "4:20: interface.private_key_file: give private_key or private_key_file, not both"),
    case(3, "listen_port = 0", "3:15: interface.listen_port: 0 is out of range 1..=65535"),
    case(3, "listen_port = 65536", "3:15: interface.listen_port: 65536 is out of range 1..=65535"),
    case(3, "listen_port = -1", "3:15: interface.listen_port: -1 is out of range 1..=65535"),
    case(3, r#"listen_port = "51820""#, "3:15: interface.listen_port: expected integer, found string"),
    case(3, "listen_port = 51820.0", "3:15: interface.listen_port: expected integer, found float"),
    case(3, "", "1:1: interface.listen_port: missing field"),
    case(4, r#"name = "has space""#, r#"4:8: interface.name: "has space" is not an interface name (1..=15 of A-Z a-z 0-9 _ . = + -, not "." or "..")"#),
    case(4, r#"name = "sixteen-chars-xx""#, r#"4:8: interface.name: "sixteen-chars-xx" is not an interface name ..."#),
    case(4, r#"name = "..""#, r#"4:8: interface.name: ".." is not an interface name ..."#),
    case(4, r#"name = "wg/0""#, r#"4:8: interface.name: "wg/0" is not an interface name ..."#),
    case(4, "name = true", "4:8: interface.name: expected string, found boolean"),
    case(4, r#"colour = "red""#, "4:1: interface.colour: unknown field (expected one of: name, private_key, private_key_file, listen_port)"),
    // [dpdk]
    case(7, r#"eal_args = "-l 0-2""#, "7:12: dpdk.eal_args: expected array, found string"),
    case(7, r#"eal_args = ["-l", "2-0"]"#, r#"7:12: dpdk.eal_args: "2-0": range runs backwards"#),
    case(7, r#"eal_args = ["-l", "999-999999999"]"#, r#"7:12: dpdk.eal_args: "999-999999999": CPU numbers go up to 8191"#),
    case(7, r#"eal_args = ["-c", "0xZ"]"#, r#"7:12: dpdk.eal_args: core mask "0xZ" is not hexadecimal"#),
    case(7, r#"eal_args = ["-l", "0-2", "--main-lcore", "x"]"#, r#"7:12: dpdk.eal_args: --main-lcore "x" is not an lcore number"#),
    case(7, r#"eal_args = ["-l", 0]"#, "7:19: dpdk.eal_args[1]: expected string, found integer"),
    case(8, "workers = []", "8:11: dpdk.workers: must not be empty"),
    case(8, "", "6:1: dpdk.workers: missing field"),
    case(8, "workers = [1, 1]", "8:15: dpdk.workers[1]: duplicate of dpdk.workers[0] (1)"),
    case(8, "workers = [1, 5]", "8:15: dpdk.workers[1]: lcore 5 is not enabled by dpdk.eal_args (it enables 0, 1, 2)"),
    case(8, "workers = [0, 1]", "8:12: dpdk.workers[0]: lcore 0 is EAL's main lcore, which runs the control thread"),
    case(8, "workers = [-1]", "8:12: dpdk.workers[0]: -1 is out of range 0..=4294967295"),
    case(8, r#"workers = ["1"]"#, "8:12: dpdk.workers[0]: expected integer, found string"),
    case(8, "workers = 1", "8:11: dpdk.workers: expected array, found integer"),
    case(9, "mbufs = 1023", "9:9: dpdk.mbufs: 1023 is out of range 1024..=1048575"),
    case(9, "mbufs = 1048576", "9:9: dpdk.mbufs: 1048576 is out of range 1024..=1048575"),
    case(9, "idle_sleep_us = 10001", "9:17: dpdk.idle_sleep_us: 10001 is out of range 0..=10000"),
    case(9, "idle_polls = 0", "9:14: dpdk.idle_polls: 0 is out of range 1..=4294967295"),
    case(10, r#"aead = "openssl""#, r#"10:8: dpdk.aead: "openssl" is not an AEAD backend ("auto", "ring", "ipsec-mb", "cryptodev" or "multibuffer")"#),
    case(10, r#"aead = "cryptodev""#, r#"10:8: dpdk.aead: "cryptodev" needs dpdk.crypto_device (the crypto device's name, e.g. "crypto_aesni_mb0")"#),
    case(10, r#"crypto_device = "crypto_aesni_mb0""#, r#"10:17: dpdk.crypto_device: set, but dpdk.aead is not "cryptodev""#),
    case(10, "aead = \"cryptodev\"\ncrypto_device = \"\"", "11:17: dpdk.crypto_device: must not be empty"),
    case(10, "aead = \"cryptodev\"\ncrypto_device = 0", "11:17: dpdk.crypto_device: expected string, found integer"),
    case(10, r#"aead = "RING""#, r#"10:8: dpdk.aead: "RING" is not an AEAD backend ..."#),
    case(10, "aead = 1", "10:8: dpdk.aead: expected string, found integer"),
    case(10, "lcores = 3", "10:1: dpdk.lcores: unknown field (expected one of: eal_args, workers, mbufs, idle_sleep_us, idle_polls, aead, crypto_device, staging_budget, icmp_per_sec, icmp_burst, handshake_threads, control_nice)"),
    case(9, "staging_budget = 16384", "9:18: dpdk.staging_budget: 16384 is out of range 0..=16383"),
    case(9, "staging_budget = \"auto\"", "9:18: dpdk.staging_budget: expected integer, found string"),
    case(9, "icmp_per_sec = -1", "9:16: dpdk.icmp_per_sec: -1 is out of range 0..=1000000"),
    case(9, "icmp_burst = 0", "9:14: dpdk.icmp_burst: 0 is out of range 1..=10000"),
    // [ports]
    case(13, r#"device = """#, "13:10: ports.tunnel.device: must not be empty"),
    case(13, "", "12:1: ports.tunnel.device: missing field"),
    case(20, r#"device = "net_tap0""#, "20:10: ports.plaintext.device: duplicate of ports.tunnel.device (net_tap0)"),
    case(20, r#"device = "NET_TAP0""#, "20:10: ports.plaintext.device: duplicate of ports.tunnel.device (NET_TAP0)"),
    case(14, "address = []", "14:11: ports.tunnel.address: must not be empty"),
    case(14, r#"address = ["192.0.2.1/33"]"#, r#"14:12: ports.tunnel.address[0]: "192.0.2.1/33" is not a prefix: ..."#),
    case(14, r#"address = ["192.0.2.1/24", "2001:db8::1/129"]"#, r#"14:28: ports.tunnel.address[1]: "2001:db8::1/129" is not a prefix: ..."#),
    case(14, r#"address = ["192.0.2.1"]"#, r#"14:12: ports.tunnel.address[0]: "192.0.2.1" is not a prefix: missing /prefix length"#),
    case(14, r#"address = ["192.0.2.300/24"]"#, r#"14:12: ports.tunnel.address[0]: "192.0.2.300/24" is not a prefix: ..."#),
    case(15, r#"gateway = "198.51.100.1""#, "15:11: ports.tunnel.gateway: gateway 198.51.100.1 is not inside any of the port's address prefixes"),
    case(15, r#"gateway = ["192.0.2.254", "2001:db9::1"]"#, "15:27: ports.tunnel.gateway[1]: gateway 2001:db9::1 is not inside any of the port's address prefixes"),
    case(15, r#"gateway = ["192.0.2.254", "192.0.2.253"]"#, "15:27: ports.tunnel.gateway[1]: more than one IPv4 gateway"),
    case(15, r#"gateway = "gw.example""#, r#"15:11: ports.tunnel.gateway: "gw.example" is not an IP address"#),
    case(15, "gateway = 1", "15:11: ports.tunnel.gateway: expected string or array of strings, found integer"),
    case(16, "mtu = 1279", "16:7: ports.tunnel.mtu: 1279 is out of range 1280..=9000"),
    case(16, "mtu = 9001", "16:7: ports.tunnel.mtu: 9001 is out of range 1280..=9000"),
    case(16, r#"mtu = "1500""#, "16:7: ports.tunnel.mtu: expected integer, found string"),
    case(16, "speed = 100", "16:1: ports.tunnel.speed: unknown field (expected one of: device, address, gateway, mtu, tap, vlan, lane_ports)"),
    case(17, "tap = \"wgdp-tun\"\nvlan = 0", "18:8: ports.tunnel.vlan: 0 is out of range 1..=4094"),
    case(17, "tap = \"wgdp-tun\"\nvlan = 4095", "18:8: ports.tunnel.vlan: 4095 is out of range 1..=4094"),
    case(22, "tap = \"wgdp-plain\"\nvlan = \"100\"", "23:8: ports.plaintext.vlan: expected integer, found string"),
    case(17, "tap = \"wgdp-tun\"\nlane_ports = \"51830\"", "18:14: ports.tunnel.lane_ports: 1 ports for 2 workers (dpdk.workers): give each worker its own"),
    case(17, "tap = \"wgdp-tun\"\nlane_ports = \"9-8\"", r#"18:14: ports.tunnel.lane_ports: "9-8" is not a port range (FIRST-LAST, 1..=65535, FIRST <= LAST)"#),
    case(17, "tap = \"wgdp-tun\"\nlane_ports = 51820", "18:14: ports.tunnel.lane_ports: expected string, found integer"),
    case(22, "tap = \"wgdp-plain\"\nlane_ports = \"1-2\"", "23:1: ports.plaintext.lane_ports: unknown field (expected one of: device, address, gateway, mtu, tap, vlan, mss_clamp)"),
    case(22, "tap = \"wgdp-plain\"\nmss_clamp = \"yes\"", r#"23:13: ports.plaintext.mss_clamp: "yes" is not "auto", "off" or an MSS (536..=65495)"#),
    case(22, "tap = \"wgdp-plain\"\nmss_clamp = 65496", r#"23:13: ports.plaintext.mss_clamp: 65496 is not "auto", "off" or an MSS (536..=65495)"#),
    case(22, "tap = \"wgdp-plain\"\nmss_clamp = true", r#"23:13: ports.plaintext.mss_clamp: expected "auto", "off" or an integer, found boolean"#),
    case(17, "tap = \"wgdp-tun\"\nmss_clamp = \"auto\"", "18:1: ports.tunnel.mss_clamp: unknown field (expected one of: device, address, gateway, mtu, tap, vlan, lane_ports)"),
    case(17, r#"tap = "wgdp tun""#, r#"17:7: ports.tunnel.tap: "wgdp tun" is not an interface name (1..=15 of A-Z a-z 0-9 _ . -, not "." or "..")"#),
    case(17, r#"tap = "wgdp+tun""#, r#"17:7: ports.tunnel.tap: "wgdp+tun" is not an interface name ..."#),
    case(22, r#"tap = "wgdp-tun""#, "22:7: ports.plaintext.tap: duplicate of ports.tunnel.tap (wgdp-tun)"),
    // [[peers]]
    case(25, r#"public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg==""#, "25:14: peers[0].public_key: not base64 of 32 bytes"),
    case(25, r#"public_key = "AgIC""#, "25:14: peers[0].public_key: not base64 of 32 bytes"),
    case(25, "", "24:1: peers[0].public_key: missing field"),
    case(31, r#"public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=""#, "31:14: peers[1].public_key: duplicate of peers[0].public_key (AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=)"),
    case(31, concat!(r#"public_key = ""#, "pOCSkrZRwni5dyxWn1+puxPZBrRqtoyd+dwrRAn4ogk=", r#"""#), "31:14: peers[1].public_key: is the interface's own public key"),
    case(26, r#"preshared_key = "!!""#, "26:17: peers[0].preshared_key: not base64 of 32 bytes"),
    case(26, r#"preshared_key = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw==""#, "26:17: peers[0].preshared_key: not base64 of 32 bytes"),
    case(26, "preshared_key = 3", "26:17: peers[0].preshared_key: expected string, found integer"),
    case(27, r#"allowed_ips = ["10.9.1.1/24"]"#, "27:16: peers[0].allowed_ips[0]: 10.9.1.1/24 has host bits set; write 10.9.1.0/24"),
    case(33, r#"allowed_ips = ["10.9.2.0/24", "fd00::1/64"]"#, "33:31: peers[1].allowed_ips[1]: fd00::1/64 has host bits set; write fd00::/64"),
    case(27, r#"allowed_ips = ["10.9.1.0/33"]"#, r#"27:16: peers[0].allowed_ips[0]: "10.9.1.0/33" is not a prefix: ..."#),
    case(33, r#"allowed_ips = ["10.9.2.0/24", "fd00::/129"]"#, r#"33:31: peers[1].allowed_ips[1]: "fd00::/129" is not a prefix: ..."#),
    case(27, r#"allowed_ips = ["10.9.1.0/-1"]"#, r#"27:16: peers[0].allowed_ips[0]: "10.9.1.0/-1" is not a prefix: ..."#),
    case(27, r#"allowed_ips = ["10.9.1.0"]"#, r#"27:16: peers[0].allowed_ips[0]: "10.9.1.0" is not a prefix: missing /prefix length"#),
    case(27, r#"allowed_ips = "10.9.1.0/24""#, "27:15: peers[0].allowed_ips: expected array, found string"),
    case(33, r#"allowed_ips = ["10.9.2.0/24", "10.9.1.0/24"]"#, "33:31: peers[1].allowed_ips[1]: 10.9.1.0/24 is already an allowed IP of peers[0]"),
    case(27, r#"allowed_ips = ["10.9.1.0/24", "10.9.1.0/24"]"#, "27:31: peers[0].allowed_ips[1]: duplicate of peers[0].allowed_ips (10.9.1.0/24)"),
    case(28, "persistent_keepalive = 65536", "28:24: peers[0].persistent_keepalive: 65536 is out of range 0..=65535"),
    case(28, "persistent_keepalive = -1", "28:24: peers[0].persistent_keepalive: -1 is out of range 0..=65535"),
    case(28, r#"persistent_keepalive = "25""#, "28:24: peers[0].persistent_keepalive: expected integer, found string"),
    case(28, "persistent_keepalive = 25\nnmae = 1", "29:1: peers[0].nmae: unknown field ..."),
    case(28, "persistent_keepalive = 25\nlanes = 0", "29:9: peers[0].lanes: 0 is out of range 1..=64"),
    case(28, "persistent_keepalive = 25\nlanes = 65", "29:9: peers[0].lanes: 65 is out of range 1..=64"),
    case(28, "persistent_keepalive = 25\nlanes = 3", "29:9: peers[0].lanes: 3 lanes but only 2 workers (dpdk.workers)"),
    case(28, "persistent_keepalive = 25\nlanes = 2", "29:9: peers[0].lanes: 2 lanes need ports.tunnel.lane_ports (one outer source port per worker)"),
    case(32, r#"endpoint = "192.0.2.2:0""#, r#"32:12: peers[1].endpoint: "192.0.2.2:0" is not IP:PORT (IPv6 as [ADDR]:PORT, port nonzero, no host names)"#),
    case(32, r#"endpoint = "vpn.example.com:51820""#, r#"32:12: peers[1].endpoint: "vpn.example.com:51820" is not IP:PORT ..."#),
    case(32, r#"endpoint = "2001:db8::2:51820""#, r#"32:12: peers[1].endpoint: "2001:db8::2:51820" is not IP:PORT ..."#),
    case(32, r#"endpoint = "192.0.2.2""#, r#"32:12: peers[1].endpoint: "192.0.2.2" is not IP:PORT ..."#),
    case(32, r#"endpoint = "192.0.2.2:65536""#, r#"32:12: peers[1].endpoint: "192.0.2.2:65536" is not IP:PORT ..."#),
    case(32, "endpoint = 51820", "32:12: peers[1].endpoint: expected string, found integer"),
    // [metrics]
    case(36, r#"listen = "localhost:9586""#, r#"36:10: metrics.listen: "localhost:9586" is not IP:PORT (IPv6 as [ADDR]:PORT, port nonzero, no host names)"#),
    case(36, r#"listen = "127.0.0.1:0""#, r#"36:10: metrics.listen: "127.0.0.1:0" is not IP:PORT ..."#),
    case(36, r#"listen = "::1:9586""#, r#"36:10: metrics.listen: "::1:9586" is not IP:PORT ..."#),
    case(36, "listen = 9586", "36:10: metrics.listen: expected string, found integer"),
    case(36, "", "35:1: metrics.listen: missing field"),
    case(36, "listen = \"127.0.0.1:9586\"\nport = 9586", "37:1: metrics.port: unknown field (expected one of: listen)"),
    // [[groups]]
    case(39, r#"name = "a site""#, r#"39:8: groups[0].name: "a site" is not a group name (1..=32 of A-Z a-z 0-9 _ . -)"#),
    case(39, r#"name = """#, r#"39:8: groups[0].name: "" is not a group name ..."#),
    case(39, "", "38:1: groups[0].name: missing field"),
    case(40, "members = []", "40:11: groups[0].members: must not be empty"),
    case(40, "", "38:1: groups[0].members: missing field"),
    case(40, r#"members = ["AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=", "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="]"#, "40:60: groups[0].members[1]: duplicate of groups[0].members (AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=)"),
    case(40, r#"members = ["BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU="]"#, "40:12: groups[0].members[0]: BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU= is not the public_key of any [[peers]] entry"),
    case(40, r#"members = ["AgIC"]"#, "40:12: groups[0].members[0]: not base64 of 32 bytes"),
    case(40, r#"members = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=""#, "40:11: groups[0].members: expected array, found string"),
    case(41, "prefixes = []", "41:12: groups[0].prefixes: must not be empty"),
    case(41, "", "38:1: groups[0].prefixes: missing field"),
    case(41, r#"prefixes = ["10.9.1.0/24"]"#, "41:13: groups[0].prefixes[0]: 10.9.1.0/24 is already routed to peers[0] (nested prefixes are fine: the longest match wins)"),
    case(41, r#"prefixes = ["10.10.0.0/16", "10.10.0.0/16"]"#, "41:29: groups[0].prefixes[1]: duplicate of groups[0].prefixes (10.10.0.0/16)"),
    case(41, r#"prefixes = ["10.10.0.1/16"]"#, "41:13: groups[0].prefixes[0]: 10.10.0.1/16 has host bits set; write 10.10.0.0/16"),
    case(41, r#"prefixes = ["10.10.0.0/33"]"#, r#"41:13: groups[0].prefixes[0]: "10.10.0.0/33" is not a prefix: ..."#),
    case(41, "prefixes = [\"10.10.0.0/16\"]\n\n[[groups]]\nname = \"site\"\nmembers = [\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\"]\nprefixes = [\"10.11.0.0/16\"]", "44:8: groups[1].name: duplicate of groups[0].name (site)"),
    case(41, "prefixes = [\"10.10.0.0/16\"]\n\n[[groups]]\nname = \"other\"\nmembers = [\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\"]\nprefixes = [\"10.10.0.0/16\"]", "46:13: groups[1].prefixes[0]: 10.10.0.0/16 is already routed to groups[0] (nested prefixes are fine: the longest match wins)"),
    case(41, "prefixes = [\"10.10.0.0/16\"]\nweight = 2", "42:1: groups[0].weight: unknown field (expected one of: name, members, prefixes)"),
    // The document itself.
    case(35, "[metrix]", "35:2: metrix: unknown field (expected one of: interface, dpdk, ports, peers, groups, metrics, cluster)"),
    case(3, "listen_port = ", "3:15: TOML syntax error: ..."),
    case(3, "listen_port = 51820\nlisten_port = 51821", "4:1: TOML syntax error: ..."),
];

/// `BASE` with line `line` (1-based) replaced by `text`.
fn base_with(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

/// Runs `wgdp check` on `file`: the exit code and stderr.
fn check(file: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgdp"))
        .args(["check", "--config"])
        .arg(file)
        .output()
        .expect("run wgdp");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Checks that `wgdp check` refuses `file` with the one error `error`
/// (after `FILE:`; a trailing `...` compares only what comes before it).
/// Returns a description of what went wrong instead.
fn refused_with(file: &Path, error: &str) -> Result<(), String> {
    let (code, stdout, stderr) = check(file);
    let f = file.display();
    let lines: Vec<&str> = stderr.lines().collect();
    let want = format!("{f}:{}", error.trim_end_matches("..."));
    let matches = |line: &str| match error.strip_suffix("...") {
        Some(_) => line.starts_with(&want),
        None => line == want,
    };
    let ok = code == Some(1)
        && stdout.is_empty()
        && lines.len() == 2
        && matches(lines[0])
        && lines[1] == format!("wgdp: {f}: 1 error");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "want exit 1 and\n  {want}\n  wgdp: {f}: 1 error\ngot exit {code:?}, stdout {stdout:?} and\n{stderr}"
        ))
    }
}

#[test]
fn base_is_valid() {
    let dir = TempDir::new("bad-config");
    let file = dir.write("wgdp.toml", BASE, 0o600);
    let (code, stdout, stderr) = check(&file);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stderr, "");
    let own = conf::Config::from_str(BASE, "base")
        .expect("BASE")
        .interface
        .private_key
        .public_key()
        .to_string();
    assert_eq!(own, OWN_PUBLIC);
}

#[test]
fn every_bad_field_is_refused_with_its_position() {
    let dir = TempDir::new("bad-config");
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let file = dir.write(&format!("bad{i}.toml"), &base_with(c.line, c.text), 0o600);
        if let Err(e) = refused_with(&file, c.error) {
            failures.push(format!("case {i} (line {} = {:?}): {e}", c.line, c.text));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

#[test]
fn key_files_that_are_refused() {
    const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let table = base_with(2, r#"private_key_file = "private.key""#);
    for (mode, content, error) in [
        (
            0o644,
            format!("{KEY}\n"),
            "2:20: interface.private_key_file: DIR/private.key has mode 0644, readable or writable \
             by group/others; refusing it: run `chmod 600 DIR/private.key`",
        ),
        (
            0o640,
            format!("{KEY}\n"),
            "2:20: interface.private_key_file: DIR/private.key has mode 0640, readable or writable \
             by group/others; refusing it: run `chmod 600 DIR/private.key`",
        ),
        (
            0o602,
            format!("{KEY}\n"),
            "2:20: interface.private_key_file: DIR/private.key has mode 0602, readable or writable \
             by group/others; refusing it: run `chmod 600 DIR/private.key`",
        ),
        (
            0o600,
            "not a key\n".to_owned(),
            "2:20: interface.private_key_file: DIR/private.key: content is not base64 of 32 bytes",
        ),
        (
            0o600,
            format!("{KEY}\n{KEY}\n"),
            "2:20: interface.private_key_file: DIR/private.key: content is not base64 of 32 bytes",
        ),
        (
            0o600,
            String::new(),
            "2:20: interface.private_key_file: DIR/private.key: content is not base64 of 32 bytes",
        ),
    ] {
        let dir = TempDir::new("bad-config");
        dir.write("private.key", &content, mode);
        let file = dir.write("wgdp.toml", &table, 0o600);
        let error = error.replace("DIR", &dir.0.display().to_string());
        if let Err(e) = refused_with(&file, &error) {
            panic!("key file mode {mode:04o} content {content:?}: {e}");
        }
    }
    let dir = TempDir::new("bad-config");
    let file = dir.write("wgdp.toml", &table, 0o600);
    let error = format!(
        "2:20: interface.private_key_file: cannot read {}/private.key: ...",
        dir.0.display()
    );
    refused_with(&file, &error).unwrap_or_else(|e| panic!("absent key file: {e}"));
}
