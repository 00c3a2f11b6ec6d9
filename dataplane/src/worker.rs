//! A worker lcore: polls its RX queue on each port (two, or one carrying
//! both roles: see `PortRoles`) and its handoff ring,
//! processes each packet start to finish (see `worker/send.rs` and
//! `worker/receive.rs`), applies the control thread's commands between bursts.
//!
//! Per round: one TSC read, at most one burst from each source, one TX
//! burst per destination. No allocation, lock or system call per packet
//! (sleeping is done only by the idle back-off, after a run of empty polls).

mod lane_work;
mod receive;
mod send;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::tx::{Tx, TxRings};
use crossbeam_channel::{Receiver, Sender};
use dpdk_sys::rte::ipfrag::FragTable;
use dpdk_sys::rte::{
    Burst, Mbuf, Mempool, RingConsumer, RingProducer, RxQueue, TxQueue, BURST_SIZE,
};
use protocol::crypto::PublicKey;
use protocol::time::Instant;

use crate::batch_policy::Batching;
use crate::clock::TscClock;
use crate::command::{Command, HandshakeMessage, PortSide, WorkerEvent};
use crate::counters::{DropReason, Event, WorkerCounters};
use crate::cycle_profile::{Stage, StageClock};
use crate::fragments::Reassembler;
use crate::gate::HandshakeGate;
use crate::icmp::{IcmpErrors, IcmpRate};
use crate::idle::IdleBackoff;
use crate::index_table::IndexTable;
pub use crate::mss::MssClamp;
use crate::neighbours::Neighbours;
use crate::open_batch::OpenBatch;
use crate::peer::{PeerId, PeerState};
use crate::port::{Polled, PortRoles};
use crate::rehome::{link_tag, tag_side, Arrivals, Via};
use crate::route::{PortNet, RouteTable};
use crate::seal_batch::SealBatch;
use crate::staging::{StagedList, Staging};
use crate::wire::ip::{inner_ip, is_link_scoped};
use crate::wire::{classify, L3Kind};
use lane_work::LaneWork;
use receive::DataAt;
use send::SendPath;

/// Commands applied per round at most, so a flood of them cannot starve
/// the data path.
const COMMANDS_PER_ROUND: usize = 64;

/// How many packets ahead of the one handled a burst's payloads are asked
/// for (`dpdk_sys::rte::PayloadAhead`): far enough for a miss to arrive by
/// the time the packet is sealed or opened (a packet takes 150-500 ns
/// here, a miss about 100), near enough that the lines are still in L1.
const PAYLOAD_AHEAD: usize = 2;

/// Static settings of a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This worker's index (0-based; also its queue number on both ports).
    pub index: usize,
    /// Number of workers.
    pub workers: usize,
    /// Our WireGuard UDP port.
    pub listen_port: u16,
    /// The WireGuard interface MTU (plaintext packets up to this size are
    /// tunnelled; padding stops at it).
    pub mtu: usize,
    /// The tunnel port computes outer IPv4/UDP checksums (offload granted).
    pub tx_checksum_offload: bool,
    /// Idle back-off: empty rounds before sleeping.
    pub idle_polls: u32,
    /// Idle back-off: sleep between polls when idle (zero: busy poll).
    pub idle_sleep: std::time::Duration,
    /// Our static public key (the handshake gate checks mac1 with it).
    pub public_key: PublicKey,
    /// The tunnel port's lane ports (first, last): multi-lane peers'
    /// packets leave from `first + index`, and WireGuard arrives on any.
    pub lane_ports: Option<(u16, u16)>,
    /// Packets this worker may stage for all its peers together (its share
    /// of `dpdk.staging_budget`).
    pub staging_budget: usize,
    /// The TCP MSS that SYNs crossing the tunnel are clamped to, for IPv4
    /// and for IPv6 (`ports.plaintext.mss_clamp`); `None`: off.
    pub mss_clamp: Option<MssClamp>,
    /// How many ICMP errors this worker may send (`dpdk.icmp_per_sec`,
    /// `dpdk.icmp_burst`).
    pub icmp_rate: IcmpRate,
    /// Which packets it seals and opens in multi-buffer passes
    /// (`dpdk.aead`; the default: one at a time). Keys join passes only
    /// when made while `protocol::crypto::set_batch_keys` is on.
    pub batch: Batching,
}

