//! The control thread's view of each peer: handshake state, timers, the
//! endpoint it sends handshakes to, and the receiver indexes it handed out.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dataplane::peer::{PeerId, PeerShared};
use dataplane::route::make_index;
use protocol::allowedips::Prefix;
use protocol::crypto::PublicKey;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::Instant;
use protocol::timers::Timers;
use protocol::CryptoRngCore;
use zeroize::Zeroizing;

/// How long a removed peer's slot stays unused, so that packets still in
/// flight for it (handoff rings, staged bursts) never reach a new peer.
const SLOT_QUARANTINE: Duration = Duration::from_secs(2);

/// Stamps already fed into a peer's timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    data_sent: Option<Instant>,
    data_received: Option<Instant>,
    auth_sent: Option<Instant>,
    auth_received: Option<Instant>,
}

/// One peer, as the control thread holds it.
pub struct ControlPeer {
    /// The peer's slot (index into the tables of every worker).
    pub id: PeerId,
    /// Its static public key.
    pub public_key: PublicKey,
    /// Noise state, cookie jar, timestamps.
    pub handshake: PeerHandshake,
    /// The timer rules.
    pub timers: Timers,
    /// Where handshakes go: configured, then learned.
    pub endpoint: Option<SocketAddr>,
    /// Our address its last handshake message came to, or its data as the
    /// workers report it (`WorkerEvent::EndpointChanged`): handshake
    /// messages leave from there (the kernel's endpoint source cache);
    /// `None` for a configured endpoint (the port's default source) until
    /// the peer reaches us.
    pub local: Option<IpAddr>,
    /// The endpoint the tunnel table (or a UAPI change) gives; what is
    /// written back, never a learned one.
    pub configured_endpoint: Option<SocketAddr>,
    /// Its allowed IPs, in the order they were given (the master routing
    /// table is `Control::allowed`; this is its index by peer).
    pub allowed_ips: Vec<Prefix>,
    /// The worker that owns its data path.
    pub owner: usize,
    /// What the owner publishes.
    pub shared: Arc<PeerShared>,
    /// Completed handshakes.
    pub handshakes: u64,
    /// Wall-clock time of the last completed handshake.
    pub last_handshake: Option<SystemTime>,
    /// The pre-shared key, for the UAPI and the tunnel table.
    pub preshared_key: Option<Zeroizing<[u8; 32]>>,
    /// The persistent keepalive interval in seconds.
    pub persistent_keepalive: Option<u16>,
    /// Workers that encrypt and decrypt for it at once (1: its owner
    /// only); its keypairs are shared among them when above 1.
    pub lanes: u16,
    /// The receiver index of the latest handshake we took part in, until
    /// it becomes a keypair's or a newer handshake replaces it.
    handshake_index: Option<u32>,
    /// Indexes of the keypairs sent to the owner, each with its install
    /// number, until the owner shows it has dropped them
    /// ([`dataplane::peer::LiveIndexes`]).
    keypair_indexes: Vec<(u32, u64)>,
    /// Keypairs sent to the owner.
    installs: u64,
    seen: Seen,
}

impl std::fmt::Debug for ControlPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPeer")
            .field("id", &self.id)
            .field("public_key", &self.public_key)
            .field("endpoint", &self.endpoint)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Up to one of each [`Activity`], oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Activities {
    items: [(Instant, Activity); 4],
    len: usize,
}

impl Default for Activities {
    fn default() -> Self {
        Self {
            items: [(Instant::ZERO, Activity::DataSent); 4],
            len: 0,
        }
    }
}

impl Activities {
    /// The activities, oldest first.
    pub fn as_slice(&self) -> &[(Instant, Activity)] {
        &self.items[..self.len]
    }
}

/// A timer-relevant event published by the owner lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Data sent.
    DataSent,
    /// Data received.
    DataReceived,
    /// An authenticated packet sent.
    AuthSent,
    /// An authenticated packet received.
    AuthReceived,
}

