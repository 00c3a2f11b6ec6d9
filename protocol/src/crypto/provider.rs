//! Transport AEAD implementations provided from outside this crate.
//!
//! `protocol` is pure: it knows no DPDK. A ChaCha20-Poly1305 that runs on a
//! DPDK crypto device (a software `crypto_aesni_mb` vdev, or an accelerator
//! such as QAT) is implemented by the dataplane and registered here once at
//! start-up with [`register_provider`]; [`AeadBackend::Cryptodev`] then
//! makes every new transport key through it. The provider creates a
//! per-key handle (the device's sessions) from the key bytes, off the fast
//! path; the handle is dropped with the keypair.
//!
//! [`known_answer_test`] runs the RFC 8439 AEAD vector through a backend,
//! so that a configured device is checked before it carries traffic.
//!
//! [`AeadBackend::Cryptodev`]: super::AeadBackend::Cryptodev

use std::sync::{Arc, PoisonError, RwLock};

use zeroize::Zeroizing;

use super::{AeadBackend, CryptoError, TransportKey};
use crate::constants::{AEAD_TAG_LEN, KEY_LEN};

/// The ChaCha20-Poly1305 nonce length.
pub const NONCE_LEN: usize = 12;

/// A ChaCha20-Poly1305 implementation registered from outside the crate.
pub trait AeadProvider: Send + Sync + 'static {
    /// What it is, for logs and reports (e.g. the device and its driver).
    fn describe(&self) -> String;

    /// A handle that seals and opens under `key` with associated data of
    /// exactly `aad_len` bytes (0 for data messages). Called on the control
    /// thread when a keypair is derived, never per packet. `key` stays the
    /// caller's (and is wiped by it).
    fn key(&self, key: &[u8; KEY_LEN], aad_len: usize) -> Result<Box<dyn AeadKey>, ProviderError>;
}

/// One key held by an [`AeadProvider`]; dropped with its keypair.
pub trait AeadKey: Send + Sync {
    /// Encrypts `in_out` in place; returns the tag. Fails only when the
    /// implementation does ([`CryptoError::Device`]).
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError>;

    /// Decrypts `in_out` in place if `tag` authenticates it.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError>;
}

/// A provider could not make a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

/// A provider was already registered (there is one at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an AEAD provider is already registered")]
pub struct AlreadyRegistered;

/// Read when a key is made (control thread), never per packet.
static PROVIDER: RwLock<Option<Arc<dyn AeadProvider>>> = RwLock::new(None);

/// Registers the process's external AEAD implementation; from then on
/// [`AeadBackend::Cryptodev`] is available. One at a time.
pub fn register_provider(provider: Arc<dyn AeadProvider>) -> Result<(), AlreadyRegistered> {
    let mut slot = PROVIDER.write().unwrap_or_else(PoisonError::into_inner);
    if slot.is_some() {
        return Err(AlreadyRegistered);
    }
    *slot = Some(provider);
    Ok(())
}

/// Removes the registered provider (at shutdown, so that the device it
/// holds can be closed once the last key made with it is dropped); keys
/// made from now on fall back as if none had been registered.
pub fn unregister_provider() -> Option<Arc<dyn AeadProvider>> {
    PROVIDER
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// The registered provider, if any.
pub fn provider() -> Option<Arc<dyn AeadProvider>> {
    PROVIDER
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A backend gave a wrong answer to the RFC 8439 vector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {} AEAD backend failed the RFC 8439 known-answer test: {what}", .backend.name())]
pub struct SelfTestError {
    /// The backend.
    pub backend: AeadBackend,
    /// What was wrong.
    pub what: &'static str,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or_default())
        .collect()
}

/// RFC 8439 appendix A.5 (the AEAD decryption vector): key, counter (its
/// nonce is 32 zero bits and a 64-bit little-endian counter, as
/// WireGuard's are), AAD, plaintext, ciphertext, tag.
pub(super) struct Rfc8439 {
    pub key: [u8; KEY_LEN],
    pub counter: u64,
    pub aad: Vec<u8>,
    pub plain: &'static [u8],
    pub cipher: Vec<u8>,
    pub tag: [u8; AEAD_TAG_LEN],
}

pub(super) fn rfc8439() -> Rfc8439 {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(&unhex(
        "1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0",
    ));
    let mut tag = [0u8; AEAD_TAG_LEN];
    tag.copy_from_slice(&unhex("eead9d67890cbb22392336fea1851f38"));
    Rfc8439 {
        key,
        counter: u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]),
        aad: unhex("f33388860000000000004e91"),
        plain: "Internet-Drafts are draft documents valid for a maximum of six months \
            and may be updated, replaced, or obsoleted by other documents at any time. It is \
            inappropriate to use Internet-Drafts as reference material or to cite them other \
            than as /\u{201c}work in progress./\u{201d}"
            .as_bytes(),
        cipher: unhex(concat!(
            "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2",
            "4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf",
            "332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855",
            "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4",
            "b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e",
            "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a",
            "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10",
            "49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29",
            "a6ad5cb4022b02709b",
        )),
        tag,
    }
}

