//! Per-stage cycle counts of the worker loop (cargo feature `stages`).
//!
//! The worker reads the TSC at the end of each stage of a packet's way
//! through it ([`StageClock::lap`]) and charges the cycles since the
//! previous read to that stage; once per round it publishes the sums in
//! its [`WorkerCounters`](crate::counters::WorkerCounters). The stages add
//! up to the whole loop, idle polling included. Without the feature every
//! call is an empty inline function: no TSC read, no store.
//!
//! Each lap costs one `rdtsc` (a few tens of cycles): with the feature on,
//! the loop is that much slower per stage boundary; read the figures as
//! where the cycles go, and the totals of a build without it as the speed.

/// Whether this build counts stage cycles.
pub const ENABLED: bool = cfg!(feature = "stages");

counter_enum! {
    /// A stage of the worker loop. Indexes the per-lcore stage cycle counters.
    pub enum Stage {
        /// RX bursts from both ports and the handoff ring.
        Rx = "rx",
        /// Ethernet/IP/UDP/WireGuard header checks and classification.
        Parse = "parse",
        /// Receiver-index and allowed-IPs lookups, the peer's slot.
        Lookup = "lookup",
        /// AEAD seal or open, with the counter and replay window.
        Crypto = "crypto",
        /// Everything after the cipher: padding, inner checks, mbuf trims, headers built, queued for TX.
        Build = "build",
        /// TX bursts and ring enqueues.
        Tx = "tx",
        /// Packets passed to the worker that owns their peer.
        Handoff = "handoff",
        /// Commands, relayed frames, idle polls and back-off.
        Other = "other",
    }
}

/// Reads the TSC, inline.
#[inline(always)]
fn tsc() -> u64 {
    dpdk_sys::rte::rdtsc()
}

/// A worker's stage stopwatch: the last TSC read and the cycles charged to
/// each stage since the last publication.
#[derive(Debug, Default)]
pub(crate) struct StageClock {
    last: u64,
    cycles: [u64; Stage::COUNT],
}

impl StageClock {
    /// Charges the cycles since the previous lap to `stage`.
    #[inline(always)]
    pub(crate) fn lap(&mut self, stage: Stage) {
        if !ENABLED {
            return;
        }
        let now = tsc();
        self.cycles[stage as usize] += now.wrapping_sub(self.last);
        self.last = now;
    }

    /// Starts timing (the first lap's cycles count from here).
    #[inline(always)]
    pub(crate) fn start(&mut self) {
        if ENABLED {
            self.last = tsc();
        }
    }

    /// Passes the sums to `add` (the worker's counters) and starts new
    /// ones.
    #[inline(always)]
    pub(crate) fn publish(&mut self, mut add: impl FnMut(Stage, u64)) {
        if !ENABLED {
            return;
        }
        for (stage, c) in Stage::ALL.iter().zip(self.cycles.iter_mut()) {
            add(*stage, std::mem::take(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::WorkerCounters;

    #[test]
    fn laps_add_up_when_enabled_and_cost_nothing_when_not() {
        let counters = WorkerCounters::default();
        let mut clock = StageClock::default();
        clock.start();
        std::hint::black_box((0..1000u64).sum::<u64>());
        clock.lap(Stage::Parse);
        clock.lap(Stage::Crypto);
        clock.publish(|s, c| counters.add_stage_cycles(s, c));
        let parse = counters.stage_cycles(Stage::Parse);
        let total: u64 = Stage::ALL.iter().map(|&s| counters.stage_cycles(s)).sum();
        if ENABLED {
            assert!(parse > 0, "the TSC moved during the first lap");
            assert_eq!(total, parse + counters.stage_cycles(Stage::Crypto));
            // Published sums start again from zero.
            clock.publish(|s, c| counters.add_stage_cycles(s, c));
            assert_eq!(counters.stage_cycles(Stage::Parse), parse);
        } else {
            assert_eq!(total, 0);
        }
    }
}
