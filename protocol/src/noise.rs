//! The Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s handshake (whitepaper section
//! 5.4.2 to 5.4.5; kernel `noise.c`).
//!
//! [`StaticIdentity`] is the local interface key. [`PeerHandshake`] is the
//! per-peer handshake state: the remote static key, the static-static DH
//! (computed at the peer's first handshake and kept), the optional
//! pre-shared key, the replay and flood
//! guards, the peer's cookie state, and a [`HandshakeState`] that carries the
//! data of the current step.
//!
//! Initiator: [`PeerHandshake::create_initiation`] then
//! [`PeerHandshake::consume_response`] -> [`Keypair`].
//! Responder: [`StaticIdentity::open_initiation`] (decrypts the initiator's
//! static key, so the caller can find the peer by it), then
//! [`PeerHandshake::consume_initiation`] and
//! [`PeerHandshake::create_response`] -> (response, [`Keypair`]).
//! Responder on a handshake thread: [`StaticIdentity::prepare_initiation`]
//! (or [`StaticIdentity::open_initiation`] then [`PendingInitiation::prepare`]
//! with a static-static DH computed ahead by [`StaticIdentity::static_static`])
//! does every Diffie-Hellman of consuming the initiation and of the response
//! without any peer state; the thread that owns the peer then completes with
//! [`PeerHandshake::consume_prepared`] and [`PeerHandshake::create_response`]
//! (same checks, same result, no X25519 left).
//! Local indexes always come from the caller (the dataplane encodes the owner
//! lcore in them). mac1/mac2 are filled in on every message built here.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::constants::{AEAD_TAG_LEN, CONSTRUCTION, IDENTIFIER, KEY_LEN, MIN_INITIATION_INTERVAL};
use crate::cookie::{CookieError, CookieJar};
use crate::crypto::{self, CryptoError, PrivateKey, PublicKey, SecretBytes, TransportKey};
use crate::messages::{
    CookieReply, Initiation, MessageError, Response, INITIATION_LEN, RESPONSE_LEN,
};
use crate::time::{Instant, Tai64N};
use crate::transport::Keypair;

mod response;
pub use response::{OpenedResponse, ResponseWork};

/// Why a handshake step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The message is malformed.
    #[error("malformed handshake message: {0}")]
    Message(#[from] MessageError),
    /// An AEAD field did not decrypt: wrong keys (static key or PSK mismatch)
    /// or a forged message.
    #[error("handshake decryption failed")]
    Decryption,
    /// A Diffie-Hellman result was zero: a low-order public key.
    #[error("low-order public key")]
    LowOrderKey,
    /// The initiation's static key is not this peer's.
    #[error("initiation is from another peer")]
    WrongPeer,
    /// The TAI64N timestamp is not newer than the last accepted one.
    #[error("initiation timestamp is not newer than the last one (replay)")]
    Replay,
    /// Less than 20 ms since the last accepted initiation from this peer.
    #[error("initiation flood: less than 20 ms since the previous one")]
    Flood,
    /// A response arrived but no initiation is outstanding, or a response
    /// was requested without a consumed initiation.
    #[error("no handshake in the state this step needs")]
    UnexpectedState,
    /// The response answers another initiation.
    #[error("response receiver index {got:#x} does not match {expected:#x}")]
    IndexMismatch {
        /// Our outstanding initiation's index.
        expected: u32,
        /// Index the response carries.
        got: u32,
    },
}

impl From<CryptoError> for HandshakeError {
    fn from(e: CryptoError) -> Self {
        match e {
            // The handshake AEAD is RustCrypto's, never a device.
            CryptoError::Authentication | CryptoError::Device => HandshakeError::Decryption,
            CryptoError::ZeroSharedSecret => HandshakeError::LowOrderKey,
        }
    }
}

/// The local static key pair of an interface.
pub struct StaticIdentity {
    private: PrivateKey,
    public: PublicKey,
}

impl core::fmt::Debug for StaticIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StaticIdentity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// The running hash `H` and chaining key `C` of the handshake.
#[derive(Clone)]
struct Symmetric {
    hash: Zeroizing<[u8; KEY_LEN]>,
    chaining_key: SecretBytes,
}

impl Symmetric {
    /// `C := HASH(CONSTRUCTION)`, `H := HASH(HASH(C || IDENTIFIER) || S_r^pub)`
    /// (section 5.4.2, with the responder's static key).
    fn new(responder_static: &PublicKey) -> Self {
        let ck = crypto::hash(&[CONSTRUCTION]);
        let h = crypto::hash(&[&ck, IDENTIFIER]);
        let h = crypto::hash(&[&h, responder_static.as_bytes()]);
        Symmetric {
            hash: Zeroizing::new(h),
            chaining_key: Zeroizing::new(ck),
        }
    }

