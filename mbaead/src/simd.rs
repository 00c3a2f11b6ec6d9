//! The SIMD kernels: ChaCha20 with one lane per packet and Poly1305 with
//! one accumulator per lane, for AVX-512 (16 lanes), AVX-512 IFMA (16
//! lanes, 44-bit Poly1305 limbs) and AVX2 (8 lanes).
//!
//! This is the crate's only `unsafe` code: unaligned vector loads and
//! stores between arrays and registers (each with its SAFETY comment), and
//! the entry points, which are `#[target_feature]` functions that the
//! caller may only run after detecting the features (`Engine::available`).
//! The arithmetic intrinsics are safe inside those functions.
//!
//! Each ISA module supplies the same small set of primitives (`add32`,
//! `rotl16`, `mul32`, `transpose`, ...) and then expands [`kernel!`], the
//! algorithm written once over those primitives.

// Limb, word and lane numbers index several arrays in step (a limb of h,
// of r and of 5r); ranges say that more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

use zeroize::Zeroize;

use crate::common::{self, State, M26};
use crate::{Lane, MAX_LANES};

/// The ChaCha20 and Poly1305 passes over the primitives of the module that
/// expands it: `$feat` is that module's target features, `LANES` its u32
/// lanes per vector (packets per pass) and `HALF` its u64 lanes.
macro_rules! kernel {
    ($feat:literal) => {
        /// One ChaCha20 quarter round on four rows of lanes (RFC 8439
        /// section 2.1).
        #[inline]
        #[target_feature(enable = $feat)]
        fn quarter(x: &mut [V; 16], a: usize, b: usize, c: usize, d: usize) {
            x[a] = add32(x[a], x[b]);
            x[d] = rotl16(xor(x[d], x[a]));
            x[c] = add32(x[c], x[d]);
            x[b] = rotl12(xor(x[b], x[c]));
            x[a] = add32(x[a], x[b]);
            x[d] = rotl8(xor(x[d], x[a]));
            x[c] = add32(x[c], x[d]);
            x[b] = rotl7(xor(x[b], x[c]));
        }

        /// Block `counter` of every lane's keystream (RFC 8439 section
        /// 2.3), word major.
        #[inline]
        #[target_feature(enable = $feat)]
        fn chacha_block(init: &[V; 16], counter: u32) -> [V; 16] {
            let mut input = *init;
            input[12] = splat32(counter);
            let mut x = input;
            for _ in 0..10 {
                quarter(&mut x, 0, 4, 8, 12);
                quarter(&mut x, 1, 5, 9, 13);
                quarter(&mut x, 2, 6, 10, 14);
                quarter(&mut x, 3, 7, 11, 15);
                quarter(&mut x, 0, 5, 10, 15);
                quarter(&mut x, 1, 6, 11, 12);
                quarter(&mut x, 2, 7, 8, 13);
                quarter(&mut x, 3, 4, 9, 14);
            }
            for i in 0..16 {
                x[i] = add32(x[i], input[i]);
            }
            x
        }

        #[inline]
        #[target_feature(enable = $feat)]
        fn init(state: &State) -> [V; 16] {
            let mut v = [splat32(0); 16];
            for i in 0..16 {
                let mut w = [0u32; LANES];
                w.copy_from_slice(&state.words[i][..LANES]);
                v[i] = load32(&w);
            }
            v
        }

        /// Each lane's Poly1305 one-time key, the first 32 bytes of its
        /// block 0 (RFC 8439 section 2.6).
        #[target_feature(enable = $feat)]
        pub(crate) fn poly_keys(state: &State) -> [[u8; 32]; MAX_LANES] {
            let x = chacha_block(&init(state), 0);
            let mut ks = [[0u8; 64]; LANES];
            transpose(&x, &mut ks);
            let mut out = [[0u8; 32]; MAX_LANES];
            for l in 0..LANES {
                out[l].copy_from_slice(&ks[l][..32]);
            }
            ks.zeroize();
            out
        }

        /// XORs keystream blocks 1, 2, ... into the data of the lanes whose
        /// bit is set in `lanes` (RFC 8439 section 2.4); blocks run to the
        /// longest such lane, shorter lanes take what covers them.
        #[target_feature(enable = $feat)]
        pub(crate) fn xor_stream<J: Lane>(state: &State, pass: &mut [J], lanes: u32) {
            let init = init(state);
            let on = |l: usize| (lanes >> l) & 1 == 1;
            let longest = pass
                .iter()
                .enumerate()
                .filter(|&(l, _)| on(l))
                .map(|(_, j)| j.data().len())
                .max()
                .unwrap_or(0);
            let mut ks = [[0u8; 64]; LANES];
            for b in 0..longest.div_ceil(64) {
                // Lengths are at most MAX_LEN, so the counter stays small.
                let x = chacha_block(&init, b as u32 + 1);
                transpose(&x, &mut ks);
                for (l, job) in pass.iter_mut().enumerate() {
                    if !on(l) {
                        continue;
                    }
                    let data = job.data_mut();
                    let start = (b * 64).min(data.len());
                    let rest = &mut data[start..];
                    if let Some(full) = rest.first_chunk_mut::<64>() {
                        for i in 0..64 {
                            full[i] ^= ks[l][i];
                        }
                    } else {
                        for (d, k) in rest.iter_mut().zip(ks[l].iter()) {
                            *d ^= *k;
                        }
                    }
                }
            }
            ks.zeroize();
        }

        /// (h + m) * r mod 2^130 - 5, partly reduced, in 26-bit limbs
        /// (RFC 8439 section 2.5; the limb schedule of poly1305-donna):
        /// `s` holds 5 r. Limbs stay below 2^27, products below 2^58.
        #[inline]
        #[target_feature(enable = $feat)]
        fn mul_reduce(h: &[V; 5], r: &[V; 5], s: &[V; 5]) -> [V; 5] {
            let m = |a: V, b: V| mul32(a, b);
            let d0 = add64(
                add64(
                    add64(m(h[0], r[0]), m(h[1], s[4])),
                    add64(m(h[2], s[3]), m(h[3], s[2])),
                ),
                m(h[4], s[1]),
            );
            let d1 = add64(
                add64(
                    add64(m(h[0], r[1]), m(h[1], r[0])),
                    add64(m(h[2], s[4]), m(h[3], s[3])),
                ),
                m(h[4], s[2]),
            );
            let d2 = add64(
                add64(
                    add64(m(h[0], r[2]), m(h[1], r[1])),
                    add64(m(h[2], r[0]), m(h[3], s[4])),
                ),
                m(h[4], s[3]),
            );
            let d3 = add64(
                add64(
                    add64(m(h[0], r[3]), m(h[1], r[2])),
                    add64(m(h[2], r[1]), m(h[3], r[0])),
                ),
                m(h[4], s[4]),
            );
            let d4 = add64(
                add64(
                    add64(m(h[0], r[4]), m(h[1], r[3])),
                    add64(m(h[2], r[2]), m(h[3], r[1])),
                ),
                m(h[4], r[0]),
            );
            let mask = splat64(M26 as u64);
            let d1 = add64(d1, srl26(d0));
            let d2 = add64(d2, srl26(d1));
            let d3 = add64(d3, srl26(d2));
            let d4 = add64(d4, srl26(d3));
            let c = srl26(d4);
            // 2^130 = 5 mod p: the carry out of the top limb comes back x5.
            let h0 = add64(and(d0, mask), add64(sll2(c), c));
            let h1 = add64(and(d1, mask), srl26(h0));
            [
                and(h0, mask),
                h1,
                and(d2, mask),
                and(d3, mask),
                and(d4, mask),
            ]
        }

        /// Each lane's tag over its padded additional data, ciphertext and
        /// lengths (RFC 8439 section 2.8), keyed by `keys`: one block per
        /// lane per step; a lane whose message has ended keeps its
        /// accumulator (a mask, not a branch).
        #[target_feature(enable = $feat)]
        pub(crate) fn mac<J: Lane>(
            pass: &[J],
            keys: &[[u8; 32]; MAX_LANES],
        ) -> [[u8; 16]; MAX_LANES] {
            let mut r = [[[0u64; HALF]; 5]; 2];
            let mut nb = [0usize; LANES];
            for (l, job) in pass.iter().enumerate() {
                let limbs = common::r26(&keys[l]);
                for i in 0..5 {
                    r[l / HALF][i][l % HALF] = u64::from(limbs[i]);
                }
                nb[l] = common::blocks(job.aad(), job.data());
            }
            let mut rv = [[splat64(0); 5]; 2];
            let mut sv = [[splat64(0); 5]; 2];
            for g in 0..2 {
                for i in 0..5 {
                    rv[g][i] = load64(&r[g][i]);
                    sv[g][i] = add64(sll2(rv[g][i]), rv[g][i]);
                }
            }
            r.zeroize();
            let mut h = [[splat64(0); 5]; 2];
            let steps = nb.iter().copied().max().unwrap_or(0);
            let mut lo = [[0u64; HALF]; 2];
            let mut hi = [[0u64; HALF]; 2];
            let mut live = [[0u64; HALF]; 2];
            for t in 0..steps {
                for (l, job) in pass.iter().enumerate() {
                    let (g, i) = (l / HALF, l % HALF);
                    if t < nb[l] {
                        (lo[g][i], hi[g][i]) = common::block(job.aad(), job.data(), t);
                        live[g][i] = u64::MAX;
                    } else {
                        (lo[g][i], hi[g][i], live[g][i]) = (0, 0, 0);
                    }
                }
                for g in 0..2 {
                    let (a, b) = (load64(&lo[g]), load64(&hi[g]));
                    let mask = splat64(M26 as u64);
                    // The block in 26-bit limbs, with its 2^128 bit.
                    let m = [
                        and(a, mask),
                        and(srl26(a), mask),
                        and(or(srl52(a), sll12(b)), mask),
                        and(srl14(b), mask),
                        or(srl40(b), splat64(1 << 24)),
                    ];
                    let mut sum = h[g];
                    for i in 0..5 {
                        sum[i] = add64(sum[i], m[i]);
                    }
                    let next = mul_reduce(&sum, &rv[g], &sv[g]);
                    let keep = load64(&live[g]);
                    for i in 0..5 {
                        h[g][i] = or(and(keep, next[i]), andnot(keep, h[g][i]));
                    }
                }
            }
            lo.zeroize();
            hi.zeroize();
            let mut out = [[0u8; 16]; MAX_LANES];
            let mut limbs = [[[0u64; HALF]; 5]; 2];
            for g in 0..2 {
                for i in 0..5 {
                    limbs[g][i] = store64(h[g][i]);
                }
            }
            for l in 0..pass.len() {
                let (g, i) = (l / HALF, l % HALF);
                let acc = [0, 1, 2, 3, 4].map(|k| limbs[g][k][i]);
                out[l] = common::finish26(acc, &keys[l]);
            }
            limbs.zeroize();
            out
        }
    };
}

