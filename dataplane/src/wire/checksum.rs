//! The Internet checksum (RFC 1071): ones'-complement sums shared by IPv4,
//! UDP and ICMP.
//!
//! Sums are carried in a `u64` accumulator holding big-endian word values.
//! [`add`] reads the data eight bytes at a time as `u64` lanes; because 2^32
//! and 2^64 are 1 modulo 0xffff, adding wide lanes (with end-around carry
//! where a sum could overflow) and folding down to 16 bits afterwards
//! ([`fold`]) gives the same value as summing 16-bit words one by one. Every slice given to [`add`] is taken to start on a 16-bit word
//! boundary of the checksummed data (an odd trailing byte is padded with
//! zero), which holds for headers, pseudo-headers and payloads as this crate
//! uses them.

/// Adds `data` to the ones'-complement accumulator `acc` and returns the new
/// accumulator. `data` starts on a 16-bit boundary; an odd last byte counts
/// as the high byte of a final word.
#[inline]
pub fn add(acc: u64, data: &[u8]) -> u64 {
    // Lanes are loaded in native byte order: the ones'-complement sum of
    // byte-swapped words is the byte-swapped sum (RFC 1071, section 2), so
    // the folded sum is swapped back once at the end. Each lane is split into
    // its 32-bit halves (2^32 is 1 modulo 0xffff, so hi * 2^32 + lo sums like
    // hi + lo), added into two plain u64 sums: independent add chains with no
    // carry to propagate, which the compiler can vectorise and which cannot
    // overflow below 32 GiB of data.
    let (mut hi, mut lo) = (0u64, 0u64);
    let mut lanes = data.chunks_exact(8);
    for lane in &mut lanes {
        let word = <[u8; 8]>::try_from(lane).map_or(0, u64::from_ne_bytes);
        hi += word >> 32;
        lo += word & 0xffff_ffff;
    }
    // The last 0-7 bytes as a native 32-bit and a native 16-bit word (a
    // word's place counts for nothing: 2^16 is 1 modulo 0xffff), and an odd
    // last byte as the high byte of a word padded with zero: the same sum as
    // a zero-padded lane, without copying the bytes into one.
    let rest = lanes.remainder();
    let (four, rest) = rest.split_at(rest.len() & 4);
    if let Ok(word) = <[u8; 4]>::try_from(four) {
        lo += u64::from(u32::from_ne_bytes(word));
    }
    let (two, rest) = rest.split_at(rest.len() & 2);
    if let Ok(word) = <[u8; 2]>::try_from(two) {
        lo += u64::from(u16::from_ne_bytes(word));
    }
    if let Some(&odd) = rest.first() {
        lo += u64::from(u16::from_ne_bytes([odd, 0]));
    }
    let native = fold(add_carry(hi, lo));
    add_u16(acc, u16::from_be(native))
}

/// Adds one 16-bit word (a header field in host order) to the accumulator.
#[inline]
pub fn add_u16(acc: u64, word: u16) -> u64 {
    add_carry(acc, u64::from(word))
}

/// 64-bit addition with end-around carry.
#[inline]
fn add_carry(acc: u64, word: u64) -> u64 {
    let (sum, carry) = acc.overflowing_add(word);
    // No overflow here: after a carry out, `sum` is at most 2^64 - 2.
    sum + u64::from(carry)
}

/// Folds a 64-bit accumulator to its 16-bit ones'-complement sum (not yet
/// complemented). A nonzero accumulator never folds to 0; a sum that is zero
/// modulo 0xffff folds to 0xffff.
#[inline]
pub fn fold(acc: u64) -> u16 {
    let mut sum = (acc >> 32) + (acc & 0xffff_ffff);
    sum = (sum >> 32) + (sum & 0xffff_ffff);
    sum = (sum >> 16) + (sum & 0xffff);
    sum = (sum >> 16) + (sum & 0xffff);
    // At most 0xffff now; the cast keeps every bit.
    sum as u16
}

/// The checksum field value for an accumulated sum: the complement of
/// [`fold`].
#[inline]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// The Internet checksum of `data`, as written into a checksum field whose
/// bytes inside `data` are zero.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// Whether `data`, checksum field included, sums to 0xffff (a valid
/// checksum).
#[inline]
pub fn verify(data: &[u8]) -> bool {
    fold(add(0, data)) == 0xffff
}

/// The accumulated IPv4 pseudo-header (RFC 768): addresses, protocol and the
/// upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, length: u16) -> u64 {
    let acc = add_carry(
        u64::from(u32::from_be_bytes(src)),
        u64::from(u32::from_be_bytes(dst)),
    );
    add_u16(add_u16(acc, u16::from(protocol)), length)
}

