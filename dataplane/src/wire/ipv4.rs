//! IPv4 headers (RFC 791): validation, header checksum, TTL decrement with
//! incremental checksum update (RFC 1624), fragment detection.

use super::ParseError;
use super::{checksum, get_array, get_u16, get_u8, set_bytes, set_u16, set_u8, slice, slice_mut};

/// Byte ranges of the IPv4 header fields.
pub mod field {
    use core::ops::Range;

    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub const VER_IHL: usize = 0;
    /// DSCP (high 6 bits) and ECN (low 2 bits).
    pub const DSCP_ECN: usize = 1;
    /// Total length of the packet, header included.
    pub const LENGTH: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (high 3 bits) and fragment offset in 8-byte units.
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol of the payload.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC: Range<usize> = 12..16;
    /// Destination address.
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// The largest total length.
const MAX_TOTAL_LEN: usize = u16::MAX as usize;

/// Don't-fragment flag in the flags/offset field.
const FLAG_DF: u16 = 0x4000;
/// More-fragments flag in the flags/offset field.
const FLAG_MF: u16 = 0x2000;
/// Fragment offset bits in the flags/offset field.
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet. The buffer may extend past the total length
/// (Ethernet padding); [`Packet::payload`] stops at the total length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Views `buffer` as an IPv4 packet. Checks, in order: the 20-byte fixed
    /// header is present, the version is 4, the header length is at least 20
    /// and present, the total length covers the header and is present. The
    /// checksum is not checked here; see [`Packet::verify_checksum`].
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        let ver_ihl = get_u8(b, field::VER_IHL);
        if ver_ihl >> 4 != 4 {
            return Err(ParseError::BadVersion);
        }
        let header_len = usize::from(ver_ihl & 0x0f) * 4;
        if header_len < HEADER_LEN {
            return Err(ParseError::BadHeaderLength);
        }
        if b.len() < header_len {
            return Err(ParseError::Truncated);
        }
        let total_len = usize::from(get_u16(b, field::LENGTH));
        if total_len < header_len {
            return Err(ParseError::BadTotalLength);
        }
        if b.len() < total_len {
            return Err(ParseError::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn flags_frag(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::FLAGS_FRAG)
    }

    /// The version (always 4 in a checked view).
    pub fn version(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::VER_IHL) >> 4
    }

    /// Header length in bytes, options included (20 to 60).
    pub fn header_len(&self) -> usize {
        usize::from(get_u8(self.buffer.as_ref(), field::VER_IHL) & 0x0f) * 4
    }

    /// DSCP and ECN bits.
    pub fn dscp_ecn(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::DSCP_ECN)
    }

    /// Total length of the packet in bytes, header included.
    pub fn total_len(&self) -> usize {
        usize::from(get_u16(self.buffer.as_ref(), field::LENGTH))
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// The don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// The more-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        usize::from(self.flags_frag() & OFFSET_MASK) * 8
    }

    /// Whether this is a fragment: more-fragments set or a nonzero offset.
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::TTL)
    }

    /// Protocol of the payload (see [`super::ip_protocol`]).
    pub fn protocol(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::PROTOCOL)
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::DST)
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        slice(self.buffer.as_ref(), 0..self.header_len())
    }

    /// The options (empty when the header length is 20).
    pub fn options(&self) -> &[u8] {
        slice(self.buffer.as_ref(), HEADER_LEN..self.header_len())
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        slice(self.buffer.as_ref(), self.header_len()..self.total_len())
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header())
    }

    /// The header checksum the header should carry (computed as if the
    /// checksum field were zero).
    pub fn compute_checksum(&self) -> u16 {
        let h = self.header();
        let acc = checksum::add(0, slice(h, 0..field::CHECKSUM.start));
        checksum::finish(checksum::add(acc, slice(h, field::CHECKSUM.end..h.len())))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the DSCP and ECN bits (the checksum is not updated).
    pub fn set_dscp_ecn(&mut self, value: u8) {
        set_u8(self.buffer.as_mut(), field::DSCP_ECN, value);
    }

    /// Sets the identification (the checksum is not updated).
    pub fn set_ident(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::IDENT, value);
    }

    /// Sets the time to live (the checksum is not updated).
    pub fn set_ttl(&mut self, value: u8) {
        set_u8(self.buffer.as_mut(), field::TTL, value);
    }

    /// Sets the protocol (the checksum is not updated).
    pub fn set_protocol(&mut self, value: u8) {
        set_u8(self.buffer.as_mut(), field::PROTOCOL, value);
    }

    /// Sets the source address (the checksum is not updated).
    pub fn set_src_addr(&mut self, addr: [u8; 4]) {
        set_bytes(self.buffer.as_mut(), field::SRC, &addr);
    }

    /// Sets the destination address (the checksum is not updated).
    pub fn set_dst_addr(&mut self, addr: [u8; 4]) {
        set_bytes(self.buffer.as_mut(), field::DST, &addr);
    }

    /// Sets the header checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Recomputes the header checksum and stores it.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }

    /// Decrements the TTL, updating the checksum incrementally (RFC 1624).
    /// Returns `false`, leaving the packet unchanged, if the TTL is 0 or 1:
    /// such a packet must not be forwarded.
    pub fn decrement_ttl(&mut self) -> bool {
        let ttl = self.ttl();
        if ttl <= 1 {
            return false;
        }
        // TTL shares its 16-bit checksum word with the protocol.
        let protocol = u16::from(self.protocol());
        let old = (u16::from(ttl) << 8) | protocol;
        let new = (u16::from(ttl - 1) << 8) | protocol;
        let c = checksum::update(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(c);
        true
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..self.total_len();
        slice_mut(self.buffer.as_mut(), range)
    }
}

