//! Protocol constants, under the names the WireGuard whitepaper (section 6)
//! and the Linux kernel implementation (`messages.h`, `cookie.h`,
//! `ratelimiter.c`) give them.
//!
//! Every limit the rest of the crate enforces is defined here and nowhere
//! else, so that a reviewer can check the whole checklist in one place.

use core::time::Duration;

/// The Noise protocol name, hashed to form the initial chaining key
/// (whitepaper section 5.4.2: `C_i := HASH(CONSTRUCTION)`).
pub const CONSTRUCTION: &[u8] = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

/// The WireGuard identifier mixed into the initial hash
/// (whitepaper section 5.4.2: `H_i := HASH(C_i || IDENTIFIER)`).
pub const IDENTIFIER: &[u8] = b"WireGuard v1 zx2c4 Jason@zx2c4.com";

/// Label of the mac1 key: `HASH(LABEL_MAC1 || S_pub)` (whitepaper section 5.4.4).
pub const LABEL_MAC1: &[u8] = b"mac1----";

/// Label of the cookie encryption key: `HASH(LABEL_COOKIE || S_pub)`
/// (whitepaper section 5.4.7).
pub const LABEL_COOKIE: &[u8] = b"cookie--";

/// Initiator rekeys (on send) once a keypair has sealed this many messages
/// (whitepaper section 6.1, `Rekey-After-Messages` = 2^60).
pub const REKEY_AFTER_MESSAGES: u64 = 1 << 60;

/// Hard limit on the counter of a keypair: 2^64 - 1 - 8128 - 1
/// (kernel `REJECT_AFTER_MESSAGES`: `U64_MAX - COUNTER_WINDOW_SIZE - 1`).
pub const REJECT_AFTER_MESSAGES: u64 = u64::MAX - COUNTER_WINDOW_SIZE - 1;

/// Initiator starts a new handshake (on send) once the current keypair is this
/// old (`Rekey-After-Time`).
pub const REKEY_AFTER_TIME: Duration = Duration::from_secs(120);

/// A keypair is never used, for sending or receiving, once it is this old
/// (`Reject-After-Time`).
pub const REJECT_AFTER_TIME: Duration = Duration::from_secs(180);

/// Give up on handshake retransmissions after this long (`Rekey-Attempt-Time`).
pub const REKEY_ATTEMPT_TIME: Duration = Duration::from_secs(90);

/// Retransmit an unanswered initiation after this long, plus jitter
/// (`Rekey-Timeout`).
pub const REKEY_TIMEOUT: Duration = Duration::from_secs(5);

/// Upper bound (exclusive) of the random jitter added to [`REKEY_TIMEOUT`]
/// (kernel `REKEY_TIMEOUT_JITTER_MAX_JIFFIES`, HZ / 3 = 333 ms).
pub const REKEY_TIMEOUT_JITTER_MAX: Duration = Duration::from_millis(333);

/// Send a keepalive when data was received but nothing was sent for this long
/// (`Keepalive-Timeout`).
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Number of initiation retransmissions before giving up:
/// `REKEY_ATTEMPT_TIME / REKEY_TIMEOUT` (kernel `MAX_TIMER_HANDSHAKES` = 18).
pub const MAX_TIMER_HANDSHAKES: u32 =
    (REKEY_ATTEMPT_TIME.as_secs() / REKEY_TIMEOUT.as_secs()) as u32;

/// The initiator rekeys, once, on receiving data with a keypair this old:
/// `REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT` = 165 s
/// (whitepaper section 6.2, kernel `receive.c: keep_key_fresh`).
pub const REKEY_ON_RECEIVE_AGE: Duration = Duration::from_secs(
    REJECT_AFTER_TIME.as_secs() - KEEPALIVE_TIMEOUT.as_secs() - REKEY_TIMEOUT.as_secs(),
);

/// Key material is erased after this long without a new session:
/// 3 x [`REJECT_AFTER_TIME`] (whitepaper section 6.3).
pub const ZERO_KEY_MATERIAL_AFTER: Duration = Duration::from_secs(3 * 180);