    fn mix_hash(&mut self, data: &[u8]) {
        *self.hash = crypto::hash(&[&self.hash[..], data]);
    }

    /// `C := KDF1(C, input)`.
    fn mix_key(&mut self, input: &[u8]) {
        self.chaining_key = crypto::kdf1(&self.chaining_key, input);
    }

    /// `(C, k) := KDF2(C, input)`; returns `k`.
    fn mix_key_and_get(&mut self, input: &[u8]) -> SecretBytes {
        let (ck, k) = crypto::kdf2(&self.chaining_key, input);
        self.chaining_key = ck;
        k
    }

    /// `(C, tau, k) := KDF3(C, Q)`, `H := HASH(H || tau)`; returns `k`
    /// (the psk2 modifier, section 5.4.3).
    fn mix_psk(&mut self, psk: &[u8; KEY_LEN]) -> SecretBytes {
        let (ck, tau, k) = crypto::kdf3(&self.chaining_key, psk);
        self.chaining_key = ck;
        self.mix_hash(&tau[..]);
        k
    }

    /// Seals `field[..len-16]` in place with `H` as associated data, writes
    /// the tag into the last 16 bytes, then `H := HASH(H || field)`.
    fn encrypt_and_hash(&mut self, key: &[u8; KEY_LEN], field: &mut [u8]) {
        let split = field.len() - AEAD_TAG_LEN;
        let (text, tag) = field.split_at_mut(split);
        tag.copy_from_slice(&crypto::aead_seal(key, 0, text, &self.hash[..]));
        self.mix_hash(field);
    }

    /// Opens `field` (ciphertext || tag) into a zeroized copy of the
    /// plaintext, then `H := HASH(H || field)`.
    fn decrypt_and_hash<const N: usize>(
        &mut self,
        key: &[u8; KEY_LEN],
        field: &[u8],
    ) -> Result<Zeroizing<[u8; N]>, HandshakeError> {
        let mut out = Zeroizing::new([0u8; N]);
        if field.len() != N + AEAD_TAG_LEN {
            return Err(HandshakeError::Decryption);
        }
        out.copy_from_slice(&field[..N]);
        let mut tag = [0u8; AEAD_TAG_LEN];
        tag.copy_from_slice(&field[N..]);
        crypto::aead_open(key, 0, &mut out[..], &tag, &self.hash[..])?;
        self.mix_hash(field);
        Ok(out)
    }

    /// `(T_send, T_recv) := KDF2(C, e)` for the initiator, reversed for the
    /// responder (section 5.4.5).
    fn split(self, initiator: bool) -> (TransportKey, TransportKey) {
        let (t1, t2) = crypto::kdf2(&self.chaining_key, &[]);
        let (a, b) = (TransportKey::new(t1), TransportKey::new(t2));
        if initiator {
            (a, b)
        } else {
            (b, a)
        }
    }
}

impl StaticIdentity {
    /// The identity of `private`.
    pub fn new(private: PrivateKey) -> Self {
        let public = private.public_key();
        StaticIdentity { private, public }
    }

    /// Our static public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Responder, first half of consuming an initiation (section 5.4.2):
    /// checks the format, mixes the ephemeral, performs `es` and decrypts the
    /// initiator's static public key. mac1/mac2 must already have been
    /// checked by [`crate::cookie::CookieChecker`]. The caller then finds the
    /// peer by [`PendingInitiation::remote_static`] and completes with
    /// [`PeerHandshake::consume_initiation`].
    pub fn open_initiation(&self, msg: &[u8]) -> Result<PendingInitiation<'_>, HandshakeError> {
        let view = Initiation::new_checked(msg)?;
        let mut sym = Symmetric::new(&self.public);
        let remote_ephemeral = PublicKey::from_bytes(*view.ephemeral());
        sym.mix_hash(remote_ephemeral.as_bytes());
        sym.mix_key(remote_ephemeral.as_bytes());
        let es = self.private.dh(&remote_ephemeral)?;
        let key = sym.mix_key_and_get(&es[..]);
        let remote_static = sym.decrypt_and_hash::<KEY_LEN>(&key, view.encrypted_static())?;
        Ok(PendingInitiation {
            local: self,
            remote_static: PublicKey::from_bytes(*remote_static),
            sender_index: view.sender(),
            remote_ephemeral,
            encrypted_timestamp: *view.encrypted_timestamp(),
            sym,
        })
    }

    /// `DH(S^priv, remote)`: the static-static DH with a peer (section
    /// 5.4.2, `ss`), for a caller that computes it ahead of the peer's
    /// handshake (a handshake thread when idle) and hands it to
    /// [`PendingInitiation::prepare`].
    pub fn static_static(&self, remote: &PublicKey) -> Result<SecretBytes, HandshakeError> {
        Ok(self.private.dh(remote)?)
    }

    /// Responder, the stateless part of a handshake (section 5.4.2 and
    /// 5.4.3) for a handshake thread: [`StaticIdentity::open_initiation`]
    /// (`es`), `ss` computed afresh, then [`PendingInitiation::prepare`].
    /// A thread that keeps the configured peers' `ss` calls the two steps
    /// itself with the kept one.
    pub fn prepare_initiation(
        &self,
        msg: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<PreparedInitiation, HandshakeError> {
        let pending = self.open_initiation(msg)?;
        let static_static = self.static_static(&pending.remote_static)?;
        pending.prepare(static_static, rng)
    }
}

