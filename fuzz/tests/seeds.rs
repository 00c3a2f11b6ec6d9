//! The committed seed corpora are exactly what `wgdp_fuzz::seeds::all()`
//! generates (`WGDP_WRITE_SEEDS=1` rewrites them), and every seed of the
//! structured targets does what it is named for.

use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

#[test]
fn committed_seeds_match_the_generator() {
    let write = std::env::var_os("WGDP_WRITE_SEEDS").is_some();
    let mut stale = Vec::new();
    for seed in wgdp_fuzz::seeds::all() {
        let path = corpus().join(seed.target).join(seed.name);
        if write {
            std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
            std::fs::write(&path, &seed.bytes).expect("write seed");
        } else if std::fs::read(&path).ok().as_deref() != Some(&seed.bytes[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale or missing seeds (run WGDP_WRITE_SEEDS=1 cargo test in fuzz/): {stale:?}"
    );
}

/// The raw-mode seeds answering wgdp's own initiation reach the response
/// and cookie-reply consumers: the harness rebuilds the same initiation.
#[test]
fn raw_answers_to_our_initiation_are_consumed() {
    use protocol::time::Instant;
    use wgdp_fuzz::responder::{Outcome, Responder, OWN_INITIATION_INDEX};

    let seeds = wgdp_fuzz::seeds::all();
    let raw = |name: &str| {
        let s = seeds
            .iter()
            .find(|s| s.target == "handshake" && s.name == name)
            .unwrap_or_else(|| panic!("no seed {name}"));
        s.bytes[9..].to_vec()
    };
    let now = Instant::from_millis(10_000);
    let src = "198.51.100.7:51820".parse().expect("addr");
    let mut r = Responder::new();
    r.initiate(0, OWN_INITIATION_INDEX, now);
    let out = r.handle(&raw("raw-cookie-to-ours"), src, false, now);
    assert!(matches!(out, Outcome::CookieAccepted), "{out:?}");
    let mut r = Responder::new();
    r.initiate(0, OWN_INITIATION_INDEX, now);
    let out = r.handle(&raw("raw-response-to-ours"), src, false, now);
    assert!(matches!(out, Outcome::Completed { peer: 0 }), "{out:?}");
}

/// Each `reassembly` seed does what it is named for, through the harness
/// the fuzz target runs (DPDK's reassembly, a cache-0 pool).
#[test]
fn reassembly_seeds_complete_refuse_and_expire_as_named() {
    use wgdp_fuzz::reassembly::{run, Summary};

    let seeds = wgdp_fuzz::seeds::all();
    let summary = |name: &str| {
        let s = seeds
            .iter()
            .find(|s| s.target == "reassembly" && s.name == name)
            .unwrap_or_else(|| panic!("no seed {name}"));
        run(&s.bytes)
    };
    assert_eq!(
        summary("v4-in-order"),
        Summary {
            offered: 3,
            completed: 1,
            ..Summary::default()
        }
    );
    assert_eq!(
        summary("v6-reversed"),
        Summary {
            offered: 3,
            completed: 1,
            ..Summary::default()
        }
    );
    assert_eq!(
        summary("v4-duplicate-first"),
        Summary {
            offered: 2,
            invalid: 2,
            ..Summary::default()
        }
    );
    // The first fragment times out before the last arrives; the last then
    // waits alone and expires at the end.
    assert_eq!(
        summary("v4-expires"),
        Summary {
            offered: 2,
            expired: 2,
            ..Summary::default()
        }
    );
    assert_eq!(
        summary("raw-v4-first-fragment"),
        Summary {
            offered: 1,
            expired: 1,
            ..Summary::default()
        }
    );
}
