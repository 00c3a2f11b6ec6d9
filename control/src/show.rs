//! `wgdp show`: the running concentrator's state as one JSON document,
//! served on the UAPI socket as the wgdp-only request `wgdp-show=1` (the
//! `wg` tool never sends it): the interface, each peer with its owner lcore,
//! each worker's counters and drop reasons, each port's DPDK counters, and
//! the control thread's counters.

use std::collections::BTreeMap;

use dataplane::counters::{DropReason, Event};
use serde::{Deserialize, Serialize};

use crate::control::Control;
use crate::groups::GroupShow;
use crate::live::GET_SLICE;
use crate::route_export::RouteExportShow;
use crate::snapshot::PeerSnapshot;

/// The whole document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Show {
    /// The interface.
    pub interface: InterfaceShow,
    /// Every peer.
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
/// round ([`GET_SLICE`] slots): a document of 100k peers in one go holds
/// the control thread for tens of milliseconds. Each peer is copied whole
/// in one round; the rest of the document (counters, ports, groups) is
/// read in the round of the last slice. For `wgdp show` (its JSON is
/// rendered by the UAPI socket's thread) and the board (metrics,
/// telemetry).
pub(crate) struct ShowJob {
    peers: Vec<PeerSnapshot>,
    /// The next peer slot to copy.
    next: usize,
}

impl Control<'_> {
    /// The document, now, in one go (the tests'; the control loop builds
    /// it in slices: [`ShowJob`]).
    #[cfg(test)]
    pub(crate) fn show(&self) -> Show {
        self.show_with(self.peer_snapshots())
    }

    /// A [`Show`] with nothing copied yet.
    pub(crate) fn start_show(&self) -> ShowJob {
        ShowJob {
            peers: Vec::with_capacity(self.peers.len()),
            next: 0,
        }
    }

    /// Copies the peers of the next [`GET_SLICE`] slots; the document
    /// once every slot is copied.
    pub(crate) fn show_slice(&self, job: &mut ShowJob) -> Option<Show> {
        let end = job.next + GET_SLICE;
        job.peers.extend(
            self.peers
                .in_slots(job.next, end)
                .map(|p| self.peer_snapshot(p)),
        );
        job.next = end;
        (job.next >= self.peers.slots()).then(|| self.show_with(std::mem::take(&mut job.peers)))
    }

    /// The document, with `peers` as its peers.
    fn show_with(&self, peers: Vec<PeerSnapshot>) -> Show {
        Show {
            interface: InterfaceShow {
                name: self.interface.clone(),
                public_key: conf::encode_key(self.identity.public_key().as_bytes()),
                listen_port: self.listen_port,
            },
            peers,
            groups: self.groups_show(self.clock.now()),
            lcores: self
                .worker_counters
                .iter()
                .enumerate()
                .map(|(w, c)| LcoreShow {
                    lcore: self.lcore_of(w),
                    drops: DropReason::ALL
                        .iter()
                        .map(|r| (r.label().to_owned(), c.drops(*r)))
                        .collect(),
                    events: Event::ALL
                        .iter()
                        .map(|e| (e.label().to_owned(), c.events(*e)))
                        .collect(),
                })
                .collect(),
            ports: [("tunnel", &self.tun), ("plaintext", &self.plain)]
                .into_iter()
                .map(|(role, link)| {
                    let s = link.port.stats().unwrap_or_default();
                    PortShow {
                        role: role.to_owned(),
                        device: link.port.name().to_owned(),
                        rx_packets: s.rx_packets,
                        tx_packets: s.tx_packets,
                        rx_bytes: s.rx_bytes,
                        tx_bytes: s.tx_bytes,
                        rx_missed: s.rx_missed,
                        rx_errors: s.rx_errors,
                        tx_errors: s.tx_errors,
                        rx_nombuf: s.rx_nombuf,
                    }
                })
                .collect(),
            control: self
                .counters
                .snapshot()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect(),
            steering_rules: self.steering.installed() as u64,
            route_export: self.route_export_show(),
        }
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
    use std::time::Duration;

    use crossbeam_channel::bounded;

    use crate::control::Control;
    use crate::live::tests::{ask, control, hex, ports};
    use crate::live::GET_SLICE;
    use crate::uapi::proto::Request;
    use crate::uapi::server::Call;

    /// Peers added on top of the test table's two: more than two slices.
    const ADDED: usize = 2 * GET_SLICE + 10;

    /// Adds [`ADDED`] peers through the UAPI.
    fn add_peers(c: &mut Control) {
        let mut text = String::from("set=1\n");
        for i in 0..ADDED {
            let mut key = [0u8; 32];
            key[..4].copy_from_slice(&(i as u32).to_le_bytes());
            key[31] = 0x40;
            text.push_str(&format!(
                "public_key={}\nallowed_ip=10.{}.{}.0/24\n",
                hex(&key),
                100 + i / 256,
                i % 256
            ));
        }
        assert_eq!(ask(c, text.trim_end()), "errno=0\n\n");
    }

    /// `wgdp show` over the UAPI copies the peers a slice per round, is
    /// answered with the document once whole (its JSON rendered by the
    /// socket's thread, not the control thread), and a request behind it
    /// waits its turn.
    #[test]
    fn a_wgdp_show_is_built_in_slices_between_rounds() {
        let p = ports();
        let (mut c, _commands) = control(&p);
        add_peers(&mut c);
        let (calls, rx) = bounded(4);
        c.uapi = Some(rx);
        let (tx, answer) = bounded(2);
        for request in [Request::WgdpShow, Request::Get] {
            calls
                .send(Call {
                    request,
                    reply: tx.clone(),
                })
                .expect("call");
        }
        let now = c.clock.now();
        for round in 1..=2 {
            assert_eq!(c.uapi_round(now), 1, "round {round}");
            assert!(answer.try_recv().is_err(), "answered before it was whole");
        }
        assert_eq!(c.uapi_round(now), 1, "the last slice");
        let reply = answer.try_recv().expect("answered");
        assert!(reply.text.is_empty(), "the control thread rendered nothing");
        assert_eq!(reply.show.as_ref().map(|s| s.peers.len()), Some(2 + ADDED));
        let text = reply.into_text();
        let (json, errno) = text.split_once('\n').expect("JSON, then errno");
        assert_eq!(errno, "errno=0\n\n");
        let doc: serde_json::Value = serde_json::from_str(json).expect("JSON");
        assert_eq!(doc["peers"].as_array().map(Vec::len), Some(2 + ADDED));
        assert!(answer.try_recv().is_err(), "the get waits its turn");
        assert_eq!(c.uapi_round(now), 1, "the get's first slice");
    }

    /// The board's document (metrics, telemetry) is built a slice per
    /// round once asked for, published only when whole, and nothing is
    /// built while nobody asks.
    #[test]
    fn the_board_document_is_built_in_slices_between_rounds() {
        let p = ports();
        let (mut c, _commands) = control(&p);
        add_peers(&mut c);
        let latest = |c: &Control| c.board.get(Duration::from_secs(3600), Duration::ZERO);
        assert_eq!(c.serve_snapshot_requests(), 0, "nobody asked");
        c.board.request();
        for round in 1..=2 {
            assert_eq!(c.serve_snapshot_requests(), 1, "round {round}");
            assert!(latest(&c).is_none(), "published before it was whole");
        }
        assert_eq!(c.serve_snapshot_requests(), 1, "the last slice");
        let show = latest(&c).expect("published");
        assert_eq!(show.peers.len(), 2 + ADDED);
        assert_eq!(c.serve_snapshot_requests(), 0, "nothing more asked");
    }
}
