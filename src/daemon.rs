//! `wgdp run`'s daemon: brings up EAL, the pool, both ports and their
//! kernel exception interfaces, the workers and the control thread from a
//! tunnel table; runs until told to stop; tears everything down and
//! reports.
//!
//! Beside the control thread (crate `control`) it starts what serves the
//! operator: the metrics HTTP server ([`metrics_http`]), the DPDK
//! telemetry commands ([`telemetry`]) and the counters report
//! ([`report`]). Its start-up lines on stdout (`port ...`, `telemetry
//! ...`, `metrics ...`, `uapi ...`, `wgdp: running`) and the reports are
//! the output `wgdp run` exists to give (scripts and the tests read
//! them); everything else is logged through `tracing`.

mod metrics_http;
mod report;
mod telemetry;

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conf::{Config, PortConf};
use crossbeam_channel::bounded;
use dataplane::batch_policy::{self, Batching};
use dataplane::clock::TscClock;
use dataplane::command::PortSide;
use dataplane::counters::WorkerCounters;
use dataplane::cryptodev::{CryptodevAead, CryptodevSetup};
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::icmp::IcmpRate;
use dataplane::route::{IfAddr, PortNet};
use dataplane::worker::{
    MssClamp, Worker, WorkerConfig, WorkerLinks, WorkerNets, WorkerPorts, WorkerQueues,
};
use dpdk_sys::rte::lcore::{launch_run_join, Job};
use dpdk_sys::rte::{
    flags, mbuf_ring, rdtsc, Eal, EalError, Mempool, Port, PortConfig, RingProducer, RteError,
};
use protocol::allowedips::Prefix;
use protocol::crypto::provider::{self, AeadProvider as _};
use protocol::crypto::{AeadBackend, PublicKey};
use zeroize::Zeroizing;

use control::control::{Control, ControlParts, InitialPeer};
use control::counters::ControlCounters;
use control::groups::InitialGroup;
use control::handshake::HANDSHAKE_QUEUE;
use control::link::{ControlTx, PortLink};
use control::metrics;
use control::neigh::{NeighbourConfig, NeighbourTable};
use control::peers::NewPeer;
use control::route_export::RouteExport;
use control::rss::RssPredictor;
use control::show::SnapshotBoard;
use control::snapshot::PeerSnapshot;
use control::uapi::server::{PersistFn, UapiServer};
use control::{queues, tap};
use metrics_http::MetricsServer;

/// Capacity of the event channel from the workers.
const EVENT_QUEUE: usize = 4096;
/// Slots of each mbuf ring (handoff, exception path).
const RING_SLOTS: u32 = 4096;
/// Per-lcore mbuf cache of the pool.
const POOL_CACHE: u32 = 256;
/// RX/TX descriptors per queue of the ports and of the TAPs.
const PORT_DESCRIPTORS: u16 = 1024;
const TAP_DESCRIPTORS: u16 = 256;
/// Drivers whose queues pair 1:1 with those of the device at the other
/// end (memif: our TX queue q is the peer's RX queue q, and a connection
/// with unequal counts is refused at link-up, after a configure that
/// succeeded). They get as many TX as RX queues, like `net_tap`, so two
/// wgdp processes with the same workers connect; the control thread's
/// frames are relayed by worker 0.
const PAIRED_QUEUE_DRIVERS: &[&str] = &["net_memif"];

