//! A multi-lane peer on two real workers (`common::two`): both workers
//! encrypt its LAN traffic, each from its own lane port, with disjoint
//! counters the peer accepts; both decrypt its packets, and a packet
//! replayed to the other worker (another lane port, another queue) is
//! refused by the shared replay window.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::two::*;
use common::*;
use dataplane::command::PortSide::{Plaintext, Tunnel};
use dataplane::counters::{DropReason, Event};
use dataplane::wire::ethernet;
use protocol::time::Instant;

/// The outer UDP ports of a frame (IPv4, no options).
fn ports(frame: &[u8]) -> (u16, u16) {
    let u = &frame[14 + 20..];
    (
        u16::from_be_bytes([u[0], u[1]]),
        u16::from_be_bytes([u[2], u[3]]),
    )
}

#[test]
fn both_workers_encrypt_and_decrypt_one_peer_and_replays_across_lanes_are_refused() {
    two_workers(2, |rig, kp| {
        // The peer confirms the session (wgdp responded): the owner
        // promotes the keypair and publishes it to its lane.
        let first = ipv4_udp(PEER_INNER, LAN_HOST, 64, &u32::MAX.to_be_bytes());
        rig.send(Tunnel, 0, &sealed_frame(kp, &first));
        assert_eq!(rig.collect(Plaintext, 1, Duration::from_secs(5)).len(), 1);
        std::thread::sleep(Duration::from_millis(100));

        // Encap: LAN traffic reaching either worker is encrypted there.
        const N: u32 = 300;
        for i in 0..N {
            let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            let frame = ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan);
            rig.send(Plaintext, (i % 2) as usize, &frame);
            if i % 32 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let out = rig.collect(Tunnel, N as usize, Duration::from_secs(10));
        rig.dump();
        assert_eq!(out.len(), N as usize, "each packet sent once");
        let mut nonces = BTreeSet::new();
        let mut got = BTreeSet::new();
        for (q, mut f) in out {
            let (src, dst) = ports(&f);
            assert_eq!(
                src,
                LANE_PORTS.0 + q as u16,
                "worker {q} sends from its lane port"
            );
            assert_eq!(dst, PEER_PORT);
            let msg = &mut f[14 + 20 + 8..];
            nonces.insert(u64::from_le_bytes(msg[8..16].try_into().unwrap()));
            let plain = kp
                .open_message(Instant::ZERO, msg)
                .expect("the peer accepts it");
            got.insert(seq(&plain[..20 + 8 + 4]));
        }
        assert_eq!(got, (0..N).collect(), "none lost");
        assert_eq!(nonces.len(), N as usize, "no counter used twice");
        let counters = rig.counters.clone();
        let c = |w: usize, e: Event| counters[w].events(e);
        assert_eq!(
            c(1, Event::LaneEncap),
            u64::from(N / 2),
            "worker 1 encrypts its half"
        );
        assert_eq!(
            c(0, Event::PlaintextHandoff) + c(1, Event::PlaintextHandoff),
            0
        );

        // Decap: the peer's packets arrive on both workers (to our listen
        // port and to worker 1's lane port) and each is opened where it
        // arrives.
        let mut sealed = Vec::new();
        for i in 0..N {
            let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &i.to_be_bytes());
            let f = sealed_frame(kp, &inner);
            let (q, f) = if i % 2 == 0 {
                (0, f)
            } else {
                (1, to_port(&f, LANE_PORTS.1))
            };
            rig.send(Tunnel, q, &f);
            sealed.push((q, f));
            if i % 32 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let out = rig.collect(Plaintext, N as usize, Duration::from_secs(10));
        let got: BTreeSet<u32> = out.iter().map(|(_, f)| seq(f)).collect();
        assert_eq!(out.len(), N as usize, "each packet delivered once");
        assert_eq!(got, (0..N).collect(), "none lost");
        assert_eq!(
            c(1, Event::LaneDecap),
            u64::from(N / 2),
            "worker 1 decrypts its half"
        );
        assert_eq!(c(0, Event::TunnelHandoff) + c(1, Event::TunnelHandoff), 0);

        // Replays to the other lane: another queue, another port.
        let before = rig.total(|c| c.drops(DropReason::Replay));
        for (q, f) in &sealed {
            let other = 1 - q;
            rig.send(Tunnel, other, &to_port(f, LANE_PORTS.0 + other as u16));
        }
        let replays = rig.wait_total(|c| c.drops(DropReason::Replay), before + u64::from(N));
        rig.dump();
        assert_eq!(replays - before, u64::from(N), "every replay refused");
        assert!(rig
            .collect(Plaintext, 0, Duration::from_millis(100))
            .is_empty());
        assert_eq!(rig.total(|c| c.drops(DropReason::PeerGone)), 0);
    });
}
