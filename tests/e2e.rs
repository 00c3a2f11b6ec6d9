//! End to end: `wgdp run` between two real WireGuard peers (Debian's
//! wireguard-go, configured with `wg`) in network namespaces, over DPDK
//! `net_tap` ports whose kernel ends are moved into the namespaces.
//!
//! The namespaces, keys, peers and wgdp's config come from
//! `tests/e2e/topology.sh` (shared with `scripts/demo.sh`); docs/testing.md
//! has the diagram. Needs root and wireguard-go, wg, ip, ping, iperf3,
//! ethtool, ss, dpdk-telemetry.py: it fails, never skips, when they are
//! missing.
//!
//! Run it alone, as root: `cargo nextest run -p wgdp --test e2e --no-capture`
//! (`--no-capture` shows the iperf3 figures of a passing run).

mod netns;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use netns::*;

/// iperf3 through wgdp must reach at least this (bits/s): a floor far
/// below the figures, see its check.
const MIN_IPERF_BPS: f64 = 100e6;

#[test]
fn parsers_read_the_formats_they_expect() {
    assert_eq!(
        counter_value("counter drop.no_route 17", "drop.no_route"),
        Some(17)
    );
    assert_eq!(
        counter_value("counter drop.no_route_x 17", "drop.no_route"),
        None
    );
    let lines: Vec<String> = [
        "port tunnel net_tap0,iface=wgdp-wan0 mac 02:AA:bb:cc:dd:01",
        "port plaintext net_tap1,iface=wgdp-lan0 mac 02:aa:bb:cc:dd:02",
        "counter drop.replay 1",
        "peer K1= handshakes=2 rx_bytes=10 tx_bytes=20 endpoint=203.0.113.2:51821",
        "counter drop.replay 4",
        "mbufs_in_use 0",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(
        port_mac(&lines, "tunnel").as_deref(),
        Some("02:aa:bb:cc:dd:01")
    );
    assert_eq!(
        port_mac(&lines, "plaintext").as_deref(),
        Some("02:aa:bb:cc:dd:02")
    );
    assert_eq!(last_counter(&lines, "drop.replay"), Some(4));
    let p = peer_fields(&lines, "K1=").expect("peer line");
    assert_eq!(p["endpoint"], "203.0.113.2:51821");
    assert_eq!(p["rx_bytes"], "10");
    let json = "{\"end\": {\"sum_sent\": {\"bits_per_second\": 1.0},\n\
                \"sum_received\":\t{\n\t\"seconds\":\t10.0,\n\t\"bits_per_second\":\t9.4213e+08,\n}}}";
    assert_eq!(iperf_received_bps(json), Some(9.4213e8));
}

#[test]
fn wgdp_run_between_wireguard_go_peers() {
    // 1. Topology, config, wgdp, `wgdp: running`, attach.
    let (mut topo, mut wgdp, config_path, pt_mac) = bring_up('e', "", "");
    let dir = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let (lan, wan, wan2) = (
        topo.var("NS_LAN").to_string(),
        topo.var("NS_WAN").to_string(),
        topo.var("NS_WAN2").to_string(),
    );
    let (wg1, wg2) = (topo.var("WG1").to_string(), topo.var("WG2").to_string());
    let lan_ip = topo.var("LAN_IP").to_string();
    let peer1_ip = topo.var("PEER1_IP").to_string();
    let peer2_ip = topo.var("PEER2_IP").to_string();

    // Every drop counter, before the traffic: the ping and iperf3 phases
    // must change none, and the provoked drops below exactly theirs.
    let drops_start = fresh_drops(&wgdp);

    // 2. wgdp initiates: lan -> peer 1.
    let p = ping(&lan, &peer1_ip, 10);
    wgdp.check(p.ok(), || {
        format!("ping {lan} -> peer 1 {peer1_ip} failed:\n{p}")
    });
    let hs1 = latest_handshake(&wan, &wg1);
    wgdp.check(hs1 > 0, || format!("wg show {wg1} latest-handshakes: none"));

    // 3. The peer initiates: peer 2 (wan2) -> lan.
    let p = ping(&wan2, &lan_ip, 10);
    wgdp.check(p.ok(), || {
        format!("ping {wan2} (peer 2) -> {lan_ip} failed:\n{p}")
    });
    let hs2 = latest_handshake(&wan2, &wg2);
    wgdp.check(hs2 > 0, || format!("wg show {wg2} latest-handshakes: none"));

    // 4. Peer 1's side -> lan.
    let p = ping(&wan, &lan_ip, 10);
    wgdp.check(p.ok(), || {
        format!("ping {wan} (peer 1) -> {lan_ip} failed:\n{p}")
    });

    // 5. ARP: lan resolved wgdp's address to the plaintext port's MAC.
    let gw = topo.var("WGDP_LAN_IP").to_string();
    let neigh = run(
        Command::new("ip").args(["-n", &lan, "neigh", "show", &gw]),
        secs(5),
    );
    let lladdr = neigh
        .stdout
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_ascii_lowercase);
    wgdp.check(lladdr.as_deref() == Some(pt_mac.as_str()), || {
        format!("ip -n {lan} neigh show {gw}: expected lladdr {pt_mac}:\n{neigh}")
    });

    // 6. Throughput, both ways, both peers: figures, not thresholds.
    let lan_to_p1 = iperf(&wgdp, &wan, &peer1_ip, &lan, 10);
    let p1_to_lan = iperf(&wgdp, &lan, &lan_ip, &wan, 10);
    let lan_to_p2 = iperf(&wgdp, &wan2, &peer2_ip, &lan, 3);
    let p2_to_lan = iperf(&wgdp, &lan, &lan_ip, &wan2, 3);
    let gbps = |b: f64| b / 1e9;
    println!("==================== iperf3 TCP through wgdp ====================");
    println!("  lan -> peer 1 (10 s): {:.3} Gbit/s", gbps(lan_to_p1));
    println!("  peer 1 -> lan (10 s): {:.3} Gbit/s", gbps(p1_to_lan));
    println!("  lan -> peer 2 ( 3 s): {:.3} Gbit/s", gbps(lan_to_p2));
    println!("  peer 2 -> lan ( 3 s): {:.3} Gbit/s", gbps(p2_to_lan));
    println!("=================================================================");
    // A floor, far below the figures (0.5-1.2 Gbit/s on this machine,
    // docs/testing.md): a tunnel that barely works fails it, a busy
    // machine does not.
    for (what, bps) in [
        ("lan -> peer 1", lan_to_p1),
        ("peer 1 -> lan", p1_to_lan),
        ("lan -> peer 2", lan_to_p2),
        ("peer 2 -> lan", p2_to_lan),
    ] {
        wgdp.check(bps >= MIN_IPERF_BPS, || {
            format!(
                "iperf3 {what}: {:.3} Gbit/s, below the floor of {:.3}",
                gbps(bps),
                gbps(MIN_IPERF_BPS)
            )
        });
    }
    let drops_traffic = fresh_drops(&wgdp);
    let changed = drops_changed(&drops_start, &drops_traffic);
    wgdp.check(changed.is_empty(), || {
        format!("drops during the ping and iperf3 phases: {changed:?}")
    });

    // 7. A decrypted packet whose source is outside peer 1's allowed IPs.
    let spoof = "10.9.0.99";
    let add = run(
        Command::new("ip").args([
            "-n",
            &wan,
            "addr",
            "add",
            &format!("{spoof}/32"),
            "dev",
            &wg1,
        ]),
        secs(5),
    );
    assert!(add.ok(), "add {spoof} on {wg1}:\n{add}");
    let before = wgdp.counter_now("drop.inner_source_spoofed");
    let mark = wgdp.stdout.len();
    let p = run(
        &mut netns(
            &wan,
            &["ping", "-n", "-c", "3", "-W", "1", "-I", spoof, &lan_ip],
        ),
        secs(10),
    );
    wgdp.check(!p.ok(), || {
        format!("ping from spoofed {spoof} reached {lan_ip}:\n{p}")
    });
    let spoofed = wgdp.wait_counter(mark, "drop.inner_source_spoofed", before + 3, secs(10));
    wgdp.check(spoofed.is_some(), || {
        format!(
            "no report with counter drop.inner_source_spoofed >= {} within 10 s",
            before + 3
        )
    });
    // Exactly the three echo requests, and nothing else dropped.
    let drops_spoofed = fresh_drops(&wgdp);
    let changed = drops_changed(&drops_traffic, &drops_spoofed);
    wgdp.check(
        changed == BTreeMap::from([("inner_source_spoofed".to_string(), 3)]),
        || {
            format!(
                "drops from 3 spoofed pings: {changed:?}, expected inner_source_spoofed +3 only"
            )
        },
    );
    let _ = run(
        Command::new("ip").args([
            "-n",
            &wan,
            "addr",
            "del",
            &format!("{spoof}/32"),
            "dev",
            &wg1,
        ]),
        secs(5),
    );

    // 8. A destination no peer covers.
    let unknown = topo.var("UNKNOWN_IP").to_string();
    let before = wgdp.counter_now("drop.no_route");
    let mark = wgdp.stdout.len();
    let p = run(
        &mut netns(&lan, &["ping", "-n", "-c", "3", "-W", "1", &unknown]),
        secs(10),
    );
    wgdp.check(!p.ok(), || {
        format!("ping {unknown} (no peer) got a reply:\n{p}")
    });
    let no_route = wgdp.wait_counter(mark, "drop.no_route", before + 3, secs(10));
    wgdp.check(no_route.is_some(), || {
        format!(
            "no report with counter drop.no_route >= {} within 10 s",
            before + 3
        )
    });
    let drops_no_route = fresh_drops(&wgdp);
    let changed = drops_changed(&drops_spoofed, &drops_no_route);
    wgdp.check(
        changed == BTreeMap::from([("no_route".to_string(), 3)]),
        || format!("drops from 3 pings to {unknown}: {changed:?}, expected no_route +3 only"),
    );

    // 9. SIGTERM: exit 0, a final report, no mbuf left.
    let mark = wgdp.stdout.len();
    let pid = wgdp.pid().to_string();
    let term = run(Command::new("kill").args(["-TERM", &pid]), secs(5));
    wgdp.check(term.ok(), || format!("kill -TERM {pid}:\n{term}"));
    let status = wgdp.wait_exit(secs(10));
    wgdp.check(status.is_some(), || {
        "wgdp did not exit within 10 s of SIGTERM".into()
    });
    let status = status.unwrap();
    wgdp.check(status.success(), || {
        format!("wgdp exited with {status} after SIGTERM")
    });
    wgdp.check(wgdp.stdout.wait_eof(secs(5)), || {
        "wgdp's stdout stayed open after exit".into()
    });
    let lines = wgdp.stdout.snapshot();
    let report = &lines[mark.min(lines.len())..];
    wgdp.check(
        lines.last().map(|l| l.trim()) == Some("mbufs_in_use 0"),
        || "the last line is not 'mbufs_in_use 0'".into(),
    );
    // One handshake per peer: wgdp's to peer 1, peer 2's to wgdp; the
    // run is far shorter than REKEY_AFTER_TIME.
    let handshakes = last_counter(report, "control.handshakes_completed").unwrap_or(0);
    wgdp.check(handshakes == 2, || {
        format!("final report: control.handshakes_completed {handshakes}, expected 2")
    });
    let expect_peer = |key: &str, endpoint: String| {
        let f = peer_fields(report, key)
            .unwrap_or_else(|| wgdp.fail(&format!("final report has no 'peer {key} ...' line")));
        let num = |k: &str| f.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        wgdp.check(
            num("handshakes") == 1
                && num("rx_bytes") > 0
                && num("tx_bytes") > 0
                && f.get("endpoint") == Some(&endpoint),
            || format!("peer {key}: expected handshakes=1, bytes both ways, endpoint={endpoint}; got {f:?}"),
        );
    };
    expect_peer(
        topo.var("PEER1_PUB"),
        format!("{}:{}", topo.var("WAN_IP"), topo.var("PEER1_PORT")),
    );
    // Peer 2 is behind wan's routing (no NAT): wgdp learns its real address.
    expect_peer(
        topo.var("PEER2_PUB"),
        format!("{}:{}", topo.var("WAN2_IP"), topo.var("PEER2_PORT")),
    );
    println!("---- wgdp's final report ----\n{}", report.join("\n"));

    // 10. Teardown, and nothing left behind.
    drop(wgdp);
    let wg_pids = [
        topo.var("WG1_PID").to_string(),
        topo.var("WG2_PID").to_string(),
    ];
    let names = [lan, wan, wan2];
    let taps = [
        topo.var("TAP_WAN").to_string(),
        topo.var("TAP_LAN").to_string(),
    ];
    topo.down();
    let listed = run(Command::new("ip").args(["netns", "list"]), secs(5)).stdout;
    for ns in &names {
        assert!(
            !listed.split_whitespace().any(|w| w == ns),
            "namespace {ns} still exists after topology.sh down:\n{listed}"
        );
    }
    for pid in &wg_pids {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert_ne!(
            comm.trim(),
            "wireguard-go",
            "wireguard-go {pid} still runs after down"
        );
    }
    for tap in &taps {
        let shown = run(
            Command::new("ip").args(["link", "show", "dev", tap]),
            secs(5),
        );
        assert!(
            !shown.ok(),
            "{tap} still exists after wgdp exited and topology.sh down"
        );
    }
    assert!(
        !dir.exists(),
        "{} still exists after topology.sh down",
        dir.display()
    );
}

