//! A worker's index table: the one owner of the peers it holds, the
//! receiver indexes of their keypairs, the lanes it serves for other
//! workers' multi-lane peers (and their keypairs' indexes), and what it
//! remembers of peers that moved away (as wireguard-go's
//! `device/indextable.go` is the one owner of its index map).
//!
//! Invariants kept here and nowhere else:
//! - every local index of a live keypair of a held peer maps to that peer
//!   (`by_index`), and no index of a peer that left or of a retired keypair
//!   does;
//! - every index of a served lane's keypairs maps to the lane's peer
//!   (`lane_index`);
//! - the indexes of a peer that moved away map to its new worker
//!   (`moved_indexes`) for [`MOVED_INDEX_TTL`], and so does the peer itself
//!   (`moved_peers`) until the routes name its new owner.
//!
//! [`IndexTable::route_data`] is the lookup every data message goes
//! through.

use std::time::Duration;

use protocol::constants::REJECT_AFTER_TIME;
use protocol::session::Retired;
use protocol::time::Instant;
use protocol::transport::Keypair;
use rustc_hash::FxHashMap;

use dpdk_sys::rte::{prefetch, Mbuf, BURST_SIZE};

use crate::counters::{DropReason, Event, WorkerCounters};
use crate::lane::Lane;
use crate::peer::{PeerId, PeerState, MAX_STAGED};
use crate::route::{index_owner, RouteTable};
use crate::staging::Staging;

/// How long a worker passes on data messages for the keypairs of a peer
/// that moved away: a keypair is not used for longer than this.
const MOVED_INDEX_TTL: Duration = REJECT_AFTER_TIME;

/// Where a tunnel-port data packet goes, by its receiver index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataRoute {
    /// This worker holds the keypair: the peer's slot.
    Local(PeerId),
    /// A lane of another worker's multi-lane peer holds it: the slot.
    Lane(PeerId),
    /// Hand it to the worker the index's low bits name.
    Owner(usize),
    /// The keypair's peer moved to this worker: pass it on.
    Moved(usize),
    /// Nobody can open it.
    Drop(DropReason),
}

/// What [`IndexTable::install`] did.
pub(crate) struct Installed {
    /// The new keypair is the initiator's (it confirms the session).
    pub(crate) initiator: bool,
    /// The peer has packets staged.
    pub(crate) staged: bool,
}

/// A worker's peers, lanes and receiver indexes.
#[derive(Debug)]
pub(crate) struct IndexTable {
    /// This worker's index.
    me: usize,
    /// Number of workers.
    workers: usize,
    /// By slot; boxed so that a slot this worker does not own costs a
    /// pointer.
    peers: Vec<Option<Box<PeerState>>>,
    by_index: FxHashMap<u32, PeerId>,
    /// Lanes of other workers' multi-lane peers, by slot (see `lane`).
    lanes: Vec<Option<Box<Lane>>>,
    /// Receiver indexes of the keypairs those lanes hold.
    lane_index: FxHashMap<u32, PeerId>,
    /// Peers that moved from this worker, and where to (see `rehome`).
    moved_peers: FxHashMap<PeerId, usize>,
    /// Receiver indexes of peers that moved, where to and since when.
    moved_indexes: FxHashMap<u32, (usize, Instant)>,
}

impl IndexTable {
    /// The empty table of worker `me` of `workers`.
    pub(crate) fn new(me: usize, workers: usize) -> Self {
        Self {
            me,
            workers,
            peers: Vec::new(),
            by_index: FxHashMap::default(),
            lanes: Vec::new(),
            lane_index: FxHashMap::default(),
            moved_peers: FxHashMap::default(),
            moved_indexes: FxHashMap::default(),
        }
    }

