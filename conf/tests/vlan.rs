//! `vlan` on either port: absent by default, parsed, rendered and read
//! back; its range is checked (the error positions are in
//! `tests/bad_config.rs`).

mod common;

use common::{parse, with, BASE};
use conf::Config;

#[test]
fn vlan_parses_renders_and_defaults_to_untagged() {
    let base = parse(BASE).expect("BASE parses");
    assert_eq!(base.ports.tunnel.vlan, None);
    assert_eq!(base.ports.plaintext.vlan, None);
    // Line 13 is the tunnel port's `tap`, line 18 (19 after it) the
    // plaintext port's.
    let text = with(13, "tap = \"wgdp-tun\"\nvlan = 100");
    let text = with_line(&text, 19, "tap = \"wgdp-plain\"\nvlan = 4094");
    let c = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(c.ports.tunnel.vlan, Some(100));
    assert_eq!(c.ports.plaintext.vlan, Some(4094));
    let rendered = c.to_toml_string();
    assert!(rendered.contains("vlan = 100\n") && rendered.contains("vlan = 4094\n"));
    assert_eq!(
        Config::from_str(&rendered, "rendered.toml").expect("again"),
        c
    );
    for bad in ["vlan = 0", "vlan = 4095", "vlan = -1", "vlan = \"7\""] {
        let text = with(13, &format!("tap = \"wgdp-tun\"\n{bad}"));
        assert!(parse(&text).is_err(), "{bad} accepted");
    }
}

/// `text` with its line `line` (1-based) replaced.
fn with_line(text: &str, line: usize, new: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[line - 1] = new;
    lines.join("\n") + "\n"
}
