//! The anti-replay window for transport counters (whitepaper section 5.4.6,
//! RFC 6479 sliding bitmap; kernel `receive.c: counter_validate`).
//!
//! 8192 bits in 128 words of 64; one word is always being recycled, so 8128
//! counters behind the highest one seen are tracked. The window has a single
//! writer (the owning lcore) and no lock. Unlike the kernel's one-shot
//! `counter_validate`, the check is split: [`ReplayWindow::check`] before
//! decryption rejects what is certainly a replay or too old without touching
//! state, and [`ReplayWindow::update`] after authentication records the
//! counter, so that forged packets can never move the window.

use crate::constants::{
    COUNTER_BITS_TOTAL, COUNTER_WINDOW_SIZE, COUNTER_WORD_BITS, REJECT_AFTER_MESSAGES,
};

const WORDS: usize = (COUNTER_BITS_TOTAL / COUNTER_WORD_BITS) as usize;

/// Why a counter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// At or past [`REJECT_AFTER_MESSAGES`], or the window is exhausted.
    #[error("counter beyond REJECT_AFTER_MESSAGES")]
    Exhausted,
    /// Further behind the highest counter than the window reaches.
    #[error("counter too old for the replay window")]
    TooOld,
    /// Already received.
    #[error("counter already received")]
    Replayed,
}

/// The sliding window of received counters of one keypair.
#[derive(Clone)]
pub struct ReplayWindow {
    /// One more than the highest counter accepted so far (0: none yet), as
    /// the kernel keeps it.
    next: u64,
    bitmap: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// An empty window: nothing received.
    pub const fn new() -> Self {
        ReplayWindow {
            next: 0,
            bitmap: [0; WORDS],
        }
    }

    /// One more than the highest counter accepted (0 before the first).
    pub const fn next_expected(&self) -> u64 {
        self.next
    }

    fn position(counter_plus_one: u64) -> (usize, u64) {
        let word = (counter_plus_one / COUNTER_WORD_BITS) as usize % WORDS;
        let bit = 1u64 << (counter_plus_one % COUNTER_WORD_BITS);
        (word, bit)
    }

    /// Whether `counter` could be accepted; changes nothing. Call before
    /// decrypting, then [`update`](Self::update) after authentication.
    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        if self.next > REJECT_AFTER_MESSAGES || counter >= REJECT_AFTER_MESSAGES {
            return Err(ReplayError::Exhausted);
        }
        let c = counter + 1;
        if c + COUNTER_WINDOW_SIZE < self.next {
            return Err(ReplayError::TooOld);
        }
        if c > self.next {
            return Ok(());
        }
        let (word, bit) = Self::position(c);
        if self.bitmap[word] & bit != 0 {
            Err(ReplayError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `counter` as received, sliding the window forward if it is the
    /// highest yet. Re-checks, so a counter that went stale between `check`
    /// and `update` (another packet moved the window) is still refused.
    pub fn update(&mut self, counter: u64) -> Result<(), ReplayError> {
        self.check(counter)?;
        let c = counter + 1;
        if c > self.next {
            // Clear the words the window slides over (at most all of them).
            let current = self.next / COUNTER_WORD_BITS;
            let target = c / COUNTER_WORD_BITS;
            let top = (target - current).min(WORDS as u64);
            for i in 1..=top {
                self.bitmap[((current + i) % WORDS as u64) as usize] = 0;
            }
            self.next = c;
        }
        let (word, bit) = Self::position(c);
        self.bitmap[word] |= bit;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The kernel's one-shot validation, expressed with check + update.
    fn validate(w: &mut ReplayWindow, n: u64) -> bool {
        w.check(n).is_ok() && w.update(n).is_ok()
    }

    /// The table of the Linux kernel's `selftest/counter.c`, re-expressed:
    /// each row is (counter, expected acceptance) against one window whose
    /// first refused counter is `reject` (the shared multi-lane window of
    /// `crate::shared_replay` runs it too, with its own limit).
    pub(crate) fn kernel_table(reject: u64) -> Vec<(u64, bool)> {
        const LIM: u64 = COUNTER_WINDOW_SIZE + 1;
        let r = reject;
        vec![
            (0, true),
            (1, true),
            (1, false),
            (9, true),
            (8, true),
            (7, true),
            (7, false),
            (LIM, true),
            (LIM - 1, true),
            (LIM - 1, false),
            (LIM - 2, true),
            (2, true),
            (2, false),
            (LIM + 16, true),
            (3, false),
            (LIM + 16, false),
            (LIM * 4, true),
            (LIM * 4 - (LIM - 1), true),
            (10, false),
            (LIM * 4 - LIM, false),
            (LIM * 4 - (LIM + 1), false),
            (LIM * 4 - (LIM - 2), true),
            (LIM * 4 + 1 - LIM, false),
            (0, false),
            (r, false),
            (r - 1, true),
            (r, false),
            (r - 1, false),
            (r - 2, true),
            (r + 1, false),
            (r + 2, false),
            (r - 2, false),
            (r - 3, true),
            (0, false),
        ]
    }

    #[test]
    fn kernel_counter_selftest_table() {
        let mut w = ReplayWindow::new();
        for (i, (n, expected)) in kernel_table(REJECT_AFTER_MESSAGES).into_iter().enumerate() {
            assert_eq!(validate(&mut w, n), expected, "row {} (counter {n})", i + 1);
        }
    }

    #[test]
    fn kernel_counter_selftest_sweeps() {
        let size = COUNTER_WINDOW_SIZE;
        // Ascending 1..=size, then 0 is still inside the window.
        let mut w = ReplayWindow::new();
        for i in 1..=size {
            assert!(validate(&mut w, i));
        }
        assert!(validate(&mut w, 0));
        assert!(!validate(&mut w, 0));

        // Ascending 2..=size+1: 1 fits, 0 has fallen out.
        let mut w = ReplayWindow::new();
        for i in 2..=size + 1 {
            assert!(validate(&mut w, i));
        }
        assert!(validate(&mut w, 1));
        assert!(!validate(&mut w, 0));

        // Descending size..=0: all accepted.
        let mut w = ReplayWindow::new();
        for i in (0..=size).rev() {
            assert!(validate(&mut w, i));
        }

        // Descending size+1..=1: then 0 is too old.
        let mut w = ReplayWindow::new();
        for i in (1..=size + 1).rev() {
            assert!(validate(&mut w, i));
        }
        assert!(!validate(&mut w, 0));

        // Descending size..=1, then size+1 slides, then 0 too old.
        let mut w = ReplayWindow::new();
        for i in (1..=size).rev() {
            assert!(validate(&mut w, i));
        }
        assert!(validate(&mut w, size + 1));
        assert!(!validate(&mut w, 0));

        // Descending size..=1, then 0, then size+1.
        let mut w = ReplayWindow::new();
        for i in (1..=size).rev() {
            assert!(validate(&mut w, i));
        }
        assert!(validate(&mut w, 0));
        assert!(validate(&mut w, size + 1));
    }

    #[test]
    fn check_does_not_mutate_and_errors_are_typed() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.check(5), Ok(()));
        w.update(5).expect("fresh");
        assert_eq!(w.check(5), Err(ReplayError::Replayed));
        w.update(20_000).expect("fresh");
        assert_eq!(w.check(6), Err(ReplayError::TooOld));
        assert_eq!(w.check(REJECT_AFTER_MESSAGES), Err(ReplayError::Exhausted));
        assert_eq!(w.next_expected(), 20_001);
    }
}
