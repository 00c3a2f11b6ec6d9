//! The handshake path of wgdp, without DPDK: the same protocol checks in
//! the same order as a worker's gate (`dataplane/src/gate.rs`: mac1
//! always, under load mac2 or a cookie reply) followed by the control
//! thread (`control/src/handshake.rs`, `Control::on_handshake_message`:
//! the per-source limiter for what passed mac2, then the responder (open
//! the initiation, find the peer by its static key, consume, respond), the
//! initiator's side of responses, and the cookie-reply consumer), here
//! through `CookieChecker::verify`, which chains the gate's checks and the
//! limiter. Both need ports and a mempool, so the fuzzers drive this copy
//! of their dispatch over the same `protocol` state.
//!
//! Everything is deterministic: fixed keys, and a random number generator
//! seeded with a constant, so that a seed corpus written once stays valid
//! and every crash reproduces.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;

use protocol::cookie::{CookieChecker, CookieError, CookieJar, LoadTracker, MacVerdict};
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::messages::{MessageType, COOKIE_REPLY_LEN, INITIATION_LEN, RESPONSE_LEN};
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::ratelimit::RateLimiter;
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The handshake queue's capacity in wgdp (`HANDSHAKE_QUEUE` in src/daemon.rs).
pub const QUEUE_CAPACITY: usize = 4096;
/// The rate limiter's entries (as in `control::control`).
const LIMITER_ENTRIES: usize = 64;
/// The pre-shared key of peer 1.
pub const PEER1_PSK: [u8; 32] = [0x55; 32];
/// The index the responder gives its own initiation to peer 0 (raw mode).
pub const OWN_INITIATION_INDEX: u32 = 0x0000_0100;
/// Seed of every random number generator of the harness.
pub const RNG_SEED: u64 = 0x77_67_64_70;

/// Who sends the initiation in the structured mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// Peer 0: configured, no pre-shared key.
    Peer0,
    /// Peer 1: configured, with [`PEER1_PSK`].
    Peer1,
    /// A key the responder does not know.
    Stranger,
    /// Peer 1's key without its pre-shared key: the responder answers,
    /// the response must not authenticate.
    Peer1WrongPsk,
}

impl Initiator {
    /// From two bits of a fuzz input.
    pub fn from_bits(bits: u8) -> Self {
        match bits & 3 {
            0 => Initiator::Peer0,
            1 => Initiator::Peer1,
            2 => Initiator::Stranger,
            _ => Initiator::Peer1WrongPsk,
        }
    }

    /// The initiator's identity.
    pub fn identity(self) -> &'static StaticIdentity {
        let keys = keys();
        match self {
            Initiator::Peer0 => &keys.peers[0],
            Initiator::Peer1 | Initiator::Peer1WrongPsk => &keys.peers[1],
            Initiator::Stranger => &keys.stranger,
        }
    }

    /// The pre-shared key it uses.
    pub fn psk(self) -> Option<[u8; 32]> {
        (self == Initiator::Peer1).then_some(PEER1_PSK)
    }

    /// Whether the responder must complete a handshake with it.
    pub fn is_valid(self) -> bool {
        matches!(self, Initiator::Peer0 | Initiator::Peer1)
    }
}

/// The fixed identities.
pub struct Keys {
    /// wgdp's own.
    pub responder: StaticIdentity,
    /// The configured peers 0 and 1.
    pub peers: [StaticIdentity; 2],
    /// A peer that is not configured.
    pub stranger: StaticIdentity,
}

/// The fixed identities, computed once per process.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let id = |b: u8| StaticIdentity::new(PrivateKey::from_bytes([b; 32]));
        Keys {
            responder: id(0x40),
            peers: [id(0x41), id(0x42)],
            stranger: id(0x43),
        }
    })
}

