//! ICMP errors the data path sends as a router: IPv4 "fragmentation
//! needed" (RFC 1191), ICMPv6 Packet Too Big, time exceeded and destination
//! unreachable (RFC 792, RFC 1812 section 4.3, RFC 4443 section 3).
//!
//! Built on the worker that drops the packet, into an mbuf of the pool
//! (no allocation, no lock), after the rules of RFC 1812 section 4.3.2.7
//! and RFC 4443 section 2.4 (never about an ICMP error, a non-initial
//! fragment, or a packet from or to a broadcast or multicast address), and
//! only while the worker's token bucket has a token. The bucket refills
//! from the instant of the burst (one TSC read per burst), at
//! `dpdk.icmp_per_sec` with room for `dpdk.icmp_burst`, by default the
//! kernel's global rate (`net.ipv4.icmp_msgs_per_sec` 1000,
//! `icmp_msgs_burst` 50).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use std::sync::Arc;

use dpdk_sys::rte::{Mbuf, Mempool};
use protocol::time::Instant;

use crate::counters::{DropReason, Event, WorkerCounters};
use crate::port::PortNet;
use crate::wire::ip::ip_header;
use crate::wire::{checksum, ethernet, ip_protocol, ipv4, ipv6};

/// Longest ICMPv4 error, IP header included (RFC 1812 section 4.3.2.3:
/// as much of the original datagram as fits in 576 bytes).
const V4_MAX_LEN: usize = 576;
/// Longest ICMPv6 error, IP header included (RFC 4443 section 2.4 (c): as
/// much of the invoking packet as fits in the minimum IPv6 MTU, 1280).
const V6_MAX_LEN: usize = 1280;
/// The ICMP header: type, code, checksum and the 4-byte field (unused,
/// or the MTU).
const ICMP_HEADER_LEN: usize = 8;
/// TTL / hop limit of the errors (the kernel's default).
const HOP_LIMIT: u8 = 64;
/// IPv4 TOS of the errors: precedence "internetwork control", as the
/// kernel's `icmp_send` (RFC 1812 section 4.3.2.5).
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

/// ICMPv4 types and codes (RFC 792, RFC 1191).
mod v4 {
    pub const DEST_UNREACH: u8 = 3;
    pub const HOST_UNREACH: u8 = 1;
    pub const FRAG_NEEDED: u8 = 4;
    pub const TIME_EXCEEDED: u8 = 11;
    /// Error types (RFC 1812 section 4.3.2.7): destination unreachable,
    /// source quench, redirect, time exceeded, parameter problem.
    pub const ERRORS: [u8; 5] = [3, 4, 5, 11, 12];
}

/// ICMPv6 types and codes (RFC 4443 section 3).
mod v6 {
    pub const DEST_UNREACH: u8 = 1;
    pub const ADDR_UNREACH: u8 = 3;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    /// Types below this are errors (RFC 4443 section 2.1).
    pub const FIRST_INFO: u8 = 128;
    /// Extension headers walked to find the upper layer (RFC 8200
    /// section 4): hop-by-hop, routing, destination options.
    pub const EXT_HEADERS: [u8; 3] = [0, 43, 60];
}

/// Which error to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpError {
    /// Larger than the tunnel carries and not to be fragmented: IPv4
    /// destination unreachable / fragmentation needed (type 3 code 4) with
    /// this next-hop MTU (RFC 1191 section 4), or ICMPv6 Packet Too Big
    /// (type 2) with this MTU (RFC 4443 section 3.2).
    TooBig(u16),
    /// TTL / hop limit exceeded in transit: IPv4 type 11 code 0, ICMPv6
    /// type 3 code 0.
    TimeExceeded,
    /// The destination cannot be reached (its peer has no endpoint): IPv4
    /// host unreachable (type 3 code 1), ICMPv6 address unreachable (type 1
    /// code 3), as the kernel's WireGuard transmit path sends.
    Unreachable,
}

