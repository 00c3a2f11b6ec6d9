//! BLAKE2s's compression for 16 inputs at once in AVX-512 F registers:
//! word `i` of the state (and of the message block) of every lane in one
//! register, so a round is the scalar round's additions, XORs and
//! rotations (`vprord`) on 16 lanes.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_loadu_si512, _mm512_mask_mov_epi32, _mm512_ror_epi32,
    _mm512_set1_epi32, _mm512_setzero_si512, _mm512_shuffle_i32x4, _mm512_storeu_si512,
    _mm512_unpackhi_epi32, _mm512_unpackhi_epi64, _mm512_unpacklo_epi32, _mm512_unpacklo_epi64,
    _mm512_xor_si512,
};

use zeroize::Zeroize;

use super::{Job, BLOCK, IV, MAX_LANES, SIGMA};

/// 16 lanes of 32 bits from an array.
#[inline]
#[target_feature(enable = "avx512f")]
fn load(words: &[u32; 16]) -> __m512i {
    // SAFETY: `words` is 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(words.as_ptr().cast()) }
}

/// The mixing function G (RFC 7693 section 3.1) on 16 lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn g(v: &mut [__m512i; 16], [a, b, c, d]: [usize; 4], x: __m512i, y: __m512i) {
    v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), x);
    v[d] = _mm512_ror_epi32::<16>(_mm512_xor_si512(v[d], v[a]));
    v[c] = _mm512_add_epi32(v[c], v[d]);
    v[b] = _mm512_ror_epi32::<12>(_mm512_xor_si512(v[b], v[c]));
    v[a] = _mm512_add_epi32(_mm512_add_epi32(v[a], v[b]), y);
    v[d] = _mm512_ror_epi32::<8>(_mm512_xor_si512(v[d], v[a]));
    v[c] = _mm512_add_epi32(v[c], v[d]);
    v[b] = _mm512_ror_epi32::<7>(_mm512_xor_si512(v[b], v[c]));
}

/// The compression function F (RFC 7693 section 3.2) on 16 lanes: `m`
/// the block's words, `t_lo`/`t_hi` each lane's byte count, `last` all
/// ones in a lane whose block is its last; a lane outside `active` keeps
/// its state.
#[inline]
#[target_feature(enable = "avx512f")]
fn compress(
    h: &mut [__m512i; 8],
    m: &[__m512i; 16],
    t_lo: __m512i,
    t_hi: __m512i,
    last: __m512i,
    active: u16,
) {
    let mut v = [_mm512_setzero_si512(); 16];
    v[..8].copy_from_slice(h);
    for (i, w) in IV.iter().enumerate() {
        v[8 + i] = _mm512_set1_epi32(*w as i32);
    }
    v[12] = _mm512_xor_si512(v[12], t_lo);
    v[13] = _mm512_xor_si512(v[13], t_hi);
    v[14] = _mm512_xor_si512(v[14], last);
    ten_rounds!(g, v, m);
    for i in 0..8 {
        let new = _mm512_xor_si512(h[i], _mm512_xor_si512(v[i], v[i + 8]));
        h[i] = _mm512_mask_mov_epi32(h[i], active, new);
    }
}

/// Rows `r[l]` (lane `l`'s 16 message words) to columns (word `w` of every
/// lane in register `w`): a 16x16 transpose of 32-bit words in four steps
/// of 16 shuffles.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose(r: &[__m512i; 16]) -> [__m512i; 16] {
    // Pairs of rows interleaved by word: in each 128-bit chunk k,
    // a[2i] = (r[2i][4k], r[2i+1][4k], r[2i][4k+1], r[2i+1][4k+1]) and
    // a[2i+1] the same of words 4k+2 and 4k+3.
    let mut a = [_mm512_setzero_si512(); 16];
    for i in 0..8 {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    // Quads: chunk k of b[4i+j] holds word 4k+j of rows 4i..4i+3.
    let mut b = [_mm512_setzero_si512(); 16];
    for i in 0..4 {
        b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    // Word 4k+j of all 16 rows: chunk k of b[j], b[4+j], b[8+j], b[12+j].
    let mut c = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let (p0, p1, p2, p3) = (b[j], b[4 + j], b[8 + j], b[12 + j]);
        let e0 = _mm512_shuffle_i32x4::<0x44>(p0, p1);
        let e1 = _mm512_shuffle_i32x4::<0xee>(p0, p1);
        let e2 = _mm512_shuffle_i32x4::<0x44>(p2, p3);
        let e3 = _mm512_shuffle_i32x4::<0xee>(p2, p3);
        c[j] = _mm512_shuffle_i32x4::<0x88>(e0, e2);
        c[4 + j] = _mm512_shuffle_i32x4::<0xdd>(e0, e2);
        c[8 + j] = _mm512_shuffle_i32x4::<0x88>(e1, e3);
        c[12 + j] = _mm512_shuffle_i32x4::<0xdd>(e1, e3);
    }
    c
}

