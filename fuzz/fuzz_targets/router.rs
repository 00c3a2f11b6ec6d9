//! What wgdp reads of packets it routes: the ICMP error rules and
//! builders (`dataplane::icmp`) and MSS clamping (`dataplane::mss`), fed an
//! IP packet after one selector byte (bit 0: a 1200-byte limit on the
//! error; the rest: the MSS ceilings). Checked: nothing panics; a built
//! error is exactly its announced length, with a valid checksum, and
//! quotes the packet's start; clamping changes at most two bytes of the
//! TCP header besides its checksum, and a TCP checksum that held before
//! still holds after.
#![no_main]

use std::net::IpAddr;

use dataplane::icmp::{may_answer, reply_len, write, IcmpError};
use dataplane::mss::clamp;
use dataplane::wire::{checksum, ipv4, ipv6};
use dataplane::worker::MssClamp;
use libfuzzer_sys::fuzz_target;

/// Whether the TCP (or any upper-layer) checksum of an IPv4 packet
/// without options, or an IPv6 packet without extension headers, holds.
fn l4_checksum_ok(p: &[u8]) -> Option<bool> {
    match p.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(p).ok()?;
            (ip.header_len() == 20 && !ip.is_fragment()).then_some(())?;
            let l4 = ip.payload();
            let acc = checksum::pseudo_header_v4(
                ip.src_addr(),
                ip.dst_addr(),
                ip.protocol(),
                u16::try_from(l4.len()).ok()?,
            );
            Some(checksum::fold(checksum::add(acc, l4)) == 0xffff)
        }
        6 => {
            let ip = ipv6::Packet::new_checked(p).ok()?;
            let l4 = ip.payload();
            let acc = checksum::pseudo_header_v6(
                &ip.src_addr(),
                &ip.dst_addr(),
                ip.next_header(),
                u32::try_from(l4.len()).ok()?,
            );
            Some(checksum::fold(checksum::add(acc, l4)) == 0xffff)
        }
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, orig)) = data.split_first() else {
        return;
    };
    for err in [
        IcmpError::TooBig(1420),
        IcmpError::TimeExceeded,
        IcmpError::Unreachable,
    ] {
        // The rules read any bytes without panicking; they are not a
        // condition of the builder, which the worker calls after them.
        let _ = may_answer(orig, err);
        for src in ["10.0.0.1", "fd00::1"] {
            let src: IpAddr = src.parse().expect("address");
            let max = if sel & 1 == 0 { usize::MAX } else { 1200 };
            let len = reply_len(orig, max);
            let mut buf = vec![0u8; len];
            let Some(()) = write(&mut buf, err, src, orig, 1) else {
                continue;
            };
            let (header, cap) = if src.is_ipv4() { (20, 576) } else { (40, 1280) };
            assert!(len <= cap.min(max) && len >= header + 8);
            let icmp = &buf[header..];
            if src.is_ipv4() {
                assert!(checksum::verify(&buf[..20]) && checksum::verify(icmp));
            } else {
                assert_eq!(l4_checksum_ok(&buf), Some(true));
            }
            let quoted = &icmp[8..];
            assert_eq!(quoted, &orig[..quoted.len()]);
        }
    }
    let ceiling = MssClamp {
        v4: 536 + u16::from(sel >> 1) * 4,
        v6: 516 + u16::from(sel >> 1) * 4,
    };
    let before = l4_checksum_ok(orig);
    let mut p = orig.to_vec();
    let changed = clamp(&mut p, ceiling);
    let differing = p.iter().zip(orig).filter(|(a, b)| a != b).count();
    assert!(changed || differing == 0);
    assert!(
        differing <= 4,
        "two MSS bytes and two checksum bytes at most"
    );
    if before == Some(true) {
        assert_eq!(l4_checksum_ok(&p), Some(true), "the checksum still holds");
    }
});
