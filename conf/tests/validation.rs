//! Each validation rule: the error names the right line, column and field.

mod common;

use common::{assert_error, assert_error_starts, errors, parse, with, BASE};
use conf::PrivateKey;

#[test]
fn base_is_valid() {
    let c = parse(BASE).expect("BASE parses");
    assert_eq!(c.peers.len(), 2);
}

#[test]
fn listen_port_zero() {
    assert_error(
        &with(3, "listen_port = 0"),
        "wgdp.toml:3:15: interface.listen_port: 0 is out of range 1..=65535",
    );
    assert_error(
        &with(3, "listen_port = 65536"),
        "wgdp.toml:3:15: interface.listen_port: 65536 is out of range 1..=65535",
    );
}

#[test]
fn wrong_type() {
    assert_error(
        &with(3, "listen_port = \"51820\""),
        "wgdp.toml:3:15: interface.listen_port: expected integer, found string",
    );
    assert_error(
        &with(3, "listen_port = 1979-05-27"),
        "wgdp.toml:3:15: interface.listen_port: expected integer, found datetime",
    );
    assert_error(
        &with(7, "workers = [1, 2.5]"),
        "wgdp.toml:7:15: dpdk.workers[1]: expected integer, found float",
    );
}

#[test]
fn syntax_error_has_position() {
    assert_error_starts(
        &with(3, "listen_port = "),
        "wgdp.toml:3:15: TOML syntax error: ",
    );
    assert_error_starts(&with(9, "[ports.tunnel"), "wgdp.toml:9:");
}

#[test]
fn unknown_fields() {
    assert_error_starts(
        &with(14, "colour = \"red\""),
        "wgdp.toml:14:1: ports.tunnel.colour: unknown field (expected one of: device,",
    );
    assert_error_starts(
        &with(23, "nmae = 1"),
        "wgdp.toml:23:1: peers[0].nmae: unknown field",
    );
    assert_error_starts(&with(4, "[extra]"), "wgdp.toml:4:2: extra: unknown field");
    assert_error_starts(
        &with(8, "ports.tunnel.speed = 1"),
        "wgdp.toml:8:1: dpdk.ports: unknown field",
    );
}

#[test]
fn missing_fields() {
    assert_error(
        &with(13, ""),
        "wgdp.toml:9:1: ports.tunnel.tap: missing field",
    );
    assert_error(
        &with(21, ""),
        "wgdp.toml:20:1: peers[0].public_key: missing field",
    );
    assert_error(
        &with(2, ""),
        "wgdp.toml:1:1: interface.private_key: missing: give private_key or private_key_file",
    );
}

#[test]
fn both_key_sources() {
    let text = BASE.replacen(
        "listen_port = 51820",
        "listen_port = 51820\nprivate_key_file = \"k\"",
        1,
    );
    assert_error(
        &text,
        "wgdp.toml:4:20: interface.private_key_file: give private_key or private_key_file, not both",
    );
}

#[test]
fn key_file_needs_load() {
    assert_error(
        &with(2, "private_key_file = \"private.key\""),
        "wgdp.toml:2:20: interface.private_key_file: key files are read only by Config::load",
    );
}

#[test]
fn bad_keys() {
    assert_error(
        &with(2, "private_key = \"abc\""),
        "wgdp.toml:2:15: interface.private_key: not base64 of 32 bytes",
    );
    assert_error(
        &with(
            25,
            "public_key = \"BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBA==\"",
        ),
        "wgdp.toml:25:14: peers[1].public_key: not base64 of 32 bytes",
    );
    assert_error(
        &with(23, "preshared_key = \"!!\""),
        "wgdp.toml:23:17: peers[0].preshared_key: not base64 of 32 bytes",
    );
}

#[test]
fn own_public_key() {
    let own = PrivateKey::from_bytes([1; 32]).public_key();
    assert_error(
        &with(21, &format!("public_key = \"{own}\"")),
        "wgdp.toml:21:14: peers[0].public_key: is the interface's own public key",
    );
}

#[test]
fn duplicate_public_key() {
    assert_error(
        &with(
            25,
            "public_key = \"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\"",
        ),
        "wgdp.toml:25:14: peers[1].public_key: duplicate of peers[0].public_key \
         (AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=)",
    );
}

