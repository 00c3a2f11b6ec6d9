//! One benchmark phase: `workers` production [`Worker`]s on their lcores,
//! between two `net_ring` port pairs, with `peers` peers installed through
//! the workers' command channels; the harness feeds prebuilt bursts into
//! the workers' RX rings and times them.
//!
//! Timing: the harness enqueues a whole batch (all of it fits in the RX
//! ring), lets the workers warm up on the first 5 %, then reads the TSC and
//! the workers' own counters, again when the first worker is 85 % through,
//! and divides. Every worker is busy for the whole window; the harness
//! sleeps in between (it may share a CPU with a worker).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use dataplane::batch_policy::Batching;
use dataplane::clock::TscClock;
use dataplane::command::{Command, HandshakeMessage, PortSide, WorkerEvent};
use dataplane::counters::{Event, WorkerCounters};
use dataplane::cycle_profile::Stage;
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::icmp::IcmpRate;
use dataplane::peer::{PeerShared, PeerState};
use dataplane::route::{IfAddr, PortNet, RouteTable};
use dataplane::worker::{Worker, WorkerConfig, WorkerLinks, WorkerNets, WorkerQueues};
use dpdk_sys::rte::lcore::{launch_and_join, Job};
use dpdk_sys::rte::{mbuf_ring, rdtsc, Burst, Eal, Mbuf, Mempool, Port, PortConfig, RingConsumer};
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::cookie::CookieSecret;
use protocol::crypto::PublicKey;
use protocol::transport::Keypair;

use super::peers::{owner, PeerKeys};
use super::traffic::{self, Mix};

/// Slots of each RX/TX ring between the harness and a worker.
pub const RING_SIZE: u32 = 65_536;
/// How long the harness waits for a batch or the key installation.
pub(super) const TIMEOUT: Duration = Duration::from_secs(300);
/// The harness's polling interval where it shares a CPU with a worker.
pub(super) const POLL: Duration = Duration::from_micros(200);
/// The harness's polling interval, microseconds, where it has a CPU of its
/// own (it spins: a batch of a few thousand packets is timed too).
const SPIN_US: u64 = 2;
/// The harness thread's name.
pub const HARNESS_THREAD: &str = "bench-harness";
/// Tries per batch before giving up on timing it.
pub(super) const ATTEMPTS: usize = 5;

/// What a run feeds the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// Plaintext from the LAN, encrypted to the peers.
    Encap,
    /// Data messages from the peers, decrypted to the LAN.
    Decap,
    /// Both at once, in equal numbers (a bidirectional tunnel).
    #[value(name = "roundtrip")]
    RoundTrip,
}

impl Direction {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Encap => "encap",
            Direction::Decap => "decap",
            Direction::RoundTrip => "roundtrip",
        }
    }

    fn done(self, c: &WorkerCounters) -> u64 {
        let e = c.events(Event::Encapsulated);
        let d = c.events(Event::Decapsulated);
        match self {
            Direction::Encap => e,
            Direction::Decap => d,
            Direction::RoundTrip => e + d,
        }
    }
}

/// Packets a worker did not forward: dropped, staged for a handshake (a
/// key expired), or handshake messages of a flood (answered with a cookie
/// or queued for the control thread); they count as finished so that a
/// batch always ends.
fn lost(c: &WorkerCounters) -> u64 {
    c.total_drops()
        + c.events(Event::Staged)
        + c.events(Event::CookieReplySent)
        + c.events(Event::HandshakeToControl)
}

/// What the handshake gates of a phase's workers need for a flood
/// (`wgdp bench --flood`): wgdp's public key (mac1), a cookie secret
/// (mac2, cookie replies) and the control thread's handshake queue, one
/// for all workers as in `wgdp run`.
pub struct GateSetup {
    /// wgdp's static public key.
    pub public_key: PublicKey,
    /// The cookie secret every worker gets.
    pub secret: CookieSecret,
    /// The handshake queue's sending end.
    pub handshakes: Sender<HandshakeMessage>,
}

