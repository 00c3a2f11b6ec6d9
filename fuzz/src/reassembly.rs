//! The outer-fragment reassembly path (`dataplane::fragments::offer` and
//! `finish` over `dpdk_sys::rte::ipfrag::FragTable`), as a worker runs it,
//! on mbufs of a cache-0 pool so that every mbuf is accounted for.
//!
//! An input is a list of records, each a time step and a fragment:
//!
//! - `dt` (1 byte): the clock advances `dt` × 16 cycles (the table's
//!   timeout is [`TIMEOUT`] cycles, so datagrams expire within inputs);
//! - `kind` (1 byte): bit 0 IPv6, bit 1 more fragments, bit 2 a raw frame;
//! - raw: a length (2 bytes) and that many bytes of Ethernet frame;
//! - else: identification, source (1 byte each), offset in 8-byte units
//!   (2 bytes), payload length (2 bytes, below 1600) and fill byte: an
//!   IPv4 or IPv6 fragment of protocol 253 to 203.0.113.1 / 2001:db8::1
//!   built from them.
//!
//! Checked after every fragment: what the table says it held, completed,
//! refused or freed matches the pool's `in_use()` exactly; a completed
//! datagram is one contiguous frame that classifies as a whole IP packet
//! with its lengths (and IPv4 checksum) right, or is refused as larger
//! than one mbuf. After the input, expiry empties the table and every mbuf
//! is back in the pool.

use std::sync::Mutex;

use dataplane::counters::DropReason;
use dataplane::fragments::{finish, offer};
use dataplane::wire::{classify, ipv4, ipv6, L3Kind};
use dpdk_sys::rte::ipfrag::{FragTable, Offer, Reassembly};
use dpdk_sys::rte::testing::eal;
use dpdk_sys::rte::{Mbuf, Mempool};

use crate::input::Reader;

/// The table's timeout, in the harness's clock cycles.
pub const TIMEOUT: u64 = 1000;

/// Mbufs in the pool: room for a full table (128 datagrams of 8
/// fragments) and the fragment being offered.
const POOL: u32 = 2047;

struct Harness {
    // The table before the pool: it may hold the pool's mbufs.
    table: FragTable,
    pool: Mempool,
    tsc: u64,
}

static HARNESS: Mutex<Option<Harness>> = Mutex::new(None);

/// What an input did, for the seed tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Fragments offered to the table.
    pub offered: u32,
    /// Datagrams completed and delivered whole.
    pub completed: u32,
    /// Datagrams completed but larger than one mbuf.
    pub too_large: u32,
    /// Fragments refused because the table was full.
    pub table_full: u32,
    /// Mbufs freed as invalid.
    pub invalid: u32,
    /// Mbufs freed as expired (during the input and at its end).
    pub expired: u32,
}

/// Builds the frame of a structured record.
fn fragment_frame(r: &mut Reader<'_>, v6: bool, more: bool) -> Vec<u8> {
    let id = r.u8();
    let src = r.u8();
    let offset = r.u16() & 0x1fff;
    let len = usize::from(r.u16()) % 1600;
    let fill = r.u8();
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if v6 {
        f.extend_from_slice(&0x86ddu16.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&((8 + len) as u16).to_be_bytes());
        f.extend_from_slice(&[44, 64]);
        f.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, src]);
        f.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[253, 0]);
        f.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, id]);
    } else {
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&u16::from(id).to_be_bytes());
        h[6..8].copy_from_slice(&(offset | if more { 0x2000 } else { 0 }).to_be_bytes());
        h[8] = 64;
        h[9] = 253; // experimentation (RFC 3692): no L4 header to parse
        h[12..16].copy_from_slice(&[198, 51, 100, src]);
        h[16..20].copy_from_slice(&[203, 0, 113, 1]);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        f.extend_from_slice(&h);
    }
    f.resize(f.len() + len, fill);
    f
}

