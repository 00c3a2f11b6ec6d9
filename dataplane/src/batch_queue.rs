//! The queue under a multi-buffer batch ([`crate::seal_batch`],
//! [`crate::open_batch`]): one burst's packets in arrival order, each with
//! room for the 32-byte key of its pass, taken out in the same order. The
//! keys are copied in because the keypairs they come from may be replaced
//! before the pass (a command between two packets); they are wiped once the
//! queue is emptied, and on drop.

use dpdk_sys::rte::BURST_SIZE;
use zeroize::Zeroize;

/// Packets a batch holds at most: one RX burst's.
pub(crate) const CAPACITY: usize = BURST_SIZE;

/// Up to [`CAPACITY`] items and their keys (see the module).
pub(crate) struct BatchQueue<T> {
    items: [Option<T>; CAPACITY],
    /// `keys[i]` belongs to `items[i]` (when its pass needs one).
    keys: [[u8; 32]; CAPACITY],
    len: usize,
    /// The next to take out, while [`BatchQueue::pop`] empties it.
    head: usize,
    /// Whether a key was copied since the last wipe.
    dirty: bool,
}

impl<T> BatchQueue<T> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        BatchQueue {
            items: std::array::from_fn(|_| None),
            keys: [[0; 32]; CAPACITY],
            len: 0,
            head: 0,
            dirty: false,
        }
    }

    /// Whether it holds anything.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies the key of the item [`push`](Self::push) takes next.
    #[inline]
    pub(crate) fn set_next_key(&mut self, key: &[u8; 32]) {
        self.keys[self.len] = *key;
        self.dirty = true;
    }

    /// Appends an item (with the key [`set_next_key`](Self::set_next_key)
    /// copied for it, if any); returns whether the queue is now full.
    #[inline]
    pub(crate) fn push(&mut self, item: T) -> bool {
        self.items[self.len] = Some(item);
        self.len += 1;
        self.len == CAPACITY
    }

    /// Every item with its key slot, in order (to build the pass).
    pub(crate) fn with_keys(&mut self) -> impl Iterator<Item = (&mut T, &[u8; 32])> {
        self.items[..self.len].iter_mut().flatten().zip(&self.keys)
    }

    /// The next item in arrival order; `None` once all are out, the queue
    /// then empty and its keys wiped.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.head < self.len {
            self.head += 1;
            return self.items[self.head - 1].take();
        }
        self.head = 0;
        self.len = 0;
        self.wipe();
        None
    }

    /// Wipes the keys copied since the last wipe.
    fn wipe(&mut self) {
        if std::mem::take(&mut self.dirty) {
            self.keys.zeroize();
        }
    }
}

impl<T> Drop for BatchQueue<T> {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order_with_their_keys_and_the_keys_are_wiped_after() {
        let mut q: BatchQueue<u32> = BatchQueue::new();
        assert!(q.is_empty());
        q.set_next_key(&[1; 32]);
        assert!(!q.push(10));
        assert!(!q.push(11), "no key: the slot keeps what it had");
        q.set_next_key(&[3; 32]);
        assert!(!q.push(12));
        let seen: Vec<(u32, u8)> = q.with_keys().map(|(i, k)| (*i, k[0])).collect();
        assert_eq!(seen, [(10, 1), (11, 0), (12, 3)]);
        assert_eq!(
            (q.pop(), q.pop(), q.pop(), q.pop()),
            (Some(10), Some(11), Some(12), None)
        );
        assert!(q.is_empty());
        assert!(
            q.keys.iter().all(|k| k == &[0; 32]),
            "keys wiped once empty"
        );
    }

    #[test]
    fn a_full_queue_says_so_on_the_last_push() {
        let mut q: BatchQueue<usize> = BatchQueue::new();
        for i in 0..CAPACITY - 1 {
            assert!(!q.push(i));
        }
        assert!(q.push(CAPACITY - 1));
        assert_eq!(std::iter::from_fn(|| q.pop()).count(), CAPACITY);
    }
}
