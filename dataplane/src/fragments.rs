//! IP fragments on both sides of a worker, with DPDK's `librte_ip_frag`
//! (see `dpdk_sys::rte::ipfrag`).
//!
//! **Outer fragments** (tunnel port). A peer behind a link smaller than
//! its packets (PPPoE, mobile, DS-Lite, a 1280 tunnel) sends WireGuard
//! datagrams that arrive in fragments. Fragments addressed to one of our
//! tunnel addresses are reassembled in a table per worker (RFC 791 section
//! 3.2 reassembly; RFC 8200 section 4.5), bounded to [`REASSEMBLY_ENTRIES`]
//! datagrams in progress, each given [`REASSEMBLY_TIMEOUT`] from its first
//! fragment. The clock is the TSC the worker reads once per round: no clock
//! read per packet. A complete datagram goes through the tunnel path as
//! if it had arrived whole (WireGuard, or the kernel's for anything else).
//! Counted: `fragments_in` (taken into the table), `reassembled`
//! (datagrams completed), and the drops `fragment_expired` (per mbuf of a
//! datagram that timed out), `fragment_table_full` (no free entry) and
//! `fragment` (an invalid set or fragment: overlaps, duplicates, more than
//! eight fragments, bad lengths). A datagram larger than one mbuf is
//! dropped as `segmented`.
//!
//! The table holds at most `REASSEMBLY_ENTRIES` × 8 mbufs per worker, so a
//! flood of fragments that never complete cannot take the pool.
//!
//! **Inner fragmentation** (plaintext port). An IPv4 packet without DF
//! larger than the tunnel MTU is fragmented before encryption, as a router
//! in front of a smaller link does (RFC 791 section 3.2, RFC 1812 section
//! 4.2.2.7), into fragments of at most the tunnel MTU, each then sealed as
//! a packet of its own. Counted: `inner_fragmented` (packets split) and
//! `inner_fragments` (fragments made). IPv4 with DF, and IPv6 (routers
//! never fragment it), are not fragmented.

use std::time::Duration;

use dpdk_sys::rte::ipfrag::{self, FragTable, IpVersion, Offer, Reassembly};
use dpdk_sys::rte::{Burst, Eal, Mbuf, Mempool, RteError};

use crate::counters::{DropReason, Event, WorkerCounters};
use crate::wire::{ipv4, ipv6, Classification, L3Kind};

/// Datagrams in reassembly per worker, at most.
pub const REASSEMBLY_ENTRIES: u32 = 128;

/// How long a datagram's fragments are kept, from its first fragment. The
/// fragments of one WireGuard datagram leave the peer back to back; a
/// datagram not complete within this is not going to be.
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(2);

/// Most fragments an inner packet is split into (a packet needing more is
/// dropped as `too_big`): a 9000-byte jumbo frame at a 1280 MTU needs 8.
const MAX_INNER_FRAGMENTS: usize = 16;

/// A worker's reassembly table: [`REASSEMBLY_ENTRIES`] datagrams, each
/// kept `timeout` on a TSC ticking at `tsc_hz`.
pub fn reassembly_table(eal: &Eal, tsc_hz: u64, timeout: Duration) -> Result<FragTable, RteError> {
    let cycles =
        u64::try_from(u128::from(tsc_hz) * timeout.as_nanos() / 1_000_000_000).unwrap_or(u64::MAX);
    FragTable::new(eal, REASSEMBLY_ENTRIES, cycles)
}

/// Counts `n` mbufs the reassembly table gave up, received on the tunnel
/// port, as drops for `reason`.
fn count_fragment_drops(counters: &WorkerCounters, reason: DropReason, n: u32) {
    for _ in 0..n {
        counters.count_drop(reason);
    }
    counters.add(Event::TunnelDropped, u64::from(n));
}

/// A worker's outer reassembly table, on the TSC the worker reads once
/// per round.
pub(crate) struct Reassembler {
    table: FragTable,
    /// The TSC read at the start of this round (the reassembly clock).
    tsc: u64,
}

impl Reassembler {
    /// Reassembles in `table` (see [`reassembly_table`]).
    pub(crate) fn new(table: FragTable) -> Self {
        Self { table, tsc: 0 }
    }

    /// Starts a round at TSC `tsc`: drops the datagrams that timed out by
    /// then, and frees what the table gave up. Before the tunnel burst.
    pub(crate) fn start_round(&mut self, tsc: u64, counters: &WorkerCounters) {
        self.tsc = tsc;
        let expired = self.table.expire(tsc);
        count_fragment_drops(counters, DropReason::FragmentExpired, expired);
        self.table.free_death_row();
    }

    /// Frees what the table gave up during the burst (counted already).
    pub(crate) fn free_given_up(&mut self) {
        self.table.free_death_row();
    }

