//! The AEAD floor: what ChaCha20-Poly1305 alone costs per packet of each
//! size mix, one packet per call, for every transport AEAD backend this CPU
//! has. Measured on a worker lcore in the same run as the data path, three
//! times: hot (a few buffers cycled, always in L1: the cipher alone), warm
//! (the warm data path's working set of buffers, cycled pass after pass: in
//! L2/L3, as a NIC with DDIO leaves received packets) and cold (as many
//! buffers as the data path's batch, each touched once per pass, so every
//! packet comes from memory as the cold data path's do). The gaps between
//! the three are what the working set costs; the gap between a floor and
//! the data path at the same working set is what the worker loop's own
//! code costs.

use protocol::crypto::{AeadBackend, TransportKey};
use protocol::messages::padded_len;
use zeroize::Zeroizing;

use super::traffic::{Mix, MTU};

/// Buffers cycled through (so the working set is a few packets, as in a
/// burst, not one hot buffer).
const BUFFERS: usize = 32;
/// Timed rounds per backend and mix; the fastest counts.
const ROUNDS: usize = 5;

/// One backend's cost at one size mix.
#[derive(Debug, Clone)]
pub struct Floor {
    /// The backend.
    pub backend: AeadBackend,
    /// The size mix's name.
    pub mix: &'static str,
    /// Nanoseconds per seal (encrypt + tag).
    pub seal_ns: f64,
    /// Nanoseconds per open (tag check + decrypt).
    pub open_ns: f64,
    /// Nanoseconds per seal over the warm working set.
    pub seal_warm_ns: f64,
    /// Nanoseconds per open over the warm working set.
    pub open_warm_ns: f64,
    /// Nanoseconds per seal over the data path's working set.
    pub seal_cold_ns: f64,
    /// Nanoseconds per open over the data path's working set.
    pub open_cold_ns: f64,
}

impl Floor {
    /// Packets per second sealing alone allows, in millions.
    pub fn seal_mpps(&self) -> f64 {
        1e3 / self.seal_ns
    }

    /// Packets per second opening alone allows, in millions.
    pub fn open_mpps(&self) -> f64 {
        1e3 / self.open_ns
    }

    /// Packets per second sealing the warm working set allows.
    pub fn seal_warm_mpps(&self) -> f64 {
        1e3 / self.seal_warm_ns
    }

    /// Packets per second opening the warm working set allows.
    pub fn open_warm_mpps(&self) -> f64 {
        1e3 / self.open_warm_ns
    }

    /// Packets per second sealing the data path's working set allows.
    pub fn seal_cold_mpps(&self) -> f64 {
        1e3 / self.seal_cold_ns
    }

    /// Packets per second opening the data path's working set allows.
    pub fn open_cold_mpps(&self) -> f64 {
        1e3 / self.open_cold_ns
    }
}

/// Bytes between cold buffers: an mbuf's data room, as in the data path.
const COLD_STRIDE: usize = 2048 + 128;

/// Seals then opens (each in place, in order) buffers `0..set` of `bufs`
/// (`COLD_STRIDE` apart) `passes` times, the fastest of [`ROUNDS`] rounds;
/// `len(k)` is buffer k's length. Returns the TSC cycles of all the seals
/// and of all the opens, and how many failed.
fn over_set(
    key: &TransportKey,
    bufs: &mut [u8],
    tags: &mut [[u8; 16]],
    set: usize,
    passes: usize,
    len: &dyn Fn(usize) -> usize,
    rdtsc: fn() -> u64,
) -> (u64, u64, usize) {
    let mut failed = 0;
    let (mut seal, mut open) = (u64::MAX, u64::MAX);
    for _ in 0..ROUNDS {
        let (mut s, mut o) = (0, 0);
        for _ in 0..passes {
            let t0 = rdtsc();
            for (k, tag) in tags[..set].iter_mut().enumerate() {
                match key.seal(k as u64, &mut bufs[k * COLD_STRIDE..][..len(k)]) {
                    Ok(t) => *tag = t,
                    Err(_) => failed += 1,
                }
            }
            let t1 = rdtsc();
            for (k, tag) in tags[..set].iter().enumerate() {
                let b = &mut bufs[k * COLD_STRIDE..][..len(k)];
                failed += usize::from(key.open(k as u64, b, tag).is_err());
            }
            let t2 = rdtsc();
            s += t1 - t0;
            o += t2 - t1;
        }
        seal = seal.min(s);
        open = open.min(o);
    }
    (seal, open, failed)
}

