//! `wgdp bench`: the production worker loop on vdevs, per direction, size
//! mix, peer count and worker count, against the AEAD floor measured in the
//! same run. See BENCHMARKS.md for how to read the figures.

mod flood;
mod floor;
mod handshakes;
mod mbfloor;
mod peers;
pub mod pktgen_peers;
mod report;
mod rig;
mod traffic;
mod warm;

use clap::Args;
use dataplane::batch_policy::{self, Batching};
use dataplane::clock::TscClock;
use dataplane::cryptodev::{CryptodevAead, CryptodevSetup};
use dataplane::cycle_profile::{self, Stage};
use dpdk_sys::rte::lcore::{launch_and_join, Job};
use dpdk_sys::rte::{rdtsc, Eal, Mempool};
use protocol::cookie::CookieChecker;
use protocol::crypto::provider::{self, AeadProvider as _};
use protocol::crypto::{AeadBackend, PrivateKey};
use protocol::noise::StaticIdentity;
use rand_core::OsRng;

use rig::Direction;
use traffic::Mix;
use warm::WorkingSet;

/// Options of `wgdp bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A quick run (seconds): fewer packets, one repetition, up to 1024
    /// peers. Figures are printed; nothing is asserted.
    #[arg(long)]
    short: bool,
    /// Peer counts, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,1024,100000")]
    peers: Vec<u32>,
    /// Worker counts, comma separated: 1 up to this machine's CPUs (with
    /// `--eal`, up to its worker lcores).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    workers: Vec<usize>,
    /// Packets per worker, input port and batch (warm or cold).
    #[arg(long, default_value_t = 32_768)]
    packets: usize,
    /// Working sets measured, comma separated: warm (`--packets` packets
    /// recycled through `--warm-set` mbufs, in cache as a NIC with DDIO
    /// delivers them; the figure the targets use), cold (a fresh batch of
    /// `--packets` mbufs, from DRAM).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "warm,cold")]
    sets: Vec<WorkingSet>,
    /// Mbufs per worker and input port that warm runs recycle (a NIC's RX
    /// ring; 64 up to a quarter of `--packets`); the warm AEAD floor
    /// cycles as many buffers.
    #[arg(long, default_value_t = 1024)]
    warm_set: usize,
    /// Batches per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Compute outer UDP/IPv4 checksums in software, as on a port without
    /// checksum offload (by default the workers request the offload, as on
    /// the NICs wgdp targets; `net_ring` ignores the request).
    #[arg(long)]
    sw_checksum: bool,
    /// Also report TSC cycles per packet for each stage of the worker loop
    /// (needs a build with `--features stages`, which slows the loop by the
    /// TSC reads it adds).
    #[arg(long)]
    stages: bool,
    /// Directions measured, comma separated: encap, decap, roundtrip.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "encap,decap,roundtrip"
    )]
    directions: Vec<Direction>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Measure the handshake gate under floods of spoofed initiations at
    /// these rates per second, comma separated (e.g. 50000,500000,5000000),
    /// instead of the usual figures: data Mpps per worker against
    /// unloaded, the handshake queue, and a legitimate handshake's time.
    /// With the first of `--workers` and of `--peers`, on each of `--sets`
    /// (warm: data and flood recycled through `--warm-set` mbufs; cold).
    /// `--short` runs it at 50000,500000 after its figures.
    #[arg(long, value_delimiter = ',')]
    flood: Vec<u64>,
    /// Measure the handshake responder instead: every X25519 backend's
    /// floor, then initiations through wgdp in one process (the real
    /// worker's gate, the control thread and its handshake threads,
    /// `control::inproc`): handshakes/s with the control thread alone and
    /// with handshake threads, latency at 50 % and 90 % of capacity, the
    /// time for `--handshake-peers` distinct peers (2000 at most with
    /// `--short`).
    #[arg(long)]
    handshakes: bool,
    /// Distinct peers of `--handshakes`, one initiation each.
    #[arg(long, default_value_t = 100_000)]
    handshake_peers: usize,
    /// Handshake thread counts of `--handshakes`, comma separated (0: the
    /// control thread does the X25519 work); default 0, 1 and the CPUs.
    #[arg(long, value_delimiter = ',')]
    handshake_threads: Vec<usize>,
    /// The AEAD backend the worker loop's keys use: auto, ring, ipsec-mb,
    /// cryptodev or multibuffer (as `dpdk.aead`: auto measures whether
    /// multi-buffer passes win here; the floor is measured for every
    /// available one).
    #[arg(long, default_value = "auto")]
    aead: String,
    /// The DPDK crypto device measured as the cryptodev backend (probed
    /// here if it does not exist; a software `crypto_aesni_mb` vdev by
    /// default). When it cannot be opened, cryptodev is left out (and
    /// `--aead cryptodev` is an error).
    #[arg(long, default_value = "crypto_aesni_mb0")]
    crypto_device: String,
    /// Drive the crypto device through enqueued ops on a queue pair per
    /// lcore (the path a hardware accelerator such as QAT takes) even where
    /// it offers the CPU-crypto API.
    #[arg(long)]
    cryptodev_op_path: bool,
    /// EAL arguments, as one string split on spaces. The default for the
    /// packet figures puts the main lcore on CPU 0 and worker lcore i (one
    /// per worker of the largest `--workers`) on CPU i mod the CPUs, so
    /// that with as many workers as CPUs the last shares CPU 0 with the
    /// main lcore; for `--handshakes` the main lcore (the control
    /// thread, whose CPUs the handshake threads share) floats over every
    /// CPU and worker lcore 1 runs on the last one.
    #[arg(long, allow_hyphen_values = true)]
    eal: Option<String>,
}