impl IcmpError {
    /// The counter of a sent error of this kind on `v6`.
    fn event(self, v6: bool) -> Event {
        match self {
            IcmpError::TooBig(_) if v6 => Event::IcmpPacketTooBig,
            IcmpError::TooBig(_) => Event::IcmpFragNeeded,
            IcmpError::TimeExceeded => Event::IcmpTimeExceeded,
            IcmpError::Unreachable => Event::IcmpUnreachable,
        }
    }

    /// ICMPv4 type, code and the 4-byte field after the checksum.
    fn v4_fields(self) -> (u8, u8, [u8; 4]) {
        match self {
            IcmpError::TooBig(mtu) => {
                let m = mtu.to_be_bytes();
                (v4::DEST_UNREACH, v4::FRAG_NEEDED, [0, 0, m[0], m[1]])
            }
            IcmpError::TimeExceeded => (v4::TIME_EXCEEDED, 0, [0; 4]),
            IcmpError::Unreachable => (v4::DEST_UNREACH, v4::HOST_UNREACH, [0; 4]),
        }
    }

    /// ICMPv6 type, code and the 4-byte field after the checksum.
    fn v6_fields(self) -> (u8, u8, [u8; 4]) {
        match self {
            IcmpError::TooBig(mtu) => (v6::PACKET_TOO_BIG, 0, u32::from(mtu).to_be_bytes()),
            IcmpError::TimeExceeded => (v6::TIME_EXCEEDED, 0, [0; 4]),
            IcmpError::Unreachable => (v6::DEST_UNREACH, v6::ADDR_UNREACH, [0; 4]),
        }
    }
}

/// Whether an IPv4 address names one host (RFC 1812 section 4.3.2.7:
/// not 0/8, loopback, multicast, limited broadcast or class E).
fn v4_unicast(a: Ipv4Addr) -> bool {
    let first = a.octets()[0];
    first != 0 && !a.is_loopback() && !a.is_multicast() && first < 240
}

/// Whether an IPv6 address names one node (RFC 4443 section 2.4 (e.6):
/// not unspecified, not multicast).
fn v6_unicast(a: Ipv6Addr) -> bool {
    !a.is_unspecified() && !a.is_multicast()
}

/// Whether an ICMP error may be sent about the IP packet `orig` (from its
/// IP header on): RFC 1812 section 4.3.2.7 for IPv4, RFC 4443 section
/// 2.4 (e) for IPv6.
pub fn may_answer(orig: &[u8], err: IcmpError) -> bool {
    match orig.first().map(|b| b >> 4) {
        Some(4) => {
            let Ok(ip) = ipv4::Packet::new_checked(orig) else {
                return false;
            };
            let (src, dst) = (Ipv4Addr::from(ip.src_addr()), Ipv4Addr::from(ip.dst_addr()));
            if !v4_unicast(src) || dst.is_broadcast() || dst.is_multicast() {
                return false;
            }
            // Not about a fragment other than the first (the header of the
            // upper layer is not in it).
            if ip.frag_offset() != 0 {
                return false;
            }
            if ip.protocol() == ip_protocol::ICMP {
                return ip
                    .payload()
                    .first()
                    .is_some_and(|t| !v4::ERRORS.contains(t));
            }
            true
        }
        Some(6) => {
            let Ok(ip) = ipv6::Packet::new_checked(orig) else {
                return false;
            };
            let (src, dst) = (Ipv6Addr::from(ip.src_addr()), Ipv6Addr::from(ip.dst_addr()));
            // Packet Too Big is the exception for multicast destinations
            // (RFC 4443 section 2.4 (e.3)).
            if !v6_unicast(src) || (dst.is_multicast() && !matches!(err, IcmpError::TooBig(_))) {
                return false;
            }
            match v6_upper_layer(ip.next_header(), ip.payload()) {
                Some((ip_protocol::ICMPV6, rest)) => {
                    rest.first().is_some_and(|t| *t >= v6::FIRST_INFO)
                }
                // Truncated extension headers: not answered.
                None => false,
                Some(_) => true,
            }
        }
        _ => false,
    }
}

