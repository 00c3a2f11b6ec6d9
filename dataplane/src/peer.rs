//! Peers as the data path sees them.
//!
//! A peer's mutable fast-path state ([`PeerState`]: keypairs, send counter,
//! replay windows, staged packets, endpoint) lives on its owner lcore and is
//! touched by nobody else. What the control thread needs to know about it
//! (when data and authenticated packets last went each way, byte counts) is
//! published in [`PeerShared`], written by the owner only.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protocol::constants::REJECT_AFTER_TIME;
use protocol::session::Session;
use protocol::time::Instant;

use crate::outer::OuterCache;
use crate::rehome::Arrivals;
use crate::staging::StagedList;

/// A peer's slot number, dense from 0, assigned by the control thread.
pub type PeerId = u32;

/// Packets held per peer while a handshake runs (the kernel's
/// MAX_STAGED_PACKETS).
pub const MAX_STAGED: usize = 128;

/// How often at most a peer's endpoint changes by roaming, on its owner or
/// as a lane worker reports it: a far end that alternates source ports (a
/// multi-lane wgdp) is followed once a second, not per packet; a change
/// after a quiet second is followed at once.
pub const ENDPOINT_CHANGE_EVERY: Duration = Duration::from_secs(1);

/// A timestamp cell: nanoseconds since the clock's epoch, plus one (0 means
/// never).
#[derive(Debug, Default)]
pub struct Stamp(AtomicU64);

impl Stamp {
    /// Records `now`. Only the owner lcore calls this.
    #[inline]
    pub fn set(&self, now: Instant) {
        let nanos = u64::try_from(now.as_duration().as_nanos()).unwrap_or(u64::MAX - 1);
        self.0.store(nanos + 1, Ordering::Relaxed);
    }

    /// Records `at`, or never (`None`).
    #[inline]
    pub fn set_opt(&self, at: Option<Instant>) {
        match at {
            Some(at) => self.set(at),
            None => self.0.store(0, Ordering::Relaxed),
        }
    }

    /// The last recorded instant.
    pub fn get(&self) -> Option<Instant> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Instant::from_duration(Duration::from_nanos(n - 1))),
        }
    }
}

/// What the owner lcore publishes about a peer.
#[derive(Debug, Default)]
pub struct PeerShared {
    /// Last data (not keepalive) packet sent.
    pub data_sent: Stamp,
    /// Last data (not keepalive) packet received.
    pub data_received: Stamp,
    /// Last authenticated packet (data or keepalive) sent.
    pub auth_sent: Stamp,
    /// Last authenticated packet (data or keepalive) received.
    pub auth_received: Stamp,
    tx_bytes: AtomicU64,
    rx_bytes: AtomicU64,
    /// Bytes lane workers sent and received (added once per round with
    /// `fetch_add`: several workers write them).
    lane_tx_bytes: AtomicU64,
    lane_rx_bytes: AtomicU64,
    /// Plaintext packets the owner took to encrypt, and how many of them
    /// another worker received and handed off (owner only): a peer with
    /// many handed off is one `lanes` would help (see `lane`).
    plain_taken: AtomicU64,
    plain_handed: AtomicU64,
    /// The receiver indexes of the keypairs the owner holds.
    pub live: LiveIndexes,
    /// Whether the peer can carry a tunnel group's flows.
    pub liveness: Liveness,
}

/// Whether a peer can carry a tunnel group's flows right now (read by any
/// worker that resolves a group, see [`crate::group`]): it has a current
/// keypair younger than REJECT_AFTER_TIME, and it has not left our data
/// unanswered.
///
/// The second part is the kernel's own rule for a dead peer (`timers.c`,
/// `new_handshake`): data sent and no authenticated packet back for
/// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (15 s; a live peer answers data
/// within KEEPALIVE_TIMEOUT with at least a keepalive) means the session
/// is presumed dead and a new handshake starts. A group moves the flows
/// away at that moment rather than 180 s later when the keypair expires;
/// nothing is shortened.
#[derive(Debug, Default)]
pub struct Liveness {
    /// When the current keypair passes REJECT_AFTER_TIME. Written by the
    /// owner whenever its current keypair changes.
    session_until: Stamp,
    /// Set by the control thread when the `new_handshake` timer fires,
    /// cleared on any authenticated packet received or a completed
    /// handshake.
    unanswered: AtomicBool,
}

