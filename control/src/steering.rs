//! Steering the plaintext port: one `rte_flow` rule per allowed-IP prefix
//! that sends packets to that prefix to the RX queue of the worker owning
//! its peer, so that plaintext packets are handled where they arrive
//! instead of being handed off.
//!
//! The rules follow the routes: every time the control thread publishes a
//! new routing snapshot (peer added or removed, allowed IPs changed, peer
//! re-homed), [`Steering::sync`] installs the rules that are missing,
//! moves those whose owner changed and removes those whose prefix went.
//! A rule the device refuses (`rte_flow_validate` or `rte_flow_create`
//! fails: no rte_flow, no room, a priority it does not have) is counted in
//! `steering_refused`, and that prefix's packets land wherever the NIC's
//! RSS puts them and are handed to the owner: slower, never wrong. With
//! one worker there is nothing to steer.

use std::collections::{HashMap, HashSet};

use dpdk_sys::rte::{Flow, Port, QueueRule, RteError};
use protocol::allowedips::Prefix;

use crate::counters::{bump, ControlCounters};

/// What steering needs of a port: to take a queue rule, returning a handle
/// that removes the rule when dropped. A [`Port`] does it with
/// `rte_flow_validate` and `rte_flow_create`; the unit tests use a double
/// that accepts rules (no virtual device here has rte_flow).
pub trait RulePort {
    /// An installed rule; dropping it removes the rule.
    type Flow;
    /// The port's name, for the log.
    fn name(&self) -> &str;
    /// Checks and installs `rule`.
    fn install(&self, rule: &QueueRule) -> Result<Self::Flow, RteError>;
}

impl<'p> RulePort for &'p Port {
    type Flow = Flow<'p>;

    fn name(&self) -> &str {
        Port::name(self)
    }

    fn install(&self, rule: &QueueRule) -> Result<Flow<'p>, RteError> {
        self.flow_validate(rule)?;
        self.flow_create(rule)
    }
}

/// One prefix's rule: installed on `queue`, or refused by the device.
#[derive(Debug)]
enum Rule<F> {
    Installed { flow: F, queue: u16 },
    Refused { queue: u16 },
}

impl<F> Rule<F> {
    fn queue(&self) -> u16 {
        match self {
            Rule::Installed { queue, .. } | Rule::Refused { queue } => *queue,
        }
    }
}

/// The plaintext port's rules, by prefix, on a [`RulePort`].
#[derive(Debug)]
pub struct SteeringOn<P: RulePort> {
    /// The port to steer on; `None` with one worker.
    port: Option<P>,
    rules: HashMap<Prefix, Rule<P::Flow>>,
    /// Whether a refusal has been logged (once, with the device's reason).
    warned: bool,
}

/// Steering on a DPDK port.
pub type Steering<'p> = SteeringOn<&'p Port>;

impl<P: RulePort> SteeringOn<P> {
    /// Steering on `port` for `workers` workers (none with one).
    pub fn new(port: P, workers: usize) -> Self {
        Self {
            port: (workers > 1).then_some(port),
            rules: HashMap::new(),
            warned: false,
        }
    }

    /// No steering: one-armed mode, where the tunnel's own traffic
    /// arrives on the same port and a rule for a peer's allowed IPs (a
    /// default route) would steer it too.
    pub fn off() -> Self {
        Self {
            port: None,
            rules: HashMap::new(),
            warned: false,
        }
    }

    /// Rules installed now.
    pub fn installed(&self) -> usize {
        self.rules
            .values()
            .filter(|r| matches!(r, Rule::Installed { .. }))
            .count()
    }

