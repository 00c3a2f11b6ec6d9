//! WireGuard's `MAC(key, input)` (whitepaper section 5.4: keyed BLAKE2s
//! with a 16-byte output, RFC 7693) with the key's block compressed once,
//! and over up to 16 inputs under the same key in one SIMD pass.
//!
//! **The key block once.** Keyed BLAKE2s pads the key to a 64-byte block
//! and compresses that block before any input (RFC 7693 section 3.3): the
//! state after it depends on the key alone. A [`Key`] keeps that state, so
//! each MAC under a key used many times costs one compression less: mac1
//! over an initiation (116 bytes) takes two compressions instead of three,
//! a cookie (`MAC(R_m, address || port)`) one instead of two.
//!
//! **Many inputs at once.** A handshake gate checks the mac1 of every
//! handshake message it receives, all under one key (our public key's).
//! [`Key::mac_many`] runs BLAKE2s's compression function for 16 inputs in
//! the 16 32-bit lanes of AVX-512 registers: each of the state's 16 words
//! is one register, one input per lane, so a round is the scalar round's
//! instructions on 16 inputs at once (the rotations are single
//! instructions). Inputs may have different lengths: a lane whose input
//! ended keeps its state (a masked move) while the others go on. Where the
//! CPU has no AVX-512 F, or for an empty input (its last block is the key
//! block itself), the scalar code runs.
//!
//! Constant time: no branch or memory index depends on a key or an input's
//! bytes; branches depend only on lengths. The key-derived state is wiped
//! when a [`Key`] is dropped, as are the scalar buffers and the SIMD pass's
//! stored states (register spills are the compiler's, as in any SIMD
//! cryptography).
//!
//! ```
//! use mbmac::{Job, Key};
//! let key = Key::new(&[7u8; 32]);
//! let mut jobs = [Job::new(b"first input"), Job::new(b"second")];
//! key.mac_many(&mut jobs);
//! assert_eq!(jobs[0].mac, key.mac(&[b"first ", b"input"]));
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

/// BLAKE2s's ten rounds (RFC 7693 section 3.2) over the working vector
/// `$v` and the message words `$m`, with `$g` the G function of the lane
/// width (one message in `compress`, sixteen in `avx512::compress`);
/// unrolled, so that every message word is indexed by a constant.
macro_rules! ten_rounds {
    ($g:ident, $v:ident, $m:ident) => {
        ten_rounds!(@ $g, $v, $m, 0 1 2 3 4 5 6 7 8 9)
    };
    (@ $g:ident, $v:ident, $m:ident, $($r:literal)*) => {$({
        const S: [usize; 16] = SIGMA[$r];
        $g(&mut $v, [0, 4, 8, 12], $m[S[0]], $m[S[1]]);
        $g(&mut $v, [1, 5, 9, 13], $m[S[2]], $m[S[3]]);
        $g(&mut $v, [2, 6, 10, 14], $m[S[4]], $m[S[5]]);
        $g(&mut $v, [3, 7, 11, 15], $m[S[6]], $m[S[7]]);
        $g(&mut $v, [0, 5, 10, 15], $m[S[8]], $m[S[9]]);
        $g(&mut $v, [1, 6, 11, 12], $m[S[10]], $m[S[11]]);
        $g(&mut $v, [2, 7, 8, 13], $m[S[12]], $m[S[13]]);
        $g(&mut $v, [3, 4, 9, 14], $m[S[14]], $m[S[15]]);
    })*};
}

#[cfg(target_arch = "x86_64")]
mod avx512;

use zeroize::Zeroize;

/// The MAC's length: BLAKE2s-128.
pub const MAC_LEN: usize = 16;

/// The most inputs one SIMD pass takes; more run in passes.
pub const MAX_LANES: usize = 16;

/// BLAKE2s's block.
const BLOCK: usize = 64;

/// BLAKE2s's initialisation vector (RFC 7693 section 2.6).
const IV: [u32; 8] = [
    0x6A09_E667,
    0xBB67_AE85,
    0x3C6E_F372,
    0xA54F_F53A,
    0x510E_527F,
    0x9B05_688C,
    0x1F83_D9AB,
    0x5BE0_CD19,
];

