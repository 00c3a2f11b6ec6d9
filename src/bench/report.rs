//! `wgdp bench` output: tables for people, JSON for scripts.

use std::fmt::Write;

use serde_json::{json, Value};

use dataplane::cycle_profile::Stage;

use super::floor::{self, Floor};
use super::mbfloor::MbFloor;
use super::rig::Direction;
use super::warm::WorkingSet;
use super::Figure;

/// Everything one run measured.
pub struct Report<'a> {
    /// The EAL arguments.
    pub eal: &'a str,
    /// Outer checksums computed in software.
    pub sw_checksum: bool,
    /// CPUs this process could use.
    pub cpus: usize,
    /// TSC frequency.
    pub tsc_hz: u64,
    /// Packets per worker, input port and batch.
    pub packets: usize,
    /// Mbufs per worker and input port that warm runs recycle.
    pub warm_set: usize,
    /// Batches per figure.
    pub repeat: usize,
    /// The AEAD floors.
    pub floors: &'a [Floor],
    /// The multi-buffer AEAD's floors (the worker loop uses it where the
    /// notes say so: `--aead`).
    pub mb_floors: &'a [MbFloor],
    /// The data path figures.
    pub figures: &'a [Figure],
    /// Things the reader must know (shared CPUs, skipped runs).
    pub notes: &'a [String],
}

/// The CPU's model name, from /proc/cpuinfo.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

impl Figure {
    /// Inner (plaintext IP) bits per second, in billions.
    fn gbps(&self) -> f64 {
        self.mpps * self.mix.mean() * 8.0 / 1e3
    }

    /// Packets per second one worker managed, in millions.
    fn mpps_per_worker(&self) -> f64 {
        self.mpps / self.workers as f64
    }

    /// The fastest AEAD's floor for this direction and mix, Mpps.
    fn floor(&self, floors: &[Floor]) -> Option<f64> {
        self.pick(floor::fastest(floors, self.mix.name)?)
    }

    /// The fastest AEAD's warm floor (the warm runs' working set), Mpps.
    fn warm_floor(&self, floors: &[Floor]) -> Option<f64> {
        self.pick(floor::fastest_warm(floors, self.mix.name)?)
    }

    /// The fastest AEAD's cold floor (the cold batch's working set), Mpps.
    fn cold_floor(&self, floors: &[Floor]) -> Option<f64> {
        self.pick(floor::fastest_cold(floors, self.mix.name)?)
    }

    /// The fastest AEAD's floor over this figure's own working set, Mpps.
    fn set_floor(&self, floors: &[Floor]) -> Option<f64> {
        match self.set {
            WorkingSet::Warm => self.warm_floor(floors),
            WorkingSet::Cold => self.cold_floor(floors),
        }
    }

    /// This direction's share of a (seal, open) floor pair.
    fn pick(&self, (seal, open): (f64, f64)) -> Option<f64> {
        Some(match self.direction {
            Direction::Encap => seal,
            Direction::Decap => open,
            // Half the packets are sealed, half opened.
            Direction::RoundTrip => 2.0 / (1.0 / seal + 1.0 / open),
        })
    }

    /// The same figure with one worker, if measured.
    fn single<'f>(&self, all: &'f [Figure]) -> Option<&'f Figure> {
        all.iter().find(|f| {
            f.workers == 1
                && f.peers == self.peers
                && f.direction == self.direction
                && f.set == self.set
                && f.mix.name == self.mix.name
        })
    }
}