    /// An outer fragment for one of our tunnel addresses, into the table:
    /// the datagram it completes, if any (or that datagram with the reason
    /// it is dropped). What the table refused is counted here.
    pub(crate) fn offer(
        &mut self,
        m: Mbuf,
        cls: &Classification,
        counters: &WorkerCounters,
    ) -> Option<Result<Mbuf, (Mbuf, DropReason)>> {
        counters.add(Event::FragmentsIn, 1);
        let Offer { outcome, expired } = offer(&mut self.table, m, cls, self.tsc);
        count_fragment_drops(counters, DropReason::FragmentExpired, expired);
        let whole = match outcome {
            Reassembly::Complete(whole) => whole,
            Reassembly::Held => return None,
            Reassembly::TableFull => {
                count_fragment_drops(counters, DropReason::FragmentTableFull, 1);
                return None;
            }
            Reassembly::Invalid(n) => {
                count_fragment_drops(counters, DropReason::Fragment, n);
                return None;
            }
        };
        counters.add(Event::Reassembled, 1);
        Some(finish(whole, cls))
    }
}

/// An inner IP packet after [`split`].
pub(crate) enum Pieces {
    /// It fits the tunnel MTU as it is.
    Whole(Mbuf),
    /// Its fragments, each at most the tunnel MTU, their IPv4 header
    /// checksums still to fill ([`with_checksum`]).
    Split(Burst<MAX_INNER_FRAGMENTS>),
}

/// Splits the inner IP packet `m` (the mbuf's whole data) into fragments
/// of at most `mtu` when it is larger (only IPv4 without DF gets here
/// larger: see `worker::send::strip_inner`), from `pool`; the packet back with
/// the reason it is dropped when it cannot be.
#[inline]
pub(crate) fn split(
    m: Mbuf,
    mtu: usize,
    pool: &Mempool,
    counters: &WorkerCounters,
) -> Result<Pieces, (Mbuf, DropReason)> {
    if usize::from(m.data_len()) <= mtu {
        return Ok(Pieces::Whole(m));
    }
    split_larger(m, mtu, pool, counters)
}

/// [`split`] of a packet larger than `mtu`: out of line, as it is rare.
#[cold]
#[inline(never)]
fn split_larger(
    m: Mbuf,
    mtu: usize,
    pool: &Mempool,
    counters: &WorkerCounters,
) -> Result<Pieces, (Mbuf, DropReason)> {
    let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
    let mut pieces: Burst<MAX_INNER_FRAGMENTS> = Burst::new();
    if let Err(e) = ipfrag::fragment_ipv4(&m, mtu, pool, &mut pieces) {
        // ENOMEM: the pool ran dry; anything else: more fragments than
        // allowed.
        let reason = if e.errno == 12 {
            DropReason::NoMbuf
        } else {
            DropReason::TooBig
        };
        return Err((m, reason));
    }
    drop(m);
    counters.add(Event::InnerFragmented, 1);
    counters.add(Event::InnerFragments, pieces.len() as u64);
    Ok(Pieces::Split(pieces))
}

/// A fragment [`split`] made, with its IPv4 header checksum (the library
/// leaves it 0); the fragment back when its header does not parse.
pub(crate) fn with_checksum(mut piece: Mbuf) -> Result<Mbuf, Mbuf> {
    match ipv4::Packet::new_checked(piece.data_mut()) {
        Ok(mut ip) => {
            ip.fill_checksum();
            Ok(piece)
        }
        Err(_) => Err(piece),
    }
}

/// Offers the outer fragment `m`, classified as `cls` (an IPv4 fragment,
/// or IPv6 with the fragment header first), that arrived at TSC `tsc`, to
/// a reassembly table: what a worker does with each one.
pub fn offer(table: &mut FragTable, m: Mbuf, cls: &Classification, tsc: u64) -> Offer {
    let l2 = cls.l3_offset as u8;
    let (v, l3) = match cls.l3 {
        L3Kind::Ipv4 => {
            let ihl = m
                .data()
                .get(cls.l3_offset)
                .map_or(0, |b| u16::from(b & 0x0f) * 4);
            (IpVersion::V4, ihl)
        }
        _ => (IpVersion::V6, (ipv6::HEADER_LEN + 8) as u16),
    };
    table.reassemble(m, v, l2, l3, tsc)
}

/// Makes a reassembled datagram (its first fragment's frame was
/// classified as `cls`) one contiguous frame with a valid IPv4 header
/// checksum (the library leaves it 0 after changing lengths and flags: the
/// kernel, for what is not WireGuard, checks it). Gives it back with the
/// drop reason when it does not fit one mbuf (`segmented`).
pub fn finish(mut whole: Mbuf, cls: &Classification) -> Result<Mbuf, (Mbuf, DropReason)> {
    if whole.linearize().is_err() {
        return Err((whole, DropReason::Segmented));
    }
    if cls.l3 == L3Kind::Ipv4 {
        match ipv4::Packet::new_checked(
            whole
                .data_mut()
                .get_mut(cls.l3_offset..)
                .unwrap_or_default(),
        ) {
            Ok(mut ip) => ip.fill_checksum(),
            Err(_) => return Err((whole, DropReason::Malformed)),
        }
    }
    Ok(whole)
}
