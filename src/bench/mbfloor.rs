//! The multi-buffer AEAD floor: what `mbaead` (ChaCha20-Poly1305 over a
//! whole burst in one SIMD pass) costs per packet, for every SIMD path this
//! CPU has, at every size mix and at bursts of 8 and 16, hot and cold as
//! the one-packet floor (`floor.rs`) is measured, on the same lcore in the
//! same run, so the two compare directly. The worker loop seals a burst's
//! packets with it where `--aead` (`dpdk.aead`) says so; this is its
//! ceiling.

use mbaead::{Engine, Open, Seal};

use super::floor::Floor;
use super::traffic::{Mix, MTU};
use protocol::crypto::nonce;
use protocol::messages::padded_len;

/// Bursts measured: AVX2's pass and AVX-512's.
pub const BURSTS: [usize; 2] = [8, 16];
/// Timed rounds per figure; the fastest counts.
const ROUNDS: usize = 5;
/// Bytes between buffers: an mbuf's data room, as in the data path.
const STRIDE: usize = 2048 + 128;
/// Buffers the hot figure cycles through (two bursts of 16).
const HOT_BUFFERS: usize = 32;

/// One engine's cost at one size mix and burst.
#[derive(Debug, Clone)]
pub struct MbFloor {
    /// The engine (`mb-avx512-ifma`, `mb-avx512`, `mb-avx2`).
    pub engine: &'static str,
    /// The size mix's name.
    pub mix: &'static str,
    /// Packets per call.
    pub burst: usize,
    /// Nanoseconds per packet sealed, hot.
    pub seal_ns: f64,
    /// Nanoseconds per packet opened, hot.
    pub open_ns: f64,
    /// Nanoseconds per packet sealed over the data path's working set.
    pub seal_cold_ns: f64,
    /// Nanoseconds per packet opened over the data path's working set.
    pub open_cold_ns: f64,
}

impl MbFloor {
    /// How many times faster than the fastest one-packet backend's hot
    /// floor at this mix: (seal, open).
    pub fn speedup(&self, floors: &[Floor]) -> Option<(f64, f64)> {
        let best = |f: fn(&Floor) -> f64| {
            floors
                .iter()
                .filter(|x| x.mix == self.mix)
                .map(f)
                .filter(|v| v.is_finite())
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.min(v))))
        };
        let seal = best(|f| f.seal_ns)? / self.seal_ns;
        let open = best(|f| f.open_ns)? / self.open_ns;
        Some((seal, open))
    }
}

/// One figure's engine, key, size mix and burst.
struct Run<'a> {
    engine: Engine,
    key: &'a [u8; 32],
    mix: &'a Mix,
    burst: usize,
}

impl Run<'_> {
    /// Packet `k`'s length: its inner size padded as WireGuard pads it.
    fn len(&self, k: usize) -> usize {
        padded_len(self.mix.size(k), MTU)
    }

    /// Seals the buffers of `region` (STRIDE apart, a tag each in `tags`)
    /// in calls of `burst` packets; the calls that failed.
    fn seal_all(&self, region: &mut [u8], tags: &mut [[u8; 16]]) -> usize {
        let mut failed = 0;
        let calls = region
            .chunks_mut(STRIDE * self.burst)
            .zip(tags.chunks_mut(self.burst));
        for (b, (bufs, tags)) in calls.enumerate() {
            let mut it = bufs.chunks_mut(STRIDE).enumerate();
            let mut jobs: [Seal<'_>; 16] = std::array::from_fn(|_| match it.next() {
                Some((i, buf)) => {
                    let k = b * self.burst + i;
                    Seal::new(self.key, nonce(k as u64), &[], &mut buf[..self.len(k)])
                }
                None => Seal::new(self.key, [0; 12], &[], &mut []),
            });
            let n = tags.len();
            failed += usize::from(self.engine.seal(&mut jobs[..n]).is_err());
            for (t, j) in tags.iter_mut().zip(jobs.iter()) {
                *t = j.tag;
            }
        }
        failed
    }

    /// Opens what [`seal_all`](Self::seal_all) sealed; the packets that
    /// failed.
    fn open_all(&self, region: &mut [u8], tags: &[[u8; 16]]) -> usize {
        let mut failed = 0;
        let calls = region
            .chunks_mut(STRIDE * self.burst)
            .zip(tags.chunks(self.burst));
        for (b, (bufs, tags)) in calls.enumerate() {
            let mut it = bufs.chunks_mut(STRIDE).zip(tags.iter()).enumerate();
            let mut jobs: [Open<'_>; 16] = std::array::from_fn(|_| match it.next() {
                Some((i, (buf, tag))) => {
                    let k = b * self.burst + i;
                    Open::new(
                        self.key,
                        nonce(k as u64),
                        &[],
                        &mut buf[..self.len(k)],
                        *tag,
                    )
                }
                None => Open::new(self.key, [0; 12], &[], &mut [], [0; 16]),
            });
            let n = tags.len();
            failed += match self.engine.open(&mut jobs[..n]) {
                Ok(()) => jobs[..n].iter().filter(|j| !j.ok).count(),
                Err(_) => n,
            };
        }
        failed
    }

    /// Seals then opens every buffer of `region`, `passes` times, timing
    /// the seals and the opens apart; the fastest of a few rounds (on a
    /// shared CPU preemption only ever adds time): (seal cycles, open
    /// cycles, failures).
    fn time(
        &self,
        region: &mut [u8],
        tags: &mut [[u8; 16]],
        passes: usize,
        rdtsc: fn() -> u64,
    ) -> (u64, u64, usize) {
        let (mut seal, mut open, mut failed) = (u64::MAX, u64::MAX, 0);
        for _ in 0..ROUNDS {
            let (mut s, mut o) = (0, 0);
            for _ in 0..passes {
                let t0 = rdtsc();
                failed += self.seal_all(region, tags);
                let t1 = rdtsc();
                failed += self.open_all(region, tags);
                let t2 = rdtsc();
                s += t1 - t0;
                o += t2 - t1;
            }
            seal = seal.min(s);
            open = open.min(o);
        }
        (seal, open, failed)
    }
}

