//! IPv6 Neighbour Discovery (RFC 4861): answering neighbour solicitations
//! for our addresses, learning from solicitations and advertisements, and
//! building the solicitations that resolve and refresh next hops.
//!
//! Only the neighbour solicitation (type 135, section 4.3) and the neighbour
//! advertisement (type 136, section 4.4) are handled; any other ICMPv6 or
//! IPv6 packet is left to the caller (the kernel, through the TAP). Frames
//! are untagged Ethernet; a VLAN-tagged solicitation or advertisement is
//! refused ([`NdError::Tagged`]), since the frames built here carry no tag.
//! Messages behind IPv6 extension headers are not looked at (RFC 4861
//! messages have none in practice).

use std::fmt;
use std::net::Ipv6Addr;

use dataplane::wire::{checksum, ethernet, ip_protocol, ipv6, ParseError};

use super::{is_unicast_mac, Mac};

/// Length of every frame built here: 14-byte Ethernet header, 40-byte IPv6
/// header, 24-byte solicitation or advertisement, 8-byte link-layer address
/// option.
pub const ND_FRAME_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + ICMP_LEN;

/// The all-nodes multicast address ff02::1, the destination of the answer to
/// a duplicate address detection solicitation.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// ICMPv6 type of a neighbour solicitation.
const TYPE_NS: u8 = 135;
/// ICMPv6 type of a neighbour advertisement.
const TYPE_NA: u8 = 136;
/// Length of a solicitation or advertisement without options.
const MESSAGE_LEN: usize = 24;
/// Length of the ICMPv6 messages built here: one link-layer option.
const ICMP_LEN: usize = MESSAGE_LEN + 8;
/// Option type: source link-layer address.
const OPT_SOURCE_LL: u8 = 1;
/// Option type: target link-layer address.
const OPT_TARGET_LL: u8 = 2;
/// The hop limit every ND message is sent with and must arrive with.
const HOP_LIMIT: u8 = 255;
/// Advertisement flag: the sender is a router (we forward packets).
const FLAG_ROUTER: u8 = 0x80;
/// Advertisement flag: the answer to a solicitation.
const FLAG_SOLICITED: u8 = 0x40;
/// Advertisement flag: override an existing cache entry.
const FLAG_OVERRIDE: u8 = 0x20;

/// Why a neighbour solicitation or advertisement was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdError {
    /// The Ethernet or IPv6 header is truncated or invalid.
    Malformed(ParseError),
    /// The frame carries an 802.1Q tag.
    Tagged,
    /// The Ethernet source is our MAC address: our own frame came back.
    OwnFrame,
    /// The hop limit is not 255: the message was forwarded by a router.
    BadHopLimit(u8),
    /// The ICMPv6 checksum does not verify.
    BadChecksum,
    /// The ICMPv6 code is not 0.
    BadCode(u8),
    /// The message is shorter than 24 bytes.
    Truncated,
    /// An option has length zero or runs past the message, or a link-layer
    /// address option is not 8 bytes long.
    BadOption,
    /// The target address is multicast, unspecified or loopback.
    BadTarget,
    /// The IPv6 source address is multicast.
    BadSource,
    /// The link-layer address (option, or Ethernet source) is a group
    /// address or zero.
    BadLinkLayer,
    /// A solicitation from the unspecified address carries a source
    /// link-layer address option.
    DadWithLinkLayer,
    /// A solicitation from the unspecified address is not sent to a
    /// solicited-node multicast address.
    DadNotToSolicitedNode,
    /// An advertisement with the solicited flag is sent to a multicast
    /// address.
    SolicitedToMulticast,
    /// A solicitation for an address that is not ours.
    NotOurTarget,
}

