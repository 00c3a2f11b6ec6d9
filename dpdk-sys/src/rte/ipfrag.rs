//! IP fragmentation and reassembly with DPDK's `librte_ip_frag`.
//!
//! - [`FragTable`]: a bounded reassembly table (`rte_ip_frag_table_create`)
//!   and its death row, for one lcore. A fragment is offered with
//!   [`FragTable::reassemble`]; the table keeps it until its datagram is
//!   complete, times out, or turns out invalid. What the library frees goes
//!   to the death row first and is counted there (expiry, a full table,
//!   invalid sets), then freed by [`FragTable::free_death_row`].
//! - [`fragment_ipv4`]: splits an IPv4 packet into fragments copied into
//!   fresh mbufs of a pool (`rte_ipv4_fragment_copy_nonseg_packet`), each
//!   one contiguous.
//!
//! The library checks little of what it is given. The lengths it trusts
//! (header lengths inside the first segment, a payload in each fragment,
//! a datagram within 65535 bytes) are checked here before every call.

use std::ptr::NonNull;

use super::{Burst, Eal, Mbuf, Mempool, RteError};
use crate::ffi;

/// Most fragments one datagram may have in a [`FragTable`]
/// (`RTE_LIBRTE_IP_FRAG_MAX_FRAG`, DPDK's build setting).
pub const MAX_FRAGMENTS: usize = ffi::RTE_LIBRTE_IP_FRAG_MAX_FRAG as usize;

/// Entries per hash bucket (the table is set-associative).
const BUCKET_ENTRIES: u32 = 4;

/// The IPv6 fragment extension header's length (RFC 8200 section 4.5).
const IPV6_FRAGMENT_HEADER_LEN: usize = 8;

/// Which IP version a fragment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4: `l3_len` is the IPv4 header length.
    V4,
    /// IPv6 with the fragment header right after the fixed header:
    /// `l3_len` is 48 (fixed header and fragment header).
    V6,
}

/// What became of an offered fragment.
#[derive(Debug)]
pub enum Reassembly {
    /// It completed its datagram: the reassembled packet (a chain of
    /// segments, headers as in the first fragment, lengths updated; an
    /// IPv4 header checksum of 0, an IPv6 fragment header removed).
    Complete(Mbuf),
    /// The table keeps it until the rest arrive.
    Held,
    /// No entry was free (the table is full of datagrams not yet timed
    /// out): the fragment went to the death row.
    TableFull,
    /// It made its datagram invalid (a duplicate first or last fragment,
    /// more than [`MAX_FRAGMENTS`], overlaps or holes), or its own lengths
    /// were: this many mbufs (it and the datagram's others) went to the
    /// death row.
    Invalid(u32),
}

/// A fragment's fate, and the mbufs of timed-out datagrams the lookup
/// freed on the way.
#[derive(Debug)]
pub struct Offer {
    /// What became of the fragment.
    pub outcome: Reassembly,
    /// Mbufs of other datagrams that had timed out, freed to make room.
    pub expired: u32,
}

/// One lcore's reassembly table and death row. Not shared: each worker
/// has its own.
pub struct FragTable {
    raw: NonNull<ffi::rte_ip_frag_tbl>,
    death_row: Box<ffi::rte_ip_frag_death_row>,
    _eal: Eal,
}

// SAFETY: the table and death row are used through `&mut self` only; the
// memory is EAL's (rte_malloc), valid on any thread of the process.
unsafe impl Send for FragTable {}

impl std::fmt::Debug for FragTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragTable")
            .field("death_row", &self.death_row.cnt)
            .finish_non_exhaustive()
    }
}