impl WorkerConfig {
    /// This worker's outer source port for multi-lane peers (the listen
    /// port when no lane ports are configured).
    #[inline]
    pub fn lane_port(&self) -> u16 {
        match self.lane_ports {
            Some((first, last)) if first <= last => {
                first + (self.index % (usize::from(last - first) + 1)) as u16
            }
            _ => self.listen_port,
        }
    }

    /// Whether UDP port `port` carries our WireGuard.
    #[inline]
    pub fn is_wireguard_port(&self, port: u16) -> bool {
        port == self.listen_port
            || self
                .lane_ports
                .is_some_and(|(first, last)| (first..=last).contains(&port))
    }
}

/// A worker's four queues on two ports (see [`WorkerPorts`] for one).
pub struct WorkerQueues<'p> {
    /// RX queue on the tunnel port.
    pub tun_rx: RxQueue<'p>,
    /// TX queue on the tunnel port.
    pub tun_tx: TxQueue<'p>,
    /// RX queue on the plaintext port.
    pub plain_rx: RxQueue<'p>,
    /// TX queue on the plaintext port.
    pub plain_tx: TxQueue<'p>,
}

/// A worker's queues by port index, and which port carries each role
/// ([`PortRoles`]): two ports ([`WorkerQueues`]), one carrying both
/// roles ([`WorkerPorts::one_armed`]), or one whose VLANs carry one role
/// each ([`WorkerPorts::vlan_split`]).
pub struct WorkerPorts<'p> {
    queues: Vec<(RxQueue<'p>, TxQueue<'p>)>,
    roles: PortRoles,
}

impl<'p> WorkerPorts<'p> {
    /// One-armed mode: one port carries both roles, its frames told apart
    /// by their destination (see `Worker::one_armed_side`). The worker's
    /// [`WorkerNets`] then names the port twice (`tun` and `plain` alike),
    /// and its frames for the control thread all go to `to_control_tun`.
    pub fn one_armed(rx: RxQueue<'p>, tx: TxQueue<'p>) -> Self {
        Self {
            queues: vec![(rx, tx)],
            roles: PortRoles::ONE_ARMED,
        }
    }

    /// The roles split by VLAN over one physical port: the tunnel port and
    /// the plaintext port are its VLANs (the [`WorkerNets`]' `tun.vlan` and
    /// `plain.vlan`, both set and different), told apart by their tag on
    /// RX; each role keeps its addresses, neighbours and control rings,
    /// and sends with its own tag into the one TX queue.
    pub fn vlan_split(rx: RxQueue<'p>, tx: TxQueue<'p>) -> Self {
        Self {
            queues: vec![(rx, tx)],
            roles: PortRoles::VLAN_SPLIT,
        }
    }
}

impl<'p> From<WorkerQueues<'p>> for WorkerPorts<'p> {
    fn from(q: WorkerQueues<'p>) -> Self {
        Self {
            queues: vec![(q.tun_rx, q.tun_tx), (q.plain_rx, q.plain_tx)],
            roles: PortRoles::TWO_PORTS,
        }
    }
}