/// The upper-layer protocol of an IPv6 packet and its bytes, past the
/// hop-by-hop, routing, destination-options and first-fragment headers;
/// a later fragment reports the fragment header itself (its upper layer
/// is not there). `None` when a header is cut short.
pub(crate) fn v6_upper_layer(mut next: u8, mut rest: &[u8]) -> Option<(u8, &[u8])> {
    loop {
        if v6::EXT_HEADERS.contains(&next) {
            let len = (usize::from(*rest.get(1)?) + 1) * 8;
            next = *rest.first()?;
            rest = rest.get(len..)?;
        } else if next == ip_protocol::IPV6_FRAGMENT {
            let offset = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]) >> 3;
            if offset != 0 {
                return Some((next, rest));
            }
            next = *rest.first()?;
            rest = rest.get(8..)?;
        } else {
            return Some((next, rest));
        }
    }
}

/// The invoking packet as far as its IP header's length says (Ethernet
/// padding left out).
fn ip_bytes(orig: &[u8]) -> &[u8] {
    let len = match orig.first().map(|b| b >> 4) {
        Some(4) => ipv4::Packet::new_checked(orig).map_or(0, |p| p.total_len()),
        Some(6) => ipv6::Packet::new_checked(orig).map_or(0, |p| p.total_len()),
        _ => 0,
    };
    orig.get(..len).unwrap_or(orig)
}

/// The length of the error about `orig` (IP header on), at most `max`
/// bytes: its IP and ICMP headers and as much of `orig` as the RFC allows.
pub fn reply_len(orig: &[u8], max: usize) -> usize {
    let (header, rfc_max) = if orig.first().map(|b| b >> 4) == Some(6) {
        (ipv6::HEADER_LEN, V6_MAX_LEN)
    } else {
        (ipv4::HEADER_LEN, V4_MAX_LEN)
    };
    let room = rfc_max.min(max).saturating_sub(header + ICMP_HEADER_LEN);
    header + ICMP_HEADER_LEN + ip_bytes(orig).len().min(room)
}

/// Writes into `buf` (exactly [`reply_len`] bytes) the error `err` about
/// the IP packet `orig`, from `src` to `orig`'s source; `ident` is the IPv4
/// identification. `None` when `orig` is not an IP packet or `src` is of
/// the other family.
pub fn write(buf: &mut [u8], err: IcmpError, src: IpAddr, orig: &[u8], ident: u16) -> Option<()> {
    let orig = ip_bytes(orig);
    match (orig.first()? >> 4, src) {
        (4, IpAddr::V4(src)) => {
            let dst = ipv4::Packet::new_checked(orig).ok()?.src_addr();
            let icmp_len = buf.len().checked_sub(ipv4::HEADER_LEN)?;
            let repr = ipv4::Repr {
                src: src.octets(),
                dst,
                protocol: ip_protocol::ICMP,
                ttl: HOP_LIMIT,
                dscp_ecn: TOS_INTERNETWORK_CONTROL,
                ident,
                dont_frag: false,
                payload_len: icmp_len,
            };
            let at = repr.emit(buf).ok()?;
            let (kind, code, field) = err.v4_fields();
            let icmp = buf.get_mut(at..)?;
            fill_icmp(icmp, kind, code, field, orig);
            let sum = checksum::checksum(icmp);
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            Some(())
        }
        (6, IpAddr::V6(src)) => {
            let dst = ipv6::Packet::new_checked(orig).ok()?.src_addr();
            let icmp_len = buf.len().checked_sub(ipv6::HEADER_LEN)?;
            let repr = ipv6::Repr {
                src: src.octets(),
                dst,
                next_header: ip_protocol::ICMPV6,
                hop_limit: HOP_LIMIT,
                traffic_class: 0,
                flow_label: 0,
                payload_len: icmp_len,
            };
            let at = repr.emit(buf).ok()?;
            let (kind, code, field) = err.v6_fields();
            let icmp = buf.get_mut(at..)?;
            fill_icmp(icmp, kind, code, field, orig);
            // RFC 4443 section 2.3: over the pseudo-header as well.
            let acc = checksum::pseudo_header_v6(
                &src.octets(),
                &dst,
                ip_protocol::ICMPV6,
                icmp_len as u32,
            );
            let sum = checksum::finish(checksum::add(acc, icmp));
            icmp[2..4].copy_from_slice(&sum.to_be_bytes());
            Some(())
        }
        _ => None,
    }
}

