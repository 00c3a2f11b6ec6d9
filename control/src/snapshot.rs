//! Snapshots of the control thread's state for everyone else.
//!
//! [`PeerSnapshot`] is one peer as every report shows it: built by the
//! control thread from its peer table and allowed IPs, and rendered by the
//! counters report, `wgdp show` (its JSON form is this type's), the UAPI
//! `get`, the Prometheus metrics and DPDK telemetry.
//!
//! [`SnapshotBoard`] is how other threads (the metrics server, DPDK's
//! telemetry threads) get the whole [`Show`] document without touching the
//! control thread's state: a reader asks for one no older than some age;
//! the control thread, which checks for such a request once per round,
//! builds it, a slice of the peer table per round, and publishes it.
//! Nothing is built while nobody asks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::allowedips::Prefix;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::control::Control;
use crate::peers::ControlPeer;

/// The oldest state document a reader (a metrics scrape, a telemetry
/// command) is answered from.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// How long a reader waits for the control thread to publish one.
pub const WAIT: Duration = Duration::from_secs(2);
use crate::show::Show;

/// One peer's state, as every report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSnapshot {
    /// Its public key (base64 in JSON).
    #[serde(serialize_with = "key_out", deserialize_with = "key_in")]
    pub public_key: [u8; 32],
    /// Its endpoint, if known.
    pub endpoint: Option<SocketAddr>,
    /// Time of the latest completed handshake since the Unix epoch (whole
    /// seconds in JSON).
    #[serde(serialize_with = "secs_out", deserialize_with = "secs_in")]
    pub latest_handshake: Option<Duration>,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Plaintext bytes received from the peer.
    pub rx_bytes: u64,
    /// Plaintext bytes sent to the peer.
    pub tx_bytes: u64,
    /// Allowed IPs (`addr/len` strings in JSON).
    #[serde(serialize_with = "prefixes_out", deserialize_with = "prefixes_in")]
    pub allowed_ips: Vec<Prefix>,
    /// Persistent keepalive interval in seconds.
    pub persistent_keepalive: Option<u16>,
    /// The lcore of the worker that owns its data path.
    pub owner_lcore: u32,
    /// Workers that encrypt and decrypt for it at once (`lanes`).
    #[serde(default = "one_lane")]
    pub lanes: u16,
    /// Plaintext packets its owner encrypted, and of them those another
    /// worker received and handed off: the peers `lanes` would help.
    #[serde(default)]
    pub plain_packets: u64,
    /// See `plain_packets`.
    #[serde(default)]
    pub plain_handed_off: u64,
}

fn one_lane() -> u16 {
    1
}

impl PeerSnapshot {
    /// Whether `lanes` would likely help this single-lane peer: at least
    /// 10 000 of its plaintext packets reached its owner, and a quarter or
    /// more of them arrived on another worker (on one core the owner would
    /// otherwise encrypt them all, handing off costs it more).
    pub fn would_benefit_from_lanes(&self) -> bool {
        self.lanes <= 1
            && self.plain_packets >= 10_000
            && self.plain_handed_off * 4 >= self.plain_packets
    }
}

impl PeerSnapshot {
    /// Its public key in base64, as `wg` prints it.
    pub fn key_base64(&self) -> String {
        conf::encode_key(&self.public_key)
    }

    /// Whole seconds since the Unix epoch of the latest handshake.
    pub fn latest_handshake_secs(&self) -> Option<u64> {
        self.latest_handshake.map(|d| d.as_secs())
    }

    /// How long ago the latest handshake was (zero if the clock went back).
    pub fn handshake_age(&self, now: SystemTime) -> Option<Duration> {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.latest_handshake.map(|t| now.saturating_sub(t))
    }
}

fn key_out<S: Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&conf::encode_key(key))
}

fn key_in<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    let text = String::deserialize(d)?;
    conf::decode_key(&text).ok_or_else(|| serde::de::Error::custom("not a base64 key"))
}

fn secs_out<S: Serializer>(t: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    t.map(|d| d.as_secs()).serialize(s)
}

fn secs_in<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
}

