//! ARP for IPv4 over Ethernet (RFC 826): answering requests for our
//! addresses, learning senders, and building the requests that resolve and
//! refresh next hops.
//!
//! Frames are untagged Ethernet; VLAN-tagged frames are refused
//! ([`ArpError::Tagged`]), since the requests built here carry no tag.

use std::fmt;
use std::net::Ipv4Addr;

use dataplane::wire::{arp as wire, ethernet, ParseError};

use super::{is_unicast_mac, Mac};

/// Length of every ARP frame built here: the Ethernet minimum of 60 bytes
/// without the FCS (14-byte header, 28-byte ARP packet, zero padding).
pub const ARP_FRAME_LEN: usize = 60;

/// Why an ARP frame was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpError {
    /// The Ethernet header or the ARP packet is truncated, or the ARP packet
    /// is not for Ethernet and IPv4 ([`ParseError::Unsupported`]).
    Malformed(ParseError),
    /// The frame carries an 802.1Q tag.
    Tagged,
    /// The EtherType is not ARP.
    NotArp(u16),
    /// The Ethernet destination is neither broadcast nor our MAC address.
    OtherDestination,
    /// The operation is neither request (1) nor reply (2).
    UnknownOperation(u16),
    /// The sender hardware address is ours: our own frame came back.
    OwnFrame,
    /// The sender hardware address is a group address or zero.
    BadSenderMac,
}

impl fmt::Display for ArpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArpError::Malformed(e) => write!(f, "malformed ARP frame: {e}"),
            ArpError::Tagged => f.write_str("VLAN-tagged ARP frame"),
            ArpError::NotArp(t) => write!(f, "EtherType {t:#06x} is not ARP"),
            ArpError::OtherDestination => f.write_str("ARP frame for another station"),
            ArpError::UnknownOperation(op) => write!(f, "unknown ARP operation {op}"),
            ArpError::OwnFrame => f.write_str("ARP frame sent by us"),
            ArpError::BadSenderMac => f.write_str("ARP sender address is not unicast"),
        }
    }
}

impl std::error::Error for ArpError {}

/// What to do about an ARP frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArpAction {
    /// The sender's address pair, to [`learn`](super::NeighbourTable::learn):
    /// present for every request or reply (gratuitous ones included) whose
    /// sender IP is a unicast address other than ours.
    pub learn: Option<(Ipv4Addr, Mac)>,
    /// The reply to send, for a request whose target IP is one of ours.
    pub reply: Option<[u8; ARP_FRAME_LEN]>,
    /// The MAC address of another station that claims one of our addresses
    /// as its sender IP (an address conflict, RFC 5227 section 2.4): nothing
    /// is learned or answered.
    pub conflict: Option<Mac>,
}

/// Handles an ARP frame received on a port whose MAC address is `our_mac`
/// and whose IPv4 addresses are `our_ips`.
pub fn handle_arp(frame: &[u8], our_mac: Mac, our_ips: &[Ipv4Addr]) -> Result<ArpAction, ArpError> {
    let eth = ethernet::Frame::new_checked(frame).map_err(ArpError::Malformed)?;
    if eth.is_tagged() {
        return Err(ArpError::Tagged);
    }
    if eth.ethertype() != ethernet::ethertype::ARP {
        return Err(ArpError::NotArp(eth.ethertype()));
    }
    let dst = eth.dst();
    if dst != ethernet::BROADCAST && dst != our_mac {
        return Err(ArpError::OtherDestination);
    }
    let packet = wire::Packet::new_checked(eth.payload()).map_err(ArpError::Malformed)?;
    let request = wire::Repr::parse(&packet);
    if request.operation != wire::operation::REQUEST && request.operation != wire::operation::REPLY
    {
        return Err(ArpError::UnknownOperation(request.operation));
    }
    if request.sender_hw == our_mac {
        return Err(ArpError::OwnFrame);
    }
    if !is_unicast_mac(request.sender_hw) {
        return Err(ArpError::BadSenderMac);
    }
    let sender = Ipv4Addr::from(request.sender_ip);
    let target = Ipv4Addr::from(request.target_ip);
    if our_ips.contains(&sender) {
        return Ok(ArpAction {
            conflict: Some(request.sender_hw),
            ..ArpAction::default()
        });
    }
    let learn = is_unicast_ip(sender).then_some((sender, request.sender_hw));
    let reply = (request.operation == wire::operation::REQUEST && our_ips.contains(&target))
        .then(|| build(request.sender_hw, our_mac, &request.reply(our_mac)));
    Ok(ArpAction {
        learn,
        reply,
        conflict: None,
    })
}

