//! wgdp in one process for measurements and tests (issue #25): one real
//! [`Worker`] on a worker lcore and the real [`Control`] thread, with its
//! handshake threads, between two `net_ring` port pairs. The caller plays
//! the network from the ports' far ends ([`Network`]): what it sends into
//! the tunnel port goes through the worker's handshake gate and the
//! control thread's handshake queue as in `wgdp run`; the control thread's
//! responses come out of the tunnel port's far end, the worker's decrypted
//! packets out of the plaintext port's.
//!
//! What differs from `wgdp run`: ring ports instead of NICs and TAPs, the
//! gateway's and the LAN host's MACs given instead of resolved by ARP, no
//! UAPI socket, metrics or telemetry.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded};
use dataplane::batch_policy::Batching;
use dataplane::clock::TscClock;
use dataplane::command::{Command, HandshakeMessage, PortSide};
use dataplane::counters::WorkerCounters;
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::icmp::IcmpRate;
use dataplane::outer::{self, Outer};
use dataplane::route::{IfAddr, PortNet};
use dataplane::worker::{Worker, WorkerConfig, WorkerLinks, WorkerNets, WorkerQueues};
use dpdk_sys::rte::lcore::{launch_run_join, Job};
use dpdk_sys::rte::{
    mbuf_ring, rdtsc, Burst, Eal, Mempool, Port, PortConfig, RingConsumer, RteError, RxQueue,
    TxQueue,
};
use protocol::crypto::PrivateKey;
use zeroize::Zeroizing;

use crate::control::{Control, ControlParts, InitialPeer};
use crate::counters::ControlCounters;
use crate::handshake::HANDSHAKE_QUEUE;
use crate::handshake_pool::HandshakePool;
use crate::link::{ControlTx, PortLink};
use crate::neigh::{NeighbourConfig, NeighbourTable};
use crate::show::SnapshotBoard;
use crate::static_statics::StaticStatics;

/// wgdp's tunnel address (the peers' initiations go to it).
pub const WGDP_TUN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The tunnel port's gateway: every peer endpoint is behind it.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
/// wgdp's plaintext address.
pub const WGDP_PLAIN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The LAN host the peers' inner packets go to (on the plaintext link).
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// wgdp's WireGuard port.
pub const LISTEN: u16 = 51820;
/// wgdp's MAC on the tunnel port.
const TUN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
/// The gateway's MAC.
const GATEWAY_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
/// wgdp's MAC on the plaintext port, and the LAN host's.
const PLAIN_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
const LAN_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
/// How long the given next hops stay reachable: longer than any run.
const NEXT_HOPS_KNOWN_FOR: Duration = Duration::from_secs(365 * 86_400);
/// Mbufs of the pool: the rings below full, and room for what is in flight.
const POOL_MBUFS: u32 = 16_383;
/// Slots of each port ring: four times the descriptors `wgdp run` gives a
/// NIC queue. In-process, the worker shares the CPUs with the control
/// thread, the handshake threads and the caller's driver (on a 2-vCPU
/// machine with 1024 slots, a 10k/s flow lost packets while the worker
/// waited for a CPU, not for wgdp's work); a worker that stops polling
/// still loses packets once this much has arrived.
const RING_SLOTS: u32 = 4096;

/// What to run.
pub struct Setup {
    /// wgdp's private key (wiped on drop).
    pub private_key: Zeroizing<[u8; 32]>,
    /// The configured peers.
    pub peers: Vec<InitialPeer>,
    /// Handshake threads (`dpdk.handshake_threads`); 0: the control
    /// thread does the X25519 work.
    pub handshake_threads: usize,
}

/// The network around wgdp, for the caller, while wgdp runs.
pub struct Network<'p> {
    /// Into the tunnel port (the worker's RX): frames from the Internet.
    pub tun_in: TxQueue<'p>,
    /// Out of the tunnel port from the worker (data, cookie replies).
    pub tun_out: RxQueue<'p>,
    /// Out of the tunnel port from the control thread (handshake
    /// responses and initiations, ARP).
    pub tun_control_out: RxQueue<'p>,
    /// Out of the plaintext port from the worker (decrypted packets).
    pub plain_out: RxQueue<'p>,
    /// The mbuf pool the frames sent are taken from.
    pool: &'p Mempool,
    /// The worker's counters.
    pub worker: Arc<WorkerCounters>,
    /// The control thread's counters.
    pub control: Arc<ControlCounters>,
    /// The configured peers' static-static DHs the handshake threads have
    /// computed ahead; `None` without threads.
    pub static_statics: Option<Arc<StaticStatics>>,
}

/// A frame from `src` (behind the gateway) to wgdp's WireGuard port
/// carrying `payload`, as the tunnel port receives it.
pub fn frame_to_wgdp(src: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    let o = Outer {
        src_mac: GATEWAY_MAC,
        dst_mac: TUN_MAC,
        src,
        dst: SocketAddr::new(IpAddr::V4(WGDP_TUN), LISTEN),
        ecn: 0,
    };
    let hlen = outer::header_len(&o.dst);
    let mut f = vec![0u8; hlen + payload.len()];
    f[hlen..].copy_from_slice(payload);
    outer::write(&mut f, &o, false).ok()?;
    Some(f)
}

