//! The dataplane's frame classifier (`dataplane::wire::classify`), which
//! every received frame goes through on both ports, then every view it
//! vouched for. Checked: nothing panics (the views' `debug_assert!`s are
//! on in fuzz builds); the offsets stay inside the frame; each view the
//! classification names parses at its offset; the TTL / hop-limit
//! decrement keeps a valid IPv4 checksum valid.
#![no_main]

use dataplane::wire::{arp, classify, ethernet, ipv4, ipv6, udp, L3Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let Ok(c) = classify(frame) else {
        return;
    };
    let eth = ethernet::Frame::new_checked(frame).expect("classified frame has an Ethernet header");
    assert_eq!(eth.header_len(), c.l3_offset);
    assert_eq!(eth.vlan_tci(), c.vlan_tci);
    let repr = ethernet::Repr::parse(&eth);
    let mut header = [0u8; 18];
    let n = repr.emit(&mut header).expect("room for the header");
    assert_eq!(
        &header[..n],
        &frame[..n],
        "Ethernet header does not round-trip"
    );
    let l3 = &frame[c.l3_offset..];
    let end = match c.l3 {
        L3Kind::Ipv4 => {
            let ip = ipv4::Packet::new_checked(l3).expect("classified IPv4");
            assert!(ip.header_len() <= ip.total_len() && ip.total_len() <= l3.len());
            assert_eq!(c.fragment, ip.is_fragment());
            let _ = (
                ip.options(),
                ip.payload(),
                ip.dscp_ecn(),
                ip.ident(),
                ip.dont_frag(),
            );
            let valid = ip.verify_checksum();
            let mut copy = l3.to_vec();
            if let Ok(mut ip2) = ipv4::Packet::new_checked(&mut copy[..]) {
                if ip2.decrement_ttl() && valid {
                    assert!(ip2.verify_checksum(), "TTL decrement broke the checksum");
                }
            }
            c.l3_offset + ip.total_len()
        }
        L3Kind::Ipv6 => {
            let ip = ipv6::Packet::new_checked(l3).expect("classified IPv6");
            assert!(ip.total_len() <= l3.len());
            assert_eq!(c.fragment, ip.is_fragment());
            let _ = (ip.traffic_class(), ip.flow_label(), ip.payload());
            let mut copy = l3.to_vec();
            if let Ok(mut ip2) = ipv6::Packet::new_checked(&mut copy[..]) {
                let before = ip2.hop_limit();
                if ip2.decrement_hop_limit() {
                    assert_eq!(ip2.hop_limit(), before - 1);
                }
            }
            c.l3_offset + ip.total_len()
        }
        L3Kind::Arp => {
            let p = arp::Packet::new_checked(l3).expect("classified ARP");
            let repr = arp::Repr::parse(&p);
            let mut buf = [0u8; arp::PACKET_LEN];
            repr.emit(&mut buf).expect("room");
            let back = arp::Packet::new_checked(&buf[..]).expect("emitted ARP parses");
            assert_eq!(arp::Repr::parse(&back), repr);
            let _ = repr.reply([2, 0, 0, 0, 0, 1]);
            frame.len()
        }
        L3Kind::Other(_) => frame.len(),
    };
    assert!(end <= frame.len());
    if let Some(l4) = c.l4_offset {
        assert!(l4 <= end, "L4 offset past the IP packet");
    }
    if let Some(ports) = c.udp {
        let l4 = c.l4_offset.expect("UDP without an L4 offset");
        let u = udp::Packet::new_checked(&frame[l4..end]).expect("classified UDP");
        assert_eq!((u.src_port(), u.dst_port()), (ports.src, ports.dst));
        let _ = u.payload();
        match c.l3 {
            L3Kind::Ipv4 => {
                let ip = ipv4::Packet::new_checked(l3).expect("IPv4");
                let _ = u.verify_checksum_v4(ip.src_addr(), ip.dst_addr());
                assert_ne!(u.compute_checksum_v4(ip.src_addr(), ip.dst_addr()), 0);
            }
            L3Kind::Ipv6 => {
                let ip = ipv6::Packet::new_checked(l3).expect("IPv6");
                let _ = u.verify_checksum_v6(&ip.src_addr(), &ip.dst_addr());
                assert_ne!(u.compute_checksum_v6(&ip.src_addr(), &ip.dst_addr()), 0);
            }
            _ => panic!("UDP ports outside IP"),
        }
    }
});
