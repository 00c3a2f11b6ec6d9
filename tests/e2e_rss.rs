//! End to end across two workers: `wgdp run` with two worker lcores on
//! `net_tap` ports of two queues each (the kernel picks the TAP queue per
//! flow), four wireguard-go peers (`tests/e2e/topology.sh` with
//! `E2E_PEERS=4 E2E_WORKERS=2`).
//!
//! - every peer's traffic gets through, both ways;
//! - learned ownership: in a steady window of one peer's traffic, the worker
//!   that receives its tunnel packets is its owner (`wgdp show --json`), and
//!   handoff stays below 5 % of the tunnel port's packets (the inline
//!   fraction is printed);
//! - re-homing under traffic: a peer changes its source port (roaming) in
//!   the middle of an iperf3 run until its packets arrive on the other
//!   worker and it is re-homed there; traffic keeps flowing and no packet
//!   is accepted twice (a sequence-numbered UDP stream of the test's own
//!   sees no duplicate);
//! - no phase changes any of wgdp's drop counters.
//!
//! Needs root and wireguard-go, wg, ip, ping, iperf3, ethtool: it fails,
//! never skips, when they are missing. Run it alone:
//! `cargo nextest run -p wgdp --test e2e_rss --no-capture`.

mod netns;

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use netns::seq::SeqStream;
use netns::*;

const PEERS: usize = 4;
const WORKERS: usize = 2;
/// The test's own UDP streams' first port on the LAN host (one per peer).
const SEQ_PORT: u16 = 7000;

// ---------------------------------------------------------------------------
// Reading `wgdp show --json`.

fn worker_drops(show: &Value, reason: &str) -> u64 {
    show["lcores"]
        .as_array()
        .map(|ls| ls.iter().filter_map(|l| l["drops"][reason].as_u64()).sum())
        .unwrap_or(0)
}

fn lcore_ids(show: &Value) -> Vec<u64> {
    show["lcores"]
        .as_array()
        .map(|ls| ls.iter().filter_map(|l| l["lcore"].as_u64()).collect())
        .unwrap_or_default()
}

fn peer_show<'a>(show: &'a Value, public_key: &str) -> &'a Value {
    show["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["public_key"] == public_key))
        .unwrap_or_else(|| panic!("peer {public_key} not in wgdp show: {show}"))
}

/// The index of the worker that owns the peer.
fn owner(show: &Value, public_key: &str) -> usize {
    let lcore = peer_show(show, public_key)["owner_lcore"].as_u64();
    lcore_ids(show)
        .iter()
        .position(|l| Some(*l) == lcore)
        .unwrap_or_else(|| panic!("owner lcore {lcore:?} is no worker: {show}"))
}

fn delta(after: &[u64], before: &[u64]) -> Vec<u64> {
    after
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect()
}

// ---------------------------------------------------------------------------
// The test.