/// Handshake frames a flood run mixes into a worker's tunnel batch: asked
/// after each data message.
pub trait Interleave {
    /// The frames to feed worker `w` after its data message number `k`.
    fn after(&mut self, w: usize, k: usize) -> Vec<&[u8]>;
}

/// One timed batch.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Packets processed inside the window, all workers.
    pub packets: u64,
    /// The window, in TSC cycles.
    pub cycles: u64,
    /// Packets dropped or staged in the whole batch (should be 0).
    pub drops: u64,
    /// TSC cycles per worker-loop stage inside the window, all workers
    /// (zero without the `stages` feature).
    pub stages: [u64; Stage::COUNT],
}

/// The harness's end of one worker's queues.
pub(super) struct Feed<'p> {
    /// Into the worker's tunnel port.
    pub(super) tun_tx: dpdk_sys::rte::TxQueue<'p>,
    /// What the worker sent on the tunnel port (cookie replies included).
    pub(super) tun_rx: dpdk_sys::rte::RxQueue<'p>,
    /// Into the worker's plaintext port.
    pub(super) plain_tx: dpdk_sys::rte::TxQueue<'p>,
    /// What the worker sent on the plaintext port.
    pub(super) plain_rx: dpdk_sys::rte::RxQueue<'p>,
}

/// The harness: everything but the workers.
pub struct Harness<'p> {
    pool: &'p Mempool,
    pub(super) feeds: Vec<Feed<'p>>,
    pub(super) counters: Vec<Arc<WorkerCounters>>,
    commands: Vec<Sender<Command>>,
    events: Vec<Receiver<WorkerEvent>>,
    control: Vec<RingConsumer>,
    /// The peers' halves of the sessions, by peer id.
    pub(super) peer_keys: Vec<Keypair>,
    /// Peer ids owned by each worker.
    pub(super) owned: Vec<Vec<u32>>,
    pub(super) clock: TscClock,
    tsc_hz: u64,
    /// Where the next batch starts in each worker's peer list.
    pub(super) cursor: usize,
    /// Handshake frames mixed into the tunnel batches (a flood run).
    pub(super) interleave: Option<Box<dyn Interleave + Send>>,
    /// Whether the harness spins between looks at the counters (it has a
    /// CPU of its own) rather than sleeping.
    pub(super) spin: bool,
    /// How long it sleeps between looks where it does not spin.
    pub(super) nap: Duration,
}

fn port_net(mac: [u8; 6], addr: IpAddr, gateway: Option<std::net::Ipv4Addr>) -> PortNet {
    PortNet {
        mac,
        addresses: vec![IfAddr {
            addr,
            prefix_len: 24,
        }],
        gateway_v4: gateway,
        gateway_v6: None,
        vlan: None,
    }
}

fn ring_pair(eal: &Eal, pool: &Mempool, name: &str, queues: u16) -> Result<(Port, Port), String> {
    let (mut a, mut b) =
        Port::ring_pair(eal, name, queues, RING_SIZE).map_err(|e| e.to_string())?;
    let cfg = PortConfig {
        rx_queues: queues,
        tx_queues: queues,
        ..PortConfig::default()
    };
    for p in [&mut a, &mut b] {
        p.configure(&cfg, pool).map_err(|e| e.to_string())?;
        p.start().map_err(|e| e.to_string())?;
    }
    Ok((a, b))
}

