//! What the data path reads and rewrites in an inner IP packet of either
//! family, dispatching on the version nibble: its addresses and length,
//! whether it may enter a tunnel at all, its ECN field on the way in and
//! out (RFC 6040), and its TTL / hop limit (RFC 1812 section 5.3.1).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum, ipv4, ipv6, Classification, L3Kind};

/// An IP packet's addresses and length, read from its header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InnerIp {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP total length (header and payload; Ethernet padding excluded).
    pub len: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

/// Reads the header of the IPv4 or IPv6 packet at the start of `packet`,
/// by its version nibble.
#[inline]
pub(crate) fn ip_header(packet: &[u8]) -> Option<InnerIp> {
    match packet.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(packet).ok()?;
            Some(InnerIp {
                src: IpAddr::V4(Ipv4Addr::from(ip.src_addr())),
                dst: IpAddr::V4(Ipv4Addr::from(ip.dst_addr())),
                len: ip.total_len(),
                v6: false,
            })
        }
        6 => {
            let ip = ipv6::Packet::new_checked(packet).ok()?;
            Some(InnerIp {
                src: IpAddr::V6(Ipv6Addr::from(ip.src_addr())),
                dst: IpAddr::V6(Ipv6Addr::from(ip.dst_addr())),
                len: ip.total_len(),
                v6: true,
            })
        }
        _ => None,
    }
}

/// The IP header of a classified IPv4/IPv6 frame.
#[inline]
pub(crate) fn inner_ip(frame: &[u8], cls: &Classification) -> Option<InnerIp> {
    match cls.l3 {
        L3Kind::Ipv4 | L3Kind::Ipv6 => ip_header(frame.get(cls.l3_offset..)?),
        _ => None,
    }
}

/// Addresses the data path never routes into a tunnel: they are for the
/// concentrator's own stack (multicast, broadcast, IPv6 link-local).
#[inline]
pub(crate) fn is_link_scoped(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
        IpAddr::V6(a) => a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The ECN bits of an IP packet (its first bytes).
#[inline]
pub(crate) fn ip_ecn(packet: &[u8]) -> u8 {
    match packet.first().map(|b| b >> 4) {
        Some(4) => packet.get(1).map_or(0, |tos| tos & 0b11),
        Some(6) => packet.get(1).map_or(0, |b| (b >> 4) & 0b11),
        _ => 0,
    }
}

/// ECN codepoints (RFC 3168 section 5).
const NOT_ECT: u8 = 0b00;
const ECT_1: u8 = 0b01;
const ECT_0: u8 = 0b10;
const CE: u8 = 0b11;

/// The inner ECN field after decapsulation with outer ECN `outer`, per
/// RFC 6040 section 4.2 (figure 4, normal mode); `None`: drop (CE over
/// Not-ECT).
pub(crate) fn ecn_after_decap(inner: u8, outer: u8) -> Option<u8> {
    match (inner, outer) {
        (NOT_ECT, CE) => None,
        (NOT_ECT, _) => Some(NOT_ECT),
        (_, CE) => Some(CE),
        (ECT_0, ECT_1) => Some(ECT_1),
        (inner, _) => Some(inner),
    }
}

/// Why [`forward_decapsulated`] refused an inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InnerFault {
    /// Its header does not parse, or its IPv4 header checksum is wrong.
    Malformed,
    /// Its TTL / hop limit would reach zero (RFC 1812 section 5.3.1); the
    /// packet is left as it arrived, to be quoted in the ICMP error.
    TtlExceeded,
    /// CE arrived over a Not-ECT packet (RFC 6040 section 4.2): dropped.
    CeNotEct,
}

