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

use dpdk_sys::rte::Mbuf;
use protocol::time::Instant;

use crate::command::{Command, PortSide, WorkerEvent};
use crate::counters::{DropReason, Event};
use crate::peer::{PeerId, PeerState};
use crate::staging::StagedList;
use crate::tx::Out;
use crate::worker::Worker;

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

/// The port a handed-off packet came from, by its tag.
#[inline]
pub(crate) fn tag_side(tag: u32) -> PortSide {
    if tag & TAG_TUNNEL != 0 {
        PortSide::Tunnel
    } else {
        PortSide::Plaintext
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

impl Worker<'_> {
    /// Sends a plaintext packet for peer `id`, which this worker does not
    /// hold, on: to where it moved, else to the owner the routes name.
    pub(crate) fn send_to_owner(&mut self, id: PeerId, owner: usize, m: Mbuf, fresh: bool) {
        match self.table.moved_to(id) {
            Some(to) => self.forward(to, m, fresh, PortSide::Plaintext),
            None if owner != self.cfg.index => self.hand_off(owner, m, fresh, PortSide::Plaintext),
            None => self.tx.drop_packet(m, DropReason::PeerGone),
        }
    }

    /// Passes a packet on for a peer that moved to worker `to`, even if
    /// it was handed here: it cannot bounce, since a worker forwards only
    /// to where the peer went after it left.
    pub(crate) fn forward(&mut self, to: usize, m: Mbuf, fresh: bool, side: PortSide) {
        if fresh {
            return self.hand_off(to, m, fresh, side);
        }
        if to >= self.cfg.workers || to == self.cfg.index {
            return self.tx.drop_packet(m, DropReason::PeerGone);
        }
        self.counters.add(Event::Forwarded, 1);
        self.tx.emit(Out::Handoff(to), m);
    }

    /// Counts an authenticated packet of peer `id` received by worker
    /// `at`, and asks for a re-home when they keep arriving elsewhere.
    #[inline]
    pub(crate) fn note_arrival(&mut self, id: PeerId, at: usize) {
        let me = self.cfg.index;
        if at == me {
            if let Some(p) = self.table.peer_mut(id) {
                p.arrivals.note(at, me);
            }
            return;
        }
        self.counters.add(Event::ArrivedElsewhere, 1);
        let ask = self
            .table
            .peer_mut(id)
            .and_then(|p| p.arrivals.note(at, me));
        if let Some(to) = ask {
            // Best effort: asked again after as many packets if lost.
            let _ = self.links.events.try_send(WorkerEvent::ArrivesAt(id, to));
        }
    }

    /// Applies a per-peer command for a peer that moved away: sends it on
    /// to the new owner. Returns the command when it is this worker's.
    pub(crate) fn follow_moved(&mut self, cmd: Command, now: Instant) -> Option<Command> {
        let Some(id) = cmd.moving_peer() else {
            return Some(cmd);
        };
        if self.table.owns(id) {
            return Some(cmd);
        }
        let Some(to) = self.table.moved_to(id) else {
            return Some(cmd);
        };
        match &cmd {
            Command::InstallKeypair { keypair, .. } => {
                // Its index names this worker: pass its packets on too.
                self.table.follow_index(keypair.local_index(), to, now);
            }
            Command::RemovePeer { .. } => self.table.forget_moved(id),
            _ => {}
        }
        if let Some(tx) = self.links.to_workers.get(to) {
            let _ = tx.send(cmd);
        }
        None
    }

    /// [`Command::Release`]: hands the peer's state to worker `to`.
    pub(crate) fn release(&mut self, id: PeerId, to: usize, now: Instant) {
        if to == self.cfg.index && self.table.owns(id) {
            // Already here (the control thread missed the first report).
            let _ = self.links.events.try_send(WorkerEvent::Adopted(id, to));
            return;
        }
        if to >= self.cfg.workers || to == self.cfg.index {
            return;
        }
        // Lanes follow the owner: the new one publishes its own.
        self.publish_lanes(id, true);
        let Some(mut state) = self.table.release(id, to, now) else {
            return;
        };
        state.arrivals = Arrivals::default();
        // The staged packets leave this worker's slab with the peer (a
        // re-home is rare: the one allocation is not per packet).
        let mut staged = Vec::with_capacity(state.staged.len());
        while let Some(m) = self.staging.pop(&mut state.staged) {
            staged.push(m);
        }
        self.counters.add(Event::PeersReleased, 1);
        let adopt = Command::Adopt { id, state, staged };
        if let Some(tx) = self.links.to_workers.get(to) {
            // Unbounded: fails only when the workers are stopping, and
            // dropping the command then frees the staged packets.
            let _ = tx.send(adopt);
        }
    }

    /// [`Command::Adopt`]: takes over a peer's state from its old owner.
    pub(crate) fn adopt(
        &mut self,
        id: PeerId,
        mut state: Box<PeerState>,
        staged: Vec<Mbuf>,
        now: Instant,
    ) {
        state.staged = StagedList::default();
        // Built against the old owner's neighbour table.
        state.outer = None;
        for m in staged {
            if let Err(m) = self.staging.push(&mut state.staged, id, m) {
                self.tx.drop_packet(m, DropReason::StagedBudget);
            }
        }
        let staged = !state.staged.is_empty();
        if let Some(mut old) = self.table.adopt(id, state) {
            self.drop_staged(&mut old, DropReason::PeerGone);
        }
        // It owns the peer now: no lane of it here, and lanes of its own.
        self.apply_lane(id, None, now);
        self.publish_lanes(id, false);
        self.counters.add(Event::PeersAdopted, 1);
        let _ = self
            .links
            .events
            .try_send(WorkerEvent::Adopted(id, self.cfg.index));
        if staged {
            self.send_staged(id, now);
        }
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