impl fmt::Display for NdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NdError::Malformed(e) => write!(f, "malformed ND frame: {e}"),
            NdError::Tagged => f.write_str("VLAN-tagged ND frame"),
            NdError::OwnFrame => f.write_str("ND frame sent by us"),
            NdError::BadHopLimit(h) => write!(f, "ND hop limit {h}, not 255"),
            NdError::BadChecksum => f.write_str("bad ICMPv6 checksum"),
            NdError::BadCode(c) => write!(f, "ND ICMPv6 code {c}, not 0"),
            NdError::Truncated => f.write_str("ND message shorter than 24 bytes"),
            NdError::BadOption => f.write_str("bad ND option length"),
            NdError::BadTarget => f.write_str("ND target is not a unicast address"),
            NdError::BadSource => f.write_str("ND source is a multicast address"),
            NdError::BadLinkLayer => f.write_str("ND link-layer address is not unicast"),
            NdError::DadWithLinkLayer => {
                f.write_str("solicitation from :: with a source link-layer option")
            }
            NdError::DadNotToSolicitedNode => {
                f.write_str("solicitation from :: not to a solicited-node address")
            }
            NdError::SolicitedToMulticast => {
                f.write_str("solicited advertisement to a multicast address")
            }
            NdError::NotOurTarget => f.write_str("solicitation for an address not ours"),
        }
    }
}

impl std::error::Error for NdError {}

/// What to do about a neighbour solicitation or advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NdAction {
    /// An address pair to [`learn`](super::NeighbourTable::learn): the
    /// source of a solicitation with a source link-layer option, or the
    /// target of an advertisement.
    pub learn: Option<(Ipv6Addr, Mac)>,
    /// The advertisement to send, answering a solicitation for one of our
    /// addresses.
    pub reply: Option<[u8; ND_FRAME_LEN]>,
    /// The MAC address of another station that uses one of our addresses
    /// (as the source of a solicitation or the target of an advertisement):
    /// nothing is learned or answered.
    pub conflict: Option<Mac>,
}

