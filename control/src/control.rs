//! The control thread: handshakes, timers, keypair installation, and the
//! exception path of both ports. It runs beside the workers (on the EAL
//! main thread's side), polls its inputs, and sleeps briefly when idle.
//!
//! `Control` holds the components that keep their own rules (the
//! `TunnelTable`, [`Ownership`], [`Steering`], the [`PortLink`]s, the
//! `WorkerCommands`) and hands each what it needs; its own code is this
//! file, `handshake` (handshake messages) and `live` (the UAPI).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use dataplane::clock::TscClock;
use dataplane::command::{Command, HandshakeMessage, PortSide, WorkerEvent};
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::peer::PeerId;
use dpdk_sys::rte::Mempool;
use protocol::allowedips::Prefix;
use protocol::cookie::CookieChecker;
use protocol::noise::StaticIdentity;
use protocol::ratelimit::RateLimiter;
use protocol::time::Instant;
use rand_core::OsRng;

use crate::counters::{bump, ControlCounters};
use crate::groups::InitialGroup;
use crate::handshake_pool::HandshakePool;
use crate::link::PortLink;
use crate::ownership::Ownership;
use crate::peers::{ControlPeer, NewPeer};
use crate::route_export::{RouteExport, RouteExportShow};
use crate::rss::RssPredictor;
use crate::show::{InterfaceShow, LcoreShow, PortShow, Show, ShowJob, SnapshotBoard};
use crate::snapshot::{lcore_of, PeerSnapshot};
use crate::steering::Steering;
use crate::tunnel_table::TunnelTable;
use crate::uapi::server::Call;
use crate::worker_commands::WorkerCommands;

pub mod handshake;
pub(crate) mod live;

/// Handshake messages handled per round, so the exception path and the
/// timers keep running under a flood.
const HANDSHAKES_PER_ROUND: usize = 64;
/// Sleep when a round found nothing to do. The control thread polls its
/// channels (`try_recv`) and never blocks on one, so that a worker queueing
/// a handshake message never has to wake it (a system call).
pub const IDLE_SLEEP: Duration = Duration::from_micros(200);
/// How often the timers of all peers are looked at: their deadlines are
/// seconds apart, and a scan touches every peer.
const TIMERS_EVERY: Duration = Duration::from_millis(5);
/// With many peers a scan takes a while (about 10 ms for 100k on this
/// project's 2-vCPU test VM, where each peer's state is a cache miss; see
/// `PeerTable::scan_mut`): the next one waits at least this many times as
/// long, so the scans take at most a tenth of the control thread.
const TIMER_SCAN_SHARE: u32 = 10;
/// Static-static DHs the control thread computes ahead in one idle round
/// when it has no handshake threads (about 20 us each: a round stays
/// well under a millisecond, and a message that arrives meanwhile waits
/// at most that).
pub(crate) const STATIC_STATICS_PER_ROUND: usize = 16;
/// Entries of the per-source rate limiter.
const RATE_LIMITER_ENTRIES: usize = 8192;

