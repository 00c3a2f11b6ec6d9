//! Ownership that follows the tunnel: where a peer's packets arrive, and
//! moving a peer to the worker that receives them.
//!
//! The owner authenticates every data packet of its peers, including those
//! another worker received and handed off (that worker tags the mbuf with
//! its index). [`Arrivals`] counts authenticated packets that keep arriving
//! through one other worker's RX queue; past [`REHOME_AFTER`] in a row with
//! none arriving locally, the owner asks the control thread to re-home the
//! peer ([`WorkerEvent::ArrivesAt`]). A stray packet does not move it.
//!
//! Re-homing goes through the command channels, in order:
//! 1. the control thread sends [`Command::Release`] to the owner;
//! 2. the owner takes the peer's [`PeerState`] (keypairs, counters, replay
//!    windows, staged packets, endpoint) out of its tables, remembers where
//!    it went, and sends it to the new owner as [`Command::Adopt`];
//! 3. the new owner installs it, indexes its keypairs and reports
//!    [`WorkerEvent::Adopted`]; the control thread then publishes routes
//!    naming the new owner.
//!
//! Only one worker holds the state at any time, so no packet is accepted
//! twice (the replay windows move with it). Until every worker has the new
//! routes, and for as long as the peer's keypairs carry the old owner in
//! their receiver index's low bits, packets keep reaching the old owner:
//! it passes them on ([`Event::Forwarded`]), and per-peer commands too. A
//! worker checks its own tables before the index's low bits, so the new
//! owner handles the stale-indexed packets it receives itself.

use crate::counters::{Event, WorkerCounters};
use crate::port::PortSide;

/// Authenticated packets in a row through one other worker's queue (none
/// arriving at the owner's) before the owner asks to re-home the peer.
pub const REHOME_AFTER: u32 = 32;

/// The handoff tag's bit for a tunnel-port packet (clear: plaintext port).
const TAG_TUNNEL: u32 = 1 << 31;

/// The tag a worker puts on a packet it hands off: which port it came
/// from and which worker received it (not every PMD sets `mbuf.port`).
#[inline]
pub(crate) fn handoff_tag(worker: usize, side: PortSide) -> u32 {
    let port = match side {
        PortSide::Tunnel => TAG_TUNNEL,
        PortSide::Plaintext => 0,
    };
    port | (worker as u32 & !TAG_TUNNEL)
}

/// The tag of a frame received where the two roles share one physical
/// port, split by VLAN: the role of the link it arrived on, which
/// [`tag_side`] reads back (its drop counts as that link's). A handoff
/// replaces it with the [`handoff_tag`], which keeps the role.
#[inline]
pub(crate) fn link_tag(side: PortSide) -> u32 {
    handoff_tag(0, side)
}

/// The port a handed-off packet came from, by its tag.
#[inline]
pub(crate) fn tag_side(tag: u32) -> PortSide {
    if tag & TAG_TUNNEL != 0 {
        PortSide::Tunnel
    } else {
        PortSide::Plaintext
    }
}

/// How a packet reached the worker handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// This worker's own RX queue received it: counted here, and it may
    /// be handed on once.
    OwnQueue,
    /// Another worker received it and handed it off (its index is in the
    /// mbuf's [`handoff_tag`]).
    Handoff,
}

impl Via {
    /// Counts a packet of the port of `side` as handled inline, on the
    /// worker that received it (nothing for a handed-off one: its
    /// receiver counted the handoff).
    #[inline]
    pub(crate) fn count_inline(self, side: PortSide, counters: &WorkerCounters) {
        if self == Via::OwnQueue {
            counters.add(Event::Local, 1);
            counters.add(
                match side {
                    PortSide::Tunnel => Event::TunnelInline,
                    PortSide::Plaintext => Event::PlaintextInline,
                },
                1,
            );
        }
    }
}

/// The worker that received a handed-off packet, by its tag.
#[inline]
pub(crate) fn tag_worker(tag: u32) -> usize {
    (tag & !TAG_TUNNEL) as usize
}

/// Where a peer's authenticated packets have been arriving, on its owner.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Arrivals {
    worker: usize,
    streak: u32,
}

impl Arrivals {
    /// Notes an authenticated packet received by worker `at`, on owner
    /// `owner`. Returns the worker to re-home to when the packets have kept
    /// arriving there ([`REHOME_AFTER`] in a row; asked again after as many
    /// more while the peer stays).
    pub fn note(&mut self, at: usize, owner: usize) -> Option<usize> {
        if at == owner {
            self.streak = 0;
            return None;
        }
        if self.worker != at {
            self.worker = at;
            self.streak = 0;
        }
        self.streak += 1;
        if self.streak < REHOME_AFTER {
            return None;
        }
        self.streak = 0;
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stray_packet_does_not_move_a_peer() {
        let mut a = Arrivals::default();
        for _ in 0..REHOME_AFTER - 1 {
            assert_eq!(a.note(1, 0), None);
        }
        assert_eq!(a.note(0, 0), None, "one at the owner resets the streak");
        for _ in 0..REHOME_AFTER - 1 {
            assert_eq!(a.note(1, 0), None);
        }
        assert_eq!(a.note(2, 0), None, "another worker starts over");
        for _ in 0..REHOME_AFTER - 2 {
            assert_eq!(a.note(2, 0), None);
        }
        assert_eq!(a.note(2, 0), Some(2), "32 in a row through worker 2");
        for _ in 0..REHOME_AFTER - 1 {
            assert_eq!(a.note(2, 0), None);
        }
        assert_eq!(a.note(2, 0), Some(2), "asked again while it stays");
    }

    #[test]
    fn tags_carry_port_and_worker() {
        for w in [0, 1, 7, 1023] {
            for side in [PortSide::Tunnel, PortSide::Plaintext] {
                let t = handoff_tag(w, side);
                assert_eq!((tag_side(t), tag_worker(t)), (side, w));
            }
        }
    }

    #[test]
    fn alternating_arrivals_never_move_a_peer() {
        let mut a = Arrivals::default();
        for i in 0..10 * REHOME_AFTER {
            assert_eq!(a.note((i % 2) as usize, 0), None);
        }
    }
}