#[test]
fn duplicate_allowed_ips() {
    assert_error(
        &with(27, "allowed_ips = [\"fd00::/64\", \"10.9.1.0/24\"]"),
        "wgdp.toml:27:29: peers[1].allowed_ips[1]: 10.9.1.0/24 is already an allowed IP of peers[0]",
    );
    assert_error(
        &with(22, "allowed_ips = [\"10.9.1.0/24\", \"10.9.1.0/24\"]"),
        "wgdp.toml:22:31: peers[0].allowed_ips[1]: duplicate of peers[0].allowed_ips (10.9.1.0/24)",
    );
}

#[test]
fn non_canonical_allowed_ip_names_canonical_form() {
    assert_error(
        &with(22, "allowed_ips = [\"10.9.1.1/24\"]"),
        "wgdp.toml:22:16: peers[0].allowed_ips[0]: 10.9.1.1/24 has host bits set; write 10.9.1.0/24",
    );
    assert_error(
        &with(27, "allowed_ips = [\"10.9.2.0/24\", \"fd00::1/64\"]"),
        "wgdp.toml:27:31: peers[1].allowed_ips[1]: fd00::1/64 has host bits set; write fd00::/64",
    );
}

#[test]
fn bad_prefixes() {
    assert_error(
        &with(22, "allowed_ips = [\"10.9.1.0\"]"),
        "wgdp.toml:22:16: peers[0].allowed_ips[0]: \"10.9.1.0\" is not a prefix: missing /prefix length",
    );
    assert_error_starts(
        &with(17, "address = [\"10.9.0.1/33\"]"),
        "wgdp.toml:17:12: ports.plaintext.address[0]: \"10.9.0.1/33\" is not a prefix: bad prefix length",
    );
    assert_error(
        &with(17, "address = []"),
        "wgdp.toml:17:11: ports.plaintext.address: must not be empty",
    );
}

#[test]
fn workers() {
    assert_error(
        &with(7, "workers = []"),
        "wgdp.toml:7:11: dpdk.workers: must not be empty",
    );
    assert_error(
        &with(7, "workers = [1, 2, 1]"),
        "wgdp.toml:7:18: dpdk.workers[2]: duplicate of dpdk.workers[0] (1)",
    );
    assert_error(
        &with(7, "workers = [-1]"),
        "wgdp.toml:7:12: dpdk.workers[0]: -1 is out of range 0..=4294967295",
    );
}

#[test]
fn dpdk_ranges() {
    assert_error(
        &with(8, "mbufs = 1023"),
        "wgdp.toml:8:9: dpdk.mbufs: 1023 is out of range 1024..=1048575",
    );
    assert_error(
        &with(8, "idle_sleep_us = 10001"),
        "wgdp.toml:8:17: dpdk.idle_sleep_us: 10001 is out of range 0..=10000",
    );
    assert_error(
        &with(8, "idle_polls = 0"),
        "wgdp.toml:8:14: dpdk.idle_polls: 0 is out of range 1..=4294967295",
    );
}

#[test]
fn dpdk_aead() {
    assert_eq!(parse(BASE).expect("BASE").dpdk.aead, conf::Aead::Auto);
    for (name, want) in [
        ("auto", conf::Aead::Auto),
        ("ring", conf::Aead::Ring),
        ("ipsec-mb", conf::Aead::IpsecMb),
        ("multibuffer", conf::Aead::Multibuffer),
    ] {
        let c = parse(&with(8, &format!("aead = \"{name}\""))).expect("valid");
        assert_eq!(c.dpdk.aead, want);
        assert_eq!(c.dpdk.crypto_device, None);
    }
    let c = parse(&with(
        8,
        "aead = \"cryptodev\"\ncrypto_device = \"0000:3d:01.0_qat_sym\"",
    ))
    .expect("valid");
    assert_eq!(c.dpdk.aead, conf::Aead::Cryptodev);
    assert_eq!(
        c.dpdk.crypto_device.as_deref(),
        Some("0000:3d:01.0_qat_sym")
    );
    let again = parse(&c.to_toml_string()).expect("the rendering parses");
    assert_eq!(again.dpdk, c.dpdk);
    assert_error(
        &with(8, "aead = \"openssl\""),
        "wgdp.toml:8:8: dpdk.aead: \"openssl\" is not an AEAD backend (\"auto\", \"ring\", \"ipsec-mb\", \"cryptodev\" or \"multibuffer\")",
    );
}

#[test]
fn distinct_devices_and_taps() {
    assert_error(
        &with(16, "device = \"net_tap0\""),
        "wgdp.toml:16:10: ports.plaintext.device: duplicate of ports.tunnel.device (net_tap0)",
    );
    assert_error(
        &with(18, "tap = \"wgdp-tun\""),
        "wgdp.toml:18:7: ports.plaintext.tap: duplicate of ports.tunnel.tap (wgdp-tun)",
    );
}

