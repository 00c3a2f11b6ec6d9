//! The neighbour table: next-hop IP address to MAC address, with the
//! reachability states of RFC 4861 section 7.3.2 (loosely, and for ARP too),
//! and the packets waiting for a resolution to finish.
//!
//! Time is passed in; the table never reads a clock. The caller drives it:
//! [`NeighbourTable::resolve`] for every packet that needs a next-hop MAC,
//! [`NeighbourTable::learn`] for every (IP, MAC) pair that ARP or ND
//! reports, and [`NeighbourTable::poll`] whenever
//! [`NeighbourTable::next_deadline`] has passed, sending the probes it names
//! and counting the packets it expires.
//!
//! States and transitions:
//!
//! - `Incomplete`: the first `resolve` of an unknown address creates it and
//!   asks for a probe at once (probe 1); `poll` probes again every `retrans`
//!   and, once `max_probes` probes went unanswered, turns it `Failed` and
//!   expires its queue.
//! - `Reachable`: a `learn` confirms the address; after `reachable_time`
//!   without a new confirmation `poll` turns it `Stale`.
//! - `Stale`: still used for sending, and probed (unicast, at most every
//!   `retrans`) until a `learn` makes it `Reachable` again; after
//!   `max_probes` unanswered probes it turns `Failed` (RFC 4861's PROBE to
//!   unreachable).
//! - `Failed`: not used; the next `resolve` at least `retrans` after the
//!   failure starts over as `Incomplete`, an earlier one is refused.

use std::collections::{BTreeMap, VecDeque};
use std::mem;
use std::net::IpAddr;
use std::time::Duration;

use protocol::time::Instant;

use super::Mac;

/// Timers and limits of a [`NeighbourTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourConfig {
    /// How long a confirmation keeps an entry `Reachable` (RFC 4861
    /// REACHABLE_TIME; 30 s).
    pub reachable_time: Duration,
    /// The interval between probes of one address (RFC 4861 RETRANS_TIMER;
    /// 1 s), and the hold-down before a `Failed` address is tried again.
    pub retrans: Duration,
    /// Unanswered probes before an address is `Failed` (RFC 4861
    /// MAX_MULTICAST_SOLICIT / MAX_UNICAST_SOLICIT; 3). At least one probe
    /// is always sent.
    pub max_probes: u8,
    /// Packets queued per unresolved address (16).
    pub per_ip_limit: usize,
    /// Packets queued over all unresolved addresses (1024).
    pub total_limit: usize,
    /// Entries in the table, in any state (4096).
    pub max_entries: usize,
}

impl Default for NeighbourConfig {
    fn default() -> Self {
        NeighbourConfig {
            reachable_time: Duration::from_secs(30),
            retrans: Duration::from_secs(1),
            max_probes: 3,
            per_ip_limit: 16,
            total_limit: 1024,
            max_entries: 4096,
        }
    }
}

/// The state of one neighbour, with the data each state needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State<P> {
    /// Being resolved: probes are out and packets wait.
    Incomplete {
        /// When resolution started.
        since: Instant,
        /// Probes sent so far.
        probes: u8,
        /// When the next probe is due (or the entry fails).
        next_probe: Instant,
        /// The packets waiting for the address, oldest first.
        pending: VecDeque<P>,
    },
    /// Recently confirmed.
    Reachable {
        /// The neighbour's MAC address.
        mac: Mac,
        /// When it was last confirmed.
        confirmed: Instant,
    },
    /// Unconfirmed for `reachable_time`: still used, being re-probed.
    Stale {
        /// The last known MAC address.
        mac: Mac,
        /// When the entry became stale.
        since: Instant,
        /// Refresh probes sent so far.
        probes: u8,
        /// When the next probe is due (or the entry fails).
        next_probe: Instant,
    },
    /// Resolution or refresh went unanswered.
    Failed {
        /// When the entry failed.
        since: Instant,
    },
}

impl<P> State<P> {
    /// The MAC address to send to, in the `Reachable` and `Stale` states.
    pub fn usable_mac(&self) -> Option<Mac> {
        match self {
            State::Reachable { mac, .. } | State::Stale { mac, .. } => Some(*mac),
            State::Incomplete { .. } | State::Failed { .. } => None,
        }
    }
}

/// Why [`NeighbourTable::resolve`] refused a packet (the caller counts it as
/// a drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address already has `per_ip_limit` packets waiting.
    QueueFull,
    /// `total_limit` packets are waiting over all addresses.
    TotalFull,
    /// The table holds `max_entries` entries and none may be evicted.
    TableFull,
    /// The address failed less than `retrans` ago.
    Failed,
}