/// Type, code, zero checksum, the 4-byte field, then as much of `orig` as
/// fits.
fn fill_icmp(icmp: &mut [u8], kind: u8, code: u8, field: [u8; 4], orig: &[u8]) {
    icmp[0] = kind;
    icmp[1] = code;
    icmp[2..4].fill(0);
    icmp[4..8].copy_from_slice(&field);
    let quote = &mut icmp[ICMP_HEADER_LEN..];
    let n = quote.len().min(orig.len());
    quote[..n].copy_from_slice(&orig[..n]);
}

/// How many ICMP errors a worker may send: `per_sec` a second, `burst`
/// at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRate {
    /// Tokens earned a second (0: no ICMP error is ever sent).
    pub per_sec: u32,
    /// Tokens the bucket holds at most.
    pub burst: u32,
}

impl IcmpRate {
    /// The kernel's defaults: `net.ipv4.icmp_msgs_per_sec` 1000,
    /// `net.ipv4.icmp_msgs_burst` 50.
    pub const KERNEL: IcmpRate = IcmpRate {
        per_sec: 1000,
        burst: 50,
    };
}

/// A worker's token bucket for ICMP errors.
#[derive(Debug, Clone, Copy)]
pub struct IcmpBucket {
    tokens: u32,
    burst: u32,
    /// Time for one token (`None`: none is ever earned).
    per_token: Option<Duration>,
    /// The instant up to which tokens were credited.
    credited: Instant,
}

impl IcmpBucket {
    /// A full bucket for `rate`.
    pub fn new(rate: IcmpRate, now: Instant) -> Self {
        let burst = if rate.per_sec == 0 { 0 } else { rate.burst };
        Self {
            tokens: burst,
            burst,
            per_token: (rate.per_sec > 0)
                .then(|| Duration::from_nanos(1_000_000_000 / u64::from(rate.per_sec))),
            credited: now,
        }
    }

    /// Takes a token at `now`, crediting those earned since the last
    /// credit; `false` when none is left.
    pub fn take(&mut self, now: Instant) -> bool {
        let Some(per_token) = self.per_token else {
            return false;
        };
        let elapsed = now.saturating_since(self.credited);
        let earned = elapsed.as_nanos() / per_token.as_nanos().max(1);
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            // Credit whole tokens only, so that fractions are not lost.
            self.credited = if self.tokens == self.burst {
                now
            } else {
                self.credited + per_token * earned
            };
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// The ICMP errors a worker sends: built from its pool, rate-limited by
/// its bucket, numbered by its own IPv4 identification.
pub(crate) struct IcmpErrors<'p> {
    bucket: IcmpBucket,
    /// The IPv4 identification of the last error sent.
    ident: u16,
    pool: &'p Mempool,
    counters: Arc<WorkerCounters>,
}

impl<'p> IcmpErrors<'p> {
    /// Errors at `rate` from `now` on, built from `pool`, counted in
    /// `counters`.
    pub(crate) fn new(
        rate: IcmpRate,
        now: Instant,
        pool: &'p Mempool,
        counters: Arc<WorkerCounters>,
    ) -> Self {
        Self {
            bucket: IcmpBucket::new(rate, now),
            ident: 0,
            pool,
            counters,
        }
    }

    /// Whether an error about `orig` may go now: the RFC rules, then a
    /// token; counts the errors not sent.
    fn allowed(&mut self, orig: &[u8], err: IcmpError, now: Instant) -> bool {
        if !may_answer(orig, err) {
            self.counters.add(Event::IcmpSuppressed, 1);
            return false;
        }
        if !self.bucket.take(now) {
            self.counters.add(Event::IcmpRateLimited, 1);
            return false;
        }
        true
    }