#[test]
fn tap_names() {
    for bad in ["", ".", "..", "has space", "sixteen-chars-xx", "a/b"] {
        assert_error_starts(
            &with(13, &format!("tap = \"{bad}\"")),
            "wgdp.toml:13:7: ports.tunnel.tap: ",
        );
    }
    parse(&with(13, "tap = \"fifteen_chars.x\"")).expect("15 characters are fine");
}

#[test]
fn mtu_range() {
    assert_error(
        &with(14, "mtu = 1279"),
        "wgdp.toml:14:7: ports.tunnel.mtu: 1279 is out of range 1280..=9000",
    );
    assert_error(
        &with(14, "mtu = 9001"),
        "wgdp.toml:14:7: ports.tunnel.mtu: 9001 is out of range 1280..=9000",
    );
}

#[test]
fn gateway_string_and_array() {
    let c = parse(BASE).expect("string gateway");
    assert_eq!(
        c.ports.tunnel.gateway,
        vec!["192.0.2.254".parse::<std::net::IpAddr>().expect("ip")]
    );
    let c =
        parse(&with(12, "gateway = [\"2001:db8::fffe\", \"192.0.2.254\"]")).expect("array gateway");
    assert_eq!(c.ports.tunnel.gateway.len(), 2);
    let c = parse(&with(12, "")).expect("no gateway");
    assert!(c.ports.tunnel.gateway.is_empty());
}

#[test]
fn gateway_errors() {
    assert_error(
        &with(12, "gateway = \"198.51.100.1\""),
        "wgdp.toml:12:11: ports.tunnel.gateway: gateway 198.51.100.1 is not inside any of the port's address prefixes",
    );
    assert_error(
        &with(12, "gateway = [\"192.0.2.254\", \"2001:db9::1\"]"),
        "wgdp.toml:12:27: ports.tunnel.gateway[1]: gateway 2001:db9::1 is not inside any of the port's address prefixes",
    );
    assert_error(
        &with(12, "gateway = [\"192.0.2.254\", \"192.0.2.253\"]"),
        "wgdp.toml:12:27: ports.tunnel.gateway[1]: more than one IPv4 gateway",
    );
    assert_error(
        &with(12, "gateway = \"192.0.2\""),
        "wgdp.toml:12:11: ports.tunnel.gateway: \"192.0.2\" is not an IP address",
    );
    assert_error(
        &with(12, "gateway = 1"),
        "wgdp.toml:12:11: ports.tunnel.gateway: expected string or array of strings, found integer",
    );
}

#[test]
fn endpoints() {
    let c = parse(BASE).expect("BASE");
    assert_eq!(
        c.peers[1].endpoint,
        Some("[2001:db8::2]:51820".parse().expect("v6"))
    );
    let c = parse(&with(23, "endpoint = \"192.0.2.2:51820\"")).expect("v4 endpoint");
    assert_eq!(
        c.peers[0].endpoint,
        Some("192.0.2.2:51820".parse().expect("v4"))
    );
    for bad in [
        "192.0.2.2:0",
        "vpn.example.com:51820",
        "2001:db8::2:51820",
        "192.0.2.2",
    ] {
        assert_error(
            &with(26, &format!("endpoint = \"{bad}\"")),
            &format!(
                "wgdp.toml:26:12: peers[1].endpoint: {bad:?} is not IP:PORT \
                 (IPv6 as [ADDR]:PORT, port nonzero, no host names)"
            ),
        );
    }
}

#[test]
fn keepalive() {
    let c = parse(&with(23, "persistent_keepalive = 0")).expect("0 is off");
    assert_eq!(c.peers[0].persistent_keepalive, None);
    let c = parse(&with(23, "persistent_keepalive = 25")).expect("25");
    assert_eq!(c.peers[0].persistent_keepalive, Some(25));
    assert_error(
        &with(23, "persistent_keepalive = 65536"),
        "wgdp.toml:23:24: peers[0].persistent_keepalive: 65536 is out of range 0..=65535",
    );
}

#[test]
fn all_errors_are_collected() {
    let text = with(3, "listen_port = 0").replace("workers = [1, 2]", "workers = []");
    let got = errors(&text);
    assert_eq!(
        got,
        "wgdp.toml:3:15: interface.listen_port: 0 is out of range 1..=65535\n\
         wgdp.toml:7:11: dpdk.workers: must not be empty"
    );
}

