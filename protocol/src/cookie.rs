//! The cookie mechanism against handshake floods (whitepaper section 5.3 and
//! 5.4.7; kernel `cookie.c` and the load logic of `receive.c`).
//!
//! Sending side, per peer: [`CookieJar`] puts mac1 on every handshake message
//! and mac2 while it holds a fresh cookie, and consumes cookie replies.
//! Receiving side, per interface: [`CookieChecker`] verifies mac1 always and,
//! under load, mac2 plus the per-source [`RateLimiter`]; it answers with a
//! cookie reply when mac2 is missing. [`LoadTracker`] decides "under load".

use std::net::{IpAddr, SocketAddr};

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::constants::{
    AEAD_TAG_LEN, COOKIE_LEN, COOKIE_NONCE_LEN, COOKIE_SECRET_LATENCY, COOKIE_SECRET_MAX_AGE,
    KEY_LEN, LABEL_COOKIE, LABEL_MAC1, UNDER_LOAD_DIVISOR, UNDER_LOAD_STICKY,
};
use crate::crypto::{self, MacKey, PublicKey};
use crate::messages::{
    mac_ranges, CookieReply, Message, MessageError, MessageType, COOKIE_REPLY_LEN,
};
use crate::ratelimit::RateLimiter;
use crate::time::Instant;

mod batch;

/// A cookie or MAC check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// The message is malformed or not a handshake message.
    #[error("malformed message: {0}")]
    Message(#[from] MessageError),
    /// Not a message that carries mac1/mac2 (types 1 and 2 only).
    #[error("message type carries no MACs")]
    NotHandshake,
    /// mac1 is wrong: not for us, or corrupted. Drop silently.
    #[error("invalid mac1")]
    InvalidMac1,
    /// mac2 was valid but the source exceeds its rate. Drop.
    #[error("source rate-limited")]
    RateLimited,
    /// A cookie reply arrived when we had sent no MAC to answer.
    #[error("unexpected cookie reply")]
    UnexpectedReply,
    /// A cookie reply did not decrypt.
    #[error("cookie reply decryption failed")]
    Decryption,
    /// No cookie secret was drawn or received yet.
    #[error("no cookie secret yet")]
    NoSecret,
}

/// `HASH(label || public)`: the mac1 and cookie-encryption keys.
fn derive_key(label: &[u8], public: &PublicKey) -> Zeroizing<[u8; KEY_LEN]> {
    Zeroizing::new(crypto::hash(&[label, public.as_bytes()]))
}

/// The per-peer sender-side cookie state (kernel `struct cookie`).
pub struct CookieJar {
    /// `HASH(LABEL_MAC1 || S_remote^pub)`.
    mac1_key: Zeroizing<[u8; KEY_LEN]>,
    /// `HASH(LABEL_COOKIE || S_remote^pub)`.
    cookie_key: Zeroizing<[u8; KEY_LEN]>,
    /// The latest cookie received and when.
    cookie: Option<(Zeroizing<[u8; COOKIE_LEN]>, Instant)>,
    /// mac1 of our last handshake message, the AAD of the cookie reply.
    last_mac1: Option<[u8; COOKIE_LEN]>,
}

impl core::fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieJar")
            .field("has_cookie", &self.cookie.is_some())
            .finish_non_exhaustive()
    }
}

impl CookieJar {
    /// Cookie state for messages to the peer `remote`.
    pub fn new(remote: &PublicKey) -> Self {
        CookieJar {
            mac1_key: derive_key(LABEL_MAC1, remote),
            cookie_key: derive_key(LABEL_COOKIE, remote),
            cookie: None,
            last_mac1: None,
        }
    }

    /// Fills mac1 and mac2 of a handshake message we are about to send
    /// (section 5.4.4): mac1 always; mac2 from the cookie if it is younger
    /// than COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY, zeros otherwise.
    pub fn add_macs(&mut self, msg: &mut [u8], now: Instant) {
        let Some((mac1_range, mac2_range)) = mac_ranges(msg) else {
            return;
        };
        let mac1 = crypto::mac(&self.mac1_key, &[&msg[..mac1_range.start]]);
        msg[mac1_range].copy_from_slice(&mac1);
        self.last_mac1 = Some(mac1);
        let mac2 = match &self.cookie {
            Some((cookie, birth))
                if !birth.has_expired(COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY, now) =>
            {
                crypto::mac(cookie, &[&msg[..mac2_range.start]])
            }
            _ => [0u8; COOKIE_LEN],
        };
        msg[mac2_range].copy_from_slice(&mac2);
    }

