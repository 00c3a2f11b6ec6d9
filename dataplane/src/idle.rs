//! Idle back-off for worker loops.
//!
//! Workers busy-poll by default: the lowest latency, and a full core each.
//! With `idle_sleep_us > 0` a worker that sees `idle_polls` empty polls in a
//! row starts sleeping `idle_sleep_us` between polls, until a poll returns a
//! packet. That lets a small machine share its cores with other processes
//! (the tests' peers and traffic generators on a 2-core box). The cost is
//! latency for the first packet after an idle spell: up to `idle_sleep_us`
//! plus the kernel's timer slack (~50 us by default), and packets arriving
//! meanwhile wait in the RX ring (which must hold a sleep's worth of them).

use std::time::Duration;

/// Tracks empty polls and sleeps when configured to.
#[derive(Debug, Clone)]
pub struct IdleBackoff {
    polls_before_sleep: u32,
    sleep: Duration,
    empty: u32,
}

impl IdleBackoff {
    /// `sleep` of zero means pure busy polling.
    pub fn new(polls_before_sleep: u32, sleep: Duration) -> Self {
        Self {
            polls_before_sleep,
            sleep,
            empty: 0,
        }
    }

    /// Records a round of polls that moved `work` packets; pauses or sleeps
    /// when idle. Returns whether it slept.
    #[inline]
    pub fn after_round(&mut self, work: usize) -> bool {
        if work > 0 {
            self.empty = 0;
            return false;
        }
        self.empty = self.empty.saturating_add(1);
        if self.sleep.is_zero() || self.empty < self.polls_before_sleep {
            std::hint::spin_loop();
            return false;
        }
        std::thread::sleep(self.sleep);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_polling_never_sleeps() {
        let mut b = IdleBackoff::new(0, Duration::ZERO);
        assert!((0..10_000).all(|_| !b.after_round(0)));
    }

    #[test]
    fn sleeps_after_the_threshold_and_resets_on_work() {
        let mut b = IdleBackoff::new(3, Duration::from_micros(1));
        assert!(!b.after_round(0));
        assert!(!b.after_round(0));
        assert!(b.after_round(0), "third empty round sleeps");
        assert!(b.after_round(0));
        assert!(!b.after_round(5), "work resets");
        assert!(!b.after_round(0));
        assert!(!b.after_round(0));
        assert!(b.after_round(0));
    }
}
