//! Two real workers on two lcores, between `net_ring` port pairs with a
//! queue per worker (the test picks the queue, as RSS would), and the test
//! playing the control thread's part: what the re-homing and the
//! multi-lane tests share.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use super::*;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use dataplane::clock::TscClock;
use dataplane::command::{Command, PortSide, WorkerEvent};
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::peer::{PeerShared, PeerState};
use dataplane::route::{make_index, RouteTable};
use dataplane::worker::{Worker, WorkerLinks, WorkerNets, WorkerQueues};
use dpdk_sys::rte::lcore::Job;
use dpdk_sys::rte::testing::{eal, unique};
use dpdk_sys::rte::{mbuf_ring, rdtsc, Burst, Mempool, Port, PortConfig, RxQueue, TxQueue};
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::transport::Keypair;

/// The tunnel port's lane ports in the multi-lane runs: worker i sends
/// from `LANE_PORTS.0 + i`.
pub const LANE_PORTS: (u16, u16) = (51830, 51831);

pub const WORKERS: usize = 2;

fn pair(pool: &Mempool) -> (Port, Port) {
    let (mut a, mut b) =
        Port::ring_pair(eal(), &unique("rh"), WORKERS as u16, 1024).expect("ring pair");
    for p in [&mut a, &mut b] {
        let cfg = PortConfig {
            rx_queues: WORKERS as u16,
            tx_queues: WORKERS as u16,
            ..PortConfig::default()
        };
        p.configure(&cfg, pool).expect("configure");
        p.start().expect("start");
    }
    (a, b)
}

/// The test's ends of both ports (queue q reaches worker q), and what it
/// needs to play the control thread.
pub struct Rig<'p> {
    pub pool: &'p Mempool,
    pub tun_tx: Vec<TxQueue<'p>>,
    pub tun_rx: Vec<RxQueue<'p>>,
    pub plain_tx: Vec<TxQueue<'p>>,
    pub plain_rx: Vec<RxQueue<'p>>,
    pub commands: Vec<Sender<Command>>,
    pub events: Receiver<WorkerEvent>,
    pub counters: Vec<Arc<WorkerCounters>>,
    pub allowed: AllowedIps<u32>,
    pub owner: usize,
    pub moves: usize,
    /// A move was asked for and not yet reported done.
    moving: bool,
    /// The handshake messages the workers queued for the control thread.
    pub handshakes: Receiver<dataplane::command::HandshakeMessage>,
}

