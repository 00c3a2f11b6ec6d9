//! Time for the data path: one TSC read per burst, converted to the
//! protocol's [`Instant`] on a clock shared with the control thread.

use std::time::Duration;

use protocol::time::Instant;

/// Converts TSC readings to [`Instant`]s since a common origin.
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    origin: u64,
    hz: u64,
}

impl TscClock {
    /// A clock whose epoch is the TSC value `origin`, ticking at `hz`.
    pub fn new(origin: u64, hz: u64) -> Self {
        Self {
            origin,
            hz: hz.max(1),
        }
    }

    /// The instant of TSC reading `tsc` (readings before the origin map to
    /// the epoch).
    #[inline]
    pub fn instant(&self, tsc: u64) -> Instant {
        let ticks = u128::from(tsc.saturating_sub(self.origin));
        let nanos = ticks * 1_000_000_000 / u128::from(self.hz);
        Instant::from_duration(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    /// Now, reading the TSC.
    #[inline]
    pub fn now(&self) -> Instant {
        self.instant(dpdk_sys::rte::rdtsc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks_to_time() {
        let c = TscClock::new(1_000, 2_000_000_000);
        assert_eq!(c.instant(1_000), Instant::ZERO);
        assert_eq!(c.instant(500), Instant::ZERO);
        assert_eq!(c.instant(1_000 + 2_000_000_000), Instant::from_secs(1));
        assert_eq!(
            c.instant(1_000 + 3_000_000),
            Instant::from_millis(1) + Duration::from_micros(500)
        );
    }
}
