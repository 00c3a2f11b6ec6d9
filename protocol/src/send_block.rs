//! A multi-lane keypair's send counter, reserved in blocks by the workers
//! that share the keypair (its replay window is [`crate::shared_replay`]).
//!
//! A single-lane keypair keeps its plain `u64` send counter; these types
//! serve only keypairs shared by several workers.
//!
//! Every nonce must be used once. Workers take counters from one per-keypair
//! [`SendCounter`] in blocks of [`SEND_BLOCK`], and then number their packets
//! from their own [`SendBlock`] without touching the shared atomic: one
//! atomic read-modify-write per [`SEND_BLOCK`] packets. A block never
//! reaches past [`REJECT_AFTER_MESSAGES`], so no counter at or past it is
//! ever handed out, whatever the number of workers.
//!
//! The receiver sees the counters of two workers interleaved: each worker's
//! run is in order. A worker that went quiet holding a block would later
//! send counters far behind the others', past the receiver's 8128-counter
//! window (a replay drop there): [`SendCounter::take`] therefore discards a
//! block that has fallen more than [`STALE_AFTER`] behind the counters
//! reserved since, at the cost of one relaxed load (no read-modify-write)
//! of the shared counter per packet. The counters it skips are never used.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::constants::{COUNTER_WINDOW_SIZE, REJECT_AFTER_MESSAGES};

/// Counters a worker reserves at a time from a shared send counter.
pub const SEND_BLOCK: u64 = 256;

/// How far behind the highest reserved counter a worker's block may fall
/// before it is discarded: half the receiver's window.
pub const STALE_AFTER: u64 = COUNTER_WINDOW_SIZE / 2;

/// The shared send counter of a multi-lane keypair: the next counter not
/// yet reserved by any worker.
#[derive(Debug, Default)]
pub struct SendCounter(AtomicU64);

impl SendCounter {
    /// A counter starting at 0.
    pub const fn new() -> Self {
        SendCounter(AtomicU64::new(0))
    }

    /// Reserves the next block of counters; `None` once every counter below
    /// [`REJECT_AFTER_MESSAGES`] is reserved. One compare-and-swap loop,
    /// called once per [`SEND_BLOCK`] packets.
    pub fn reserve(&self) -> Option<SendBlock> {
        let start = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c < REJECT_AFTER_MESSAGES)
                    .then(|| c.saturating_add(SEND_BLOCK).min(REJECT_AFTER_MESSAGES))
            })
            .ok()?;
        Some(SendBlock {
            next: start,
            end: start.saturating_add(SEND_BLOCK).min(REJECT_AFTER_MESSAGES),
        })
    }

    /// The next counter for the holder of `block`: from the block unless it
    /// is used up or stale (see the module docs), else from a new block.
    /// `None` once every counter below [`REJECT_AFTER_MESSAGES`] is taken.
    #[inline]
    pub fn take(&self, block: &mut SendBlock) -> Option<u64> {
        let reserved = self.reserved();
        if block.next.saturating_add(STALE_AFTER) < reserved {
            *block = SendBlock::default();
        }
        match block.take() {
            Some(c) => Some(c),
            None => {
                *block = self.reserve()?;
                block.take()
            }
        }
    }

    /// Counters reserved so far (every counter below this is some worker's).
    pub fn reserved(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Reserves nothing below `counter` (a keypair that already sent, or a
    /// test that starts near the limits). Before the counter is shared.
    pub fn skip_to(&self, counter: u64) {
        self.0
            .store(counter.min(REJECT_AFTER_MESSAGES), Ordering::Relaxed);
    }
}

/// A worker's current block of send counters (empty by default).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendBlock {
    next: u64,
    end: u64,
}

impl SendBlock {
    /// The next counter of the block, if any is left.
    #[inline]
    pub fn take(&mut self) -> Option<u64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Counters left in the block.
    pub fn left(&self) -> u64 {
        self.end - self.next
    }

    /// The counter [`take`](Self::take) would return next.
    pub fn peek(&self) -> Option<u64> {
        (self.next < self.end).then_some(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn blocks_never_overlap_and_stop_at_the_limit() {
        let c = SendCounter::new();
        let mut a = c.reserve().expect("first block");
        let mut b = c.reserve().expect("second block");
        assert_eq!((a.take(), b.take()), (Some(0), Some(SEND_BLOCK)));
        assert_eq!(a.left(), SEND_BLOCK - 1);
        assert_eq!(a.peek(), Some(1));
        assert_eq!(SendBlock::default().take(), None);
        assert_eq!(c.reserved(), 2 * SEND_BLOCK);
        // Near the limit the last block is cut short, then nothing.
        c.skip_to(REJECT_AFTER_MESSAGES - 3);
        let mut last = c.reserve().expect("short block");
        assert_eq!(last.left(), 3);
        let taken: Vec<u64> = std::iter::from_fn(|| last.take()).collect();
        assert_eq!(
            taken,
            (REJECT_AFTER_MESSAGES - 3..REJECT_AFTER_MESSAGES).collect::<Vec<_>>()
        );
        assert_eq!(c.reserve(), None);
        assert_eq!(c.reserve(), None, "stays exhausted");
        assert_eq!(c.reserved(), REJECT_AFTER_MESSAGES);
    }

    #[test]
    fn a_stale_block_is_discarded() {
        let c = SendCounter::new();
        let (mut quiet, mut busy) = (SendBlock::default(), SendBlock::default());
        assert_eq!(c.take(&mut quiet), Some(0));
        // The busy worker sends a window's worth while the quiet one idles.
        let mut last = 0;
        for _ in 0..STALE_AFTER + SEND_BLOCK {
            last = c.take(&mut busy).expect("counter");
        }
        let next = c.take(&mut quiet).expect("counter");
        assert!(
            next > last,
            "a fresh block ({next}), not counter 1 of the stale one"
        );
        // Not stale: the block goes on.
        assert_eq!(c.take(&mut quiet), Some(next + 1));
    }

    #[test]
    fn concurrent_reservations_hand_out_each_counter_once() {
        let c = SendCounter::new();
        let seen = Mutex::new(HashSet::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    let mut block = SendBlock::default();
                    for _ in 0..10_000 {
                        mine.push(c.take(&mut block).expect("far from the limit"));
                    }
                    let mut all = seen.lock().expect("lock");
                    for n in mine {
                        assert!(all.insert(n), "counter {n} handed out twice");
                    }
                });
            }
        });
        assert_eq!(seen.lock().expect("lock").len(), 40_000);
    }
}