impl Liveness {
    /// Owner only: the current keypair was born at `birth` (`None`: no
    /// current keypair).
    #[inline]
    pub fn publish_session(&self, birth: Option<Instant>) {
        self.session_until
            .set_opt(birth.map(|b| b + REJECT_AFTER_TIME));
    }

    /// Control thread only: whether data sent to the peer is unanswered
    /// past KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
    pub fn set_unanswered(&self, unanswered: bool) {
        self.unanswered.store(unanswered, Ordering::Relaxed);
    }

    /// Whether data sent to the peer is unanswered (see
    /// [`set_unanswered`](Self::set_unanswered)).
    pub fn unanswered(&self) -> bool {
        self.unanswered.load(Ordering::Relaxed)
    }

    /// Whether the peer can carry flows at `now`.
    #[inline]
    pub fn is_live(&self, now: Instant) -> bool {
        !self.unanswered.load(Ordering::Relaxed)
            && self.session_until.get().is_some_and(|until| now < until)
    }
}

/// The local indexes of a peer's keypairs as its owner holds them, and how
/// many keypair installs it had applied then: the control thread retires
/// an index only once the owner has provably dropped it. A sequence lock:
/// the owner writes (rarely: at an install, a promotion, a clear), the
/// control thread reads a consistent copy or retries later.
#[derive(Debug, Default)]
pub struct LiveIndexes {
    version: AtomicU64,
    installs: AtomicU64,
    /// Index + 2^32 when set, 0 when not (an index may be 0).
    slots: [AtomicU64; 3],
}

impl LiveIndexes {
    /// Owner only: publishes the session's `indexes` after `installs`
    /// keypair installs.
    pub fn publish(&self, installs: u64, indexes: [Option<u32>; 3]) {
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.installs.store(installs, Ordering::Relaxed);
        for (slot, index) in self.slots.iter().zip(indexes) {
            slot.store(
                index.map_or(0, |i| u64::from(i) | 1 << 32),
                Ordering::Relaxed,
            );
        }
        self.version.store(v.wrapping_add(2), Ordering::Release);
    }

    /// A consistent copy: (installs applied, indexes held); `None` while
    /// the owner is writing.
    pub fn snapshot(&self) -> Option<(u64, [Option<u32>; 3])> {
        let before = self.version.load(Ordering::Acquire);
        if before % 2 == 1 {
            return None;
        }
        let installs = self.installs.load(Ordering::Relaxed);
        let indexes = self.slots.each_ref().map(|s| {
            let v = s.load(Ordering::Relaxed);
            (v >> 32 == 1).then_some(v as u32)
        });
        fence(Ordering::Acquire);
        (self.version.load(Ordering::Relaxed) == before).then_some((installs, indexes))
    }
}

impl PeerShared {
    /// Adds to the bytes sent. Owner lcore only.
    #[inline]
    pub fn add_tx(&self, bytes: u64) {
        let c = &self.tx_bytes;
        c.store(
            c.load(Ordering::Relaxed).wrapping_add(bytes),
            Ordering::Relaxed,
        );
    }

    /// Adds to the bytes received. Owner lcore only.
    #[inline]
    pub fn add_rx(&self, bytes: u64) {
        let c = &self.rx_bytes;
        c.store(
            c.load(Ordering::Relaxed).wrapping_add(bytes),
            Ordering::Relaxed,
        );
    }