/// The message schedule of the ten rounds (RFC 7693 section 2.7).
const SIGMA: [[usize; 16]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

/// The state before the key block for a key of `key_len` bytes: the IV
/// with the parameter block's first word (digest length, key length,
/// fanout 1, depth 1; RFC 7693 section 2.5) folded in.
fn initial(key_len: usize) -> [u32; 8] {
    let mut h = IV;
    h[0] ^= 0x0101_0000 ^ ((key_len as u32) << 8) ^ MAC_LEN as u32;
    h
}

/// The compression function F (RFC 7693 section 3.2) on one block; `t` is
/// the byte count so far, this block included; `last`, the final block.
fn compress(h: &mut [u32; 8], block: &[u8; BLOCK], t: u64, last: bool) {
    let mut m = [0u32; 16];
    for (w, b) in m.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    }
    let mut v = [0u32; 16];
    v[..8].copy_from_slice(h);
    v[8..].copy_from_slice(&IV);
    v[12] ^= t as u32;
    v[13] ^= (t >> 32) as u32;
    if last {
        v[14] = !v[14];
    }
    ten_rounds!(g, v, m);
    for i in 0..8 {
        h[i] ^= v[i] ^ v[i + 8];
    }
    // The working state is derived from the key; the message words are
    // the input's.
    v.zeroize();
}

/// The mixing function G (RFC 7693 section 3.1).
#[inline(always)]
fn g(v: &mut [u32; 16], [a, b, c, d]: [usize; 4], x: u32, y: u32) {
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(x);
    v[d] = (v[d] ^ v[a]).rotate_right(16);
    v[c] = v[c].wrapping_add(v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(12);
    v[a] = v[a].wrapping_add(v[b]).wrapping_add(y);
    v[d] = (v[d] ^ v[a]).rotate_right(8);
    v[c] = v[c].wrapping_add(v[d]);
    v[b] = (v[b] ^ v[c]).rotate_right(7);
}

/// The first [`MAC_LEN`] bytes of a final state.
fn output(h: &[u32; 8]) -> [u8; MAC_LEN] {
    let mut mac = [0u8; MAC_LEN];
    for (o, w) in mac.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    mac
}

/// A `MAC` key of 1 to 32 bytes with its key block already compressed.
///
/// The kept state is as good as the key for computing MACs, so it is
/// wiped on drop like the key; `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Key {
    /// The state after the key block, as input begins.
    keyed: [u32; 8],
    /// The padded key block, for the one input that needs it as its last
    /// block: the empty one.
    block: [u8; BLOCK],
    /// The key's length (the parameter block carries it).
    key_len: usize,
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.keyed.zeroize();
        self.block.zeroize();
    }
}

/// One input of [`Key::mac_many`] and, once it ran, its MAC.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The input (any length).
    pub input: &'a [u8],
    /// The MAC, written by [`Key::mac_many`].
    pub mac: [u8; MAC_LEN],
}

impl<'a> Job<'a> {
    /// A job for `input`, its MAC not computed yet (zeros).
    pub const fn new(input: &'a [u8]) -> Self {
        Job {
            input,
            mac: [0; MAC_LEN],
        }
    }
}

impl Default for Job<'_> {
    fn default() -> Self {
        Job::new(&[])
    }
}

/// An implementation of [`Key::mac_many`] (tests and fuzzing run each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 16 inputs per pass in AVX-512 F registers.
    Avx512,
    /// One input at a time, [`Key::mac`].
    Scalar,
}

impl Isa {
    /// The widest implementation this CPU runs.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        Isa::Scalar
    }

    /// Every implementation this CPU runs, widest first.
    pub fn available() -> Vec<Isa> {
        match Isa::detect() {
            Isa::Scalar => vec![Isa::Scalar],
            wide => vec![wide, Isa::Scalar],
        }
    }
}