/// Handles an IPv6 frame received on a port whose MAC address is `our_mac`
/// and whose IPv6 addresses (the [`link_local`] one included) are
/// `our_ips`. `Ok(None)`: not a neighbour solicitation or advertisement, for
/// the caller to pass on. Our advertisements carry the router flag (we
/// forward packets) and the override flag, and always our link-layer address.
pub fn handle_nd(
    frame: &[u8],
    our_mac: Mac,
    our_ips: &[Ipv6Addr],
) -> Result<Option<NdAction>, NdError> {
    let eth = ethernet::Frame::new_checked(frame).map_err(NdError::Malformed)?;
    if eth.ethertype() != ethernet::ethertype::IPV6 {
        return Ok(None);
    }
    let ip = ipv6::Packet::new_checked(eth.payload()).map_err(NdError::Malformed)?;
    let icmp = ip.payload();
    if ip.next_header() != ip_protocol::ICMPV6
        || !matches!(icmp.first(), Some(&(TYPE_NS | TYPE_NA)))
    {
        return Ok(None);
    }
    // Section 7.1.1 and 7.1.2 validity checks.
    if eth.is_tagged() {
        return Err(NdError::Tagged);
    }
    if eth.src() == our_mac {
        return Err(NdError::OwnFrame);
    }
    if ip.hop_limit() != HOP_LIMIT {
        return Err(NdError::BadHopLimit(ip.hop_limit()));
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    // The IPv6 payload length is 16 bits, so the message length fits.
    let len = u32::try_from(icmp.len()).map_err(|_| NdError::Truncated)?;
    let sum = checksum::add(
        checksum::pseudo_header_v6(&src, &dst, ip_protocol::ICMPV6, len),
        icmp,
    );
    if checksum::fold(sum) != 0xffff {
        return Err(NdError::BadChecksum);
    }
    let [ty, code, _, _, flags, _, _, _] = field::<8>(icmp, 0).ok_or(NdError::Truncated)?;
    if code != 0 {
        return Err(NdError::BadCode(code));
    }
    let target = Ipv6Addr::from(field::<16>(icmp, 8).ok_or(NdError::Truncated)?);
    if target.is_multicast() || target.is_unspecified() || target.is_loopback() {
        return Err(NdError::BadTarget);
    }
    let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
    if src.is_multicast() {
        return Err(NdError::BadSource);
    }
    let options = icmp.get(MESSAGE_LEN..).unwrap_or(&[]);
    if ty == TYPE_NS {
        let source_ll = link_layer_option(options, OPT_SOURCE_LL)?;
        solicitation(eth.src(), src, dst, target, source_ll, our_mac, our_ips)
    } else {
        let target_ll = link_layer_option(options, OPT_TARGET_LL)?;
        if flags & FLAG_SOLICITED != 0 && dst.is_multicast() {
            return Err(NdError::SolicitedToMulticast);
        }
        let mac = target_ll.unwrap_or(eth.src());
        if !is_unicast_mac(mac) {
            return Err(NdError::BadLinkLayer);
        }
        if our_ips.contains(&target) {
            return Ok(Some(NdAction {
                conflict: Some(mac),
                ..NdAction::default()
            }));
        }
        Ok(Some(NdAction {
            learn: Some((target, mac)),
            ..NdAction::default()
        }))
    }
}

/// The rest of [`handle_nd`] for a valid-so-far solicitation (sections
/// 7.1.1, 7.2.3, 7.2.4).
fn solicitation(
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    source_ll: Option<Mac>,
    our_mac: Mac,
    our_ips: &[Ipv6Addr],
) -> Result<Option<NdAction>, NdError> {
    let dad = src.is_unspecified();
    if dad && source_ll.is_some() {
        return Err(NdError::DadWithLinkLayer);
    }
    if dad && dst != solicited_node(target) {
        return Err(NdError::DadNotToSolicitedNode);
    }
    let their_mac = source_ll.unwrap_or(eth_src);
    if !is_unicast_mac(their_mac) {
        return Err(NdError::BadLinkLayer);
    }
    if our_ips.contains(&src) {
        return Ok(Some(NdAction {
            conflict: Some(their_mac),
            ..NdAction::default()
        }));
    }
    if !our_ips.contains(&target) {
        return Err(NdError::NotOurTarget);
    }
    let advert = |eth_dst, ip_dst, flags| Message {
        eth_dst,
        eth_src: our_mac,
        src: target,
        dst: ip_dst,
        ty: TYPE_NA,
        flags,
        target,
        option: OPT_TARGET_LL,
    };
    let (learn, reply) = if dad {
        let flags = FLAG_ROUTER | FLAG_OVERRIDE;
        (None, advert(multicast_mac(ALL_NODES), ALL_NODES, flags))
    } else {
        let flags = FLAG_ROUTER | FLAG_SOLICITED | FLAG_OVERRIDE;
        let learn = source_ll.map(|mac| (src, mac));
        (learn, advert(their_mac, src, flags))
    };
    Ok(Some(NdAction {
        learn,
        reply: Some(reply.build()),
        conflict: None,
    }))
}

/// The multicast solicitation that resolves `target`, from `our_ip` (one of
/// our unicast addresses; not the unspecified address, as duplicate address
/// detection is not done here) to `target`'s solicited-node address.
pub fn neighbour_solicitation(
    our_mac: Mac,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; ND_FRAME_LEN] {
    let dst = solicited_node(target);
    solicit(multicast_mac(dst), dst, our_mac, our_ip, target)
}

/// The unicast solicitation to `target` at `target_mac` that refreshes a
/// stale entry (section 7.3.3).
pub fn neighbour_solicitation_unicast(
    our_mac: Mac,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
    target_mac: Mac,
) -> [u8; ND_FRAME_LEN] {
    solicit(target_mac, target, our_mac, our_ip, target)
}

fn solicit(
    eth_dst: Mac,
    dst: Ipv6Addr,
    our_mac: Mac,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; ND_FRAME_LEN] {
    Message {
        eth_dst,
        eth_src: our_mac,
        src: our_ip,
        dst,
        ty: TYPE_NS,
        flags: 0,
        target,
        option: OPT_SOURCE_LL,
    }
    .build()
}

/// The link-local address fe80::/64 with the modified EUI-64 interface
/// identifier of `mac`: ff:fe inserted in the middle, the universal/local
/// bit flipped (RFC 4291 appendix A, RFC 2464 sections 4 and 5).
pub fn link_local(mac: Mac) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

/// The solicited-node multicast address of `ip`: ff02::1:ff00:0/104 with
/// the low 24 bits of `ip` (RFC 4291 section 2.7.1).
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let [.., x, y, z] = ip.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, x, y, z])
}

/// The Ethernet address of the IPv6 multicast address `ip`: 33:33 and its
/// low 32 bits (RFC 2464 section 7).
pub fn multicast_mac(ip: Ipv6Addr) -> Mac {
    let [.., w, x, y, z] = ip.octets();
    [0x33, 0x33, w, x, y, z]
}