/// The fields of an IPv4 header without options, to write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
    /// Protocol of the payload.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN bits.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Whether to set the don't-fragment flag.
    pub dont_frag: bool,
    /// Length of the payload that follows the header.
    pub payload_len: usize,
}

impl Repr {
    /// Writes a 20-byte header with its checksum at the start of `buf` and
    /// returns its length. The payload is not touched. Fails with
    /// [`ParseError::BadTotalLength`] if the total length would exceed 65535
    /// and [`ParseError::Truncated`] if `buf` is shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ParseError> {
        let total = HEADER_LEN
            .checked_add(self.payload_len)
            .filter(|&t| t <= MAX_TOTAL_LEN)
            .ok_or(ParseError::BadTotalLength)?;
        let h = buf.get_mut(..HEADER_LEN).ok_or(ParseError::Truncated)?;
        set_u8(h, field::VER_IHL, 0x45);
        set_u8(h, field::DSCP_ECN, self.dscp_ecn);
        // `total` is at most 65535.
        set_u16(h, field::LENGTH, total as u16);
        set_u16(h, field::IDENT, self.ident);
        set_u16(
            h,
            field::FLAGS_FRAG,
            if self.dont_frag { FLAG_DF } else { 0 },
        );
        set_u8(h, field::TTL, self.ttl);
        set_u8(h, field::PROTOCOL, self.protocol);
        set_u16(h, field::CHECKSUM, 0);
        set_bytes(h, field::SRC, &self.src);
        set_bytes(h, field::DST, &self.dst);
        let c = checksum::checksum(h);
        set_u16(h, field::CHECKSUM, c);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ip_protocol;
    use super::*;

    /// Naive byte-wise Internet checksum, independent of `checksum`.
    fn naive_checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for (i, &b) in data.iter().enumerate() {
            sum += if i % 2 == 0 {
                u32::from(b) << 8
            } else {
                u32::from(b)
            };
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// ICMP echo request 10.0.0.1 -> 10.0.0.2, id 0x1234, seq 1, payload
    /// "abcdefgh"; IP checksum 0x7b09, ICMP checksum 0x5435.
    const ECHO: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x7b, 0x09, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, 0x61, 0x62,
        0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
    ];