#[test]
fn no_panic_on_truncated_or_mangled_input() {
    let example = include_str!("../example.toml");
    for text in [BASE, example] {
        for (i, _) in text.char_indices() {
            let _ = parse(&text[..i]);
            let mangled: String = text[..i].to_owned() + "\u{0}=[" + &text[i..];
            let _ = parse(&mangled);
        }
    }
    let deep = format!("a = {}1{}", "[".repeat(5000), "]".repeat(5000));
    assert!(parse(&deep).is_err());
    let deep = format!("a = {}1{}", "{b = ".repeat(5000), "}".repeat(5000));
    assert!(parse(&deep).is_err());
    for text in [
        "",
        "=",
        "[[peers]]",
        "peers = 1",
        "ports = []",
        "[interface]\nlisten_port = 99999999999999999999",
    ] {
        assert!(parse(text).is_err());
    }
}

#[test]
fn odd_unknown_keys_are_quoted() {
    assert_error_starts(
        &with(14, "\"a\\nb\" = 1"),
        "wgdp.toml:14:1: ports.tunnel.\"a\\nb\": unknown field",
    );
}

#[test]
fn devices_compare_without_case() {
    assert_error(
        &with(16, "device = \"NET_TAP0\""),
        "wgdp.toml:16:10: ports.plaintext.device: duplicate of ports.tunnel.device (NET_TAP0)",
    );
}

#[test]
fn interface_name_default_and_rules() {
    let c = parse(BASE).expect("BASE");
    assert_eq!(c.interface.name, "wgdp0");
    for good in ["wg0", "a", "wg_x.y=z+w-1", "fifteen_chars.x"] {
        let c = parse(&with(3, &format!("listen_port = 51820\nname = \"{good}\"")))
            .unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(c.interface.name, good);
    }
    for bad in [
        "",
        ".",
        "..",
        "has space",
        "sixteen-chars-xx",
        "a/b",
        "wg:0",
        "ünï",
    ] {
        assert_error(
            &with(3, &format!("listen_port = 51820\nname = \"{bad}\"")),
            &format!(
                "wgdp.toml:4:8: interface.name: {bad:?} is not an interface name \
                 (1..=15 of A-Z a-z 0-9 _ . = + -, not \".\" or \"..\")"
            ),
        );
    }
    assert_error(
        &with(3, "listen_port = 51820\nname = 0"),
        "wgdp.toml:4:8: interface.name: expected string, found integer",
    );
}

#[test]
fn metrics_section() {
    assert_eq!(parse(BASE).expect("BASE").metrics, None);
    let lines = BASE.lines().count();
    let c = parse(&format!("{BASE}\n[metrics]\nlisten = \"127.0.0.1:9586\"\n")).expect("metrics");
    let listen = c.metrics.map(|m| m.listen);
    assert_eq!(listen, Some("127.0.0.1:9586".parse().expect("addr")));
    let c = parse(&format!("{BASE}\n[metrics]\nlisten = \"[::1]:9586\"\n")).expect("v6");
    assert_eq!(c.metrics.map(|m| m.listen.port()), Some(9586));
    for bad in ["localhost:9586", "127.0.0.1", "127.0.0.1:0", "::1:9586", ""] {
        assert_error(
            &format!("{BASE}\n[metrics]\nlisten = \"{bad}\"\n"),
            &format!(
                "wgdp.toml:{}:10: metrics.listen: {bad:?} is not IP:PORT \
                 (IPv6 as [ADDR]:PORT, port nonzero, no host names)",
                lines + 3
            ),
        );
    }
    assert_error(
        &format!("{BASE}\n[metrics]\n"),
        &format!("wgdp.toml:{}:1: metrics.listen: missing field", lines + 2),
    );
    assert_error_starts(
        &format!("{BASE}\n[metrics]\nlisten = \"127.0.0.1:1\"\nport = 1\n"),
        &format!(
            "wgdp.toml:{}:1: metrics.port: unknown field (expected one of: listen)",
            lines + 4
        ),
    );
}

/// BASE with `groups` appended (its header is line 29).
fn with_groups(groups: &str) -> String {
    format!("{BASE}\n{groups}")
}

const PEER0: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
const PEER1: &str = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=";

