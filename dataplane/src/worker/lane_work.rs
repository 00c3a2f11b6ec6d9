//! The lanes a worker serves (see [`crate::lane`]), as a component of the
//! worker: the owner publishes a multi-lane peer's keypairs to its lane
//! workers; each lane worker takes (or drops) the lanes published to it,
//! seals with its own block of counters ([`crate::lane::Lane::seal`]) and
//! tallies what it did, publishing the tallies once per round.
//!
//! Its methods take the worker's [`IndexTable`] (which holds the lanes)
//! and return what the worker must do next: ask the control thread for a
//! handshake, or tell the owner about a new endpoint.

use std::net::{IpAddr, SocketAddr};

use crossbeam_channel::Sender;
use protocol::time::Instant;

use crate::command::Command;
use crate::index_table::IndexTable;
use crate::lane::{lane_workers, shared, Lane, LanePublish, Tally};
use crate::peer::PeerId;
use crate::route::PortNet;

/// Lanes whose activity a worker tallies before it publishes them.
const LANE_DIRTY_MAX: usize = 256;

/// What a lane made of an authenticated packet it received
/// ([`LaneWork::received`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaneReceived {
    /// Ask the control thread for a handshake: an initiator's key is
    /// getting old (kernel `receive.c: keep_key_fresh`).
    pub(crate) ask_handshake: bool,
    /// The endpoint and our address to tell the owner and the control
    /// thread about (roaming, or our other address reached).
    pub(crate) moved: Option<(SocketAddr, IpAddr)>,
}

/// A worker's lane duties: publishing its own multi-lane peers, and the
/// tallies of the lanes it serves for other workers' peers.
#[derive(Debug)]
pub(crate) struct LaneWork {
    /// This worker's index.
    me: usize,
    /// Number of workers.
    workers: usize,
    /// Lanes with activity to publish at the end of the round.
    dirty: Vec<PeerId>,
}

impl LaneWork {
    /// Worker `me` of `workers`, serving no lane yet.
    pub(crate) fn new(me: usize, workers: usize) -> Self {
        Self {
            me,
            workers,
            dirty: Vec::with_capacity(LANE_DIRTY_MAX),
        }
    }

    /// Owner: sends the lane workers of peer `id` what they need now (or
    /// withdraws the lanes when `withdraw`), through `to_workers` (every
    /// worker's command channel). A no-op for a single-lane peer.
    pub(crate) fn publish(
        &self,
        table: &IndexTable,
        id: PeerId,
        withdraw: bool,
        to_workers: &[Sender<Command>],
    ) {
        let Some(p) = table.peer(id) else {
            return;
        };
        if p.lanes <= 1 {
            return;
        }
        let publish = (!withdraw).then(|| {
            Box::new(LanePublish {
                shared: p.shared.clone(),
                current: shared(p.session.current()),
                previous: shared(p.session.previous()),
                endpoint: p.endpoint,
                local: p.local,
            })
        });
        for w in lane_workers(self.me, p.lanes, self.workers) {
            if let Some(tx) = to_workers.get(w) {
                // Unbounded; fails only when the workers are stopping.
                let _ = tx.send(Command::Lane {
                    id,
                    lane: publish.clone(),
                });
            }
        }
    }

    /// [`Command::Lane`]: takes (or drops) a lane of another worker's peer.
    pub(crate) fn apply(
        &mut self,
        table: &mut IndexTable,
        id: PeerId,
        publish: Option<Box<LanePublish>>,
        now: Instant,
    ) {
        let old = table.take_lane(id);
        match (publish, old) {
            (Some(publish), old) => take_lane(table, id, *publish, old),
            (None, Some(old)) => {
                // Withdrawn: what it did this round still counts.
                Tally::publish(&old.publish.shared, old.tally, now);
                self.dirty.retain(|&d| d != id);
            }
            (None, None) => {}
        }
    }

    /// Tallies a packet a lane sent (`len`: message bytes, `data`: not a
    /// keepalive). Returns whether to ask the control thread for a
    /// handshake: the keypair wants one (`rekey`) and the lane has not
    /// asked lately.
    pub(crate) fn sent(
        &mut self,
        table: &mut IndexTable,
        id: PeerId,
        len: u64,
        data: bool,
        rekey: bool,
        now: Instant,
    ) -> bool {
        let Some(lane) = table.lane_mut(id) else {
            return false;
        };
        let fresh = Tally::mark(&mut lane.tally);
        lane.tally.tx_bytes += len;
        lane.tally.auth_sent = true;
        lane.tally.data_sent |= data;
        let ask = rekey && lane.due(now);
        if fresh {
            self.dirty_lane(table, id, now);
        }
        ask
    }

    /// Tallies an authenticated packet a lane received (`len`: message
    /// bytes) from `src` to our address `dst` (`tun`: the tunnel port, for
    /// its default source): whether to ask for a handshake, and the new
    /// endpoint or our other address reached, if any.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn received(
        &mut self,
        table: &mut IndexTable,
        id: PeerId,
        len: u64,
        src: SocketAddr,
        dst: IpAddr,
        tun: &PortNet,
        now: Instant,
    ) -> LaneReceived {
        let Some(lane) = table.lane_mut(id) else {
            return LaneReceived::default();
        };
        let fresh = Tally::mark(&mut lane.tally);
        lane.tally.rx_bytes += len;
        lane.tally.auth_received = true;
        let ask_handshake = lane.rekey_on_receive(now);
        let moved = lane.endpoint_moved(src, dst, || tun.source_for(src.ip()), now);
        if fresh {
            self.dirty_lane(table, id, now);
        }
        LaneReceived {
            ask_handshake,
            moved,
        }
    }

    fn dirty_lane(&mut self, table: &mut IndexTable, id: PeerId, now: Instant) {
        if self.dirty.len() == self.dirty.capacity() {
            // Never grows on the fast path: publish what is there first.
            self.flush(table, now);
        }
        self.dirty.push(id);
    }

    /// Publishes the tallies of the lanes that were active this round.
    pub(crate) fn flush(&mut self, table: &mut IndexTable, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            if let Some(lane) = table.lane_mut(id) {
                let t = std::mem::take(&mut lane.tally);
                Tally::publish(&lane.publish.shared, t, now);
            }
        }
    }
}

/// Puts a lane of peer `id` (published `publish`; `old`: the one it
/// replaces) into the table.
fn take_lane(table: &mut IndexTable, id: PeerId, publish: LanePublish, old: Option<Box<Lane>>) {
    if table.owns(id) {
        // A stale publication racing a move here: this worker is the
        // owner now and uses its own keypairs.
        return;
    }
    let lane = match old {
        Some(mut lane) => {
            lane.republish(publish);
            lane
        }
        None => Box::new(Lane::new(publish)),
    };
    table.put_lane(id, lane);
}
