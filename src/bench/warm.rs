//! Warm-cache runs (`wgdp bench`, issue #20): the worker loop fed as a NIC
//! with DDIO feeds it. Such a NIC writes each received packet into the L3
//! (Intel DDIO, AMD's equivalent), into RX buffers that the driver recycles
//! through a ring of a few thousand descriptors, so the worker finds the
//! packet's lines in cache, not in DRAM. A cold batch (the default figures)
//! is the opposite case: tens of megabytes of packets written long before
//! the worker reads them.
//!
//! Here the harness plays the NIC: every worker and input port has a
//! working set of `set` mbufs from a pool of exactly those mbufs (a ring
//! without a cache: each freed mbuf waits its turn behind the others). The
//! harness primes the worker's RX ring with `set` packets; each mbuf the
//! worker sends back out (the net_ring TX side returns the very mbuf) is
//! freed to the pool and taken again for the next packet, which the
//! harness copies into it just before it goes in (the `n` frames are
//! built before the run: LAN frames, or data messages sealed by the peers,
//! each with its own counter).
//! `n` packets pass per worker and port, however small the set, so a set
//! of a few hundred mbufs is timed over as many packets as a cold batch.
//! A flood run (`wgdp bench --flood`) mixes its handshake frames into the
//! tunnel input's frames as into a cold batch, and they cycle through the
//! same set: the worker frees most of them itself (a wrong mac1, a copy
//! queued to the control thread), and those mbufs go back into the set
//! as the ones it sends out do (a run with one input port per worker
//! counts both; see [`freed`]).
//! The harness's writes leave the lines in its own core's cache, from which
//! the worker's core reads them: the stand-in for DDIO's L3.
//!
//! A worker must never wait for the harness inside the timing window: the
//! harness checks at every look that each worker still has packets it has
//! not finished (nothing is added between looks, so its ring never ran
//! empty); a run in which one ran dry (the harness was descheduled for
//! longer than the set lasts) is run again, as an untimeable cold batch is,
//! and after a few tries left out of the report with a note.

use dataplane::counters::{Event, WorkerCounters};
use dpdk_sys::rte::{Burst, Mbuf, Mempool};

use super::rig::{flush, Direction, Harness, Interleave, Sample, Window, ATTEMPTS, TIMEOUT};
use super::traffic::{self, Mix};

/// Where a figure's packets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkingSet {
    /// Recycled through `--warm-set` mbufs per worker and port (in cache,
    /// as a NIC with DDIO delivers them): the figure the targets use.
    Warm,
    /// A fresh batch of `--packets` mbufs per worker and port, written
    /// long before the worker reads them (from DRAM).
    Cold,
}

impl WorkingSet {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            WorkingSet::Warm => "warm",
            WorkingSet::Cold => "cold",
        }
    }
}

/// The warm pool's size for `workers` workers and a working set of `set`
/// mbufs per worker and input port (a round trip feeds both ports).
pub fn pool_size(workers: usize, set: usize) -> u32 {
    (2 * workers * set) as u32
}

/// Why `--warm-set` cannot be used with `packets` packets per batch, if
/// it cannot: it needs at least two bursts, and at most a quarter of the
/// packets (the run recycles each mbuf four times or more, and the timing
/// window, 5 % to 85 % of the packets, falls after the priming).
pub fn check_set(set: usize, packets: usize) -> Result<(), String> {
    if set < MIN_SET {
        return Err(format!(
            "--warm-set: {set} mbufs is fewer than {MIN_SET} (two bursts)"
        ));
    }
    if set > packets / 4 {
        return Err(format!(
            "--warm-set: {set} mbufs is more than a quarter of --packets ({packets}): the run would barely recycle them"
        ));
    }
    Ok(())
}

/// The smallest working set: two bursts.
const MIN_SET: usize = 64;

/// One input port of one worker in a warm run.
struct Input {
    /// Packets fed so far (the next one's number).
    fed: usize,
    /// Mbufs that came back from the worker, not yet fed again.
    owed: usize,
    /// The `n` frames fed, in order: LAN frames (the plaintext port) or
    /// data messages sealed by the peers in their outer frames (the
    /// tunnel port).
    frames: Vec<Vec<u8>>,
}