    /// An mbuf of the pool holding the error about `orig` (IP header on)
    /// from `src`, at most `max` bytes, with `front` bytes before it for an
    /// Ethernet header.
    fn mbuf(
        &mut self,
        err: IcmpError,
        src: IpAddr,
        orig: &[u8],
        max: usize,
        front: usize,
    ) -> Option<Mbuf> {
        let Some(mut m) = self.pool.alloc() else {
            self.counters.count_drop(DropReason::NoMbuf);
            return None;
        };
        let len = reply_len(orig, max);
        let built = u16::try_from(front + len)
            .ok()
            .and_then(|n| m.append(n).ok())
            .and_then(|buf| {
                self.ident = self.ident.wrapping_add(1);
                write(&mut buf[front..], err, src, orig, self.ident)
            });
        if built.is_none() {
            self.counters.count_drop(DropReason::NoRoom);
            return None;
        }
        m.clear_tx_offload();
        Some(m)
    }

    /// The answer with `err` to a plaintext-port frame (`frame`, its IP
    /// header at `l3`), to go back out of the plaintext port `net` to the
    /// frame's source MAC, from the port's address facing the sender.
    /// Nothing about a frame sent to a link-layer group address (RFC 1812
    /// section 4.3.2.7).
    pub(crate) fn answer_frame(
        &mut self,
        frame: &[u8],
        l3: usize,
        err: IcmpError,
        net: &PortNet,
        now: Instant,
    ) -> Option<Mbuf> {
        let (eth, orig) = (frame.get(..ethernet::HEADER_LEN)?, frame.get(l3..)?);
        if eth[0] & 1 == 1 {
            self.counters.add(Event::IcmpSuppressed, 1);
            return None;
        }
        let sender = ip_header(orig)?.src;
        let Some(src) = net.source_for(sender) else {
            self.counters.add(Event::IcmpSuppressed, 1);
            return None;
        };
        if !self.allowed(orig, err, now) {
            return None;
        }
        let mut m = self.mbuf(err, src, orig, usize::MAX, ethernet::HEADER_LEN)?;
        let out = m.data_mut();
        out[ethernet::field::DST].copy_from_slice(&eth[ethernet::field::SRC]);
        out[ethernet::field::SRC].copy_from_slice(&net.mac);
        let ethertype = if sender.is_ipv6() {
            ethernet::ethertype::IPV6
        } else {
            ethernet::ethertype::IPV4
        };
        out[ethernet::field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
        self.counters.add(err.event(sender.is_ipv6()), 1);
        Some(m)
    }

    /// The answer with `err` to a packet a peer sent through the tunnel
    /// (`orig`, its decrypted IP packet), at most `mtu` bytes, to go back
    /// to the peer through the tunnel from the plaintext port's (`net`)
    /// address of the sender's family (wgdp has no tunnel interface
    /// address; the peer's allowed IPs for wgdp cover the protected
    /// networks).
    pub(crate) fn answer_peer(
        &mut self,
        orig: &[u8],
        err: IcmpError,
        net: &PortNet,
        mtu: usize,
        now: Instant,
    ) -> Option<Mbuf> {
        let sender = ip_header(orig)?.src;
        let Some(src) = net.source_for(sender) else {
            self.counters.add(Event::IcmpSuppressed, 1);
            return None;
        };
        if !self.allowed(orig, err, now) {
            return None;
        }
        let m = self.mbuf(err, src, orig, mtu, 0)?;
        self.counters.add(err.event(sender.is_ipv6()), 1);
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 checksum computed the textbook way, 16-bit words one at a
    /// time: an oracle independent of `wire::checksum`.
    fn oracle_sum(chunks: &[&[u8]]) -> u16 {
        let bytes: Vec<u8> = chunks.concat();
        let mut sum: u32 = 0;
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// An IPv4 packet of `len` bytes, protocol `proto`, from 10.1.0.5 to
    /// 10.9.0.7, its payload bytes counting up.
    fn v4_packet(len: usize, proto: u8, df: bool) -> Vec<u8> {
        let mut p = vec![0u8; len];
        let repr = ipv4::Repr {
            src: [10, 1, 0, 5],
            dst: [10, 9, 0, 7],
            protocol: proto,
            ttl: 1,
            dscp_ecn: 0x2a,
            ident: 0x1234,
            dont_frag: df,
            payload_len: len - 20,
        };
        repr.emit(&mut p).unwrap();
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn v6_packet(len: usize, next: u8) -> Vec<u8> {
        let mut p = vec![0u8; len];
        let repr = ipv6::Repr {
            src: "fd00:1::5".parse::<Ipv6Addr>().unwrap().octets(),
            dst: "fd00:9::7".parse::<Ipv6Addr>().unwrap().octets(),
            next_header: next,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            payload_len: len - 40,
        };
        repr.emit(&mut p).unwrap();
        for (i, b) in p[40..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    fn build(err: IcmpError, src: &str, orig: &[u8], max: usize) -> Vec<u8> {
        let mut buf = vec![0u8; reply_len(orig, max)];
        write(&mut buf, err, src.parse().unwrap(), orig, 7).expect("built");
        buf
    }

    /// Checks the IPv4 header of an error and returns its ICMP part.
    fn check_v4(b: &[u8], src: [u8; 4]) -> &[u8] {
        assert_eq!(b[0], 0x45);
        assert_eq!(b[1], 0xc0, "precedence internetwork control");
        assert_eq!(usize::from(u16::from_be_bytes([b[2], b[3]])), b.len());
        assert_eq!(&b[4..6], &7u16.to_be_bytes(), "ident");
        assert_eq!(&b[6..8], &[0, 0], "no DF, no fragment");
        assert_eq!(b[8], 64, "TTL");
        assert_eq!(b[9], 1, "ICMP");
        assert_eq!(oracle_sum(&[&b[..20]]), 0xffff, "IPv4 header checksum");
        assert_eq!(&b[12..16], &src);
        assert_eq!(&b[16..20], &[10, 1, 0, 5], "to the sender");
        let icmp = &b[20..];
        assert_eq!(oracle_sum(&[icmp]), 0xffff, "ICMP checksum");
        icmp
    }

    #[test]
    fn frag_needed_carries_the_mtu_and_quotes_up_to_576_bytes() {
        let orig = v4_packet(1500, ip_protocol::TCP, true);
        let b = build(IcmpError::TooBig(1420), "192.168.1.1", &orig, usize::MAX);
        assert_eq!(b.len(), 576, "RFC 1812 4.3.2.3: at most 576 bytes");
        let icmp = check_v4(&b, [192, 168, 1, 1]);
        assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed");
        assert_eq!(&icmp[4..6], &[0, 0], "unused");
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1420, "next-hop MTU");
        assert_eq!(&icmp[8..], &orig[..548], "the original from its IP header");
    }

    #[test]
    fn v4_time_exceeded_and_unreachable_quote_a_short_packet_whole() {
        let orig = v4_packet(60, ip_protocol::UDP, false);
        // Ethernet padding after the packet is not quoted.
        let mut padded = orig.clone();
        padded.extend_from_slice(&[0xee; 6]);
        for (err, kind, code) in [
            (IcmpError::TimeExceeded, 11, 0),
            (IcmpError::Unreachable, 3, 1),
        ] {
            let b = build(err, "192.168.1.1", &padded, usize::MAX);
            assert_eq!(b.len(), 20 + 8 + 60);
            let icmp = check_v4(&b, [192, 168, 1, 1]);
            assert_eq!((icmp[0], icmp[1]), (kind, code));
            assert_eq!(&icmp[4..8], &[0; 4], "unused");
            assert_eq!(&icmp[8..], &orig[..]);
        }
    }

    /// Checks the IPv6 header of an error and returns its ICMPv6 part.
    fn check_v6<'a>(b: &'a [u8], src: &str) -> &'a [u8] {
        assert_eq!(b[0] >> 4, 6);
        assert_eq!(&b[0..4], &[0x60, 0, 0, 0], "traffic class and flow 0");
        assert_eq!(usize::from(u16::from_be_bytes([b[4], b[5]])), b.len() - 40);
        assert_eq!(b[6], 58, "ICMPv6");
        assert_eq!(b[7], 64, "hop limit");
        let src = src.parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(&b[8..24], &src);
        let dst = "fd00:1::5".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(&b[24..40], &dst, "to the sender");
        let icmp = &b[40..];
        let len = (icmp.len() as u32).to_be_bytes();
        let pseudo: &[&[u8]] = &[&src, &dst, &len, &[0, 0, 0, 58], icmp];
        assert_eq!(oracle_sum(pseudo), 0xffff, "ICMPv6 checksum");
        icmp
    }

    #[test]
    fn packet_too_big_carries_the_mtu_and_quotes_up_to_1280_bytes() {
        let orig = v6_packet(1500, ip_protocol::TCP);
        let b = build(IcmpError::TooBig(1420), "fd00:1::1", &orig, usize::MAX);
        assert_eq!(b.len(), 1280, "RFC 4443 2.4 (c): the minimum MTU");
        let icmp = check_v6(&b, "fd00:1::1");
        assert_eq!((icmp[0], icmp[1]), (2, 0));
        assert_eq!(
            u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
            1420
        );
        assert_eq!(&icmp[8..], &orig[..1232]);
    }

    #[test]
    fn v6_time_exceeded_and_unreachable() {
        let orig = v6_packet(100, ip_protocol::UDP);
        for (err, kind, code) in [
            (IcmpError::TimeExceeded, 3, 0),
            (IcmpError::Unreachable, 1, 3),
        ] {
            let b = build(err, "fd00:1::1", &orig, usize::MAX);
            assert_eq!(b.len(), 40 + 8 + 100);
            let icmp = check_v6(&b, "fd00:1::1");
            assert_eq!((icmp[0], icmp[1]), (kind, code));
            assert_eq!(&icmp[4..8], &[0; 4]);
            assert_eq!(&icmp[8..], &orig[..]);
        }
    }

    #[test]
    fn a_smaller_limit_shortens_the_quote() {
        let orig = v6_packet(1500, ip_protocol::TCP);
        let b = build(IcmpError::TimeExceeded, "fd00:1::1", &orig, 1200);
        assert_eq!(b.len(), 1200);
        let icmp = check_v6(&b, "fd00:1::1");
        assert_eq!(&icmp[8..], &orig[..1200 - 48]);
    }

    #[test]
    fn the_family_of_the_source_must_match() {
        let orig = v4_packet(60, ip_protocol::UDP, false);
        let mut buf = vec![0u8; reply_len(&orig, usize::MAX)];
        let src = "fd00::1".parse().unwrap();
        assert_eq!(
            write(&mut buf, IcmpError::TimeExceeded, src, &orig, 0),
            None
        );
    }

    #[test]
    fn never_about_an_icmp_error_but_about_queries() {
        let mut orig = v4_packet(60, ip_protocol::ICMP, false);
        for t in [3u8, 4, 5, 11, 12] {
            orig[20] = t;
            assert!(!may_answer(&orig, IcmpError::TimeExceeded), "type {t}");
        }
        for t in [0u8, 8, 13] {
            orig[20] = t;
            assert!(may_answer(&orig, IcmpError::TimeExceeded), "type {t}");
        }
        let mut orig = v6_packet(60, ip_protocol::ICMPV6);
        for t in [1u8, 2, 3, 4, 127] {
            orig[40] = t;
            assert!(!may_answer(&orig, IcmpError::TooBig(1280)), "type {t}");
        }
        for t in [128u8, 129] {
            orig[40] = t;
            assert!(may_answer(&orig, IcmpError::TooBig(1280)), "type {t}");
        }
        // Behind a hop-by-hop and a first-fragment header: still found.
        let mut orig = v6_packet(80, 0);
        orig[40] = ip_protocol::IPV6_FRAGMENT; // hop-by-hop: next is fragment
        orig[41] = 0; // 8 bytes
        orig[48] = ip_protocol::ICMPV6; // fragment header, offset 0
        orig[50..52].copy_from_slice(&[0, 1]); // M flag
        orig[56] = 1; // destination unreachable
        assert!(!may_answer(&orig, IcmpError::TimeExceeded));
        orig[56] = 128;
        assert!(may_answer(&orig, IcmpError::TimeExceeded));
        // A cut extension header is not answered.
        orig[41] = 200;
        assert!(!may_answer(&orig, IcmpError::TimeExceeded));
    }

    #[test]
    fn never_to_or_from_broadcast_or_multicast_nor_about_later_fragments() {
        let base = v4_packet(60, ip_protocol::UDP, false);
        assert!(may_answer(&base, IcmpError::Unreachable));
        for (at, addr) in [
            (12, [0, 0, 0, 0]),
            (12, [127, 0, 0, 1]),
            (12, [224, 0, 0, 5]),
            (12, [255, 255, 255, 255]),
            (12, [240, 0, 0, 1]),
            (16, [255, 255, 255, 255]),
            (16, [239, 1, 2, 3]),
        ] {
            let mut p = base.clone();
            p[at..at + 4].copy_from_slice(&addr);
            assert!(!may_answer(&p, IcmpError::Unreachable), "{addr:?} at {at}");
        }
        let mut p = base.clone();
        p[6..8].copy_from_slice(&1u16.to_be_bytes()); // offset 8 bytes
        assert!(!may_answer(&p, IcmpError::TimeExceeded), "later fragment");
        p[6..8].copy_from_slice(&0x2000u16.to_be_bytes()); // first fragment
        assert!(may_answer(&p, IcmpError::TimeExceeded), "first fragment");

        let base = v6_packet(60, ip_protocol::UDP);
        assert!(may_answer(&base, IcmpError::Unreachable));
        let mut p = base.clone();
        p[8..24].fill(0);
        assert!(
            !may_answer(&p, IcmpError::Unreachable),
            "unspecified source"
        );
        let mut p = base.clone();
        p[8] = 0xff;
        assert!(!may_answer(&p, IcmpError::TooBig(1280)), "multicast source");
        let mut p = base.clone();
        p[24] = 0xff;
        assert!(
            !may_answer(&p, IcmpError::TimeExceeded),
            "multicast destination"
        );
        assert!(
            may_answer(&p, IcmpError::TooBig(1280)),
            "Packet Too Big is the exception (RFC 4443 2.4 (e.3))"
        );
        assert!(!may_answer(&[0x45, 0, 0], IcmpError::TimeExceeded));
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::from_secs(10);
        let mut b = IcmpBucket::new(IcmpRate::KERNEL, t0);
        for i in 0..IcmpRate::KERNEL.burst {
            assert!(b.take(t0), "token {i} of the burst");
        }
        assert!(!b.take(t0), "empty");
        // 1000/s: one token a millisecond, fractions kept.
        let half = t0 + Duration::from_micros(500);
        assert!(!b.take(half));
        assert!(b.take(t0 + Duration::from_millis(1)));
        assert!(!b.take(t0 + Duration::from_micros(1500)));
        let later = t0 + Duration::from_millis(11);
        for i in 0..10 {
            assert!(b.take(later), "token {i} of 10 earned");
        }
        assert!(!b.take(later));
        // A long pause refills the burst only.
        let much_later = later + Duration::from_secs(60);
        let n = (0..1000).take_while(|_| b.take(much_later)).count();
        assert_eq!(n, IcmpRate::KERNEL.burst as usize);
    }

    #[test]
    fn other_rates_and_zero() {
        let t0 = Instant::from_secs(1);
        let mut b = IcmpBucket::new(
            IcmpRate {
                per_sec: 10,
                burst: 2,
            },
            t0,
        );
        assert!(b.take(t0) && b.take(t0) && !b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(99)));
        assert!(
            b.take(t0 + Duration::from_millis(100)),
            "one token in 100 ms"
        );
        let mut off = IcmpBucket::new(
            IcmpRate {
                per_sec: 0,
                burst: 50,
            },
            t0,
        );
        assert!(
            !off.take(t0) && !off.take(t0 + Duration::from_secs(9)),
            "0: never"
        );
    }
}