    /// Counts a plaintext packet the owner takes to encrypt; `handed`:
    /// another worker received it. Owner lcore only.
    #[inline]
    pub fn count_plain(&self, handed: bool) {
        let bump =
            |c: &AtomicU64| c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        bump(&self.plain_taken);
        if handed {
            bump(&self.plain_handed);
        }
    }

    /// (plaintext packets the owner encrypted, of them handed off to it).
    pub fn plain_counts(&self) -> (u64, u64) {
        (
            self.plain_taken.load(Ordering::Relaxed),
            self.plain_handed.load(Ordering::Relaxed),
        )
    }

    /// Adds what a lane worker sent and received (see `lane`).
    pub fn add_lane_bytes(&self, tx: u64, rx: u64) {
        if tx > 0 {
            self.lane_tx_bytes.fetch_add(tx, Ordering::Relaxed);
        }
        if rx > 0 {
            self.lane_rx_bytes.fetch_add(rx, Ordering::Relaxed);
        }
    }

    /// Bytes sent (WireGuard messages, as `wg show` counts them), by the
    /// owner and its lanes.
    pub fn tx_bytes(&self) -> u64 {
        self.tx_bytes
            .load(Ordering::Relaxed)
            .wrapping_add(self.lane_tx_bytes.load(Ordering::Relaxed))
    }

    /// Bytes received (WireGuard messages), by the owner and its lanes.
    pub fn rx_bytes(&self) -> u64 {
        self.rx_bytes
            .load(Ordering::Relaxed)
            .wrapping_add(self.lane_rx_bytes.load(Ordering::Relaxed))
    }

    /// Bytes sent by lane workers alone.
    pub fn lane_tx_bytes(&self) -> u64 {
        self.lane_tx_bytes.load(Ordering::Relaxed)
    }
}

/// A peer's fast-path state on its owner lcore.
///
/// Laid out for the cache (`repr(C)`, from a line boundary): what every
/// decapsulated packet reads or writes (keypairs, published state,
/// arrivals, endpoint, local address and the one last reported, lanes) fills the
/// first two 64-byte lines; the staged list and the outer header cache,
/// which only encapsulation reads, follow; the rarely touched fields come
/// last. With a thousand peers and more these lines come from L2 or
/// memory, so each packet should need as few of them as it can.
#[repr(C, align(64))]
pub struct PeerState {
    /// Previous/current/next keypairs.
    pub session: Session,
    /// What is published to the control thread.
    pub shared: Arc<PeerShared>,
    /// Where its authenticated packets have been arriving.
    pub arrivals: Arrivals,
    /// Where to send: the configured endpoint, then wherever authenticated
    /// packets last came from.
    pub endpoint: Option<SocketAddr>,
    /// Our address its authenticated packets last arrived at (the kernel's
    /// endpoint source, `endpoint.src4`/`src6`): packets to it leave from
    /// there. `None` (the port's default source) until one arrives, and
    /// again when the endpoint is set by configuration.
    pub local: Option<IpAddr>,
    /// Workers serving it at once (see `lane`); 1: this one only.
    pub lanes: u16,
    /// Our address the control thread last heard of (with the endpoint)
    /// or set: a data packet arriving at another one is reported as an
    /// endpoint change, so that handshake messages follow `local`.
    pub local_reported: Option<IpAddr>,
    /// When its endpoint last changed by roaming (at most every
    /// [`ENDPOINT_CHANGE_EVERY`]); read only when a packet comes from
    /// another endpoint, so it sits just past the hot lines.
    pub endpoint_changed: Option<Instant>,
    /// Packets waiting for a session, oldest first (in the worker's
    /// [`Staging`](crate::staging::Staging)).
    pub staged: StagedList,
    /// Its outer headers as this worker last built them.
    pub(crate) outer: Option<OuterCache>,
    /// When `local_reported` last changed that way (at most every
    /// [`ENDPOINT_CHANGE_EVERY`], apart from the endpoint's own changes).
    pub local_changed: Option<Instant>,
    /// When this lcore last asked the control thread for a handshake.
    pub handshake_asked: Option<Instant>,
    /// Keypairs installed so far (published with the live indexes).
    pub installs: u64,
}

