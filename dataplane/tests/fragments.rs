//! IP fragments through real workers (`common::two`, a cache-0 pool, so
//! `in_use()` counts are exact): outer IPv4 and IPv6 fragments of the
//! peer's data messages are reassembled and decapsulated; incomplete ones
//! expire without leaking an mbuf; a full table and invalid sets are
//! refused and counted; inner IPv4 packets without DF above the tunnel MTU
//! leave as sealed fragments. The fragmenter and reassembler here are the
//! test's own (RFC 791 / RFC 8200 by hand), independent of DPDK's.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant as StdInstant};

use common::two::*;
use common::*;
use dataplane::command::PortSide::{Plaintext, Tunnel};
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::fragments::{REASSEMBLY_ENTRIES, REASSEMBLY_TIMEOUT};
use dataplane::outer::{self, Outer};
use dataplane::wire::{checksum, ethernet, ipv4};
use protocol::time::Instant;

const ETH: usize = 14;

/// Splits the IPv4 packet of an Ethernet frame (20-byte header) into
/// fragments carrying `chunk` bytes of payload each (a multiple of 8).
fn fragment_v4(frame: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let payload = frame.len() - ETH - 20;
    (0..payload)
        .step_by(chunk)
        .map(|from| {
            let to = (from + chunk).min(payload);
            v4_piece(frame, from, to, to < payload)
        })
        .collect()
}

/// The IPv4 fragment of an Ethernet frame's packet (20-byte header) that
/// carries payload bytes `from..to` (`from` a multiple of 8), with MF as
/// `more` says.
fn v4_piece(frame: &[u8], from: usize, to: usize, more: bool) -> Vec<u8> {
    assert_eq!(from % 8, 0);
    let (head, ip) = frame.split_at(ETH);
    let (hdr, payload) = ip.split_at(20);
    let mut f = [head, hdr, &payload[from..to]].concat();
    let h = &mut f[ETH..ETH + 20];
    h[2..4].copy_from_slice(&((20 + to - from) as u16).to_be_bytes());
    let flags = ((from / 8) as u16) | if more { 0x2000 } else { 0 };
    h[6..8].copy_from_slice(&flags.to_be_bytes());
    h[10..12].fill(0);
    let c = checksum::checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f
}

/// Splits the IPv6 packet of an Ethernet frame (no extension headers) into
/// fragments with a fragment header (identification `id`).
fn fragment_v6(frame: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let (head, ip) = frame.split_at(ETH);
    let (hdr, payload) = ip.split_at(40);
    let next = hdr[6];
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let more = (i + 1) * chunk < payload.len();
            let mut fh = [0u8; 8];
            fh[0] = next;
            let off = ((i * chunk) as u16) | u16::from(more);
            fh[2..4].copy_from_slice(&off.to_be_bytes());
            fh[4..8].copy_from_slice(&id.to_be_bytes());
            let mut f = [head, hdr, &fh, part].concat();
            f[ETH + 4..ETH + 6].copy_from_slice(&((8 + part.len()) as u16).to_be_bytes());
            f[ETH + 6] = 44;
            f
        })
        .collect()
}

/// A data message from the peer's IPv6 endpoint to our IPv6 address.
fn frame_v6(msg: &[u8]) -> Vec<u8> {
    let o = Outer {
        src_mac: PEER_MAC,
        dst_mac: WGDP_TUN_MAC,
        src: SocketAddr::new(IpAddr::V6(PEER_EP6), PEER_PORT),
        dst: SocketAddr::new(IpAddr::V6(WGDP_TUN6), LISTEN),
        ecn: 0,
    };
    let h = outer::header_len(&o.dst);
    let mut f = vec![0u8; h + msg.len()];
    f[h..].copy_from_slice(msg);
    outer::write(&mut f, &o, false).expect("outer");
    f
}

/// An inner packet from the peer's site of `len` bytes, numbered `seq`.
fn big_inner(seq: u8, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len - 28).map(|i| (i as u8) ^ seq).collect();
    ipv4_udp(PEER_INNER, LAN_HOST, 64, &payload)
}

