//! The outer Ethernet/IP/UDP headers of WireGuard packets we send.
//!
//! The data path writes them into the mbuf headroom in front of the
//! WireGuard message; the control thread uses the same code for handshakes
//! and cookie replies.

use std::net::{IpAddr, SocketAddr};

use crate::counters::DropReason;
use crate::neighbours::Neighbours;
use crate::port::PortNet;
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

/// Bytes of the longest outer headers (Ethernet, IPv6, UDP).
pub const MAX_HEADER_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN;

/// Why headers could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterError {
    /// Source and destination are of different address families.
    FamilyMismatch,
    /// The frame is shorter than the headers, or the datagram too long.
    BadLength,
}

/// The outer headers to one destination, built once: every field but the
/// lengths, the ECN bits and the checksums, which [`Template::write`] fills
/// in for each packet. The data path keeps one per peer (see
/// `OuterCache`, below), so that a packet's headers are a copy and four
/// stores instead of a route, a source address and a neighbour lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// `bytes[..len]` are the headers with lengths, ECN and checksums 0.
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
    v6: bool,
    /// The one's-complement sum of the UDP pseudo-header without its
    /// length (RFC 768; RFC 8200 section 8.1).
    pseudo: u64,
}

impl Template {
    /// The headers from `src_mac` and `src` to `dst_mac` and `dst`.
    pub fn new(
        src_mac: [u8; 6],
        dst_mac: [u8; 6],
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<Self, OuterError> {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        let len = header_len(&dst);
        let (eth, rest) = bytes.split_at_mut(ethernet::HEADER_LEN);
        eth[ethernet::field::DST].copy_from_slice(&dst_mac);
        eth[ethernet::field::SRC].copy_from_slice(&src_mac);
        let (v6, pseudo, ip_len) = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                eth[ethernet::field::ETHERTYPE]
                    .copy_from_slice(&ethernet::ethertype::IPV4.to_be_bytes());
                let ip = &mut rest[..ipv4::HEADER_LEN];
                ip[ipv4::field::VER_IHL] = 0x45;
                // No DF, as the kernel's WireGuard sends (`send4`: the
                // tunnel transmit's df argument is 0): a router before a
                // smaller link fragments the packet, and the peer
                // reassembles it, instead of the packet being lost where
                // ICMP is filtered. The identification field is therefore
                // set per packet ([`Template::write`]).
                ip[ipv4::field::TTL] = OUTER_TTL;
                ip[ipv4::field::PROTOCOL] = ip_protocol::UDP;
                ip[ipv4::field::SRC].copy_from_slice(&s.octets());
                ip[ipv4::field::DST].copy_from_slice(&d.octets());
                let pseudo =
                    checksum::pseudo_header_v4(s.octets(), d.octets(), ip_protocol::UDP, 0);
                (false, pseudo, ipv4::HEADER_LEN)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                eth[ethernet::field::ETHERTYPE]
                    .copy_from_slice(&ethernet::ethertype::IPV6.to_be_bytes());
                let ip = &mut rest[..ipv6::HEADER_LEN];
                ip[ipv6::field::VER_TC_FLOW].copy_from_slice(&(6u32 << 28).to_be_bytes());
                ip[ipv6::field::NEXT_HEADER] = ip_protocol::UDP;
                ip[ipv6::field::HOP_LIMIT] = OUTER_TTL;
                ip[ipv6::field::SRC].copy_from_slice(&s.octets());
                ip[ipv6::field::DST].copy_from_slice(&d.octets());
                let pseudo =
                    checksum::pseudo_header_v6(&s.octets(), &d.octets(), ip_protocol::UDP, 0);
                (true, pseudo, ipv6::HEADER_LEN)
            }
            _ => return Err(OuterError::FamilyMismatch),
        };
        let dgram = &mut rest[ip_len..ip_len + udp::HEADER_LEN];
        dgram[udp::field::SRC_PORT].copy_from_slice(&src.port().to_be_bytes());
        dgram[udp::field::DST_PORT].copy_from_slice(&dst.port().to_be_bytes());
        Ok(Self {
            bytes,
            len: len as u8,
            v6,
            pseudo,
        })
    }

    /// Bytes of the headers.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the outer packet is IPv6 (else IPv4).
    #[inline]
    pub fn is_ipv6(&self) -> bool {
        self.v6
    }

    /// Writes the headers into `frame[..self.header_len()]`; the UDP payload (the
    /// WireGuard message) is `frame[self.header_len()..]`. `ecn`: the inner
    /// packet's ECN bits (RFC 6040 normal mode). `ident`: the IPv4
    /// identification (unused for IPv6); a packet that may be fragmented
    /// on its way needs one that its sender does not reuse for this
    /// destination within the reassembly timeout (RFC 791, RFC 6864
    /// section 4). With `offload`, the IPv4
    /// header checksum is left 0 and the UDP checksum field holds the
    /// pseudo-header sum, for the NIC to finish; otherwise both are
    /// computed here. Returns the IP header length (for the offload
    /// request).
    #[inline]
    pub fn write(
        &self,
        frame: &mut [u8],
        ecn: u8,
        ident: u16,
        offload: bool,
    ) -> Result<u16, OuterError> {
        let hlen = self.header_len();
        if frame.len() < hlen {
            return Err(OuterError::BadLength);
        }
        let udp_len = u16::try_from(frame.len() - (hlen - udp::HEADER_LEN))
            .map_err(|_| OuterError::BadLength)?;
        frame[..hlen].copy_from_slice(&self.bytes[..hlen]);
        let ip = &mut frame[ethernet::HEADER_LEN..hlen - udp::HEADER_LEN];
        let ip_len = ip.len() as u16;
        if self.v6 {
            // Traffic class: its two low bits are the ECN field.
            ip[1] |= (ecn & 0b11) << 4;
            ip[ipv6::field::PAYLOAD_LEN].copy_from_slice(&udp_len.to_be_bytes());
        } else {
            ip[ipv4::field::DSCP_ECN] = ecn & 0b11;
            ip[ipv4::field::IDENT].copy_from_slice(&ident.to_be_bytes());
            ip[ipv4::field::LENGTH].copy_from_slice(&(udp_len + ip_len).to_be_bytes());
            if !offload {
                let c = checksum::checksum(ip);
                ip[ipv4::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
            }
        }
        let dgram = &mut frame[hlen - udp::HEADER_LEN..];
        dgram[udp::field::LENGTH].copy_from_slice(&udp_len.to_be_bytes());
        let pseudo = checksum::add_u16(self.pseudo, udp_len);
        let c = if offload {
            checksum::fold(pseudo)
        } else {
            match checksum::finish(checksum::add(pseudo, dgram)) {
                0 => 0xffff,
                c => c,
            }
        };
        dgram[udp::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        Ok(ip_len)
    }
}

/// Writes the outer headers into `frame[..header_len(&o.dst)]`; the UDP
/// payload (the WireGuard message) is `frame[header_len..]`, with IPv4
/// identification 0: for the control thread's handshake messages, at
/// most 148 bytes of UDP payload, which no IPv4 link (576 bytes at least)
/// needs to fragment. With
/// `offload`, the IPv4 header checksum is left 0 and the UDP checksum field
/// holds the pseudo-header sum, for the NIC to finish; otherwise both are
/// computed here. Returns the IP header length (for the offload request).
#[inline]
pub fn write(frame: &mut [u8], o: &Outer, offload: bool) -> Result<u16, OuterError> {
    Template::new(o.src_mac, o.dst_mac, o.src, o.dst)?.write(frame, o.ecn, 0, offload)
}

/// A peer's outer headers as last built: valid while its endpoint, the
/// local address it last reached, the source port and the worker's
/// tunnel-side neighbour table are what they were (the port's addresses
/// and gateways do not change while it runs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OuterCache {
    endpoint: SocketAddr,
    local: Option<IpAddr>,
    src_port: u16,
    /// The tunnel-side neighbours' generation it was built at
    /// ([`Neighbours::tunnel_generation`]).
    generation: u32,
    pub(crate) template: Template,
    /// Whether the next hop's MAC was known (else the frame goes to the
    /// control thread, which resolves it).
    pub(crate) resolved: bool,
}

