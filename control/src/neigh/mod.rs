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
//!   section 3) is learned like any other sender; an ARP probe (sender IP
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
//!   appendix A, RFC 2464 section 5); callers include it in `our_ips`.
//! - [`table`]: the neighbour cache with the reachability states of RFC 4861
//!   section 7.3.2 (INCOMPLETE, REACHABLE, STALE, and a FAILED hold-down),
//!   the retransmission of section 7.2.2 (MAX_MULTICAST_SOLICIT probes
//!   RETRANS_TIMER apart) and the bounded queue of packets waiting for
//!   resolution that section 7.2.2 asks for, used for ARP and ND alike.

pub mod arp;
pub mod table;

pub use arp::{arp_probe_unicast, arp_request, handle_arp, ArpAction, ArpError, ARP_FRAME_LEN};

pub use table::{Learned, NeighbourConfig, NeighbourTable, Poll, Probe, Refusal, Resolve, State};

/// A MAC address.
pub type Mac = [u8; 6];

/// Whether `mac` can be a neighbour's address: not a group (multicast or
/// broadcast) address and not all zeros.
fn is_unicast_mac(mac: Mac) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}
