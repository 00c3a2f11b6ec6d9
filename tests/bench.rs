//! The benchmark scripts in `bench/`, checked without a NIC:
//!
//! - `bench_scripts`: `bench/test_bench.py` (TRex profiles compile and
//!   have TRex's structure, pktgen Lua parses with `luac5.4 -p`, the table
//!   generator's tables pass `wgdp check`, X25519 and pcap frames);
//! - `wgdp_to_wgdp_over_memif`: `bench/side-by-side.sh --quick --only d,l`,
//!   two `wgdp run` processes connected over memif, traffic from a pcap
//!   source through both (needs root: the exception TAPs), with one worker
//!   each, then with two workers each and one tunnel of 1 and of 2 lanes.
//!   Figures are printed, not asserted; a path that carries nothing fails,
//!   and so does a 2-lane tunnel whose second lane encrypted nothing.
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

/// The `B Mpps` and `A lane_encap` figures of a row (`lanes` 1 or 2) of
/// side-by-side.sh's lanes table.
fn lanes_row(out: &str, lanes: &str) -> Option<(f64, u64)> {
    out.lines()
        .skip_while(|l| !l.starts_with("== one tunnel"))
        .skip(2)
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() != 8 || w[0] != lanes {
                return None;
            }
            Some((w[1].parse().ok()?, w[4].parse().ok()?))
        })
}

#[test]
fn memif_table_parser() {
    let out = "size         B Mpps       B Gbit/s A encap Mpps\n\
               1420          0.316          3.584        0.386\n";
    assert_eq!(memif_mpps(out, "1420"), Some(0.316));
    assert_eq!(memif_mpps(out, "64"), None);
    let lanes = "== one tunnel, wgdp -> memif (2 queues) -> wgdp, 2 workers each, 1420 B, 2s per run\n\
                 lanes    B Mpps  B Gbit/s A encap Mpps A lane_encap B lane_decap  A pt_handoff B tun_handoff\n\
                 1         0.054     0.614        0.056            0            0       1736864             0\n\
                 2         0.112     1.268        0.113       387392       281983        154144           416\n";
    assert_eq!(lanes_row(lanes, "1"), Some((0.054, 0)));
    assert_eq!(lanes_row(lanes, "2"), Some((0.112, 387_392)));
    assert_eq!(lanes_row(out, "2"), None);
}

#[test]
fn wgdp_to_wgdp_over_memif() {
    let script = Path::new(ROOT).join("bench/side-by-side.sh");
    let (ok, out) = run(Command::new(&script)
        .args(["--quick", "--only", "d,l"])
        .env("WGDP_BIN", env!("CARGO_BIN_EXE_wgdp"))
        .env("SBS_SFX", format!("t{}", std::process::id() % 1000)));
    assert!(
        ok,
        "bench/side-by-side.sh --quick --only d,l failed:\n{out}"
    );
    let mpps = memif_mpps(&out, "1420");
    assert!(
        mpps.is_some_and(|m| m > 0.0),
        "no packets through wgdp -> memif -> wgdp:\n{out}"
    );
    for lanes in ["1", "2"] {
        assert!(
            lanes_row(&out, lanes).is_some_and(|(m, _)| m > 0.0),
            "no packets through the {lanes}-lane tunnel:\n{out}"
        );
    }
    assert!(
        lanes_row(&out, "2").is_some_and(|(_, e)| e > 0),
        "the 2-lane tunnel's second lane encrypted nothing (A lane_encap):\n{out}"
    );
    println!("{out}");
}
