//! The two roles split by VLAN over one physical port: a real worker on a
//! real lcore with one `net_ring` port (`WorkerPorts::vlan_split`) whose
//! VLAN 10 is the tunnel port and VLAN 20 the plaintext port, each with
//! its own MAC, addresses, neighbours and control ring. Frames are told
//! apart by their tag and leave with their role's tag; untagged frames and
//! other VLANs' are dropped and counted, and each role's drops count as
//! its own (`tunnel_dropped`, `plaintext_dropped`). The pool has no cache, so the
//! final count proves no mbuf leaked.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use common::*;
use dataplane::clock::TscClock;
use dataplane::command::WorkerEvent;
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::peer::PeerShared;
use dataplane::route::{make_index, PortNet};
use dataplane::wire::{arp, ethernet, ipv4};
use dataplane::worker::{Worker, WorkerNets, WorkerPorts};
use dpdk_sys::rte::lcore::Job;
use dpdk_sys::rte::testing::{eal, unique};
use dpdk_sys::rte::{rdtsc, Burst, Mempool, Port, PortConfig, RingConsumer, RxQueue};
use protocol::time::Instant;

/// The tunnel port's VLAN.
const TUN_VLAN: u16 = 10;
/// The plaintext port's VLAN.
const PLAIN_VLAN: u16 = 20;
/// wgdp's address on the plaintext VLAN.
const WGDP_LAN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// A port running `vlan`.
fn vlan_net(mac: [u8; 6], ip: Ipv4Addr, vlan: u16) -> PortNet {
    PortNet {
        vlan: Some(vlan),
        ..net(mac, ip)
    }
}

/// `frame` with an 802.1Q tag for VLAN `vid` after its MACs.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    [
        &frame[..12],
        &0x8100u16.to_be_bytes()[..],
        &vid.to_be_bytes()[..],
        &frame[12..],
    ]
    .concat()
}

/// The VLAN id of a frame's 802.1Q tag, `None` when untagged.
fn vid(frame: &[u8]) -> Option<u16> {
    (frame[12..14] == [0x81, 0x00]).then(|| u16::from_be_bytes([frame[14], frame[15]]) & 0xfff)
}

/// The frame without its 802.1Q tag.
fn untagged(frame: &[u8]) -> Vec<u8> {
    [&frame[..12], &frame[16..]].concat()
}

