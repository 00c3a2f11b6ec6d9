//! A real worker on a real lcore, between two `net_ring` port pairs, against
//! an in-memory WireGuard peer: decap, encap, and every drop it must count.
//! The pool has no cache, so the final count proves no mbuf leaked.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use common::*;
use crossbeam_channel::{Receiver, Sender};
use dataplane::clock::TscClock;
use dataplane::command::{Command, HandshakeMessage, PortSide, WorkerEvent};
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::peer::{PeerShared, PeerState};
use dataplane::route::{make_index, IfAddr, PortNet, RouteTable};
use dataplane::wire::{ethernet, ipv4, udp};
use dataplane::worker::{Worker, WorkerLinks, WorkerNets, WorkerQueues};
use dpdk_sys::rte::lcore::Job;
use dpdk_sys::rte::testing::{eal, unique};
use dpdk_sys::rte::{
    mbuf_ring, rdtsc, Burst, Mempool, Port, PortConfig, RingConsumer, RxQueue, TxQueue,
};
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::constants::REJECT_AFTER_TIME;
use protocol::cookie::{CookieChecker, CookieJar};
use protocol::crypto::PrivateKey;
use protocol::messages::{CookieReply, COOKIE_REPLY_LEN, INITIATION_LEN};
use protocol::time::Instant;
use protocol::transport::Keypair;

/// The test's side of the two port pairs.
struct Harness<'p> {
    pool: &'p Mempool,
    tun_tx: TxQueue<'p>,
    tun_rx: RxQueue<'p>,
    plain_tx: TxQueue<'p>,
    plain_rx: RxQueue<'p>,
    counters: Arc<WorkerCounters>,
}

