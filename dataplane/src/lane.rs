//! Multi-lane peers: a peer marked `lanes = N` is encrypted and decrypted
//! by N workers at once (its owner and the N - 1 workers after it), each
//! sending from its own outer UDP source port. See docs/lanes.md.
//!
//! The owner keeps everything that changes state: handshakes and timers,
//! keypair rotation, promotion of the responder's `next` keypair, staging,
//! the endpoint. Its keypairs are shared ([`Keypair::into_lanes`]): the
//! keys are read-only, the send counter is reserved in blocks
//! ([`protocol::send_block`]), the replay window takes concurrent writers
//! ([`protocol::shared_replay`]).
//!
//! # Publication (RCU by message passing)
//!
//! Whenever what a lane needs changes (a keypair installed, promoted or
//! cleared, the endpoint moved, the peer released or removed) the owner
//! sends each lane worker a [`Command::Lane`] with a fresh [`LanePublish`]:
//! `Arc`s of the current (send and receive) and previous (receive) shared
//! keypairs, the endpoint and our address it reached (which the lane
//! worker sends from, as the owner does). A lane worker applies it between bursts, as
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
//! the kernel's `keep_key_fresh` does. A new endpoint (address or port),
//! or a packet to another of our addresses, seen by a lane worker is sent
//! to the owner as [`Command::SetEndpoint`] (with our address it reached)
//! and to the control thread, at most every
//! [`ENDPOINT_CHANGE_EVERY`](crate::peer::ENDPOINT_CHANGE_EVERY); the
//! owner republishes, so every lane then sends from that address.
//!
//! Timestamps and byte counts a lane worker adds to the peer's
//! [`PeerShared`] are tallied per round and published once per round
//! (`LaneWork::flush`, worker/lane_work.rs): no shared cache line is
//! written per packet.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use protocol::constants::REKEY_ON_RECEIVE_AGE;
use protocol::send_block::SendBlock;
use protocol::time::Instant;
use protocol::transport::{Keypair, LaneKeypair};

use crate::counters::DropReason;
use crate::peer::{PeerShared, ENDPOINT_CHANGE_EVERY};
use crate::seal_batch::SealBatch;

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
    /// Our address the peer last reached (the owner's
    /// `PeerState::local`): lane packets leave from there; `None`: the
    /// port's default source.
    pub local: Option<IpAddr>,
}

/// Activity of a lane worker for one peer since the last flush.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) tx_bytes: u64,
    pub(crate) rx_bytes: u64,
    pub(crate) data_sent: bool,
    pub(crate) data_received: bool,
    pub(crate) auth_sent: bool,
    pub(crate) auth_received: bool,
}

/// A lane worker's copy of another worker's multi-lane peer.
#[derive(Debug)]
pub struct Lane {
    pub(crate) publish: LanePublish,
    /// This worker's reserved send counters of `publish.current`.
    pub(crate) block: SendBlock,
    /// When this worker last asked for a handshake for the peer.
    pub(crate) handshake_asked: Option<Instant>,
    /// It asked for the last-minute handshake of `publish.current`
    /// (kernel `sent_lastminute_handshake`): once per key.
    pub(crate) lastminute_asked: bool,
    /// The endpoint this worker last saw or told the owner about.
    pub(crate) seen_endpoint: Option<SocketAddr>,
    /// Our address the peer's packets last reached, as this worker last
    /// saw it or told the owner about it.
    pub(crate) seen_local: Option<IpAddr>,
    /// When it last told the owner about a new endpoint.
    pub(crate) endpoint_told: Option<Instant>,
    /// When it last told the owner about our other address reached.
    pub(crate) local_told: Option<Instant>,
    pub(crate) tally: Tally,
}

/// What a send key (the owner's session or [`Lane::seal`]) made of a
/// packet: the data message's header fields and where it goes (whitepaper
/// section 5.4.6).
pub(crate) struct Sealed {
    /// The peer's index for the keypair: the message's receiver field.
    pub(crate) receiver: u32,
    /// The nonce counter the packet was sealed with (a lane's: from its
    /// block).
    pub(crate) counter: u64,
    /// The peer's endpoint (a lane's: as the owner published it).
    pub(crate) endpoint: SocketAddr,
    /// Our address the peer last reached, to send from (`None`: the
    /// port's default source).
    pub(crate) local: Option<IpAddr>,
    /// The keypair wants a new handshake (REKEY_AFTER_MESSAGES or, for an
    /// initiator, REKEY_AFTER_TIME; kernel `send.c: keep_key_fresh`).
    pub(crate) rekey: bool,
}

