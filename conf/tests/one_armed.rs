//! `[ports.both]`: one port carrying both roles (one-armed mode). It
//! parses into the same port for both roles, renders back as
//! `[ports.both]`, takes both roles' own fields, and may not be given
//! beside `[ports.tunnel]` or `[ports.plaintext]`.

mod common;

use common::{assert_error, errors, parse, BASE};
use conf::{Config, MssClamp, PortRange};

/// BASE with its two ports (lines 9-18) replaced by `ports`.
fn with_ports(ports: &str) -> String {
    let lines: Vec<&str> = BASE.lines().collect();
    let mut out: Vec<&str> = lines[..8].to_vec();
    out.extend(ports.lines());
    out.extend(&lines[18..]);
    out.join("\n") + "\n"
}

const BOTH: &str = r#"[ports.both]
device = "net_tap0"
address = ["192.0.2.1/24", "10.9.0.1/24"]
gateway = "192.0.2.254"
tap = "wgdp-one"
lane_ports = "40000-40001"
mss_clamp = "auto"
"#;

#[test]
fn one_port_takes_both_roles_and_renders_back() {
    let c = parse(&with_ports(BOTH)).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.ports.one_armed());
    assert_eq!(c.ports.tunnel, c.ports.plaintext);
    let p = &c.ports.tunnel;
    assert_eq!(p.device, "net_tap0");
    assert_eq!(p.tap, "wgdp-one");
    assert_eq!(p.address.len(), 2);
    assert_eq!(p.gateway.len(), 1);
    assert_eq!(
        p.lane_ports,
        Some(PortRange {
            first: 40000,
            last: 40001
        })
    );
    assert_eq!(p.mss_clamp, Some(MssClamp::Auto));
    let rendered = c.to_toml_string();
    assert!(rendered.contains("[ports.both]\n"), "{rendered}");
    assert!(!rendered.contains("[ports.tunnel]") && !rendered.contains("[ports.plaintext]"));
    assert_eq!(
        Config::from_str(&rendered, "rendered.toml").expect("again"),
        c
    );
    // Two ports stay two.
    assert!(!parse(BASE).expect("BASE").ports.one_armed());
}

#[test]
fn both_beside_a_role_table_is_refused_naming_the_role() {
    let tunnel =
        "[ports.tunnel]\ndevice = \"net_tap1\"\naddress = [\"192.0.2.1/24\"]\ntap = \"t\"\n";
    let plain =
        "[ports.plaintext]\ndevice = \"net_tap1\"\naddress = [\"10.9.0.1/24\"]\ntap = \"p\"\n";
    assert_error(
        &with_ports(&format!("{BOTH}\n{tunnel}")),
        "wgdp.toml:17:1: ports.tunnel: [ports.both] already carries the tunnel role: give [ports.both] alone (one port, both roles) or [ports.tunnel] and [ports.plaintext]",
    );
    let got = errors(&with_ports(&format!("{BOTH}\n{tunnel}\n{plain}")));
    assert_eq!(got.lines().count(), 2, "{got}");
    assert!(got.contains("ports.tunnel: [ports.both] already carries the tunnel role"));
    assert!(got.contains("ports.plaintext: [ports.both] already carries the plaintext role"));
}

#[test]
fn both_is_checked_as_a_port() {
    // Its fields are checked as a port's, and unknown ones named.
    let got = errors(&with_ports(
        "[ports.both]\ndevice = \"net_tap0\"\ntap = \"x\"\nspeed = 1\n",
    ));
    assert!(got.contains("ports.both.address"), "{got}");
    assert!(got.contains("ports.both.speed"), "{got}");
    // Lane ports fewer than the workers (2) name the both table.
    let few = BOTH.replace("40000-40001", "40000");
    assert!(
        errors(&with_ports(&few)).contains("ports.both.lane_ports: 1 ports for 2 workers"),
        "{}",
        errors(&with_ports(&few))
    );
}