#[test]
fn two_workers_own_the_peers_whose_packets_they_receive_and_rehome_roaming_ones() {
    let ifname = format!("wgr{}", std::process::id() % 100_000);
    let (topo, wgdp, _config, _pt_mac) =
        bring_up_sized('r', PEERS, WORKERS, &format!("name = \"{ifname}\"\n"), "");
    let dir = topo.dir.clone();
    let (lan, lan_ip) = (
        topo.var("NS_LAN").to_string(),
        topo.var("LAN_IP").to_string(),
    );
    let peers = topo.wg_peers();
    assert_eq!(lcore_ids(&wgdp.show(&ifname)).len(), WORKERS, "two workers");
    // Every drop counter, from a snapshot younger than the call.
    let drops_now = || {
        thread::sleep(control::show::MAX_AGE + Duration::from_millis(200));
        show_drops(&wgdp.show(&ifname))
    };
    let drops_start = drops_now();

    // 1. Every peer, both ways (peer 2 has no endpoint: it initiates).
    for (i, p) in peers.iter().enumerate().map(|(i, p)| (i + 1, p)) {
        let out = ping_from(&p.ns, &lan_ip, Some(&p.ip), 10);
        assert!(out.ok(), "ping peer {i} ({}) -> {lan_ip}:\n{out}", p.ip);
        let back = ping(&lan, &p.ip, 10);
        assert!(back.ok(), "ping {lan_ip} -> peer {i} ({}):\n{back}", p.ip);
    }

    // 2. Ownership settles: every peer streams for longer than the TAP's
    // flow table keeps the queue of our replies (3 s), so that the kernel's
    // own per-flow choice decides where its packets arrive.
    let warm: Vec<SeqStream> = peers
        .iter()
        .zip(SEQ_PORT..)
        .map(|(p, port)| SeqStream::start(&p.ns, &p.ip, &lan, &lan_ip, port, 300))
        .collect();
    thread::sleep(secs(5));
    for (i, s) in warm.into_iter().enumerate() {
        let r = s.finish();
        assert!(
            r.received * 10 >= r.sent * 9 && r.duplicates == 0,
            "peer {} warm-up stream: {r:?}",
            i + 1
        );
    }
    thread::sleep(Duration::from_millis(500));

    // 3. Steady windows, one peer at a time: where its packets arrive is
    // its owner; handoff stays below 5 % of the tunnel port's packets.
    let (mut rx_total, mut inline_total, mut handoff_total) = (0u64, 0u64, 0u64);
    let settled = wgdp.show(&ifname);
    // Plaintext steering: each peer's prefix got a rule or was refused
    // and counted. Which of the two the kernel decides (net_tap makes tc
    // flower filters): asked of it with tc, outside DPDK.
    let flower = dpdk_sys::rte::testing::kernel_takes_tap_flow_rules();
    let steering = |s: &Value| {
        let c = |n: &str| s["control"][n].as_u64().unwrap_or(0);
        let rules = s["steering_rules"].as_u64().unwrap_or(u64::MAX);
        (
            c("steering_installed"),
            c("steering_removed"),
            c("steering_refused"),
            rules,
        )
    };
    let (installed, removed, refused, rules) = steering(&settled);
    println!(
        "  plaintext steering: {rules} rte_flow rules in force, \
         {installed} installed, {removed} removed, {refused} refused (handed off)"
    );
    assert!(
        installed + refused >= PEERS as u64 && rules == installed - removed,
        "every peer's prefix is steered or counted as refused: {}",
        settled["control"]
    );
    // All installed where the kernel takes the rules, all refused where
    // not (this machine): `rules == installed - removed` alone holds as
    // 0 == 0 when every rule is refused.
    assert!(
        if flower {
            refused == 0 && rules >= PEERS as u64
        } else {
            installed == 0 && rules == 0 && refused >= PEERS as u64
        },
        "the kernel {} tc flower rules, yet steering installed {installed} and \
         refused {refused}: {}",
        if flower { "takes" } else { "refuses" },
        settled["control"]
    );
    println!("==== steady state, 2 workers, {PEERS} wireguard-go peers ====");
    println!(
        "  re-homed while settling: {} (peers adopted per worker {:?})",
        worker_events(&settled, "peers_adopted").iter().sum::<u64>(),
        worker_events(&settled, "peers_adopted")
    );
    for (i, p) in peers.iter().enumerate().map(|(i, p)| (i + 1, p)) {
        let before = wgdp.show(&ifname);
        let s = SeqStream::start(&p.ns, &p.ip, &lan, &lan_ip, SEQ_PORT, 1500);
        thread::sleep(Duration::from_millis(1500));
        let r = s.finish();
        let after = wgdp.show(&ifname);
        let rx = delta(
            &worker_events(&after, "tunnel_rx"),
            &worker_events(&before, "tunnel_rx"),
        );
        let inline: u64 = delta(
            &worker_events(&after, "tunnel_inline"),
            &worker_events(&before, "tunnel_inline"),
        )
        .iter()
        .sum();
        let handoff: u64 = delta(
            &worker_events(&after, "tunnel_handoff"),
            &worker_events(&before, "tunnel_handoff"),
        )
        .iter()
        .sum();
        let (owner_before, owner_after) =
            (owner(&before, &p.public_key), owner(&after, &p.public_key));
        let window: u64 = rx.iter().sum();
        println!(
            "  peer {i}: owner worker {owner_after}, tunnel rx per worker {rx:?}, \
             inline {inline}, handoff {handoff}; stream {}/{} received",
            r.received, r.sent
        );
        assert!(
            r.received * 100 >= r.sent * 95 && r.duplicates == 0,
            "peer {i} stream: {r:?}"
        );
        assert_eq!(
            owner_before, owner_after,
            "peer {i} moved during its steady window"
        );
        assert!(
            window >= r.received && rx[owner_after] * 100 >= window * 95,
            "peer {i}: owned by worker {owner_after}, but its tunnel packets \
             arrived per worker as {rx:?}"
        );
        rx_total += window;
        inline_total += inline;
        handoff_total += handoff;
    }
    let owners: Vec<usize> = {
        let s = wgdp.show(&ifname);
        peers.iter().map(|p| owner(&s, &p.public_key)).collect()
    };
    let pct = |n: u64| 100.0 * n as f64 / rx_total.max(1) as f64;
    println!(
        "  owners per peer {owners:?}; tunnel-port packets {rx_total}: \
         inline {:.1} %, handoff {:.1} %",
        pct(inline_total),
        pct(handoff_total)
    );
    assert!(
        handoff_total * 100 < rx_total * 5,
        "handoff {handoff_total} of {rx_total} tunnel-port packets: 5 % or more"
    );

    // 4. Roaming under traffic: peer 1 changes its source port in the
    // middle of an iperf3 run until its packets arrive on the other worker,
    // which must then own it; nothing is accepted twice.
    let p1 = &peers[0];
    let drops_steady = drops_now();
    // Pings, warm-up streams and steady windows: wgdp drops nothing.
    let changed = drops_changed(&drops_start, &drops_steady);
    assert!(
        changed.is_empty(),
        "wgdp dropped packets before roaming: {changed:?}"
    );
    let start = wgdp.show(&ifname);
    let first_owner = owner(&start, &p1.public_key);
    let replay_before = worker_drops(&start, "replay");
    let adopted_before: u64 = worker_events(&start, "peers_adopted").iter().sum();
    let steering_before = steering(&start);
    let ((port, new_owner, moved_at, r), lost, packets) =
        iperf_udp_loss(&lan, &lan_ip, &p1.ns, Some(&p1.ip), 16, || {
            let stream = SeqStream::start(&p1.ns, &p1.ip, &lan, &lan_ip, SEQ_PORT, 1000);
            thread::sleep(secs(2));
            let mut moved = None;
            for k in 0..10u16 {
                let port = (52000 + k).to_string();
                let set = run(
                    &mut netns(&p1.ns, &["wg", "set", &p1.ifname, "listen-port", &port]),
                    secs(10),
                );
                assert!(set.ok(), "wg set {} listen-port {port}:\n{set}", p1.ifname);
                let deadline = Instant::now() + Duration::from_millis(1000);
                while moved.is_none() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(100));
                    let s = wgdp.show(&ifname);
                    let now = owner(&s, &p1.public_key);
                    let endpoint = peer_show(&s, &p1.public_key)["endpoint"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if now != first_owner && endpoint.ends_with(&format!(":{port}")) {
                        moved = Some((port.clone(), now, Instant::now()));
                    }
                }
                if moved.is_some() {
                    break;
                }
            }
            let Some((port, new_owner, moved_at)) = moved else {
                panic!(
                    "peer 1 stayed on worker {first_owner} through 10 source ports: \
                     its packets never arrived on the other worker, or were not re-homed"
                );
            };
            thread::sleep(secs(2));
            (port, new_owner, moved_at, stream.finish())
        });
    let drops_end = drops_now();
    // Nor while peer 1 roams and is re-homed (no replay drop either: the
    // replay window moves with it).
    let changed = drops_changed(&drops_steady, &drops_end);
    assert!(
        changed.is_empty(),
        "wgdp dropped packets while peer 1 roamed: {changed:?}"
    );
    let end = wgdp.show(&ifname);
    let replay = worker_drops(&end, "replay") - replay_before;
    let adopted = worker_events(&end, "peers_adopted").iter().sum::<u64>() - adopted_before;
    println!(
        "  roaming: peer 1 moved from worker {first_owner} to {new_owner} at source port \
         {port}; iperf3 UDP {packets} datagrams, {lost} lost; own stream {}/{} received, \
         {} duplicates, longest gap {:?}; replay drops {replay}; adoptions {adopted}",
        r.received, r.sent, r.duplicates, r.longest_gap
    );
    assert_eq!(r.duplicates, 0, "a datagram was delivered twice: {r:?}");
    assert!(
        r.received * 10 >= r.sent * 9,
        "the stream did not keep flowing: {r:?}"
    );
    assert!(
        r.last.is_some_and(|l| l > moved_at + secs(1)),
        "nothing arrived after the re-home: {r:?}"
    );
    assert!(
        r.longest_gap < secs(1),
        "traffic stopped for {:?} while roaming",
        r.longest_gap
    );
    assert!(
        packets > 0 && lost * 10 < packets,
        "iperf3 UDP during roaming: {lost} of {packets} lost"
    );
    assert!(adopted >= 1, "no adoption counted during roaming");
    let steering_after = steering(&end);
    assert!(
        steering_after.0 + steering_after.2 > steering_before.0 + steering_before.2,
        "peer 1's prefix was not steered to its new owner (nor refused): {}",
        end["control"]
    );
    assert_eq!(
        owner(&end, &p1.public_key),
        new_owner,
        "peer 1 left the worker its packets arrive on"
    );
    drop(wgdp);
    drop(topo);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
