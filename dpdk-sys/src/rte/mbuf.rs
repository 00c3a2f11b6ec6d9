//! Owned mbufs and fixed-size bursts of them.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use crate::ffi;

/// TX offload flags for [`Mbuf::set_tx_offload`].
pub mod tx_flags {
    use crate::ffi;
    /// The packet is IPv4 (`RTE_MBUF_F_TX_IPV4`).
    pub const IPV4: u64 = ffi::RTE_MBUF_F_TX_IPV4;
    /// The packet is IPv6 (`RTE_MBUF_F_TX_IPV6`).
    pub const IPV6: u64 = ffi::RTE_MBUF_F_TX_IPV6;
    /// Compute the IPv4 header checksum (`RTE_MBUF_F_TX_IP_CKSUM`).
    pub const IP_CKSUM: u64 = ffi::RTE_MBUF_F_TX_IP_CKSUM;
    /// Compute the UDP checksum (`RTE_MBUF_F_TX_UDP_CKSUM`).
    pub const UDP_CKSUM: u64 = ffi::RTE_MBUF_F_TX_UDP_CKSUM;
    /// Every flag above.
    pub const MASK: u64 = IPV4 | IPV6 | IP_CKSUM | UDP_CKSUM;
}

/// Maximum packets moved per RX/TX/ring call.
pub const BURST_SIZE: usize = 32;

/// Why an mbuf length operation was refused. The mbuf is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MbufError {
    /// Not enough headroom to prepend.
    #[error("cannot prepend {need} bytes: {have} bytes of headroom")]
    NoHeadroom {
        /// Bytes asked for.
        need: u16,
        /// Headroom available.
        have: u16,
    },
    /// Not enough tailroom (in the last segment) to append.
    #[error("cannot append {need} bytes: {have} bytes of tailroom")]
    NoTailroom {
        /// Bytes asked for.
        need: u16,
        /// Tailroom available.
        have: u16,
    },
    /// Removing more bytes than the (first or last) segment holds.
    #[error("cannot remove {need} bytes from a {have}-byte segment")]
    TooShort {
        /// Bytes asked to remove.
        need: u16,
        /// Bytes in the segment.
        have: u16,
    },
}

/// One packet buffer, owned. Freed (back to its pool) on drop.
///
/// `#[repr(transparent)]` over the pointer, so a `[Mbuf]` is an array of
/// `struct rte_mbuf *` that DPDK burst functions read and write directly.
#[repr(transparent)]
pub struct Mbuf(NonNull<ffi::rte_mbuf>);

// SAFETY: an mbuf is plain memory owned by this handle alone; freeing it
// from another lcore is allowed by DPDK.
unsafe impl Send for Mbuf {}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("pkt_len", &self.pkt_len())
            .field("data_len", &self.data_len())
            .field("nb_segs", &self.nb_segs())
            .finish()
    }
}

impl Mbuf {
    /// Takes ownership of a raw mbuf; `None` for NULL.
    ///
    /// # Safety
    /// `raw` is NULL or a valid mbuf that nothing else owns or will free.
    #[inline]
    pub unsafe fn from_raw(raw: *mut ffi::rte_mbuf) -> Option<Mbuf> {
        NonNull::new(raw).map(Mbuf)
    }

    /// The raw pointer, still owned by `self`.
    #[inline]
    pub fn as_ptr(&self) -> *mut ffi::rte_mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn raw(&self) -> &ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut ffi::rte_mbuf {
        // SAFETY: we own a valid mbuf, exclusively (&mut self).
        unsafe { self.0.as_mut() }
    }

    /// The first segment's data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the buffer.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The first segment's data, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in `data`, and we hold the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// Total packet length over all segments.
    #[inline]
    pub fn pkt_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// Length of the first segment.
    #[inline]
    pub fn data_len(&self) -> u16 {
        self.raw().data_len
    }

