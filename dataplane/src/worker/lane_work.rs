//! The lanes a worker serves (see [`crate::lane`]): the owner publishes
//! a multi-lane peer's keypairs to its lane workers, and each lane worker
//! seals with its own block of counters and tallies what it did.

use std::net::{IpAddr, SocketAddr};

use protocol::time::Instant;

use super::receive::MessageAt;
use super::Worker;
use crate::command::{Command, WorkerEvent};
use crate::counters::DropReason;
use crate::lane::{lane_workers, shared, Lane, LanePublish, Tally};
use crate::peer::PeerId;

/// What [`Worker::lane_seal`] made of a packet: the data message's header
/// fields and where it goes (whitepaper section 5.4.6).
pub(crate) struct LaneSealed {
    /// The peer's index for the keypair: the message's receiver field.
    pub(crate) receiver: u32,
    /// The nonce counter the packet was sealed with, from the lane's block.
    pub(crate) counter: u64,
    /// The peer's endpoint, as the owner published it.
    pub(crate) endpoint: SocketAddr,
    /// Our address the peer last reached, to send from (`None`: the
    /// port's default source).
    pub(crate) local: Option<IpAddr>,
    /// The keypair wants a new handshake (REKEY_AFTER_MESSAGES or, for an
    /// initiator, REKEY_AFTER_TIME; kernel `send.c: keep_key_fresh`).
    pub(crate) rekey: bool,
}

impl Worker<'_> {
    /// Owner: sends the lane workers of peer `id` what they need now (or
    /// withdraws the lanes when `withdraw`). A no-op for a single-lane peer.
    pub(crate) fn publish_lanes(&mut self, id: PeerId, withdraw: bool) {
        let Some(p) = self.table.peer(id) else {
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
        for w in lane_workers(self.cfg.index, p.lanes, self.cfg.workers) {
            if let Some(tx) = self.links.to_workers.get(w) {
                // Unbounded; fails only when the workers are stopping.
                let _ = tx.send(Command::Lane {
                    id,
                    lane: publish.clone(),
                });
            }
        }
    }

    /// [`Command::Lane`]: takes (or drops) a lane of another worker's peer.
    pub(crate) fn apply_lane(
        &mut self,
        id: PeerId,
        publish: Option<Box<LanePublish>>,
        now: Instant,
    ) {
        let old = self.table.take_lane(id);
        match (publish, old) {
            (Some(publish), old) => self.take_lane(id, *publish, old),
            (None, Some(old)) => {
                // Withdrawn: what it did this round still counts.
                Tally::publish(&old.publish.shared, old.tally, now);
                self.lane_dirty.retain(|&d| d != id);
            }
            (None, None) => {}
        }
    }

    fn take_lane(&mut self, id: PeerId, publish: LanePublish, old: Option<Box<Lane>>) {
        if self.table.owns(id) {
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
        self.table.put_lane(id, lane);
    }

    /// Whether this worker may encrypt for peer `id` as one of its lanes.
    #[inline]
    pub(crate) fn lane_can_send(&self, id: PeerId, now: Instant) -> bool {
        self.table.lane(id).is_some_and(|l| l.can_send(now))
    }

    /// Seals `payload` (tag separate) for peer `id` with the lane's
    /// current keypair.
    #[inline]
    pub(crate) fn lane_seal(
        &mut self,
        id: PeerId,
        now: Instant,
        payload: &mut [u8],
        tag: &mut [u8; protocol::constants::AEAD_TAG_LEN],
    ) -> Result<LaneSealed, DropReason> {
        let lane = self.table.lane_mut(id).ok_or(DropReason::SealFailed)?;
        let endpoint = lane.publish.endpoint.ok_or(DropReason::SealFailed)?;
        let kp = lane
            .publish
            .current
            .as_deref()
            .ok_or(DropReason::SealFailed)?;
        let counter = kp
            .seal(&mut lane.block, now, payload, tag)
            .map_err(DropReason::from)?;
        let rekey = kp.needs_rekey_on_send(&lane.block, now);
        Ok(LaneSealed {
            receiver: kp.remote_index(),
            counter,
            endpoint,
            local: lane.publish.local,
            rekey,
        })
    }

    /// Tallies a packet a lane sent (`len`: message bytes, `data`: not a
    /// keepalive), asks for a handshake when the keypair wants one.
    pub(crate) fn lane_sent(
        &mut self,
        id: PeerId,
        len: u64,
        data: bool,
        rekey: bool,
        now: Instant,
    ) {
        let Some(lane) = self.table.lane_mut(id) else {
            return;
        };
        let fresh = Tally::mark(&mut lane.tally);
        lane.tally.tx_bytes += len;
        lane.tally.auth_sent = true;
        lane.tally.data_sent |= data;
        let ask = rekey && lane.due(now);
        if fresh {
            self.dirty_lane(id, now);
        }
        if ask {
            self.ask_control_for_handshake(id);
        }
    }

    /// Tallies an authenticated packet a lane received (`wg`: from where,
    /// to which of our addresses): tells the owner and the control thread
    /// about a new endpoint or our other address reached, and asks for a
    /// handshake when an initiator's key is getting old (kernel
    /// `receive.c: keep_key_fresh`).
    pub(crate) fn lane_received(&mut self, id: PeerId, len: u64, wg: &MessageAt, now: Instant) {
        let owner = self.routes.owner(id);
        let Some(lane) = self.table.lane_mut(id) else {
            return;
        };
        let fresh = Tally::mark(&mut lane.tally);
        lane.tally.rx_bytes += len;
        lane.tally.auth_received = true;
        let ask = lane.rekey_on_receive(now);
        let tun = &self.nets.tun;
        let moved = lane.endpoint_moved(wg.src, wg.dst, || tun.source_for(wg.src.ip()), now);
        if fresh {
            self.dirty_lane(id, now);
        }
        if ask {
            self.ask_control_for_handshake(id);
        }
        if let Some((endpoint, local)) = moved {
            // Best effort, as the owner's own report: the control thread
            // sends its handshakes there, from `local`.
            let _ = self
                .links
                .events
                .try_send(WorkerEvent::EndpointChanged(id, endpoint, local));
            if let Some(tx) = owner.and_then(|o| self.links.to_workers.get(o)) {
                // The owner sends from `local` and republishes it to every
                // lane, this one included.
                let _ = tx.send(Command::SetEndpoint {
                    id,
                    endpoint,
                    local: Some(local),
                });
            }
        }
    }

    /// Notes that a lane delivered a data (not keepalive) packet.
    pub(crate) fn lane_data_received(&mut self, id: PeerId) {
        if let Some(lane) = self.table.lane_mut(id) {
            lane.tally.data_received = true;
        }
    }

    fn dirty_lane(&mut self, id: PeerId, now: Instant) {
        if self.lane_dirty.len() == self.lane_dirty.capacity() {
            // Never grows on the fast path: publish what is there first.
            self.flush_lanes(now);
        }
        self.lane_dirty.push(id);
    }

    /// Publishes the tallies of the lanes that were active this round.
    pub(crate) fn flush_lanes(&mut self, now: Instant) {
        while let Some(id) = self.lane_dirty.pop() {
            if let Some(lane) = self.table.lane_mut(id) {
                let t = std::mem::take(&mut lane.tally);
                Tally::publish(&lane.publish.shared, t, now);
            }
        }
    }
}