    /// Whether a cookie usable for mac2 is held at `now`.
    pub fn has_fresh_cookie(&self, now: Instant) -> bool {
        self.cookie.as_ref().is_some_and(|(_, birth)| {
            !birth.has_expired(COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY, now)
        })
    }

    /// Decrypts a cookie reply (section 5.4.7): XChaCha20-Poly1305 under
    /// `HASH(LABEL_COOKIE || S_remote^pub)` with our last mac1 as AAD.
    pub fn consume_reply(
        &mut self,
        reply: &CookieReply<&[u8]>,
        now: Instant,
    ) -> Result<(), CookieError> {
        let Some(last_mac1) = self.last_mac1 else {
            return Err(CookieError::UnexpectedReply);
        };
        let enc = reply.encrypted_cookie();
        let mut cookie = Zeroizing::new([0u8; COOKIE_LEN]);
        cookie.copy_from_slice(&enc[..COOKIE_LEN]);
        let mut tag = [0u8; AEAD_TAG_LEN];
        tag.copy_from_slice(&enc[COOKIE_LEN..]);
        crypto::xaead_open(
            &self.cookie_key,
            reply.nonce(),
            &mut cookie[..],
            &tag,
            &last_mac1,
        )
        .map_err(|_| CookieError::Decryption)?;
        self.cookie = Some((cookie, now));
        self.last_mac1 = None;
        Ok(())
    }
}

/// What the receiver should do with a handshake message whose MACs checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacVerdict {
    /// Process the handshake message.
    Accept,
    /// Under load without a valid mac2: answer with a cookie reply
    /// ([`CookieChecker::create_reply`]) and do not process the message.
    SendCookie,
}

/// The rotating random secret `R_m` and when it was drawn: what the one
/// party that rotates it (wgdp's control thread) hands to the checkers that
/// only use it (the workers). Wiped on drop; `Debug` shows only the birth.
#[derive(Clone)]
pub struct CookieSecret {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    birth: Instant,
}

impl core::fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieSecret")
            .field("birth", &self.birth)
            .finish_non_exhaustive()
    }
}

/// The per-interface receiver-side checker (kernel `struct cookie_checker`).
///
/// Two ways to use it: [`verify`](Self::verify) and
/// [`create_reply`](Self::create_reply) rotate the secret themselves (the
/// kernel's lazy rotation); a checker that only receives its secret from
/// elsewhere ([`set_secret`](Self::set_secret)) uses the non-rotating
/// parts: [`check_mac1`](Self::check_mac1), [`check_mac2`](Self::check_mac2)
/// and [`reply`](Self::reply).
pub struct CookieChecker {
    /// `HASH(LABEL_MAC1 || S_local^pub)`, its block compressed once.
    mac1_key: MacKey,
    /// `HASH(LABEL_COOKIE || S_local^pub)`.
    cookie_key: Zeroizing<[u8; KEY_LEN]>,
    /// The rotating random secret `R_m`, once drawn or received, and its
    /// MAC key (the cookie is `MAC(R_m, ...)`: its block compressed once
    /// per secret, not per cookie).
    secret: Option<(CookieSecret, MacKey)>,
}

impl core::fmt::Debug for CookieChecker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieChecker")
            .field("secret_birth", &self.secret.as_ref().map(|(s, _)| s.birth))
            .finish_non_exhaustive()
    }
}

impl CookieChecker {
    /// A checker for the interface whose static public key is `local`.
    pub fn new(local: &PublicKey) -> Self {
        CookieChecker {
            mac1_key: MacKey::new(&derive_key(LABEL_MAC1, local)),
            cookie_key: derive_key(LABEL_COOKIE, local),
            secret: None,
        }
    }