/// Runs one input (see the module doc); panics when a check fails.
pub fn run(data: &[u8]) -> Summary {
    let mut guard = HARNESS.lock().unwrap_or_else(|e| e.into_inner());
    let h = guard.get_or_insert_with(|| {
        let eal = eal();
        let pool = Mempool::new(eal, "fuzz_frag", POOL, 0, 2176).expect("pool");
        let table = FragTable::new(eal, 128, TIMEOUT).expect("table");
        Harness {
            table,
            pool,
            tsc: 1,
        }
    });
    assert_eq!(h.pool.in_use(), 0, "a previous input left mbufs out");
    let mut sum = Summary::default();
    // Mbufs the table holds, by what it reported.
    let mut held: i64 = 0;
    let mut r = Reader::new(data);
    while !r.is_empty() {
        h.tsc += u64::from(r.u8()) * 16;
        let kind = r.u8();
        let frame = if kind & 4 != 0 {
            let len = usize::from(r.u16());
            r.take(len).to_vec()
        } else {
            fragment_frame(&mut r, kind & 1 != 0, kind & 2 != 0)
        };
        let Ok(cls) = classify(&frame) else {
            continue;
        };
        if !cls.fragment {
            continue;
        }
        let Some(mut m) = h.pool.alloc() else {
            panic!("pool dry with {held} held");
        };
        let Ok(room) = m.append(u16::try_from(frame.len()).unwrap_or(u16::MAX)) else {
            continue;
        };
        room.copy_from_slice(&frame);
        sum.offered += 1;
        let Offer { outcome, expired } = offer(&mut h.table, m, &cls, h.tsc);
        sum.expired += expired;
        held -= i64::from(expired);
        match outcome {
            Reassembly::Held => held += 1,
            Reassembly::TableFull => sum.table_full += 1,
            Reassembly::Invalid(n) => {
                assert!(n >= 1);
                sum.invalid += n;
                held -= i64::from(n) - 1;
            }
            Reassembly::Complete(whole) => {
                held -= i64::from(whole.nb_segs()) - 1;
                check_whole(whole, &cls, &mut sum);
            }
        }
        h.table.free_death_row();
        assert!(held >= 0, "the table reported more freed than it held");
        assert!(held <= 128 * 8, "{held} mbufs held by a 128-entry table");
        assert_eq!(i64::from(h.pool.in_use()), held, "mbufs held vs. pool");
    }
    // Everything left expires, and every mbuf comes back.
    h.tsc += 2 * TIMEOUT + 1;
    loop {
        let n = h.table.expire(h.tsc);
        h.table.free_death_row();
        sum.expired += n;
        held -= i64::from(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(held, 0, "held mbufs left after expiry");
    assert_eq!(h.pool.in_use(), 0, "mbufs leaked");
    sum
}

/// A reassembled datagram is one frame with consistent lengths, or is
/// refused as larger than one mbuf.
fn check_whole(whole: Mbuf, first: &dataplane::wire::Classification, sum: &mut Summary) {
    let total = whole.pkt_len() as usize;
    match finish(whole, first) {
        Err((m, reason)) => {
            assert_eq!(reason, DropReason::Segmented, "{m:?}");
            assert!(total + 128 > 2048, "a {total}-byte datagram fits one mbuf");
            sum.too_large += 1;
        }
        Ok(m) => {
            assert!(m.is_contiguous());
            assert_eq!(m.pkt_len() as usize, total);
            // The IP layer as the tunnel path reads it (what follows it
            // is the sender's, valid or not).
            let l3 = &m.data()[first.l3_offset..];
            match first.l3 {
                L3Kind::Ipv4 => {
                    let ip = ipv4::Packet::new_checked(l3).expect("reassembled IPv4 parses");
                    assert!(!ip.is_fragment(), "still a fragment");
                    assert!(ip.verify_checksum(), "checksum filled in");
                    assert_eq!(ip.total_len(), l3.len(), "length is the data");
                }
                L3Kind::Ipv6 => {
                    let ip = ipv6::Packet::new_checked(l3).expect("reassembled IPv6 parses");
                    assert!(!ip.is_fragment(), "fragment header removed");
                    assert_eq!(ip.total_len(), l3.len(), "length is the data");
                }
                other => panic!("reassembled into {other:?}"),
            }
            sum.completed += 1;
        }
    }
}