impl Report<'_> {
    /// The human-readable report.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "wgdp bench: {} ({} CPUs, TSC {:.3} GHz), commit {}",
            cpu_model(),
            self.cpus,
            self.tsc_hz as f64 / 1e9,
            env!("WGDP_GIT_COMMIT")
        );
        let _ =
            writeln!(
            s,
            "EAL: {}; {} packets per worker and port per batch, median of {}; outer checksums: {}",
            self.eal,
            self.packets,
            self.repeat,
            if self.sw_checksum { "software" } else { "offload requested" }
        );
        if cfg!(debug_assertions) {
            let _ = writeln!(
                s,
                "note: a debug build: these figures say little (cargo build --release)"
            );
        }
        for n in self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        let _ = writeln!(
            s,
            "\nAEAD floor (ChaCha20-Poly1305, one packet per call, one core)"
        );
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "backend",
            "size",
            "seal ns",
            "seal Mpps",
            "open ns",
            "open Mpps",
            "seal warm",
            "open warm",
            "seal cold",
            "open cold"
        );
        for f in self.floors {
            let _ = writeln!(
                s,
                "{:<10} {:>6} {:>9.1} {:>9.2} {:>9.1} {:>9.2} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                f.backend.name(),
                f.mix,
                f.seal_ns,
                f.seal_mpps(),
                f.open_ns,
                f.open_mpps(),
                f.seal_warm_ns,
                f.open_warm_ns,
                f.seal_cold_ns,
                f.open_cold_ns
            );
        }
        let _ = writeln!(
            s,
            "(hot: ns per packet over 32 buffers, in L1; warm: ns per packet cycling {} buffers, in cache; cold: ns per packet over {} buffers, each from memory)",
            self.warm_set, self.packets
        );
        self.mb_table(&mut s);
        let _ = writeln!(
            s,
            "\nData path (set warm: {} packets per worker and port recycled through {} mbufs, as a NIC with DDIO delivers them, the figure the targets use; cold: a fresh batch of {} from memory. Gbit/s of inner packets; floor: fastest hot AEAD floor, Mpps; ratio: per-worker Mpps / floor; same: / the fastest floor over the same working set, warm or cold)",
            self.packets, self.warm_set, self.packets
        );
        let _ = writeln!(
            s,
            "{:>2} {:>6} {:<9} {:>5} {:<4} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7} {:>6} {:>5}",
            "w",
            "peers",
            "dir",
            "size",
            "set",
            "Mpps",
            "Mpps/w",
            "Gbit/s",
            "cyc/pkt",
            "floor",
            "ratio",
            "same",
            "drops"
        );
        let ratio = |f: &Figure, x: Option<f64>| {
            x.map_or("-".into(), |x| format!("{:.3}", f.mpps_per_worker() / x))
        };
        for f in self.figures {
            let floor = f.floor(self.floors);
            let _ = writeln!(
                s,
                "{:>2} {:>6} {:<9} {:>5} {:<4} {:>8.3} {:>8.3} {:>8.2} {:>8.0} {:>6} {:>7} {:>6} {:>5}",
                f.workers,
                f.peers,
                f.direction.name(),
                f.mix.name,
                f.set.name(),
                f.mpps,
                f.mpps_per_worker(),
                f.gbps(),
                f.cycles_per_packet,
                floor.map_or("-".into(), |x| format!("{x:.2}")),
                ratio(f, floor),
                ratio(f, f.set_floor(self.floors)),
                f.drops
            );
        }
        self.stage_table(&mut s);
        let scaled: Vec<_> = self
            .figures
            .iter()
            .filter(|f| f.workers > 1)
            .filter_map(|f| f.single(self.figures).map(|one| (f, one)))
            .collect();
        if !scaled.is_empty() {
            let _ = writeln!(s, "\nScaling (Mpps with w workers / Mpps with 1)");
            let _ = writeln!(
                s,
                "{:>2} {:>6} {:<9} {:>5} {:<4} {:>7}",
                "w", "peers", "dir", "size", "set", "x"
            );
            for (f, one) in scaled {
                let _ = writeln!(
                    s,
                    "{:>2} {:>6} {:<9} {:>5} {:<4} {:>7.2}",
                    f.workers,
                    f.peers,
                    f.direction.name(),
                    f.mix.name,
                    f.set.name(),
                    f.mpps / one.mpps
                );
            }
        }
        s
    }

    /// Cycles per packet in each stage of the worker loop, for the figures
    /// that have them (`--stages`).
    fn stage_table(&self, s: &mut String) {
        let rows: Vec<_> = self
            .figures
            .iter()
            .filter_map(|f| f.stages.map(|st| (f, st)))
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "\nPer-stage cycles per packet (worker TSC, all workers; see dataplane/src/cycle_profile.rs)"
        );
        let _ = write!(
            s,
            "{:>2} {:>6} {:<9} {:>5} {:<4} {:>7}",
            "w", "peers", "dir", "size", "set", "sum"
        );
        for stage in Stage::ALL {
            let _ = write!(s, " {:>7}", stage.label());
        }
        let _ = writeln!(s);
        for (f, st) in rows {
            let _ = write!(
                s,
                "{:>2} {:>6} {:<9} {:>5} {:<4} {:>7.0}",
                f.workers,
                f.peers,
                f.direction.name(),
                f.mix.name,
                f.set.name(),
                st.iter().sum::<f64>()
            );
            for c in st {
                let _ = write!(s, " {c:>7.0}");
            }
            let _ = writeln!(s);
        }
    }

    /// The multi-buffer floors, and how many times faster each is than the
    /// fastest one-packet floor at its size.
    fn mb_table(&self, s: &mut String) {
        if self.mb_floors.is_empty() {
            let _ = writeln!(s, "\nMulti-buffer AEAD floor: no AVX-512 or AVX2 here");
            return;
        }
        let _ = writeln!(
            s,
            "\nMulti-buffer AEAD floor (mbaead: a burst per call, one lane per packet, one core; the worker loop's use of it: the notes)"
        );
        let _ = writeln!(
            s,
            "{:<15} {:>6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
            "engine",
            "size",
            "burst",
            "seal ns",
            "seal Mpps",
            "open ns",
            "open Mpps",
            "seal cold",
            "open cold",
            "x seal",
            "x open"
        );
        for f in self.mb_floors {
            let (xs, xo) = f.speedup(self.floors).unwrap_or((f64::NAN, f64::NAN));
            let _ = writeln!(
                s,
                "{:<15} {:>6} {:>5} {:>9.1} {:>9.2} {:>9.1} {:>9.2} {:>9.1} {:>9.1} {:>7.2} {:>7.2}",
                f.engine,
                f.mix,
                f.burst,
                f.seal_ns,
                1e3 / f.seal_ns,
                f.open_ns,
                1e3 / f.open_ns,
                f.seal_cold_ns,
                f.open_cold_ns,
                xs,
                xo
            );
        }
        let _ = writeln!(
            s,
            "(ns per packet; x: the fastest one-packet floor's hot ns / this one's, same size)"
        );
    }

    /// The machine-readable report.
    pub fn json(&self) -> Value {
        let floors: Vec<Value> = self
            .floors
            .iter()
            .map(|f| {
                json!({
                    "backend": f.backend.name(), "size": f.mix,
                    "seal_ns": f.seal_ns, "seal_mpps": f.seal_mpps(),
                    "open_ns": f.open_ns, "open_mpps": f.open_mpps(),
                    "seal_warm_ns": f.seal_warm_ns, "open_warm_ns": f.open_warm_ns,
                    "seal_cold_ns": f.seal_cold_ns, "open_cold_ns": f.open_cold_ns,
                })
            })
            .collect();
        let mb_floors: Vec<Value> = self
            .mb_floors
            .iter()
            .map(|f| {
                let x = f.speedup(self.floors);
                json!({
                    "engine": f.engine, "size": f.mix, "burst": f.burst,
                    "seal_ns": f.seal_ns, "open_ns": f.open_ns,
                    "seal_cold_ns": f.seal_cold_ns, "open_cold_ns": f.open_cold_ns,
                    "seal_speedup": x.map(|x| x.0), "open_speedup": x.map(|x| x.1),
                })
            })
            .collect();
        let figures: Vec<Value> = self
            .figures
            .iter()
            .map(|f| {
                let floor = f.floor(self.floors);
                let warm = f.warm_floor(self.floors);
                let cold = f.cold_floor(self.floors);
                json!({
                    "workers": f.workers, "peers": f.peers,
                    "direction": f.direction.name(), "size": f.mix.name,
                    "set": f.set.name(),
                    "mpps": f.mpps, "mpps_per_worker": f.mpps_per_worker(),
                    "gbps": f.gbps(), "cycles_per_packet": f.cycles_per_packet,
                    "floor_mpps": floor,
                    "ratio_to_floor": floor.map(|x| f.mpps_per_worker() / x),
                    "warm_floor_mpps": warm,
                    "ratio_to_warm_floor": warm.map(|x| f.mpps_per_worker() / x),
                    "cold_floor_mpps": cold,
                    "ratio_to_cold_floor": cold.map(|x| f.mpps_per_worker() / x),
                    "scaling": f.single(self.figures).filter(|_| f.workers > 1).map(|one| f.mpps / one.mpps),
                    "drops": f.drops,
                    "stage_cycles_per_packet": f.stages.map(|st| {
                        Stage::ALL.iter().zip(st).map(|(s, c)| (s.label().to_owned(), json!(c)))
                            .collect::<serde_json::Map<_, _>>()
                    }),
                })
            })
            .collect();
        json!({
            "cpu": cpu_model(), "cpus": self.cpus, "tsc_hz": self.tsc_hz,
            "commit": env!("WGDP_GIT_COMMIT"), "eal": self.eal,
            "sw_checksum": self.sw_checksum,
            "packets": self.packets, "warm_set": self.warm_set, "repeat": self.repeat,
            "notes": self.notes, "floors": floors, "mb_floors": mb_floors,
            "figures": figures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::traffic::Mix;
    use protocol::crypto::AeadBackend;

    fn floor(backend: AeadBackend, hot: f64, warm: f64, cold: f64) -> Floor {
        Floor {
            backend,
            mix: "64",
            seal_ns: hot,
            open_ns: 2.0 * hot,
            seal_warm_ns: warm,
            open_warm_ns: 2.0 * warm,
            seal_cold_ns: cold,
            open_cold_ns: 2.0 * cold,
        }
    }

    fn figure(set: WorkingSet, direction: Direction) -> Figure {
        Figure {
            workers: 2,
            peers: 1,
            direction,
            set,
            mix: Mix::fixed("64", 64),
            mpps: 4.0,
            cycles_per_packet: 1000.0,
            drops: 0,
            stages: None,
        }
    }

    /// The hot floor is every figure's `floor`; the warm and cold floors
    /// go with the figures of their own working set, each the fastest
    /// backend's (here ring is faster warm, ipsec-mb hot and cold).
    #[test]
    fn each_set_is_held_against_its_own_floor_and_all_against_the_hot_one() {
        let floors = [
            floor(AeadBackend::IpsecMb, 100.0, 500.0, 250.0),
            floor(AeadBackend::Ring, 200.0, 400.0, 1000.0),
        ];
        let warm = figure(WorkingSet::Warm, Direction::Encap);
        let cold = figure(WorkingSet::Cold, Direction::Encap);
        assert_eq!(warm.floor(&floors), Some(10.0));
        assert_eq!(cold.floor(&floors), Some(10.0));
        assert_eq!(warm.set_floor(&floors), Some(2.5));
        assert_eq!(cold.set_floor(&floors), Some(4.0));
        let decap = figure(WorkingSet::Warm, Direction::Decap);
        assert_eq!(decap.set_floor(&floors), Some(1.25));
        // 2 Mpps per worker against the warm floor of 2.5 Mpps.
        assert_eq!(warm.mpps_per_worker() / 2.5, 0.8);
        let r = Report {
            eal: "",
            sw_checksum: false,
            cpus: 2,
            tsc_hz: 1,
            packets: 4096,
            warm_set: 256,
            repeat: 1,
            floors: &floors,
            mb_floors: &[],
            figures: &[warm, cold],
            notes: &[],
        };
        let j = r.json();
        assert_eq!(j["warm_set"], 256);
        assert_eq!(j["figures"][0]["set"], "warm");
        assert_eq!(j["figures"][0]["ratio_to_warm_floor"], 0.8);
        assert_eq!(j["figures"][1]["set"], "cold");
        assert_eq!(j["figures"][1]["ratio_to_cold_floor"], 0.5);
        assert_eq!(j["figures"][1]["ratio_to_floor"], 0.2);
        let t = r.table();
        assert!(t.contains(" 2      1 encap        64 warm "), "{t}");
        assert!(t.contains("  0.200  0.800     0\n"), "{t}");
        assert!(t.contains("  0.200  0.500     0\n"), "{t}");
    }
}
