//! Hostile input at the tunnel port of a running wgdp (namespace testbed,
//! `tests/e2e/topology.sh`): captured data packets of a real peer replayed,
//! and crafted packets of every malformed kind, each of which must be
//! dropped and counted under its own reason, by exactly the number sent,
//! while real traffic through the wireguard-go peers continues and wgdp
//! exits cleanly with every mbuf back.
//!
//! The crafted data messages come from a peer of the test's own
//! (`netns::peer::TestPeer`, configured in wgdp as a third peer) so that
//! they carry valid tags where the point is what is inside; raw frames go
//! out through an AF_PACKET socket on the kernel end of wgdp's tunnel port.
//!
//! Run it alone, as root: `cargo nextest run -p wgdp --test hostile`.

mod netns;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use netns::peer::{identity, TestPeer};
use netns::wire::RawPort;
use netns::wire::{if_mac, ipv4_packet, parse_mac, udp4_frame, udp_socket, wireguard_payload};
use netns::*;

/// The test's own peer: its inner address and UDP port.
const PEER3_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 9);
const PEER3_PORT: u16 = 51899;

/// An ICMP echo request payload (type 8) with a valid checksum.
fn icmp_echo(seq: u16) -> Vec<u8> {
    let mut p = vec![8, 0, 0, 0, 0x12, 0x34];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"wgdp hostile test");
    let c = netns::wire::checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// A message of WireGuard type `kind` and `len` bytes, otherwise zeros.
fn message(kind: u8, len: usize) -> Vec<u8> {
    let mut m = vec![0u8; len];
    if let Some(b) = m.first_mut() {
        *b = kind;
    }
    m
}

/// Waits until every counter in `want` reached its value in a report
/// printed after line `mark`, then one more report, and fails unless each
/// equals its value exactly.
fn expect_exact(wgdp: &Wgdp, mark: usize, want: &BTreeMap<&str, u64>) {
    for (name, v) in want {
        let got = wgdp.wait_counter(mark, name, *v, secs(15));
        wgdp.check(got.is_some(), || {
            format!(
                "counter {name}: expected {v} within 15 s, last {}",
                wgdp.counter_now(name)
            )
        });
    }
    let settle = wgdp.stdout.len();
    let seen = wgdp
        .stdout
        .wait_for(settle, secs(5), |l| l.starts_with("counter drop."));
    wgdp.check(seen.is_some(), || {
        "no report after the counters settled".into()
    });
    thread::sleep(Duration::from_millis(300));
    let wrong: Vec<String> = want
        .iter()
        .filter(|(name, v)| wgdp.counter_now(name) != **v)
        .map(|(name, v)| format!("{name}: want {v}, got {}", wgdp.counter_now(name)))
        .collect();
    wgdp.check(wrong.is_empty(), || {
        format!(
            "counters moved by other than the number sent:\n{}",
            wrong.join("\n")
        )
    });
}