/// What the dispatch did with one message.
#[derive(Debug)]
pub enum Outcome {
    /// Dropped (bad MACs, no peer, failed decryption, replay, flood, ...).
    Rejected,
    /// mac2 was valid but the source is over its rate.
    RateLimited,
    /// Under load without a valid mac2: this cookie reply was sent.
    Cookie([u8; COOKIE_REPLY_LEN]),
    /// An initiation from peer `peer` was answered.
    Responded {
        /// The peer (0 or 1).
        peer: usize,
        /// The response sent.
        response: [u8; RESPONSE_LEN],
        /// The keypair installed as the peer's `next`.
        keypair: Box<Keypair>,
    },
    /// A response to our initiation completed a handshake.
    Completed {
        /// The peer.
        peer: usize,
    },
    /// A cookie reply to our initiation was accepted.
    CookieAccepted,
}

/// wgdp's handshake state: identity, cookie checker, limiter, peers.
pub struct Responder {
    /// The random number generator of the control thread.
    pub rng: ChaCha20Rng,
    checker: CookieChecker,
    limiter: RateLimiter,
    /// The under-load tracker.
    pub load: LoadTracker,
    /// Per-peer handshake state, created on first use (each costs a
    /// Diffie-Hellman operation, which most inputs never reach).
    peers: [Option<PeerHandshake>; 2],
    /// Our local indexes of outstanding initiations -> peer.
    indexes: HashMap<u32, usize>,
}

impl Default for Responder {
    fn default() -> Self {
        Self::new()
    }
}

impl Responder {
    /// A fresh responder with peers 0 and 1 configured.
    pub fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(RNG_SEED);
        let limiter = RateLimiter::new(LIMITER_ENTRIES, &mut rng);
        Responder {
            checker: CookieChecker::new(keys().responder.public_key()),
            limiter,
            load: LoadTracker::new(),
            peers: [None, None],
            indexes: HashMap::new(),
            rng,
        }
    }

    fn peer(&mut self, i: usize) -> &mut PeerHandshake {
        self.peers[i].get_or_insert_with(|| {
            let keys = keys();
            let psk = (i == 1).then_some(PEER1_PSK);
            PeerHandshake::new(*keys.peers[i].public_key(), psk)
        })
    }

    fn by_key(key: &PublicKey) -> Option<usize> {
        keys().peers.iter().position(|p| p.public_key() == key)
    }

    /// wgdp initiates a handshake to peer `i` with local index `index`
    /// (so that responses and cookie replies have something to answer).
    pub fn initiate(&mut self, i: usize, index: u32, now: Instant) -> [u8; INITIATION_LEN] {
        let mut rng = self.rng.clone();
        let msg = self
            .peer(i)
            .create_initiation(&keys().responder, index, timestamp(0), now, &mut rng)
            .unwrap_or_else(|e| panic!("initiation to a valid peer: {e}"));
        self.rng = rng;
        self.indexes.insert(index, i);
        msg
    }

    /// One handshake message from `src` (`Control::on_handshake_message`).
    pub fn handle(
        &mut self,
        msg: &[u8],
        src: SocketAddr,
        under_load: bool,
        now: Instant,
    ) -> Outcome {
        let Ok(kind) = MessageType::of(msg) else {
            return Outcome::Rejected;
        };
        if matches!(kind, MessageType::Initiation | MessageType::Response) {
            let verdict =
                self.checker
                    .verify(msg, src, under_load, now, &mut self.rng, &mut self.limiter);
            match verdict {
                Ok(MacVerdict::Accept) => {}
                Ok(MacVerdict::SendCookie) => {
                    return match self.checker.create_reply(msg, src, now, &mut self.rng) {
                        Ok(reply) => Outcome::Cookie(reply),
                        Err(_) => Outcome::Rejected,
                    };
                }
                Err(CookieError::RateLimited) => return Outcome::RateLimited,
                Err(_) => return Outcome::Rejected,
            }
        }
        match kind {
            MessageType::Initiation => self.respond(msg, now),
            MessageType::Response => self.complete(msg, now),
            MessageType::CookieReply => {
                let id = index_at(msg, 4).and_then(|i| self.indexes.get(&i).copied());
                match id {
                    Some(i) if self.peer(i).consume_cookie_reply(msg, now).is_ok() => {
                        Outcome::CookieAccepted
                    }
                    _ => Outcome::Rejected,
                }
            }
            MessageType::Data => Outcome::Rejected,
        }
    }

    fn respond(&mut self, msg: &[u8], now: Instant) -> Outcome {
        let Ok(pending) = keys().responder.open_initiation(msg) else {
            return Outcome::Rejected;
        };
        let Some(i) = Self::by_key(pending.remote_static()) else {
            return Outcome::Rejected;
        };
        if self.peer(i).consume_initiation(pending, now).is_err() {
            return Outcome::Rejected;
        }
        let index = 0x0200 + i as u32;
        let mut rng = self.rng.clone();
        let answered = self.peer(i).create_response(index, now, &mut rng);
        self.rng = rng;
        match answered {
            Ok((response, keypair)) => Outcome::Responded {
                peer: i,
                response,
                keypair: Box::new(keypair),
            },
            Err(_) => Outcome::Rejected,
        }
    }

    fn complete(&mut self, msg: &[u8], now: Instant) -> Outcome {
        let Some(i) = index_at(msg, 8).and_then(|x| self.indexes.get(&x).copied()) else {
            return Outcome::Rejected;
        };
        match self.peer(i).consume_response(&keys().responder, msg, now) {
            Ok(_) => Outcome::Completed { peer: i },
            Err(_) => Outcome::Rejected,
        }
    }
}