/// Everything the control thread owns.
pub struct Control<'p> {
    pub(crate) identity: StaticIdentity,
    /// Our private key, for the UAPI's `get` (wiped on drop).
    pub(crate) private_key: zeroize::Zeroizing<[u8; 32]>,
    /// The peers, their allowed IPs, owners and the tunnel groups.
    pub(crate) table: TunnelTable,
    /// Requests from the UAPI socket, if it is served.
    pub(crate) uapi: Option<Receiver<Call>>,
    /// A large UAPI `set` being applied, or a `get`'s snapshot being
    /// taken, a slice per round.
    pub(crate) uapi_job: Option<live::UapiJob>,
    /// Where the state is published for other threads (metrics,
    /// telemetry).
    pub(crate) board: Arc<SnapshotBoard>,
    /// The board's next document, its peers copied a slice per round.
    pub(crate) board_job: Option<ShowJob>,
    /// Worker index -> lcore id.
    pub(crate) lcores: Vec<u32>,
    /// The interface name (`wg show <name>`).
    pub(crate) interface: String,
    /// Each worker's counters, by worker index.
    pub(crate) worker_counters: Vec<Arc<WorkerCounters>>,
    pub(crate) listen_port: u16,
    pub(crate) workers: usize,
    /// Draws the cookie secret every COOKIE_SECRET_MAX_AGE and hands it
    /// to the workers, whose gates check mac2 and make cookies with it.
    pub(crate) checker: CookieChecker,
    pub(crate) limiter: RateLimiter,
    pub(crate) handshakes: Receiver<HandshakeMessage>,
    pub(crate) events: Receiver<WorkerEvent>,
    /// The command channels to the workers.
    pub(crate) commands: WorkerCommands,
    pub(crate) tun: PortLink<'p>,
    /// `None` in one-armed mode: `tun` serves both roles.
    pub(crate) plain: Option<PortLink<'p>>,
    pub(crate) pool: &'p Mempool,
    pub(crate) clock: TscClock,
    pub(crate) rng: OsRng,
    pub(crate) counters: Arc<ControlCounters>,
    /// Owner choice and re-homing.
    pub(crate) ownership: Ownership,
    /// The plaintext port's rte_flow rules.
    pub(crate) steering: Steering<'p>,
    /// The handshake threads (`dpdk.handshake_threads`); `None`: the
    /// control thread does the X25519 work itself.
    pub(crate) handshake_pool: Option<HandshakePool>,
    /// The live-route export (`[cluster]`), if configured.
    pub(crate) route_export: Option<RouteExport>,
}

/// A configured peer for [`ControlParts`].
pub struct InitialPeer {
    /// Who it is and how to reach it.
    pub peer: NewPeer,
    /// Its allowed IPs.
    pub allowed_ips: Vec<Prefix>,
}

/// The inputs of [`Control::new`].
pub struct ControlParts<'p> {
    /// Our private key.
    pub private_key: zeroize::Zeroizing<[u8; 32]>,
    /// Our UDP port.
    pub listen_port: u16,
    /// Number of workers.
    pub workers: usize,
    /// The configured peers.
    pub peers: Vec<InitialPeer>,
    /// The configured tunnel groups (members among `peers`).
    pub groups: Vec<InitialGroup>,
    /// UAPI requests, when the socket is served.
    pub uapi: Option<Receiver<Call>>,
    /// Where to publish the state when a reader asks for it.
    pub board: Arc<SnapshotBoard>,
    /// Worker index -> lcore id.
    pub lcores: Vec<u32>,
    /// The interface name (`wg show <name>`).
    pub interface: String,
    /// Each worker's counters, by worker index.
    pub worker_counters: Vec<Arc<WorkerCounters>>,
    /// Handshake messages from the workers (past their gates).
    pub handshakes: Receiver<HandshakeMessage>,
    /// Events from the workers.
    pub events: Receiver<WorkerEvent>,
    /// Command channels to the workers, by index.
    pub commands: Vec<Sender<Command>>,
    /// The tunnel port's control link.
    pub tun: PortLink<'p>,
    /// The plaintext port's control link; `None` in one-armed mode (one
    /// port carries both roles, and `tun` is its link: the workers send
    /// it every exception of that port).
    pub plain: Option<PortLink<'p>>,
    /// The shared mbuf pool.
    pub pool: &'p Mempool,
    /// The clock shared with the workers.
    pub clock: TscClock,
    /// Counters, shared with whoever reports them.
    pub counters: Arc<ControlCounters>,
    /// RSS prediction on the tunnel port, where the device allows it.
    pub rss: Option<RssPredictor>,
    /// The handshake threads, started by the caller; `None` keeps the
    /// X25519 work on the control thread.
    pub handshake_pool: Option<HandshakePool>,
}

