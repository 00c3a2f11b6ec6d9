//! The replay window of a multi-lane keypair, safe under concurrent
//! writers: the workers that share the keypair (its send counter is
//! [`crate::send_block`]).
//!
//! A single-lane keypair keeps its single-writer
//! [`ReplayWindow`](crate::replay::ReplayWindow).
//!
//! The window has [`SLOTS`] slots of 16 counters. A slot is one `AtomicU64`:
//! the high 48 bits are the block number (counter / 16) that the slot
//! currently holds, the low 16 bits the bitmap of that block. Accepting
//! a counter is one compare-and-swap of its slot: set the bit when the slot
//! holds the counter's block, or recycle the slot (new block, only this bit)
//! when it holds an older one. A slot never goes back to an older block, so
//! once a counter's bit is set it stays set until the slot moves on, after
//! which the counter is refused as too old: **no counter is accepted twice,
//! whatever the interleaving of writers**. A plain shared bitmap with
//! `fetch_or` would need a separate step to clear words as the window slides,
//! and a clear racing with a concurrent `fetch_or` can erase a bit that was
//! just set; the tag makes recycling and setting one atomic step.
//!
//! The highest counter accepted is an atomic maximum; counters further than
//! [`COUNTER_WINDOW_SIZE`] behind it are refused as too old, as the kernel
//! does. That bound is read without ordering against the slots (a writer may
//! act on a slightly stale maximum): it only decides when the window is left,
//! uniqueness comes from the slots alone. The block number is stored whole
//! (never truncated or compared with wrap-around), which is why counters
//! from [`LANE_COUNTER_LIMIT`] (2^52) on are refused as exhausted: no
//! sender reaches it within a keypair's life (REJECT_AFTER_TIME, 180 s, is
//! 2^37 packets at a billion packets per second).

use core::sync::atomic::{AtomicU64, Ordering};

use crate::constants::{COUNTER_BITS_TOTAL, COUNTER_WINDOW_SIZE};
use crate::replay::ReplayError;

/// Counters per replay-window slot.
const SLOT_BITS: u64 = 16;

/// The first counter a shared replay window refuses (see the module
/// docs): its block number must fit the slot's 48-bit tag.
pub const LANE_COUNTER_LIMIT: u64 = 1 << 52;

/// Slots of the shared replay window (8192 counters in all, as the
/// single-writer window).
pub const SLOTS: usize = (COUNTER_BITS_TOTAL / SLOT_BITS) as usize;

/// The replay window of a keypair shared by several workers: any of them
/// may check and record counters concurrently (see the module docs).
pub struct SharedReplayWindow {
    /// One more than the highest counter accepted (0: none yet).
    next: AtomicU64,
    slots: [AtomicU64; SLOTS],
}

impl Default for SharedReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for SharedReplayWindow {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedReplayWindow")
            .field("next", &self.next_expected())
            .finish_non_exhaustive()
    }
}

/// What a slot says about a counter.
enum Slot {
    /// The counter's bit is free: store this value to record it.
    Free(u64),
    /// The counter's bit is set.
    Seen,
    /// The slot holds a newer block: the counter has left the window.
    Gone,
}

impl SharedReplayWindow {
    /// An empty window.
    pub const fn new() -> Self {
        SharedReplayWindow {
            next: AtomicU64::new(0),
            slots: [const { AtomicU64::new(0) }; SLOTS],
        }
    }

    /// One more than the highest counter accepted (0 before the first).
    pub fn next_expected(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// A counter's slot, block number and bit (below
    /// [`LANE_COUNTER_LIMIT`]: the block fits 48 bits).
    fn slot(counter: u64) -> (usize, u64, u64) {
        let block = counter / SLOT_BITS;
        (
            (block % SLOTS as u64) as usize,
            block,
            1u64 << (counter % SLOT_BITS),
        )
    }

    /// Reads a slot's value against a counter's block and bit.
    fn classify(value: u64, block: u64, bit: u64) -> Slot {
        let held = value >> SLOT_BITS;
        if held == block {
            if value & bit != 0 {
                Slot::Seen
            } else {
                Slot::Free(value | bit)
            }
        } else if held > block {
            Slot::Gone
        } else {
            Slot::Free(block << SLOT_BITS | bit)
        }
    }

    fn bounds(&self, counter: u64) -> Result<(), ReplayError> {
        let next = self.next.load(Ordering::Relaxed);
        if next > LANE_COUNTER_LIMIT || counter >= LANE_COUNTER_LIMIT {
            return Err(ReplayError::Exhausted);
        }
        if counter + 1 + COUNTER_WINDOW_SIZE < next {
            return Err(ReplayError::TooOld);
        }
        Ok(())
    }

    /// Whether `counter` could be accepted; changes nothing. Call before
    /// decrypting, then [`update`](Self::update) after authentication.
    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        self.bounds(counter)?;
        let (slot, block, bit) = Self::slot(counter);
        match Self::classify(self.slots[slot].load(Ordering::Acquire), block, bit) {
            Slot::Free(_) => Ok(()),
            Slot::Seen => Err(ReplayError::Replayed),
            Slot::Gone => Err(ReplayError::TooOld),
        }
    }