/// The outcome of [`NeighbourTable::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolve<P> {
    /// The MAC address is known: send the packet to it now.
    Ready(Mac, P),
    /// The packet waits for the address; when `probe_now`, resolution just
    /// started and the caller sends the first probe (broadcast ARP request
    /// or multicast neighbour solicitation) now.
    Queued {
        /// Whether to send the first probe now.
        probe_now: bool,
    },
    /// The packet is handed back to be dropped.
    Refused(P, Refusal),
}

/// The outcome of [`NeighbourTable::learn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned<P> {
    /// Whether the usable mapping of the address changed (new, different
    /// MAC, or usable again): the published snapshot is out of date.
    pub changed: bool,
    /// The packets that waited for the address, oldest first, to be sent
    /// to the learned MAC now.
    pub released: Vec<P>,
}

/// A probe [`NeighbourTable::poll`] asks the caller to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The address to resolve.
    pub ip: IpAddr,
    /// `None`: a broadcast ARP request or multicast neighbour solicitation.
    /// `Some(mac)`: a unicast refresh probe of a stale entry, sent to `mac`.
    pub unicast: Option<Mac>,
}

/// The outcome of [`NeighbourTable::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll<P> {
    /// The probes to send now.
    pub probes: Vec<Probe>,
    /// Packets whose address failed to resolve, to be dropped and counted.
    pub expired: Vec<P>,
    /// Whether a usable entry failed: the published snapshot is out of date.
    pub changed: bool,
}

/// Next-hop IP address to MAC address, with the packets waiting for
/// unresolved addresses. `P` is the waiting item, an mbuf handle in the
/// control thread.
#[derive(Debug, Clone)]
pub struct NeighbourTable<P> {
    config: NeighbourConfig,
    entries: BTreeMap<IpAddr, State<P>>,
    pending_total: usize,
}

impl<P> Default for NeighbourTable<P> {
    fn default() -> Self {
        NeighbourTable::new(NeighbourConfig::default())
    }
}