/// One pass: the MACs of up to [`MAX_LANES`] jobs from the state `start`:
/// with `key_blocks`, each job's own key block comes first (`start` is the
/// state before any block); without, `start` is the state after the one
/// key's block, and jobs with an empty input are left alone (the caller
/// runs them: their last block is the key block).
///
/// # Safety
///
/// The CPU must have AVX-512 F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn pass(
    start: &[u32; 8],
    key_blocks: Option<&[[u8; BLOCK]; MAX_LANES]>,
    jobs: &mut [Job<'_>],
) {
    let lanes = jobs.len().min(MAX_LANES);
    let jobs = &mut jobs[..lanes];
    // Blocks before the input: the key block, when it is each job's own.
    let first = usize::from(key_blocks.is_some());
    let mut blocks = [0usize; MAX_LANES];
    for (b, j) in blocks.iter_mut().zip(jobs.iter()) {
        *b = first + j.input.len().div_ceil(BLOCK);
    }
    let most = blocks.iter().copied().max().unwrap_or(0);
    let mut h = [_mm512_setzero_si512(); 8];
    for (v, w) in h.iter_mut().zip(start) {
        *v = _mm512_set1_epi32(*w as i32);
    }
    let mut tail = [0u8; BLOCK];
    for k in 0..most {
        let mut rows = [_mm512_setzero_si512(); MAX_LANES];
        let (mut t_lo, mut t_hi, mut last) = ([0u32; 16], [0u32; 16], [0u32; 16]);
        let mut active = 0u16;
        for (l, job) in jobs.iter().enumerate() {
            if k >= blocks[l] {
                continue;
            }
            active |= 1 << l;
            if let (Some(keys), true) = (key_blocks, k < first) {
                // SAFETY: a key block is 64 readable bytes.
                rows[l] = unsafe { _mm512_loadu_si512(keys[l].as_ptr().cast()) };
                t_lo[l] = BLOCK as u32;
                if blocks[l] == 1 {
                    // An empty input: the key block is the last.
                    last[l] = u32::MAX;
                }
                continue;
            }
            let k = k - first;
            let rest = &job.input[k * BLOCK..];
            rows[l] = if let Some(block) = rest.get(..BLOCK) {
                // SAFETY: `block` is 64 readable bytes; the load is
                // unaligned.
                unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
            } else {
                // The last, partial block: zero-padded.
                tail.fill(0);
                tail[..rest.len()].copy_from_slice(rest);
                // SAFETY: `tail` is 64 readable bytes.
                unsafe { _mm512_loadu_si512(tail.as_ptr().cast()) }
            };
            // The key block's 64 bytes, then the input up to this block's end.
            let t = (BLOCK + k * BLOCK + rest.len().min(BLOCK)) as u64;
            t_lo[l] = t as u32;
            t_hi[l] = (t >> 32) as u32;
            if first + k + 1 == blocks[l] {
                last[l] = u32::MAX;
            }
        }
        let m = transpose(&rows);
        compress(&mut h, &m, load(&t_lo), load(&t_hi), load(&last), active);
    }
    tail.zeroize();
    // Words 0..4 of each lane's state: its MAC.
    let mut words = [[0u32; 16]; 4];
    for (out, v) in words.iter_mut().zip(&h) {
        // SAFETY: `out` is 64 writable bytes; the store is unaligned.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), *v) };
    }
    for (l, job) in jobs.iter_mut().enumerate() {
        if blocks[l] == 0 {
            continue;
        }
        for (i, word) in words.iter().enumerate() {
            job.mac[4 * i..4 * i + 4].copy_from_slice(&word[l].to_le_bytes());
        }
    }
    words.zeroize();
}
