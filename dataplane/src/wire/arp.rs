//! ARP for IPv4 over Ethernet (RFC 826).

use super::{get_array, get_u16, get_u8, set_bytes, set_u16, set_u8, ParseError};

/// Byte ranges of the ARP packet fields (Ethernet/IPv4 layout).
pub mod field {
    use core::ops::Range;

    /// Hardware type (1 for Ethernet).
    pub const HTYPE: Range<usize> = 0..2;
    /// Protocol type (0x0800 for IPv4).
    pub const PTYPE: Range<usize> = 2..4;
    /// Hardware address length (6).
    pub const HLEN: usize = 4;
    /// Protocol address length (4).
    pub const PLEN: usize = 5;
    /// Operation: 1 request, 2 reply.
    pub const OPER: Range<usize> = 6..8;
    /// Sender hardware address.
    pub const SHA: Range<usize> = 8..14;
    /// Sender protocol address.
    pub const SPA: Range<usize> = 14..18;
    /// Target hardware address.
    pub const THA: Range<usize> = 18..24;
    /// Target protocol address.
    pub const TPA: Range<usize> = 24..28;
}

/// ARP operation codes.
pub mod operation {
    /// Request.
    pub const REQUEST: u16 = 1;
    /// Reply.
    pub const REPLY: u16 = 2;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// Hardware type for Ethernet.
const HTYPE_ETHERNET: u16 = 1;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Views `buffer` as an ARP packet: at least 28 bytes, hardware type
    /// Ethernet with 6-byte addresses and protocol type IPv4 with 4-byte
    /// addresses ([`ParseError::Unsupported`] otherwise).
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(ParseError::Truncated);
        }
        if get_u16(b, field::HTYPE) != HTYPE_ETHERNET
            || get_u16(b, field::PTYPE) != super::ethernet::ethertype::IPV4
            || get_u8(b, field::HLEN) != 6
            || get_u8(b, field::PLEN) != 4
        {
            return Err(ParseError::Unsupported);
        }
        Ok(Packet { buffer })
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The operation ([`operation::REQUEST`], [`operation::REPLY`], ...).
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address.
    pub fn sender_hw(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), field::SHA)
    }

    /// Sender IPv4 address.
    pub fn sender_ip(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address.
    pub fn target_hw(&self) -> [u8; 6] {
        get_array(self.buffer.as_ref(), field::THA)
    }

    /// Target IPv4 address.
    pub fn target_ip(&self) -> [u8; 4] {
        get_array(self.buffer.as_ref(), field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the operation.
    pub fn set_operation(&mut self, op: u16) {
        set_u16(self.buffer.as_mut(), field::OPER, op);
    }

    /// Sets the sender hardware address.
    pub fn set_sender_hw(&mut self, addr: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), field::SHA, &addr);
    }

    /// Sets the sender IPv4 address.
    pub fn set_sender_ip(&mut self, addr: [u8; 4]) {
        set_bytes(self.buffer.as_mut(), field::SPA, &addr);
    }

    /// Sets the target hardware address.
    pub fn set_target_hw(&mut self, addr: [u8; 6]) {
        set_bytes(self.buffer.as_mut(), field::THA, &addr);
    }

    /// Sets the target IPv4 address.
    pub fn set_target_ip(&mut self, addr: [u8; 4]) {
        set_bytes(self.buffer.as_mut(), field::TPA, &addr);
    }
}

/// The fields of an Ethernet/IPv4 ARP packet, to write one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The operation.
    pub operation: u16,
    /// Sender hardware address.
    pub sender_hw: [u8; 6],
    /// Sender IPv4 address.
    pub sender_ip: [u8; 4],
    /// Target hardware address (zero in a request).
    pub target_hw: [u8; 6],
    /// Target IPv4 address.
    pub target_ip: [u8; 4],
}

