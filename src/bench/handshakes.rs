//! `wgdp bench --handshakes`: the responder's handshake capacity (issue
//! #25, a mass reconnect), with in-process initiators.
//!
//! Every initiation is a distinct peer's first since a restart, built
//! beforehand by the initiators on all CPUs. Each run waits until every
//! configured peer's static-static DH is computed ahead (by the handshake
//! threads, `control::static_statics`, or by the idle control thread when
//! there are none; timed and reported) before the first initiation, as a
//! standby instance or a restart some seconds before the peers' reconnect
//! would have. Each run starts wgdp in one process (`control::inproc`: the
//! real worker on a worker lcore, the real control thread and its
//! handshake threads, every peer configured) and sends the initiations
//! into its tunnel port: the worker's gate checks mac1 and queues them,
//! the control thread takes them (with handshake threads: hands the
//! X25519 work out and takes the results back in order), answers, and the
//! responses come out of the tunnel port, where they are timed. A sample
//! of them is accepted by its initiator afterwards, outside the timing.
//!
//! Figures:
//! - the X25519 floor of every implementation available here (the one in
//!   use, aws-lc-rs, and x25519-dalek and ring), and the target
//!   derived from the one in use (0.8 / (4 DH) per thread);
//! - handshakes/s and the time for all peers with 0 (the control thread
//!   alone), 1 and N handshake threads: initiations are sent as fast as
//!   wgdp answers, at most WINDOW unanswered, so that the gate's queue
//!   stays below its under-load mark (an eighth of 4096) and no peer is
//!   sent a cookie (which would add a round trip, not work);
//! - the CPU time per handshake of the handshake threads and of the
//!   control thread (from `/proc/self/task/*/schedstat`, over the timed
//!   part of a capacity run): what a thread does per handshake on a core
//!   of its own, whatever else shares the machine's CPUs, hence the rate
//!   a handshake thread gives (compared with the target) and the one at
//!   which the control thread's share becomes the limit;
//! - latency p50 and p99 at 50 % and 90 % of the best rate, messages
//!   offered at a steady pace (open loop: latency counts from the time a
//!   message was due, so a backlog shows).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use control::control::InitialPeer;
use control::inproc::{self, Network, Setup};
use control::peers::NewPeer;
use dpdk_sys::rte::{Burst, Eal};
use protocol::crypto::PrivateKey;
use protocol::messages::{COOKIE_REPLY_LEN, RESPONSE_LEN};
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use rand_core::OsRng;
use zeroize::Zeroizing;

/// Our static key in the bench.
const OURS: [u8; 32] = [0x42; 32];
/// Responses checked by their initiators after each run.
const CHECKED: usize = 64;
/// Initiations sent and not yet answered, at most, in a capacity run:
/// below the gate's under-load mark (512 of the 4096-message queue).
const WINDOW: usize = 384;
/// Before the first initiation: the worker applies the peers' commands.
const SETTLE: Duration = Duration::from_millis(300);
/// The longest a run may take.
const RUN_LIMIT: Duration = Duration::from_secs(900);
/// How often a run says how far it is (on stderr).
const PROGRESS: Duration = Duration::from_secs(10);
/// The driver's sleep when it has nothing to send or take.
const IDLE: Duration = Duration::from_micros(50);
/// Seconds of offered load per latency run (at least 200 peers).
const LATENCY_SECONDS: f64 = 3.0;

/// One initiator: its identity, its handshake state, its initiation's
/// frame.
struct Initiator {
    identity: StaticIdentity,
    handshake: PeerHandshake,
    frame: Vec<u8>,
}

/// Builds `n` initiators and their initiations on `cpus` threads.
fn initiators(n: usize, cpus: usize) -> Vec<Initiator> {
    let ours = PrivateKey::from_bytes(OURS).public_key();
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let one = |i: usize| {
        let identity = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
        let mut handshake = PeerHandshake::new(ours, None);
        let bytes = handshake
            .create_initiation(
                &identity,
                i as u32,
                Tai64N::from_unix(since),
                Instant::ZERO,
                &mut OsRng,
            )
            .expect("an initiation to a valid key");
        // 198.18.0.0/15 (RFC 2544's benchmark range), behind the gateway.
        let ip =
            std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 0)) + i as u32);
        let src = std::net::SocketAddr::from((ip, 51820));
        let frame = inproc::frame_to_wgdp(src, &bytes).expect("an initiation's frame");
        Initiator {
            identity,
            handshake,
            frame,
        }
    };
    let per = n.div_ceil(cpus.max(1));
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..n)
            .step_by(per.max(1))
            .map(|start| {
                s.spawn(move || (start..(start + per).min(n)).map(one).collect::<Vec<_>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("initiator thread"))
            .collect()
    })
}