    /// Brings the rules in line with `want` (prefix, owner's queue):
    /// installs what is missing, moves what changed queue, removes the
    /// rest. A prefix the device refused is tried again only when its
    /// queue changes.
    pub fn sync(
        &mut self,
        want: impl IntoIterator<Item = (Prefix, u16)>,
        counters: &ControlCounters,
    ) {
        let Some(port) = &self.port else {
            return;
        };
        let mut keep = HashSet::new();
        for (prefix, queue) in want {
            keep.insert(prefix);
            if self.rules.get(&prefix).is_some_and(|r| r.queue() == queue) {
                continue;
            }
            if let Some(Rule::Installed { flow, .. }) = self.rules.remove(&prefix) {
                // Destroyed first: packets fall back to RSS and handoff
                // until the new rule is in.
                drop(flow);
                bump(&counters.steering_removed);
            }
            let rule = Self::install(port, &mut self.warned, prefix, queue, counters);
            self.rules.insert(prefix, rule);
        }
        self.rules.retain(|prefix, rule| {
            let stays = keep.contains(prefix);
            if !stays && matches!(rule, Rule::Installed { .. }) {
                bump(&counters.steering_removed);
            }
            stays
        });
    }

    fn install(
        port: &P,
        warned: &mut bool,
        prefix: Prefix,
        queue: u16,
        counters: &ControlCounters,
    ) -> Rule<P::Flow> {
        let made = QueueRule::new(prefix.addr(), prefix.prefix_len(), queue)
            .and_then(|rule| port.install(&rule));
        match made {
            Ok(flow) => {
                bump(&counters.steering_installed);
                Rule::Installed { flow, queue }
            }
            Err(e) => {
                bump(&counters.steering_refused);
                if !std::mem::replace(warned, true) {
                    tracing::warn!(
                        port = port.name(),
                        "plaintext steering: the port refuses rte_flow rules ({e}); \
                         packets of refused prefixes are handed off to their owner \
                         (counted in steering_refused)"
                    );
                } else {
                    tracing::debug!(%prefix, queue, "steering rule refused: {e}");
                }
                Rule::Refused { queue }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk_sys::rte::testing::{eal, start_small, unique};
    use dpdk_sys::rte::Mempool;
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::Ordering;

    fn prefix(s: &str, len: u8) -> Prefix {
        Prefix::new(s.parse().expect("address"), len).expect("prefix")
    }

    fn count(c: &ControlCounters) -> (u64, u64, u64) {
        (
            c.steering_installed.load(Ordering::Relaxed),
            c.steering_removed.load(Ordering::Relaxed),
            c.steering_refused.load(Ordering::Relaxed),
        )
    }

    /// net_ring has no rte_flow: every prefix is refused once and counted,
    /// tried again only when its owner changes, and forgotten when it goes.
    #[test]
    fn refused_rules_fall_back_and_are_counted_once() {
        let mp = Mempool::new(eal(), &unique("st"), 1023, 0, 2176).expect("mempool");
        let (mut port, _peer) = Port::ring_pair(eal(), &unique("st"), 2, 64).expect("ring pair");
        start_small(&mut port, 2, &mp);
        let c = ControlCounters::default();
        let mut s = Steering::new(&port, 2);
        let a = prefix("10.9.0.2", 32);
        let b = prefix("10.9.1.0", 24);
        let v6 = prefix("fd00:9::", 64);
        s.sync([(a, 0), (b, 1), (v6, 1)], &c);
        assert_eq!(count(&c), (0, 0, 3));
        assert_eq!(s.installed(), 0);
        s.sync([(a, 0), (b, 1), (v6, 1)], &c);
        assert_eq!(count(&c), (0, 0, 3), "unchanged prefixes are not retried");
        s.sync([(a, 1), (b, 1)], &c);
        assert_eq!(count(&c), (0, 0, 4), "a re-homed prefix is tried again");
        assert_eq!(s.rules.len(), 2, "the removed prefix is forgotten");
        s.sync([], &c);
        assert!(s.rules.is_empty());
        assert_eq!(count(&c), (0, 0, 4));
    }

    /// A port that accepts every rule, as a NIC with rte_flow does: the
    /// rules it holds, each under the id of its handle; dropping the
    /// handle removes the rule.
    #[derive(Debug, Default)]
    struct RuleTable {
        rules: RefCell<HashMap<u64, QueueRule>>,
        next_id: Cell<u64>,
    }

    #[derive(Debug)]
    struct TableFlow<'t> {
        table: &'t RuleTable,
        id: u64,
    }

    impl Drop for TableFlow<'_> {
        fn drop(&mut self) {
            let removed = self.table.rules.borrow_mut().remove(&self.id);
            assert!(removed.is_some(), "rule {} destroyed twice", self.id);
        }
    }

    impl<'t> RulePort for &'t RuleTable {
        type Flow = TableFlow<'t>;

        fn name(&self) -> &str {
            "rule-table"
        }

        fn install(&self, rule: &QueueRule) -> Result<TableFlow<'t>, RteError> {
            let id = self.next_id.get();
            self.next_id.set(id + 1);
            self.rules.borrow_mut().insert(id, *rule);
            Ok(TableFlow { table: self, id })
        }
    }

