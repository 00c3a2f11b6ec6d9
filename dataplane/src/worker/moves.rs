//! Re-homing on the worker (see [`crate::rehome`]): packets for peers
//! this worker does not hold go to their owner or follow a peer that
//! moved; arrivals elsewhere ask for a move; `Release` and `Adopt` carry
//! a peer's state between workers.

use dpdk_sys::rte::Mbuf;
use protocol::time::Instant;

use super::Worker;
use crate::command::{Command, PortSide, WorkerEvent};
use crate::counters::{DropReason, Event};
use crate::peer::{PeerId, PeerState};
use crate::rehome::{Arrivals, Via};
use crate::staging::StagedList;
use crate::tx::Out;

impl Worker<'_> {
    /// Sends a plaintext packet for peer `id`, which this worker does not
    /// hold, on: to where it moved, else to the owner the routes name.
    pub(crate) fn send_to_owner(&mut self, id: PeerId, owner: usize, m: Mbuf, via: Via) {
        match self.table.moved_to(id) {
            Some(to) => self.forward(to, m, via, PortSide::Plaintext),
            None if owner != self.cfg.index => self.hand_off(owner, m, via, PortSide::Plaintext),
            None => self.tx.drop_packet(m, DropReason::PeerGone),
        }
    }

    /// Passes a packet on for a peer that moved to worker `to`, even if
    /// it was handed here: it cannot bounce, since a worker forwards only
    /// to where the peer went after it left.
    pub(crate) fn forward(&mut self, to: usize, m: Mbuf, via: Via, side: PortSide) {
        if via == Via::OwnQueue {
            return self.hand_off(to, m, via, side);
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
