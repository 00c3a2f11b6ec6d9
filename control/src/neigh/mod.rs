//! Neighbour resolution for the concentrator's two ports: answering ARP and
//! IPv6 Neighbour Discovery for our own addresses, and resolving next-hop
//! MAC addresses (the peer endpoint or gateway on the tunnel port; the inner
//! destination or gateway on the plaintext port).
//!
//! Everything here is pure logic over byte slices: frames come in copied out
//! of mbufs, frames go out as byte arrays the caller copies into mbufs, and
//! time is a [`protocol::time::Instant`] passed in. Nothing reads a clock or
//! does I/O, and nothing panics on input.
//!
//! - [`arp`]: ARP for IPv4 over Ethernet (RFC 826). [`handle_arp`] follows
//!   the packet reception algorithm of RFC 826 ("Packet Reception"): learn
//!   the sender's (IP, MAC) pair, and answer a request for one of our
//!   addresses with the roles swapped and opcode 2. Gratuitous ARP (RFC 5227
//!   section 2.3) is learned like any other sender; an ARP probe (sender IP
//!   0.0.0.0, RFC 5227 section 2.1.1) for our address is answered, not
//!   learned; a packet whose sender claims one of our addresses is reported
//!   as a conflict (RFC 5227 section 2.4). [`arp_request`] and
//!   [`arp_probe_unicast`] build the broadcast request that resolves an
//!   address and the unicast one that refreshes a stale entry.
//! - [`nd`]: IPv6 Neighbour Discovery (RFC 4861). [`handle_nd`] validates
//!   neighbour solicitations and advertisements as sections 7.1.1 and 7.1.2
//!   require (hop limit 255, ICMPv6 checksum, code 0, target not multicast,
//!   option lengths, the rules for the unspecified source and the solicited
//!   flag), answers a solicitation for one of our addresses with an
//!   advertisement as section 7.2.4 describes (formats in sections 4.3 and
//!   4.4, link-layer address options in section 4.6.1), and learns from the
//!   source link-layer option of a solicitation (section 7.2.3) and the
//!   target of an advertisement (section 7.2.5). [`neighbour_solicitation`]
//!   and [`neighbour_solicitation_unicast`] build the multicast solicitation
//!   to the solicited-node address (RFC 4291 section 2.7.1, mapped to
//!   Ethernet as RFC 2464 section 7 says) and the unicast refresh probe
//!   (section 7.3.3, PROBE). [`link_local`] derives our link-local address
//!   from the MAC address by modified EUI-64 (RFC 4291 section 2.5.1 and
//!   appendix A, RFC 2464 sections 4 and 5); callers include it in `our_ips`.
//! - [`table`]: the neighbour cache with the reachability states of RFC 4861
//!   section 7.3.2 (INCOMPLETE, REACHABLE, STALE, and a FAILED hold-down),
//!   the retransmission of section 7.2.2 (MAX_MULTICAST_SOLICIT probes
//!   RETRANS_TIMER apart) and the bounded queue of packets waiting for
//!   resolution that section 7.2.2 asks for, used for ARP and ND alike.

pub mod arp;
pub mod nd;
pub mod table;

pub use arp::{arp_probe_unicast, arp_request, handle_arp, ArpAction, ArpError, ARP_FRAME_LEN};
pub use nd::{
    handle_nd, link_local, multicast_mac, neighbour_solicitation, neighbour_solicitation_unicast,
    solicited_node, NdAction, NdError, ALL_NODES, ND_FRAME_LEN,
};
pub use table::{Learned, NeighbourConfig, NeighbourTable, Poll, Probe, Refusal, Resolve, State};

/// A MAC address.
pub type Mac = [u8; 6];

/// Whether `mac` can be a neighbour's address: not a group (multicast or
/// broadcast) address and not all zeros.
fn is_unicast_mac(mac: Mac) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

#[cfg(test)]
mod tests {
    //! The pieces together: the table drives probes built by the ARP and ND
    //! builders, the other side answers through the handlers, and what the
    //! handlers learn releases the waiting packets.

    use super::*;
    use protocol::time::Instant;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    const OURS: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const GATEWAY: Mac = [0x02, 0, 0, 0, 0, 0xfe];

    #[test]
    fn ipv4_next_hop_resolves_through_arp() {
        let (our_ip, gw_ip) = (
            Ipv4Addr::new(198, 51, 100, 2),
            Ipv4Addr::new(198, 51, 100, 1),
        );
        let mut table = NeighbourTable::default();
        let now = Instant::from_secs(100);
        let queued = table.resolve(IpAddr::V4(gw_ip), b"packet".to_vec(), now);
        assert_eq!(queued, Resolve::Queued { probe_now: true });
        let request = arp_request(OURS, our_ip, gw_ip);
        let answer = handle_arp(&request, GATEWAY, &[gw_ip]).expect("valid");
        let reply = answer.reply.expect("the gateway answers");
        let action = handle_arp(&reply, OURS, &[our_ip]).expect("valid");
        let (ip, mac) = action.learn.expect("learned");
        let learned = table.learn(IpAddr::V4(ip), mac, now);
        assert!(learned.changed);
        assert_eq!(learned.released, vec![b"packet".to_vec()]);
        assert_eq!(table.snapshot(), vec![(IpAddr::V4(gw_ip), GATEWAY)]);
    }

    #[test]
    fn ipv6_next_hop_resolves_retransmits_and_refreshes_through_nd() {
        let our_ip = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        let gw_ip = link_local(GATEWAY);
        let gw = IpAddr::V6(gw_ip);
        let mut table = NeighbourTable::default();
        let answer = |frame: &[u8]| {
            let action = handle_nd(frame, GATEWAY, &[gw_ip]).expect("valid");
            action.and_then(|a| a.reply).expect("the gateway answers")
        };

        // The first probe is lost; the retransmission from poll is answered.
        let t0 = Instant::from_secs(5);
        assert_eq!(
            table.resolve(gw, 1u32, t0),
            Resolve::Queued { probe_now: true }
        );
        let deadline = table.next_deadline().expect("a retransmission");
        let poll = table.poll(deadline);
        assert_eq!(
            poll.probes,
            vec![Probe {
                ip: gw,
                unicast: None
            }]
        );
        let na = answer(&neighbour_solicitation(OURS, our_ip, gw_ip));
        let action = handle_nd(&na, OURS, &[our_ip, link_local(OURS)]).expect("valid");
        let (ip, mac) = action.and_then(|a| a.learn).expect("learned");
        assert_eq!(table.learn(IpAddr::V6(ip), mac, deadline).released, vec![1]);

        // Reachable time passes: poll asks for a unicast refresh.
        let later = table.next_deadline().expect("staleness");
        let poll = table.poll(later);
        assert_eq!(
            poll.probes,
            vec![Probe {
                ip: gw,
                unicast: Some(GATEWAY)
            }]
        );
        let probe = neighbour_solicitation_unicast(OURS, our_ip, gw_ip, GATEWAY);
        let na = answer(&probe);
        let action = handle_nd(&na, OURS, &[our_ip]).expect("valid");
        let (ip, mac) = action.and_then(|a| a.learn).expect("learned");
        let refreshed = table.learn(IpAddr::V6(ip), mac, later);
        assert!(!refreshed.changed && refreshed.released.is_empty());
        assert!(matches!(table.state(gw), Some(State::Reachable { .. })));
    }
}
