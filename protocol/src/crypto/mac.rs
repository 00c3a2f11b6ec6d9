//! `MAC(key, input)` with the key's block compressed once (whitepaper
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
//! The compressions themselves are `blake2`'s (its `Blake2sVarCore`, the
//! same core that [`super::mac`] runs): only where the key block's
//! compression happens changes, and the tests check every MAC against
//! [`super::mac`].

use blake2::digest::core_api::{Block, Buffer, UpdateCore, VariableOutputCore};
use blake2::Blake2sVarCore;
use zeroize::{Zeroize, Zeroizing};

use crate::constants::{COOKIE_LEN, KEY_LEN};

/// A `MAC` key of 1 to 32 bytes with its key block already compressed.
///
/// The kept state is as good as the key for computing MACs, so it is
/// wiped on drop like the key (overwritten with a key-less state);
/// `Debug` shows nothing of it.
#[derive(Clone)]
pub struct MacKey {
    /// The BLAKE2s state after the key block, as input begins.
    keyed: Blake2sVarCore,
    /// The padded key block, for the one input that needs it as its last
    /// block: the empty one.
    block: Zeroizing<[u8; 64]>,
    /// The key's length (BLAKE2s's parameter block carries it).
    key_len: usize,
}

impl core::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

/// A BLAKE2s-128 state for a key of `key_len` bytes, before its key block.
fn unkeyed(key_len: usize) -> Blake2sVarCore {
    Blake2sVarCore::new_with_params(&[], &[], key_len, COOKIE_LEN)
}

impl MacKey {
    /// The MAC key `key` (1 to 32 bytes, checked at compile time), its
    /// block compressed.
    pub fn new<const N: usize>(key: &[u8; N]) -> Self {
        const { assert!(N > 0 && N <= KEY_LEN, "BLAKE2s keys are 1 to 32 bytes") };
        let mut block = Zeroizing::new([0u8; 64]);
        block[..N].copy_from_slice(key);
        let mut keyed = unkeyed(N);
        keyed.update_blocks(&[Block::<Blake2sVarCore>::clone_from_slice(&block[..])]);
        Self {
            keyed,
            block,
            key_len: N,
        }
    }

    /// `MAC(key, parts[0] || parts[1] || ...)`, equal to [`super::mac`]
    /// under the same key.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; COOKIE_LEN] {
        let mut buffer = Buffer::<Blake2sVarCore>::default();
        let mut core = if parts.iter().all(|p| p.is_empty()) {
            // No input: the key block is the last block, finalized as
            // such (RFC 7693 section 3.3), so it cannot have been
            // compressed ahead.
            buffer = Buffer::<Blake2sVarCore>::new(&self.block[..]);
            unkeyed(self.key_len)
        } else {
            self.keyed.clone()
        };
        for p in parts {
            buffer.digest_blocks(p, |blocks| core.update_blocks(blocks));
        }
        let mut out = Default::default();
        core.finalize_variable_core(&mut buffer, &mut out);
        let mut mac = [0u8; COOKIE_LEN];
        mac.copy_from_slice(&out[..COOKIE_LEN]);
        // The rest of the state is a 32-byte BLAKE2s output of the key and
        // the input: wiped with the state.
        out.zeroize();
        wipe(&mut core, self.key_len);
        mac
    }
}

/// Overwrites a state derived from a key with a key-less one (the
/// `blake2` core has no `Zeroize`), kept by the compiler: the state is
/// passed to `black_box` after the store, so the store is not dead.
fn wipe(core: &mut Blake2sVarCore, key_len: usize) {
    *core = unkeyed(key_len);
    core::hint::black_box(core);
}

impl Drop for MacKey {
    fn drop(&mut self) {
        wipe(&mut self.keyed, self.key_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::mac;

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
}
