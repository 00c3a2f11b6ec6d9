//! A multi-lane peer against wireguard-go: `wgdp run` with two workers on
//! `net_tap` ports of two queues each (the kernel picks the TAP queue per
//! flow) and peer 1 marked `lanes = 2` (`tests/e2e/topology.sh` with
//! `E2E_WORKERS=2`).
//!
//! - ping works both ways;
//! - 16 sequence-numbered UDP flows (the tests' own, `netns::seq`, about
//!   8 Mbit/s in all) from the LAN host to peer 1 for 5 s: they spread
//!   over both plaintext queues, so both workers encrypt for the one peer
//!   (`lane_encap` on the lane worker), each from its own lane port;
//! - wgdp drops nothing (every `drops` counter of `wgdp show` unchanged);
//! - no reordering within a flow: no datagram arrives after one with a
//!   higher number, none twice; loss is allowed (each flow must still
//!   deliver half its datagrams, for the order to mean something);
//! - wireguard-go drops nothing as a replay: it exposes no replay counter,
//!   so the evidence is its `wg show` rx bytes (counted only for packets
//!   that pass its replay filter) against wgdp's tx bytes for the peer:
//!   every byte missing must be a whole 576-byte message of the streams
//!   that the kernel's UDP receive buffer dropped (`UdpRcvbufErrors`) in
//!   its namespace (on this 2-core machine wireguard-go's default 212 KB
//!   buffer overflows even at a few Mbit/s), and every datagram lost one
//!   of those drops.
//!
//! Needs root and wireguard-go, wg, ip, ping, iperf3, nstat: it fails,
//! never skips, when they are missing. Run it alone:
//! `cargo nextest run -p wgdp --test e2e_lanes --no-capture`.

mod netns;

use serde_json::Value;

use netns::seq::SeqStream;
use netns::*;

const LANE_PORTS: (u16, u16) = (51840, 51841);
/// The UDP flows, their first port on peer 1 and their rate (datagrams a
/// second each): 16 x 125 x 512 bytes, about 8 Mbit/s.
const FLOWS: u16 = 16;
const SEQ_PORT: u16 = 7100;
const FLOW_RATE: u32 = 125;
/// One datagram of a stream as a WireGuard data message: 512 bytes of
/// payload, UDP and IPv4 headers (540), padded to 544, plus the 16-byte
/// header and the 16-byte tag.
const MESSAGE_LEN: u64 = 576;
/// A keepalive: header and tag only.
const KEEPALIVE_LEN: u64 = 32;

