//! `wgdp bench --handshakes`: the responder's handshake capacity (issue
//! #25, a mass reconnect), with in-process initiators.
//!
//! Every initiation is a distinct peer's first since a restart (so the
//! static-static DH is not cached), built beforehand by the initiators on
//! all CPUs. The timed part is what wgdp does with it, on one thread
//! standing for the control thread: the workers' gate check (mac1, the
//! `CookieChecker` the gate calls), then either the control thread's own
//! X25519 work (`open_initiation`, `consume_initiation`, `create_response`)
//! or the handshake threads' (`control::handshake_pool`, then
//! `consume_prepared` and `create_response`), in the order the messages
//! came, with the control thread's bound on what is in flight. A response
//! is built for each (its keypair derived); a sample of them is checked
//! by its initiator afterwards, outside the timing.
//!
//! Figures:
//! - the X25519 floor of each implementation available here, and the
//!   issue's target derived from the fastest (0.8 / (4 DH) per thread);
//! - handshakes/s and the time for all peers with 0 (the control thread
//!   alone), 1 and N handshake threads;
//! - latency p50 and p99 at 50 % and 90 % of the best rate, messages
//!   offered at a steady pace (open loop: latency counts from the time a
//!   message was due, so a backlog shows).

use std::collections::HashMap;
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use control::handshake_pool::{HandshakePool, Prepared, Ready, Work};
use dataplane::command::HandshakeMessage;
use protocol::cookie::CookieChecker;
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::messages::RESPONSE_LEN;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use rand_core::OsRng;

/// Our static key in the bench.
const OURS: [u8; 32] = [0x42; 32];
/// Responses checked by their initiators after each run.
const CHECKED: usize = 64;

/// One initiator: its identity, its handshake state, its initiation.
struct Initiator {
    identity: StaticIdentity,
    handshake: PeerHandshake,
    msg: HandshakeMessage,
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
        let src =
            std::net::SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 51820));
        let msg = HandshakeMessage::new(src, [192, 0, 2, 1].into(), Instant::ZERO, &bytes, false)
            .expect("an initiation fits");
        Initiator {
            identity,
            handshake,
            msg,
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

/// The responder side: what the control thread holds for this.
struct Responder {
    identity: StaticIdentity,
    checker: CookieChecker,
    peers: HashMap<PublicKey, PeerHandshake>,
    pool: Option<HandshakePool>,
    next_index: u32,
    /// Responses by initiator index, for the check.
    responses: Vec<Option<[u8; RESPONSE_LEN]>>,
}

impl Responder {
    /// A responder that knows every initiator (no handshake yet), with
    /// `threads` handshake threads (0: none).
    fn new(inits: &[Initiator], threads: usize) -> Result<Self, String> {
        let identity = StaticIdentity::new(PrivateKey::from_bytes(OURS));
        let checker = CookieChecker::new(identity.public_key());
        let peers = inits
            .iter()
            .map(|i| {
                (
                    *i.identity.public_key(),
                    PeerHandshake::new(*i.identity.public_key(), None),
                )
            })
            .collect();
        let pool = match threads {
            0 => None,
            t => Some(
                HandshakePool::start(&OURS, t).map_err(|e| format!("handshake threads: {e}"))?,
            ),
        };
        Ok(Self {
            identity,
            checker,
            peers,
            pool,
            next_index: 0,
            responses: vec![None; inits.len()],
        })
    }

    /// Takes one message as the control thread does; `false` when the
    /// pool is full (the message stays where it was).
    fn take(&mut self, msg: &HandshakeMessage) -> bool {
        if self.checker.check_mac1(msg.bytes()).is_err() {
            return true;
        }
        match &mut self.pool {
            Some(pool) if pool.is_full() => false,
            Some(pool) => {
                pool.submit(msg.clone(), Some(Work::Initiation));
                true
            }
            None => {
                let consumed =
                    self.identity
                        .open_initiation(msg.bytes())
                        .ok()
                        .and_then(|pending| {
                            let key = *pending.remote_static();
                            let peer = self.peers.get_mut(&key)?;
                            peer.consume_initiation(pending, Instant::ZERO).ok()?;
                            Some(key)
                        });
                if let Some(key) = consumed {
                    self.answer(&key, msg);
                }
                true
            }
        }
    }

    /// Handles what the threads have finished, in order; returns how many.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some(Ready { msg, prepared }) =
            self.pool.as_mut().and_then(HandshakePool::next_ready)
        {
            n += 1;
            let Some(Prepared::Initiation(Ok(prepared))) = prepared else {
                continue;
            };
            let key = *prepared.remote_static();
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            if peer.consume_prepared(prepared, Instant::ZERO).is_ok() {
                self.answer(&key, &msg);
            }
        }
        n
    }

    /// Builds the response (and keypair) of a consumed initiation.
    fn answer(&mut self, key: &PublicKey, msg: &HandshakeMessage) {
        self.next_index += 1;
        let index = self.next_index;
        let Some(peer) = self.peers.get_mut(key) else {
            return;
        };
        if let Ok((response, _keypair)) = peer.create_response(index, Instant::ZERO, &mut OsRng) {
            // The initiation's sender index is the initiator's number.
            let sender = u32::from_le_bytes([
                msg.bytes()[4],
                msg.bytes()[5],
                msg.bytes()[6],
                msg.bytes()[7],
            ]);
            if let Some(slot) = self.responses.get_mut(sender as usize) {
                *slot = Some(response);
            }
        }
    }
}

