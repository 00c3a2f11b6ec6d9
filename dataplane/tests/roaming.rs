//! Roaming on real workers (`common::two`): a lane worker follows a NAT
//! port change, and a far end that alternates source ports neither floods
//! the control thread's event channel nor crowds out the events that
//! matter (session confirmed, handshake wanted, arrives elsewhere).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant as StdInstant};

use common::two::*;
use common::*;
use dataplane::command::PortSide::{Plaintext, Tunnel};
use dataplane::command::{Command, WorkerEvent};
use dataplane::counters::{DropReason, Event};
use dataplane::rehome::REHOME_AFTER;
use dataplane::route::make_index;
use dataplane::wire::ethernet;

/// The frame sent from the peer's UDP port `port` instead (checksum left
/// out, as IPv4 allows).
fn from_port(frame: &[u8], port: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[14 + 20..14 + 20 + 2].copy_from_slice(&port.to_be_bytes());
    f[14 + 20 + 6..14 + 20 + 8].fill(0);
    f
}

/// The outer destination port of a frame (IPv4, no options).
fn dst_port(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[14 + 20 + 2], frame[14 + 20 + 3]])
}

fn lan_frame(n: u32) -> Vec<u8> {
    let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, &n.to_be_bytes());
    ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan)
}

#[test]
fn a_lane_worker_learns_a_nat_port_change() {
    two_workers(2, |rig, kp| {
        // The session is confirmed on the owner and published to the lane.
        let first = ipv4_udp(PEER_INNER, LAN_HOST, 64, &0u32.to_be_bytes());
        rig.send(Tunnel, 0, &sealed_frame(kp, &first));
        assert_eq!(rig.collect(Plaintext, 1, Duration::from_secs(5)).len(), 1);
        std::thread::sleep(Duration::from_millis(100));
        while rig.events.try_recv().is_ok() {}

        // The peer's NAT rebinds its port; its packets land on the lane.
        let rebound = PEER_PORT + 7;
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &1u32.to_be_bytes());
        let f = to_port(&from_port(&sealed_frame(kp, &inner), rebound), LANE_PORTS.1);
        rig.send(Tunnel, 1, &f);
        assert_eq!(
            rig.wait_quietly(|c| c.events(Event::LaneDecap), 1),
            1,
            "the lane opened it"
        );
        std::thread::sleep(Duration::from_millis(100));
        let reported: Vec<(SocketAddr, IpAddr)> = std::iter::from_fn(|| rig.events.try_recv().ok())
            .filter_map(|e| match e {
                WorkerEvent::EndpointChanged(0, at, local) => Some((at, local)),
                _ => None,
            })
            .collect();
        let new = SocketAddr::new(IpAddr::V4(PEER_EP), rebound);
        assert_eq!(
            reported,
            vec![(new, IpAddr::V4(WGDP_TUN))],
            "the control thread hears of it once"
        );

        // The owner now sends there.
        rig.send(Plaintext, 0, &lan_frame(2));
        let out = rig.collect(Tunnel, 1, Duration::from_secs(5));
        rig.dump();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, 0, "sent by the owner");
        assert_eq!(dst_port(&out[0].1), rebound, "to the rebound port");
    });
}

#[test]
fn a_flapping_endpoint_never_crowds_out_session_handshake_and_move_events() {
    two_workers(1, |rig, kp| {
        let start = StdInstant::now();
        // A far end alternating between two source ports, far more packets
        // than the event channel holds (1024), none of them read.
        const N: u32 = 3000;
        for i in 0..N {
            let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &i.to_be_bytes());
            let f = from_port(&sealed_frame(kp, &inner), PEER_PORT + (i % 2) as u16);
            rig.send(Tunnel, 0, &f);
            if i % 256 == 255 {
                // Never more in flight than the rings hold.
                rig.wait_quietly(|c| c.events(Event::Decapsulated), u64::from(i + 1));
            }
        }
        assert_eq!(
            rig.wait_quietly(|c| c.events(Event::Decapsulated), u64::from(N)),
            u64::from(N),
            "every packet delivered"
        );

        // A new session (wgdp responded): its first packet confirms it.
        let (kp_wgdp, mut kp_peer) = handshake(false, make_index(0x6eed_1000, 0, WORKERS));
        rig.commands[0]
            .send(Command::InstallKeypair {
                id: 0,
                keypair: Box::new(kp_wgdp),
            })
            .expect("command");
        std::thread::sleep(Duration::from_millis(20));
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &N.to_be_bytes());
        rig.send(Tunnel, 0, &sealed_frame(&mut kp_peer, &inner));
        // Opened before the next ones arrive elsewhere: a packet reaching
        // the owner in the middle of them would restart their count, and
        // no move would be asked (rehome.rs).
        assert_eq!(
            rig.wait_quietly(|c| c.events(Event::Decapsulated), u64::from(N + 1)),
            u64::from(N + 1)
        );
        // Its packets keep arriving on the other worker: a move is asked.
        for i in 0..REHOME_AFTER {
            let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &(N + 1 + i).to_be_bytes());
            rig.send(Tunnel, 1, &sealed_frame(&mut kp_peer, &inner));
        }
        let want = u64::from(N + 1 + REHOME_AFTER);
        assert_eq!(
            rig.wait_quietly(|c| c.events(Event::Decapsulated), want),
            want
        );
        // The session is cleared; LAN traffic wants a handshake.
        rig.commands[0]
            .send(Command::ClearSession { id: 0 })
            .expect("command");
        std::thread::sleep(Duration::from_millis(20));
        rig.send(Plaintext, 0, &lan_frame(0));
        std::thread::sleep(Duration::from_millis(100));
        let elapsed = start.elapsed();

        let (mut confirmed, mut wanted, mut arrives, mut endpoint) = (0, 0, 0, 0);
        while let Ok(e) = rig.events.try_recv() {
            match e {
                WorkerEvent::SessionConfirmed(0) => confirmed += 1,
                WorkerEvent::WantHandshake(0) => wanted += 1,
                WorkerEvent::ArrivesAt(0, 1) => arrives += 1,
                WorkerEvent::EndpointChanged(0, _, _) => endpoint += 1,
                _ => {}
            }
        }
        rig.dump();
        assert_eq!(confirmed, 2, "both sessions confirmed");
        assert_eq!(wanted, 1, "the handshake asked for");
        assert_eq!(arrives, 1, "the move asked for");
        let most = 1 + elapsed.as_secs();
        assert!(
            (1..=most).contains(&endpoint),
            "{endpoint} endpoint changes in {elapsed:?}: at most one a second"
        );
        assert_eq!(rig.total(|c| c.drops(DropReason::PeerGone)), 0);
    });
}
