//! Rings of mbufs between lcores.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{Burst, Eal, Mbuf, RteError};
use crate::ffi;

/// The ring itself, shared by its producer and consumer handles. Dropping
/// the last handle frees what is still queued, then the ring.
struct RawRing {
    raw: NonNull<ffi::rte_ring>,
    _eal: Eal,
}

// SAFETY: the ring is created multi-producer; the single consumer is
// enforced by `RingConsumer` not being Clone and dequeuing through
// `&mut self`.
unsafe impl Send for RawRing {}
// SAFETY: as above.
unsafe impl Sync for RawRing {}

impl Drop for RawRing {
    fn drop(&mut self) {
        // SAFETY: no handle is left, so this is the ring's only user.
        unsafe { free_mbuf_ring(self.raw) };
    }
}

/// Frees every mbuf still queued in `ring`, then the ring.
///
/// # Safety
/// Nothing else uses `ring`, now or later, and it holds only mbufs.
pub(crate) unsafe fn free_mbuf_ring(ring: NonNull<ffi::rte_ring>) {
    let mut b: Burst = Burst::new();
    loop {
        // SAFETY: the caller's exclusive use; dequeued mbufs are owned by
        // the burst, which frees them.
        let n = unsafe {
            ffi::wgdp_ring_dequeue_burst(
                ring.as_ptr(),
                b.spare_ptr().cast(),
                b.spare() as u32,
                std::ptr::null_mut(),
            )
        };
        if n == 0 {
            break;
        }
        // SAFETY: DPDK wrote `n` owned mbufs.
        unsafe { b.set_len(n as usize) };
        b.clear();
    }
    // SAFETY: empty and unused.
    unsafe { ffi::rte_ring_free(ring.as_ptr()) };
}

/// The enqueue side of an mbuf ring: any number of lcores may hold a clone.
#[derive(Clone)]
pub struct RingProducer {
    ring: Arc<RawRing>,
}

/// The dequeue side of an mbuf ring: exactly one.
pub struct RingConsumer {
    ring: Arc<RawRing>,
}

/// Creates a multi-producer, single-consumer ring of mbufs (`rte_ring`,
/// `RING_F_SC_DEQ`) with room for `capacity - 1` mbufs; `capacity` must be a
/// power of two.
pub fn mbuf_ring(
    eal: &Eal,
    name: &str,
    capacity: u32,
) -> Result<(RingProducer, RingConsumer), RteError> {
    let op = format!("rte_ring_create({name})");
    if !capacity.is_power_of_two() {
        return Err(RteError::invalid(
            op,
            format!("capacity {capacity} is not a power of two"),
        ));
    }
    let cname = CString::new(name).map_err(|_| RteError::invalid(op.clone(), "NUL in name"))?;
    // SAFETY: EAL is initialised; valid name.
    let raw = unsafe {
        ffi::rte_ring_create(
            cname.as_ptr(),
            capacity,
            ffi::rte_socket_id() as i32,
            ffi::RING_F_SC_DEQ,
        )
    };
    let raw = NonNull::new(raw).ok_or_else(|| RteError::from_rte_errno(op))?;
    let ring = Arc::new(RawRing {
        raw,
        _eal: eal.clone(),
    });
    Ok((RingProducer { ring: ring.clone() }, RingConsumer { ring }))
}

impl RingProducer {
    /// Enqueues as many mbufs from the front of `burst` as fit; those not
    /// taken stay in `burst`. Returns how many were enqueued.
    #[inline]
    pub fn enqueue_burst<const N: usize>(&self, burst: &mut Burst<N>) -> usize {
        // SAFETY: the burst's head holds `len` owned mbufs; the ring takes
        // ownership of the first `n`, which the burst then forgets.
        unsafe {
            let n = ffi::wgdp_ring_enqueue_burst(
                self.ring.raw.as_ptr(),
                burst.head_ptr().cast(),
                burst.len() as u32,
                std::ptr::null_mut(),
            ) as usize;
            burst.consume_front(n);
            n
        }
    }

    /// Enqueues every mbuf of `burst` or none. Returns whether it did.
    #[inline]
    pub fn enqueue_bulk<const N: usize>(&self, burst: &mut Burst<N>) -> bool {
        // SAFETY: as in `enqueue_burst`; bulk takes all `len` or nothing.
        unsafe {
            let n = ffi::wgdp_ring_enqueue_bulk(
                self.ring.raw.as_ptr(),
                burst.head_ptr().cast(),
                burst.len() as u32,
                std::ptr::null_mut(),
            ) as usize;
            burst.consume_front(n);
            n > 0 || burst.is_empty()
        }
    }

    /// Enqueues one mbuf; gives it back when the ring is full.
    #[inline]
    pub fn enqueue(&self, m: Mbuf) -> Result<(), Mbuf> {
        let mut b: Burst<1> = Burst::new();
        b.push(m)?;
        self.enqueue_burst(&mut b);
        b.pop().map_or(Ok(()), Err)
    }

    /// Mbufs queued now.
    pub fn count(&self) -> u32 {
        // SAFETY: valid ring.
        unsafe { ffi::wgdp_ring_count(self.ring.raw.as_ptr()) }
    }
}

impl RingConsumer {
    /// Dequeues up to the burst's free room, appending to `burst`. Returns
    /// how many were dequeued.
    #[inline]
    pub fn dequeue_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        // SAFETY: the spare slots receive `n` owned mbufs.
        unsafe {
            let n = ffi::wgdp_ring_dequeue_burst(
                self.ring.raw.as_ptr(),
                burst.spare_ptr().cast(),
                burst.spare() as u32,
                std::ptr::null_mut(),
            ) as usize;
            burst.set_len(burst.len() + n);
            n
        }
    }

    /// Dequeues exactly `n` mbufs into `burst`, or none. Returns whether it
    /// did.
    #[inline]
    pub fn dequeue_bulk<const N: usize>(&mut self, burst: &mut Burst<N>, n: usize) -> bool {
        if n > burst.spare() {
            return false;
        }
        // SAFETY: the spare slots receive `n` owned mbufs, or none.
        unsafe {
            let got = ffi::wgdp_ring_dequeue_bulk(
                self.ring.raw.as_ptr(),
                burst.spare_ptr().cast(),
                n as u32,
                std::ptr::null_mut(),
            ) as usize;
            burst.set_len(burst.len() + got);
            got == n
        }
    }
}
