//! Member selection: stable per flow, spread, and only a dead member's
//! flows move (and come back).

use std::collections::HashMap;
use std::sync::Arc;

use protocol::time::Instant;

use super::*;

/// An IPv4 UDP packet (header and ports only) from 10.0.0.2:`sport` to
/// `dst`:`dport`.
fn udp4(dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 2]);
    p[16..20].copy_from_slice(&dst);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p
}

/// An IPv6 packet with next header `next`, flow label `label`, and the
/// ports `sport`/`dport` where a UDP header would be.
fn ip6(next: u8, label: u32, sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[..4].copy_from_slice(&(0x6000_0000 | (label & 0x000f_ffff)).to_be_bytes());
    p[6] = next;
    p[7] = 64;
    p[8] = 0xfd;
    p[23] = 2;
    p[24] = 0xfd;
    p[39] = 1;
    p[40..42].copy_from_slice(&sport.to_be_bytes());
    p[42..44].copy_from_slice(&dport.to_be_bytes());
    p
}

/// A group of `n` members with distinct keys, all live at `now`.
fn group(n: usize, now: Instant) -> GroupRoute {
    let members = (0..n)
        .map(|i| {
            let shared = Arc::new(PeerShared::default());
            shared.liveness.publish_session(Some(now));
            GroupMember {
                id: i as PeerId,
                seed: member_seed(&[i as u8 + 1; 32]),
                shared,
                counts: Arc::new(MemberCounts::new(2)),
            }
        })
        .collect();
    GroupRoute { members }
}

/// The member each of `flows` goes to.
fn choices(g: &GroupRoute, flows: &[Vec<u8>], now: Instant) -> Vec<PeerId> {
    flows
        .iter()
        .map(|f| g.pick(f, now).expect("a member").id)
        .collect()
}

fn flows(n: u16) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| udp4([10, 77, 0, 1], 40_000 + i, 9))
        .collect()
}

#[test]
fn targets_tag_groups() {
    assert_eq!(as_group(group_target(0)), Some(0));
    assert_eq!(as_group(group_target(7)), Some(7));
    assert_eq!(as_group(0), None);
    assert_eq!(as_group(GROUP_TAG - 1), None);
}

#[test]
fn the_flow_hash_reads_the_five_tuple() {
    let a = udp4([10, 77, 0, 1], 1000, 9);
    assert_eq!(flow_hash(&a), flow_hash(&a.clone()), "a pure function");
    assert_ne!(flow_hash(&a), flow_hash(&udp4([10, 77, 0, 1], 1001, 9)));
    assert_ne!(flow_hash(&a), flow_hash(&udp4([10, 77, 0, 1], 1000, 10)));
    assert_ne!(flow_hash(&a), flow_hash(&udp4([10, 77, 0, 2], 1000, 9)));
    // TTL, length, checksum: not part of the flow.
    let mut b = a.clone();
    b[8] = 3;
    b[2] = 9;
    assert_eq!(flow_hash(&a), flow_hash(&b));
    // A fragment (MF set, or an offset): addresses and protocol only, so
    // every piece of a datagram goes the same way whatever its ports.
    let mut f1 = udp4([10, 77, 0, 1], 1000, 9);
    f1[6] = 0x20;
    let mut f2 = udp4([10, 77, 0, 1], 2000, 7);
    f2[7] = 0x10;
    assert_eq!(flow_hash(&f1), flow_hash(&f2));
    // ICMP: no ports read.
    let mut icmp1 = udp4([10, 77, 0, 1], 1, 2);
    icmp1[9] = 1;
    let mut icmp2 = udp4([10, 77, 0, 1], 3, 4);
    icmp2[9] = 1;
    assert_eq!(flow_hash(&icmp1), flow_hash(&icmp2));
    // IPv6: ports for UDP/TCP (the flow label ignored), the flow label
    // where no ports can be read.
    assert_ne!(
        flow_hash(&ip6(17, 1, 1000, 9)),
        flow_hash(&ip6(17, 1, 1001, 9))
    );
    assert_eq!(
        flow_hash(&ip6(17, 1, 1000, 9)),
        flow_hash(&ip6(17, 2, 1000, 9))
    );
    assert_eq!(
        flow_hash(&ip6(0, 5, 1000, 9)),
        flow_hash(&ip6(0, 5, 2000, 8))
    );
    assert_ne!(
        flow_hash(&ip6(0, 5, 1000, 9)),
        flow_hash(&ip6(0, 6, 1000, 9))
    );
    // Short or odd input hashes without panicking.
    for n in 0..48 {
        flow_hash(&a[..n.min(a.len())]);
        flow_hash(&ip6(17, 1, 1, 1)[..n]);
    }
    flow_hash(&[0xf0; 60]);
}

