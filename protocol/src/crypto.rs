//! The cryptographic primitives, behind one small module so that the
//! performance work can swap a backend without touching the protocol.
//!
//! WireGuard's primitives (whitepaper section 5.4): `DH` is X25519
//! (aws-lc-rs, [`x25519`]), `HASH` is BLAKE2s-256, `MAC` is keyed BLAKE2s-128,
//! `HMAC` is HMAC-BLAKE2s-256 (`blake2`), `AEAD` is ChaCha20-Poly1305 with a
//! 96-bit nonce of 32 zero bits and a little-endian 64-bit counter (`ring` for
//! the transport fast path, `chacha20poly1305` for the handshake), `XAEAD` is
//! XChaCha20-Poly1305 (`chacha20`'s HChaCha20, then ring's
//! ChaCha20-Poly1305) for cookie replies. A `MAC` under a key used for many
//! messages keeps its key block compressed ([`MacKey`]).
//!
//! Every secret lives in a zeroize-on-drop container. The one exception is
//! `ring`'s transport key, which `ring` does not let us wipe: it is built
//! once per keypair (rebuilding it per packet cost 20-50 ns a packet and
//! still left unwiped copies on the stack) and dropped with the keypair.
//!
//! The transport AEAD has three backends ([`AeadBackend`]): ring, Intel
//! ipsec-mb called directly, and an implementation registered from outside
//! the crate ([`provider`]: a DPDK crypto device, set up by the dataplane).

use blake2::digest::consts::U16;
use blake2::digest::{FixedOutput, KeyInit, Mac, Update};
use blake2::{Blake2s256, Blake2sMac, Digest};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::ChaCha20Poly1305;
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::constants::{AEAD_TAG_LEN, COOKIE_LEN, HASH_LEN, KEY_LEN};

mod cookie_primitives;
pub mod provider;
mod x25519;

pub use cookie_primitives::{mac_many_keyed, xaead_open, xaead_seal, MacJob, MacKey, MAC_LANES};

/// A 32-byte secret that is wiped when dropped.
pub type SecretBytes = Zeroizing<[u8; KEY_LEN]>;

/// A primitive refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// An AEAD tag did not authenticate the ciphertext.
    #[error("authentication failed")]
    Authentication,
    /// A Diffie-Hellman result was all zeros (low-order public key).
    #[error("Diffie-Hellman produced the all-zero value")]
    ZeroSharedSecret,
    /// An external AEAD implementation (a crypto device) failed the
    /// operation: not an authentication failure.
    #[error("the crypto device failed the operation")]
    Device,
}

/// A Curve25519 public key: plain bytes, comparable and hashable so that the
/// control thread can index peers by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// The key from its 32-byte encoding.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PublicKey(bytes)
    }

    /// The 32-byte encoding.
    pub const fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// A Curve25519 private key (static or ephemeral). Wiped on drop; its
/// `Debug` output never shows the key. A clone (a handshake thread's copy
/// of an ephemeral key) shares the one key, wiped when the last goes.
#[derive(Clone)]
pub struct PrivateKey(x25519::Secret);

// Its one field holds the key in aws-lc's allocation, which aws-lc wipes
// when it frees it (`OPENSSL_free` cleanses every allocation).
impl zeroize::ZeroizeOnDrop for PrivateKey {}

impl PrivateKey {
    /// The key from 32 bytes (clamped by X25519 itself when used).
    pub fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let key = PrivateKey(x25519::Secret::from_bytes(&bytes));
        bytes.zeroize();
        key
    }

    /// A fresh key from the caller's random number generator.
    pub fn generate(rng: &mut dyn CryptoRngCore) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(&mut bytes[..]);
        PrivateKey(x25519::Secret::from_bytes(&bytes))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.public())
    }

    /// `DH(self, public)`; refuses the all-zero result of a low-order point
    /// (kernel `noise.c: mix_dh` / `curve25519` returning false).
    pub fn dh(&self, public: &PublicKey) -> Result<SecretBytes, CryptoError> {
        match self.0.dh(&public.0) {
            Some(out) if !is_all_zero(&out[..]) => Ok(out),
            _ => Err(CryptoError::ZeroSharedSecret),
        }
    }
}

impl core::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// Constant-time "all bytes zero".
fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |acc, b| acc | b) == 0
}

