//! A peer's life cycle on the control thread: added (to the table and
//! its owner lcore), given or losing allowed IPs, re-homed to the worker
//! its packets arrive at, removed, and the routes the workers forward by
//! published as a new snapshot and as the plaintext port's steering
//! rules. The UAPI
//! (`live.rs`) and start-up call these; they keep the peer table, the
//! allowed-IPs trie, the owner list and the workers' copies in step.

use std::sync::Arc;

use dataplane::command::Command;
use dataplane::peer::{PeerId, PeerState};
use dataplane::route::{RouteTable, NO_OWNER};
use protocol::allowedips::Prefix;
use protocol::time::Instant;

use crate::control::Control;
use crate::peers::NewPeer;

impl Control<'_> {
    /// Adds a peer: to the table, to its owner lcore, and (by the caller's
    /// next [`publish_routes`](Self::publish_routes)) to the routes.
    pub(crate) fn add_peer(&mut self, new: NewPeer, now: Instant) -> PeerId {
        let key = conf::encode_key(new.public_key.as_bytes());
        let owner = self.ownership.choose(new.endpoint);
        if let Some(pool) = &self.handshake_pool {
            // Its static-static DH, on a handshake thread when one is idle.
            pool.peer_added(new.public_key);
        }
        let id = self.peers.add(new, owner, now);
        tracing::debug!(peer = %key, slot = id, owner, "peer added");
        if let Some(p) = self.peers.get_mut(id) {
            self.ownership.added(owner);
            let mut state = Box::new(PeerState::new(p.shared.clone(), p.endpoint));
            state.lanes = p.lanes;
            let slot = id as usize;
            if self.owners.len() <= slot {
                self.owners.resize(slot + 1, NO_OWNER);
            }
            self.owners[slot] = u16::try_from(owner).unwrap_or(NO_OWNER);
            self.command(owner, Command::AddPeer { id, state });
        }
        id
    }

    /// Removes a peer from the table, its owner lcore and the routes.
    pub(crate) fn remove_peer(&mut self, id: PeerId, now: Instant) {
        if let Some(p) = self.peers.remove(id, now) {
            tracing::info!(peer = %conf::encode_key(p.public_key.as_bytes()), slot = id, "peer removed");
            self.ownership.removed(id, p.owner);
            if let Some(pool) = &self.handshake_pool {
                pool.peer_removed(&p.public_key);
            }
            self.command(p.owner, Command::RemovePeer { id });
            self.withdraw_prefixes(id, p.allowed_ips);
            self.leave_groups(&p.public_key);
        }
        if let Some(o) = self.owners.get_mut(id as usize) {
            *o = NO_OWNER;
        }
    }

    /// Routes `prefix` to peer `id`. A prefix another peer held moves, as
    /// in the kernel; that peer is returned. Costs the length of the
    /// prefix and of the losing peer's list, never a scan of the table.
    pub(crate) fn assign_prefix(&mut self, prefix: Prefix, id: PeerId) -> Option<PeerId> {
        self.take_from_groups(prefix);
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

    /// Sends every worker the current routes as a new snapshot, and
    /// steers the plaintext port by them.
    pub(crate) fn publish_routes(&mut self) {
        let (allowed, groups) = self.group_routes();
        let table = Arc::new(RouteTable {
            allowed,
            owners: self.owners.clone(),
            groups,
        });
        self.broadcast(|| Command::SetRoutes(table.clone()));
        self.steer();
    }

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

    /// The owner keeps receiving peer `id`'s packets through worker `to`:
    /// starts moving it there, unless a move is already under way. A move
    /// unanswered for a while is asked for again ([`Ownership::ask_move`](crate::ownership::Ownership::ask_move)):
    /// the old owner passes the request on to the worker that took the
    /// peer, which answers again.
    pub(crate) fn arrives_at(&mut self, id: PeerId, to: usize, now: Instant) {
        let Some(owner) = self.peers.get(id).map(|p| p.owner) else {
            return;
        };
        if to == owner || to >= self.workers {
            return;
        }
        let Some(to) = self.ownership.ask_move(id, to, now) else {
            return;
        };
        self.command(owner, Command::Release { id, to });
    }

    /// Worker `at` now holds peer `id`'s state: new receiver indexes and
    /// the routes name it.
    pub(crate) fn adopted(&mut self, id: PeerId, at: usize) {
        self.ownership.settled(id);
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let from = std::mem::replace(&mut p.owner, at);
        if from == at {
            return;
        }
        tracing::info!(
            peer = %conf::encode_key(p.public_key.as_bytes()),
            from = self.lcores.get(from).copied().unwrap_or(u32::MAX),
            to = self.lcores.get(at).copied().unwrap_or(u32::MAX),
            "peer re-homed to the lcore its packets arrive on"
        );
        self.ownership.removed(id, from);
        self.ownership.added(at);
        if let Some(o) = self.owners.get_mut(id as usize) {
            *o = u16::try_from(at).unwrap_or(NO_OWNER);
        }
        self.publish_routes();
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