impl FragTable {
    /// A table of at most `entries` datagrams in reassembly (rounded up to
    /// a power of two, at least 4, the entries of a hash bucket), each dropped when
    /// `timeout_cycles` TSC cycles pass after its first fragment.
    pub fn new(eal: &Eal, entries: u32, timeout_cycles: u64) -> Result<Self, RteError> {
        let entries = entries.max(BUCKET_ENTRIES).next_power_of_two();
        // SAFETY: EAL is initialised (we hold a handle).
        let raw = unsafe {
            ffi::rte_ip_frag_table_create(
                entries / BUCKET_ENTRIES,
                BUCKET_ENTRIES,
                entries,
                timeout_cycles,
                ffi::rte_socket_id() as i32,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| RteError::from_rte_errno("rte_ip_frag_table_create"))?;
        Ok(Self {
            raw,
            death_row: Box::default(),
            _eal: eal.clone(),
        })
    }

    /// Mbufs on the death row, waiting for [`free_death_row`](Self::free_death_row).
    pub fn death_row_len(&self) -> u32 {
        self.death_row.cnt
    }

    /// Frees the mbufs on the death row.
    pub fn free_death_row(&mut self) {
        if self.death_row.cnt > 0 {
            // SAFETY: the death row holds `cnt` mbufs the library gave up,
            // owned by nothing else.
            unsafe { ffi::rte_ip_frag_free_death_row(self.death_row.as_mut(), 3) };
        }
    }

    /// Room for what one call can add: the fragment and every other of its
    /// datagram.
    fn make_room(&mut self) {
        let room = self.death_row.row.len() as u32 - self.death_row.cnt;
        if room <= MAX_FRAGMENTS as u32 + 1 {
            self.free_death_row();
        }
    }

    /// Drops the datagrams whose first fragment is older than the timeout
    /// at TSC `tsc`; returns how many mbufs that freed (to the death row).
    /// Stops early when the death row is full; the rest go on a later call.
    pub fn expire(&mut self, tsc: u64) -> u32 {
        self.make_room();
        let before = self.death_row.cnt;
        // SAFETY: the table and death row are valid and ours; the call
        // checks the death row's room itself.
        unsafe {
            ffi::rte_ip_frag_table_del_expired_entries(
                self.raw.as_ptr(),
                self.death_row.as_mut(),
                tsc,
            )
        };
        let added = &self.death_row.row[before as usize..self.death_row.cnt as usize];
        // SAFETY: as in `reassemble`: chains the library gave up.
        unsafe { given_up(added, std::ptr::null_mut()) }.0
    }

    /// Offers the fragment `m` that arrived at TSC `tsc`: its IP header
    /// starts at `l2_len`, and is `l3_len` bytes long (IPv4 header; IPv6
    /// fixed header and fragment header). A fragment whose headers or
    /// lengths do not add up is dropped as [`Reassembly::Invalid`] without
    /// reaching the library.
    pub fn reassemble(
        &mut self,
        mut m: Mbuf,
        v: IpVersion,
        l2_len: u8,
        l3_len: u16,
        tsc: u64,
    ) -> Offer {
        let invalid = |m: Mbuf| {
            drop(m);
            Offer {
                outcome: Reassembly::Invalid(1),
                expired: 0,
            }
        };
        let Some((payload, offset)) = fragment_lengths(m.data(), v, l2_len, l3_len) else {
            return invalid(m);
        };
        if !m.is_contiguous() || payload == 0 || offset + payload > usize::from(u16::MAX) {
            return invalid(m);
        }
        self.make_room();
        m.set_header_lens(l2_len, l3_len);
        let raw = m.as_ptr();
        // The mbuf is the library's from here (held, chained or on the
        // death row).
        std::mem::forget(m);
        let before = self.death_row.cnt as usize;
        // SAFETY: `raw` is a contiguous mbuf we owned, whose headers lie
        // within its data (checked above); the table and death row are
        // ours. The library takes the mbuf.
        let done = unsafe {
            let ip = (*raw)
                .buf_addr
                .cast::<u8>()
                .add(usize::from((*raw).data_off) + usize::from(l2_len));
            match v {
                IpVersion::V4 => ffi::rte_ipv4_frag_reassemble_packet(
                    self.raw.as_ptr(),
                    self.death_row.as_mut(),
                    raw,
                    tsc,
                    ip.cast(),
                ),
                IpVersion::V6 => ffi::rte_ipv6_frag_reassemble_packet(
                    self.raw.as_ptr(),
                    self.death_row.as_mut(),
                    raw,
                    tsc,
                    ip.cast(),
                    ip.add(usize::from(l3_len) - IPV6_FRAGMENT_HEADER_LEN)
                        .cast(),
                ),
            }
        };
        let added = &self.death_row.row[before..self.death_row.cnt as usize];
        // SAFETY: what the call added to the death row are mbuf chains the
        // library gave up and no one else holds until they are freed.
        let (freed, offered_freed) = unsafe { given_up(added, raw) };
        // SAFETY: a non-NULL result is a packet the library gave back.
        if let Some(whole) = unsafe { Mbuf::from_raw(done) } {
            return Offer {
                outcome: Reassembly::Complete(whole),
                expired: freed,
            };
        }
        // See ip_frag_internal.c: the offered fragment goes to the death
        // row alone when no entry could be had (the table is full), with
        // the datagram's others when the set is invalid; a lookup that
        // finds a timed-out entry frees that entry's fragments and keeps
        // the offered one. A set that fails to reassemble (a hole behind
        // fragments whose lengths add up, as overlaps make) is given up
        // partly chained, so the offered fragment may be a segment inside
        // another's chain, and one death-row entry may be several mbufs:
        // both are counted by walking the chains.
        let outcome = match (offered_freed, freed) {
            (false, _) => Reassembly::Held,
            (true, 1) => Reassembly::TableFull,
            (true, n) => Reassembly::Invalid(n),
        };
        let expired = if matches!(outcome, Reassembly::Held) {
            freed
        } else {
            0
        };
        Offer { outcome, expired }
    }
}

impl Drop for FragTable {
    fn drop(&mut self) {
        self.free_death_row();
        // SAFETY: the table is ours; destroying it frees the fragments it
        // still holds.
        unsafe { ffi::rte_ip_frag_table_destroy(self.raw.as_ptr()) };
    }
}

/// The mbufs in the chains `added` to a death row, and whether `offered`
/// is one of them (the head of a chain or a segment inside one).
///
/// # Safety
///
/// Every entry of `added` is a valid mbuf chain (`next` links ending in
/// NULL) that nothing changes during the call.
unsafe fn given_up(added: &[*mut ffi::rte_mbuf], offered: *mut ffi::rte_mbuf) -> (u32, bool) {
    let mut mbufs = 0;
    let mut found = false;
    for &head in added {
        let mut seg = head;
        while !seg.is_null() {
            mbufs += 1;
            found |= seg == offered;
            // SAFETY: `seg` is a segment of a valid chain (the caller's
            // promise).
            seg = unsafe { (*seg).next };
        }
    }
    (mbufs, found)
}

/// A fragment's payload length and offset (bytes), read from its IP
/// header at `l2_len`; `None` when the headers do not lie within the
/// first segment or do not match `v` and `l3_len`.
fn fragment_lengths(data: &[u8], v: IpVersion, l2_len: u8, l3_len: u16) -> Option<(usize, usize)> {
    let l2 = usize::from(l2_len);
    let l3 = usize::from(l3_len);
    let ip = data.get(l2..l2 + l3)?;
    let be = |at: usize| u16::from_be_bytes([ip[at], ip[at + 1]]);
    match v {
        IpVersion::V4 => {
            if ip[0] >> 4 != 4 || usize::from(ip[0] & 0x0f) * 4 != l3 {
                return None;
            }
            let total = usize::from(be(2));
            let offset = usize::from(be(6) & 0x1fff) * 8;
            Some((total.checked_sub(l3)?, offset))
        }
        IpVersion::V6 => {
            // Next header 44 in the fixed header: the fragment header is
            // the first extension header, the only place handled.
            if ip[0] >> 4 != 6 || l3 != 40 + IPV6_FRAGMENT_HEADER_LEN || ip[6] != 44 {
                return None;
            }
            let payload = usize::from(be(4)).checked_sub(IPV6_FRAGMENT_HEADER_LEN)?;
            let offset = usize::from(be(42) & 0xfff8);
            Some((payload, offset))
        }
    }
    .filter(|&(payload, _)| l2 + l3 + payload <= data.len())
}

/// Splits the IPv4 packet that is `m`'s whole data into fragments of at
/// most `mtu` bytes (header included; payloads a multiple of 8 bytes but
/// the last), copied into mbufs of `pool` and appended to `out`
/// (RFC 791 section 3.2, fragmentation; options copied as the RFC says).
/// Each fragment's header checksum is left 0 for the caller to fill in.
/// Returns how many; fails (appending nothing) when the packet has DF set,
/// is segmented, needs more fragments than `out` has room for, or the pool
/// runs dry. `m` stays the caller's.
pub fn fragment_ipv4<const N: usize>(
    m: &Mbuf,
    mtu: u16,
    pool: &Mempool,
    out: &mut Burst<N>,
) -> Result<usize, RteError> {
    const OP: &str = "rte_ipv4_fragment_copy_nonseg_packet";
    let ihl = m.data().first().map_or(0, |b| usize::from(b & 0x0f) * 4);
    if !m.is_contiguous() || ihl < 20 || usize::from(m.data_len()) < ihl {
        return Err(RteError::invalid(OP, "not a contiguous IPv4 packet"));
    }
    let spare = u16::try_from(out.spare()).unwrap_or(u16::MAX);
    // SAFETY: `m` is a valid contiguous packet starting with an IPv4
    // header that lies in it; the spare slots of `out` can hold `spare`
    // pointers, of which the call writes the returned number of new mbufs
    // (and frees what it made on failure).
    unsafe {
        let n = ffi::rte_ipv4_fragment_copy_nonseg_packet(
            m.as_ptr(),
            out.spare_ptr(),
            spare,
            mtu,
            pool.as_ptr(),
        );
        if n < 0 {
            return Err(RteError::from_ret(OP, n));
        }
        out.set_len(out.len() + n as usize);
        Ok(n as usize)
    }
}