#[test]
fn a_flow_sticks_to_one_member() {
    let now = Instant::from_secs(1);
    let g = group(4, now);
    let f = flows(8);
    let first = choices(&g, &f, now);
    for _ in 0..10 {
        assert_eq!(choices(&g, &f, now), first);
    }
    // Another snapshot of the same members (a route change, another
    // worker): the same choices.
    assert_eq!(choices(&group(4, now), &f, now), first);
}

#[test]
fn eight_flows_spread_over_four_members() {
    let now = Instant::from_secs(1);
    let g = group(4, now);
    let picked = choices(&g, &flows(8), now);
    let mut used: Vec<PeerId> = picked.clone();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() >= 3, "8 flows on {used:?}: {picked:?}");
    // And many flows evenly: each member within 20 % of its share.
    let mut per: HashMap<PeerId, usize> = HashMap::new();
    for id in choices(&g, &flows(8000), now) {
        *per.entry(id).or_default() += 1;
    }
    assert_eq!(per.len(), 4);
    for (id, n) in per {
        assert!((1600..=2400).contains(&n), "member {id}: {n} of 8000");
    }
}

#[test]
fn only_the_dead_members_flows_move_and_they_come_back() {
    let now = Instant::from_secs(1);
    let g = group(4, now);
    let f = flows(400);
    let before = choices(&g, &f, now);
    for dead in 0..4u32 {
        g.members[dead as usize]
            .shared
            .liveness
            .set_unanswered(true);
        let during = choices(&g, &f, now);
        let mut moved_to: HashMap<PeerId, usize> = HashMap::new();
        for (b, d) in before.iter().zip(&during) {
            if *b == dead {
                assert_ne!(*d, dead, "a flow stayed on the dead member");
                *moved_to.entry(*d).or_default() += 1;
            } else {
                assert_eq!(b, d, "a flow of a live member moved");
            }
        }
        // The dead member's flows spread over the others.
        assert_eq!(
            moved_to.len(),
            3,
            "member {dead}'s flows went to {moved_to:?}"
        );
        g.members[dead as usize]
            .shared
            .liveness
            .set_unanswered(false);
        assert_eq!(choices(&g, &f, now), before, "back when {dead} returns");
    }
}

#[test]
fn an_expired_session_counts_as_dead() {
    let t0 = Instant::from_secs(1);
    let g = group(4, t0);
    let f = flows(64);
    let before = choices(&g, &f, t0);
    // Member 2 rekeyed later; the others' keypairs expire first.
    let later = t0 + protocol::constants::REJECT_AFTER_TIME;
    g.members[2]
        .shared
        .liveness
        .publish_session(Some(t0 + std::time::Duration::from_secs(60)));
    assert!(choices(&g, &f, later).iter().all(|&id| id == 2));
    assert_eq!(choices(&g, &f, t0), before);
}

#[test]
fn with_no_member_live_the_choice_is_among_all() {
    let now = Instant::from_secs(1);
    let g = group(4, now);
    let f = flows(64);
    let live = choices(&g, &f, now);
    for m in g.members.iter() {
        m.shared.liveness.publish_session(None);
    }
    // The same spread as when all were live: each flow asks its own
    // member for a handshake.
    assert_eq!(choices(&g, &f, now), live);
    assert!(GroupRoute::default().pick(&f[0], now).is_none());
    assert!(g.has_member(3) && !g.has_member(4));
}

#[test]
fn member_counts_add_per_worker() {
    let c = MemberCounts::new(3);
    c.add(0);
    c.add(2);
    c.add(2);
    c.add(9); // no such worker: ignored
    assert_eq!(c.total(), 3);
}