/// What one run gave.
struct Timed {
    /// From the start of wgdp to every configured peer's static-static DH
    /// computed ahead (by the handshake threads, or by the control thread
    /// without them).
    ahead: Duration,
    /// From the first initiation sent to the last response out.
    elapsed: Duration,
    /// Per handshake: from when its initiation was due (sent, in a
    /// capacity run) to its response.
    latencies: Vec<Duration>,
    /// Initiations answered with a cookie reply (the gate was under load):
    /// not counted as handshakes.
    cookies: usize,
    /// CPU time of the handshake threads and of the control thread over
    /// `elapsed`.
    cpu: ThreadCpu,
}

/// CPU time of wgdp's handshake threads (together) and control thread.
#[derive(Clone, Copy, Default)]
struct ThreadCpu {
    handshake_threads: Duration,
    control: Duration,
}

impl ThreadCpu {
    /// Now, from `/proc/self/task/*/schedstat` (nanoseconds on a CPU): the
    /// handshake threads by name (`wgdp-hs*`), the control thread by its
    /// id (`control`: the thread that runs wgdp's main lcore).
    fn now(control: i32) -> Self {
        let mut cpu = Self::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let on_cpu = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(Duration::ZERO, Duration::from_nanos);
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.starts_with("wgdp-hs") {
                cpu.handshake_threads += on_cpu;
            } else if task.file_name().to_str().and_then(|t| t.parse().ok()) == Some(control) {
                cpu.control = on_cpu;
            }
        }
        cpu
    }

    /// What was spent since `before`.
    fn since(self, before: Self) -> Self {
        Self {
            handshake_threads: self
                .handshake_threads
                .saturating_sub(before.handshake_threads),
            control: self.control.saturating_sub(before.control),
        }
    }
}

/// The little-endian index at `at` of a message whose length was checked.
fn index_at(msg: &[u8], at: usize) -> usize {
    u32::from_le_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]) as usize
}

/// wgdp's configuration: every initiator a peer, `threads` handshake
/// threads.
fn setup(inits: &[Initiator], threads: usize) -> Setup {
    Setup {
        private_key: Zeroizing::new(OURS),
        peers: inits
            .iter()
            .map(|i| InitialPeer {
                peer: NewPeer {
                    public_key: *i.identity.public_key(),
                    preshared_key: None,
                    endpoint: None,
                    persistent_keepalive: None,
                    lanes: 1,
                },
                allowed_ips: Vec::new(),
            })
            .collect(),
        handshake_threads: threads,
    }
}