/// One timed run: every initiation offered at `rate` a second (`None`: all
/// at once). Returns the elapsed time and, per handshake, its latency.
fn run_once(
    inits: &mut [Initiator],
    threads: usize,
    rate: Option<f64>,
    run: usize,
) -> Result<(Duration, Vec<Duration>), String> {
    let mut r = Responder::new(inits, threads)?;
    let n = inits.len();
    let mut due = Vec::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    let start = WallInstant::now();
    let due_at = |i: usize| match rate {
        Some(rate) => Duration::from_secs_f64(i as f64 / rate),
        None => Duration::ZERO,
    };
    let (mut offered, mut finished) = (0, 0);
    while finished < n {
        let now = start.elapsed();
        // The control thread's round: take what has arrived, then hand
        // back what the threads finished.
        let mut took = 0;
        while offered < n && took < 64 && due_at(offered) <= now {
            if !r.take(&inits[offered].msg) {
                break;
            }
            due.push(due_at(offered));
            offered += 1;
            took += 1;
            if r.pool.is_none() {
                latencies.push(start.elapsed().saturating_sub(due_at(offered - 1)));
                finished += 1;
            }
        }
        let done = r.drain();
        let at = start.elapsed();
        for _ in 0..done {
            latencies.push(at.saturating_sub(due[finished]));
            finished += 1;
        }
        if took == 0 && done == 0 {
            // As the control thread, give the CPU up when idle (it sleeps;
            // a yield keeps the latency figures the threads' own).
            std::thread::yield_now();
        }
    }
    let elapsed = start.elapsed();
    // Outside the timing: a sample of initiators accept their responses
    // (each initiator once: accepting ends its initiation; `run` picks a
    // different sample each time).
    let step = (n / CHECKED).max(1);
    for (i, init) in inits.iter_mut().enumerate().skip(run % step).step_by(step) {
        if init.handshake.pending_initiation_index().is_none() {
            continue;
        }
        let response = r.responses[i].ok_or_else(|| format!("no response for initiator {i}"))?;
        init.handshake
            .consume_response(&init.identity, &response, Instant::ZERO)
            .map_err(|e| format!("initiator {i} refused its response: {e}"))?;
    }
    let answered = r.responses.iter().filter(|x| x.is_some()).count();
    if answered != n {
        return Err(format!("{answered} of {n} initiations answered"));
    }
    Ok((elapsed, latencies))
}