/// The UDP payload of an IPv4 frame out of the tunnel port and its
/// destination address; `None` for anything else (ARP).
pub fn from_wgdp(frame: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
    // Ethernet (14), IPv4 without options (20, as wgdp writes it), UDP (8).
    if frame.len() < 42 || frame[12..14] != [8, 0] || frame[14] != 0x45 || frame[23] != 17 {
        return None;
    }
    let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
    Some((dst, &frame[42..]))
}

fn port_net(mac: [u8; 6], addr: Ipv4Addr, gateway: Option<Ipv4Addr>) -> PortNet {
    PortNet {
        mac,
        addresses: vec![IfAddr {
            addr: IpAddr::V4(addr),
            prefix_len: 24,
        }],
        gateway_v4: gateway,
        gateway_v6: None,
        vlan: None,
    }
}

/// A DPDK error as the caller's.
fn e<T>(r: Result<T, RteError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// The control thread's link on `port`: its own TX queue (1), `tap` for
/// the exception path.
fn link<'p>(
    side: PortSide,
    port: &'p Port,
    tap: &'p Port,
    net: PortNet,
    from_workers: RingConsumer,
) -> Result<PortLink<'p>, String> {
    Ok(PortLink::new(
        side,
        port,
        net,
        ControlTx::Queue(e(port.tx_queue(1))?),
        (e(tap.rx_queue(0))?, e(tap.tx_queue(0))?),
        from_workers,
        // The next hops are given, and nothing on the rings answers ARP:
        // they stay reachable for the whole run (with the default 30 s
        // an entry goes stale, its probes go unanswered, and the control
        // thread's responses wait for a resolution that never comes).
        NeighbourTable::new(NeighbourConfig {
            reachable_time: NEXT_HOPS_KNOWN_FOR,
            ..NeighbourConfig::default()
        }),
    ))
}

/// A started ring pair: wgdp's end with one RX and two TX queues (the
/// worker's and the control thread's), the far end with as many.
fn ring_pair(eal: &Eal, pool: &Mempool, name: &str) -> Result<(Port, Port), String> {
    let (mut a, mut b) = Port::ring_pair(eal, name, 2, RING_SLOTS).map_err(|e| e.to_string())?;
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        ..PortConfig::default()
    };
    for p in [&mut a, &mut b] {
        p.configure(&cfg, pool).map_err(|e| e.to_string())?;
        p.start().map_err(|e| e.to_string())?;
    }
    Ok((a, b))
}

