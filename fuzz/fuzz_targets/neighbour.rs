//! The control thread's exception-path parsers: ARP (`handle_arp`) and
//! IPv6 neighbour discovery (`handle_nd`), which see every ARP frame and
//! every ICMPv6 NS/NA from either port. Checked: nothing panics; a reply
//! is only ever built for one of our addresses, from our MAC; nothing that
//! claims one of our addresses is learned.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use control::neigh::{handle_arp, nd::handle_nd};
use dataplane::wire::{arp, ethernet};
use libfuzzer_sys::fuzz_target;

const OUR_MAC: [u8; 6] = [0x02, 0x77, 0x67, 0x64, 0x70, 0x01];

fuzz_target!(|frame: &[u8]| {
    let ours4 = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(203, 0, 113, 1)];
    let ours6 = [
        control::neigh::nd::link_local(OUR_MAC),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    ];
    if let Ok(action) = handle_arp(frame, OUR_MAC, &ours4) {
        if let Some((ip, _)) = action.learn {
            assert!(!ours4.contains(&ip), "learned one of our own addresses");
        }
        if let Some(reply) = action.reply {
            let eth = ethernet::Frame::new_checked(&reply[..]).expect("reply parses");
            assert_eq!(eth.src(), OUR_MAC);
            let p = arp::Packet::new_checked(eth.payload()).expect("ARP reply parses");
            assert!(ours4.contains(&Ipv4Addr::from(p.sender_ip())));
            assert_eq!(p.sender_hw(), OUR_MAC);
        }
    }
    if let Ok(Some(action)) = handle_nd(frame, OUR_MAC, &ours6) {
        if let Some((ip, _)) = action.learn {
            assert!(!ours6.contains(&ip), "learned one of our own addresses");
        }
        if let Some(reply) = action.reply {
            let eth = ethernet::Frame::new_checked(&reply[..]).expect("reply parses");
            assert_eq!(eth.src(), OUR_MAC);
        }
    }
});