/// 16 lanes in 512-bit vectors (AVX-512 F).
pub(crate) mod avx512 {
    use super::*;
    use std::arch::x86_64::*;

    pub(super) type V = __m512i;
    const LANES: usize = 16;
    pub(super) const HALF: usize = 8;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn splat32(x: u32) -> V {
        _mm512_set1_epi32(x as i32)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add32(a: V, b: V) -> V {
        _mm512_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn xor(a: V, b: V) -> V {
        _mm512_xor_si512(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rotl16(a: V) -> V {
        _mm512_rol_epi32::<16>(a)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rotl12(a: V) -> V {
        _mm512_rol_epi32::<12>(a)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rotl8(a: V) -> V {
        _mm512_rol_epi32::<8>(a)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn rotl7(a: V) -> V {
        _mm512_rol_epi32::<7>(a)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn splat64(x: u64) -> V {
        _mm512_set1_epi64(x as i64)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn add64(a: V, b: V) -> V {
        _mm512_add_epi64(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn and(a: V, b: V) -> V {
        _mm512_and_si512(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn or(a: V, b: V) -> V {
        _mm512_or_si512(a, b)
    }
    /// `!a & b`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn andnot(a: V, b: V) -> V {
        _mm512_andnot_si512(a, b)
    }
    /// Low 32 bits of each u64 lane multiplied into 64.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mul32(a: V, b: V) -> V {
        _mm512_mul_epu32(a, b)
    }
    macro_rules! shifts {
        ($($name:ident $op:ident $n:literal),*) => {$(
            #[inline]
            #[target_feature(enable = "avx512f")]
            pub(super) fn $name(a: V) -> V {
                $op::<$n>(a)
            }
        )*};
    }
    shifts!(srl26 _mm512_srli_epi64 26, srl52 _mm512_srli_epi64 52, srl14 _mm512_srli_epi64 14,
        srl40 _mm512_srli_epi64 40, sll12 _mm512_slli_epi64 12, sll2 _mm512_slli_epi64 2,
        srl44 _mm512_srli_epi64 44, srl42 _mm512_srli_epi64 42, srl24 _mm512_srli_epi64 24,
        sll20 _mm512_slli_epi64 20, sll8 _mm512_slli_epi64 8, sll10 _mm512_slli_epi64 10);

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load32(a: &[u32; LANES]) -> V {
        // SAFETY: `a` is 64 readable bytes; the load has no alignment
        // requirement.
        unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn load64(a: &[u64; HALF]) -> V {
        // SAFETY: `a` is 64 readable bytes; unaligned load.
        unsafe { _mm512_loadu_si512(a.as_ptr().cast()) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) fn store64(v: V) -> [u64; HALF] {
        let mut out = [0u64; HALF];
        // SAFETY: `out` is 64 writable bytes; unaligned store.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), v) };
        out
    }

    /// The 16x16 word transpose: `x[i]` holds word `i` of every lane; lane
    /// `l`'s 64-byte block goes to `out[l]`. Pairs of words, then quads
    /// (unpack), then 128-bit quarters (two shuffles).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn transpose(x: &[V; 16], out: &mut [[u8; 64]; LANES]) {
        // a[g][j]: words 4g..4g+4 of lanes j, 4+j, 8+j, 12+j (one per quarter).
        let mut a = [[splat32(0); 4]; 4];
        for g in 0..4 {
            let r = &x[4 * g..4 * g + 4];
            let t0 = _mm512_unpacklo_epi32(r[0], r[1]);
            let t1 = _mm512_unpackhi_epi32(r[0], r[1]);
            let t2 = _mm512_unpacklo_epi32(r[2], r[3]);
            let t3 = _mm512_unpackhi_epi32(r[2], r[3]);
            a[g] = [
                _mm512_unpacklo_epi64(t0, t2),
                _mm512_unpackhi_epi64(t0, t2),
                _mm512_unpacklo_epi64(t1, t3),
                _mm512_unpackhi_epi64(t1, t3),
            ];
        }
        for j in 0..4 {
            let p = _mm512_shuffle_i32x4::<0x88>(a[0][j], a[1][j]);
            let q = _mm512_shuffle_i32x4::<0x88>(a[2][j], a[3][j]);
            let p2 = _mm512_shuffle_i32x4::<0xdd>(a[0][j], a[1][j]);
            let q2 = _mm512_shuffle_i32x4::<0xdd>(a[2][j], a[3][j]);
            let lanes = [
                (j, _mm512_shuffle_i32x4::<0x88>(p, q)),
                (8 + j, _mm512_shuffle_i32x4::<0xdd>(p, q)),
                (4 + j, _mm512_shuffle_i32x4::<0x88>(p2, q2)),
                (12 + j, _mm512_shuffle_i32x4::<0xdd>(p2, q2)),
            ];
            for (l, v) in lanes {
                // SAFETY: `out[l]` is 64 writable bytes; unaligned store.
                unsafe { _mm512_storeu_si512(out[l].as_mut_ptr().cast(), v) };
            }
        }
    }

    kernel!("avx512f");
}

/// 16 lanes of ChaCha20 as in [`avx512`]; Poly1305 in three 44-bit limbs
/// multiplied with AVX-512 IFMA's 52-bit multiply-add (the limb schedule of
/// OpenSSL's poly1305-x86_64 IFMA code).
pub(crate) mod ifma {
    use super::avx512::*;
    use super::*;
    use std::arch::x86_64::*;

    const M44: u64 = (1 << 44) - 1;
    const M42: u64 = (1 << 42) - 1;

    /// (h + m) * r mod 2^130 - 5, partly reduced, limbs 44/44/42 bits:
    /// `s1`, `s2` are 20 r1, 20 r2 (2^132 = 20 mod p). r's clamping keeps
    /// every high half below 2^41, so the shifted sums stay in 64 bits.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mul_reduce(h: &[V; 3], r: &[V; 3], s1: V, s2: V) -> [V; 3] {
        let z = splat64(0);
        let lo = |acc: V, a: V, b: V| _mm512_madd52lo_epu64(acc, a, b);
        let hi = |acc: V, a: V, b: V| _mm512_madd52hi_epu64(acc, a, b);
        let lo0 = lo(lo(lo(z, h[0], r[0]), h[1], s2), h[2], s1);
        let hi0 = hi(hi(hi(z, h[0], r[0]), h[1], s2), h[2], s1);
        let lo1 = lo(lo(lo(z, h[0], r[1]), h[1], r[0]), h[2], s2);
        let hi1 = hi(hi(hi(z, h[0], r[1]), h[1], r[0]), h[2], s2);
        let lo2 = lo(lo(lo(z, h[0], r[2]), h[1], r[1]), h[2], r[0]);
        let hi2 = hi(hi(hi(z, h[0], r[2]), h[1], r[1]), h[2], r[0]);
        // A high half weighs 2^52 more than its low half: 2^8 into the
        // next limb up.
        let c0 = lo0;
        let c1 = add64(add64(lo1, sll8(hi0)), srl44(c0));
        let c2 = add64(add64(lo2, sll8(hi1)), srl44(c1));
        // What reaches 2^130: the top of c2 and hi2 (weight 2^140 = 2^10
        // 2^130); it comes back x5.
        let top = add64(srl42(c2), sll10(hi2));
        let c0 = add64(and(c0, splat64(M44)), add64(sll2(top), top));
        let c1 = add64(and(c1, splat64(M44)), srl44(c0));
        [and(c0, splat64(M44)), c1, and(c2, splat64(M42))]
    }

    /// As the 26-bit kernels' `mac`, in 44-bit limbs.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub(crate) fn mac<J: Lane>(pass: &[J], keys: &[[u8; 32]; MAX_LANES]) -> [[u8; 16]; MAX_LANES] {
        let mut r = [[[0u64; HALF]; 3]; 2];
        let mut nb = [0usize; MAX_LANES];
        for (l, job) in pass.iter().enumerate() {
            let k = &keys[l];
            let lo =
                u64::from_le_bytes(k[0..8].try_into().unwrap_or([0; 8])) & 0x0fff_fffc_0fff_ffff;
            let hi =
                u64::from_le_bytes(k[8..16].try_into().unwrap_or([0; 8])) & 0x0fff_fffc_0fff_fffc;
            let limbs = split44(lo, hi, 0);
            for i in 0..3 {
                r[l / HALF][i][l % HALF] = limbs[i];
            }
            nb[l] = common::blocks(job.aad(), job.data());
        }
        let mut rv = [[splat64(0); 3]; 2];
        let mut s1 = [splat64(0); 2];
        let mut s2 = [splat64(0); 2];
        for g in 0..2 {
            for i in 0..3 {
                rv[g][i] = load64(&r[g][i]);
            }
            // 20 r = 4 (5 r).
            let five1 = add64(sll2(rv[g][1]), rv[g][1]);
            let five2 = add64(sll2(rv[g][2]), rv[g][2]);
            s1[g] = sll2(five1);
            s2[g] = sll2(five2);
        }
        r.zeroize();
        let mut h = [[splat64(0); 3]; 2];
        let steps = nb.iter().copied().max().unwrap_or(0);
        let mut lo = [[0u64; HALF]; 2];
        let mut hi = [[0u64; HALF]; 2];
        let mut live = [[0u64; HALF]; 2];
        for t in 0..steps {
            for (l, job) in pass.iter().enumerate() {
                let (g, i) = (l / HALF, l % HALF);
                if t < nb[l] {
                    (lo[g][i], hi[g][i]) = common::block(job.aad(), job.data(), t);
                    live[g][i] = u64::MAX;
                } else {
                    (lo[g][i], hi[g][i], live[g][i]) = (0, 0, 0);
                }
            }
            for g in 0..2 {
                let (a, b) = (load64(&lo[g]), load64(&hi[g]));
                // The block in 44/44/42-bit limbs, with its 2^128 bit.
                let m = [
                    and(a, splat64(M44)),
                    and(or(srl44(a), sll20(b)), splat64(M44)),
                    or(srl24(b), splat64(1 << 40)),
                ];
                let sum = [
                    add64(h[g][0], m[0]),
                    add64(h[g][1], m[1]),
                    add64(h[g][2], m[2]),
                ];
                let next = mul_reduce(&sum, &rv[g], s1[g], s2[g]);
                let keep = load64(&live[g]);
                for i in 0..3 {
                    h[g][i] = or(and(keep, next[i]), andnot(keep, h[g][i]));
                }
            }
        }
        lo.zeroize();
        hi.zeroize();
        let mut out = [[0u8; 16]; MAX_LANES];
        let mut limbs = [[[0u64; HALF]; 3]; 2];
        for g in 0..2 {
            for i in 0..3 {
                limbs[g][i] = store64(h[g][i]);
            }
        }
        for l in 0..pass.len() {
            let (g, i) = (l / HALF, l % HALF);
            let acc = [limbs[g][0][i], limbs[g][1][i], limbs[g][2][i]];
            out[l] = common::finish26(to26(acc), &keys[l]);
        }
        limbs.zeroize();
        out
    }

    /// 128 bits and the bit 2^128 in limbs of 44, 44 and 42 bits.
    fn split44(lo: u64, hi: u64, top: u64) -> [u64; 3] {
        [
            lo & M44,
            ((lo >> 44) | (hi << 20)) & M44,
            (hi >> 24) | (top << 40),
        ]
    }

    /// A 44/44/42-bit accumulator (each limb below 2^52) as 26-bit limbs
    /// for the shared final reduction.
    fn to26(h: [u64; 3]) -> [u64; 5] {
        let mut h = h;
        h[1] += h[0] >> 44;
        h[0] &= M44;
        h[2] += h[1] >> 44;
        h[1] &= M44;
        h[0] += (h[2] >> 42) * 5;
        h[2] &= M42;
        h[1] += h[0] >> 44;
        h[0] &= M44;
        let m = u64::from(M26);
        [
            h[0] & m,
            ((h[0] >> 26) | (h[1] << 18)) & m,
            (h[1] >> 8) & m,
            ((h[1] >> 34) | (h[2] << 10)) & m,
            h[2] >> 16,
        ]
    }
}

/// 8 lanes in 256-bit vectors (AVX2).
pub(crate) mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    type V = __m256i;
    const LANES: usize = 8;
    const HALF: usize = 4;

    #[inline]
    #[target_feature(enable = "avx2")]
    fn splat32(x: u32) -> V {
        _mm256_set1_epi32(x as i32)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn add32(a: V, b: V) -> V {
        _mm256_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn xor(a: V, b: V) -> V {
        _mm256_xor_si256(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl16(a: V) -> V {
        let k = _mm256_setr_epi8(
            2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11,
            8, 9, 14, 15, 12, 13,
        );
        _mm256_shuffle_epi8(a, k)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl12(a: V) -> V {
        _mm256_or_si256(_mm256_slli_epi32::<12>(a), _mm256_srli_epi32::<20>(a))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl8(a: V) -> V {
        let k = _mm256_setr_epi8(
            3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9,
            10, 15, 12, 13, 14,
        );
        _mm256_shuffle_epi8(a, k)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn rotl7(a: V) -> V {
        _mm256_or_si256(_mm256_slli_epi32::<7>(a), _mm256_srli_epi32::<25>(a))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn splat64(x: u64) -> V {
        _mm256_set1_epi64x(x as i64)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn add64(a: V, b: V) -> V {
        _mm256_add_epi64(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn and(a: V, b: V) -> V {
        _mm256_and_si256(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn or(a: V, b: V) -> V {
        _mm256_or_si256(a, b)
    }
    /// `!a & b`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn andnot(a: V, b: V) -> V {
        _mm256_andnot_si256(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn mul32(a: V, b: V) -> V {
        _mm256_mul_epu32(a, b)
    }
    macro_rules! shifts {
        ($($name:ident $op:ident $n:literal),*) => {$(
            #[inline]
            #[target_feature(enable = "avx2")]
            fn $name(a: V) -> V {
                $op::<$n>(a)
            }
        )*};
    }
    shifts!(srl26 _mm256_srli_epi64 26, srl52 _mm256_srli_epi64 52, srl14 _mm256_srli_epi64 14,
        srl40 _mm256_srli_epi64 40, sll12 _mm256_slli_epi64 12, sll2 _mm256_slli_epi64 2);

    #[inline]
    #[target_feature(enable = "avx2")]
    fn load32(a: &[u32; LANES]) -> V {
        // SAFETY: `a` is 32 readable bytes; unaligned load.
        unsafe { _mm256_loadu_si256(a.as_ptr().cast()) }
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn load64(a: &[u64; HALF]) -> V {
        // SAFETY: `a` is 32 readable bytes; unaligned load.
        unsafe { _mm256_loadu_si256(a.as_ptr().cast()) }
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn store64(v: V) -> [u64; HALF] {
        let mut out = [0u64; HALF];
        // SAFETY: `out` is 32 writable bytes; unaligned store.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
        out
    }

    /// Two 8x8 word transposes: words 0-7 of lane `l` to `out[l][..32]`,
    /// words 8-15 to `out[l][32..]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn transpose(x: &[V; 16], out: &mut [[u8; 64]; LANES]) {
        for half in 0..2 {
            let r = &x[8 * half..8 * half + 8];
            let mut u = [splat32(0); 8];
            for q in 0..2 {
                let r = &r[4 * q..4 * q + 4];
                let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
                let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
                let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
                let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
                // Words 4q..4q+4 of lanes (0|4), (1|5), (2|6), (3|7).
                u[4 * q] = _mm256_unpacklo_epi64(t0, t2);
                u[4 * q + 1] = _mm256_unpackhi_epi64(t0, t2);
                u[4 * q + 2] = _mm256_unpacklo_epi64(t1, t3);
                u[4 * q + 3] = _mm256_unpackhi_epi64(t1, t3);
            }
            for j in 0..4 {
                let lanes = [
                    (j, _mm256_permute2x128_si256::<0x20>(u[j], u[4 + j])),
                    (4 + j, _mm256_permute2x128_si256::<0x31>(u[j], u[4 + j])),
                ];
                for (l, v) in lanes {
                    // SAFETY: `out[l][32 * half..]` is 32 writable bytes;
                    // unaligned store.
                    unsafe { _mm256_storeu_si256(out[l][32 * half..].as_mut_ptr().cast(), v) };
                }
            }
        }
    }

    kernel!("avx2");
}
