//! A worker's copy of the control thread's neighbour tables (ARP/ND
//! results), one per port, pushed by `Command::Neighbour` for a role and
//! kept for the port carrying it (`PortRoles`: in one-armed mode both
//! roles share the one port's table).
//!
//! The tunnel side carries a generation, bumped at every change: peers'
//! cached outer headers (`outer::OuterCache`) remember the generation they
//! were built at and are rebuilt when it moved on, so that a next hop's new
//! MAC is used from the next packet on without a lookup per packet.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use crate::port::{PortRoles, PortSide};

/// The MACs of next hops on each port.
#[derive(Debug)]
pub(crate) struct Neighbours {
    /// By port index.
    ports: Vec<FxHashMap<IpAddr, [u8; 6]>>,
    roles: PortRoles,
    /// Bumped at every change of the tunnel port's table.
    tun_generation: u32,
}

impl Neighbours {
    /// Empty tables for the ports of `roles`.
    pub(crate) fn new(roles: PortRoles) -> Self {
        Self {
            ports: (0..roles.ports()).map(|_| FxHashMap::default()).collect(),
            roles,
            tun_generation: 0,
        }
    }

    /// Learns that `ip` on the port of `side` is at `mac`.
    pub(crate) fn learn(&mut self, side: PortSide, ip: IpAddr, mac: [u8; 6]) {
        let port = self.roles.port(side);
        self.ports[port].insert(ip, mac);
        if port == self.roles.port(PortSide::Tunnel) {
            self.tun_generation = self.tun_generation.wrapping_add(1);
        }
    }

    /// The MAC of next hop `ip` on the tunnel port, if known.
    #[inline]
    pub(crate) fn tunnel(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.ports[self.roles.port(PortSide::Tunnel)]
            .get(&ip)
            .copied()
    }

    /// The MAC of next hop `ip` on the plaintext port, if known.
    #[inline]
    pub(crate) fn plaintext(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.ports[self.roles.port(PortSide::Plaintext)]
            .get(&ip)
            .copied()
    }

    /// The tunnel side's generation: it changes whenever a tunnel-side
    /// MAC is learnt.
    #[inline]
    pub(crate) fn tunnel_generation(&self) -> u32 {
        self.tun_generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tunnel_changes_move_the_generation() {
        let mut n = Neighbours::new(PortRoles::TWO_PORTS);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "fd00::1".parse().unwrap());
        assert_eq!(
            (n.tunnel(a), n.plaintext(a), n.tunnel_generation()),
            (None, None, 0)
        );
        n.learn(PortSide::Plaintext, a, [1; 6]);
        assert_eq!(
            (n.tunnel(a), n.plaintext(a), n.tunnel_generation()),
            (None, Some([1; 6]), 0)
        );
        n.learn(PortSide::Tunnel, b, [2; 6]);
        n.learn(PortSide::Tunnel, b, [3; 6]);
        assert_eq!(
            (n.tunnel(b), n.plaintext(b), n.tunnel_generation()),
            (Some([3; 6]), None, 2)
        );
    }

    #[test]
    fn one_armed_roles_share_the_ports_table_and_its_generation() {
        let mut n = Neighbours::new(PortRoles::ONE_ARMED);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "fd00::1".parse().unwrap());
        n.learn(PortSide::Plaintext, a, [1; 6]);
        assert_eq!(
            (n.tunnel(a), n.plaintext(a), n.tunnel_generation()),
            (Some([1; 6]), Some([1; 6]), 1)
        );
        n.learn(PortSide::Tunnel, b, [2; 6]);
        assert_eq!(
            (n.tunnel(b), n.plaintext(b), n.tunnel_generation()),
            (Some([2; 6]), Some([2; 6]), 2)
        );
    }
}