fn prefixes_out<S: Serializer>(v: &[Prefix], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

fn prefixes_in<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Prefix>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|e| serde::de::Error::custom(format!("{text}: {e}")))
        })
        .collect()
}

/// The lcore of worker `index`: `lcores[index]`, or the index itself
/// should `lcores` be short (a caller bug).
pub fn lcore_of(lcores: &[u32], index: usize) -> u32 {
    lcores
        .get(index)
        .copied()
        .unwrap_or_else(|| u32::try_from(index).unwrap_or(u32::MAX))
}

impl PeerSnapshot {
    /// Snapshots `p`, whose allowed IPs are `allowed_ips`; `lcores[i]` is
    /// the lcore of worker `i`.
    pub fn of(p: &ControlPeer, allowed_ips: Vec<Prefix>, lcores: &[u32]) -> Self {
        Self {
            public_key: *p.public_key.as_bytes(),
            endpoint: p.endpoint,
            latest_handshake: p
                .last_handshake
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok()),
            handshakes: p.handshakes,
            rx_bytes: p.shared.rx_bytes(),
            tx_bytes: p.shared.tx_bytes(),
            allowed_ips,
            persistent_keepalive: p.persistent_keepalive,
            owner_lcore: lcore_of(lcores, p.owner),
            lanes: p.lanes,
            plain_packets: p.shared.plain_counts().0,
            plain_handed_off: p.shared.plain_counts().1,
        }
    }
}

impl Control<'_> {
    /// The lcore of worker `index`.
    pub(crate) fn lcore_of(&self, index: usize) -> u32 {
        lcore_of(&self.lcores, index)
    }

    /// One peer's snapshot (its allowed IPs are the list the peer keeps
    /// beside the routing table, in the order they were given).
    pub(crate) fn peer_snapshot(&self, p: &ControlPeer) -> PeerSnapshot {
        PeerSnapshot::of(p, p.allowed_ips.clone(), &self.lcores)
    }

    /// Every peer's snapshot, in table order.
    pub(crate) fn peer_snapshots(&self) -> Vec<PeerSnapshot> {
        self.peers.iter().map(|p| self.peer_snapshot(p)).collect()
    }

    /// Builds a new document a slice per round ([`crate::show::ShowJob`])
    /// once a reader asks for one, and publishes it when whole; how many
    /// slices it copied (0 or 1).
    pub(crate) fn serve_snapshot_requests(&mut self) -> usize {
        let mut job = match self.board_job.take() {
            Some(job) => job,
            None if self.board.take_request() => self.start_show(),
            None => return 0,
        };
        match self.show_slice(&mut job) {
            Some(show) => self.board.publish(show),
            None => self.board_job = Some(job),
        }
        1
    }
}

/// What the board holds.
#[derive(Default)]
struct Latest {
    /// The latest document and when it was published.
    show: Option<(Instant, Arc<Show>)>,
    /// The control thread has stopped: no new document will come.
    closed: bool,
}

/// Where the control thread publishes the [`Show`] document for readers on
/// other threads (see the module doc).
#[derive(Default)]
pub struct SnapshotBoard {
    latest: Mutex<Latest>,
    published: Condvar,
    wanted: AtomicBool,
}

impl std::fmt::Debug for SnapshotBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotBoard").finish_non_exhaustive()
    }
}