/// Runs one phase: builds the ports and workers, installs `keys` (one
/// entry per peer), runs the workers (requesting checksum offload or
/// not; sealing in multi-buffer passes by `batch`; with `gate`, their
/// handshake gates armed as in `wgdp run`) on
/// `lcores` while `drive` works the harness, then stops them. Checks that
/// every mbuf came back.
#[allow(clippy::too_many_arguments)]
pub fn phase<T: Send>(
    eal: &Eal,
    pool: &Mempool,
    lcores: &[u32],
    keys: Vec<PeerKeys>,
    clock: TscClock,
    tx_checksum_offload: bool,
    batch: Batching,
    gate: Option<&GateSetup>,
    drive: impl FnOnce(&mut Harness<'_>) -> Result<T, String> + Send,
) -> Result<T, String> {
    let workers = lcores.len();
    let q = workers as u16;
    // Names are unique per phase: DPDK keeps a closed vdev's name.
    static PHASE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tag = format!(
        "{}x{}",
        std::process::id() % 100_000,
        PHASE.fetch_add(1, Ordering::Relaxed)
    );
    let (tun_w, tun_h) = ring_pair(eal, pool, &format!("bt{tag}"), q)?;
    let (plain_w, plain_h) = ring_pair(eal, pool, &format!("bp{tag}"), q)?;
    let mut handoff_p = Vec::new();
    let mut handoff_c = Vec::new();
    for i in 0..workers {
        let (p, c) = mbuf_ring(eal, &format!("bh{tag}_{i}"), 1024).map_err(|e| e.to_string())?;
        handoff_p.push(p);
        handoff_c.push(c);
    }
    let peers = keys.len();
    let mut allowed = AllowedIps::new();
    let mut owners = Vec::with_capacity(peers);
    for p in 0..peers as u32 {
        let prefix = Prefix::new(IpAddr::V4(traffic::peer_inner(p)), 32)
            .map_err(|e| format!("prefix: {e:?}"))?;
        allowed.insert(prefix, p);
        owners.push(owner(p, workers) as u16);
    }
    let routes = Arc::new(RouteTable {
        allowed,
        owners,
        groups: Vec::new(),
    });

    let mut built = Vec::new();
    let mut harness = Harness {
        pool,
        feeds: Vec::new(),
        counters: Vec::new(),
        commands: Vec::new(),
        events: Vec::new(),
        control: Vec::new(),
        peer_keys: Vec::with_capacity(peers),
        owned: vec![Vec::new(); workers],
        clock,
        tsc_hz: eal.tsc_hz(),
        cursor: 0,
        interleave: None,
        spin: false,
        nap: POLL,
    };
    // Every worker can send any other a command (a re-homed peer's state).
    let (cmd_txs, cmd_rxs): (Vec<Sender<Command>>, Vec<Receiver<Command>>) =
        (0..workers).map(|_| unbounded::<Command>()).unzip();
    for ((i, handoff_in), cmd_rx) in handoff_c.into_iter().enumerate().zip(cmd_rxs) {
        let cmd_tx = cmd_txs[i].clone();
        let (ev_tx, ev_rx) = bounded::<WorkerEvent>(1024);
        let hs_tx = match gate {
            Some(g) => g.handshakes.clone(),
            None => bounded::<HandshakeMessage>(16).0,
        };
        let (ct_p, ct_c) =
            mbuf_ring(eal, &format!("bc{tag}_{i}t"), 1024).map_err(|e| e.to_string())?;
        let (cp_p, cp_c) =
            mbuf_ring(eal, &format!("bc{tag}_{i}p"), 1024).map_err(|e| e.to_string())?;
        let counters = Arc::new(WorkerCounters::default());
        let handoff_out = (0..workers)
            .map(|j| (j != i).then(|| handoff_p[j].clone()))
            .collect();
        let qi = i as u16;
        let worker = Worker::new(
            WorkerConfig {
                index: i,
                workers,
                listen_port: traffic::LISTEN,
                mtu: traffic::MTU,
                tx_checksum_offload,
                idle_polls: 0,
                idle_sleep: Duration::ZERO,
                lane_ports: None,
                // Without a flood the benchmark sends data messages only:
                // no handshake reaches the gate that checks mac1 with it.
                public_key: gate.map_or(PublicKey::from_bytes([0; 32]), |g| g.public_key),
                // As `dpdk.staging_budget`'s default for a 4096-mbuf pool
                // (the benchmark's peers have sessions: nothing waits).
                staging_budget: 1024,
                mss_clamp: None,
                icmp_rate: IcmpRate::KERNEL,
                batch,
            },
            WorkerQueues {
                tun_rx: e(tun_w.rx_queue(qi))?,
                tun_tx: e(tun_w.tx_queue(qi))?,
                plain_rx: e(plain_w.rx_queue(qi))?,
                plain_tx: e(plain_w.tx_queue(qi))?,
            },
            WorkerLinks {
                commands: cmd_rx,
                events: ev_tx,
                handshakes: hs_tx,
                handoff_in,
                handoff_out,
                to_workers: cmd_txs.clone(),
                to_control_tun: ct_p,
                to_control_plain: cp_p,
                relay_tun: None,
                relay_plain: None,
            },
            pool,
            clock,
            counters.clone(),
            WorkerNets {
                tun_port: tun_w.id(),
                tun: port_net(
                    traffic::WGDP_TUN_MAC,
                    IpAddr::V4(traffic::WGDP_TUN),
                    Some(traffic::GATEWAY),
                ),
                plain: port_net(
                    traffic::WGDP_PLAIN_MAC,
                    IpAddr::V4(traffic::WGDP_PLAIN),
                    None,
                ),
            },
            e(reassembly_table(eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT))?,
        );
        if let Some(g) = gate {
            cmd_tx
                .send(Command::CookieSecret(Box::new(g.secret.clone())))
                .map_err(|_| "command channel closed")?;
        }
        for cmd in [
            Command::SetRoutes(routes.clone()),
            Command::Neighbour {
                port: PortSide::Tunnel,
                ip: IpAddr::V4(traffic::GATEWAY),
                mac: traffic::GATEWAY_MAC,
            },
            Command::Neighbour {
                port: PortSide::Plaintext,
                ip: IpAddr::V4(traffic::LAN_HOST),
                mac: traffic::LAN_MAC,
            },
        ] {
            cmd_tx.send(cmd).map_err(|_| "command channel closed")?;
        }
        harness.feeds.push(Feed {
            tun_tx: e(tun_h.tx_queue(qi))?,
            tun_rx: e(tun_h.rx_queue(qi))?,
            plain_tx: e(plain_h.tx_queue(qi))?,
            plain_rx: e(plain_h.rx_queue(qi))?,
        });
        harness.counters.push(counters);
        harness.commands.push(cmd_tx);
        harness.events.push(ev_rx);
        harness.control.push(ct_c);
        harness.control.push(cp_c);
        built.push(worker);
    }
    // Peers, then their keypairs, through the owner's command channel.
    for (p, k) in keys.into_iter().enumerate() {
        let p = p as u32;
        let w = owner(p, workers);
        harness.owned[w].push(p);
        let endpoint: SocketAddr = traffic::peer_endpoint(p);
        let cmds = [
            Command::AddPeer {
                id: p,
                state: Box::new(PeerState::new(
                    Arc::new(PeerShared::default()),
                    Some(endpoint),
                )),
            },
            Command::InstallKeypair {
                id: p,
                keypair: Box::new(k.wgdp),
            },
        ];
        for cmd in cmds {
            harness.commands[w]
                .send(cmd)
                .map_err(|_| "command channel closed")?;
        }
        harness.peer_keys.push(k.peer);
    }

    let stop = AtomicBool::new(false);
    let jobs: Vec<(u32, Job<'_, ()>)> = built
        .into_iter()
        .zip(lcores)
        .map(|(w, &l)| {
            let stop = &stop;
            (l, Box::new(move || w.run(stop)) as Job<'_, ()>)
        })
        .collect();
    let result = std::thread::scope(|s| {
        // Named, so that a run on a busy machine can give it a real-time
        // priority (`chrt`; see BENCHMARKS.md's flood section).
        let driver = std::thread::Builder::new()
            .name(HARNESS_THREAD.into())
            .spawn_scoped(s, || {
                let r = harness
                    .installed(peers as u64)
                    .and_then(|()| drive(&mut harness));
                stop.store(true, Ordering::Relaxed);
                harness.drain();
                r
            })
            .map_err(|e| format!("the harness thread: {e}"))?;
        let launched = launch_and_join(eal, jobs);
        let r = driver
            .join()
            .unwrap_or_else(|_| Err("the harness panicked".into()));
        for l in launched {
            l.map_err(|e| e.to_string())?;
        }
        r
    });
    result
}

impl Harness<'_> {
    /// Waits until every worker has installed its peers' keypairs (each
    /// install sends the initiator's confirming keepalive), draining the
    /// keepalives.
    fn installed(&mut self, peers: u64) -> Result<(), String> {
        let start = std::time::Instant::now();
        loop {
            self.drain();
            let sent: u64 = self
                .counters
                .iter()
                .map(|c| c.events(Event::KeepaliveTx))
                .sum();
            if sent >= peers {
                self.drain();
                return Ok(());
            }
            if start.elapsed() > TIMEOUT {
                return Err(format!(
                    "only {sent} of {peers} keypairs installed after {TIMEOUT:?}"
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Frees everything the workers sent, and drains the event queues.
    pub(super) fn drain(&mut self) {
        let mut b: Burst = Burst::new();
        for f in &mut self.feeds {
            while f.tun_rx.rx_burst(&mut b) > 0 {
                b.clear();
            }
            while f.plain_rx.rx_burst(&mut b) > 0 {
                b.clear();
            }
        }
        for c in &mut self.control {
            while c.dequeue_burst(&mut b) > 0 {
                b.clear();
            }
        }
        for e in &self.events {
            while e.try_recv().is_ok() {}
        }
    }

    /// Workers in this phase.
    pub fn workers(&self) -> usize {
        self.feeds.len()
    }

    /// The TSC frequency.
    pub fn tsc_hz(&self) -> u64 {
        self.tsc_hz
    }

    /// Builds one worker's batch: `n` packets per input port, and the
    /// flood's handshake frames among the tunnel port's.
    fn batch(
        &mut self,
        w: usize,
        dir: Direction,
        mix: &Mix,
        n: usize,
    ) -> Result<(Vec<Mbuf>, Vec<Mbuf>), String> {
        let owned = &self.owned[w];
        if owned.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let now = self.clock.now();
        let mut plain = Vec::new();
        let mut sealed = Vec::new();
        for k in 0..n {
            let p = owned[(self.cursor + k) % owned.len()];
            let len = mix.size(k);
            if dir != Direction::Decap {
                let mut m = self.pool.alloc().ok_or("the mempool is empty")?;
                traffic::plaintext_frame(&mut m, p, len).map_err(|e| e.to_string())?;
                plain.push(m);
            }
            if dir != Direction::Encap {
                let mut m = self.pool.alloc().ok_or("the mempool is empty")?;
                let kp = &mut self.peer_keys[p as usize];
                traffic::sealed_frame(&mut m, p, kp, len, now).map_err(|e| e.to_string())?;
                sealed.push(m);
                if let Some(flood) = &mut self.interleave {
                    for frame in flood.after(w, k) {
                        let mut m = self.pool.alloc().ok_or("the mempool is empty")?;
                        m.append(frame.len() as u16)
                            .map_err(|_| "an mbuf has no room for a handshake")?
                            .copy_from_slice(frame);
                        sealed.push(m);
                    }
                }
            }
        }
        Ok((plain, sealed))
    }

    /// Feeds one batch of `n` packets per worker and input port without
    /// timing it; returns how many frames went in (see [`finished`]).
    ///
    /// [`finished`]: Self::finished
    pub(super) fn feed(&mut self, dir: Direction, mix: &Mix, n: usize) -> Result<u64, String> {
        let mut fed = 0;
        for w in 0..self.workers() {
            let (plain, sealed) = self.batch(w, dir, mix, n)?;
            fed += (plain.len() + sealed.len()) as u64;
            let f = &mut self.feeds[w];
            send_all(&mut f.plain_tx, plain)?;
            send_all(&mut f.tun_tx, sealed)?;
        }
        self.cursor = self.cursor.wrapping_add(n);
        Ok(fed)
    }

    /// Frames the workers are done with so far, forwarded or not.
    pub(super) fn finished(&self, dir: Direction) -> u64 {
        self.counters.iter().map(|c| dir.done(c) + lost(c)).sum()
    }

    /// Times one batch of `n` packets per worker and input port. A batch
    /// the harness could not time (it slept through it: the machine is
    /// busy) is run again, a few times.
    pub fn run(&mut self, dir: Direction, mix: &Mix, n: usize) -> Result<Sample, String> {
        for _ in 0..ATTEMPTS {
            if let Some(s) = self.try_run(dir, mix, n)? {
                return Ok(s);
            }
        }
        Err(format!(
            "{} batch: none of {ATTEMPTS} tries could be timed (the harness slept through them; is the machine overloaded?)",
            dir.name()
        ))
    }

    /// One batch; `None` when it ended before the harness could time it.
    fn try_run(&mut self, dir: Direction, mix: &Mix, n: usize) -> Result<Option<Sample>, String> {
        let workers = self.workers();
        let mut batches = Vec::with_capacity(workers);
        for w in 0..workers {
            batches.push(self.batch(w, dir, mix, n)?);
        }
        self.cursor = self.cursor.wrapping_add(n);
        let expect: u64 = batches
            .iter()
            .map(|(a, b)| (a.len() + b.len()) as u64)
            .sum();
        // The data packets of each worker (the flood's frames are not).
        let data: Vec<u64> = batches
            .iter()
            .map(|(a, b)| match dir {
                Direction::Encap => a.len(),
                Direction::Decap => n.min(b.len()),
                Direction::RoundTrip => a.len() + n.min(b.len()),
            } as u64)
            .collect();
        let mark = self.mark(dir);
        for (f, (plain, sealed)) in self.feeds.iter_mut().zip(batches) {
            send_all(&mut f.plain_tx, plain)?;
            send_all(&mut f.tun_tx, sealed)?;
        }
        let start = std::time::Instant::now();
        let mut window = Window::new(data);
        loop {
            if self.finished_since(&mark) >= expect {
                self.drain();
                return Ok(None);
            }
            if window.observe(self, &mark) {
                break;
            }
            if start.elapsed() > TIMEOUT {
                return Err(format!("{} batch not done after {TIMEOUT:?}", dir.name()));
            }
            self.pause();
        }
        // Wait for the rest, counting drops as done.
        while self.finished_since(&mark) < expect {
            if start.elapsed() > TIMEOUT {
                return Err(format!(
                    "{} batch not drained after {TIMEOUT:?}",
                    dir.name()
                ));
            }
            self.pause();
        }
        self.drain();
        window.sample(self.lost_since(&mark)).map(Some)
    }

    /// The workers' counters before a batch of `dir`, to measure it from.
    pub(super) fn mark(&self, dir: Direction) -> Mark {
        Mark {
            dir,
            done: self.counters.iter().map(|c| dir.done(c)).collect(),
            lost: self.counters.iter().map(|c| lost(c)).collect(),
        }
    }

    /// Data packets each worker forwarded since `mark`.
    fn progress(&self, mark: &Mark) -> Vec<u64> {
        self.counters
            .iter()
            .zip(&mark.done)
            .map(|(c, b)| mark.dir.done(c) - b)
            .collect()
    }

    /// Packets the workers lost (see [`lost`]) since `mark`.
    pub(super) fn lost_since(&self, mark: &Mark) -> u64 {
        self.counters
            .iter()
            .zip(&mark.lost)
            .map(|(c, l)| lost(c) - l)
            .sum()
    }

    /// Packets the workers are done with since `mark`, forwarded or lost.
    pub(super) fn finished_since(&self, mark: &Mark) -> u64 {
        self.finished_each(mark).iter().sum()
    }

    /// Packets each worker is done with since `mark`, forwarded or lost.
    pub(super) fn finished_each(&self, mark: &Mark) -> Vec<u64> {
        self.progress(mark)
            .iter()
            .zip(self.counters.iter().zip(&mark.lost))
            .map(|(done, (c, l))| done + lost(c) - l)
            .collect()
    }

    /// TSC cycles per worker-loop stage so far, all workers.
    fn stages(&self) -> [u64; Stage::COUNT] {
        std::array::from_fn(|i| {
            self.counters
                .iter()
                .map(|c| c.stage_cycles(Stage::ALL[i]))
                .sum()
        })
    }

    /// Waits between two looks at the counters: a short spin where the
    /// harness has a CPU of its own (`spin`), else a sleep of `nap`
    /// ([`POLL`] unless a run asks for shorter) that leaves the CPU to the
    /// worker sharing it.
    pub(super) fn pause(&self) {
        if self.spin {
            let until = rdtsc() + self.tsc_hz / 1_000_000 * SPIN_US;
            while rdtsc() < until {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(self.nap);
        }
    }
}

/// The counters a batch is measured from.
pub(super) struct Mark {
    dir: Direction,
    done: Vec<u64>,
    lost: Vec<u64>,
}

/// The timing window of one batch: it opens when every worker with data
/// packets is 5 % through them (warmed up) and closes when the first is
/// 85 % through (all still busy); the figure is the packets forwarded
/// inside it over its TSC cycles.
pub(super) struct Window {
    /// Data packets each worker gets in the batch.
    data: Vec<u64>,
    open: Option<(u64, Vec<u64>, [u64; Stage::COUNT])>,
    closed: Option<(u64, Vec<u64>, [u64; Stage::COUNT])>,
}

impl Window {
    /// A window over batches of `data` data packets per worker.
    pub(super) fn new(data: Vec<u64>) -> Self {
        Self {
            data,
            open: None,
            closed: None,
        }
    }

    /// Whether the window has opened (every worker warmed up).
    pub(super) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Whether the window has closed (its figure is known).
    pub(super) fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Looks at the workers' progress since `mark`; true once closed.
    pub(super) fn observe(&mut self, h: &Harness<'_>, mark: &Mark) -> bool {
        if self.closed.is_some() {
            return true;
        }
        let t = rdtsc();
        let done = h.progress(mark);
        let frac = |i: usize| done[i] as f64 / self.data[i].max(1) as f64;
        let mut busy = (0..self.data.len()).filter(|&i| self.data[i] > 0);
        match self.open {
            None if busy.all(|i| frac(i) >= 0.05) => self.open = Some((t, done, h.stages())),
            Some(_) if busy.any(|i| frac(i) >= 0.85) => {
                self.closed = Some((t, done, h.stages()));
                return true;
            }
            _ => {}
        }
        false
    }

    /// The sample of a closed window, `drops` packets lost in the batch.
    pub(super) fn sample(&self, drops: u64) -> Result<Sample, String> {
        let (Some((t0, c0, s0)), Some((t1, c1, s1))) = (&self.open, &self.closed) else {
            return Err("the timing window never closed".into());
        };
        Ok(Sample {
            packets: c1.iter().zip(c0).map(|(a, b)| a - b).sum(),
            cycles: t1 - t0,
            drops,
            stages: std::array::from_fn(|i| s1[i] - s0[i]),
        })
    }
}

/// A DPDK error as the harness reports it.
fn e<T>(r: Result<T, dpdk_sys::rte::RteError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// Transmits every mbuf into a harness TX queue (the worker's RX ring).
fn send_all(q: &mut dpdk_sys::rte::TxQueue<'_>, mbufs: Vec<Mbuf>) -> Result<(), String> {
    let mut b: Burst = Burst::new();
    for m in mbufs {
        if let Err(m) = b.push(m) {
            flush(q, &mut b)?;
            b.push(m)
                .map_err(|_| "a burst refused an mbuf after a flush")?;
        }
    }
    flush(q, &mut b)
}

/// Transmits a whole burst into a harness TX queue, or fails.
pub(super) fn flush(q: &mut dpdk_sys::rte::TxQueue<'_>, b: &mut Burst) -> Result<(), String> {
    let want = b.len();
    let sent = q.tx_burst(b);
    if sent < want {
        b.clear();
        return Err(format!(
            "the RX ring took {sent} of {want} packets: batch too large"
        ));
    }
    Ok(())
}
