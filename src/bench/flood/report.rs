//! The figures of a flood run (`wgdp bench --flood`) against the issue's
//! targets: per rate and working set, the data kept against the same
//! set's unloaded figure, the gate's counters, and the legitimate
//! initiator's time; as a table and as JSON.

use serde_json::{json, Value};

use super::super::warm::WorkingSet;

/// The legitimate initiator's result at one rate.
#[derive(Debug, Clone, Copy)]
pub(super) struct Legit {
    /// Initiations sent.
    pub(super) tries: u32,
    /// Cookie replies it got.
    pub(super) cookies: u32,
    /// Seconds to the response, virtual waits included; `None` if none
    /// came in `LEGIT_TRIES` tries.
    pub(super) total: Option<f64>,
    /// Seconds of the try that got the response.
    pub(super) last: Option<f64>,
}

/// One rate's figures on one working set.
#[derive(Debug, Clone)]
pub(super) struct SetFigure {
    pub(super) set: WorkingSet,
    /// Flood frames per data message.
    pub(super) per_data: f64,
    /// Data Mpps per worker of the unloaded batches run alternately with
    /// the loaded ones (median): what the share is against.
    pub(super) unloaded: Option<f64>,
    /// Data Mpps per worker (median); `None` when no warm batch could be
    /// timed with the worker fed throughout (see `bench::warm`).
    pub(super) mpps_per_worker: Option<f64>,
    pub(super) data_lost: u64,
    pub(super) bad_mac1: u64,
    pub(super) cookies: u64,
    pub(super) to_control: u64,
    pub(super) queue_full: u64,
    pub(super) rate_limited: u64,
    pub(super) max_depth: usize,
}

/// One rate's figures: each working set's, then the legitimate initiator's.
#[derive(Debug, Clone)]
pub(super) struct FloodFigure {
    pub(super) asked: u64,
    pub(super) sets: Vec<SetFigure>,
    pub(super) legit: Option<Legit>,
}

/// The report of a flood run.
pub struct FloodReport {
    pub(super) workers: usize,
    pub(super) peers: u32,
    pub(super) mix: &'static str,
    pub(super) warm_set: usize,
    /// Each working set's unloaded data Mpps per worker at the start (the
    /// flood rates are calibrated against it).
    pub(super) unloaded: Vec<(WorkingSet, Option<f64>)>,
    pub(super) figures: Vec<FloodFigure>,
}

/// Data kept at 50k/s and 500k/s, at least (share of unloaded).
const DATA_TARGET: f64 = 0.9;
/// Rates the data target applies to.
const DATA_TARGET_RATES: [u64; 2] = [50_000, 500_000];
/// The legitimate handshake's target beyond its cookie round trip.
const LEGIT_TARGET: f64 = 1.0;

impl SetFigure {
    /// The data's share of the unloaded batches run alternately with it.
    fn share(&self) -> Option<f64> {
        let (m, u) = (self.mpps_per_worker?, self.unloaded?);
        Some(m / u.max(f64::MIN_POSITIVE))
    }

    /// Flood frames per second fed while the data was forwarded.
    fn fed(&self, workers: usize) -> Option<f64> {
        self.mpps_per_worker
            .map(|m| m * 1e6 * workers as f64 * self.per_data)
    }

    /// Whether the data target holds at rate `asked` (`None`: none at
    /// this rate, or no figure).
    fn data_met(&self, asked: u64) -> Option<bool> {
        DATA_TARGET_RATES
            .contains(&asked)
            .then(|| self.share())
            .flatten()
            .map(|s| s >= DATA_TARGET)
    }
}

impl FloodFigure {
    /// Whether the legitimate initiator finished within 1 s plus one
    /// cookie round trip: at most two tries, the last within 1 s.
    fn legit_met(&self) -> bool {
        self.legit
            .is_some_and(|l| l.tries <= 2 && l.last.is_some_and(|s| s <= LEGIT_TARGET))
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "met"
    } else {
        "NOT met"
    }
}

/// How a working set is labelled in the flood table.
fn label(set: WorkingSet) -> &'static str {
    match set {
        WorkingSet::Warm => "warm",
        WorkingSet::Cold => "COLD",
    }
}