impl<'p> Control<'p> {
    /// Assembles the control thread, hands each configured peer to its
    /// owner worker and publishes the first routing snapshot (the commands
    /// wait in the workers' channels until they start).
    pub fn new(parts: ControlParts<'p>) -> Self {
        let mut rng = OsRng;
        let identity =
            StaticIdentity::new(protocol::crypto::PrivateKey::from_bytes(*parts.private_key));
        let checker = CookieChecker::new(identity.public_key());
        let ownership = Ownership::new(
            parts.workers,
            parts.rss,
            Some(parts.tun.net.clone()),
            parts.listen_port,
        );
        let steering = match &parts.plain {
            // The roles split by VLAN share the tunnel's port: a rule (by
            // destination) would catch the tunnel's own traffic too, as
            // in one-armed mode.
            Some(plain) if plain.port.id() != parts.tun.port.id() => {
                Steering::new(plain.port, parts.workers)
            }
            _ => Steering::off(),
        };
        let mut control = Self {
            identity,
            private_key: parts.private_key,
            table: TunnelTable::new(parts.groups, parts.workers),
            uapi: parts.uapi,
            uapi_job: None,
            board: parts.board,
            board_job: None,
            lcores: parts.lcores,
            interface: parts.interface,
            worker_counters: parts.worker_counters,
            listen_port: parts.listen_port,
            workers: parts.workers,
            checker,
            limiter: RateLimiter::new(RATE_LIMITER_ENTRIES, &mut rng),
            handshakes: parts.handshakes,
            events: parts.events,
            commands: WorkerCommands::new(parts.commands, Arc::clone(&parts.counters)),
            tun: parts.tun,
            plain: parts.plain,
            pool: parts.pool,
            clock: parts.clock,
            rng,
            counters: parts.counters,
            ownership,
            steering,
            handshake_pool: parts.handshake_pool,
            route_export: None,
        };
        let now = control.clock.now();
        // Before any peer: the workers apply their commands in order, a
        // bounded number per round, and must have the secret before their
        // first burst.
        control.rotate_cookie_secret(now);
        for initial in parts.peers {
            let id = control.add_peer(initial.peer, now);
            for prefix in initial.allowed_ips {
                control.table.assign_prefix(prefix, id);
            }
        }
        tracing::info!(
            peers = control.table.peers.len(),
            prefixes = control.table.allowed.len(),
            groups = control.table.groups.len(),
            "tunnel table loaded"
        );
        control.publish_routes();
        control
    }

    /// Draws a new cookie secret when the current one is
    /// COOKIE_SECRET_MAX_AGE old (or there is none) and sends it to every
    /// worker.
    pub(crate) fn rotate_cookie_secret(&mut self, now: Instant) {
        if let Some(secret) = self.checker.rotate(now, &mut self.rng) {
            self.commands
                .broadcast(|| Command::CookieSecret(Box::new(secret.clone())));
        }
    }

    /// Adds a peer (see [`TunnelTable::add_peer`]).
    pub(crate) fn add_peer(&mut self, new: NewPeer, now: Instant) -> PeerId {
        if let Some(pool) = &self.handshake_pool {
            // Its static-static DH, on a handshake thread when one is idle.
            pool.peer_added(new.public_key);
        }
        self.table
            .add_peer(new, now, &mut self.ownership, &self.commands)
    }

    /// Removes a peer (see [`TunnelTable::remove_peer`]).
    pub(crate) fn remove_peer(&mut self, id: PeerId, now: Instant) {
        let removed =
            self.table
                .remove_peer(id, now, &mut self.ownership, &self.commands, &self.counters);
        if let (Some(key), Some(pool)) = (removed, &self.handshake_pool) {
            pool.peer_removed(&key);
        }
    }

    /// Sends every worker the current routes, and steers the plaintext
    /// port by them (see [`TunnelTable::publish_routes`]).
    pub(crate) fn publish_routes(&mut self) {
        self.table
            .publish_routes(&self.commands, &mut self.steering, &self.counters);
    }

    /// [`WorkerEvent::ArrivesAt`]: see [`TunnelTable::arrives_at`].
    pub(crate) fn arrives_at(&mut self, id: PeerId, to: usize, now: Instant) {
        let workers = self.workers;
        self.table
            .arrives_at(id, to, now, &mut self.ownership, &self.commands, workers);
    }

    /// [`WorkerEvent::Adopted`]: see [`TunnelTable::adopted`]; the routes
    /// name the new owner.
    pub(crate) fn adopted(&mut self, id: PeerId, at: usize) {
        if self
            .table
            .adopted(id, at, &mut self.ownership, &self.lcores)
        {
            self.publish_routes();
        }
    }

