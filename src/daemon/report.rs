//! The counters report `wgdp run` prints periodically and on exit.
//!
//! One line per item, stable and easy to parse:
//! `counter drop.<reason> N`, `counter event.<name> N` (summed over the
//! workers), `counter control.<name> N`, then one `peer` line per peer.

use std::fmt::Write;
use std::sync::Arc;
use std::time::SystemTime;

use dataplane::counters::{DropReason, Event, WorkerCounters};

use control::counters::ControlCounters;
use control::snapshot::PeerSnapshot;

/// Renders the report.
pub fn render(
    workers: &[Arc<WorkerCounters>],
    control: &ControlCounters,
    peers: &[PeerSnapshot],
) -> String {
    let mut out = String::new();
    for r in DropReason::ALL {
        let n: u64 = workers.iter().map(|w| w.drops(*r)).sum();
        let _ = writeln!(out, "counter drop.{} {n}", r.label());
    }
    for e in Event::ALL {
        let n: u64 = workers.iter().map(|w| w.events(*e)).sum();
        let _ = writeln!(out, "counter event.{} {n}", e.label());
    }
    for (name, n) in control.snapshot() {
        let _ = writeln!(out, "counter control.{name} {n}");
    }
    let now = SystemTime::now();
    for p in peers {
        let endpoint = p
            .endpoint
            .map_or_else(|| "none".to_owned(), |e| e.to_string());
        let age = p
            .handshake_age(now)
            .map_or_else(|| "never".to_owned(), |d| format!("{}s", d.as_secs()));
        let _ = writeln!(
            out,
            "peer {} handshakes={} latest_handshake={age} rx_bytes={} tx_bytes={} endpoint={endpoint}",
            p.key_base64(),
            p.handshakes,
            p.rx_bytes,
            p.tx_bytes,
        );
    }
    out
}
