//! Two real workers on two lcores (`common::two`): a peer owned
//! by worker 0 whose packets keep arriving at worker 1 is learned there and
//! re-homed, with its keypairs, counters and replay window, losing and
//! repeating nothing. The test plays the control thread's part (releasing
//! on `ArrivesAt`, publishing routes on `Adopted`).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::two::*;
use common::*;
use dataplane::command::PortSide;
use dataplane::counters::{DropReason, Event};
use dataplane::rehome::REHOME_AFTER;
use dataplane::wire::ethernet;
use protocol::time::Instant;

#[test]
fn a_peer_moves_to_the_worker_its_packets_arrive_on_losing_and_repeating_nothing() {
    two_workers(1, |rig, kp| {
        use PortSide::{Plaintext, Tunnel};
        const N: u32 = 200;
        // The peer's packets all arrive on worker 1's queue (RSS), while
        // worker 0 owns it: the first are handed off, then it moves.
        let mut sealed = Vec::new();
        for i in 0..N {
            let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &i.to_be_bytes());
            let f = sealed_frame(kp, &inner);
            rig.send(Tunnel, 1, &f);
            sealed.push(f);
            rig.control();
            if i % 16 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let out = rig.collect(Plaintext, N as usize, Duration::from_secs(10));
        let got: BTreeSet<u32> = out.iter().map(|(_, f)| seq(f)).collect();
        rig.dump();
        assert_eq!(out.len(), N as usize, "each packet delivered once");
        assert_eq!(got, (0..N).collect(), "none lost");
        assert_eq!(rig.moves, 1, "re-homed once");
        assert_eq!(rig.owner, 1, "owned where its packets arrive");
        let counters = rig.counters.clone();
        let c = |w: usize, e: Event| counters[w].events(e);
        assert_eq!(
            (c(0, Event::PeersReleased), c(1, Event::PeersAdopted)),
            (1, 1)
        );
        assert!(c(1, Event::TunnelHandoff) >= 32, "handed off until learned");
        assert!(
            c(1, Event::TunnelInline) > 0,
            "then handled where it arrives, old index and all"
        );
        assert_eq!(rig.total(|c| c.drops(DropReason::PeerGone)), 0);
        println!(
            "worker 1: {} handed off, {} inline; worker 0 forwarded {}",
            c(1, Event::TunnelHandoff),
            c(1, Event::TunnelInline),
            c(0, Event::Forwarded)
        );

        // Replays, through either worker, meet the moved replay window.
        for (i, f) in sealed.iter().enumerate() {
            rig.send(Tunnel, i % WORKERS, f);
        }
        let replays = rig.wait_total(|c| c.drops(DropReason::Replay), u64::from(N));
        assert_eq!(replays, u64::from(N), "every replay refused");
        assert!(rig
            .collect(Plaintext, 0, Duration::from_millis(100))
            .is_empty());

        // Stray packets through worker 0, one fewer in a row than
        // REHOME_AFTER, do not move the peer back.
        let strays = REHOME_AFTER - 1;
        for i in N..N + strays {
            let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &i.to_be_bytes());
            rig.send(Tunnel, 0, &sealed_frame(kp, &inner));
        }
        let out = rig.collect(Plaintext, strays as usize, Duration::from_secs(5));
        assert_eq!(out.len(), strays as usize);
        assert_eq!((rig.moves, rig.owner), (1, 1));

        // LAN traffic reaching worker 0 goes to the new owner, and the
        // peer opens it: the send counter moved too.
        for i in 0..4u32 {
            let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            rig.send(
                Plaintext,
                (i % 2) as usize,
                &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan),
            );
        }
        let out = rig.collect(Tunnel, 4, Duration::from_secs(5));
        assert_eq!(out.len(), 4);
        for (q, mut f) in out {
            assert_eq!(q, 1, "sent by the owner, on its queue");
            let msg = &mut f[14 + 20 + 8..];
            let plain = kp
                .open_message(Instant::ZERO, msg)
                .expect("the peer opens it");
            assert_eq!(plain[0] >> 4, 4);
        }
        assert_eq!(c(0, Event::PlaintextHandoff), 2);
        assert_eq!(c(1, Event::PlaintextInline), 2);

        // The REHOME_AFTER-th in a row through worker 0 does move it: the
        // threshold is exact.
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &(N + strays).to_be_bytes());
        rig.send(Tunnel, 0, &sealed_frame(kp, &inner));
        let out = rig.collect(Plaintext, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while rig.moves == 1 && std::time::Instant::now() < deadline {
            rig.control();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!((rig.moves, rig.owner), (2, 0));
    });
}
