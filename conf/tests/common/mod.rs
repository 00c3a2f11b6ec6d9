//! Shared helpers for the integration tests.
#![allow(dead_code)]

use conf::{ConfErrors, Config};

/// A valid configuration whose line numbers the tests rely on.
pub const BASE: &str = r#"[interface]
private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
listen_port = 51820

[dpdk]
eal_args = ["-l", "0-2"]
workers = [1, 2]

[ports.tunnel]
device = "net_tap0"
address = ["192.0.2.1/24", "2001:db8::1/64"]
gateway = "192.0.2.254"
tap = "wgdp-tun"

[ports.plaintext]
device = "net_tap1"
address = ["10.9.0.1/24"]
tap = "wgdp-plain"

[[peers]]
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
allowed_ips = ["10.9.1.0/24"]

[[peers]]
public_key = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ="
endpoint = "[2001:db8::2]:51820"
allowed_ips = ["10.9.2.0/24", "fd00::/64"]
"#;

/// BASE with line `line` (1-based) replaced by `text`.
pub fn with(line: usize, text: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    lines[line - 1] = text;
    lines.join("\n") + "\n"
}

/// Parses `text` as `wgdp.toml`.
pub fn parse(text: &str) -> Result<Config, ConfErrors> {
    Config::from_str(text, "wgdp.toml")
}

/// The errors of `text`, one a line; panics if it parses.
pub fn errors(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error from:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `text` fails with exactly the one error `expected`.
pub fn assert_error(text: &str, expected: &str) {
    let got = errors(text);
    assert_eq!(got, expected, "for:\n{text}");
}

/// Asserts that `text` fails with an error line starting with `prefix`.
pub fn assert_error_starts(text: &str, prefix: &str) {
    let got = errors(text);
    assert!(
        got.lines().any(|l| l.starts_with(prefix)),
        "expected a line starting {prefix:?}, got:\n{got}"
    );
}