impl ControlPeer {
    /// The stamps that moved since the last call, oldest first, so the
    /// timers see them in the order they happened (no allocation: the
    /// control thread asks every peer every few milliseconds).
    pub fn new_activity(&mut self) -> Activities {
        let s = &self.shared;
        let fresh = [
            (
                s.data_sent.get(),
                &mut self.seen.data_sent,
                Activity::DataSent,
            ),
            (
                s.data_received.get(),
                &mut self.seen.data_received,
                Activity::DataReceived,
            ),
            (
                s.auth_sent.get(),
                &mut self.seen.auth_sent,
                Activity::AuthSent,
            ),
            (
                s.auth_received.get(),
                &mut self.seen.auth_received,
                Activity::AuthReceived,
            ),
        ];
        let mut out = Activities::default();
        for (now, seen, kind) in fresh {
            if let Some(t) = now {
                if *seen != Some(t) {
                    *seen = Some(t);
                    out.items[out.len] = (t, kind);
                    out.len += 1;
                }
            }
        }
        out.items[..out.len].sort_by_key(|(t, _)| *t);
        out
    }

    /// Feeds the owner's activity published since the last call into the
    /// timers. Called by the periodic scan, and before every direct timer
    /// hook, so the timers see events in the order they happened.
    pub fn sync_activity(&mut self, rng: &mut dyn CryptoRngCore) {
        for &(at, kind) in self.new_activity().as_slice() {
            self.apply_activity(at, kind, rng);
        }
    }

    /// Records a completed handshake (kernel `wg_timers_handshake_complete`
    /// and the wall-clock time `wg show` reports).
    pub fn handshake_completed(&mut self) {
        self.timers.handshake_complete();
        self.shared.liveness.set_unanswered(false);
        self.handshakes += 1;
        self.last_handshake = Some(SystemTime::now());
    }

    /// Feeds one activity into the timers (kernel `timers.c` hooks).
    pub fn apply_activity(&mut self, at: Instant, kind: Activity, rng: &mut dyn CryptoRngCore) {
        match kind {
            Activity::DataSent => self.timers.data_sent(at, rng),
            Activity::DataReceived => self.timers.data_received(at),
            Activity::AuthSent => {
                self.timers.any_authenticated_packet_traversal(at);
                self.timers.any_authenticated_packet_sent();
            }
            Activity::AuthReceived => {
                self.timers.any_authenticated_packet_received();
                self.shared.liveness.set_unanswered(false);
                self.timers.any_authenticated_packet_traversal(at);
            }
        }
    }
}

/// A peer to add.
pub struct NewPeer {
    /// Its static public key.
    pub public_key: PublicKey,
    /// Its pre-shared key.
    pub preshared_key: Option<Zeroizing<[u8; 32]>>,
    /// Its configured endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Its persistent keepalive interval in seconds.
    pub persistent_keepalive: Option<u16>,
    /// Workers that encrypt and decrypt for it at once (1: its owner).
    pub lanes: u16,
}

/// Slots ahead of the one scanned whose published activity
/// [`PeerTable::scan_mut`] asks the cache for (twice as far, the slot's
/// own fields). 16 and 32 measured no different.
const SCAN_AHEAD: usize = 8;

/// All peers, by slot, by public key and by receiver index.
#[derive(Debug, Default)]
pub struct PeerTable {
    peers: Vec<Option<ControlPeer>>,
    /// Slots of removed peers, with when they were removed, oldest first.
    free: VecDeque<(PeerId, Instant)>,
    by_key: HashMap<PublicKey, PeerId>,
    by_index: HashMap<u32, PeerId>,
    /// The first slot whose peer may still lack its static-static DH
    /// ([`PeerTable::static_statics_ahead`]).
    ss_from: usize,
}

