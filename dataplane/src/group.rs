//! Tunnel groups (ECMP over tunnels): several peers towards one site, and
//! the prefixes routed to the site through whichever member a flow hashes
//! to.
//!
//! In the routing snapshot a group prefix maps to a *target* that carries
//! [`GROUP_TAG`] and the group's index in [`RouteTable::groups`]
//! (crate::route::RouteTable); peer slots never reach that bit. The worker
//! that receives the plaintext resolves the group to one member:
//!
//! - The flow is the inner 5-tuple (addresses, protocol, TCP/UDP/SCTP
//!   ports; addresses and protocol only for fragments, whose later pieces
//!   carry no ports, so that all pieces of a datagram go the same way; the
//!   IPv6 flow label where no ports can be read). Its hash is a pure
//!   function of the packet: stable per flow, on every worker, across
//!   restarts.
//! - The member is chosen by rendezvous (highest random weight) hashing:
//!   every member scores `mix(flow ^ seed)` with a seed derived from its
//!   public key, and the highest score among the live members wins. When
//!   a member dies, only the flows it had won move (each to its own
//!   second-best member, so they spread over the others); the others'
//!   scores do not change, so none of their flows moves. When it returns,
//!   exactly those flows win it again. A modulo over the live members would
//!   instead move most flows at every change.
//! - A member is live when it has a current keypair younger than
//!   REJECT_AFTER_TIME and has not left data unanswered for
//!   KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (see [`Liveness`]). If no member is
//!   live, the choice is made among all of them: the packet is then staged
//!   on that member and triggers its handshake, as for an ordinary peer.
//!
//! Per packet this costs one pass over the members (a few loads and
//! multiplications each); no allocation, lock or clock read (the caller
//! passes the burst's time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use protocol::time::Instant;

use crate::peer::{PeerId, PeerShared};

/// Marks a routing target as a group (the low bits are its index).
pub const GROUP_TAG: u32 = 1 << 31;

/// The routing target of group `index`.
#[inline]
pub fn group_target(index: usize) -> PeerId {
    GROUP_TAG | (index as u32 & !GROUP_TAG)
}

/// The group index of a routing target; `None` for a peer.
#[inline]
pub fn as_group(target: PeerId) -> Option<usize> {
    (target & GROUP_TAG != 0).then_some((target & !GROUP_TAG) as usize)
}

/// A bijective 64-bit mixer with full avalanche (splitmix64's finaliser).
#[inline]
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A member's rendezvous seed, from its public key (not its slot, which a
/// restart or a re-added peer may change).
pub fn member_seed(public_key: &[u8; 32]) -> u64 {
    public_key.chunks_exact(8).fold(0, |h, c| {
        mix(h ^ u64::from_le_bytes(c.try_into().unwrap_or_default()))
    })
}

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_SCTP: u8 = 132;

/// Whether the protocol's header starts with 16-bit source and
/// destination ports.
#[inline]
fn has_ports(proto: u8) -> bool {
    matches!(proto, IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP)
}

/// The first four bytes at `at` (the two ports), if present.
#[inline]
fn word_at(packet: &[u8], at: usize) -> Option<u64> {
    let b = packet.get(at..at + 4)?;
    Some(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
}

/// Folds one word into a flow hash.
#[inline]
fn fold(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23)
}

