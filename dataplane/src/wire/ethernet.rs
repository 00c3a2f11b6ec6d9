//! Ethernet II frames, with at most one 802.1Q VLAN tag.

use super::{get_array, get_u16, set_bytes, set_u16, slice, slice_mut, ParseError};

/// Byte ranges of the Ethernet header fields.
pub mod field {
    use core::ops::Range;

    /// Destination MAC address.
    pub const DST: Range<usize> = 0..6;
    /// Source MAC address.
    pub const SRC: Range<usize> = 6..12;
    /// EtherType, or the 802.1Q TPID (0x8100) in a tagged frame.
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// 802.1Q tag control information (PCP, DEI, VLAN id), if tagged.
    pub const VLAN_TCI: Range<usize> = 14..16;
    /// The EtherType of the payload, if tagged.
    pub const VLAN_ETHERTYPE: Range<usize> = 16..18;
}

/// EtherType values.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// An 802.1Q VLAN tag follows (TPID).
    pub const VLAN: u16 = 0x8100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;

/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// The broadcast MAC address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// A view of an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Views `buffer` as a frame: it must hold the 14-byte header, and the
    /// 4-byte tag too if the frame is VLAN tagged.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::Truncated);
        }
        if get_u16(b, field::ETHERTYPE) == ethertype::VLAN && b.len() < HEADER_LEN + VLAN_TAG_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Frame { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC address.
    pub fn dst(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), field::DST)
    }

    /// Source MAC address.
    pub fn src(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), field::SRC)
    }

    /// Whether the frame carries an 802.1Q tag.
    pub fn is_tagged(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE) == ethertype::VLAN
    }

    /// The 802.1Q tag control information, if tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        self.is_tagged()
            .then(|| get_u16(self.buffer.as_ref(), field::VLAN_TCI))
    }

    /// The EtherType of the payload (after the VLAN tag, if any).
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), self.ethertype_field())
    }

    /// Length of the header, tag included: 14 or 18.
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Everything after the header (including any Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        slice(b, self.header_len()..b.len())
    }

    fn ethertype_field(&self) -> core::ops::Range<usize> {
        if self.is_tagged() {
            field::VLAN_ETHERTYPE
        } else {
            field::ETHERTYPE
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst(&mut self, addr: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), field::DST, &addr);
    }

    /// Sets the source MAC address.
    pub fn set_src(&mut self, addr: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), field::SRC, &addr);
    }

    /// Sets the EtherType of the payload (after the VLAN tag, if any).
    pub fn set_ethertype(&mut self, value: u16) {
        let f = self.ethertype_field();
        set_u16(self.buffer.as_mut(), f, value);
    }

    /// Everything after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let b = self.buffer.as_mut();
        let end = b.len();
        slice_mut(b, start..end)
    }
}

/// The fields of an Ethernet header, to write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// Source MAC address.
    pub src: [u8; 6],
    /// 802.1Q tag control information, to emit a tagged frame.
    pub vlan_tci: Option<u16>,
    /// EtherType of the payload.
    pub ethertype: u16,
}

impl Repr {
    /// The fields of a parsed frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Repr {
        Repr {
            dst: frame.dst(),
            src: frame.src(),
            vlan_tci: frame.vlan_tci(),
            ethertype: frame.ethertype(),
        }
    }

    /// Length of the header this writes: 14, or 18 with a tag.
    pub fn header_len(&self) -> usize {
        match self.vlan_tci {
            Some(_) => HEADER_LEN + VLAN_TAG_LEN,
            None => HEADER_LEN,
        }
    }

    /// Writes the header at the start of `buf` and returns its length.
    /// Fails with [`ParseError::Truncated`] if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ParseError> {
        let len = self.header_len();
        if buf.len() < len {
            return Err(ParseError::Truncated);
        }
        set_bytes(buf, field::DST, &self.dst);
        set_bytes(buf, field::SRC, &self.src);
        match self.vlan_tci {
            Some(tci) => {
                set_u16(buf, field::ETHERTYPE, ethertype::VLAN);
                set_u16(buf, field::VLAN_TCI, tci);
                set_u16(buf, field::VLAN_ETHERTYPE, self.ethertype);
            }
            None => set_u16(buf, field::ETHERTYPE, self.ethertype),
        }
        Ok(len)
    }
}