/// Measures every backend in `backends` at every mix, `packets` packets
/// each hot, `cold` (the data path's batch) cold, and the same number warm
/// through a working set of `warm` buffers; `rdtsc` and `tsc_hz` time it.
pub fn measure(
    backends: &[AeadBackend],
    mixes: &[Mix],
    packets: usize,
    cold: usize,
    warm: usize,
    rdtsc: fn() -> u64,
    tsc_hz: u64,
) -> Result<Vec<Floor>, String> {
    let mut out = Vec::new();
    let mut bufs = vec![[0u8; MTU + 16]; BUFFERS];
    for (i, b) in bufs.iter_mut().enumerate() {
        b.fill(i as u8);
    }
    let cold = cold.max(1);
    let warm = warm.clamp(1, cold);
    let mut cold_bufs = vec![0x5au8; cold * COLD_STRIDE];
    let mut tags = vec![[0u8; 16]; cold];
    for &backend in backends {
        let key = TransportKey::with_backend(backend, Zeroizing::new([7u8; 32]));
        for mix in mixes {
            let len = |k: usize| padded_len(mix.size(k), MTU);
            // Warm up; then seal alone, and seal + open (open is the difference).
            let mut failed = 0;
            for k in 0..packets.min(1024) {
                let r = key.seal(k as u64, &mut bufs[k % BUFFERS][..len(k)]);
                failed += usize::from(std::hint::black_box(r).is_err());
            }
            // The fastest of a few rounds: on a shared CPU, preemption only
            // ever adds time.
            let mut seal = u64::MAX;
            let mut both = u64::MAX;
            for _ in 0..ROUNDS {
                let t0 = rdtsc();
                for k in 0..packets {
                    let r = key.seal(k as u64, &mut bufs[k % BUFFERS][..len(k)]);
                    failed += usize::from(std::hint::black_box(r).is_err());
                }
                let t1 = rdtsc();
                for k in 0..packets {
                    let b = &mut bufs[k % BUFFERS][..len(k)];
                    failed += match key.seal(k as u64, b) {
                        Ok(tag) => usize::from(key.open(k as u64, b, &tag).is_err()),
                        Err(_) => 1,
                    };
                }
                let t2 = rdtsc();
                seal = seal.min(t1 - t0);
                both = both.min(t2 - t1);
            }
            // Cold: one pass seals every buffer (its tag kept), the next
            // opens them in the same order; by the time a buffer comes round
            // again the rest of the working set has pushed it out of cache.
            let (seal_cold, open_cold, f) =
                over_set(&key, &mut cold_bufs, &mut tags, cold, 1, &len, rdtsc);
            failed += f;
            // Warm: the first `warm` buffers, brought into cache by one
            // untimed pass, then as many passes as make `cold` packets.
            let passes = cold.div_ceil(warm);
            failed += over_set(&key, &mut cold_bufs, &mut tags, warm, 1, &len, rdtsc).2;
            let (seal_warm, open_warm, f) =
                over_set(&key, &mut cold_bufs, &mut tags, warm, passes, &len, rdtsc);
            failed += f;
            if failed > 0 {
                return Err(format!(
                    "{} failed to seal or open {failed} packets",
                    backend.name()
                ));
            }
            let ns = |cycles: u64, n: usize| cycles as f64 * 1e9 / tsc_hz as f64 / n as f64;
            let seal_ns = ns(seal, packets);
            out.push(Floor {
                backend,
                mix: mix.name,
                seal_ns,
                // Not a number when noise made seal + open look cheaper
                // than seal alone: no floor rather than an infinite one.
                open_ns: Some(ns(both, packets) - seal_ns)
                    .filter(|&x| x > 0.0)
                    .unwrap_or(f64::NAN),
                seal_warm_ns: ns(seal_warm, warm * passes),
                open_warm_ns: ns(open_warm, warm * passes),
                seal_cold_ns: ns(seal_cold, cold),
                open_cold_ns: ns(open_cold, cold),
            });
        }
    }
    Ok(out)
}

/// The fastest backend's floor for `mix`: (seal, open) in Mpps, hot.
pub fn fastest(floors: &[Floor], mix: &str) -> Option<(f64, f64)> {
    fastest_of(floors, mix, Floor::seal_mpps, Floor::open_mpps)
}

/// The fastest backend's warm floor for `mix`: (seal, open) in Mpps.
pub fn fastest_warm(floors: &[Floor], mix: &str) -> Option<(f64, f64)> {
    fastest_of(floors, mix, Floor::seal_warm_mpps, Floor::open_warm_mpps)
}

/// The fastest backend's cold floor for `mix`: (seal, open) in Mpps.
pub fn fastest_cold(floors: &[Floor], mix: &str) -> Option<(f64, f64)> {
    fastest_of(floors, mix, Floor::seal_cold_mpps, Floor::open_cold_mpps)
}

fn fastest_of(
    floors: &[Floor],
    mix: &str,
    seal: fn(&Floor) -> f64,
    open: fn(&Floor) -> f64,
) -> Option<(f64, f64)> {
    let of = |f: fn(&Floor) -> f64| {
        floors
            .iter()
            .filter(|x| x.mix == mix)
            .map(f)
            .filter(|v| v.is_finite())
            .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    };
    Some((of(seal)?, of(open)?))
}
