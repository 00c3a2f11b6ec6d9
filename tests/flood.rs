//! A handshake flood at the tunnel port of a running wgdp (namespace
//! testbed, `tests/e2e/topology.sh`), from our own generator: at least
//! 50k initiations/s from spoofed sources (half with a garbage mac1, which
//! the worker's gate drops, half with a valid mac1 for wgdp's key, which
//! would cost a Diffie-Hellman each but under load get a cookie reply from
//! the worker instead), sent as raw frames with `sendmmsg` on an AF_PACKET
//! socket on the kernel end of the tunnel port, while wireguard-go peer 1
//! runs an iperf3 through wgdp and peer 2 handshakes from scratch.
//!
//! Cores (this machine has two): wgdp's control thread runs on CPU 0
//! (`--lcores=0@0,1@1`), its worker lcore on CPU 1; the generator is
//! pinned to CPU 0 beside the control thread, so the worker's core is left
//! to the worker; wireguard-go, iperf3 and the kernel's share of the
//! tunnel float over both. The test prints its figures (`--no-capture`).
//!
//! Run it alone, as root: `cargo nextest run -p wgdp --test flood --no-capture`.

mod netns;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dpdk_sys::rte::BURST_SIZE;
use netns::peer::flood_initiations;
use netns::wire::{if_mac, parse_mac, pin_to_cpu, udp4_frame, RawPort};
use netns::*;

/// Initiations per second the generator sends.
const RATE: u64 = 60_000;
/// Distinct spoofed sources (one per precomputed frame).
const SOURCES: usize = 8192;
/// The spoofed sources' network, blackholed in the wan namespace so that
/// wgdp's cookie replies go nowhere.
const SPOOF_NET: &str = "100.64.0.0/10";
/// CPU the generator runs on (wgdp's control thread shares it).
const GENERATOR_CPU: usize = 0;
/// Seconds of iperf3, unloaded and then under the flood.
const IPERF_SECONDS: u32 = 5;
/// The share of its unloaded throughput peer 1's iperf3 keeps under the
/// flood, at least (see the check).
const MIN_LOADED_SHARE: f64 = 0.5;
/// How far the mac1 drops may be from the garbage frames the worker
/// received (estimated as half the flood frames it received; see the
/// check).
const GARBAGE_TOLERANCE: f64 = 0.02;
/// The share of the initiations handled under load that must get a cookie
/// reply (each should; the margin is for replies the TX path could not
/// send).
const COOKIE_SHARE_MIN: f64 = 0.9;
/// Peer 2's first handshake and ping under the flood, at most: its first
/// initiation may be answered with a cookie, and wireguard-go retries
/// (now with mac2) after REKEY_TIMEOUT, 5 s plus up to 333 ms of jitter.
const NEWCOMER_SECONDS: f64 = 12.0;

/// What the generator did.
struct Sent {
    frames: u64,
    seconds: f64,
}