impl std::fmt::Debug for PeerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerState")
            .field("endpoint", &self.endpoint)
            .field("staged", &self.staged.len())
            .finish_non_exhaustive()
    }
}

impl PeerState {
    /// A peer with no session and nothing staged. Built by the control
    /// thread (the owner worker allocates nothing for it): a few hundred
    /// bytes, keypairs and staged packets come later.
    pub fn new(shared: Arc<PeerShared>, endpoint: Option<SocketAddr>) -> Self {
        Self {
            shared,
            session: Session::new(),
            staged: StagedList::default(),
            endpoint,
            local: None,
            handshake_asked: None,
            arrivals: Arrivals::default(),
            installs: 0,
            lanes: 1,
            endpoint_changed: None,
            local_reported: None,
            local_changed: None,
            outer: None,
        }
    }

    /// Publishes the session's indexes to the control thread, and its
    /// current keypair's age to the group lookups ([`Liveness`]). Called
    /// whenever the keypairs change (install, promotion, clear).
    pub fn publish_indexes(&self) {
        self.shared
            .live
            .publish(self.installs, self.session.indexes());
        self.shared
            .liveness
            .publish_session(self.session.current().map(|k| k.birth()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_decapsulation_touches_fills_the_first_two_lines() {
        use std::mem::{align_of, offset_of, size_of};
        assert_eq!(align_of::<PeerState>(), 64);
        let hot = [
            (
                "session",
                offset_of!(PeerState, session),
                size_of::<Session>(),
            ),
            (
                "shared",
                offset_of!(PeerState, shared),
                size_of::<Arc<PeerShared>>(),
            ),
            (
                "arrivals",
                offset_of!(PeerState, arrivals),
                size_of::<Arrivals>(),
            ),
            (
                "endpoint",
                offset_of!(PeerState, endpoint),
                size_of::<Option<SocketAddr>>(),
            ),
            (
                "local",
                offset_of!(PeerState, local),
                size_of::<Option<IpAddr>>(),
            ),
            ("lanes", offset_of!(PeerState, lanes), size_of::<u16>()),
            (
                "local_reported",
                offset_of!(PeerState, local_reported),
                size_of::<Option<IpAddr>>(),
            ),
        ];
        for (name, offset, size) in hot {
            assert!(offset + size <= 128, "{name} ends at {}", offset + size);
        }
        // The outer header cache (encapsulation only) comes after them.
        assert!(offset_of!(PeerState, outer) >= 128);
    }

    #[test]
    fn live_indexes_round_trip() {
        let live = LiveIndexes::default();
        assert_eq!(live.snapshot(), Some((0, [None; 3])));
        live.publish(2, [Some(0), Some(u32::MAX), None]);
        assert_eq!(live.snapshot(), Some((2, [Some(0), Some(u32::MAX), None])));
        // A writer caught in the middle: no copy.
        live.version.fetch_add(1, Ordering::Relaxed);
        assert_eq!(live.snapshot(), None);
    }

    #[test]
    fn liveness_needs_a_fresh_session_and_an_answer() {
        let l = Liveness::default();
        let t0 = Instant::from_secs(10);
        assert!(!l.is_live(t0), "no session");
        l.publish_session(Some(t0));
        assert!(l.is_live(t0));
        assert!(l.is_live(t0 + REJECT_AFTER_TIME - Duration::from_millis(1)));
        assert!(!l.is_live(t0 + REJECT_AFTER_TIME), "expired");
        l.set_unanswered(true);
        assert!(!l.is_live(t0));
        l.set_unanswered(false);
        assert!(l.is_live(t0));
        l.publish_session(None);
        assert!(!l.is_live(t0), "cleared");
    }
}
