//! `wgdp bench --flood RATE[,RATE...]`: the handshake gate under a flood
//! of spoofed initiations, measured where the generator costs nothing.
//!
//! The flood's frames are built before any timing and mixed into the
//! tunnel RX batches of the production worker loop (`rig`), after the data
//! messages, at `RATE / data rate` frames per data message (calibrated on
//! a first batch, so the flood arrives at about `RATE` per second while the
//! data is forwarded). Each rate is measured on every working set asked for
//! (`--sets`, see [`super::warm`]), each against its own unloaded figure
//! taken in the same run: **warm**, the data messages and the flood's
//! frames recycled through `--warm-set` mbufs per worker (in cache, as a
//! NIC with DDIO delivers them: the figure the targets use), and **cold**,
//! a fresh batch whose every frame arrives from DRAM. Of every 20 flood frames 16 carry random bytes (a
//! wrong mac1: dropped by the gate for one BLAKE2s), 3 a valid mac1 from a
//! spoofed source (a Diffie-Hellman on the control thread, or under load a
//! cookie reply from the worker), and 1 a valid mac2 too, from a cookie the
//! spoofing source fetched (queued under load, then up to the per-source
//! rate limiter and a Diffie-Hellman).
//!
//! A thread plays the control thread's handshake work: it drains the
//! workers' shared handshake queue (`control::handshake::HANDSHAKE_QUEUE`
//! slots, as in `wgdp run`), polling it as the control loop does (it
//! sleeps `IDLE_SLEEP` when the queue is empty, never blocked in a receive
//! that each queued message would have to wake with a system call on the
//! worker), applies the per-source rate limiter to what passed mac2 under
//! load, and runs the responder (one Diffie-Hellman for a spoofed
//! initiation, the whole handshake for the legitimate one). It
//! does nothing else, so it is the control thread at its fastest.
//!
//! At each rate a legitimate initiator (the protocol crate's initiator)
//! sends an initiation at the head of a flood batch: when the gate answers
//! with a cookie it consumes it and, after REKEY_TIMEOUT (virtual: added,
//! not slept), retries with mac2, as the kernel and wireguard-go do. Its
//! time to the response is the real time of each try plus the virtual
//! waits between them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, Receiver, Sender};
use dataplane::clock::TscClock;
use dataplane::command::HandshakeMessage;
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dpdk_sys::rte::{rdtsc, Burst, Mempool};
use protocol::constants::REKEY_TIMEOUT;
use protocol::cookie::{CookieChecker, CookieJar};
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::messages::{CookieReply, MessageType, INITIATION_LEN, RESPONSE_LEN};
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::ratelimit::RateLimiter;
use protocol::time::{Instant, Tai64N};
use rand_core::{OsRng, RngCore};

use super::rig::{Direction, Harness, Interleave};
use super::traffic::{self, Mix};
use super::warm::WorkingSet;

mod report;
pub use report::FloodReport;
use report::{FloodFigure, Legit, SetFigure};

/// Spoofed sources (one per prebuilt frame, in 100.64.0.0/10).
const SOURCES: usize = 4000;
/// Of every 20 flood frames: random bytes, valid mac1, valid mac2.
const PATTERN: (usize, usize, usize) = (16, 3, 1);
/// The legitimate initiator's address.
const LEGIT_SRC: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77)), 51821);
/// The legitimate initiator's sender index.
const LEGIT_INDEX: u32 = 0x4c65_6769;
/// Tries the legitimate initiator makes before it is reported as failed.
const LEGIT_TRIES: u32 = 4;
/// Entries of the rate limiter (as the control thread's).
const LIMITER_ENTRIES: usize = 8192;
/// The least data messages per worker in a flood batch (the flood per data
/// message is capped so that a batch still fits `--packets`).
const MIN_DATA: usize = 64;
/// The harness's sleep between looks in a warm flood run: 1024 mbufs
/// last about 250 us at 4 Mpps, and a sleep is late by the timer slack
/// (50 us) and more on a busy machine.
const WARM_NAP: Duration = Duration::from_micros(20);
/// The stand-in control thread's name.
const CONTROL_THREAD: &str = "bench-control";
/// How long the harness waits for the control thread's backlog.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// The flood's prebuilt frames and where the next one comes from.
pub struct FloodFrames {
    frames: Vec<Vec<u8>>,
    next: usize,
    /// Flood frames per data message.
    per_data: f64,
    /// The fraction of a frame owed to each worker.
    owed: Vec<f64>,
    /// A frame to put at the head of worker 0's next batch.
    head: Option<Vec<u8>>,
}