    /// One round of a port's exception path; the neighbours it learned go
    /// to every worker. Returns the frames handled.
    pub(crate) fn link_round(&mut self, side: PortSide, now: Instant) -> usize {
        let link = match (side, self.plain.as_mut()) {
            (PortSide::Tunnel, _) => &mut self.tun,
            (PortSide::Plaintext, Some(plain)) => plain,
            // One-armed: the tunnel link's round serves the port.
            (PortSide::Plaintext, None) => return 0,
        };
        let (work, learned) = link.round(now, self.pool, &self.counters);
        for (ip, mac) in learned {
            self.commands.broadcast(|| Command::Neighbour {
                port: side,
                ip,
                mac,
            });
        }
        work
    }

    /// Starts resolving the gateways and the configured endpoints' next
    /// hops, so that the first packets need not wait.
    pub(crate) fn prime_neighbours(&mut self) {
        let mut hops: Vec<IpAddr> = self
            .table
            .peers
            .iter()
            .filter_map(|p| p.endpoint)
            .map(|e| e.ip())
            .collect();
        hops.extend(self.tun.net.gateway_v4.map(IpAddr::V4));
        hops.extend(self.tun.net.gateway_v6.map(IpAddr::V6));
        let mut tun_hops: Vec<IpAddr> = hops
            .iter()
            .filter_map(|h| self.tun.net.next_hop(*h))
            .collect();
        tun_hops.sort();
        tun_hops.dedup();
        self.tun.prime(&tun_hops, self.pool, &self.counters);
        if let Some(plain) = self.plain.as_mut() {
            let plain_hops: Vec<IpAddr> = [
                plain.net.gateway_v4.map(IpAddr::V4),
                plain.net.gateway_v6.map(IpAddr::V6),
            ]
            .into_iter()
            .flatten()
            .collect();
            plain.prime(&plain_hops, self.pool, &self.counters);
        }
    }

    /// Runs until `stop` is set; `report` is called every `report_every`.
    /// Returns the peers' last snapshot (for the final report); everything
    /// it held, frames waiting for resolution included, is freed.
    pub fn run(
        mut self,
        stop: &AtomicBool,
        report_every: Option<Duration>,
        report: &dyn Fn(&[PeerSnapshot]),
    ) -> Vec<PeerSnapshot> {
        let start = self.clock.now();
        self.prime_neighbours();
        let mut next_report = report_every.map(|d| start + d);
        let mut next_timers = start;
        while !stop.load(Ordering::Relaxed) {
            let now = self.clock.now();
            let mut work = self.handshake_round(now);
            work += self.event_round(now);
            work += self.uapi_round(now);
            work += self.serve_snapshot_requests();
            if now >= next_timers {
                self.rotate_cookie_secret(now);
                self.timer_round(now);
                let took = self.clock.now().saturating_since(now);
                next_timers = now + TIMERS_EVERY.max(took * TIMER_SCAN_SHARE);
            }
            work += self.link_round(PortSide::Tunnel, now);
            work += self.link_round(PortSide::Plaintext, now);
            work += self.export_round(now);
            if let (Some(at), Some(every)) = (next_report, report_every) {
                if now >= at {
                    report(&self.peer_snapshots());
                    next_report = Some(now + every);
                }
            }
            if work == 0 {
                work = self.static_statics_ahead();
            }
            if work == 0 {
                std::thread::sleep(IDLE_SLEEP);
            }
        }
        self.withdraw_routes();
        self.board.close();
        self.peer_snapshots()
    }

