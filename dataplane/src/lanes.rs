//! Multi-lane peers: a peer marked `lanes = N` is encrypted and decrypted
//! by N workers at once (its owner and the N - 1 workers after it), each
//! sending from its own outer UDP source port. See docs/lanes.md.
//!
//! The owner keeps everything that changes state: handshakes and timers,
//! keypair rotation, promotion of the responder's `next` keypair, staging,
//! the endpoint. Its keypairs are shared ([`Keypair::into_lanes`]): the
//! keys are read-only, the send counter is reserved in blocks, the replay
//! window takes concurrent writers ([`protocol::lanes`]).
//!
//! # Publication (RCU by message passing)
//!
//! Whenever what a lane needs changes (a keypair installed, promoted or
//! cleared, the endpoint moved, the peer released or removed) the owner
//! sends each lane worker a [`Command::Lane`] with a fresh [`LanePublish`]:
//! `Arc`s of the current (send and receive) and previous (receive) shared
//! keypairs and the endpoint. A lane worker applies it between bursts, as
//! it applies a new routing table, and drops its old copy there: the
//! fast path reads its own `Arc`s without a lock or an atomic, and a
//! keypair's keys are wiped when the last worker drops it. Commands from
//! one owner arrive in order; when a peer moves, the old owner's last
//! publication (which withdraws the lane) is sent before the peer's state,
//! so it reaches each worker before the new owner's first.
//!
//! A lane worker never promotes a keypair: packets for the owner's `next`
//! keypair are not in its index and go to the owner, which promotes and
//! republishes. A lane worker that wants a handshake on send asks the
//! control thread at most every 100 ms, as the owner does; on receive
//! (an initiator's key near REJECT_AFTER_TIME) it asks once per key, as
//! the kernel's `keep_key_fresh` does. A new endpoint (address or port)
//! seen by a lane worker is sent to the owner as [`Command::SetEndpoint`]
//! and to the control thread, at most every
//! [`ENDPOINT_CHANGE_EVERY`](crate::peer::ENDPOINT_CHANGE_EVERY).
//!
//! Timestamps and byte counts a lane worker adds to the peer's
//! [`PeerShared`] are tallied per round and published once per round
//! ([`Worker::flush_lanes`]): no shared cache line is written per packet.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::constants::REKEY_ON_RECEIVE_AGE;
use protocol::lanes::SendBlock;
use protocol::time::Instant;
use protocol::transport::{Keypair, LaneKeypair};

use crate::command::{Command, WorkerEvent};
use crate::counters::DropReason;
use crate::peer::{PeerId, PeerShared, ENDPOINT_CHANGE_EVERY};
use crate::worker::Worker;

/// What the owner of a multi-lane peer gives its lane workers.
#[derive(Debug, Clone)]
pub struct LanePublish {
    /// The peer's published state (timestamps, byte counts).
    pub shared: Arc<PeerShared>,
    /// The current keypair: sends, and receives.
    pub current: Option<Arc<LaneKeypair>>,
    /// The previous keypair: receives in-flight packets.
    pub previous: Option<Arc<LaneKeypair>>,
    /// Where to send.
    pub endpoint: Option<SocketAddr>,
}

/// Activity of a lane worker for one peer since the last flush.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    tx_bytes: u64,
    rx_bytes: u64,
    data_sent: bool,
    data_received: bool,
    auth_sent: bool,
    auth_received: bool,
}

/// A lane worker's copy of another worker's multi-lane peer.
#[derive(Debug)]
pub struct Lane {
    publish: LanePublish,
    /// This worker's reserved send counters of `publish.current`.
    block: SendBlock,
    /// When this worker last asked for a handshake for the peer.
    handshake_asked: Option<Instant>,
    /// It asked for the last-minute handshake of `publish.current`
    /// (kernel `sent_lastminute_handshake`): once per key.
    lastminute_asked: bool,
    /// The endpoint this worker last saw or told the owner about.
    seen_endpoint: Option<SocketAddr>,
    /// When it last told the owner about a new endpoint.
    endpoint_told: Option<Instant>,
    tally: Tally,
}

/// The workers after `owner` that serve a peer with `lanes` lanes.
pub fn lane_workers(owner: usize, lanes: u16, workers: usize) -> impl Iterator<Item = usize> {
    let n = usize::from(lanes).min(workers.max(1));
    (1..n).map(move |k| (owner + k) % workers.max(1))
}

/// The shared half of a session slot's keypair.
fn shared(kp: Option<&Keypair>) -> Option<Arc<LaneKeypair>> {
    kp.and_then(Keypair::lanes).cloned()
}

/// How long a lane worker waits between handshake requests for one peer.
const ASK_EVERY: Duration = Duration::from_millis(100);

/// How often at most the owner republishes a multi-lane peer's lanes for a
/// new endpoint alone.
pub const LANE_ROAM_EVERY: Duration = Duration::from_secs(1);

