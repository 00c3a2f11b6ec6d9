//! Where packets go: the routing snapshot the workers read, and next-hop
//! choice on a port.

use std::net::IpAddr;

use protocol::allowedips::AllowedIps;
use protocol::time::Instant;

use crate::group::{as_group, GroupRoute};
use crate::peer::PeerId;
pub use crate::port::{IfAddr, PortNet};

/// Marks a peer with no owner in [`RouteTable::owners`].
pub const NO_OWNER: u16 = u16::MAX;

/// An immutable snapshot published by the control thread: which peer (or
/// tunnel group) each inner address belongs to, and which worker owns each
/// peer. Workers swap their `Arc` to a new snapshot between bursts.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    /// Allowed IPs and group prefixes: inner address -> target, a peer
    /// slot or a group ([`crate::group::group_target`]); one longest-prefix
    /// match over both.
    pub allowed: AllowedIps<PeerId>,
    /// Peer -> owner worker index ([`NO_OWNER`] for removed slots).
    pub owners: Vec<u16>,
    /// Tunnel groups, by the index their targets carry.
    pub groups: Vec<GroupRoute>,
}

impl RouteTable {
    /// The owner worker of a peer.
    #[inline]
    pub fn owner(&self, peer: PeerId) -> Option<usize> {
        match self.owners.get(peer as usize) {
            Some(&o) if o != NO_OWNER => Some(usize::from(o)),
            _ => None,
        }
    }

    /// The peer that carries a packet routed to `target`: the peer itself,
    /// or the member of the group that the packet's flow hashes to
    /// (`packet` starts at its IP header), counted for worker `worker`
    /// when `count`. `None` for a group without members.
    #[inline]
    pub fn resolve(
        &self,
        target: PeerId,
        packet: &[u8],
        now: Instant,
        count: Option<usize>,
    ) -> Option<PeerId> {
        let Some(group) = as_group(target) else {
            return Some(target);
        };
        let member = self.groups.get(group)?.pick(packet, now)?;
        if let Some(worker) = count {
            member.counts.add(worker);
        }
        Some(member.id)
    }

    /// Whether a packet from inner source `src` may come from peer `id`
    /// (cryptokey routing): `src` routes to the peer, or to a group it is
    /// a member of (a site answers through any member).
    #[inline]
    pub fn routes_back(&self, src: IpAddr, id: PeerId) -> bool {
        match self.allowed.lookup(src) {
            Some(target) if target == id => true,
            Some(target) => as_group(target)
                .and_then(|g| self.groups.get(g))
                .is_some_and(|g| g.has_member(id)),
            None => false,
        }
    }
}

/// The mask of receiver-index bits that name the owner worker: the low
/// bits, enough for `workers` values.
#[inline]
pub fn owner_mask(workers: usize) -> u32 {
    (workers.max(1).next_power_of_two() - 1) as u32
}

/// The worker that owns the keypair with local index `index`, encoded in
/// its low bits by [`make_index`]; `None` for an index no worker could own.
#[inline]
pub fn index_owner(index: u32, workers: usize) -> Option<usize> {
    let owner = (index & owner_mask(workers)) as usize;
    (owner < workers).then_some(owner)
}

/// A receiver index for a keypair owned by worker `owner`: `random` with
/// its low bits replaced by the owner.
#[inline]
pub fn make_index(random: u32, owner: usize, workers: usize) -> u32 {
    let mask = owner_mask(workers);
    (random & !mask) | (owner as u32 & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> PortNet {
        PortNet {
            mac: [2, 0, 0, 0, 0, 1],
            addresses: vec![
                IfAddr {
                    addr: "192.0.2.1".parse().unwrap(),
                    prefix_len: 24,
                },
                IfAddr {
                    addr: "2001:db8::1".parse().unwrap(),
                    prefix_len: 64,
                },
            ],
            gateway_v4: Some("192.0.2.254".parse().unwrap()),
            gateway_v6: None,
            vlan: None,
        }
    }

    #[test]
    fn next_hop_is_on_link_or_gateway() {
        let n = net();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(n.next_hop(ip("192.0.2.77")), Some(ip("192.0.2.77")));
        assert_eq!(n.next_hop(ip("198.51.100.2")), Some(ip("192.0.2.254")));
        assert_eq!(n.next_hop(ip("2001:db8::9")), Some(ip("2001:db8::9")));
        assert_eq!(n.next_hop(ip("2001:db9::9")), None, "no IPv6 gateway");
        assert!(n.is_local(ip("192.0.2.1")));
        assert!(!n.is_local(ip("192.0.2.2")));
        assert_eq!(n.source_for(ip("203.0.113.1")), Some(ip("192.0.2.1")));
        assert_eq!(n.source_for(ip("2001:db9::1")), Some(ip("2001:db8::1")));
    }

    #[test]
    fn replies_leave_from_the_address_the_peer_reached() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut n = net();
        n.addresses.push(IfAddr {
            addr: ip("192.0.2.3"),
            prefix_len: 24,
        });
        let peer = ip("203.0.113.9");
        assert_eq!(n.source_from(peer, None), Some(ip("192.0.2.1")), "default");
        assert_eq!(
            n.source_from(peer, Some(ip("192.0.2.3"))),
            Some(ip("192.0.2.3"))
        );
        // Not (or no longer) ours, or of the other family: the default.
        assert_eq!(
            n.source_from(peer, Some(ip("192.0.2.4"))),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            n.source_from(peer, Some(ip("2001:db8::1"))),
            Some(ip("192.0.2.1"))
        );
        assert_eq!(
            n.source_from(ip("2001:db9::1"), Some(ip("192.0.2.3"))),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn index_carries_its_owner() {
        for workers in 1..=9 {
            for owner in 0..workers {
                for r in [0u32, 1, 0xdead_beef, u32::MAX] {
                    let i = make_index(r, owner, workers);
                    assert_eq!(index_owner(i, workers), Some(owner));
                    assert_eq!(i & !owner_mask(workers), r & !owner_mask(workers));
                }
            }
        }
        assert_eq!(index_owner(0b111, 5), None, "7 names no worker of 5");
    }

    #[test]
    fn route_table_owner() {
        let t = RouteTable {
            allowed: AllowedIps::new(),
            owners: vec![0, NO_OWNER, 3],
            groups: Vec::new(),
        };
        assert_eq!(t.owner(0), Some(0));
        assert_eq!(t.owner(1), None);
        assert_eq!(t.owner(2), Some(3));
        assert_eq!(t.owner(9), None);
    }
}
