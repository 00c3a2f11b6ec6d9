//! The control thread: handshakes, timers, keypair installation, and the
//! exception path of both ports. It runs beside the workers (on the EAL
//! main thread's side), polls its inputs, and sleeps briefly when idle.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use dataplane::clock::TscClock;
use dataplane::command::{Command, HandshakeMessage, PortSide, WorkerEvent};
use dataplane::counters::WorkerCounters;
use dataplane::peer::PeerId;
use dpdk_sys::rte::Mempool;
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::cookie::CookieChecker;
use protocol::noise::StaticIdentity;
use protocol::ratelimit::RateLimiter;
use protocol::time::Instant;
use rand_core::OsRng;

use crate::counters::{bump, ControlCounters};
use crate::groups::{ControlGroup, InitialGroup};
use crate::handshake_pool::HandshakePool;
use crate::link::PortLink;
use crate::ownership::Ownership;
use crate::peers::{NewPeer, PeerTable};
use crate::rss::RssPredictor;
use crate::snapshot::{PeerSnapshot, SnapshotBoard};
use crate::steering::Steering;
use crate::uapi::server::Call;

/// Handshake messages handled per round, so the exception path and the
/// timers keep running under a flood.
const HANDSHAKES_PER_ROUND: usize = 64;
/// Sleep when a round found nothing to do.
const IDLE_SLEEP: Duration = Duration::from_micros(200);
/// How often the timers of all peers are looked at: their deadlines are
/// seconds apart, and a scan touches every peer.
const TIMERS_EVERY: Duration = Duration::from_millis(5);
/// With many peers a scan takes a while (about 1.5 ms for 100k): the next
/// one waits at least this many times as long, so the scans take at most
/// a tenth of the control thread.
const TIMER_SCAN_SHARE: u32 = 10;
/// Entries of the per-source rate limiter.
const RATE_LIMITER_ENTRIES: usize = 8192;

