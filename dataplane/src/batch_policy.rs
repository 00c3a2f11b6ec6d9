//! When a worker seals a burst's packets together, in one multi-buffer
//! pass (`mbaead`: one SIMD lane per packet), instead of one at a time.
//!
//! A pass costs about the same for 1 packet as for 16: it pays the
//! Poly1305 key block, setup and finalisation once for all its lanes, and
//! runs every lane to its longest packet. So it wins on bursts of short
//! packets and loses on long ones, where a one-packet implementation's
//! per-byte speed decides (BENCHMARKS.md, "Multi-buffer AEAD floor"). The
//! [`BatchPolicy`] says which packets join a pass: those of an RX burst of
//! at least `min_burst` packets whose padded length is at most `max_len`;
//! the others are sealed at once by the one-packet backend, in order with
//! the batched ones (see [`crate::seal_batch`]).
//!
//! `dpdk.aead = "auto"` takes the policies [`measure`] finds on this CPU
//! at start-up, one for sealing and one for opening; `"multibuffer"`
//! batches every packet of every burst both ways.

use std::time::{Duration, Instant};

use mbaead::{Engine, Open, Seal, MAX_LANES};
use protocol::crypto::{nonce, AeadBackend, TransportKey};
use smallvec::SmallVec;

/// Which packets a worker seals in multi-buffer passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// The SIMD implementation.
    pub engine: Engine,
    /// The longest padded plaintext that joins a pass.
    pub max_len: usize,
    /// The fewest packets an RX burst must bring for its packets to be
    /// batched.
    pub min_burst: usize,
}

/// Which packets a worker seals, and which it opens, in passes (each
/// direction measured on its own: a pass opens more slowly than it seals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batching {
    /// Sealing (a plaintext burst); `None`: one packet at a time.
    pub seal: Option<BatchPolicy>,
    /// Opening (a tunnel burst); `None`: one packet at a time.
    pub open: Option<BatchPolicy>,
}

impl Batching {
    /// Every packet of every burst both ways ([`BatchPolicy::always`]);
    /// `None` where the CPU has no engine.
    pub fn always() -> Option<Self> {
        let p = BatchPolicy::always()?;
        Some(Batching {
            seal: Some(p),
            open: Some(p),
        })
    }

    /// Whether either direction batches (transport keys must then keep
    /// their bytes: `protocol::crypto::set_batch_keys`).
    pub fn is_on(&self) -> bool {
        self.seal.is_some() || self.open.is_some()
    }

    /// Each direction's policy, named ("seal", "open"), for reports.
    pub fn ways(&self) -> [(&'static str, Option<BatchPolicy>); 2] {
        [("seal", self.seal), ("open", self.open)]
    }
}

impl BatchPolicy {
    /// Every packet of every burst, on the widest engine this CPU has;
    /// `None` where it has neither AVX-512 nor AVX2.
    pub fn always() -> Option<Self> {
        Some(BatchPolicy {
            engine: Engine::detect()?,
            max_len: mbaead::MAX_LEN,
            min_burst: 1,
        })
    }

    /// Whether a burst of `n` packets is batched.
    #[inline]
    pub fn batches(&self, n: usize) -> bool {
        n >= self.min_burst
    }
}

/// Padded lengths the start-up measure tries, shortest first (WireGuard
/// pads to 16 bytes; 1440 is a 1420-byte packet's).
pub const LENGTHS: [usize; 6] = [64, 128, 256, 512, 1024, 1440];

/// Which way a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Encryption and tag (the send path).
    Seal,
    /// Tag check and decryption (the receive path).
    Open,
}

/// What [`measure`] saw at one length: nanoseconds per packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Sealing or opening.
    pub direction: Direction,
    /// The padded length.
    pub len: usize,
    /// Packets per pass.
    pub burst: usize,
    /// The multi-buffer engine, per packet.
    pub batched_ns: f64,
    /// The one-packet backend, per packet.
    pub single_ns: f64,
}

/// What batching costs the worker loop per packet besides the cipher, in
/// nanoseconds: holding each packet and its key until the pass, building
/// the pass, and taking the packets out in order (and, opening, finding the
/// keypair again to commit). Measured as the difference between a burst's
/// loop with and without batching less the cipher's difference, on the
/// 2-vCPU test VM: about 30-60 ns a packet (BENCHMARKS.md, "Multi-buffer AEAD in
/// the worker loop"). A pass must save more than this to be worth it.
pub const LOOP_OVERHEAD_NS: f64 = 50.0;

