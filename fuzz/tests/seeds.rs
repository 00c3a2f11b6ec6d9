//! The committed seed corpora are exactly what `wgdp_fuzz::seeds::all()`
//! generates (`WGDP_WRITE_SEEDS=1` rewrites them), and every seed of the
//! handshake target (the structured one) does what it is named for.

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

/// Every seed of the handshake target (the structured one) does what its
/// name says, decoded as `fuzz_targets/handshake.rs` decodes it (flags,
/// backlog, time, source; then the raw message, or the (offset, xor)
/// mutations of the initiation the named initiator builds): answered and
/// completed with keys that interoperate, refused, or sent a cookie that
/// then gets the retried initiation answered. A seed added without an
/// expectation here fails the test.
#[test]
fn every_handshake_seed_does_what_it_is_named_for() {
    use protocol::noise::PeerHandshake;
    use protocol::time::Instant;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;
    use wgdp_fuzz::input::Reader;
    use wgdp_fuzz::responder::{
        fix_macs, keys, timestamp, Initiator, Outcome, Responder, OWN_INITIATION_INDEX,
        QUEUE_CAPACITY, RNG_SEED,
    };

    /// What a seed must lead to.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Expect {
        /// Answered, and the response completes a handshake whose keys
        /// open the initiator's data.
        Completes(usize),
        /// Answered, and the response does not authenticate (wrong PSK).
        AnsweredNotCompleted(usize),
        /// A cookie reply; the initiation retried with mac2 completes.
        CookieThenCompletes(usize),
        /// Dropped.
        Rejected,
        /// Raw mode, wgdp initiated first: the response completes ours.
        CompletesOurs,
        /// Raw mode, wgdp initiated first: the cookie reply is taken.
        CookieForOurs,
    }
    let expected = |name: &str| match name {
        "peer0" => Expect::Completes(0),
        "peer1-psk" => Expect::Completes(1),
        "stranger" => Expect::Rejected,
        "peer1-wrong-psk" => Expect::AnsweredNotCompleted(1),
        "peer0-under-load" | "peer0-under-load-v6" => Expect::CookieThenCompletes(0),
        // One ephemeral byte flipped, MACs recomputed: past mac1, refused
        // by the Noise layer.
        "peer0-fixed-macs" => Expect::Rejected,
        "raw-initiation" => Expect::Completes(0),
        "raw-response-to-ours" => Expect::CompletesOurs,
        "raw-cookie-to-ours" => Expect::CookieForOurs,
        other => panic!("no expectation for the handshake seed {other:?}"),
    };

    let to = *keys().responder.public_key();
    let mut checked = 0;
    for seed in wgdp_fuzz::seeds::all()
        .into_iter()
        .filter(|s| s.target == "handshake")
    {
        let want = expected(seed.name);
        let mut input = Reader::new(&seed.bytes);
        let flags = input.u8();
        let backlog = usize::from(input.u8()) * 16;
        let now = Instant::from_millis(10_000 + u64::from(input.u8()) * 20);
        let src = input.source(flags & 2 != 0);
        if seed.name.ends_with("-v6") {
            assert!(src.is_ipv6(), "{}: {src}", seed.name);
        }
        let mut r = Responder::new();
        let under_load = flags & 4 != 0 || r.load.under_load(backlog, QUEUE_CAPACITY, now);
        let fix = flags & 8 != 0;
        if flags & 1 != 0 {
            let we_initiate = flags & 0x40 != 0;
            assert_eq!(
                we_initiate,
                matches!(want, Expect::CompletesOurs | Expect::CookieForOurs),
                "{}",
                seed.name
            );
            if we_initiate {
                r.initiate(0, OWN_INITIATION_INDEX, now);
            }
            let mut msg = input.rest().to_vec();
            if fix {
                fix_macs(&mut msg, &to, now);
            }
            let out = r.handle(&msg, src, under_load, now);
            let ok = match (want, &out) {
                (Expect::CompletesOurs, Outcome::Completed { peer: 0 }) => true,
                (Expect::CookieForOurs, Outcome::CookieAccepted) => true,
                (Expect::Completes(p), Outcome::Responded { peer, .. }) => *peer == p,
                _ => false,
            };
            assert!(ok, "{}: expected {want:?}, got {out:?}", seed.name);
            checked += 1;
            continue;
        }
        let who = Initiator::from_bits(flags >> 4);
        let mut initiator = PeerHandshake::new(to, who.psk());
        let mut rng = ChaCha20Rng::seed_from_u64(RNG_SEED ^ 1);
        let mut msg = initiator
            .create_initiation(who.identity(), 0x1000, timestamp(0), now, &mut rng)
            .expect("initiation");
        assert!(
            flags & 0x80 == 0,
            "{}: no seed mutates the cookie",
            seed.name
        );
        while !input.is_empty() {
            let (at, xor) = (usize::from(input.u8()) % msg.len(), input.u8());
            msg[at] ^= xor;
        }
        if fix {
            fix_macs(&mut msg, &to, now);
        }
        let mut out = r.handle(&msg, src, under_load, now);
        if let Expect::CookieThenCompletes(_) = want {
            let Outcome::Cookie(reply) = out else {
                panic!("{}: expected a cookie reply, got {out:?}", seed.name);
            };
            initiator
                .consume_cookie_reply(&reply, now)
                .expect("the cookie reply is taken");
            let later = now + core::time::Duration::from_millis(25);
            let again = initiator
                .create_initiation(who.identity(), 0x1001, timestamp(1), later, &mut rng)
                .expect("initiation");
            out = r.handle(&again, src, under_load, later);
        }
        match (want, out) {
            (Expect::Rejected, Outcome::Rejected) => {}
            (
                Expect::Completes(p) | Expect::CookieThenCompletes(p),
                Outcome::Responded {
                    peer,
                    response,
                    mut keypair,
                },
            ) => {
                assert_eq!(peer, p, "{}", seed.name);
                let mut ours = initiator
                    .consume_response(who.identity(), &response, now)
                    .unwrap_or_else(|e| panic!("{}: response refused: {e}", seed.name));
                let mut packet = [0u8; 48];
                packet[16..32].copy_from_slice(b"sixteen bytes!!!");
                ours.seal_message(now, &mut packet).expect("seal");
                let plain = keypair
                    .open_message(now, &mut packet)
                    .expect("the responder's keys open it");
                assert_eq!(plain, b"sixteen bytes!!!", "{}", seed.name);
            }
            (Expect::AnsweredNotCompleted(p), Outcome::Responded { peer, response, .. }) => {
                assert_eq!(peer, p, "{}", seed.name);
                assert!(
                    initiator
                        .consume_response(who.identity(), &response, now)
                        .is_err(),
                    "{}: completed with the wrong PSK",
                    seed.name
                );
            }
            (want, out) => panic!("{}: expected {want:?}, got {out:?}", seed.name),
        }
        checked += 1;
    }
    assert_eq!(checked, 10, "every handshake seed checked");
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
    // Four fragments whose lengths add up to the datagram's around a
    // hole: the set is given up, partly chained, and every mbuf counted.
    assert_eq!(
        summary("v6-hole-behind-overlap"),
        Summary {
            offered: 4,
            invalid: 4,
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
