//! 802.1Q VLANs through real workers (`common::two`, cache-0 pool): on
//! untagged ports a tagged frame is dropped and counted (a priority tag,
//! VLAN 0, is the untagged network's); on ports running `vlan = 100`,
//! frames tagged 100 pass both ways and leave tagged 100, and untagged or
//! other VLANs' frames are dropped and counted.

mod common;

use std::time::Duration;

use common::two::*;
use common::*;
use dataplane::command::PortSide::{Plaintext, Tunnel};
use dataplane::counters::{DropReason, Event};
use dataplane::wire::{ethernet, ipv4};
use protocol::time::Instant;

/// `frame` with an 802.1Q tag (`tpid`, VLAN `vid`) after its MACs.
fn tagged(frame: &[u8], tpid: u16, vid: u16) -> Vec<u8> {
    [
        &frame[..12],
        &tpid.to_be_bytes()[..],
        &vid.to_be_bytes()[..],
        &frame[12..],
    ]
    .concat()
}

/// The VLAN id of a frame's 802.1Q tag, `None` when untagged.
fn vid(frame: &[u8]) -> Option<u16> {
    (frame[12..14] == [0x81, 0x00]).then(|| u16::from_be_bytes([frame[14], frame[15]]) & 0xfff)
}

fn lan_frame(seq: u8) -> Vec<u8> {
    let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, &[seq; 20]);
    ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan)
}

#[test]
fn untagged_ports_drop_tagged_frames_and_count_them() {
    two_workers(1, |rig, kp| {
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"hello");
        // Another VLAN's frames, on both ports, with each kind of TPID.
        rig.send(Tunnel, 0, &tagged(&sealed_frame(kp, &inner), 0x8100, 7));
        rig.send(Tunnel, 0, &tagged(&sealed_frame(kp, &inner), 0x88a8, 7));
        rig.send(Plaintext, 0, &tagged(&lan_frame(1), 0x8100, 7));
        rig.send(Plaintext, 0, &tagged(&lan_frame(2), 0x9100, 7));
        assert_eq!(rig.wait_total(|c| c.drops(DropReason::Vlan), 4), 4);
        assert!(rig
            .collect(Plaintext, 0, Duration::from_millis(100))
            .is_empty());
        // A priority tag (VLAN 0) is the untagged network's: accepted,
        // and what leaves is untagged.
        rig.send(
            Tunnel,
            0,
            &tagged(&sealed_frame(kp, &inner), 0x8100, 0x6000),
        );
        let out = rig.collect(Plaintext, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1, "priority-tagged data decapsulated");
        let f = &out[0].1;
        assert_eq!(vid(f), None);
        let ip = ipv4::Packet::new_checked(&f[14..]).expect("inner IPv4");
        assert_eq!(ip.ttl(), 63);
        assert!(ip.verify_checksum());
        assert_eq!(&f[14 + 20..], &inner[20..]);
        rig.dump();
        assert_eq!(rig.total(|c| c.drops(DropReason::Vlan)), 4);
        assert_eq!(rig.total(|c| c.total_drops()), 4);
        assert_eq!(rig.total(|c| c.events(Event::Decapsulated)), 1);
        assert_eq!(rig.total(|c| c.events(Event::Encapsulated)), 0);
    });
}

#[test]
fn ports_running_a_vlan_pass_its_frames_tagged_and_drop_the_rest() {
    two_workers_vlan(1, Some(100), |rig, kp| {
        // The peer's data, tagged 100 (priority bits set: ignored).
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"hello");
        rig.send(
            Tunnel,
            0,
            &tagged(&sealed_frame(kp, &inner), 0x8100, 0xa064),
        );
        let out = rig.collect(Plaintext, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1, "decapsulated");
        let f = &out[0].1;
        assert_eq!(vid(f), Some(100), "leaves tagged 100");
        assert_eq!(&f[16..18], &ethernet::ethertype::IPV4.to_be_bytes());
        let ip = ipv4::Packet::new_checked(&f[18..]).expect("inner IPv4 after the tag");
        assert_eq!(ip.ttl(), 63);
        assert_eq!(&f[18 + 20..], &inner[20..]);

        // LAN traffic tagged 100: encrypted, the outer frame tagged 100.
        rig.send(Plaintext, 0, &tagged(&lan_frame(3), 0x8100, 100));
        let out = rig.collect(Tunnel, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1, "encapsulated");
        let f = &out[0].1;
        assert_eq!(vid(f), Some(100));
        let outer_ip = ipv4::Packet::new_checked(&f[18..]).expect("outer IPv4 after the tag");
        assert!(outer_ip.verify_checksum());
        assert_eq!(outer_ip.dst_addr(), PEER_EP.octets());
        let mut msg = f[18 + 20 + 8..].to_vec();
        let plain = kp
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert_eq!(&plain[28..48], &[3u8; 20]);

        // Untagged, and VLAN 200, on either port: not this port's.
        rig.send(Tunnel, 0, &sealed_frame(kp, &inner));
        rig.send(Tunnel, 0, &tagged(&sealed_frame(kp, &inner), 0x8100, 200));
        rig.send(Plaintext, 0, &lan_frame(4));
        rig.send(Plaintext, 0, &tagged(&lan_frame(5), 0x8100, 200));
        assert_eq!(rig.wait_total(|c| c.drops(DropReason::Vlan), 4), 4);
        assert!(rig
            .collect(Plaintext, 0, Duration::from_millis(100))
            .is_empty());
        assert!(rig
            .collect(Tunnel, 0, Duration::from_millis(100))
            .is_empty());
        rig.dump();
        assert_eq!(rig.total(|c| c.total_drops()), 4);
        assert_eq!(rig.total(|c| c.events(Event::Decapsulated)), 1);
        assert_eq!(rig.total(|c| c.events(Event::Encapsulated)), 1);
    });
}