/// EAL options every default shares.
const EAL_COMMON: &str = "--in-memory --no-pci --log-level=lib.eal:error";

/// The default `--lcores` of the packet figures for `workers` workers on
/// `cpus` CPUs: the main lcore 0 on CPU 0, worker lcore i on CPU i mod
/// `cpus` (`0@0,1@1,2@0` for two workers on two CPUs).
fn default_lcores(workers: usize, cpus: usize) -> String {
    let mut s = String::from("0@0");
    for i in 1..=workers {
        s.push_str(&format!(",{i}@{}", i % cpus.max(1)));
    }
    s
}

/// Checks `--workers`: every count at least 1 and, where `cpus` is given
/// (the default EAL, one worker lcore per CPU), at most `cpus`.
fn check_workers(workers: &[usize], cpus: Option<usize>) -> Result<(), String> {
    if workers.is_empty() {
        return Err("--workers: no worker count".into());
    }
    for &w in workers {
        if w == 0 {
            return Err("--workers: 0 is not a worker count (1 at least)".into());
        }
        if let Some(cpus) = cpus.filter(|&c| w > c) {
            return Err(format!(
                "--workers: {w} workers is more than this machine's {cpus} lcores (one per CPU; give --eal with more lcores to oversubscribe)"
            ));
        }
    }
    Ok(())
}

/// One figure: a direction and size mix through `workers` workers.
#[derive(Debug, Clone)]
pub struct Figure {
    workers: usize,
    peers: u32,
    direction: Direction,
    /// Warm (recycled mbufs) or cold (a fresh batch).
    set: WorkingSet,
    mix: Mix,
    /// Packets per second, all workers, in millions.
    mpps: f64,
    /// TSC cycles per packet on one worker.
    cycles_per_packet: f64,
    /// Packets dropped (should be 0).
    drops: u64,
    /// Cycles per packet in each worker-loop stage (with `--stages`).
    stages: Option<[f64; Stage::COUNT]>,
}

fn median(mut v: Vec<rig::Sample>) -> Option<rig::Sample> {
    v.sort_by(|a, b| {
        let r = |s: &rig::Sample| s.packets as f64 / s.cycles.max(1) as f64;
        r(a).total_cmp(&r(b))
    });
    v.get(v.len() / 2).copied()
}

/// Unregisters the bench's crypto device on drop.
struct CryptoGuard;

impl Drop for CryptoGuard {
    fn drop(&mut self) {
        provider::unregister_provider();
    }
}