impl PeerTable {
    /// Adds a peer, owned by worker `owner`; a slot freed more than
    /// [`SLOT_QUARANTINE`] ago is reused. Returns its slot.
    pub fn add(&mut self, new: NewPeer, owner: usize, now: Instant) -> PeerId {
        let reuse = self
            .free
            .front()
            .filter(|(_, at)| at.has_expired(SLOT_QUARANTINE, now))
            .map(|(id, _)| *id);
        let id = match reuse {
            Some(id) => {
                self.free.pop_front();
                id
            }
            None => {
                self.peers.push(None);
                (self.peers.len() - 1) as PeerId
            }
        };
        let psk = new.preshared_key.as_deref().copied();
        let timers = Timers::new(
            new.persistent_keepalive
                .map(|s| Duration::from_secs(u64::from(s))),
        );
        let peer = ControlPeer {
            id,
            public_key: new.public_key,
            handshake: PeerHandshake::new(new.public_key, psk),
            timers,
            endpoint: new.endpoint,
            local: None,
            configured_endpoint: new.endpoint,
            allowed_ips: Vec::new(),
            owner,
            shared: Arc::new(PeerShared::default()),
            handshakes: 0,
            last_handshake: None,
            preshared_key: new.preshared_key,
            persistent_keepalive: new.persistent_keepalive,
            lanes: new.lanes,
            handshake_index: None,
            keypair_indexes: Vec::new(),
            installs: 0,
            seen: Seen::default(),
        };
        self.by_key.insert(new.public_key, id);
        self.peers[id as usize] = Some(peer);
        self.ss_from = self.ss_from.min(id as usize);
        id
    }

    /// Removes a peer; its slot is reused after a quarantine.
    pub fn remove(&mut self, id: PeerId, now: Instant) -> Option<ControlPeer> {
        let peer = self.peers.get_mut(id as usize)?.take()?;
        self.by_key.remove(&peer.public_key);
        // The owner drops the peer's keypairs before it applies any later
        // command, and an index always names the same owner: reusing one
        // at once is safe.
        let keypairs = peer.keypair_indexes.iter().map(|&(i, _)| i);
        for index in peer.handshake_index.into_iter().chain(keypairs) {
            self.by_index.remove(&index);
        }
        self.free.push_back((id, now));
        Some(peer)
    }

    /// A peer by slot.
    pub fn get(&self, id: PeerId) -> Option<&ControlPeer> {
        self.peers.get(id as usize).and_then(Option::as_ref)
    }

    /// A peer by slot.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut ControlPeer> {
        self.peers.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// The peer with this static key.
    pub fn by_key(&self, key: &PublicKey) -> Option<PeerId> {
        self.by_key.get(key).copied()
    }

    /// The peer a receiver index was handed out for.
    pub fn by_index(&self, index: u32) -> Option<PeerId> {
        self.by_index.get(&index).copied()
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = &ControlPeer> {
        self.peers.iter().flatten()
    }

    /// The peers in slots `from..to` (clamped to the table), in order.
    pub fn in_slots(&self, from: usize, to: usize) -> impl Iterator<Item = &ControlPeer> {
        let to = to.min(self.peers.len());
        self.peers[from.min(to)..to].iter().flatten()
    }

    /// Computes the static-static DH ahead for up to `most` peers, from
    /// the first slot that may lack it (the control thread's idle work
    /// when it has no handshake threads; with threads they do it, see
    /// `crate::static_statics`); how many it computed. A slot is looked
    /// at once per peer added there, so a table whose DHs are all kept
    /// costs nothing.
    pub fn static_statics_ahead(&mut self, local: &StaticIdentity, most: usize) -> usize {
        let mut done = 0;
        while done < most && self.ss_from < self.peers.len() {
            if let Some(p) = &mut self.peers[self.ss_from] {
                done += usize::from(p.handshake.precompute_static_static(local));
            }
            self.ss_from += 1;
        }
        done
    }

    /// Every peer, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut ControlPeer> {
        self.peers.iter_mut().flatten()
    }