/// `nstat` counter `name` in namespace `ns` (absolute value).
fn nstat(ns: &str, name: &str) -> u64 {
    let out = run(&mut netns(ns, &["nstat", "-az", name]), secs(5));
    assert!(out.ok(), "nstat in {ns}:\n{out}");
    out.stdout
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name)).then(|| f.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

#[test]
fn wireguard_go_takes_a_two_lane_peer_without_replay_drops_or_reordering() {
    let ifname = format!("wgl{}", std::process::id() % 100_000);
    let (topo, wgdp, _config, _pt_mac) = bring_up_edited('l', 2, 2, |_, text| {
        text.replacen(
            "[interface]\n",
            &format!("[interface]\nname = \"{ifname}\"\n"),
            1,
        )
        .replacen(
            "[ports.tunnel]\n",
            &format!(
                "[ports.tunnel]\nlane_ports = \"{}-{}\"\n",
                LANE_PORTS.0, LANE_PORTS.1
            ),
            1,
        )
        // The first allowed_ips is peer 1's.
        .replacen("\nallowed_ips = ", "\nlanes = 2\nallowed_ips = ", 1)
    });
    let dir = topo.dir.clone();
    let (lan, lan_ip) = (
        topo.var("NS_LAN").to_string(),
        topo.var("LAN_IP").to_string(),
    );
    let (wan, wg1, peer_ip, peer_pub) = (
        topo.var("NS_WAN").to_string(),
        topo.var("WG1").to_string(),
        topo.var("PEER1_IP").to_string(),
        topo.var("PEER1_PUB").to_string(),
    );
    let show = wgdp.show(&ifname);
    let peer = |s: &Value| {
        s["peers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["public_key"] == peer_pub.as_str()))
            .cloned()
            .unwrap_or_else(|| panic!("peer 1 not in wgdp show: {s}"))
    };
    assert_eq!(
        peer(&show)["lanes"].as_u64(),
        Some(2),
        "wgdp show has the lanes"
    );

    // 1. Ping both ways.
    let out = ping_from(&wan, &lan_ip, Some(&peer_ip), 10);
    assert!(out.ok(), "ping peer 1 -> {lan_ip}:\n{out}");
    let out = ping(&lan, &peer_ip, 10);
    assert!(out.ok(), "ping {lan_ip} -> peer 1 ({peer_ip}):\n{out}");

    // 2. FLOWS sequence-numbered UDP streams, LAN -> peer 1 (wgdp
    // encrypts), each from its own source port: the kernel spreads them
    // over both plaintext queues, so both workers encrypt for the one peer.
    // Bytes are compared over this step only: wireguard-go's rx bytes also
    // count the handshake messages it received (the control thread's, not
    // in wgdp's per-peer tx bytes), and the handshake is behind us.
    let go_rx_bytes = || -> u64 {
        let dump = run(&mut netns(&wan, &["wg", "show", &wg1, "transfer"]), secs(5));
        assert!(dump.ok(), "wg show {wg1} transfer:\n{dump}");
        dump.stdout
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // wgdp's count first, wireguard-go's after it: nothing wgdp sent later
    // is missing from wgdp's side of the difference.
    let before = wgdp.show(&ifname);
    let go_rx_before = go_rx_bytes();
    let rcvbuf_before = nstat(&wan, "UdpRcvbufErrors");
    let streams: Vec<SeqStream> = (0..FLOWS)
        .map(|i| SeqStream::start(&lan, &lan_ip, &wan, &peer_ip, SEQ_PORT + i, FLOW_RATE))
        .collect();
    std::thread::sleep(secs(5));
    let reports: Vec<_> = streams.into_iter().map(SeqStream::finish).collect();
    let rcvbuf = nstat(&wan, "UdpRcvbufErrors") - rcvbuf_before;
    std::thread::sleep(std::time::Duration::from_millis(500));
    // 3. What wireguard-go accepted against what wgdp sent.
    let go_rx = go_rx_bytes() - go_rx_before;
    // wgdp's figures after wireguard-go's, from a snapshot younger than
    // the read above (`wgdp show` may serve one up to MAX_AGE old): all
    // wireguard-go counted, wgdp had sent.
    std::thread::sleep(control::show::MAX_AGE + std::time::Duration::from_millis(200));
    let after = wgdp.show(&ifname);

    let lane_encap: Vec<u64> = worker_events(&after, "lane_encap")
        .iter()
        .zip(worker_events(&before, "lane_encap"))
        .map(|(a, b)| a - b)
        .collect();
    let encap: Vec<u64> = worker_events(&after, "encapsulated")
        .iter()
        .zip(worker_events(&before, "encapsulated"))
        .map(|(a, b)| a - b)
        .collect();
    let wgdp_tx = peer(&after)["tx_bytes"].as_u64().unwrap_or(0)
        - peer(&before)["tx_bytes"].as_u64().unwrap_or(0);
    let (sent, received): (u64, u64) = reports
        .iter()
        .fold((0, 0), |(s, r), x| (s + x.sent, r + x.received));
    let dropped = drops_changed(&show_drops(&before), &show_drops(&after));
    println!(
        "==== lanes = 2, 2 workers, wireguard-go receiver ====\n  \
         {FLOWS} UDP flows: {received} of {sent} datagrams received; per flow \
         (sent, received, inversions): {:?}\n  \
         encapsulated per worker {encap:?}, by a lane {lane_encap:?}\n  \
         wgdp tx bytes {wgdp_tx}, wireguard-go rx bytes {go_rx} ({:.3} %); \
         UDP receive buffer drops in the peer's namespace {rcvbuf}\n  wgdp drops changed {dropped:?}",
        reports
            .iter()
            .map(|r| (r.sent, r.received, r.inversions))
            .collect::<Vec<_>>(),
        100.0 * go_rx as f64 / wgdp_tx.max(1) as f64,
    );
    assert!(
        lane_encap.iter().sum::<u64>() > 0 && encap.iter().all(|&n| n > 0),
        "both workers should have encrypted for peer 1: per worker {encap:?}, lanes {lane_encap:?}"
    );
    assert!(dropped.is_empty(), "wgdp dropped packets: {dropped:?}");
    // No reordering within a flow, and nothing twice; loss is allowed (the
    // peer's UDP receive buffer overflows on this 2-core machine), as long
    // as most of each flow arrived to be ordered.
    for (i, r) in reports.iter().enumerate() {
        assert!(
            r.inversions == 0 && r.duplicates == 0 && r.received * 2 >= r.sent && r.sent > 0,
            "flow {i}: {} of {} datagrams, {} out of order, {} twice",
            r.received,
            r.sent,
            r.inversions,
            r.duplicates
        );
    }
    // Every byte wireguard-go did not accept is a whole message its
    // namespace's UDP receive buffer dropped: MESSAGE_LEN each, every
    // datagram of the streams being one message (plus one keepalive's
    // worth: wgdp may send one between the two reads). None was refused
    // as a replay.
    assert!(
        go_rx > 0 && go_rx <= wgdp_tx && wgdp_tx - go_rx <= rcvbuf * MESSAGE_LEN + KEEPALIVE_LEN,
        "wireguard-go accepted {go_rx} of the {wgdp_tx} bytes wgdp sent, and its UDP \
         receive buffer dropped only {rcvbuf} datagrams ({MESSAGE_LEN} bytes each): replay drops?"
    );
    // And every datagram wgdp sent (its tx bytes in whole messages) that
    // did not arrive was one of those.
    let encrypted = wgdp_tx / MESSAGE_LEN;
    assert!(
        encrypted <= sent && received <= encrypted && encrypted - received <= rcvbuf,
        "wgdp sent {encrypted} of the {sent} datagrams, {received} arrived, and the \
         receive buffers dropped only {rcvbuf}"
    );
    drop(wgdp);
    drop(topo);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