/// Opens `--crypto-device` and registers it as the cryptodev backend; a
/// device that cannot be opened is a note, or an error under `--aead
/// cryptodev`. Sessions: two per key, two keys per peer, for the most
/// peers of a phase when the worker loop uses it.
fn crypto_device(
    eal: &Eal,
    args: &BenchArgs,
    aead: Option<AeadBackend>,
    lcores: &[u32],
    peer_counts: &[u32],
    notes: &mut Vec<String>,
) -> Result<Option<CryptoGuard>, String> {
    let used = aead == Some(AeadBackend::Cryptodev);
    let most = peer_counts.iter().copied().max().unwrap_or(1);
    let mut all = lcores.to_vec();
    all.push(eal.main_lcore());
    let setup = CryptodevSetup {
        device: args.crypto_device.clone(),
        lcores: all,
        sessions: if used { 4 * most + 64 } else { 64 },
        force_op_path: args.cryptodev_op_path,
    };
    match CryptodevAead::open(eal, &setup) {
        Ok(dev) => {
            notes.push(format!("cryptodev: {}", dev.describe()));
            provider::register_provider(std::sync::Arc::new(dev)).map_err(|e| e.to_string())?;
            let guard = CryptoGuard;
            provider::known_answer_test(AeadBackend::Cryptodev).map_err(|e| e.to_string())?;
            Ok(Some(guard))
        }
        Err(e) if used => Err(format!("--aead cryptodev: {e}")),
        Err(e) => {
            notes.push(format!("cryptodev: not measured ({e})"));
            Ok(None)
        }
    }
}

