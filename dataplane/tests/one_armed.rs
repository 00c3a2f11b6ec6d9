//! One-armed mode: a real worker on a real lcore with one `net_ring` port
//! carrying both roles (`WorkerPorts::one_armed`), against an in-memory
//! WireGuard peer and a LAN host on the same link. Frames are told apart
//! by their destination: WireGuard to our address takes the tunnel path,
//! the rest of our addresses' traffic goes to the exception path, and
//! everything else is plaintext to route into a tunnel; what comes out of
//! either path leaves on the same port. The pool has no cache, so the
//! final count proves no mbuf leaked.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use common::*;
use dataplane::clock::TscClock;
use dataplane::command::WorkerEvent;
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::peer::PeerShared;
use dataplane::route::{make_index, IfAddr, PortNet};
use dataplane::wire::{arp, ethernet, ipv4};
use dataplane::worker::{Worker, WorkerNets, WorkerPorts};
use dpdk_sys::rte::lcore::Job;
use dpdk_sys::rte::testing::{eal, unique};
use dpdk_sys::rte::{rdtsc, Burst, Mempool, Port, PortConfig, RingConsumer, RxQueue};
use protocol::time::Instant;

/// wgdp's address on the LAN side of the one link (next to `WGDP_TUN`).
const WGDP_LAN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// The one port: the tunnel address 203.0.113.1/24 and the LAN address
/// 10.0.0.1/24, one MAC.
fn one_net() -> PortNet {
    let mut n = net(WGDP_TUN_MAC, WGDP_TUN);
    n.addresses.push(IfAddr {
        addr: IpAddr::V4(WGDP_LAN),
        prefix_len: 24,
    });
    n
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

/// The frames a control thread ring holds now.
fn take(ring: &mut RingConsumer) -> Vec<Vec<u8>> {
    let mut b: Burst = Burst::new();
    ring.dequeue_burst(&mut b);
    b.drain().map(|m| m.data().to_vec()).collect()
}

#[test]
fn one_port_carries_both_roles_told_apart_by_destination() {
    let eal = eal();
    let lcore = eal.worker_lcores()[0];
    let pool = Mempool::new(eal, &unique("oa"), 2047, 0, 2176).expect("pool");
    let (mut w, mut t) = Port::ring_pair(eal, &unique("oa"), 1, 1024).expect("ring pair");
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
        WorkerPorts::one_armed(w.rx_queue(0).unwrap(), w.tx_queue(0).unwrap()),
        links,
        &pool,
        clock,
        counters.clone(),
        WorkerNets {
            tun_port: port,
            tun: one_net(),
            plain: one_net(),
        },
        reassembly_table(eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT).expect("reassembly table"),
    );
    // Peer 0 with its route and keypair, and each role's neighbour,
    // learnt into the one port's table.
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
        // The peer's data, to our tunnel address and WireGuard port: the
        // tunnel path decrypts it, and the inner packet leaves on the same
        // port to the LAN host.
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"from the peer");
        inject_on(pool_ref, tx, port, &sealed_frame(&mut kp_peer, &inner));
        let out = recv(rx).expect("decapsulated frame");
        assert_eq!(&out[0..6], &LAN_MAC);
        assert_eq!(&out[6..12], &WGDP_TUN_MAC);
        let ip = ipv4::Packet::new_checked(&out[14..]).expect("inner ipv4");
        assert_eq!(ip.ttl(), 63);
        assert_eq!(&out[14 + 20..], &inner[20..], "payload unchanged");
        assert_eq!(
            ends.events.recv_timeout(Duration::from_secs(2)),
            Ok(WorkerEvent::SessionConfirmed(0))
        );

        // The LAN host's packet for the peer's network, to our MAC on the
        // same port: the plaintext path seals it to the peer's endpoint,
        // out of the same port.
        let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, b"to the peer, please");
        inject_on(
            pool_ref,
            tx,
            port,
            &ether(WGDP_TUN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan),
        );
        let out = recv(rx).expect("encapsulated frame");
        assert_eq!(&out[0..6], &PEER_MAC);
        let outer_ip = ipv4::Packet::new_checked(&out[14..]).expect("outer ipv4");
        assert_eq!(outer_ip.dst_addr(), PEER_EP.octets());
        assert_eq!(outer_ip.src_addr(), WGDP_TUN.octets());
        assert_eq!(
            &out[14 + 20..14 + 22],
            &LISTEN.to_be_bytes(),
            "from our port"
        );
        let mut msg = out[14 + 20 + 8..].to_vec();
        let plain = kp_peer
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert_eq!(&plain[20..lan.len()], &lan[20..]);
        assert_eq!(
            ipv4::Packet::new_checked(&plain[..lan.len()])
                .unwrap()
                .ttl(),
            63
        );

        // Our addresses' other traffic (UDP to the tunnel address on
        // another port; the LAN host to our LAN address) and ARP: the
        // exception path, all on the one port's control ring.
        let ssh = ipv4_udp(PEER_EP, WGDP_TUN, 64, b"not wireguard");
        let ping = ipv4_udp(LAN_HOST, WGDP_LAN, 64, b"to wgdp itself");
        let mut who_has = [0u8; 28];
        arp::Repr {
            operation: arp::operation::REQUEST,
            sender_hw: LAN_MAC,
            sender_ip: LAN_HOST.octets(),
            target_hw: [0; 6],
            target_ip: WGDP_LAN.octets(),
        }
        .emit(&mut who_has)
        .expect("room");
        let arp = ether([0xff; 6], LAN_MAC, ethernet::ethertype::ARP, &who_has);
        for f in [
            ether(WGDP_TUN_MAC, PEER_MAC, ethernet::ethertype::IPV4, &ssh),
            ether(WGDP_TUN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &ping),
            arp,
        ] {
            inject_on(pool_ref, tx, port, &f);
        }
        assert_eq!(counter(c, |c| c.events(Event::TunnelRx), 5), 5);
        let deadline = StdInstant::now() + Duration::from_secs(2);
        let mut got = Vec::new();
        while got.len() < 3 && StdInstant::now() < deadline {
            got.extend(take(ctl_tun));
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(got.len(), 3, "our traffic and ARP to the exception path");
        assert_eq!(&got[0][14 + 16..14 + 20], &WGDP_TUN.octets());
        assert_eq!(&got[1][14 + 16..14 + 20], &WGDP_LAN.octets());
        assert_eq!(&got[2][12..14], &ethernet::ethertype::ARP.to_be_bytes());

        // The plaintext path's drop: no tunnel routes there. The tunnel
        // path's: a data message with a receiver index nobody has.
        let stray = ipv4_udp(LAN_HOST, Ipv4Addr::new(10, 55, 0, 1), 64, b"nowhere");
        inject_on(
            pool_ref,
            tx,
            port,
            &ether(WGDP_TUN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &stray),
        );
        let mut unknown = sealed_message(&mut kp_peer, &inner);
        unknown[4..8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        inject_on(pool_ref, tx, port, &udp_frame(&unknown));
        assert_eq!(counter(c, |c| c.drops(DropReason::NoRoute), 1), 1);
        assert_eq!(counter(c, |c| c.drops(DropReason::UnknownIndex), 1), 1);

        // Exactly: 7 frames in, all polled on the one port; one each way
        // through the tunnel; nothing on the plaintext role's own ring,
        // nothing else out of the port, no other drop.
        assert_eq!(counter(c, |c| c.events(Event::TunnelRx), 7), 7);
        assert_eq!(c.events(Event::PlaintextRx), 0);
        assert_eq!(c.events(Event::Decapsulated), 1);
        assert_eq!(c.events(Event::Encapsulated), 1);
        assert_eq!(c.total_drops(), 2);
        // One port, one link: its drops, the plaintext role's `no_route`
        // included, count as the tunnel port's, as its RX does.
        assert_eq!(c.events(Event::TunnelDropped), 2);
        assert_eq!(c.events(Event::PlaintextDropped), 0);
        assert!(take(ctl_plain).is_empty());
        assert!(take(ctl_tun).is_empty());
        assert!(recv(rx).is_none());
    };
    let jobs: Vec<(u32, Job<'_, ()>)> = vec![(lcore, Box::new(|| worker.run(&stop)))];
    run_workers(eal, jobs, &stop, state, drive);
    drop((w, t));
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}
