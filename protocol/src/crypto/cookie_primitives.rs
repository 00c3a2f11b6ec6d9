//! The primitives of the cookie mechanism as the handshake gate runs them
//! per flood frame (whitepaper section 5.3 and 5.4.7): `MAC` with a
//! precomputed key block, and `XAEAD`.
//!
//! **`MAC(key, input)` with the key's block compressed once** (whitepaper
//! section 5.4: `MAC` is keyed BLAKE2s with a 16-byte output).
//!
//! Keyed BLAKE2s (RFC 7693 section 3.3) pads the key to a 64-byte block and
//! compresses that block before any input: the state after it depends on
//! the key alone. A [`MacKey`] keeps that state, so each MAC under a key
//! used many times costs one compression less: mac1 over an initiation
//! (116 bytes) takes two compressions instead of three, a cookie
//! (`MAC(R_m, address || port)`) one instead of two. The handshake gate
//! checks a mac1 for every handshake message a worker receives and
//! computes a cookie for each one under load, so this is its cost per
//! flood frame.
//!
//! The BLAKE2s code is the `mbmac` crate's (tested there against
//! `blake2`, and here against [`super::mac`]): one input at a time, or up
//! to 16 under the same key in one AVX-512 pass ([`MacKey::mac_many`]),
//! which is how the gate checks the mac1s of a burst's handshake messages.

use zeroize::Zeroize;

use super::{unreachable_aead_len, CryptoError};
use crate::constants::{AEAD_TAG_LEN, COOKIE_LEN, COOKIE_NONCE_LEN, KEY_LEN};

/// A `MAC` key of 1 to 32 bytes with its key block already compressed.
///
/// The kept state is as good as the key for computing MACs, so it is
/// wiped on drop like the key; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MacKey(mbmac::Key);

impl core::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

/// One input of [`MacKey::mac_many`] and, once it ran, its MAC.
pub type MacJob<'a> = mbmac::Job<'a>;

/// Every job's `MAC(keys[i], jobs[i].input)`, a key per job (cookies):
/// up to [`MAC_LANES`] per SIMD pass where the CPU has AVX-512.
pub fn mac_many_keyed<const N: usize>(keys: &[[u8; N]], jobs: &mut [MacJob<'_>]) {
    mbmac::mac_many_keyed(keys, jobs);
}

/// The most inputs [`MacKey::mac_many`] takes in one SIMD pass.
pub const MAC_LANES: usize = mbmac::MAX_LANES;

impl MacKey {
    /// The MAC key `key` (1 to 32 bytes, checked at compile time), its
    /// block compressed.
    pub fn new<const N: usize>(key: &[u8; N]) -> Self {
        MacKey(mbmac::Key::new(key))
    }

    /// `MAC(key, parts[0] || parts[1] || ...)`, equal to [`super::mac`]
    /// under the same key.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; COOKIE_LEN] {
        self.0.mac(parts)
    }

    /// Every job's `MAC(key, input)`, up to [`MAC_LANES`] inputs per SIMD
    /// pass where the CPU has AVX-512 (one at a time elsewhere).
    pub fn mac_many(&self, jobs: &mut [MacJob<'_>]) {
        self.0.mac_many(jobs);
    }
}

/// XChaCha20-Poly1305 as its definition builds it (draft-irtf-cfrg-xchacha
/// section 2.3): ChaCha20-Poly1305 under the subkey `HChaCha20(key,
/// nonce[..16])`, with the 96-bit nonce `0^32 || nonce[16..]`. The subkey
/// comes from `chacha20`'s HChaCha20, the AEAD from `ring` (the transport's
/// assembly, about six times faster than RustCrypto's XChaCha20-Poly1305
/// on a 16-byte cookie: a worker seals one per cookie reply under a
/// flood). The key is `HASH(LABEL_COOKIE || S^pub)`, derived from a public
/// key, so ring's key copy that cannot be wiped (see `crypto`'s comment)
/// holds nothing secret; the intermediate subkey is wiped.
fn xchacha_key(
    key: &[u8; KEY_LEN],
    nonce: &[u8; COOKIE_NONCE_LEN],
) -> (ring::aead::LessSafeKey, ring::aead::Nonce) {
    let (prefix, suffix) = nonce.split_at(16);
    let mut subkey = chacha20::hchacha::<chacha20::cipher::consts::U10>(
        key.into(),
        chacha20::cipher::generic_array::GenericArray::from_slice(prefix),
    );
    let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &subkey[..]);
    subkey.zeroize();
    let key = match unbound {
        Ok(k) => ring::aead::LessSafeKey::new(k),
        // A 32-byte key is always accepted.
        Err(_) => unreachable_aead_len(),
    };
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(suffix);
    (key, ring::aead::Nonce::assume_unique_for_key(n))
}