/// An authenticated-looking initiation with all of the responder's X25519
/// work done ([`StaticIdentity::prepare_initiation`]); it is the peer's only
/// once [`PeerHandshake::consume_prepared`] accepts it. Owns its data, so it
/// can cross threads; its secrets wipe themselves on drop.
pub struct PreparedInitiation {
    /// The identity that prepared it.
    local: PublicKey,
    remote_static: PublicKey,
    sender_index: u32,
    timestamp: Tai64N,
    static_static: SecretBytes,
    ephemeral_public: PublicKey,
    /// `H` and `C` after the response's `e`, `ee` and `se`.
    sym: SymmetricState,
}

// The static-static DH and the symmetric state are `Zeroizing`.
impl zeroize::ZeroizeOnDrop for PreparedInitiation {}

impl core::fmt::Debug for PreparedInitiation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedInitiation")
            .field("remote_static", &self.remote_static)
            .field("sender_index", &self.sender_index)
            .finish_non_exhaustive()
    }
}

impl PreparedInitiation {
    /// The static public key the initiator claims: the peer lookup key.
    pub fn remote_static(&self) -> &PublicKey {
        &self.remote_static
    }
}

/// An initiation whose sender has been decrypted but which is not yet
/// authenticated as that peer's (the static-static DH and the timestamp are
/// still to be checked). It borrows the identity that opened it, which
/// completes the static-static DH.
pub struct PendingInitiation<'a> {
    local: &'a StaticIdentity,
    remote_static: PublicKey,
    sender_index: u32,
    remote_ephemeral: PublicKey,
    encrypted_timestamp: [u8; 28],
    sym: Symmetric,
}

impl core::fmt::Debug for PendingInitiation<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingInitiation")
            .field("remote_static", &self.remote_static)
            .field("sender_index", &self.sender_index)
            .finish_non_exhaustive()
    }
}

impl PendingInitiation<'_> {
    /// The static public key the initiator claims: the caller's peer lookup key.
    pub fn remote_static(&self) -> &PublicKey {
        &self.remote_static
    }

    /// The initiator's sender index.
    pub fn sender_index(&self) -> u32 {
        self.sender_index
    }

    /// Responder, the rest of the stateless part for a handshake thread
    /// (section 5.4.2 and 5.4.3): mixes `static_static` (`ss`, which must
    /// be [`StaticIdentity::static_static`] of the claimed sender: a wrong
    /// one fails the timestamp's decryption), decrypts the timestamp, and
    /// draws the response's ephemeral and mixes `e`, `ee` and `se`. What
    /// needs the peer (which peer, replay and flood guards, PSK, cookie,
    /// index) is left to [`PeerHandshake::consume_prepared`]. A low-order
    /// `E_i` or `S_i` already failed `es` or `ss`, so the response's DHs
    /// fail exactly where the two-step path's would.
    pub fn prepare(
        self,
        static_static: SecretBytes,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<PreparedInitiation, HandshakeError> {
        let PendingInitiation {
            local,
            remote_static,
            sender_index,
            remote_ephemeral,
            encrypted_timestamp,
            mut sym,
        } = self;
        let key = sym.mix_key_and_get(&static_static[..]);
        let ts = sym.decrypt_and_hash::<12>(&key, &encrypted_timestamp)?;
        let ephemeral = PrivateKey::generate(rng);
        let ephemeral_public = ephemeral.public_key();
        sym.mix_hash(ephemeral_public.as_bytes());
        sym.mix_key(ephemeral_public.as_bytes());
        sym.mix_key(&ephemeral.dh(&remote_ephemeral)?[..]); // ee
        sym.mix_key(&ephemeral.dh(&remote_static)?[..]); // se
        Ok(PreparedInitiation {
            local: local.public,
            remote_static,
            sender_index,
            timestamp: Tai64N::from_bytes(*ts),
            static_static,
            ephemeral_public,
            sym: SymmetricState(sym),
        })
    }
}

