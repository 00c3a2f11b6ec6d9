//! The benchmark scripts in `bench/`, checked without a NIC:
//!
//! - `bench_scripts`: `bench/test_bench.py` (TRex profiles compile and
//!   have TRex's structure, pktgen Lua parses with `luac5.4 -p`, the table
//!   generator's tables pass `wgdp check`, X25519 and pcap frames);
//! - `wgdp_to_wgdp_over_memif`: `bench/side-by-side.sh --quick --only d`,
//!   two `wgdp run` processes connected over memif, traffic from a pcap
//!   source through both (needs root: the exception TAPs). Figures are
//!   printed, not asserted; a path that carries nothing fails.
//!
//! Needs python3, wg and luac5.4 (`scripts/install.sh --deps-only`).

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn bench_scripts() {
    let (ok, out) = run(Command::new("python3")
        .args(["-m", "unittest", "-v", "bench/test_bench.py"])
        .current_dir(ROOT)
        .env("WGDP_BIN", env!("CARGO_BIN_EXE_wgdp"))
        .env("PYTHONDONTWRITEBYTECODE", "1"));
    assert!(ok, "bench/test_bench.py failed:\n{out}");
}

/// The `B Mpps` figure of a size row in side-by-side.sh's memif table.
fn memif_mpps(out: &str, size: &str) -> Option<f64> {
    out.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some(size))
            .then(|| w.next()?.parse().ok())
            .flatten()
    })
}

#[test]
fn memif_table_parser() {
    let out = "size         B Mpps       B Gbit/s A encap Mpps\n\
               1420          0.316          3.584        0.386\n";
    assert_eq!(memif_mpps(out, "1420"), Some(0.316));
    assert_eq!(memif_mpps(out, "64"), None);
}

#[test]
fn wgdp_to_wgdp_over_memif() {
    let script = Path::new(ROOT).join("bench/side-by-side.sh");
    let (ok, out) = run(Command::new(&script)
        .args(["--quick", "--only", "d"])
        .env("WGDP_BIN", env!("CARGO_BIN_EXE_wgdp"))
        .env("SBS_SFX", format!("t{}", std::process::id() % 1000)));
    assert!(ok, "bench/side-by-side.sh --quick --only d failed:\n{out}");
    let mpps = memif_mpps(&out, "1420");
    assert!(
        mpps.is_some_and(|m| m > 0.0),
        "no packets through wgdp -> memif -> wgdp:\n{out}"
    );
    println!("{out}");
}
