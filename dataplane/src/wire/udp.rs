//! UDP headers (RFC 768) and their checksum over the IPv4 and IPv6
//! pseudo-headers.
//!
//! Zero-checksum rules: over IPv4 a checksum field of 0 means "no checksum"
//! and is accepted; over IPv6 the checksum is mandatory (RFC 8200 section
//! 8.1) and 0 is rejected. A computed checksum of 0 is transmitted as 0xffff,
//! its other ones'-complement representation, in both families.

use super::{checksum, get_u16, ip_protocol, set_u16, slice, slice_mut, ParseError};

/// Byte ranges of the UDP header fields.
pub mod field {
    use core::ops::Range;

    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header and payload.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram. The buffer may extend past the UDP length;
/// [`Packet::payload`] stops at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Views `buffer` as a UDP datagram: the 8-byte header is present, the
    /// length field covers the header and is present. The checksum is not
    /// checked here (it needs the IP addresses).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let len = usize::from(get_u16(b, field::LENGTH));
        if len < HEADER_LEN {
            return Err(ParseError::BadUdpLength);
        }
        if b.len() < len {
            return Err(ParseError::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header plus payload, in bytes.
    pub fn length(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to the length field.
    pub fn payload(&self) -> &[u8] {
        slice(self.buffer.as_ref(), HEADER_LEN..usize::from(self.length()))
    }

    /// Header and payload, up to the length field.
    fn datagram(&self) -> &[u8] {
        slice(self.buffer.as_ref(), 0..usize::from(self.length()))
    }

    /// The checksum field value for this datagram given an accumulated
    /// pseudo-header: computed as if the field were zero, 0 sent as 0xffff.
    fn compute(&self, pseudo: u64) -> u16 {
        let d = self.datagram();
        let acc = checksum::add(pseudo, slice(d, 0..field::CHECKSUM.start));
        let acc = checksum::add(acc, slice(d, field::CHECKSUM.end..d.len()));
        match checksum::finish(acc) {
            0 => 0xffff,
            c => c,
        }
    }

    fn pseudo_v4(&self, src: [u8; 4], dst: [u8; 4]) -> u64 {
        checksum::pseudo_header_v4(src, dst, ip_protocol::UDP, self.length())
    }

    fn pseudo_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> u64 {
        checksum::pseudo_header_v6(src, dst, ip_protocol::UDP, u32::from(self.length()))
    }

    /// The checksum to send over IPv4 from `src` to `dst` (never 0).
    pub fn compute_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> u16 {
        self.compute(self.pseudo_v4(src, dst))
    }

    /// The checksum to send over IPv6 from `src` to `dst` (never 0).
    pub fn compute_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> u16 {
        self.compute(self.pseudo_v6(src, dst))
    }

    /// Whether the checksum is acceptable over IPv4: 0 (none) or correct.
    pub fn verify_checksum_v4(&self, src: [u8; 4], dst: [u8; 4]) -> bool {
        self.checksum() == 0
            || checksum::fold(checksum::add(self.pseudo_v4(src, dst), self.datagram())) == 0xffff
    }

    /// Whether the checksum is correct over IPv6, where 0 is not allowed.
    pub fn verify_checksum_v6(&self, src: &[u8; 16], dst: &[u8; 16]) -> bool {
        self.checksum() != 0
            && checksum::fold(checksum::add(self.pseudo_v6(src, dst), self.datagram())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port (the checksum is not updated).
    pub fn set_src_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port (the checksum is not updated).
    pub fn set_dst_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the checksum field (0 means none, over IPv4 only).
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes and stores the checksum for IPv4 from `src` to `dst`.
    pub fn fill_checksum_v4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        let c = self.compute_checksum_v4(src, dst);
        self.set_checksum(c);
    }

    /// Computes and stores the checksum for IPv6 from `src` to `dst`.
    pub fn fill_checksum_v6(&mut self, src: &[u8; 16], dst: &[u8; 16]) {
        let c = self.compute_checksum_v6(src, dst);
        self.set_checksum(c);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        slice_mut(self.buffer.as_mut(), HEADER_LEN..end)
    }
}

/// The fields of a UDP header, to write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of the payload that follows the header.
    pub payload_len: usize,
}

impl Repr {
    /// Writes the 8-byte header at the start of `buf`, with checksum 0, and
    /// returns its length; fill the checksum afterwards with a view over the
    /// datagram if one is wanted. Fails with [`ParseError::BadUdpLength`] if
    /// the datagram would exceed 65535 bytes and [`ParseError::Truncated`] if
    /// `buf` is shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ParseError> {
        let len = HEADER_LEN
            .checked_add(self.payload_len)
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(ParseError::BadUdpLength)?;
        let h = buf.get_mut(..HEADER_LEN).ok_or(ParseError::Truncated)?;
        set_u16(h, field::SRC_PORT, self.src_port);
        set_u16(h, field::DST_PORT, self.dst_port);
        set_u16(h, field::LENGTH, len);
        set_u16(h, field::CHECKSUM, 0);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC4: [u8; 4] = [192, 0, 2, 1];
    const DST4: [u8; 4] = [198, 51, 100, 2];
    const PAYLOAD: &[u8] = b"wgdp known answer";

    fn v6(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = last;
        a
    }

    /// 51820 -> 12345 carrying `PAYLOAD` (17 bytes, an odd length), with
    /// the given checksum field.
    fn datagram(check: u16) -> [u8; 25] {
        let mut b = [0u8; 25];
        b[..8].copy_from_slice(&[0xca, 0x6c, 0x30, 0x39, 0x00, 25, 0, 0]);
        b[6..8].copy_from_slice(&check.to_be_bytes());
        b[8..].copy_from_slice(PAYLOAD);
        b
    }

    /// Naive byte-wise checksum over pseudo-header bytes and datagram.
    fn naive_checksum(parts: &[&[u8]]) -> u16 {
        let mut sum: u32 = 0;
        for part in parts {
            for (i, &b) in part.iter().enumerate() {
                sum += if i % 2 == 0 {
                    u32::from(b) << 8
                } else {
                    u32::from(b)
                };
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn ipv4_checksum_known_answer() {
        // 0xbe83 from an independent implementation (Python, RFC 1071).
        let b = datagram(0);
        let mut ph = [0u8; 12];
        ph[..4].copy_from_slice(&SRC4);
        ph[4..8].copy_from_slice(&DST4);
        ph[9] = 17;
        ph[11] = 25;
        assert_eq!(naive_checksum(&[&ph, &b]), 0xbe83);
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.compute_checksum_v4(SRC4, DST4), 0xbe83);
        let good = datagram(0xbe83);
        let p = Packet::new_checked(&good[..]).expect("valid");
        assert!(p.verify_checksum_v4(SRC4, DST4));
        assert!(!p.verify_checksum_v4(SRC4, [198, 51, 100, 3]));
        let bad = datagram(0xbe84);
        let p = Packet::new_checked(&bad[..]).expect("valid");
        assert!(!p.verify_checksum_v4(SRC4, DST4));
    }

    #[test]
    fn ipv6_checksum_known_answer() {
        // 0x4f46 from an independent implementation (Python, RFC 1071).
        let (src, dst) = (v6(1), v6(2));
        let b = datagram(0);
        let mut ph = [0u8; 40];
        ph[..16].copy_from_slice(&src);
        ph[16..32].copy_from_slice(&dst);
        ph[35] = 25;
        ph[39] = 17;
        assert_eq!(naive_checksum(&[&ph, &b]), 0x4f46);
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.compute_checksum_v6(&src, &dst), 0x4f46);
        let good = datagram(0x4f46);
        let p = Packet::new_checked(&good[..]).expect("valid");
        assert!(p.verify_checksum_v6(&src, &dst));
        assert!(!p.verify_checksum_v6(&dst, &src.map(|b| b ^ 1)));
    }

    #[test]
    fn zero_checksum_means_none_over_ipv4_and_is_invalid_over_ipv6() {
        let b = datagram(0);
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert!(p.verify_checksum_v4(SRC4, DST4));
        assert!(!p.verify_checksum_v6(&v6(1), &v6(2)));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Make the sum come out at 0xffff: put the checksum of the rest in
        // a payload word, so the datagram's checksum computes to 0.
        for ipv6 in [false, true] {
            let mut b = datagram(0);
            b[8] = 0;
            b[9] = 0;
            let c = {
                let p = Packet::new_checked(&b[..]).expect("valid");
                if ipv6 {
                    p.compute_checksum_v6(&v6(1), &v6(2))
                } else {
                    p.compute_checksum_v4(SRC4, DST4)
                }
            };
            b[8..10].copy_from_slice(&c.to_be_bytes());
            let mut p = Packet::new_checked(&mut b[..]).expect("valid");
            if ipv6 {
                p.fill_checksum_v6(&v6(1), &v6(2));
                assert!(p.verify_checksum_v6(&v6(1), &v6(2)));
            } else {
                p.fill_checksum_v4(SRC4, DST4);
                assert!(p.verify_checksum_v4(SRC4, DST4));
            }
            assert_eq!(p.checksum(), 0xffff, "ipv6 {ipv6}");
        }
    }

    #[test]
    fn parses_the_header() {
        let b = datagram(0xbe83);
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.src_port(), 51820);
        assert_eq!(p.dst_port(), 12345);
        assert_eq!(p.length(), 25);
        assert_eq!(p.checksum(), 0xbe83);
        assert_eq!(p.payload(), PAYLOAD);
    }

    #[test]
    fn rejects_every_truncation_and_short_length() {
        let b = datagram(0);
        for n in 0..b.len() {
            assert_eq!(
                Packet::new_checked(&b[..n]),
                Err(ParseError::Truncated),
                "length {n}"
            );
        }
        for len in 0..8 {
            let mut s = datagram(0);
            s[5] = len;
            assert_eq!(Packet::new_checked(&s[..]), Err(ParseError::BadUdpLength));
        }
        let mut s = datagram(0);
        s[5] = 8;
        let p = Packet::new_checked(&s[..]).expect("header only");
        assert!(p.payload().is_empty());
    }

    #[test]
    fn emit_then_fill_checksum_matches_the_known_answer() {
        let mut b = [0u8; 25];
        b[8..].copy_from_slice(PAYLOAD);
        let repr = Repr {
            src_port: 51820,
            dst_port: 12345,
            payload_len: PAYLOAD.len(),
        };
        assert_eq!(repr.emit(&mut b), Ok(8));
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.fill_checksum_v4(SRC4, DST4);
        assert_eq!(p.checksum(), 0xbe83);
        p.fill_checksum_v6(&v6(1), &v6(2));
        assert_eq!(p.checksum(), 0x4f46);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.payload_mut()[0] = b'W';
        assert_eq!(b[..4], [0, 1, 0, 2]);
        assert_eq!(b[8], b'W');
        assert_eq!(repr.emit(&mut b[..7]), Err(ParseError::Truncated));
        let big = Repr {
            payload_len: 65528,
            ..repr
        };
        assert_eq!(big.emit(&mut b), Err(ParseError::BadUdpLength));
    }
}
