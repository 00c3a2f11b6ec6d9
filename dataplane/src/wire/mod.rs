//! Zero-copy views over packet bytes, one module per layer.
//!
//! Each layer has a view type (`ethernet::Frame`, `arp::Packet`,
//! `ipv4::Packet`, `ipv6::Packet`, `udp::Packet`) generic over its buffer:
//! `&[u8]` to read, `&mut [u8]` to rewrite fields in place. A view is only
//! made by `new_checked`, which validates every length the getters rely on
//! (fixed header, header-length and total-length fields) and returns a
//! [`ParseError`] otherwise, so getters and setters never read or write out
//! of bounds and nothing here panics on input. Field offsets are named in each
//! module's `field` submodule; `Repr` types write fresh headers (`emit`) where
//! the data path builds them, and [`classify`] does the per-frame dispatch.
//!
//! Nothing here allocates and nothing depends on DPDK: the views work on the
//! bytes of an mbuf as well as on a test array.

use core::fmt;
use core::ops::Range;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub(crate) mod peek;
pub mod udp;

/// Why bytes could not be viewed as a header (or a header not written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The buffer is shorter than the fixed header, than a length field in
    /// the header says it is (IPv4 header length or total length, IPv6
    /// payload length, UDP length, VLAN tag), or, when emitting, than the
    /// header to be written.
    Truncated,
    /// The IP version field does not match the view (4 for IPv4, 6 for IPv6).
    BadVersion,
    /// The IPv4 header length (IHL) is below the minimum of 5 words.
    BadHeaderLength,
    /// The IPv4 total length is smaller than the header length, or a header
    /// to be emitted would carry more than 65535 bytes.
    BadTotalLength,
    /// The UDP length field is below the 8-byte header, or a datagram to be
    /// emitted would exceed 65535 bytes.
    BadUdpLength,
    /// A well-formed header this code does not handle: ARP other than for
    /// Ethernet hardware addresses and IPv4 protocol addresses.
    Unsupported,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ParseError::Truncated => "buffer shorter than the header or its length fields",
            ParseError::BadVersion => "wrong IP version",
            ParseError::BadHeaderLength => "IPv4 header length below 20 bytes",
            ParseError::BadTotalLength => "IPv4 total length below the header length or too large",
            ParseError::BadUdpLength => "UDP length below 8 bytes or too large",
            ParseError::Unsupported => "unsupported ARP hardware or protocol type",
        };
        f.write_str(what)
    }
}

impl std::error::Error for ParseError {}

/// IP protocol numbers (IPv4 protocol field, IPv6 next header field).
pub mod ip_protocol {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// The IPv6 fragment extension header.
    pub const IPV6_FRAGMENT: u8 = 44;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
}

/// The network-layer protocol of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3Kind {
    /// IPv4 (EtherType 0x0800).
    Ipv4,
    /// IPv6 (EtherType 0x86dd).
    Ipv6,
    /// ARP for IPv4 over Ethernet (EtherType 0x0806).
    Arp,
    /// Anything else; carries the EtherType.
    Other(u16),
}

/// UDP ports of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpPorts {
    /// Source port.
    pub src: u16,
    /// Destination port.
    pub dst: u16,
}

/// What the data path needs to know about a frame to dispatch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classification {
    /// The network-layer protocol.
    pub l3: L3Kind,
    /// The 802.1Q tag control information, if the frame carries one tag.
    pub vlan_tci: Option<u16>,
    /// Offset of the network-layer header in the frame.
    pub l3_offset: usize,
    /// Offset of the header named by `protocol`: the IPv4 payload, or what
    /// follows the fixed IPv6 header (extension headers are not walked).
    /// `None` for ARP and other EtherTypes, and for IPv4 fragments other
    /// than the first.
    pub l4_offset: Option<usize>,
    /// The IPv4 protocol or IPv6 next header; `None` for ARP and others.
    pub protocol: Option<u8>,
    /// Whether the IP packet is a fragment (IPv4 MF flag or nonzero offset;
    /// IPv6 next header 44).
    pub fragment: bool,
    /// The ports of an unfragmented UDP datagram whose header is valid.
    pub udp: Option<UdpPorts>,
}

