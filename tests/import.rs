//! `wgdp import wg-quick` end to end: the real binary, then `wgdp check` on
//! what it wrote.
#![cfg(unix)]

mod tempdir;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use tempdir::TempDir;

const PRIV: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const PUB2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
const PUB4: &str = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=";

/// A wg-quick file with one of everything.
fn wg0() -> String {
    format!(
        "[Interface]\n\
         Address = 10.200.0.1/24\n\
         ListenPort = 51821\n\
         PrivateKey = {PRIV}\n\
         DNS = 10.200.0.53\n\
         PostUp = iptables -A FORWARD -i %i -j ACCEPT\n\
         \n\
         [Peer]\n\
         PublicKey = {PUB2}\n\
         AllowedIPs = 10.200.0.2/32\n\
         Endpoint = 198.51.100.7:51820\n\
         PersistentKeepalive = 25\n\
         \n\
         [Peer]\n\
         PublicKey = {PUB4}\n\
         AllowedIPs = 10.200.0.3/32, 10.30.0.1/16\n\
         Endpoint = gw.example.net:51820\n"
    )
}

fn wgdp(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgdp"))
        .args(args)
        .args(paths)
        .output()
        .expect("run wgdp")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The imported table with the placeholders filled in.
fn filled(toml: &str) -> String {
    toml.replacen("device = \"\"", "device = \"net_tap0\"", 1)
        .replacen("address = []", "address = [\"192.0.2.1/24\"]", 1)
        .replacen("device = \"\"", "device = \"net_tap1\"", 1)
        .replacen("address = []", "address = [\"10.200.0.1/24\"]", 1)
}

#[test]
fn import_to_stdout_lists_what_is_not_mapped_and_check_rejects_placeholders() {
    let dir = TempDir::new("import-test");
    let input = dir.write("wg0.conf", &wg0(), 0o600);
    let out = wgdp(&["import", "wg-quick"], &[&input]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!("private_key = \"{PRIV}\"\n")),
        "{stdout}"
    );
    assert!(stdout.contains("name = \"wg0\"\n"), "{stdout}");
    assert!(stdout.contains("listen_port = 51821\n"), "{stdout}");
    let not_mapped: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("not mapped: "))
        .collect();
    assert_eq!(not_mapped.len(), 4, "{stderr}");
    assert!(not_mapped[0].starts_with("[Interface] Address = 10.200.0.1/24 (the tunnel"));
    assert!(not_mapped[1].starts_with("[Interface] DNS = 10.200.0.53 ("));
    assert!(not_mapped[2].starts_with("[Interface] PostUp = iptables -A FORWARD -i %i -j ACCEPT ("));
    assert!(not_mapped[3].starts_with(
        "[Peer] Endpoint = gw.example.net:51820 (peers[1] is imported without an endpoint: \
         wgdp does not resolve host names"
    ));
    assert!(
        stderr.contains(
            "note: Peer[1].AllowedIPs: 10.30.0.1/16 has host bits set; imported as 10.30.0.0/16"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("note: edit ports.tunnel.device"),
        "{stderr}"
    );

    // As written, `wgdp check` rejects the placeholders and points at them.
    let table = dir.write("wgdp.toml", &stdout, 0o600);
    let out = wgdp(&["check", "--config"], &[&table]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line_of = |needle: &str, nth: usize| {
        stdout
            .lines()
            .enumerate()
            .filter(|(_, l)| l.starts_with(needle))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .expect("placeholder line")
    };
    let t = table.display();
    for (field, needle, nth, column) in [
        ("ports.tunnel.device", "device = ", 0, 10),
        ("ports.tunnel.address", "address = ", 0, 11),
        ("ports.plaintext.device", "device = ", 1, 10),
        ("ports.plaintext.address", "address = ", 1, 11),
    ] {
        let line = line_of(needle, nth);
        let expected = format!("{t}:{line}:{column}: {field}: must not be empty");
        assert!(
            stderr.lines().any(|l| l == expected),
            "{expected} not in:\n{stderr}"
        );
    }

    // Filled in, the same table passes.
    let table = dir.write("filled.toml", &filled(&stdout), 0o600);
    let out = wgdp(&["check", "--config"], &[&table]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}: ok: 2 peers, 3 allowed-ip prefixes, 1 workers\n",
            table.display()
        )
    );
}

#[test]
fn output_file_is_private_and_never_overwritten() {
    let dir = TempDir::new("import-test");
    let input = dir.write("wg0.conf", &wg0(), 0o600);
    let output = dir.0.join("wgdp.toml");
    let out = wgdp(&["import", "wg-quick", "--output"], &[&output, &input]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "the table goes to the file only");
    let written = fs::read_to_string(&output).expect("output written");
    assert!(written.contains(&format!("public_key = \"{PUB4}\"")));
    let mode = fs::metadata(&output).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    fs::write(&output, "keep me\n").expect("write");
    let out = wgdp(&["import", "wg-quick", "-o"], &[&output, &input]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: exists; refusing to overwrite it",
            output.display()
        )),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&output).expect("read"), "keep me\n");
}

#[test]
fn errors_name_line_and_column_and_nothing_is_written() {
    let dir = TempDir::new("import-test");
    let bad = wg0()
        .replace(&format!("PublicKey = {PUB4}"), "PublicKey = AAAA")
        .replace("[Peer]\nPublicKey = AgIC", "[Wireguard]\nPublicKey = AgIC");
    let input = dir.write("wg0.conf", &bad, 0o600);
    let output = dir.0.join("wgdp.toml");
    let out = wgdp(&["import", "wg-quick", "--output"], &[&output, &input]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let i = input.display();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            format!("{i}:8:1: [Wireguard]: unknown section (wg(8) knows [Interface] and [Peer])"),
            format!("{i}:15:13: Peer[0].PublicKey: not base64 of 32 bytes"),
            format!("wgdp: {i}: 2 errors, nothing written"),
        ]
    );
    assert!(!output.exists());
}

#[test]
fn unreadable_input_exits_1() {
    let dir = TempDir::new("import-test");
    let input = dir.0.join("absent.conf");
    let out = wgdp(&["import", "wg-quick"], &[&input]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("{}: cannot read: ", input.display())),
        "{stderr}"
    );
}
