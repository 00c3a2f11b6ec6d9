//! `ports.plaintext.mss_clamp` and `dpdk.staging_budget`: the values, their
//! errors and the round trip through rendering.

mod common;

use common::{assert_error, parse, with, BASE};
use conf::{Config, MssClamp};

/// BASE with `extra` after the plaintext port's `tap` (line 18).
fn plaintext(extra: &str) -> String {
    with(18, &format!("tap = \"wgdp-plain\"\n{extra}"))
}

/// BASE with `extra` after `dpdk.workers` (line 7).
fn dpdk(extra: &str) -> String {
    with(7, &format!("workers = [1, 2]\n{extra}"))
}

fn round_trip(c: &Config) {
    let rendered = c.to_toml_string();
    assert_eq!(&Config::from_str(&rendered, "r.toml").expect("again"), c);
}

#[test]
fn mss_clamp_is_auto_a_number_or_off() {
    assert_eq!(parse(BASE).unwrap().ports.plaintext.mss_clamp, None);
    for (value, want) in [
        ("\"auto\"", Some(MssClamp::Auto)),
        ("1360", Some(MssClamp::Fixed(1360))),
        ("536", Some(MssClamp::Fixed(536))),
        ("\"off\"", None),
    ] {
        let c = parse(&plaintext(&format!("mss_clamp = {value}"))).expect(value);
        assert_eq!(c.ports.plaintext.mss_clamp, want, "{value}");
        assert_eq!(c.ports.tunnel.mss_clamp, None);
        round_trip(&c);
    }
}

#[test]
fn mss_clamp_errors_name_the_field() {
    assert_error(
        &plaintext("mss_clamp = 535"),
        "wgdp.toml:19:13: ports.plaintext.mss_clamp: 535 is not \"auto\", \"off\" or an MSS (536..=65495)",
    );
    assert_error(
        &plaintext("mss_clamp = \"on\""),
        "wgdp.toml:19:13: ports.plaintext.mss_clamp: \"on\" is not \"auto\", \"off\" or an MSS (536..=65495)",
    );
    assert_error(
        &with(13, "tap = \"wgdp-tun\"\nmss_clamp = \"auto\""),
        "wgdp.toml:14:1: ports.tunnel.mss_clamp: unknown field (expected one of: device, address, gateway, mtu, tap, vlan, lane_ports)",
    );
}

#[test]
fn staging_budget_defaults_to_a_quarter_of_the_pool() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.dpdk.staging_budget, None);
    assert_eq!(c.dpdk.staging_budget(), conf::DEFAULT_MBUFS / 4);
    let c = parse(&dpdk("mbufs = 8192\nstaging_budget = 100")).unwrap();
    assert_eq!(
        (c.dpdk.staging_budget, c.dpdk.staging_budget()),
        (Some(100), 100)
    );
    round_trip(&c);
    let c = parse(&dpdk("mbufs = 8192")).unwrap();
    assert_eq!(c.dpdk.staging_budget(), 2048);
    assert_error(
        &dpdk("mbufs = 8192\nstaging_budget = 8193"),
        "wgdp.toml:9:18: dpdk.staging_budget: 8193 is out of range 0..=8192",
    );
}

#[test]
fn icmp_rate_defaults_to_the_kernels_and_is_bounded() {
    let c = parse(BASE).unwrap();
    assert_eq!((c.dpdk.icmp_per_sec, c.dpdk.icmp_burst), (1000, 50));
    assert!(
        !c.to_toml_string().contains("icmp_"),
        "defaults not written"
    );
    let c = parse(&dpdk("icmp_per_sec = 0\nicmp_burst = 10")).unwrap();
    assert_eq!((c.dpdk.icmp_per_sec, c.dpdk.icmp_burst), (0, 10));
    round_trip(&c);
    assert_error(
        &dpdk("icmp_burst = 0"),
        "wgdp.toml:8:14: dpdk.icmp_burst: 0 is out of range 1..=10000",
    );
    assert_error(
        &dpdk("icmp_per_sec = 1000001"),
        "wgdp.toml:8:16: dpdk.icmp_per_sec: 1000001 is out of range 0..=1000000",
    );
}

#[test]
fn control_nice_defaults_to_minus_ten_and_is_bounded_to_nice_values() {
    let c = parse(BASE).unwrap();
    assert_eq!((c.dpdk.control_nice, c.dpdk.control_nice()), (None, -10));
    assert!(
        !c.to_toml_string().contains("control_nice"),
        "default not written"
    );
    for n in [-20, 0, 19] {
        let c = parse(&dpdk(&format!("control_nice = {n}"))).unwrap();
        assert_eq!((c.dpdk.control_nice, c.dpdk.control_nice()), (Some(n), n));
        round_trip(&c);
    }
    assert_error(
        &dpdk("control_nice = -21"),
        "wgdp.toml:8:16: dpdk.control_nice: -21 is out of range -20..=19",
    );
    assert_error(
        &dpdk("control_nice = 20"),
        "wgdp.toml:8:16: dpdk.control_nice: 20 is out of range -20..=19",
    );
}

#[test]
fn handshake_threads_default_from_the_machine_and_are_bounded() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.dpdk.handshake_threads, None);
    assert!(
        !c.to_toml_string().contains("handshake_threads"),
        "default not written"
    );
    for n in [0, 4, 64] {
        let c = parse(&dpdk(&format!("handshake_threads = {n}"))).unwrap();
        assert_eq!(c.dpdk.handshake_threads, Some(n));
        round_trip(&c);
    }
    assert_error(
        &dpdk("handshake_threads = 65"),
        "wgdp.toml:8:21: dpdk.handshake_threads: 65 is out of range 0..=64",
    );
}