/// Classifies an Ethernet frame: validates the Ethernet header (one optional
/// VLAN tag), the IPv4/IPv6/ARP header, and the UDP header of unfragmented
/// UDP packets, and reports where each starts. Fails with the first layer's
/// error; other EtherTypes are reported as [`L3Kind::Other`] without looking
/// further.
pub fn classify(frame: &[u8]) -> Result<Classification, ParseError> {
    let eth = ethernet::Frame::new_checked(frame)?;
    let l3_offset = eth.header_len();
    let mut out = Classification {
        l3: L3Kind::Other(eth.ethertype()),
        vlan_tci: eth.vlan_tci(),
        l3_offset,
        l4_offset: None,
        protocol: None,
        fragment: false,
        udp: None,
    };
    let l4 = match eth.ethertype() {
        ethernet::ethertype::IPV4 => {
            let ip = ipv4::Packet::new_checked(eth.payload())?;
            out.l3 = L3Kind::Ipv4;
            out.protocol = Some(ip.protocol());
            out.fragment = ip.is_fragment();
            if ip.frag_offset() == 0 {
                out.l4_offset = Some(l3_offset + ip.header_len());
            }
            (l3_offset + ip.header_len())..(l3_offset + ip.total_len())
        }
        ethernet::ethertype::IPV6 => {
            let ip = ipv6::Packet::new_checked(eth.payload())?;
            out.l3 = L3Kind::Ipv6;
            out.protocol = Some(ip.next_header());
            out.fragment = ip.is_fragment();
            out.l4_offset = Some(l3_offset + ipv6::HEADER_LEN);
            (l3_offset + ipv6::HEADER_LEN)..(l3_offset + ip.total_len())
        }
        ethernet::ethertype::ARP => {
            arp::Packet::new_checked(eth.payload())?;
            out.l3 = L3Kind::Arp;
            return Ok(out);
        }
        _ => return Ok(out),
    };
    if out.protocol == Some(ip_protocol::UDP) && !out.fragment {
        let udp = udp::Packet::new_checked(slice(frame, l4))?;
        out.udp = Some(UdpPorts {
            src: udp.src_port(),
            dst: udp.dst_port(),
        });
    }
    Ok(out)
}

/// Reads one byte of a validated buffer (0 if out of range, which the views'
/// length checks rule out).
#[inline]
fn get_u8(buf: &[u8], at: usize) -> u8 {
    debug_assert!(at < buf.len());
    buf.get(at).copied().unwrap_or(0)
}