impl OuterCache {
    /// Routes to `endpoint` on the tunnel port `net`: our source address
    /// for it (`local`, the address it last reached, while that is ours),
    /// its next hop and that hop's MAC from `neigh`.
    pub(crate) fn build(
        net: &PortNet,
        neigh: &Neighbours,
        endpoint: SocketAddr,
        local: Option<IpAddr>,
        src_port: u16,
    ) -> Result<Self, DropReason> {
        let generation = neigh.tunnel_generation();
        let src_ip = net
            .source_from(endpoint.ip(), local)
            .ok_or(DropReason::NoEndpoint)?;
        let hop = net.next_hop(endpoint.ip()).ok_or(DropReason::NoEndpoint)?;
        let dst_mac = neigh.tunnel(hop);
        let template = Template::new(
            net.mac,
            dst_mac.unwrap_or([0; 6]),
            SocketAddr::new(src_ip, src_port),
            endpoint,
        )
        .map_err(|_| DropReason::NoEndpoint)?;
        Ok(Self {
            endpoint,
            local,
            src_port,
            generation,
            template,
            resolved: dst_mac.is_some(),
        })
    }

    /// Whether it still describes packets to `endpoint` (which reached us
    /// at `local`) from `src_port`.
    #[inline(always)]
    pub(crate) fn serves(
        &self,
        endpoint: SocketAddr,
        local: Option<IpAddr>,
        src_port: u16,
        neigh: &Neighbours,
    ) -> bool {
        self.generation == neigh.tunnel_generation()
            && self.src_port == src_port
            && self.endpoint == endpoint
            && self.local == local
    }
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
    fn one_template_serves_every_length_and_ecn() {
        for (src, dst) in [
            ("192.0.2.1:51820", "198.51.100.7:40000"),
            ("[2001:db8::1]:51820", "[2001:db8::2]:1234"),
        ] {
            let o = outer(src, dst);
            let t = Template::new(o.src_mac, o.dst_mac, o.src, o.dst).unwrap();
            assert_eq!(t.header_len(), header_len(&o.dst));
            assert_eq!(t.is_ipv6(), o.dst.is_ipv6());
            let h = t.header_len();
            // One frame written again and again: nothing of an earlier
            // packet's lengths, ECN or checksums may survive.
            let mut frame = vec![0xa5u8; h + 1452];
            for (len, ecn, offload) in [(1452, 0b11, false), (32, 0b01, true), (0, 0, false)] {
                let f = &mut frame[..h + len];
                f[h..].fill(len as u8);
                let ip_len = t.write(f, ecn, len as u16, offload).unwrap();
                let c = classify(f).expect("parses");
                assert_eq!(
                    c.udp.map(|u| (u.src, u.dst)),
                    Some((o.src.port(), o.dst.port()))
                );
                assert_eq!(&f[0..6], &o.dst_mac);
                assert_eq!(&f[6..12], &o.src_mac);
                let (udp_at, pseudo) = if o.dst.is_ipv6() {
                    let ip = ipv6::Packet::new_checked(&f[14..]).unwrap();
                    assert_eq!(ip_len, 40);
                    assert_eq!(ip.payload_len(), 8 + len);
                    assert_eq!((f[15] >> 4) & 0b11, ecn, "traffic class ECN");
                    let u = udp::Packet::new_checked(ip.payload()).unwrap();
                    assert!(offload || u.verify_checksum_v6(&ip.src_addr(), &ip.dst_addr()));
                    let p = checksum::pseudo_header_v6(
                        &ip.src_addr(),
                        &ip.dst_addr(),
                        17,
                        8 + len as u32,
                    );
                    (54, p)
                } else {
                    let ip = ipv4::Packet::new_checked(&f[14..]).unwrap();
                    assert_eq!(ip_len, 20);
                    assert_eq!(ip.total_len(), 28 + len);
                    assert_eq!(ip.dscp_ecn(), ecn);
                    assert_eq!(ip.ttl(), OUTER_TTL);
                    assert_eq!(ip.ident(), len as u16);
                    assert!(!ip.dont_frag(), "no DF, as the kernel sends");
                    if offload {
                        assert_eq!(ip.checksum(), 0, "left to the NIC");
                    } else {
                        assert!(ip.verify_checksum());
                    }
                    let u = udp::Packet::new_checked(ip.payload()).unwrap();
                    assert!(offload || u.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
                    let p = checksum::pseudo_header_v4(
                        ip.src_addr(),
                        ip.dst_addr(),
                        17,
                        8 + len as u16,
                    );
                    (34, p)
                };
                let u = udp::Packet::new_checked(&f[udp_at..]).unwrap();
                assert_eq!(usize::from(u.length()), 8 + len);
                if offload {
                    assert_eq!(u.checksum(), checksum::fold(pseudo), "pseudo-header sum");
                }
                assert!(f[h..].iter().all(|&b| b == len as u8), "payload untouched");
            }
        }
    }

    #[test]
    fn a_frame_shorter_than_the_headers_is_an_error() {
        let o = outer("192.0.2.1:1", "192.0.2.2:2");
        let t = Template::new(o.src_mac, o.dst_mac, o.src, o.dst).unwrap();
        let mut frame = vec![0u8; t.header_len() - 1];
        assert_eq!(t.write(&mut frame, 0, 0, false), Err(OuterError::BadLength));
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
