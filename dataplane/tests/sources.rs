//! Source addresses through real workers (`common::two`, whose tunnel port
//! has two IPv4 addresses): packets to a peer leave from the local address
//! its authenticated packets last reached (the kernel's endpoint source
//! cache), follow it when it changes, and go back to the port's default
//! when the endpoint is configured again; a multi-lane peer's lane worker
//! sends from it too, and tells the owner when the peer reaches another
//! address; the control thread hears of our address reached (for its
//! handshake messages), at most once a second; handshake messages reach
//! the control thread with the address they came to, and the workers'
//! cookie replies leave from it.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::two::*;
use common::*;
use dataplane::command::PortSide::{Plaintext, Tunnel};
use dataplane::command::{Command, WorkerEvent};
use dataplane::counters::Event;
use dataplane::wire::{checksum, ethernet, ipv4};
use protocol::cookie::{CookieChecker, CookieJar};
use protocol::messages::CookieReply;
use protocol::time::Instant;

/// A sealed frame from the peer to our address `to` (IPv4 header checksum
/// recomputed, UDP checksum left out as IPv4 allows).
fn to_address(frame: &[u8], to: std::net::Ipv4Addr) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[14 + 16..14 + 20].copy_from_slice(&to.octets());
    f[14 + 10..14 + 12].fill(0);
    let c = checksum::checksum(&f[14..14 + 20]);
    f[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    f[14 + 20 + 6..14 + 20 + 8].fill(0);
    f
}

/// Sends one LAN packet to the peer; the outer source address it left from.
fn encap_source(rig: &mut Rig<'_>) -> [u8; 4] {
    encap_source_via(rig, 0)
}

/// Sends one LAN packet to the peer through worker `queue`, which
/// encrypts it (owner or lane); the outer source address it left from.
fn encap_source_via(rig: &mut Rig<'_>, queue: usize) -> [u8; 4] {
    let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, b"to the peer");
    rig.send(
        Plaintext,
        queue,
        &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan),
    );
    let out = rig.collect(Tunnel, 1, Duration::from_secs(5));
    assert_eq!(out.len(), 1, "one encapsulated frame");
    assert_eq!(out[0].0, queue, "sent by worker {queue}");
    let ip = ipv4::Packet::new_checked(&out[0].1[14..]).expect("outer IPv4");
    assert!(ip.verify_checksum());
    assert_eq!(ip.dst_addr(), PEER_EP.octets());
    ip.src_addr()
}

#[test]
fn packets_to_a_peer_leave_from_the_address_it_last_reached() {
    two_workers(1, |rig, kp| {
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"hello");
        // The peer reaches our second address: replies come from there.
        rig.send(Tunnel, 0, &to_address(&sealed_frame(kp, &inner), WGDP_TUN2));
        assert_eq!(rig.collect(Plaintext, 1, Duration::from_secs(5)).len(), 1);
        assert_eq!(encap_source(rig), WGDP_TUN2.octets());
        assert_eq!(encap_source(rig), WGDP_TUN2.octets(), "and stays");

        // Then our first: they follow.
        rig.send(Tunnel, 0, &sealed_frame(kp, &inner));
        assert_eq!(rig.collect(Plaintext, 1, Duration::from_secs(5)).len(), 1);
        assert_eq!(encap_source(rig), WGDP_TUN.octets());

        // Back to the second, then the endpoint is configured (UAPI): the
        // port's default source (its first address) again.
        rig.send(Tunnel, 0, &to_address(&sealed_frame(kp, &inner), WGDP_TUN2));
        assert_eq!(rig.collect(Plaintext, 1, Duration::from_secs(5)).len(), 1);
        assert_eq!(encap_source(rig), WGDP_TUN2.octets());
        rig.commands[0]
            .send(Command::SetEndpoint {
                id: 0,
                endpoint: SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT),
                local: None,
            })
            .expect("command");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(encap_source(rig), WGDP_TUN.octets());
        assert_eq!(rig.total(|c| c.events(Event::Encapsulated)), 5);
        assert_eq!(rig.total(|c| c.total_drops()), 0);
    });
}

#[test]
fn handshake_messages_carry_the_address_they_came_to_and_cookies_leave_from_it() {
    two_workers(1, |rig, _kp| {
        // The control thread's first command: the cookie secret.
        let secret = CookieChecker::new(&wgdp_public())
            .rotate(Instant::ZERO, &mut rand_core::OsRng)
            .expect("a secret");
        rig.commands[0]
            .send(Command::CookieSecret(Box::new(secret)))
            .expect("command");
        let mut jar = CookieJar::new(&wgdp_public());
        let queued = |rig: &Rig<'_>| {
            rig.handshakes
                .recv_timeout(Duration::from_secs(5))
                .expect("a queued handshake message")
        };
        // Queued for the control thread with our address they came to,
        // which its answer leaves from.
        let init = udp_frame(&initiation(&mut jar, 1));
        rig.send(Tunnel, 0, &to_address(&init, WGDP_TUN2));
        assert_eq!(queued(rig).local, IpAddr::V4(WGDP_TUN2));
        rig.send(Tunnel, 0, &udp_frame(&initiation(&mut jar, 2)));
        assert_eq!(queued(rig).local, IpAddr::V4(WGDP_TUN));

        // 8 waiting of 64: the next one is under load, answered by the
        // worker with a cookie reply, from the address it came to.
        for sender in 10..18 {
            rig.send(Tunnel, 0, &udp_frame(&initiation(&mut jar, sender)));
        }
        assert_eq!(
            rig.wait_total(|c| c.events(Event::HandshakeToControl), 10),
            10
        );
        let init = udp_frame(&initiation(&mut jar, 20));
        rig.send(Tunnel, 0, &to_address(&init, WGDP_TUN2));
        let out = rig.collect(Tunnel, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1, "one cookie reply");
        let f = &out[0].1;
        let ip = ipv4::Packet::new_checked(&f[14..]).expect("outer IPv4");
        assert!(ip.verify_checksum());
        assert_eq!(
            (ip.src_addr(), ip.dst_addr()),
            (WGDP_TUN2.octets(), PEER_EP.octets())
        );
        let reply = CookieReply::new_checked(&f[14 + 20 + 8..]).expect("a cookie reply");
        assert_eq!(reply.receiver(), 20);
        jar.consume_reply(&reply, Instant::ZERO)
            .expect("the initiator accepts it");
        assert_eq!(rig.total(|c| c.events(Event::CookieReplySent)), 1);
        assert_eq!(rig.total(|c| c.total_drops()), 0);
    });
}