    /// Number of segments.
    #[inline]
    pub fn nb_segs(&self) -> u16 {
        self.raw().nb_segs
    }

    /// Whether the whole packet is in the first segment.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Free bytes before the data.
    #[inline]
    pub fn headroom(&self) -> u16 {
        self.raw().data_off
    }

    /// Free bytes after the data of the last segment.
    #[inline]
    pub fn tailroom(&self) -> u16 {
        let last = self.last_segment();
        // As `rte_pktmbuf_tailroom`: the buffer less headroom and data.
        last.buf_len
            .wrapping_sub(last.data_off)
            .wrapping_sub(last.data_len)
    }

    // The length operations below are DPDK's inline `rte_pktmbuf_*`
    // functions (rte_mbuf.h), written over the bindgen'd `rte_mbuf` so that
    // they inline into the data path instead of calling through the shim.

    /// Grows the packet at the front by `len` bytes and returns them.
    #[inline]
    pub fn prepend(&mut self, len: u16) -> Result<&mut [u8], MbufError> {
        let have = self.headroom();
        if len > have {
            return Err(MbufError::NoHeadroom { need: len, have });
        }
        let m = self.raw_mut();
        m.data_off -= len;
        m.data_len += len;
        m.pkt_len += u32::from(len);
        // SAFETY: the `len` bytes before the old data lie in the buffer
        // (they were headroom), and we hold the only reference.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(len),
            )
        })
    }

    /// Grows the packet at the end (of its last segment) by `len` bytes and
    /// returns them.
    #[inline]
    pub fn append(&mut self, len: u16) -> Result<&mut [u8], MbufError> {
        let have = self.tailroom();
        if len > have {
            return Err(MbufError::NoTailroom { need: len, have });
        }
        self.raw_mut().pkt_len += u32::from(len);
        let last = self.last_segment_mut();
        let end = usize::from(last.data_off) + usize::from(last.data_len);
        last.data_len += len;
        // SAFETY: the `len` bytes after the last segment's data lie in its
        // buffer (they were tailroom), and we hold the only reference.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(last.buf_addr.cast::<u8>().add(end), usize::from(len))
        })
    }

    /// Removes `len` bytes from the front of the packet.
    #[inline]
    pub fn adj(&mut self, len: u16) -> Result<(), MbufError> {
        let have = self.data_len();
        if len > have {
            return Err(MbufError::TooShort { need: len, have });
        }
        let m = self.raw_mut();
        m.data_len -= len;
        m.data_off += len;
        m.pkt_len -= u32::from(len);
        Ok(())
    }

    /// Removes `len` bytes from the end of the packet (its last segment).
    #[inline]
    pub fn trim(&mut self, len: u16) -> Result<(), MbufError> {
        let have = self.last_segment().data_len;
        if len > have {
            return Err(MbufError::TooShort { need: len, have });
        }
        self.raw_mut().pkt_len -= u32::from(len);
        self.last_segment_mut().data_len -= len;
        Ok(())
    }

    /// Removes the 802.1Q tag of an Ethernet frame (the 4 bytes after the
    /// MAC addresses), as DPDK's inline `rte_vlan_strip`: the MACs move 4
    /// bytes up and the frame starts 4 bytes later. Fails, leaving the
    /// frame as it was, when it is shorter than a tagged header.
    #[inline]
    pub fn strip_vlan(&mut self) -> Result<(), MbufError> {
        const TAGGED: u16 = 18;
        let have = self.data_len();
        if have < TAGGED {
            return Err(MbufError::TooShort { need: TAGGED, have });
        }
        self.data_mut().copy_within(0..12, 4);
        self.adj(4)
    }

    /// Inserts an 802.1Q tag with `tci` after the MAC addresses of an
    /// Ethernet frame, as DPDK's inline `rte_vlan_insert`; a TX offload
    /// request's L2 length grows by the tag.
    #[inline]
    pub fn insert_vlan(&mut self, tci: u16) -> Result<(), MbufError> {
        if self.data_len() < 12 {
            return Err(MbufError::TooShort {
                need: 12,
                have: self.data_len(),
            });
        }
        self.prepend(4)?;
        let d = self.data_mut();
        d.copy_within(4..16, 0);
        d[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        d[14..16].copy_from_slice(&tci.to_be_bytes());
        let m = self.raw_mut();
        // SAFETY: every variant of the union is plain integers.
        let offload = unsafe { m.__bindgen_anon_3.tx_offload };
        let l2 = offload & 0x7f;
        if l2 != 0 {
            m.__bindgen_anon_3.tx_offload = (offload & !0x7f) | ((l2 + 4) & 0x7f);
        }
        Ok(())
    }

    /// The last segment (the first, for a contiguous packet).
    #[inline]
    fn last_segment(&self) -> &ffi::rte_mbuf {
        let mut m = self.raw();
        while !m.next.is_null() {
            // SAFETY: the segment chain is valid and NULL-terminated, and
            // owned with the first segment.
            m = unsafe { &*m.next };
        }
        m
    }

    /// The last segment, writable.
    #[inline]
    fn last_segment_mut(&mut self) -> &mut ffi::rte_mbuf {
        let mut m = self.as_ptr();
        // SAFETY: as in `last_segment`; `&mut self` makes it exclusive.
        unsafe {
            while !(*m).next.is_null() {
                m = (*m).next;
            }
            &mut *m
        }
    }

    /// The input port the PMD recorded.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Records `port` as the input port, as a PMD does on receive (a
    /// test's frames, which `net_ring` passes on as they are).
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        self.raw_mut().port = port;
    }

    /// A 32-bit tag for the application, kept in the mbuf's hash field
    /// (`hash.usr`, which overwrites the RSS hash the PMD may have stored).
    #[inline]
    pub fn set_user_tag(&mut self, tag: u32) {
        self.raw_mut().__bindgen_anon_2.hash.usr = tag;
    }

    /// The tag set by [`set_user_tag`](Self::set_user_tag).
    #[inline]
    pub fn user_tag(&self) -> u32 {
        // SAFETY: every variant of the union is plain integers.
        unsafe { self.raw().__bindgen_anon_2.hash.usr }
    }

    /// Asks the NIC to compute the outer checksums on transmit: sets the
    /// `RTE_MBUF_F_TX_*` flags in `tx_flags` (see [`tx_flags`]) and the
    /// header lengths they need. The caller has written the pseudo-header
    /// checksum into the UDP checksum field and zeroed the IPv4 header
    /// checksum, as DPDK requires.
    #[inline]
    pub fn set_tx_offload(&mut self, tx_flags: u64, l2_len: u8, l3_len: u16) {
        let m = self.raw_mut();
        m.ol_flags = (m.ol_flags & !tx_flags::MASK) | (tx_flags & tx_flags::MASK);
        // tx_offload packs l2_len:7, l3_len:9, l4_len:8, ... (rte_mbuf_core.h).
        m.__bindgen_anon_3.tx_offload = u64::from(l2_len & 0x7f) | (u64::from(l3_len & 0x1ff) << 7);
    }

    /// Records the lengths of the packet's L2 and L3 headers (the
    /// `l2_len`/`l3_len` fields that IP reassembly reads), leaving the
    /// offload flags as they are.
    #[inline]
    pub fn set_header_lens(&mut self, l2_len: u8, l3_len: u16) {
        let m = self.raw_mut();
        // SAFETY: every variant of the union is plain integers.
        let old = unsafe { m.__bindgen_anon_3.tx_offload };
        m.__bindgen_anon_3.tx_offload =
            (old & !0xffff) | u64::from(l2_len & 0x7f) | (u64::from(l3_len & 0x1ff) << 7);
    }

    /// Copies a segmented packet into its first segment and frees the
    /// others (`rte_pktmbuf_linearize`). Fails, leaving the packet as it
    /// was, when the first segment's buffer cannot hold it all.
    pub fn linearize(&mut self) -> Result<(), MbufError> {
        if self.is_contiguous() {
            return Ok(());
        }
        // SAFETY: we own the packet and its segment chain.
        match unsafe { ffi::wgdp_pktmbuf_linearize(self.as_ptr()) } {
            0 => Ok(()),
            _ => Err(MbufError::NoTailroom {
                need: u16::try_from(self.pkt_len() - u32::from(self.data_len()))
                    .unwrap_or(u16::MAX),
                have: self.raw().buf_len - self.raw().data_off - self.data_len(),
            }),
        }
    }

    /// Clears any TX offload request (software checksums).
    #[inline]
    pub fn clear_tx_offload(&mut self) {
        let m = self.raw_mut();
        m.ol_flags &= !tx_flags::MASK;
        m.__bindgen_anon_3.tx_offload = 0;
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this nothing refers to it.
        unsafe { ffi::wgdp_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// A prefetch hint for the cache line holding `p` (no access is made: any
/// address is fine).
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint; it never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The data addresses and lengths of a burst's packets, taken before it is
/// drained ([`Burst::payload_ahead`]): handling packet `i` can ask for
/// packet `i + k`'s payload, so that its misses overlap the work on the
/// packets before it (a software pipeline, as DPDK's l3fwd and VPP's
/// loops prefetch ahead). Only addresses are kept, never dereferenced.
#[derive(Debug, Clone, Copy)]
pub struct PayloadAhead<const N: usize = BURST_SIZE> {
    data: [(usize, u16); N],
    len: usize,
}

impl<const N: usize> PayloadAhead<N> {
    /// The most cache lines prefetched per packet (a 1500-byte packet's,
    /// from the third on: [`Burst::prefetch`] asked for the first two).
    pub const MAX_LINES: usize = 22;

    /// Asks for packet `i`'s data from its third cache line to its end (at
    /// most [`MAX_LINES`](Self::MAX_LINES)); nothing past the burst.
    #[inline]
    pub fn prefetch(&self, i: usize) {
        if i >= self.len {
            return;
        }
        let (data, len) = self.data[i];
        let lines = usize::from(len).div_ceil(64).min(Self::MAX_LINES + 2);
        for line in 2..lines {
            prefetch((data + 64 * line) as *const u8);
        }
    }
}

/// Up to `N` owned mbufs in a fixed array: what RX fills and TX drains, with
/// no heap allocation. Dropping a burst frees what is still in it.
pub struct Burst<const N: usize = BURST_SIZE> {
    len: usize,
    bufs: [MaybeUninit<Mbuf>; N],
}

impl<const N: usize> Default for Burst<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> std::fmt::Debug for Burst<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<const N: usize> Burst<N> {
    /// An empty burst.
    #[inline]
    pub fn new() -> Self {
        Self {
            len: 0,
            bufs: [const { MaybeUninit::uninit() }; N],
        }
    }

    /// Mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    #[inline]
    pub fn spare(&self) -> usize {
        N - self.len
    }

    /// Adds an mbuf at the end; gives it back when full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == N {
            return Err(m);
        }
        self.bufs[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the length.
        Some(unsafe { self.bufs[self.len].assume_init_read() })
    }

    /// The mbufs held.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: the first `len` slots are initialised.
        unsafe { std::slice::from_raw_parts(self.bufs.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Asks the CPU to fetch what handling these packets reads first: each
    /// mbuf's header (both cache lines), then the first two cache lines of
    /// its data and the one before them (where headers are prepended). All
    /// headers are requested before any is read, so their misses overlap;
    /// reading them to find the data then waits about one miss for the whole
    /// burst rather than two per packet. A hint: no effect on results.
    #[inline]
    pub fn prefetch(&self) {
        for m in self.as_slice() {
            let p = m.as_ptr().cast::<u8>();
            prefetch(p);
            prefetch(p.wrapping_add(64));
        }
        for m in self.as_slice() {
            let raw = m.raw();
            let data = raw
                .buf_addr
                .cast::<u8>()
                .wrapping_add(usize::from(raw.data_off));
            prefetch(data.wrapping_sub(64));
            prefetch(data);
            prefetch(data.wrapping_add(64));
        }
    }

    /// Where each packet's data lies, for [`PayloadAhead::prefetch`] while
    /// the burst is drained.
    #[inline]
    pub fn payload_ahead(&self) -> PayloadAhead<N> {
        let mut ahead = PayloadAhead {
            data: [(0, 0); N],
            len: self.len,
        };
        for (slot, m) in ahead.data.iter_mut().zip(self.as_slice()) {
            let raw = m.raw();
            let data = raw
                .buf_addr
                .cast::<u8>()
                .wrapping_add(usize::from(raw.data_off));
            *slot = (data as usize, raw.data_len);
        }
        ahead
    }

    /// Takes every mbuf out, in order. Those the caller does not take
    /// before dropping the iterator are freed.
    #[inline]
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let len = std::mem::replace(&mut self.len, 0);
        // The slots 0..len are initialised and now outside the length: the
        // iterator reads each exactly once.
        DrainIter {
            base: self.bufs.as_mut_ptr().cast::<Mbuf>(),
            next: 0,
            len,
            _b: std::marker::PhantomData,
        }
    }

    /// Frees every mbuf held.
    #[inline]
    pub fn clear(&mut self) {
        let len = std::mem::replace(&mut self.len, 0);
        if len > 0 {
            // SAFETY: the slots held `len` owned mbufs, now outside the length.
            unsafe {
                ffi::rte_pktmbuf_free_bulk(self.bufs.as_mut_ptr().cast(), len as u32);
            }
        }
    }

    /// Pointer to the first free slot, for DPDK functions that write mbufs.
    #[inline]
    pub(crate) fn spare_ptr(&mut self) -> *mut *mut ffi::rte_mbuf {
        // SAFETY: len <= N, so this is at most one past the end.
        unsafe { self.bufs.as_mut_ptr().add(self.len).cast() }
    }

    /// Pointer to the first mbuf, for DPDK functions that read mbufs.
    #[inline]
    pub(crate) fn head_ptr(&mut self) -> *mut *mut ffi::rte_mbuf {
        self.bufs.as_mut_ptr().cast()
    }

    /// Sets the number of initialised slots.
    ///
    /// # Safety
    /// The first `len` slots hold owned mbufs.
    #[inline]
    pub(crate) unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= N);
        self.len = len;
    }

    /// Forgets the first `n` mbufs (DPDK took them) and moves the rest to
    /// the front.
    ///
    /// # Safety
    /// The first `n <= len` mbufs were consumed by DPDK.
    #[inline]
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        if n > 0 && rest > 0 {
            let base = self.bufs.as_mut_ptr();
            std::ptr::copy(base.add(n), base, rest);
        }
        self.len = rest;
    }
}

struct DrainIter<'a> {
    base: *mut Mbuf,
    next: usize,
    len: usize,
    _b: std::marker::PhantomData<&'a mut ()>,
}

impl Iterator for DrainIter<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.len {
            return None;
        }
        // SAFETY: slot `next` < len was initialised and is read once.
        let m = unsafe { self.base.add(self.next).read() };
        self.next += 1;
        Some(m)
    }
}

impl Drop for DrainIter<'_> {
    fn drop(&mut self) {
        // Free what the caller did not take.
        for m in self.by_ref() {
            drop(m);
        }
    }
}

impl<const N: usize> Drop for Burst<N> {
    fn drop(&mut self) {
        self.clear();
    }
}