/// Measures every multi-buffer engine at every mix and burst: hot over
/// 32 buffers, `packets` packets in all; cold over `cold` buffers (the data
/// path's batch), each touched once per pass. `rdtsc` and `tsc_hz` time it.
pub fn measure(
    mixes: &[Mix],
    packets: usize,
    cold: usize,
    rdtsc: fn() -> u64,
    tsc_hz: u64,
) -> Result<Vec<MbFloor>, String> {
    let key = [7u8; 32];
    let mut hot = vec![0x5au8; HOT_BUFFERS * STRIDE];
    let mut hot_tags = vec![[0u8; 16]; HOT_BUFFERS];
    let cold = cold.max(16).next_multiple_of(16);
    let mut cold_region = vec![0x5au8; cold * STRIDE];
    let mut cold_tags = vec![[0u8; 16]; cold];
    let passes = packets.div_ceil(HOT_BUFFERS).max(1);
    let ns = |cycles: u64, n: usize| cycles as f64 * 1e9 / tsc_hz as f64 / n as f64;
    let mut out = Vec::new();
    for engine in Engine::available() {
        for mix in mixes {
            for burst in BURSTS {
                let run = Run {
                    engine,
                    key: &key,
                    mix,
                    burst,
                };
                let (s, o, f1) = run.time(&mut hot, &mut hot_tags, passes, rdtsc);
                let (sc, oc, f2) = run.time(&mut cold_region, &mut cold_tags, 1, rdtsc);
                if f1 + f2 > 0 {
                    return Err(format!("{} failed {} packets", engine.name(), f1 + f2));
                }
                out.push(MbFloor {
                    engine: engine.name(),
                    mix: mix.name,
                    burst,
                    seal_ns: ns(s, passes * HOT_BUFFERS),
                    open_ns: ns(o, passes * HOT_BUFFERS),
                    seal_cold_ns: ns(sc, cold),
                    open_cold_ns: ns(oc, cold),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::crypto::AeadBackend;

    fn one(backend: AeadBackend, mix: &'static str, seal_ns: f64, open_ns: f64) -> Floor {
        Floor {
            backend,
            mix,
            seal_ns,
            open_ns,
            seal_warm_ns: 1.0,
            open_warm_ns: 1.0,
            seal_cold_ns: 1.0,
            open_cold_ns: 1.0,
        }
    }

    /// The speed-up divides by the fastest one-packet floor of the same
    /// mix, per direction (seal and open may come from different
    /// backends), and skips an open floor that noise made NaN.
    #[test]
    fn speedup_is_against_the_fastest_one_packet_floor_of_the_same_mix() {
        let floors = [
            one(AeadBackend::IpsecMb, "64", 150.0, f64::NAN),
            one(AeadBackend::Ring, "64", 200.0, 160.0),
            one(AeadBackend::Ring, "1420", 10.0, 10.0),
        ];
        let mb = MbFloor {
            engine: "mb-avx512",
            mix: "64",
            burst: 16,
            seal_ns: 100.0,
            open_ns: 80.0,
            seal_cold_ns: 1.0,
            open_cold_ns: 1.0,
        };
        assert_eq!(mb.speedup(&floors), Some((1.5, 2.0)));
        let other = MbFloor { mix: "512", ..mb };
        assert_eq!(other.speedup(&floors), None);
    }
}