impl Lane {
    /// A lane as first published.
    fn new(publish: LanePublish) -> Self {
        Self {
            seen_endpoint: publish.endpoint,
            publish,
            block: SendBlock::default(),
            handshake_asked: None,
            lastminute_asked: false,
            endpoint_told: None,
            tally: Tally::default(),
        }
    }

    /// Takes the owner's new publication; a new current key starts afresh
    /// (its own counters, its own handshake requests).
    fn republish(&mut self, publish: LanePublish) {
        let same_key = match (&self.publish.current, &publish.current) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if !same_key {
            self.block = SendBlock::default();
            self.handshake_asked = None;
            self.lastminute_asked = false;
        }
        self.seen_endpoint = publish.endpoint;
        self.publish = publish;
    }

    /// The local (receiver) indexes of the keypairs this lane holds.
    pub(crate) fn local_indexes(&self) -> impl Iterator<Item = u32> + '_ {
        [&self.publish.current, &self.publish.previous]
            .into_iter()
            .flatten()
            .map(|kp| kp.local_index())
    }

    /// The keypair a receiver index names, if this lane holds it.
    #[inline]
    pub(crate) fn keypair(&self, index: u32) -> Option<&LaneKeypair> {
        [&self.publish.current, &self.publish.previous]
            .into_iter()
            .flatten()
            .map(Arc::as_ref)
            .find(|k| k.local_index() == index)
    }

    /// Whether it may send now.
    #[inline]
    pub(crate) fn can_send(&self, now: Instant) -> bool {
        self.publish.endpoint.is_some()
            && self
                .publish
                .current
                .as_deref()
                .is_some_and(|k| k.can_send(&self.block, now))
    }

    /// Whether to ask for a handshake because the current key, ours as
    /// initiator, nears REJECT_AFTER_TIME (REKEY_ON_RECEIVE_AGE): true
    /// once per key (kernel `receive.c: keep_key_fresh`), so that the
    /// requests do not keep resetting the handshake's attempt count.
    pub(crate) fn rekey_on_receive(&mut self, now: Instant) -> bool {
        let stale =
            self.publish.current.as_deref().is_some_and(|k| {
                k.is_initiator() && k.birth().has_expired(REKEY_ON_RECEIVE_AGE, now)
            });
        let ask = stale && !self.lastminute_asked;
        self.lastminute_asked |= ask;
        ask
    }

    /// Notes an authenticated packet from `src`: whether to tell the owner
    /// about a new endpoint now. Any change counts, address or port (a NAT
    /// rebinding keeps the address); a far end that alternates ports (a
    /// multi-lane one) is reported at most every [`ENDPOINT_CHANGE_EVERY`].
    pub(crate) fn endpoint_moved(&mut self, src: SocketAddr, now: Instant) -> bool {
        let moved = self.seen_endpoint != Some(src)
            && self
                .endpoint_told
                .is_none_or(|t| t.has_expired(ENDPOINT_CHANGE_EVERY, now));
        if moved {
            self.seen_endpoint = Some(src);
            self.endpoint_told = Some(now);
        }
        moved
    }

    fn due(&mut self, now: Instant) -> bool {
        let due = self
            .handshake_asked
            .is_none_or(|t| now.saturating_since(t) >= ASK_EVERY);
        if due {
            self.handshake_asked = Some(now);
        }
        due
    }
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
                Self::publish_tally(&old.publish.shared, old.tally, now);
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
    /// current keypair. Returns (receiver index, counter, endpoint,
    /// rekey wanted).
    #[inline]
    pub(crate) fn lane_seal(
        &mut self,
        id: PeerId,
        now: Instant,
        payload: &mut [u8],
        tag: &mut [u8; protocol::constants::AEAD_TAG_LEN],
    ) -> Result<(u32, u64, SocketAddr, bool), DropReason> {
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
        Ok((kp.remote_index(), counter, endpoint, rekey))
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
        let fresh = Self::mark(&mut lane.tally);
        lane.tally.tx_bytes += len;
        lane.tally.auth_sent = true;
        lane.tally.data_sent |= data;
        let ask = rekey && lane.due(now);
        if fresh {
            self.dirty_lane(id, now);
        }
        if ask {
            let _ = self.links.events.try_send(WorkerEvent::WantHandshake(id));
        }
    }

    /// Tallies an authenticated packet a lane received from `src`: tells
    /// the owner and the control thread about a new endpoint and asks for
    /// a handshake when an initiator's key is getting old (kernel
    /// `receive.c: keep_key_fresh`).
    pub(crate) fn lane_received(&mut self, id: PeerId, len: u64, src: SocketAddr, now: Instant) {
        let owner = self.routes.owner(id);
        let Some(lane) = self.table.lane_mut(id) else {
            return;
        };
        let fresh = Self::mark(&mut lane.tally);
        lane.tally.rx_bytes += len;
        lane.tally.auth_received = true;
        let ask = lane.rekey_on_receive(now);
        let moved = lane.endpoint_moved(src, now);
        if fresh {
            self.dirty_lane(id, now);
        }
        if ask {
            let _ = self.links.events.try_send(WorkerEvent::WantHandshake(id));
        }
        if moved {
            // Best effort, as the owner's own report: the control thread
            // sends its handshakes there.
            let _ = self
                .links
                .events
                .try_send(WorkerEvent::EndpointChanged(id, src));
            if let Some(tx) = owner.and_then(|o| self.links.to_workers.get(o)) {
                // Lane workers send from the port's default source.
                let _ = tx.send(Command::SetEndpoint {
                    id,
                    endpoint: src,
                    local: None,
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

    /// Whether the tally was empty (the lane is not yet on the dirty list).
    fn mark(tally: &mut Tally) -> bool {
        !(tally.auth_sent || tally.auth_received)
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
                Self::publish_tally(&lane.publish.shared, t, now);
            }
        }
    }

    fn publish_tally(shared: &PeerShared, t: Tally, now: Instant) {
        shared.add_lane_bytes(t.tx_bytes, t.rx_bytes);
        if t.auth_sent {
            shared.auth_sent.set(now);
        }
        if t.data_sent {
            shared.data_sent.set(now);
        }
        if t.auth_received {
            shared.auth_received.set(now);
        }
        if t.data_received {
            shared.data_received.set(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::constants::REJECT_AFTER_TIME;

    fn publish(initiator: bool, endpoint: &str) -> LanePublish {
        let kp = Keypair::from_raw_keys([1; 32], [2; 32], 5, 6, Instant::ZERO, initiator);
        LanePublish {
            shared: Arc::default(),
            current: shared(Some(&kp.into_lanes())),
            previous: None,
            endpoint: Some(endpoint.parse().expect("endpoint")),
        }
    }

    #[test]
    fn a_lane_asks_for_the_receive_rekey_once_per_key() {
        let mut lane = Lane::new(publish(true, "192.0.2.1:51820"));
        let at = |ms: u64| Instant::from_millis(ms);
        assert!(!lane.rekey_on_receive(at(164_999)), "young key");
        assert!(lane.rekey_on_receive(at(165_000)), "REKEY_ON_RECEIVE_AGE");
        let reject = REJECT_AFTER_TIME.as_millis() as u64;
        let again = (165_001..reject)
            .step_by(10)
            .filter(|&ms| lane.rekey_on_receive(at(ms)));
        assert_eq!(again.count(), 0, "not every 100 ms until the key dies");
        // The same key republished (a new endpoint): still asked.
        lane.republish(LanePublish {
            endpoint: Some("192.0.2.1:9".parse().expect("endpoint")),
            ..lane.publish.clone()
        });
        assert!(!lane.rekey_on_receive(at(170_000)));
        // A new key (born at 0 too, so already old): asked once more.
        lane.republish(publish(true, "192.0.2.1:51820"));
        assert!(lane.rekey_on_receive(at(170_000)));
        assert!(!lane.rekey_on_receive(at(170_100)));
        // A key we responded for: never (the initiator rekeys).
        let mut responder = Lane::new(publish(false, "192.0.2.1:51820"));
        assert!(!responder.rekey_on_receive(at(170_000)));
    }

    #[test]
    fn a_lane_reports_a_port_change_and_a_flapping_one_once_a_second() {
        let mut lane = Lane::new(publish(true, "192.0.2.1:51820"));
        let t0 = Instant::from_secs(10);
        let addr = |s: &str| -> SocketAddr { s.parse().expect("addr") };
        assert!(
            !lane.endpoint_moved(addr("192.0.2.1:51820"), t0),
            "as published"
        );
        assert!(
            lane.endpoint_moved(addr("192.0.2.1:40000"), t0),
            "a NAT rebinding keeps the address, changes the port"
        );
        assert!(!lane.endpoint_moved(addr("192.0.2.1:40000"), t0), "seen");
        // A far end alternating ports for 3.5 s: one report a second.
        let reports = (0..3500u64)
            .filter(|&ms| {
                let port = if ms % 2 == 0 { 40001 } else { 40002 };
                let src = SocketAddr::new(addr("192.0.2.1:1").ip(), port);
                lane.endpoint_moved(src, t0 + Duration::from_millis(ms + 1))
            })
            .count();
        assert_eq!(reports, 3, "about 1 s, 2 s and 3 s after the first report");
        // A new address after a quiet second: at once.
        let later = t0 + Duration::from_secs(10);
        assert!(lane.endpoint_moved(addr("198.51.100.7:51820"), later));
    }

    #[test]
    fn lane_workers_follow_the_owner() {
        assert_eq!(lane_workers(0, 2, 2).collect::<Vec<_>>(), vec![1]);
        assert_eq!(lane_workers(1, 2, 2).collect::<Vec<_>>(), vec![0]);
        assert_eq!(lane_workers(2, 3, 4).collect::<Vec<_>>(), vec![3, 0]);
        assert_eq!(lane_workers(0, 1, 4).count(), 0);
        assert_eq!(lane_workers(0, 8, 2).collect::<Vec<_>>(), vec![1], "capped");
    }
}