impl Key {
    /// The MAC key `key` (1 to 32 bytes, checked at compile time), its
    /// block compressed.
    pub fn new<const N: usize>(key: &[u8; N]) -> Self {
        const { assert!(N > 0 && N <= 32, "BLAKE2s keys are 1 to 32 bytes") };
        let mut block = [0u8; BLOCK];
        block[..N].copy_from_slice(key);
        Key::from_block(block, N)
    }

    /// The MAC key `key`, its block compressed; `None` unless it is 1 to
    /// 32 bytes long.
    pub fn from_slice(key: &[u8]) -> Option<Self> {
        if key.is_empty() || key.len() > 32 {
            return None;
        }
        let mut block = [0u8; BLOCK];
        block[..key.len()].copy_from_slice(key);
        Some(Key::from_block(block, key.len()))
    }

    /// The key whose zero-padded block is `block`, `key_len` bytes long.
    fn from_block(block: [u8; BLOCK], key_len: usize) -> Self {
        let mut keyed = initial(key_len);
        compress(&mut keyed, &block, BLOCK as u64, false);
        Key {
            keyed,
            block,
            key_len,
        }
    }

    /// `MAC(key, parts[0] || parts[1] || ...)`, one compression per 64
    /// bytes of input (at least one).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; MAC_LEN] {
        if parts.iter().all(|p| p.is_empty()) {
            // No input: the key block is the last block, finalized as
            // such (RFC 7693 section 3.3), so it cannot have been
            // compressed ahead.
            let mut h = initial(self.key_len);
            compress(&mut h, &self.block, BLOCK as u64, true);
            let mac = output(&h);
            h.zeroize();
            return mac;
        }
        let mut h = self.keyed;
        let mut buf = [0u8; BLOCK];
        let mut held = 0;
        let mut t = BLOCK as u64;
        for part in parts {
            let mut rest = *part;
            while !rest.is_empty() {
                // The block is compressed only once more input follows:
                // the last one is compressed as the last.
                if held == BLOCK {
                    t += BLOCK as u64;
                    compress(&mut h, &buf, t, false);
                    held = 0;
                }
                let take = (BLOCK - held).min(rest.len());
                buf[held..held + take].copy_from_slice(&rest[..take]);
                held += take;
                rest = &rest[take..];
            }
        }
        t += held as u64;
        buf[held..].fill(0);
        compress(&mut h, &buf, t, true);
        let mac = output(&h);
        h.zeroize();
        buf.zeroize();
        mac
    }

    /// Every job's `MAC(key, input)`, in SIMD passes of [`MAX_LANES`]
    /// inputs where the CPU has AVX-512 F (see the crate's comment).
    pub fn mac_many(&self, jobs: &mut [Job<'_>]) {
        self.mac_many_with(Isa::detect(), jobs);
    }

    /// [`mac_many`](Self::mac_many) with the implementation `isa`, which
    /// must be one of [`Isa::available`] (another runs the scalar code).
    pub fn mac_many_with(&self, isa: Isa, jobs: &mut [Job<'_>]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if is_x86_feature_detected!("avx512f") => {
                for pass in jobs.chunks_mut(MAX_LANES) {
                    if let [one] = pass {
                        // One lane: the scalar code is faster (about 200
                        // against 360 ns for 116 bytes).
                        one.mac = self.mac(&[one.input]);
                        continue;
                    }
                    // SAFETY: the CPU has AVX-512 F (checked just above);
                    // a pass takes at most MAX_LANES jobs.
                    unsafe { avx512::pass(&self.keyed, None, pass) };
                }
                // The empty inputs' last block is the key block: the
                // scalar code's case (the pass left them alone).
                for job in jobs.iter_mut().filter(|j| j.input.is_empty()) {
                    job.mac = self.mac(&[]);
                }
            }
            _ => {
                for job in jobs {
                    job.mac = self.mac(&[job.input]);
                }
            }
        }
    }
}