    /// Calls `f` on every peer in slot order, for the timer scan, with
    /// what it reads asked of the cache ahead: the slot's own fields
    /// [`SCAN_AHEAD`] * 2 slots ahead, and what the owner publishes
    /// (`shared`, an allocation of its own) [`SCAN_AHEAD`] slots ahead.
    /// At 100k peers those are cache misses for every peer: waited for
    /// one after the other, they made a scan take 16-18 ms of this
    /// project's test VM, about 10 ms asked ahead (docs/scale.md).
    pub fn scan_mut(&mut self, mut f: impl FnMut(&mut ControlPeer)) {
        for i in 0..self.peers.len() {
            if let Some(Some(p)) = self.peers.get(i + 2 * SCAN_AHEAD) {
                for field in [
                    std::ptr::from_ref(&p.shared).cast::<u8>(),
                    std::ptr::from_ref(&p.seen).cast(),
                    std::ptr::from_ref(&p.timers).cast(),
                ] {
                    dpdk_sys::rte::prefetch(field);
                }
            }
            if let Some(Some(p)) = self.peers.get(i + SCAN_AHEAD) {
                dpdk_sys::rte::prefetch(Arc::as_ptr(&p.shared).cast());
            }
            if let Some(p) = &mut self.peers[i] {
                f(p);
            }
        }
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Number of slots, live or quarantined (the size of per-slot tables).
    pub fn slots(&self) -> usize {
        self.peers.len()
    }

    /// A fresh receiver index for peer `id`'s next handshake: random,
    /// with the owner worker in its low bits, unique among the indexes
    /// that may still be in use. The previous handshake's index is retired
    /// unless it became a keypair's; a keypair's index only once its owner
    /// has dropped that keypair (its published live indexes).
    pub fn allocate_index(
        &mut self,
        id: PeerId,
        workers: usize,
        rng: &mut dyn CryptoRngCore,
    ) -> Option<u32> {
        let peer = self.peers.get_mut(id as usize).and_then(Option::as_mut)?;
        let owner = peer.owner;
        let mut retired: Vec<u32> = peer.handshake_index.take().into_iter().collect();
        if let Some((applied, live)) = peer.shared.live.snapshot() {
            peer.keypair_indexes.retain(|&(index, n)| {
                let dead = n <= applied && !live.contains(&Some(index));
                if dead {
                    retired.push(index);
                }
                !dead
            });
        }
        for index in retired {
            self.by_index.remove(&index);
        }
        let index = loop {
            let candidate = make_index(rng.next_u32(), owner, workers);
            if !self.by_index.contains_key(&candidate) {
                break candidate;
            }
        };
        let peer = self.peers.get_mut(id as usize).and_then(Option::as_mut)?;
        peer.handshake_index = Some(index);
        self.by_index.insert(index, id);
        Some(index)
    }

    /// Records that the keypair with local index `index` is sent to peer
    /// `id`'s owner: the index stays reserved until the owner drops it.
    pub fn keypair_sent(&mut self, id: PeerId, index: u32) {
        let Some(peer) = self.get_mut(id) else {
            return;
        };
        peer.installs += 1;
        peer.keypair_indexes.push((index, peer.installs));
        if peer.handshake_index == Some(index) {
            peer.handshake_index = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::route::index_owner;
    use protocol::crypto::PrivateKey;
    use rand_core::OsRng;

    fn new_peer() -> NewPeer {
        NewPeer {
            public_key: PrivateKey::generate(&mut OsRng).public_key(),
            preshared_key: None,
            endpoint: None,
            persistent_keepalive: None,
            lanes: 1,
        }
    }

    fn table(workers: usize, peers: usize) -> PeerTable {
        let mut t = PeerTable::default();
        for i in 0..peers {
            t.add(new_peer(), i % workers, Instant::ZERO);
        }
        t
    }

    #[test]
    fn removed_slots_are_reused_only_after_the_quarantine() {
        let mut t = table(2, 3);
        let key = t.get(1).expect("peer 1").public_key;
        let index = t.allocate_index(1, 2, &mut OsRng).expect("index");
        let gone = t.remove(1, Instant::from_secs(10)).expect("removed");
        assert_eq!(gone.public_key, key);
        assert_eq!(
            (t.len(), t.by_key(&key), t.by_index(index)),
            (2, None, None)
        );
        assert!(
            t.remove(1, Instant::from_secs(10)).is_none(),
            "already gone"
        );
        assert_eq!(
            t.add(new_peer(), 0, Instant::from_secs(11)),
            3,
            "slot 1 still quarantined"
        );
        assert_eq!(
            t.add(new_peer(), 1, Instant::from_secs(13)),
            1,
            "slot 1 reused"
        );
        assert_eq!(t.get(1).map(|p| p.owner), Some(1));
        assert_eq!((t.len(), t.slots()), (4, 4));
    }

    #[test]
    fn indexes_name_their_owner_and_peer() {
        let mut t = table(3, 5);
        for id in 0..5 {
            let i = t.allocate_index(id, 3, &mut OsRng).expect("index");
            assert_eq!(index_owner(i, 3), Some(id as usize % 3));
            assert_eq!(t.by_index(i), Some(id));
        }
    }

    #[test]
    fn handshake_indexes_are_replaced_keypair_indexes_kept_while_live() {
        let mut t = table(1, 1);
        let keypair = t.allocate_index(0, 1, &mut OsRng).expect("index");
        t.keypair_sent(0, keypair);
        // Many unanswered initiations: each replaces the previous one's
        // index, none touches the keypair's (the owner has not even
        // applied the install yet).
        let mut pending = t.allocate_index(0, 1, &mut OsRng).expect("index");
        for _ in 0..10 {
            let next = t.allocate_index(0, 1, &mut OsRng).expect("index");
            assert_eq!(t.by_index(pending), None, "superseded handshake");
            pending = next;
        }
        assert_eq!(t.by_index(keypair), Some(0), "install not applied yet");
        let live = &t.get(0).expect("peer").shared.live;
        // The owner installed it: still live.
        live.publish(1, [None, Some(keypair), None]);
        t.allocate_index(0, 1, &mut OsRng);
        assert_eq!(t.by_index(keypair), Some(0), "live in the owner");
        // A second keypair sent, not applied: the first is still current.
        let second = t.allocate_index(0, 1, &mut OsRng).expect("index");
        t.keypair_sent(0, second);
        t.allocate_index(0, 1, &mut OsRng);
        assert_eq!(t.by_index(keypair), Some(0));
        assert_eq!(t.by_index(second), Some(0), "sent, not applied");
        // Applied, and a later install dropped the first.
        let live = &t.get(0).expect("peer").shared.live;
        live.publish(2, [None, Some(second), None]);
        let last = t.allocate_index(0, 1, &mut OsRng).expect("index");
        assert_eq!(t.by_index(keypair), None, "dropped by the owner");
        assert_eq!(t.by_index(second), Some(0));
        assert_eq!(t.by_index.len(), 2, "the live keypair and the handshake");
        assert_eq!(t.by_index(last), Some(0));
        // Removing the peer frees them all.
        t.remove(0, Instant::ZERO);
        assert!(t.by_index.is_empty());
    }

    /// The timer scan visits every peer once, in slot order, empty slots
    /// (removed peers) skipped, near the table's end (where the slots it
    /// asks ahead for are past it) as elsewhere.
    #[test]
    fn the_timer_scan_visits_every_peer_once_in_slot_order() {
        let n = 4 * SCAN_AHEAD + 3;
        let mut t = table(2, n);
        for gone in [0, SCAN_AHEAD, n - 2] {
            t.remove(gone as PeerId, Instant::from_secs(1))
                .expect("removed");
        }
        let mut seen = Vec::new();
        t.scan_mut(|p| seen.push(p.id));
        let all: Vec<PeerId> = t.iter_mut().map(|p| p.id).collect();
        assert_eq!(seen, all);
        assert_eq!(seen.len(), n - 3);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }

    #[test]
    fn activity_comes_out_in_time_order_once() {
        let mut t = table(1, 1);
        let p = t.get_mut(0).expect("peer");
        p.shared.auth_received.set(Instant::from_millis(30));
        p.shared.data_sent.set(Instant::from_millis(10));
        let a = p.new_activity();
        assert_eq!(
            a.as_slice(),
            vec![
                (Instant::from_millis(10), Activity::DataSent),
                (Instant::from_millis(30), Activity::AuthReceived)
            ]
        );
        assert!(p.new_activity().as_slice().is_empty(), "nothing new");
        p.shared.data_sent.set(Instant::from_millis(40));
        assert_eq!(
            p.new_activity().as_slice(),
            [(Instant::from_millis(40), Activity::DataSent)]
        );
    }
}