    /// Where a data message with receiver index `receiver` goes: this
    /// worker's own keypairs first (a peer adopted here keeps the old
    /// owner in its indexes' low bits), then its lanes, then peers that
    /// moved away, then the owner the low bits name.
    #[inline]
    pub(crate) fn route_data(&self, receiver: u32) -> DataRoute {
        if let Some(&id) = self.by_index.get(&receiver) {
            return DataRoute::Local(id);
        }
        if let Some(&id) = self.lane_index.get(&receiver) {
            return DataRoute::Lane(id);
        }
        if let Some(&(to, _)) = self.moved_indexes.get(&receiver) {
            return DataRoute::Moved(to);
        }
        match index_owner(receiver, self.workers) {
            Some(owner) if owner != self.me => DataRoute::Owner(owner),
            _ => DataRoute::Drop(DropReason::UnknownIndex),
        }
    }

    /// Asks for the state that data messages to `receivers` will read
    /// (a burst's, before it is handled): the peer's slot, then
    /// [`prefetch_peers`](Self::prefetch_peers). A hint: an unknown index
    /// is skipped.
    pub(crate) fn prefetch_routes(&self, receivers: &[Option<u32>]) {
        let mut ids = [None; BURST_SIZE];
        for (id, r) in ids.iter_mut().zip(receivers) {
            *id = r.and_then(|r| self.by_index.get(&r).copied());
            if let Some(slot) = id.and_then(|i| self.peers.get(i as usize)) {
                prefetch((slot as *const Option<Box<PeerState>>).cast());
            }
        }
        self.prefetch_peers(&ids);
    }

    /// Asks for the state that packets of peers `ids` will read (a burst's,
    /// before it is handled): each peer's state, then its current keypair
    /// (counters, replay window). Each step for every peer before the next
    /// step, so that each step's misses overlap across the burst instead
    /// of chaining per packet (a software pipeline). A hint: a peer this
    /// worker does not hold is skipped.
    pub(crate) fn prefetch_peers(&self, ids: &[Option<PeerId>]) {
        for &id in ids.iter().flatten() {
            if let Some(p) = self.peer(id) {
                let at = (p as *const PeerState).cast::<u8>();
                prefetch(at);
                prefetch(at.wrapping_add(64));
            }
        }
        for &id in ids.iter().flatten() {
            if let Some(kp) = self.peer(id).and_then(|p| p.session.current()) {
                let at = (kp as *const Keypair).cast::<u8>();
                prefetch(at);
                prefetch(at.wrapping_add(64));
                prefetch(at.wrapping_add(128));
            }
        }
    }

    /// Whether this worker holds the peer's state.
    #[inline]
    pub(crate) fn owns(&self, id: PeerId) -> bool {
        self.peers.get(id as usize).is_some_and(Option::is_some)
    }

    /// The state of peer `id`, if this worker holds it.
    #[inline]
    pub(crate) fn peer(&self, id: PeerId) -> Option<&PeerState> {
        self.peers
            .get(id as usize)
            .and_then(Option::as_ref)
            .map(Box::as_ref)
    }

    /// The state of peer `id`, if this worker holds it.
    #[inline]
    pub(crate) fn peer_mut(&mut self, id: PeerId) -> Option<&mut PeerState> {
        self.peers
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .map(Box::as_mut)
    }

    /// Takes peer `id`'s new state (`Command::AddPeer`): the peer is this
    /// worker's now, not a moved one. Returns the state it replaces, its
    /// indexes gone from the table.
    pub(crate) fn insert(&mut self, id: PeerId, state: Box<PeerState>) -> Option<Box<PeerState>> {
        let slot = id as usize;
        if self.peers.len() <= slot {
            self.peers.resize_with(slot + 1, || None);
        }
        let old = self.peers[slot].take().map(|old| self.unindex(old));
        self.moved_peers.remove(&id);
        self.peers[slot] = Some(state);
        old
    }

    /// Removes peer `id` (`Command::RemovePeer`); returns its state, its
    /// indexes gone from the table.
    pub(crate) fn remove(&mut self, id: PeerId) -> Option<Box<PeerState>> {
        let old = self.peers.get_mut(id as usize).and_then(Option::take)?;
        Some(self.unindex(old))
    }

