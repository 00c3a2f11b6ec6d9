//! WireGuard itself, with no I/O.
//!
//! This crate owns the protocol: message formats, the Noise_IKpsk2 handshake,
//! cookies and rate limiting, the replay window, transport seal/open and the
//! timer rules. It never reads a clock (every entry point takes `now`), opens
//! no socket and knows nothing of DPDK, so the dataplane, the control thread,
//! tests and fuzzers all drive the same code. Randomness (ephemeral keys,
//! cookie secrets and nonces, timer jitter) comes from a caller-supplied
//! [`CryptoRngCore`]; receiver indexes come from the caller.
//!
//! | module | concept |
//! |---|---|
//! | [`constants`] | every protocol limit, under its specification name |
//! | [`time`] | [`time::Instant`] (monotonic, caller's epoch) and [`time::Tai64N`] |
//! | [`crypto`] | the swappable primitive backends (X25519, BLAKE2s, ChaCha20-Poly1305) |
//! | [`messages`] | zero-copy views and builders of message types 1 to 4, padding |
//! | [`noise`] | the handshake: [`noise::StaticIdentity`], [`noise::PeerHandshake`] |
//! | [`cookie`] | mac1/mac2, cookie replies, "under load" |
//! | [`ratelimit`] | the bounded per-source token buckets |
//! | [`replay`] | the 8192-bit anti-replay window |
//! | [`send_block`] | a multi-lane keypair's send counter, reserved in blocks by each worker |
//! | [`shared_replay`] | a multi-lane keypair's replay window, safe under concurrent writers |
//! | [`transport`] | [`transport::Keypair`]: in-place seal/open of data messages |
//! | [`session`] | previous/current/next keypair rotation of a peer |
//! | [`timers`] | the per-peer timer rules as pure state |
//! | [`allowedips`] | longest-prefix match of inner addresses to peers (read-only snapshots) |
//!
//! A complete exchange, as the control thread and the dataplane will run it:
//!
//! ```
//! use protocol::crypto::PrivateKey;
//! use protocol::noise::{PeerHandshake, StaticIdentity};
//! use protocol::session::Session;
//! use protocol::time::{Instant, Tai64N};
//! use rand_chacha::rand_core::SeedableRng;
//!
//! let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0);
//! let alice = StaticIdentity::new(PrivateKey::generate(&mut rng));
//! let bob = StaticIdentity::new(PrivateKey::generate(&mut rng));
//! let mut a = PeerHandshake::new(*bob.public_key(), None);
//! let mut b = PeerHandshake::new(*alice.public_key(), None);
//! let now = Instant::from_secs(1);
//! let wall = Tai64N::from_unix(std::time::Duration::from_secs(1_700_000_000));
//!
//! // Initiator (local index chosen by the caller).
//! let init = a.create_initiation(&alice, 0x0100, wall, now, &mut rng)?;
//! // Responder: decrypt the sender, find the peer by static key, consume, respond.
//! let pending = bob.open_initiation(&init)?;
//! assert_eq!(pending.remote_static(), alice.public_key());
//! b.consume_initiation(pending, now)?;
//! let (response, b_keypair) = b.create_response(0x0200, now, &mut rng)?;
//! let a_keypair = a.consume_response(&alice, &response, now)?;
//!
//! let (mut sa, mut sb) = (Session::new(), Session::new());
//! sa.install(Box::new(a_keypair)); // confirmed: current
//! sb.install(Box::new(b_keypair)); // waits in `next` for the first data message
//!
//! // Data: header (16) + padded plaintext + tag (16), sealed in place.
//! let mut msg = vec![0u8; 16 + 16 + 16];
//! msg[16..21].copy_from_slice(b"hello");
//! sa.seal_message(now, &mut msg)?;
//! let received = sb.open_message(now, &mut msg)?;
//! assert_eq!(&received.plaintext[..5], b"hello");
//! assert!(received.promoted.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod allowedips;
pub mod constants;
pub mod cookie;
pub mod crypto;
pub mod messages;
pub mod noise;
pub mod ratelimit;
pub mod replay;
pub mod send_block;
pub mod session;
pub mod shared_replay;
pub mod time;
pub mod timers;
pub mod transport;

pub use rand_core::CryptoRngCore;
