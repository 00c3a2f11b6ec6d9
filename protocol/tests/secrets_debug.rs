//! No secret-bearing type prints key material through `Debug`: each one,
//! in each state that holds secrets, formatted with `{:?}` and `{:#?}`, is
//! searched for its keys as hex and as decimal byte lists.

use std::net::SocketAddr;

use protocol::cookie::{CookieChecker, CookieJar};
use protocol::crypto::PrivateKey;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::session::Session;
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;
use rand_chacha::rand_core::SeedableRng;

/// Key bytes chosen so that any rendering of them is recognisable.
const INITIATOR_KEY: u8 = 0x5a;
const RESPONDER_KEY: u8 = 0x3c;
const PSK: u8 = 0x77;
const SEND_KEY: u8 = 0xa5;
const RECV_KEY: u8 = 0xc3;

/// The ways a 32-byte key of repeated `b` could show in text.
fn renderings(b: u8) -> Vec<String> {
    vec![
        format!("{b:02x}{b:02x}"),
        format!("{b:02X}{b:02X}"),
        format!("{b}, {b}"),
        format!("{b},{b}"),
        format!("0x{b:02x}, 0x{b:02x}"),
        format!("{b},\n"),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for b in [INITIATOR_KEY, RESPONDER_KEY, PSK, SEND_KEY, RECV_KEY] {
        for r in renderings(b) {
            assert!(!text.contains(&r), "{what}: {r:?} appears in:\n{text}");
        }
    }
}

fn debug<T: std::fmt::Debug>(what: &str, value: &T) {
    assert_clean(what, &format!("{value:?}"));
    assert_clean(what, &format!("{value:#?}"));
}

#[test]
fn no_secret_in_any_debug_output() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let now = Instant::from_secs(5);
    let ts = Tai64N::from_unix(std::time::Duration::from_secs(1_700_000_000));
    let alice = StaticIdentity::new(PrivateKey::from_bytes([INITIATOR_KEY; 32]));
    let bob = StaticIdentity::new(PrivateKey::from_bytes([RESPONDER_KEY; 32]));
    debug("PrivateKey", &PrivateKey::from_bytes([INITIATOR_KEY; 32]));
    debug("StaticIdentity", &alice);

    let mut a = PeerHandshake::new(*bob.public_key(), Some([PSK; 32]));
    let mut b = PeerHandshake::new(*alice.public_key(), Some([PSK; 32]));
    debug("PeerHandshake (zeroed)", &a);
    let init = a
        .create_initiation(&alice, 1, ts, now, &mut rng)
        .expect("initiation");
    debug(
        "PeerHandshake (created initiation: ephemeral, chaining key)",
        &a,
    );
    debug("HandshakeState", a.state());

    let pending = bob.open_initiation(&init).expect("open");
    debug("PendingInitiation", &pending);
    b.consume_initiation(pending, now).expect("consume");
    debug("PeerHandshake (consumed initiation)", &b);
    let (response, bk) = b.create_response(2, now, &mut rng).expect("response");
    let ak = a
        .consume_response(&alice, &response, now)
        .expect("complete");
    debug("Keypair (initiator)", &ak);
    debug("Keypair (responder)", &bk);
    let mut session = Session::new();
    session.install(Box::new(ak));
    session.install(Box::new(bk));
    debug("Session", &session);

    let raw = Keypair::from_raw_keys([SEND_KEY; 32], [RECV_KEY; 32], 3, 4, now, true);
    debug("Keypair (known transport keys)", &raw);

    let src: SocketAddr = "198.51.100.7:51820".parse().expect("addr");
    let mut checker = CookieChecker::new(bob.public_key());
    let reply = checker
        .create_reply(&init, src, now, &mut rng)
        .expect("cookie reply");
    debug("CookieChecker (with a cookie secret)", &checker);
    let mut jar = CookieJar::new(bob.public_key());
    let mut again = init;
    jar.add_macs(&mut again, now);
    jar.consume_reply(
        &protocol::messages::CookieReply::new_checked(&reply[..]).expect("reply"),
        now,
    )
    .expect("cookie");
    debug("CookieJar (holding a cookie)", &jar);
}
