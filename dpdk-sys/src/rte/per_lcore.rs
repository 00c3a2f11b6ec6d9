//! [`PerLcore<T>`]: one value per EAL lcore, each reachable only from the
//! thread that runs that lcore, so that the fast path uses it without a
//! lock (a crypto device's queue pair per worker, for instance).

use std::cell::{Cell, UnsafeCell};

use super::lcore_id;
use crate::ffi::RTE_MAX_LCORE;

/// One lcore's slot.
struct Slot<T> {
    value: UnsafeCell<Option<T>>,
    /// Set while [`PerLcore::with`] lends the value out, so that a
    /// re-entrant call cannot make a second `&mut` to it.
    lent: Cell<bool>,
}

/// A value per EAL lcore id; the thread of lcore `i` reaches value `i`
/// through [`with`](Self::with), and no other thread reaches it.
pub struct PerLcore<T> {
    slots: Box<[Slot<T>]>,
}

// SAFETY: a slot is only ever touched by the thread whose EAL lcore id is
// its index (`with` reads `lcore_id()` of the calling thread, and EAL
// gives each lcore id to one thread), so sharing `&PerLcore<T>` between
// threads never lets two threads reach one slot; values move between
// threads only with the whole `PerLcore`, hence `T: Send`.
unsafe impl<T: Send> Sync for PerLcore<T> {}

impl<T> std::fmt::Debug for PerLcore<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerLcore").finish_non_exhaustive()
    }
}

impl<T> PerLcore<T> {
    /// Slots for every lcore id, holding `values` (`(lcore id, value)`);
    /// the first id out of range (`RTE_MAX_LCORE`) is the error.
    pub fn new(values: impl IntoIterator<Item = (u32, T)>) -> Result<Self, u32> {
        let mut slots: Box<[Slot<T>]> = (0..RTE_MAX_LCORE)
            .map(|_| Slot {
                value: UnsafeCell::new(None),
                lent: Cell::new(false),
            })
            .collect();
        for (lcore, value) in values {
            let slot = slots.get_mut(lcore as usize).ok_or(lcore)?;
            *slot.value.get_mut() = Some(value);
        }
        Ok(Self { slots })
    }

    /// Runs `f` with the calling lcore's value; `None` when the thread is
    /// not an EAL lcore, its slot is empty, or the value is already lent
    /// out (a call from inside `f`).
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let slot = self.slots.get(lcore_id()? as usize)?;
        if slot.lent.replace(true) {
            return None;
        }
        // SAFETY: only this thread reaches this slot (see `Sync` above),
        // and `lent` was clear, so no other reference to the value exists;
        // the reference does not outlive `f`.
        let value = unsafe { &mut *slot.value.get() };
        let out = value.as_mut().map(f);
        slot.lent.set(false);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lcore_id_out_of_range_is_refused_by_number() {
        let err = PerLcore::new([(0, 'a'), (RTE_MAX_LCORE, 'b')]).unwrap_err();
        assert_eq!(err, RTE_MAX_LCORE);
    }

    #[test]
    fn a_thread_that_is_not_an_lcore_reaches_no_value() {
        // Every slot filled: only the calling thread's lcore id decides.
        let all = PerLcore::new((0..RTE_MAX_LCORE).map(|l| (l, l))).unwrap();
        assert_eq!(lcore_id(), None, "a test thread is no EAL lcore");
        assert_eq!(all.with(|v| *v), None);
    }
}