    impl RuleTable {
        /// The rules held, by id.
        fn held(&self) -> HashMap<u64, QueueRule> {
            self.rules.borrow().clone()
        }
    }

    /// The rules `want` names, as the device should hold them.
    fn rules(want: &[(Prefix, u16)]) -> HashSet<QueueRule> {
        want.iter()
            .map(|(p, q)| QueueRule::new(p.addr(), p.prefix_len(), *q).expect("rule"))
            .collect()
    }

    /// On a port that takes rules: each prefix installed on its owner's
    /// queue, left alone while unchanged, moved (destroyed, then created
    /// on the new queue) when its peer is re-homed, destroyed when its
    /// peer goes, and all destroyed with the steering; every step counted
    /// exactly, and the device holds exactly the rules the routes name.
    #[test]
    fn accepted_rules_are_installed_moved_and_removed() {
        let table = RuleTable::default();
        let c = ControlCounters::default();
        let mut s = SteeringOn::new(&table, 2);
        let a = prefix("10.9.0.2", 32);
        let b = prefix("10.9.1.0", 24);
        let v6 = prefix("fd00:9::", 64);
        let held = |t: &RuleTable| t.held().into_values().collect::<HashSet<_>>();

        let want = [(a, 0), (b, 1), (v6, 1)];
        s.sync(want, &c);
        assert_eq!(count(&c), (3, 0, 0));
        assert_eq!(s.installed(), 3);
        assert_eq!(held(&table), rules(&want));
        let first = table.held();

        s.sync(want, &c);
        assert_eq!(count(&c), (3, 0, 0), "unchanged rules are left alone");
        assert_eq!(table.held(), first, "the same rules, not recreated");

        // a's peer re-homed to worker 1: a's rule moves, the others stay.
        let want = [(a, 1), (b, 1), (v6, 1)];
        s.sync(want, &c);
        assert_eq!(count(&c), (4, 1, 0));
        assert_eq!(held(&table), rules(&want));
        let now = table.held();
        for (id, rule) in &first {
            assert_eq!(
                now.get(id),
                (rule.queue() == 1).then_some(rule),
                "rule {id}: kept if it did not move"
            );
        }

        // The peer of b and v6 removed: its two rules go.
        s.sync([(a, 1)], &c);
        assert_eq!(count(&c), (4, 3, 0));
        assert_eq!(s.installed(), 1);
        assert_eq!(held(&table), rules(&[(a, 1)]));

        s.sync([], &c);
        assert_eq!(count(&c), (4, 4, 0));
        assert!(table.held().is_empty());

        // Rules still installed when steering ends are destroyed with it.
        s.sync([(a, 0), (v6, 1)], &c);
        assert_eq!(count(&c), (6, 4, 0));
        assert_eq!(table.held().len(), 2);
        drop(s);
        assert!(table.held().is_empty());
    }

    #[test]
    fn one_worker_steers_nothing() {
        let (port, _peer) = Port::ring_pair(eal(), &unique("s1"), 1, 64).expect("ring pair");
        let c = ControlCounters::default();
        let mut s = Steering::new(&port, 1);
        s.sync([(prefix("10.9.0.0", 24), 0)], &c);
        assert_eq!(count(&c), (0, 0, 0));
        assert!(s.rules.is_empty());
    }
}