/// Where a peer's handshake stands; each state carries its own data.
#[derive(Default)]
pub enum HandshakeState {
    /// Nothing in progress (kernel `HANDSHAKE_ZEROED`).
    #[default]
    Zeroed,
    /// We sent an initiation and wait for the response.
    CreatedInitiation {
        /// Our sender index in the initiation.
        local_index: u32,
        /// Our ephemeral private key.
        ephemeral: PrivateKey,
        /// Handshake hash and chaining key after the initiation.
        sym: SymmetricState,
    },
    /// We accepted an initiation and may now respond.
    ConsumedInitiation {
        /// The initiator's index.
        remote_index: u32,
        /// The initiator's ephemeral public key.
        remote_ephemeral: PublicKey,
        /// Handshake hash and chaining key after the initiation.
        sym: SymmetricState,
    },
    /// We accepted a prepared initiation whose response's DHs are done.
    PreparedResponse {
        /// The initiator's index.
        remote_index: u32,
        /// The response's ephemeral public key.
        ephemeral_public: PublicKey,
        /// Handshake hash and chaining key after the response's `se`.
        sym: SymmetricState,
    },
}

/// Opaque, zeroized handshake hash and chaining key.
pub struct SymmetricState(Symmetric);

// Hash and chaining key are `Zeroizing`.
impl zeroize::ZeroizeOnDrop for SymmetricState {}

// The ephemeral key, hash, chaining key, PSK, static-static DH and the
// cookie state all wipe themselves on drop.
impl zeroize::ZeroizeOnDrop for PeerHandshake {}

impl core::fmt::Debug for HandshakeState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HandshakeState::Zeroed => f.write_str("Zeroed"),
            HandshakeState::CreatedInitiation { local_index, .. } => {
                write!(f, "CreatedInitiation {{ local_index: {local_index:#x} }}")
            }
            HandshakeState::ConsumedInitiation { remote_index, .. } => {
                write!(
                    f,
                    "ConsumedInitiation {{ remote_index: {remote_index:#x} }}"
                )
            }
            HandshakeState::PreparedResponse { remote_index, .. } => {
                write!(f, "PreparedResponse {{ remote_index: {remote_index:#x} }}")
            }
        }
    }
}

/// Per-peer handshake state (kernel `struct noise_handshake` plus the
/// peer's cookie state).
pub struct PeerHandshake {
    remote_static: PublicKey,
    /// `DH(S_i^priv, S_r^pub)`, computed ahead when the control thread is
    /// idle ([`PeerHandshake::precompute_static_static`]; an X25519 costs
    /// tens of microseconds, so doing it for 100k peers at start-up would
    /// hold the start up for seconds), or at the first handshake if that
    /// comes first, and kept. With handshake threads, they compute it
    /// ahead instead (control `static_statics`) and a prepared initiation
    /// brings it here.
    static_static: Option<StaticStatic>,
    preshared_key: SecretBytes,
    latest_timestamp: Option<Tai64N>,
    last_initiation_consumption: Option<Instant>,
    cookie: CookieJar,
    state: HandshakeState,
}

/// A computed static-static DH and the local key it was computed with.
struct StaticStatic {
    local: PublicKey,
    /// `None` for a low-order remote key.
    shared: Option<SecretBytes>,
}

