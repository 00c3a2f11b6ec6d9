//! A mass reconnect through the control thread (issue #25): hundreds of
//! in-process peers initiate at once, under load (every message carries
//! a checked mac2, so the per-source rate limiter applies), while one
//! established peer keeps its session and one source floods. The control
//! thread runs on in-process ring ports with virtual time; its responses
//! are read off the tunnel port's far end and consumed by the initiators.
//! The same scenario runs with the control thread alone and with two
//! handshake threads, and must give the same outcome; so does one where
//! the control thread initiates to every peer and consumes their responses.
//! Initiations leave from our address the workers last reported the peer
//! reached (`WorkerEvent::EndpointChanged`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use dataplane::command::{Command, HandshakeMessage, WorkerEvent};
use dataplane::route::IfAddr;
use dpdk_sys::rte::{Burst, RxQueue};
use protocol::constants::RATELIMIT_BURST;
use protocol::crypto::PrivateKey;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use rand_core::OsRng;

use crate::control::{Control, InitialPeer};
use crate::handshake_pool::HandshakePool;
use crate::peers::NewPeer;
use crate::test_rig::{self, Fixture, Ports};

const OURS: [u8; 32] = [0x21; 32];
/// Peers reconnecting at once.
const RECONNECTING: usize = 300;
/// Copies of one initiation the flooding source sends.
const FLOOD: u64 = 100;
/// Our tunnel address and the gateway every peer is behind.
const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Our second tunnel address (the first is the default source).
const LOCAL2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

/// The ports the control thread borrows, and the tunnel port's far end.
fn ports() -> Ports {
    test_rig::ports(2047, 1024)
}

/// An initiator: its identity, handshake state and source address.
struct Initiator {
    identity: StaticIdentity,
    handshake: PeerHandshake,
    src: SocketAddr,
    completed: u32,
}

impl Initiator {
    fn new(n: usize) -> Self {
        let ours = PrivateKey::from_bytes(OURS).public_key();
        Self {
            identity: StaticIdentity::new(PrivateKey::generate(&mut OsRng)),
            handshake: PeerHandshake::new(ours, None),
            src: SocketAddr::from(([10, 1, (n >> 8) as u8, n as u8], 40000)),
            completed: 0,
        }
    }

    /// A fresh initiation, as the worker's gate passes it on under load.
    fn initiate(&mut self, index: u32, now: Instant) -> HandshakeMessage {
        let ts = Tai64N::from_unix(Duration::from_secs(1_700_000_000) + now.as_duration());
        let bytes = self
            .handshake
            .create_initiation(&self.identity, index, ts, now, &mut OsRng)
            .expect("initiation");
        HandshakeMessage::new(self.src, IpAddr::V4(LOCAL), now, &bytes, true)
            .expect("initiation fits")
    }
}

/// What a scenario ends with, compared between the two paths.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Handshakes completed, by initiator.
    completed: Vec<u32>,
    responses_sent: u64,
    rejected: u64,
    rate_limited: u64,
    /// Keypairs installed, by peer slot.
    installs: HashMap<u32, u32>,
    /// Commands other than keypairs and endpoints.
    other_commands: usize,
}

/// Runs control rounds at `now` until `want` more responses have come
/// back to initiators (or a real-time limit), consuming them.
fn exchange(
    c: &mut Control<'_>,
    rx: &mut RxQueue<'_>,
    inits: &mut [Initiator],
    want: usize,
    now: Instant,
) -> usize {
    let by_src: HashMap<IpAddr, usize> = inits
        .iter()
        .enumerate()
        .map(|(i, x)| (x.src.ip(), i))
        .collect();
    let mut burst: Burst = Burst::new();
    let mut got = 0;
    let start = std::time::Instant::now();
    while got < want && start.elapsed() < Duration::from_secs(60) {
        c.handshake_round(now);
        rx.rx_burst(&mut burst);
        for m in burst.drain() {
            // Ethernet, IPv4 (no options), UDP, then the response.
            let frame = m.data();
            let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
            let Some(&i) = by_src.get(&IpAddr::V4(dst)) else {
                continue;
            };
            let init = &mut inits[i];
            if init
                .handshake
                .consume_response(&init.identity, &frame[42..], now)
                .is_ok()
            {
                init.completed += 1;
                got += 1;
            }
        }
        std::thread::yield_now();
    }
    got
}

