//! A frame's IP and UDP headers read ahead of its handling, through the
//! layers' views, for the worker's look-ahead over a burst (prefetch hints
//! and lookups done together): untagged Ethernet only (a tagged or other
//! frame gives `None`), an IPv6 extension header is not followed. When the
//! frame is handled, its own [`classify`](super::classify) decides.

use std::net::IpAddr;

use super::{ethernet, get_u16, ipv4, ipv6, udp};

/// The IP packet of an untagged Ethernet frame: (IPv6, its bytes).
///
/// The EtherType is read at its named field once the length is known, not
/// through [`ethernet::Frame::new_checked`], whose checks cost a 1024-peer
/// encap 5-8 % in every size (BENCHMARKS.md, "The look-ahead's header
/// read"); a tagged frame's EtherType is the tag's, and matches neither.
fn ip_packet(frame: &[u8]) -> Option<(bool, &[u8])> {
    let l3 = frame.get(ethernet::HEADER_LEN..)?;
    match get_u16(frame, ethernet::field::ETHERTYPE) {
        ethernet::ethertype::IPV4 => Some((false, l3)),
        ethernet::ethertype::IPV6 => Some((true, l3)),
        _ => None,
    }
}

/// The destination address of the IP packet in `frame`.
pub(crate) fn ip_destination(frame: &[u8]) -> Option<IpAddr> {
    match ip_packet(frame)? {
        (false, p) => Some(ipv4::Packet::new_checked(p).ok()?.dst_addr().into()),
        (true, p) => Some(ipv6::Packet::new_checked(p).ok()?.dst_addr().into()),
    }
}

/// The UDP payload of the IP packet in `frame` (not checked to be UDP).
pub(crate) fn udp_payload(frame: &[u8]) -> Option<&[u8]> {
    let l4 = match ip_packet(frame)? {
        (false, p) => p.get(ipv4::Packet::new_checked(p).ok()?.header_len()..)?,
        (true, p) => p.get(ipv6::HEADER_LEN..)?,
    };
    l4.get(udp::HEADER_LEN..)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::outer::{self, Outer};

    /// An untagged UDP frame to `dst` carrying `payload`, as a peer sends it.
    fn frame(dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        let src = match dst {
            SocketAddr::V4(_) => SocketAddr::from(([192, 0, 2, 2], 51820)),
            SocketAddr::V6(_) => "[2001:db8::2]:51820".parse().expect("address"),
        };
        let o = Outer {
            src_mac: [2; 6],
            dst_mac: [4; 6],
            src,
            dst,
            ecn: 0,
        };
        let h = outer::header_len(&dst);
        let mut f = vec![0u8; h + payload.len()];
        f[h..].copy_from_slice(payload);
        outer::write(&mut f, &o, false).expect("outer");
        f
    }

    #[test]
    fn the_look_ahead_reads_the_destination_and_udp_payload_over_ipv4_and_ipv6_only() {
        let payload = [7u8; 48];
        let v4 = SocketAddr::from(([192, 0, 2, 1], 51820));
        let v6: SocketAddr = "[2001:db8::1]:51820".parse().expect("address");
        for dst in [v4, v6] {
            let f = frame(dst, &payload);
            assert_eq!(ip_destination(&f), Some(dst.ip()));
            assert_eq!(udp_payload(&f), Some(&payload[..]));
        }
        // Cut inside the IP header, tagged (the tag's EtherType first), or
        // ARP: nothing read.
        let f = frame(v4, &payload);
        assert_eq!(ip_destination(&f[..14 + 19]), None);
        assert_eq!(udp_payload(&f[..14 + 19]), None);
        let mut tagged = f.clone();
        tagged[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        assert_eq!(
            (ip_destination(&tagged), udp_payload(&tagged)),
            (None, None)
        );
        let mut arp = f;
        arp[12..14].copy_from_slice(&ethernet::ethertype::ARP.to_be_bytes());
        assert_eq!((ip_destination(&arp), udp_payload(&arp)), (None, None));
    }
}
