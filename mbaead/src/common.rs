//! What every SIMD kernel shares, in plain Rust: the ChaCha20 input state
//! of each lane laid out word by word, the Poly1305 message blocks of each
//! lane (RFC 8439 section 2.8's padded layout), and Poly1305's clamping and
//! final reduction, done once per packet.

// Limb numbers index several arrays in step (h, g, r), as in the RFC's
// formulas.
#![allow(clippy::needless_range_loop)]

use zeroize::Zeroize;

use crate::{Lane, MAX_LANES};

/// The ChaCha20 input words (RFC 8439 section 2.3) of up to 16 lanes, word
/// major: `words[i][lane]` is word `i` of that lane's state, so that one
/// SIMD vector holds one word of every lane. The block counter (word 12)
/// is left zero: the kernels set it per block. Lanes past the pass's jobs
/// hold a zero key and are never read back.
pub(crate) struct State {
    pub(crate) words: [[u32; MAX_LANES]; 16],
}

/// "expand 32-byte k", RFC 8439 section 2.3.
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

impl State {
    /// The state of each job of `pass` (at most 16).
    pub(crate) fn new<J: Lane>(pass: &[J]) -> State {
        let mut words = [[0u32; MAX_LANES]; 16];
        for (w, c) in words.iter_mut().zip(SIGMA) {
            *w = [c; MAX_LANES];
        }
        for (lane, job) in pass.iter().enumerate() {
            for (i, k) in job.key().chunks_exact(4).enumerate() {
                words[4 + i][lane] = le32(k);
            }
            for (i, n) in job.nonce().chunks_exact(4).enumerate() {
                words[13 + i][lane] = le32(n);
            }
        }
        State { words }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.words.zeroize();
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Poly1305 blocks of a lane's message: additional data padded to 16 bytes,
/// ciphertext padded to 16, then the two lengths (RFC 8439 section 2.8).
/// Every block is 16 bytes after padding, so every block gets the 2^128 bit.
pub(crate) fn blocks(aad: &[u8], ct: &[u8]) -> usize {
    aad.len().div_ceil(16) + ct.len().div_ceil(16) + 1
}

/// Block `t` of a lane's message as two little-endian halves (low, high);
/// `t` must be below [`blocks`]. Branches on lengths only.
pub(crate) fn block(aad: &[u8], ct: &[u8], t: usize) -> (u64, u64) {
    let na = aad.len().div_ceil(16);
    let nc = ct.len().div_ceil(16);
    if t < na {
        chunk(aad, t)
    } else if t < na + nc {
        chunk(ct, t - na)
    } else {
        (aad.len() as u64, ct.len() as u64)
    }
}

/// The `i`th 16-byte piece of `s`, zero-padded.
fn chunk(s: &[u8], i: usize) -> (u64, u64) {
    match s.get(i * 16..i * 16 + 16) {
        Some(b) => (le64(b), le64(&b[8..])),
        None => {
            let mut b = [0u8; 16];
            let tail = &s[i * 16..];
            b[..tail.len()].copy_from_slice(tail);
            let out = (le64(&b), le64(&b[8..]));
            b.zeroize();
            out
        }
    }
}

/// 2^26 - 1.
pub(crate) const M26: u32 = 0x3ff_ffff;

/// The clamped `r` (RFC 8439 section 2.5) of a one-time key in five 26-bit
/// limbs.
pub(crate) fn r26(key: &[u8; 32]) -> [u32; 5] {
    let lo = le64(&key[0..]) & 0x0fff_fffc_0fff_ffff;
    let hi = le64(&key[8..]) & 0x0fff_fffc_0fff_fffc;
    split26(lo, hi, 0)
}

/// A 130-bit number given as 128 bits and the bit 2^128, in 26-bit limbs.
pub(crate) fn split26(lo: u64, hi: u64, top: u32) -> [u32; 5] {
    [
        lo as u32 & M26,
        (lo >> 26) as u32 & M26,
        ((lo >> 52) | (hi << 12)) as u32 & M26,
        (hi >> 14) as u32 & M26,
        (hi >> 40) as u32 | (top << 24),
    ]
}

/// The tag: the accumulator `h` (26-bit limbs, each below 2^32, not fully
/// reduced) reduced mod 2^130 - 5, plus `s` mod 2^128 (RFC 8439 section
/// 2.5.1). Constant time: the final subtraction of p is a mask, not a
/// branch (as in poly1305-donna).
pub(crate) fn finish26(h: [u64; 5], key: &[u8; 32]) -> [u8; 16] {
    // Carry the limbs into 26 bits each (u64 so that no limb overflows).
    let mut h = h;
    for _ in 0..2 {
        for i in 0..4 {
            h[i + 1] += h[i] >> 26;
            h[i] &= M26 as u64;
        }
        h[0] += (h[4] >> 26) * 5;
        h[4] &= M26 as u64;
    }
    h[1] += h[0] >> 26;
    h[0] &= M26 as u64;
    let mut h = h.map(|x| x as u32);
    // g = h + 5 - 2^130: its sign says whether h >= p.
    let mut g = [0u32; 5];
    let mut c = 5u32;
    for i in 0..5 {
        g[i] = h[i].wrapping_add(c);
        c = g[i] >> 26;
        g[i] &= M26;
    }
    g[4] = g[4].wrapping_add(c << 26).wrapping_sub(1 << 26);
    // All ones where g >= 0 (h >= p: take g), zero where h < p.
    let take_g = (g[4] >> 31).wrapping_sub(1);
    for i in 0..5 {
        h[i] = (h[i] & !take_g) | (g[i] & take_g & M26);
    }
    let words = [
        h[0] | (h[1] << 26),
        (h[1] >> 6) | (h[2] << 20),
        (h[2] >> 12) | (h[3] << 14),
        (h[3] >> 18) | (h[4] << 8),
    ];
    tag(words, key)
}

/// `h` (its low 128 bits as four words) plus `s`, the key's second half,
/// mod 2^128, as bytes.
pub(crate) fn tag(h: [u32; 4], key: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut carry = 0u64;
    for i in 0..4 {
        let s = le32(&key[16 + 4 * i..]);
        let f = u64::from(h[i]) + u64::from(s) + carry;
        out[4 * i..4 * i + 4].copy_from_slice(&(f as u32).to_le_bytes());
        carry = f >> 32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8439 section 2.5.2's example: the whole Poly1305 computed with
    /// the scalar pieces (one lane), so the kernels' shared parts are checked
    /// on their own.
    #[test]
    fn rfc8439_poly1305_example_with_scalar_pieces() {
        let key: [u8; 32] = hex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
        let msg = b"Cryptographic Forum Research Group";
        let r = r26(&key).map(u64::from);
        let mut h = [0u64; 5];
        for c in msg.chunks(16) {
            let mut b = [0u8; 16];
            b[..c.len()].copy_from_slice(c);
            // A short last block gets its 1 byte after the message, not 2^128.
            let (lo, hi, top) = if c.len() == 16 {
                (le64(&b), le64(&b[8..]), 1)
            } else {
                b[c.len()] = 1;
                (le64(&b), le64(&b[8..]), 0)
            };
            let m = split26(lo, hi, top).map(u64::from);
            for i in 0..5 {
                h[i] += m[i];
            }
            let mut d = [0u64; 5];
            for i in 0..5 {
                for j in 0..5 {
                    let k = i + j;
                    let f = if k >= 5 { 5 } else { 1 };
                    d[k % 5] += h[i] * r[j] * f;
                }
            }
            for i in 0..4 {
                d[i + 1] += d[i] >> 26;
                d[i] &= M26 as u64;
            }
            d[0] += (d[4] >> 26) * 5;
            d[4] &= M26 as u64;
            h = d;
        }
        assert_eq!(
            finish26(h, &key),
            hex::<16>("a8061dc1305136c6c22b8baf0c0127a9")
        );
    }

    #[test]
    fn blocks_follow_the_padded_layout() {
        let aad = [1u8; 12];
        let ct = [2u8; 17];
        assert_eq!(blocks(&aad, &ct), 1 + 2 + 1);
        assert_eq!(block(&aad, &ct, 0), (0x0101_0101_0101_0101, 0x0101_0101));
        assert_eq!(
            block(&aad, &ct, 1),
            (0x0202_0202_0202_0202, 0x0202_0202_0202_0202)
        );
        assert_eq!(block(&aad, &ct, 2), (0x02, 0));
        assert_eq!(block(&aad, &ct, 3), (12, 17));
        assert_eq!(blocks(&[], &[]), 1);
        assert_eq!(block(&[], &[], 0), (0, 0));
    }

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
