//! Packets waiting for a session (the kernel's staged packet queue), for
//! every peer of one worker at once.
//!
//! One slab of slots is allocated when the worker is built, as many as the
//! mbuf pool holds (a staged packet is an mbuf, so the slab cannot run out
//! before the pool does); each peer keeps only a [`StagedList`], a FIFO
//! threaded through the slab (12 bytes). Memory follows the pool, not the
//! number of peers, and staging never allocates. Generic over the item so
//! that the lists are tested without EAL; the worker stages `Mbuf`s.

/// End of a list.
const NONE: u32 = u32::MAX;

/// One peer's staged packets, oldest first: a list through [`Staging`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagedList {
    head: u32,
    tail: u32,
    len: u32,
}

impl Default for StagedList {
    fn default() -> Self {
        Self {
            head: NONE,
            tail: NONE,
            len: 0,
        }
    }
}

impl StagedList {
    /// Packets waiting.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

struct Slot<T> {
    item: Option<T>,
    /// The next slot of the same list, or of the free list.
    next: u32,
}

/// The slab of one worker.
pub struct Staging<T> {
    slots: Vec<Slot<T>>,
    free: u32,
}

impl<T> std::fmt::Debug for Staging<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl<T> Staging<T> {
    /// A slab of `capacity` slots (at most `u32::MAX - 1`), all free.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.min(NONE as usize - 1) as u32;
        let slots = (0..capacity)
            .map(|i| Slot {
                item: None,
                next: if i + 1 < capacity { i + 1 } else { NONE },
            })
            .collect();
        Self {
            slots,
            free: if capacity > 0 { 0 } else { NONE },
        }
    }

    /// Appends `item` to `list`; gives it back when every slot is taken.
    #[inline]
    pub fn push(&mut self, list: &mut StagedList, item: T) -> Result<(), T> {
        let i = self.free;
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return Err(item);
        };
        self.free = slot.next;
        slot.item = Some(item);
        slot.next = NONE;
        match self.slots.get_mut(list.tail as usize) {
            Some(tail) => tail.next = i,
            None => list.head = i,
        }
        list.tail = i;
        list.len += 1;
        Ok(())
    }

    /// Takes the oldest item of `list`.
    #[inline]
    pub fn pop(&mut self, list: &mut StagedList) -> Option<T> {
        let i = list.head;
        let slot = self.slots.get_mut(i as usize)?;
        let item = slot.item.take();
        list.head = slot.next;
        slot.next = self.free;
        self.free = i;
        list.len -= 1;
        if list.head == NONE {
            list.tail = NONE;
        }
        item
    }

    /// Drops (frees) every item of `list`; returns how many there were.
    pub fn clear(&mut self, list: &mut StagedList) -> usize {
        let mut n = 0;
        while self.pop(list).is_some() {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_share_the_slab_in_fifo_order() {
        let mut s = Staging::new(4);
        let (mut a, mut b) = (StagedList::default(), StagedList::default());
        assert_eq!(s.push(&mut a, 1), Ok(()));
        assert_eq!(s.push(&mut b, 10), Ok(()));
        assert_eq!(s.push(&mut a, 2), Ok(()));
        assert_eq!(s.push(&mut b, 11), Ok(()));
        assert_eq!(s.push(&mut a, 3), Err(3), "every slot taken");
        assert_eq!((a.len(), b.len()), (2, 2));
        assert_eq!(s.pop(&mut a), Some(1));
        // The freed slot goes to whichever list needs it.
        assert_eq!(s.push(&mut b, 12), Ok(()));
        assert_eq!(s.pop(&mut a), Some(2));
        assert_eq!(s.pop(&mut a), None);
        assert!(a.is_empty());
        assert_eq!(a, StagedList::default());
        assert_eq!(s.clear(&mut b), 3);
        assert!(b.is_empty());
        for i in 0..4 {
            assert_eq!(s.push(&mut a, 20 + i), Ok(()), "all four free again");
        }
        assert_eq!(
            std::iter::from_fn(|| s.pop(&mut a)).collect::<Vec<_>>(),
            vec![20, 21, 22, 23]
        );
    }

    #[test]
    fn an_empty_slab_refuses() {
        let mut s = Staging::new(0);
        let mut a = StagedList::default();
        assert_eq!(s.push(&mut a, 1), Err(1));
        assert_eq!(s.pop(&mut a), None);
    }
}
