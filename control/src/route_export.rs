//! Live-route export, for a cluster of instances behind ECMP
//! (docs/cluster.md): the allowed IPs of the peers whose session is live
//! on this instance, and the prefixes of the tunnel groups with a live
//! member, kept as kernel routes on the plaintext exception TAP in the
//! table `[cluster] export_table`. A routing daemon beside wgdp (BIRD's
//! `kernel` protocol with `learn`) imports that table and announces it, so
//! that the protected network sends each peer's traffic to the instance
//! that holds its session.
//!
//! "Live" is exactly the tunnel groups' rule ([`dataplane::peer::Liveness`]):
//! a current keypair younger than REJECT_AFTER_TIME, and no data of ours
//! left unanswered past KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
//!
//! Kernel routes rather than a route file for a BIRD `static` protocol and
//! `birdc configure`: BIRD learns a kernel table change from netlink at once
//! and applies it route by route, while a reconfiguration re-reads the whole
//! configuration (a malformed file, or a second writer, stops every
//! protocol's update, and a failed `configure` leaves the old set running
//! with only a log line); the routes sit on the exception TAP, which the
//! kernel deletes with every route on it when wgdp's process ends, however
//! it ends, so a crashed instance cannot keep announcing; and the table is
//! a plain kernel object that `ip route show table T` checks, and that any
//! other daemon (FRR's `zebra`, a `kernel` table import) reads as well.
//!
//! The control thread computes the wanted set every [`EXPORT_EVERY`] (a
//! scan of the peers, spaced like the timer scan when it gets long) and
//! applies the difference, at most [`OPS_PER_ROUND`] kernel requests per
//! control-loop round; a failed request is retried at the next scan.

use std::collections::HashSet;
use std::time::Duration;

use protocol::allowedips::Prefix;
use protocol::time::Instant;
use serde::{Deserialize, Serialize};

use crate::counters::{bump, ControlCounters};
use crate::kernel_routes::{KernelRouteError, KernelRoutes};

/// How often the wanted routes are recomputed: a session that goes live
/// or dies is exported or withdrawn within this and the requests' time.
pub const EXPORT_EVERY: Duration = Duration::from_millis(200);
/// A long scan (many peers) waits at least this many times its own length
/// before the next, so that it takes at most a tenth of the control thread.
const SCAN_SHARE: u32 = 10;
/// Kernel requests per control-loop round (each one a few microseconds),
/// so that handshakes and timers run between them.
pub const OPS_PER_ROUND: usize = 256;

/// Where the routes go: the kernel, or a test's record.
pub trait RouteSink: Send {
    /// Adds (or replaces) the route to `prefix`.
    fn add(&mut self, prefix: Prefix) -> Result<(), KernelRouteError>;
    /// Deletes the route to `prefix` (one already gone is no error).
    fn delete(&mut self, prefix: Prefix) -> Result<(), KernelRouteError>;
}

impl RouteSink for KernelRoutes {
    fn add(&mut self, prefix: Prefix) -> Result<(), KernelRouteError> {
        KernelRoutes::add(self, prefix)
    }

    fn delete(&mut self, prefix: Prefix) -> Result<(), KernelRouteError> {
        KernelRoutes::delete(self, prefix)
    }
}

/// One kernel request waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add(Prefix),
    Delete(Prefix),
}

/// The export: what the kernel has, and what is still to do.
pub struct RouteExport {
    sink: Box<dyn RouteSink>,
    table: u8,
    interface: String,
    /// Routes the kernel acknowledged.
    installed: HashSet<Prefix>,
    /// The wanted set of the last scan (kept for its capacity).
    want: HashSet<Prefix>,
    /// Requests of the last scan not yet made, in order (deletes first).
    pending: Vec<Op>,
    next_scan: Option<Instant>,
    /// Whether the last request failed (logged once per streak).
    failing: bool,
}

impl std::fmt::Debug for RouteExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteExport")
            .field("table", &self.table)
            .field("interface", &self.interface)
            .field("installed", &self.installed.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// The export in `wgdp show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteExportShow {
    /// The kernel routing table.
    pub table: u8,
    /// The interface the routes point at (the plaintext exception TAP).
    pub interface: String,
    /// The prefixes exported now (acknowledged by the kernel), sorted.
    pub routes: Vec<String>,
    /// Requests still to make (a scan's changes being applied, or
    /// failed ones waiting for the next scan).
    pub pending: usize,
}

impl RouteExport {
    /// Exports into the kernel's `table` on `interface`, after deleting
    /// whatever a previous run left there.
    pub fn open(table: u8, interface: &str) -> Result<Self, KernelRouteError> {
        let mut kernel = KernelRoutes::open(table, interface)?;
        let stale = kernel.flush()?;
        if stale > 0 {
            tracing::warn!(
                table,
                stale,
                "route export: a previous run's routes deleted"
            );
        }
        Ok(Self::with_sink(Box::new(kernel), table, interface))
    }