impl Sample {
    /// Whether the pass saves the loop time per packet: faster than the
    /// one-packet backend by more than [`LOOP_OVERHEAD_NS`].
    pub fn batch_wins(&self) -> bool {
        self.batched_ns + LOOP_OVERHEAD_NS < self.single_ns
    }
}

/// What the start-up measure found: the policies and the samples they
/// were chosen from, for the log.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Each direction's policy, where batching won.
    pub batching: Batching,
    /// The one-packet backend it was measured against.
    pub against: AeadBackend,
    /// Per direction and length, at a full pass and at half a pass.
    pub samples: Vec<Sample>,
}

/// Times sealing and opening with the widest engine against `backend`
/// (one packet a call) at every length of [`LENGTHS`], at a full pass and
/// at half of one, and chooses each direction's policy ([`choose`]).
/// Opening is timed on ciphertexts sealed once and copied back before
/// every call, for the pass and the one-packet backend alike, so that the
/// difference between them is the ciphers'. Takes a few tens of
/// milliseconds; each figure is the fastest of several rounds, so a busy
/// machine biases it towards neither side more than one noisy round.
pub fn measure(backend: AeadBackend) -> Measured {
    let Some(engine) = Engine::detect() else {
        return Measured {
            batching: Batching::default(),
            against: backend,
            samples: Vec::new(),
        };
    };
    let key_bytes = [0x5au8; 32];
    let single = TransportKey::with_backend(backend, zeroize::Zeroizing::new(key_bytes));
    let lanes = engine.lanes();
    let mut bufs = vec![[0u8; 1440]; lanes];
    let mut sealed = vec![[0u8; 1440]; lanes];
    let mut tags = vec![[0u8; 16]; lanes];
    let mut samples = Vec::new();
    for burst in [lanes, lanes / 2] {
        for len in LENGTHS {
            let seal_batched = fastest(|| {
                let mut jobs: SmallVec<[Seal<'_>; MAX_LANES]> = bufs[..burst]
                    .iter_mut()
                    .enumerate()
                    .map(|(i, b)| Seal::new(&key_bytes, nonce(i as u64), &[], &mut b[..len]))
                    .collect();
                // Lengths are at most 1440: within MAX_LEN.
                let _ = engine.seal(&mut jobs);
                burst
            });
            let seal_single = fastest(|| {
                for (i, b) in bufs[..burst].iter_mut().enumerate() {
                    let _ = single.seal(i as u64, &mut b[..len]);
                }
                burst
            });
            // What opening takes: each buffer sealed once under its counter.
            for (i, (c, t)) in sealed.iter_mut().zip(tags.iter_mut()).enumerate() {
                c[..len].fill(i as u8);
                *t = single.seal(i as u64, &mut c[..len]).unwrap_or_default();
            }
            let open_batched = fastest(|| {
                for (b, c) in bufs[..burst].iter_mut().zip(&sealed) {
                    b[..len].copy_from_slice(&c[..len]);
                }
                let mut jobs: SmallVec<[Open<'_>; MAX_LANES]> = bufs[..burst]
                    .iter_mut()
                    .zip(&tags)
                    .enumerate()
                    .map(|(i, (b, t))| {
                        Open::new(&key_bytes, nonce(i as u64), &[], &mut b[..len], *t)
                    })
                    .collect();
                let _ = engine.open(&mut jobs);
                burst
            });
            let open_single = fastest(|| {
                for (i, (b, c)) in bufs[..burst].iter_mut().zip(&sealed).enumerate() {
                    b[..len].copy_from_slice(&c[..len]);
                    let _ = single.open(i as u64, &mut b[..len], &tags[i]);
                }
                burst
            });
            for (direction, batched_ns, single_ns) in [
                (Direction::Seal, seal_batched, seal_single),
                (Direction::Open, open_batched, open_single),
            ] {
                samples.push(Sample {
                    direction,
                    len,
                    burst,
                    batched_ns,
                    single_ns,
                });
            }
        }
    }
    let mut m = Measured {
        batching: Batching::default(),
        against: backend,
        samples,
    };
    m.batching = Batching {
        seal: choose(engine, &m.of(Direction::Seal)),
        open: choose(engine, &m.of(Direction::Open)),
    };
    m
}

impl Measured {
    /// The samples of one direction, in the order they were taken.
    pub fn of(&self, direction: Direction) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|s| s.direction == direction)
            .copied()
            .collect()
    }
}

