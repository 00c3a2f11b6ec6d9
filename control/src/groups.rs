//! Tunnel groups on the control thread: the configured groups, resolved
//! into the routing snapshot (members' keys to slots, prefixes merged
//! into the allowed IPs), kept consistent with live UAPI changes, and
//! shown with their per-member packet counts.
//!
//! The UAPI cannot express groups, but what it changes must not leave a
//! group naming what is gone: a member peer removed leaves every group it
//! was in, a prefix given to a peer leaves the group that had it (a prefix
//! moves to its latest holder, as in the kernel), and a group left without
//! members or prefixes is removed. The table file written back makes the
//! same edits (`conf::TableFile::prune_groups`).

use std::sync::Arc;

use dataplane::group::{group_target, member_seed, GroupMember, GroupRoute, MemberCounts};
use dataplane::peer::PeerId;
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::crypto::PublicKey;
use protocol::time::Instant;
use serde::{Deserialize, Serialize};

use crate::counters::{bump, ControlCounters};
use crate::peers::PeerTable;

/// A configured group, as [`crate::control::ControlParts`] takes it.
#[derive(Debug, Clone)]
pub struct InitialGroup {
    /// Its name.
    pub name: String,
    /// Its members' public keys, each a configured peer's.
    pub members: Vec<PublicKey>,
    /// The prefixes routed to it.
    pub prefixes: Vec<Prefix>,
}

/// A member as the control thread holds it.
#[derive(Debug)]
struct Member {
    key: PublicKey,
    seed: u64,
    /// Shared with every snapshot, so the counts survive route changes.
    counts: Arc<MemberCounts>,
}

/// A group as the control thread holds it.
#[derive(Debug)]
struct ControlGroup {
    name: String,
    members: Vec<Member>,
    prefixes: Vec<Prefix>,
}

impl ControlGroup {
    /// The group of `initial`, counting for `workers` workers.
    fn new(initial: InitialGroup, workers: usize) -> Self {
        Self {
            name: initial.name,
            members: initial
                .members
                .into_iter()
                .map(|key| Member {
                    key,
                    seed: member_seed(key.as_bytes()),
                    counts: Arc::new(MemberCounts::new(workers)),
                })
                .collect(),
            prefixes: initial.prefixes,
        }
    }
}

/// A group in `wgdp show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupShow {
    /// Its name.
    pub name: String,
    /// Its prefixes.
    pub prefixes: Vec<String>,
    /// Its members, in table order.
    pub members: Vec<GroupMemberShow>,
}

/// A group member in `wgdp show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMemberShow {
    /// Its public key (base64).
    pub public_key: String,
    /// Whether it carries flows now (a fresh session, data answered).
    pub live: bool,
    /// Packets routed to it through the group.
    pub packets: u64,
}

/// The tunnel groups the control thread holds (see the module doc).
#[derive(Debug)]
pub(crate) struct Groups {
    list: Vec<ControlGroup>,
}

impl Groups {
    /// The configured groups, counting for `workers` workers.
    pub(crate) fn new(initial: Vec<InitialGroup>, workers: usize) -> Self {
        Self {
            list: initial
                .into_iter()
                .map(|g| ControlGroup::new(g, workers))
                .collect(),
        }
    }

    /// How many groups there are.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// The routing snapshot's view of the groups: `allowed` with the
    /// group prefixes merged in, and the groups with their members
    /// resolved to slots of `peers`.
    pub(crate) fn routes(
        &self,
        allowed: &AllowedIps<PeerId>,
        peers: &PeerTable,
    ) -> (AllowedIps<PeerId>, Vec<GroupRoute>) {
        let mut allowed = allowed.clone();
        let mut routes = Vec::with_capacity(self.list.len());
        for (index, group) in self.list.iter().enumerate() {
            for &prefix in &group.prefixes {
                // A peer holding the very same prefix keeps it (the
                // assignment takes it from the group first; this only
                // guards the snapshot).
                if allowed.get(prefix).is_none() {
                    allowed.insert(prefix, group_target(index));
                }
            }
            let members = group
                .members
                .iter()
                .filter_map(|m| {
                    let id = peers.by_key(&m.key)?;
                    let peer = peers.get(id)?;
                    Some(GroupMember {
                        id,
                        seed: m.seed,
                        shared: peer.shared.clone(),
                        counts: m.counts.clone(),
                    })
                })
                .collect();
            routes.push(GroupRoute { members });
        }
        (allowed, routes)
    }

    /// A peer is gone: it leaves every group it was in.
    pub(crate) fn leave(&mut self, key: &PublicKey, counters: &ControlCounters) {
        for group in &mut self.list {
            let before = group.members.len();
            group.members.retain(|m| m.key != *key);
            if group.members.len() != before {
                bump(&counters.group_members_removed);
                tracing::warn!(
                    group = %group.name,
                    peer = %conf::encode_key(key.as_bytes()),
                    members = group.members.len(),
                    "a group member was removed: it leaves the group"
                );
            }
        }
        self.drop_empty();
    }

    /// `prefix` was given to a peer: a group that routed it gives it up.
    pub(crate) fn take_prefix(&mut self, prefix: Prefix) {
        for group in &mut self.list {
            let before = group.prefixes.len();
            group.prefixes.retain(|p| *p != prefix);
            if group.prefixes.len() != before {
                tracing::warn!(
                    group = %group.name,
                    %prefix,
                    "a group prefix was given to a peer: it leaves the group"
                );
            }
        }
        self.drop_empty();
    }

    fn drop_empty(&mut self) {
        self.list.retain(|g| {
            let empty = g.members.is_empty() || g.prefixes.is_empty();
            if empty {
                tracing::warn!(group = %g.name, "group without members or prefixes: removed");
            }
            !empty
        });
    }

    /// Adds to `out` the prefixes of the groups with a live member at
    /// `now`: what the live-route export announces for them
    /// (crate::route_export).
    pub(crate) fn live_prefixes(
        &self,
        peers: &PeerTable,
        now: Instant,
        out: &mut impl Extend<Prefix>,
    ) {
        for g in &self.list {
            if g.members.iter().any(|m| member_live(peers, &m.key, now)) {
                out.extend(g.prefixes.iter().copied());
            }
        }
    }

    /// The groups for `wgdp show` and the metrics.
    pub(crate) fn show(&self, peers: &PeerTable, now: Instant) -> Vec<GroupShow> {
        self.list
            .iter()
            .map(|g| GroupShow {
                name: g.name.clone(),
                prefixes: g.prefixes.iter().map(ToString::to_string).collect(),
                members: g
                    .members
                    .iter()
                    .map(|m| GroupMemberShow {
                        public_key: conf::encode_key(m.key.as_bytes()),
                        live: member_live(peers, &m.key, now),
                        packets: m.counts.total(),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Whether the member `key` carries flows at `now` (a fresh session,
/// data answered).
fn member_live(peers: &PeerTable, key: &PublicKey, now: Instant) -> bool {
    peers
        .by_key(key)
        .and_then(|id| peers.get(id))
        .is_some_and(|p| p.shared.liveness.is_live(now))
}