impl Harness<'_> {
    fn send(&mut self, side: PortSide, frame: &[u8]) {
        let q = match side {
            PortSide::Tunnel => &mut self.tun_tx,
            PortSide::Plaintext => &mut self.plain_tx,
        };
        inject(self.pool, q, frame);
    }

    fn recv(&mut self, side: PortSide) -> Option<Vec<u8>> {
        let q = match side {
            PortSide::Tunnel => &mut self.tun_rx,
            PortSide::Plaintext => &mut self.plain_rx,
        };
        let deadline = StdInstant::now() + Duration::from_secs(2);
        // One frame at a time: the rest stay queued for the next call.
        let mut b: Burst<1> = Burst::new();
        while StdInstant::now() < deadline {
            if q.rx_burst(&mut b) > 0 {
                let first = b.drain().next().map(|m| m.data().to_vec());
                return first;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// Waits until a counter reaches `want`; returns its value.
    fn counter(&self, read: impl Fn(&WorkerCounters) -> u64, want: u64) -> u64 {
        let deadline = StdInstant::now() + Duration::from_secs(2);
        loop {
            let got = read(&self.counters);
            if got >= want || StdInstant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The plaintext port: 10.0.0.1/24 and [`WGDP_LAN6`]/64 (the ICMPv6
/// errors' source).
fn plain_net() -> PortNet {
    let mut n = net(WGDP_PLAIN_MAC, Ipv4Addr::new(10, 0, 0, 1));
    n.addresses.push(IfAddr {
        addr: IpAddr::V6(WGDP_LAN6),
        prefix_len: 64,
    });
    n
}

/// wgdp's IPv6 address on the LAN, a LAN host's, and one behind the peer.
const WGDP_LAN6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const LAN_HOST6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const PEER_INNER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 9, 0, 0, 0, 0, 0, 2);

fn pair(pool: &Mempool, ring_size: u32) -> (Port, Port) {
    let (mut a, mut b) = Port::ring_pair(eal(), &unique("w"), 1, ring_size).expect("ring pair");
    for p in [&mut a, &mut b] {
        p.configure(&PortConfig::default(), pool)
            .expect("configure");
        p.start().expect("start");
    }
    (a, b)
}

/// How a scenario's worker is set up.
struct Setup {
    /// Slots of the ring the worker transmits into on the tunnel side.
    tun_ring: u32,
    /// Capacity of the handshake queue to the (absent) control thread.
    handshake_queue: usize,
    /// Capacity of the worker's event channel to the control thread.
    event_queue: usize,
    /// Which side initiated the handshake whose keys the worker gets.
    wgdp_initiates: bool,
    /// Install wgdp's keypair before the worker starts (else the driver
    /// does, through `commands`).
    install_first: bool,
    /// The peer belongs to a second worker that never runs: the test
    /// holds that worker's end of the handoff ring (`Scenario::handoff`).
    owned_elsewhere: bool,
    /// Where the worker's clock starts: the time since the handshake that
    /// derived the scenario's keypairs (born at the clock's epoch).
    clock_at: Duration,
    /// Commands queued ahead of the keypair's install (`install_first`), as
    /// a control thread in a handshake wave leaves them.
    commands_ahead: usize,
    /// A data message of the peer's waits on the tunnel port when the
    /// worker starts (sealed with the scenario's keypair, counter 0).
    data_waiting: bool,
}

impl Setup {
    /// The peer initiated, the worker holds its keypair from the start,
    /// rings and queues roomy.
    const ESTABLISHED: Setup = Setup {
        tun_ring: 1024,
        handshake_queue: 64,
        event_queue: 64,
        wgdp_initiates: false,
        install_first: true,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
}

/// What a scenario's driver works with, while the worker runs.
struct Scenario<'p> {
    h: Harness<'p>,
    peer_kp: Keypair,
    wgdp_kp: Option<Keypair>,
    commands: Sender<Command>,
    events: Receiver<WorkerEvent>,
    handshakes: Receiver<HandshakeMessage>,
    ctl_plain: RingConsumer,
    shared: Arc<PeerShared>,
    /// The absent second worker's handoff ring (`owned_elsewhere`).
    handoff: RingConsumer,
    /// The worker's clock (its epoch: the keypairs' birth).
    clock: TscClock,
}

/// Runs a worker on a worker lcore, configured with one peer (endpoint,
/// route, neighbours known), while `drive` plays the LAN host and the peer;
/// then checks that every mbuf came back to the (cache-0) pool.
fn scenario(setup: Setup, drive: impl FnOnce(&mut Scenario<'_>) + Send) {
    let eal = eal();
    let lcore = eal.worker_lcores()[0];
    let pool = Mempool::new(eal, &unique("wp"), 2047, 0, 2176).expect("pool");
    let (tun_w, tun_t) = pair(&pool, setup.tun_ring);
    let (plain_w, plain_t) = pair(&pool, 1024);
    let (kp_wgdp, kp_peer) = handshake(setup.wgdp_initiates, make_index(0x1234_5678, 0, 1));

    let (links, ends) = lone_links(
        eal,
        [
            64 + setup.commands_ahead,
            setup.event_queue,
            setup.handshake_queue,
        ],
    );
    let LoneEnds {
        commands: cmd_tx,
        events: ev_rx,
        handshakes: hs_rx,
        handoff: _ho_p,
        ctl_tun: _ctl_tun_c,
        ctl_plain: ctl_plain_c,
    } = ends;
    let (elsewhere_p, elsewhere_c) = mbuf_ring(eal, &unique("hx"), 64).expect("ring");
    let (workers, owner) = if setup.owned_elsewhere {
        (2, 1)
    } else {
        (1, 0)
    };
    let mut handoff_out = vec![None];
    if setup.owned_elsewhere {
        handoff_out.push(Some(elsewhere_p));
    }
    let counters = Arc::new(WorkerCounters::default());
    let hz = eal.tsc_hz();
    let ahead = u64::try_from(setup.clock_at.as_nanos() * u128::from(hz) / 1_000_000_000)
        .expect("clock_at within range");
    let clock = TscClock::new(rdtsc() - ahead, hz);
    let worker = Worker::new(
        worker_config(0, workers),
        WorkerQueues {
            tun_rx: tun_w.rx_queue(0).unwrap(),
            tun_tx: tun_w.tx_queue(0).unwrap(),
            plain_rx: plain_w.rx_queue(0).unwrap(),
            plain_tx: plain_w.tx_queue(0).unwrap(),
        },
        // Alone, but for the absent owner's handoff ring (`owned_elsewhere`).
        WorkerLinks {
            handoff_out,
            to_workers: vec![cmd_tx.clone(); workers],
            ..links
        },
        &pool,
        clock,
        counters.clone(),
        WorkerNets {
            tun_port: tun_w.id(),
            tun: net(WGDP_TUN_MAC, WGDP_TUN),
            plain: plain_net(),
        },
        reassembly_table(eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT).expect("reassembly table"),
    );
    // The control thread's first commands: the cookie secret, the peer
    // (unless another worker owns it), its route and the neighbours.
    let shared = Arc::new(PeerShared::default());
    for cmd in one_peer_commands(shared.clone(), owner, None) {
        cmd_tx.send(cmd).unwrap();
    }
    for _ in 0..setup.commands_ahead {
        cmd_tx
            .send(Command::Neighbour {
                port: PortSide::Tunnel,
                ip: IpAddr::V4(PEER_EP),
                mac: PEER_MAC,
            })
            .unwrap();
    }
    let wgdp_kp = if setup.install_first {
        cmd_tx
            .send(Command::InstallKeypair {
                id: 0,
                keypair: Box::new(kp_wgdp),
            })
            .unwrap();
        None
    } else {
        Some(kp_wgdp)
    };

    let mut tun_tx = tun_t.tx_queue(0).unwrap();
    let mut kp_peer = kp_peer;
    if setup.data_waiting {
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"waiting");
        inject(&pool, &mut tun_tx, &sealed_frame(&mut kp_peer, &inner));
    }

    let stop = AtomicBool::new(false);
    let sc = Scenario {
        h: Harness {
            pool: &pool,
            tun_tx,
            tun_rx: tun_t.rx_queue(0).unwrap(),
            plain_tx: plain_t.tx_queue(0).unwrap(),
            plain_rx: plain_t.rx_queue(0).unwrap(),
            counters,
        },
        peer_kp: kp_peer,
        wgdp_kp,
        commands: cmd_tx,
        events: ev_rx,
        handshakes: hs_rx,
        ctl_plain: ctl_plain_c,
        shared,
        handoff: elsewhere_c,
        clock,
    };
    let jobs: Vec<(u32, Job<'_, ()>)> = vec![(lcore, Box::new(|| worker.run(&stop)))];
    run_workers(eal, jobs, &stop, sc, drive);
    drop((tun_w, tun_t, plain_w, plain_t));
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}

/// The control thread sends a handshake response right after queueing the
/// command that installs its keypair, so behind a queue of other commands
/// (a handshake wave) the initiator's first data message can reach the
/// worker before the install does. The worker then applies what is queued
/// and looks again, rather than dropping the message as `unknown_index`.
#[test]
fn a_data_message_that_beats_its_keypairs_install_command_is_decrypted_not_dropped() {
    let setup = Setup {
        // More than a round's worth of commands ahead of the install.
        commands_ahead: 1000,
        data_waiting: true,
        ..Setup::ESTABLISHED
    };
    scenario(setup, |sc| {
        let out =
            sc.h.recv(PortSide::Plaintext)
                .expect("the waiting message, decrypted");
        let ip = ipv4::Packet::new_checked(&out[14..]).expect("inner ipv4");
        assert_eq!(ip.ttl(), 63);
        assert!(out.ends_with(b"waiting"));
        assert_eq!(sc.h.counters.drops(DropReason::UnknownIndex), 0);
        assert_eq!(sc.h.counters.events(Event::Decapsulated), 1);
    });
}

#[test]
fn worker_decapsulates_encapsulates_and_counts_its_drops() {
    let setup = Setup::ESTABLISHED;
    scenario(setup, |sc| {
        drive(
            &mut sc.h,
            &mut sc.peer_kp,
            &sc.events,
            &sc.handshakes,
            &mut sc.ctl_plain,
            &sc.shared,
        );
    });
}

/// The test steps, run while the worker polls.
fn drive(
    h: &mut Harness<'_>,
    kp: &mut Keypair,
    events: &Receiver<WorkerEvent>,
    handshakes: &Receiver<HandshakeMessage>,
    ctl_plain: &mut RingConsumer,
    shared: &PeerShared,
) {
    use PortSide::{Plaintext, Tunnel};
    // Decap: the peer's data comes out on the plaintext port, TTL - 1.
    let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"from the peer");
    let first = sealed_frame(kp, &inner);
    h.send(Tunnel, &first);
    let out = h.recv(Plaintext).expect("decapsulated frame");
    assert_eq!(&out[0..6], &LAN_MAC);
    assert_eq!(&out[6..12], &WGDP_PLAIN_MAC);
    let ip = ipv4::Packet::new_checked(&out[14..]).expect("inner ipv4");
    assert_eq!(ip.ttl(), 63);
    assert!(
        ip.verify_checksum(),
        "TTL decrement kept the checksum valid"
    );
    assert_eq!(&out[14 + 20..], &inner[20..], "payload unchanged");
    assert_eq!(out.len(), 14 + inner.len(), "padding and tag stripped");
    // The first data packet confirmed wgdp's (responder) keypair.
    assert_eq!(
        events.recv_timeout(Duration::from_secs(2)),
        Ok(WorkerEvent::SessionConfirmed(0))
    );
    assert!(shared.data_received.get().is_some());

    // Encap: LAN traffic to the peer goes out encrypted to its endpoint.
    let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, b"to the peer, please");
    h.send(
        Plaintext,
        &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan),
    );
    let out = h.recv(Tunnel).expect("encapsulated frame");
    assert_eq!(&out[0..6], &PEER_MAC);
    let outer_ip = ipv4::Packet::new_checked(&out[14..]).expect("outer ipv4");
    assert!(outer_ip.verify_checksum());
    assert_eq!(outer_ip.dst_addr(), PEER_EP.octets());
    assert_eq!(outer_ip.src_addr(), WGDP_TUN.octets());
    let mut msg = out[14 + 20 + 8..].to_vec();
    assert_eq!(msg.len() % 16, 0, "padded to 16, plus header and tag");
    let plain = kp
        .open_message(Instant::ZERO, &mut msg)
        .expect("the peer opens it");
    let ip = ipv4::Packet::new_checked(&plain[..lan.len()]).expect("inner");
    assert_eq!(ip.ttl(), 63);
    assert_eq!(&plain[20..lan.len()], &lan[20..]);
    assert!(plain[lan.len()..].iter().all(|&b| b == 0), "zero padding");
    assert!(shared.data_sent.get().is_some());

    // Replay of the first data packet: dropped and counted.
    h.send(Tunnel, &first);
    assert_eq!(h.counter(|c| c.drops(DropReason::Replay), 1), 1);

    // Inner source outside the peer's allowed IPs.
    let spoofed = ipv4_udp(Ipv4Addr::new(10, 9, 0, 99), LAN_HOST, 64, b"spoof");
    h.send(Tunnel, &sealed_frame(kp, &spoofed));
    assert_eq!(h.counter(|c| c.drops(DropReason::InnerSourceSpoofed), 1), 1);

    // A flipped ciphertext bit fails authentication.
    let mut bad = sealed_frame(kp, &inner);
    let at = bad.len() - 20;
    bad[at] ^= 1;
    h.send(Tunnel, &bad);
    assert_eq!(h.counter(|c| c.drops(DropReason::Authentication), 1), 1);

    // An index nobody handed out.
    let mut unknown = sealed_frame(kp, &inner);
    unknown[14 + 20 + 8 + 4..14 + 20 + 8 + 8].copy_from_slice(&0x0bad_0000u32.to_le_bytes());
    h.send(Tunnel, &unknown);
    assert_eq!(h.counter(|c| c.drops(DropReason::UnknownIndex), 1), 1);

    // A keepalive is consumed.
    h.send(Tunnel, &sealed_frame(kp, &[]));
    assert_eq!(h.counter(|c| c.events(Event::KeepaliveRx), 1), 1);

    // Plaintext to a destination no peer covers.
    let nowhere = ipv4_udp(LAN_HOST, Ipv4Addr::new(10, 55, 0, 1), 64, b"?");
    h.send(
        Plaintext,
        &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &nowhere),
    );
    assert_eq!(h.counter(|c| c.drops(DropReason::NoRoute), 1), 1);

    // A frame for another host's MAC (a switch flooded it).
    let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, b"not for wgdp");
    h.send(
        Plaintext,
        &ether([2, 0, 0, 0, 9, 9], LAN_MAC, ethernet::ethertype::IPV4, &lan),
    );
    assert_eq!(h.counter(|c| c.drops(DropReason::NotForUs), 1), 1);

    // TTL 1 cannot be forwarded.
    let dying = ipv4_udp(LAN_HOST, PEER_INNER, 1, b"ttl");
    h.send(
        Plaintext,
        &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &dying),
    );
    assert_eq!(h.counter(|c| c.drops(DropReason::TtlExceeded), 1), 1);

    // A handshake type cut short, one with extra bytes, an unknown type.
    let mut short = vec![0u8; 100];
    short[0] = 1;
    h.send(Tunnel, &udp_frame(&short));
    assert_eq!(h.counter(|c| c.drops(DropReason::Truncated), 1), 1);
    let mut long = vec![0u8; 149];
    long[0] = 1;
    h.send(Tunnel, &udp_frame(&long));
    assert_eq!(h.counter(|c| c.drops(DropReason::Oversized), 1), 1);
    let mut unknown = vec![0u8; 148];
    unknown[0] = 5;
    h.send(Tunnel, &udp_frame(&unknown));
    assert_eq!(h.counter(|c| c.drops(DropReason::BadMessage), 1), 1);

    // An initiation with our mac1 goes to the control thread; one whose
    // mac1 is not ours is dropped by the worker.
    let init = initiation(&mut CookieJar::new(&wgdp_public()), 1);
    h.send(Tunnel, &udp_frame(&init));
    let msg = handshakes
        .recv_timeout(Duration::from_secs(2))
        .expect("handshake message");
    assert_eq!(msg.bytes(), &init[..]);
    assert_eq!(msg.src, SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT));
    assert!(!msg.under_load);
    let mut zeroed = vec![0u8; INITIATION_LEN];
    zeroed[0] = 1;
    h.send(Tunnel, &udp_frame(&zeroed));
    assert_eq!(h.counter(|c| c.drops(DropReason::BadMac1), 1), 1);

    // ARP is the control thread's.
    let mut body = vec![0, 1, 8, 0, 6, 4, 0, 1];
    body.extend_from_slice(&LAN_MAC);
    body.extend_from_slice(&LAN_HOST.octets());
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(&[10, 0, 0, 1]);
    let arp = ether(
        ethernet::BROADCAST,
        LAN_MAC,
        ethernet::ethertype::ARP,
        &body,
    );
    h.send(Plaintext, &arp);
    let mut got: Burst = Burst::new();
    let deadline = StdInstant::now() + Duration::from_secs(2);
    while got.is_empty() && StdInstant::now() < deadline {
        ctl_plain.dequeue_burst(&mut got);
    }
    assert_eq!(got.as_slice().first().map(|m| m.data().to_vec()), Some(arp));

    // Nothing else was dropped, and every transmitted frame was counted.
    assert_eq!(h.counters.total_drops(), 11, "one per drop case above");
    assert_eq!(h.counters.events(Event::Decapsulated), 1);
    assert_eq!(h.counters.events(Event::Encapsulated), 1);
}

