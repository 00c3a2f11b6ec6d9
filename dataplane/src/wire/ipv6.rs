//! IPv6 fixed headers (RFC 8200): validation, hop limit, payload length,
//! next header. Extension headers are not walked; a fragment is recognised
//! only when the fragment header directly follows the fixed header.

use super::ParseError;
use super::{
    get_array, get_u16, get_u8, ip_protocol, set_bytes, set_u16, set_u8, slice, slice_mut,
};

/// Byte ranges of the IPv6 header fields.
pub mod field {
    use core::ops::Range;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    /// Length of the payload after the fixed header.
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    /// Type of the header after the fixed header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: Range<usize> = 8..24;
    /// Destination address.
    pub const DST: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

/// A view of an IPv6 packet. The buffer may extend past the payload length
/// (Ethernet padding); [`Packet::payload`] stops at the payload length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Views `buffer` as an IPv6 packet. Checks, in order: the 40-byte fixed
    /// header is present, the version is 6, and the payload length is
    /// present. (Jumbograms, with payload length 0 and a hop-by-hop jumbo
    /// option, are seen as an empty payload.)
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if get_u8(b, 0) >> 4 != 6 {
            return Err(ParseError::BadVersion);
        }
        if b.len() - HEADER_LEN < usize::from(get_u16(b, field::PAYLOAD_LEN)) {
            return Err(ParseError::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn ver_tc_flow(&self) -> u32 {
        u32::from_be_bytes(get_array(self.buffer.as_ref(), field::VER_TC_FLOW))
    }

    /// The version (always 6 in a checked view).
    pub fn version(&self) -> u8 {
        // The top 4 bits of a u32 fit in a u8.
        (self.ver_tc_flow() >> 28) as u8
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        // 8 bits after the version.
        ((self.ver_tc_flow() >> 20) & 0xff) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        self.ver_tc_flow() & 0x000f_ffff
    }

    /// Length of the payload after the fixed header.
    pub fn payload_len(&self) -> usize {
        usize::from(get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN))
    }

    /// Total length: fixed header plus payload.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }

    /// Type of the header after the fixed header (see
    /// [`super::ip_protocol`]).
    pub fn next_header(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::NEXT_HEADER)
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        get_u8(self.buffer.as_ref(), field::HOP_LIMIT)
    }

    /// Source address.
    pub fn src_addr(&self) -> [u8; 16] {
        get_array(self.buffer.as_ref(), field::SRC)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> [u8; 16] {
        get_array(self.buffer.as_ref(), field::DST)
    }

    /// Whether the fixed header is followed by a fragment header (44).
    pub fn is_fragment(&self) -> bool {
        self.next_header() == ip_protocol::IPV6_FRAGMENT
    }

    /// The payload after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        slice(self.buffer.as_ref(), HEADER_LEN..self.total_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        set_u8(self.buffer.as_mut(), field::HOP_LIMIT, value);
    }

    /// Decrements the hop limit. Returns `false`, leaving the packet
    /// unchanged, if it is 0 or 1: such a packet must not be forwarded.
    pub fn decrement_hop_limit(&mut self) -> bool {
        let hops = self.hop_limit();
        if hops <= 1 {
            return false;
        }
        self.set_hop_limit(hops - 1);
        true
    }

    /// Sets the next header type.
    pub fn set_next_header(&mut self, value: u8) {
        set_u8(self.buffer.as_mut(), field::NEXT_HEADER, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: [u8; 16]) {
        set_bytes(self.buffer.as_mut(), field::SRC, &addr);
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: [u8; 16]) {
        set_bytes(self.buffer.as_mut(), field::DST, &addr);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = HEADER_LEN..self.total_len();
        slice_mut(self.buffer.as_mut(), range)
    }
}

/// The fields of an IPv6 fixed header, to write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Type of the header after the fixed header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (low 20 bits used).
    pub flow_label: u32,
    /// Length of the payload that follows the header.
    pub payload_len: usize,
}

