//! `wgdp bench` output: tables for people, JSON for scripts.

use std::fmt::Write;

use serde_json::{json, Value};

use dataplane::cycle_profile::Stage;

use super::floor::{self, Floor};
use super::mbfloor::MbFloor;
use super::rig::Direction;
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
    /// Batches per figure.
    pub repeat: usize,
    /// The AEAD floors.
    pub floors: &'a [Floor],
    /// The multi-buffer AEAD's floors (not used by the worker loop yet).
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

    /// The fastest AEAD's cold floor (the data path's working set), Mpps.
    fn cold_floor(&self, floors: &[Floor]) -> Option<f64> {
        self.pick(floor::fastest_cold(floors, self.mix.name)?)
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
            "{:<10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "backend",
            "size",
            "seal ns",
            "seal Mpps",
            "open ns",
            "open Mpps",
            "seal cold",
            "open cold"
        );
        for f in self.floors {
            let _ = writeln!(
                s,
                "{:<10} {:>6} {:>9.1} {:>9.2} {:>9.1} {:>9.2} {:>9.1} {:>9.1}",
                f.backend.name(),
                f.mix,
                f.seal_ns,
                f.seal_mpps(),
                f.open_ns,
                f.open_mpps(),
                f.seal_cold_ns,
                f.open_cold_ns
            );
        }
        let _ = writeln!(
            s,
            "(cold: ns per packet over {} buffers, each from memory as the data path's are)",
            self.packets
        );
        self.mb_table(&mut s);
        let _ = writeln!(
            s,
            "\nData path (Gbit/s of inner packets; ratio: per-worker Mpps / fastest floor; cold: / fastest cold floor)"
        );
        let _ = writeln!(
            s,
            "{:>2} {:>6} {:<9} {:>5} {:>8} {:>8} {:>8} {:>8} {:>6} {:>7} {:>6} {:>5}",
            "w",
            "peers",
            "dir",
            "size",
            "Mpps",
            "Mpps/w",
            "Gbit/s",
            "cyc/pkt",
            "floor",
            "ratio",
            "cold",
            "drops"
        );
        let ratio = |f: &Figure, x: Option<f64>| {
            x.map_or("-".into(), |x| format!("{:.3}", f.mpps_per_worker() / x))
        };
        for f in self.figures {
            let floor = f.floor(self.floors);
            let _ = writeln!(
                s,
                "{:>2} {:>6} {:<9} {:>5} {:>8.3} {:>8.3} {:>8.2} {:>8.0} {:>6} {:>7} {:>6} {:>5}",
                f.workers,
                f.peers,
                f.direction.name(),
                f.mix.name,
                f.mpps,
                f.mpps_per_worker(),
                f.gbps(),
                f.cycles_per_packet,
                floor.map_or("-".into(), |x| format!("{x:.2}")),
                ratio(f, floor),
                ratio(f, f.cold_floor(self.floors)),
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
                "{:>2} {:>6} {:<9} {:>5} {:>7}",
                "w", "peers", "dir", "size", "x"
            );
            for (f, one) in scaled {
                let _ = writeln!(
                    s,
                    "{:>2} {:>6} {:<9} {:>5} {:>7.2}",
                    f.workers,
                    f.peers,
                    f.direction.name(),
                    f.mix.name,
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
            "{:>2} {:>6} {:<9} {:>5} {:>7}",
            "w", "peers", "dir", "size", "sum"
        );
        for stage in Stage::ALL {
            let _ = write!(s, " {:>7}", stage.label());
        }
        let _ = writeln!(s);
        for (f, st) in rows {
            let _ = write!(
                s,
                "{:>2} {:>6} {:<9} {:>5} {:>7.0}",
                f.workers,
                f.peers,
                f.direction.name(),
                f.mix.name,
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
            "\nMulti-buffer AEAD floor (mbaead: a burst per call, one lane per packet, one core; not in the worker loop yet)"
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
                let cold = f.cold_floor(self.floors);
                json!({
                    "workers": f.workers, "peers": f.peers,
                    "direction": f.direction.name(), "size": f.mix.name,
                    "mpps": f.mpps, "mpps_per_worker": f.mpps_per_worker(),
                    "gbps": f.gbps(), "cycles_per_packet": f.cycles_per_packet,
                    "floor_mpps": floor,
                    "ratio_to_floor": floor.map(|x| f.mpps_per_worker() / x),
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
            "packets": self.packets, "repeat": self.repeat,
            "notes": self.notes, "floors": floors, "mb_floors": mb_floors,
            "figures": figures,
        })
    }
}