/// A control thread that knows every initiator (at its address when
/// `endpoints`), with the gateway's MAC known; its handshake channel and
/// its one worker's command channel.
fn control<'p>(
    p: &'p Ports,
    inits: &[Initiator],
    endpoints: bool,
    pool: Option<HandshakePool>,
) -> (Control<'p>, Sender<HandshakeMessage>, Receiver<Command>) {
    let (cmd_tx, cmd_rx) = bounded(1 << 16);
    let (hs_tx, hs_rx): (Sender<HandshakeMessage>, Receiver<HandshakeMessage>) = bounded(4096);
    let (_, events) = bounded(16);
    let peers = inits
        .iter()
        .map(|i| InitialPeer {
            peer: NewPeer {
                public_key: *i.identity.public_key(),
                preshared_key: None,
                endpoint: endpoints.then_some(i.src),
                persistent_keepalive: None,
                lanes: 1,
            },
            allowed_ips: Vec::new(),
        })
        .collect();
    let mut f = Fixture::new(OURS, vec![cmd_tx], hs_rx, events);
    f.peers = peers;
    f.tun_addresses = [LOCAL, LOCAL2]
        .map(|a| IfAddr {
            addr: IpAddr::V4(a),
            prefix_len: 24,
        })
        .to_vec();
    f.gateway_v4 = Some(GATEWAY);
    f.handshake_pool = pool;
    let mut c = test_rig::control(p, f);
    c.tun
        .neigh
        .learn(IpAddr::V4(GATEWAY), [2, 0, 0, 0, 0, 0xfe], Instant::ZERO);
    (c, hs_tx, cmd_rx)
}

/// The scenario: peer 0 handshakes first and stays established; then
/// every other peer initiates at once, from its own address, under load,
/// while the last peer's address sends its one initiation FLOOD times.
fn scenario(pool: Option<HandshakePool>) -> Outcome {
    let p = ports();
    let mut inits: Vec<Initiator> = (0..RECONNECTING + 2).map(Initiator::new).collect();
    let (mut c, hs_tx, cmd_rx) = control(&p, &inits, false, pool);
    let t1 = Instant::from_secs(1);
    // The control thread's TX queue 1 arrives on the far end's queue 1.
    let mut rx = p.far_tun.rx_queue(1).expect("far rx");
    // Peer 0 establishes its session first.
    let msg = inits[0].initiate(1, t1);
    hs_tx.send(msg).expect("queued");
    assert_eq!(exchange(&mut c, &mut rx, &mut inits, 1, t1), 1);
    let established = c
        .table
        .peers
        .by_key(inits[0].identity.public_key())
        .expect("peer 0");
    while cmd_rx.try_recv().is_ok() {}

    // The mass reconnect, all at once; the flood interleaved.
    let t2 = Instant::from_secs(2);
    let flooder = RECONNECTING + 1;
    let flood = inits[flooder].initiate(7, t2);
    let mut flooded = 0;
    for (i, init) in inits.iter_mut().enumerate().take(flooder).skip(1) {
        let msg = init.initiate(i as u32, t2);
        hs_tx.send(msg).expect("queued");
        if i % 3 == 0 && flooded < FLOOD {
            hs_tx.send(flood.clone()).expect("queued");
            flooded += 1;
        }
    }
    for _ in flooded..FLOOD {
        hs_tx.send(flood.clone()).expect("queued");
    }
    let want = RECONNECTING + 1;
    assert_eq!(exchange(&mut c, &mut rx, &mut inits, want, t2), want);
    // Nothing more is coming.
    assert_eq!(exchange(&mut c, &mut rx, &mut inits, 0, t2), 0);
    assert!(hs_tx.is_empty());

    let mut installs = HashMap::new();
    let mut other_commands = 0;
    while let Ok(cmd) = cmd_rx.try_recv() {
        match cmd {
            Command::InstallKeypair { id, keypair } => {
                // A responder's keypair, born when the round that answered
                // derived it (its REJECT_AFTER_TIME counts from there,
                // whitepaper section 6.2), not when a thread or a worker
                // got to it.
                assert_eq!(
                    (keypair.birth(), keypair.is_initiator()),
                    (t2, false),
                    "peer {id}"
                );
                *installs.entry(id).or_insert(0) += 1;
            }
            Command::SetEndpoint { .. } => {}
            _ => other_commands += 1,
        }
    }
    assert_eq!(
        installs.get(&established),
        None,
        "the established peer's session was touched"
    );
    let counter = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    Outcome {
        completed: inits.iter().map(|i| i.completed).collect(),
        responses_sent: counter(&c.counters.responses_sent),
        rejected: counter(&c.counters.handshakes_rejected),
        rate_limited: counter(&c.counters.handshakes_rate_limited),
        installs,
        other_commands,
    }
}