/// Checks that `out` is `inner` decapsulated: TTL one less, valid
/// checksum, the rest unchanged.
fn assert_decapsulated(out: &[u8], inner: &[u8]) {
    assert_eq!(&out[6..12], &WGDP_PLAIN_MAC);
    let ip = ipv4::Packet::new_checked(&out[ETH..]).expect("inner IPv4");
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(out.len(), ETH + inner.len());
    assert_eq!(&out[ETH + 20..], &inner[20..], "payload intact");
}

/// Waits until the pool's `in_use()` is `want` (mbufs move through rings
/// asynchronously); returns the last reading.
fn in_use(rig: &Rig<'_>, want: u32) -> u32 {
    let deadline = StdInstant::now() + Duration::from_secs(5);
    loop {
        let n = rig.pool.in_use();
        if n == want || StdInstant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn drops(r: DropReason) -> impl Fn(&WorkerCounters) -> u64 {
    move |c| c.drops(r)
}

fn events(e: Event) -> impl Fn(&WorkerCounters) -> u64 {
    move |c| c.events(e)
}

#[test]
fn outer_ipv4_and_ipv6_fragments_are_reassembled_in_any_order() {
    two_workers(1, |rig, kp| {
        let before = rig.pool.in_use();
        // IPv4: three fragments, last first.
        let inner = big_inner(1, 1400);
        let mut frags = fragment_v4(&sealed_frame(kp, &inner), 600);
        assert_eq!(frags.len(), 3);
        frags.reverse();
        for f in &frags {
            rig.send(Tunnel, 0, f);
        }
        let out = rig.collect(Plaintext, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1, "one datagram out of three fragments");
        assert_decapsulated(&out[0].1, &inner);

        // IPv6: four fragments, the middle ones swapped.
        let inner6 = big_inner(2, 1300);
        let mut frags = fragment_v6(&frame_v6(&sealed_message(kp, &inner6)), 400, 0xfeed);
        assert_eq!(frags.len(), 4);
        frags.swap(1, 2);
        for f in &frags {
            rig.send(Tunnel, 0, f);
        }
        let out = rig.collect(Plaintext, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1);
        assert_decapsulated(&out[0].1, &inner6);

        rig.dump();
        assert_eq!(rig.total(events(Event::FragmentsIn)), 7);
        assert_eq!(rig.total(events(Event::Reassembled)), 2);
        assert_eq!(rig.total(events(Event::Decapsulated)), 2);
        assert_eq!(rig.total(|c| c.total_drops()), 0);
        assert_eq!(in_use(rig, before), before, "nothing held");
    });
}

#[test]
fn a_full_table_refuses_fragments_and_held_ones_expire_without_a_leak() {
    two_workers(1, |rig, kp| {
        let before = rig.pool.in_use();
        // First fragments of datagrams that never complete, each with
        // its own identification.
        const SENT: u32 = 200;
        let inner = big_inner(3, 1400);
        let whole = sealed_frame(kp, &inner);
        for id in 0..SENT {
            let mut first = fragment_v4(&whole, 600).swap_remove(0);
            let h = &mut first[ETH..ETH + 20];
            h[4..6].copy_from_slice(&(id as u16).to_be_bytes());
            h[10..12].fill(0);
            let c = checksum::checksum(h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            rig.send(Tunnel, 0, &first);
        }
        assert_eq!(
            rig.wait_total(events(Event::FragmentsIn), SENT.into()),
            SENT.into()
        );
        let full = rig.total(drops(DropReason::FragmentTableFull));
        let held = u64::from(rig.pool.in_use() - before);
        rig.dump();
        // Every fragment is either held or refused; the table holds at
        // most its entries (fewer when a bucket fills first).
        assert_eq!(held + full, u64::from(SENT));
        assert!(held <= u64::from(REASSEMBLY_ENTRIES), "{held} held");
        assert!(
            full >= u64::from(SENT - REASSEMBLY_ENTRIES),
            "{full} refused"
        );
        assert_eq!(rig.total(drops(DropReason::FragmentExpired)), 0);

        // After the timeout every held fragment is freed and counted.
        std::thread::sleep(REASSEMBLY_TIMEOUT);
        assert_eq!(
            rig.wait_total(drops(DropReason::FragmentExpired), held),
            held
        );
        assert_eq!(in_use(rig, before), before, "every expired mbuf freed");
        assert_eq!(rig.total(events(Event::Reassembled)), 0);
        assert_eq!(rig.total(events(Event::Decapsulated)), 0);

        // And the table takes fragments again: a datagram completes.
        for f in fragment_v4(&sealed_frame(kp, &inner), 600) {
            rig.send(Tunnel, 0, &f);
        }
        let out = rig.collect(Plaintext, 1, Duration::from_secs(5));
        assert_eq!(out.len(), 1);
        assert_decapsulated(&out[0].1, &inner);
        assert_eq!(rig.total(drops(DropReason::FragmentExpired)), held);
        assert_eq!(rig.total(drops(DropReason::FragmentTableFull)), full);
    });
}

#[test]
fn invalid_fragments_are_dropped_with_their_datagram_and_counted() {
    two_workers(1, |rig, kp| {
        let before = rig.pool.in_use();
        let inner = big_inner(4, 1400);
        let frags = fragment_v4(&sealed_frame(kp, &inner), 600);
        // A duplicate first fragment: both copies go.
        rig.send(Tunnel, 0, &frags[0]);
        rig.send(Tunnel, 0, &frags[0]);
        assert_eq!(rig.wait_total(drops(DropReason::Fragment), 2), 2);
        // A fragment with no payload (MF set, header only).
        let mut empty = frags[0][..ETH + 20].to_vec();
        empty[ETH + 2..ETH + 4].copy_from_slice(&20u16.to_be_bytes());
        rig.send(Tunnel, 0, &empty);
        assert_eq!(rig.wait_total(drops(DropReason::Fragment), 3), 3);
        assert_eq!(in_use(rig, before), before, "all three freed");
        assert_eq!(rig.total(events(Event::FragmentsIn)), 3);
        assert_eq!(rig.total(events(Event::Reassembled)), 0);
        // The rest of that datagram, now without its first fragment, is
        // held (not delivered) until it expires.
        rig.send(Tunnel, 0, &frags[1]);
        rig.send(Tunnel, 0, &frags[2]);
        assert_eq!(rig.wait_total(events(Event::FragmentsIn), 5), 5);
        assert!(rig
            .collect(Plaintext, 0, Duration::from_millis(200))
            .is_empty());
        assert_eq!(in_use(rig, before + 2), before + 2);
        rig.dump();
        assert_eq!(rig.total(|c| c.total_drops()), 3);
    });
}

/// A set whose lengths add up to the datagram's but that leaves a hole
/// (an overlap elsewhere makes up for it): DPDK chains part of it before
/// it finds the hole and gives the set up partly chained, the last
/// fragment inside another's chain. Every mbuf of the set is counted as a
/// `fragment` drop, none as expired, and none is left held or leaked.
#[test]
fn a_set_that_adds_up_around_a_hole_is_dropped_whole_and_counted_per_mbuf() {
    two_workers(1, |rig, kp| {
        let before = rig.pool.in_use();
        let frame = sealed_frame(kp, &big_inner(5, 1400));
        let total = frame.len() - ETH - 20;
        // 0..600, 8..16 (overlapping the first), 608..1200 (a hole at
        // 600..608), then the last, 1200..end, which completes the sum.
        rig.send(Tunnel, 0, &v4_piece(&frame, 0, 600, true));
        rig.send(Tunnel, 0, &v4_piece(&frame, 8, 16, true));
        rig.send(Tunnel, 0, &v4_piece(&frame, 608, 1200, true));
        assert_eq!(rig.wait_total(events(Event::FragmentsIn), 3), 3);
        assert_eq!(in_use(rig, before + 3), before + 3, "three held");
        rig.send(Tunnel, 0, &v4_piece(&frame, 1200, total, false));
        assert_eq!(rig.wait_total(drops(DropReason::Fragment), 4), 4);
        assert_eq!(in_use(rig, before), before, "all four freed");
        assert!(rig
            .collect(Plaintext, 0, Duration::from_millis(200))
            .is_empty());
        assert_eq!(rig.total(events(Event::FragmentsIn)), 4);
        assert_eq!(rig.total(events(Event::Reassembled)), 0);
        assert_eq!(rig.total(drops(DropReason::FragmentExpired)), 0);
        assert_eq!(rig.total(|c| c.total_drops()), 4);
    });
}

/// The inner packet of a sealed tunnel frame the peer opens.
fn opened(kp: &mut protocol::transport::Keypair, frame: &[u8]) -> Vec<u8> {
    let mut msg = frame[ETH + 20 + 8..].to_vec();
    let plain = kp
        .open_message(Instant::ZERO, &mut msg)
        .expect("the peer opens it");
    let len = ipv4::Packet::new_checked(&plain[..])
        .expect("inner IPv4")
        .total_len();
    plain[..len].to_vec()
}

#[test]
fn inner_ipv4_without_df_above_the_mtu_leaves_in_sealed_fragments() {
    two_workers(1, |rig, kp| {
        // The peer confirms the session (wgdp responded).
        let first = ipv4_udp(PEER_INNER, LAN_HOST, 64, b"hello");
        rig.send(Tunnel, 0, &sealed_frame(kp, &first));
        assert_eq!(rig.collect(Plaintext, 1, Duration::from_secs(5)).len(), 1);
        // 1500 bytes without DF (what `ping -M dont -s 1472` sends), to a
        // tunnel MTU of 1420.
        let payload: Vec<u8> = (0..1472u32).map(|i| (i * 7) as u8).collect();
        let lan = ipv4_udp(LAN_HOST, PEER_INNER, 64, &payload);
        assert_eq!(lan.len(), 1500);
        let frame = ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, &lan);
        rig.send(Plaintext, 0, &frame);
        let out = rig.collect(Tunnel, 2, Duration::from_secs(5));
        rig.dump();
        assert_eq!(out.len(), 2, "two sealed fragments");
        let mut idents = Vec::new();
        let mut data = vec![0u8; lan.len() - 20];
        let mut covered = 0;
        let mut last_seen = false;
        for (_, f) in &out {
            let outer_ip = ipv4::Packet::new_checked(&f[ETH..]).expect("outer");
            assert!(!outer_ip.dont_frag(), "outer DF clear, as the kernel sends");
            assert!(outer_ip.verify_checksum());
            idents.push(outer_ip.ident());
            let piece = opened(kp, f);
            assert!(piece.len() <= 1420, "fragment of {} bytes", piece.len());
            let ip = ipv4::Packet::new_checked(&piece[..]).expect("fragment");
            assert!(ip.verify_checksum(), "fragment checksum filled in");
            assert_eq!(ip.ttl(), 63);
            assert_eq!(
                (ip.src_addr(), ip.dst_addr()),
                (LAN_HOST.octets(), PEER_INNER.octets())
            );
            assert_eq!(ip.ident(), 0, "the original's identification");
            let off = ip.frag_offset();
            let body = ip.payload();
            if ip.more_frags() {
                assert_eq!(body.len() % 8, 0);
            } else {
                last_seen = true;
                assert_eq!(
                    off + body.len(),
                    lan.len() - 20,
                    "ends where the packet did"
                );
            }
            data[off..off + body.len()].copy_from_slice(body);
            covered += body.len();
        }
        assert!(last_seen);
        assert_eq!(covered, lan.len() - 20, "no overlap, no hole");
        assert_eq!(&data[..], &lan[20..], "reassembles to the original");
        assert_ne!(idents[0], idents[1], "outer identifications differ");
        assert_eq!(rig.total(events(Event::InnerFragmented)), 1);
        assert_eq!(rig.total(events(Event::InnerFragments)), 2);
        assert_eq!(rig.total(events(Event::Encapsulated)), 2);
        assert_eq!(rig.total(|c| c.total_drops()), 0);
    });
}