/// Runs wgdp (the worker on `lcore`, the control thread on the calling
/// thread) while `drive` works the network on a thread of its own; stops
/// both when `drive` returns, and returns what it returned.
pub fn run<T: Send>(
    eal: &Eal,
    lcore: u32,
    setup: Setup,
    drive: impl FnOnce(&mut Network<'_>) -> T + Send,
) -> Result<T, String> {
    static RUN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tag = format!(
        "ip{}x{}",
        std::process::id() % 100_000,
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    let pool =
        Mempool::new(eal, &format!("{tag}p"), POOL_MBUFS, 0, 2176).map_err(|e| e.to_string())?;
    let (tun, tun_far) = ring_pair(eal, &pool, &format!("{tag}t"))?;
    let (plain, plain_far) = ring_pair(eal, &pool, &format!("{tag}l"))?;
    let (tun_tap, _tun_tap_far) = ring_pair(eal, &pool, &format!("{tag}a"))?;
    let (plain_tap, _plain_tap_far) = ring_pair(eal, &pool, &format!("{tag}b"))?;
    let ring = |n: &str| mbuf_ring(eal, &format!("{tag}{n}"), 1024).map_err(|e| e.to_string());
    let (ctl_tun_p, ctl_tun_c) = ring("ct")?;
    let (ctl_plain_p, ctl_plain_c) = ring("cp")?;
    let (_handoff_p, handoff_c) = ring("ho")?;

    // As `wgdp run` (control/src/run.rs): the channels, their capacities.
    let (cmd_tx, cmd_rx) = unbounded::<Command>();
    let (hs_tx, hs_rx) = bounded::<HandshakeMessage>(HANDSHAKE_QUEUE);
    let (ev_tx, ev_rx) = bounded(4096);
    let clock = TscClock::new(rdtsc(), eal.tsc_hz());
    let public_key = PrivateKey::from_bytes(*setup.private_key).public_key();
    let worker_counters = Arc::new(WorkerCounters::default());
    let control_counters = Arc::new(ControlCounters::default());
    let tun_net = port_net(TUN_MAC, WGDP_TUN, Some(GATEWAY));
    let plain_net = port_net(PLAIN_MAC, WGDP_PLAIN, None);
    let worker = Worker::new(
        WorkerConfig {
            index: 0,
            workers: 1,
            listen_port: LISTEN,
            mtu: 1420,
            tx_checksum_offload: false,
            idle_polls: 0,
            idle_sleep: Duration::ZERO,
            public_key,
            lane_ports: None,
            staging_budget: 1024,
            mss_clamp: None,
            icmp_rate: IcmpRate::KERNEL,
            batch: Batching::default(),
        },
        WorkerQueues {
            tun_rx: e(tun.rx_queue(0))?,
            tun_tx: e(tun.tx_queue(0))?,
            plain_rx: e(plain.rx_queue(0))?,
            plain_tx: e(plain.tx_queue(0))?,
        },
        WorkerLinks::alone(
            (cmd_tx.clone(), cmd_rx),
            ev_tx,
            hs_tx,
            handoff_c,
            ctl_tun_p,
            ctl_plain_p,
        ),
        &pool,
        clock,
        worker_counters.clone(),
        WorkerNets {
            tun_port: tun.id(),
            tun: tun_net.clone(),
            plain: plain_net.clone(),
        },
        e(reassembly_table(eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT))?,
    );
    let handshake_pool = match setup.handshake_threads {
        0 => None,
        t => Some(
            HandshakePool::start(&setup.private_key, t)
                .map_err(|e| format!("handshake threads: {e}"))?,
        ),
    };
    let mut control = Control::new(ControlParts {
        private_key: setup.private_key,
        listen_port: LISTEN,
        workers: 1,
        peers: setup.peers,
        groups: Vec::new(),
        uapi: None,
        board: Arc::new(SnapshotBoard::new()),
        lcores: vec![lcore],
        interface: tag.clone(),
        worker_counters: vec![worker_counters.clone()],
        handshakes: hs_rx,
        events: ev_rx,
        commands: vec![cmd_tx.clone()],
        tun: link(PortSide::Tunnel, &tun, &tun_tap, tun_net, ctl_tun_c)?,
        plain: Some(link(
            PortSide::Plaintext,
            &plain,
            &plain_tap,
            plain_net,
            ctl_plain_c,
        )?),
        pool: &pool,
        clock,
        counters: control_counters.clone(),
        rss: None,
        handshake_pool,
    });
    // The next hops, known (no ARP on the rings): the control thread's
    // table and the worker's.
    let now = clock.now();
    control
        .tun
        .neigh
        .learn(IpAddr::V4(GATEWAY), GATEWAY_MAC, now);
    if let Some(plain) = control.plain.as_mut() {
        plain.neigh.learn(IpAddr::V4(LAN_HOST), LAN_MAC, now);
    }
    for (port, ip, mac) in [
        (PortSide::Tunnel, GATEWAY, GATEWAY_MAC),
        (PortSide::Plaintext, LAN_HOST, LAN_MAC),
    ] {
        cmd_tx
            .send(Command::Neighbour {
                port,
                ip: IpAddr::V4(ip),
                mac,
            })
            .map_err(|_| "the worker's command channel closed")?;
    }

    let mut network = Network {
        tun_in: e(tun_far.tx_queue(0))?,
        tun_out: e(tun_far.rx_queue(0))?,
        tun_control_out: e(tun_far.rx_queue(1))?,
        plain_out: e(plain_far.rx_queue(0))?,
        pool: &pool,
        worker: worker_counters,
        control: control_counters,
        static_statics: control
            .handshake_pool
            .as_ref()
            .map(HandshakePool::static_statics),
    };
    let stop = AtomicBool::new(false);
    let stop_ref = &stop;
    let job: Job<'_, ()> = Box::new(move || worker.run(stop_ref));
    std::thread::scope(|s| {
        let driver = s.spawn(|| {
            // Whatever ends the driver ends wgdp.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _stop = StopOnDrop(&stop);
            drive(&mut network)
        });
        let ((), results) = launch_run_join(eal, vec![(lcore, job)], || {
            control.run(&stop, None, &|_| {});
        });
        for r in results {
            r.map_err(|e| format!("worker: {e}"))?;
        }
        driver
            .join()
            .map_err(|_| "the network's driver panicked".to_string())
    })
}

/// The CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`),
/// to time work apart from whatever else shares the machine's CPUs;
/// `None` where the clock cannot be read.
pub fn thread_cpu_time() -> Option<Duration> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(Duration::from(t))
}

impl Network<'_> {
    /// Sends `frame` into the tunnel port (the worker's RX ring); `false`
    /// when the ring is full or the pool empty: the frame is lost, as a
    /// NIC drops what its RX ring has no room for.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        let Some(mut m) = self.pool.alloc() else {
            return false;
        };
        let Ok(data) = m.append(frame.len() as u16) else {
            return false;
        };
        data.copy_from_slice(frame);
        let mut burst: Burst<1> = Burst::new();
        if burst.push(m).is_err() {
            return false;
        }
        self.tun_in.tx_burst(&mut burst) == 1
    }
}