    /// Idle work without handshake threads: the next configured peers'
    /// static-static DHs, so that a reconnect wave finds them computed
    /// (with threads, the threads do it: `crate::static_statics`); how
    /// many it computed.
    pub(crate) fn static_statics_ahead(&mut self) -> usize {
        if self.handshake_pool.is_some() {
            return 0;
        }
        let n = self
            .table
            .peers
            .static_statics_ahead(&self.identity, STATIC_STATICS_PER_ROUND);
        self.counters
            .static_statics_ahead
            .fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    pub(crate) fn handshake_round(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while n < HANDSHAKES_PER_ROUND {
            // A full pool leaves the rest in the workers' channel.
            if self.handshake_pool.as_ref().is_some_and(|p| p.is_full()) {
                break;
            }
            let Ok(msg) = self.handshakes.try_recv() else {
                break;
            };
            self.on_handshake_message(msg, now);
            n += 1;
        }
        while let Some(ready) = self.handshake_pool.as_mut().and_then(|p| p.next_ready()) {
            self.on_handshake_ready(ready, now);
            n += 1;
        }
        n
    }

    /// Acts on the workers' events (see [`WorkerEvent`]); how many.
    pub(crate) fn event_round(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Ok(ev) = self.events.try_recv() {
            n += 1;
            match ev {
                WorkerEvent::WantHandshake(id) => self.initiate(id, now, false),
                WorkerEvent::SessionConfirmed(id) => {
                    if let Some(p) = self.table.peers.get_mut(id) {
                        p.sync_activity(&mut self.rng);
                        p.handshake_completed();
                        bump(&self.counters.handshakes_completed);
                        tracing::info!(
                            peer = %conf::encode_key(p.public_key.as_bytes()),
                            "handshake completed (peer initiated, session confirmed)"
                        );
                    }
                }
                WorkerEvent::EndpointChanged(id, endpoint, local) => {
                    // Handshake messages to the peer (responses,
                    // initiations) go there, from the address it reached.
                    if let Some(p) = self.table.peers.get_mut(id) {
                        p.endpoint = Some(endpoint);
                        p.local = Some(local);
                    }
                }
                WorkerEvent::ArrivesAt(id, worker) => self.arrives_at(id, worker, now),
                WorkerEvent::Adopted(id, worker) => self.adopted(id, worker),
            }
        }
        n
    }

    /// Feeds the owners' published activity into the timers, then fires
    /// the timers that are due.
    pub(crate) fn timer_round(&mut self, now: Instant) {
        let mut due: Vec<(PeerId, protocol::timers::TimerActions)> = Vec::new();
        let rng = &mut self.rng;
        self.table.peers.scan_mut(|p| {
            p.sync_activity(rng);
            if p.timers.next_deadline().is_some_and(|d| d <= now) {
                due.push((p.id, p.timers.poll(now)));
            }
        });
        for (id, actions) in due {
            let Some(owner) = self.table.peers.get_mut(id).map(|p| p.owner) else {
                continue;
            };
            if actions.data_unanswered {
                // The kernel's rule for a dead session: tunnel groups move
                // its flows to the other members until it answers again.
                if let Some(p) = self.table.peers.get(id) {
                    p.shared.liveness.set_unanswered(true);
                    tracing::debug!(peer = %conf::encode_key(p.public_key.as_bytes()), "data unanswered: presumed dead until it answers");
                }
            }
            if let Some(reason) = actions.send_initiation {
                let retry = reason == protocol::timers::InitiationReason::Retransmit;
                self.initiate(id, now, retry);
            }
            if actions.send_keepalive {
                bump(&self.counters.keepalives_requested);
                self.commands.send(owner, Command::SendKeepalive { id });
            }
            if actions.zero_key_material {
                if let Some(p) = self.table.peers.get_mut(id) {
                    p.handshake.clear();
                }
                bump(&self.counters.sessions_zeroed);
                self.commands.send(owner, Command::ClearSession { id });
            }
            if actions.gave_up {
                bump(&self.counters.handshakes_given_up);
                self.commands.send(owner, Command::DropStaged { id });
            }
        }
    }
}

/// The state as other threads and reports see it (see [`crate::snapshot`]
/// and [`crate::show`]).
impl Control<'_> {
    /// The lcore of worker `index`.
    pub(crate) fn lcore_of(&self, index: usize) -> u32 {
        lcore_of(&self.lcores, index)
    }

    /// One peer's snapshot (its allowed IPs are the list the peer keeps
    /// beside the routing table, in the order they were given).
    pub(crate) fn peer_snapshot(&self, p: &ControlPeer) -> PeerSnapshot {
        PeerSnapshot::of(p, p.allowed_ips.clone(), &self.lcores)
    }

    /// Every peer's snapshot, in table order.
    pub(crate) fn peer_snapshots(&self) -> Vec<PeerSnapshot> {
        self.table
            .peers
            .iter()
            .map(|p| self.peer_snapshot(p))
            .collect()
    }