/// The policy one direction's samples call for: `max_len` is the longest
/// length up to which a full pass wins ([`Sample::batch_wins`]: by more
/// than the loop's overhead) at every length, `min_burst` half a pass
/// where half a pass wins at the shortest length too, else a full one;
/// none where a full pass does not win at the shortest length.
pub fn choose(engine: Engine, samples: &[Sample]) -> Option<BatchPolicy> {
    let full = engine.lanes();
    let max_len = samples
        .iter()
        .filter(|s| s.burst == full)
        .take_while(|s| s.batch_wins())
        .map(|s| s.len)
        .last()?;
    let half_wins = samples
        .iter()
        .filter(|s| s.burst == full / 2)
        .take(1)
        .all(Sample::batch_wins);
    Some(BatchPolicy {
        engine,
        max_len,
        min_burst: if half_wins { full / 2 } else { full },
    })
}

/// The fastest of several timed rounds of `f`, in ns per packet (`f`
/// returns how many packets it handled).
fn fastest(mut f: impl FnMut() -> usize) -> f64 {
    const ROUNDS: usize = 7;
    const CALLS: usize = 64;
    let mut best = f64::INFINITY;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut packets = 0;
        for _ in 0..CALLS {
            packets += f();
        }
        let took = start.elapsed().max(Duration::from_nanos(1));
        best = best.min(took.as_nanos() as f64 / packets.max(1) as f64);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize, burst: usize, batched_ns: f64, single_ns: f64) -> Sample {
        Sample {
            direction: Direction::Seal,
            len,
            burst,
            batched_ns,
            single_ns,
        }
    }

    #[test]
    fn the_policy_batches_up_to_the_first_length_where_a_full_pass_loses() {
        let Some(engine) = Engine::detect() else {
            return;
        };
        let full = engine.lanes();
        let samples = [
            sample(64, full, 10.0, 80.0),
            sample(128, full, 15.0, 90.0),
            // Faster, but not by the loop's overhead: a loss.
            sample(256, full, 60.0, 100.0),
            // Wins again further on: the first loss decides.
            sample(512, full, 30.0, 400.0),
            sample(64, full / 2, 25.0, 70.0),
        ];
        let p = choose(engine, &samples).expect("a full pass wins at 64");
        assert_eq!(p.max_len, 128);
        assert_eq!(p.min_burst, full, "half a pass lost at 64");
        assert!(!p.batches(full - 1) && p.batches(full));
    }

    #[test]
    fn half_a_pass_that_wins_lowers_the_burst_and_a_first_loss_means_never() {
        let Some(engine) = Engine::detect() else {
            return;
        };
        let full = engine.lanes();
        let wins = [
            sample(64, full, 10.0, 80.0),
            sample(64, full / 2, 15.0, 80.0),
        ];
        assert_eq!(choose(engine, &wins).map(|p| p.min_burst), Some(full / 2));
        let loses = [sample(64, full, 40.0, 80.0), sample(128, full, 10.0, 80.0)];
        assert_eq!(choose(engine, &loses), None);
    }

    #[test]
    fn always_batches_every_burst_and_every_length_both_ways() {
        let Some(b) = Batching::always() else {
            return;
        };
        assert!(b.is_on());
        let ways = b.ways();
        assert_eq!(ways.map(|w| w.0), ["seal", "open"]);
        for (_, p) in ways {
            let p = p.expect("both ways");
            assert!(p.batches(1));
            assert_eq!(p.max_len, mbaead::MAX_LEN);
        }
        assert!(!Batching::default().is_on());
    }

    #[test]
    fn the_measure_samples_every_length_both_ways_at_a_full_and_a_half_pass() {
        let m = measure(AeadBackend::Ring);
        let Some(engine) = Engine::detect() else {
            assert!(!m.batching.is_on() && m.samples.is_empty());
            return;
        };
        assert_eq!(m.samples.len(), 2 * 2 * LENGTHS.len());
        assert!(m
            .samples
            .iter()
            .all(|s| s.batched_ns > 0.0 && s.single_ns > 0.0 && s.batched_ns.is_finite()));
        // Whatever it chose follows from what it saw, per direction.
        for (d, chosen) in [
            (Direction::Seal, m.batching.seal),
            (Direction::Open, m.batching.open),
        ] {
            let of = m.of(d);
            assert_eq!(of.len(), 2 * LENGTHS.len());
            assert!(of.iter().all(|s| s.direction == d));
            assert_eq!(chosen, choose(engine, &of));
        }
    }
}