impl Interleave for FloodFrames {
    fn after(&mut self, w: usize, k: usize) -> Vec<&[u8]> {
        let mut picks = Vec::new();
        let frames = self.frames.len();
        if let Some(owed) = self.owed.get_mut(w).filter(|_| frames > 0) {
            *owed += self.per_data;
            while *owed >= 1.0 {
                *owed -= 1.0;
                picks.push(self.next);
                self.next = (self.next + 1) % frames;
            }
        }
        let mut out: Vec<&[u8]> = Vec::with_capacity(picks.len() + 1);
        if w == 0 && k == 0 {
            out.extend(self.head.as_deref());
        }
        out.extend(picks.iter().map(|&i| self.frames[i].as_slice()));
        out
    }
}

/// A random initiation from `src` with a valid mac1 (and mac2 when `jar`
/// holds a cookie for `src`).
fn spoofed(jar: &mut CookieJar, now: Instant) -> [u8; INITIATION_LEN] {
    let mut m = [0u8; INITIATION_LEN];
    OsRng.fill_bytes(&mut m);
    m[..4].copy_from_slice(&(MessageType::Initiation as u32).to_le_bytes());
    jar.add_macs(&mut m, now);
    m
}

/// Builds the flood's frames: [`PATTERN`] over [`SOURCES`] spoofed sources;
/// the mac2 ones fetch their cookie from `checker` (the workers' secret)
/// through a real cookie reply.
fn build_frames(
    wgdp: &PublicKey,
    checker: &CookieChecker,
    now: Instant,
) -> Result<Vec<Vec<u8>>, String> {
    let (garbage, mac1, _) = PATTERN;
    let period = PATTERN.0 + PATTERN.1 + PATTERN.2;
    let base = u32::from(Ipv4Addr::new(100, 64, 0, 0));
    (0..SOURCES)
        .map(|i| {
            let ip = Ipv4Addr::from(base + i as u32);
            let src = SocketAddr::new(IpAddr::V4(ip), 1024 + (i % 60_000) as u16);
            let mut jar = CookieJar::new(wgdp);
            let msg = match i % period {
                k if k < garbage => {
                    let mut m = [0u8; INITIATION_LEN];
                    OsRng.fill_bytes(&mut m);
                    m[..4].copy_from_slice(&(MessageType::Initiation as u32).to_le_bytes());
                    m
                }
                k if k < garbage + mac1 => spoofed(&mut jar, now),
                _ => {
                    let first = spoofed(&mut jar, now);
                    let reply = checker
                        .reply(&first, src, &mut OsRng)
                        .map_err(|e| format!("cookie reply: {e}"))?;
                    let view = CookieReply::new_checked(&reply[..])
                        .map_err(|e| format!("cookie reply: {e:?}"))?;
                    jar.consume_reply(&view, now)
                        .map_err(|e| format!("cookie: {e}"))?;
                    spoofed(&mut jar, now)
                }
            };
            traffic::udp_frame(src, &msg).map_err(|e| e.to_string())
        })
        .collect()
}

/// What the stand-in control thread counted.
#[derive(Default)]
struct ControlStats {
    handled: AtomicU64,
    rate_limited: AtomicU64,
    rejected: AtomicU64,
    max_depth: AtomicUsize,
}

