//! A worker's ports: the roles a port plays ([`PortSide`], [`PortRoles`]:
//! the tunnel and plaintext roles on two ports, both on one in one-armed
//! mode, or each on its VLAN of one port) and its layer-2/3 identity ([`PortNet`]: MAC,
//! addresses, gateways, VLAN).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which of the two ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortSide {
    /// Faces the internet; carries WireGuard.
    Tunnel,
    /// Faces the protected networks; carries plaintext.
    Plaintext,
}

/// Which port carries each role. Ports are numbered by index in the
/// worker's arrays of port state: the tunnel role is on port 0; the
/// plaintext role on port 1, or on port 0 too in one-armed mode, where
/// one port carries both and frames are told apart by their destination
/// (our address and WireGuard ports: the tunnel role; see
/// `Worker::one_armed_side`). Split by VLAN, the two roles are two
/// logical ports (each with its VLAN, addresses, neighbours and exception
/// path) over one physical port, whose one RX and TX queue they share:
/// frames are told apart by their tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRoles {
    /// The index of the port carrying the plaintext role.
    plaintext: usize,
    /// Whether the two ports are VLANs of one physical port.
    by_vlan: bool,
}

/// How the frames of a port's RX queue are handled (one decision per
/// burst, [`PortRoles::polled_as`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// All as this role's.
    As(PortSide),
    /// Each by its destination (one-armed mode).
    ByDestination,
    /// Each by its VLAN tag (the roles split by VLAN).
    ByVlan,
}

impl PortRoles {
    /// A tunnel port and a plaintext port.
    pub const TWO_PORTS: PortRoles = PortRoles {
        plaintext: 1,
        by_vlan: false,
    };
    /// One port carrying both roles.
    pub const ONE_ARMED: PortRoles = PortRoles {
        plaintext: 0,
        by_vlan: false,
    };
    /// One physical port carrying each role on its own VLAN.
    pub const VLAN_SPLIT: PortRoles = PortRoles {
        plaintext: 1,
        by_vlan: true,
    };

    /// How many (logical) ports.
    #[inline]
    pub fn ports(self) -> usize {
        self.plaintext + 1
    }

    /// Whether one port carries both roles.
    #[inline]
    pub fn one_armed(self) -> bool {
        self.plaintext == 0
    }

    /// Whether the two roles are two VLANs of one physical port (their
    /// frames share its port id, told apart by their tag).
    #[inline]
    pub fn by_vlan(self) -> bool {
        self.by_vlan
    }

    /// The index of the port carrying `side`'s role.
    #[inline]
    pub fn port(self, side: PortSide) -> usize {
        match side {
            PortSide::Tunnel => 0,
            PortSide::Plaintext => self.plaintext,
        }
    }

    /// The index of the TX queue (by physical port) logical port `i`
    /// sends into.
    #[inline]
    pub fn queue(self, i: usize) -> usize {
        if self.by_vlan {
            0
        } else {
            i
        }
    }

    /// How the frames of RX queue `i` are handled: as the tunnel port's,
    /// the plaintext port's, each by destination (one port carrying both
    /// roles) or each by VLAN (the roles split by VLAN).
    #[inline]
    pub fn polled_as(self, i: usize) -> Polled {
        match (i, self.one_armed(), self.by_vlan) {
            (_, true, _) => Polled::ByDestination,
            (_, _, true) => Polled::ByVlan,
            (0, false, false) => Polled::As(PortSide::Tunnel),
            _ => Polled::As(PortSide::Plaintext),
        }
    }
}

/// One interface address with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// The on-link prefix length.
    pub prefix_len: u8,
}

impl IfAddr {
    /// Whether `ip` is on this address's link.
    #[inline]
    pub fn on_link(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// A port's layer-2/3 identity: its MAC, addresses and gateways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortNet {
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// Its addresses.
    pub addresses: Vec<IfAddr>,
    /// IPv4 gateway.
    pub gateway_v4: Option<Ipv4Addr>,
    /// IPv6 gateway.
    pub gateway_v6: Option<Ipv6Addr>,
    /// The 802.1Q VLAN the port runs as (`vlan = N`): its frames carry
    /// this tag on the wire, and frames without it are not the port's.
    /// `None`: untagged, and tagged frames are not the port's.
    pub vlan: Option<u16>,
}

impl PortNet {
    /// Whether `ip` is one of the port's own addresses. Always inlined:
    /// every frame asks it, and as a call it cost a decapsulated packet
    /// 15 instructions (callgrind).
    #[inline(always)]
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|a| a.addr == ip)
    }

    /// The address to send to on the link for destination `dst`: `dst`
    /// itself when on-link, else the gateway of its family.
    #[inline]
    pub fn next_hop(&self, dst: IpAddr) -> Option<IpAddr> {
        if self.addresses.iter().any(|a| a.on_link(dst)) {
            return Some(dst);
        }
        match dst {
            IpAddr::V4(_) => self.gateway_v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.gateway_v6.map(IpAddr::V6),
        }
    }

    /// Our source address for packets to `dst`: the first address on
    /// `dst`'s link, else the first of its family.
    #[inline]
    pub fn source_for(&self, dst: IpAddr) -> Option<IpAddr> {
        self.addresses
            .iter()
            .find(|a| a.on_link(dst))
            .or_else(|| {
                self.addresses
                    .iter()
                    .find(|a| a.addr.is_ipv4() == dst.is_ipv4())
            })
            .map(|a| a.addr)
    }

    /// Our source address for packets to `dst` when the other side last
    /// reached us at `local`: `local` while it is still one of our
    /// addresses of `dst`'s family (the kernel's endpoint source cache:
    /// replies leave from the address the peer contacted, which a stateful
    /// firewall in front of it expects), else [`source_for`](Self::source_for).
    #[inline]
    pub fn source_from(&self, dst: IpAddr, local: Option<IpAddr>) -> Option<IpAddr> {
        local
            .filter(|a| a.is_ipv4() == dst.is_ipv4() && self.is_local(*a))
            .or_else(|| self.source_for(dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_layout_maps_roles_to_ports_queues_and_how_they_are_polled() {
        use PortSide::{Plaintext, Tunnel};
        // (roles, logical ports, plaintext's port, TX queue of each port,
        // how each RX queue (one per physical port) is polled)
        let cases = [
            (
                PortRoles::TWO_PORTS,
                2,
                1,
                vec![0, 1],
                vec![Polled::As(Tunnel), Polled::As(Plaintext)],
            ),
            (
                PortRoles::ONE_ARMED,
                1,
                0,
                vec![0],
                vec![Polled::ByDestination],
            ),
            (
                PortRoles::VLAN_SPLIT,
                2,
                1,
                vec![0, 0],
                vec![Polled::ByVlan],
            ),
        ];
        for (roles, ports, plain, tx, polled) in cases {
            assert_eq!(roles.ports(), ports, "{roles:?}");
            assert_eq!(roles.port(Tunnel), 0, "{roles:?}");
            assert_eq!(roles.port(Plaintext), plain, "{roles:?}");
            assert_eq!(roles.one_armed(), plain == 0, "{roles:?}");
            let got: Vec<_> = (0..ports).map(|i| roles.queue(i)).collect();
            assert_eq!(got, tx, "{roles:?}");
            let got: Vec<_> = (0..polled.len()).map(|i| roles.polled_as(i)).collect();
            assert_eq!(got, polled, "{roles:?}");
        }
    }
}