#[test]
fn worker_stages_until_a_session_then_sends_in_order_and_counts_refusals() {
    let setup = Setup {
        // The tunnel side takes 63 frames; nobody drains it until the end.
        tun_ring: 64,
        handshake_queue: 64,
        event_queue: 64,
        wgdp_initiates: true,
        install_first: false,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        use PortSide::{Plaintext, Tunnel};
        // 130 packets and no session: 128 wait, the 2 oldest are dropped,
        // and the worker asks for a handshake.
        for i in 0u32..130 {
            let inner = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            sc.h.send(
                Plaintext,
                &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &inner),
            );
        }
        assert_eq!(sc.h.counter(|c| c.events(Event::Staged), 130), 130);
        assert_eq!(sc.h.counters.drops(DropReason::StagedOverflow), 2);
        assert_eq!(
            sc.events.recv_timeout(Duration::from_secs(2)),
            Ok(WorkerEvent::WantHandshake(0))
        );
        assert_eq!(
            sc.h.counters.events(Event::Encapsulated),
            0,
            "nothing sent without a session"
        );

        // The session arrives (wgdp initiated): the staged packets go out, in
        // order; what the full TX ring refused is freed and counted.
        let kp = sc.wgdp_kp.take().expect("keypair");
        sc.commands
            .send(Command::InstallKeypair {
                id: 0,
                keypair: Box::new(kp),
            })
            .unwrap();
        assert_eq!(sc.h.counter(|c| c.events(Event::Encapsulated), 128), 128);
        assert_eq!(
            sc.h.counter(|c| c.drops(DropReason::TxFull), 65),
            65,
            "128 sent into 63 slots"
        );
        for want in 2u32..65 {
            let frame = sc.h.recv(Tunnel).expect("a staged packet");
            let mut msg = frame[14 + 20 + 8..].to_vec();
            let plain = sc
                .peer_kp
                .open_message(Instant::ZERO, &mut msg)
                .expect("the peer opens it");
            assert_eq!(
                &plain[28..32],
                &want.to_be_bytes(),
                "packets leave in arrival order"
            );
        }
        assert_eq!(
            sc.h.counters.events(Event::KeepaliveTx),
            0,
            "staged data confirmed the session"
        );
    });
}

/// A handshake request the full event channel refuses is counted
/// (`handshake_ask_lost`) and the peer's time of asking noted all the same:
/// while the channel stays full, a burst of packets for the peer tries
/// again at most once per 100 ms, not once per packet; once the channel
/// has room, the next due request gets through.
#[test]
fn a_full_event_channel_loses_one_handshake_request_per_100_ms_not_one_per_packet() {
    let setup = Setup {
        event_queue: 1,
        wgdp_initiates: true,
        install_first: false,
        ..Setup::ESTABLISHED
    };
    scenario(setup, |sc| {
        use PortSide::Plaintext;
        let to_peer = |i: u32| {
            let inner = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &inner)
        };
        // No session: the first packet is staged and its request fills
        // the one-slot channel (left undrained).
        sc.h.send(Plaintext, &to_peer(0));
        assert_eq!(sc.h.counter(|c| c.events(Event::Staged), 1), 1);
        let asked = sc.clock.now();
        assert_eq!(sc.h.counters.events(Event::HandshakeAskLost), 0);
        assert_eq!(sc.events.len(), 1, "the first request took the slot");

        // Past the 100 ms rate limit, a quick burst of 50 for the peer.
        sleep_until(&sc.clock, asked + Duration::from_millis(150));
        let start = StdInstant::now();
        for i in 1u32..=50 {
            sc.h.send(Plaintext, &to_peer(i));
        }
        assert_eq!(sc.h.counter(|c| c.events(Event::Staged), 51), 51);
        let elapsed = start.elapsed().as_millis() as u64;
        let lost = sc.h.counters.events(Event::HandshakeAskLost);
        assert!(
            (1..=1 + elapsed / 100).contains(&lost),
            "{lost} requests lost in a {elapsed} ms burst: one per 100 ms at most, at least the first"
        );
        assert_eq!(sc.events.len(), 1, "nothing more queued");

        // Room again: the next request due gets through and loses nothing.
        assert_eq!(sc.events.try_recv(), Ok(WorkerEvent::WantHandshake(0)));
        sleep_until(&sc.clock, sc.clock.now() + Duration::from_millis(150));
        sc.h.send(Plaintext, &to_peer(51));
        assert_eq!(sc.h.counter(|c| c.events(Event::Staged), 52), 52);
        assert_eq!(
            sc.events.recv_timeout(Duration::from_secs(2)),
            Ok(WorkerEvent::WantHandshake(0))
        );
        assert_eq!(sc.h.counters.events(Event::HandshakeAskLost), lost);
        assert_eq!(sc.h.counters.drops(DropReason::StagedOverflow), 0);
    });
}

