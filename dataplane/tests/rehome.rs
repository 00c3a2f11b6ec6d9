//! Two real workers on two lcores, between `net_ring` port pairs with a
//! queue per worker (the test picks the queue, as RSS would): a peer owned
//! by worker 0 whose packets keep arriving at worker 1 is learned there and
//! re-homed, with its keypairs, counters and replay window, losing and
//! repeating nothing. The test plays the control thread's part (releasing
//! on `ArrivesAt`, publishing routes on `Adopted`).

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use common::*;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use dataplane::clock::TscClock;
use dataplane::command::{Command, PortSide, WorkerEvent};
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::peer::{PeerShared, PeerState};
use dataplane::route::{make_index, RouteTable};
use dataplane::wire::ethernet;
use dataplane::worker::{Worker, WorkerLinks, WorkerNets, WorkerQueues};
use dpdk_sys::rte::lcore::Job;
use dpdk_sys::rte::testing::{eal, unique};
use dpdk_sys::rte::{mbuf_ring, rdtsc, Burst, Mempool, Port, PortConfig, RxQueue, TxQueue};
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::time::Instant;
use protocol::transport::Keypair;

const WORKERS: usize = 2;

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
struct Rig<'p> {
    pool: &'p Mempool,
    tun_tx: Vec<TxQueue<'p>>,
    tun_rx: Vec<RxQueue<'p>>,
    plain_tx: Vec<TxQueue<'p>>,
    plain_rx: Vec<RxQueue<'p>>,
    commands: Vec<Sender<Command>>,
    events: Receiver<WorkerEvent>,
    counters: Vec<Arc<WorkerCounters>>,
    allowed: AllowedIps<u32>,
    owner: usize,
    moves: usize,
}