#[test]
fn replayed_and_malformed_packets_are_dropped_with_their_own_reason() {
    let (id3, pub3) = identity();
    let tail = format!(
        "\n# peer 3: the test's own (tests/netns/peer.rs)\n[[peers]]\npublic_key = \"{pub3}\"\nallowed_ips = [\"{PEER3_IP}/32\"]\n"
    );
    let (topo, mut wgdp, _config, _pt_mac) = bring_up('h', "", &tail);
    let lan = topo.var("NS_LAN").to_string();
    let wan = topo.var("NS_WAN").to_string();
    let wan2 = topo.var("NS_WAN2").to_string();
    let tap_wan = topo.var("TAP_WAN").to_string();
    let lan_ip: Ipv4Addr = topo.var("LAN_IP").parse().expect("LAN_IP");
    let peer1_ip = topo.var("PEER1_IP").to_string();
    let wan_ip: Ipv4Addr = topo.var("WAN_IP").parse().expect("WAN_IP");
    let wgdp_ip: Ipv4Addr = topo.var("WGDP_WAN_IP").parse().expect("WGDP_WAN_IP");
    let port: u16 = topo.var("WGDP_PORT").parse().expect("WGDP_PORT");
    let wgdp_ep = SocketAddrV4::new(wgdp_ip, port);
    let tun_mac = parse_mac(
        &port_mac(&wgdp.stdout.snapshot(), "tunnel").unwrap_or_else(|| wgdp.fail("no tunnel MAC")),
    );
    let wan_mac = if_mac(&wan, &tap_wan);

    // 1. A real session: lan -> peer 1.
    let p = ping(&lan, &peer1_ip, 10);
    wgdp.check(p.ok(), || format!("ping {lan} -> {peer1_ip}:\n{p}"));

    // 2. Capture peer 1's data packets on the wire (peer 1 -> wgdp) while
    //    it pings the LAN (three echoes), keep the three.
    let raw = RawPort::open(&wan, &tap_wan);
    let pinger = {
        let (wan, lan_ip) = (wan.clone(), lan_ip.to_string());
        thread::spawn(move || ping(&wan, &lan_ip, 10))
    };
    let mut captured: Vec<Vec<u8>> = Vec::new();
    let deadline = Instant::now() + secs(10);
    while captured.len() < 3 && Instant::now() < deadline {
        let Some((frame, outgoing)) = raw.recv(Duration::from_millis(200)) else {
            continue;
        };
        let data = wireguard_payload(&frame, port).is_some_and(|m| m.len() > 32 && m[0] == 4);
        if outgoing && data {
            captured.push(frame);
        }
    }
    let p = pinger.join().expect("ping thread");
    wgdp.check(p.ok(), || format!("ping {wan} -> {lan_ip}:\n{p}"));
    wgdp.check(captured.len() == 3, || {
        format!("captured {} of 3 data packets of peer 1", captured.len())
    });

    // 3. The test's own peer handshakes.
    let socket = udp_socket(&wan, SocketAddrV4::new(wan_ip, PEER3_PORT));
    let mut me = TestPeer::handshake(&id3, topo.var("WGDP_PUB"), socket, wgdp_ep);
    let echo = ipv4_packet(PEER3_IP, lan_ip, 1, &icmp_echo(1));
    let valid = me.seal(&echo);
    me.send(&valid);
    let decap = wgdp.wait_counter(0, "event.decapsulated", 1, secs(5));
    wgdp.check(decap.is_some(), || {
        "the test peer's first packet was not decapsulated".into()
    });

    // 4. Everything hostile, each kind a different number of times.
    let mark = wgdp.stdout.len();
    thread::sleep(Duration::from_millis(1200)); // one full report before
    let names = [
        "drop.replay",
        "drop.authentication",
        "drop.unknown_index",
        "drop.inner_malformed",
        "drop.inner_source_spoofed",
        "drop.truncated",
        "drop.oversized",
        "drop.bad_message",
        "drop.malformed",
        "drop.fragment",
        "drop.segmented",
        "event.reassembled",
    ];
    let mut want: BTreeMap<&str, u64> = names.iter().map(|n| (*n, wgdp.counter_now(n))).collect();
    let mut add = |name: &'static str, n: u64| *want.get_mut(name).expect("listed") += n;

    // Replays: peer 1's captured packets, 4 times each; ours, 3 times.
    for frame in &captured {
        for _ in 0..4 {
            raw.send(frame);
        }
    }
    for _ in 0..3 {
        me.send(&valid);
    }
    add("drop.replay", 3 * 4 + 3);
    // Broken tags.
    for i in 0..4u16 {
        let mut m = me.seal(&ipv4_packet(PEER3_IP, lan_ip, 1, &icmp_echo(10 + i)));
        let last = m.len() - 1;
        m[last] ^= 0x80;
        me.send(&m);
    }
    add("drop.authentication", 4);
    // Receiver indexes nobody holds.
    for i in 0..5u32 {
        let mut m = me.seal(&echo);
        m[4..8].copy_from_slice(&(0x5a5a_0000 + i).to_le_bytes());
        me.send(&m);
    }
    add("drop.unknown_index", 5);
    // Inner IP version 5, authenticated.
    for _ in 0..6 {
        let mut bad = echo.clone();
        bad[0] = 0x55;
        let m = me.seal(&bad);
        me.send(&m);
    }
    add("drop.inner_malformed", 6);
    // Inner source of peer 1, authenticated by peer 3.
    let peer1: Ipv4Addr = peer1_ip.parse().expect("PEER1_IP");
    for _ in 0..7 {
        let m = me.seal(&ipv4_packet(peer1, lan_ip, 1, &icmp_echo(2)));
        me.send(&m);
    }
    add("drop.inner_source_spoofed", 7);
    // Truncated: data shorter than its header and tag, a short initiation.
    for _ in 0..4 {
        me.send(&valid[..24]);
        me.send(&message(1, 100));
    }
    add("drop.truncated", 8);
    // Oversized handshake messages.
    for (kind, len) in [(1, 149), (2, 100), (3, 65)] {
        me.send(&message(kind, len));
    }
    add("drop.oversized", 3);
    // Wrong types: 7, and 4 with a nonzero reserved byte.
    for _ in 0..5 {
        me.send(&message(7, 148));
    }
    for _ in 0..4 {
        let mut m = valid.clone();
        m[1] = 1;
        me.send(&m);
    }
    add("drop.bad_message", 9);
    // Frames cut short: IP total length beyond the frame.
    let src = SocketAddrV4::new(wan_ip, PEER3_PORT);
    for cut in [10, 40] {
        let f = udp4_frame(tun_mac, wan_mac, src, wgdp_ep, &valid);
        raw.send(&f[..f.len() - cut]);
    }
    add("drop.malformed", 2);
    // Outer IP fragments: two 3000-byte datagrams, three fragments each,
    // are reassembled, then dropped as larger than one mbuf; none of
    // their fragments is invalid.
    for _ in 0..2 {
        me.send(&vec![4u8; 3000]);
    }
    add("event.reassembled", 2);
    add("drop.segmented", 2);
    add("drop.fragment", 0);
    expect_exact(&wgdp, mark, &want);

    // 5. Nothing broke: both wireguard-go peers still reach the LAN.
    let alive = wgdp.exited().is_none();
    wgdp.check(alive, || "wgdp exited".into());
    let p = ping(&lan, &peer1_ip, 10);
    wgdp.check(p.ok(), || {
        format!("ping {lan} -> peer 1 after the attack:\n{p}")
    });
    let p = ping(&wan2, &lan_ip.to_string(), 10);
    wgdp.check(p.ok(), || {
        format!("ping peer 2 -> {lan_ip} after the attack:\n{p}")
    });

    // 6. A clean exit: status 0, every mbuf back.
    let pid = wgdp.pid().to_string();
    let term = run(Command::new("kill").args(["-TERM", &pid]), secs(5));
    wgdp.check(term.ok(), || format!("kill -TERM {pid}:\n{term}"));
    let status = wgdp.wait_exit(secs(10));
    wgdp.check(status.is_some_and(|s| s.success()), || {
        format!("wgdp did not exit 0 after SIGTERM: {status:?}")
    });
    wgdp.check(wgdp.stdout.wait_eof(secs(5)), || {
        "stdout stayed open".into()
    });
    let last = wgdp.stdout.snapshot().last().cloned().unwrap_or_default();
    wgdp.check(last.trim() == "mbufs_in_use 0", || {
        format!("last line {last:?}, not 'mbufs_in_use 0'")
    });
    drop(wgdp);
    drop(topo);
}