/// Why `wgdp run` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// EAL did not initialise.
    #[error(transparent)]
    Eal(#[from] EalError),
    /// A DPDK call failed.
    #[error(transparent)]
    Rte(#[from] RteError),
    /// A kernel interface could not be configured.
    #[error(transparent)]
    Tap(#[from] tap::TapError),
    /// The configuration does not fit what EAL or the devices offer.
    #[error("{0}")]
    Setup(String),
    /// A port cannot give every worker its queues.
    #[error(transparent)]
    Queues(#[from] queues::QueueError),
    /// A worker lcore failed.
    #[error("worker: {0}")]
    Worker(String),
    /// The live-route export (`[cluster]`) could not start.
    #[error("route export: {0}")]
    RouteExport(#[from] control::kernel_routes::KernelRouteError),
}

/// Options of `wgdp run` beyond the tunnel table.
#[derive(Default)]
pub struct RunOptions {
    /// Print the counters report this often.
    pub report_interval: Option<Duration>,
    /// The interface name `wg` knows us by (the UAPI socket's name).
    pub interface: String,
    /// Serve the UAPI, writing applied changes back with this; `None`: no
    /// UAPI socket.
    pub persist: Option<PersistFn>,
}

/// What `wgdp run` reports when it stops.
#[derive(Debug)]
pub struct Finished {
    /// The final counters report.
    pub report: String,
    /// Mbufs not back in the pool after everything was torn down.
    pub mbufs_in_use: u32,
}

fn port_net(p: &PortConf, mac: [u8; 6]) -> PortNet {
    PortNet {
        mac,
        addresses: p
            .address
            .iter()
            .map(|c| IfAddr {
                addr: c.addr,
                prefix_len: c.prefix_len,
            })
            .collect(),
        gateway_v4: p.gateway.iter().find_map(|g| match g {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        }),
        gateway_v6: p.gateway.iter().find_map(|g| match g {
            IpAddr::V6(a) => Some(*a),
            IpAddr::V4(_) => None,
        }),
        vlan: p.vlan,
    }
}

/// The mbuf data room for the largest frame either port carries: the
/// tunnel MTU, or a plaintext packet at its MTU with padding, tag,
/// WireGuard and outer IPv6 headers, plus the headroom.
pub fn data_room(c: &Config) -> u16 {
    let tunnel = usize::from(c.ports.tunnel.mtu) + 14;
    let inner = usize::from(c.ports.plaintext.mtu) + 15 + 16 + 16 + 62;
    let room = dpdk_sys::ffi::RTE_PKTMBUF_HEADROOM as usize + tunnel.max(inner) + 64;
    u16::try_from(room.max(dpdk_sys::ffi::RTE_MBUF_DEFAULT_BUF_SIZE as usize)).unwrap_or(u16::MAX)
}

/// Sessions in the crypto device's pool: two per transport key, two keys
/// per keypair, up to three keypairs per peer, for the configured peers and
/// as many again added later; at least 4096. Keys beyond fall back to ring
/// (with a warning).
fn crypto_sessions(c: &Config) -> u32 {
    let peers = u32::try_from(c.peers.len()).unwrap_or(u32::MAX);
    peers.saturating_mul(2 * 12).clamp(4096, 1 << 22)
}

/// Chooses the transport AEAD backend (`None`: automatic) and says which.
fn select_aead(aead: Option<AeadBackend>) -> Result<(), RunError> {
    protocol::crypto::select_transport_backend(aead)
        .map_err(|e| RunError::Setup(format!("dpdk.aead: {e}")))?;
    tracing::info!(
        aead = protocol::crypto::transport_backend().name(),
        "transport AEAD backend"
    );
    Ok(())
}

/// Which packets the workers seal in multi-buffer passes (`dpdk.aead`):
/// `auto` measures it on this CPU against the one-packet backend just
/// chosen, `multibuffer` takes every burst; transport keys then keep
/// their bytes for the passes. Says what it chose, and why.
fn batch_policy(aead: conf::Aead) -> Result<Batching, RunError> {
    let batching = match aead {
        conf::Aead::Auto => {
            let measured = batch_policy::measure(protocol::crypto::transport_backend());
            for s in &measured.samples {
                tracing::debug!(
                    direction = ?s.direction,
                    len = s.len,
                    burst = s.burst,
                    batched_ns = s.batched_ns,
                    single_ns = s.single_ns,
                    "multi-buffer AEAD measure"
                );
            }
            measured.batching
        }
        conf::Aead::Multibuffer => Batching::always().ok_or_else(|| {
            RunError::Setup(
                "dpdk.aead: \"multibuffer\" needs AVX-512 or AVX2, which this CPU does not have"
                    .into(),
            )
        })?,
        conf::Aead::Ring | conf::Aead::IpsecMb | conf::Aead::Cryptodev => Batching::default(),
    };
    for (way, p) in batching.ways() {
        match p {
            Some(p) => tracing::info!(
                way,
                engine = p.engine.name(),
                max_len = p.max_len,
                min_burst = p.min_burst,
                "multi-buffer AEAD: bursts of at least min_burst packets, those up to max_len bytes together"
            ),
            None => tracing::info!(way, "multi-buffer AEAD: one packet at a time"),
        }
    }
    protocol::crypto::set_batch_keys(batching.is_on());
    Ok(batching)
}

/// The registered crypto device; unregistered on drop, so that the device
/// closes once the last key made with it is gone.
struct CryptoGuard;

impl Drop for CryptoGuard {
    fn drop(&mut self) {
        provider::unregister_provider();
    }
}

/// Opens `dpdk.crypto_device` for the workers and the control thread,
/// registers it as the cryptodev AEAD backend and runs the RFC 8439
/// known-answer test through it. Errors name the device.
fn open_crypto_device(eal: &Eal, c: &Config, device: &str) -> Result<CryptoGuard, RunError> {
    let fail =
        |e: &dyn std::fmt::Display| RunError::Setup(format!("dpdk.crypto_device {device:?}: {e}"));
    let mut lcores = c.dpdk.workers.clone();
    lcores.push(eal.main_lcore());
    let setup = CryptodevSetup {
        device: device.to_owned(),
        lcores,
        sessions: crypto_sessions(c),
        force_op_path: false,
    };
    let aead = CryptodevAead::open(eal, &setup).map_err(|e| fail(&e))?;
    let describe = aead.describe();
    provider::register_provider(std::sync::Arc::new(aead)).map_err(|e| fail(&e))?;
    let guard = CryptoGuard;
    provider::known_answer_test(AeadBackend::Cryptodev).map_err(|e| fail(&e))?;
    tracing::info!(device = %describe, "crypto device passed the RFC 8439 known-answer test");
    Ok(guard)
}

/// Runs the concentrator until `stop` is set (by a signal handler).
pub fn run(config: &Config, mut opts: RunOptions, stop: &AtomicBool) -> Result<Finished, RunError> {
    let aead = match config.dpdk.aead {
        conf::Aead::Auto | conf::Aead::Multibuffer => None,
        conf::Aead::Ring => Some(AeadBackend::Ring),
        conf::Aead::IpsecMb => Some(AeadBackend::IpsecMb),
        conf::Aead::Cryptodev => Some(AeadBackend::Cryptodev),
    };
    if aead != Some(AeadBackend::Cryptodev) {
        select_aead(aead)?;
    }
    let batch = batch_policy(config.dpdk.aead)?;
    let eal = Eal::init(&config.dpdk.eal_args)?;
    let available = eal.worker_lcores();
    let lcores = config.dpdk.workers.clone();
    if let Some(bad) = lcores.iter().find(|l| !available.contains(l)) {
        return Err(RunError::Setup(format!(
            "worker lcore {bad} is not a worker lcore of EAL (eal_args enable {available:?}; the main lcore {} runs the control thread)",
            eal.main_lcore()
        )));
    }
    // Declared after `eal`: dropped first, releasing the device.
    let _crypto = match &config.dpdk.crypto_device {
        Some(device) => Some(open_crypto_device(&eal, config, device)?),
        None => None,
    };
    if aead == Some(AeadBackend::Cryptodev) {
        select_aead(aead)?;
    }
    let n = lcores.len();
    let pool = Mempool::new(
        &eal,
        "wgdp_mbufs",
        config.dpdk.mbufs,
        POOL_CACHE,
        data_room(config),
    )?;

    // One-armed mode (`[ports.both]`): the tunnel port carries the
    // plaintext role too, and there is no second port (docs/one-armed.md).
    // Split by VLAN, the two roles are two VLANs of the tunnel port: two
    // logical ports, each with its exception TAP and control link.
    let one_armed = config.ports.one_armed();
    let vlan_split = config.ports.vlan_split();
    let mut tun_port = Port::probe(&eal, &config.ports.tunnel.device)?;
    let mut plain_port = match one_armed || vlan_split {
        true => None,
        false => Some(Port::probe(&eal, &config.ports.plaintext.device)?),
    };
    let mut offload = false;
    // Whether the control thread has a TX queue of its own on each port.
    // Split by VLAN, the plaintext link has none: the port's one control
    // queue is the tunnel link's, and worker 0 relays the plaintext link's
    // frames onto its queue.
    let mut own_tx = [true, !vlan_split];
    let mut tun_setup = None;
    let mut roles = vec![(
        match (one_armed, vlan_split) {
            (true, _) => "both",
            (_, true) => "tunnel+plaintext",
            _ => "tunnel",
        },
        &mut tun_port,
        &config.ports.tunnel,
    )];
    if let Some(plain_port) = plain_port.as_mut() {
        roles.push(("plaintext", plain_port, &config.ports.plaintext));
    }
    for (i, (name, port, pc)) in roles.into_iter().enumerate() {
        let plan = queues::plan(name, &pc.device, n, &port.limits()?)?;
        let want_tx = if i == 0 {
            flags::tx_ipv4_cksum() | flags::tx_udp_cksum()
        } else {
            0
        };
        let mut cfg = PortConfig {
            rx_queues: plan.rx,
            tx_queues: plan.tx,
            rx_descriptors: PORT_DESCRIPTORS,
            tx_descriptors: PORT_DESCRIPTORS,
            mtu: Some(pc.mtu),
            rss_hash_functions: flags::rss_ip() | flags::rss_udp(),
            rx_offloads: 0,
            tx_offloads: want_tx,
            promiscuous: true,
        };
        own_tx[i] = plan.control_tx;
        let setup = match port.configure(&cfg, &pool) {
            Ok(setup)
                if !(plan.control_tx && PAIRED_QUEUE_DRIVERS.contains(&setup.driver.as_str())) =>
            {
                setup
            }
            Ok(_) => {
                // Its queues pair 1:1 with the far end's: equal counts, and
                // the control thread sends through worker 0 (ControlTx).
                cfg.tx_queues = plan.rx;
                own_tx[i] = false;
                port.configure(&cfg, &pool)?
            }
            Err(first) if plan.control_tx => {
                // Some devices (net_tap) need as many RX as TX queues: the
                // control thread then sends through worker 0 (ControlTx).
                cfg.tx_queues = plan.rx;
                own_tx[i] = false;
                port.configure(&cfg, &pool).map_err(|_| first)?
            }
            Err(e) => return Err(e.into()),
        };
        if i == 0 {
            offload = want_tx != 0 && setup.tx_offloads.1 == want_tx;
        }
        println!(
            "port {name} {} mac {} driver {} queues {}rx/{}tx mtu {} rss {:?} tx-offloads {:#x}/{:#x} control-tx {}",
            pc.device,
            tap::mac_string(port.mac()?),
            setup.driver,
            setup.rx_queues,
            setup.tx_queues,
            setup.mtu,
            flags::rss_names(setup.rss_granted),
            setup.tx_offloads.1,
            setup.tx_offloads.0,
            if own_tx[i] { "own queue" } else { "relayed by worker 0" },
        );
        if i == 0 {
            tun_setup = Some(setup);
        }
    }
    // The control thread's own TX queue follows the workers' (checked by
    // queues::plan to fit in u16).
    let control_queue = u16::try_from(n).map_err(|_| RunError::Setup("too many workers".into()))?;
    let tun_net = port_net(&config.ports.tunnel, tun_port.mac()?);
    let plain_net = match &plain_port {
        Some(p) => port_net(&config.ports.plaintext, p.mac()?),
        None if vlan_split => port_net(&config.ports.plaintext, tun_port.mac()?),
        None => tun_net.clone(),
    };

    // Kernel exception interfaces, with the ports' MACs and addresses.
    let mut taps = Vec::new();
    for (i, (pc, net)) in [
        (&config.ports.tunnel, &tun_net),
        (&config.ports.plaintext, &plain_net),
    ]
    .into_iter()
    .take(if one_armed { 1 } else { 2 })
    .enumerate()
    {
        let mut t = Port::probe(&eal, &tap::devargs(i, &pc.tap))?;
        t.configure(
            &PortConfig {
                rx_descriptors: TAP_DESCRIPTORS,
                tx_descriptors: TAP_DESCRIPTORS,
                mtu: Some(pc.mtu),
                rss_hash_functions: 0,
                ..PortConfig::default()
            },
            &pool,
        )?;
        t.start()?;
        tap::configure(&pc.tap, net.mac, pc.mtu, &pc.address)?;
        taps.push(t);
    }

    let mut initial = Vec::new();
    for pc in &config.peers {
        let mut allowed_ips = Vec::new();
        for c in &pc.allowed_ips {
            allowed_ips.push(
                Prefix::new(c.addr, c.prefix_len).map_err(|e| RunError::Setup(e.to_string()))?,
            );
        }
        initial.push(InitialPeer {
            peer: NewPeer {
                public_key: PublicKey::from_bytes(pc.public_key.0),
                preshared_key: pc
                    .preshared_key
                    .as_ref()
                    .map(|k| Zeroizing::new(*k.as_bytes())),
                endpoint: pc.endpoint,
                persistent_keepalive: pc.persistent_keepalive,
                lanes: pc.lanes,
            },
            allowed_ips,
        });
    }

    let groups = config
        .groups
        .iter()
        .map(|g| {
            let prefixes = g
                .prefixes
                .iter()
                .map(|c| Prefix::new(c.addr, c.prefix_len))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| RunError::Setup(e.to_string()))?;
            Ok(InitialGroup {
                name: g.name.clone(),
                members: g
                    .members
                    .iter()
                    .map(|k| PublicKey::from_bytes(k.0))
                    .collect(),
                prefixes,
            })
        })
        .collect::<Result<Vec<_>, RunError>>()?;

    // Channels and rings.
    let (hs_tx, hs_rx) = bounded(HANDSHAKE_QUEUE);
    let (ev_tx, ev_rx) = bounded(EVENT_QUEUE);
    let mut cmd_tx = Vec::new();
    let mut cmd_rx = Vec::new();
    for _ in 0..n {
        // Unbounded: the control thread must never block on a worker, and
        // startup queues a command per configured peer (100k and more).
        let (t, r) = crossbeam_channel::unbounded();
        cmd_tx.push(t);
        cmd_rx.push(r);
    }
    let mut handoff_prod = Vec::new();
    let mut handoff_cons = Vec::new();
    for i in 0..n {
        let (p, c) = mbuf_ring(&eal, &format!("wgdp_handoff{i}"), RING_SLOTS)?;
        handoff_prod.push(p);
        handoff_cons.push(c);
    }
    let (ctl_tun_p, ctl_tun_c) = mbuf_ring(&eal, "wgdp_ctl_tun", RING_SLOTS)?;
    let (ctl_plain_p, ctl_plain_c) = mbuf_ring(&eal, "wgdp_ctl_plain", RING_SLOTS)?;
    let mut relays = Vec::new();
    for (i, own) in own_tx.iter().enumerate().take(taps.len()) {
        relays.push(if *own {
            None
        } else {
            Some(mbuf_ring(&eal, &format!("wgdp_relay{i}"), RING_SLOTS)?)
        });
    }
    let relay_tun = relays[0].take();
    let relay_plain = relays.get_mut(1).and_then(Option::take);
    let (relay_tun_p, mut relay_tun_c) =
        relay_tun.map_or((None, None), |(p, c)| (Some(p), Some(c)));
    let (relay_plain_p, mut relay_plain_c) =
        relay_plain.map_or((None, None), |(p, c)| (Some(p), Some(c)));

    tun_port.start()?;
    if let Some(p) = plain_port.as_mut() {
        p.start()?;
    }
    // The key and table as the started port holds them: some drivers fill
    // their default RETA only at start.
    let tun_rss = match tun_setup {
        Some(mut setup) => {
            tun_port.refresh_rss(&mut setup)?;
            RssPredictor::from_setup(&setup)
        }
        None => None,
    };
    println!(
        "port tunnel rss-prediction {}",
        if tun_rss.is_some() {
            "key+reta"
        } else {
            "none (ownership is learned)"
        }
    );
    let clock = TscClock::new(rdtsc(), eal.tsc_hz());
    let worker_counters: Vec<Arc<WorkerCounters>> = (0..n)
        .map(|_| Arc::new(WorkerCounters::default()))
        .collect();
    let control_counters = Arc::new(ControlCounters::default());

    let final_peers = {
        let mut workers = Vec::new();
        for (i, (commands, handoff_in)) in cmd_rx.into_iter().zip(handoff_cons).enumerate() {
            let q = i as u16;
            // The WireGuard MTU: what the plaintext port carries, but never
            // more than fits the tunnel port with the 80 bytes of outer
            // IPv6, UDP and WireGuard overhead.
            let mtu = usize::from(config.ports.plaintext.mtu)
                .min(usize::from(config.ports.tunnel.mtu).saturating_sub(80));
            let cfg = WorkerConfig {
                index: i,
                workers: n,
                listen_port: config.interface.listen_port,
                mtu,
                tx_checksum_offload: offload,
                idle_polls: config.dpdk.idle_polls,
                idle_sleep: Duration::from_micros(u64::from(config.dpdk.idle_sleep_us)),
                lane_ports: config.ports.tunnel.lane_ports.map(|r| (r.first, r.last)),
                public_key: PublicKey::from_bytes(config.interface.private_key.public_key().0),
                // Each worker stages for its own peers: an equal share.
                staging_budget: config.dpdk.staging_budget() as usize / n.max(1),
                mss_clamp: config.ports.plaintext.mss_clamp.map(|c| mss_clamp(c, mtu)),
                icmp_rate: IcmpRate {
                    per_sec: config.dpdk.icmp_per_sec,
                    burst: config.dpdk.icmp_burst,
                },
                batch,
            };
            let worker_ports = match &plain_port {
                Some(plain_port) => WorkerQueues {
                    tun_rx: tun_port.rx_queue(q)?,
                    tun_tx: tun_port.tx_queue(q)?,
                    plain_rx: plain_port.rx_queue(q)?,
                    plain_tx: plain_port.tx_queue(q)?,
                }
                .into(),
                None if vlan_split => {
                    WorkerPorts::vlan_split(tun_port.rx_queue(q)?, tun_port.tx_queue(q)?)
                }
                None => WorkerPorts::one_armed(tun_port.rx_queue(q)?, tun_port.tx_queue(q)?),
            };
            let links = WorkerLinks {
                commands,
                events: ev_tx.clone(),
                handshakes: hs_tx.clone(),
                handoff_in,
                handoff_out: (0..n)
                    .map(|j| (j != i).then(|| handoff_prod[j].clone()))
                    .collect(),
                to_workers: cmd_tx.clone(),
                to_control_tun: ctl_tun_p.clone(),
                to_control_plain: ctl_plain_p.clone(),
                relay_tun: if i == 0 { relay_tun_c.take() } else { None },
                relay_plain: if i == 0 { relay_plain_c.take() } else { None },
            };
            let nets = WorkerNets {
                tun_port: tun_port.id(),
                tun: tun_net.clone(),
                plain: plain_net.clone(),
            };
            workers.push(Worker::new(
                cfg,
                worker_ports,
                links,
                &pool,
                clock,
                worker_counters[i].clone(),
                nets,
                reassembly_table(&eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT)?,
            ));
        }
        drop((hs_tx, ev_tx, handoff_prod, ctl_tun_p, ctl_plain_p));

        // The metrics server and DPDK's telemetry threads read the state
        // from here; the control thread publishes it when they ask.
        let board = Arc::new(SnapshotBoard::new());
        let _telemetry =
            telemetry::register(&board).map_err(|e| RunError::Setup(format!("telemetry: {e}")))?;
        if let Some(socket) = eal.telemetry_socket() {
            println!("telemetry {}", socket.display());
        }
        let metrics_server = match &config.metrics {
            Some(m) => {
                let (workers, control, board, lcores) = (
                    worker_counters.clone(),
                    control_counters.clone(),
                    board.clone(),
                    lcores.clone(),
                );
                let source = Arc::new(move || {
                    let show = board.get(control::show::MAX_AGE, control::show::WAIT);
                    let peers = show.as_ref().map_or(&[][..], |s| &s.peers[..]);
                    let groups = show.as_ref().map_or(&[][..], |s| &s.groups[..]);
                    let mut text = metrics::render(&workers, &lcores, &control, peers, groups);
                    if let Some(export) = show.as_ref().and_then(|s| s.route_export.as_ref()) {
                        control::route_export::render_metrics(&mut text, export);
                    }
                    text
                });
                let server = MetricsServer::start(m.listen, source)
                    .map_err(|e| RunError::Setup(format!("metrics on {}: {e}", m.listen)))?;
                println!("metrics http://{}/metrics", server.local_addr());
                Some(server)
            }
            None => None,
        };
        let (uapi_tx, uapi_rx) = bounded(16);
        let uapi = match opts.persist.take() {
            Some(persist) => Some(
                UapiServer::start(&opts.interface, uapi_tx, persist, control_counters.clone())
                    .map_err(|e| {
                        RunError::Setup(format!("UAPI socket for {}: {e}", opts.interface))
                    })?,
            ),
            None => None,
        };
        // This thread becomes the control thread: ahead of the helpers
        // started above (the UAPI socket's renders a `get` of the whole
        // table) and of the processes sharing its CPU; the handshake
        // threads started below inherit its nice (control::priority).
        let nice =
            control::priority::raise_control_thread(config.dpdk.control_nice, &control_counters)
                .map_err(|e| RunError::Setup(format!("dpdk.control_nice: {e}")))?;
        tracing::info!(nice, "control thread priority");
        // The responder's X25519 work (control::handshake_pool).
        let handshake_threads = config.dpdk.handshake_threads.map_or_else(
            || {
                // After EAL's init: the main lcore's CPUs, which the
                // threads started from this thread inherit.
                let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
                control::handshake_pool::default_threads(cpus)
            },
            |t| t as usize,
        );
        let handshake_pool = match handshake_threads {
            0 => None,
            t => Some(
                control::handshake_pool::HandshakePool::start(
                    config.interface.private_key.as_bytes(),
                    t,
                )
                .map_err(|e| RunError::Setup(format!("handshake threads: {e}")))?,
            ),
        };
        tracing::info!(handshake_threads, "handshake threads");
        let mut control = Control::new(ControlParts {
            private_key: Zeroizing::new(*config.interface.private_key.as_bytes()),
            listen_port: config.interface.listen_port,
            workers: n,
            peers: initial,
            groups,
            uapi: uapi.as_ref().map(|_| uapi_rx),
            board: board.clone(),
            lcores: lcores.clone(),
            interface: opts.interface.clone(),
            worker_counters: worker_counters.clone(),
            handshakes: hs_rx,
            events: ev_rx,
            commands: cmd_tx,
            tun: PortLink::new(
                PortSide::Tunnel,
                &tun_port,
                tun_net,
                control_tx(&tun_port, control_queue, relay_tun_p)?,
                (taps[0].rx_queue(0)?, taps[0].tx_queue(0)?),
                ctl_tun_c,
                NeighbourTable::new(NeighbourConfig::default()),
            ),
            // One-armed: the tunnel link serves the one port. Split by
            // VLAN: the plaintext link is on the tunnel's port too.
            plain: match plain_port.as_ref().or(vlan_split.then_some(&tun_port)) {
                Some(plain_port) => Some(PortLink::new(
                    PortSide::Plaintext,
                    plain_port,
                    plain_net,
                    control_tx(plain_port, control_queue, relay_plain_p)?,
                    (taps[1].rx_queue(0)?, taps[1].tx_queue(0)?),
                    ctl_plain_c,
                    NeighbourTable::new(NeighbourConfig::default()),
                )),
                None => None,
            },
            pool: &pool,
            clock,
            counters: control_counters.clone(),
            rss: tun_rss,
            handshake_pool,
        });

        // The plaintext exception TAP is up: a previous run's routes go,
        // and the live ones follow from the first scan.
        if let Some(cluster) = &config.cluster {
            let export = RouteExport::open(cluster.export_table, &config.ports.plaintext.tap)?;
            println!(
                "route export: table {} dev {}",
                cluster.export_table, config.ports.plaintext.tap
            );
            control.set_route_export(export);
        }
        if let Some(server) = &uapi {
            println!(
                "uapi {} (wg show {})",
                server.path().display(),
                opts.interface
            );
        }
        println!(
            "wgdp: running ({n} worker{})",
            if n == 1 { "" } else { "s" }
        );
        let _ = std::io::stdout().flush();

        let print_report = |peers: &[PeerSnapshot]| {
            print!(
                "{}",
                report::render(&worker_counters, &control_counters, peers)
            );
            // The pool's live count (per-lcore caches count as free), so
            // that a soak can see it return to its baseline.
            println!("mbufs_in_use {}", pool.in_use());
            let _ = std::io::stdout().flush();
        };
        let jobs: Vec<(u32, Job<'_, ()>)> = workers
            .into_iter()
            .zip(&lcores)
            .map(|(w, &lcore)| {
                let job: Job<'_, ()> = Box::new(move || {
                    // Whatever ends a worker ends the others too.
                    let _stop_all = StopOnDrop(stop);
                    w.run(stop);
                });
                (lcore, job)
            })
            .collect();
        // The control thread is the main lcore's thread: nothing spins
        // beside it while it runs (DPDK waits for lcores by spinning).
        let (peers, results) = launch_run_join(&eal, jobs, || {
            // Whatever ends the control thread ends the workers too.
            let _stop_all = StopOnDrop(stop);
            control.run(stop, opts.report_interval, &print_report)
        });
        // The page reads the control thread's snapshots: it ends with it.
        if let Some(server) = metrics_server {
            server.stop();
        }
        for r in results {
            r.map_err(|e| RunError::Worker(e.to_string()))?;
        }
        peers
    };

    let report = report::render(&worker_counters, &control_counters, &final_peers);
    drop(taps);
    drop(tun_port);
    drop(plain_port);
    let mbufs_in_use = pool.in_use();
    Ok(Finished {
        report,
        mbufs_in_use,
    })
}

/// The control thread's way out of a port: its own queue `q`, or the relay.
fn control_tx(port: &Port, q: u16, relay: Option<RingProducer>) -> Result<ControlTx<'_>, RteError> {
    Ok(match relay {
        Some(r) => ControlTx::Relay(r),
        None => ControlTx::Queue(port.tx_queue(q)?),
    })
}

/// Sets the stop flag when dropped (a worker returning or unwinding).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The MSS ceilings of `mss_clamp` for a tunnel of inner MTU `mtu`:
/// `"auto"` leaves room for the IPv4 (20) or IPv6 (40) header and TCP's
/// 20, as iptables' `--clamp-mss-to-pmtu`.
fn mss_clamp(clamp: conf::MssClamp, mtu: usize) -> MssClamp {
    match clamp {
        conf::MssClamp::Auto => {
            let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
            MssClamp {
                v4: mtu.saturating_sub(40),
                v6: mtu.saturating_sub(60),
            }
        }
        conf::MssClamp::Fixed(mss) => MssClamp { v4: mss, v6: mss },
    }
}
