//! The tunnel table on the control thread: the peers, their allowed IPs,
//! the owner worker of each and the tunnel groups, kept in step with each
//! other and with the workers' copies through a peer's life cycle: added
//! (to the table and its owner lcore), given or losing allowed IPs,
//! re-homed to the worker its packets arrive at, removed; and the routes
//! the workers forward by, published as a new snapshot and as the
//! plaintext port's steering rules. The UAPI (`control/live.rs`) and
//! start-up change it through these methods.

use std::collections::HashSet;
use std::sync::Arc;

use dataplane::command::Command;
use dataplane::group::GroupRoute;
use dataplane::peer::{PeerId, PeerState};
use dataplane::route::{RouteTable, NO_OWNER};
use protocol::allowedips::{AllowedIps, Prefix};
use protocol::crypto::PublicKey;
use protocol::time::Instant;

use crate::counters::ControlCounters;
use crate::groups::{GroupShow, Groups, InitialGroup};
use crate::ownership::Ownership;
use crate::peers::{NewPeer, PeerTable};
use crate::steering::{RulePort, SteeringOn};
use crate::worker_commands::WorkerCommands;

/// The peers, their allowed IPs, owners and the tunnel groups.
#[derive(Debug)]
pub(crate) struct TunnelTable {
    /// The peers.
    pub(crate) peers: PeerTable,
    /// The master copy of the allowed IPs; workers get snapshots.
    pub(crate) allowed: AllowedIps<PeerId>,
    /// Peer slot -> owner worker, as published.
    pub(crate) owners: Vec<u16>,
    /// Tunnel groups; their prefixes join the allowed IPs in the snapshot.
    pub(crate) groups: Groups,
}

impl TunnelTable {
    /// No peers yet; the configured groups, counting for `workers` workers.
    pub(crate) fn new(groups: Vec<InitialGroup>, workers: usize) -> Self {
        Self {
            peers: PeerTable::default(),
            allowed: AllowedIps::new(),
            owners: Vec::new(),
            groups: Groups::new(groups, workers),
        }
    }

    /// Adds a peer: to the table, to the owner lcore `ownership` chooses,
    /// and (by the caller's next [`publish_routes`](Self::publish_routes))
    /// to the routes.
    pub(crate) fn add_peer(
        &mut self,
        new: NewPeer,
        now: Instant,
        ownership: &mut Ownership,
        workers: &WorkerCommands,
    ) -> PeerId {
        let key = conf::encode_key(new.public_key.as_bytes());
        let owner = ownership.choose(new.endpoint);
        let id = self.peers.add(new, owner, now);
        tracing::debug!(peer = %key, slot = id, owner, "peer added");
        if let Some(p) = self.peers.get_mut(id) {
            ownership.added(owner);
            let mut state = Box::new(PeerState::new(p.shared.clone(), p.endpoint));
            state.lanes = p.lanes;
            let slot = id as usize;
            if self.owners.len() <= slot {
                self.owners.resize(slot + 1, NO_OWNER);
            }
            self.owners[slot] = u16::try_from(owner).unwrap_or(NO_OWNER);
            workers.send(owner, Command::AddPeer { id, state });
        }
        id
    }

    /// Removes a peer from the table, its owner lcore, the routes and its
    /// groups; returns its public key if it was there.
    pub(crate) fn remove_peer(
        &mut self,
        id: PeerId,
        now: Instant,
        ownership: &mut Ownership,
        workers: &WorkerCommands,
        counters: &ControlCounters,
    ) -> Option<PublicKey> {
        let removed = self.peers.remove(id, now).map(|p| {
            tracing::info!(peer = %conf::encode_key(p.public_key.as_bytes()), slot = id, "peer removed");
            ownership.removed(id, p.owner);
            workers.send(p.owner, Command::RemovePeer { id });
            self.withdraw_prefixes(id, p.allowed_ips);
            self.groups.leave(&p.public_key, counters);
            p.public_key
        });
        if let Some(o) = self.owners.get_mut(id as usize) {
            *o = NO_OWNER;
        }
        removed
    }

    /// Routes `prefix` to peer `id`. A prefix another peer held moves, as
    /// in the kernel; that peer is returned. Costs the length of the
    /// prefix and of the losing peer's list, never a scan of the table.
    pub(crate) fn assign_prefix(&mut self, prefix: Prefix, id: PeerId) -> Option<PeerId> {
        self.groups.take_prefix(prefix);
        let previous = self.allowed.insert(prefix, id);
        if previous == Some(id) {
            return None;
        }
        if let Some(loser) = previous.and_then(|prev| self.peers.get_mut(prev)) {
            loser.allowed_ips.retain(|p| *p != prefix);
        }
        if let Some(peer) = self.peers.get_mut(id) {
            peer.allowed_ips.push(prefix);
        }
        previous
    }

    /// Takes `prefixes` away from peer `id` where it holds them
    /// (`allowed_ip=-PREFIX`, as wireguard-go: a prefix another peer holds
    /// stays with it).
    pub(crate) fn unassign_prefixes(&mut self, id: PeerId, prefixes: &[Prefix]) {
        if let Some(peer) = self.peers.get_mut(id) {
            peer.allowed_ips.retain(|p| !prefixes.contains(p));
        }
        self.withdraw_prefixes(id, prefixes.to_vec());
    }

