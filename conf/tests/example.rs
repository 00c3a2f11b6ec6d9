//! The shipped example, the full expected values, round trips, redaction.

mod common;

use std::net::IpAddr;

use common::{parse, BASE};
use conf::{Cidr, Config, KeySource, PresharedKey, PrivateKey, PublicKey};

const EXAMPLE: &str = include_str!("../example.toml");

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn cidr(s: &str) -> Cidr {
    s.parse().expect("cidr")
}

#[test]
fn example_parses_to_the_expected_values() {
    let c = Config::from_str(EXAMPLE, "example.toml").expect("example parses");
    assert_eq!(c.interface.private_key, PrivateKey::from_bytes([1; 32]));
    assert_eq!(c.interface.key_source, KeySource::Inline);
    assert_eq!(c.interface.listen_port, 51820);
    assert_eq!(c.interface.name, "wgdp0");
    assert_eq!(
        c.metrics.map(|m| m.listen),
        Some("127.0.0.1:9586".parse().expect("metrics address"))
    );

    assert_eq!(
        c.dpdk.eal_args[..4],
        ["-l", "0-2", "--in-memory", "--no-pci"]
    );
    assert_eq!(c.dpdk.eal_args.len(), 8);
    assert_eq!(c.dpdk.workers, [1, 2]);
    assert_eq!(
        (c.dpdk.mbufs, c.dpdk.idle_sleep_us, c.dpdk.idle_polls),
        (16383, 0, 1024)
    );

    let t = &c.ports.tunnel;
    assert_eq!(t.device, "net_tap0");
    assert_eq!(t.address, [cidr("192.0.2.1/24"), cidr("2001:db8::1/64")]);
    assert_eq!(t.gateway, [ip("192.0.2.254"), ip("2001:db8::fffe")]);
    assert_eq!((t.mtu, t.tap.as_str()), (1500, "wgdp-tun"));
    let p = &c.ports.plaintext;
    assert_eq!(p.device, "net_tap1");
    assert_eq!(p.address, [cidr("10.9.0.1/24"), cidr("fd00:9::1/64")]);
    assert!(p.gateway.is_empty());
    assert_eq!((p.mtu, p.tap.as_str()), (1500, "wgdp-plain"));

    assert_eq!(c.peers.len(), 2);
    let a = &c.peers[0];
    assert_eq!(a.public_key, PublicKey([2; 32]));
    assert_eq!(a.preshared_key, Some(PresharedKey::from_bytes([3; 32])));
    assert_eq!(a.endpoint, Some("198.51.100.7:51820".parse().expect("v4")));
    assert_eq!(a.allowed_ips, [cidr("10.9.1.0/24"), cidr("fd00:9:1::/64")]);
    assert_eq!(a.persistent_keepalive, Some(25));
    let b = &c.peers[1];
    assert_eq!(b.public_key, PublicKey([4; 32]));
    assert_eq!(b.preshared_key, None);
    assert_eq!(
        b.endpoint,
        Some("[2001:db8:100::7]:51820".parse().expect("v6"))
    );
    assert_eq!(b.allowed_ips, [cidr("10.9.2.2/32")]);
    assert_eq!(b.persistent_keepalive, None);
}

#[test]
fn defaults_apply() {
    let c = parse(BASE).expect("BASE");
    assert_eq!(
        (c.dpdk.mbufs, c.dpdk.idle_sleep_us, c.dpdk.idle_polls),
        (16383, 0, 1024)
    );
    assert_eq!(c.ports.tunnel.mtu, 1500);
    assert!(c.peers[0].preshared_key.is_none());
}

#[test]
fn round_trip() {
    for text in [BASE, EXAMPLE] {
        let c = parse(text).expect("parses");
        let rendered = c.to_toml_string();
        let again = Config::from_str(&rendered, "rendered.toml")
            .unwrap_or_else(|e| panic!("{e}\n{rendered}"));
        assert_eq!(again, c);
        assert_eq!(again.to_toml_string(), rendered);
    }
}

#[test]
fn debug_redacts_secrets() {
    let c = Config::from_str(EXAMPLE, "example.toml").expect("example parses");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
        "{debug}"
    );
    assert!(
        !debug.contains("AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="),
        "{debug}"
    );
    assert!(debug.contains("PrivateKey(<redacted>)"));
    assert!(debug.contains("PresharedKey(<redacted>)"));
    // Public keys are not secret and are shown.
    assert!(debug.contains("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="));
}

#[test]
fn round_trip_of_odd_strings() {
    let mut c = parse(BASE).expect("BASE");
    c.dpdk.eal_args = vec![
        "quote\"".into(),
        "back\\slash".into(),
        "it's".into(),
        "tab\tnewline\n".into(),
        "ünï".into(),
        String::new(),
    ];
    c.ports.tunnel.device = "net_tap0,iface=a'b\"c".into();
    c.peers[0].persistent_keepalive = Some(65535);
    c.peers[0].preshared_key = Some(PresharedKey::from_bytes([9; 32]));
    c.interface.name = "a=b+c.d-e_f".into();
    c.metrics = Some(conf::Metrics {
        listen: "[2001:db8::1]:9586".parse().expect("addr"),
    });
    let rendered = c.to_toml_string();
    let again =
        Config::from_str(&rendered, "rendered.toml").unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(again, c);
}