/// `wg genkey` / `wg pubkey`: (private, public), base64.
#[test]
fn wg_tool_inspects_and_changes_a_running_wgdp() {
    let ifname = format!("wgu{}", std::process::id() % 100_000);
    let metrics = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr")
    };
    let (topo, mut wgdp, config_path, _) = bring_up(
        'u',
        &format!("name = \"{ifname}\"\n"),
        &format!("\n[metrics]\nlisten = \"{metrics}\"\n"),
    );
    let (lan, wan) = (
        topo.var("NS_LAN").to_string(),
        topo.var("NS_WAN").to_string(),
    );
    let peer1_ip = topo.var("PEER1_IP").to_string();
    let peer1_pub = topo.var("PEER1_PUB").to_string();
    // Where wgdp sees peer 1 (the WAN namespace's address, peer 1's port).
    let peer1_endpoint = format!("{}:{}", topo.var("WAN_IP"), topo.var("PEER1_PORT"));
    let p = ping(&lan, &peer1_ip, 10);
    wgdp.check(p.ok(), || format!("ping lan -> peer 1 failed:\n{p}"));

    // wg show / showconf: the interface and the peer as wg prints them.
    let show = wg(&["show", &ifname]);
    wgdp.check(show.ok(), || format!("wg show {ifname}:\n{show}"));
    for want in [
        format!("interface: {ifname}"),
        "listening port: 51820".to_string(),
        format!("peer: {peer1_pub}"),
        format!("allowed ips: {peer1_ip}/32"),
        "latest handshake:".to_string(),
        "transfer:".to_string(),
    ] {
        wgdp.check(show.stdout.contains(&want), || {
            format!("wg show lacks {want:?}:\n{show}")
        });
    }
    let conf = wg(&["showconf", &ifname]);
    wgdp.check(
        conf.ok()
            && conf.stdout.contains(&format!("PublicKey = {peer1_pub}"))
            && conf.stdout.contains("ListenPort = 51820"),
        || format!("wg showconf {ifname}:\n{conf}"),
    );
    let dump = wg_dump_peers(&ifname);
    let p1 = dump
        .get(&peer1_pub)
        .unwrap_or_else(|| wgdp.fail(&format!("peer 1 not in dump: {dump:?}")));
    wgdp.check(
        p1.get(1).map(String::as_str) == Some(peer1_endpoint.as_str()),
        || format!("endpoint: {p1:?}"),
    );
    wgdp.check(p1.get(3).is_some_and(|t| t != "0"), || {
        format!("latest handshake: {p1:?}")
    });
    wgdp.check(p1.get(4).is_some_and(|b| b != "0"), || {
        format!("rx bytes: {p1:?}")
    });

    // Prometheus metrics: the peer's bytes and the drop counters.
    // The per-peer snapshot is refreshed every second.
    let rx_line = format!("wgdp_peer_rx_bytes_total{{public_key=\"{peer1_pub}\"}} ");
    let deadline = Instant::now() + secs(5);
    let (scraped, rx) = loop {
        let scraped = http_get(metrics, "/metrics");
        let rx: u64 = scraped
            .lines()
            .find_map(|l| l.strip_prefix(&rx_line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if rx > 0 || Instant::now() > deadline {
            break (scraped, rx);
        }
        thread::sleep(Duration::from_millis(200));
    };
    wgdp.check(scraped.starts_with("HTTP/1.1 200"), || {
        format!("GET /metrics:\n{scraped}")
    });
    wgdp.check(rx > 0, || {
        format!("no rx bytes for peer 1 in /metrics:\n{scraped}")
    });
    wgdp.check(
        scraped.contains("wgdp_drops_total{lcore=\"1\",reason=\"replay\"} 0"),
        || format!("no replay drop counter in /metrics:\n{scraped}"),
    );

    // wgdp show: the same state with owner lcores and per-port counters.
    let doc = wgdp.show(&ifname);
    let peer = doc["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["public_key"] == peer1_pub.as_str()))
        .unwrap_or_else(|| wgdp.fail(&format!("peer 1 not in wgdp show: {doc}")));
    wgdp.check(
        peer["owner_lcore"] == 1 && peer["rx_bytes"].as_u64() > Some(0),
        || format!("peer 1 in wgdp show: {peer}"),
    );
    wgdp.check(
        doc["lcores"][0]["lcore"] == 1 && doc["lcores"][0]["drops"]["replay"] == 0,
        || format!("lcores in wgdp show: {}", doc["lcores"]),
    );
    let ports = doc["ports"].as_array().map_or(0, |p| {
        p.iter()
            .filter(|p| p["rx_packets"].as_u64() > Some(0))
            .count()
    });
    wgdp.check(ports == 2, || {
        format!("ports in wgdp show: {}", doc["ports"])
    });
    let text = run(
        Command::new(env!("CARGO_BIN_EXE_wgdp")).args(["show", "--interface", &ifname]),
        secs(10),
    );
    wgdp.check(text.ok() && text.stdout.contains("owner lcore: 1"), || {
        format!("wgdp show:\n{text}")
    });

    // DPDK telemetry: dpdk-telemetry.py reads the same numbers as wgdp show.
    check_telemetry(&wgdp, topo.var("FILE_PREFIX"), &ifname, &peer1_pub);

    // wg set: a new peer appears, live and in the table file.
    let (_, new_pub) = wg_keypair();
    let psk = run(Command::new("wg").arg("genpsk"), secs(5))
        .stdout
        .trim()
        .to_string();
    let psk_file = config_path.with_file_name("new-peer.psk");
    fs::write(&psk_file, format!("{psk}\n")).expect("write psk");
    let set = wg(&[
        "set",
        &ifname,
        "peer",
        &new_pub,
        "allowed-ips",
        "10.9.0.50/32,fd00:9::/64",
        "endpoint",
        "203.0.113.2:51900",
        "preshared-key",
        psk_file.to_str().unwrap_or_default(),
        "persistent-keepalive",
        "25",
    ]);
    wgdp.check(set.ok(), || format!("wg set (add):\n{set}"));
    let dump = wg_dump_peers(&ifname);
    let added = dump
        .get(&new_pub)
        .unwrap_or_else(|| wgdp.fail(&format!("new peer not in dump: {dump:?}")));
    wgdp.check(
        added
            .get(2)
            .is_some_and(|a| a.contains("10.9.0.50/32") && a.contains("fd00:9::/64")),
        || format!("allowed ips of the new peer: {added:?}"),
    );
    wgdp.check(added.first() == Some(&psk), || {
        format!("preshared key: {added:?}")
    });
    wgdp.check(added.get(6).map(String::as_str) == Some("25"), || {
        format!("keepalive: {added:?}")
    });
    let file = fs::read_to_string(&config_path).expect("read config");
    wgdp.check(
        file.contains(&new_pub) && file.contains("10.9.0.50/32"),
        || format!("not written back:\n{file}"),
    );
    let check = run(
        Command::new(env!("CARGO_BIN_EXE_wgdp"))
            .args(["check", "--config"])
            .arg(&config_path),
        secs(10),
    );
    wgdp.check(check.ok(), || {
        format!("the written-back table does not check:\n{check}")
    });

    // One request where a later peer takes the prefix an earlier one was
    // just given: the prefix is written once, under the later peer.
    let moved = wg(&[
        "set",
        &ifname,
        "peer",
        &new_pub,
        "allowed-ips",
        "10.9.0.51/32",
        "peer",
        &peer1_pub,
        "allowed-ips",
        &format!("{peer1_ip}/32,10.9.0.51/32"),
    ]);
    wgdp.check(moved.ok(), || format!("wg set (move):\n{moved}"));
    let file = fs::read_to_string(&config_path).expect("read config");
    wgdp.check(file.matches("10.9.0.51/32").count() == 1, || {
        format!("moved prefix written twice:\n{file}")
    });
    let check = run(
        Command::new(env!("CARGO_BIN_EXE_wgdp"))
            .args(["check", "--config"])
            .arg(&config_path),
        secs(10),
    );
    wgdp.check(check.ok(), || {
        format!("the table no longer checks after a move:\n{check}")
    });

    // wg set ... remove: gone, live and from the file.
    let rm = wg(&["set", &ifname, "peer", &new_pub, "remove"]);
    wgdp.check(rm.ok(), || format!("wg set (remove):\n{rm}"));
    wgdp.check(!wg_dump_peers(&ifname).contains_key(&new_pub), || {
        "removed peer still listed".into()
    });
    let file = fs::read_to_string(&config_path).expect("read config");
    wgdp.check(!file.contains(&new_pub), || {
        format!("removal not written back:\n{file}")
    });

    // wgdp set / wgdp remove: the same, through wgdp's own commands.
    check_wgdp_set(&wgdp, &ifname, &config_path, &psk_file, &psk);

    // Peer B added and removed 100 times while UDP flows through peer 1,
    // one round in four with `wgdp set`/`wgdp remove`: no datagram lost.
    let (_, churn_pub) = wg_keypair();
    let drops_before_churn = fresh_drops(&wgdp);
    let mut churn_failures = Vec::new();
    let mut churn_time = Duration::ZERO;
    let ((), lost, sent) = iperf_udp_loss(&lan, topo.var("LAN_IP"), &wan, None, 9, || {
        thread::sleep(Duration::from_millis(500));
        let churn_start = Instant::now();
        for i in 0..100 {
            let (add, rm) = if i % 4 != 3 {
                (
                    wg(&[
                        "set",
                        &ifname,
                        "peer",
                        &churn_pub,
                        "allowed-ips",
                        "10.9.0.60/32",
                    ]),
                    wg(&["set", &ifname, "peer", &churn_pub, "remove"]),
                )
            } else {
                (
                    wgdp_cmd(&[
                        "set",
                        "-i",
                        &ifname,
                        "peer",
                        &churn_pub,
                        "--allowed-ips",
                        "10.9.0.60/32",
                    ]),
                    wgdp_cmd(&["remove", "-i", &ifname, "peer", &churn_pub]),
                )
            };
            if !add.ok() || !rm.ok() {
                churn_failures.push(format!("round {i}: {add} {rm}"));
            }
        }
        churn_time = churn_start.elapsed();
    });
    println!(
        "\n  UDP through peer 1 during 100 add/remove rounds: {sent} datagrams, {lost} lost\n"
    );
    wgdp.check(churn_failures.is_empty(), || {
        format!("wg set failed: {churn_failures:?}")
    });
    // The churn must happen while the datagrams flow (started 0.5 s in).
    wgdp.check(churn_time < Duration::from_millis(8_000), || {
        format!("the 100 rounds took {churn_time:?}, longer than the UDP run")
    });
    wgdp.check(sent > 0 && lost == 0, || {
        format!("{lost} of {sent} datagrams lost during the churn")
    });
    // Nor did wgdp drop anything.
    let changed = drops_changed(&drops_before_churn, &fresh_drops(&wgdp));
    wgdp.check(changed.is_empty(), || {
        format!("drops during the churn: {changed:?}")
    });

    // A peer added live survives a restart (the table was written back).
    let (_, keep_pub) = wg_keypair();
    let keep = wg(&[
        "set",
        &ifname,
        "peer",
        &keep_pub,
        "allowed-ips",
        "10.9.0.70/32",
    ]);
    wgdp.check(keep.ok(), || format!("wg set (keep):\n{keep}"));
    run(
        Command::new("kill").args(["-TERM", &wgdp.pid().to_string()]),
        secs(5),
    );
    let status = wgdp.wait_exit(secs(15));
    wgdp.check(status.is_some_and(|s| s.success()), || {
        format!("wgdp exit: {status:?}")
    });
    let mut again = Wgdp::start(&config_path);
    wait_running(&mut again, &config_path, "(see the file)");
    let dump = wg_dump_peers(&ifname);
    again.check(
        dump.contains_key(&keep_pub) && dump.contains_key(&peer1_pub),
        || format!("after restart: {dump:?}"),
    );
    // No secret in anything wgdp wrote (logs at trace level, reports).
    let own_key = fs::read_to_string(topo.dir.join("wgdp.key")).expect("wgdp.key");
    let own_key = own_key.trim();
    let hex = |b64: &str| -> String {
        let out = run(
            Command::new("sh").args([
                "-c",
                &format!("printf %s '{b64}' | base64 -d | od -An -tx1 | tr -d ' \\n'"),
            ]),
            secs(5),
        );
        out.stdout.trim().to_string()
    };
    let secrets = [own_key.to_string(), hex(own_key), psk.clone(), hex(&psk)];
    let mut output = wgdp.stdout.snapshot();
    output.extend(wgdp.stderr.snapshot());
    output.extend(again.stdout.snapshot());
    output.extend(again.stderr.snapshot());
    again.check(output.iter().any(|l| l.contains("peer added")), || {
        "no 'peer added' log line: are logs enabled?".into()
    });
    for secret in &secrets {
        again.check(secret.len() >= 44, || {
            format!("bad secret fixture {secret:?}")
        });
        let leak = output.iter().find(|l| l.contains(secret.as_str()));
        again.check(leak.is_none(), || {
            format!("a secret appears in wgdp's output: {leak:?}")
        });
    }
    drop(again);
    drop(wgdp);
    drop(topo);
}

/// The wgdp binary with `args`.
fn wgdp_cmd(args: &[&str]) -> Out {
    run(
        Command::new(env!("CARGO_BIN_EXE_wgdp")).args(args),
        secs(10),
    )
}

/// `wgdp set peer` adds and changes a peer, `wgdp remove peer` removes it,
/// live and in the table file; bad values and refusals are explained.
fn check_wgdp_set(wgdp: &Wgdp, ifname: &str, config_path: &Path, psk_file: &Path, psk: &str) {
    let (_, key) = wg_keypair();
    let psk_path = psk_file.to_str().unwrap_or_default();
    let add = wgdp_cmd(&[
        "set",
        "--interface",
        ifname,
        "peer",
        &key,
        "--allowed-ips",
        "10.9.0.80/32,fd00:80::/64",
        "--endpoint",
        "203.0.113.2:51901",
        "--persistent-keepalive",
        "15",
        "--preshared-key",
        psk_path,
    ]);
    wgdp.check(add.ok(), || format!("wgdp set peer (add):\n{add}"));
    let dump = wg_dump_peers(ifname);
    let added = dump
        .get(&key)
        .unwrap_or_else(|| wgdp.fail(&format!("wgdp set: peer not in wg show: {dump:?}")));
    let field = |i: usize| added.get(i).map_or("", String::as_str);
    wgdp.check(
        field(0) == psk
            && field(1) == "203.0.113.2:51901"
            && field(2).contains("10.9.0.80/32")
            && field(2).contains("fd00:80::/64")
            && field(6) == "15",
        || format!("wgdp set: peer in wg show dump: {added:?}"),
    );
    let file = fs::read_to_string(config_path).expect("read config");
    wgdp.check(file.contains(&key) && file.contains("fd00:80::/64"), || {
        format!("wgdp set: not written back:\n{file}")
    });

    // Only what is given changes.
    let change = wgdp_cmd(&[
        "set",
        "peer",
        &key,
        "--persistent-keepalive",
        "off",
        "-i",
        ifname,
    ]);
    wgdp.check(change.ok(), || format!("wgdp set peer (change):\n{change}"));
    let changed = wg_dump_peers(ifname).remove(&key).unwrap_or_default();
    wgdp.check(
        changed.get(6).map(String::as_str) == Some("off")
            && changed.get(2).is_some_and(|a| a.contains("fd00:80::/64")),
        || format!("wgdp set peer --persistent-keepalive off: {changed:?}"),
    );

    // Mistakes name their option; wgdp's refusals are explained.
    let bad = wgdp_cmd(&[
        "set",
        "-i",
        ifname,
        "peer",
        &key,
        "--allowed-ips",
        "10.9.0.0/33",
    ]);
    wgdp.check(!bad.ok() && bad.stderr.contains("allowed-ips:"), || {
        format!("wgdp set with a bad prefix:\n{bad}")
    });
    let own = wg(&["show", ifname, "public-key"]);
    let own = own.stdout.trim();
    // Skipped silently, as by the kernel and wireguard-go (one
    // configuration for every node of a mesh): accepted, nothing added.
    let skipped = wgdp_cmd(&[
        "set",
        "-i",
        ifname,
        "peer",
        own,
        "--endpoint",
        "203.0.113.2:1",
    ]);
    let peers = wg(&["show", ifname, "peers"]);
    wgdp.check(
        skipped.ok() && peers.ok() && !peers.stdout.contains(own),
        || format!("wgdp set with wgdp's own key:\n{skipped}\n{peers}"),
    );
    let nowhere = wgdp_cmd(&["remove", "-i", "wgdpnone", "peer", &key]);
    wgdp.check(
        !nowhere.ok()
            && nowhere
                .stderr
                .contains("is wgdp running? no socket at /var/run/wireguard/wgdpnone.sock"),
        || format!("wgdp remove without a running wgdp:\n{nowhere}"),
    );

    let rm = wgdp_cmd(&["remove", "-i", ifname, "peer", &key]);
    wgdp.check(rm.ok(), || format!("wgdp remove peer:\n{rm}"));
    wgdp.check(!wg_dump_peers(ifname).contains_key(&key), || {
        "wgdp remove: peer still listed".into()
    });
    let file = fs::read_to_string(config_path).expect("read config");
    wgdp.check(!file.contains(&key), || {
        format!("wgdp remove: not written back:\n{file}")
    });
}

/// Asks wgdp's DPDK telemetry with `dpdk-telemetry.py -f PREFIX`, one
/// command per line; the answers, by command (with its parameters).
fn telemetry(prefix: &str, commands: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    let lines = dpdk_sys::rte::testing::telemetry_py(prefix, commands);
    assert_eq!(
        lines.len(),
        commands.len(),
        "dpdk-telemetry.py answered {lines:?}"
    );
    // One line per command, in order: {"<command without params>": answer}.
    let mut answers = serde_json::Map::new();
    for (line, cmd) in lines.iter().zip(commands) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("dpdk-telemetry.py printed {line:?}: {e}\n{lines:?}"));
        let name = cmd.split(',').next().unwrap_or_default();
        answers.insert((*cmd).to_string(), v[name].clone());
    }
    answers
}