/// Sleeps until the worker's clock reads `at`.
fn sleep_until(clock: &TscClock, at: Instant) {
    while clock.now() < at {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whitepaper section 6.2: a keypair sends nothing once it is
/// REJECT_AFTER_TIME old, counted from the handshake that derived it (its
/// birth, kernel `noise.c: keypair_create`), on the worker's own clock.
/// wgdp is the responder and the peer's first data message confirms the
/// session: LAN traffic just before 180 s is sealed, just after it is
/// staged and a handshake asked (kernel `send.c: wg_packet_send_staged_packets`),
/// and nothing is sealed with the old keys.
#[test]
fn a_responder_session_seals_until_reject_after_time_then_stages_and_asks_for_a_handshake() {
    let setup = Setup {
        clock_at: REJECT_AFTER_TIME - Duration::from_secs(5),
        ..Setup::ESTABLISHED
    };
    scenario(setup, |sc| {
        use PortSide::{Plaintext, Tunnel};
        let reject = Instant::ZERO + REJECT_AFTER_TIME;
        let to_peer = |n: u8| {
            let inner = ipv4_udp(LAN_HOST, PEER_INNER, 64, &[n]);
            ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &inner)
        };
        // The initiator's first data message promotes wgdp's keypair from
        // `next` to `current`.
        let hello = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"hello");
        sc.h.send(Tunnel, &sealed_frame(&mut sc.peer_kp, &hello));
        assert!(
            sc.h.recv(Plaintext).is_some(),
            "the peer's data is decapsulated"
        );
        assert_eq!(
            sc.events.recv_timeout(Duration::from_secs(2)),
            Ok(WorkerEvent::SessionConfirmed(0))
        );

        // Half a second before REJECT_AFTER_TIME: sealed and sent.
        sleep_until(&sc.clock, reject - Duration::from_millis(500));
        sc.h.send(Plaintext, &to_peer(1));
        let out = sc.h.recv(Tunnel).expect("sealed before REJECT_AFTER_TIME");
        let seen = sc.clock.now();
        assert!(
            seen < reject,
            "sealed by {seen:?}, so before 180 s (else the machine was too slow for this test)"
        );
        let mut msg = out[14 + 20 + 8..].to_vec();
        let plain = sc
            .peer_kp
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert_eq!(plain[28], 1, "the packet sent before 180 s");

        // 100 ms after: staged, not sealed, and a handshake asked.
        sleep_until(&sc.clock, reject + Duration::from_millis(100));
        sc.h.send(Plaintext, &to_peer(2));
        assert_eq!(sc.h.counter(|c| c.events(Event::Staged), 1), 1);
        assert_eq!(
            sc.events.recv_timeout(Duration::from_secs(2)),
            Ok(WorkerEvent::WantHandshake(0))
        );
        assert_eq!(
            sc.h.recv(Tunnel),
            None,
            "nothing sealed with the expired keypair"
        );
        assert_eq!(sc.h.counters.events(Event::Encapsulated), 1);
        assert_eq!(sc.h.counters.events(Event::KeepaliveTx), 0);
        assert_eq!(
            sc.h.counters.drops(DropReason::KeyExpired),
            0,
            "the expiry is seen before sealing, not by a failed seal"
        );
    });
}

#[test]
fn worker_degrades_under_exhaustion_and_recovers_when_it_ends() {
    let setup = Setup {
        tun_ring: 64,
        handshake_queue: 2,
        event_queue: 64,
        wgdp_initiates: true,
        install_first: true,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        use PortSide::{Plaintext, Tunnel};
        // The keepalive that confirms the installed session (we initiated).
        assert_eq!(sc.h.counter(|c| c.events(Event::KeepaliveTx), 1), 1);
        sc.h.recv(Tunnel).expect("the confirming keepalive");
        // An empty pool: a keepalive cannot be built; counted, not fatal.
        let mut held = Vec::new();
        while let Some(m) = sc.h.pool.alloc() {
            held.push(m);
        }
        assert_eq!(sc.h.pool.available(), 0);
        sc.commands.send(Command::SendKeepalive { id: 0 }).unwrap();
        assert_eq!(sc.h.counter(|c| c.drops(DropReason::NoMbuf), 1), 1);
        assert_eq!(sc.h.counters.events(Event::KeepaliveTx), 1);
        // The pool refills: the next keepalive goes out and opens.
        drop(held);
        sc.commands.send(Command::SendKeepalive { id: 0 }).unwrap();
        assert_eq!(sc.h.counter(|c| c.events(Event::KeepaliveTx), 2), 2);
        let frame = sc.h.recv(Tunnel).expect("the keepalive");
        let mut msg = frame[14 + 20 + 8..].to_vec();
        let plain = sc
            .peer_kp
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert!(plain.is_empty(), "a keepalive is empty");

        // A full handshake queue (2): the third initiation is counted; once
        // the control thread drains the queue, initiations pass again. (A
        // queue of 2 is under load from its first message: the initiator
        // needs a cookie first, and its messages carry mac2.)
        let mut jar = CookieJar::new(&wgdp_public());
        let init = initiation(&mut jar, 1);
        sc.h.send(Tunnel, &udp_frame(&init));
        let reply = sc.h.recv(Tunnel).expect("a cookie reply");
        jar.consume_reply(&cookie_reply(&reply), Instant::ZERO)
            .expect("the initiator takes the cookie");
        let init = initiation(&mut jar, 2);
        for _ in 0..3 {
            sc.h.send(Tunnel, &udp_frame(&init));
        }
        assert_eq!(
            sc.h.counter(|c| c.drops(DropReason::HandshakeQueueFull), 1),
            1
        );
        while sc.handshakes.try_recv().is_ok() {}
        sc.h.send(Tunnel, &udp_frame(&init));
        assert_eq!(sc.h.counter(|c| c.events(Event::HandshakeToControl), 3), 3);
        assert_eq!(sc.h.counters.events(Event::CookieReplySent), 1);

        // A full TX ring (63 slots): 80 packets, 17 refused and counted;
        // once the far end drains it, the next packet goes out.
        for i in 0u32..80 {
            let inner = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            sc.h.send(
                Plaintext,
                &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &inner),
            );
        }
        assert_eq!(sc.h.counter(|c| c.events(Event::Encapsulated), 80), 80);
        assert_eq!(sc.h.counter(|c| c.drops(DropReason::TxFull), 17), 17);
        for _ in 0..63 {
            sc.h.recv(Tunnel).expect("a queued packet");
        }
        let inner = ipv4_udp(LAN_HOST, PEER_INNER, 64, b"after");
        sc.h.send(
            Plaintext,
            &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &inner),
        );
        let frame =
            sc.h.recv(Tunnel)
                .expect("the packet after the ring drained");
        let mut msg = frame[14 + 20 + 8..].to_vec();
        let plain = sc
            .peer_kp
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert_eq!(&plain[28..33], b"after");
        assert_eq!(
            sc.h.counters.drops(DropReason::TxFull),
            17,
            "no more refusals"
        );
    });
}

#[test]
fn a_full_handoff_ring_is_counted_and_passes_again_once_drained() {
    let setup = Setup {
        tun_ring: 1024,
        handshake_queue: 4,
        event_queue: 64,
        wgdp_initiates: true,
        install_first: false,
        owned_elsewhere: true,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        let lan_packet = |i: u32| {
            let inner = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &inner)
        };
        // The owner never drains its ring (63 slots): all 80 packets for
        // its peer are handed towards it (as TX counts `encapsulated`
        // before the ring), 17 of them refused by the full ring and counted.
        for i in 0u32..80 {
            sc.h.send(PortSide::Plaintext, &lan_packet(i));
        }
        assert_eq!(sc.h.counter(|c| c.events(Event::HandoffOut), 80), 80);
        assert_eq!(sc.h.counter(|c| c.drops(DropReason::HandoffFull), 17), 17);
        assert_eq!(sc.h.counters.events(Event::Encapsulated), 0, "not ours");
        // The handed-off packets are the first 63, in order.
        let mut b: Burst<64> = Burst::new();
        assert_eq!(sc.handoff.dequeue_burst(&mut b), 63);
        for (i, m) in (0u32..).zip(b.drain()) {
            assert_eq!(m.data(), &lan_packet(i)[..], "packet {i}");
        }
        // Drained: the next packet is handed off, nothing more refused.
        sc.h.send(PortSide::Plaintext, &lan_packet(80));
        assert_eq!(sc.h.counter(|c| c.events(Event::HandoffOut), 81), 81);
        assert_eq!(sc.handoff.dequeue_burst(&mut b), 1);
        assert_eq!(
            b.drain().next().map(|m| m.data().to_vec()),
            Some(lan_packet(80))
        );
        assert_eq!(sc.h.counters.drops(DropReason::HandoffFull), 17);
    });
}