/// Runs the RFC 8439 AEAD vector through `backend`: the plaintext must
/// seal to the RFC's ciphertext and tag, open back, and a flipped bit of
/// the ciphertext or of the tag must be refused. Also checks that the
/// backend (not a fallback) made the key.
pub fn known_answer_test(backend: AeadBackend) -> Result<(), SelfTestError> {
    let fail = |what| Err(SelfTestError { backend, what });
    let v = rfc8439();
    let k = TransportKey::with_backend_aad(backend, Zeroizing::new(v.key), v.aad.len());
    if k.backend() != backend {
        return fail("the backend is not available");
    }
    let mut buf = v.plain.to_vec();
    let Ok(tag) = k.seal_with_aad(v.counter, &v.aad, &mut buf) else {
        return fail("seal failed");
    };
    if buf != v.cipher {
        return fail("wrong ciphertext");
    }
    if tag != v.tag {
        return fail("wrong tag");
    }
    let mut bad = buf.clone();
    bad[100] ^= 1;
    if k.open_with_aad(v.counter, &v.aad, &mut bad, &tag).is_ok() {
        return fail("a flipped ciphertext bit was accepted");
    }
    let mut bad_tag = tag;
    bad_tag[15] ^= 0x80;
    let mut c = buf.clone();
    if k.open_with_aad(v.counter, &v.aad, &mut c, &bad_tag).is_ok() {
        return fail("a flipped tag bit was accepted");
    }
    if k.open_with_aad(v.counter, &v.aad, &mut buf, &tag).is_err() {
        return fail("open of its own seal failed");
    }
    if buf != v.plain {
        return fail("open gave the wrong plaintext");
    }
    Ok(())
}

/// Checks `backend` against ring (and the handshake's RustCrypto AEAD) on
/// `rounds` random keys, counters and lengths (the first four: 0, 16, 32,
/// 48 bytes, keepalives included), `seed` choosing them: equal ciphertexts
/// and tags, each opens what the other sealed, a flipped tag bit is
/// refused by both.
pub fn cross_check_with_ring(
    backend: AeadBackend,
    seed: u64,
    rounds: usize,
) -> Result<(), SelfTestError> {
    let fail = |what| Err(SelfTestError { backend, what });
    // xorshift64: reproducible inputs, not secrets.
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..rounds {
        let key: [u8; KEY_LEN] = core::array::from_fn(|_| next() as u8);
        let counter = next();
        let len = if round < 4 {
            round * 16
        } else {
            next() as usize % 1600
        };
        let plain: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut reference = plain.clone();
        let want = super::aead_seal(&key, counter, &mut reference, &[]);
        let ring = TransportKey::with_backend(AeadBackend::Ring, Zeroizing::new(key));
        let k = TransportKey::with_backend(backend, Zeroizing::new(key));
        if k.backend() != backend {
            return fail("the backend is not available");
        }
        let mut buf = plain.clone();
        match k.seal(counter, &mut buf) {
            Ok(tag) if tag == want && buf == reference => {}
            Ok(_) => return fail("seal differs from ring"),
            Err(_) => return fail("seal failed"),
        }
        for (opener, other) in [(&k, &ring), (&ring, &k)] {
            let mut c = reference.clone();
            if opener.open(counter, &mut c, &want).is_err() || c != plain {
                return fail("did not open what the other sealed");
            }
            let mut wrong = want;
            wrong[round % AEAD_TAG_LEN] ^= 0x80;
            let mut c = reference.clone();
            if other.open(counter, &mut c, &wrong).is_ok() {
                return fail("a bad tag was accepted");
            }
        }
    }
    Ok(())
}