/// The forwarding checks and rewrites of a decapsulated inner packet (the
/// whole IP packet, IPv6 when `v6`, that arrived under outer ECN field
/// `outer`), on one parse of its header: the IPv4 header checksum is
/// verified, the TTL / hop limit decremented (RFC 1812 section 5.3.1), and
/// the ECN field set per [`ecn_after_decap`] (RFC 6040), the IPv4 header
/// checksum updated incrementally for both changes.
#[inline]
pub(crate) fn forward_decapsulated(
    packet: &mut [u8],
    v6: bool,
    outer: u8,
) -> Result<(), InnerFault> {
    if v6 {
        let mut p = ipv6::Packet::new_checked(&mut *packet).map_err(|_| InnerFault::Malformed)?;
        if !p.decrement_hop_limit() {
            return Err(InnerFault::TtlExceeded);
        }
        // Traffic class spans bytes 0-1: ECN is bits 4-5 of byte 1.
        let b = packet.get_mut(1).ok_or(InnerFault::Malformed)?;
        let inner = (*b >> 4) & CE;
        let ecn = ecn_after_decap(inner, outer & CE).ok_or(InnerFault::CeNotEct)?;
        *b = (*b & !0x30) | (ecn << 4);
        return Ok(());
    }
    let mut p = ipv4::Packet::new_checked(packet).map_err(|_| InnerFault::Malformed)?;
    if !p.verify_checksum() {
        return Err(InnerFault::Malformed);
    }
    if !p.decrement_ttl() {
        return Err(InnerFault::TtlExceeded);
    }
    let (ver_ihl, tos) = (p.header()[0], p.dscp_ecn());
    let ecn = ecn_after_decap(tos & CE, outer & CE).ok_or(InnerFault::CeNotEct)?;
    let new_tos = (tos & !CE) | ecn;
    if new_tos != tos {
        // RFC 1624: only the word of version/IHL and TOS changed.
        let check = checksum::update(
            p.checksum(),
            u16::from_be_bytes([ver_ihl, tos]),
            u16::from_be_bytes([ver_ihl, new_tos]),
        );
        p.set_dscp_ecn(new_tos);
        p.set_checksum(check);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6040_figure_4_normal_mode() {
        // Rows: arriving inner; columns: arriving outer Not-ECT, ECT(0),
        // ECT(1), CE. `None`: drop.
        let table = [
            (NOT_ECT, [Some(NOT_ECT), Some(NOT_ECT), Some(NOT_ECT), None]),
            (ECT_0, [Some(ECT_0), Some(ECT_0), Some(ECT_1), Some(CE)]),
            (ECT_1, [Some(ECT_1), Some(ECT_1), Some(ECT_1), Some(CE)]),
            (CE, [Some(CE), Some(CE), Some(CE), Some(CE)]),
        ];
        for (inner, row) in table {
            for (outer, want) in [NOT_ECT, ECT_0, ECT_1, CE].into_iter().zip(row) {
                assert_eq!(ecn_after_decap(inner, outer), want, "{inner} under {outer}");
            }
        }
    }

    #[test]
    fn ce_is_written_into_the_inner_header_with_its_checksum() {
        let mut p = [0u8; 28];
        ipv4::Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: 17,
            ttl: 9,
            dscp_ecn: 0xb8 | ECT_0,
            ident: 7,
            dont_frag: true,
            payload_len: 8,
        }
        .emit(&mut p)
        .unwrap();
        let arrived = p;
        assert_eq!(forward_decapsulated(&mut p, false, CE), Ok(()));
        assert_eq!(p[1], 0xb8 | CE, "DSCP kept, CE set");
        assert_eq!(p[8], 8, "TTL decremented");
        assert!(checksum::verify(&p[..20]), "header checksum updated");
        // Recomputed from scratch: the same value.
        let mut fresh = p;
        fresh[10..12].fill(0);
        assert_eq!(
            checksum::checksum(&fresh[..20]).to_be_bytes(),
            [p[10], p[11]]
        );

        // At its last hop: refused, and left as it arrived (it is quoted
        // in the ICMP error).
        let mut last = arrived;
        last[8] = 1;
        last[10..12].fill(0);
        let check = checksum::checksum(&last[..20]);
        last[10..12].copy_from_slice(&check.to_be_bytes());
        let before = last;
        assert_eq!(
            forward_decapsulated(&mut last, false, CE),
            Err(InnerFault::TtlExceeded)
        );
        assert_eq!(last, before);
        // A wrong header checksum, or CE over Not-ECT: refused.
        let mut bad = arrived;
        bad[10] ^= 1;
        assert_eq!(
            forward_decapsulated(&mut bad, false, ECT_0),
            Err(InnerFault::Malformed)
        );
        let mut not_ect4 = arrived;
        not_ect4[1] = 0xb8;
        not_ect4[10..12].fill(0);
        let check = checksum::checksum(&not_ect4[..20]);
        not_ect4[10..12].copy_from_slice(&check.to_be_bytes());
        assert_eq!(
            forward_decapsulated(&mut not_ect4, false, CE),
            Err(InnerFault::CeNotEct)
        );

        let mut v6 = [0u8; 40];
        v6[0] = 0x6b; // traffic class 0xb_
        v6[1] = 0x80 | (ECT_1 << 4);
        v6[7] = 5; // hop limit
        assert_eq!(forward_decapsulated(&mut v6, true, CE), Ok(()));
        assert_eq!((v6[0], v6[1], v6[7]), (0x6b, 0x80 | (CE << 4), 4));
        let mut not_ect = [0x60u8; 40];
        not_ect[1] = 0;
        not_ect[4..6].fill(0); // payload length
        assert_eq!(
            forward_decapsulated(&mut not_ect, true, CE),
            Err(InnerFault::CeNotEct)
        );
        not_ect[7] = 1;
        assert_eq!(
            forward_decapsulated(&mut not_ect, true, ECT_0),
            Err(InnerFault::TtlExceeded)
        );
    }
}