    /// xorshift64 for deterministic random headers.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn parses_an_icmp_echo_request() {
        let p = Packet::new_checked(&ECHO[..]).expect("valid");
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 36);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.ident(), 0xabcd);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), ip_protocol::ICMP);
        assert_eq!(p.checksum(), 0x7b09);
        assert_eq!(p.src_addr(), [10, 0, 0, 1]);
        assert_eq!(p.dst_addr(), [10, 0, 0, 2]);
        assert!(p.options().is_empty());
        assert!(p.verify_checksum());
        assert_eq!(p.compute_checksum(), 0x7b09);
        let mut h = ECHO;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(naive_checksum(&h[..20]), 0x7b09);
        // The ICMP checksum over the payload checks out too.
        assert_eq!(naive_checksum(p.payload()), 0);
        assert!(checksum::verify(p.payload()));
        assert_eq!(&p.payload()[8..], b"abcdefgh");
    }

    #[test]
    fn payload_stops_at_the_total_length() {
        let mut b = [0u8; 60];
        b[..36].copy_from_slice(&ECHO);
        let p = Packet::new_checked(&b[..]).expect("valid with padding");
        assert_eq!(p.payload().len(), 16);
    }

    #[test]
    fn rejects_every_truncation() {
        for n in 0..ECHO.len() {
            assert_eq!(
                Packet::new_checked(&ECHO[..n]),
                Err(ParseError::Truncated),
                "length {n}"
            );
        }
    }

    #[test]
    fn rejects_bad_version_header_length_and_total_length() {
        let mut b = ECHO;
        b[0] = 0x65;
        assert_eq!(Packet::new_checked(&b[..]), Err(ParseError::BadVersion));
        for ihl in 0..5 {
            b[0] = 0x40 | ihl;
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(ParseError::BadHeaderLength)
            );
        }
        // IHL 15 (60 bytes) is longer than this 36-byte buffer.
        b[0] = 0x4f;
        assert_eq!(Packet::new_checked(&b[..]), Err(ParseError::Truncated));
        b[0] = 0x45;
        b[2] = 0;
        b[3] = 19;
        assert_eq!(Packet::new_checked(&b[..]), Err(ParseError::BadTotalLength));
        b[3] = 37;
        assert_eq!(Packet::new_checked(&b[..]), Err(ParseError::Truncated));
        b[3] = 20;
        let p = Packet::new_checked(&b[..]).expect("header only");
        assert!(p.payload().is_empty());
    }

    #[test]
    fn options_follow_the_header_length() {
        let mut b = [0u8; 28];
        b[0] = 0x46;
        b[3] = 28;
        b[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // router alert
        b[24..].copy_from_slice(b"data");
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), b"data");
        p.fill_checksum();
        assert!(p.verify_checksum());
        let c = p.checksum();
        let mut h = b;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(naive_checksum(&h[..24]), c);
    }

    #[test]
    fn detects_fragments() {
        let mut b = ECHO;
        let frag = |b: &[u8]| Packet::new_checked(b).expect("valid").is_fragment();
        assert!(!frag(&b));
        b[6] = 0x20; // MF, offset 0: first fragment
        assert!(frag(&b));
        assert_eq!(Packet::new_checked(&b[..]).expect("valid").frag_offset(), 0);
        b[6] = 0x00;
        b[7] = 0x01; // offset 8 bytes, last fragment
        assert!(frag(&b));
        assert_eq!(Packet::new_checked(&b[..]).expect("valid").frag_offset(), 8);
        b[6] = 0x40;
        b[7] = 0x00; // DF only
        assert!(!frag(&b));
        b[6] = 0x80; // reserved bit only
        assert!(!frag(&b));
    }

    #[test]
    fn decrement_ttl_keeps_the_checksum_valid() {
        let mut b = ECHO;
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        assert!(p.decrement_ttl());
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), p.compute_checksum());
        p.set_ttl(1);
        p.fill_checksum();
        assert!(!p.decrement_ttl());
        assert_eq!(p.ttl(), 1);
        assert!(p.verify_checksum());
        p.set_ttl(0);
        assert!(!p.decrement_ttl());
    }

    #[test]
    fn incremental_ttl_update_equals_recomputation_on_random_headers() {
        let mut rng = Rng(0x5eed_1234);
        for _ in 0..20_000 {
            let mut h = [0u8; HEADER_LEN];
            for b in h.iter_mut() {
                *b = rng.next() as u8;
            }
            h[0] = 0x45;
            h[2] = 0;
            h[3] = 20;
            let mut p = Packet::new_checked(&mut h[..]).expect("valid");
            p.fill_checksum();
            let ttl = p.ttl();
            if p.decrement_ttl() {
                assert_eq!(p.ttl(), ttl - 1);
                assert_eq!(p.checksum(), p.compute_checksum());
                assert!(p.verify_checksum());
            } else {
                assert!(ttl <= 1);
            }
        }
    }

    #[test]
    fn setters_rewrite_fields() {
        let mut b = ECHO;
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.set_dscp_ecn(0xb8);
        p.set_ident(7);
        p.set_protocol(ip_protocol::UDP);
        p.set_src_addr([192, 0, 2, 1]);
        p.set_dst_addr([192, 0, 2, 2]);
        p.payload_mut()[0] = 0;
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.dscp_ecn(), 0xb8);
        assert_eq!(p.ident(), 7);
        assert_eq!(p.protocol(), ip_protocol::UDP);
        assert_eq!(p.src_addr(), [192, 0, 2, 1]);
        assert_eq!(p.dst_addr(), [192, 0, 2, 2]);
        assert_eq!(b[20], 0);
    }

    #[test]
    fn emit_writes_a_valid_header() {
        let repr = Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: ip_protocol::ICMP,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0xabcd,
            dont_frag: true,
            payload_len: 16,
        };
        let mut b = [0u8; 36];
        b[20..].copy_from_slice(&ECHO[20..]);
        assert_eq!(repr.emit(&mut b), Ok(20));
        assert_eq!(b, ECHO);
        assert_eq!(repr.emit(&mut b[..19]), Err(ParseError::Truncated));
        let big = Repr {
            payload_len: 65516,
            ..repr
        };
        assert_eq!(big.emit(&mut b), Err(ParseError::BadTotalLength));
        let max = Repr {
            payload_len: 65515,
            ..repr
        };
        assert_eq!(max.emit(&mut b), Ok(20));
        assert_eq!(b[2..4], [0xff, 0xff]);
    }
}