impl FloodReport {
    /// The table for people.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut t = String::new();
        let _ = writeln!(
            t,
            "\n== handshake flood: decap {} B, {} worker(s), {} peers; handshake queue {} ==",
            self.mix,
            self.workers,
            self.peers,
            control::handshake::HANDSHAKE_QUEUE
        );
        let _ = writeln!(
            t,
            "{:>4} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>5} {:>7} {:>7}  targets",
            "set", "flood/s", "fed/s", "unloaded", "Mpps/wkr", "share", "bad_mac1", "cookies", "to_ctl", "q_full", "rate_lim", "depth", "tries", "cook", "total_s", "last_s"
        );
        let num = |v: Option<f64>, prec: usize| v.map_or("-".into(), |v| format!("{v:.prec$}"));
        for &(set, u) in &self.unloaded {
            let _ = writeln!(
                t,
                "{:>4} {:>9} {:>9} {:>9} {:>9} {:>6.2}",
                label(set),
                0,
                0,
                num(u, 3),
                num(u, 3),
                1.0
            );
        }
        for f in &self.figures {
            for (i, s) in f.sets.iter().enumerate() {
                let data = s
                    .data_met(f.asked)
                    .map_or(String::new(), |m| format!("data {} ", yes(m)));
                let _ = write!(
                    t,
                    "{:>4} {:>9} {:>9} {:>9} {:>9} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6}",
                    label(s.set),
                    f.asked,
                    num(s.fed(self.workers), 0),
                    num(s.unloaded, 3),
                    num(s.mpps_per_worker, 3),
                    num(s.share(), 2),
                    s.bad_mac1,
                    s.cookies,
                    s.to_control,
                    s.queue_full,
                    s.rate_limited,
                    s.max_depth,
                );
                // The legitimate handshake, once per rate, on its last row.
                if i + 1 == f.sets.len() {
                    let l = f.legit;
                    let _ = writeln!(
                        t,
                        " {:>6} {:>5} {:>7} {:>7}  {data}handshake {}",
                        l.map_or(0, |l| l.tries),
                        l.map_or(0, |l| l.cookies),
                        num(l.and_then(|l| l.total), 3),
                        num(l.and_then(|l| l.last), 3),
                        yes(f.legit_met()),
                    );
                } else {
                    let _ = writeln!(t, " {:>6} {:>5} {:>7} {:>7}  {data}", "", "", "", "");
                }
            }
        }
        let _ = writeln!(
            t,
            "(warm: data and flood recycled through {} mbufs per worker, in cache as a NIC with DDIO delivers them: the figure the targets use; COLD: a fresh batch, every frame from DRAM; the 0 rows: each set's unloaded figure at the start, which calibrates the rates; unloaded: the same set's unloaded batches, each run just before a loaded one; share: Mpps/wkr against them; fed/s: flood frames per second while the data was forwarded; depth: the handshake queue's deepest; total_s: the legitimate initiator's time to its response (it heads cold flood batches), REKEY_TIMEOUT waits after a cookie included (virtual); last_s: its last try; -: no batch could be timed with the worker fed throughout)",
            self.warm_set
        );
        t
    }

    /// The figures for scripts.
    pub fn json(&self) -> Value {
        json!({
            "workers": self.workers,
            "peers": self.peers,
            "mix": self.mix,
            "handshake_queue": control::handshake::HANDSHAKE_QUEUE,
            "warm_set": self.warm_set,
            "unloaded_mpps_per_worker": self.unloaded.iter()
                .map(|&(set, u)| (set.name().to_string(), json!(u)))
                .collect::<serde_json::Map<_, _>>(),
            "rates": self.figures.iter().map(|f| json!({
                "asked_per_s": f.asked,
                "sets": f.sets.iter().map(|s| {
                    json!({
                        "set": s.set.name(),
                        "fed_per_s": s.fed(self.workers),
                        "unloaded_mpps_per_worker": s.unloaded,
                        "mpps_per_worker": s.mpps_per_worker,
                        "share_of_unloaded": s.share(),
                        "data_lost": s.data_lost,
                        "bad_mac1": s.bad_mac1,
                        "cookie_replies": s.cookies,
                        "to_control": s.to_control,
                        "queue_full": s.queue_full,
                        "rate_limited": s.rate_limited,
                        "max_queue_depth": s.max_depth,
                        "data_target_met": s.data_met(f.asked),
                    })
                }).collect::<Vec<_>>(),
                "legit_tries": f.legit.map(|l| l.tries),
                "legit_cookies": f.legit.map(|l| l.cookies),
                "legit_total_s": f.legit.and_then(|l| l.total),
                "legit_last_s": f.legit.and_then(|l| l.last),
                "handshake_target_met": f.legit_met(),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_figure(set: WorkingSet, unloaded: f64, mpps: Option<f64>) -> SetFigure {
        SetFigure {
            set,
            per_data: 0.5,
            unloaded: Some(unloaded),
            mpps_per_worker: mpps,
            data_lost: 0,
            bad_mac1: 16,
            cookies: 3,
            to_control: 1,
            queue_full: 0,
            rate_limited: 0,
            max_depth: 2,
        }
    }

    /// Each loaded figure is taken against its own set's unloaded batches,
    /// run alternately with it (not the set's figure at the start, which
    /// only calibrates the rates), cold rows are labelled as such, and a
    /// set with no timed batch has no share and no verdict.
    #[test]
    fn shares_are_against_the_same_sets_unloaded_batches_run_alternately() {
        let report = FloodReport {
            workers: 2,
            peers: 16,
            mix: "64",
            warm_set: 1024,
            // At the start: the shares must not use these.
            unloaded: vec![(WorkingSet::Warm, Some(4.5)), (WorkingSet::Cold, Some(2.5))],
            figures: vec![
                FloodFigure {
                    asked: 500_000,
                    sets: vec![
                        set_figure(WorkingSet::Warm, 4.0, Some(3.6)),
                        set_figure(WorkingSet::Cold, 2.0, Some(1.6)),
                    ],
                    legit: None,
                },
                FloodFigure {
                    asked: 5_000_000,
                    sets: vec![
                        set_figure(WorkingSet::Warm, 4.0, None),
                        set_figure(WorkingSet::Cold, 2.0, Some(0.2)),
                    ],
                    legit: None,
                },
            ],
        };
        let j = report.json();
        let share = |r: usize, s: usize| j["rates"][r]["sets"][s]["share_of_unloaded"].as_f64();
        let met = |r: usize, s: usize| j["rates"][r]["sets"][s]["data_target_met"].as_bool();
        assert_eq!(j["unloaded_mpps_per_worker"]["warm"], 4.5);
        assert_eq!(j["unloaded_mpps_per_worker"]["cold"], 2.5);
        assert_eq!(j["rates"][0]["sets"][0]["unloaded_mpps_per_worker"], 4.0);
        assert!((share(0, 0).expect("warm") - 0.9).abs() < 1e-12);
        assert!((share(0, 1).expect("cold") - 0.8).abs() < 1e-12);
        assert_eq!((met(0, 0), met(0, 1)), (Some(true), Some(false)));
        // fed/s: Mpps per worker x workers x flood frames per data message.
        let fed = j["rates"][0]["sets"][0]["fed_per_s"].as_f64().expect("fed");
        assert!((fed - 3.6e6).abs() < 1e-3, "{fed}");
        assert_eq!(share(1, 0), None, "no timed warm batch");
        assert_eq!((met(1, 0), met(1, 1)), (None, None), "no target at 5M/s");
        let t = report.table();
        let rows: Vec<&str> = t.lines().filter(|l| l.contains(" 500000 ")).collect();
        assert_eq!(rows.len(), 2, "{t}");
        assert!(rows[0].trim_start().starts_with("warm") && rows[0].contains(" 0.90 "));
        assert!(rows[0].contains("data met"), "{t}");
        assert!(rows[1].trim_start().starts_with("COLD") && rows[1].contains(" 0.80 "));
        assert!(rows[1].contains("data NOT met"), "{t}");
        assert!(
            rows[1].contains("handshake NOT met"),
            "the rate's last row: {t}"
        );
        assert!(!rows[0].contains("handshake"), "{t}");
    }
}