/// A worker's links to the control thread and the other workers.
pub struct WorkerLinks {
    /// Commands from the control thread.
    pub commands: Receiver<Command>,
    /// Rare events to the control thread.
    pub events: Sender<WorkerEvent>,
    /// Handshake messages to the control thread (bounded; full = drop).
    pub handshakes: Sender<HandshakeMessage>,
    /// Packets other workers handed to this one.
    pub handoff_in: RingConsumer,
    /// Handoff rings of the other workers, by index (`None` for this one).
    pub handoff_out: Vec<Option<RingProducer>>,
    /// Command channels of all workers, by index (re-homing sends a peer's
    /// state, and the commands that follow it, to its new owner).
    pub to_workers: Vec<Sender<Command>>,
    /// Frames for the control thread from the tunnel port (ARP/ND, the
    /// kernel's traffic, frames waiting for next-hop resolution).
    pub to_control_tun: RingProducer,
    /// Frames for the control thread from the plaintext port (unused in
    /// one-armed mode: the one port's frames all go to `to_control_tun`).
    pub to_control_plain: RingProducer,
    /// Frames the control thread sends out of the tunnel port through this
    /// worker's TX queue, for devices that cannot give it a queue of its
    /// own (see `control::link::ControlTx`).
    pub relay_tun: Option<RingConsumer>,
    /// The same for the plaintext port (unused in one-armed mode).
    pub relay_plain: Option<RingConsumer>,
}

impl WorkerLinks {
    /// The links of a worker that works alone: its own command channel
    /// (`commands`, both ends) is the only worker's, it has no other
    /// worker to hand packets to, and the control thread has TX queues of
    /// its own (no relay rings).
    pub fn alone(
        commands: (Sender<Command>, Receiver<Command>),
        events: Sender<WorkerEvent>,
        handshakes: Sender<HandshakeMessage>,
        handoff_in: RingConsumer,
        to_control_tun: RingProducer,
        to_control_plain: RingProducer,
    ) -> Self {
        let (to_self, commands) = commands;
        Self {
            commands,
            events,
            handshakes,
            handoff_in,
            handoff_out: vec![None],
            to_workers: vec![to_self],
            to_control_tun,
            to_control_plain,
            relay_tun: None,
            relay_plain: None,
        }
    }
}

/// The two ports' identities (in one-armed mode the one port's, twice) as the worker needs them.
#[derive(Debug, Clone)]
pub struct WorkerNets {
    /// DPDK port id of the tunnel port (to count drops per port).
    pub tun_port: u16,
    /// The tunnel port's addresses and gateways.
    pub tun: PortNet,
    /// The plaintext port's addresses and gateways.
    pub plain: PortNet,
}

/// The links a worker keeps for itself (the rest of [`WorkerLinks`] goes
/// to its [`Tx`]).
pub(crate) struct Channels {
    /// Commands from the control thread.
    pub(crate) commands: Receiver<Command>,
    /// Rare events to the control thread.
    pub(crate) events: Sender<WorkerEvent>,
    /// Handshake messages to the control thread (bounded; full = drop).
    pub(crate) handshakes: Sender<HandshakeMessage>,
    /// Packets other workers handed to this one.
    pub(crate) handoff_in: RingConsumer,
    /// Command channels of all workers, by index.
    pub(crate) to_workers: Vec<Sender<Command>>,
}

/// One worker lcore's state. Built by the control side, then moved to its
/// lcore and [`run`](Worker::run) there.
pub struct Worker<'p> {
    pub(crate) cfg: WorkerConfig,
    /// Its RX queue on each port, by port index.
    rx: Vec<RxQueue<'p>>,
    /// Which port carries each role.
    pub(crate) roles: PortRoles,
    pub(crate) links: Channels,
    /// The outgoing bursts and drop accounting.
    pub(crate) tx: Tx<'p>,
    pub(crate) pool: &'p Mempool,
    pub(crate) clock: TscClock,
    pub(crate) counters: Arc<WorkerCounters>,
    pub(crate) nets: WorkerNets,
    pub(crate) routes: Arc<RouteTable>,
    /// Its peers, their receiver indexes, its lanes and moved peers.
    pub(crate) table: IndexTable,
    /// The staged packets of all its peers.
    pub(crate) staging: Staging<Mbuf>,
    /// The lanes it publishes and serves.
    pub(crate) lanes: LaneWork,
    /// Next hops' MACs on both ports.
    pub(crate) neighbours: Neighbours,
    /// Checks handshake messages before they are queued.
    pub(crate) gate: HandshakeGate,
    /// The ICMP errors this worker sends.
    pub(crate) icmp: IcmpErrors<'p>,
    /// Outer fragments in reassembly (see `fragments`).
    pub(crate) frags: Reassembler,
    /// The next outer IPv4 identification (see `SendPath::send_outer`).
    pub(crate) ip_ident: u16,
    idle: IdleBackoff,
    /// Per-stage cycle counts (a no-op without the `stages` feature).
    pub(crate) stages: StageClock,
    /// The plaintext burst's seals waiting for a multi-buffer pass.
    seal_batch: SealBatch,
    /// The tunnel burst's data messages waiting for a multi-buffer pass.
    pub(crate) open_batch: OpenBatch<DataAt>,
}

