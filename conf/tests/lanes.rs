//! `peers.lanes` and `ports.tunnel.lane_ports`: the values, the rules
//! across sections, and the round trip through rendering.

mod common;

use common::{assert_error, parse, with, BASE};
use conf::{Config, PortRange};

/// BASE with lane ports on the tunnel port (line 13: its `tap`) and two
/// lanes for the first peer (line 22: its `allowed_ips`).
fn lanes(ports: &str, lanes: &str) -> String {
    let text = with(13, &format!("tap = \"wgdp-tun\"\n{ports}"));
    let mut lines: Vec<&str> = text.lines().collect();
    // Line 22 of BASE is line 23 once the tunnel port gained a line.
    let peer = format!("allowed_ips = [\"10.9.1.0/24\"]\n{lanes}");
    lines[22] = &peer;
    lines.join("\n") + "\n"
}

#[test]
fn lanes_parse_render_and_default_to_one() {
    let base = parse(BASE).expect("BASE parses");
    assert!(base.peers.iter().all(|p| p.lanes == 1));
    assert_eq!(base.ports.tunnel.lane_ports, None);
    let text = lanes("lane_ports = \"51820-51821\"", "lanes = 2");
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.peers[0].lanes, 2);
    assert_eq!(c.peers[1].lanes, 1);
    let range = c.ports.tunnel.lane_ports.expect("lane ports");
    assert_eq!((range.first, range.last, range.len()), (51820, 51821, 2));
    assert_eq!(
        (range.port(0), range.port(1), range.port(2)),
        (51820, 51821, 51820)
    );
    assert!(range.contains(51821) && !range.contains(51822));
    let rendered = c.to_toml_string();
    assert!(
        rendered.contains("lanes = 2\n") && rendered.contains("lane_ports = \"51820-51821\"\n")
    );
    assert_eq!(
        Config::from_str(&rendered, "rendered.toml").expect("again"),
        c
    );
}

#[test]
fn port_ranges() {
    for (s, ok) in [
        ("51820-51835", Some((51820, 51835))),
        ("7", Some((7, 7))),
        ("10 - 12", Some((10, 12))),
        ("0-3", None),
        ("9-8", None),
        ("1-65536", None),
        ("a-b", None),
        ("", None),
    ] {
        let got = s.parse::<PortRange>().ok().map(|r| (r.first, r.last));
        assert_eq!(got, ok, "{s:?}");
    }
}

#[test]
fn lanes_errors_name_the_field() {
    let ports = "lane_ports = \"51820-51821\"";
    assert_error(
        &lanes(ports, "lanes = 0"),
        "wgdp.toml:24:9: peers[0].lanes: 0 is out of range 1..=64",
    );
    assert_error(
        &lanes(ports, "lanes = 65"),
        "wgdp.toml:24:9: peers[0].lanes: 65 is out of range 1..=64",
    );
    assert_error(
        &lanes(ports, "lanes = \"2\""),
        "wgdp.toml:24:9: peers[0].lanes: expected integer, found string",
    );
    assert_error(
        &lanes(ports, "lanes = 3"),
        "wgdp.toml:24:9: peers[0].lanes: 3 lanes but only 2 workers (dpdk.workers)",
    );
    assert_error(
        &lanes("", "lanes = 2"),
        "wgdp.toml:24:9: peers[0].lanes: 2 lanes need ports.tunnel.lane_ports (one outer source port per worker)",
    );
    assert_error(
        &lanes("lane_ports = \"51830\"", "lanes = 1"),
        "wgdp.toml:14:14: ports.tunnel.lane_ports: 1 ports for 2 workers (dpdk.workers): give each worker its own",
    );
    assert_error(
        &lanes("lane_ports = \"51830-51820\"", "lanes = 1"),
        "wgdp.toml:14:14: ports.tunnel.lane_ports: \"51830-51820\" is not a port range (FIRST-LAST, 1..=65535, FIRST <= LAST)",
    );
    assert_error(
        &lanes("lane_ports = 51820", "lanes = 1"),
        "wgdp.toml:14:14: ports.tunnel.lane_ports: expected string, found integer",
    );
    // The plaintext port has no lane ports.
    assert_error(
        &with(18, "tap = \"wgdp-plain\"\nlane_ports = \"1-2\""),
        "wgdp.toml:19:1: ports.plaintext.lane_ports: unknown field (expected one of: device, address, gateway, mtu, tap, vlan, mss_clamp)",
    );
}