    /// Draws a new `R_m` from `rng` when there is none or it is
    /// COOKIE_SECRET_MAX_AGE old; returns the new secret (to hand to the
    /// checkers that use it), `None` when the current one is still fresh.
    pub fn rotate(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) -> Option<CookieSecret> {
        let stale = self
            .secret
            .as_ref()
            .is_none_or(|(s, _)| s.birth.has_expired(COOKIE_SECRET_MAX_AGE, now));
        if !stale {
            return None;
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(&mut bytes[..]);
        let secret = CookieSecret { bytes, birth: now };
        self.set_secret(secret.clone());
        Some(secret)
    }

    /// Uses `secret`, rotated by another checker, from now on.
    pub fn set_secret(&mut self, secret: CookieSecret) {
        let key = MacKey::new(&secret.bytes);
        self.secret = Some((secret, key));
    }

    /// `cookie = MAC(R_m, source IP || source port)` under the current
    /// secret; `None` before there is one.
    fn cookie_for(&self, src: SocketAddr) -> Option<Zeroizing<[u8; COOKIE_LEN]>> {
        let (_, secret) = self.secret.as_ref()?;
        let mut bytes = [0u8; 18];
        let len = source_bytes(src, &mut bytes);
        Some(Zeroizing::new(secret.mac(&[&bytes[..len]])))
    }

    /// Checks that `msg` is a handshake message (type 1 or 2, of its exact
    /// length) whose mac1 is ours: `MAC(HASH(LABEL_MAC1 || S_local^pub),
    /// msg up to mac1)`.
    pub fn check_mac1(&self, msg: &[u8]) -> Result<(), CookieError> {
        MessageType::of(msg)?;
        let mac1_at = mac1_offset(msg).ok_or(CookieError::NotHandshake)?;
        let mac1 = self.mac1_key.mac(&[&msg[..mac1_at]]);
        if !mac1_matches(msg, mac1_at, &mac1) {
            return Err(CookieError::InvalidMac1);
        }
        Ok(())
    }

    /// Whether the mac2 of handshake message `msg` from `src` is the one
    /// the current secret's cookie for `src` gives (false when `msg` is not
    /// a handshake message, or no secret was drawn or received yet). Does
    /// not look at mac1: call [`check_mac1`](Self::check_mac1) first.
    pub fn check_mac2(&self, msg: &[u8], src: SocketAddr) -> bool {
        self.cookie_for(src)
            .is_some_and(|cookie| mac2_matches(msg, &cookie))
    }

    /// Under load, for a handshake message `msg` from `src` whose mac1 was
    /// checked ([`check_mac1`](Self::check_mac1)): [`UnderLoad::Mac2`]
    /// when its mac2 is the one the current secret's cookie for `src`
    /// gives, otherwise [`UnderLoad::Reply`] with the cookie reply to send
    /// (as [`check_mac2`](Self::check_mac2) then [`reply`](Self::reply)
    /// would, with the cookie computed once for both).
    /// [`CookieError::NoSecret`] before a secret was drawn or received;
    /// [`CookieError::NotHandshake`] when `msg` is not a handshake message.
    pub fn mac2_or_reply(
        &self,
        msg: &[u8],
        src: SocketAddr,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<UnderLoad, CookieError> {
        let cookie = self.cookie_for(src).ok_or(CookieError::NoSecret)?;
        let matches = mac2_matches(msg, &cookie);
        self.mac2_or_reply_checked(msg, &Mac2Check { cookie, matches }, rng)
    }

    /// [`mac2_or_reply`](Self::mac2_or_reply) with the cookie and the mac2
    /// comparison already made ([`mac2_checks`](Self::mac2_checks)).
    pub fn mac2_or_reply_checked(
        &self,
        msg: &[u8],
        check: &Mac2Check,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<UnderLoad, CookieError> {
        if check.matches {
            return Ok(UnderLoad::Mac2);
        }
        seal_reply(&self.cookie_key, msg, &check.cookie, rng).map(UnderLoad::Reply)
    }

    /// Checks the MACs of a received handshake message (type 1 or 2) from
    /// `src` (kernel `wg_cookie_validate_packet` and its caller), rotating
    /// the secret first when due: mac1 must be valid; when `under_load`,
    /// mac2 must also be valid (otherwise [`MacVerdict::SendCookie`]) and
    /// the source must pass `limiter`.
    pub fn verify(
        &mut self,
        msg: &[u8],
        src: SocketAddr,
        under_load: bool,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
        limiter: &mut RateLimiter,
    ) -> Result<MacVerdict, CookieError> {
        self.check_mac1(msg)?;
        if !under_load {
            return Ok(MacVerdict::Accept);
        }
        self.rotate(now, rng);
        if !self.check_mac2(msg, src) {
            return Ok(MacVerdict::SendCookie);
        }
        if !limiter.allow(src.ip(), now) {
            return Err(CookieError::RateLimited);
        }
        Ok(MacVerdict::Accept)
    }

    /// Builds the cookie reply to handshake message `msg` from `src`
    /// (section 5.4.7), rotating the secret first when due; see
    /// [`reply`](Self::reply).
    pub fn create_reply(
        &mut self,
        msg: &[u8],
        src: SocketAddr,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<[u8; COOKIE_REPLY_LEN], CookieError> {
        self.rotate(now, rng);
        self.reply(msg, src, rng)
    }

    /// Builds the cookie reply to handshake message `msg` from `src` under
    /// the current secret (section 5.4.7): receiver = the message's sender
    /// index, a random 24-byte nonce from `rng`, the cookie sealed with the
    /// message's mac1 as AAD. [`CookieError::NoSecret`] before a secret was
    /// drawn or received.
    pub fn reply(
        &self,
        msg: &[u8],
        src: SocketAddr,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<[u8; COOKIE_REPLY_LEN], CookieError> {
        mac_ranges(msg).ok_or(CookieError::NotHandshake)?;
        let cookie = self.cookie_for(src).ok_or(CookieError::NoSecret)?;
        seal_reply(&self.cookie_key, msg, &cookie, rng)
    }
}

/// `source IP || source port` (the cookie's input) into `out`; its length.
fn source_bytes(src: SocketAddr, out: &mut [u8; 18]) -> usize {
    let ip_len = match src.ip() {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            16
        }
    };
    out[ip_len..ip_len + 2].copy_from_slice(&src.port().to_be_bytes());
    ip_len + 2
}

/// A message's cookie under the current secret, and whether its mac2 is
/// the one the cookie gives ([`CookieChecker::mac2_checks`]). The cookie
/// is wiped on drop; `Debug` shows only the comparison.
pub struct Mac2Check {
    cookie: Zeroizing<[u8; COOKIE_LEN]>,
    matches: bool,
}

impl core::fmt::Debug for Mac2Check {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mac2Check")
            .field("matches", &self.matches)
            .finish_non_exhaustive()
    }
}

/// What a message under load gets ([`CookieChecker::mac2_or_reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnderLoad {
    /// Its mac2 is valid: it goes on (to the per-source rate limit).
    Mac2,
    /// Its mac2 is not valid: answer with this cookie reply, nothing else.
    Reply([u8; COOKIE_REPLY_LEN]),
}

/// Where mac1 begins in handshake message `msg` (the MAC covers what comes
/// before); `None` when `msg` is not a handshake message of its length.
fn mac1_offset(msg: &[u8]) -> Option<usize> {
    mac_ranges(msg).map(|(mac1, _)| mac1.start)
}

/// Whether the mac1 of `msg`, at `at`, is `mac1` (constant time).
fn mac1_matches(msg: &[u8], at: usize, mac1: &[u8; COOKIE_LEN]) -> bool {
    msg.get(at..at + COOKIE_LEN)
        .is_some_and(|m| crypto::constant_time_eq(mac1, m))
}

/// Whether the mac2 of handshake message `msg` is `MAC(cookie, msg up to
/// mac2)` (false when `msg` is not a handshake message).
fn mac2_matches(msg: &[u8], cookie: &[u8; COOKIE_LEN]) -> bool {
    let Some((_, mac2_range)) = mac_ranges(msg) else {
        return false;
    };
    let mac2 = crypto::mac(cookie, &[&msg[..mac2_range.start]]);
    crypto::constant_time_eq(&mac2, &msg[mac2_range])
}

/// The cookie reply carrying `cookie` to the sender of handshake message
/// `msg` (section 5.4.7): receiver = the message's sender index, a random
/// 24-byte nonce from `rng`, the cookie sealed under `cookie_key` with the
/// message's mac1 as AAD.
fn seal_reply(
    cookie_key: &[u8; KEY_LEN],
    msg: &[u8],
    cookie: &[u8; COOKIE_LEN],
    rng: &mut dyn CryptoRngCore,
) -> Result<[u8; COOKIE_REPLY_LEN], CookieError> {
    let (mac1_range, _) = mac_ranges(msg).ok_or(CookieError::NotHandshake)?;
    let sender = Message::parse(msg)
        .ok()
        .and_then(|m| m.sender())
        .ok_or(CookieError::NotHandshake)?;
    let mut out = [0u8; COOKIE_REPLY_LEN];
    let mut reply = CookieReply::new_unchecked(&mut out);
    reply.set_message_type();
    reply.set_receiver(sender);
    let mut nonce = [0u8; COOKIE_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    *reply.nonce_mut() = nonce;
    let field = reply.encrypted_cookie_mut();
    field[..COOKIE_LEN].copy_from_slice(&cookie[..]);
    let tag = crypto::xaead_seal(
        cookie_key,
        &nonce,
        &mut field[..COOKIE_LEN],
        &msg[mac1_range],
    );
    field[COOKIE_LEN..].copy_from_slice(&tag);
    Ok(out)
}

/// Decides whether the interface is under load (kernel `receive.c`): the
/// handshake backlog is at least 1/8 of its capacity, and the state stays
/// set for one second after that was last true.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTracker {
    last_under_load: Option<Instant>,
}

impl LoadTracker {
    /// A tracker that has never seen load.
    pub const fn new() -> Self {
        LoadTracker {
            last_under_load: None,
        }
    }

    /// Whether the interface is under load at `now` with `backlog` queued
    /// handshakes out of `capacity`.
    pub fn under_load(&mut self, backlog: usize, capacity: usize, now: Instant) -> bool {
        if backlog >= capacity / UNDER_LOAD_DIVISOR {
            self.last_under_load = Some(now);
            return true;
        }
        self.last_under_load
            .is_some_and(|t| !t.has_expired(UNDER_LOAD_STICKY, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::MAX_QUEUED_INCOMING_HANDSHAKES;
    use crate::crypto::PrivateKey;
    use crate::messages::{Initiation, INITIATION_LEN};
    use core::time::Duration;
    use rand_chacha::rand_core::SeedableRng;

    pub(super) struct Setup {
        pub(super) jar: CookieJar,
        pub(super) checker: CookieChecker,
        limiter: RateLimiter,
        pub(super) rng: rand_chacha::ChaCha20Rng,
        pub(super) src: SocketAddr,
    }

    pub(super) fn setup() -> Setup {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        let responder = PrivateKey::from_bytes([4u8; 32]).public_key();
        Setup {
            jar: CookieJar::new(&responder),
            checker: CookieChecker::new(&responder),
            limiter: RateLimiter::new(16, &mut rng),
            rng,
            src: "203.0.113.9:4444".parse().expect("literal"),
        }
    }

    pub(super) fn message(s: &mut Setup, sender: u32, now: Instant) -> [u8; INITIATION_LEN] {
        let mut msg = [0u8; INITIATION_LEN];
        let mut v = Initiation::new_unchecked(&mut msg);
        v.set_message_type();
        v.set_sender(sender);
        s.jar.add_macs(&mut msg, now);
        msg
    }

    fn verify(
        s: &mut Setup,
        msg: &[u8],
        under_load: bool,
        now: Instant,
    ) -> Result<MacVerdict, CookieError> {
        s.checker
            .verify(msg, s.src, under_load, now, &mut s.rng, &mut s.limiter)
    }

    #[test]
    fn mac1_always_mac2_under_load() {
        let mut s = setup();
        let t0 = Instant::from_secs(100);
        let msg = message(&mut s, 7, t0);
        assert_eq!(&msg[132..], &[0u8; 16], "no cookie yet: mac2 zero");
        assert_eq!(verify(&mut s, &msg, false, t0), Ok(MacVerdict::Accept));
        assert_eq!(verify(&mut s, &msg, true, t0), Ok(MacVerdict::SendCookie));
        let mut bad = msg;
        bad[10] ^= 1;
        assert_eq!(
            verify(&mut s, &bad, false, t0),
            Err(CookieError::InvalidMac1)
        );
        assert_eq!(
            verify(&mut s, &msg[..100], false, t0),
            Err(CookieError::NotHandshake)
        );

        let reply = s
            .checker
            .create_reply(&msg, s.src, t0, &mut s.rng)
            .expect("reply");
        let view = CookieReply::new_checked(&reply[..]).expect("valid reply");
        assert_eq!(view.receiver(), 7);
        s.jar.consume_reply(&view, t0).expect("cookie accepted");
        assert!(s.jar.has_fresh_cookie(t0));
        // A second copy of the reply has no outstanding mac1 to match.
        assert_eq!(
            s.jar.consume_reply(&view, t0),
            Err(CookieError::UnexpectedReply)
        );
        let msg = message(&mut s, 8, t0);
        assert_ne!(&msg[132..], &[0u8; 16]);
        assert_eq!(verify(&mut s, &msg, true, t0), Ok(MacVerdict::Accept));
    }

    #[test]
    fn cookie_is_usable_for_max_age_minus_latency() {
        let mut s = setup();
        let t0 = Instant::from_secs(100);
        let msg = message(&mut s, 1, t0);
        let reply = s
            .checker
            .create_reply(&msg, s.src, t0, &mut s.rng)
            .expect("reply");
        let view = CookieReply::new_checked(&reply[..]).expect("valid reply");
        s.jar.consume_reply(&view, t0).expect("cookie");
        let edge = t0 + (COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY);
        assert!(s.jar.has_fresh_cookie(edge - Duration::from_millis(1)));
        assert!(!s.jar.has_fresh_cookie(edge));
        let msg = message(&mut s, 2, edge);
        assert_eq!(&msg[132..], &[0u8; 16], "stale cookie: mac2 zero");
    }

    #[test]
    fn secret_rotates_every_two_minutes() {
        let mut s = setup();
        let t0 = Instant::from_secs(100);
        let msg = message(&mut s, 1, t0);
        let reply = s
            .checker
            .create_reply(&msg, s.src, t0, &mut s.rng)
            .expect("reply");
        s.jar
            .consume_reply(&CookieReply::new_checked(&reply[..]).expect("valid"), t0)
            .expect("cookie");
        let later = t0 + COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY - Duration::from_secs(1);
        let msg = message(&mut s, 2, later);
        assert_eq!(verify(&mut s, &msg, true, later), Ok(MacVerdict::Accept));
        // Once the secret is regenerated, old cookies no longer verify.
        let rotated = t0 + COOKIE_SECRET_MAX_AGE;
        let msg = message(&mut s, 3, later);
        assert_eq!(
            verify(&mut s, &msg, true, rotated),
            Ok(MacVerdict::SendCookie)
        );
    }

    #[test]
    fn cookie_is_bound_to_source_address_and_port() {
        let mut s = setup();
        let t0 = Instant::from_secs(1);
        let msg = message(&mut s, 1, t0);
        let reply = s
            .checker
            .create_reply(&msg, s.src, t0, &mut s.rng)
            .expect("reply");
        s.jar
            .consume_reply(&CookieReply::new_checked(&reply[..]).expect("valid"), t0)
            .expect("cookie");
        let msg = message(&mut s, 2, t0);
        let issued_to = s.src;
        assert_eq!(verify(&mut s, &msg, true, t0), Ok(MacVerdict::Accept));
        // Another port on the same address, and the same port on another
        // address: the cookie does not verify.
        s.src.set_port(4445);
        assert_eq!(verify(&mut s, &msg, true, t0), Ok(MacVerdict::SendCookie));
        s.src = issued_to;
        s.src.set_ip("203.0.113.10".parse().expect("literal"));
        assert_eq!(verify(&mut s, &msg, true, t0), Ok(MacVerdict::SendCookie));
    }

    #[test]
    fn a_checker_that_receives_the_secret_checks_what_the_rotating_one_issued() {
        let mut s = setup();
        let t0 = Instant::from_secs(10);
        let responder = PrivateKey::from_bytes([4u8; 32]).public_key();
        let mut user = CookieChecker::new(&responder);
        let msg = message(&mut s, 1, t0);
        assert_eq!(user.check_mac1(&msg), Ok(()));
        assert!(!user.check_mac2(&msg, s.src), "no secret: no mac2 is valid");
        assert_eq!(
            user.reply(&msg, s.src, &mut s.rng).err(),
            Some(CookieError::NoSecret)
        );
        let secret = s.checker.rotate(t0, &mut s.rng).expect("first secret");
        assert!(s.checker.rotate(t0, &mut s.rng).is_none(), "still fresh");
        assert!(!format!("{secret:?}").contains("bytes"));
        user.set_secret(secret);
        // The user's reply gives a cookie the rotating checker accepts.
        let reply = user.reply(&msg, s.src, &mut s.rng).expect("reply");
        s.jar
            .consume_reply(&CookieReply::new_checked(&reply[..]).expect("valid"), t0)
            .expect("cookie");
        let msg = message(&mut s, 2, t0);
        assert!(user.check_mac2(&msg, s.src));
        assert_eq!(verify(&mut s, &msg, true, t0), Ok(MacVerdict::Accept));
        // After the next rotation the user keeps the old secret until it
        // is handed the new one.
        let later = t0 + COOKIE_SECRET_MAX_AGE;
        let next = s.checker.rotate(later, &mut s.rng).expect("rotated");
        assert!(user.check_mac2(&msg, s.src));
        user.set_secret(next);
        assert!(!user.check_mac2(&msg, s.src));
        let mut bad = msg;
        bad[140] ^= 1;
        assert!(!user.check_mac2(&bad, s.src));
        assert_eq!(user.check_mac1(&bad[..100]), Err(CookieError::NotHandshake));
    }

    /// The gate's one-call form under load gives what `check_mac2` and
    /// `reply` give: mac2 valid for the cookie's source only, otherwise a
    /// reply the initiator accepts; no secret, no verdict.
    #[test]
    fn mac2_or_reply_agrees_with_check_mac2_and_reply() {
        let mut s = setup();
        let t0 = Instant::from_secs(10);
        let responder = PrivateKey::from_bytes([4u8; 32]).public_key();
        let mut user = CookieChecker::new(&responder);
        let msg = message(&mut s, 1, t0);
        assert_eq!(
            user.mac2_or_reply(&msg, s.src, &mut s.rng),
            Err(CookieError::NoSecret)
        );
        user.set_secret(s.checker.rotate(t0, &mut s.rng).expect("secret"));
        let Ok(UnderLoad::Reply(reply)) = user.mac2_or_reply(&msg, s.src, &mut s.rng) else {
            panic!("no mac2 yet: a cookie reply");
        };
        let view = CookieReply::new_checked(&reply[..]).expect("valid reply");
        assert_eq!(view.receiver(), 1, "to the message's sender index");
        s.jar
            .consume_reply(&view, t0)
            .expect("the initiator takes it");
        let msg = message(&mut s, 2, t0);
        assert!(user.check_mac2(&msg, s.src));
        assert_eq!(
            user.mac2_or_reply(&msg, s.src, &mut s.rng),
            Ok(UnderLoad::Mac2)
        );
        // From another port the cookie is not valid: a reply, as
        // check_mac2 says.
        let mut other = s.src;
        other.set_port(4445);
        assert!(!user.check_mac2(&msg, other));
        assert!(matches!(
            user.mac2_or_reply(&msg, other, &mut s.rng),
            Ok(UnderLoad::Reply(_))
        ));
        assert_eq!(
            user.mac2_or_reply(&msg[..100], s.src, &mut s.rng),
            Err(CookieError::NotHandshake)
        );
    }

    #[test]
    fn load_tracker_is_sticky_for_one_second() {
        let mut t = LoadTracker::new();
        let cap = MAX_QUEUED_INCOMING_HANDSHAKES;
        assert!(!t.under_load(0, cap, Instant::ZERO));
        assert!(t.under_load(cap / 8, cap, Instant::from_secs(1)));
        assert!(t.under_load(0, cap, Instant::from_millis(1999)));
        assert!(!t.under_load(0, cap, Instant::from_millis(2000)));
    }
}