impl Tally {
    /// Whether the tally was empty (the lane is not yet on the dirty list).
    pub(crate) fn mark(tally: &mut Tally) -> bool {
        !(tally.auth_sent || tally.auth_received)
    }

    /// Adds a tally to the peer's shared stats.
    pub(crate) fn publish(shared: &PeerShared, t: Tally, now: Instant) {
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

/// The workers after `owner` that serve a peer with `lanes` lanes.
pub fn lane_workers(owner: usize, lanes: u16, workers: usize) -> impl Iterator<Item = usize> {
    let n = usize::from(lanes).min(workers.max(1));
    (1..n).map(move |k| (owner + k) % workers.max(1))
}

/// The shared half of a session slot's keypair.
pub(crate) fn shared(kp: Option<&Keypair>) -> Option<Arc<LaneKeypair>> {
    kp.and_then(Keypair::lanes).cloned()
}

/// How long a lane worker waits between handshake requests for one peer.
const ASK_EVERY: Duration = Duration::from_millis(100);

impl Lane {
    /// A lane as first published.
    pub(crate) fn new(publish: LanePublish) -> Self {
        Self {
            seen_endpoint: publish.endpoint,
            seen_local: publish.local,
            publish,
            block: SendBlock::default(),
            handshake_asked: None,
            lastminute_asked: false,
            endpoint_told: None,
            local_told: None,
            tally: Tally::default(),
        }
    }

    /// Takes the owner's new publication; a new current key starts afresh
    /// (its own counters, its own handshake requests).
    pub(crate) fn republish(&mut self, publish: LanePublish) {
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
        self.seen_local = publish.local;
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

    /// Seals `payload` (tag separate) with the lane's current keypair,
    /// from its own block of counters (whitepaper section 5.4.6), through
    /// `batch` (at once, or in the burst's pass).
    #[inline]
    pub(crate) fn seal(
        &mut self,
        now: Instant,
        payload: &mut [u8],
        tag: &mut [u8; protocol::constants::AEAD_TAG_LEN],
        batch: &mut SealBatch,
    ) -> Result<Sealed, DropReason> {
        let endpoint = self.publish.endpoint.ok_or(DropReason::SealFailed)?;
        let kp = self
            .publish
            .current
            .as_deref()
            .ok_or(DropReason::SealFailed)?;
        let (counter, key) = kp.reserve(&mut self.block, now).map_err(DropReason::from)?;
        batch.seal(key, counter, payload, tag)?;
        let rekey = kp.needs_rekey_on_send(&self.block, now);
        Ok(Sealed {
            receiver: kp.remote_index(),
            counter,
            endpoint,
            local: self.publish.local,
            rekey,
        })
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

    /// Notes an authenticated packet from `src` to our address `dst`:
    /// the endpoint and our address to tell the owner about now, if any.
    /// Any change of the endpoint counts, address or port (a NAT rebinding
    /// keeps the address), and so does reaching another of our addresses
    /// than the one published (else the port's `default` source for the
    /// endpoint): replies leave from there. Each is followed at most every
    /// [`ENDPOINT_CHANGE_EVERY`], so a far end that alternates ports (a
    /// multi-lane one) or our addresses is reported once a second.
    pub(crate) fn endpoint_moved(
        &mut self,
        src: SocketAddr,
        dst: IpAddr,
        default: impl FnOnce() -> Option<IpAddr>,
        now: Instant,
    ) -> Option<(SocketAddr, IpAddr)> {
        let every =
            |t: Option<Instant>| t.is_none_or(|t| t.has_expired(ENDPOINT_CHANGE_EVERY, now));
        let roamed = self.seen_endpoint != Some(src) && every(self.endpoint_told);
        if roamed {
            self.seen_endpoint = Some(src);
            self.endpoint_told = Some(now);
        }
        let mut relocal = false;
        if self.seen_local != Some(dst) {
            let theirs = self.seen_local.or_else(default);
            relocal = theirs != Some(dst) && every(self.local_told);
            if relocal {
                self.local_told = Some(now);
            }
            if relocal || theirs == Some(dst) {
                self.seen_local = Some(dst);
            }
        }
        (roamed || relocal).then(|| {
            (
                self.seen_endpoint.unwrap_or(src),
                self.seen_local.unwrap_or(dst),
            )
        })
    }

    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let due = self
            .handshake_asked
            .is_none_or(|t| now.saturating_since(t) >= ASK_EVERY);
        if due {
            self.handshake_asked = Some(now);
        }
        due
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
            local: Some(ours()),
        }
    }

    /// No default source (the tests' lanes are published with one).
    fn none() -> Option<IpAddr> {
        None
    }

    /// Our address the test peers reach.
    fn ours() -> IpAddr {
        "203.0.113.1".parse().expect("address")
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
        assert_eq!(
            lane.endpoint_moved(addr("192.0.2.1:51820"), ours(), none, t0),
            None,
            "as published"
        );
        assert_eq!(
            lane.endpoint_moved(addr("192.0.2.1:40000"), ours(), none, t0),
            Some((addr("192.0.2.1:40000"), ours())),
            "a NAT rebinding keeps the address, changes the port"
        );
        assert_eq!(
            lane.endpoint_moved(addr("192.0.2.1:40000"), ours(), none, t0),
            None,
            "seen"
        );
        // A far end alternating ports for 3.5 s: one report a second.
        let reports = (0..3500u64)
            .filter(|&ms| {
                let port = if ms % 2 == 0 { 40001 } else { 40002 };
                let src = SocketAddr::new(addr("192.0.2.1:1").ip(), port);
                lane.endpoint_moved(src, ours(), none, t0 + Duration::from_millis(ms + 1))
                    .is_some()
            })
            .count();
        assert_eq!(reports, 3, "about 1 s, 2 s and 3 s after the first report");
        // A new address after a quiet second: at once.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            lane.endpoint_moved(addr("198.51.100.7:51820"), ours(), none, later),
            Some((addr("198.51.100.7:51820"), ours()))
        );
    }

    #[test]
    fn a_lane_reports_our_other_address_reached_and_a_flapping_one_once_a_second() {
        let mut lane = Lane::new(publish(true, "192.0.2.1:51820"));
        let src: SocketAddr = "192.0.2.1:51820".parse().expect("addr");
        let second: IpAddr = "203.0.113.3".parse().expect("address");
        let t0 = Instant::from_secs(10);
        assert_eq!(
            lane.endpoint_moved(src, ours(), none, t0),
            None,
            "as published"
        );
        assert_eq!(
            lane.endpoint_moved(src, second, none, t0),
            Some((src, second)),
            "same endpoint, our second address: replies must leave from it"
        );
        assert_eq!(lane.endpoint_moved(src, second, none, t0), None, "seen");
        // A NAT rebinding right after: reported at once (its own limit).
        let rebound: SocketAddr = "192.0.2.1:40000".parse().expect("addr");
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(
            lane.endpoint_moved(rebound, second, none, t1),
            Some((rebound, second))
        );
        // A far end alternating between our addresses for 3.5 s: one
        // report a second.
        let reports = (0..3500u64)
            .filter(|&ms| {
                let dst = if ms % 2 == 0 { ours() } else { second };
                lane.endpoint_moved(rebound, dst, none, t0 + Duration::from_millis(ms + 2))
                    .is_some()
            })
            .count();
        assert_eq!(reports, 3, "about 1 s, 2 s and 3 s after the first report");
        // Published without one (a configured endpoint): the port's
        // default source is what the owner and the control thread use; a
        // packet to it needs no report, one to another address does.
        let mut fresh = Lane::new(LanePublish {
            local: None,
            ..publish(true, "192.0.2.1:51820")
        });
        assert_eq!(fresh.endpoint_moved(src, ours(), || Some(ours()), t0), None);
        assert_eq!(fresh.seen_local, Some(ours()));
        let mut fresh = Lane::new(LanePublish {
            local: None,
            ..publish(true, "192.0.2.1:51820")
        });
        assert_eq!(
            fresh.endpoint_moved(src, second, || Some(ours()), t0),
            Some((src, second))
        );
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