/// The flow hash of the IPv4 or IPv6 packet at the start of `packet`
/// (already checked by the caller's parser; anything short hashes what is
/// there).
#[inline]
pub fn flow_hash(packet: &[u8]) -> u64 {
    let version = packet.first().map_or(0, |b| b >> 4);
    let mut h = u64::from(version);
    if version == 4 && packet.len() >= 20 {
        let ihl = usize::from(packet[0] & 0x0f) * 4;
        let proto = packet[9];
        let fragment = u16::from_be_bytes([packet[6], packet[7]]) & 0x3fff != 0;
        h = fold(h, word_at(packet, 12).unwrap_or(0));
        h = fold(h, word_at(packet, 16).unwrap_or(0));
        h = fold(h, u64::from(proto));
        if has_ports(proto) && !fragment {
            h = fold(h, word_at(packet, ihl).unwrap_or(0));
        }
    } else if version == 6 && packet.len() >= 40 {
        let next = packet[6];
        for at in (8..40).step_by(4) {
            h = fold(h, word_at(packet, at).unwrap_or(0));
        }
        h = fold(h, u64::from(next));
        h = match word_at(packet, 40) {
            Some(ports) if has_ports(next) => fold(h, ports),
            // Extension headers or no ports: the flow label names the flow.
            _ => fold(h, word_at(packet, 0).unwrap_or(0) & 0x000f_ffff),
        };
    }
    mix(h)
}

/// The index of the winner among `candidates` (index, seed, live) for
/// `flow`: the highest score among the live ones, or among all when none
/// is live; `None` when there are none.
#[inline]
pub fn rendezvous(
    flow: u64,
    candidates: impl Iterator<Item = (usize, u64, bool)>,
) -> Option<usize> {
    let mut best_live: Option<(u64, usize)> = None;
    let mut best: Option<(u64, usize)> = None;
    for (i, seed, live) in candidates {
        let score = mix(flow ^ seed);
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, i));
        }
        if live && best_live.is_none_or(|(s, _)| score > s) {
            best_live = Some((score, i));
        }
    }
    best_live.or(best).map(|(_, i)| i)
}

/// One cache line per worker, so that workers counting the same member
/// never share a line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Cell(AtomicU64);

/// Packets sent to one member through its group, per worker: each worker
/// writes only its own cell (a plain load and store, no read-modify-write),
/// the control thread sums them.
#[derive(Debug)]
pub struct MemberCounts {
    cells: Box<[Cell]>,
}

impl MemberCounts {
    /// Counts for `workers` workers, all zero.
    pub fn new(workers: usize) -> Self {
        Self {
            cells: (0..workers.max(1)).map(|_| Cell::default()).collect(),
        }
    }

    /// Adds one packet for worker `worker` (its own cell only).
    #[inline]
    pub fn add(&self, worker: usize) {
        if let Some(c) = self.cells.get(worker) {
            c.0.store(
                c.0.load(Ordering::Relaxed).wrapping_add(1),
                Ordering::Relaxed,
            );
        }
    }

    /// Packets over all workers.
    pub fn total(&self) -> u64 {
        self.cells
            .iter()
            .fold(0u64, |t, c| t.wrapping_add(c.0.load(Ordering::Relaxed)))
    }
}

/// A member as the snapshot holds it.
#[derive(Debug, Clone)]
pub struct GroupMember {
    /// Its peer slot.
    pub id: PeerId,
    /// Its rendezvous seed ([`member_seed`]).
    pub seed: u64,
    /// What its owner (and the control thread) publish: its
    /// [`Liveness`](crate::peer::Liveness).
    pub shared: Arc<PeerShared>,
    /// Packets routed to it through this group.
    pub counts: Arc<MemberCounts>,
}

/// A group as the snapshot holds it: its members, in table order.
#[derive(Debug, Clone, Default)]
pub struct GroupRoute {
    /// The members present (a member removed over the UAPI is not).
    pub members: Box<[GroupMember]>,
}

impl GroupRoute {
    /// The member that carries the packet starting at `packet` at `now`
    /// (see the module documentation); `None` for a group without members.
    #[inline]
    pub fn pick(&self, packet: &[u8], now: Instant) -> Option<&GroupMember> {
        let flow = flow_hash(packet);
        let candidates = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (i, m.seed, m.shared.liveness.is_live(now)));
        rendezvous(flow, candidates).and_then(|i| self.members.get(i))
    }

    /// Whether peer `id` is a member.
    #[inline]
    pub fn has_member(&self, id: PeerId) -> bool {
        self.members.iter().any(|m| m.id == id)
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