impl SnapshotBoard {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// A document published at most `max_age` ago: the latest one, or a
    /// new one the control thread is asked for, waiting up to `wait`.
    /// Should the control thread not answer in time, the latest one, however
    /// old; `None` if there is none or the control thread has stopped.
    pub fn get(&self, max_age: Duration, wait: Duration) -> Option<Arc<Show>> {
        let deadline = Instant::now() + wait;
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if latest.closed {
                return None;
            }
            if let Some((at, show)) = &latest.show {
                if at.elapsed() <= max_age {
                    return Some(show.clone());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return latest.show.as_ref().map(|(_, s)| s.clone());
            }
            self.request();
            latest = self
                .published
                .wait_timeout(latest, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Asks the control thread for a new document (without waiting).
    pub(crate) fn request(&self) {
        self.wanted.store(true, Ordering::Release);
    }

    /// Whether a reader is waiting for a document; clears the request.
    pub(crate) fn take_request(&self) -> bool {
        self.wanted.load(Ordering::Relaxed) && self.wanted.swap(false, Ordering::AcqRel)
    }

    /// Publishes a document and wakes the readers waiting for one.
    pub(crate) fn publish(&self, show: Show) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.show = Some((Instant::now(), Arc::new(show)));
        self.published.notify_all();
    }

    /// The control thread has stopped: readers get `None` from now on.
    pub fn close(&self) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.closed = true;
        self.published.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::show::InterfaceShow;

    fn show(name: &str) -> Show {
        Show {
            interface: InterfaceShow {
                name: name.into(),
                public_key: conf::encode_key(&[1; 32]),
                listen_port: 51820,
            },
            peers: Vec::new(),
            groups: Vec::new(),
            lcores: Vec::new(),
            ports: Vec::new(),
            control: BTreeMap::new(),
            steering_rules: 0,
            route_export: None,
        }
    }

    #[test]
    fn peer_snapshot_json_is_the_wgdp_show_format() {
        let p = PeerSnapshot {
            public_key: [0xab; 32],
            endpoint: Some("203.0.113.2:51821".parse().unwrap()),
            latest_handshake: Some(Duration::new(1_700_000_000, 999)),
            handshakes: 2,
            rx_bytes: 3,
            tx_bytes: 4,
            allowed_ips: vec![
                Prefix::new("10.9.0.0".parse().unwrap(), 24).unwrap(),
                Prefix::new("fd00::".parse().unwrap(), 64).unwrap(),
            ],
            persistent_keepalive: Some(25),
            owner_lcore: 1,
            lanes: 1,
            plain_packets: 0,
            plain_handed_off: 0,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            format!(
                "{{\"public_key\":\"{}\",\"endpoint\":\"203.0.113.2:51821\",\"latest_handshake\":1700000000,\"handshakes\":2,\"rx_bytes\":3,\"tx_bytes\":4,\"allowed_ips\":[\"10.9.0.0/24\",\"fd00::/64\"],\"persistent_keepalive\":25,\"owner_lcore\":1,\"lanes\":1,\"plain_packets\":0,\"plain_handed_off\":0}}",
                conf::encode_key(&[0xab; 32])
            )
        );
        let back: PeerSnapshot = serde_json::from_str(&json).unwrap();
        let busy = |lanes, plain_packets, plain_handed_off| PeerSnapshot {
            lanes,
            plain_packets,
            plain_handed_off,
            ..back.clone()
        };
        assert!(busy(1, 40_000, 10_000).would_benefit_from_lanes());
        assert!(
            !busy(1, 40_000, 9_999).would_benefit_from_lanes(),
            "mostly inline"
        );
        assert!(
            !busy(1, 9_000, 9_000).would_benefit_from_lanes(),
            "too little traffic"
        );
        assert!(
            !busy(2, 40_000, 40_000).would_benefit_from_lanes(),
            "has lanes"
        );
        assert_eq!(
            back.latest_handshake,
            Some(Duration::from_secs(1_700_000_000))
        );
        assert_eq!(back.allowed_ips, p.allowed_ips);
        assert_eq!(back.public_key, p.public_key);
        for bad in ["\"public_key\":\"xx\"", "\"allowed_ips\":[\"10.0.0.0/33\"]"] {
            let field = bad.split(':').next().unwrap();
            let start = json.find(field).unwrap();
            let end = start + json[start..].find(",\"").unwrap();
            let broken = format!("{}{bad}{}", &json[..start], &json[end..]);
            assert!(
                serde_json::from_str::<PeerSnapshot>(&broken).is_err(),
                "{broken}"
            );
        }
        assert_eq!(
            p.handshake_age(UNIX_EPOCH + Duration::from_secs(1_700_000_010)),
            Some(Duration::new(9, 1_000_000_000 - 999))
        );
        assert_eq!(p.handshake_age(UNIX_EPOCH), Some(Duration::ZERO));
    }

    #[test]
    fn a_snapshot_copies_a_control_peer() {
        use protocol::crypto::PrivateKey;
        use rand_core::OsRng;

        use crate::peers::{NewPeer, PeerTable};

        let key = PrivateKey::generate(&mut OsRng).public_key();
        let mut table = PeerTable::default();
        let endpoint: SocketAddr = "[2001:db8::1]:51820".parse().expect("addr");
        let new = |public_key, endpoint| NewPeer {
            public_key,
            preshared_key: None,
            endpoint,
            persistent_keepalive: Some(25),
            lanes: 1,
        };
        // Two workers: the second peer (slot 1) is owned by worker 1.
        let other = PrivateKey::generate(&mut OsRng).public_key();
        table.add(new(other, None), 0, protocol::time::Instant::ZERO);
        let id = table.add(new(key, Some(endpoint)), 1, protocol::time::Instant::ZERO);
        let p = table.get_mut(id).expect("peer");
        p.handshakes = 4;
        p.last_handshake = Some(UNIX_EPOCH + Duration::new(1_234_567, 89));
        p.shared.add_rx(100);
        p.shared.add_tx(250);
        let allowed = vec![Prefix::new("10.9.0.2".parse().unwrap(), 32).unwrap()];

        assert_eq!(
            PeerSnapshot::of(p, allowed.clone(), &[3, 9]),
            PeerSnapshot {
                public_key: *key.as_bytes(),
                endpoint: Some(endpoint),
                latest_handshake: Some(Duration::new(1_234_567, 89)),
                handshakes: 4,
                rx_bytes: 100,
                tx_bytes: 250,
                allowed_ips: allowed,
                persistent_keepalive: Some(25),
                owner_lcore: 9,
                lanes: 1,
                plain_packets: 0,
                plain_handed_off: 0,
            }
        );
        // Missing lcores: the worker index stands in.
        assert_eq!(PeerSnapshot::of(p, Vec::new(), &[3]).owner_lcore, 1);
        p.last_handshake = None;
        assert_eq!(
            PeerSnapshot::of(p, Vec::new(), &[3, 9]).latest_handshake,
            None
        );
        p.last_handshake = Some(SystemTime::now());
        assert!(PeerSnapshot::of(p, Vec::new(), &[3, 9])
            .latest_handshake_secs()
            .is_some_and(|t| t > 1_600_000_000));
    }

    #[test]
    fn the_board_asks_the_publisher_and_serves_fresh_documents() {
        let board = Arc::new(SnapshotBoard::new());
        // Nobody publishes: the reader gives up after `wait`.
        assert!(board
            .get(Duration::from_secs(1), Duration::from_millis(20))
            .is_none());
        assert!(board.take_request(), "the reader asked");
        assert!(!board.take_request(), "a request is taken once");

        let publisher = {
            let board = board.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while n < 2 {
                    if board.take_request() {
                        n += 1;
                        board.publish(show(&format!("v{n}")));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        let first = board.get(Duration::from_secs(60), Duration::from_secs(10));
        assert_eq!(
            first.map(|s| s.interface.name.clone()).as_deref(),
            Some("v1")
        );
        // Young enough: served without asking.
        let again = board.get(Duration::from_secs(60), Duration::from_secs(10));
        assert_eq!(
            again.map(|s| s.interface.name.clone()).as_deref(),
            Some("v1")
        );
        // Too old: a new one is asked for.
        std::thread::sleep(Duration::from_millis(5));
        let fresh = board.get(Duration::from_millis(1), Duration::from_secs(10));
        assert_eq!(
            fresh.map(|s| s.interface.name.clone()).as_deref(),
            Some("v2")
        );
        publisher.join().unwrap();
        // No answer in time: the latest, however old.
        let stale = board.get(Duration::ZERO, Duration::from_millis(10));
        assert_eq!(
            stale.map(|s| s.interface.name.clone()).as_deref(),
            Some("v2")
        );
        board.close();
        assert!(board
            .get(Duration::from_secs(60), Duration::from_secs(1))
            .is_none());
    }
}