/// Whether a frame's destination MAC is ours or a group address (ports
/// are promiscuous: a switch may flood frames meant for other hosts).
#[inline]
pub(crate) fn for_us(frame: &[u8], mac: [u8; 6]) -> bool {
    match frame.get(..6) {
        Some(dst) => dst[0] & 1 == 1 || dst == mac,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
    const SRC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

    fn untagged() -> [u8; 18] {
        [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
            0x08, 0x00, // IPv4
            0xde, 0xad, 0xbe, 0xef, // payload
        ]
    }

    fn tagged() -> [u8; 22] {
        [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
            0x81, 0x00, 0x20, 0x64, // 802.1Q, PCP 1, VLAN 100
            0x86, 0xdd, // IPv6
            0xde, 0xad, 0xbe, 0xef, // payload
        ]
    }

    #[test]
    fn parses_an_untagged_frame() {
        let b = untagged();
        let f = Frame::new_checked(&b[..]).expect("valid");
        assert_eq!(f.dst(), DST);
        assert_eq!(f.src(), SRC);
        assert!(!f.is_tagged());
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn parses_a_vlan_tagged_frame() {
        let b = tagged();
        let f = Frame::new_checked(&b[..]).expect("valid");
        assert!(f.is_tagged());
        assert_eq!(f.vlan_tci(), Some(0x2064));
        assert_eq!(f.ethertype(), ethertype::IPV6);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn rejects_every_truncation() {
        let b = untagged();
        for n in 0..HEADER_LEN {
            assert_eq!(Frame::new_checked(&b[..n]), Err(ParseError::Truncated));
        }
        assert!(Frame::new_checked(&b[..HEADER_LEN]).is_ok());
        let t = tagged();
        for n in 0..HEADER_LEN + VLAN_TAG_LEN {
            assert_eq!(Frame::new_checked(&t[..n]), Err(ParseError::Truncated));
        }
        let f = Frame::new_checked(&t[..HEADER_LEN + VLAN_TAG_LEN]).expect("header only");
        assert!(f.payload().is_empty());
    }

    #[test]
    fn setters_rewrite_fields_in_place() {
        let mut b = tagged();
        let mut f = Frame::new_checked(&mut b[..]).expect("valid");
        f.set_dst(SRC);
        f.set_src(DST);
        f.set_ethertype(ethertype::ARP);
        f.payload_mut()[0] = 0x11;
        assert_eq!(f.dst(), SRC);
        assert_eq!(f.src(), DST);
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.vlan_tci(), Some(0x2064));
        assert_eq!(&b[12..19], &[0x81, 0x00, 0x20, 0x64, 0x08, 0x06, 0x11]);
    }

    #[test]
    fn emit_writes_what_parse_reads() {
        for vlan_tci in [None, Some(0x0fff)] {
            let repr = Repr {
                dst: DST,
                src: SRC,
                vlan_tci,
                ethertype: ethertype::IPV4,
            };
            let mut b = [0u8; 20];
            assert_eq!(repr.emit(&mut b), Ok(repr.header_len()));
            let f = Frame::new_checked(&b[..]).expect("valid");
            assert_eq!(Repr::parse(&f), repr);
            assert_eq!(f.header_len(), repr.header_len());
            assert_eq!(
                repr.emit(&mut b[..repr.header_len() - 1]),
                Err(ParseError::Truncated)
            );
        }
        let mut b = [0u8; 14];
        let repr = Repr {
            dst: BROADCAST,
            src: SRC,
            vlan_tci: None,
            ethertype: ethertype::ARP,
        };
        assert_eq!(repr.emit(&mut b), Ok(14));
        assert_eq!(b, untagged_arp_header());
    }

    fn untagged_arp_header() -> [u8; 14] {
        [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06,
        ]
    }
}