/// Constant-time equality of two byte strings of equal length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `HASH(parts[0] || parts[1] || ...)`: BLAKE2s-256.
pub fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut h = Blake2s256::new();
    for p in parts {
        Digest::update(&mut h, p);
    }
    h.finalize().into()
}

/// `MAC(key, parts...)`: keyed BLAKE2s with a 16-byte output, as used for
/// mac1, mac2 and the cookie itself (whitepaper section 5.4.4). The key is
/// 1 to 32 bytes, checked at compile time.
pub fn mac<const N: usize>(key: &[u8; N], parts: &[&[u8]]) -> [u8; COOKIE_LEN] {
    const { assert!(N > 0 && N <= KEY_LEN, "BLAKE2s keys are 1 to 32 bytes") };
    let mut m = match <Blake2sMac<U16> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable_key_len(),
    };
    for p in parts {
        Mac::update(&mut m, p);
    }
    m.finalize_fixed().into()
}

#[cold]
fn unreachable_key_len() -> ! {
    // The key length is checked at compile time: unreachable.
    panic!("BLAKE2s MAC key of an invalid length")
}

/// `HMAC(key, parts...)` with BLAKE2s-256 (RFC 2104, 64-byte block).
pub fn hmac(key: &[u8; KEY_LEN], parts: &[&[u8]]) -> SecretBytes {
    const BLOCK: usize = 64;
    let mut ipad = Zeroizing::new([0x36u8; BLOCK]);
    let mut opad = Zeroizing::new([0x5cu8; BLOCK]);
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Blake2s256::new();
    Update::update(&mut inner, &ipad[..]);
    for p in parts {
        Update::update(&mut inner, p);
    }
    let mut inner_out = Zeroizing::new([0u8; HASH_LEN]);
    inner_out.copy_from_slice(&inner.finalize_fixed());
    let mut outer = Blake2s256::new();
    Update::update(&mut outer, &opad[..]);
    Update::update(&mut outer, &inner_out[..]);
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    out.copy_from_slice(&outer.finalize_fixed());
    out
}

/// `KDF_n(key, input)` of the whitepaper (section 5.4, HKDF with
/// HMAC-BLAKE2s): returns `n` 32-byte outputs, `n` in 1..=3.
fn kdf<const N: usize>(key: &[u8; KEY_LEN], input: &[u8]) -> [SecretBytes; N] {
    let prk = hmac(key, &[input]);
    let mut outs: [SecretBytes; N] = core::array::from_fn(|_| Zeroizing::new([0u8; KEY_LEN]));
    let mut prev: Option<SecretBytes> = None;
    for (i, out) in outs.iter_mut().enumerate() {
        let counter = [i as u8 + 1];
        let t = match &prev {
            None => hmac(&prk, &[&counter]),
            Some(p) => hmac(&prk, &[&p[..], &counter]),
        };
        **out = *t;
        prev = Some(t);
    }
    outs
}

/// `KDF1(key, input)`.
pub fn kdf1(key: &[u8; KEY_LEN], input: &[u8]) -> SecretBytes {
    let [a] = kdf::<1>(key, input);
    a
}

/// `KDF2(key, input)`.
pub fn kdf2(key: &[u8; KEY_LEN], input: &[u8]) -> (SecretBytes, SecretBytes) {
    let [a, b] = kdf::<2>(key, input);
    (a, b)
}

/// `KDF3(key, input)`.
pub fn kdf3(key: &[u8; KEY_LEN], input: &[u8]) -> (SecretBytes, SecretBytes, SecretBytes) {
    let [a, b, c] = kdf::<3>(key, input);
    (a, b, c)
}

/// The 96-bit ChaCha20-Poly1305 nonce for `counter`: 32 zero bits then the
/// counter little-endian (whitepaper section 5.4.6).
#[inline]
pub fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

/// Handshake `AEAD(key, counter, plaintext, aad)`, in place; returns the tag.
pub fn aead_seal(
    key: &[u8; KEY_LEN],
    counter: u64,
    in_out: &mut [u8],
    aad: &[u8],
) -> [u8; AEAD_TAG_LEN] {
    let cipher = ChaCha20Poly1305::new(key.into());
    match cipher.encrypt_in_place_detached(&nonce(counter).into(), aad, in_out) {
        Ok(tag) => tag.into(),
        // Only fails for plaintexts over 256 GiB: handshake fields are tiny.
        Err(_) => unreachable_aead_len(),
    }
}

#[cold]
fn unreachable_aead_len() -> ! {
    panic!("AEAD plaintext longer than the algorithm allows")
}