    /// Clears a departing peer's session, and its indexes from the table.
    fn unindex(&mut self, mut old: Box<PeerState>) -> Box<PeerState> {
        self.forget(old.session.clear());
        old
    }

    /// Forgets the receiver indexes of keypairs a session retired.
    pub(crate) fn forget(&mut self, retired: Retired) {
        for index in retired.iter() {
            self.by_index.remove(&index);
        }
    }

    /// Installs a new keypair for peer `id` (`Command::InstallKeypair`):
    /// its index maps to the peer, the indexes of the keypairs it retires
    /// do not any more. `None` when the peer is not held here.
    pub(crate) fn install(&mut self, id: PeerId, keypair: Box<Keypair>) -> Option<Installed> {
        let index = keypair.local_index();
        let initiator = keypair.is_initiator();
        let p = self.peers.get_mut(id as usize).and_then(Option::as_mut)?;
        let retired = p.session.install(keypair);
        p.installs += 1;
        p.handshake_asked = None;
        let staged = !p.staged.is_empty();
        p.publish_indexes();
        self.forget(retired);
        self.by_index.insert(index, id);
        Some(Installed { initiator, staged })
    }

    /// Clears peer `id`'s session (`Command::ClearSession`); whether the
    /// peer is held here.
    pub(crate) fn clear_session(&mut self, id: PeerId) -> bool {
        let Some(p) = self.peers.get_mut(id as usize).and_then(Option::as_mut) else {
            return false;
        };
        let retired = p.session.clear();
        p.publish_indexes();
        self.forget(retired);
        true
    }

    /// Stages a packet for peer `id` in `staging` while its handshake
    /// runs: the peer's oldest goes when it has [`MAX_STAGED`]
    /// (`staged_overflow`), the worker's oldest when its budget is spent
    /// (`staged_budget`). The packet back with the reason it is dropped
    /// when it cannot be staged.
    pub(crate) fn stage(
        &mut self,
        staging: &mut Staging<Mbuf>,
        id: PeerId,
        m: Mbuf,
        counters: &WorkerCounters,
    ) -> Result<(), (Mbuf, DropReason)> {
        let Some(peer) = self.peers.get_mut(id as usize).and_then(Option::as_mut) else {
            return Err((m, DropReason::PeerGone));
        };
        if peer.staged.len() >= MAX_STAGED {
            if let Some(old) = staging.pop(&mut peer.staged) {
                counters.count_drop(DropReason::StagedOverflow);
                drop(old);
            }
        }
        if staging.is_full() {
            self.drop_oldest_staged(staging, counters);
        }
        let Some(peer) = self.peers.get_mut(id as usize).and_then(Option::as_mut) else {
            return Err((m, DropReason::PeerGone));
        };
        match staging.push(&mut peer.staged, id, m) {
            Ok(()) => {
                counters.add(Event::Staged, 1);
                Ok(())
            }
            // A budget of zero stages nothing.
            Err(m) => Err((m, DropReason::StagedBudget)),
        }
    }

    /// Frees the oldest packet staged for any peer.
    fn drop_oldest_staged(&mut self, staging: &mut Staging<Mbuf>, counters: &WorkerCounters) {
        let Some(owner) = staging.oldest_owner() else {
            return;
        };
        let Some(peer) = self.peers.get_mut(owner as usize).and_then(Option::as_mut) else {
            return;
        };
        if let Some(old) = staging.pop(&mut peer.staged) {
            counters.count_drop(DropReason::StagedBudget);
            drop(old);
        }
    }

    /// The lane this worker serves for peer `id`, if any.
    #[inline]
    pub(crate) fn lane(&self, id: PeerId) -> Option<&Lane> {
        self.lanes
            .get(id as usize)
            .and_then(Option::as_ref)
            .map(Box::as_ref)
    }

    /// Whether this worker may encrypt for peer `id` as one of its lanes.
    #[inline]
    pub(crate) fn lane_can_send(&self, id: PeerId, now: Instant) -> bool {
        self.lane(id).is_some_and(|l| l.can_send(now))
    }