    /// Takes every allowed IP away from peer `id`.
    pub(crate) fn clear_prefixes(&mut self, id: PeerId) {
        let prefixes = self
            .peers
            .get_mut(id)
            .map(|p| std::mem::take(&mut p.allowed_ips))
            .unwrap_or_default();
        self.withdraw_prefixes(id, prefixes);
    }

    /// Removes `prefixes` from the routes where peer `id` still holds them.
    fn withdraw_prefixes(&mut self, id: PeerId, prefixes: Vec<Prefix>) {
        for prefix in prefixes {
            if self.allowed.get(prefix) == Some(id) {
                self.allowed.remove(prefix);
            }
        }
    }

    /// The routing snapshot's view of the groups (see [`Groups::routes`]).
    pub(crate) fn group_routes(&self) -> (AllowedIps<PeerId>, Vec<GroupRoute>) {
        self.groups.routes(&self.allowed, &self.peers)
    }

    /// Sends every worker the current routes as a new snapshot, and
    /// steers the plaintext port by them.
    pub(crate) fn publish_routes<P: RulePort>(
        &self,
        workers: &WorkerCommands,
        steering: &mut SteeringOn<P>,
        counters: &ControlCounters,
    ) {
        let (allowed, groups) = self.group_routes();
        let table = Arc::new(RouteTable {
            allowed,
            owners: self.owners.clone(),
            groups,
        });
        workers.broadcast(|| Command::SetRoutes(table.clone()));
        self.steer(steering, counters);
    }

    /// Brings the plaintext port's rules in line with the routes: each
    /// allowed-IP prefix to its owner's queue.
    fn steer<P: RulePort>(&self, steering: &mut SteeringOn<P>, counters: &ControlCounters) {
        let owners = &self.owners;
        let want = self.allowed.iter().filter_map(|(prefix, id)| {
            let owner = *owners.get(id as usize)?;
            (owner != NO_OWNER).then_some((prefix, owner))
        });
        steering.sync(want, counters);
    }

    /// The owner keeps receiving peer `id`'s packets through worker `to`
    /// (of `workers`): starts moving it there, unless a move is already
    /// under way. A move unanswered for a while is asked for again
    /// ([`Ownership::ask_move`]): the old owner passes the request on to
    /// the worker that took the peer, which answers again.
    pub(crate) fn arrives_at(
        &self,
        id: PeerId,
        to: usize,
        now: Instant,
        ownership: &mut Ownership,
        workers: &WorkerCommands,
        worker_count: usize,
    ) {
        let Some(owner) = self.peers.get(id).map(|p| p.owner) else {
            return;
        };
        if to == owner || to >= worker_count {
            return;
        }
        let Some(to) = ownership.ask_move(id, to, now) else {
            return;
        };
        workers.send(owner, Command::Release { id, to });
    }

    /// Worker `at` now holds peer `id`'s state: new receiver indexes and
    /// the routes name it. Returns whether the owner changed (the routes
    /// are then to be published); `lcores`: worker index -> lcore id, for
    /// the log.
    pub(crate) fn adopted(
        &mut self,
        id: PeerId,
        at: usize,
        ownership: &mut Ownership,
        lcores: &[u32],
    ) -> bool {
        ownership.settled(id);
        let Some(p) = self.peers.get_mut(id) else {
            return false;
        };
        let from = std::mem::replace(&mut p.owner, at);
        if from == at {
            return false;
        }
        tracing::info!(
            peer = %conf::encode_key(p.public_key.as_bytes()),
            from = lcores.get(from).copied().unwrap_or(u32::MAX),
            to = lcores.get(at).copied().unwrap_or(u32::MAX),
            "peer re-homed to the lcore its packets arrive on"
        );
        ownership.removed(id, from);
        ownership.added(at);
        if let Some(o) = self.owners.get_mut(id as usize) {
            *o = u16::try_from(at).unwrap_or(NO_OWNER);
        }
        true
    }

    /// The prefixes to export at `now` into `want` (cleared first): the
    /// allowed IPs of every live peer and the prefixes of every group with
    /// a live member.
    pub(crate) fn live_prefixes(&self, now: Instant, want: &mut HashSet<Prefix>) {
        want.clear();
        for p in self.peers.iter() {
            if p.shared.liveness.is_live(now) {
                want.extend(p.allowed_ips.iter().copied());
            }
        }
        self.groups.live_prefixes(&self.peers, now, want);
    }

    /// The groups for `wgdp show` and the metrics.
    pub(crate) fn groups_show(&self, now: Instant) -> Vec<GroupShow> {
        self.groups.show(&self.peers, now)
    }

    /// A peer as the tunnel table describes it: its configured endpoint,
    /// not one learned from its packets.
    pub(crate) fn peer_conf(&self, id: PeerId) -> conf::PeerConf {
        let p = self.peers.get(id);
        conf::PeerConf {
            public_key: conf::PublicKey(p.map_or([0; 32], |p| *p.public_key.as_bytes())),
            preshared_key: p
                .and_then(|p| p.preshared_key.as_deref())
                .map(|k| conf::PresharedKey::from_bytes(*k)),
            endpoint: p.and_then(|p| p.configured_endpoint),
            allowed_ips: p
                .map(|p| p.allowed_ips.as_slice())
                .unwrap_or_default()
                .iter()
                .filter_map(|pfx| conf::Cidr::new(pfx.addr(), pfx.prefix_len()))
                .collect(),
            persistent_keepalive: p.and_then(|p| p.persistent_keepalive),
            lanes: p.map_or(1, |p| p.lanes),
        }
    }
}