/// Percentile `p` (0..=100) of sorted durations, in microseconds.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Microseconds per call of `f`, the median of 5 rounds of `iters`.
fn per_call(iters: usize, mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = WallInstant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

/// The X25519 floor: (name, microseconds per operation).
fn x25519_floor(iters: usize) -> Vec<(&'static str, f64)> {
    let a = PrivateKey::generate(&mut OsRng);
    let b = PrivateKey::generate(&mut OsRng).public_key();
    let dalek_dh = per_call(iters, || {
        std::hint::black_box(a.dh(std::hint::black_box(&b)).ok());
    });
    let dalek_base = per_call(iters, || {
        std::hint::black_box(PrivateKey::from_bytes(std::hint::black_box(OURS)).public_key());
    });
    // ring: X25519 only with an ephemeral key, which agree_ephemeral
    // consumes (no static-key DH: not usable for `es`/`ss`/`se`); the
    // figure is a key generation, its public key and one DH.
    let rng = ring::rand::SystemRandom::new();
    let peer = ring::agreement::UnparsedPublicKey::new(&ring::agreement::X25519, *b.as_bytes());
    let ring_all = per_call(iters, || {
        let Ok(k) = ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::X25519, &rng)
        else {
            return;
        };
        let _ = std::hint::black_box(k.compute_public_key());
        let _ = ring::agreement::agree_ephemeral(k, &peer, |s| s[0]);
    });
    let dalek_all = per_call(iters, || {
        let k = PrivateKey::generate(&mut OsRng);
        std::hint::black_box(k.public_key());
        std::hint::black_box(k.dh(&b).ok());
    });
    vec![
        ("x25519-dalek DH (in use)", dalek_dh),
        ("x25519-dalek public key (base point)", dalek_base),
        ("x25519-dalek keygen + public + DH", dalek_all),
        ("ring keygen + public + DH (ephemeral only)", ring_all),
    ]
}

/// Runs `wgdp bench --handshakes` and prints its report.
pub fn run(short: bool, peers: usize, threads: &[usize], json: bool) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    let n = if short { peers.min(2000) } else { peers };
    if n == 0 {
        return Err("--handshake-peers must be at least 1".into());
    }
    let floor = x25519_floor(if short { 200 } else { 2000 });
    let dh = floor[0].1;
    let target = 0.8 / (4.0 * dh * 1e-6);
    let t0 = WallInstant::now();
    let mut inits = initiators(n, cpus);
    let prep = t0.elapsed();

    // Capacity: every peer at once.
    let mut capacity = Vec::new();
    for (run, &t) in threads.iter().enumerate() {
        let (elapsed, _) = run_once(&mut inits, t, None, run)?;
        capacity.push((t, elapsed, n as f64 / elapsed.as_secs_f64()));
    }
    let best = capacity.iter().map(|c| c.2).fold(0.0, f64::max);
    let best_threads = capacity.iter().find(|c| c.2 == best).map_or(0, |c| c.0);
    // Latency at a steady 50 % and 90 % of the best rate.
    let mut latency = Vec::new();
    for (k, share) in [0.5, 0.9].into_iter().enumerate() {
        let run = threads.len() + k;
        let (_, mut l) = run_once(&mut inits, best_threads, Some(best * share), run)?;
        l.sort();
        latency.push((share, percentile(&l, 50.0), percentile(&l, 99.0)));
    }

    if json {
        let v = serde_json::json!({
            "cpus": cpus,
            "peers": n,
            "initiations_built_s": prep.as_secs_f64(),
            "x25519_us": floor.iter().map(|(k, v)| (k.to_string(), *v)).collect::<HashMap<_, _>>(),
            "target_per_thread": target,
            "capacity": capacity.iter().map(|(t, e, r)| serde_json::json!({
                "threads": t, "seconds": e.as_secs_f64(), "handshakes_per_s": r
            })).collect::<Vec<_>>(),
            "latency_threads": best_threads,
            "latency": latency.iter().map(|(s, p50, p99)| serde_json::json!({
                "load": s, "p50_us": p50, "p99_us": p99
            })).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("== X25519, microseconds per operation (one thread)");
    for (name, us) in &floor {
        println!("  {name:<44} {us:8.1}");
    }
    println!("  target: 0.8 / (4 x {dh:.1} us) = {target:.0} handshakes/s per handshake thread");
    println!(
        "== {n} distinct peers, one initiation each, all at once ({cpus} CPUs; initiations built in {:.1} s)",
        prep.as_secs_f64()
    );
    println!("  threads  seconds  handshakes/s  per thread  of target");
    for (t, e, r) in &capacity {
        let per = r / (*t).max(1) as f64;
        println!(
            "  {:>7}  {:>7.2}  {:>12.0}  {:>10.0}  {:>8.2}{}",
            if *t == 0 {
                "control".to_string()
            } else {
                t.to_string()
            },
            e.as_secs_f64(),
            r,
            per,
            per / target,
            if *t > cpus {
                "  (more threads than CPUs)"
            } else {
                ""
            }
        );
    }
    println!("== latency at a steady share of {best:.0}/s ({best_threads} threads), microseconds");
    println!("  load  p50  p99");
    for (s, p50, p99) in &latency {
        println!("  {:>3.0} %  {p50:.0}  {p99:.0}", s * 100.0);
    }
    Ok(())
}