#[test]
fn groups_parse() {
    let text = with_groups(&format!(
        "[[groups]]\nname = \"site-a\"\nmembers = [\"{PEER0}\", \"{PEER1}\"]\n\
         prefixes = [\"10.77.0.0/16\", \"10.9.1.128/25\"]\n"
    ));
    let c = parse(&text).expect("groups parse");
    assert_eq!(c.groups.len(), 1);
    let g = &c.groups[0];
    assert_eq!(g.name, "site-a");
    assert_eq!(g.members[1].to_string(), PEER1);
    // Nested inside peers[0]'s 10.9.1.0/24: allowed, the longest match wins.
    assert_eq!(g.prefixes[1].to_string(), "10.9.1.128/25");
    // Rendered and parsed back: the same.
    assert_eq!(parse(&c.to_toml_string()).expect("round trip"), c);
}

#[test]
fn group_errors() {
    let group = |members: &str, prefixes: &str| {
        with_groups(&format!(
            "[[groups]]\nname = \"g\"\nmembers = {members}\nprefixes = {prefixes}\n"
        ))
    };
    let two = format!("[\"{PEER0}\", \"{PEER1}\"]");
    assert_error(
        &group("[]", "[\"10.77.0.0/16\"]"),
        "wgdp.toml:31:11: groups[0].members: must not be empty",
    );
    assert_error(
        &group(&two, "[]"),
        "wgdp.toml:32:12: groups[0].prefixes: must not be empty",
    );
    assert_error(
        &group(
            "[\"BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=\"]",
            "[\"10.77.0.0/16\"]",
        ),
        "wgdp.toml:31:12: groups[0].members[0]: BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU= \
         is not the public_key of any [[peers]] entry",
    );
    assert_error(
        &group(&format!("[\"{PEER0}\", \"{PEER0}\"]"), "[\"10.77.0.0/16\"]"),
        &format!("wgdp.toml:31:60: groups[0].members[1]: duplicate of groups[0].members ({PEER0})"),
    );
    assert_error(
        &group(&two, "[\"10.9.2.0/24\"]"),
        "wgdp.toml:32:13: groups[0].prefixes[0]: 10.9.2.0/24 is already routed to peers[1] \
         (nested prefixes are fine: the longest match wins)",
    );
    assert_error(
        &group(&two, "[\"10.77.0.0/16\", \"10.77.0.0/16\"]"),
        "wgdp.toml:32:29: groups[0].prefixes[1]: duplicate of groups[0].prefixes (10.77.0.0/16)",
    );
    assert_error(
        &group(&two, "[\"10.77.0.1/16\"]"),
        "wgdp.toml:32:13: groups[0].prefixes[0]: 10.77.0.1/16 has host bits set; write 10.77.0.0/16",
    );
    let too_many = format!("[{}]", vec![format!("\"{PEER0}\"",); 65].join(", "));
    assert_error(
        &group(&too_many, "[\"10.77.0.0/16\"]"),
        "wgdp.toml:31:11: groups[0].members: 65 members; a group has at most 64",
    );
    // Two groups: the same prefix, the same name.
    let second = |name: &str, prefix: &str| {
        with_groups(&format!(
            "[[groups]]\nname = \"g\"\nmembers = {two}\nprefixes = [\"10.77.0.0/16\"]\n\n\
             [[groups]]\nname = \"{name}\"\nmembers = [\"{PEER1}\"]\nprefixes = [\"{prefix}\"]\n"
        ))
    };
    assert_error(
        &second("h", "10.77.0.0/16"),
        "wgdp.toml:37:13: groups[1].prefixes[0]: 10.77.0.0/16 is already routed to groups[0] \
         (nested prefixes are fine: the longest match wins)",
    );
    assert_error(
        &second("g", "10.78.0.0/16"),
        "wgdp.toml:35:8: groups[1].name: duplicate of groups[0].name (g)",
    );
    assert!(
        parse(&second("h", "10.77.1.0/24")).is_ok(),
        "nested prefixes"
    );
    assert_error(
        &with_groups(&format!(
            "[[groups]]\nname = \"a b\"\nmembers = {two}\nprefixes = [\"10.77.0.0/16\"]\n"
        )),
        "wgdp.toml:30:8: groups[0].name: \"a b\" is not a group name (1..=32 of A-Z a-z 0-9 _ . -)",
    );
    assert_error(
        &with_groups(&format!(
            "[[groups]]\nmembers = {two}\nprefixes = [\"10.77.0.0/16\"]\n"
        )),
        "wgdp.toml:29:1: groups[0].name: missing field",
    );
    assert_error(
        &with_groups(&format!(
            "[[groups]]\nname = \"g\"\nmembers = {two}\nprefixes = [\"10.77.0.0/16\"]\nweights = 1\n"
        )),
        "wgdp.toml:33:1: groups[0].weights: unknown field (expected one of: name, members, prefixes)",
    );
}
