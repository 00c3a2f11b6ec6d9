//! Known answers for the handshake and its primitives, from an
//! implementation that shares no code with this crate.
//!
//! The pinned bytes were produced once by
//! `protocol/tests/vectors/noise_vectors.py`: WireGuard's handshake written
//! from the whitepaper (sections 5.4.2 to 5.4.6) on Python's hashlib/hmac
//! (BLAKE2s, HMAC) and the `cryptography` package (X25519,
//! ChaCha20-Poly1305). Rerun it to reproduce every constant below; the fixed
//! inputs here are the script's. A bug that both sides of an in-memory
//! handshake share (a wrong construction or identifier string, swapped KDF
//! outputs, the wrong mac1 label, the wrong key in `split`) passes
//! `two_peers.rs` but changes these bytes. `interop_wireguard_go.rs` ties
//! the same code to a real wireguard-go peer (root only); these run
//! everywhere.

use std::time::Duration;

use protocol::crypto::{hmac, kdf1, kdf2, kdf3, PrivateKey};
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use rand_core::{CryptoRng, RngCore};

// The script's fixed inputs.
const I_INDEX: u32 = 0x1122_3344;
const R_INDEX: u32 = 0x5566_7788;
const UNIX_SECS: u64 = 1_700_000_000;
const UNIX_NANOS: u32 = 123_456_789;

/// `start`, `start + 1`, ..., 32 bytes: the script's `bytes(range(start, start + 32))`.
fn run_of(start: u8) -> [u8; 32] {
    core::array::from_fn(|i| start + i as u8)
}

fn unhex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// A random number generator that hands out one fixed ephemeral key, once:
/// a second request (a handshake step drawing more randomness than the
/// key) fails the test.
struct FixedEphemeral(Option<[u8; 32]>);

