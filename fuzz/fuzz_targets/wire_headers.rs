//! Each header parser of `dataplane::wire` on its own, fed the input
//! directly (not behind an Ethernet header): IPv4 and IPv6 as the decap
//! path reads a decrypted inner packet, UDP, ARP and Ethernet; then each
//! view's accessors and in-place setters. The first byte picks the parser.
//! Checked: nothing panics; a parsed view's lengths stay inside the
//! buffer; writing a field and reading it back agrees.
#![no_main]

use dataplane::wire::{arp, checksum, ethernet, ipv4, ipv6, udp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let mut buf = bytes.to_vec();
    let _ = checksum::verify(bytes);
    match which % 5 {
        0 => {
            let Ok(mut ip) = ipv4::Packet::new_checked(&mut buf[..]) else {
                return;
            };
            assert!(ip.header_len() >= ipv4::HEADER_LEN && ip.total_len() <= bytes.len());
            assert_eq!(ip.header().len(), ip.header_len());
            assert_eq!(ip.payload().len(), ip.total_len() - ip.header_len());
            let _ = (ip.frag_offset(), ip.more_frags(), ip.compute_checksum());
            ip.set_dst_addr([10, 9, 0, 2]);
            ip.set_ttl(64);
            ip.fill_checksum();
            assert!(ip.verify_checksum());
            assert_eq!((ip.dst_addr(), ip.ttl()), ([10, 9, 0, 2], 64));
            ip.payload_mut().fill(0);
        }
        1 => {
            let Ok(mut ip) = ipv6::Packet::new_checked(&mut buf[..]) else {
                return;
            };
            assert!(ip.total_len() <= bytes.len());
            assert_eq!(ip.payload().len(), ip.payload_len());
            ip.set_src_addr([0xfd; 16]);
            ip.set_next_header(17);
            assert_eq!((ip.src_addr(), ip.next_header()), ([0xfd; 16], 17));
            ip.payload_mut().fill(0);
        }
        2 => {
            let Ok(mut u) = udp::Packet::new_checked(&mut buf[..]) else {
                return;
            };
            assert!(usize::from(u.length()) <= bytes.len());
            assert_eq!(u.payload().len() + udp::HEADER_LEN, usize::from(u.length()));
            u.fill_checksum_v4([192, 0, 2, 1], [198, 51, 100, 7]);
            assert!(u.verify_checksum_v4([192, 0, 2, 1], [198, 51, 100, 7]));
            u.fill_checksum_v6(&[0x20; 16], &[0x30; 16]);
            assert!(u.verify_checksum_v6(&[0x20; 16], &[0x30; 16]));
            u.set_src_port(51820);
            assert_eq!(u.src_port(), 51820);
        }
        3 => {
            let Ok(mut p) = arp::Packet::new_checked(&mut buf[..]) else {
                return;
            };
            let _ = arp::Repr::parse(&p);
            p.set_operation(arp::operation::REPLY);
            p.set_target_ip([10, 0, 0, 1]);
            assert_eq!((p.operation(), p.target_ip()), (2, [10, 0, 0, 1]));
        }
        _ => {
            let Ok(mut f) = ethernet::Frame::new_checked(&mut buf[..]) else {
                return;
            };
            assert!(f.header_len() <= bytes.len());
            assert_eq!(f.payload().len(), bytes.len() - f.header_len());
            f.set_src([2, 0, 0, 0, 0, 1]);
            assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
            f.payload_mut().fill(0);
        }
    }
});
