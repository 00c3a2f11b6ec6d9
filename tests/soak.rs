//! The CI form of the soak (`scripts/soak.sh`): three minutes of traffic,
//! a rekey of each peer, and peer churn through the UAPI, against the
//! `wgdp` binary of this build. The script checks the mempool's in-use
//! count against its baseline, RSS, ping loss, handshakes and a clean
//! exit; this test fails with its output when it does. The 30-minute run
//! is `sudo scripts/soak.sh` (docs/testing.md has its figures).
//!
//! Run it alone, as root: `cargo nextest run -p wgdp --test soak --no-capture`.

use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/soak.sh");
/// Seconds of soak: long enough for one rekey (120 s) of each peer.
const SOAK_SECONDS: &str = "180";

#[test]
fn three_minute_soak_keeps_tunnels_pool_and_memory_steady() {
    let out = Command::new(SCRIPT)
        .env("SOAK_SECONDS", SOAK_SECONDS)
        .env("WGDP_BIN", env!("CARGO_BIN_EXE_wgdp"))
        .env("E2E_SFX", format!("k{}", std::process::id() % 100_000))
        .output()
        .unwrap_or_else(|e| panic!("run {SCRIPT}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.lines().last() == Some("soak: PASS"),
        "{SCRIPT} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
