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

impl Control<'_> {
    /// The document, now.
    pub(crate) fn show(&self) -> Show {
        Show {
            peers: self.peer_snapshots(),
            ..self.show_without_peers()
        }
    }

    /// The document less its peers, now: the counters, in time independent
    /// of the peer count (`wgdp show --no-peers`, which bench/pktgen/run.sh
    /// reads twice a trial at 100k peers).
    pub(crate) fn show_without_peers(&self) -> Show {
        Show {
            interface: InterfaceShow {
                name: self.interface.clone(),
                public_key: conf::encode_key(self.identity.public_key().as_bytes()),
                listen_port: self.listen_port,
            },
            peers: Vec::new(),
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