/// Handshake AEAD decryption, in place.
pub fn aead_open(
    key: &[u8; KEY_LEN],
    counter: u64,
    in_out: &mut [u8],
    tag: &[u8; AEAD_TAG_LEN],
    aad: &[u8],
) -> Result<(), CryptoError> {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_in_place_detached(&nonce(counter).into(), aad, in_out, tag.into())
        .map_err(|_| CryptoError::Authentication)
}

/// A transport AEAD implementation (ChaCha20-Poly1305 for data messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadBackend {
    /// Intel ipsec-mb, called directly with one manager per thread; used
    /// only where it runs its AVX-512 code (its AVX2 path is slower than
    /// ring's).
    IpsecMb,
    /// `ring`'s portable implementation (assembly per CPU family).
    Ring,
    /// A DPDK crypto device, through the [`provider::AeadProvider`] the
    /// dataplane registered; never chosen automatically.
    Cryptodev,
}

impl AeadBackend {
    /// Every backend: the ones [`auto`](Self::auto) may pick fastest first,
    /// then the one only configuration chooses.
    pub const ALL: &'static [AeadBackend] = &[
        AeadBackend::IpsecMb,
        AeadBackend::Ring,
        AeadBackend::Cryptodev,
    ];

    /// The name in configuration and reports.
    pub const fn name(self) -> &'static str {
        match self {
            AeadBackend::IpsecMb => "ipsec-mb",
            AeadBackend::Ring => "ring",
            AeadBackend::Cryptodev => "cryptodev",
        }
    }

    /// The backend called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|b| b.name() == name)
    }

    /// Whether this CPU (and this build) can use the backend; for
    /// `Cryptodev`, whether a provider is registered.
    pub fn is_available(self) -> bool {
        static IPSEC_MB_AVX512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        match self {
            AeadBackend::IpsecMb => *IPSEC_MB_AVX512.get_or_init(|| {
                ipsec_mb_sys::with_thread_manager(|m| m.is_avx512()).unwrap_or(false)
            }),
            AeadBackend::Ring => true,
            AeadBackend::Cryptodev => provider::provider().is_some(),
        }
    }

    /// The backends this CPU can use.
    pub fn available() -> Vec<AeadBackend> {
        Self::ALL
            .iter()
            .copied()
            .filter(|b| b.is_available())
            .collect()
    }

    /// The fastest available backend for this CPU: ipsec-mb or ring. A
    /// crypto device is used only when configured (on the test machine its
    /// software device measured no faster than ipsec-mb called directly;
    /// see BENCHMARKS.md).
    pub fn auto() -> Self {
        Self::available()
            .into_iter()
            .find(|&b| b != AeadBackend::Cryptodev)
            .unwrap_or(AeadBackend::Ring)
    }
}

/// A transport AEAD backend this CPU or build cannot use was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {} AEAD backend is not available ({})", .0.name(), match .0 {
    AeadBackend::Cryptodev => "no crypto device is configured",
    _ => "not on this CPU",
})]
pub struct UnavailableBackend(pub AeadBackend);

/// The backend new transport keys use (index into [`AeadBackend::ALL`]).
static SELECTED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(u8::MAX);

