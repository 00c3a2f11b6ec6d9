//! Packet mbuf pools.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use super::{Burst, Eal, Mbuf, RteError};
use crate::ffi;

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`).
///
/// Freed on drop when every mbuf is back. If mbufs are still out, freeing
/// the pool would leave them dangling, so the pool (and its EAL handle) is
/// leaked instead and a warning is printed: a leak is a bug to find, never
/// undefined behaviour.
pub struct Mempool {
    raw: NonNull<ffi::rte_mempool>,
    eal: Option<Eal>,
}

// SAFETY: mempool get/put are thread-safe (per-lcore caches are indexed by
// the calling lcore; non-EAL threads bypass the cache).
unsafe impl Send for Mempool {}
// SAFETY: as above; every method takes &self and is thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name())
            .field("available", &self.available())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Mempool {
    /// Creates a pool of `size` mbufs, each with `data_room` bytes (headroom
    /// included), with a per-lcore cache of `cache_size` (0 makes every
    /// alloc/free go to the ring, so counts are exact at all times), on the
    /// calling lcore's NUMA socket.
    pub fn new(
        eal: &Eal,
        name: &str,
        size: u32,
        cache_size: u32,
        data_room: u16,
    ) -> Result<Mempool, RteError> {
        let op = format!("rte_pktmbuf_pool_create({name})");
        let cname = CString::new(name)
            .map_err(|_| RteError::invalid(op.clone(), "name contains a NUL byte"))?;
        // SAFETY: EAL is initialised (we hold a handle); the name is valid.
        let raw = unsafe {
            let socket = ffi::rte_socket_id() as i32;
            ffi::rte_pktmbuf_pool_create(cname.as_ptr(), size, cache_size, 0, data_room, socket)
        };
        let raw = NonNull::new(raw).ok_or_else(|| RteError::from_rte_errno(op))?;
        Ok(Mempool {
            raw,
            eal: Some(eal.clone()),
        })
    }

    /// Takes one mbuf, reset to an empty packet with default headroom.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid; the returned mbuf is ours alone.
        unsafe { Mbuf::from_raw(ffi::wgdp_pktmbuf_alloc(self.raw.as_ptr())) }
    }

    /// Fills `burst` up to `n` more mbufs, all or nothing.
    pub fn alloc_bulk<const N: usize>(
        &self,
        burst: &mut Burst<N>,
        n: usize,
    ) -> Result<(), RteError> {
        if n > burst.spare() {
            return Err(RteError::invalid(
                "rte_pktmbuf_alloc_bulk",
                format!(
                    "{n} mbufs do not fit in a burst with {} free",
                    burst.spare()
                ),
            ));
        }
        // SAFETY: the spare slots can hold `n` pointers; on success DPDK
        // wrote `n` valid mbufs, which the burst then owns.
        unsafe {
            let ret = ffi::wgdp_pktmbuf_alloc_bulk(self.raw.as_ptr(), burst.spare_ptr(), n as u32);
            if ret != 0 {
                return Err(RteError::from_ret("rte_pktmbuf_alloc_bulk", ret));
            }
            burst.set_len(burst.len() + n);
        }
        Ok(())
    }

    /// Mbufs in the pool (its cache included).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { ffi::wgdp_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs taken out and not yet returned.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { ffi::wgdp_mempool_in_use_count(self.raw.as_ptr()) }
    }

    /// The pool's name.
    pub fn name(&self) -> String {
        // SAFETY: rte_mempool.name is a NUL-terminated array.
        unsafe { CStr::from_ptr((*self.raw.as_ptr()).name.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// The raw pool, for DPDK calls that take one (queue setup).
    pub fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        let in_use = self.in_use();
        if in_use == 0 {
            // SAFETY: nothing refers to the pool's memory any more.
            unsafe { ffi::rte_mempool_free(self.raw.as_ptr()) };
        } else {
            tracing::error!(
                pool = %self.name(),
                in_use,
                "mempool dropped with mbufs in use; leaking it rather than freeing memory still referenced"
            );
            std::mem::forget(self.eal.take());
        }
    }
}
