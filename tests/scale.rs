//! `scripts/bench-scale.sh` at a small size: the real binary on two
//! net_null ports, driven by Debian's `wg`. Asserts the peer counts and
//! the replace semantics the script checks, never the times (the figures
//! at 100k peers are in docs/scale.md). Needs root (the exception TAPs).

use std::collections::HashMap;
use std::process::Command;

#[test]
fn scale_benchmark_runs_at_a_small_size() {
    let out = Command::new("scripts/bench-scale.sh")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--peers", "2000", "--extra", "200", "--bin"])
        .arg(env!("CARGO_BIN_EXE_wgdp"))
        .output()
        .expect("run scripts/bench-scale.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Lines "scale NAME VALUE"; the last of a name wins.
    let figures: HashMap<&str, &str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("scale "))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    let count = |name: &str| -> u64 {
        figures
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no figure {name} in:\n{stdout}"))
    };
    assert_eq!(count("show_peers"), 2000);
    assert_eq!(count("set_peers"), 2200);
    assert_eq!(count("written_back_set_peers"), 2200);
    assert_eq!(count("setconf_peers"), 2000);
    assert_eq!(count("written_back_peers"), 2000);
    for timed in [
        "check_s",
        "ready_s",
        "show_dump_s",
        "set_batch_s",
        "setconf_s",
    ] {
        let t: f64 = figures
            .get(timed)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no figure {timed} in:\n{stdout}"));
        // A figure, not a threshold: only that it was measured.
        assert!(t.is_finite() && t > 0.0, "{timed} {t}");
    }
    assert!(count("rss_mb") > 0);
}