/// Chooses the backend for transport keys made from now on (startup
/// configuration); `None` restores the automatic choice. Refuses a backend
/// this CPU cannot use.
pub fn select_transport_backend(backend: Option<AeadBackend>) -> Result<(), UnavailableBackend> {
    let v = match backend {
        None => u8::MAX,
        Some(b) if !b.is_available() => return Err(UnavailableBackend(b)),
        Some(b) => AeadBackend::ALL.iter().position(|&x| x == b).unwrap_or(0) as u8,
    };
    SELECTED.store(v, core::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// The backend transport keys are made with now.
pub fn transport_backend() -> AeadBackend {
    match AeadBackend::ALL.get(usize::from(
        SELECTED.load(core::sync::atomic::Ordering::Relaxed),
    )) {
        Some(&b) => b,
        None => AeadBackend::auto(),
    }
}

/// A transport (data message) key: ChaCha20-Poly1305 with an empty
/// associated data (whitepaper section 5.4.6), through one [`AeadBackend`].
///
/// The backend's key is built once, when the keypair is derived (on the
/// control thread), not per packet. The derived bytes are wiped at once;
/// ring's own copy of the key cannot be wiped (it offers no way to), which
/// is the one place key material outlives its use until the keypair is
/// dropped. A crypto device keeps the key in its sessions until the
/// keypair drops them (see the dataplane's provider for what it clears).
pub struct TransportKey {
    imp: TransportImpl,
    /// The key bytes for a multi-buffer pass (the dataplane's batches seal
    /// and open a burst's packets together, `mbaead`): kept, wiped on drop,
    /// only while [`set_batch_keys`] is on and the backend does not keep
    /// them itself (ipsec-mb does).
    batch: Option<SecretBytes>,
}

/// Whether transport keys made from now on keep their bytes for
/// multi-buffer passes ([`TransportKey::batch_key`]).
static BATCH_KEYS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Makes transport keys made from now on keep their bytes for multi-buffer
/// passes (start-up configuration: the dataplane turns it on when it
/// batches a burst's seals and opens), or stop keeping them.
pub fn set_batch_keys(on: bool) {
    BATCH_KEYS.store(on, core::sync::atomic::Ordering::Relaxed);
}

// Unboxed on purpose: a box would cost a pointer chase per packet, and
// keypairs are moved to the workers boxed already.
#[allow(clippy::large_enum_variant)]
enum TransportImpl {
    Ring(ring::aead::LessSafeKey),
    /// ipsec-mb takes the raw key per call; it is wiped on drop.
    IpsecMb(SecretBytes),
    /// The registered provider's handle (one indirect call per packet).
    Cryptodev(Box<dyn provider::AeadKey>),
}

impl TransportKey {
    /// Prepares derived key bytes (wiped on return) for the selected
    /// backend ([`transport_backend`]).
    pub fn new(bytes: SecretBytes) -> Self {
        Self::with_backend(transport_backend(), bytes)
    }

    /// Prepares derived key bytes (wiped on return) for `backend`; an
    /// unavailable backend, or a provider that cannot make the key (it
    /// reports why itself), falls back to ring.
    pub fn with_backend(backend: AeadBackend, bytes: SecretBytes) -> Self {
        Self::with_backend_aad(backend, bytes, 0)
    }

    /// [`with_backend`](Self::with_backend) for associated data of
    /// `aad_len` bytes (a crypto device session fixes it; the others take
    /// any).
    fn with_backend_aad(backend: AeadBackend, bytes: SecretBytes, aad_len: usize) -> Self {
        let external = match backend {
            AeadBackend::Cryptodev => {
                provider::provider().and_then(|p| p.key(&bytes, aad_len).ok())
            }
            _ => None,
        };
        if let Some(key) = external {
            // A crypto device seals every packet itself: no batch copy.
            return TransportKey {
                imp: TransportImpl::Cryptodev(key),
                batch: None,
            };
        }
        match backend {
            AeadBackend::IpsecMb if backend.is_available() => TransportKey {
                imp: TransportImpl::IpsecMb(bytes),
                batch: None,
            },
            AeadBackend::IpsecMb | AeadBackend::Ring | AeadBackend::Cryptodev => {
                let batch = BATCH_KEYS
                    .load(core::sync::atomic::Ordering::Relaxed)
                    .then(|| bytes.clone());
                match ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &bytes[..]) {
                    Ok(k) => TransportKey {
                        imp: TransportImpl::Ring(ring::aead::LessSafeKey::new(k)),
                        batch,
                    },
                    // The key is always 32 bytes, which is what ChaCha20 takes.
                    Err(_) => panic!("ChaCha20-Poly1305 key length"),
                }
            }
        }
    }

    /// The key's bytes for a multi-buffer pass, where this key may join
    /// one: made while [`set_batch_keys`] was on, or with ipsec-mb (which
    /// keeps them anyway); `None` on a crypto device, whose packets it
    /// seals and opens itself. The caller copies them into its pass and
    /// wipes that copy after it.
    #[inline]
    pub fn batch_key(&self) -> Option<&[u8; KEY_LEN]> {
        match &self.imp {
            TransportImpl::IpsecMb(bytes) => Some(bytes),
            TransportImpl::Ring(_) => self.batch.as_deref(),
            TransportImpl::Cryptodev(_) => None,
        }
    }

    /// The backend this key uses.
    pub fn backend(&self) -> AeadBackend {
        match self.imp {
            TransportImpl::Ring(_) => AeadBackend::Ring,
            TransportImpl::IpsecMb(_) => AeadBackend::IpsecMb,
            TransportImpl::Cryptodev(_) => AeadBackend::Cryptodev,
        }
    }

    /// Encrypts `in_out` in place under nonce `counter`; returns the tag.
    /// Fails only on a crypto device ([`CryptoError::Device`]).
    #[inline]
    pub fn seal(&self, counter: u64, in_out: &mut [u8]) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        self.seal_with_aad(counter, &[], in_out)
    }

    /// Decrypts `in_out` in place under nonce `counter`, checking `tag`.
    /// On failure the contents of `in_out` are unspecified.
    #[inline]
    pub fn open(
        &self,
        counter: u64,
        in_out: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        self.open_with_aad(counter, &[], in_out, tag)
    }

    /// [`seal`](Self::seal) with associated data (data messages have none;
    /// the RFC 8439 vectors do).
    #[inline]
    fn seal_with_aad(
        &self,
        counter: u64,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        match &self.imp {
            TransportImpl::Ring(k) => {
                let n = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
                match k.seal_in_place_separate_tag(n, ring::aead::Aad::from(aad), in_out) {
                    Ok(tag) => {
                        let mut out = [0u8; AEAD_TAG_LEN];
                        out.copy_from_slice(tag.as_ref());
                        Ok(out)
                    }
                    Err(_) => unreachable_aead_len(),
                }
            }
            TransportImpl::IpsecMb(key) => {
                let tag = ipsec_mb_sys::with_thread_manager(|m| {
                    m.chacha20_poly1305(key, &nonce(counter), aad, in_out, true)
                });
                match tag {
                    Some(Ok(tag)) => Ok(tag),
                    // The manager existed when the key was made (the backend
                    // was available) and the job's parameters are fixed.
                    _ => unreachable_ipsec_mb(),
                }
            }
            TransportImpl::Cryptodev(k) => k.seal(&nonce(counter), aad, in_out),
        }
    }

    /// [`open`](Self::open) with associated data.
    #[inline]
    fn open_with_aad(
        &self,
        counter: u64,
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        match &self.imp {
            TransportImpl::Ring(k) => {
                let n = ring::aead::Nonce::assume_unique_for_key(nonce(counter));
                k.open_in_place_separate_tag(
                    n,
                    ring::aead::Aad::from(aad),
                    ring::aead::Tag::from(*tag),
                    in_out,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| CryptoError::Authentication)
            }
            TransportImpl::IpsecMb(key) => {
                let expected = ipsec_mb_sys::with_thread_manager(|m| {
                    m.chacha20_poly1305(key, &nonce(counter), aad, in_out, false)
                });
                match expected {
                    // ipsec-mb computes the tag but does not compare it.
                    Some(Ok(expected)) if constant_time_eq(&expected, tag) => Ok(()),
                    Some(Ok(_)) => Err(CryptoError::Authentication),
                    _ => unreachable_ipsec_mb(),
                }
            }
            TransportImpl::Cryptodev(k) => k.open(&nonce(counter), aad, in_out, tag),
        }
    }
}

