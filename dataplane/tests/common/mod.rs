//! What the worker tests share: addresses, frames sealed by an in-memory
//! peer, and an in-memory handshake.

#![allow(dead_code)] // each test file uses its own subset

pub mod two;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use dpdk_sys::rte::lcore::{launch_and_join, Job};
use dpdk_sys::rte::testing::unique;
use dpdk_sys::rte::{mbuf_ring, Burst, Eal, Mempool, RingConsumer, RingProducer, TxQueue};

use std::sync::Arc;

use dataplane::batch_policy::Batching;
use dataplane::command::{Command, HandshakeMessage, PortSide, WorkerEvent};
use dataplane::icmp::IcmpRate;
use dataplane::outer::{self, Outer};
use dataplane::peer::{PeerShared, PeerState};
use dataplane::route::{IfAddr, PortNet, RouteTable};
use dataplane::wire::checksum;
use dataplane::worker::{WorkerConfig, WorkerLinks};
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::cookie::{CookieChecker, CookieJar};
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::messages::INITIATION_LEN;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;
use rand_core::OsRng;

pub const WGDP_TUN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
pub const WGDP_PLAIN_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
pub const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
pub const LAN_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
pub const WGDP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The tunnel port's second IPv4 address in the two-worker rig (`two`).
pub const WGDP_TUN2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 3);
/// The tunnel port's IPv6 address in the two-worker rig (`two`).
pub const WGDP_TUN6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The peer's IPv6 endpoint address, on the same link.
pub const PEER_EP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
pub const PEER_EP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const PEER_INNER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
pub const LISTEN: u16 = 51820;
pub const PEER_PORT: u16 = 51821;
/// wgdp's static private key (the workers' gate checks mac1 for its
/// public key).
pub const WGDP_KEY: [u8; 32] = [0x31; 32];

/// wgdp's static public key.
pub fn wgdp_public() -> PublicKey {
    PrivateKey::from_bytes(WGDP_KEY).public_key()
}

/// An initiation from sender index `sender` with the MACs `jar` gives it
/// (mac1 for wgdp; mac2 once the jar holds a cookie). Its Noise fields are
/// zeros: the worker's gate reads only the MACs.
pub fn initiation(jar: &mut CookieJar, sender: u32) -> Vec<u8> {
    let mut msg = vec![0u8; INITIATION_LEN];
    msg[0] = 1;
    msg[4..8].copy_from_slice(&sender.to_le_bytes());
    jar.add_macs(&mut msg, Instant::ZERO);
    msg
}

/// An IPv4/UDP packet (no Ethernet) with valid checksums.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = ttl;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&1234u16.to_be_bytes());
    p[22..24].copy_from_slice(&5678u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    p
}

pub fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A WireGuard data message sealed by the peer, in its outer frame.
pub fn sealed_frame(kp: &mut Keypair, inner: &[u8]) -> Vec<u8> {
    udp_frame(&sealed_message(kp, inner))
}

/// A WireGuard data message sealed by the peer (padded to 16 bytes).
pub fn sealed_message(kp: &mut Keypair, inner: &[u8]) -> Vec<u8> {
    let padded = inner.len().div_ceil(16) * 16;
    let mut msg = vec![0u8; 16 + padded + 16];
    msg[16..16 + inner.len()].copy_from_slice(inner);
    kp.seal_message(Instant::ZERO, &mut msg).expect("seal");
    msg
}

pub fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let o = Outer {
        src_mac: PEER_MAC,
        dst_mac: WGDP_TUN_MAC,
        src: SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT),
        dst: SocketAddr::new(IpAddr::V4(WGDP_TUN), LISTEN),
        ecn: 0,
    };
    let h = outer::header_len(&o.dst);
    let mut f = vec![0u8; h + payload.len()];
    f[h..].copy_from_slice(payload);
    outer::write(&mut f, &o, false).expect("outer");
    f
}

pub fn net(mac: [u8; 6], ip: Ipv4Addr) -> PortNet {
    PortNet {
        mac,
        addresses: vec![IfAddr {
            addr: IpAddr::V4(ip),
            prefix_len: 24,
        }],
        gateway_v4: None,
        gateway_v6: None,
        vlan: None,
    }
}