/// The cookie reply in a frame the worker sent to the peer, after checking
/// its outer headers: from wgdp's port to the initiation's source.
fn cookie_reply(frame: &[u8]) -> CookieReply<&[u8]> {
    assert_eq!(&frame[0..6], &PEER_MAC, "to the next hop of the source");
    assert_eq!(&frame[6..12], &WGDP_TUN_MAC);
    let ip = ipv4::Packet::new_checked(&frame[14..]).expect("IPv4");
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.src_addr(), ip.dst_addr()),
        (WGDP_TUN.octets(), PEER_EP.octets())
    );
    let udp = udp::Packet::new_checked(ip.payload()).expect("UDP");
    assert!(udp.verify_checksum_v4(ip.src_addr(), ip.dst_addr()));
    assert_eq!((udp.src_port(), udp.dst_port()), (LISTEN, PEER_PORT));
    assert_eq!(udp.payload().len(), COOKIE_REPLY_LEN);
    CookieReply::new_checked(&frame[14 + 20 + 8..]).expect("a cookie reply")
}

#[test]
fn the_gate_drops_bad_mac1_and_answers_with_cookies_under_load() {
    let setup = Setup {
        tun_ring: 1024,
        // Under load from a backlog of 1 (8 / 8).
        handshake_queue: 8,
        event_queue: 64,
        wgdp_initiates: false,
        install_first: true,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        use PortSide::Tunnel;
        let recv_hs = |sc: &Scenario<'_>| {
            sc.handshakes
                .recv_timeout(Duration::from_secs(2))
                .expect("a queued handshake message")
        };
        // mac1 for another key, and a response with a broken mac1: dropped.
        let stranger = PrivateKey::from_bytes([9; 32]).public_key();
        sc.h.send(
            Tunnel,
            &udp_frame(&initiation(&mut CookieJar::new(&stranger), 1)),
        );
        let mut response = vec![0u8; 92];
        response[0] = 2;
        CookieJar::new(&wgdp_public()).add_macs(&mut response, Instant::ZERO);
        response[70] ^= 1;
        sc.h.send(Tunnel, &udp_frame(&response));
        assert_eq!(sc.h.counter(|c| c.drops(DropReason::BadMac1), 2), 2);

        // Not under load: an initiation with mac1 and no mac2 is queued.
        let mut jar = CookieJar::new(&wgdp_public());
        sc.h.send(Tunnel, &udp_frame(&initiation(&mut jar, 1)));
        assert_eq!(sc.h.counter(|c| c.events(Event::HandshakeToControl), 1), 1);
        // With that one waiting, the next is under load: answered with a
        // cookie by the worker, not queued.
        let init = initiation(&mut jar, 2);
        sc.h.send(Tunnel, &udp_frame(&init));
        let frame = sc.h.recv(Tunnel).expect("a cookie reply");
        let reply = cookie_reply(&frame);
        assert_eq!(reply.receiver(), 2, "addressed to the initiation's sender");
        jar.consume_reply(&reply, Instant::ZERO)
            .expect("a real initiator accepts the cookie");
        assert!(recv_hs(sc).bytes()[4] == 1, "only the first was queued");
        assert!(sc.handshakes.is_empty());

        // Under load for a second after the backlog: the retry with mac2
        // is queued, marked for the control thread's rate limiter.
        let retry = initiation(&mut jar, 3);
        sc.h.send(Tunnel, &udp_frame(&retry));
        let msg = recv_hs(sc);
        assert_eq!(msg.bytes(), &retry[..]);
        assert!(msg.under_load);
        assert_eq!(sc.h.counters.events(Event::CookieReplySent), 1);

        // A new secret from the control thread: the old cookie's mac2 no
        // longer checks, and the answer is a new cookie.
        let secret = CookieChecker::new(&wgdp_public())
            .rotate(Instant::ZERO, &mut rand_core::OsRng)
            .expect("secret");
        sc.commands
            .send(Command::CookieSecret(Box::new(secret)))
            .unwrap();
        // Commands are applied between bursts: wait until a retry gets a
        // cookie instead of passing. A retry the worker judged before it
        // applied the secret passes (and the wait for its cookie takes
        // the counter's 2 s), so the deadline leaves room for several.
        let deadline = StdInstant::now() + Duration::from_secs(10);
        loop {
            sc.h.send(Tunnel, &udp_frame(&initiation(&mut jar, 4)));
            if sc.h.counter(|c| c.events(Event::CookieReplySent), 2) >= 2 {
                break;
            }
            assert!(StdInstant::now() < deadline, "the new secret never took");
            while sc.handshakes.try_recv().is_ok() {}
        }
        let frame = sc.h.recv(Tunnel).expect("the new cookie");
        jar.consume_reply(&cookie_reply(&frame), Instant::ZERO)
            .expect("accepted");
        assert_eq!(sc.h.counters.drops(DropReason::BadMac1), 2);
        assert_eq!(sc.h.counters.drops(DropReason::HandshakeQueueFull), 0);
    });
}

/// 40 handshake messages sent as a full RX burst of 32 and 8 more: the
/// gate holds them (more than one SIMD pass of mac1 checks, more than it
/// holds at once), and judges each as alone: every odd one, whose mac1 is
/// for another key, is dropped as `bad_mac1`; every even one is queued for
/// the control thread, in the order sent; no cookie (not under load).
#[test]
fn a_burst_of_handshake_messages_is_judged_message_by_message_in_order() {
    let setup = Setup {
        tun_ring: 1024,
        handshake_queue: 1024,
        event_queue: 64,
        wgdp_initiates: false,
        install_first: true,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        let mut ours = CookieJar::new(&wgdp_public());
        let stranger = PrivateKey::from_bytes([9; 32]).public_key();
        let mut theirs = CookieJar::new(&stranger);
        let frames: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                let jar = if i % 2 == 0 { &mut ours } else { &mut theirs };
                udp_frame(&initiation(jar, i))
            })
            .collect();
        for chunk in frames.chunks(32) {
            let mut b: Burst = Burst::new();
            for f in chunk {
                let mut m = sc.h.pool.alloc().expect("alloc");
                m.append(f.len() as u16).expect("room").copy_from_slice(f);
                b.push(m).expect("room");
            }
            assert_eq!(sc.h.tun_tx.tx_burst(&mut b), chunk.len());
        }
        let queued = sc.h.counter(|c| c.events(Event::HandshakeToControl), 20);
        assert_eq!(queued, 20);
        assert_eq!(sc.h.counter(|c| c.drops(DropReason::BadMac1), 20), 20);
        let senders: Vec<u8> = sc.handshakes.try_iter().map(|h| h.bytes()[4]).collect();
        assert_eq!(senders, (0..40).step_by(2).collect::<Vec<u8>>());
        assert_eq!(sc.h.counters.events(Event::CookieReplySent), 0);
        assert_eq!(sc.h.counters.drops(DropReason::HandshakeQueueFull), 0);
    });
}

/// Four initiations with a valid mac1 and no mac2, sent as one burst to a
/// worker whose handshake queue holds 8 (under load from a backlog of 1)
/// and is never drained: the first is queued, and each later one finds
/// the queue at least 1/8 full, whether it is judged in the same round
/// (the gate counts what it queued since it read the queue's length) or a
/// later one, so it is answered with a cookie reply.
#[test]
fn handshakes_judged_together_count_the_ones_queued_before_them_toward_load() {
    let setup = Setup {
        tun_ring: 1024,
        handshake_queue: 8,
        event_queue: 64,
        wgdp_initiates: false,
        install_first: true,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        let mut jar = CookieJar::new(&wgdp_public());
        let mut b: Burst = Burst::new();
        for i in 0..4u32 {
            let f = udp_frame(&initiation(&mut jar, i));
            let mut m = sc.h.pool.alloc().expect("alloc");
            m.append(f.len() as u16).expect("room").copy_from_slice(&f);
            b.push(m).expect("room");
        }
        assert_eq!(sc.h.tun_tx.tx_burst(&mut b), 4);
        assert_eq!(sc.h.counter(|c| c.events(Event::CookieReplySent), 3), 3);
        assert_eq!(sc.h.counters.events(Event::HandshakeToControl), 1);
        let queued: Vec<u8> = sc.handshakes.try_iter().map(|h| h.bytes()[4]).collect();
        assert_eq!(queued, vec![0]);
        for sender in 1..4u32 {
            let frame = sc.h.recv(PortSide::Tunnel).expect("a cookie reply");
            assert_eq!(cookie_reply(&frame).receiver(), sender);
        }
    });
}

