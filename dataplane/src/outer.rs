//! The outer Ethernet/IP/UDP headers of WireGuard packets we send.
//!
//! The data path writes them into the mbuf headroom in front of the
//! WireGuard message; the control thread uses the same code for handshakes
//! and cookie replies.

use std::net::{IpAddr, SocketAddr};

use crate::wire::{checksum, ethernet, ip_protocol, ipv4, ipv6, udp};

/// Hop limit of packets we originate (the kernel's default).
pub const OUTER_TTL: u8 = 64;

/// The outer headers of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outer {
    /// Our MAC (the port's).
    pub src_mac: [u8; 6],
    /// The next hop's MAC.
    pub dst_mac: [u8; 6],
    /// Our address and port.
    pub src: SocketAddr,
    /// The peer's endpoint.
    pub dst: SocketAddr,
    /// ECN bits copied from the inner packet (RFC 6040 normal mode).
    pub ecn: u8,
}

/// Bytes of outer headers in front of a WireGuard message to `dst`.
#[inline]
pub const fn header_len(dst: &SocketAddr) -> usize {
    match dst {
        SocketAddr::V4(_) => ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN,
        SocketAddr::V6(_) => ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN,
    }
}

/// Why headers could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterError {
    /// Source and destination are of different address families.
    FamilyMismatch,
    /// The frame is shorter than the headers, or the datagram too long.
    BadLength,
}

/// Writes the outer headers into `frame[..header_len(&o.dst)]`; the UDP
/// payload (the WireGuard message) is `frame[header_len..]`. With
/// `offload`, the IPv4 header checksum is left 0 and the UDP checksum field
/// holds the pseudo-header sum, for the NIC to finish; otherwise both are
/// computed here. Returns the IP header length (for the offload request).
#[inline]
pub fn write(frame: &mut [u8], o: &Outer, offload: bool) -> Result<u16, OuterError> {
    let hlen = header_len(&o.dst);
    let udp_len = frame
        .len()
        .checked_sub(hlen - udp::HEADER_LEN)
        .and_then(|l| u16::try_from(l).ok())
        .ok_or(OuterError::BadLength)?;
    let (eth, rest) = frame.split_at_mut(ethernet::HEADER_LEN);
    eth[ethernet::field::DST].copy_from_slice(&o.dst_mac);
    eth[ethernet::field::SRC].copy_from_slice(&o.src_mac);
    match (o.src.ip(), o.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let (ip, dgram) = rest.split_at_mut(ipv4::HEADER_LEN);
            eth[ethernet::field::ETHERTYPE]
                .copy_from_slice(&ethernet::ethertype::IPV4.to_be_bytes());
            let total = udp_len + ipv4::HEADER_LEN as u16;
            ip[ipv4::field::VER_IHL] = 0x45;
            ip[ipv4::field::DSCP_ECN] = o.ecn & 0b11;
            ip[ipv4::field::LENGTH].copy_from_slice(&total.to_be_bytes());
            ip[ipv4::field::IDENT].copy_from_slice(&[0, 0]);
            ip[ipv4::field::FLAGS_FRAG].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
            ip[ipv4::field::TTL] = OUTER_TTL;
            ip[ipv4::field::PROTOCOL] = ip_protocol::UDP;
            ip[ipv4::field::CHECKSUM].copy_from_slice(&[0, 0]);
            ip[ipv4::field::SRC].copy_from_slice(&s.octets());
            ip[ipv4::field::DST].copy_from_slice(&d.octets());
            if !offload {
                let c = checksum::checksum(ip);
                ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
            }
            let pseudo =
                checksum::pseudo_header_v4(s.octets(), d.octets(), ip_protocol::UDP, udp_len);
            write_udp(dgram, o, udp_len, pseudo, offload);
            Ok(ipv4::HEADER_LEN as u16)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let (ip, dgram) = rest.split_at_mut(ipv6::HEADER_LEN);
            eth[ethernet::field::ETHERTYPE]
                .copy_from_slice(&ethernet::ethertype::IPV6.to_be_bytes());
            let vtf: u32 = (6 << 28) | (u32::from(o.ecn & 0b11) << 20);
            ip[ipv6::field::VER_TC_FLOW].copy_from_slice(&vtf.to_be_bytes());
            ip[ipv6::field::PAYLOAD_LEN].copy_from_slice(&udp_len.to_be_bytes());
            ip[ipv6::field::NEXT_HEADER] = ip_protocol::UDP;
            ip[ipv6::field::HOP_LIMIT] = OUTER_TTL;
            ip[ipv6::field::SRC].copy_from_slice(&s.octets());
            ip[ipv6::field::DST].copy_from_slice(&d.octets());
            let pseudo = checksum::pseudo_header_v6(
                &s.octets(),
                &d.octets(),
                ip_protocol::UDP,
                u32::from(udp_len),
            );
            write_udp(dgram, o, udp_len, pseudo, offload);
            Ok(ipv6::HEADER_LEN as u16)
        }
        _ => Err(OuterError::FamilyMismatch),
    }
}