impl Repr {
    /// Writes the 40-byte fixed header at the start of `buf` and returns its
    /// length. The payload is not touched. Fails with
    /// [`ParseError::BadTotalLength`] if the payload exceeds 65535 bytes and
    /// [`ParseError::Truncated`] if `buf` is shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ParseError> {
        let payload_len =
            u16::try_from(self.payload_len).map_err(|_| ParseError::BadTotalLength)?;
        let h = buf.get_mut(..HEADER_LEN).ok_or(ParseError::Truncated)?;
        let vtf =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        set_bytes(h, field::VER_TC_FLOW, &vtf.to_be_bytes());
        set_u16(h, field::PAYLOAD_LEN, payload_len);
        set_u8(h, field::NEXT_HEADER, self.next_header);
        set_u8(h, field::HOP_LIMIT, self.hop_limit);
        set_bytes(h, field::SRC, &self.src);
        set_bytes(h, field::DST, &self.dst);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMPv6 echo request 2001:db8::1 -> 2001:db8::2, traffic class 0xb8,
    /// flow label 0x12345, hop limit 64, 8-byte payload (checksum not
    /// relevant at this layer).
    fn echo() -> [u8; 48] {
        let mut b = [0u8; 48];
        b[..8].copy_from_slice(&[0x6b, 0x81, 0x23, 0x45, 0x00, 0x08, 0x3a, 0x40]);
        b[8..12].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[23] = 1;
        b[24..28].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        b[39] = 2;
        b[40..].copy_from_slice(&[0x80, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01]);
        b
    }

    fn addr(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = last;
        a
    }

    #[test]
    fn parses_a_packet() {
        let b = echo();
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.total_len(), 48);
        assert_eq!(p.next_header(), ip_protocol::ICMPV6);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), addr(1));
        assert_eq!(p.dst_addr(), addr(2));
        assert!(!p.is_fragment());
        assert_eq!(p.payload(), &b[40..]);
    }

    #[test]
    fn rejects_every_truncation() {
        let b = echo();
        for n in 0..b.len() {
            assert_eq!(
                Packet::new_checked(&b[..n]),
                Err(ParseError::Truncated),
                "length {n}"
            );
        }
    }

    #[test]
    fn rejects_bad_version_and_overlong_payload_length() {
        let mut b = echo();
        b[0] = 0x4b;
        assert_eq!(Packet::new_checked(&b[..]), Err(ParseError::BadVersion));
        b[0] = 0x6b;
        b[5] = 9;
        assert_eq!(Packet::new_checked(&b[..]), Err(ParseError::Truncated));
        b[5] = 0;
        let p = Packet::new_checked(&b[..]).expect("empty payload");
        assert!(p.payload().is_empty());
    }

    #[test]
    fn payload_stops_at_the_payload_length() {
        let mut b = [0u8; 64];
        b[..48].copy_from_slice(&echo());
        let p = Packet::new_checked(&b[..]).expect("valid with padding");
        assert_eq!(p.payload().len(), 8);
    }

    #[test]
    fn fragment_only_when_next_header_is_44() {
        let mut b = echo();
        b[6] = ip_protocol::IPV6_FRAGMENT;
        assert!(Packet::new_checked(&b[..]).expect("valid").is_fragment());
        b[6] = ip_protocol::UDP;
        assert!(!Packet::new_checked(&b[..]).expect("valid").is_fragment());
        // Hop-by-hop options first: not walked, so not seen as a fragment.
        b[6] = 0;
        assert!(!Packet::new_checked(&b[..]).expect("valid").is_fragment());
    }

    #[test]
    fn hop_limit_decrements_and_stops_at_one() {
        let mut b = echo();
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        assert!(p.decrement_hop_limit());
        assert_eq!(p.hop_limit(), 63);
        p.set_hop_limit(1);
        assert!(!p.decrement_hop_limit());
        assert_eq!(p.hop_limit(), 1);
        p.set_hop_limit(0);
        assert!(!p.decrement_hop_limit());
        assert_eq!(b[7], 0);
    }

    #[test]
    fn setters_rewrite_fields() {
        let mut b = echo();
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.set_src_addr(addr(9));
        p.set_dst_addr(addr(8));
        p.set_next_header(ip_protocol::UDP);
        p.payload_mut()[0] = 0x81;
        assert_eq!(p.src_addr(), addr(9));
        assert_eq!(p.dst_addr(), addr(8));
        assert_eq!(p.next_header(), ip_protocol::UDP);
        assert_eq!(b[40], 0x81);
    }

    #[test]
    fn emit_writes_what_parse_reads() {
        let repr = Repr {
            src: addr(1),
            dst: addr(2),
            next_header: ip_protocol::ICMPV6,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
            payload_len: 8,
        };
        let mut b = echo();
        let expected = b;
        b[..40].fill(0xee);
        assert_eq!(repr.emit(&mut b), Ok(40));
        assert_eq!(b, expected);
        assert_eq!(repr.emit(&mut b[..39]), Err(ParseError::Truncated));
        let big = Repr {
            payload_len: 65536,
            ..repr
        };
        assert_eq!(big.emit(&mut b), Err(ParseError::BadTotalLength));
    }
}