/// Sends the first `n` initiations into wgdp at `rate` a second (`None`:
/// as fast as it answers, at most WINDOW unanswered) and times their
/// responses; keeps those of the initiators `sampled` picks.
fn drive(
    net: &mut Network<'_>,
    inits: &[Initiator],
    n: usize,
    rate: Option<f64>,
    sampled: impl Fn(usize) -> bool,
    control: i32,
) -> Result<(Timed, HashMap<usize, [u8; RESPONSE_LEN]>), String> {
    let started = WallInstant::now();
    // Every configured peer's static-static DH computed ahead: by the
    // handshake threads, or by the control thread when it has none.
    let computed = || match &net.static_statics {
        Some(s) => s.computed(),
        None => net.control.static_statics_ahead.load(Ordering::Relaxed) as usize,
    };
    while computed() < inits.len() {
        if started.elapsed() > RUN_LIMIT {
            return Err(format!(
                "{} of {} static-static DHs computed in {RUN_LIMIT:?}",
                computed(),
                inits.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let ahead = started.elapsed();
    std::thread::sleep(SETTLE);
    let mut due = vec![Duration::ZERO; n];
    let mut done: Vec<Option<Duration>> = vec![None; n];
    let mut cookied = vec![false; n];
    let mut kept = HashMap::new();
    let mut burst: Burst = Burst::new();
    let (mut sent, mut answered) = (0, 0);
    let cpu_before = ThreadCpu::now(control);
    let start = WallInstant::now();
    let mut next_progress = PROGRESS;
    let due_at = |i: usize| rate.map(|r| Duration::from_secs_f64(i as f64 / r));
    while answered < n {
        if start.elapsed() > RUN_LIMIT {
            return Err(format!(
                "{answered} of {n} answered ({sent} sent) in {RUN_LIMIT:?}"
            ));
        }
        if start.elapsed() >= next_progress {
            eprintln!("  ... {answered} of {n} answered, {sent} sent");
            next_progress += PROGRESS;
        }
        let mut took = 0;
        while sent < n && took < 64 {
            let now = start.elapsed();
            let go = match due_at(sent) {
                Some(d) => d <= now,
                None => sent - answered < WINDOW,
            };
            if !go || !net.send(&inits[sent].frame) {
                break;
            }
            due[sent] = due_at(sent).unwrap_or(now);
            sent += 1;
            took += 1;
        }
        let at = start.elapsed();
        // Responses come from the control thread, cookie replies from the
        // worker's gate.
        net.tun_control_out.rx_burst(&mut burst);
        net.tun_out.rx_burst(&mut burst);
        let got = burst.len();
        for m in burst.drain() {
            let Some((_, payload)) = inproc::from_wgdp(m.data()) else {
                continue;
            };
            let (response, i) = match (payload.first(), payload.len()) {
                // A response's receiver index is the initiation's sender
                // index, which is the initiator's number.
                (Some(2), RESPONSE_LEN) => (true, index_at(payload, 8)),
                (Some(3), COOKIE_REPLY_LEN) => (false, index_at(payload, 4)),
                _ => continue,
            };
            if i >= n || done[i].is_some() || cookied[i] {
                continue;
            }
            answered += 1;
            if !response {
                cookied[i] = true;
                continue;
            }
            done[i] = Some(at.saturating_sub(due[i]));
            if sampled(i) {
                if let Ok(r) = <[u8; RESPONSE_LEN]>::try_from(payload) {
                    kept.insert(i, r);
                }
            }
        }
        if took == 0 && got == 0 {
            // Give the CPUs to wgdp's threads (this is a 2-CPU machine's
            // neighbour of them): a poll every IDLE at most.
            std::thread::sleep(IDLE);
        }
    }
    let elapsed = start.elapsed();
    let cpu = ThreadCpu::now(control).since(cpu_before);
    let timed = Timed {
        ahead,
        cpu,
        elapsed,
        latencies: done.into_iter().flatten().collect(),
        cookies: cookied.iter().filter(|&&c| c).count(),
    };
    Ok((timed, kept))
}

/// One run through a fresh wgdp with `threads` handshake threads: the
/// first `n` initiators at `rate`; `run` picks which initiators check
/// their responses afterwards (each initiator once: accepting ends its
/// initiation).
fn run_once(
    eal: &Eal,
    inits: &mut [Initiator],
    n: usize,
    threads: usize,
    rate: Option<f64>,
    run: usize,
) -> Result<Timed, String> {
    let lcore = *eal
        .worker_lcores()
        .first()
        .ok_or("EAL has no worker lcore for the worker")?;
    let step = (n / CHECKED).max(1);
    let sampled = |i: usize| i % step == run % step;
    let shared: &[Initiator] = inits;
    // wgdp's control thread is this one (`inproc::run` runs it here):
    // `/proc/thread-self` is `PID/task/TID`.
    let control = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|l| l.file_name()?.to_str()?.parse().ok())
        .ok_or("no /proc/thread-self: the control thread's CPU time is not measurable")?;
    let (timed, kept) = inproc::run(eal, lcore, setup(shared, threads), |net| {
        drive(net, shared, n, rate, sampled, control)
    })??;
    for (i, response) in kept {
        let init = &mut inits[i];
        if init.handshake.pending_initiation_index().is_none() {
            continue;
        }
        init.handshake
            .consume_response(&init.identity, &response, Instant::ZERO)
            .map_err(|e| format!("initiator {i} refused its response: {e}"))?;
    }
    Ok(timed)
}

/// Percentile `p` (0..=100) of sorted durations, in microseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Microseconds of this thread's CPU time per call of `f`, the median of
/// 5 rounds of `iters` (CPU time, not wall time: other processes on the
/// machine's CPUs do not count, as they do not in the threads' CPU time
/// per handshake it is compared with).
fn per_call(iters: usize, mut f: impl FnMut()) -> f64 {
    let cpu = || inproc::thread_cpu_time().unwrap_or_default();
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = cpu();
            for _ in 0..iters {
                f();
            }
            cpu().saturating_sub(t).as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

/// The X25519 floor of each implementation: (name, nanoseconds per DH,
/// nanoseconds per public key from a private key).
type Floor = Vec<(&'static str, f64, f64)>;

/// Measures every X25519 implementation here, the one in use first.
fn x25519_floor(iters: usize) -> Floor {
    let ns = |f: &mut dyn FnMut()| per_call(iters, f) * 1e3;
    let peer = PrivateKey::generate(&mut OsRng).public_key();
    // In use: aws-lc-rs, through protocol::crypto (a static key, as the
    // responder's `es` and `ss` need).
    let ours = PrivateKey::from_bytes(OURS);
    let aws_dh = ns(&mut || {
        std::hint::black_box(ours.dh(std::hint::black_box(&peer)).ok());
    });
    let aws_public = ns(&mut || {
        std::hint::black_box(PrivateKey::from_bytes(std::hint::black_box(OURS)).public_key());
    });
    // x25519-dalek's static secret.
    let dalek = x25519_dalek::StaticSecret::from(OURS);
    let dalek_peer = x25519_dalek::PublicKey::from(*peer.as_bytes());
    let dalek_dh = ns(&mut || {
        std::hint::black_box(dalek.diffie_hellman(std::hint::black_box(&dalek_peer)));
    });
    let dalek_public = ns(&mut || {
        let s = x25519_dalek::StaticSecret::from(std::hint::black_box(OURS));
        std::hint::black_box(x25519_dalek::PublicKey::from(&s));
    });
    // ring: X25519 only with an EphemeralPrivateKey that it generates
    // itself and agree_ephemeral consumes: no static key can be loaded,
    // so `es`/`ss` (responder) and `se` (initiator) cannot use it. Its
    // DH is the time of a generation plus one agreement, less a
    // generation alone.
    let rng = ring::rand::SystemRandom::new();
    let x = &ring::agreement::X25519;
    let ring_peer = ring::agreement::UnparsedPublicKey::new(x, *peer.as_bytes());
    let ring_gen = ns(&mut || {
        std::hint::black_box(ring::agreement::EphemeralPrivateKey::generate(x, &rng).ok());
    });
    let ring_gen_dh = ns(&mut || {
        if let Ok(k) = ring::agreement::EphemeralPrivateKey::generate(x, &rng) {
            std::hint::black_box(ring::agreement::agree_ephemeral(k, &ring_peer, |s| s[0]).ok());
        }
    });
    let ring_gen_public = ns(&mut || {
        if let Ok(k) = ring::agreement::EphemeralPrivateKey::generate(x, &rng) {
            std::hint::black_box(k.compute_public_key().ok());
        }
    });
    vec![
        ("aws-lc-rs (in use)", aws_dh, aws_public),
        ("x25519-dalek", dalek_dh, dalek_public),
        (
            "ring (ephemeral keys only: no static DH)",
            (ring_gen_dh - ring_gen).max(0.0),
            (ring_gen_public - ring_gen).max(0.0),
        ),
    ]
}

/// One capacity run's figures.
struct Capacity {
    threads: usize,
    seconds: f64,
    /// Handshakes completed a second.
    rate: f64,
    cookies: usize,
    /// The time wgdp took to compute every peer's static-static DH.
    ahead: Duration,
    /// CPU microseconds per handshake completed: all handshake threads
    /// together, and the control thread.
    threads_us: f64,
    control_us: f64,
}

impl Capacity {
    fn of(threads: usize, n: usize, timed: &Timed) -> Self {
        let completed = (n - timed.cookies).max(1) as f64;
        let us = |d: Duration| d.as_secs_f64() * 1e6 / completed;
        Self {
            threads,
            seconds: timed.elapsed.as_secs_f64(),
            rate: completed / timed.elapsed.as_secs_f64(),
            cookies: timed.cookies,
            ahead: timed.ahead,
            threads_us: us(timed.cpu.handshake_threads),
            control_us: us(timed.cpu.control),
        }
    }

    /// The threads column: "control" for none.
    fn label(&self) -> String {
        if self.threads == 0 {
            "control".to_string()
        } else {
            self.threads.to_string()
        }
    }
}

/// Runs `wgdp bench --handshakes` on `eal` and prints its report.
pub fn run(
    eal: &Eal,
    short: bool,
    peers: usize,
    threads: &[usize],
    json: bool,
) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    let n = if short { peers.min(2000) } else { peers };
    if n == 0 || n > 1 << 17 {
        return Err("--handshake-peers must be in 1..=131072".into());
    }
    let iters = if short { 200 } else { 2000 };
    let mut floor = x25519_floor(iters);
    let t0 = WallInstant::now();
    let mut inits = initiators(n, cpus);
    let prep = t0.elapsed();

    // Capacity: every peer, as fast as wgdp answers.
    let mut capacity = Vec::new();
    for (run, &threads) in threads.iter().enumerate() {
        let timed = run_once(eal, &mut inits, n, threads, None, run)?;
        capacity.push(Capacity::of(threads, n, &timed));
    }
    // The floor again after the capacity runs: the faster of the two
    // (the machine's load moves it) sets the target.
    for (f, again) in floor.iter_mut().zip(x25519_floor(iters)) {
        f.1 = f.1.min(again.1);
        f.2 = f.2.min(again.2);
    }
    let dh_us = floor[0].1 / 1e3;
    let target = 0.8 / (4.0 * dh_us * 1e-6);
    let best = capacity.iter().map(|c| c.rate).fold(0.0, f64::max);
    let best_threads = capacity
        .iter()
        .find(|c| c.rate == best)
        .map_or(0, |c| c.threads);
    // Latency at a steady 50 % and 90 % of the best rate.
    let offered = n.min(((best * LATENCY_SECONDS) as usize).max(200));
    let mut latency = Vec::new();
    for (k, share) in [0.5, 0.9].into_iter().enumerate() {
        let run = capacity.len() + k;
        let timed = run_once(
            eal,
            &mut inits,
            offered,
            best_threads,
            Some(best * share),
            run,
        )?;
        let mut l = timed.latencies;
        l.sort();
        latency.push((
            share,
            percentile(&l, 50.0),
            percentile(&l, 99.0),
            timed.cookies,
        ));
    }

    if json {
        let v = serde_json::json!({
            "cpus": cpus,
            "peers": n,
            "initiations_built_s": prep.as_secs_f64(),
            "x25519": floor.iter().map(|(k, dh, public)| serde_json::json!({
                "implementation": k, "dh_ns": dh, "public_key_ns": public
            })).collect::<Vec<_>>(),
            "target_per_thread": target,
            "capacity": capacity.iter().map(|c| serde_json::json!({
                "threads": c.threads, "seconds": c.seconds, "handshakes_per_s": c.rate,
                "cookies": c.cookies,
                "static_statics_ahead_s": c.ahead.as_secs_f64(),
                "handshake_threads_cpu_us_per_handshake": c.threads_us,
                "control_cpu_us_per_handshake": c.control_us,
            })).collect::<Vec<_>>(),
            "latency_threads": best_threads,
            "latency_peers": offered,
            "latency": latency.iter().map(|(s, p50, p99, c)| serde_json::json!({
                "load": s, "p50_us": p50, "p99_us": p99, "cookies": c
            })).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("== X25519, nanoseconds of CPU time per operation (one thread; the faster of a measurement before and after the capacity runs)");
    println!(
        "  {:<44} {:>8} {:>10}",
        "implementation", "DH", "public key"
    );
    for (name, dh, public) in &floor {
        println!("  {name:<44} {dh:8.0} {public:10.0}");
    }
    println!("  target: 0.8 / (4 x {dh_us:.1} us) = {target:.0} handshakes/s per handshake thread");
    println!(
        "== {n} distinct peers, one initiation each, through wgdp in one process ({cpus} CPUs; initiations built in {:.1} s; at most {WINDOW} unanswered)",
        prep.as_secs_f64()
    );
    println!("  threads  seconds  handshakes/s  per thread  of target  cookies  ss ahead, s");
    for c in &capacity {
        let per = c.rate / c.threads.max(1) as f64;
        println!(
            "  {:>7}  {:>7.2}  {:>12.0}  {:>10.0}  {:>9.2}  {:>7}  {:>11}{}",
            c.label(),
            c.seconds,
            c.rate,
            per,
            per / target,
            c.cookies,
            format!("{:.2}", c.ahead.as_secs_f64()),
            if c.threads > cpus {
                "  (more threads than CPUs)"
            } else {
                ""
            }
        );
    }
    println!("== CPU time per handshake, microseconds (what each thread would give on a core of its own)");
    println!(
        "  threads  handshake threads  a thread's rate  of target  control thread  its limit, /s"
    );
    for c in &capacity {
        let own = 1e6 / c.threads_us;
        println!(
            "  {:>7}  {:>17}  {:>15}  {:>9}  {:>14.1}  {:>13.0}",
            c.label(),
            if c.threads == 0 {
                "-".to_string()
            } else {
                format!("{:.1}", c.threads_us)
            },
            if c.threads == 0 {
                "-".to_string()
            } else {
                format!("{own:.0}")
            },
            if c.threads == 0 {
                "-".to_string()
            } else {
                format!("{:.2}", own / target)
            },
            c.control_us,
            1e6 / c.control_us,
        );
    }
    println!("== latency at a steady share of {best:.0}/s ({best_threads} threads, {offered} peers), microseconds");
    println!("  load  p50  p99  cookies");
    for (s, p50, p99, c) in &latency {
        println!("  {:>3.0} %  {p50:.0}  {p99:.0}  {c}", s * 100.0);
    }
    Ok(())
}