/// An in-memory handshake: (wgdp's keypair, the peer's), wgdp's keypair
/// with local index `wgdp_index`.
pub fn handshake(wgdp_initiates: bool, wgdp_index: u32) -> (Keypair, Keypair) {
    let wgdp = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
    let peer = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
    let mut hs_peer = PeerHandshake::new(*wgdp.public_key(), None);
    let mut hs_wgdp = PeerHandshake::new(*peer.public_key(), None);
    let t = Tai64N::from_unix(Duration::from_secs(1));
    let (i_id, i_hs, r_id, r_hs, i_index, r_index) = if wgdp_initiates {
        (&wgdp, &mut hs_wgdp, &peer, &mut hs_peer, wgdp_index, 7)
    } else {
        (&peer, &mut hs_peer, &wgdp, &mut hs_wgdp, 7, wgdp_index)
    };
    let init = i_hs
        .create_initiation(i_id, i_index, t, Instant::ZERO, &mut OsRng)
        .expect("initiation");
    let pending = r_id.open_initiation(&init).expect("open");
    r_hs.consume_initiation(pending, Instant::ZERO)
        .expect("consume");
    let (resp, kp_responder) = r_hs
        .create_response(r_index, Instant::ZERO, &mut OsRng)
        .expect("response");
    let kp_initiator = i_hs
        .consume_response(i_id, &resp, Instant::ZERO)
        .expect("keys");
    if wgdp_initiates {
        (kp_initiator, kp_responder)
    } else {
        (kp_responder, kp_initiator)
    }
}

/// Runs the worker `jobs` on their lcores while `drive` runs on a thread of
/// its own with `state` (dropped there before the workers are told to
/// stop, so its queues are gone first); a panic in `drive` stops the
/// workers and fails the test.
pub fn run_workers<S: Send>(
    eal: &Eal,
    jobs: Vec<(u32, Job<'_, ()>)>,
    stop: &AtomicBool,
    mut state: S,
    drive: impl FnOnce(&mut S) + Send,
) {
    std::thread::scope(|s| {
        let driver = s.spawn(|| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drive(&mut state)));
            stop.store(true, Ordering::Relaxed);
            drop(state);
            if let Err(p) = r {
                std::panic::resume_unwind(p);
            }
        });
        let out = launch_and_join(eal, jobs);
        assert!(out.into_iter().all(|r| r.is_ok()), "worker failed");
        driver.join().expect("driver");
    });
}

/// Transmits one frame, in an mbuf from `pool`, on the test's end `q`.
pub fn inject(pool: &Mempool, q: &mut TxQueue<'_>, frame: &[u8]) {
    send_frame(pool, q, frame, None);
}

/// Transmits one frame as [`inject`] does, marked as received on DPDK
/// port `port`, as a NIC's PMD marks what it receives (`net_ring` passes
/// the mbuf on as it is): the worker counts its drop as that port's.
pub fn inject_on(pool: &Mempool, q: &mut TxQueue<'_>, port: u16, frame: &[u8]) {
    send_frame(pool, q, frame, Some(port));
}

fn send_frame(pool: &Mempool, q: &mut TxQueue<'_>, frame: &[u8], port: Option<u16>) {
    let mut m = pool.alloc().expect("alloc");
    if let Some(port) = port {
        m.set_port(port);
    }
    m.append(frame.len() as u16)
        .expect("room")
        .copy_from_slice(frame);
    let mut b: Burst = Burst::new();
    b.push(m).expect("room");
    assert_eq!(q.tx_burst(&mut b), 1);
}

/// Worker `index` of `workers`, busy-polling, on the test addresses.
pub fn worker_config(index: usize, workers: usize) -> WorkerConfig {
    WorkerConfig {
        index,
        workers,
        listen_port: LISTEN,
        mtu: 1420,
        tx_checksum_offload: false,
        idle_polls: 0,
        idle_sleep: Duration::ZERO,
        lane_ports: None,
        public_key: wgdp_public(),
        // A quarter of the tests' 4095-mbuf pool, as `dpdk.staging_budget`'s default.
        staging_budget: 1023,
        mss_clamp: None,
        icmp_rate: IcmpRate::KERNEL,
        batch: Batching::default(),
    }
}