#[inline]
fn write_udp(dgram: &mut [u8], o: &Outer, udp_len: u16, pseudo: u64, offload: bool) {
    dgram[udp::field::SRC_PORT].copy_from_slice(&o.src.port().to_be_bytes());
    dgram[udp::field::DST_PORT].copy_from_slice(&o.dst.port().to_be_bytes());
    dgram[udp::field::LENGTH].copy_from_slice(&udp_len.to_be_bytes());
    dgram[udp::field::CHECKSUM].copy_from_slice(&[0, 0]);
    let c = if offload {
        checksum::fold(pseudo)
    } else {
        match checksum::finish(checksum::add(pseudo, dgram)) {
            0 => 0xffff,
            c => c,
        }
    };
    dgram[udp::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{classify, L3Kind};

    fn outer(src: &str, dst: &str) -> Outer {
        Outer {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            ecn: 0b10,
        }
    }

    #[test]
    fn ipv4_headers_parse_back_with_valid_checksums() {
        let o = outer("192.0.2.1:51820", "198.51.100.7:40000");
        let payload = b"wireguard message bytes";
        let mut frame = vec![0u8; header_len(&o.dst) + payload.len()];
        frame[header_len(&o.dst)..].copy_from_slice(payload);
        assert_eq!(write(&mut frame, &o, false), Ok(20));
        let c = classify(&frame).expect("parses");
        assert_eq!(c.l3, L3Kind::Ipv4);
        assert_eq!(c.udp.map(|u| (u.src, u.dst)), Some((51820, 40000)));
        let ip = ipv4::Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.ttl(), OUTER_TTL);
        assert_eq!(ip.dscp_ecn(), 0b10);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert!(u.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
        assert_eq!(u.payload(), payload);
    }

    #[test]
    fn ipv6_headers_parse_back_with_valid_checksum() {
        let o = outer("[2001:db8::1]:51820", "[2001:db8::2]:1234");
        let payload = [7u8; 64];
        let mut frame = vec![0u8; header_len(&o.dst) + payload.len()];
        frame[header_len(&o.dst)..].copy_from_slice(&payload);
        assert_eq!(write(&mut frame, &o, false), Ok(40));
        let ip = ipv6::Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!(ip.payload_len(), 8 + 64);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert!(u.verify_checksum_v6(&ip.src_addr(), &ip.dst_addr()));
    }

    #[test]
    fn offload_leaves_the_pseudo_header_sum() {
        let o = outer("192.0.2.1:51820", "192.0.2.2:51821");
        let mut frame = vec![0u8; header_len(&o.dst) + 32];
        write(&mut frame, &o, true).unwrap();
        let ip = ipv4::Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!(ip.checksum(), 0);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        let pseudo = checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), 17, 40);
        assert_eq!(u.checksum(), checksum::fold(pseudo));
    }

    #[test]
    fn family_mismatch_and_short_frames_are_errors() {
        let mut o = outer("192.0.2.1:1", "192.0.2.2:2");
        let mut short = [0u8; 10];
        assert_eq!(write(&mut short, &o, false), Err(OuterError::BadLength));
        o.dst = "[2001:db8::2]:2".parse().unwrap();
        let mut frame = vec![0u8; 100];
        assert_eq!(
            write(&mut frame, &o, false),
            Err(OuterError::FamilyMismatch)
        );
    }
}