impl Harness<'_> {
    /// Times `n` packets per worker and input port recycled through `set`
    /// mbufs each from `warm` (a pool of [`pool_size`] mbufs, all free).
    /// A run the harness could not time, or in which a worker ran out of
    /// packets inside the window (the harness, descheduled, did not refill
    /// its ring in time), is run again, a few times; `None` when no try
    /// could be timed with every worker fed throughout.
    pub fn run_warm(
        &mut self,
        warm: &Mempool,
        dir: Direction,
        mix: &Mix,
        n: usize,
        set: usize,
    ) -> Result<Option<Sample>, String> {
        for _ in 0..ATTEMPTS {
            if let Some(s) = self.try_run_warm(warm, dir, mix, n, set)? {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// One warm run; `None` when it could not be timed, or a worker ran
    /// dry inside the timing window.
    fn try_run_warm(
        &mut self,
        warm: &Mempool,
        dir: Direction,
        mix: &Mix,
        n: usize,
        set: usize,
    ) -> Result<Option<Sample>, String> {
        let workers = self.workers();
        let now = self.clock.now();
        // Every input's frames, built before the clock starts: copying one
        // in is all the harness does per packet, so that it outpaces the
        // worker (it writes the lines the worker then reads, as the NIC).
        let mut inputs: Vec<[Option<Input>; 2]> = Vec::with_capacity(workers);
        for w in 0..workers {
            let owned = self.owned[w].clone();
            let peer = |k: usize| owned[(self.cursor + k) % owned.len()];
            let live = !owned.is_empty();
            let plain = (live && dir != Direction::Decap).then(|| Input {
                fed: 0,
                owed: set,
                frames: (0..n)
                    .map(|k| {
                        let mut f = vec![0; traffic::plaintext_frame_len(mix.size(k))];
                        traffic::write_plaintext_frame(&mut f, peer(k));
                        f
                    })
                    .collect(),
            });
            let sealed = if live && dir != Direction::Encap {
                let mut frames = Vec::with_capacity(n);
                for k in 0..n {
                    let (p, len) = (peer(k), mix.size(k));
                    let mut f = vec![0; traffic::sealed_frame_len(len)];
                    let kp = &mut self.peer_keys[p as usize];
                    traffic::write_sealed_frame(&mut f, p, kp, len, now)
                        .map_err(|e| e.to_string())?;
                    frames.push(f);
                }
                if let Some(flood) = self.interleave.as_deref_mut() {
                    frames = with_flood(frames, w, flood);
                }
                Some(Input {
                    fed: 0,
                    owed: set,
                    frames,
                })
            } else {
                None
            };
            inputs.push([plain, sealed]);
        }
        let data: Vec<u64> = inputs
            .iter()
            .map(|i| i.iter().flatten().count() as u64 * n as u64)
            .collect();
        // Every frame fed, the flood's included (they finish too: dropped,
        // queued or answered).
        let expect: u64 = inputs
            .iter()
            .flatten()
            .flatten()
            .map(|i| i.frames.len() as u64)
            .sum();
        // What each worker freed itself so far (see `freed`).
        let mut seen: Vec<u64> = self.counters.iter().map(|c| freed(c)).collect();
        // The pool is a FIFO ring (no cache): every free mbuf takes its turn.
        // Hold those this run does not use (a port idle in this direction),
        // so that the ones cycled are exactly `set` per worker and port.
        let used = inputs.iter().flatten().flatten().count() * set;
        // The last run's last packets may still have been in a worker's TX
        // burst when it counted them finished (it counts before its
        // round's flush): they reach the rings after its drain. Take them
        // before counting what is free.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while (warm.available() as usize) < used && std::time::Instant::now() < deadline {
            self.drain();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let spare = (warm.available() as usize)
            .checked_sub(used)
            .ok_or("the warm pool is smaller than the working set")?;
        let held: Vec<Mbuf> = (0..spare).map_while(|_| warm.alloc()).collect();
        let mark = self.mark(dir);
        let start = std::time::Instant::now();
        let mut window = Window::new(data);
        let mut b: Burst = Burst::new();
        let mut fresh: Burst = Burst::new();
        let mut fed = vec![0u64; workers];
        let mut dry = false;
        loop {
            // Nothing is added to a worker's ring between two looks: if
            // packets are still unfinished now, its ring never ran empty
            // since the last look; if none are, the worker may have idled
            // for as long as the harness was away.
            if window.is_open() && !window.is_closed() {
                let done = self.finished_each(&mark);
                dry |= (0..workers).any(|w| fed[w] > 0 && done[w] >= fed[w]);
            }
            for (w, input) in inputs.iter_mut().enumerate() {
                // What the worker sent out: the tunnel port carries the
                // plaintext input's packets sealed, and the other way round.
                let f = &mut self.feeds[w];
                // With one input (encap or decap) every mbuf is its own,
                // whichever port it leaves by (a cookie reply leaves by the
                // tunnel port it came in on), and so is every mbuf the
                // worker freed itself.
                let single = input.iter().flatten().count() == 1;
                let back = |i: usize| {
                    if single && input[i].is_none() {
                        1 - i
                    } else {
                        i
                    }
                };
                let (to_plain, to_tun) = (back(0), back(1));
                for (out, i) in [(&mut f.tun_rx, to_plain), (&mut f.plain_rx, to_tun)] {
                    while out.rx_burst(&mut b) > 0 {
                        if let Some(input) = &mut input[i] {
                            input.owed += b.len();
                        }
                        b.clear();
                    }
                }
                if single {
                    let now = freed(&self.counters[w]);
                    if let Some(input) = input.iter_mut().flatten().next() {
                        input.owed += (now - seen[w]) as usize;
                    }
                    seen[w] = now;
                }
                for (i, input) in input.iter_mut().enumerate() {
                    let Some(input) = input else { continue };
                    let tx = if i == 0 {
                        &mut f.plain_tx
                    } else {
                        &mut f.tun_tx
                    };
                    let total = input.frames.len();
                    while input.owed > 0 && input.fed < total {
                        let k = input.owed.min(total - input.fed).min(fresh.spare());
                        if warm.alloc_bulk(&mut fresh, k).is_err() {
                            break;
                        }
                        for mut m in fresh.drain() {
                            copy_frame(&mut m, &input.frames[input.fed])
                                .map_err(|e| e.to_string())?;
                            input.fed += 1;
                            input.owed -= 1;
                            fed[w] += 1;
                            b.push(m)
                                .map_err(|_| "a burst refused an mbuf it had room for")?;
                        }
                        flush(tx, &mut b)?;
                    }
                }
            }
            if self.finished_since(&mark) >= expect {
                break;
            }
            window.observe(self, &mark);
            if start.elapsed() > TIMEOUT {
                return Err(format!(
                    "warm {} run not done after {:?}",
                    dir.name(),
                    TIMEOUT
                ));
            }
            self.pause();
        }
        self.cursor = self.cursor.wrapping_add(n);
        self.drain();
        drop(held);
        if dry || !window.is_closed() {
            return Ok(None);
        }
        window.sample(self.lost_since(&mark)).map(Some)
    }
}

/// Mbufs a worker freed itself instead of sending them out: dropped, or a
/// handshake message whose copy it queued for the control thread. (A
/// cookie reply leaves in its message's mbuf; staged packets are held.)
fn freed(c: &WorkerCounters) -> u64 {
    c.total_drops() + c.events(Event::HandshakeToControl)
}

/// Worker `w`'s tunnel frames with the handshake frames `flood` mixes in
/// after each data message, in the order a cold batch has them.
fn with_flood(data: Vec<Vec<u8>>, w: usize, flood: &mut (dyn Interleave + Send)) -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(data.len());
    for (k, d) in data.into_iter().enumerate() {
        frames.push(d);
        frames.extend(flood.after(w, k).into_iter().map(<[u8]>::to_vec));
    }
    frames
}

/// Fills `m` (empty) with a copy of `frame`.
fn copy_frame(m: &mut Mbuf, frame: &[u8]) -> Result<(), traffic::TrafficError> {
    m.append(frame.len() as u16)
        .map_err(|_| traffic::TrafficError::NoRoom(frame.len()))?
        .copy_from_slice(frame);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_two_bursts_to_a_quarter_of_the_packets() {
        assert_eq!(check_set(64, 4096), Ok(()));
        assert_eq!(check_set(1024, 4096), Ok(()));
        assert_eq!(check_set(2048, 32_768), Ok(()));
        let e = check_set(63, 4096).expect_err("below two bursts");
        assert!(e.contains("63") && e.contains("64"), "{e}");
        let e = check_set(1025, 4096).expect_err("above a quarter");
        assert!(e.contains("1025") && e.contains("4096"), "{e}");
        assert!(check_set(64, 255).is_err(), "255 / 4 = 63 < 64");
    }

    /// Frames after data message k, as a flood's interleave gives them.
    struct Every {
        frames: Vec<Vec<u8>>,
    }

    impl Interleave for Every {
        fn after(&mut self, w: usize, k: usize) -> Vec<&[u8]> {
            // Worker 1 gets k frames after message k; other workers none.
            let n = if w == 1 { k } else { 0 };
            self.frames.iter().take(n).map(Vec::as_slice).collect()
        }
    }

    #[test]
    fn a_warm_flood_puts_each_data_messages_frames_right_after_it() {
        let mut flood = Every {
            frames: (0..3u8).map(|i| vec![0xf0 + i]).collect(),
        };
        let data = || (0..4u8).map(|i| vec![i]).collect::<Vec<_>>();
        let got = with_flood(data(), 1, &mut flood);
        let want: Vec<Vec<u8>> = [
            &[0][..],
            &[1, 0xf0],
            &[2, 0xf0, 0xf1],
            &[3, 0xf0, 0xf1, 0xf2],
        ]
        .iter()
        .flat_map(|g| g.iter().map(|&b| vec![b]))
        .collect();
        assert_eq!(got, want);
        assert_eq!(
            with_flood(data(), 0, &mut flood),
            data(),
            "no flood for worker 0"
        );
    }

    /// The mbufs a worker freed itself are its drops and the handshake
    /// messages it copied to the control thread; not its cookie replies
    /// (they leave in the message's mbuf) nor what it staged (held).
    #[test]
    fn freed_counts_drops_and_messages_queued_to_control_only() {
        use dataplane::counters::DropReason;
        let c = WorkerCounters::default();
        c.count_drop(DropReason::BadMac1);
        c.count_drop(DropReason::BadMac1);
        c.count_drop(DropReason::HandshakeQueueFull);
        c.add(Event::HandshakeToControl, 5);
        c.add(Event::CookieReplySent, 7);
        c.add(Event::Staged, 11);
        c.add(Event::Decapsulated, 13);
        assert_eq!(freed(&c), 3 + 5);
    }

    #[test]
    fn the_pool_holds_a_set_per_worker_and_port() {
        assert_eq!(pool_size(1, 1024), 2048);
        assert_eq!(pool_size(3, 64), 384);
    }
}