/// The commands that set a worker up with the tests' one peer, in the
/// order the control thread sends them: the cookie secret; peer 0 (its
/// counters `shared`, its endpoint `PEER_EP`:`PEER_PORT`) when the worker
/// owns it (`owner` 0; another worker's peer is not added here); the
/// routes (`PEER_INNER`/32 to peer 0, owned by worker `owner`); and each
/// role's next hop, `PEER_EP` on the tunnel side and `LAN_HOST` on the
/// plaintext side; then `keypair`'s install, if given.
pub fn one_peer_commands(
    shared: Arc<PeerShared>,
    owner: u16,
    keypair: Option<Keypair>,
) -> Vec<Command> {
    let secret = CookieChecker::new(&wgdp_public())
        .rotate(Instant::ZERO, &mut OsRng)
        .expect("a first secret");
    let mut allowed = AllowedIps::new();
    allowed.insert(Prefix::new(IpAddr::V4(PEER_INNER), 32).unwrap(), 0);
    let endpoint = SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT);
    let mut cmds = vec![Command::CookieSecret(Box::new(secret))];
    if owner == 0 {
        cmds.push(Command::AddPeer {
            id: 0,
            state: Box::new(PeerState::new(shared, Some(endpoint))),
        });
    }
    cmds.extend([
        Command::SetRoutes(Arc::new(RouteTable {
            allowed,
            owners: vec![owner],
            groups: Vec::new(),
        })),
        Command::Neighbour {
            port: PortSide::Tunnel,
            ip: IpAddr::V4(PEER_EP),
            mac: PEER_MAC,
        },
        Command::Neighbour {
            port: PortSide::Plaintext,
            ip: IpAddr::V4(LAN_HOST),
            mac: LAN_MAC,
        },
    ]);
    cmds.extend(keypair.map(|kp| Command::InstallKeypair {
        id: 0,
        keypair: Box::new(kp),
    }));
    cmds
}

/// The test's ends of a lone worker's links ([`lone_links`]).
pub struct LoneEnds {
    /// The worker's command channel.
    pub commands: Sender<Command>,
    /// Its events.
    pub events: Receiver<WorkerEvent>,
    /// The handshake messages it queues.
    pub handshakes: Receiver<HandshakeMessage>,
    /// Its handoff ring's producer (no other worker to use it).
    pub handoff: RingProducer,
    /// Its frames for the control thread from the tunnel port.
    pub ctl_tun: RingConsumer,
    /// The same from the plaintext port.
    pub ctl_plain: RingConsumer,
}

/// A lone worker's links ([`WorkerLinks::alone`]) over new channels of
/// the given capacities (commands, events, handshakes) and rings of 64,
/// and the test's ends of them.
pub fn lone_links(
    eal: &Eal,
    [commands, events, handshakes]: [usize; 3],
) -> (WorkerLinks, LoneEnds) {
    let (cmd_tx, cmd_rx) = bounded::<Command>(commands);
    let (ev_tx, ev_rx) = bounded::<WorkerEvent>(events);
    let (hs_tx, hs_rx) = bounded::<HandshakeMessage>(handshakes);
    let ring = |name: &str| mbuf_ring(eal, &unique(name), 64).expect("ring");
    let (ho_p, ho_c) = ring("lh");
    let (ctl_tun_p, ctl_tun_c) = ring("lt");
    let (ctl_plain_p, ctl_plain_c) = ring("lp");
    let links = WorkerLinks::alone(
        (cmd_tx.clone(), cmd_rx),
        ev_tx,
        hs_tx,
        ho_c,
        ctl_tun_p,
        ctl_plain_p,
    );
    let ends = LoneEnds {
        commands: cmd_tx,
        events: ev_rx,
        handshakes: hs_rx,
        handoff: ho_p,
        ctl_tun: ctl_tun_c,
        ctl_plain: ctl_plain_c,
    };
    (links, ends)
}