/// `N` bytes of `b` from `at`, if there are that many.
fn field<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// The first link-layer address option of type `wanted` among `options`,
/// checking that every option has a nonzero length inside the message
/// (section 4.6) and that the wanted one is 8 bytes (RFC 2464 section 6).
/// Other options are skipped.
fn link_layer_option(mut options: &[u8], wanted: u8) -> Result<Option<Mac>, NdError> {
    let mut found = None;
    while let [ty, units, ..] = *options {
        let len = usize::from(units) * 8;
        let option = options.get(..len).filter(|_| len > 0);
        match option {
            None => return Err(NdError::BadOption),
            Some(&[_, 1, a, b, c, d, e, f]) if ty == wanted => {
                found = found.or(Some([a, b, c, d, e, f]));
            }
            Some(_) if ty == wanted => return Err(NdError::BadOption),
            Some(_) => {}
        }
        options = options.get(len..).unwrap_or(&[]);
    }
    if options.is_empty() {
        Ok(found)
    } else {
        Err(NdError::BadOption)
    }
}

/// A solicitation or advertisement with one link-layer address option
/// carrying `eth_src`, to build.
struct Message {
    eth_dst: Mac,
    eth_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ty: u8,
    flags: u8,
    target: Ipv6Addr,
    option: u8,
}

impl Message {
    /// The frame, hop limit 255, ICMPv6 checksum filled in.
    fn build(&self) -> [u8; ND_FRAME_LEN] {
        let (src, dst) = (self.src.octets(), self.dst.octets());
        let mut icmp = [0u8; ICMP_LEN];
        icmp[0] = self.ty;
        icmp[4] = self.flags;
        icmp[8..24].copy_from_slice(&self.target.octets());
        icmp[24] = self.option;
        icmp[25] = 1;
        icmp[26..32].copy_from_slice(&self.eth_src);
        let pseudo = checksum::pseudo_header_v6(&src, &dst, ip_protocol::ICMPV6, ICMP_LEN as u32);
        let sum = checksum::finish(checksum::add(pseudo, &icmp));
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());