/// The accumulated IPv6 pseudo-header (RFC 8200 section 8.1): addresses, the
/// 32-bit upper-layer length and the next header value.
#[inline]
pub fn pseudo_header_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, length: u32) -> u64 {
    let acc = add(add(0, src), dst);
    add_u16(add_carry(acc, u64::from(length)), u16::from(next_header))
}

/// Updates checksum `check` after a 16-bit word of the covered data changed
/// from `old` to `new`, without touching the rest of the data (RFC 1624,
/// equation 3: `HC' = ~(~HC + ~m + m')`).
#[inline]
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    let acc = add_u16(add_u16(u64::from(!check), !old), new);
    finish(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook algorithm: 16-bit words one at a time, carries folded.
    fn naive_sum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i < data.len() {
            let hi = u32::from(data[i]) << 8;
            let lo = data.get(i + 1).map_or(0, |&b| u32::from(b));
            sum += hi | lo;
            sum = (sum & 0xffff) + (sum >> 16);
            i += 2;
        }
        sum as u16
    }

    /// xorshift64 for deterministic random data.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next() as u8;
            }
        }
    }

    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // The classic example header, checksum 0xb861 in bytes 10..12.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verify(&h));
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
        assert!(!verify(&h));
    }

    #[test]
    fn lane_sum_matches_naive_sum_on_every_length() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let mut buf = [0u8; 300];
        for len in 0..buf.len() {
            rng.fill(&mut buf[..len]);
            let data = &buf[..len];
            let naive = naive_sum(data);
            // The naive loop yields 0 only for all-zero data; we yield 0 too.
            assert_eq!(fold(add(0, data)), naive, "length {len}");
        }
    }

    #[test]
    fn sum_of_all_ones_does_not_lose_carries() {
        let data = [0xffu8; 4096];
        assert_eq!(fold(add(0, &data)), naive_sum(&data));
        // 2^64 - 2 is 0xfffe modulo 0xffff and the all-ones data adds 0, but
        // adding it to a nearly full accumulator carries out many times.
        assert_eq!(fold(add(u64::MAX - 1, &data)), 0xfffe);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0x1_0000), 1);
    }

    #[test]
    fn split_sums_equal_one_sum_at_even_boundaries() {
        let mut rng = Rng(99);
        let mut buf = [0u8; 257];
        rng.fill(&mut buf);
        for cut in (0..buf.len()).step_by(2) {
            let (a, b) = buf.split_at(cut);
            assert_eq!(fold(add(add(0, a), b)), fold(add(0, &buf)), "cut {cut}");
        }
    }

    #[test]
    fn incremental_update_equals_full_recomputation() {
        let mut rng = Rng(0xfeed);
        for _ in 0..10_000 {
            let mut h = [0u8; 20];
            rng.fill(&mut h);
            h[10] = 0;
            h[11] = 0;
            let check = checksum(&h);
            // Any word but the checksum field itself (bytes 10..12).
            let word = [0, 2, 4, 6, 8, 12, 14, 16, 18][(rng.next() % 9) as usize];
            let old = u16::from_be_bytes([h[word], h[word + 1]]);
            let new = rng.next() as u16;
            h[word..word + 2].copy_from_slice(&new.to_be_bytes());
            assert_eq!(update(check, old, new), checksum(&h), "word {word}");
        }
    }

    #[test]
    fn pseudo_headers_match_their_byte_layout() {
        let src4 = [192, 0, 2, 1];
        let dst4 = [198, 51, 100, 2];
        let mut ph4 = [0u8; 12];
        ph4[..4].copy_from_slice(&src4);
        ph4[4..8].copy_from_slice(&dst4);
        ph4[9] = 17;
        ph4[10..].copy_from_slice(&1234u16.to_be_bytes());
        assert_eq!(
            fold(pseudo_header_v4(src4, dst4, 17, 1234)),
            naive_sum(&ph4)
        );

        let mut src6 = [0u8; 16];
        let mut dst6 = [0u8; 16];
        Rng(5).fill(&mut src6);
        Rng(6).fill(&mut dst6);
        let mut ph6 = [0u8; 40];
        ph6[..16].copy_from_slice(&src6);
        ph6[16..32].copy_from_slice(&dst6);
        ph6[32..36].copy_from_slice(&0x0001_2345u32.to_be_bytes());
        ph6[39] = 17;
        assert_eq!(
            fold(pseudo_header_v6(&src6, &dst6, 17, 0x0001_2345)),
            naive_sum(&ph6)
        );
    }
}