#[test]
fn mass_reconnect_completes_every_peer_alike_with_and_without_threads() {
    let alone = scenario(None);
    // Every peer completed exactly one handshake (peer 0 before the
    // reconnect), the flooder one too.
    assert_eq!(alone.completed, vec![1; RECONNECTING + 2]);
    // Only the flooding source was limited: its burst passed (one
    // accepted, the rest replays), everything after it was limited.
    assert_eq!(alone.rate_limited, FLOOD - RATELIMIT_BURST);
    assert_eq!(alone.rejected, RATELIMIT_BURST - 1);
    assert_eq!(alone.responses_sent, RECONNECTING as u64 + 2);
    assert_eq!(alone.installs.len(), RECONNECTING + 1);
    assert!(
        alone.installs.values().all(|&n| n == 1),
        "{:?}",
        alone.installs
    );
    assert_eq!(alone.other_commands, 0);
    let threaded = scenario(Some(HandshakePool::start(&OURS, 2).expect("pool")));
    assert_eq!(threaded, alone, "the handshake threads changed the outcome");
}

/// The control thread initiates to `n` peers at once; each answers; the
/// responses come back under load. Returns the keypairs installed by
/// peer slot, the handshakes the control thread counted completed and
/// the responses it refused.
fn initiating(n: usize, pool: Option<HandshakePool>) -> (HashMap<u32, u32>, u64, u64) {
    let p = ports();
    let mut peers: Vec<Initiator> = (0..n).map(Initiator::new).collect();
    let (mut c, hs_tx, cmd_rx) = control(&p, &peers, true, pool);
    let mut rx = p.far_tun.rx_queue(1).expect("far rx");
    let now = Instant::from_secs(3);
    let ids: Vec<u32> = peers
        .iter()
        .map(|x| c.table.peers.by_key(x.identity.public_key()).expect("peer"))
        .collect();
    for &id in &ids {
        c.initiate(id, now, false);
    }
    let by_dst: HashMap<IpAddr, usize> = peers
        .iter()
        .enumerate()
        .map(|(i, x)| (x.src.ip(), i))
        .collect();
    let ours = StaticIdentity::new(PrivateKey::from_bytes(OURS));
    let mut burst: Burst = Burst::new();
    let mut answered = 0;
    let start = std::time::Instant::now();
    while answered < n && start.elapsed() < Duration::from_secs(60) {
        rx.rx_burst(&mut burst);
        for m in burst.drain() {
            let frame = m.data();
            let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
            let Some(&i) = by_dst.get(&IpAddr::V4(dst)) else {
                continue;
            };
            let peer = &mut peers[i];
            let pending = peer.identity.open_initiation(&frame[42..]).expect("open");
            assert_eq!(pending.remote_static(), ours.public_key());
            peer.handshake
                .consume_initiation(pending, now)
                .expect("consumed");
            let (response, _) = peer
                .handshake
                .create_response(1000 + i as u32, now, &mut OsRng)
                .expect("response");
            let msg = HandshakeMessage::new(peer.src, IpAddr::V4(LOCAL), now, &response, true)
                .expect("fits");
            hs_tx.send(msg).expect("queued");
            answered += 1;
        }
    }
    assert_eq!(answered, n, "initiations received");
    let mut installs = HashMap::new();
    let start = std::time::Instant::now();
    while installs.values().sum::<u32>() < n as u32 && start.elapsed() < Duration::from_secs(60) {
        c.handshake_round(now);
        while let Ok(cmd) = cmd_rx.try_recv() {
            if let Command::InstallKeypair { id, .. } = cmd {
                *installs.entry(id).or_insert(0) += 1;
            }
        }
        std::thread::yield_now();
    }
    let counter = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    (
        installs,
        counter(&c.counters.handshakes_completed),
        counter(&c.counters.handshakes_rejected),
    )
}