impl Repr {
    /// The fields of a parsed packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Repr {
        Repr {
            operation: packet.operation(),
            sender_hw: packet.sender_hw(),
            sender_ip: packet.sender_ip(),
            target_hw: packet.target_hw(),
            target_ip: packet.target_ip(),
        }
    }

    /// The reply to this request from the owner of `target_ip`, whose
    /// hardware address is `hw`.
    pub fn reply(&self, hw: [u8; 6]) -> Repr {
        Repr {
            operation: operation::REPLY,
            sender_hw: hw,
            sender_ip: self.target_ip,
            target_hw: self.sender_hw,
            target_ip: self.sender_ip,
        }
    }

    /// Writes the 28-byte packet at the start of `buf` and returns its
    /// length. Fails with [`ParseError::Truncated`] if `buf` is shorter.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, ParseError> {
        if buf.len() < PACKET_LEN {
            return Err(ParseError::Truncated);
        }
        set_u16(buf, field::HTYPE, HTYPE_ETHERNET);
        set_u16(buf, field::PTYPE, super::ethernet::ethertype::IPV4);
        set_u8(buf, field::HLEN, 6);
        set_u8(buf, field::PLEN, 4);
        set_u16(buf, field::OPER, self.operation);
        set_bytes(buf, field::SHA, &self.sender_hw);
        set_bytes(buf, field::SPA, &self.sender_ip);
        set_bytes(buf, field::THA, &self.target_hw);
        set_bytes(buf, field::TPA, &self.target_ip);
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Who has 192.168.1.1? Tell 192.168.1.100", hand-built in the layout
    /// of a request as seen on a LAN: Ethernet header stripped, the 18 bytes
    /// of padding to the 60-byte minimum frame kept.
    fn request() -> [u8; 46] {
        let mut b = [0u8; 46];
        b[..28].copy_from_slice(&[
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet, IPv4, 6, 4, request
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sender MAC
            0xc0, 0xa8, 0x01, 0x64, // 192.168.1.100
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC unknown
            0xc0, 0xa8, 0x01, 0x01, // 192.168.1.1
        ]);
        b
    }

    #[test]
    fn parses_a_request() {
        let b = request();
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.operation(), operation::REQUEST);
        assert_eq!(p.sender_hw(), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(p.sender_ip(), [192, 168, 1, 100]);
        assert_eq!(p.target_hw(), [0; 6]);
        assert_eq!(p.target_ip(), [192, 168, 1, 1]);
    }

    #[test]
    fn rejects_every_truncation() {
        let b = request();
        for n in 0..PACKET_LEN {
            assert_eq!(Packet::new_checked(&b[..n]), Err(ParseError::Truncated));
        }
        assert!(Packet::new_checked(&b[..PACKET_LEN]).is_ok());
    }

    #[test]
    fn rejects_other_hardware_and_protocol_types() {
        for (at, value) in [(1, 6), (2, 0x86), (4, 8), (5, 16)] {
            let mut b = request();
            b[at] = value;
            assert_eq!(
                Packet::new_checked(&b[..]),
                Err(ParseError::Unsupported),
                "byte {at} = {value}"
            );
        }
    }

    #[test]
    fn reply_swaps_roles_and_round_trips() {
        let b = request();
        let req = Repr::parse(&Packet::new_checked(&b[..]).expect("valid"));
        let ours = [0x02, 0, 0, 0, 0, 0x99];
        let rep = req.reply(ours);
        assert_eq!(rep.operation, operation::REPLY);
        assert_eq!(rep.sender_ip, [192, 168, 1, 1]);
        assert_eq!(rep.sender_hw, ours);
        assert_eq!(rep.target_ip, [192, 168, 1, 100]);
        assert_eq!(rep.target_hw, req.sender_hw);
        let mut out = [0xaau8; 30];
        assert_eq!(rep.emit(&mut out), Ok(PACKET_LEN));
        assert_eq!(out[28..], [0xaa, 0xaa]);
        let p = Packet::new_checked(&out[..]).expect("valid");
        assert_eq!(Repr::parse(&p), rep);
        assert_eq!(rep.emit(&mut out[..27]), Err(ParseError::Truncated));
    }

    #[test]
    fn setters_rewrite_fields_in_place() {
        let mut b = request();
        let mut p = Packet::new_checked(&mut b[..]).expect("valid");
        p.set_operation(operation::REPLY);
        p.set_sender_hw([1, 2, 3, 4, 5, 6]);
        p.set_sender_ip([10, 0, 0, 1]);
        p.set_target_hw([6, 5, 4, 3, 2, 1]);
        p.set_target_ip([10, 0, 0, 2]);
        assert_eq!(
            b[6..28],
            [0, 2, 1, 2, 3, 4, 5, 6, 10, 0, 0, 1, 6, 5, 4, 3, 2, 1, 10, 0, 0, 2]
        );
    }
}