impl<'p> Worker<'p> {
    /// A worker with no peers and an empty routing table; the control thread
    /// fills both through commands. `frags`: its reassembly table for outer
    /// fragments (`fragments::reassembly_table`), on `clock`'s TSC.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: WorkerConfig,
        ports: impl Into<WorkerPorts<'p>>,
        links: WorkerLinks,
        pool: &'p Mempool,
        clock: TscClock,
        counters: Arc<WorkerCounters>,
        nets: WorkerNets,
        frags: FragTable,
    ) -> Self {
        let idle = IdleBackoff::new(cfg.idle_polls, cfg.idle_sleep);
        let ip_ident = cfg.index as u16;
        let WorkerPorts { queues, roles } = ports.into();
        let (rx, tx_queues): (Vec<_>, Vec<_>) = queues.into_iter().unzip();
        let tx = Tx::new(
            tx_queues,
            [nets.tun.vlan, nets.plain.vlan],
            roles,
            TxRings {
                to_control_tun: links.to_control_tun,
                to_control_plain: links.to_control_plain,
                handoff_out: links.handoff_out,
                relay_tun: links.relay_tun,
                relay_plain: links.relay_plain,
            },
            cfg.index,
            cfg.workers,
            Arc::clone(&counters),
            nets.tun_port,
        );
        let links = Channels {
            commands: links.commands,
            events: links.events,
            handshakes: links.handshakes,
            handoff_in: links.handoff_in,
            to_workers: links.to_workers,
        };
        let gate = HandshakeGate::new(&cfg.public_key);
        let seal_batch = SealBatch::new(cfg.batch.seal);
        let open_batch = OpenBatch::new(cfg.batch.open);
        let staging = Staging::new(cfg.staging_budget);
        let table = IndexTable::new(cfg.index, cfg.workers);
        let lanes = LaneWork::new(cfg.index, cfg.workers);
        let icmp = IcmpErrors::new(cfg.icmp_rate, clock.now(), pool, Arc::clone(&counters));
        Self {
            cfg,
            rx,
            roles,
            links,
            tx,
            pool,
            clock,
            counters,
            nets,
            routes: Arc::new(RouteTable::default()),
            table,
            staging,
            lanes,
            neighbours: Neighbours::new(roles),
            gate,
            icmp,
            ip_ident,
            frags: Reassembler::new(frags),
            idle,
            stages: StageClock::default(),
            seal_batch,
            open_batch,
        }
    }

    /// Polls until `stop` is set. Everything still held is freed on return.
    pub fn run(mut self, stop: &AtomicBool) {
        let mut rx: Burst = Burst::new();
        self.stages.start();
        while !stop.load(Ordering::Relaxed) {
            self.apply_commands();
            let tsc = dpdk_sys::rte::rdtsc();
            let now = self.clock.instant(tsc);
            let mut work = 0;
            // Whether an RX burst came back full (the gate then holds its
            // handshake messages for a fuller SIMD pass).
            let mut saturated = false;
            self.frags.start_round(tsc, &self.counters);
            self.stages.lap(Stage::Other);

            for port in 0..self.rx.len() {
                let got = self.poll_port(port, &mut rx, now);
                saturated |= got == BURST_SIZE;
                work += got;
            }

            let n = self.links.handoff_in.dequeue_burst(&mut rx);
            self.counters.add(Event::HandoffIn, n as u64);
            saturated |= n == BURST_SIZE;
            work += n;
            if n > 0 {
                // A peer's state (Adopt) is sent before the packets its old
                // owner passes on: take it before handling them.
                self.apply_commands();
            }
            rx.prefetch();
            self.stages.lap(Stage::Rx);
            for m in rx.drain() {
                match tag_side(m.user_tag()) {
                    PortSide::Tunnel => self.tunnel_packet(m, now, Via::Handoff),
                    PortSide::Plaintext => self.send_path().plaintext_packet(m, now, Via::Handoff),
                }
            }

            if self.gate.due(saturated) {
                self.judge_handshakes(now);
            }
            work += self.tx.relay();
            self.stages.lap(Stage::Other);
            self.tx.flush_all();
            self.lanes.flush(&mut self.table, now);
            self.stages.lap(Stage::Tx);
            let counters = &self.counters;
            self.stages
                .publish(|stage, cycles| counters.add_stage_cycles(stage, cycles));
            self.idle.after_round(work);
        }
    }

    /// One RX burst from port `port`, each frame through the path of its
    /// role: one branch per burst on the port's role; a port carrying both
    /// roles classifies each frame (`one_armed_side`), a port whose VLANs
    /// carry the two roles each frame by its tag (`Tx::vlan_side`).
    /// Returns the frames.
    fn poll_port(&mut self, port: usize, rx: &mut Burst, now: Instant) -> usize {
        let n = self.rx[port].rx_burst(rx);
        rx.prefetch();
        self.stages.lap(Stage::Rx);
        match self.roles.polled_as(port) {
            Polled::As(PortSide::Tunnel) => {
                self.counters.add(Event::TunnelRx, n as u64);
                // Its data messages may share multi-buffer passes; their
                // peers' state and payloads are asked for ahead.
                self.begin_open_burst(n);
                self.prefetch_tunnel_burst(rx.as_slice().iter());
                let ahead = rx.payload_ahead();
                for (i, m) in rx.drain().enumerate() {
                    ahead.prefetch(i + PAYLOAD_AHEAD);
                    if let Some(m) = self.tx.vlan_rx(m, PortSide::Tunnel) {
                        self.tunnel_packet(m, now, Via::OwnQueue);
                    }
                }
                self.open_held(now);
                self.frags.free_given_up();
            }
            Polled::As(PortSide::Plaintext) => {
                self.counters.add(Event::PlaintextRx, n as u64);
                // The send path's components, lent once for the burst,
                // whose seals may share multi-buffer passes.
                let mut send = self.send_path();
                send.begin_burst(n);
                // Destinations looked up together, peers' state and
                // payloads asked for ahead.
                let looked = send.look_ahead(rx.as_slice());
                let ahead = rx.payload_ahead();
                for (i, m) in rx.drain().enumerate() {
                    ahead.prefetch(i + PAYLOAD_AHEAD);
                    if let Some(m) = send.tx.vlan_rx(m, PortSide::Plaintext) {
                        send.plaintext_packet_looked_up(m, now, Via::OwnQueue, looked.get(i));
                    }
                }
                send.flush_batch();
            }
            Polled::ByVlan => {
                // Each frame counted as its role's; one of neither VLAN
                // as the tunnel port's, and dropped (`vlan`).
                for mut m in rx.drain() {
                    let side = self.tx.vlan_side(&m);
                    // Its drops count as its link's too (see `Tx::drop_packet`).
                    m.set_user_tag(link_tag(side));
                    self.counters.add(
                        match side {
                            PortSide::Tunnel => Event::TunnelRx,
                            PortSide::Plaintext => Event::PlaintextRx,
                        },
                        1,
                    );
                    let Some(m) = self.tx.vlan_rx(m, side) else {
                        continue;
                    };
                    match side {
                        PortSide::Tunnel => self.tunnel_packet(m, now, Via::OwnQueue),
                        PortSide::Plaintext => {
                            self.send_path().plaintext_packet(m, now, Via::OwnQueue)
                        }
                    }
                }
                self.frags.free_given_up();
            }
            Polled::ByDestination => {
                // Counted as the tunnel port's: it is one port.
                self.counters.add(Event::TunnelRx, n as u64);
                for m in rx.drain() {
                    let Some(m) = self.tx.vlan_rx(m, PortSide::Tunnel) else {
                        continue;
                    };
                    match self.one_armed_side(&m) {
                        PortSide::Tunnel => self.tunnel_packet(m, now, Via::OwnQueue),
                        PortSide::Plaintext => {
                            self.send_path().plaintext_packet(m, now, Via::OwnQueue)
                        }
                    }
                }
                self.frags.free_given_up();
            }
        }
        n
    }

    /// One-armed mode: which role a frame from the one port is for. Our
    /// own addresses' traffic (WireGuard on the listen or lane ports,
    /// outer fragments, and the rest, which `tunnel_packet` passes to the
    /// exception TAP), link-scoped destinations and what is not IP take
    /// the tunnel path; every other IP packet is plaintext to route into
    /// a tunnel. A frame the classifier cannot read goes the tunnel way,
    /// which drops it as `malformed`.
    #[inline]
    pub(crate) fn one_armed_side(&self, m: &Mbuf) -> PortSide {
        let data = m.data();
        let Ok(cls) = classify(data) else {
            return PortSide::Tunnel;
        };
        if !matches!(cls.l3, L3Kind::Ipv4 | L3Kind::Ipv6) {
            return PortSide::Tunnel;
        }
        match inner_ip(data, &cls) {
            Some(ip) if !self.nets.tun.is_local(ip.dst) && !is_link_scoped(ip.dst) => {
                PortSide::Plaintext
            }
            _ => PortSide::Tunnel,
        }
    }

    /// The plaintext-to-tunnel path over this worker's components (see
    /// `worker/send.rs`), borrowed for one call.
    #[inline(always)]
    pub(crate) fn send_path(&mut self) -> SendPath<'_, 'p> {
        SendPath {
            cfg: &self.cfg,
            pool: self.pool,
            counters: &self.counters,
            nets: &self.nets,
            routes: &self.routes,
            table: &mut self.table,
            staging: &mut self.staging,
            lanes: &mut self.lanes,
            neighbours: &self.neighbours,
            icmp: &mut self.icmp,
            tx: &mut self.tx,
            ip_ident: &mut self.ip_ident,
            events: &self.links.events,
            stages: &mut self.stages,
            batch: &mut self.seal_batch,
        }
    }

    fn apply_commands(&mut self) {
        let Ok(first) = self.links.commands.try_recv() else {
            return;
        };
        let now = self.clock.now();
        self.apply(first, now);
        for _ in 1..COMMANDS_PER_ROUND {
            let Ok(cmd) = self.links.commands.try_recv() else {
                return;
            };
            self.apply(cmd, now);
        }
    }

    /// Applies every command queued when called, for a data message whose
    /// receiver index this worker does not know; returns whether there was
    /// any. The control thread sends a handshake response right after
    /// queueing the command that installs its keypair, so behind a queue of
    /// other commands (a handshake wave) the initiator's first data message
    /// can arrive first: the kernel installs the keypair before it sends
    /// the response.
    pub(crate) fn apply_queued_commands(&mut self, now: Instant) -> bool {
        let queued = self.links.commands.len();
        for _ in 0..queued {
            let Ok(cmd) = self.links.commands.try_recv() else {
                break;
            };
            self.apply(cmd, now);
        }
        queued > 0
    }

    fn apply(&mut self, cmd: Command, now: Instant) {
        let Some(cmd) = self.follow_moved(cmd, now) else {
            return;
        };
        match cmd {
            Command::AddPeer { id, state } => {
                self.publish_lanes(id, true);
                // No lane of a peer this worker owns.
                self.apply_lane(id, None, now);
                if let Some(mut old) = self.table.insert(id, state) {
                    self.drop_staged(&mut old, DropReason::PeerGone);
                }
            }
            Command::RemovePeer { id } => {
                self.publish_lanes(id, true);
                if let Some(mut old) = self.table.remove(id) {
                    self.drop_staged(&mut old, DropReason::PeerGone);
                }
            }
            Command::Lane { id, lane } => self.apply_lane(id, lane, now),
            Command::InstallKeypair { id, keypair } => self.install(id, keypair, now),
            Command::SetEndpoint {
                id,
                endpoint,
                local,
            } => {
                if let Some(p) = self.table.peer_mut(id) {
                    // The lanes follow the endpoint and our address (a
                    // lane worker's report of one it saw included).
                    let moved = p.endpoint != Some(endpoint)
                        || p.local != local
                        || p.local_reported != local;
                    let waiting = !p.staged.is_empty();
                    p.endpoint = Some(endpoint);
                    p.local = local;
                    p.local_reported = local;
                    if moved {
                        self.publish_lanes(id, false);
                    }
                    // Packets staged for it go once the session is up.
                    if waiting {
                        self.send_path().want_handshake(id, now);
                    }
                }
            }
            Command::SetRoutes(routes) => {
                self.routes = routes;
                self.table.forget_finished_moves(&self.routes, now);
            }
            Command::Neighbour { port, ip, mac } => self.neighbours.learn(port, ip, mac),
            Command::SendKeepalive { id } => self.send_path().send_keepalive(id, now),
            Command::ClearSession { id } => {
                if self.table.clear_session(id) {
                    self.publish_lanes(id, false);
                }
            }
            Command::DropStaged { id } => {
                if let Some(p) = self.table.peer_mut(id) {
                    let n = self.staging.clear(&mut p.staged);
                    self.tx.count_drops(DropReason::HandshakeTimeout, n as u64);
                }
            }
            Command::Release { id, to } => self.release(id, to, now),
            Command::Adopt { id, state, staged } => self.adopt(id, state, staged, now),
            Command::CookieSecret(secret) => self.gate.set_secret(*secret),
        }
    }

    /// Frees the packets staged for a peer that is leaving, counted as
    /// drops for `reason`.
    pub(crate) fn drop_staged(&mut self, old: &mut PeerState, reason: DropReason) {
        let n = self.staging.clear(&mut old.staged);
        self.tx.count_drops(reason, n as u64);
    }

    fn install(&mut self, id: PeerId, keypair: Box<protocol::transport::Keypair>, now: Instant) {
        let Some(installed) = self.table.install(id, keypair) else {
            return;
        };
        self.publish_lanes(id, false);
        if installed.initiator {
            // The initiator confirms the session: with its staged packets,
            // or with a keepalive when it has nothing to send.
            if installed.staged {
                self.send_path().send_staged(id, now);
            } else {
                self.send_path().send_keepalive(id, now);
            }
        }
    }

    /// Owner: sends the lane workers of peer `id` what they need now, or
    /// withdraws the lanes (see [`LaneWork::publish`]).
    pub(crate) fn publish_lanes(&mut self, id: PeerId, withdraw: bool) {
        self.lanes
            .publish(&self.table, id, withdraw, &self.links.to_workers);
    }

    /// [`Command::Lane`]: takes (or drops) a lane of another worker's peer.
    fn apply_lane(
        &mut self,
        id: PeerId,
        publish: Option<Box<crate::lane::LanePublish>>,
        now: Instant,
    ) {
        self.lanes.apply(&mut self.table, id, publish, now);
    }

    /// Counts an authenticated packet of peer `id` received by worker
    /// `at`, and asks for a re-home when they keep arriving elsewhere.
    #[inline]
    pub(crate) fn note_arrival(&mut self, id: PeerId, at: usize) {
        let me = self.cfg.index;
        if at == me {
            if let Some(p) = self.table.peer_mut(id) {
                p.arrivals.note(at, me);
            }
            return;
        }
        self.counters.add(Event::ArrivedElsewhere, 1);
        let ask = self
            .table
            .peer_mut(id)
            .and_then(|p| p.arrivals.note(at, me));
        if let Some(to) = ask {
            // Best effort: asked again after as many packets if lost.
            let _ = self.links.events.try_send(WorkerEvent::ArrivesAt(id, to));
        }
    }

    /// Applies a per-peer command for a peer that moved away: sends it on
    /// to the new owner. Returns the command when it is this worker's.
    fn follow_moved(&mut self, cmd: Command, now: Instant) -> Option<Command> {
        let Some(id) = cmd.moving_peer() else {
            return Some(cmd);
        };
        if self.table.owns(id) {
            return Some(cmd);
        }
        let Some(to) = self.table.moved_to(id) else {
            return Some(cmd);
        };
        match &cmd {
            Command::InstallKeypair { keypair, .. } => {
                // Its index names this worker: pass its packets on too.
                self.table.follow_index(keypair.local_index(), to, now);
            }
            Command::RemovePeer { .. } => self.table.forget_moved(id),
            _ => {}
        }
        if let Some(tx) = self.links.to_workers.get(to) {
            let _ = tx.send(cmd);
        }
        None
    }

    /// [`Command::Release`]: hands the peer's state to worker `to`.
    fn release(&mut self, id: PeerId, to: usize, now: Instant) {
        if to == self.cfg.index && self.table.owns(id) {
            // Already here (the control thread missed the first report).
            let _ = self.links.events.try_send(WorkerEvent::Adopted(id, to));
            return;
        }
        if to >= self.cfg.workers || to == self.cfg.index {
            return;
        }
        // Lanes follow the owner: the new one publishes its own.
        self.publish_lanes(id, true);
        let Some(mut state) = self.table.release(id, to, now) else {
            return;
        };
        state.arrivals = Arrivals::default();
        // The staged packets leave this worker's slab with the peer (a
        // re-home is rare: the one allocation is not per packet).
        let mut staged = Vec::with_capacity(state.staged.len());
        while let Some(m) = self.staging.pop(&mut state.staged) {
            staged.push(m);
        }
        self.counters.add(Event::PeersReleased, 1);
        let adopt = Command::Adopt { id, state, staged };
        if let Some(tx) = self.links.to_workers.get(to) {
            // Unbounded: fails only when the workers are stopping, and
            // dropping the command then frees the staged packets.
            let _ = tx.send(adopt);
        }
    }

    /// [`Command::Adopt`]: takes over a peer's state from its old owner.
    fn adopt(&mut self, id: PeerId, mut state: Box<PeerState>, staged: Vec<Mbuf>, now: Instant) {
        state.staged = StagedList::default();
        // Built against the old owner's neighbour table.
        state.outer = None;
        for m in staged {
            if let Err(m) = self.staging.push(&mut state.staged, id, m) {
                self.tx.drop_packet(m, DropReason::StagedBudget);
            }
        }
        let staged = !state.staged.is_empty();
        if let Some(mut old) = self.table.adopt(id, state) {
            self.drop_staged(&mut old, DropReason::PeerGone);
        }
        // It owns the peer now: no lane of it here, and lanes of its own.
        self.apply_lane(id, None, now);
        self.publish_lanes(id, false);
        self.counters.add(Event::PeersAdopted, 1);
        let _ = self
            .links
            .events
            .try_send(WorkerEvent::Adopted(id, self.cfg.index));
        if staged {
            self.send_path().send_staged(id, now);
        }
    }
}
