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

use dataplane::route::NO_OWNER;
use dpdk_sys::rte::{Flow, Port, QueueRule};
use protocol::allowedips::Prefix;

use crate::control::Control;
use crate::counters::{bump, ControlCounters};

/// One prefix's rule: installed, or refused by the device.
#[derive(Debug)]
enum Rule<'p> {
    Installed(Flow<'p>),
    Refused { queue: u16 },
}

impl Rule<'_> {
    fn queue(&self) -> u16 {
        match self {
            Rule::Installed(f) => f.rule().queue(),
            Rule::Refused { queue } => *queue,
        }
    }
}

/// The plaintext port's rules, by prefix.
#[derive(Debug)]
pub struct Steering<'p> {
    /// The port to steer on; `None` with one worker.
    port: Option<&'p Port>,
    rules: HashMap<Prefix, Rule<'p>>,
    /// Whether a refusal has been logged (once, with the device's reason).
    warned: bool,
}

impl<'p> Steering<'p> {
    /// Steering on `port` for `workers` workers (none with one).
    pub fn new(port: &'p Port, workers: usize) -> Self {
        Self {
            port: (workers > 1).then_some(port),
            rules: HashMap::new(),
            warned: false,
        }
    }

    /// Rules installed now.
    pub fn installed(&self) -> usize {
        self.rules
            .values()
            .filter(|r| matches!(r, Rule::Installed(_)))
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
        let Some(port) = self.port else {
            return;
        };
        let mut keep = HashSet::new();
        for (prefix, queue) in want {
            keep.insert(prefix);
            if self.rules.get(&prefix).is_some_and(|r| r.queue() == queue) {
                continue;
            }
            if let Some(Rule::Installed(old)) = self.rules.remove(&prefix) {
                // Destroyed first: packets fall back to RSS and handoff
                // until the new rule is in.
                drop(old);
                bump(&counters.steering_removed);
            }
            let rule = self.install(port, prefix, queue, counters);
            self.rules.insert(prefix, rule);
        }
        self.rules.retain(|prefix, rule| {
            let stays = keep.contains(prefix);
            if !stays && matches!(rule, Rule::Installed(_)) {
                bump(&counters.steering_removed);
            }
            stays
        });
    }

    fn install(
        &mut self,
        port: &'p Port,
        prefix: Prefix,
        queue: u16,
        counters: &ControlCounters,
    ) -> Rule<'p> {
        let made = QueueRule::new(prefix.addr(), prefix.prefix_len(), queue).and_then(|rule| {
            port.flow_validate(&rule)?;
            port.flow_create(&rule)
        });
        match made {
            Ok(flow) => {
                bump(&counters.steering_installed);
                Rule::Installed(flow)
            }
            Err(e) => {
                bump(&counters.steering_refused);
                if !std::mem::replace(&mut self.warned, true) {
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

impl Control<'_> {
    /// Brings the plaintext port's rules in line with the routes: each
    /// allowed-IP prefix to its owner's queue.
    pub(crate) fn steer(&mut self) {
        let owners = &self.owners;
        let want = self.allowed.iter().filter_map(|(prefix, id)| {
            let owner = *owners.get(id as usize)?;
            (owner != NO_OWNER).then_some((prefix, owner))
        });
        self.steering.sync(want, &self.counters);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk_sys::rte::testing::{eal, start_small, unique};
    use dpdk_sys::rte::Mempool;
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