    /// Counts every counter below `next` as inside the window (a window
    /// built from a single-writer one, before it is shared).
    pub fn raise(&self, next: u64) {
        self.next.fetch_max(next, Ordering::Relaxed);
    }

    /// Records `counter` as received. Of any number of concurrent calls
    /// with the same counter, exactly one succeeds; the others (and every
    /// later one) get [`ReplayError::Replayed`] or [`ReplayError::TooOld`].
    pub fn update(&self, counter: u64) -> Result<(), ReplayError> {
        self.bounds(counter)?;
        let (slot, block, bit) = Self::slot(counter);
        let cell = &self.slots[slot];
        let mut current = cell.load(Ordering::Acquire);
        loop {
            let new = match Self::classify(current, block, bit) {
                Slot::Free(new) => new,
                Slot::Seen => return Err(ReplayError::Replayed),
                Slot::Gone => return Err(ReplayError::TooOld),
            };
            match cell.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
        self.next.fetch_max(counter + 1, Ordering::Relaxed);
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::REJECT_AFTER_MESSAGES;
    use crate::send_block::SEND_BLOCK;

    fn accept(w: &SharedReplayWindow, n: u64) -> bool {
        w.check(n).is_ok() && w.update(n).is_ok()
    }

    /// The single-writer window's kernel table holds for the shared one,
    /// with its limit at [`LANE_COUNTER_LIMIT`].
    #[test]
    fn kernel_table_single_thread() {
        let table = crate::replay::tests::kernel_table(LANE_COUNTER_LIMIT);
        let w = SharedReplayWindow::new();
        for (i, &(n, expected)) in table.iter().enumerate() {
            assert_eq!(accept(&w, n), expected, "row {} (counter {n})", i + 1);
        }
    }

    #[test]
    fn errors_are_typed_and_check_changes_nothing() {
        let w = SharedReplayWindow::new();
        assert_eq!(w.check(5), Ok(()));
        assert_eq!(w.check(5), Ok(()));
        w.update(5).expect("fresh");
        assert_eq!(w.check(5), Err(ReplayError::Replayed));
        assert_eq!(w.update(5), Err(ReplayError::Replayed));
        w.update(20_000).expect("fresh");
        assert_eq!(w.check(6), Err(ReplayError::TooOld));
        assert_eq!(w.check(REJECT_AFTER_MESSAGES), Err(ReplayError::Exhausted));
        assert_eq!(w.check(LANE_COUNTER_LIMIT), Err(ReplayError::Exhausted));
        assert_eq!(w.next_expected(), 20_001);
    }

    /// Four writers each offered every counter of an interleaved, locally
    /// reordered stream (as two lanes deliver it): each counter is accepted
    /// by exactly one writer, and none is lost while inside the window.
    #[test]
    fn concurrent_writers_accept_each_counter_exactly_once() {
        const N: u64 = 192 * 4 * SEND_BLOCK;
        let w = SharedReplayWindow::new();
        let accepted: Vec<AtomicU64> = (0..N).map(|_| AtomicU64::new(0)).collect();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (w, accepted) = (&w, &accepted);
                s.spawn(move || {
                    // Blocks of 256, in a thread-specific order within each
                    // group of four blocks: at most ~1000 counters apart.
                    for group in 0..N / (4 * SEND_BLOCK) {
                        for k in 0..4 {
                            let block = group * 4 + (k + t) % 4;
                            for n in block * SEND_BLOCK..(block + 1) * SEND_BLOCK {
                                if w.update(n).is_ok() {
                                    accepted[n as usize].fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                });
            }
        });
        for (n, a) in accepted.iter().enumerate() {
            assert_eq!(a.load(Ordering::Relaxed), 1, "counter {n}");
        }
        assert_eq!(w.next_expected(), N);
    }

    /// Replays racing with the stream that moves the window: a replayed
    /// counter is never accepted a second time, and the stream loses none.
    #[test]
    fn replays_racing_the_window_are_refused() {
        const N: u64 = 100_000;
        let w = SharedReplayWindow::new();
        let accepted: Vec<AtomicU64> = (0..N).map(|_| AtomicU64::new(0)).collect();
        std::thread::scope(|s| {
            let (w, accepted) = (&w, &accepted);
            s.spawn(move || {
                for n in 0..N {
                    if w.update(n).is_ok() {
                        accepted[n as usize].fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            for _ in 0..2 {
                s.spawn(move || {
                    // Replays everything recently seen, over and over.
                    for _ in 0..20 {
                        let top = w.next_expected();
                        for n in top.saturating_sub(9000)..top {
                            if w.update(n).is_ok() {
                                accepted[n as usize].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        for (n, a) in accepted.iter().enumerate() {
            assert_eq!(a.load(Ordering::Relaxed), 1, "counter {n}");
        }
    }
}
