//! TCP MSS clamping (`ports.plaintext.mss_clamp`): the MSS option of a
//! SYN or SYN-ACK crossing the tunnel, either way, is lowered to what fits
//! the tunnel's inner MTU, so that TCP never sends a segment the tunnel
//! must refuse (what wg-quick users do with iptables' `TCPMSS
//! --clamp-mss-to-pmtu`). The TCP checksum is updated incrementally
//! (RFC 1624); nothing else in the segment changes.

use crate::counters::{Event, WorkerCounters};
use crate::icmp::v6_upper_layer;
use crate::wire::{checksum, ip_protocol, ipv4, ipv6};

/// TCP header bytes before the options.
const TCP_HEADER_LEN: usize = 20;
/// The SYN flag (RFC 9293 section 3.1).
const SYN: u8 = 0x02;
/// TCP option kinds: end of list, no-operation, maximum segment size.
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
/// Offset of the checksum in the TCP header.
const TCP_CHECKSUM: usize = 16;

/// The TCP segment of an IP packet that is not a later fragment, and the
/// MSS ceiling of its family.
fn tcp_segment(packet: &mut [u8], clamp: MssClamp) -> Option<(&mut [u8], u16)> {
    match packet.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(&*packet).ok()?;
            if ip.protocol() != ip_protocol::TCP || ip.frag_offset() != 0 {
                return None;
            }
            let (start, end) = (ip.header_len(), ip.total_len());
            Some((packet.get_mut(start..end)?, clamp.v4))
        }
        6 => {
            let ip = ipv6::Packet::new_checked(&*packet).ok()?;
            let end = ip.total_len();
            let (next, rest) = v6_upper_layer(ip.next_header(), ip.payload())?;
            if next != ip_protocol::TCP {
                return None;
            }
            let start = end - rest.len();
            Some((packet.get_mut(start..end)?, clamp.v6))
        }
        _ => None,
    }
}