impl RngCore for FixedEphemeral {
    fn next_u32(&mut self) -> u32 {
        panic!("the handshake drew a u32; only the ephemeral key is fixed")
    }
    fn next_u64(&mut self) -> u64 {
        panic!("the handshake drew a u64; only the ephemeral key is fixed")
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let key = self.0.take().expect("the ephemeral key was drawn twice");
        assert_eq!(dest.len(), key.len(), "an ephemeral key is 32 bytes");
        dest.copy_from_slice(&key);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FixedEphemeral {}

const INITIATION: &str = concat!(
    "0100000044332211493e82fc74464a59268817623d2053c5eb8e2cc4a988b4fe",
    "e179ec6b010d531d58b2cfacb11889c509ab775b281271757e03c65581999dc7",
    "2488d76357c4db97f475489aca718481f26ddaba22baa7e6936086cd8f5f3c29",
    "09ef88711d1f93d58fae1f0785d416ca9d5cf755aeb1ddc2a9059ad587a3d1e0",
    "93b0e13b00000000000000000000000000000000",
);
const RESPONSE: &str = concat!(
    "020000008877665544332211dc2cca31e8e43bbd91dff7e475cca3347eb47810",
    "7d5bd765aba4ae4a30c35d440f3f93a1f4beaa96de3b5383d58a65d2a78ae142",
    "59d8431551decffbfd67139d00000000000000000000000000000000",
);
const DATA_I_TO_R: &str = concat!(
    "040000008877665500000000000000003b8c13f567624570cdadada274f52db3",
    "ac2e176134765b01118f9b2109c4986a70e60d1541366a6c778bff232b753ccf",
);
const DATA_R_TO_I: &str = "040000004433221100000000000000002fac84935dbb5cad915e455c812600b0";
const HMAC_KEY_20_3F_MSG_HI_THERE: &str =
    "a9479be819f2d5f0ab5a1778d5eca5fadf4213f7069d46b144b9b1de8e10dd69";
const HMAC_KEY_20_3F_MSG_EMPTY: &str =
    "33c590bd38f944d93c4a1ee5d30c257268c8f275511c94ab3e10904bd9a3c5f2";
const KDF3_KEY_20_3F_OUT1: &str =
    "c774a57a936140117f5b6f0362603bed4d9b29652dd3b0342ff112f0ca56dcba";
const KDF3_KEY_20_3F_OUT2: &str =
    "27f351571cc108306636bb7ff231c3d4b1194003b3dbb5757f24f108b6bafd01";
const KDF3_KEY_20_3F_OUT3: &str =
    "96d26ffc80ffada7a40932bddb0bec27ea8c7a84252af6124faf08ed54789816";
const KDF3_KEY_20_3F_EMPTY_OUT1: &str =
    "b729608660f087101de695d4ef11f2ab7765348ce4a967b6c73740202bc0dbab";
const KDF3_KEY_20_3F_EMPTY_OUT2: &str =
    "8ecc9582b7f0cc780a0cd430cfc06fcf2dbbebae6a7e5ff3f142667bf5c740bb";
const KDF3_KEY_20_3F_EMPTY_OUT3: &str =
    "93e3cf510f178253f08bda832489f21c9b7f7f6600f0829e2b6839c878541ed2";

/// Initiation, response and the first data message each way, from fixed
/// static and ephemeral keys, PSK, indexes and timestamp, byte for byte
/// against the independent implementation; each side also accepts the
/// other's pinned message.
#[test]
fn handshake_and_first_data_messages_match_the_independent_implementation() {
    let i = StaticIdentity::new(PrivateKey::from_bytes(run_of(0x00)));
    let r = StaticIdentity::new(PrivateKey::from_bytes(run_of(0x40)));
    let psk = Some(run_of(0xa0));
    let now = Instant::from_secs(1);
    let timestamp = Tai64N::from_unix(Duration::new(UNIX_SECS, UNIX_NANOS));

    let mut ih = PeerHandshake::new(*r.public_key(), psk);
    let mut rng = FixedEphemeral(Some(run_of(0x80)));
    let init = ih
        .create_initiation(&i, I_INDEX, timestamp, now, &mut rng)
        .expect("initiation");
    assert_eq!(hex(&init), INITIATION, "initiation");

    let mut rh = PeerHandshake::new(*i.public_key(), psk);
    let pending = r.open_initiation(&unhex(INITIATION)).expect("open");
    assert_eq!(pending.remote_static(), i.public_key());
    assert_eq!(pending.sender_index(), I_INDEX);
    rh.consume_initiation(pending, now).expect("consume");
    let mut rng = FixedEphemeral(Some(run_of(0xc0)));
    let (resp, mut rkp) = rh
        .create_response(R_INDEX, now, &mut rng)
        .expect("response");
    assert_eq!(hex(&resp), RESPONSE, "response");

    let mut ikp = ih
        .consume_response(&i, &unhex(RESPONSE), now)
        .expect("consume response");

    // Section 5.4.6: 16-byte header, the padded payload, the tag.
    let mut msg = vec![0u8; 16 + 32 + 16];
    msg[16..48].copy_from_slice(&run_of(0x00));
    assert_eq!(ikp.seal_message(now, &mut msg), Ok(0));
    assert_eq!(hex(&msg), DATA_I_TO_R, "initiator's first data message");
    let mut pinned = unhex(DATA_I_TO_R);
    let plain = rkp
        .open_message(now, &mut pinned)
        .expect("responder opens it");
    assert_eq!(&plain[..], &run_of(0x00)[..]);

    let mut keepalive = vec![0u8; 32];
    assert_eq!(rkp.seal_message(now, &mut keepalive), Ok(0));
    assert_eq!(hex(&keepalive), DATA_R_TO_I, "responder's keepalive");
    let mut pinned = unhex(DATA_R_TO_I);
    let plain = ikp
        .open_message(now, &mut pinned)
        .expect("initiator opens it");
    assert!(plain.is_empty());
}

/// HMAC-BLAKE2s (RFC 2104, 64-byte block) against Python's `hmac` with
/// `hashlib.blake2s`, on a message split across parts and on the empty one.
#[test]
fn hmac_blake2s_known_answers() {
    let key = run_of(0x20);
    assert_eq!(
        hex(&*hmac(&key, &[b"Hi ", b"There"])),
        HMAC_KEY_20_3F_MSG_HI_THERE
    );
    assert_eq!(
        hex(&*hmac(&key, &[b"Hi There"])),
        HMAC_KEY_20_3F_MSG_HI_THERE
    );
    assert_eq!(hex(&*hmac(&key, &[])), HMAC_KEY_20_3F_MSG_EMPTY);
}

/// KDF1/2/3 (HKDF with HMAC-BLAKE2s, whitepaper section 5.4): each output in
/// its place, and KDFn's outputs the first n of KDF3's.
#[test]
fn hkdf_known_answers() {
    let key = run_of(0x20);
    for (input, expected) in [
        (
            &b"WireGuard KDF input"[..],
            [
                KDF3_KEY_20_3F_OUT1,
                KDF3_KEY_20_3F_OUT2,
                KDF3_KEY_20_3F_OUT3,
            ],
        ),
        (
            &b""[..],
            [
                KDF3_KEY_20_3F_EMPTY_OUT1,
                KDF3_KEY_20_3F_EMPTY_OUT2,
                KDF3_KEY_20_3F_EMPTY_OUT3,
            ],
        ),
    ] {
        let (a, b, c) = kdf3(&key, input);
        assert_eq!([hex(&*a), hex(&*b), hex(&*c)], expected.map(String::from));
        let (a, b) = kdf2(&key, input);
        assert_eq!(
            [hex(&*a), hex(&*b)],
            [expected[0], expected[1]].map(String::from)
        );
        assert_eq!(hex(&*kdf1(&key, input)), expected[0]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
