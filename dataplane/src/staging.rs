//! Packets waiting for a session (the kernel's staged packet queue), for
//! every peer of one worker at once.
//!
//! One slab of slots is allocated when the worker is built: its staging
//! budget (`dpdk.staging_budget`, shared out over the workers), a bound on
//! the mbufs staged packets may hold so that the RX rings stay fed. Each
//! peer keeps only a [`StagedList`], a FIFO threaded through the slab (12
//! bytes); every slot is also on one list of the whole slab, oldest first,
//! so that a full slab gives up its oldest packet, whichever peer's it is
//! (it is always the head of its peer's list). Memory follows the budget,
//! not the number of peers, and staging never allocates. Generic over the
//! item so that the lists are tested without EAL; the worker stages
//! `Mbuf`s.

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
    /// The owner of the list the slot is on.
    owner: u32,
    /// The slot staged just before this one (any list).
    older: u32,
    /// The slot staged just after this one (any list).
    newer: u32,
}

/// The slab of one worker.
pub struct Staging<T> {
    slots: Vec<Slot<T>>,
    free: u32,
    /// The oldest and newest staged slots, and how many are staged.
    oldest: u32,
    newest: u32,
    len: u32,
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
                owner: NONE,
                older: NONE,
                newer: NONE,
            })
            .collect();
        Self {
            slots,
            free: if capacity > 0 { 0 } else { NONE },
            oldest: NONE,
            newest: NONE,
            len: 0,
        }
    }

    /// Items staged, over all lists.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every slot is taken.
    pub fn is_full(&self) -> bool {
        self.free == NONE
    }

    /// The owner of the list that holds the oldest item (that item is
    /// the head of its list).
    pub fn oldest_owner(&self) -> Option<u32> {
        self.slots.get(self.oldest as usize).map(|s| s.owner)
    }

    /// Appends `item` to `list`, which belongs to `owner`; gives it back
    /// when every slot is taken.
    #[inline]
    pub fn push(&mut self, list: &mut StagedList, owner: u32, item: T) -> Result<(), T> {
        let i = self.free;
        let newest = self.newest;
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return Err(item);
        };
        self.free = slot.next;
        slot.item = Some(item);
        slot.next = NONE;
        slot.owner = owner;
        slot.older = newest;
        slot.newer = NONE;
        match self.slots.get_mut(list.tail as usize) {
            Some(tail) => tail.next = i,
            None => list.head = i,
        }
        match self.slots.get_mut(newest as usize) {
            Some(n) => n.newer = i,
            None => self.oldest = i,
        }
        self.newest = i;
        self.len += 1;
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
        let (older, newer) = (slot.older, slot.newer);
        list.head = slot.next;
        slot.next = self.free;
        self.free = i;
        list.len -= 1;
        // Off the slab's age order.
        match self.slots.get_mut(older as usize) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
        match self.slots.get_mut(newer as usize) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
        self.len -= 1;
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
        assert_eq!(s.push(&mut a, 0, 1), Ok(()));
        assert_eq!(s.push(&mut b, 1, 10), Ok(()));
        assert_eq!(s.push(&mut a, 0, 2), Ok(()));
        assert_eq!(s.push(&mut b, 1, 11), Ok(()));
        assert_eq!(s.push(&mut a, 0, 3), Err(3), "every slot taken");
        assert_eq!((a.len(), b.len()), (2, 2));
        assert_eq!(s.pop(&mut a), Some(1));
        // The freed slot goes to whichever list needs it.
        assert_eq!(s.push(&mut b, 1, 12), Ok(()));
        assert_eq!(s.pop(&mut a), Some(2));
        assert_eq!(s.pop(&mut a), None);
        assert!(a.is_empty());
        assert_eq!(a, StagedList::default());
        assert_eq!(s.clear(&mut b), 3);
        assert!(b.is_empty());
        for i in 0..4 {
            assert_eq!(s.push(&mut a, 0, 20 + i), Ok(()), "all four free again");
        }
        assert_eq!(
            std::iter::from_fn(|| s.pop(&mut a)).collect::<Vec<_>>(),
            vec![20, 21, 22, 23]
        );
    }

    #[test]
    fn the_oldest_item_of_the_slab_is_the_head_of_its_owners_list() {
        let mut s = Staging::new(5);
        let mut lists = [StagedList::default(); 3];
        assert_eq!(s.oldest_owner(), None);
        for (owner, item) in [(2u32, 20), (0, 0), (2, 21), (1, 10), (0, 1)] {
            assert_eq!(s.push(&mut lists[owner as usize], owner, item), Ok(()));
        }
        assert!(s.is_full());
        assert_eq!(s.len(), 5);
        // Oldest first, across lists, while items leave from anywhere.
        assert_eq!(s.oldest_owner(), Some(2));
        assert_eq!(s.pop(&mut lists[1]), Some(10), "from the middle");
        assert_eq!(s.pop(&mut lists[2]), Some(20));
        assert_eq!(s.oldest_owner(), Some(0));
        assert_eq!(s.pop(&mut lists[0]), Some(0));
        assert_eq!(s.oldest_owner(), Some(2));
        assert_eq!(s.push(&mut lists[1], 1, 11), Ok(()));
        assert_eq!(s.pop(&mut lists[2]), Some(21));
        assert_eq!(s.oldest_owner(), Some(0));
        assert_eq!(s.pop(&mut lists[0]), Some(1));
        assert_eq!(s.oldest_owner(), Some(1), "the newest is the last");
        assert_eq!(s.len(), 1);
        assert_eq!(s.pop(&mut lists[1]), Some(11));
        assert_eq!((s.oldest_owner(), s.len(), s.is_empty()), (None, 0, true));
    }

    #[test]
    fn an_empty_slab_refuses() {
        let mut s = Staging::new(0);
        let mut a = StagedList::default();
        assert_eq!(s.push(&mut a, 0, 1), Err(1));
        assert!(s.is_full());
        assert_eq!(s.pop(&mut a), None);
    }
}