/// The broadcast request "who has `target`? tell `our_ip`" that resolves
/// `target`.
pub fn arp_request(our_mac: Mac, our_ip: Ipv4Addr, target: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    build(
        ethernet::BROADCAST,
        our_mac,
        &request(our_mac, our_ip, target),
    )
}

/// The same request sent to `target_mac` only, to refresh a stale entry
/// without disturbing the rest of the link.
pub fn arp_probe_unicast(
    our_mac: Mac,
    our_ip: Ipv4Addr,
    target: Ipv4Addr,
    target_mac: Mac,
) -> [u8; ARP_FRAME_LEN] {
    build(target_mac, our_mac, &request(our_mac, our_ip, target))
}

/// A request from `our_mac`/`our_ip` for `target` (target hardware address
/// zero, as RFC 826 leaves it).
fn request(our_mac: Mac, our_ip: Ipv4Addr, target: Ipv4Addr) -> wire::Repr {
    wire::Repr {
        operation: wire::operation::REQUEST,
        sender_hw: our_mac,
        sender_ip: our_ip.octets(),
        target_hw: [0; 6],
        target_ip: target.octets(),
    }
}

/// Whether `ip` can be a neighbour's address.
fn is_unicast_ip(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
}

/// An untagged Ethernet frame from `src` to `dst` carrying `arp`, padded
/// with zeros to 60 bytes.
fn build(dst: Mac, src: Mac, arp: &wire::Repr) -> [u8; ARP_FRAME_LEN] {
    let mut out = [0u8; ARP_FRAME_LEN];
    let (header, body) = out.split_at_mut(ethernet::HEADER_LEN);
    let eth = ethernet::Repr {
        dst,
        src,
        vlan_tci: None,
        ethertype: ethernet::ethertype::ARP,
    };
    let written = eth.emit(header).and_then(|_| arp.emit(body));
    debug_assert_eq!(written, Ok(wire::PACKET_LEN), "14 + 28 bytes fit in 60");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const THEIRS: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const THEIR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

    /// A 60-byte request from THEIRS/THEIR_IP for `target`, as a LAN host
    /// sends it.
    fn request_for(target: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
        arp_request(THEIRS, THEIR_IP, target)
    }

    #[test]
    fn request_for_our_ip_gets_a_padded_reply() {
        let frame = request_for(OUR_IP);
        let action = handle_arp(&frame, OURS, &[Ipv4Addr::new(10, 0, 0, 1), OUR_IP]).expect("ok");
        assert_eq!(action.learn, Some((THEIR_IP, THEIRS)));
        assert_eq!(action.conflict, None);
        let reply = action.reply.expect("a reply");
        assert_eq!(reply.len(), 60);
        assert_eq!(reply[..6], THEIRS, "Ethernet destination: the requester");
        assert_eq!(reply[6..12], OURS, "Ethernet source: us");
        assert_eq!(reply[12..14], [0x08, 0x06]);
        assert_eq!(
            reply[14..22],
            [0, 1, 8, 0, 6, 4, 0, 2],
            "Ethernet, IPv4, reply"
        );
        assert_eq!(reply[22..28], OURS, "sender MAC");
        assert_eq!(reply[28..32], OUR_IP.octets(), "sender IP");
        assert_eq!(reply[32..38], THEIRS, "target MAC");
        assert_eq!(reply[38..42], THEIR_IP.octets(), "target IP");
        assert_eq!(reply[42..], [0; 18], "zero padding");
    }

    #[test]
    fn request_for_another_ip_is_learned_not_answered() {
        let frame = request_for(Ipv4Addr::new(192, 0, 2, 7));
        let action = handle_arp(&frame, OURS, &[OUR_IP]).expect("ok");
        assert_eq!(action.learn, Some((THEIR_IP, THEIRS)));
        assert_eq!(action.reply, None);
    }

    #[test]
    fn gratuitous_requests_and_replies_are_learned() {
        // Request form: sender IP == target IP, broadcast.
        let frame = request_for(THEIR_IP);
        let action = handle_arp(&frame, OURS, &[OUR_IP]).expect("ok");
        assert_eq!(action.learn, Some((THEIR_IP, THEIRS)));
        assert_eq!(action.reply, None);
        // Reply form, broadcast.
        let mut frame = request_for(THEIR_IP);
        frame[21] = 2;
        let action = handle_arp(&frame, OURS, &[OUR_IP]).expect("ok");
        assert_eq!(action.learn, Some((THEIR_IP, THEIRS)));
        assert_eq!(action.reply, None);
    }

    #[test]
    fn probe_from_unspecified_is_answered_not_learned() {
        let frame = arp_request(THEIRS, Ipv4Addr::UNSPECIFIED, OUR_IP);
        let action = handle_arp(&frame, OURS, &[OUR_IP]).expect("ok");
        assert_eq!(action.learn, None);
        let reply = action.reply.expect("we defend our address");
        assert_eq!(reply[..6], THEIRS);
        assert_eq!(reply[38..42], [0; 4]);
    }

    #[test]
    fn a_sender_claiming_our_address_is_a_conflict() {
        let frame = arp_request(THEIRS, OUR_IP, OUR_IP);
        let action = handle_arp(&frame, OURS, &[OUR_IP]).expect("ok");
        assert_eq!(
            action,
            ArpAction {
                learn: None,
                reply: None,
                conflict: Some(THEIRS)
            }
        );
    }

    #[test]
    fn builders_round_trip_through_the_other_side() {
        // We ask; they answer with handle_arp; we learn from the answer.
        let ask = arp_request(OURS, OUR_IP, THEIR_IP);
        assert_eq!(ask[..6], ethernet::BROADCAST);
        assert_eq!(ask[32..38], [0; 6]);
        let theirs = handle_arp(&ask, THEIRS, &[THEIR_IP]).expect("ok");
        assert_eq!(theirs.learn, Some((OUR_IP, OURS)));
        let answer = theirs.reply.expect("they answer");
        let ours = handle_arp(&answer, OURS, &[OUR_IP]).expect("ok");
        assert_eq!(ours.learn, Some((THEIR_IP, THEIRS)));
        assert_eq!(ours.reply, None);
        // The unicast refresh differs only in the Ethernet destination.
        let refresh = arp_probe_unicast(OURS, OUR_IP, THEIR_IP, THEIRS);
        assert_eq!(refresh[..6], THEIRS);
        assert_eq!(refresh[6..], ask[6..]);
        let theirs = handle_arp(&refresh, THEIRS, &[THEIR_IP]).expect("ok");
        assert!(theirs.reply.is_some());
    }

    #[test]
    fn truncated_frames_error_at_every_length() {
        let frame = request_for(OUR_IP);
        for n in 0..ethernet::HEADER_LEN + wire::PACKET_LEN {
            assert_eq!(
                handle_arp(&frame[..n], OURS, &[OUR_IP]),
                Err(ArpError::Malformed(ParseError::Truncated)),
                "length {n}"
            );
        }
        // Padding is optional.
        for n in ethernet::HEADER_LEN + wire::PACKET_LEN..=frame.len() {
            assert!(
                handle_arp(&frame[..n], OURS, &[OUR_IP]).is_ok(),
                "length {n}"
            );
        }
    }

    #[test]
    fn other_frames_are_refused_with_a_reason() {
        let good = request_for(OUR_IP);
        let cases: [(usize, &[u8], ArpError); 7] = [
            (12, &[0x08, 0x00], ArpError::NotArp(0x0800)),
            (12, &[0x81, 0x00], ArpError::Tagged),
            (0, &[0x02, 0, 0, 0, 0, 0x99], ArpError::OtherDestination),
            (20, &[0, 3], ArpError::UnknownOperation(3)),
            (22, &OURS, ArpError::OwnFrame),
            (22, &[0x01, 0, 0x5e, 0, 0, 1], ArpError::BadSenderMac),
            (14, &[0, 6], ArpError::Malformed(ParseError::Unsupported)),
        ];
        for (at, bytes, want) in cases {
            let mut frame = good;
            frame[at..at + bytes.len()].copy_from_slice(bytes);
            assert_eq!(handle_arp(&frame, OURS, &[OUR_IP]), Err(want), "{want}");
        }
        // Unicast to us is fine, and a multicast sender IP is not learned.
        let mut frame = good;
        frame[..6].copy_from_slice(&OURS);
        frame[28..32].copy_from_slice(&[224, 0, 0, 1]);
        let action = handle_arp(&frame, OURS, &[OUR_IP]).expect("ok");
        assert_eq!(action.learn, None);
        assert!(action.reply.is_some());
    }

    #[test]
    fn random_frames_never_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut frame = request_for(OUR_IP);
            for _ in 0..(next() % 4) {
                let at = (next() % 60) as usize;
                frame[at] = next() as u8;
            }
            let len = (next() % 61) as usize;
            if let Ok(action) = handle_arp(&frame[..len], OURS, &[OUR_IP]) {
                accepted += 1;
                if let Some(reply) = action.reply {
                    assert_eq!(reply[6..12], OURS);
                }
            }
        }
        assert!(accepted > 1000, "{accepted} accepted");
    }

    #[test]
    fn errors_display_a_reason() {
        assert_eq!(
            ArpError::NotArp(0x86dd).to_string(),
            "EtherType 0x86dd is not ARP"
        );
        assert_eq!(
            ArpError::Malformed(ParseError::Truncated).to_string(),
            "malformed ARP frame: buffer shorter than the header or its length fields"
        );
    }
}