#[cold]
fn unreachable_ipsec_mb() -> ! {
    // The backend is offered only after a manager was made; a later thread
    // failing to allocate its own is out of memory.
    panic!("ipsec-mb: no manager for this thread (out of memory)")
}

impl core::fmt::Debug for TransportKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TransportKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_default();
        }
        out
    }

    /// RFC 7748 section 6.1: Alice's and Bob's key pairs and shared secret.
    #[test]
    fn rfc7748_x25519_vectors() {
        let alice = PrivateKey::from_bytes(hex32(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = PrivateKey::from_bytes(hex32(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        let alice_pub = hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let bob_pub = hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let shared = hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(alice.public_key().as_bytes(), &alice_pub);
        assert_eq!(bob.public_key().as_bytes(), &bob_pub);
        let s1 = alice.dh(&PublicKey::from_bytes(bob_pub)).expect("dh");
        let s2 = bob.dh(&PublicKey::from_bytes(alice_pub)).expect("dh");
        assert_eq!(*s1, shared);
        assert_eq!(*s2, shared);
    }

    #[test]
    fn low_order_point_is_refused() {
        let k = PrivateKey::from_bytes([7u8; 32]);
        assert_eq!(
            k.dh(&PublicKey::from_bytes([0u8; 32])).err(),
            Some(CryptoError::ZeroSharedSecret)
        );
    }

    /// The empty-input BLAKE2s-256 digest (RFC 7693 reference output).
    #[test]
    fn blake2s_empty() {
        assert_eq!(
            hash(&[]),
            hex32("69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9")
        );
    }

    #[test]
    fn hmac_matches_definition_for_short_key() {
        // HMAC(k, m) = H((k ^ opad) || H((k ^ ipad) || m)) with a 64-byte block.
        let key = [0x0bu8; 32];
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..32 {
            ipad[i] ^= key[i];
            opad[i] ^= key[i];
        }
        let inner = hash(&[&ipad, b"Hi There"]);
        let expected = hash(&[&opad, &inner]);
        assert_eq!(*hmac(&key, &[b"Hi ", b"There"]), expected);
    }

    #[test]
    fn transport_and_handshake_aead_agree() {
        let key = [9u8; 32];
        let t = TransportKey::new(Zeroizing::new(key));
        let mut a = *b"sixteen byte msg and more";
        let mut b = a;
        let tag_a = t.seal(42, &mut a).expect("seal");
        let tag_b = aead_seal(&key, 42, &mut b, &[]);
        assert_eq!(a, b);
        assert_eq!(tag_a, tag_b);
        t.open(42, &mut a, &tag_a).expect("open");
        assert_eq!(&a, b"sixteen byte msg and more");
        assert!(t.open(43, &mut b, &tag_b).is_err());
        let mut c = *b"x";
        let tag = xaead_seal(&key, &[1u8; 24], &mut c, b"aad");
        let mut wrong = c;
        assert!(xaead_open(&key, &[1u8; 24], &mut wrong, &tag, b"bad").is_err());
        xaead_open(&key, &[1u8; 24], &mut c, &tag, b"aad").expect("the right AAD opens it");
        assert_eq!(&c, b"x");
    }

    /// RFC 8439 appendix A.5 through every available backend (the
    /// cryptodev one is tested where a device exists: dataplane's
    /// tests/cryptodev.rs).
    #[test]
    fn a_key_keeps_its_bytes_for_passes_only_while_batch_keys_is_on() {
        let bytes = [0x42u8; 32];
        set_batch_keys(false);
        let ring = TransportKey::with_backend(AeadBackend::Ring, Zeroizing::new(bytes));
        assert_eq!(ring.batch_key(), None, "ring keeps none unless asked");
        set_batch_keys(true);
        let ring = TransportKey::with_backend(AeadBackend::Ring, Zeroizing::new(bytes));
        assert_eq!(ring.batch_key(), Some(&bytes));
        set_batch_keys(false);
        if AeadBackend::IpsecMb.is_available() {
            // ipsec-mb takes the bytes per call anyway.
            let mb = TransportKey::with_backend(AeadBackend::IpsecMb, Zeroizing::new(bytes));
            assert_eq!(mb.batch_key(), Some(&bytes));
        }
    }

    #[test]
    fn rfc8439_aead_vector_on_every_backend() {
        assert!(AeadBackend::available().contains(&AeadBackend::Ring));
        for backend in AeadBackend::available() {
            provider::known_answer_test(backend).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(
            provider::known_answer_test(AeadBackend::Cryptodev),
            Err(provider::SelfTestError {
                backend: AeadBackend::Cryptodev,
                what: "the backend is not available"
            })
        );
    }

    /// Every backend agrees with ring (and with the handshake's RustCrypto
    /// AEAD) on random keys, counters and lengths, keepalives included;
    /// each opens what the other sealed.
    #[test]
    fn backends_agree_on_random_inputs() {
        for backend in AeadBackend::available() {
            provider::cross_check_with_ring(backend, 8439, 200).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn backend_names_round_trip_and_selection_refuses_unavailable() {
        for &b in AeadBackend::ALL {
            assert_eq!(AeadBackend::from_name(b.name()), Some(b));
        }
        assert_eq!(AeadBackend::from_name("openssl"), None);
        assert_eq!(AeadBackend::auto(), AeadBackend::available()[0]);
        assert!(!AeadBackend::Cryptodev.is_available(), "no provider here");
        assert_eq!(
            UnavailableBackend(AeadBackend::Cryptodev).to_string(),
            "the cryptodev AEAD backend is not available (no crypto device is configured)"
        );
        for &b in AeadBackend::ALL {
            assert_eq!(select_transport_backend(Some(b)).is_ok(), b.is_available());
        }
        select_transport_backend(None).expect("automatic");
        assert_eq!(transport_backend(), AeadBackend::auto());
    }
}
