//! `wgdp check` end to end: the real binary on files in a temporary directory.
#![cfg(unix)]

mod tempdir;

use tempdir::TempDir;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

const EXAMPLE: &str = include_str!("../conf/example.toml");
const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

fn check(file: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgdp"))
        .args(["check", "--config"])
        .arg(file)
        .output()
        .expect("run wgdp")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `EXAMPLE` with line `line` (1-based) replaced by `replacement`.
fn example_with(line: usize, replacement: &str) -> String {
    let mut lines: Vec<&str> = EXAMPLE.lines().collect();
    lines[line - 1] = replacement;
    lines.join("\n") + "\n"
}

/// The 1-based number of the first line of `EXAMPLE` that starts with `prefix`.
fn line_of(prefix: &str) -> usize {
    EXAMPLE
        .lines()
        .position(|l| l.starts_with(prefix))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in the example"))
}

#[test]
fn valid_file_prints_a_summary_and_exits_0() {
    let dir = TempDir::new("check-test");
    let file = dir.write("wgdp.toml", EXAMPLE, 0o600);
    let out = check(&file);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}: ok: 2 peers, 3 allowed-ip prefixes, 2 workers\n",
            file.display()
        )
    );
    assert_eq!(stderr, "", "no warnings for a 0600 file");
}

#[test]
fn groups_are_counted_in_the_summary() {
    let dir = TempDir::new("check-test");
    let table = format!(
        "{EXAMPLE}\n[[groups]]\nname = \"site-a\"\n\
         members = [\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\", \"BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=\"]\n\
         prefixes = [\"10.77.0.0/16\", \"10.78.0.0/16\", \"fd00:77::/48\"]\n"
    );
    let file = dir.write("wgdp.toml", &table, 0o600);
    let out = check(&file);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}: ok: 2 peers, 3 allowed-ip prefixes, 1 groups routing 3 prefixes, 2 workers\n",
            file.display()
        )
    );
}

#[test]
fn warnings_are_printed_and_still_exit_0() {
    let dir = TempDir::new("check-test");
    let file = dir.write("wgdp.toml", EXAMPLE, 0o644);
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(text(&out.stdout).contains(": ok: 2 peers"));
    assert!(
        stderr.starts_with(&format!(
            "warning: {}: holds the private key inline",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("mode 0644"), "{stderr}");
}

#[test]
fn every_error_is_printed_with_position_and_field_and_exits_1() {
    let dir = TempDir::new("check-test");
    let port_line = line_of("listen_port");
    let mut bad = example_with(port_line, "listen_port = 0");
    bad = bad.replacen("\"10.9.2.2/32\"", "\"10.9.2.2/24\"", 1);
    let file = dir.write("bad.toml", &bad, 0o600);
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(text(&out.stdout), "");
    let f = file.display();
    let lines: Vec<&str> = stderr.lines().collect();
    let cidr_line = bad
        .lines()
        .position(|l| l.contains("10.9.2.2/24"))
        .map(|i| i + 1)
        .expect("changed line");
    assert_eq!(
        lines,
        [
            format!("{f}:{port_line}:15: interface.listen_port: 0 is out of range 1..=65535"),
            format!(
                "{f}:{cidr_line}:16: peers[1].allowed_ips[0]: 10.9.2.2/24 has host bits set; \
                 write 10.9.2.0/24"
            ),
            format!("wgdp: {f}: 2 errors"),
        ]
    );
}

#[test]
fn key_file_permissions_are_checked_as_run_would() {
    let dir = TempDir::new("check-test");
    dir.write("private.key", &format!("{KEY}\n"), 0o644);
    let key_line = line_of("private_key =");
    let file = dir.write(
        "wgdp.toml",
        &example_with(key_line, "private_key_file = \"private.key\""),
        0o600,
    );
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    let expected = format!(
        "{}:{key_line}:20: interface.private_key_file: ",
        file.display()
    );
    assert!(first.starts_with(&expected), "{stderr}");
    assert!(
        first.contains("mode 0644") && first.contains("chmod 600"),
        "{stderr}"
    );

    // Once the key file is private, the same table passes.
    fs::set_permissions(dir.0.join("private.key"), fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let out = check(&file);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn syntax_error_names_line_and_column() {
    let dir = TempDir::new("check-test");
    let port_line = line_of("listen_port");
    let file = dir.write(
        "bad.toml",
        &example_with(port_line, "listen_port = "),
        0o600,
    );
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let expected = format!("{}:{port_line}:15: TOML syntax error: ", file.display());
    assert!(stderr.starts_with(&expected), "{stderr}");
}

#[test]
fn missing_file_exits_1() {
    let dir = TempDir::new("check-test");
    let file = dir.0.join("absent.toml");
    let out = check(&file);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("{}: cannot read: ", file.display())),
        "{stderr}"
    );
}
