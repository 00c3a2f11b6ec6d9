//! A multi-lane peer against wireguard-go: `wgdp run` with two workers on
//! `net_tap` ports of two queues each (the kernel picks the TAP queue per
//! flow) and peer 1 marked `lanes = 2` (`tests/e2e/topology.sh` with
//! `E2E_WORKERS=2`).
//!
//! - ping works both ways;
//! - iperf3 TCP with eight streams of 2 Mbit/s from the LAN host to peer 1
//!   (paced, to keep the test short and the loss low): the streams
//!   spread over both plaintext queues, so both workers encrypt for the one
//!   peer (`lane_encap` on the lane worker), each from its own lane port;
//! - wireguard-go drops nothing as a replay: it exposes no replay counter,
//!   so the evidence is its `wg show` rx bytes (counted only for packets
//!   that pass its replay filter) against wgdp's tx bytes for the peer:
//!   every byte missing must be explained by the kernel's UDP receive
//!   buffer drops (`UdpRcvbufErrors`) in its namespace, at most one
//!   1500-byte message each (on this 2-core machine wireguard-go's default
//!   212 KB buffer overflows even at tens of Mbit/s);
//! - no reordering within a TCP flow: the receiver's `TcpExtTCPOFOQueue`
//!   (segments queued out of order) stays 0 unless the sender also had to
//!   retransmit (loss, not reordering, put them out of order).
//!
//! Needs root and wireguard-go, wg, ip, ping, iperf3, nstat: it fails,
//! never skips, when they are missing. Run it alone:
//! `cargo nextest run -p wgdp --test e2e_lanes --no-capture`.

mod netns;

use serde_json::Value;

use netns::*;

const LANE_PORTS: (u16, u16) = (51840, 51841);

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

    // 2. iperf3 TCP, eight paced streams, LAN -> peer 1 (wgdp encrypts).
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
    let ofo_before = nstat(&wan, "TcpExtTCPOFOQueue");
    let rcvbuf_before = nstat(&wan, "UdpRcvbufErrors");
    let server = iperf_server(&wan, &peer_ip);
    wgdp.check(server.is_some(), || "iperf3 server not listening".into());
    let client = run(
        &mut netns(
            &lan,
            &[
                "iperf3", "-c", &peer_ip, "-p", IPERF_PORT, "-t", "5", "-P", "8", "-b", "2M", "-J",
            ],
        ),
        secs(40),
    );
    drop(server);
    let doc: Value = serde_json::from_str(&client.stdout).unwrap_or_default();
    let bps = doc["end"]["sum_received"]["bits_per_second"].as_f64();
    let retransmits = doc["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0);
    wgdp.check(client.ok() && bps.is_some_and(|b| b > 0.0), || {
        format!("iperf3 {lan} -> {peer_ip} failed:\n{client}")
    });
    let ofo = nstat(&wan, "TcpExtTCPOFOQueue") - ofo_before;
    let rcvbuf = nstat(&wan, "UdpRcvbufErrors") - rcvbuf_before;
    std::thread::sleep(std::time::Duration::from_millis(500));
    // 3. What wireguard-go accepted against what wgdp sent.
    let go_rx = go_rx_bytes() - go_rx_before;
    // wgdp's figures after wireguard-go's, from a snapshot younger than
    // the read above (`wgdp show` may serve one up to MAX_AGE old): all
    // wireguard-go counted, wgdp had sent.
    std::thread::sleep(control::snapshot::MAX_AGE + std::time::Duration::from_millis(200));
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
    println!(
        "==== lanes = 2, 2 workers, wireguard-go receiver ====\n  \
         iperf3 TCP x8: {:.0} Mbit/s, {retransmits} retransmits; receiver out-of-order \
         queued segments {ofo}\n  encapsulated per worker {encap:?}, by a lane {lane_encap:?}\n  \
         wgdp tx bytes {wgdp_tx}, wireguard-go rx bytes {go_rx} ({:.3} %); \
         UDP receive buffer drops in the peer's namespace {rcvbuf}\n  wgdp drops {}",
        bps.unwrap_or(0.0) / 1e6,
        100.0 * go_rx as f64 / wgdp_tx.max(1) as f64,
        after["lcores"]
            .as_array()
            .map(|ls| ls
                .iter()
                .map(|l| l["drops"].to_string())
                .collect::<Vec<_>>()
                .join(" "))
            .unwrap_or_default()
    );
    assert!(
        lane_encap.iter().sum::<u64>() > 0 && encap.iter().all(|&n| n > 0),
        "both workers should have encrypted for peer 1: per worker {encap:?}, lanes {lane_encap:?}"
    );
    // Every byte wireguard-go did not accept is explained by a datagram
    // its namespace's UDP receive buffer dropped (at most 1500 bytes of
    // WireGuard message each: the tunnel MTU): none was refused as a replay.
    assert!(
        // (plus one datagram's worth: wgdp may send a keepalive between
        // the two reads)
        go_rx > 0 && go_rx <= wgdp_tx && wgdp_tx - go_rx <= (rcvbuf + 1) * 1500,
        "wireguard-go accepted {go_rx} of the {wgdp_tx} bytes wgdp sent, and its UDP \
         receive buffer dropped only {rcvbuf} datagrams: replay drops?"
    );
    assert!(
        ofo == 0 || retransmits > 0,
        "{ofo} segments arrived out of order with no loss: a TCP flow was reordered"
    );
    drop(wgdp);
    drop(topo);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