#[test]
fn responses_to_our_initiations_complete_alike_with_and_without_threads() {
    const N: usize = 100;
    let (installs, completed, rejected) = initiating(N, None);
    assert_eq!(installs.len(), N);
    assert!(installs.values().all(|&k| k == 1), "{installs:?}");
    assert_eq!((completed, rejected), (N as u64, 0));
    let threaded = initiating(N, Some(HandshakePool::start(&OURS, 2).expect("pool")));
    assert_eq!(threaded, (installs, completed, rejected));
}

/// The control thread's initiations to a peer leave from our address the
/// workers report its data reached (`EndpointChanged`), not from the
/// port's default: a stateful firewall in front of the peer passes only
/// answers from the address it contacted.
#[test]
fn initiations_leave_from_the_address_the_workers_report_the_peer_reached() {
    let p = ports();
    let peer = Initiator::new(0);
    let (mut c, _hs_tx, _cmd_rx) = control(&p, std::slice::from_ref(&peer), true, None);
    let (events_tx, events) = bounded(4);
    c.events = events;
    let mut rx = p.far_tun.rx_queue(1).expect("far rx");
    let id = c
        .table
        .peers
        .by_key(peer.identity.public_key())
        .expect("peer");
    // The initiation's outer source address and destination.
    let mut initiation_from = |c: &mut Control<'_>, now: Instant| {
        c.initiate(id, now, false);
        let mut burst: Burst = Burst::new();
        let start = std::time::Instant::now();
        while burst.is_empty() && start.elapsed() < Duration::from_secs(5) {
            rx.rx_burst(&mut burst);
        }
        let frames: Vec<Vec<u8>> = burst.drain().map(|m| m.data().to_vec()).collect();
        assert_eq!(frames.len(), 1, "one initiation");
        let f = &frames[0];
        (
            Ipv4Addr::new(f[26], f[27], f[28], f[29]),
            SocketAddr::from((
                [f[30], f[31], f[32], f[33]],
                u16::from_be_bytes([f[36], f[37]]),
            )),
        )
    };
    // A configured endpoint: the port's default source.
    let t = Instant::from_secs(3);
    assert_eq!(initiation_from(&mut c, t), (LOCAL, peer.src));
    // The peer's data reached our second address, from a new port.
    let moved = SocketAddr::new(peer.src.ip(), 40001);
    events_tx
        .send(WorkerEvent::EndpointChanged(id, moved, IpAddr::V4(LOCAL2)))
        .expect("event");
    c.event_round(t);
    let t = t + protocol::constants::REKEY_TIMEOUT;
    assert_eq!(initiation_from(&mut c, t), (LOCAL2, moved));
}