/// `XAEAD(key, nonce, plaintext, aad)` for cookie replies, in place.
pub fn xaead_seal(
    key: &[u8; KEY_LEN],
    nonce: &[u8; COOKIE_NONCE_LEN],
    in_out: &mut [u8],
    aad: &[u8],
) -> [u8; AEAD_TAG_LEN] {
    let (key, nonce) = xchacha_key(key, nonce);
    match key.seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), in_out) {
        Ok(tag) => {
            let mut out = [0u8; AEAD_TAG_LEN];
            out.copy_from_slice(tag.as_ref());
            out
        }
        Err(_) => unreachable_aead_len(),
    }
}

/// XChaCha20-Poly1305 decryption of a cookie, in place.
pub fn xaead_open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; COOKIE_NONCE_LEN],
    in_out: &mut [u8],
    tag: &[u8; AEAD_TAG_LEN],
    aad: &[u8],
) -> Result<(), CryptoError> {
    let (key, nonce) = xchacha_key(key, nonce);
    key.open_in_place_separate_tag(
        nonce,
        ring::aead::Aad::from(aad),
        ring::aead::Tag::from(*tag),
        in_out,
        0..,
    )
    .map(|_| ())
    .map_err(|_| CryptoError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::mac;
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use rand_core::{RngCore, SeedableRng};

    /// Every input length from empty to four blocks, in one part and in
    /// two, under keys of 1, 16 and 32 bytes: the same MAC as the plain
    /// keyed BLAKE2s.
    #[test]
    fn equals_the_plain_keyed_mac_at_every_length() {
        let input: Vec<u8> = (0..=256u32).map(|i| (i * 7 + 3) as u8).collect();
        let k32 = [0xa5u8; 32];
        let k16 = [0x3cu8; 16];
        let k1 = [0x42u8; 1];
        let (m32, m16, m1) = (MacKey::new(&k32), MacKey::new(&k16), MacKey::new(&k1));
        for len in 0..=256 {
            let data = &input[..len];
            assert_eq!(m32.mac(&[data]), mac(&k32, &[data]), "32-byte key, {len}");
            assert_eq!(m16.mac(&[data]), mac(&k16, &[data]), "16-byte key, {len}");
            assert_eq!(m1.mac(&[data]), mac(&k1, &[data]), "1-byte key, {len}");
            let (a, b) = data.split_at(len / 3);
            assert_eq!(m32.mac(&[a, b]), mac(&k32, &[data]), "two parts, {len}");
        }
        assert_eq!(m32.mac(&[]), mac(&k32, &[]), "no parts at all");
        assert_ne!(m32.mac(&[b"x"]), m16.mac(&[b"x"]), "the key matters");
    }

    /// Dropping a key wipes its own state only: a clone made before
    /// still computes the right MAC. `Debug` shows nothing of the key.
    #[test]
    fn a_cloned_key_and_a_dropped_one_do_not_disturb_each_other() {
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let input: [u8; 64] = core::array::from_fn(|i| i as u8);
        let k = MacKey::new(&key);
        let copy = k.clone();
        drop(k);
        assert_eq!(copy.mac(&[&input]), mac(&key, &[&input]));
        assert_eq!(format!("{copy:?}"), "MacKey(<redacted>)");
    }

    /// A burst's MACs at once equal [`mac`]'s one by one: 0 to 40 inputs
    /// of the lengths mac1 and mac2 cover (60, 76, 116, 132 bytes) and
    /// random ones, under a random key.
    #[test]
    fn mac_many_equals_the_plain_keyed_mac_one_by_one() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0x6d61_6331);
        for n in 0..=40usize {
            let mut key = [0u8; 32];
            rng.fill_bytes(&mut key);
            let inputs: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let len = [60, 76, 116, 132][i % 4] + (rng.next_u32() as usize % 3) * (i % 2);
                    let mut v = vec![0u8; len];
                    rng.fill_bytes(&mut v);
                    v
                })
                .collect();
            let mut jobs: Vec<MacJob<'_>> = inputs.iter().map(|i| MacJob::new(i)).collect();
            MacKey::new(&key).mac_many(&mut jobs);
            for (j, input) in jobs.iter().zip(&inputs) {
                assert_eq!(
                    j.mac,
                    mac(&key, &[input]),
                    "{n} inputs, length {}",
                    input.len()
                );
            }
        }
    }

    /// draft-irtf-cfrg-xchacha-03 appendix A.3.1: the XChaCha20-Poly1305
    /// test vector's tag, and a round trip of its plaintext.
    #[test]
    fn xchacha_draft_vector() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let nonce: [u8; 24] = core::array::from_fn(|i| 0x40 + i as u8);
        let aad = [
            0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
        ];
        let plain = *b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut text = plain;
        let tag = xaead_seal(&key, &nonce, &mut text, &aad);
        assert_eq!(
            &text[..8],
            &[0xbd, 0x6d, 0x17, 0x9d, 0x3e, 0x83, 0xd4, 0x3b]
        );
        assert_eq!(
            tag,
            [
                0xc0, 0x87, 0x59, 0x24, 0xc1, 0xc7, 0x98, 0x79, 0x47, 0xde, 0xaf, 0xd8, 0x78, 0x0a,
                0xcf, 0x49
            ]
        );
        xaead_open(&key, &nonce, &mut text, &tag, &aad).expect("opens");
        assert_eq!(text, plain);
    }

    /// The XAEAD agrees with RustCrypto's XChaCha20-Poly1305 on random
    /// keys, nonces, AADs and lengths, and each opens what the other
    /// sealed.
    #[test]
    fn xaead_agrees_with_rustcrypto_xchacha() {
        use chacha20poly1305::XChaCha20Poly1305;
        use rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(53);
        for len in 0..80usize {
            let mut key = [0u8; 32];
            let mut nonce = [0u8; 24];
            let mut aad = [0u8; 16];
            let mut plain = vec![0u8; len];
            rng.fill_bytes(&mut key);
            rng.fill_bytes(&mut nonce);
            rng.fill_bytes(&mut aad);
            rng.fill_bytes(&mut plain);
            let aad = &aad[..len % 17];
            let other = XChaCha20Poly1305::new((&key).into());
            let mut ours = plain.clone();
            let tag = xaead_seal(&key, &nonce, &mut ours, aad);
            let mut theirs = plain.clone();
            let their_tag = other
                .encrypt_in_place_detached((&nonce).into(), aad, &mut theirs)
                .expect("seal");
            assert_eq!((&ours, &tag[..]), (&theirs, &their_tag[..]), "length {len}");
            other
                .decrypt_in_place_detached((&nonce).into(), aad, &mut ours, (&tag).into())
                .expect("RustCrypto opens ours");
            assert_eq!(ours, plain);
            xaead_open(&key, &nonce, &mut theirs, &tag, aad).expect("we open theirs");
            assert_eq!(theirs, plain);
        }
    }
}