/// Sends `frames` round-robin at `RATE` per second until `stop`.
fn generate(
    raw: RawPort,
    frames: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> Sent {
    pin_to_cpu(GENERATOR_CPU);
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut next = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * RATE as f64) as u64;
        if due <= sent {
            thread::sleep(Duration::from_micros(200));
            continue;
        }
        let n = ((due - sent) as usize).min(256).min(refs.len() - next);
        let took = raw.send_batch(&refs[next..next + n]);
        if took == 0 {
            // The interface queue is full: let it drain.
            thread::sleep(Duration::from_micros(100));
        }
        sent += took as u64;
        next = (next + took) % refs.len();
        count.store(sent, Ordering::Relaxed);
    }
    Sent {
        frames: sent,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// The flood's frames: `SOURCES` initiations from distinct spoofed
/// addresses and ports, alternately with a garbage and a valid mac1.
fn flood_frames(
    wgdp_public: &str,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    dst: SocketAddrV4,
) -> Vec<Vec<u8>> {
    let valid = flood_initiations(wgdp_public, SOURCES / 2, true);
    let garbage = flood_initiations(wgdp_public, SOURCES / 2, false);
    valid
        .iter()
        .zip(&garbage)
        .flat_map(|(v, g)| [v, g])
        .enumerate()
        .map(|(i, msg)| {
            let i = i as u32;
            let ip = Ipv4Addr::from(0x6440_0000 | (i * 7919 % 0x003f_ffff));
            let src = SocketAddrV4::new(ip, 1024 + (i % 60_000) as u16);
            udp4_frame(dst_mac, src_mac, src, dst, msg)
        })
        .collect()
}

#[test]
fn handshake_flood_degrades_to_cookies_and_real_peers_go_on() {
    // The control thread at the process's priority (`control_nice = 0`):
    // here the worker lcore shares its CPU with it and with the flood's
    // generator, and at its default nice of -10 the control thread's
    // wakeups take that CPU ahead of the worker, which costs the data path
    // 5-10 points of the share this test bounds (docs/testing.md). A
    // deployment runs its workers on CPUs of their own.
    let (topo, mut wgdp, _config, _pt_mac) = bring_up_edited('f', 2, 1, |_, text| {
        text.replacen("[dpdk]\n", "[dpdk]\ncontrol_nice = 0\n", 1)
    });
    let lan = topo.var("NS_LAN").to_string();
    let wan = topo.var("NS_WAN").to_string();
    let wan2 = topo.var("NS_WAN2").to_string();
    let lan_ip = topo.var("LAN_IP").to_string();
    let peer1_ip = topo.var("PEER1_IP").to_string();
    let tap_wan = topo.var("TAP_WAN").to_string();
    let wgdp_ip: Ipv4Addr = topo.var("WGDP_WAN_IP").parse().expect("WGDP_WAN_IP");
    let port: u16 = topo.var("WGDP_PORT").parse().expect("WGDP_PORT");
    let tun_mac = parse_mac(
        &port_mac(&wgdp.stdout.snapshot(), "tunnel").unwrap_or_else(|| wgdp.fail("no tunnel MAC")),
    );
    let hole = run(
        Command::new("ip").args(["-n", &wan, "route", "add", "blackhole", SPOOF_NET]),
        secs(5),
    );
    wgdp.check(hole.ok(), || {
        format!("blackhole {SPOOF_NET} in {wan}:\n{hole}")
    });

    // 1. Peer 1's session, and its throughput without the flood.
    let p = ping(&lan, &peer1_ip, 10);
    wgdp.check(p.ok(), || format!("ping {lan} -> {peer1_ip}:\n{p}"));
    let unloaded = iperf(&wgdp, &lan, &lan_ip, &wan, IPERF_SECONDS);

    // 2. The flood.
    let frames = flood_frames(
        topo.var("WGDP_PUB"),
        tun_mac,
        if_mac(&wan, &tap_wan),
        SocketAddrV4::new(wgdp_ip, port),
    );
    let raw = RawPort::open(&wan, &tap_wan);
    let counters = [
        "event.handshake_under_load",
        "event.cookie_reply_sent",
        "drop.bad_mac1",
        "drop.handshake_queue_full",
        "event.handshake_to_control",
        "event.tunnel_rx",
        "event.decapsulated",
        "control.handshakes_rejected",
        "control.handshakes_rate_limited",
    ];
    // Every counter from one report (reading each counter's latest line
    // may mix two reports, the frames in between counted on one side only).
    let report = |lines: &[String]| -> Vec<u64> {
        let r = last_complete_report(lines).unwrap_or_else(|| wgdp.fail("no complete report"));
        counters
            .iter()
            .map(|c| {
                r.get(*c)
                    .copied()
                    .unwrap_or_else(|| wgdp.fail(&format!("no {c}")))
            })
            .collect()
    };
    let before = report(&wgdp.stdout.snapshot());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let generator = {
        let (stop, count) = (stop.clone(), count.clone());
        thread::spawn(move || generate(raw, frames, stop, count))
    };
    thread::sleep(secs(1));

    // 3. Under the flood: peer 2 handshakes from scratch, peer 1's iperf3.
    let newcomer = {
        let (wan2, lan_ip) = (wan2.clone(), lan_ip.clone());
        thread::spawn(move || {
            let t = Instant::now();
            let p = ping(&wan2, &lan_ip, 30);
            (p, t.elapsed())
        })
    };
    let mark = wgdp.stdout.len();
    // Under the flood iperf3 may not finish at all (its control connection
    // starves): a figure, 0 then.
    let loaded = try_iperf(&wgdp, &lan, &lan_ip, &wan, IPERF_SECONDS).unwrap_or_else(|out| {
        println!("  iperf3 under the flood did not finish:\n{out}");
        0.0
    });
    let (p2, p2_time) = newcomer.join().expect("peer 2 thread");
    // The worker kept receiving: tunnel_rx rose between every two reports.
    let rx_reports: Vec<u64> = wgdp.stdout.snapshot()[mark..]
        .iter()
        .filter_map(|l| counter_value(l, "event.tunnel_rx"))
        .collect();
    stop.store(true, Ordering::Relaxed);
    let sent = generator.join().expect("generator");
    // The counters as of a complete report printed after the flood ended
    // (the control thread, sharing CPU 0 with the generator, may have
    // printed none during it).
    let ended = wgdp.stdout.len();
    let deadline = Instant::now() + secs(15);
    // Two: the counters are read one after the other while frames still
    // arrive (peer 1's last packets), so a frame may be counted in a
    // category read after tunnel_rx was; the next report's tunnel_rx, read
    // after all of them, bounds them all.
    let (after, rx_next) = loop {
        let lines = wgdp.stdout.snapshot();
        if let [.., r, next] = &complete_reports(&lines[ended..])[..] {
            let rx_next = next.get("event.tunnel_rx").copied();
            break (
                r.clone(),
                rx_next.unwrap_or_else(|| wgdp.fail("no event.tunnel_rx")),
            );
        }
        if Instant::now() > deadline {
            wgdp.fail("no complete report within 15 s of the flood's end");
        }
        thread::sleep(Duration::from_millis(100));
    };
    let delta: [u64; 9] = std::array::from_fn(|i| {
        after
            .get(counters[i])
            .copied()
            .unwrap_or_else(|| wgdp.fail(&format!("no {}", counters[i])))
            - before[i]
    });

    let rate = sent.frames as f64 / sent.seconds;
    let ratio = loaded / unloaded;
    let [under_load, cookies, bad_mac1, queue_full, queued, rx, decap, ..] = delta;
    let lost_before_wgdp = sent.frames.saturating_sub(rx.saturating_sub(decap));
    println!("==================== handshake flood ====================");
    println!(
        "  generator (CPU {GENERATOR_CPU}): {} initiations in {:.1} s = {:.0}/s",
        sent.frames, sent.seconds, rate
    );
    println!("  lost in the kernel before wgdp's RX (TAP queue full) ~{lost_before_wgdp}");
    for (c, d) in counters.iter().zip(&delta) {
        println!("  {c:<32} +{d}");
    }
    println!(
        "  iperf3 peer 1 -> lan: unloaded {:.3} Gbit/s, under the flood {:.3} Gbit/s ({:.0} %)",
        unloaded / 1e9,
        loaded / 1e9,
        ratio * 100.0
    );
    println!(
        "  peer 2's first handshake + ping under the flood: {}",
        if p2.ok() {
            format!("{:.1} s", p2_time.as_secs_f64())
        } else {
            format!("not within {:.0} s", p2_time.as_secs_f64())
        }
    );
    println!("  tunnel_rx at each report under the flood: {rx_reports:?}");
    println!("==========================================================");

    wgdp.check(rate >= 50_000.0, || {
        format!("the generator reached only {rate:.0}/s")
    });
    // The workers' gates engaged. Junk: every second frame sent has a
    // garbage mac1, and each that reached the worker is dropped on mac1.
    // The kernel loses frames at the TAP queue before the worker reads
    // them (0.6 % on a quiet machine, 7 % with builds beside), garbage and
    // valid alike, so the garbage that reached it is half the flood frames
    // the worker received (all it received less peer 1's data): bad_mac1
    // within GARBAGE_TOLERANCE of that, and at most every garbage frame
    // sent.
    let garbage = sent.frames / 2;
    let garbage_seen = rx.saturating_sub(decap) as f64 / 2.0;
    wgdp.check(
        bad_mac1 <= garbage
            && (bad_mac1 as f64 - garbage_seen).abs() <= garbage_seen * GARBAGE_TOLERANCE,
        || {
            format!(
                "{bad_mac1} dropped on mac1; {garbage} garbage frames sent, ~{garbage_seen:.0} \
                 received (within {:.0} % expected): {delta:?}",
                GARBAGE_TOLERANCE * 100.0
            )
        },
    );
    // The valid-mac1 half, under load, answered with a cookie (not a
    // Diffie-Hellman): at least COOKIE_SHARE_MIN of those under load.
    wgdp.check(
        under_load > 0 && cookies as f64 >= under_load as f64 * COOKIE_SHARE_MIN,
        || {
            format!(
                "{cookies} cookie replies for {under_load} initiations under load \
                 (at least {:.0} % expected): {delta:?}",
                COOKIE_SHARE_MIN * 100.0
            )
        },
    );
    // The gates keep the flood out of the control thread's queue: it never
    // fills (0 in every recorded run).
    wgdp.check(queue_full == 0, || {
        format!("{queue_full} handshake messages dropped on a full queue: {delta:?}")
    });
    // Every frame the worker received is accounted for, once: dropped on
    // mac1, answered with a cookie, queued for the control thread, counted
    // as a queue drop, or peer 1's data (the rest, ARP and keepalives, is a
    // handful: at most 1 %). More would be double counting, less the
    // frames the readings cut in two: a worker counts a whole RX burst in
    // tunnel_rx before it sorts the frames, so at the first reading up to
    // BURST_SIZE frames may be in tunnel_rx and sorted only after it
    // (19 seen); and the counters of the second are read one after the
    // other while frames still arrive, which the next report's tunnel_rx,
    // read after all of them, covers.
    let accounted = bad_mac1 + cookies + queued + queue_full + decap;
    let rx_by_next = rx_next - (before[5]/* event.tunnel_rx */);
    let most = rx_by_next + BURST_SIZE as u64;
    wgdp.check(accounted >= rx * 99 / 100 && accounted <= most, || {
        format!(
            "{accounted} frames accounted for (dropped, answered, queued or decapsulated) \
             of the {rx} received ({rx_by_next} by the next report; expected 99 % of it \
             to {most}): {delta:?}"
        )
    });
    // The worker kept receiving, and the control thread kept reporting:
    // tunnel_rx rose between every two reports printed under the flood.
    wgdp.check(
        rx_reports.len() >= 2 && rx_reports.windows(2).all(|w| w[1] > w[0]),
        || format!("tunnel_rx did not rise between reports under the flood: {rx_reports:?}"),
    );
    // Peer 2, a new peer, handshakes under the flood: its first initiation
    // earns a cookie, its retry 5 s later carries mac2 and is answered.
    wgdp.check(p2.ok() && p2_time.as_secs_f64() <= NEWCOMER_SECONDS, || {
        format!(
            "peer 2 did not complete its handshake and ping within {NEWCOMER_SECONDS} s under the flood ({:.1} s):\n{p2}",
            p2_time.as_secs_f64()
        )
    });
    // Peer 1's iperf3 under the flood, against the same run's unloaded
    // figure. The target is 90 %; on this 2-CPU machine the
    // generator, the far wireguard-go and both iperf3 ends share the CPU
    // the worker leaves free, and runs give 71-83 % on a quiet machine
    // (docs/testing.md), 32-94 % beside three other builds. Asserted:
    // half, which a regression such as the per-frame signal storm (3-43 %)
    // falls below; a tighter bound needs a quiet machine.
    wgdp.check(ratio >= MIN_LOADED_SHARE, || {
        format!(
            "iperf3 under the flood kept {:.0} % of its unloaded throughput (at least {:.0} % expected)",
            ratio * 100.0,
            MIN_LOADED_SHARE * 100.0
        )
    });
    let alive = wgdp.exited().is_none();
    wgdp.check(alive, || "wgdp exited under the flood".into());
    drop(wgdp);
    drop(topo);
}