    /// The lane this worker serves for peer `id`, if any.
    #[inline]
    pub(crate) fn lane_mut(&mut self, id: PeerId) -> Option<&mut Lane> {
        self.lanes
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .map(Box::as_mut)
    }

    /// Takes the lane of peer `id` out of the table, its keypairs' indexes
    /// with it.
    pub(crate) fn take_lane(&mut self, id: PeerId) -> Option<Box<Lane>> {
        let old = self.lanes.get_mut(id as usize).and_then(Option::take)?;
        for index in old.local_indexes() {
            self.lane_index.remove(&index);
        }
        Some(old)
    }

    /// Serves `lane` for peer `id`: its keypairs' indexes map to it.
    pub(crate) fn put_lane(&mut self, id: PeerId, lane: Box<Lane>) {
        for index in lane.local_indexes() {
            self.lane_index.insert(index, id);
        }
        let slot = id as usize;
        if self.lanes.len() <= slot {
            self.lanes.resize_with(slot + 1, || None);
        }
        self.lanes[slot] = Some(lane);
    }

    /// The worker peer `id` moved to from this one, while that is news.
    #[inline]
    pub(crate) fn moved_to(&self, id: PeerId) -> Option<usize> {
        self.moved_peers.get(&id).copied()
    }

    /// A keypair was installed for a peer that moved to `to`: its index
    /// names this worker, so its packets are passed on too.
    pub(crate) fn follow_index(&mut self, index: u32, to: usize, now: Instant) {
        self.moved_indexes.insert(index, (to, now));
    }

    /// A peer that moved away was removed: nothing is passed on for it.
    pub(crate) fn forget_moved(&mut self, id: PeerId) {
        self.moved_peers.remove(&id);
    }

    /// Takes peer `id` out of this worker for worker `to`: its indexes
    /// and itself are passed on to `to` from now on.
    pub(crate) fn release(
        &mut self,
        id: PeerId,
        to: usize,
        now: Instant,
    ) -> Option<Box<PeerState>> {
        let state = self.peers.get_mut(id as usize).and_then(Option::take)?;
        for index in keypair_indexes(&state) {
            self.by_index.remove(&index);
            self.moved_indexes.insert(index, (to, now));
        }
        self.moved_peers.insert(id, to);
        Some(state)
    }

    /// Takes over peer `id`'s state from its old owner; returns the state
    /// it replaces, its indexes gone from the table.
    pub(crate) fn adopt(&mut self, id: PeerId, state: Box<PeerState>) -> Option<Box<PeerState>> {
        let slot = id as usize;
        if self.peers.len() <= slot {
            self.peers.resize_with(slot + 1, || None);
        }
        let old = self.peers[slot].take().map(|old| self.unindex(old));
        for index in keypair_indexes(&state) {
            self.moved_indexes.remove(&index);
            self.by_index.insert(index, id);
        }
        self.moved_peers.remove(&id);
        self.peers[slot] = Some(state);
        old
    }

    /// Drops what this worker remembers of peers that left, once the
    /// routes no longer name it as their owner (the move is published, or
    /// the slot went to another peer): packets then follow the routes.
    /// Passed-on receiver indexes are kept for [`MOVED_INDEX_TTL`].
    pub(crate) fn forget_finished_moves(&mut self, routes: &RouteTable, now: Instant) {
        let me = self.me;
        self.moved_peers
            .retain(|&id, _| routes.owner(id) == Some(me));
        self.moved_indexes
            .retain(|_, (_, at)| !at.has_expired(MOVED_INDEX_TTL, now));
    }
}

/// The local indexes of a peer's live keypairs.
fn keypair_indexes(state: &PeerState) -> impl Iterator<Item = u32> + '_ {
    let s = &state.session;
    [s.previous(), s.current(), s.next()]
        .into_iter()
        .flatten()
        .map(|k| k.local_index())
}
