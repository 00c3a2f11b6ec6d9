//! The control thread's in-process test rig (`live_tests`,
//! `mass_reconnect_tests`, `route_export_tests`): ring-port pairs in place
//! of the NICs and TAPs, and a [`Control`] assembled on them from what a
//! test chooses ([`Fixture`]); the rest is the same for every test.

use std::net::Ipv4Addr;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use dataplane::clock::TscClock;
use dataplane::command::{Command, HandshakeMessage, PortSide, WorkerEvent};
use dataplane::counters::WorkerCounters;
use dataplane::route::{IfAddr, PortNet};
use dpdk_sys::rte::testing::{eal, start_small, unique};
use dpdk_sys::rte::{mbuf_ring, rdtsc, Mempool, Port};
use zeroize::Zeroizing;

use crate::control::{Control, ControlParts, InitialPeer};
use crate::counters::ControlCounters;
use crate::groups::InitialGroup;
use crate::handshake_pool::HandshakePool;
use crate::link::{ControlTx, PortLink};
use crate::neigh::{NeighbourConfig, NeighbourTable};
use crate::show::SnapshotBoard;
use crate::uapi::server::Call;

/// The ports the control thread borrows, each one end of a ring pair.
pub(crate) struct Ports {
    pub(crate) pool: Mempool,
    pub(crate) tun: Port,
    pub(crate) plain: Port,
    pub(crate) tun_tap: Port,
    pub(crate) plain_tap: Port,
    /// The tunnel port's far end: the control thread's TX queue 1 arrives
    /// on its RX queue 1.
    pub(crate) far_tun: Port,
    /// The other far ends, kept alive.
    _far: Vec<Port>,
}

/// Ring-port pairs of `slots` slots and a pool of `mbufs` for them, both
/// ends started (two queues on the tunnel and plaintext ports: the
/// worker's and the control thread's).
pub(crate) fn ports(mbufs: u32, slots: u32) -> Ports {
    let pool = Mempool::new(eal(), &unique("rig"), mbufs, 0, 2176).expect("mempool");
    let pair = |queues| {
        let (mut p, mut f) = Port::ring_pair(eal(), &unique("rig"), queues, slots).expect("pair");
        start_small(&mut p, queues, &pool);
        start_small(&mut f, queues, &pool);
        (p, f)
    };
    let (tun, far_tun) = pair(2);
    let mut far = Vec::new();
    let mut keep = |(p, f)| {
        far.push(f);
        p
    };
    let (plain, tun_tap, plain_tap) = (keep(pair(2)), keep(pair(1)), keep(pair(1)));
    Ports {
        pool,
        tun,
        plain,
        tun_tap,
        plain_tap,
        far_tun,
        _far: far,
    }
}

/// What a test's control thread is made of; the rest is fixed (one
/// listen port, ports from [`ports`], no RSS).
pub(crate) struct Fixture {
    /// Our private key.
    pub(crate) private_key: [u8; 32],
    /// Worker lcores: 1 to `workers`, one command channel each.
    pub(crate) commands: Vec<Sender<Command>>,
    pub(crate) handshakes: Receiver<HandshakeMessage>,
    pub(crate) events: Receiver<WorkerEvent>,
    pub(crate) peers: Vec<InitialPeer>,
    pub(crate) groups: Vec<InitialGroup>,
    /// The tunnel port's addresses and IPv4 gateway (the plaintext port
    /// has none).
    pub(crate) tun_addresses: Vec<IfAddr>,
    pub(crate) gateway_v4: Option<Ipv4Addr>,
    pub(crate) handshake_pool: Option<HandshakePool>,
    pub(crate) uapi: Option<Receiver<Call>>,
    /// The clock's TSC rate: 1 GHz unless a test times real work.
    pub(crate) tsc_hz: u64,
}

impl Fixture {
    /// Our key and the channels; no peers, groups, addresses, handshake
    /// threads or UAPI, a 1 GHz clock.
    pub(crate) fn new(
        private_key: [u8; 32],
        commands: Vec<Sender<Command>>,
        handshakes: Receiver<HandshakeMessage>,
        events: Receiver<WorkerEvent>,
    ) -> Self {
        Self {
            private_key,
            commands,
            handshakes,
            events,
            peers: Vec::new(),
            groups: Vec::new(),
            tun_addresses: Vec::new(),
            gateway_v4: None,
            handshake_pool: None,
            uapi: None,
            tsc_hz: 1_000_000_000,
        }
    }
}

/// The control thread of `f` on the ports `p`.
pub(crate) fn control(p: &Ports, f: Fixture) -> Control<'_> {
    let workers = f.commands.len();
    Control::new(ControlParts {
        private_key: Zeroizing::new(f.private_key),
        listen_port: 51820,
        workers,
        peers: f.peers,
        groups: f.groups,
        uapi: f.uapi,
        board: Arc::new(SnapshotBoard::new()),
        lcores: (1..=workers as u32).collect(),
        interface: "wgdp-test".into(),
        worker_counters: (0..workers)
            .map(|_| Arc::new(WorkerCounters::default()))
            .collect(),
        handshakes: f.handshakes,
        events: f.events,
        commands: f.commands,
        tun: link(
            PortSide::Tunnel,
            &p.tun,
            &p.tun_tap,
            f.tun_addresses,
            f.gateway_v4,
        ),
        plain: Some(link(
            PortSide::Plaintext,
            &p.plain,
            &p.plain_tap,
            Vec::new(),
            None,
        )),
        pool: &p.pool,
        clock: TscClock::new(rdtsc(), f.tsc_hz),
        counters: Arc::new(ControlCounters::default()),
        rss: None,
        handshake_pool: f.handshake_pool,
    })
}

/// A port's link: its queue 1 for the control thread's TX, its TAP's
/// queue 0, and an empty ring from the workers.
fn link<'p>(
    side: PortSide,
    port: &'p Port,
    tap: &'p Port,
    addresses: Vec<IfAddr>,
    gateway_v4: Option<Ipv4Addr>,
) -> PortLink<'p> {
    let (_, from_workers) = mbuf_ring(eal(), &unique("rig"), 64).expect("ring");
    PortLink::new(
        side,
        port,
        PortNet {
            mac: [2, 0, 0, 0, 0, 1],
            addresses,
            gateway_v4,
            gateway_v6: None,
            vlan: None,
        },
        ControlTx::Queue(port.tx_queue(1).expect("control tx queue")),
        (
            tap.rx_queue(0).expect("tap rx"),
            tap.tx_queue(0).expect("tap tx"),
        ),
        from_workers,
        NeighbourTable::new(NeighbourConfig::default()),
    )
}