/// Telemetry read before and after `wgdp show --json` brackets what it
/// shows: every counter is between the two readings, everything else equal.
fn check_telemetry(wgdp: &Wgdp, prefix: &str, ifname: &str, peer_pub: &str) {
    let socket = format!("telemetry /var/run/dpdk/{prefix}/dpdk_telemetry.v2");
    wgdp.check(wgdp.stdout.snapshot().contains(&socket), || {
        format!("wgdp did not print {socket:?}")
    });
    let peer_cmd = format!("/wgdp/peer,{peer_pub}");
    let commands = [
        "/wgdp/info",
        "/wgdp/lcores",
        "/wgdp/lcore,1",
        "/wgdp/drops",
        "/wgdp/ports",
        "/wgdp/port,tunnel",
        "/wgdp/port,plaintext",
        "/wgdp/control",
        "/wgdp/peers",
        &peer_cmd,
        "/wgdp/peer,nosuchkey",
    ];
    let before = telemetry(prefix, &commands);
    let doc = wgdp.show(ifname);
    // Telemetry answers from a snapshot at most 1 s old: wait it out.
    thread::sleep(Duration::from_millis(1500));
    let after = telemetry(prefix, &commands);
    let dump = || format!("before {before:?}\nshow {doc}\nafter {after:?}");

    // `value` of telemetry field `cmd.field` is between the two readings.
    let between = |cmd: &str, field: &str, value: &serde_json::Value| {
        let (lo, hi) = (before[cmd][field].as_u64(), after[cmd][field].as_u64());
        let v = value.as_u64();
        wgdp.check(lo.is_some() && lo <= v && v <= hi, || {
            format!("{cmd} {field}: {lo:?} <= {v:?} <= {hi:?}\n{}", dump())
        });
    };
    // Equal, and there: a field missing from both (null) is not a match.
    let same = |cmd: &str, field: &str, value: &serde_json::Value| {
        wgdp.check(
            !value.is_null() && &before[cmd][field] == value && &after[cmd][field] == value,
            || format!("{cmd} {field}: want {value} (not null)\n{}", dump()),
        );
    };

    let i = &doc["interface"];
    same("/wgdp/info", "interface", &i["name"]);
    same("/wgdp/info", "public_key", &i["public_key"]);
    same("/wgdp/info", "listen_port", &i["listen_port"]);
    let n_peers = doc["peers"].as_array().map_or(0, Vec::len);
    same("/wgdp/info", "peers", &n_peers.into());
    let lcores: Vec<serde_json::Value> = doc["lcores"]
        .as_array()
        .map(|l| l.iter().map(|x| x["lcore"].clone()).collect())
        .unwrap_or_default();
    same("/wgdp/info", "lcores", &lcores.clone().into());
    wgdp.check(
        before["/wgdp/lcores"] == serde_json::Value::from(lcores),
        || format!("/wgdp/lcores\n{}", dump()),
    );

    // Worker lcore 1: every event and drop reason.
    let l1 = doc["lcores"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["lcore"] == 1))
        .unwrap_or_else(|| wgdp.fail(&format!("no lcore 1 in wgdp show: {doc}")));
    let mut fields = 0;
    for (name, v) in l1["events"].as_object().into_iter().flatten() {
        between("/wgdp/lcore,1", name, v);
        fields += 1;
    }
    for (reason, v) in l1["drops"].as_object().into_iter().flatten() {
        between("/wgdp/lcore,1", &format!("drop_{reason}"), v);
        let sum: u64 = doc["lcores"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["drops"][reason].as_u64())
            .sum();
        between("/wgdp/drops", reason, &sum.into());
        fields += 1;
    }
    wgdp.check(fields > 20, || format!("lcore 1 has {fields} counters"));
    wgdp.check(
        after["/wgdp/lcore,1"]["encapsulated"].as_u64() > Some(0),
        || format!("nothing encapsulated on lcore 1\n{}", dump()),
    );

    for port in doc["ports"].as_array().into_iter().flatten() {
        let cmd = format!("/wgdp/port,{}", port["role"].as_str().unwrap_or("?"));
        same(&cmd, "device", &port["device"]);
        for field in [
            "rx_packets",
            "tx_packets",
            "rx_bytes",
            "tx_bytes",
            "rx_missed",
        ] {
            between(&cmd, field, &port[field]);
        }
    }
    for (name, v) in doc["control"].as_object().into_iter().flatten() {
        between("/wgdp/control", name, v);
    }

    same("/wgdp/peers", "total", &n_peers.into());
    let keys: Vec<serde_json::Value> = doc["peers"]
        .as_array()
        .map(|p| p.iter().map(|x| x["public_key"].clone()).collect())
        .unwrap_or_default();
    same("/wgdp/peers", "public_keys", &keys.into());
    let peer = doc["peers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["public_key"] == peer_pub))
        .unwrap_or_else(|| wgdp.fail(&format!("peer not in wgdp show: {doc}")));
    same(&peer_cmd, "endpoint", &peer["endpoint"]);
    same(&peer_cmd, "allowed_ips", &peer["allowed_ips"]);
    same(&peer_cmd, "owner_lcore", &peer["owner_lcore"]);
    for field in ["handshakes", "rx_bytes", "tx_bytes", "latest_handshake"] {
        between(&peer_cmd, field, &peer[field]);
    }
    wgdp.check(after[&peer_cmd]["rx_bytes"].as_u64() > Some(0), || {
        format!("no rx bytes\n{}", dump())
    });
    wgdp.check(before["/wgdp/peer,nosuchkey"].is_null(), || {
        format!("an unknown key must answer null\n{}", dump())
    });
}

/// A plain HTTP/1.1 GET; the whole response.
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::Write as _;
    let mut s = std::net::TcpStream::connect_timeout(&addr, secs(5)).expect("connect to metrics");
    s.set_read_timeout(Some(secs(5))).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