/// Every job's `MAC(keys[i], jobs[i].input)`: a key of `N` bytes (1 to 32)
/// per job, such as a cookie per source (jobs past the keys are left
/// alone). Each key's block is compressed in its lane, so where the CPU
/// has AVX-512 F, 16 jobs take one pass, as [`Key::mac_many`]'s do.
pub fn mac_many_keyed<const N: usize>(keys: &[[u8; N]], jobs: &mut [Job<'_>]) {
    mac_many_keyed_with(Isa::detect(), keys, jobs);
}

/// [`mac_many_keyed`] with the implementation `isa`, which must be one of
/// [`Isa::available`] (another runs the scalar code).
pub fn mac_many_keyed_with<const N: usize>(isa: Isa, keys: &[[u8; N]], jobs: &mut [Job<'_>]) {
    const { assert!(N > 0 && N <= 32, "BLAKE2s keys are 1 to 32 bytes") };
    let n = keys.len().min(jobs.len());
    let (keys, jobs) = (&keys[..n], &mut jobs[..n]);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if is_x86_feature_detected!("avx512f") => {
            for (keys, pass) in keys.chunks(MAX_LANES).zip(jobs.chunks_mut(MAX_LANES)) {
                if let ([key], [one]) = (keys, &mut *pass) {
                    one.mac = Key::new(key).mac(&[one.input]);
                    continue;
                }
                let mut blocks = [[0u8; BLOCK]; MAX_LANES];
                for (b, k) in blocks.iter_mut().zip(keys) {
                    b[..N].copy_from_slice(k);
                }
                // SAFETY: the CPU has AVX-512 F (checked just above);
                // a pass takes at most MAX_LANES jobs, one key block each.
                unsafe { avx512::pass(&initial(N), Some(&blocks), pass) };
                blocks.zeroize();
            }
        }
        _ => {
            for (key, job) in keys.iter().zip(jobs) {
                job.mac = Key::new(key).mac(&[job.input]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blake2::digest::consts::U16;
    use blake2::digest::{KeyInit, Mac};
    use blake2::Blake2sMac;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    /// The independent oracle: `blake2`'s keyed BLAKE2s-128.
    fn oracle(key: &[u8], input: &[u8]) -> [u8; MAC_LEN] {
        let mut m = <Blake2sMac<U16> as KeyInit>::new_from_slice(key).expect("key length");
        m.update(input);
        m.finalize().into_bytes().into()
    }

    /// Every input length from empty to five blocks, in one part and split
    /// in two, under keys of 1, 16 and 32 bytes: the oracle's MAC.
    #[test]
    fn mac_equals_the_oracle_at_every_length_and_split() {
        let input: Vec<u8> = (0..=320u32).map(|i| (i * 7 + 3) as u8).collect();
        let (k1, k16, k32) = ([0x42u8; 1], [0x3cu8; 16], [0xa5u8; 32]);
        let keys: [(&[u8], Key); 3] = [
            (&k1, Key::new(&k1)),
            (&k16, Key::new(&k16)),
            (&k32, Key::new(&k32)),
        ];
        for len in 0..=320 {
            let data = &input[..len];
            for (raw, key) in &keys {
                let want = oracle(raw, data);
                assert_eq!(key.mac(&[data]), want, "len {len}");
                let (a, b) = data.split_at(len / 3);
                assert_eq!(key.mac(&[a, &[], b]), want, "len {len} split");
            }
        }
    }

    /// Bursts of 0 to 40 inputs of random lengths (0 to 300 bytes, empty
    /// ones included) under random 32-byte keys, on every implementation
    /// this CPU has: each job's MAC is the oracle's.
    #[test]
    fn mac_many_equals_the_oracle_on_random_bursts() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x006d_626d_6163);
        for round in 0..200 {
            let mut raw = [0u8; 32];
            rng.fill_bytes(&mut raw);
            let key = Key::new(&raw);
            let n = (rng.next_u32() % 41) as usize;
            let inputs: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let len = match rng.next_u32() % 8 {
                        0 => 0,
                        1 => 64 * (1 + rng.next_u32() as usize % 4),
                        _ => rng.next_u32() as usize % 301,
                    };
                    let mut v = vec![0u8; len];
                    rng.fill_bytes(&mut v);
                    v
                })
                .collect();
            for isa in Isa::available() {
                let mut jobs: Vec<Job<'_>> = inputs.iter().map(|i| Job::new(i)).collect();
                key.mac_many_with(isa, &mut jobs);
                for (j, input) in jobs.iter().zip(&inputs) {
                    assert_eq!(
                        j.mac,
                        oracle(&raw, input),
                        "{isa:?}, round {round}, len {}",
                        input.len()
                    );
                }
            }
        }
    }

    /// Keys shorter than 32 bytes take the key length into the parameter
    /// block on the SIMD path too.
    #[test]
    fn mac_many_under_short_keys_equals_the_oracle() {
        let input: Vec<u8> = (0..200u32).map(|i| (i * 13) as u8).collect();
        let k1 = [9u8; 1];
        let k7 = [1u8, 2, 3, 4, 5, 6, 7];
        let inputs: Vec<&[u8]> = (0..20).map(|i| &input[..i * 10]).collect();
        for (raw, key) in [(&k1[..], Key::new(&k1)), (&k7[..], Key::new(&k7))] {
            for isa in Isa::available() {
                let mut jobs: Vec<Job<'_>> = inputs.iter().map(|i| Job::new(i)).collect();
                key.mac_many_with(isa, &mut jobs);
                for (j, i) in jobs.iter().zip(&inputs) {
                    assert_eq!(j.mac, oracle(raw, i), "{isa:?} len {}", i.len());
                }
            }
        }
    }

    /// A key per job (16 bytes, as cookies): bursts of 0 to 40 jobs of
    /// random lengths (empty ones included) under random keys, on every
    /// implementation: each MAC is the oracle's; jobs past the keys are
    /// left alone.
    #[test]
    fn mac_many_keyed_equals_the_oracle_on_random_bursts() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x006b_6579_6564);
        for round in 0..200 {
            let n = (rng.next_u32() % 41) as usize;
            let keys: Vec<[u8; 16]> = (0..n)
                .map(|_| {
                    let mut k = [0u8; 16];
                    rng.fill_bytes(&mut k);
                    k
                })
                .collect();
            let inputs: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let len = match rng.next_u32() % 6 {
                        0 => 0,
                        1 => 132,
                        _ => rng.next_u32() as usize % 301,
                    };
                    let mut v = vec![0u8; len];
                    rng.fill_bytes(&mut v);
                    v
                })
                .collect();
            for isa in Isa::available() {
                let mut jobs: Vec<Job<'_>> = inputs.iter().map(|i| Job::new(i)).collect();
                jobs.push(Job::new(b"no key"));
                mac_many_keyed_with(isa, &keys, &mut jobs);
                for ((j, input), key) in jobs.iter().zip(&inputs).zip(&keys) {
                    assert_eq!(j.mac, oracle(key, input), "{isa:?} round {round}");
                }
                assert_eq!(jobs[n].mac, [0; MAC_LEN], "past the keys");
            }
        }
    }

    /// A key from a slice is the same key; lengths outside 1..=32 are
    /// refused.
    #[test]
    fn from_slice_takes_1_to_32_bytes() {
        let raw = [0x5au8; 33];
        assert!(Key::from_slice(&raw[..0]).is_none());
        assert!(Key::from_slice(&raw).is_none());
        for len in 1..=32 {
            let key = Key::from_slice(&raw[..len]).expect("1 to 32 bytes");
            assert_eq!(key.mac(&[b"abc"]), oracle(&raw[..len], b"abc"), "{len}");
        }
    }

    /// A wrong byte anywhere in one input changes that job's MAC only.
    #[test]
    fn one_changed_input_changes_only_its_lane() {
        let key = Key::new(&[3u8; 32]);
        let base: Vec<Vec<u8>> = (0..16).map(|i| vec![i as u8; 116]).collect();
        let mut changed = base.clone();
        changed[5][70] ^= 1;
        let run = |inputs: &[Vec<u8>]| {
            let mut jobs: Vec<Job<'_>> = inputs.iter().map(|i| Job::new(i)).collect();
            key.mac_many(&mut jobs);
            jobs.iter().map(|j| j.mac).collect::<Vec<_>>()
        };
        let (a, b) = (run(&base), run(&changed));
        for lane in 0..16 {
            assert_eq!(a[lane] != b[lane], lane == 5, "lane {lane}");
        }
    }
}
