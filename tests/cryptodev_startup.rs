//! `wgdp run` with `aead = "cryptodev"` stops at start-up, naming the
//! device, when the device is missing or has no ChaCha20-Poly1305 (the
//! working device is tested in dataplane's tests/cryptodev.rs).
#![cfg(unix)]

mod tempdir;

use tempdir::TempDir;

use std::process::Command;

fn config(device: &str) -> String {
    format!(
        r#"[interface]
private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
listen_port = 51820

[dpdk]
eal_args = ["--no-huge", "--no-shconf", "-m", "256", "--no-pci", "--lcores=0@(0-1),1@(0-1)", "--file-prefix=wgdp-cdev-{pid}", "--no-telemetry", "--vdev", "net_null0", "--vdev", "net_null1"]
workers = [1]
mbufs = 2047
aead = "cryptodev"
crypto_device = "{device}"

[ports.tunnel]
device = "net_null0"
address = ["192.0.2.1/24"]
tap = "wgdp-ct{pid}"

[ports.plaintext]
device = "net_null1"
address = ["10.9.0.1/24"]
tap = "wgdp-cp{pid}"
"#,
        pid = std::process::id() % 100_000
    )
}

fn run_with(device: &str) -> (bool, String) {
    let dir = TempDir::new("cdev");
    let file = dir.write("wgdp.toml", &config(device), 0o600);
    let out = Command::new(env!("CARGO_BIN_EXE_wgdp"))
        .args(["run", "--config"])
        .arg(&file)
        .output()
        .expect("run wgdp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_crypto_device_stops_start_up_naming_it() {
    let (ok, stderr) = run_with("crypto_nosuch0");
    assert!(!ok);
    assert!(
        stderr.contains("dpdk.crypto_device \"crypto_nosuch0\""),
        "{stderr}"
    );
}

#[test]
fn a_crypto_device_without_chacha_poly_stops_start_up_naming_it() {
    let (ok, stderr) = run_with("crypto_null0");
    assert!(!ok);
    assert!(
        stderr.contains("dpdk.crypto_device \"crypto_null0\"")
            && stderr.contains("CHACHA20_POLY1305"),
        "{stderr}"
    );
}