/// Reads a fixed-size field of a validated buffer (zeros if out of range,
/// which the views' length checks rule out).
#[inline]
fn get_array<const N: usize>(buf: &[u8], range: Range<usize>) -> [u8; N] {
    debug_assert!(range.end <= buf.len() && range.len() == N);
    buf.get(range)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

/// Reads a big-endian `u16` field of a validated buffer.
#[inline]
fn get_u16(buf: &[u8], range: Range<usize>) -> u16 {
    u16::from_be_bytes(get_array(buf, range))
}

/// Writes one byte of a validated buffer.
#[inline]
fn set_u8(buf: &mut [u8], at: usize, value: u8) {
    debug_assert!(at < buf.len());
    if let Some(b) = buf.get_mut(at) {
        *b = value;
    }
}

/// Writes a field of a validated buffer; `bytes` has the field's length.
#[inline]
fn set_bytes(buf: &mut [u8], range: Range<usize>, bytes: &[u8]) {
    debug_assert!(range.end <= buf.len() && range.len() == bytes.len());
    if let Some(dst) = buf.get_mut(range) {
        if dst.len() == bytes.len() {
            dst.copy_from_slice(bytes);
        }
    }
}

/// Writes a big-endian `u16` field of a validated buffer.
#[inline]
fn set_u16(buf: &mut [u8], range: Range<usize>, value: u16) {
    set_bytes(buf, range, &value.to_be_bytes());
}

/// The sub-slice `range` of a validated buffer (empty if out of range, which
/// the views' length checks rule out).
#[inline]
fn slice(buf: &[u8], range: Range<usize>) -> &[u8] {
    debug_assert!(range.start <= range.end && range.end <= buf.len());
    buf.get(range).unwrap_or(&[])
}

/// The mutable sub-slice `range` of a validated buffer.
#[inline]
fn slice_mut(buf: &mut [u8], range: Range<usize>) -> &mut [u8] {
    debug_assert!(range.start <= range.end && range.end <= buf.len());
    buf.get_mut(range).unwrap_or(&mut [])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

    /// Ethernet (optionally tagged) + IPv4 + UDP 51820 -> 12345 + 5 bytes.
    fn udp4_frame(vlan_tci: Option<u16>, flags_frag: u16) -> ([u8; 64], usize) {
        let mut b = [0u8; 64];
        let eth = ethernet::Repr {
            dst: MAC_A,
            src: MAC_B,
            vlan_tci,
            ethertype: ethernet::ethertype::IPV4,
        };
        let l3 = eth.emit(&mut b).expect("room");
        let ip = ipv4::Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: ip_protocol::UDP,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: false,
            payload_len: 13,
        };
        let l4 = l3 + ip.emit(&mut b[l3..]).expect("room");
        b[l3 + 6..l3 + 8].copy_from_slice(&flags_frag.to_be_bytes());
        let udp = udp::Repr {
            src_port: 51820,
            dst_port: 12345,
            payload_len: 5,
        };
        let end = l4 + udp.emit(&mut b[l4..]).expect("room") + 5;
        b[l4 + 8..end].copy_from_slice(b"hello");
        (b, end)
    }

    /// Ethernet (optionally tagged) + IPv6 + UDP 51820 -> 51820 + 4 bytes.
    fn udp6_frame(vlan_tci: Option<u16>, next_header: u8) -> ([u8; 80], usize) {
        let mut b = [0u8; 80];
        let eth = ethernet::Repr {
            dst: MAC_A,
            src: MAC_B,
            vlan_tci,
            ethertype: ethernet::ethertype::IPV6,
        };
        let l3 = eth.emit(&mut b).expect("room");
        let mut src = [0u8; 16];
        src[0] = 0xfd;
        let ip = ipv6::Repr {
            src,
            dst: src,
            next_header,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 12,
        };
        let l4 = l3 + ip.emit(&mut b[l3..]).expect("room");
        let udp = udp::Repr {
            src_port: 51820,
            dst_port: 51820,
            payload_len: 4,
        };
        let end = l4 + udp.emit(&mut b[l4..]).expect("room") + 4;
        (b, end)
    }

    fn arp_frame() -> [u8; 42] {
        let mut b = [0u8; 42];
        let eth = ethernet::Repr {
            dst: ethernet::BROADCAST,
            src: MAC_B,
            vlan_tci: None,
            ethertype: ethernet::ethertype::ARP,
        };
        let l3 = eth.emit(&mut b).expect("room");
        let req = arp::Repr {
            operation: arp::operation::REQUEST,
            sender_hw: MAC_B,
            sender_ip: [10, 0, 0, 1],
            target_hw: [0; 6],
            target_ip: [10, 0, 0, 2],
        };
        req.emit(&mut b[l3..]).expect("room");
        b
    }

    #[test]
    fn classifies_udp_over_ipv4() {
        let (b, end) = udp4_frame(None, 0);
        let c = classify(&b[..end]).expect("valid");
        assert_eq!(
            c,
            Classification {
                l3: L3Kind::Ipv4,
                vlan_tci: None,
                l3_offset: 14,
                l4_offset: Some(34),
                protocol: Some(ip_protocol::UDP),
                fragment: false,
                udp: Some(UdpPorts {
                    src: 51820,
                    dst: 12345
                }),
            }
        );
        // Ethernet padding after the IP packet changes nothing.
        assert_eq!(classify(&b[..60]), Ok(c));
    }

    #[test]
    fn classifies_udp_over_ipv6_in_a_vlan() {
        let (b, end) = udp6_frame(Some(100), ip_protocol::UDP);
        let c = classify(&b[..end]).expect("valid");
        assert_eq!(c.l3, L3Kind::Ipv6);
        assert_eq!(c.vlan_tci, Some(100));
        assert_eq!(c.l3_offset, 18);
        assert_eq!(c.l4_offset, Some(58));
        assert_eq!(c.protocol, Some(ip_protocol::UDP));
        assert!(!c.fragment);
        assert_eq!(
            c.udp,
            Some(UdpPorts {
                src: 51820,
                dst: 51820
            })
        );
    }

    #[test]
    fn classifies_arp_and_other_ethertypes() {
        let b = arp_frame();
        let c = classify(&b).expect("valid");
        assert_eq!(c.l3, L3Kind::Arp);
        assert_eq!(c.l3_offset, 14);
        assert_eq!((c.l4_offset, c.protocol, c.udp), (None, None, None));
        let mut lldp = [0u8; 60];
        lldp[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        let c = classify(&lldp).expect("valid");
        assert_eq!(c.l3, L3Kind::Other(0x88cc));
        assert_eq!((c.l4_offset, c.protocol, c.udp), (None, None, None));
    }

    #[test]
    fn ipv4_fragments_have_no_ports() {
        // First fragment: MF set, offset 0; the UDP header is there.
        let (b, end) = udp4_frame(None, 0x2000);
        let c = classify(&b[..end]).expect("valid");
        assert!(c.fragment);
        assert_eq!(c.l4_offset, Some(34));
        assert_eq!(c.udp, None);
        // A later fragment: offset 8 bytes; no L4 header at all.
        let (b, end) = udp4_frame(None, 0x0001);
        let c = classify(&b[..end]).expect("valid");
        assert!(c.fragment);
        assert_eq!(c.l4_offset, None);
        assert_eq!(c.udp, None);
    }

    #[test]
    fn ipv6_fragment_header_is_reported_not_parsed() {
        let (b, end) = udp6_frame(None, ip_protocol::IPV6_FRAGMENT);
        let c = classify(&b[..end]).expect("valid");
        assert!(c.fragment);
        assert_eq!(c.protocol, Some(ip_protocol::IPV6_FRAGMENT));
        assert_eq!(c.l4_offset, Some(54));
        assert_eq!(c.udp, None);
    }

    #[test]
    fn rejects_every_truncation() {
        let (b4, end4) = udp4_frame(Some(7), 0);
        let (b6, end6) = udp6_frame(None, ip_protocol::UDP);
        let arp = arp_frame();
        for frame in [&b4[..end4], &b6[..end6], &arp[..]] {
            assert!(classify(frame).is_ok());
            for n in 0..frame.len() {
                assert_eq!(
                    classify(&frame[..n]),
                    Err(ParseError::Truncated),
                    "length {n}"
                );
            }
        }
    }

    #[test]
    fn reports_errors_of_inner_layers() {
        let (mut b, end) = udp4_frame(None, 0);
        b[14] = 0x55;
        assert_eq!(classify(&b[..end]), Err(ParseError::BadVersion));
        let (mut b, end) = udp4_frame(None, 0);
        b[34 + 5] = 7; // UDP length 7
        assert_eq!(classify(&b[..end]), Err(ParseError::BadUdpLength));
        let mut a = arp_frame();
        a[15] = 6; // hardware type 6
        assert_eq!(classify(&a), Err(ParseError::Unsupported));
    }

    #[test]
    fn random_frames_never_panic_and_offsets_stay_in_bounds() {
        // xorshift64; frames biased towards plausible headers so that the
        // deeper layers are reached, not just rejected at the first byte.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut buf = [0u8; 128];
        let (mut accepted, mut with_ports) = (0, 0);
        for _ in 0..50_000 {
            for b in buf.iter_mut() {
                *b = next() as u8;
            }
            let tagged = next() % 4 == 0;
            let l3 = if tagged {
                buf[12..14].copy_from_slice(&ethernet::ethertype::VLAN.to_be_bytes());
                18
            } else {
                14
            };
            let et = [
                ethernet::ethertype::IPV4,
                ethernet::ethertype::IPV6,
                ethernet::ethertype::ARP,
            ][(next() % 3) as usize];
            buf[l3 - 2..l3].copy_from_slice(&et.to_be_bytes());
            match et {
                ethernet::ethertype::IPV4 => {
                    buf[l3] = 0x45 + (next() % 2) as u8;
                    buf[l3 + 2] = 0;
                    buf[l3 + 6] &= 0x20; // mostly unfragmented
                    buf[l3 + 7] = 0;
                    buf[l3 + 9] = ip_protocol::UDP;
                    buf[l3 + 24] = 0;
                }
                ethernet::ethertype::IPV6 => {
                    buf[l3] = 0x60;
                    buf[l3 + 4] = 0;
                    buf[l3 + 6] = ip_protocol::UDP;
                    buf[l3 + 44] = 0;
                }
                _ => buf[l3..l3 + 6].copy_from_slice(&[0, 1, 8, 0, 6, 4]),
            }
            let len = (next() % buf.len() as u64) as usize;
            if let Ok(c) = classify(&buf[..len]) {
                accepted += 1;
                assert!(c.l3_offset <= len);
                if let Some(l4) = c.l4_offset {
                    assert!(l4 <= len);
                }
                if c.udp.is_some() {
                    with_ports += 1;
                    assert!(c.l4_offset.is_some_and(|l4| l4 + udp::HEADER_LEN <= len));
                }
            }
        }
        assert!(accepted > 1000, "{accepted} frames accepted");
        assert!(with_ports > 100, "{with_ports} UDP datagrams accepted");
    }

    #[test]
    fn errors_display_a_reason() {
        assert_eq!(ParseError::BadVersion.to_string(), "wrong IP version");
    }
}