    /// Exports into `sink` (tests), named as `table` on `interface`.
    pub fn with_sink(sink: Box<dyn RouteSink>, table: u8, interface: &str) -> Self {
        Self {
            sink,
            table,
            interface: interface.to_owned(),
            installed: HashSet::new(),
            want: HashSet::new(),
            pending: Vec::new(),
            next_scan: None,
            failing: false,
        }
    }

    /// The routes exported now.
    pub fn installed(&self) -> &HashSet<Prefix> {
        &self.installed
    }

    /// The export's share of a control-loop round: when a scan is due,
    /// `live` fills the wanted set (cleared first) and the difference is
    /// planned, `clock` timing the scan; then up to [`OPS_PER_ROUND`]
    /// kernel requests. Returns the requests made (work done).
    pub(crate) fn round(
        &mut self,
        now: Instant,
        live: impl FnOnce(&mut HashSet<Prefix>),
        clock: impl FnOnce() -> Instant,
        counters: &ControlCounters,
    ) -> usize {
        if self.scan_due(now) {
            let mut want = std::mem::take(&mut self.want);
            live(&mut want);
            self.want = want;
            self.plan();
            let took = clock().saturating_since(now);
            self.next_scan = Some(now + EXPORT_EVERY.max(took * SCAN_SHARE));
        }
        self.apply(OPS_PER_ROUND, counters)
    }

    /// Whether a scan is due at `now`.
    fn scan_due(&self, now: Instant) -> bool {
        self.next_scan.is_none_or(|at| now >= at)
    }

    /// Plans the requests that make the kernel's set `self.want`:
    /// withdrawals first, so that a prefix is never announced twice.
    fn plan(&mut self) {
        self.pending.clear();
        let (want, installed) = (&self.want, &self.installed);
        self.pending
            .extend(installed.difference(want).map(|p| Op::Delete(*p)));
        self.pending
            .extend(want.difference(installed).map(|p| Op::Add(*p)));
    }

    /// Makes up to `budget` of the pending requests; returns how many.
    fn apply(&mut self, budget: usize, counters: &ControlCounters) -> usize {
        let n = budget.min(self.pending.len());
        for op in self.pending.drain(..n) {
            let result = match op {
                Op::Add(p) => self.sink.add(p).map(|()| {
                    self.installed.insert(p);
                    bump(&counters.routes_exported);
                }),
                Op::Delete(p) => self.sink.delete(p).map(|()| {
                    self.installed.remove(&p);
                    bump(&counters.routes_withdrawn);
                }),
            };
            match result {
                Ok(()) => self.failing = false,
                Err(e) => {
                    bump(&counters.route_export_failures);
                    if !self.failing {
                        tracing::warn!("route export: {e} (retried at the next scan)");
                    }
                    self.failing = true;
                }
            }
        }
        n
    }

    /// Withdraws every exported route (a clean shutdown).
    pub fn withdraw_all(&mut self, counters: &ControlCounters) {
        self.want.clear();
        self.plan();
        let n = self.pending.len();
        self.apply(n, counters);
        tracing::info!(
            table = self.table,
            withdrawn = n,
            left = self.installed.len(),
            "route export: routes withdrawn"
        );
    }

    /// The export for `wgdp show`.
    pub fn show(&self) -> RouteExportShow {
        let mut routes: Vec<Prefix> = self.installed.iter().copied().collect();
        routes.sort_by_key(|p| (p.addr().is_ipv6(), p.addr(), p.prefix_len()));
        RouteExportShow {
            table: self.table,
            interface: self.interface.clone(),
            routes: routes.iter().map(ToString::to_string).collect(),
            pending: self.pending.len(),
        }
    }
}

/// Appends the export's metrics to an exposition (`wgdp_exported_routes`;
/// the requests are the `wgdp_control_routes_*_total` counters).
pub fn render_metrics(out: &mut String, show: &RouteExportShow) {
    let table = show.table.to_string();
    crate::metrics::header(
        out,
        "wgdp_exported_routes",
        "Routes exported now to the kernel table of [cluster] export_table: the allowed IPs of the peers with a live session and the prefixes of the groups with a live member.",
        "gauge",
    );
    crate::metrics::sample(
        out,
        "wgdp_exported_routes",
        &[("table", &table)],
        u64::try_from(show.routes.len()).unwrap_or(u64::MAX),
    );
}

#[cfg(test)]
#[path = "route_export_tests.rs"]
mod tests;