/// Under load (a handshake queue of 8 holding one), a full RX burst of 32
/// handshake messages, a saturated round: 12 with a mac1 for another key
/// are dropped, and every one of the 20 with our mac1 and no mac2 is
/// answered with a cookie reply: the first 16 after waiting for one full
/// pass of cookies and mac2s, the 4 more than a pass holds with theirs
/// computed at once. Then a burst of 32 with 4 such among 28 dropped: the
/// 4 wait past their saturated round and get their cookies once a round
/// is not saturated. Nothing more is queued.
#[test]
fn under_load_valid_mac1s_of_a_saturated_round_all_get_their_cookies() {
    let setup = Setup {
        tun_ring: 1024,
        handshake_queue: 8,
        event_queue: 64,
        wgdp_initiates: false,
        install_first: true,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        let mut ours = CookieJar::new(&wgdp_public());
        sc.h.send(PortSide::Tunnel, &udp_frame(&initiation(&mut ours, 0)));
        assert_eq!(sc.h.counter(|c| c.events(Event::HandshakeToControl), 1), 1);
        let stranger = PrivateKey::from_bytes([9; 32]).public_key();
        let mut theirs = CookieJar::new(&stranger);
        for (first, valid, cookies, bad) in [(100u32, 5, 20, 12), (200, 1, 24, 40)] {
            let mut b: Burst = Burst::new();
            for i in 0..32u32 {
                let jar = if i % 8 < valid {
                    &mut ours
                } else {
                    &mut theirs
                };
                let f = udp_frame(&initiation(jar, first + i));
                let mut m = sc.h.pool.alloc().expect("alloc");
                m.append(f.len() as u16).expect("room").copy_from_slice(&f);
                b.push(m).expect("room");
            }
            assert_eq!(sc.h.tun_tx.tx_burst(&mut b), 32);
            let sent = sc.h.counter(|c| c.events(Event::CookieReplySent), cookies);
            assert_eq!(sent, cookies);
            assert_eq!(sc.h.counter(|c| c.drops(DropReason::BadMac1), bad), bad);
            let n = 4 * valid as usize;
            let mut receivers: Vec<u32> = (0..n)
                .map(|_| {
                    let frame = sc.h.recv(PortSide::Tunnel).expect("a cookie reply");
                    cookie_reply(&frame).receiver()
                })
                .collect();
            receivers.sort_unstable();
            let want: Vec<u32> = (0..32)
                .filter(|i| i % 8 < valid)
                .map(|i| first + i)
                .collect();
            assert_eq!(receivers, want);
        }
        assert_eq!(sc.h.counters.events(Event::HandshakeToControl), 1);
        assert_eq!(sc.h.counters.drops(DropReason::HandshakeQueueFull), 0);
    });
}

/// Encapsulates one LAN packet to the peer and returns the outer frame.
fn encap_one(h: &mut Harness<'_>) -> Vec<u8> {
    let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, b"to the peer");
    h.send(
        PortSide::Plaintext,
        &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan),
    );
    h.recv(PortSide::Tunnel).expect("encapsulated frame")
}

#[test]
fn cached_outer_headers_follow_neighbour_changes_and_roaming() {
    let setup = Setup::ESTABLISHED;
    scenario(setup, |sc| {
        let h = &mut sc.h;
        // The peer's first data packet confirms the session.
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"hello");
        h.send(PortSide::Tunnel, &sealed_frame(&mut sc.peer_kp, &inner));
        h.recv(PortSide::Plaintext).expect("decapsulated");
        let udp_dst = |f: &[u8]| u16::from_be_bytes([f[14 + 22], f[14 + 23]]);
        let first = encap_one(h);
        assert_eq!(&first[0..6], &PEER_MAC);
        assert_eq!(udp_dst(&first), PEER_PORT);
        // The same headers again (the cached ones), up to the UDP checksum
        // (the message differs by its counter), but for the IPv4
        // identification, one more per packet (one worker), and so the
        // header checksum.
        let second = encap_one(h);
        let ident = |f: &[u8]| u16::from_be_bytes([f[14 + 4], f[14 + 5]]);
        assert_eq!(ident(&second), ident(&first).wrapping_add(1));
        assert_eq!(first[..14 + 4], second[..14 + 4]);
        assert_eq!(first[14 + 6..14 + 10], second[14 + 6..14 + 10]);
        assert_eq!(first[14 + 12..14 + 20 + 6], second[14 + 12..14 + 20 + 6]);
        let ip = ipv4::Packet::new_checked(&second[14..]).expect("outer ipv4");
        assert!(ip.verify_checksum());

        // The next hop's MAC changes: the next packet carries the new one.
        let new_mac = [2, 0, 0, 0, 7, 7];
        sc.commands
            .send(Command::Neighbour {
                port: PortSide::Tunnel,
                ip: IpAddr::V4(PEER_EP),
                mac: new_mac,
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let out = encap_one(h);
        assert_eq!(&out[0..6], &new_mac, "rebuilt after the neighbour change");
        let ip = ipv4::Packet::new_checked(&out[14..]).expect("outer ipv4");
        assert!(ip.verify_checksum());

        // The peer roams to another port: packets follow it.
        let mut roamed = sealed_frame(&mut sc.peer_kp, &inner);
        let udp = 14 + 20;
        roamed[udp..udp + 2].copy_from_slice(&(PEER_PORT + 7).to_be_bytes());
        roamed[udp + 6..udp + 8].copy_from_slice(&[0, 0]); // no UDP checksum
        h.send(PortSide::Tunnel, &roamed);
        h.recv(PortSide::Plaintext)
            .expect("decapsulated after roaming");
        let out = encap_one(h);
        assert_eq!(udp_dst(&out), PEER_PORT + 7, "rebuilt for the new endpoint");
        assert_eq!(&out[0..6], &new_mac);
        let u = udp::Packet::new_checked(&out[udp..]).expect("outer udp");
        assert_eq!(usize::from(u.length()), out.len() - udp);
        assert_eq!(h.counters.total_drops(), 0);
        assert_eq!(h.counters.events(Event::Encapsulated), 4);
    });
}

/// An IPv4 UDP packet like [`ipv4_udp`], `len` bytes long, with DF and
/// the TOS byte `tos`.
fn ipv4_sized(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, len: usize, df: bool, tos: u8) -> Vec<u8> {
    let mut p = ipv4_udp(src, dst, ttl, &vec![0x5a; len - 28]);
    p[1] = tos;
    if df {
        p[6] = 0x40;
    }
    p[10..12].fill(0);
    let c = dataplane::wire::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// Checks an ICMP error frame wgdp sent to the LAN host about `orig`
/// (IPv4): Ethernet back to the host, from 10.0.0.1, the RFC fields and
/// both checksums; returns (type, code, the 4-byte field).
fn icmp_to_lan(frame: &[u8], orig: &[u8]) -> (u8, u8, [u8; 4]) {
    assert_eq!(&frame[0..6], &LAN_MAC, "back to the sender's MAC");
    assert_eq!(&frame[6..12], &WGDP_PLAIN_MAC);
    assert_eq!(&frame[12..14], &[0x08, 0x00]);
    let ip = ipv4::Packet::new_checked(&frame[14..]).expect("ipv4");
    assert!(ip.verify_checksum());
    assert_eq!(ip.protocol(), 1);
    assert_eq!(ip.src_addr(), [10, 0, 0, 1], "the plaintext port's address");
    assert_eq!(ip.dst_addr(), LAN_HOST.octets());
    let icmp = ip.payload();
    assert!(dataplane::wire::checksum::verify(icmp), "ICMP checksum");
    let quoted = orig.len().min(576 - 28);
    assert_eq!(
        &icmp[8..],
        &orig[..quoted],
        "the original, up to 576 bytes in all"
    );
    (icmp[0], icmp[1], [icmp[4], icmp[5], icmp[6], icmp[7]])
}

#[test]
fn the_worker_answers_too_big_and_expiring_packets_with_icmp_errors() {
    scenario(Setup::ESTABLISHED, |sc| {
        use PortSide::{Plaintext, Tunnel};
        let to_lan = |p: &[u8]| ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, p);
        // 1500 bytes with DF: fragmentation needed, next-hop MTU 1420.
        let big = ipv4_sized(LAN_HOST, PEER_INNER, 64, 1500, true, 0);
        sc.h.send(Plaintext, &to_lan(&big));
        let reply = sc.h.recv(Plaintext).expect("fragmentation needed");
        assert_eq!(icmp_to_lan(&reply, &big), (3, 4, [0, 0, 0x05, 0x8c]));
        assert_eq!(sc.h.counters.drops(DropReason::TooBig), 1);
        assert_eq!(sc.h.counters.events(Event::IcmpFragNeeded), 1);
        // 1420 with DF fits: no error (it is staged: no session yet).
        let fits = ipv4_sized(LAN_HOST, PEER_INNER, 64, 1420, true, 0);
        sc.h.send(Plaintext, &to_lan(&fits));
        assert_eq!(sc.h.counter(|c| c.events(Event::Staged), 1), 1);
        // TTL 1: time exceeded.
        let dying = ipv4_udp(LAN_HOST, PEER_INNER, 1, b"traceroute");
        sc.h.send(Plaintext, &to_lan(&dying));
        let reply = sc.h.recv(Plaintext).expect("time exceeded");
        assert_eq!(icmp_to_lan(&reply, &dying), (11, 0, [0; 4]));
        // Never about an ICMP error: a too-big destination unreachable.
        let mut error = ipv4_sized(LAN_HOST, PEER_INNER, 64, 1500, true, 0);
        error[9] = 1;
        error[20] = 3;
        error[10..12].fill(0);
        let c = dataplane::wire::checksum::checksum(&error[..20]);
        error[10..12].copy_from_slice(&c.to_be_bytes());
        sc.h.send(Plaintext, &to_lan(&error));
        assert_eq!(sc.h.counter(|c| c.events(Event::IcmpSuppressed), 1), 1);
        assert_eq!(sc.h.counters.drops(DropReason::TooBig), 2);

        // The other way: a packet from the peer's network with TTL 1 is
        // answered through the tunnel, sealed for the peer.
        let dying = ipv4_udp(PEER_INNER, LAN_HOST, 1, b"from the site");
        sc.h.send(Tunnel, &sealed_frame(&mut sc.peer_kp, &dying));
        let out = sc.h.recv(Tunnel).expect("the staged packet or the error");
        // The staged 1420-byte packet goes first once the session is
        // confirmed, then the error.
        let out = if out.len() > 1000 {
            sc.h.recv(Tunnel).expect("the error")
        } else {
            out
        };
        let mut msg = out[14 + 20 + 8..].to_vec();
        let plain = sc
            .peer_kp
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        let ip = ipv4::Packet::new_checked(&*plain).expect("ipv4");
        let icmp_len = ip.total_len();
        let ip = ipv4::Packet::new_checked(&plain[..icmp_len]).expect("ipv4");
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), [10, 0, 0, 1]);
        assert_eq!(ip.dst_addr(), PEER_INNER.octets());
        assert_eq!(ip.ttl(), 64, "originated by wgdp, not forwarded");
        let icmp = ip.payload();
        assert_eq!((icmp[0], icmp[1]), (11, 0));
        assert!(dataplane::wire::checksum::verify(icmp));
        assert_eq!(&icmp[8..], &dying[..]);
        assert_eq!(sc.h.counter(|c| c.events(Event::IcmpTimeExceeded), 2), 2);
        assert_eq!(sc.h.counters.drops(DropReason::TtlExceeded), 2);
    });
}