/// Bits of the replay bitmap (kernel `COUNTER_BITS_TOTAL`).
pub const COUNTER_BITS_TOTAL: u64 = 8192;

/// Bits of one word of the replay bitmap.
pub const COUNTER_WORD_BITS: u64 = 64;

/// Usable replay window: one word of the bitmap is always being recycled
/// (kernel `COUNTER_WINDOW_SIZE` = 8192 - 64 = 8128).
pub const COUNTER_WINDOW_SIZE: u64 = COUNTER_BITS_TOTAL - COUNTER_WORD_BITS;

/// At most this many initiations per second are accepted from one peer
/// (kernel `INITIATIONS_PER_SECOND`), i.e. one per 20 ms.
pub const INITIATIONS_PER_SECOND: u32 = 50;

/// Minimum spacing of two accepted initiations from the same peer.
pub const MIN_INITIATION_INTERVAL: Duration =
    Duration::from_nanos(1_000_000_000 / INITIATIONS_PER_SECOND as u64);

/// The responder's cookie secret is regenerated after this long
/// (whitepaper section 5.4.7, kernel `COOKIE_SECRET_MAX_AGE`).
pub const COOKIE_SECRET_MAX_AGE: Duration = Duration::from_secs(120);

/// Safety margin subtracted from [`COOKIE_SECRET_MAX_AGE`] when deciding whether
/// a received cookie is still usable (kernel `COOKIE_SECRET_LATENCY`).
pub const COOKIE_SECRET_LATENCY: Duration = Duration::from_secs(5);

/// Length of cookies, mac1 and mac2 (kernel `COOKIE_LEN`).
pub const COOKIE_LEN: usize = 16;

/// Length of the XChaCha20-Poly1305 nonce of a cookie reply.
pub const COOKIE_NONCE_LEN: usize = 24;

/// Per-source handshake rate: packets per second (kernel `ratelimiter.c`).
pub const RATELIMIT_PACKETS_PER_SECOND: u64 = 20;

/// Per-source handshake burst (kernel `ratelimiter.c`).
pub const RATELIMIT_BURST: u64 = 5;

/// A rate limiter entry unused for this long is forgotten (kernel GC period).
pub const RATELIMIT_ENTRY_TTL: Duration = Duration::from_secs(1);

/// Cap on the incoming handshake queue (kernel `MAX_QUEUED_INCOMING_HANDSHAKES`).
pub const MAX_QUEUED_INCOMING_HANDSHAKES: usize = 4096;

/// The device is under load while its handshake backlog is at least
/// `cap / UNDER_LOAD_DIVISOR` (kernel `receive.c`).
pub const UNDER_LOAD_DIVISOR: usize = 8;

/// "Under load" stays set for this long after the backlog last crossed the
/// threshold (kernel `receive.c`: sticky for one second).
pub const UNDER_LOAD_STICKY: Duration = Duration::from_secs(1);

/// Transport plaintext is padded to a multiple of this (whitepaper section 5.4.6).
pub const MESSAGE_PADDING_MULTIPLE: usize = 16;

/// Length of a Curve25519 key and of every symmetric key.
pub const KEY_LEN: usize = 32;

/// Length of a BLAKE2s-256 hash.
pub const HASH_LEN: usize = 32;

/// Length of a Poly1305 authentication tag.
pub const AEAD_TAG_LEN: usize = 16;

/// Length of a TAI64N timestamp.
pub const TIMESTAMP_LEN: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_values_match_the_kernel() {
        assert_eq!(MAX_TIMER_HANDSHAKES, 18);
        assert_eq!(REKEY_ON_RECEIVE_AGE, Duration::from_secs(165));
        assert_eq!(COUNTER_WINDOW_SIZE, 8128);
        assert_eq!(REJECT_AFTER_MESSAGES, u64::MAX - 8128 - 1);
        assert_eq!(MIN_INITIATION_INTERVAL, Duration::from_millis(20));
        assert_eq!(ZERO_KEY_MATERIAL_AFTER, REJECT_AFTER_TIME * 3);
    }
}