/// The TAI64N timestamp `step` seconds after a fixed time.
pub fn timestamp(step: u64) -> Tai64N {
    Tai64N::from_unix(std::time::Duration::from_secs(1_700_000_000 + step))
}

/// Recomputes mac1 (and zeroes mac2) of a type 1 or 2 message for the
/// receiver `to`, as an initiator holding no cookie would: lets mutated
/// messages past the mac1 check into the Noise layer.
pub fn fix_macs(msg: &mut [u8], to: &PublicKey, now: Instant) {
    CookieJar::new(to).add_macs(msg, now);
}

fn index_at(msg: &[u8], at: usize) -> Option<u32> {
    msg.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "198.51.100.7:51820";

    #[test]
    fn valid_initiation_is_answered_and_the_response_completes() {
        let now = Instant::from_secs(10);
        let who = Initiator::Peer1;
        let mut init = PeerHandshake::new(*keys().responder.public_key(), who.psk());
        let mut rng = ChaCha20Rng::seed_from_u64(RNG_SEED);
        let msg = init
            .create_initiation(who.identity(), 7, timestamp(0), now, &mut rng)
            .expect("initiation");
        let mut r = Responder::new();
        let src = SRC.parse().expect("addr");
        let Outcome::Responded { peer, response, .. } = r.handle(&msg, src, false, now) else {
            panic!("not answered");
        };
        assert_eq!(peer, 1);
        init.consume_response(who.identity(), &response, now)
            .expect("response authenticates");
        // The same initiation again is a replay.
        assert!(matches!(r.handle(&msg, src, false, now), Outcome::Rejected));
    }

    #[test]
    fn under_load_a_cookie_comes_back_and_mac2_gets_through() {
        let now = Instant::from_secs(10);
        let who = Initiator::Peer0;
        let mut init = PeerHandshake::new(*keys().responder.public_key(), None);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let msg = init
            .create_initiation(who.identity(), 7, timestamp(0), now, &mut rng)
            .expect("initiation");
        let mut r = Responder::new();
        let src = SRC.parse().expect("addr");
        let Outcome::Cookie(reply) = r.handle(&msg, src, true, now) else {
            panic!("no cookie under load");
        };
        init.consume_cookie_reply(&reply, now).expect("cookie");
        let msg = init
            .create_initiation(who.identity(), 8, timestamp(1), now, &mut rng)
            .expect("initiation");
        assert!(matches!(
            r.handle(&msg, src, true, now),
            Outcome::Responded { peer: 0, .. }
        ));
    }
}