#[test]
fn an_endpointless_peer_is_unreachable_and_its_errors_are_rate_limited() {
    scenario(Setup::ESTABLISHED, |sc| {
        use PortSide::Plaintext;
        // A second peer, no endpoint (an offline road warrior).
        let offline = Ipv4Addr::new(10, 8, 0, 2);
        let state = Box::new(PeerState::new(Arc::new(PeerShared::default()), None));
        sc.commands.send(Command::AddPeer { id: 1, state }).unwrap();
        let mut allowed = AllowedIps::new();
        allowed.insert(Prefix::new(IpAddr::V4(PEER_INNER), 32).unwrap(), 0);
        allowed.insert(Prefix::new(IpAddr::V4(offline), 32).unwrap(), 1);
        let routes = RouteTable {
            allowed,
            owners: vec![0, 0],
            groups: Vec::new(),
        };
        sc.commands
            .send(Command::SetRoutes(Arc::new(routes)))
            .unwrap();
        // Commands are applied between bursts: let the routes land first.
        std::thread::sleep(Duration::from_millis(50));
        let one = ipv4_udp(LAN_HOST, offline, 64, b"anyone?");
        let frame = ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &one);
        sc.h.send(Plaintext, &frame);
        let reply = sc.h.recv(Plaintext).expect("host unreachable");
        assert_eq!(icmp_to_lan(&reply, &one), (3, 1, [0; 4]));
        assert_eq!(sc.h.counters.events(Event::Staged), 0, "never staged");
        // A spray: 400 more in a few milliseconds. The bucket holds 50 and
        // earns one a millisecond.
        let start = StdInstant::now();
        for _ in 0..400 {
            sc.h.send(Plaintext, &frame);
        }
        let dropped = sc.h.counter(|c| c.drops(DropReason::NoEndpoint), 401);
        let took = start.elapsed().as_millis() as u64;
        assert_eq!(dropped, 401);
        let sent = sc.h.counters.events(Event::IcmpUnreachable);
        let limited = sc.h.counters.events(Event::IcmpRateLimited);
        assert_eq!(sent + limited, 401, "every datagram answered or limited");
        assert!(
            (50..=50 + took + 1).contains(&sent),
            "{sent} errors in {took} ms"
        );
        let mut answered = 1;
        while sc.h.recv(Plaintext).is_some() {
            answered += 1;
        }
        assert_eq!(answered, sent, "each counted error was sent");
        assert_eq!(sc.h.counters.events(Event::Staged), 0);
    });
}

/// A data message from the peer whose outer IPv4 header carries `ecn`.
fn sealed_frame_ecn(kp: &mut Keypair, inner: &[u8], ecn: u8) -> Vec<u8> {
    let mut f = sealed_frame(kp, inner);
    f[15] = (f[15] & !3) | ecn;
    f[24..26].fill(0);
    let c = dataplane::wire::checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn decap_carries_ce_per_rfc6040_and_checks_the_inner_checksum() {
    scenario(Setup::ESTABLISHED, |sc| {
        use PortSide::{Plaintext, Tunnel};
        // (inner ECN, outer ECN, inner ECN delivered; None: dropped).
        let cases = [
            (0b10, 0b11, Some(0b11)),
            (0b01, 0b11, Some(0b11)),
            (0b10, 0b01, Some(0b01)),
            (0b10, 0b00, Some(0b10)),
            (0b00, 0b10, Some(0b00)),
            (0b00, 0b11, None),
        ];
        for (inner_ecn, outer_ecn, want) in cases {
            let inner = ipv4_sized(PEER_INNER, LAN_HOST, 64, 100, false, 0xb8 | inner_ecn);
            sc.h.send(
                Tunnel,
                &sealed_frame_ecn(&mut sc.peer_kp, &inner, outer_ecn),
            );
            match want {
                Some(ecn) => {
                    let out = sc.h.recv(Plaintext).expect("delivered");
                    let ip = ipv4::Packet::new_checked(&out[14..]).expect("ipv4");
                    assert_eq!(ip.dscp_ecn(), 0xb8 | ecn, "{inner_ecn} under {outer_ecn}");
                    assert!(ip.verify_checksum());
                }
                None => {
                    assert_eq!(sc.h.counter(|c| c.drops(DropReason::EcnCeNotEct), 1), 1);
                }
            }
        }
        // A wrong inner IPv4 header checksum.
        let mut bad = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"bad checksum");
        bad[10] ^= 0x40;
        sc.h.send(Tunnel, &sealed_frame(&mut sc.peer_kp, &bad));
        assert_eq!(sc.h.counter(|c| c.drops(DropReason::InnerMalformed), 1), 1);
        assert_eq!(sc.h.counters.events(Event::Decapsulated), 5);
        assert_eq!(sc.h.counters.total_drops(), 2);
    });
}