/// The control thread's handshake work (see the module comment). Sends the
/// legitimate initiator's response, with the TSC when it was made.
fn play_control(
    rx: &Receiver<HandshakeMessage>,
    wgdp: &StaticIdentity,
    legit: &PublicKey,
    clock: TscClock,
    stats: &ControlStats,
    responses: &Sender<(u64, [u8; RESPONSE_LEN])>,
    stop: &AtomicBool,
) {
    let mut limiter = RateLimiter::new(LIMITER_ENTRIES, &mut OsRng);
    let mut responder = PeerHandshake::new(*legit, None);
    let mut index = 1u32;
    while !stop.load(Ordering::Relaxed) {
        // As the control loop: it polls, and sleeps when there was nothing.
        // Blocked in a receive, it would have each message a worker queues
        // wake it, a system call on the worker that `wgdp run` never makes.
        let Ok(msg) = rx.try_recv() else {
            thread::sleep(control::control::IDLE_SLEEP);
            continue;
        };
        stats.max_depth.fetch_max(rx.len() + 1, Ordering::Relaxed);
        let now = clock.now();
        if msg.under_load && !limiter.allow(msg.src.ip(), now) {
            stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            stats.handled.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let answered = MessageType::of(msg.bytes())
            .ok()
            .filter(|&t| t == MessageType::Initiation)
            .and_then(|_| wgdp.open_initiation(msg.bytes()).ok())
            .filter(|p| p.remote_static() == legit)
            .and_then(|p| responder.consume_initiation(p, now).ok())
            .and_then(|()| {
                index = index.wrapping_add(1);
                responder.create_response(index, now, &mut OsRng).ok()
            });
        match answered {
            Some((response, _keypair)) => {
                let _ = responses.send((rdtsc(), response));
            }
            None => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
            }
        }
        stats.handled.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counter totals over the workers.
fn total(
    counters: &[std::sync::Arc<WorkerCounters>],
    read: impl Fn(&WorkerCounters) -> u64,
) -> u64 {
    counters.iter().map(|c| read(c)).sum()
}

/// The legitimate initiator's cookie reply among what the workers sent on
/// the tunnel port (everything else there is freed).
fn legit_cookie(h: &mut Harness<'_>) -> Option<Vec<u8>> {
    let mut found = None;
    let mut b: Burst = Burst::new();
    for f in &mut h.feeds {
        while f.tun_rx.rx_burst(&mut b) > 0 {
            for m in b.drain() {
                let d = m.data();
                // IPv4 without options: destination at 30..34, UDP at 34.
                let to_legit = d.len() >= 42 + 4
                    && d[30..34] == [192, 0, 2, 77]
                    && d[36..38] == LEGIT_SRC.port().to_be_bytes();
                if to_legit && found.is_none() {
                    found = Some(d[42..].to_vec());
                }
            }
        }
    }
    found
}

/// Everything one flood run needs besides the harness.
pub struct FloodRun<'a> {
    /// The flood rates asked for, per second.
    pub rates: &'a [u64],
    /// Data messages per worker in an unloaded batch; a flood batch holds
    /// at most as many frames in all.
    pub packets: usize,
    /// Batches per figure.
    pub repeat: usize,
    /// The working sets measured at each rate, in this order.
    pub sets: &'a [WorkingSet],
    /// The warm runs' pool (see [`super::warm::pool_size`]).
    pub warm: &'a Mempool,
    /// Mbufs per worker a warm run recycles.
    pub warm_set: usize,
    /// wgdp's identity (the gates' mac1 key, the responder).
    pub wgdp: &'a StaticIdentity,
    /// The cookie checker whose secret the workers have.
    pub checker: &'a CookieChecker,
    /// The handshake queue's receiving end.
    pub handshakes: Receiver<HandshakeMessage>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The median of a figure's batches, those that could be timed.
fn median_timed(v: Vec<Option<f64>>) -> Option<f64> {
    median(v.into_iter().flatten().collect())
}

impl FloodRun<'_> {
    /// Data Mpps per worker of one timed batch on working set `set`;
    /// `None` when a warm batch could not be timed (see [`super::warm`]).
    fn mpps_per_worker(
        &self,
        h: &mut Harness<'_>,
        set: WorkingSet,
        mix: &Mix,
        n: usize,
    ) -> Result<Option<f64>, String> {
        let s = match set {
            // The harness does not spin (`h.spin` stays false): the
            // stand-in control thread shares its CPU, and a spinning
            // harness would take it. It naps briefly instead, so that it
            // refills the rings before the set runs out (see BENCHMARKS.md
            // for a busy machine).
            WorkingSet::Warm => {
                h.nap = WARM_NAP;
                let s = h.run_warm(self.warm, Direction::Decap, mix, n, self.warm_set);
                h.nap = super::rig::POLL;
                s?
            }
            WorkingSet::Cold => Some(h.run(Direction::Decap, mix, n)?),
        };
        Ok(s.map(|s| {
            let secs = s.cycles as f64 / h.tsc_hz() as f64;
            s.packets as f64 / secs / 1e6 / h.workers() as f64
        }))
    }

    /// Runs the unloaded figures, then each rate, on the phase's harness.
    pub fn measure(self, h: &mut Harness<'_>, peers: u32) -> Result<FloodReport, String> {
        let mix = Mix::fixed("64", 64);
        let workers = h.workers();
        let wgdp_public = *self.wgdp.public_key();
        let frames = build_frames(&wgdp_public, self.checker, h.clock.now())?;
        let legit_id = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
        let legit_public = *legit_id.public_key();
        let stats = ControlStats::default();
        let stop = AtomicBool::new(false);
        let (resp_tx, resp_rx) = bounded(16);
        let clock = h.clock;
        let rx = self.handshakes.clone();
        thread::scope(|s| {
            let control = thread::Builder::new()
                .name(CONTROL_THREAD.into())
                .spawn_scoped(s, || {
                    play_control(
                        &rx,
                        self.wgdp,
                        &legit_public,
                        clock,
                        &stats,
                        &resp_tx,
                        &stop,
                    )
                })
                .map_err(|e| format!("the control thread: {e}"))?;
            let out = (|| {
                let mut unloaded = Vec::new();
                for &set in self.sets {
                    let runs = (0..self.repeat)
                        .map(|_| self.mpps_per_worker(h, set, &mix, self.packets))
                        .collect::<Result<_, _>>()?;
                    unloaded.push((set, median_timed(runs)));
                }
                let mut figures = Vec::new();
                let mut initiator = PeerHandshake::new(wgdp_public, None);
                let data_pps = |mpps: f64| mpps * 1e6 * workers as f64;
                let batch = |per_data: f64| {
                    ((self.packets as f64 / (1.0 + per_data)) as usize).max(MIN_DATA)
                };
                for &rate in self.rates {
                    let most = (self.packets / MIN_DATA).saturating_sub(1).max(1) as f64;
                    let per_data = |mpps: f64| (rate as f64 / data_pps(mpps).max(1.0)).min(most);
                    let mut flood = FloodFrames {
                        frames: frames.clone(),
                        next: 0,
                        per_data: 0.0,
                        owed: vec![0.0; workers],
                        head: None,
                    };
                    let mut sets = Vec::new();
                    // A set without an unloaded figure has nothing to be
                    // compared with: left out (its row says so).
                    for &(set, base) in &unloaded {
                        let Some(base) = base else { continue };
                        flood.per_data = per_data(base);
                        // Calibration: the data rate under this flood, twice
                        // (the ratio moves the rate it is derived from).
                        for _ in 0..2 {
                            h.interleave = Some(Box::new(flood_clone(&flood)));
                            let loaded =
                                self.mpps_per_worker(h, set, &mix, batch(flood.per_data))?;
                            if let Some(loaded) = loaded {
                                flood.per_data = per_data(loaded);
                            }
                        }
                        // The figure: loaded batches, each after an
                        // unloaded one of the same set, so that the share
                        // compares batches of the same minute (the
                        // unloaded rate drifts by more than the flood's
                        // cost between the start and the last rate).
                        let n = batch(flood.per_data);
                        let before = Counts::read(h, &stats);
                        // The flood waits here while an unloaded batch
                        // runs, and goes on where it stopped.
                        let mut parked: Option<Box<dyn Interleave + Send>> =
                            Some(Box::new(flood_clone(&flood)));
                        h.interleave = None;
                        let (mut bases, mut runs) = (Vec::new(), Vec::new());
                        for _ in 0..self.repeat {
                            bases.push(self.mpps_per_worker(h, set, &mix, self.packets)?);
                            std::mem::swap(&mut h.interleave, &mut parked);
                            runs.push(self.mpps_per_worker(h, set, &mix, n)?);
                            std::mem::swap(&mut h.interleave, &mut parked);
                        }
                        let after = Counts::read(h, &stats);
                        let data_fed = ((n + self.packets) * self.repeat * workers) as u64;
                        sets.push(SetFigure {
                            set,
                            per_data: flood.per_data,
                            unloaded: median_timed(bases),
                            mpps_per_worker: median_timed(runs),
                            data_lost: data_fed.saturating_sub(after.decap - before.decap),
                            bad_mac1: after.bad_mac1 - before.bad_mac1,
                            cookies: after.cookies - before.cookies,
                            to_control: after.to_control - before.to_control,
                            queue_full: after.queue_full - before.queue_full,
                            rate_limited: after.rate_limited - before.rate_limited,
                            max_depth: stats.max_depth.swap(0, Ordering::Relaxed),
                        });
                    }
                    // The legitimate initiator heads cold flood batches at
                    // this rate (as calibrated on the last set measured).
                    let n = batch(flood.per_data);
                    let legit = self.legit(
                        h,
                        &mix,
                        n,
                        &flood,
                        &mut initiator,
                        &legit_id,
                        &resp_rx,
                        &stats,
                    )?;
                    h.interleave = None;
                    figures.push(FloodFigure {
                        asked: rate,
                        sets,
                        legit,
                    });
                }
                // The flood must have reached the gates: a run where it
                // did not measures nothing.
                if figures
                    .iter()
                    .flat_map(|f| &f.sets)
                    .any(|f| f.bad_mac1 == 0 || f.to_control + f.cookies == 0)
                {
                    return Err(format!("a flood reached no handshake gate: {figures:?}"));
                }
                Ok(FloodReport {
                    workers,
                    peers,
                    mix: mix.name,
                    warm_set: self.warm_set,
                    unloaded,
                    figures,
                })
            })();
            stop.store(true, Ordering::Relaxed);
            let _ = control.join();
            out
        })
    }

    /// The legitimate initiator at one flood rate: each try heads a flood
    /// batch; a cookie reply is consumed and the next try follows after a
    /// virtual REKEY_TIMEOUT, as does a try that got no answer (its
    /// initiation lost to a full queue).
    #[allow(clippy::too_many_arguments)]
    fn legit(
        &self,
        h: &mut Harness<'_>,
        mix: &Mix,
        n: usize,
        flood: &FloodFrames,
        initiator: &mut PeerHandshake,
        id: &StaticIdentity,
        responses: &Receiver<(u64, [u8; RESPONSE_LEN])>,
        stats: &ControlStats,
    ) -> Result<Option<Legit>, String> {
        let hz = h.tsc_hz() as f64;
        let mut waited = Duration::ZERO;
        let mut spent = 0.0;
        let mut cookies = 0;
        for tries in 1..=LEGIT_TRIES {
            // A flood batch first, so that the load is this rate's.
            h.interleave = Some(Box::new(flood_clone(flood)));
            h.run(Direction::Decap, mix, n)?;
            // The initiator's own clock: virtual waits added.
            let now = h.clock.now() + waited;
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let init = initiator
                .create_initiation(id, LEGIT_INDEX, Tai64N::from_unix(since), now, &mut OsRng)
                .map_err(|e| format!("initiation: {e}"))?;
            let mut batch = flood_clone(flood);
            batch.head = Some(traffic::udp_frame(LEGIT_SRC, &init).map_err(|e| e.to_string())?);
            h.interleave = Some(Box::new(batch));
            let start = h.finished(Direction::Decap);
            let t0 = rdtsc();
            let fed = h.feed(Direction::Decap, mix, n)?;
            let mut cookie = None;
            let deadline = std::time::Instant::now() + DRAIN_WAIT;
            let response = loop {
                if cookie.is_none() {
                    cookie = legit_cookie(h).map(|c| (rdtsc(), c));
                }
                if let Ok(r) = responses.try_recv() {
                    break Some(r);
                }
                let fed_done = h.finished(Direction::Decap) >= start + fed;
                // Everything queued to the control thread was handled.
                let queued = total(&h.counters, |c| c.events(Event::HandshakeToControl));
                let handled = stats.handled.load(Ordering::Relaxed);
                if fed_done && (cookie.is_some() || handled >= queued) {
                    break responses.try_recv().ok();
                }
                if std::time::Instant::now() > deadline {
                    break None;
                }
                thread::sleep(Duration::from_micros(200));
            };
            // The batch's rest, then the tunnel port's output.
            while h.finished(Direction::Decap) < start + fed {
                if std::time::Instant::now() > deadline {
                    return Err("a flood batch did not finish".into());
                }
                thread::sleep(Duration::from_micros(200));
            }
            if cookie.is_none() {
                cookie = legit_cookie(h).map(|c| (rdtsc(), c));
            }
            h.drain();
            if let Some((at, resp)) = response {
                initiator
                    .consume_response(id, &resp, now)
                    .map_err(|e| format!("the legitimate response: {e}"))?;
                let last = at.saturating_sub(t0) as f64 / hz;
                return Ok(Some(Legit {
                    tries,
                    cookies,
                    total: Some(spent + last + waited.as_secs_f64()),
                    last: Some(last),
                }));
            }
            if let Some((at, reply)) = cookie {
                initiator
                    .consume_cookie_reply(&reply, now)
                    .map_err(|e| format!("the cookie reply: {e}"))?;
                cookies += 1;
                spent += at.saturating_sub(t0) as f64 / hz;
            }
            // The retransmission, REKEY_TIMEOUT later (jitter left out).
            waited += REKEY_TIMEOUT;
        }
        Ok(Some(Legit {
            tries: LEGIT_TRIES,
            cookies,
            total: None,
            last: None,
        }))
    }
}

/// A flood source with the same frames, starting over.
fn flood_clone(f: &FloodFrames) -> FloodFrames {
    FloodFrames {
        frames: f.frames.clone(),
        next: 0,
        per_data: f.per_data,
        owed: vec![0.0; f.owed.len()],
        head: None,
    }
}

/// Counters read before and after a rate's timed batches.
struct Counts {
    decap: u64,
    bad_mac1: u64,
    cookies: u64,
    to_control: u64,
    queue_full: u64,
    rate_limited: u64,
}

impl Counts {
    fn read(h: &Harness<'_>, stats: &ControlStats) -> Self {
        let c = &h.counters;
        Self {
            decap: total(c, |w| w.events(Event::Decapsulated)),
            bad_mac1: total(c, |w| w.drops(DropReason::BadMac1)),
            cookies: total(c, |w| w.events(Event::CookieReplySent)),
            to_control: total(c, |w| w.events(Event::HandshakeToControl)),
            queue_full: total(c, |w| w.drops(DropReason::HandshakeQueueFull)),
            rate_limited: stats.rate_limited.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_of(frame: &[u8]) -> SocketAddr {
        let ip = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
        SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([frame[34], frame[35]]))
    }

    /// The flood holds what the gate tells apart, in the pattern's shares:
    /// a wrong mac1, a valid mac1 only, and a valid mac2 for its source.
    #[test]
    fn flood_frames_carry_bad_mac1_mac1_and_mac2_in_the_pattern() {
        let wgdp = PrivateKey::generate(&mut OsRng).public_key();
        let mut checker = CookieChecker::new(&wgdp);
        checker.rotate(Instant::ZERO, &mut OsRng).expect("secret");
        let frames = build_frames(&wgdp, &checker, Instant::ZERO).expect("frames");
        assert_eq!(frames.len(), SOURCES);
        let (mut bad, mut mac1, mut mac2) = (0, 0, 0);
        for f in &frames {
            let msg = &f[42..];
            assert_eq!(msg.len(), INITIATION_LEN);
            if checker.check_mac1(msg).is_err() {
                bad += 1;
            } else if checker.check_mac2(msg, source_of(f)) {
                mac2 += 1;
            } else {
                mac1 += 1;
            }
        }
        let periods = SOURCES / 20;
        assert_eq!(
            (bad, mac1, mac2),
            (
                PATTERN.0 * periods,
                PATTERN.1 * periods,
                PATTERN.2 * periods
            )
        );
    }

    /// Frames follow the data at the asked ratio per worker, and a head
    /// frame comes first in worker 0's batch, once.
    #[test]
    fn interleave_follows_the_ratio_and_puts_the_head_first() {
        let mut f = FloodFrames {
            frames: (0..7u8).map(|i| vec![i]).collect(),
            next: 0,
            per_data: 2.5,
            owed: vec![0.0; 2],
            head: Some(vec![0xee]),
        };
        let first = f.after(0, 0).iter().map(|s| s[0]).collect::<Vec<_>>();
        assert_eq!(first, vec![0xee, 0, 1], "head, then 2 of 2.5");
        let n: usize = (1..100).map(|k| f.after(0, k).len()).sum();
        assert_eq!(n + 2, 250, "2.5 per data message");
        let w1: usize = (0..100).map(|k| f.after(1, k).len()).sum();
        assert_eq!(w1, 250, "no head for worker 1");
        assert!(f.after(0, 5).iter().all(|s| s[0] != 0xee));
    }
}
