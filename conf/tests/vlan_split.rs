//! `[ports.tunnel]` and `[ports.plaintext]` on one device as two of its
//! VLANs: accepted with a different `vlan` on each and one `mtu`, rendered
//! back as the two tables; one device with no VLAN, one VLAN missing, the
//! same VLAN twice or two MTUs are refused with errors naming the field.

mod common;

use common::{assert_error, errors, parse, BASE};
use conf::Config;

/// BASE with its two ports (lines 9-18) replaced by `ports`.
fn with_ports(ports: &str) -> String {
    let lines: Vec<&str> = BASE.lines().collect();
    let mut out: Vec<&str> = lines[..8].to_vec();
    out.extend(ports.lines());
    out.extend(&lines[18..]);
    out.join("\n") + "\n"
}

/// The two role tables on device `net_ring0` (line 10 and line 17), with
/// `tun` and `plain` appended to each.
fn split(tun: &str, plain: &str) -> String {
    with_ports(&format!(
        "[ports.tunnel]\ndevice = \"net_ring0\"\naddress = [\"192.0.2.1/24\"]\ngateway = \"192.0.2.254\"\ntap = \"wgdp-tun\"\n{tun}\n[ports.plaintext]\ndevice = \"NET_RING0\"\naddress = [\"10.9.0.1/24\"]\ntap = \"wgdp-plain\"\n{plain}\n"
    ))
}

#[test]
fn one_device_with_a_vlan_per_role_is_two_ports_and_renders_back() {
    let c = parse(&split("vlan = 10", "vlan = 20")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.ports.vlan_split());
    assert!(!c.ports.one_armed());
    assert_eq!(c.ports.tunnel.vlan, Some(10));
    assert_eq!(c.ports.plaintext.vlan, Some(20));
    assert_eq!(c.ports.tunnel.tap, "wgdp-tun");
    assert_eq!(c.ports.plaintext.tap, "wgdp-plain");
    let rendered = c.to_toml_string();
    assert!(rendered.contains("[ports.tunnel]\n"), "{rendered}");
    assert!(rendered.contains("[ports.plaintext]\n"), "{rendered}");
    assert!(!rendered.contains("[ports.both]"), "{rendered}");
    assert_eq!(
        Config::from_str(&rendered, "rendered.toml").expect("again"),
        c
    );
    // Two devices, with or without VLANs, and one-armed mode are not split.
    assert!(!parse(BASE).expect("BASE").ports.vlan_split());
    let both = with_ports(
        "[ports.both]\ndevice = \"net_ring0\"\naddress = [\"192.0.2.1/24\"]\ntap = \"t\"\nvlan = 10\n",
    );
    assert!(!parse(&both).expect("both").ports.vlan_split());
}

#[test]
fn one_device_without_vlans_stays_a_duplicate() {
    assert_error(
        &split("", ""),
        "wgdp.toml:16:10: ports.plaintext.device: duplicate of ports.tunnel.device (NET_RING0)",
    );
}

#[test]
fn one_device_with_one_vlan_missing_names_the_role_without() {
    assert_error(
        &split("vlan = 10", ""),
        "wgdp.toml:16:10: ports.plaintext.device: the same device as ports.tunnel.device: two roles on one device are two of its VLANs, give ports.plaintext.vlan too",
    );
    assert_error(
        &split("", "vlan = 20"),
        "wgdp.toml:16:10: ports.plaintext.device: the same device as ports.tunnel.device: two roles on one device are two of its VLANs, give ports.tunnel.vlan too",
    );
}

#[test]
fn one_device_with_the_same_vlan_twice_is_refused() {
    assert_error(
        &split("vlan = 10", "vlan = 10"),
        "wgdp.toml:19:8: ports.plaintext.vlan: the same VLAN (10) as ports.tunnel.vlan on the same device: give each role its own VLAN",
    );
}

#[test]
fn one_device_with_two_mtus_is_refused() {
    let got = errors(&split("vlan = 10\nmtu = 1500", "vlan = 20\nmtu = 9000"));
    assert_eq!(
        got.trim(),
        "wgdp.toml:21:7: ports.plaintext.mtu: 9000 differs from ports.tunnel.mtu (1500) on the same device: one port has one MTU",
    );
    // The same MTU given twice is one MTU.
    assert!(parse(&split("vlan = 10\nmtu = 9000", "vlan = 20\nmtu = 9000")).is_ok());
}