/// The endpoint changes (endpoint, our address) the workers reported to
/// the control thread since the last call.
fn endpoint_events(rig: &Rig<'_>) -> Vec<(SocketAddr, IpAddr)> {
    std::iter::from_fn(|| rig.events.try_recv().ok())
        .filter_map(|e| match e {
            WorkerEvent::EndpointChanged(0, at, local) => Some((at, local)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lane_worker_sends_from_the_address_the_peer_reached_and_tells_the_owner() {
    two_workers(2, |rig, kp| {
        let endpoint = SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT);
        // The session is confirmed on the owner, at our first address,
        // and published to the lane.
        let inner = |n: u32| ipv4_udp(PEER_INNER, LAN_HOST, 64, &n.to_be_bytes());
        rig.send(Tunnel, 0, &sealed_frame(kp, &inner(0)));
        assert_eq!(rig.collect(Plaintext, 1, Duration::from_secs(5)).len(), 1);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(encap_source_via(rig, 1), WGDP_TUN.octets(), "the lane");
        while rig.events.try_recv().is_ok() {}

        // The peer's packets now reach our second address, on the lane
        // (worker 1's lane port).
        let f = to_port(
            &to_address(&sealed_frame(kp, &inner(1)), WGDP_TUN2),
            LANE_PORTS.1,
        );
        rig.send(Tunnel, 1, &f);
        assert_eq!(rig.wait_quietly(|c| c.events(Event::LaneDecap), 1), 1);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            endpoint_events(rig),
            vec![(endpoint, IpAddr::V4(WGDP_TUN2))],
            "the control thread hears of it once, with our address"
        );
        // The lane told the owner, which republished: both send from it.
        assert_eq!(encap_source_via(rig, 1), WGDP_TUN2.octets(), "the lane");
        assert_eq!(encap_source_via(rig, 0), WGDP_TUN2.octets(), "the owner");
        assert_eq!(rig.total(|c| c.events(Event::LaneEncap)), 2);
        assert_eq!(rig.total(|c| c.total_drops()), 0);
    });
}

#[test]
fn the_owner_reports_our_address_the_peer_reached_at_most_once_a_second() {
    two_workers(1, |rig, kp| {
        let endpoint = SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT);
        let mut sent = 0u64;
        let mut send_to = |rig: &mut Rig<'_>, kp: &mut _, to| {
            let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &(sent as u32).to_be_bytes());
            rig.send(Tunnel, 0, &to_address(&sealed_frame(kp, &inner), to));
            sent += 1;
            sent
        };
        // The configured endpoint's first packets, to the port's default
        // source (which the control thread sends from): nothing to report.
        for _ in 0..2 {
            let n = send_to(rig, kp, WGDP_TUN);
            assert_eq!(rig.wait_quietly(|c| c.events(Event::Decapsulated), n), n);
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(endpoint_events(rig), vec![]);

        // The same endpoint reaches our second address: the control thread
        // hears of it (with the endpoint), once.
        for _ in 0..2 {
            let n = send_to(rig, kp, WGDP_TUN2);
            assert_eq!(rig.wait_quietly(|c| c.events(Event::Decapsulated), n), n);
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            endpoint_events(rig),
            vec![(endpoint, IpAddr::V4(WGDP_TUN2))]
        );

        // A quiet second later, back to the first: reported too.
        std::thread::sleep(Duration::from_millis(1100));
        let n = send_to(rig, kp, WGDP_TUN);
        assert_eq!(rig.wait_quietly(|c| c.events(Event::Decapsulated), n), n);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(endpoint_events(rig), vec![(endpoint, IpAddr::V4(WGDP_TUN))]);

        // Packets alternating between our addresses for 2.5 s: reported at
        // most once a second (and at least once), not per packet.
        let start = std::time::Instant::now();
        let mut flapped = 0;
        while start.elapsed() < Duration::from_millis(2500) {
            let to = if flapped % 2 == 0 {
                WGDP_TUN
            } else {
                WGDP_TUN2
            };
            let n = send_to(rig, kp, to);
            flapped += 1;
            if flapped % 32 == 0 {
                assert_eq!(rig.wait_quietly(|c| c.events(Event::Decapsulated), n), n);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        assert_eq!(
            rig.wait_quietly(|c| c.events(Event::Decapsulated), sent),
            sent
        );
        let elapsed = start.elapsed();
        let reports = endpoint_events(rig);
        assert!(flapped > 256, "{flapped} packets");
        assert!(
            (1..=1 + elapsed.as_secs() as usize).contains(&reports.len()),
            "{} reports of {flapped} packets in {elapsed:?}",
            reports.len()
        );
        assert!(reports.iter().all(|&(at, _)| at == endpoint));
        assert_eq!(rig.total(|c| c.total_drops()), 0);
    });
}
