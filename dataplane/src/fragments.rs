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
use dpdk_sys::rte::{Burst, Eal, Mbuf, RteError};
use protocol::time::Instant;

use crate::counters::{DropReason, Event};
use crate::wire::{ipv4, ipv6, Classification, L3Kind};
use crate::worker::Worker;

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

impl Worker<'_> {
    /// Counts `n` mbufs the reassembly table gave up, received on the
    /// tunnel port, as drops for `reason`.
    fn count_fragment_drops(&self, reason: DropReason, n: u32) {
        for _ in 0..n {
            self.counters.count_drop(reason);
        }
        self.counters.add(Event::TunnelDropped, u64::from(n));
    }

    /// Drops the datagrams that timed out by this round's TSC, and frees
    /// what the table gave up. Once per round, before the tunnel burst.
    pub(crate) fn expire_fragments(&mut self) {
        let expired = self.frags.expire(self.tsc);
        self.count_fragment_drops(DropReason::FragmentExpired, expired);
        self.frags.free_death_row();
    }

    /// Frees what the table gave up during the burst (counted already).
    pub(crate) fn free_fragments(&mut self) {
        self.frags.free_death_row();
    }

    /// An outer fragment for one of our tunnel addresses: into the table;
    /// the datagram it completes, if any, goes on through the tunnel path.
    pub(crate) fn outer_fragment(
        &mut self,
        m: Mbuf,
        cls: &Classification,
        now: Instant,
        fresh: bool,
    ) {
        self.counters.add(Event::FragmentsIn, 1);
        let Offer { outcome, expired } = offer(&mut self.frags, m, cls, self.tsc);
        self.count_fragment_drops(DropReason::FragmentExpired, expired);
        let whole = match outcome {
            Reassembly::Complete(whole) => whole,
            Reassembly::Held => return,
            Reassembly::TableFull => {
                return self.count_fragment_drops(DropReason::FragmentTableFull, 1)
            }
            Reassembly::Invalid(n) => return self.count_fragment_drops(DropReason::Fragment, n),
        };
        self.counters.add(Event::Reassembled, 1);
        match finish(whole, cls) {
            Ok(whole) => self.tunnel_packet(whole, now, fresh),
            Err((whole, reason)) => self.tx.drop_packet(whole, reason),
        }
    }

    /// Passes the inner IP packet `m` (the mbuf's whole data) to `send`,
    /// split into fragments of at most the tunnel MTU when it is larger
    /// (only IPv4 without DF gets here larger: see `encap::strip_inner`).
    pub(crate) fn each_piece(&mut self, m: Mbuf, mut send: impl FnMut(&mut Self, Mbuf)) {
        if usize::from(m.data_len()) <= self.cfg.mtu {
            return send(self, m);
        }
        let mtu = u16::try_from(self.cfg.mtu).unwrap_or(u16::MAX);
        let mut pieces: Burst<MAX_INNER_FRAGMENTS> = Burst::new();
        if let Err(e) = ipfrag::fragment_ipv4(&m, mtu, self.pool, &mut pieces) {
            // ENOMEM: the pool ran dry; anything else: more fragments
            // than allowed.
            let reason = if e.errno == 12 {
                DropReason::NoMbuf
            } else {
                DropReason::TooBig
            };
            return self.tx.drop_packet(m, reason);
        }
        drop(m);
        self.counters.add(Event::InnerFragmented, 1);
        self.counters
            .add(Event::InnerFragments, pieces.len() as u64);
        for mut piece in pieces.drain() {
            // The library leaves each fragment's checksum 0.
            match ipv4::Packet::new_checked(piece.data_mut()) {
                Ok(mut ip) => ip.fill_checksum(),
                Err(_) => {
                    self.tx.drop_packet(piece, DropReason::Malformed);
                    continue;
                }
            }
            send(self, piece);
        }
    }
}

/// Whether an inner IP packet (`packet` starts with its header) over the
/// tunnel MTU is fragmented rather than refused: IPv4 without DF.
pub(crate) fn may_fragment(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| b >> 4 == 4)
        && ipv4::Packet::new_checked(packet).is_ok_and(|ip| !ip.dont_frag())
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