impl core::fmt::Debug for PeerHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeerHandshake")
            .field("remote_static", &self.remote_static)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl PeerHandshake {
    /// Handshake state for the peer `remote_static`, with an optional
    /// pre-shared key (all zeros when absent, section 5.4.3). Cheap: the
    /// static-static DH waits for the first handshake.
    pub fn new(remote_static: PublicKey, preshared_key: Option<[u8; KEY_LEN]>) -> Self {
        let psk = Zeroizing::new(preshared_key.unwrap_or([0u8; KEY_LEN]));
        PeerHandshake {
            static_static: None,
            preshared_key: psk,
            latest_timestamp: None,
            last_initiation_consumption: None,
            cookie: CookieJar::new(&remote_static),
            remote_static,
            state: HandshakeState::Zeroed,
        }
    }

    /// The peer's static public key.
    pub fn remote_static(&self) -> &PublicKey {
        &self.remote_static
    }

    /// The current state.
    pub fn state(&self) -> &HandshakeState {
        &self.state
    }

    /// Our index of the outstanding initiation, if any: the control thread
    /// maps it to this peer to route the response and cookie replies.
    pub fn pending_initiation_index(&self) -> Option<u32> {
        match &self.state {
            HandshakeState::CreatedInitiation { local_index, .. } => Some(*local_index),
            _ => None,
        }
    }

    /// Replaces the pre-shared key.
    pub fn set_preshared_key(&mut self, preshared_key: Option<[u8; KEY_LEN]>) {
        self.preshared_key = Zeroizing::new(preshared_key.unwrap_or([0u8; KEY_LEN]));
    }

    /// Wipes the in-progress handshake (the zero-key-material timer; kernel
    /// `wg_noise_handshake_clear`). The replay guards are kept.
    pub fn clear(&mut self) {
        self.state = HandshakeState::Zeroed;
    }

    /// Consumes a cookie reply addressed to this peer's last handshake
    /// message (section 5.4.7); mac2 is then added to the next messages.
    pub fn consume_cookie_reply(&mut self, msg: &[u8], now: Instant) -> Result<(), CookieError> {
        let view = CookieReply::new_checked(msg)?;
        self.cookie.consume_reply(&view, now)
    }

    /// Computes `DH(local, remote_static)` now unless it is kept already
    /// (the kernel's `wg_noise_precompute_static_static`, which runs when
    /// a peer is added): the control thread's idle work when it has no
    /// handshake threads, so that the peer's next initiation costs one
    /// X25519 fewer. `true` when it computed it.
    pub fn precompute_static_static(&mut self, local: &StaticIdentity) -> bool {
        let missing = self
            .static_static
            .as_ref()
            .is_none_or(|c| c.local != local.public);
        if missing {
            // A low-order key is kept as such; its handshakes fail later.
            let _ = self.static_static(local);
        }
        missing
    }

    /// `DH(local, remote_static)`, computed on first use and kept while
    /// the local key stays the same.
    fn static_static(&mut self, local: &StaticIdentity) -> Result<&SecretBytes, HandshakeError> {
        let cached = &mut self.static_static;
        if cached.as_ref().is_none_or(|c| c.local != local.public) {
            *cached = Some(StaticStatic {
                local: local.public,
                shared: local.private.dh(&self.remote_static).ok(),
            });
        }
        cached
            .as_ref()
            .and_then(|c| c.shared.as_ref())
            .ok_or(HandshakeError::LowOrderKey)
    }

    /// Initiator: builds a handshake initiation (section 5.4.2) with sender
    /// index `local_index` and wall-clock `timestamp`, replacing any
    /// outstanding one.
    pub fn create_initiation(
        &mut self,
        local: &StaticIdentity,
        local_index: u32,
        timestamp: Tai64N,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<[u8; INITIATION_LEN], HandshakeError> {
        let mut out = [0u8; INITIATION_LEN];
        let mut msg = Initiation::new_unchecked(&mut out);
        msg.set_message_type();
        msg.set_sender(local_index);
        let mut sym = Symmetric::new(&self.remote_static);
        let ephemeral = PrivateKey::generate(rng);
        let e_pub = ephemeral.public_key();
        *msg.ephemeral_mut() = *e_pub.as_bytes();
        sym.mix_hash(e_pub.as_bytes());
        sym.mix_key(e_pub.as_bytes());
        // es
        let key = sym.mix_key_and_get(&ephemeral.dh(&self.remote_static)?[..]);
        let field = msg.encrypted_static_mut();
        field[..KEY_LEN].copy_from_slice(local.public.as_bytes());
        sym.encrypt_and_hash(&key, field);
        // ss
        let key = sym.mix_key_and_get(&self.static_static(local)?[..]);
        let field = msg.encrypted_timestamp_mut();
        field[..12].copy_from_slice(&timestamp.to_bytes());
        sym.encrypt_and_hash(&key, field);
        self.cookie.add_macs(&mut out, now);
        self.state = HandshakeState::CreatedInitiation {
            local_index,
            ephemeral,
            sym: SymmetricState(sym),
        };
        Ok(out)
    }

    /// Responder, second half of consuming an initiation: `ss`, the
    /// timestamp, and the replay (strictly increasing TAI64N) and flood (one
    /// per 20 ms) guards. On success the state is `ConsumedInitiation`.
    pub fn consume_initiation(
        &mut self,
        pending: PendingInitiation<'_>,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        if pending.remote_static != self.remote_static {
            return Err(HandshakeError::WrongPeer);
        }
        let PendingInitiation {
            local,
            sender_index,
            remote_ephemeral,
            encrypted_timestamp,
            mut sym,
            ..
        } = pending;
        let key = sym.mix_key_and_get(&self.static_static(local)?[..]);
        let ts = sym.decrypt_and_hash::<12>(&key, &encrypted_timestamp)?;
        self.accept_timestamp(Tai64N::from_bytes(*ts), now)?;
        self.state = HandshakeState::ConsumedInitiation {
            remote_index: sender_index,
            remote_ephemeral,
            sym: SymmetricState(sym),
        };
        Ok(())
    }

    /// Responder, second half of consuming an initiation prepared on a
    /// handshake thread: the same checks as
    /// [`PeerHandshake::consume_initiation`] (peer, replay, flood), and the
    /// prepared `ss` is kept as this peer's. On success the state is
    /// `PreparedResponse`, and [`PeerHandshake::create_response`] needs no
    /// X25519.
    pub fn consume_prepared(
        &mut self,
        prepared: PreparedInitiation,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        if prepared.remote_static != self.remote_static {
            return Err(HandshakeError::WrongPeer);
        }
        let PreparedInitiation {
            local,
            timestamp,
            static_static,
            sender_index,
            ephemeral_public,
            sym,
            ..
        } = prepared;
        self.accept_timestamp(timestamp, now)?;
        if self.static_static.as_ref().is_none_or(|c| c.local != local) {
            self.static_static = Some(StaticStatic {
                local,
                shared: Some(static_static),
            });
        }
        self.state = HandshakeState::PreparedResponse {
            remote_index: sender_index,
            ephemeral_public,
            sym,
        };
        Ok(())
    }

    /// The replay (strictly increasing TAI64N) and flood (one per 20 ms)
    /// guards of an initiation (section 5.1); records it when it passes.
    fn accept_timestamp(&mut self, timestamp: Tai64N, now: Instant) -> Result<(), HandshakeError> {
        if self
            .latest_timestamp
            .is_some_and(|latest| timestamp <= latest)
        {
            return Err(HandshakeError::Replay);
        }
        if self
            .last_initiation_consumption
            .is_some_and(|last| now < last + MIN_INITIATION_INTERVAL)
        {
            return Err(HandshakeError::Flood);
        }
        self.latest_timestamp = Some(timestamp);
        self.last_initiation_consumption = Some(now);
        Ok(())
    }

    /// Responder: builds the response to the consumed initiation (section
    /// 5.4.3) with sender index `local_index`, and derives the keypair
    /// (section 5.4.5). The keypair is not confirmed until the initiator's
    /// first data message arrives: install it as `next` (see
    /// [`crate::session::Session::install`]).
    pub fn create_response(
        &mut self,
        local_index: u32,
        now: Instant,
        rng: &mut dyn CryptoRngCore,
    ) -> Result<([u8; RESPONSE_LEN], Keypair), HandshakeError> {
        let (remote_index, e_pub, mut sym) = match core::mem::take(&mut self.state) {
            HandshakeState::ConsumedInitiation {
                remote_index,
                remote_ephemeral,
                sym: SymmetricState(mut sym),
            } => {
                let ephemeral = PrivateKey::generate(rng);
                let e_pub = ephemeral.public_key();
                sym.mix_hash(e_pub.as_bytes());
                sym.mix_key(e_pub.as_bytes());
                sym.mix_key(&ephemeral.dh(&remote_ephemeral)?[..]); // ee
                sym.mix_key(&ephemeral.dh(&self.remote_static)?[..]); // se
                (remote_index, e_pub, sym)
            }
            // `e`, `ee` and `se` were mixed by `prepare_initiation`.
            HandshakeState::PreparedResponse {
                remote_index,
                ephemeral_public,
                sym: SymmetricState(sym),
            } => (remote_index, ephemeral_public, sym),
            HandshakeState::Zeroed | HandshakeState::CreatedInitiation { .. } => {
                return Err(HandshakeError::UnexpectedState)
            }
        };
        let mut out = [0u8; RESPONSE_LEN];
        let mut msg = Response::new_unchecked(&mut out);
        msg.set_message_type();
        msg.set_sender(local_index);
        msg.set_receiver(remote_index);
        *msg.ephemeral_mut() = *e_pub.as_bytes();
        let key = sym.mix_psk(&self.preshared_key);
        sym.encrypt_and_hash(&key, msg.encrypted_nothing_mut());
        self.cookie.add_macs(&mut out, now);
        let (send, recv) = sym.split(false);
        Ok((
            out,
            Keypair::new(send, recv, local_index, remote_index, now, false),
        ))
    }

    /// Initiator: consumes the response to our outstanding initiation
    /// (section 5.4.3) and derives the keypair, confirmed at once. The state
    /// is left unchanged if the response does not authenticate. The same
    /// three steps a handshake thread splits ([`PeerHandshake::response_work`],
    /// [`StaticIdentity::open_response`] there, then
    /// [`PeerHandshake::consume_opened_response`]).
    pub fn consume_response(
        &mut self,
        local: &StaticIdentity,
        msg: &[u8],
        now: Instant,
    ) -> Result<Keypair, HandshakeError> {
        let work = self
            .response_work()
            .ok_or(HandshakeError::UnexpectedState)?;
        let opened = local.open_response(work, msg)?;
        self.consume_opened_response(opened, msg, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn identity(seed: u8) -> StaticIdentity {
        StaticIdentity::new(PrivateKey::from_bytes([seed; 32]))
    }

    /// Every type holding handshake secrets wipes them on drop: the
    /// ephemeral and static private keys, the hash and chaining key, the
    /// PSK and derived bytes (SecretBytes), the whole per-peer state.
    #[test]
    fn secret_holders_zeroize_on_drop() {
        fn wipes<T: zeroize::ZeroizeOnDrop>() {}
        wipes::<crate::crypto::PrivateKey>();
        wipes::<crate::crypto::SecretBytes>();
        wipes::<SymmetricState>();
        wipes::<PeerHandshake>();
        wipes::<PreparedInitiation>();
        wipes::<ResponseWork>();
        wipes::<OpenedResponse>();
        wipes::<zeroize::Zeroizing<[u8; crate::constants::COOKIE_LEN]>>();
        // aws-lc wipes the key inside PrivateKey when it frees it
        // (`OPENSSL_free` cleanses every allocation), which no marker
        // trait says.
    }

    #[test]
    fn both_sides_derive_matching_keypairs() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let (i, r) = (identity(1), identity(2));
        let mut ih = PeerHandshake::new(*r.public_key(), Some([3u8; 32]));
        let mut rh = PeerHandshake::new(*i.public_key(), Some([3u8; 32]));
        let now = Instant::from_secs(1);
        let ts = Tai64N::from_unix(core::time::Duration::from_secs(1_700_000_000));
        let init = ih
            .create_initiation(&i, 0xaa, ts, now, &mut rng)
            .expect("initiation");
        assert_eq!(ih.pending_initiation_index(), Some(0xaa));
        let pending = r.open_initiation(&init).expect("open");
        assert_eq!(pending.remote_static(), i.public_key());
        assert_eq!(pending.sender_index(), 0xaa);
        rh.consume_initiation(pending, now).expect("consume");
        let (resp, mut rkp) = rh.create_response(0xbb, now, &mut rng).expect("response");
        let mut ikp = ih
            .consume_response(&i, &resp, now)
            .expect("consume response");
        assert_eq!((ikp.local_index(), ikp.remote_index()), (0xaa, 0xbb));
        assert_eq!((rkp.local_index(), rkp.remote_index()), (0xbb, 0xaa));
        // Initiator's send key is the responder's receive key and back.
        let mut msg = [0u8; 48];
        ikp.seal_message(now, &mut msg).expect("seal");
        rkp.open_message(now, &mut msg).expect("open");
        rkp.seal_message(now, &mut msg).expect("seal");
        ikp.open_message(now, &mut msg).expect("open");
        // Nothing is left to respond to.
        assert_eq!(
            rh.create_response(0xcc, now, &mut rng).err(),
            Some(HandshakeError::UnexpectedState)
        );
    }

    #[test]
    fn static_static_follows_the_local_key() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(13);
        let (i1, i2, r) = (identity(1), identity(3), identity(2));
        let mut ih = PeerHandshake::new(*r.public_key(), None);
        let ts = Tai64N::from_unix(core::time::Duration::from_secs(1_700_000_000));
        for (n, local) in [&i1, &i1, &i2].into_iter().enumerate() {
            // The responder knows the initiator by the key it uses now: a
            // DH kept from another local key would not decrypt.
            let mut rh = PeerHandshake::new(*local.public_key(), None);
            let init = ih
                .create_initiation(local, n as u32, ts, Instant::ZERO, &mut rng)
                .expect("initiation");
            let pending = r.open_initiation(&init).expect("open");
            rh.consume_initiation(pending, Instant::ZERO)
                .expect("consumed with the current local key");
        }
    }

    /// A static-static DH computed ahead and handed to
    /// `PendingInitiation::prepare` gives a response the initiator
    /// accepts; another peer's DH in its place fails the timestamp, so the
    /// one handed in is the one used.
    #[test]
    fn a_static_static_computed_ahead_is_the_one_prepare_uses() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(14);
        let (i, r, other) = (identity(1), identity(2), identity(4));
        let ts = Tai64N::from_unix(core::time::Duration::from_secs(1_700_000_000));
        let mut ih = PeerHandshake::new(*r.public_key(), Some([5u8; 32]));
        let init = ih
            .create_initiation(&i, 0x10, ts, Instant::ZERO, &mut rng)
            .expect("initiation");
        let ahead = r.static_static(i.public_key()).expect("ss");
        assert_eq!(*ahead, *i.static_static(r.public_key()).expect("ss"));
        let wrong = r.static_static(other.public_key()).expect("ss");
        let refused = r
            .open_initiation(&init)
            .expect("open")
            .prepare(wrong, &mut rng);
        assert_eq!(refused.err(), Some(HandshakeError::Decryption));
        let prepared = r
            .open_initiation(&init)
            .expect("open")
            .prepare(ahead, &mut rng)
            .expect("prepared");
        let mut rh = PeerHandshake::new(*i.public_key(), Some([5u8; 32]));
        rh.consume_prepared(prepared, Instant::ZERO)
            .expect("consumed");
        let (resp, _) = rh
            .create_response(0x11, Instant::ZERO, &mut rng)
            .expect("response");
        ih.consume_response(&i, &resp, Instant::ZERO)
            .expect("the initiator accepts the response");
    }

    /// `precompute_static_static` computes the DH once per local key (a
    /// second call, or a handshake after it, computes nothing more), and
    /// the handshakes that follow use it on both sides; a low-order key
    /// is kept as such and its handshake still refused.
    #[test]
    fn a_precomputed_static_static_is_computed_once_and_used() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(15);
        let (i, r, i2) = (identity(1), identity(2), identity(3));
        let ts = Tai64N::from_unix(core::time::Duration::from_secs(1_700_000_000));
        let mut ih = PeerHandshake::new(*r.public_key(), None);
        let mut rh = PeerHandshake::new(*i.public_key(), None);
        assert!(ih.precompute_static_static(&i));
        assert!(rh.precompute_static_static(&r));
        assert!(!ih.precompute_static_static(&i), "kept");
        assert!(!rh.precompute_static_static(&r), "kept");
        let init = ih
            .create_initiation(&i, 1, ts, Instant::ZERO, &mut rng)
            .expect("initiation");
        rh.consume_initiation(r.open_initiation(&init).expect("open"), Instant::ZERO)
            .expect("consumed with the precomputed DH");
        let (resp, _) = rh
            .create_response(2, Instant::ZERO, &mut rng)
            .expect("response");
        ih.consume_response(&i, &resp, Instant::ZERO)
            .expect("the initiator accepts");
        assert!(!rh.precompute_static_static(&r), "still kept");
        // Another local key: computed again for it.
        assert!(ih.precompute_static_static(&i2));
        let mut low = PeerHandshake::new(PublicKey::from_bytes([0u8; 32]), None);
        assert!(low.precompute_static_static(&i));
        assert!(!low.precompute_static_static(&i), "kept as low order");
        let refused = low.create_initiation(&i, 3, ts, Instant::ZERO, &mut rng);
        assert_eq!(refused.err(), Some(HandshakeError::LowOrderKey));
    }

    #[test]
    fn low_order_peer_key_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        let i = identity(1);
        let mut h = PeerHandshake::new(PublicKey::from_bytes([0u8; 32]), None);
        let r = h.create_initiation(&i, 1, Tai64N::default(), Instant::ZERO, &mut rng);
        assert_eq!(r.err(), Some(HandshakeError::LowOrderKey));
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let i = identity(0x11);
        let h = PeerHandshake::new(*identity(2).public_key(), Some([0x77; 32]));
        let text = format!("{i:?} {h:?} {:?}", PrivateKey::from_bytes([0x11; 32]));
        // The public parts are shown; the private key (0x11 bytes) and the
        // PSK (0x77 bytes) in neither decimal nor hex form.
        assert!(
            text.contains("StaticIdentity") && text.contains("PublicKey("),
            "{text}"
        );
        for secret in ["17, 17", "1111", "11, 11", "119, 119", "7777", "77, 77"] {
            assert!(!text.contains(secret), "{secret:?} in {text}");
        }
    }
}