/// The next frame the worker sends on the port, waiting up to 2 s.
fn recv(q: &mut RxQueue<'_>) -> Option<Vec<u8>> {
    let deadline = StdInstant::now() + Duration::from_secs(2);
    let mut b: Burst<1> = Burst::new();
    while StdInstant::now() < deadline {
        if q.rx_burst(&mut b) > 0 {
            return b.drain().next().map(|m| m.data().to_vec());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Waits until a counter reaches `want`; returns its value.
fn counter(c: &WorkerCounters, read: impl Fn(&WorkerCounters) -> u64, want: u64) -> u64 {
    let deadline = StdInstant::now() + Duration::from_secs(2);
    loop {
        let got = read(c);
        if got >= want || StdInstant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The frames a control thread ring holds, waiting up to 2 s for `want`.
fn take(ring: &mut RingConsumer, want: usize) -> Vec<Vec<u8>> {
    let deadline = StdInstant::now() + Duration::from_secs(2);
    let mut got = Vec::new();
    loop {
        let mut b: Burst = Burst::new();
        ring.dequeue_burst(&mut b);
        got.extend(b.drain().map(|m| m.data().to_vec()));
        if got.len() >= want || StdInstant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// An ARP request from `mac`/`ip` for `target`, broadcast.
fn who_has(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut req = [0u8; 28];
    arp::Repr {
        operation: arp::operation::REQUEST,
        sender_hw: mac,
        sender_ip: ip.octets(),
        target_hw: [0; 6],
        target_ip: target.octets(),
    }
    .emit(&mut req)
    .expect("room");
    ether([0xff; 6], mac, ethernet::ethertype::ARP, &req)
}

#[test]
fn one_port_splits_the_roles_by_vlan_tags_each_roles_frames_and_counts_its_drops() {
    let eal = eal();
    let lcore = eal.worker_lcores()[0];
    let pool = Mempool::new(eal, &unique("vs"), 2047, 0, 2176).expect("pool");
    let (mut w, mut t) = Port::ring_pair(eal, &unique("vs"), 1, 1024).expect("ring pair");
    // The frames are marked as the port received them (see `inject_on`).
    let port = w.id();
    for p in [&mut w, &mut t] {
        p.configure(&PortConfig::default(), &pool)
            .expect("configure");
        p.start().expect("start");
    }
    let (kp_wgdp, mut kp_peer) = handshake(false, make_index(0x1234_5678, 0, 1));
    let (links, ends) = lone_links(eal, [64; 3]);
    let counters = Arc::new(WorkerCounters::default());
    let clock = TscClock::new(rdtsc(), eal.tsc_hz());
    let worker = Worker::new(
        worker_config(0, 1),
        WorkerPorts::vlan_split(w.rx_queue(0).unwrap(), w.tx_queue(0).unwrap()),
        links,
        &pool,
        clock,
        counters.clone(),
        WorkerNets {
            tun_port: port,
            tun: vlan_net(WGDP_TUN_MAC, WGDP_TUN, TUN_VLAN),
            plain: vlan_net(WGDP_PLAIN_MAC, WGDP_LAN, PLAIN_VLAN),
        },
        reassembly_table(eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT).expect("reassembly table"),
    );
    // Peer 0 with its route and keypair, and each role's neighbour,
    // in its own port's table.
    let shared = Arc::new(PeerShared::default());
    for cmd in one_peer_commands(shared, 0, Some(kp_wgdp)) {
        ends.commands.send(cmd).unwrap();
    }

    let stop = AtomicBool::new(false);
    let state = (
        t.tx_queue(0).unwrap(),
        t.rx_queue(0).unwrap(),
        ends.ctl_tun,
        ends.ctl_plain,
        ends.commands,
    );
    let pool_ref = &pool;
    let c = &*counters;
    let drive = |(tx, rx, ctl_tun, ctl_plain, _commands): &mut (_, RxQueue<'_>, _, _, _)| {
        // The peer's data on the tunnel VLAN: decrypted, and the inner
        // packet leaves on the plaintext VLAN, from the plaintext port's
        // MAC to the LAN host.
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"from the peer");
        inject_on(
            pool_ref,
            tx,
            port,
            &tagged(&sealed_frame(&mut kp_peer, &inner), TUN_VLAN),
        );
        let out = recv(rx).expect("decapsulated frame");
        assert_eq!(vid(&out), Some(PLAIN_VLAN), "tagged for the plaintext role");
        let out = untagged(&out);
        assert_eq!(&out[0..6], &LAN_MAC);
        assert_eq!(&out[6..12], &WGDP_PLAIN_MAC);
        let ip = ipv4::Packet::new_checked(&out[14..]).expect("inner ipv4");
        assert_eq!(ip.ttl(), 63);
        assert_eq!(&out[14 + 20..], &inner[20..], "payload unchanged");
        assert_eq!(
            ends.events.recv_timeout(Duration::from_secs(2)),
            Ok(WorkerEvent::SessionConfirmed(0))
        );

        // The LAN host's packet on the plaintext VLAN: sealed to the
        // peer's endpoint, leaving on the tunnel VLAN from the tunnel
        // port's MAC and address.
        let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, b"to the peer, please");
        inject_on(
            pool_ref,
            tx,
            port,
            &tagged(
                &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan),
                PLAIN_VLAN,
            ),
        );
        let out = recv(rx).expect("encapsulated frame");
        assert_eq!(vid(&out), Some(TUN_VLAN), "tagged for the tunnel role");
        let out = untagged(&out);
        assert_eq!(&out[0..6], &PEER_MAC);
        assert_eq!(&out[6..12], &WGDP_TUN_MAC);
        let outer_ip = ipv4::Packet::new_checked(&out[14..]).expect("outer ipv4");
        assert_eq!(outer_ip.dst_addr(), PEER_EP.octets());
        assert_eq!(outer_ip.src_addr(), WGDP_TUN.octets());
        let mut msg = out[14 + 20 + 8..].to_vec();
        let plain = kp_peer
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert_eq!(&plain[20..lan.len()], &lan[20..]);

        // ARP on each VLAN: to that role's exception ring, untagged.
        inject_on(
            pool_ref,
            tx,
            port,
            &tagged(&who_has(PEER_MAC, PEER_EP, WGDP_TUN), TUN_VLAN),
        );
        inject_on(
            pool_ref,
            tx,
            port,
            &tagged(&who_has(LAN_MAC, LAN_HOST, WGDP_LAN), PLAIN_VLAN),
        );
        let tun_arp = take(ctl_tun, 1);
        let plain_arp = take(ctl_plain, 1);
        assert_eq!(tun_arp.len(), 1, "the tunnel VLAN's ARP");
        assert_eq!(plain_arp.len(), 1, "the plaintext VLAN's ARP");
        assert_eq!(tun_arp[0], who_has(PEER_MAC, PEER_EP, WGDP_TUN));
        assert_eq!(plain_arp[0], who_has(LAN_MAC, LAN_HOST, WGDP_LAN));

        // Neither role's frames: untagged, another VLAN, a priority tag
        // (VLAN 0: the untagged network's). Dropped as `vlan`.
        let stray = ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan);
        for f in [stray.clone(), tagged(&stray, 30), tagged(&stray, 0)] {
            inject_on(pool_ref, tx, port, &f);
        }
        assert_eq!(counter(c, |c| c.drops(DropReason::Vlan), 3), 3);

        // Exactly: 5 frames counted as the tunnel port's (its data and
        // ARP, and the 3 of neither VLAN), 2 as the plaintext port's (its
        // packet and ARP); one each way through the tunnel; nothing else
        // out of the port or to either control ring.
        assert_eq!(counter(c, |c| c.events(Event::TunnelRx), 5), 5);
        assert_eq!(c.events(Event::PlaintextRx), 2);
        assert_eq!(c.events(Event::Decapsulated), 1);
        assert_eq!(c.events(Event::Encapsulated), 1);
        assert_eq!(c.total_drops(), 3);
        assert!(take(ctl_plain, 0).is_empty());
        assert!(take(ctl_tun, 0).is_empty());
        assert!(recv(rx).is_none());

        // A drop counts as the link's its frame arrived on, as its RX
        // does: the plaintext VLAN's packet without a route as the
        // plaintext port's, the tunnel VLAN's data message for an unknown
        // receiver index as the tunnel port's (as the 3 of neither VLAN).
        let nowhere = ipv4_udp(LAN_HOST, Ipv4Addr::new(192, 0, 2, 99), 64, b"no route");
        inject_on(
            pool_ref,
            tx,
            port,
            &tagged(
                &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &nowhere),
                PLAIN_VLAN,
            ),
        );
        let mut unknown = sealed_message(&mut kp_peer, &inner);
        unknown[4..8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        inject_on(pool_ref, tx, port, &tagged(&udp_frame(&unknown), TUN_VLAN));
        assert_eq!(counter(c, |c| c.drops(DropReason::NoRoute), 1), 1);
        assert_eq!(counter(c, |c| c.drops(DropReason::UnknownIndex), 1), 1);
        assert_eq!(c.events(Event::TunnelRx), 6);
        assert_eq!(c.events(Event::PlaintextRx), 3);
        assert_eq!(c.events(Event::TunnelDropped), 4);
        assert_eq!(c.events(Event::PlaintextDropped), 1);
        assert_eq!(c.total_drops(), 5);
        assert!(take(ctl_plain, 0).is_empty());
        assert!(take(ctl_tun, 0).is_empty());
        assert!(recv(rx).is_none());
    };
    let jobs: Vec<(u32, Job<'_, ()>)> = vec![(lcore, Box::new(|| worker.run(&stop)))];
    run_workers(eal, jobs, &stop, state, drive);
    drop((w, t));
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}