/// Runs the benchmark and prints its report.
pub fn run(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.handshakes {
        let mut threads = args.handshake_threads.clone();
        if threads.is_empty() {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            threads = vec![0, 1, cpus];
            threads.dedup();
        }
        let last = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
        let eal = args
            .eal
            .clone()
            .unwrap_or_else(|| format!("--lcores=0@(0-{last}),1@{last} {EAL_COMMON}"));
        let eal = Eal::init(eal.split_whitespace())?;
        return Ok(handshakes::run(
            &eal,
            args.short,
            args.handshake_peers,
            &threads,
            args.json,
        )?);
    }
    let (packets, repeat, peer_counts) = if args.short {
        let peers = args.peers.iter().copied().filter(|&p| p <= 1024).collect();
        // A batch long enough to be timed by a harness that looks every
        // few hundred microseconds: 4096 packets (about 1 ms in a release
        // build) often ended between two looks on a quiet machine, and no
        // try could be timed.
        (args.packets.min(SHORT_PACKETS), 1, peers)
    } else {
        (args.packets, args.repeat.max(1), args.peers.clone())
    };
    if args.stages && !cycle_profile::ENABLED {
        return Err("--stages needs a build with the stages feature: cargo build --release --features stages".into());
    }
    if packets == 0 || packets >= rig::RING_SIZE as usize {
        return Err(format!("--packets must be in 1..{}", rig::RING_SIZE).into());
    }
    warm::check_set(args.warm_set, packets)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // With `--eal` the EAL's worker lcores are the limit (checked below).
    check_workers(&args.workers, args.eal.is_none().then_some(cpus))?;
    if let Some(&p) = peer_counts.iter().find(|&&p| p == 0 || p > 1 << 17) {
        return Err(format!("--peers: {p} is not in 1..=131072").into());
    }
    let aead = match args.aead.as_str() {
        "auto" | "multibuffer" => None,
        name => Some(AeadBackend::from_name(name).ok_or_else(|| {
            format!("--aead: {name:?} is not auto, ring, ipsec-mb, cryptodev or multibuffer")
        })?),
    };
    let most = args.workers.iter().copied().max().unwrap_or(1);
    let eal_args = args
        .eal
        .clone()
        .unwrap_or_else(|| format!("--lcores={} {EAL_COMMON}", default_lcores(most, cpus)));
    let eal = Eal::init(eal_args.split_whitespace())?;
    let lcores = eal.worker_lcores();
    if lcores.len() < most {
        return Err(format!(
            "{most} workers need {most} worker lcores; EAL has {}",
            lcores.len()
        )
        .into());
    }
    let hz = eal.tsc_hz();
    // Two input ports per worker at most, plus what is in flight.
    let mbufs = (2 * most * packets + 8192) as u32;
    let pool = Mempool::new(&eal, "bench_pool", mbufs, 256, 2048 + 128)?;
    // The warm runs' working sets: no cache, so that every mbuf takes its
    // turn (see warm.rs).
    let warm_pool = Mempool::new(
        &eal,
        "bench_warm",
        warm::pool_size(most, args.warm_set),
        0,
        2048 + 128,
    )?;
    let mixes = Mix::all();
    let mut notes = Vec::new();
    // Unregisters the device at the end, so that EAL is cleaned up.
    let _crypto = crypto_device(&eal, args, aead, &lcores, &peer_counts, &mut notes)?;
    protocol::crypto::select_transport_backend(aead).map_err(|e| format!("--aead: {e}"))?;
    notes.push(format!(
        "worker loop AEAD: {}",
        protocol::crypto::transport_backend().name()
    ));
    let batch = batch_policy(&args.aead, &mut notes)?;
    let backends = AeadBackend::available();

    let floor_packets = if args.short { 4_000 } else { 40_000 };
    let floors = {
        let job: Job<'_, Result<Vec<floor::Floor>, String>> = Box::new(|| {
            let warm = args.warm_set;
            floor::measure(&backends, &mixes, floor_packets, packets, warm, rdtsc, hz)
        });
        let out = launch_and_join(&eal, vec![(lcores[0], job)]).pop();
        out.ok_or("no floor result")??.map_err(|e| e.to_string())?
    };
    let mb_floors = {
        let job: Job<'_, Result<Vec<mbfloor::MbFloor>, String>> =
            Box::new(|| mbfloor::measure(&mixes, floor_packets, packets, rdtsc, hz));
        let out = launch_and_join(&eal, vec![(lcores[0], job)]).pop();
        out.ok_or("no multi-buffer floor result")??
            .map_err(|e| e.to_string())?
    };

    if !args.flood.is_empty() {
        let report = flood_phase(
            &eal,
            (&pool, &warm_pool),
            &lcores,
            args,
            &args.flood,
            packets,
            repeat,
            cpus,
        )?;
        print_flood(&report, args.json)?;
        return Ok(());
    }
    let mut figures = Vec::new();
    for &workers in &args.workers {
        if workers + 1 > cpus {
            notes.push(format!(
                "{workers} workers: {} lcores (main + workers) on {cpus} CPUs: a worker shares its CPU with the main lcore and the harness thread, which sleep while it runs",
                workers + 1
            ));
        }
        for &p in &peer_counts {
            if (p as usize) < workers {
                notes.push(format!(
                    "{workers} workers, {p} peers: skipped (a peer has one owner)"
                ));
                continue;
            }
            let wgdp = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
            let keys = peers::handshakes(&wgdp, p, workers, cpus)?;
            // The keys are born at Instant::ZERO: the phase's clock starts
            // now, as if the handshakes had just completed.
            let clock = TscClock::new(rdtsc(), hz);
            let warm_pool = &warm_pool;
            type Out = (Vec<Figure>, Vec<String>);
            let run = |h: &mut rig::Harness<'_>| -> Result<Out, String> {
                // The harness runs on the main lcore's CPU. A warm run spins
                // there, unless a worker shares that CPU (see
                // default_lcores): it must refill the rings in time. A cold
                // run sleeps between looks, as it always has: spinning beside
                // a worker (an SMT sibling on a VM, and the counters' cache
                // lines) cost the worker about a tenth of its rate here.
                let spin = workers < cpus;
                let mut out = Vec::new();
                let mut untimed = Vec::new();
                for &dir in &args.directions {
                    for mix in &mixes {
                        for &set in &args.sets {
                            h.spin = spin && set == WorkingSet::Warm;
                            let samples = (0..repeat)
                                .map(|_| match set {
                                    WorkingSet::Warm => {
                                        h.run_warm(warm_pool, dir, mix, packets, args.warm_set)
                                    }
                                    WorkingSet::Cold => h.run(dir, mix, packets).map(Some),
                                })
                                .collect::<Result<Option<Vec<_>>, _>>()?;
                            // A warm run the harness could not keep fed is
                            // left out, not figured (see warm.rs).
                            let Some(samples) = samples else {
                                untimed.push(format!(
                                    "{workers} workers, {p} peers, {} {} warm: not timed: in each of {} tries a worker ran dry inside the window (the harness, descheduled, did not refill its ring in time; a busy machine? a larger --warm-set gives it more slack)",
                                    dir.name(),
                                    mix.name,
                                    rig::ATTEMPTS
                                ));
                                continue;
                            };
                            let drops = samples.iter().map(|s| s.drops).sum();
                            let s = median(samples).ok_or("no sample")?;
                            let secs = s.cycles as f64 / h.tsc_hz() as f64;
                            out.push(Figure {
                                workers,
                                peers: p,
                                direction: dir,
                                set,
                                mix: mix.clone(),
                                mpps: s.packets as f64 / secs / 1e6,
                                cycles_per_packet: (s.cycles * workers as u64) as f64
                                    / s.packets.max(1) as f64,
                                drops,
                                stages: args
                                    .stages
                                    .then(|| s.stages.map(|c| c as f64 / s.packets.max(1) as f64)),
                            });
                        }
                    }
                }
                Ok((out, untimed))
            };
            let offload = !args.sw_checksum;
            let out = rig::phase(
                &eal,
                &pool,
                &lcores[..workers],
                keys,
                clock,
                offload,
                batch,
                None,
                run,
            )?;
            figures.extend(out.0);
            notes.extend(out.1);
        }
    }
    for p in [&pool, &warm_pool] {
        if p.in_use() != 0 {
            notes.push(format!("{} mbufs not back in {}", p.in_use(), p.name()));
        }
    }
    let r = report::Report {
        eal: &eal_args,
        sw_checksum: args.sw_checksum,
        cpus,
        tsc_hz: hz,
        packets,
        warm_set: args.warm_set,
        repeat,
        floors: &floors,
        mb_floors: &mb_floors,
        figures: &figures,
        notes: &notes,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r.json())?);
    } else {
        print!("{}", r.table());
    }
    if args.short {
        let report = flood_phase(
            &eal,
            (&pool, &warm_pool),
            &lcores,
            args,
            &SHORT_FLOOD,
            packets,
            repeat,
            cpus,
        )?;
        print_flood(&report, args.json)?;
    }
    Ok(())
}

