//! The safe layer over DPDK.
//!
//! Ownership rules, which every type here keeps:
//!
//! - [`Eal`] is a cloneable handle; EAL is cleaned up when the last handle
//!   (including the ones held inside pools, ports and rings) is dropped.
//! - An [`Mbuf`] is owned by exactly one Rust value. Dropping it frees it.
//!   Transmitting or enqueueing takes mbufs out of a [`Burst`]; whatever the
//!   device or ring did not accept stays in the burst, still owned by the
//!   caller. Nothing is ever both returned and freed.
//! - A crypto device's [`cryptodev::Session`]s and [`cryptodev::QueuePair`]s
//!   keep the device open; a queue pair has one handle, used by one lcore.
//! - A queue of a port is polled through an [`RxQueue`] / [`TxQueue`] handle
//!   that exists at most once per queue, so two lcores can never use the same
//!   queue at once.

pub mod cryptodev;
mod eal;
mod error;
mod flow;
pub mod ipfrag;
pub mod lcore;
mod mbuf;
mod mempool;
mod per_lcore;
mod port;
mod ring;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;

pub use eal::{Eal, EalError};
pub use error::RteError;
pub use flow::{DstMatch, Flow, QueueRule};
pub use mbuf::{prefetch, tx_flags, Burst, Mbuf, MbufError, PayloadAhead, BURST_SIZE};
pub use mempool::Mempool;
pub use per_lcore::PerLcore;
pub use port::{flags, Link, Port, PortConfig, PortLimits, PortSetup, PortStats, RxQueue, TxQueue};
pub use ring::{mbuf_ring, RingConsumer, RingProducer};

/// Reads the TSC (inline `rdtsc` on x86-64, as DPDK's `rte_rdtsc`; the
/// shim elsewhere). One call per burst on the fast path is the budget.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC reads a CPU counter; no memory is touched.
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads a CPU counter; no memory is touched.
    let tsc = unsafe { crate::ffi::wgdp_rdtsc() };
    tsc
}

/// The DPDK lcore id of the calling thread, or `None` on a non-EAL thread.
pub fn lcore_id() -> Option<u32> {
    // SAFETY: reads a thread-local set by EAL.
    let id = unsafe { crate::ffi::wgdp_lcore_id() };
    (id < crate::ffi::RTE_MAX_LCORE).then_some(id)
}
