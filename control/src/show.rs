//! `wgdp show`: the running concentrator's state as one JSON document,
//! served on the UAPI socket as the wgdp-only request `wgdp-show=1` (the
//! `wg` tool never sends it): the interface, each peer with its owner lcore,
//! each worker's counters and drop reasons, each port's DPDK counters, and
//! the control thread's counters.
//!
//! [`SnapshotBoard`] is how other threads (the metrics server, DPDK's
//! telemetry threads) get the whole [`Show`] document without touching the
//! control thread's state: a reader asks for one no older than some age;
//! the control thread, which checks for such a request once per round,
//! builds it and publishes it. Nothing is built while nobody asks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::groups::GroupShow;
use crate::route_export::RouteExportShow;
use crate::snapshot::PeerSnapshot;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Show {
    /// The interface.
    pub interface: InterfaceShow,
    /// Every peer; none when the request left them out (`wgdp show
    /// --no-peers`).
    pub peers: Vec<PeerSnapshot>,
    /// Every tunnel group, with its members' liveness and packet counts.
    #[serde(default)]
    pub groups: Vec<GroupShow>,
    /// Every worker lcore.
    pub lcores: Vec<LcoreShow>,
    /// Both ports.
    pub ports: Vec<PortShow>,
    /// The control thread's counters.
    pub control: BTreeMap<String, u64>,
    /// Plaintext-port rte_flow rules installed now (see `steering_*` in
    /// `control`).
    pub steering_rules: u64,
    /// The live-route export (`[cluster]`), absent when not configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_export: Option<RouteExportShow>,
}

/// The interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceShow {
    /// The name `wg` knows it by.
    pub name: String,
    /// Our public key (base64).
    pub public_key: String,
    /// Our UDP port.
    pub listen_port: u16,
}

/// One worker lcore's counters (drop reasons by label, events by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LcoreShow {
    /// The lcore id.
    pub lcore: u32,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
    /// Events by name.
    pub events: BTreeMap<String, u64>,
}

/// One port's DPDK counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortShow {
    /// `tunnel` or `plaintext`.
    pub role: String,
    /// DPDK device name.
    pub device: String,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Dropped by the device: RX queues full.
    pub rx_missed: u64,
    /// Erroneous packets received.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// A [`Show`] being built a slice of the peer table per control-loop
/// round (`GET_SLICE` slots, as a `get`'s snapshot): a document of 100k
/// peers in one go holds the control thread for tens of milliseconds. Each
/// peer is copied whole in one round; the rest of the document (counters,
/// ports, groups) is read in the round of the last slice. For `wgdp show`
/// (its JSON is rendered by the UAPI socket's thread) and the board
/// (metrics, telemetry).
pub(crate) struct ShowJob {
    /// The peers copied so far.
    pub(crate) peers: Vec<PeerSnapshot>,
    /// The next peer slot to copy.
    pub(crate) next: usize,
}

impl ShowJob {
    /// Nothing copied yet, room for `peers`.
    pub(crate) fn new(peers: usize) -> Self {
        Self {
            peers: Vec::with_capacity(peers),
            next: 0,
        }
    }
}

/// The oldest state document a reader (a metrics scrape, a telemetry
/// command) is answered from.
pub const MAX_AGE: Duration = Duration::from_secs(1);
/// How long a reader waits for the control thread to publish one.
pub const WAIT: Duration = Duration::from_secs(2);

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

/// Renders the document for people: `wg show`-like peer blocks, then the
/// counters that are not zero.
pub fn render_text(s: &Show) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let i = &s.interface;
    let _ = writeln!(
        out,
        "interface: {}\n  public key: {}\n  listening port: {}",
        i.name, i.public_key, i.listen_port
    );
    for p in &s.peers {
        let _ = writeln!(out, "\npeer: {}", p.key_base64());
        if let Some(e) = p.endpoint {
            let _ = writeln!(out, "  endpoint: {e}");
        }
        let _ = writeln!(
            out,
            "  allowed ips: {}",
            if p.allowed_ips.is_empty() {
                "(none)".to_owned()
            } else {
                p.allowed_ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let _ = writeln!(out, "  owner lcore: {}", p.owner_lcore);
        if p.lanes > 1 {
            let _ = writeln!(out, "  lanes: {}", p.lanes);
        }
        if p.plain_packets > 0 {
            let hint = if p.would_benefit_from_lanes() {
                " (lanes would help: see docs/lanes.md)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  plaintext to owner: {} packets, {} handed off{hint}",
                p.plain_packets, p.plain_handed_off
            );
        }
        let _ = writeln!(
            out,
            "  handshakes: {}, latest: {}",
            p.handshakes,
            p.latest_handshake_secs()
                .map_or("never".to_owned(), |t| format!("unix {t}"))
        );
        let _ = writeln!(
            out,
            "  transfer: {} B received, {} B sent",
            p.rx_bytes, p.tx_bytes
        );
        if let Some(k) = p.persistent_keepalive {
            let _ = writeln!(out, "  persistent keepalive: every {k} s");
        }
    }
    for g in &s.groups {
        let _ = writeln!(
            out,
            "\ngroup: {}\n  prefixes: {}",
            g.name,
            g.prefixes.join(", ")
        );
        for m in &g.members {
            let state = if m.live { "live" } else { "not live" };
            let _ = writeln!(
                out,
                "  member {}: {state}, {} packets",
                m.public_key, m.packets
            );
        }
    }
    for l in &s.lcores {
        let _ = writeln!(out, "\nlcore {}:", l.lcore);
        for (name, v) in l.events.iter().filter(|(_, v)| **v > 0) {
            let _ = writeln!(out, "  {name}: {v}");
        }
        for (name, v) in l.drops.iter().filter(|(_, v)| **v > 0) {
            let _ = writeln!(out, "  drop {name}: {v}");
        }
    }
    for p in &s.ports {
        let _ = writeln!(
            out,
            "\nport {} ({}): rx {} pkts {} B, tx {} pkts {} B, missed {}, rx errors {}, tx errors {}, no mbuf {}",
            p.role, p.device, p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.rx_missed, p.rx_errors, p.tx_errors, p.rx_nombuf
        );
    }
    let _ = writeln!(out, "\nsteering rules: {}", s.steering_rules);
    if let Some(e) = &s.route_export {
        let _ = writeln!(
            out,
            "\nexported routes (table {}, dev {}): {}{}",
            e.table,
            e.interface,
            e.routes.len(),
            if e.pending > 0 {
                format!(", {} changes pending", e.pending)
            } else {
                String::new()
            }
        );
        for r in &e.routes {
            let _ = writeln!(out, "  {r}");
        }
    }
    let _ = writeln!(out, "\ncontrol:");
    for (name, v) in s.control.iter().filter(|(_, v)| **v > 0) {
        let _ = writeln!(out, "  {name}: {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