impl Rig<'_> {
    fn send(&mut self, side: PortSide, queue: usize, frame: &[u8]) {
        let q = match side {
            PortSide::Tunnel => &mut self.tun_tx[queue],
            PortSide::Plaintext => &mut self.plain_tx[queue],
        };
        inject(self.pool, q, frame);
    }

    /// What comes out of `side`, with the queue: until `want` frames came
    /// (then `settle` more for any extra), or `wait` passed.
    fn collect(&mut self, side: PortSide, want: usize, wait: Duration) -> Vec<(usize, Vec<u8>)> {
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
    fn control(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            match ev {
                WorkerEvent::ArrivesAt(0, to) if to != self.owner => {
                    self.commands[self.owner]
                        .send(Command::Release { id: 0, to })
                        .expect("command");
                }
                WorkerEvent::Adopted(0, at) => {
                    self.owner = at;
                    self.moves += 1;
                    self.routes();
                }
                _ => {}
            }
        }
    }

    fn routes(&self) {
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
    fn dump(&self) {
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

    fn total(&self, read: impl Fn(&WorkerCounters) -> u64) -> u64 {
        self.counters.iter().map(|c| read(c)).sum()
    }

    /// Waits until the sum of a counter over the workers reaches `want`.
    fn wait_total(&mut self, read: impl Fn(&WorkerCounters) -> u64, want: u64) -> u64 {
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
/// installed there with an index naming worker 0, while `drive` runs.
fn two_workers(drive: impl FnOnce(&mut Rig<'_>, &mut Keypair) + Send) {
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

    let (ev_tx, ev_rx) = bounded(1024);
    let (hs_tx, _hs_rx) = bounded(64);
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
            worker_config(i, WORKERS),
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
                tun: net(WGDP_TUN_MAC, WGDP_TUN),
                plain: net(WGDP_PLAIN_MAC, std::net::Ipv4Addr::new(10, 0, 0, 1)),
            },
        ));
    }
    drop((ev_tx, hs_tx, ho_p, ct_p, cp_p));
    let mut allowed = AllowedIps::new();
    allowed.insert(Prefix::new(IpAddr::V4(PEER_INNER), 32).unwrap(), 0);
    let endpoint = SocketAddr::new(IpAddr::V4(PEER_EP), PEER_PORT);
    cmd_tx[0]
        .send(Command::AddPeer {
            id: 0,
            state: Box::new(PeerState::new(
                Arc::new(PeerShared::default()),
                Some(endpoint),
            )),
        })
        .unwrap();
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

/// The sequence number a test packet carries (its UDP payload).
fn seq(frame: &[u8]) -> u32 {
    let p = &frame[frame.len() - 4..];
    u32::from_be_bytes([p[0], p[1], p[2], p[3]])
}

#[test]
fn a_peer_moves_to_the_worker_its_packets_arrive_on_losing_and_repeating_nothing() {
    two_workers(|rig, kp| {
        use PortSide::{Plaintext, Tunnel};
        const N: u32 = 200;
        // The peer's packets all arrive on worker 1's queue (RSS), while
        // worker 0 owns it: the first are handed off, then it moves.
        let mut sealed = Vec::new();
        for i in 0..N {
            let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &i.to_be_bytes());
            let f = sealed_frame(kp, &inner);
            rig.send(Tunnel, 1, &f);
            sealed.push(f);
            rig.control();
            if i % 16 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let out = rig.collect(Plaintext, N as usize, Duration::from_secs(10));
        let got: BTreeSet<u32> = out.iter().map(|(_, f)| seq(f)).collect();
        rig.dump();
        assert_eq!(out.len(), N as usize, "each packet delivered once");
        assert_eq!(got, (0..N).collect(), "none lost");
        assert_eq!(rig.moves, 1, "re-homed once");
        assert_eq!(rig.owner, 1, "owned where its packets arrive");
        let counters = rig.counters.clone();
        let c = |w: usize, e: Event| counters[w].events(e);
        assert_eq!(
            (c(0, Event::PeersReleased), c(1, Event::PeersAdopted)),
            (1, 1)
        );
        assert!(c(1, Event::TunnelHandoff) >= 32, "handed off until learned");
        assert!(
            c(1, Event::TunnelInline) > 0,
            "then handled where it arrives, old index and all"
        );
        assert_eq!(rig.total(|c| c.drops(DropReason::PeerGone)), 0);
        println!(
            "worker 1: {} handed off, {} inline; worker 0 forwarded {}",
            c(1, Event::TunnelHandoff),
            c(1, Event::TunnelInline),
            c(0, Event::Forwarded)
        );

        // Replays, through either worker, meet the moved replay window.
        for (i, f) in sealed.iter().enumerate() {
            rig.send(Tunnel, i % WORKERS, f);
        }
        let replays = rig.wait_total(|c| c.drops(DropReason::Replay), u64::from(N));
        assert_eq!(replays, u64::from(N), "every replay refused");
        assert!(rig
            .collect(Plaintext, 0, Duration::from_millis(100))
            .is_empty());

        // A stray packet through worker 0 does not move the peer back.
        let inner = ipv4_udp(PEER_INNER, LAN_HOST, 64, &N.to_be_bytes());
        rig.send(Tunnel, 0, &sealed_frame(kp, &inner));
        let out = rig.collect(Plaintext, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1);
        assert_eq!((rig.moves, rig.owner), (1, 1));

        // LAN traffic reaching worker 0 goes to the new owner, and the
        // peer opens it: the send counter moved too.
        for i in 0..4u32 {
            let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, &i.to_be_bytes());
            rig.send(
                Plaintext,
                (i % 2) as usize,
                &ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan),
            );
        }
        let out = rig.collect(Tunnel, 4, Duration::from_secs(5));
        assert_eq!(out.len(), 4);
        for (q, mut f) in out {
            assert_eq!(q, 1, "sent by the owner, on its queue");
            let msg = &mut f[14 + 20 + 8..];
            let plain = kp
                .open_message(Instant::ZERO, msg)
                .expect("the peer opens it");
            assert_eq!(plain[0] >> 4, 4);
        }
        assert_eq!(c(0, Event::PlaintextHandoff), 2);
        assert_eq!(c(1, Event::PlaintextInline), 2);
    });
}