/// Lowers the MSS option of a SYN in `packet` (an IP packet) to the
/// ceiling of its family; returns whether it changed.
pub fn clamp(packet: &mut [u8], clamp: MssClamp) -> bool {
    let Some((tcp, ceiling)) = tcp_segment(packet, clamp) else {
        return false;
    };
    if tcp.len() < TCP_HEADER_LEN || tcp[13] & SYN == 0 {
        return false;
    }
    let header_len = usize::from(tcp[12] >> 4) * 4;
    if header_len < TCP_HEADER_LEN || header_len > tcp.len() {
        return false;
    }
    let mut at = TCP_HEADER_LEN;
    while at < header_len {
        match tcp[at] {
            OPT_END => return false,
            OPT_NOP => at += 1,
            kind => {
                let Some(&len) = tcp.get(at + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || at + len > header_len {
                    return false;
                }
                if kind == OPT_MSS && len == 4 {
                    return lower(tcp, at + 2, ceiling);
                }
                at += len;
            }
        }
    }
    false
}

/// Writes `ceiling` into the MSS value at `at` of `tcp` if it is larger,
/// with the checksum updated for the 16-bit words the value touches (it
/// may straddle two when the option is not word-aligned).
fn lower(tcp: &mut [u8], at: usize, ceiling: u16) -> bool {
    let mss = u16::from_be_bytes([tcp[at], tcp[at + 1]]);
    if mss <= ceiling {
        return false;
    }
    // The two 16-bit words from the one the value starts in; a word past
    // the segment's end is its zero padding (RFC 9293 section 3.1).
    let first = at & !1;
    let byte = |t: &[u8], i: usize| t.get(i).copied().unwrap_or(0);
    let words = |t: &[u8]| {
        [
            u16::from_be_bytes([byte(t, first), byte(t, first + 1)]),
            u16::from_be_bytes([byte(t, first + 2), byte(t, first + 3)]),
        ]
    };
    let old = words(tcp);
    tcp[at..at + 2].copy_from_slice(&ceiling.to_be_bytes());
    let new = words(tcp);
    let mut check = u16::from_be_bytes([tcp[TCP_CHECKSUM], tcp[TCP_CHECKSUM + 1]]);
    for (o, n) in old.into_iter().zip(new) {
        if o != n {
            check = checksum::update(check, o, n);
        }
    }
    tcp[TCP_CHECKSUM..TCP_CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    true
}

/// `mss_clamp` as the worker applies it: the largest MSS a SYN may carry,
/// per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MssClamp {
    /// For TCP over IPv4.
    pub v4: u16,
    /// For TCP over IPv6.
    pub v6: u16,
}

/// Clamps the MSS of a SYN in the IP packet `packet` when `mss_clamp` is
/// on (`clamp`), and counts it.
#[inline]
pub(crate) fn clamp_counted(clamp: Option<MssClamp>, packet: &mut [u8], counters: &WorkerCounters) {
    if let Some(c) = clamp {
        if self::clamp(packet, c) {
            counters.add(Event::MssClamped, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLAMP: MssClamp = MssClamp { v4: 1380, v6: 1360 };

    /// The TCP checksum of `tcp` over the IPv4 pseudo-header, computed the
    /// textbook way (an oracle independent of `wire::checksum`).
    fn oracle(pseudo: &[u8], tcp: &[u8]) -> u16 {
        let bytes = [pseudo, tcp].concat();
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An IPv4 TCP segment with `flags` and the options `opts` (padded to
    /// a word), its checksum correct.
    fn v4_tcp(flags: u8, opts: &[u8]) -> Vec<u8> {
        let olen = opts.len().div_ceil(4) * 4;
        let tcp_len = TCP_HEADER_LEN + olen + 10;
        let mut p = vec![0u8; 20 + tcp_len];
        ipv4::Repr {
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            protocol: ip_protocol::TCP,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: true,
            payload_len: tcp_len,
        }
        .emit(&mut p)
        .unwrap();
        let t = &mut p[20..];
        t[0..4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        t[4..8].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        t[12] = (((TCP_HEADER_LEN + olen) / 4) as u8) << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&65535u16.to_be_bytes());
        t[20..20 + opts.len()].copy_from_slice(opts);
        for (i, b) in t[20 + olen..].iter_mut().enumerate() {
            *b = 0xa0 + i as u8;
        }
        let sum = oracle(&v4_pseudo(tcp_len), &p[20..]);
        p[20 + 16..20 + 18].copy_from_slice(&sum.to_be_bytes());
        p
    }

    fn v4_pseudo(len: usize) -> Vec<u8> {
        let mut ph = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 6];
        ph.extend_from_slice(&(len as u16).to_be_bytes());
        ph
    }

    fn mss_at(p: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([p[20 + at], p[20 + at + 1]])
    }

    fn checksum_ok(p: &[u8]) -> bool {
        oracle(&v4_pseudo(p.len() - 20), &p[20..]) == 0
    }

    #[test]
    fn a_syn_and_a_syn_ack_are_clamped_with_a_valid_checksum() {
        for flags in [SYN, SYN | 0x10] {
            let mut p = v4_tcp(flags, &[2, 4, 0x05, 0xb4, 1, 1, 4, 2]);
            assert!(clamp(&mut p, CLAMP));
            assert_eq!(mss_at(&p, 22), 1380);
            assert!(checksum_ok(&p), "checksum after the update");
        }
    }

    #[test]
    fn an_unaligned_option_straddling_two_words_is_updated_right() {
        // NOP, then MSS: its value starts at an odd offset.
        let mut p = v4_tcp(SYN, &[1, 2, 4, 0x05, 0xb4, 1, 1, 1]);
        assert!(clamp(&mut p, CLAMP));
        assert_eq!(mss_at(&p, 23), 1380);
        assert!(checksum_ok(&p));
        // Behind a timestamp option (kind 8, 10 bytes), after a SACK-permitted.
        let mut opts = vec![4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 2, 4, 0x23, 0x28];
        opts.extend_from_slice(&[0, 0, 0, 0]);
        let mut p = v4_tcp(SYN, &opts);
        assert!(clamp(&mut p, CLAMP));
        assert_eq!(mss_at(&p, 34), 1380);
        assert!(checksum_ok(&p));
    }

    #[test]
    fn an_option_ending_the_segment_is_updated_without_reading_past_it() {
        // Found by the `router` fuzz target: MSS in the header's last two
        // bytes, no payload, and a one-byte option shifting nothing.
        let full = v4_tcp(SYN, &[1, 1, 1, 1, 2, 4, 0x05, 0xb4]);
        let len = 20 + 28;
        let mut p = full[..len].to_vec();
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[36..38].fill(0);
        let sum = oracle(&v4_pseudo(28), &p[20..]);
        p[36..38].copy_from_slice(&sum.to_be_bytes());
        assert!(clamp(&mut p, CLAMP));
        assert_eq!(mss_at(&p, 26), 1380);
        assert!(checksum_ok(&p));
        // The same at an odd offset, the segment one byte longer.
        let full = v4_tcp(SYN, &[1, 1, 1, 2, 4, 0x05, 0xb4, 0]);
        let len = 20 + 28 + 1;
        let mut p = full[..len].to_vec();
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[36..38].fill(0);
        let sum = oracle(&v4_pseudo(29), &p[20..]);
        p[36..38].copy_from_slice(&sum.to_be_bytes());
        assert!(clamp(&mut p, CLAMP));
        assert_eq!(mss_at(&p, 25), 1380);
        assert!(checksum_ok(&p));
    }

    #[test]
    fn a_smaller_mss_other_segments_and_broken_options_are_left_alone() {
        let small = v4_tcp(SYN, &[2, 4, 0x04, 0x00]);
        let mut p = small.clone();
        assert!(!clamp(&mut p, CLAMP), "1024 is under the ceiling");
        assert_eq!(p, small);
        let ack = v4_tcp(0x10, &[2, 4, 0x05, 0xb4]);
        let mut p = ack.clone();
        assert!(!clamp(&mut p, CLAMP), "not a SYN");
        assert_eq!(p, ack);
        // An option whose length runs past the header.
        let bad = v4_tcp(SYN, &[8, 40, 2, 4, 0x05, 0xb4]);
        let mut p = bad.clone();
        assert!(!clamp(&mut p, CLAMP));
        assert_eq!(p, bad);
        // MSS after the end-of-list option is not an option.
        let end = v4_tcp(SYN, &[0, 0, 0, 0, 2, 4, 0x05, 0xb4]);
        let mut p = end.clone();
        assert!(!clamp(&mut p, CLAMP));
        assert_eq!(p, end);
        // UDP is not touched.
        let mut udp = v4_tcp(SYN, &[2, 4, 0x05, 0xb4]);
        udp[9] = ip_protocol::UDP;
        let before = udp.clone();
        assert!(!clamp(&mut udp, CLAMP));
        assert_eq!(udp, before);
    }

    #[test]
    fn ipv6_uses_its_own_ceiling() {
        let v4 = v4_tcp(SYN, &[2, 4, 0x05, 0xa0]);
        let tcp = &v4[20..];
        let mut p = vec![0u8; 40 + tcp.len()];
        let src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut dst = src;
        dst[15] = 2;
        ipv6::Repr {
            src,
            dst,
            next_header: ip_protocol::TCP,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: tcp.len(),
        }
        .emit(&mut p)
        .unwrap();
        p[40..].copy_from_slice(tcp);
        p[40 + 16..40 + 18].fill(0);
        let mut pseudo = [&src[..], &dst[..]].concat();
        pseudo.extend_from_slice(&(tcp.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 6]);
        let sum = oracle(&pseudo, &p[40..]);
        p[40 + 16..40 + 18].copy_from_slice(&sum.to_be_bytes());
        assert!(clamp(&mut p, CLAMP));
        assert_eq!(u16::from_be_bytes([p[62], p[63]]), 1360);
        assert_eq!(oracle(&pseudo, &p[40..]), 0);
    }
}