/// Data packets per worker in a `--short` batch (see [`run`]).
const SHORT_PACKETS: usize = 16_384;

/// The flood rates `--short` measures.
const SHORT_FLOOD: [u64; 2] = [50_000, 500_000];

/// Prints a flood report as a table or JSON.
fn print_flood(report: &flood::FloodReport, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    if json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// One flood phase (`--flood`): the first of `--workers` workers, the
/// first of `--peers` peers (at least one per worker), their gates armed
/// with wgdp's key and a cookie secret, the handshake queue of `wgdp run`;
/// each rate on every working set of `--sets` (cold batches from the
/// first of `pools`, warm runs recycling `--warm-set` mbufs of the
/// second).
#[allow(clippy::too_many_arguments)]
fn flood_phase(
    eal: &Eal,
    (pool, warm): (&Mempool, &Mempool),
    lcores: &[u32],
    args: &BenchArgs,
    rates: &[u64],
    packets: usize,
    repeat: usize,
    cpus: usize,
) -> Result<flood::FloodReport, String> {
    let workers = args.workers.first().copied().unwrap_or(1);
    let peers = args.peers.first().copied().unwrap_or(1).max(workers as u32);
    let wgdp = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
    let keys = peers::handshakes(&wgdp, peers, workers, cpus)?;
    let clock = TscClock::new(rdtsc(), eal.tsc_hz());
    let mut checker = CookieChecker::new(wgdp.public_key());
    let secret = checker
        .rotate(clock.now(), &mut OsRng)
        .ok_or("no cookie secret was drawn")?;
    let (tx, rx) = crossbeam_channel::bounded(control::handshake::HANDSHAKE_QUEUE);
    let gate = rig::GateSetup {
        public_key: *wgdp.public_key(),
        secret,
        handshakes: tx,
    };
    let run = flood::FloodRun {
        rates,
        packets,
        repeat,
        sets: &args.sets,
        warm,
        warm_set: args.warm_set,
        wgdp: &wgdp,
        checker: &checker,
        handshakes: rx,
    };
    let report = rig::phase(
        eal,
        pool,
        &lcores[..workers],
        keys,
        clock,
        !args.sw_checksum,
        // The flood's figures compare data with and without a flood on
        // one-packet sealing.
        Batching::default(),
        Some(&gate),
        |h| run.measure(h, peers),
    )?;
    // Every flood frame's mbuf came back, dropped, queued or answered, warm
    // or cold (the warm set counts on it).
    for p in [pool, warm] {
        if p.in_use() != 0 {
            return Err(format!(
                "{} mbufs not back in {} after the flood",
                p.in_use(),
                p.name()
            ));
        }
    }
    Ok(report)
}

/// The worker loop's multi-buffer policy for `--aead` (`auto`: measured
/// on this CPU as `wgdp run` does at start-up; `multibuffer`: every burst),
/// noted in the report; transport keys made from here on keep their bytes
/// for the passes when there is one.
fn batch_policy(aead: &str, notes: &mut Vec<String>) -> Result<Batching, String> {
    let batching = match aead {
        "auto" => {
            let m = batch_policy::measure(protocol::crypto::transport_backend());
            let seen: Vec<String> = m
                .samples
                .iter()
                .map(|s| {
                    format!(
                        "{:?} {} B x{}: {:.0} vs {:.0} ns",
                        s.direction, s.len, s.burst, s.batched_ns, s.single_ns
                    )
                })
                .collect();
            notes.push(format!(
                "multi-buffer start-up measure (per packet, a pass vs {} one at a time): {}",
                m.against.name(),
                seen.join(", ")
            ));
            m.batching
        }
        "multibuffer" => {
            Batching::always().ok_or("--aead multibuffer: this CPU has neither AVX-512 nor AVX2")?
        }
        _ => Batching::default(),
    };
    for (way, p) in batching.ways() {
        notes.push(match p {
            Some(p) => format!(
                "worker loop multi-buffer {way}: {}, bursts of at least {} packets, those up to {} bytes together",
                p.engine.name(),
                p.min_burst,
                p.max_len
            ),
            None => format!("worker loop multi-buffer {way}: off (one packet a call)"),
        });
    }
    protocol::crypto::set_batch_keys(batching.is_on());
    Ok(batching)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lcores_put_worker_i_on_cpu_i_mod_cpus() {
        assert_eq!(default_lcores(1, 2), "0@0,1@1");
        assert_eq!(default_lcores(2, 2), "0@0,1@1,2@0");
        assert_eq!(default_lcores(3, 8), "0@0,1@1,2@2,3@3");
        assert_eq!(default_lcores(4, 4), "0@0,1@1,2@2,3@3,4@0");
        assert_eq!(default_lcores(2, 1), "0@0,1@0,2@0");
    }

    #[test]
    fn workers_up_to_the_cpus_are_taken_and_more_refused() {
        assert_eq!(check_workers(&[1, 2], Some(2)), Ok(()));
        assert_eq!(check_workers(&[1, 2, 4, 8, 15], Some(16)), Ok(()));
        let e = check_workers(&[1, 3], Some(2)).expect_err("3 workers on 2 CPUs");
        assert!(e.contains("3 workers") && e.contains("2 lcores"), "{e}");
        assert!(check_workers(&[0], Some(2)).is_err());
        assert!(check_workers(&[], Some(2)).is_err());
        // With --eal the EAL's lcores decide, not the CPUs.
        assert_eq!(check_workers(&[3], None), Ok(()));
        assert!(check_workers(&[0], None).is_err());
    }
}