    /// Builds a new document a slice per round ([`ShowJob`]) once a reader
    /// asks for one, and publishes it when whole; how many slices it
    /// copied (0 or 1).
    pub(crate) fn serve_snapshot_requests(&mut self) -> usize {
        let mut job = match self.board_job.take() {
            Some(job) => job,
            None if self.board.take_request() => self.start_show(),
            None => return 0,
        };
        match self.show_slice(&mut job) {
            Some(show) => self.board.publish(show),
            None => self.board_job = Some(job),
        }
        1
    }
}

impl Control<'_> {
    /// The document, now, in one go (the tests'; the control loop builds
    /// it in slices: [`ShowJob`]).
    #[cfg(test)]
    pub(crate) fn show(&self) -> Show {
        Show {
            peers: self.peer_snapshots(),
            ..self.show_without_peers()
        }
    }

    /// A [`Show`] with no peer copied yet.
    pub(crate) fn start_show(&self) -> ShowJob {
        ShowJob::new(self.table.peers.len())
    }

    /// Copies the peers of the next [`GET_SLICE`](live::GET_SLICE) slots;
    /// the document once every slot is copied.
    pub(crate) fn show_slice(&self, job: &mut ShowJob) -> Option<Show> {
        let end = job.next + live::GET_SLICE;
        job.peers.extend(
            self.table
                .peers
                .in_slots(job.next, end)
                .map(|p| self.peer_snapshot(p)),
        );
        job.next = end;
        (job.next >= self.table.peers.slots()).then(|| Show {
            peers: std::mem::take(&mut job.peers),
            ..self.show_without_peers()
        })
    }

    /// The document less its peers, now: the counters, in time independent
    /// of the peer count (`wgdp show --no-peers`, which bench/pktgen/run.sh
    /// reads twice a trial at 100k peers).
    pub(crate) fn show_without_peers(&self) -> Show {
        Show {
            interface: InterfaceShow {
                name: self.interface.clone(),
                public_key: conf::encode_key(self.identity.public_key().as_bytes()),
                listen_port: self.listen_port,
            },
            peers: Vec::new(),
            groups: self.table.groups_show(self.clock.now()),
            lcores: self
                .worker_counters
                .iter()
                .enumerate()
                .map(|(w, c)| LcoreShow {
                    lcore: self.lcore_of(w),
                    drops: DropReason::ALL
                        .iter()
                        .map(|r| (r.label().to_owned(), c.drops(*r)))
                        .collect(),
                    events: Event::ALL
                        .iter()
                        .map(|e| (e.label().to_owned(), c.events(*e)))
                        .collect(),
                })
                .collect(),
            ports: match &self.plain {
                Some(plain) => vec![("tunnel", &self.tun), ("plaintext", plain)],
                None => vec![("both", &self.tun)],
            }
            .into_iter()
            .map(|(role, link)| {
                let s = link.port.stats().unwrap_or_default();
                PortShow {
                    role: role.to_owned(),
                    device: link.port.name().to_owned(),
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    rx_missed: s.rx_missed,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                    rx_nombuf: s.rx_nombuf,
                }
            })
            .collect(),
            control: self
                .counters
                .snapshot()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect(),
            steering_rules: self.steering.installed() as u64,
            route_export: self.route_export_show(),
        }
    }
}

/// The live-route export's share of the control thread (see
/// [`crate::route_export`]).
impl Control<'_> {
    /// Exports the live routes from now on (`[cluster] export_table`).
    pub fn set_route_export(&mut self, export: RouteExport) {
        self.route_export = Some(export);
    }

    /// The export's share of a control-loop round (see
    /// [`RouteExport::round`]). Returns the requests made (work done).
    pub(crate) fn export_round(&mut self, now: Instant) -> usize {
        let Some(mut export) = self.route_export.take() else {
            return 0;
        };
        let n = export.round(
            now,
            |want| self.table.live_prefixes(now, want),
            || self.clock.now(),
            &self.counters,
        );
        self.route_export = Some(export);
        n
    }

    /// Withdraws every exported route (the control thread is stopping).
    pub(crate) fn withdraw_routes(&mut self) {
        if let Some(export) = self.route_export.as_mut() {
            export.withdraw_all(&self.counters);
        }
    }

    /// The export for `wgdp show`, if there is one.
    pub(crate) fn route_export_show(&self) -> Option<RouteExportShow> {
        self.route_export.as_ref().map(RouteExport::show)
    }
}
