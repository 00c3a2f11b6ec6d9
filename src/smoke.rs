//! `wgdp smoke`: port-to-port forwarding on one worker lcore, then port
//! statistics. The embedded default needs no NIC: a `net_null` source, whose
//! RX queue always has packets, forwarding into a `net_null` sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use dataplane::smoke_forward::{forward, ForwardStats};
use dpdk_sys::rte::lcore::{launch_and_join, Job};
use dpdk_sys::rte::{flags, Eal, Mempool, Port, PortConfig, PortStats};

/// Default EAL arguments: lcores 0 (main) and 1 (worker), memory without
/// hugepage files left behind, no PCI scan.
const DEFAULT_EAL: &str = "-l 0-1 --in-memory --no-pci";

/// Options of `wgdp smoke`.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// First port: a PCI address or a vdev string. Packets received here are
    /// sent out of the second port and back.
    #[arg(long, default_value = "net_null0,size=64")]
    port_a: String,
    /// Second port.
    #[arg(long, default_value = "net_null1,size=64")]
    port_b: String,
    /// How long to forward.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// EAL arguments, as one string split on spaces.
    #[arg(long, default_value = DEFAULT_EAL, allow_hyphen_values = true)]
    eal: String,
    /// Mbufs in the pool.
    #[arg(long, default_value_t = 8191)]
    mbufs: u32,
}

/// Runs the smoke test; the error says what failed, in DPDK's words.
pub fn run(args: &SmokeArgs) -> Result<(), Box<dyn std::error::Error>> {
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(format!("--seconds must be in (0, 3600], got {}", args.seconds).into());
    }
    let eal = Eal::init(args.eal.split_whitespace())?;
    let worker = *eal
        .worker_lcores()
        .first()
        .ok_or("smoke needs a worker lcore: give EAL at least two lcores (-l 0-1)")?;
    let pool = Mempool::new(&eal, "smoke_pool", args.mbufs, 256, 2048 + 128)?;
    let mut a = Port::probe(&eal, &args.port_a)?;
    let mut b = Port::probe(&eal, &args.port_b)?;
    let cfg = PortConfig {
        rx_queues: 1,
        tx_queues: 1,
        rss_hash_functions: flags::rss_ip() | flags::rss_udp(),
        ..PortConfig::default()
    };
    for port in [&mut a, &mut b] {
        let setup = port.configure(&cfg, &pool)?;
        println!(
            "port {} {}: driver {}, {} rx / {} tx queues, {}/{} descriptors, MTU {}, RSS {:?}",
            port.id(),
            port.name(),
            setup.driver,
            setup.rx_queues,
            setup.tx_queues,
            setup.descriptors.0,
            setup.descriptors.1,
            setup.mtu,
            flags::rss_names(setup.rss_granted),
        );
        port.start()?;
        port.reset_stats()?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))?;
    }
    let started = Instant::now();
    let fwd = {
        let mut pairs = vec![
            (a.rx_queue(0)?, b.tx_queue(0)?),
            (b.rx_queue(0)?, a.tx_queue(0)?),
        ];
        let stop_ref = &*stop;
        let jobs: Vec<(u32, Job<'_, ForwardStats>)> =
            vec![(worker, Box::new(move || forward(&mut pairs, stop_ref)))];
        let timer = {
            let stop = stop.clone();
            let limit = Duration::from_secs_f64(args.seconds);
            std::thread::spawn(move || {
                let t = Instant::now();
                while t.elapsed() < limit && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                stop.store(true, Ordering::Relaxed);
            })
        };
        let out = launch_and_join(&eal, jobs).remove(0)?;
        timer.join().map_err(|_| "timer thread panicked")?;
        out
    };
    let secs = started.elapsed().as_secs_f64();
    let (sa, sb) = (a.stats()?, b.stats()?);
    println!(
        "\nforwarded {} packets in {secs:.2} s on lcore {worker}: {:.2} Mpps",
        fwd.forwarded,
        fwd.forwarded as f64 / secs / 1e6
    );
    println!(
        "polls {} ({} empty), dropped on full TX {}",
        fwd.polls, fwd.empty_polls, fwd.tx_full_drops
    );
    print_stats(&a, &sa);
    print_stats(&b, &sb);
    drop((a, b));
    if pool.in_use() != 0 {
        return Err(format!("{} mbufs not returned to the pool", pool.in_use()).into());
    }
    if fwd.forwarded == 0 {
        return Err("no packet was forwarded".into());
    }
    Ok(())
}

fn print_stats(port: &Port, s: &PortStats) {
    println!(
        "port {} {:<12} rx {:>12} pkts {:>14} bytes  tx {:>12} pkts {:>14} bytes  missed {} rx-errors {} tx-errors {} no-mbuf {}",
        port.id(),
        port.name(),
        s.rx_packets,
        s.rx_bytes,
        s.tx_packets,
        s.tx_bytes,
        s.rx_missed,
        s.rx_errors,
        s.tx_errors,
        s.rx_nombuf
    );
}