/// With handshake threads, every configured peer's static-static DH is
/// computed ahead once the control thread has loaded them, and removing
/// a peer wipes its DH.
#[test]
fn configured_peers_static_statics_are_computed_ahead_and_wiped_on_removal() {
    const N: usize = 20;
    let p = ports();
    let inits: Vec<Initiator> = (0..N).map(Initiator::new).collect();
    let pool = HandshakePool::start(&OURS, 1).expect("pool");
    let ahead = pool.static_statics();
    let (mut c, _hs_tx, _cmd_rx) = control(&p, &inits, false, Some(pool));
    let start = std::time::Instant::now();
    while ahead.computed() < N {
        assert!(start.elapsed() < Duration::from_secs(30), "not computed");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ahead.computed(), N);
    let ours = StaticIdentity::new(PrivateKey::from_bytes(OURS));
    for i in &inits {
        let key = i.identity.public_key();
        assert_eq!(
            ahead.get(key).as_deref(),
            Some(&*ours.static_static(key).expect("ss"))
        );
    }
    let gone = *inits[0].identity.public_key();
    let id = c.table.peers.by_key(&gone).expect("peer");
    c.remove_peer(id, Instant::from_secs(1));
    assert_eq!((ahead.get(&gone), ahead.computed()), (None, N - 1));
    assert!(ahead.get(inits[1].identity.public_key()).is_some());
}

/// Without handshake threads, the idle control thread computes every
/// configured peer's static-static DH ahead, a few per round and each
/// once; a peer added later gets its own; the handshakes then complete
/// with the kept DHs.
#[test]
fn without_threads_the_idle_control_thread_computes_static_statics_ahead() {
    const N: usize = 40;
    let p = ports();
    let mut inits: Vec<Initiator> = (0..N + 1).map(Initiator::new).collect();
    let (mut c, hs_tx, _cmd_rx) = control(&p, &inits[..N], false, None);
    let mut rounds = Vec::new();
    loop {
        match c.static_statics_ahead() {
            0 => break,
            n => rounds.push(n),
        }
    }
    assert_eq!(rounds.iter().sum::<usize>(), N, "{rounds:?}");
    assert!(rounds
        .iter()
        .all(|&n| n <= crate::control::STATIC_STATICS_PER_ROUND));
    let ahead = |c: &Control<'_>| {
        c.counters
            .static_statics_ahead
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(ahead(&c), N as u64);
    // Each is kept: computing it again finds nothing to do.
    let ours = StaticIdentity::new(PrivateKey::from_bytes(OURS));
    let kept = |c: &mut Control<'_>, i: &Initiator| {
        let id = c.table.peers.by_key(i.identity.public_key()).expect("peer");
        let p = c.table.peers.get_mut(id).expect("slot");
        !p.handshake.precompute_static_static(&ours)
    };
    assert!(inits[..N].iter().all(|i| kept(&mut c, i)));

    // A peer added later is computed at the next idle round, alone.
    let late = &inits[N];
    c.add_peer(
        NewPeer {
            public_key: *late.identity.public_key(),
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            lanes: 1,
        },
        Instant::from_secs(1),
    );
    assert_eq!((c.static_statics_ahead(), c.static_statics_ahead()), (1, 0));
    assert_eq!(ahead(&c), N as u64 + 1);

    // Every peer's handshake completes with its kept DH.
    let t = Instant::from_secs(2);
    let mut rx = p.far_tun.rx_queue(1).expect("far rx");
    for (k, i) in inits.iter_mut().enumerate() {
        hs_tx.send(i.initiate(k as u32 + 1, t)).expect("queued");
    }
    assert_eq!(exchange(&mut c, &mut rx, &mut inits, N + 1, t), N + 1);
}