/// Everything the control thread owns.
pub struct Control<'p> {
    pub(crate) identity: StaticIdentity,
    /// Our private key, for the UAPI's `get` (wiped on drop).
    pub(crate) private_key: zeroize::Zeroizing<[u8; 32]>,
    /// The master copy of the allowed IPs; workers get snapshots.
    pub(crate) allowed: AllowedIps<PeerId>,
    /// Peer slot -> owner worker, as published.
    pub(crate) owners: Vec<u16>,
    /// Tunnel groups; their prefixes join the allowed IPs in the snapshot.
    pub(crate) groups: Vec<ControlGroup>,
    /// Requests from the UAPI socket, if it is served.
    pub(crate) uapi: Option<Receiver<Call>>,
    /// A large UAPI `set` being applied, or a `get`'s or `wgdp show`'s
    /// snapshot being taken, a slice per round.
    pub(crate) uapi_job: Option<crate::live::UapiJob>,
    /// Where the state is published for other threads (metrics,
    /// telemetry).
    pub(crate) board: Arc<SnapshotBoard>,
    /// The board's next document, its peers copied a slice per round.
    pub(crate) board_job: Option<crate::show::ShowJob>,
    /// Worker index -> lcore id.
    pub(crate) lcores: Vec<u32>,
    /// The interface name (`wg show <name>`).
    pub(crate) interface: String,
    /// Each worker's counters, by worker index.
    pub(crate) worker_counters: Vec<Arc<WorkerCounters>>,
    pub(crate) listen_port: u16,
    pub(crate) workers: usize,
    pub(crate) peers: PeerTable,
    /// Draws the cookie secret every COOKIE_SECRET_MAX_AGE and hands it
    /// to the workers, whose gates check mac2 and make cookies with it.
    pub(crate) checker: CookieChecker,
    pub(crate) limiter: RateLimiter,
    pub(crate) handshakes: Receiver<HandshakeMessage>,
    pub(crate) events: Receiver<WorkerEvent>,
    pub(crate) commands: Vec<Sender<Command>>,
    pub(crate) tun: PortLink<'p>,
    pub(crate) plain: PortLink<'p>,
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
    pub(crate) route_export: Option<crate::route_export::RouteExport>,
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
    /// The plaintext port's control link.
    pub plain: PortLink<'p>,
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
        let steering = Steering::new(parts.plain.port, parts.workers);
        let mut control = Self {
            identity,
            private_key: parts.private_key,
            allowed: AllowedIps::new(),
            owners: Vec::new(),
            groups: parts
                .groups
                .into_iter()
                .map(|g| ControlGroup::new(g, parts.workers))
                .collect(),
            uapi: parts.uapi,
            uapi_job: None,
            board: parts.board,
            board_job: None,
            lcores: parts.lcores,
            interface: parts.interface,
            worker_counters: parts.worker_counters,
            listen_port: parts.listen_port,
            workers: parts.workers,
            peers: PeerTable::default(),
            checker,
            limiter: RateLimiter::new(RATE_LIMITER_ENTRIES, &mut rng),
            handshakes: parts.handshakes,
            events: parts.events,
            commands: parts.commands,
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
                control.assign_prefix(prefix, id);
            }
        }
        tracing::info!(
            peers = control.peers.len(),
            prefixes = control.allowed.len(),
            groups = control.groups.len(),
            "tunnel table loaded"
        );
        control.publish_routes();
        control
    }

    /// Sends a command to a worker; a full channel is counted.
    pub(crate) fn command(&self, worker: usize, cmd: Command) {
        match self.commands.get(worker) {
            Some(tx) if tx.try_send(cmd).is_ok() => {}
            _ => bump(&self.counters.command_drops),
        }
    }

    /// Draws a new cookie secret when the current one is
    /// COOKIE_SECRET_MAX_AGE old (or there is none) and sends it to every
    /// worker.
    pub(crate) fn rotate_cookie_secret(&mut self, now: Instant) {
        if let Some(secret) = self.checker.rotate(now, &mut self.rng) {
            self.broadcast(|| Command::CookieSecret(Box::new(secret.clone())));
        }
    }

    /// Sends a command to every worker.
    pub(crate) fn broadcast(&self, make: impl Fn() -> Command) {
        for w in 0..self.commands.len() {
            self.command(w, make());
        }
    }

    /// One round of a port's exception path; the neighbours it learned go
    /// to every worker. Returns the frames handled.
    pub(crate) fn link_round(&mut self, side: PortSide, now: Instant) -> usize {
        let link = match side {
            PortSide::Tunnel => &mut self.tun,
            PortSide::Plaintext => &mut self.plain,
        };
        let (work, learned) = link.round(now, self.pool, &self.counters);
        for (ip, mac) in learned {
            self.broadcast(|| Command::Neighbour {
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
        let plain_hops: Vec<IpAddr> = [
            self.plain.net.gateway_v4.map(IpAddr::V4),
            self.plain.net.gateway_v6.map(IpAddr::V6),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.tun.prime(&tun_hops, self.pool, &self.counters);
        self.plain.prime(&plain_hops, self.pool, &self.counters);
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
                std::thread::sleep(IDLE_SLEEP);
            }
        }
        self.withdraw_routes();
        self.board.close();
        self.peer_snapshots()
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
                    if let Some(p) = self.peers.get_mut(id) {
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
                    if let Some(p) = self.peers.get_mut(id) {
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
        for p in self.peers.iter_mut() {
            p.sync_activity(rng);
            if p.timers.next_deadline().is_some_and(|d| d <= now) {
                due.push((p.id, p.timers.poll(now)));
            }
        }
        for (id, actions) in due {
            let Some(owner) = self.peers.get_mut(id).map(|p| p.owner) else {
                continue;
            };
            if actions.data_unanswered {
                // The kernel's rule for a dead session: tunnel groups move
                // its flows to the other members until it answers again.
                if let Some(p) = self.peers.get(id) {
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
                self.command(owner, Command::SendKeepalive { id });
            }
            if actions.zero_key_material {
                if let Some(p) = self.peers.get_mut(id) {
                    p.handshake.clear();
                }
                bump(&self.counters.sessions_zeroed);
                self.command(owner, Command::ClearSession { id });
            }
            if actions.gave_up {
                bump(&self.counters.handshakes_given_up);
                self.command(owner, Command::DropStaged { id });
            }
        }
    }
}