#[test]
fn the_staging_budget_gives_up_the_oldest_packets_of_all_peers() {
    let setup = Setup {
        tun_ring: 1024,
        handshake_queue: 64,
        event_queue: 64,
        wgdp_initiates: true,
        install_first: false,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        use PortSide::Plaintext;
        // Nine more peers with an endpoint and no session yet.
        let mut allowed = AllowedIps::new();
        allowed.insert(Prefix::new(IpAddr::V4(PEER_INNER), 32).unwrap(), 0);
        let inner = |id: u32| match id {
            0 => PEER_INNER,
            _ => Ipv4Addr::new(10, 20, 0, id as u8),
        };
        for id in 1..10u32 {
            let endpoint = SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT + id as u16);
            let state = Box::new(PeerState::new(
                Arc::new(PeerShared::default()),
                Some(endpoint),
            ));
            sc.commands.send(Command::AddPeer { id, state }).unwrap();
            allowed.insert(Prefix::new(IpAddr::V4(inner(id)), 32).unwrap(), id);
        }
        let routes = RouteTable {
            allowed,
            owners: vec![0; 10],
            groups: Vec::new(),
        };
        sc.commands
            .send(Command::SetRoutes(Arc::new(routes)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        // 128 packets for each (the per-peer limit): 1280 against the
        // test worker's budget of 1023.
        for id in 0..10u32 {
            for i in 0u32..128 {
                let p = ipv4_udp(LAN_HOST, inner(id), 64, &i.to_be_bytes());
                sc.h.send(
                    Plaintext,
                    &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &p),
                );
            }
            // Paced: the plaintext ring holds 1023.
            assert_eq!(
                sc.h.counter(|c| c.events(Event::Staged), u64::from(id + 1) * 128),
                u64::from(id + 1) * 128
            );
        }
        assert_eq!(sc.h.counters.drops(DropReason::StagedBudget), 1280 - 1023);
        assert_eq!(sc.h.counters.drops(DropReason::StagedOverflow), 0);
        // Peer 0's packets were the oldest: all gone. Its session comes
        // up and nothing is sent; peer 9's would all be there.
        let kp = sc.wgdp_kp.take().expect("wgdp's keypair");
        sc.commands
            .send(Command::InstallKeypair {
                id: 0,
                keypair: Box::new(kp),
            })
            .unwrap();
        let first =
            sc.h.recv(PortSide::Tunnel)
                .expect("a keepalive, nothing staged");
        let mut msg = first[14 + 20 + 8..].to_vec();
        let plain = sc
            .peer_kp
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert!(plain.is_empty(), "peer 0 had nothing left: a keepalive");
        assert_eq!(sc.h.counters.events(Event::KeepaliveTx), 1);
        // Dropping the rest when the peers go.
        for id in 1..10u32 {
            sc.commands.send(Command::RemovePeer { id }).unwrap();
        }
        let gone = sc.h.counter(|c| c.drops(DropReason::PeerGone), 1023);
        assert_eq!(gone, 1023, "every slot of the budget was in use");
    });
}

#[test]
fn staged_packets_are_dropped_when_the_handshake_is_given_up() {
    let setup = Setup {
        tun_ring: 1024,
        handshake_queue: 64,
        event_queue: 64,
        wgdp_initiates: true,
        install_first: false,
        owned_elsewhere: false,
        clock_at: Duration::ZERO,
        commands_ahead: 0,
        data_waiting: false,
    };
    scenario(setup, |sc| {
        use PortSide::{Plaintext, Tunnel};
        for i in 0u32..5 {
            let p = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            sc.h.send(
                Plaintext,
                &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &p),
            );
        }
        assert_eq!(sc.h.counter(|c| c.events(Event::Staged), 5), 5);
        // The control thread gave up (REKEY_ATTEMPT_TIME).
        sc.commands.send(Command::DropStaged { id: 0 }).unwrap();
        assert_eq!(
            sc.h.counter(|c| c.drops(DropReason::HandshakeTimeout), 5),
            5
        );
        // A later session has nothing of them to send: a keepalive.
        let kp = sc.wgdp_kp.take().expect("wgdp's keypair");
        sc.commands
            .send(Command::InstallKeypair {
                id: 0,
                keypair: Box::new(kp),
            })
            .unwrap();
        let first = sc.h.recv(Tunnel).expect("the confirming message");
        let mut msg = first[14 + 20 + 8..].to_vec();
        let plain = sc
            .peer_kp
            .open_message(Instant::ZERO, &mut msg)
            .expect("the peer opens it");
        assert!(plain.is_empty(), "a keepalive");
        assert_eq!(sc.h.recv(Tunnel), None, "nothing staged went out");
    });
}

/// An IPv6 UDP packet of `len` bytes with hop limit `hops`.
fn ipv6_udp(src: Ipv6Addr, dst: Ipv6Addr, hops: u8, len: usize) -> Vec<u8> {
    let mut p = vec![0x5au8; len];
    p[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 17, hops]);
    p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[44..46].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    p
}

/// The ones'-complement sum of 16-bit words, the textbook way.
fn sum16(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for w in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn the_worker_answers_ipv6_with_packet_too_big_and_time_exceeded() {
    scenario(Setup::ESTABLISHED, |sc| {
        use PortSide::Plaintext;
        let mut allowed = AllowedIps::new();
        allowed.insert(Prefix::new(IpAddr::V4(PEER_INNER), 32).unwrap(), 0);
        allowed.insert(Prefix::new(IpAddr::V6(PEER_INNER6), 128).unwrap(), 0);
        let routes = RouteTable {
            allowed,
            owners: vec![0],
            groups: Vec::new(),
        };
        sc.commands
            .send(Command::SetRoutes(Arc::new(routes)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for (hops, len, kind, field) in
            [(64, 1500, 2u8, 1420u32.to_be_bytes()), (1, 200, 3, [0; 4])]
        {
            let orig = ipv6_udp(LAN_HOST6, PEER_INNER6, hops, len);
            let frame = ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV6, &orig);
            sc.h.send(Plaintext, &frame);
            let reply = sc.h.recv(Plaintext).expect("an ICMPv6 error");
            assert_eq!(&reply[0..6], &LAN_MAC);
            assert_eq!(&reply[12..14], &[0x86, 0xdd]);
            let ip = &reply[14..];
            assert_eq!(ip[6], 58, "ICMPv6");
            assert_eq!(&ip[8..24], &WGDP_LAN6.octets(), "from wgdp's LAN address");
            assert_eq!(&ip[24..40], &LAN_HOST6.octets());
            let icmp = &ip[40..];
            assert_eq!(usize::from(u16::from_be_bytes([ip[4], ip[5]])), icmp.len());
            assert_eq!(
                (icmp[0], icmp[1], [icmp[4], icmp[5], icmp[6], icmp[7]]),
                (kind, 0, field)
            );
            let quoted = orig.len().min(1280 - 48);
            assert_eq!(&icmp[8..], &orig[..quoted]);
            let len = (icmp.len() as u32).to_be_bytes();
            let pseudo = [&ip[8..40], &len[..], &[0, 0, 0, 58], icmp].concat();
            assert_eq!(
                sum16(&pseudo),
                0xffff,
                "ICMPv6 checksum over the pseudo-header"
            );
        }
        assert_eq!(sc.h.counters.events(Event::IcmpPacketTooBig), 1);
        assert_eq!(sc.h.counters.events(Event::IcmpTimeExceeded), 1);
        assert_eq!(sc.h.counters.drops(DropReason::TooBig), 1);
        assert_eq!(sc.h.counters.drops(DropReason::TtlExceeded), 1);
    });
}