impl<P> NeighbourTable<P> {
    /// An empty table.
    pub fn new(config: NeighbourConfig) -> Self {
        NeighbourTable {
            config,
            entries: BTreeMap::new(),
            pending_total: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NeighbourConfig {
        &self.config
    }

    /// The number of entries, in any state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of packets waiting over all addresses.
    pub fn pending(&self) -> usize {
        self.pending_total
    }

    /// The state of `ip`'s entry, if any.
    pub fn state(&self, ip: IpAddr) -> Option<&State<P>> {
        self.entries.get(&ip)
    }

    /// The MAC address to send to `ip`, if the entry is `Reachable` or
    /// `Stale`.
    pub fn lookup(&self, ip: IpAddr) -> Option<Mac> {
        self.entries.get(&ip).and_then(State::usable_mac)
    }

    /// Every usable (`Reachable` or `Stale`) entry, in address order: what
    /// the control thread publishes to the lcores.
    pub fn snapshot(&self) -> Vec<(IpAddr, Mac)> {
        self.entries
            .iter()
            .filter_map(|(ip, s)| s.usable_mac().map(|mac| (*ip, mac)))
            .collect()
    }

    fn max_probes(&self) -> u8 {
        self.config.max_probes.max(1)
    }

    /// Finds the MAC address for `item`, bound for `ip`: hands it back at
    /// once if the address is usable, queues it otherwise (starting
    /// resolution if needed), or refuses it when a limit is reached or the
    /// address failed less than `retrans` ago.
    pub fn resolve(&mut self, ip: IpAddr, item: P, now: Instant) -> Resolve<P> {
        let total_full = self.pending_total >= self.config.total_limit;
        match self.entries.get_mut(&ip) {
            Some(State::Reachable { mac, .. } | State::Stale { mac, .. }) => {
                Resolve::Ready(*mac, item)
            }
            Some(State::Incomplete { pending, .. }) => {
                if pending.len() >= self.config.per_ip_limit {
                    Resolve::Refused(item, Refusal::QueueFull)
                } else if total_full {
                    Resolve::Refused(item, Refusal::TotalFull)
                } else {
                    pending.push_back(item);
                    self.pending_total += 1;
                    Resolve::Queued { probe_now: false }
                }
            }
            Some(State::Failed { since }) => {
                if !since.has_expired(self.config.retrans, now) {
                    Resolve::Refused(item, Refusal::Failed)
                } else if let Some(refusal) = self.queue_refusal() {
                    Resolve::Refused(item, refusal)
                } else {
                    self.start(ip, item, now)
                }
            }
            None => {
                if let Some(refusal) = self.queue_refusal() {
                    Resolve::Refused(item, refusal)
                } else if !self.make_room() {
                    Resolve::Refused(item, Refusal::TableFull)
                } else {
                    self.start(ip, item, now)
                }
            }
        }
    }

    /// Why a first packet for an address could not be queued, if it could
    /// not.
    fn queue_refusal(&self) -> Option<Refusal> {
        if self.config.per_ip_limit == 0 {
            Some(Refusal::QueueFull)
        } else if self.pending_total >= self.config.total_limit {
            Some(Refusal::TotalFull)
        } else {
            None
        }
    }

    /// Starts resolving `ip` with `item` as its first waiting packet; the
    /// caller sends probe 1 now. Replaces a `Failed` entry, or adds one
    /// where room was made.
    fn start(&mut self, ip: IpAddr, item: P, now: Instant) -> Resolve<P> {
        self.entries.insert(
            ip,
            State::Incomplete {
                since: now,
                probes: 1,
                next_probe: now + self.config.retrans,
                pending: VecDeque::from([item]),
            },
        );
        self.pending_total += 1;
        Resolve::Queued { probe_now: true }
    }

    /// Records that `ip` is at `mac` (an ARP packet or neighbour
    /// advertisement said so): the entry becomes `Reachable`, created if
    /// there is room, and the packets that waited for it are released.
    pub fn learn(&mut self, ip: IpAddr, mac: Mac, now: Instant) -> Learned<P> {
        let confirmed = State::Reachable {
            mac,
            confirmed: now,
        };
        match self.entries.get_mut(&ip) {
            Some(state) => {
                let changed = state.usable_mac() != Some(mac);
                let released = match mem::replace(state, confirmed) {
                    State::Incomplete { pending, .. } => {
                        self.pending_total = self.pending_total.saturating_sub(pending.len());
                        Vec::from(pending)
                    }
                    State::Reachable { .. } | State::Stale { .. } | State::Failed { .. } => {
                        Vec::new()
                    }
                };
                Learned { changed, released }
            }
            None => {
                let inserted = self.make_room();
                if inserted {
                    self.entries.insert(ip, confirmed);
                }
                Learned {
                    changed: inserted,
                    released: Vec::new(),
                }
            }
        }
    }

    /// Advances the timers to `now`: the probes to send (retransmissions of
    /// incomplete entries, refreshes of stale ones) and the packets of
    /// entries that failed.
    pub fn poll(&mut self, now: Instant) -> Poll<P> {
        let max_probes = self.max_probes();
        let NeighbourConfig {
            retrans,
            reachable_time,
            ..
        } = self.config;
        let mut out = Poll {
            probes: Vec::new(),
            expired: Vec::new(),
            changed: false,
        };
        for (ip, state) in self.entries.iter_mut() {
            match state {
                State::Incomplete {
                    probes,
                    next_probe,
                    pending,
                    ..
                } if *next_probe <= now => {
                    if *probes < max_probes {
                        *probes += 1;
                        *next_probe = now + retrans;
                        out.probes.push(Probe {
                            ip: *ip,
                            unicast: None,
                        });
                    } else {
                        self.pending_total = self.pending_total.saturating_sub(pending.len());
                        out.expired.extend(pending.drain(..));
                        *state = State::Failed { since: now };
                    }
                }
                State::Reachable { mac, confirmed }
                    if confirmed.has_expired(reachable_time, now) =>
                {
                    let mac = *mac;
                    *state = State::Stale {
                        mac,
                        since: *confirmed + reachable_time,
                        probes: 1,
                        next_probe: now + retrans,
                    };
                    out.probes.push(Probe {
                        ip: *ip,
                        unicast: Some(mac),
                    });
                }
                State::Stale {
                    mac,
                    probes,
                    next_probe,
                    ..
                } if *next_probe <= now => {
                    if *probes < max_probes {
                        *probes += 1;
                        *next_probe = now + retrans;
                        out.probes.push(Probe {
                            ip: *ip,
                            unicast: Some(*mac),
                        });
                    } else {
                        *state = State::Failed { since: now };
                        out.changed = true;
                    }
                }
                State::Incomplete { .. }
                | State::Reachable { .. }
                | State::Stale { .. }
                | State::Failed { .. } => {}
            }
        }
        out
    }

    /// When [`poll`](Self::poll) next has work: the earliest probe, expiry
    /// or staleness deadline; `None` when only failed entries (retried by
    /// `resolve`) or none remain.
    pub fn next_deadline(&self) -> Option<Instant> {
        let reachable_time = self.config.reachable_time;
        self.entries
            .values()
            .filter_map(|s| match s {
                State::Incomplete { next_probe, .. } | State::Stale { next_probe, .. } => {
                    Some(*next_probe)
                }
                State::Reachable { confirmed, .. } => Some(*confirmed + reachable_time),
                State::Failed { .. } => None,
            })
            .min()
    }

    /// Makes room for one more entry: true if there is room, evicting the
    /// oldest `Failed` entry, or failing that the oldest `Stale` one, when
    /// the table is full; false if every entry is `Incomplete` or
    /// `Reachable`.
    fn make_room(&mut self) -> bool {
        if self.entries.len() < self.config.max_entries {
            return true;
        }
        let oldest = |want_failed: bool| {
            self.entries
                .iter()
                .filter_map(|(ip, s)| match s {
                    State::Failed { since } if want_failed => Some((*since, *ip)),
                    State::Stale { since, .. } if !want_failed => Some((*since, *ip)),
                    _ => None,
                })
                .min()
                .map(|(_, ip)| ip)
        };
        match oldest(true).or_else(|| oldest(false)) {
            Some(victim) => {
                self.entries.remove(&victim);
                self.entries.len() < self.config.max_entries
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MAC_A: Mac = [0x02, 0, 0, 0, 0, 0xa];
    const MAC_B: Mac = [0x02, 0, 0, 0, 0, 0xb];

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn table() -> NeighbourTable<Vec<u8>> {
        NeighbourTable::default()
    }

    #[test]
    fn resolve_queues_then_learn_releases_in_order() {
        let mut t = table();
        assert_eq!(
            t.resolve(v4(1), vec![1], ms(0)),
            Resolve::Queued { probe_now: true }
        );
        for i in 2..=4 {
            assert_eq!(
                t.resolve(v4(1), vec![i], ms(10)),
                Resolve::Queued { probe_now: false }
            );
        }
        assert_eq!(t.pending(), 4);
        assert_eq!(t.lookup(v4(1)), None);
        let learned = t.learn(v4(1), MAC_A, ms(20));
        assert!(learned.changed);
        assert_eq!(learned.released, vec![vec![1], vec![2], vec![3], vec![4]]);
        assert_eq!(t.pending(), 0);
        assert_eq!(t.lookup(v4(1)), Some(MAC_A));
        assert_eq!(
            t.resolve(v4(1), vec![5], ms(30)),
            Resolve::Ready(MAC_A, vec![5])
        );
        // The same MAC again changes nothing; a new one does.
        assert!(!t.learn(v4(1), MAC_A, ms(40)).changed);
        assert!(t.learn(v4(1), MAC_B, ms(50)).changed);
        assert_eq!(t.snapshot(), vec![(v4(1), MAC_B)]);
    }

    #[test]
    fn per_ip_and_total_limits_refuse() {
        let config = NeighbourConfig {
            per_ip_limit: 2,
            total_limit: 3,
            ..NeighbourConfig::default()
        };
        let mut t = NeighbourTable::new(config);
        assert!(matches!(
            t.resolve(v4(1), vec![1], ms(0)),
            Resolve::Queued { probe_now: true }
        ));
        assert!(matches!(
            t.resolve(v4(1), vec![2], ms(0)),
            Resolve::Queued { probe_now: false }
        ));
        assert_eq!(
            t.resolve(v4(1), vec![3], ms(0)),
            Resolve::Refused(vec![3], Refusal::QueueFull)
        );
        assert!(matches!(
            t.resolve(v4(2), vec![4], ms(0)),
            Resolve::Queued { probe_now: true }
        ));
        assert_eq!(t.pending(), 3);
        assert_eq!(
            t.resolve(v4(2), vec![5], ms(0)),
            Resolve::Refused(vec![5], Refusal::TotalFull)
        );
        // A new address is refused without creating an entry.
        assert_eq!(
            t.resolve(v4(3), vec![6], ms(0)),
            Resolve::Refused(vec![6], Refusal::TotalFull)
        );
        assert_eq!(t.len(), 2);
        // Releasing frees room in the total.
        assert_eq!(t.learn(v4(1), MAC_A, ms(1)).released.len(), 2);
        assert!(matches!(
            t.resolve(v4(3), vec![7], ms(1)),
            Resolve::Queued { probe_now: true }
        ));
    }

    #[test]
    fn probes_retransmit_then_fail_and_expire_pending() {
        let mut t = table();
        let ip = v4(9);
        assert!(matches!(
            t.resolve(ip, vec![1], ms(0)),
            Resolve::Queued { probe_now: true }
        ));
        assert!(matches!(
            t.resolve(ip, vec![2], ms(500)),
            Resolve::Queued { probe_now: false }
        ));
        assert_eq!(t.next_deadline(), Some(ms(1000)));
        let p = t.poll(ms(999));
        assert!(p.probes.is_empty() && p.expired.is_empty());
        for (at, probes) in [(1000, 2), (2000, 3)] {
            let p = t.poll(ms(at));
            assert_eq!(p.probes, vec![Probe { ip, unicast: None }], "at {at}");
            assert!(p.expired.is_empty());
            assert_eq!(t.next_deadline(), Some(ms(at + 1000)));
            assert!(matches!(
                t.state(ip),
                Some(State::Incomplete { probes: n, .. }) if *n == probes
            ));
        }
        let p = t.poll(ms(3000));
        assert!(p.probes.is_empty());
        assert_eq!(p.expired, vec![vec![1], vec![2]]);
        assert!(!p.changed, "nothing usable was lost");
        assert_eq!(t.state(ip), Some(&State::Failed { since: ms(3000) }));
        assert_eq!(t.pending(), 0);
        assert_eq!(t.next_deadline(), None);
        // Held down for `retrans`, then tried again from the start.
        assert_eq!(
            t.resolve(ip, vec![3], ms(3999)),
            Resolve::Refused(vec![3], Refusal::Failed)
        );
        assert_eq!(
            t.resolve(ip, vec![4], ms(4000)),
            Resolve::Queued { probe_now: true }
        );
        assert_eq!(t.next_deadline(), Some(ms(5000)));
        assert_eq!(t.learn(ip, MAC_A, ms(4100)).released, vec![vec![4]]);
    }

    #[test]
    fn reachable_goes_stale_is_probed_and_confirmed_again() {
        let mut t = table();
        let ip = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert!(t.learn(ip, MAC_A, ms(0)).changed);
        assert_eq!(t.next_deadline(), Some(ms(30_000)));
        assert!(t.poll(ms(29_999)).probes.is_empty());
        let p = t.poll(ms(30_000));
        assert_eq!(
            p.probes,
            vec![Probe {
                ip,
                unicast: Some(MAC_A)
            }]
        );
        assert!(matches!(t.state(ip), Some(State::Stale { .. })));
        // Stale is still usable, for lookups, resolves and the snapshot.
        assert_eq!(t.lookup(ip), Some(MAC_A));
        assert_eq!(
            t.resolve(ip, vec![1], ms(30_100)),
            Resolve::Ready(MAC_A, vec![1])
        );
        assert_eq!(t.snapshot(), vec![(ip, MAC_A)]);
        // Re-probed at most every `retrans`.
        assert_eq!(t.next_deadline(), Some(ms(31_000)));
        assert!(t.poll(ms(30_500)).probes.is_empty());
        assert_eq!(t.poll(ms(31_000)).probes.len(), 1);
        let learned = t.learn(ip, MAC_A, ms(31_200));
        assert!(!learned.changed && learned.released.is_empty());
        assert_eq!(
            t.state(ip),
            Some(&State::Reachable {
                mac: MAC_A,
                confirmed: ms(31_200)
            })
        );
        assert_eq!(t.next_deadline(), Some(ms(61_200)));
    }

    #[test]
    fn unanswered_stale_entry_fails_and_reports_the_change() {
        let mut t = table();
        t.learn(v4(1), MAC_A, ms(0));
        let mut sent = 0;
        for at in [30_000, 31_000, 32_000] {
            let p = t.poll(ms(at));
            sent += p.probes.len();
            assert!(!p.changed);
        }
        assert_eq!(sent, 3);
        let p = t.poll(ms(33_000));
        assert!(p.changed && p.probes.is_empty() && p.expired.is_empty());
        assert_eq!(t.lookup(v4(1)), None);
        assert!(t.snapshot().is_empty());
        assert_eq!(t.len(), 1);
        // A later answer makes it usable again.
        assert!(t.learn(v4(1), MAC_A, ms(40_000)).changed);
    }

    #[test]
    fn eviction_takes_the_oldest_stale_entry_else_refuses() {
        let config = NeighbourConfig {
            max_entries: 3,
            ..NeighbourConfig::default()
        };
        let mut t = NeighbourTable::new(config);
        t.learn(v4(1), MAC_A, ms(0));
        t.learn(v4(2), MAC_A, ms(1000));
        t.learn(v4(3), MAC_A, ms(2000));
        // Full of reachable entries: refuse both kinds of newcomer.
        assert_eq!(
            t.resolve(v4(4), vec![1], ms(3000)),
            Resolve::Refused(vec![1], Refusal::TableFull)
        );
        assert!(!t.learn(v4(4), MAC_B, ms(3000)).changed);
        assert_eq!(t.len(), 3);
        // At 31.5 s entries 1 and 2 are stale; the oldest, 1, goes first.
        t.poll(ms(31_500));
        assert!(t.learn(v4(4), MAC_B, ms(31_500)).changed);
        assert_eq!(t.lookup(v4(1)), None);
        assert_eq!(t.lookup(v4(2)), Some(MAC_A));
        // The remaining stale entry, 2, makes room for an incomplete one.
        assert!(matches!(
            t.resolve(v4(5), vec![2], ms(31_500)),
            Resolve::Queued { probe_now: true }
        ));
        assert_eq!(t.state(v4(2)), None);
        // Incomplete and reachable entries are never evicted.
        assert!(!t.learn(v4(6), MAC_B, ms(31_500)).changed);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn eviction_takes_a_failed_entry_before_an_older_stale_one() {
        let config = NeighbourConfig {
            max_entries: 2,
            ..NeighbourConfig::default()
        };
        let mut t = NeighbourTable::new(config);
        t.learn(v4(1), MAC_A, ms(0));
        t.learn(v4(2), MAC_A, ms(1000));
        // 1: stale at 30 s, failed at 33 s. 2: stale since 31 s.
        for at in [30_000, 31_000, 32_000, 33_000] {
            t.poll(ms(at));
        }
        assert_eq!(t.state(v4(1)), Some(&State::Failed { since: ms(33_000) }));
        assert!(matches!(
            t.state(v4(2)),
            Some(State::Stale { since, .. }) if *since == ms(31_000)
        ));
        assert!(matches!(
            t.resolve(v4(3), vec![1], ms(33_000)),
            Resolve::Queued { probe_now: true }
        ));
        assert_eq!(t.state(v4(1)), None);
        assert_eq!(t.lookup(v4(2)), Some(MAC_A));
        // Now only an incomplete and a stale entry: the stale one goes.
        assert!(t.learn(v4(4), MAC_B, ms(33_000)).changed);
        assert_eq!(t.state(v4(2)), None);
        // Incomplete and reachable only: nothing to evict.
        assert!(!t.learn(v4(5), MAC_B, ms(33_000)).changed);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn next_deadline_is_the_earliest_of_all_timers() {
        let mut t = table();
        assert_eq!(t.next_deadline(), None);
        t.learn(v4(1), MAC_A, ms(0));
        assert_eq!(t.next_deadline(), Some(ms(30_000)));
        t.resolve(v4(2), vec![], ms(100));
        assert_eq!(t.next_deadline(), Some(ms(1100)));
        t.learn(v4(2), MAC_B, ms(200));
        assert_eq!(t.next_deadline(), Some(ms(30_000)));
        // Polling late probes from `now`, not from the missed deadline.
        t.poll(ms(45_000));
        assert_eq!(t.next_deadline(), Some(ms(46_000)));
        assert!(matches!(
            t.state(v4(1)),
            Some(State::Stale { since, .. }) if *since == ms(30_000)
        ));
    }

    #[test]
    fn zero_limits_refuse_everything_without_panicking() {
        let config = NeighbourConfig {
            max_probes: 0,
            per_ip_limit: 0,
            total_limit: 0,
            max_entries: 0,
            ..NeighbourConfig::default()
        };
        let mut t = NeighbourTable::new(config);
        assert_eq!(
            t.resolve(v4(1), vec![1], ms(0)),
            Resolve::Refused(vec![1], Refusal::QueueFull)
        );
        assert!(!t.learn(v4(1), MAC_A, ms(0)).changed);
        assert!(t.is_empty());
        assert_eq!(t.config().max_entries, 0);
    }
}