        let mut out = [0u8; ND_FRAME_LEN];
        let (eth_header, rest) = out.split_at_mut(ethernet::HEADER_LEN);
        let (ip_header, payload) = rest.split_at_mut(ipv6::HEADER_LEN);
        let eth = ethernet::Repr {
            dst: self.eth_dst,
            src: self.eth_src,
            vlan_tci: None,
            ethertype: ethernet::ethertype::IPV6,
        };
        let ip = ipv6::Repr {
            src,
            dst,
            next_header: ip_protocol::ICMPV6,
            hop_limit: HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
            payload_len: ICMP_LEN,
        };
        let written = eth.emit(eth_header).and_then(|_| ip.emit(ip_header));
        debug_assert_eq!(written, Ok(ipv6::HEADER_LEN), "headers fit");
        payload.copy_from_slice(&icmp);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const THEIRS: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const OUR_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const THEIR_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x64);
    const L3: usize = ethernet::HEADER_LEN;
    const L4: usize = L3 + ipv6::HEADER_LEN;

    /// The textbook ICMPv6 sum (RFC 1071 over the RFC 8200 pseudo-header),
    /// 16-bit words one at a time, independent of `checksum`.
    fn naive_sum(frame: &[u8]) -> u16 {
        let len = u16::from_be_bytes([frame[L3 + 4], frame[L3 + 5]]);
        let mut data = frame[L3 + 8..L3 + 40].to_vec();
        data.extend_from_slice(&[0, 0]);
        data.extend_from_slice(&len.to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 58]);
        data.extend_from_slice(&frame[L4..L4 + usize::from(len)]);
        if data.len() % 2 == 1 {
            data.push(0);
        }
        let mut sum: u32 = data
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// Rewrites the ICMPv6 checksum after a test edited the frame.
    fn fix_checksum(frame: &mut [u8]) {
        frame[L4 + 2..L4 + 4].copy_from_slice(&[0, 0]);
        let sum = !naive_sum(frame);
        frame[L4 + 2..L4 + 4].copy_from_slice(&sum.to_be_bytes());
    }

    /// Their solicitation for `target`, multicast, with their link-layer
    /// address.
    fn ns_for(target: Ipv6Addr) -> [u8; ND_FRAME_LEN] {
        neighbour_solicitation(THEIRS, THEIR_IP, target)
    }

    /// A duplicate address detection solicitation for `target`: source ::,
    /// no option.
    fn dad_for(target: Ipv6Addr) -> Vec<u8> {
        let mut f = ns_for(target)[..L4 + MESSAGE_LEN].to_vec();
        f[L3 + 5] = MESSAGE_LEN as u8;
        f[L3 + 8..L3 + 24].copy_from_slice(&[0; 16]);
        fix_checksum(&mut f);
        f
    }

    fn handle(frame: &[u8]) -> Result<Option<NdAction>, NdError> {
        handle_nd(frame, OURS, &[link_local(OURS), OUR_IP])
    }

    #[test]
    fn solicitation_for_our_address_gets_an_advertisement() {
        let ns = ns_for(OUR_IP);
        assert_eq!(naive_sum(&ns), 0xffff, "the builder's checksum verifies");
        let action = handle(&ns).expect("valid").expect("ND");
        assert_eq!(action.learn, Some((THEIR_IP, THEIRS)));
        assert_eq!(action.conflict, None);
        let na = action.reply.expect("a reply");
        assert_eq!(na[..6], THEIRS, "to their link-layer option");
        assert_eq!(na[6..12], OURS);
        assert_eq!(na[12..14], [0x86, 0xdd]);
        assert_eq!(na[L3..L3 + 8], [0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(na[L3 + 8..L3 + 24], OUR_IP.octets(), "from the target");
        assert_eq!(na[L3 + 24..L4], THEIR_IP.octets(), "to the solicitor");
        assert_eq!(na[L4..L4 + 2], [136, 0]);
        assert_eq!(na[L4 + 4], 0xe0, "router, solicited, override");
        assert_eq!(na[L4 + 5..L4 + 8], [0; 3]);
        assert_eq!(na[L4 + 8..L4 + 24], OUR_IP.octets());
        assert_eq!(na[L4 + 24..L4 + 26], [2, 1], "target link-layer option");
        assert_eq!(na[L4 + 26..], OURS);
        assert_eq!(naive_sum(&na), 0xffff, "checksum verifies independently");
        // And the other side accepts it.
        let back = handle_nd(&na, THEIRS, &[THEIR_IP]).expect("valid");
        assert_eq!(back.and_then(|a| a.learn), Some((OUR_IP, OURS)));
    }

    #[test]
    fn solicitation_for_our_link_local_address_is_answered() {
        let ll = link_local(OURS);
        let ns = ns_for(ll);
        let na = handle(&ns).expect("valid").and_then(|a| a.reply);
        let na = na.expect("a reply");
        assert_eq!(na[L3 + 8..L3 + 24], ll.octets());
        assert_eq!(naive_sum(&na), 0xffff);
    }

    #[test]
    fn unicast_solicitation_without_option_answers_the_ethernet_source() {
        let mut ns = neighbour_solicitation_unicast(THEIRS, THEIR_IP, OUR_IP, OURS);
        assert_eq!(ns[..6], OURS);
        assert_eq!(ns[L3 + 24..L4], OUR_IP.octets());
        // Drop the option: nothing to learn, the answer goes to 52:54:...
        ns[L3 + 5] = MESSAGE_LEN as u8;
        fix_checksum(&mut ns);
        let action = handle(&ns[..L4 + MESSAGE_LEN]).expect("valid").expect("ND");
        assert_eq!(action.learn, None);
        assert_eq!(action.reply.expect("a reply")[..6], THEIRS);
    }

    #[test]
    fn duplicate_address_detection_is_answered_to_all_nodes() {
        let dad = dad_for(OUR_IP);
        assert_eq!(dad[L3 + 24..L4], solicited_node(OUR_IP).octets());
        let action = handle(&dad).expect("valid").expect("ND");
        assert_eq!(action.learn, None, "nothing to learn from ::");
        let na = action.reply.expect("we defend the address");
        assert_eq!(na[..6], [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(na[L3 + 24..L4], ALL_NODES.octets());
        assert_eq!(na[L4 + 4], 0xa0, "router and override, not solicited");
        assert_eq!(naive_sum(&na), 0xffff);
        // Invalid forms of it.
        let mut bad = dad_for(OUR_IP);
        bad[L3 + 24..L4].copy_from_slice(&OUR_IP.octets());
        fix_checksum(&mut bad);
        assert_eq!(handle(&bad), Err(NdError::DadNotToSolicitedNode));
        let mut bad = ns_for(OUR_IP);
        bad[L3 + 8..L3 + 24].copy_from_slice(&[0; 16]);
        fix_checksum(&mut bad);
        assert_eq!(handle(&bad), Err(NdError::DadWithLinkLayer));
    }

    #[test]
    fn advertisements_are_learned() {
        // Solicited, unicast to us, with a target link-layer option.
        let ns = neighbour_solicitation(OURS, OUR_IP, THEIR_IP);
        let na = handle_nd(&ns, THEIRS, &[THEIR_IP])
            .expect("valid")
            .and_then(|a| a.reply)
            .expect("they answer");
        let action = handle(&na).expect("valid").expect("ND");
        assert_eq!(
            action,
            NdAction {
                learn: Some((THEIR_IP, THEIRS)),
                reply: None,
                conflict: None
            }
        );
        // Without the option, the Ethernet source is learned.
        let mut short = na[..L4 + MESSAGE_LEN].to_vec();
        short[L3 + 5] = MESSAGE_LEN as u8;
        short[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x77]);
        fix_checksum(&mut short);
        let action = handle(&short).expect("valid").expect("ND");
        assert_eq!(action.learn, Some((THEIR_IP, [0x02, 0, 0, 0, 0, 0x77])));
    }

    #[test]
    fn advertisement_for_our_address_is_a_conflict() {
        let ns = neighbour_solicitation(OURS, OUR_IP, THEIR_IP);
        let mut na = handle_nd(&ns, THEIRS, &[THEIR_IP])
            .expect("valid")
            .and_then(|a| a.reply)
            .expect("they answer");
        na[L4 + 8..L4 + 24].copy_from_slice(&OUR_IP.octets());
        fix_checksum(&mut na);
        let action = handle(&na).expect("valid").expect("ND");
        assert_eq!(action.conflict, Some(THEIRS));
        assert_eq!((action.learn, action.reply), (None, None));
    }

    #[test]
    fn invalid_messages_are_ignored_with_a_reason() {
        let ns = ns_for(OUR_IP);
        let mut f = ns;
        f[L3 + 7] = 254;
        assert_eq!(handle(&f), Err(NdError::BadHopLimit(254)));
        let mut f = ns;
        f[L4 + 2] ^= 1;
        assert_eq!(handle(&f), Err(NdError::BadChecksum));
        let mut f = ns;
        f[L4 + 9] ^= 1; // payload change without fixing the checksum
        assert_eq!(handle(&f), Err(NdError::BadChecksum));
        let cases: [(usize, &[u8], NdError); 7] = [
            (L4 + 1, &[1], NdError::BadCode(1)),
            (L4 + 8, &[0xff, 0x02], NdError::BadTarget),
            (L4 + 25, &[0], NdError::BadOption),
            (L4 + 25, &[2], NdError::BadOption),
            (L4 + 26, &[0x01], NdError::BadLinkLayer),
            (L3 + 8, &[0xff, 0x02], NdError::BadSource),
            (L4 + 23, &[9], NdError::NotOurTarget),
        ];
        for (at, bytes, want) in cases {
            let mut f = ns;
            f[at..at + bytes.len()].copy_from_slice(bytes);
            fix_checksum(&mut f);
            assert_eq!(handle(&f), Err(want), "{want}");
        }
        // An unknown option is skipped; a truncated message is refused.
        let mut f = ns;
        f[L4 + 24] = 14;
        fix_checksum(&mut f);
        assert_eq!(handle(&f).expect("valid").and_then(|a| a.learn), None);
        let mut f = ns[..L4 + 20].to_vec();
        f[L3 + 5] = 20;
        fix_checksum(&mut f);
        assert_eq!(handle(&f), Err(NdError::Truncated));
        // Solicited advertisement to a multicast address.
        let mut f = ns;
        f[L4] = TYPE_NA;
        f[L4 + 4] = FLAG_SOLICITED;
        f[L4 + 24] = OPT_TARGET_LL;
        f[L4 + 8..L4 + 24].copy_from_slice(&THEIR_IP.octets());
        fix_checksum(&mut f);
        assert_eq!(handle(&f), Err(NdError::SolicitedToMulticast));
        // Our own frame, and a tagged one.
        assert_eq!(
            handle_nd(&neighbour_solicitation(OURS, OUR_IP, THEIR_IP), OURS, &[]),
            Err(NdError::OwnFrame)
        );
        let mut tagged = vec![0u8; ND_FRAME_LEN + 4];
        tagged[..12].copy_from_slice(&ns[..12]);
        tagged[12..16].copy_from_slice(&[0x81, 0, 0, 7]);
        tagged[16..].copy_from_slice(&ns[12..]);
        assert_eq!(handle(&tagged), Err(NdError::Tagged));
    }

    #[test]
    fn a_solicitation_from_our_own_address_is_a_conflict() {
        let f = neighbour_solicitation(THEIRS, OUR_IP, THEIR_IP);
        let action = handle(&f).expect("valid").expect("ND");
        assert_eq!(action.conflict, Some(THEIRS));
        assert_eq!((action.learn, action.reply), (None, None));
    }

    #[test]
    fn other_packets_are_left_to_the_caller() {
        let ns = ns_for(OUR_IP);
        // ICMPv6 echo request.
        let mut f = ns;
        f[L4] = 128;
        assert_eq!(handle(&f), Ok(None));
        // UDP.
        let mut f = ns;
        f[L3 + 6] = 17;
        assert_eq!(handle(&f), Ok(None));
        // Not IPv6 at all.
        let mut f = ns;
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(handle(&f), Ok(None));
    }

    #[test]
    fn solicitation_builder_targets_the_solicited_node_group() {
        let target: Ipv6Addr = "2001:db8::1:2:3".parse().expect("address");
        let group: Ipv6Addr = "ff02::1:ff02:3".parse().expect("address");
        assert_eq!(solicited_node(target), group);
        assert_eq!(multicast_mac(group), [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
        let ns = neighbour_solicitation(OURS, OUR_IP, target);
        assert_eq!(ns[..6], [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]);
        assert_eq!(ns[L3 + 7], 255);
        assert_eq!(ns[L3 + 24..L4], group.octets());
        assert_eq!(ns[L4..L4 + 2], [135, 0]);
        assert_eq!(ns[L4 + 8..L4 + 24], target.octets());
        assert_eq!(ns[L4 + 24..L4 + 26], [1, 1], "source link-layer option");
        assert_eq!(ns[L4 + 26..], OURS);
        assert_eq!(naive_sum(&ns), 0xffff);
    }

    #[test]
    fn link_local_flips_the_universal_local_bit() {
        let want: Ipv6Addr = "fe80::ff:fe00:1".parse().expect("address");
        assert_eq!(link_local([0x02, 0, 0, 0, 0, 0x01]), want);
        let want: Ipv6Addr = "fe80::5054:ff:fe12:3456".parse().expect("address");
        assert_eq!(link_local(THEIRS), want);
    }

    #[test]
    fn truncated_frames_error_at_every_length() {
        let ns = ns_for(OUR_IP);
        for n in 0..ns.len() {
            assert!(handle(&ns[..n]).is_err(), "length {n}");
        }
        // Ethernet padding after the payload is ignored.
        let mut padded = ns.to_vec();
        padded.extend_from_slice(&[0xaa; 10]);
        assert!(handle(&padded).expect("valid").is_some());
    }

    #[test]
    fn random_frames_never_panic() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut handled = 0;
        for _ in 0..20_000 {
            let mut f = ns_for(OUR_IP).to_vec();
            f.extend_from_slice(&[0; 16]);
            for _ in 0..(next() % 4) {
                let at = (next() % f.len() as u64) as usize;
                f[at] = next() as u8;
            }
            if next() % 2 == 0 {
                f[L3 + 4] = 0;
                f[L3 + 5] = (next() % 48) as u8;
                fix_checksum(&mut f);
            }
            let len = (next() % (f.len() as u64 + 1)) as usize;
            if let Ok(Some(_)) = handle(&f[..len]) {
                handled += 1;
            }
        }
        assert!(handled > 100, "{handled} handled");
    }

    #[test]
    fn errors_display_a_reason() {
        assert_eq!(
            NdError::BadHopLimit(64).to_string(),
            "ND hop limit 64, not 255"
        );
    }
}
