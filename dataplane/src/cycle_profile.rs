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