impl Rig<'_> {
    pub fn send(&mut self, side: PortSide, queue: usize, frame: &[u8]) {
        let q = match side {
            PortSide::Tunnel => &mut self.tun_tx[queue],
            PortSide::Plaintext => &mut self.plain_tx[queue],
        };
        inject(self.pool, q, frame);
    }

    /// What comes out of `side`, with the queue: until `want` frames came
    /// (then `settle` more for any extra), or `wait` passed.
    pub fn collect(
        &mut self,
        side: PortSide,
        want: usize,
        wait: Duration,
    ) -> Vec<(usize, Vec<u8>)> {
        let settle = Duration::from_millis(50);
        let mut deadline = StdInstant::now() + wait;
        let mut out = Vec::new();
        let mut b: Burst = Burst::new();
        while StdInstant::now() < deadline {
            if want > 0 && out.len() >= want {
                deadline = deadline.min(StdInstant::now() + settle);
            }
            self.control();
            let queues = match side {
                PortSide::Tunnel => &mut self.tun_rx,
                PortSide::Plaintext => &mut self.plain_rx,
            };
            for (q, rx) in queues.iter_mut().enumerate() {
                rx.rx_burst(&mut b);
                out.extend(b.drain().map(|m| (q, m.data().to_vec())));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        out
    }

    /// The control thread's part of re-homing.
    pub fn control(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            match ev {
                // One move at a time, as the control thread does: the owner
                // repeats its ask every 32 packets until the move is done.
                WorkerEvent::ArrivesAt(0, to) if to != self.owner && !self.moving => {
                    self.moving = true;
                    self.commands[self.owner]
                        .send(Command::Release { id: 0, to })
                        .expect("command");
                }
                WorkerEvent::Adopted(0, at) => {
                    self.moving = false;
                    if at != self.owner {
                        self.owner = at;
                        self.moves += 1;
                        self.routes();
                    }
                }
                _ => {}
            }
        }
    }

    pub fn routes(&self) {
        let table = Arc::new(RouteTable {
            allowed: self.allowed.clone(),
            owners: vec![self.owner as u16],
            groups: Vec::new(),
        });
        for c in &self.commands {
            c.send(Command::SetRoutes(table.clone())).expect("command");
        }
    }

    /// Prints every non-zero counter of each worker.
    pub fn dump(&self) {
        for (w, c) in self.counters.iter().enumerate() {
            let drops = DropReason::ALL.iter().map(|&r| (r.label(), c.drops(r)));
            let events = Event::ALL.iter().map(|&e| (e.label(), c.events(e)));
            let shown: Vec<String> = drops
                .chain(events)
                .filter(|(_, n)| *n > 0)
                .map(|(l, n)| format!("{l}={n}"))
                .collect();
            println!("worker {w}: {}", shown.join(" "));
        }
    }

    pub fn total(&self, read: impl Fn(&WorkerCounters) -> u64) -> u64 {
        self.counters.iter().map(|c| read(c)).sum()
    }

    /// Plaintext frames taken off the test's ends, without playing the
    /// control thread (its events stay in the channel for the test to
    /// read).
    pub fn drain_plain(&mut self) -> usize {
        let mut b: Burst = Burst::new();
        let mut n = 0;
        for rx in &mut self.plain_rx {
            rx.rx_burst(&mut b);
            n += b.drain().count();
        }
        n
    }

    /// Waits (draining plaintext, leaving the events) until the workers'
    /// `read` counters sum to `want`; returns the sum.
    pub fn wait_quietly(&mut self, read: impl Fn(&WorkerCounters) -> u64, want: u64) -> u64 {
        let deadline = StdInstant::now() + Duration::from_secs(10);
        loop {
            self.drain_plain();
            let got = self.total(&read);
            if got >= want || StdInstant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the sum of a counter over the workers reaches `want`.
    pub fn wait_total(&mut self, read: impl Fn(&WorkerCounters) -> u64, want: u64) -> u64 {
        let deadline = StdInstant::now() + Duration::from_secs(10);
        loop {
            self.control();
            let got = self.total(&read);
            if got >= want || StdInstant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Runs two workers with one peer (slot 0) owned by worker 0, its keypair
/// installed there with an index naming worker 0, while `drive` runs. With
/// `lanes` above 1 the peer is a multi-lane one (its keypair shared, the
/// workers given [`LANE_PORTS`]).
pub fn two_workers(lanes: u16, drive: impl FnOnce(&mut Rig<'_>, &mut Keypair) + Send) {
    two_workers_vlan(lanes, None, drive);
}

/// [`two_workers`] with both ports running as VLAN `vlan` (`vlan = N`).
pub fn two_workers_vlan(
    lanes: u16,
    vlan: Option<u16>,
    drive: impl FnOnce(&mut Rig<'_>, &mut Keypair) + Send,
) {
    let eal = eal();
    let lcores = eal.worker_lcores();
    assert!(
        lcores.len() >= WORKERS,
        "the test EAL has two worker lcores"
    );
    let pool = Mempool::new(eal, &unique("rp"), 4095, 0, 2176).expect("pool");
    let (tun_w, tun_t) = pair(&pool);
    let (plain_w, plain_t) = pair(&pool);
    let (kp_wgdp, kp_peer) = handshake(false, make_index(0x5eed_0000, 0, WORKERS));
    let kp_wgdp = if lanes > 1 {
        kp_wgdp.into_lanes()
    } else {
        kp_wgdp
    };

    let (ev_tx, ev_rx) = bounded(1024);
    let (hs_tx, hs_rx) = bounded(64);
    let (cmd_tx, cmd_rx): (Vec<_>, Vec<_>) = (0..WORKERS).map(|_| unbounded()).unzip();
    let (ho_p, ho_c): (Vec<_>, Vec<_>) = (0..WORKERS)
        .map(|_| mbuf_ring(eal, &unique("rho"), 1024).expect("ring"))
        .unzip();
    let (ct_p, _ct_c) = mbuf_ring(eal, &unique("rct"), 64).expect("ring");
    let (cp_p, _cp_c) = mbuf_ring(eal, &unique("rcp"), 64).expect("ring");
    let counters: Vec<Arc<WorkerCounters>> = (0..WORKERS).map(|_| Arc::default()).collect();
    let mut workers = Vec::new();
    for (i, (commands, handoff_in)) in cmd_rx.into_iter().zip(ho_c).enumerate() {
        let q = i as u16;
        workers.push(Worker::new(
            WorkerConfig {
                lane_ports: (lanes > 1).then_some(LANE_PORTS),
                ..worker_config(i, WORKERS)
            },
            WorkerQueues {
                tun_rx: tun_w.rx_queue(q).unwrap(),
                tun_tx: tun_w.tx_queue(q).unwrap(),
                plain_rx: plain_w.rx_queue(q).unwrap(),
                plain_tx: plain_w.tx_queue(q).unwrap(),
            },
            WorkerLinks {
                commands,
                events: ev_tx.clone(),
                handshakes: hs_tx.clone(),
                handoff_in,
                handoff_out: (0..WORKERS)
                    .map(|j| (j != i).then(|| ho_p[j].clone()))
                    .collect(),
                to_workers: cmd_tx.clone(),
                to_control_tun: ct_p.clone(),
                to_control_plain: cp_p.clone(),
                relay_tun: None,
                relay_plain: None,
            },
            &pool,
            TscClock::new(rdtsc(), eal.tsc_hz()),
            counters[i].clone(),
            WorkerNets {
                tun_port: tun_w.id(),
                tun: dataplane::route::PortNet {
                    vlan,
                    ..dual_stack(net(WGDP_TUN_MAC, WGDP_TUN))
                },
                plain: dataplane::route::PortNet {
                    vlan,
                    ..net(WGDP_PLAIN_MAC, std::net::Ipv4Addr::new(10, 0, 0, 1))
                },
            },
            reassembly_table(eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT).expect("reassembly table"),
        ));
    }
    drop((ev_tx, hs_tx, ho_p, ct_p, cp_p));
    let mut allowed = AllowedIps::new();
    allowed.insert(Prefix::new(IpAddr::V4(PEER_INNER), 32).unwrap(), 0);
    let endpoint = SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT);
    let mut state = Box::new(PeerState::new(
        Arc::new(PeerShared::default()),
        Some(endpoint),
    ));
    state.lanes = lanes;
    cmd_tx[0].send(Command::AddPeer { id: 0, state }).unwrap();
    cmd_tx[0]
        .send(Command::InstallKeypair {
            id: 0,
            keypair: Box::new(kp_wgdp),
        })
        .unwrap();
    for c in &cmd_tx {
        for (port, ip, mac) in [
            (PortSide::Tunnel, IpAddr::V4(PEER_EP), PEER_MAC),
            (PortSide::Plaintext, IpAddr::V4(LAN_HOST), LAN_MAC),
        ] {
            c.send(Command::Neighbour { port, ip, mac }).unwrap();
        }
    }
    let (mut tun_tx, mut tun_rx, mut plain_tx, mut plain_rx) = (vec![], vec![], vec![], vec![]);
    for q in 0..WORKERS as u16 {
        tun_tx.push(tun_t.tx_queue(q).unwrap());
        tun_rx.push(tun_t.rx_queue(q).unwrap());
        plain_tx.push(plain_t.tx_queue(q).unwrap());
        plain_rx.push(plain_t.rx_queue(q).unwrap());
    }
    let rig = Rig {
        pool: &pool,
        tun_tx,
        tun_rx,
        plain_tx,
        plain_rx,
        commands: cmd_tx,
        events: ev_rx,
        counters,
        allowed,
        owner: 0,
        moves: 0,
        moving: false,
        handshakes: hs_rx,
    };
    rig.routes();

    let stop = AtomicBool::new(false);
    let jobs: Vec<(u32, Job<'_, ()>)> = workers
        .into_iter()
        .zip(lcores)
        .map(|(w, l)| {
            let stop = &stop;
            let job: Job<'_, ()> = Box::new(move || w.run(stop));
            (l, job)
        })
        .collect();
    run_workers(eal, jobs, &stop, (rig, kp_peer), |(rig, kp)| drive(rig, kp));
    drop((tun_w, tun_t, plain_w, plain_t));
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
}

/// `net` with [`WGDP_TUN2`]/24 and [`WGDP_TUN6`]/64 as well.
fn dual_stack(mut net: dataplane::route::PortNet) -> dataplane::route::PortNet {
    for (addr, prefix_len) in [(IpAddr::V4(WGDP_TUN2), 24), (IpAddr::V6(WGDP_TUN6), 64)] {
        net.addresses
            .push(dataplane::route::IfAddr { addr, prefix_len });
    }
    net
}

/// The frame sent to our UDP port `port` instead (a lane port, say;
/// checksum left out, as IPv4 allows).
pub fn to_port(frame: &[u8], port: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&port.to_be_bytes());
    f[14 + 20 + 6..14 + 20 + 8].fill(0);
    f
}

/// The sequence number a test packet carries (its UDP payload).
pub fn seq(frame: &[u8]) -> u32 {
    let p = &frame[frame.len() - 4..];
    u32::from_be_bytes([p[0], p[1], p[2], p[3]])
}
