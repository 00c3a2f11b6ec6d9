//! The handshake latency of new peers end to end while a loop runs
//! `wg show IF dump` on a large table (issue #18, item 10), on the
//! namespace testbed (`tests/e2e/topology.sh`) with the real `wgdp run`.
//!
//! The table holds `WGDP_E2E_GET_PEERS` peers (default 2000; the figures
//! in docs/scale.md are at 100000, release build): topology.sh's two, 200
//! of the test's own (`tests/netns/peer.rs`'s protocol-crate initiators,
//! no endpoint configured) and the rest with random keys and an endpoint
//! each, as `scripts/bench-scale.sh` writes them. From a UDP socket in the
//! wan namespace, 100 of the test's peers make their first handshake, one
//! at a time, 20 ms apart: each is timed from sending its initiation to
//! receiving wgdp's response (which it checks), so the time covers the
//! tunnel port, the worker's gate, the control thread's queue and
//! handshake, and the way back. Then the other 100, while another thread
//! runs Debian's `wg show IF dump` over the UAPI socket in a loop (each
//! dump checked to list every peer). p50 and p99 of both rounds are
//! printed, and the control thread's neighbour probes and unresolved drops
//! during each (`wgdp show`, read between the rounds); the test asserts
//! that every handshake completed with a valid response and that the
//! dumps ran and were whole, never a time; and that wgdp's control thread
//! runs at nice -10 (`dpdk.control_nice`'s default) and the UAPI socket's
//! thread, which renders the dumps, at 10.
//!
//! wgdp runs without the periodic report (`--report-interval`, which
//! snapshots every peer each second) and logs at `info`. Needs root and
//! wireguard-go, wg, ip: it fails, never skips, when they are missing.
//!
//! ```sh
//! WGDP_E2E_GET_PEERS=100000 cargo test --release --test e2e_get_latency -- --nocapture
//! ```

mod netns;

use std::fmt::Write as _;
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use netns::peer::{decode_key, identity};
use netns::wire::udp_socket;
use netns::*;
use protocol::crypto::PublicKey;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use rand_core::{OsRng, RngCore};

/// Handshakes timed per round (each a new peer's first).
const MEASURED: usize = 100;
/// Between two handshakes.
const SPACING: Duration = Duration::from_millis(20);
/// The table's size unless `WGDP_E2E_GET_PEERS` says otherwise.
const DEFAULT_PEERS: usize = 2000;
/// The test's initiators' UDP port in the wan namespace.
const INITIATOR_PORT: u16 = 40_100;

/// The table's tail: the test's peers (`measured`, base64 public keys; no
/// endpoint: they initiate) and `fillers` peers with random keys, a /32
/// from 100.64.0.0/10 and an endpoint each.
fn table_tail(measured: &[String], fillers: usize) -> String {
    let mut tail = String::with_capacity((measured.len() + fillers) * 140);
    for (i, public) in measured.iter().enumerate() {
        let _ = write!(
            tail,
            "\n[[peers]]\npublic_key = \"{public}\"\nallowed_ips = [\"100.127.{}.{}/32\"]\n",
            i / 256,
            i % 256
        );
    }
    for i in 0..fillers {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        let _ = write!(
            tail,
            "\n[[peers]]\npublic_key = \"{}\"\nendpoint = \"198.18.{}.{}:51820\"\nallowed_ips = [\"100.{}.{}.{}/32\"]\n",
            conf::encode_key(&key),
            (i / 256) % 256,
            i % 256,
            64 + i / 65536,
            (i / 256) % 256,
            i % 256
        );
    }
    tail
}

/// One new peer's first handshake with wgdp at `wgdp`: the time from
/// sending its initiation (sender index `index`) to receiving wgdp's
/// response to it, which must authenticate.
fn first_handshake(
    socket: &UdpSocket,
    id: &StaticIdentity,
    wgdp_public: &PublicKey,
    wgdp: SocketAddrV4,
    index: u32,
) -> Result<Duration, String> {
    let mut hs = PeerHandshake::new(*wgdp_public, None);
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let init = hs
        .create_initiation(
            id,
            index,
            Tai64N::from_unix(since),
            Instant::ZERO,
            &mut OsRng,
        )
        .map_err(|e| format!("initiation {index}: {e:?}"))?;
    let sent = WallInstant::now();
    socket
        .send_to(&init, wgdp)
        .map_err(|e| format!("send initiation {index}: {e}"))?;
    let mut buf = [0u8; 2048];
    loop {
        let (n, _) = socket
            .recv_from(&mut buf)
            .map_err(|e| format!("no response to initiation {index}: {e}"))?;
        let took = sent.elapsed();
        let msg = &buf[..n];
        match msg.first() {
            // A response (type 2) names our sender index as its receiver.
            Some(2) if msg.get(8..12) == Some(&index.to_le_bytes()[..]) => {
                hs.consume_response(id, msg, Instant::ZERO)
                    .map_err(|e| format!("response to {index} does not authenticate: {e:?}"))?;
                return Ok(took);
            }
            Some(3) => return Err(format!("initiation {index} answered with a cookie reply")),
            // Anything else (a late answer to an earlier one): not ours.
            _ => {}
        }
    }
}

/// Times the first handshakes of `ids` (sender indexes from `first`),
/// `SPACING` apart; sorted.
fn round(
    socket: &UdpSocket,
    ids: &[StaticIdentity],
    wgdp_public: &PublicKey,
    wgdp: SocketAddrV4,
    first: u32,
) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        times.push(first_handshake(
            socket,
            id,
            wgdp_public,
            wgdp,
            first + i as u32,
        )?);
        thread::sleep(SPACING);
    }
    times.sort();
    Ok(times)
}

/// The `q`th percentile of sorted times.
fn pct(sorted: &[Duration], q: usize) -> Duration {
    sorted[(sorted.len() * q / 100).min(sorted.len() - 1)]
}

/// The control thread's neighbour counters (`wgdp show`): probes sent,
/// frames dropped unresolved. Read between the rounds, to tell a tail
/// that waited for ARP from one that waited for the CPU.
fn neighbour_counters(wgdp: &Wgdp, ifname: &str) -> [u64; 2] {
    let show = wgdp.show(ifname);
    ["neighbour_probes", "unresolved_drops"].map(|k| {
        show["control"][k]
            .as_u64()
            .unwrap_or_else(|| wgdp.fail(&format!("no control.{k}")))
    })
}

/// `wg show IF dump`: the number of peers it listed, or why it failed.
fn dump_peers(ifname: &str) -> Result<usize, String> {
    let out = run(
        std::process::Command::new("wg").args(["show", ifname, "dump"]),
        secs(120),
    );
    if !out.ok() {
        return Err(format!("wg show {ifname} dump:\n{out}"));
    }
    // The interface's line, then one per peer.
    Ok(out.stdout.lines().count().saturating_sub(1))
}

/// The nice value of each of `pid`'s threads, by thread id: field 19 of
/// `/proc/PID/task/TID/stat`, with the thread's name.
fn thread_nices(pid: u32) -> Vec<(u32, String, i32)> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let tid: u32 = entry
            .expect("task")
            .file_name()
            .to_string_lossy()
            .parse()
            .expect("tid");
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let (open, close) = (stat.find('(').expect("("), stat.rfind(')').expect(")"));
        // Fields from the 3rd (state) on: the 19th is the 17th of these.
        let nice = stat[close + 2..].split(' ').nth(16).expect("nice");
        threads.push((
            tid,
            stat[open + 1..close].to_owned(),
            nice.parse().expect("nice"),
        ));
    }
    threads
}

#[test]
fn new_peers_handshake_end_to_end_while_wg_show_dump_loops() {
    let total: usize = std::env::var("WGDP_E2E_GET_PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PEERS)
        .max(2 + 2 * MEASURED);
    let (ids, publics): (Vec<StaticIdentity>, Vec<String>) =
        (0..2 * MEASURED).map(|_| identity()).unzip();
    let fillers = total - 2 - ids.len();
    let ifname = format!("wgl{}", std::process::id() % 100_000);
    let how = Launch {
        report_interval: None,
        log: "info",
        ready: secs(300),
    };
    let tail = table_tail(&publics, fillers);
    let (topo, mut wgdp, _config, _pt_mac) = bring_up_launched('g', 2, 1, &how, |_, text| {
        text.replacen(
            "[interface]\n",
            &format!("[interface]\nname = \"{ifname}\"\n"),
            1,
        ) + &tail
    });
    drop(tail);
    let wan = topo.var("NS_WAN").to_string();
    let wan_ip = topo.var("WAN_IP").parse().expect("WAN_IP");
    let wgdp_ip = topo.var("WGDP_WAN_IP").parse().expect("WGDP_WAN_IP");
    let port: u16 = topo.var("WGDP_PORT").parse().expect("WGDP_PORT");
    let wgdp_ep = SocketAddrV4::new(wgdp_ip, port);
    let wgdp_public = PublicKey::from_bytes(decode_key(topo.var("WGDP_PUB")));

    // The whole table is in and the UAPI socket answers.
    let listed = dump_peers(&ifname);
    wgdp.check(listed == Ok(total), || {
        format!("the first dump listed {listed:?} peers, not {total}")
    });

    // The control thread (the process's main thread: the main lcore's)
    // runs ahead of the UAPI socket's, which renders the dumps
    // (`dpdk.control_nice`'s default -10; the helper 10 below the
    // process's).
    let nices = thread_nices(wgdp.pid());
    let nice_of = |want: &dyn Fn(u32, &str) -> bool| {
        nices
            .iter()
            .filter(|(tid, name, _)| want(*tid, name))
            .map(|t| t.2)
            .collect::<Vec<_>>()
    };
    let (control, uapi) = (
        nice_of(&|tid, _| tid == wgdp.pid()),
        nice_of(&|_, name| name == "wgdp-uapi"),
    );
    // wgdp started at this process's nice.
    let ours = thread_nices(std::process::id())
        .into_iter()
        .find(|t| t.0 == std::process::id())
        .expect("our main thread")
        .2;
    let helper = (ours + 10).min(19);
    wgdp.check(control == [-10] && uapi == [helper], || {
        format!("control thread nice {control:?}, UAPI thread nice {uapi:?}, not [-10], [{helper}]: {nices:?}")
    });

    let socket = udp_socket(&wan, SocketAddrV4::new(wan_ip, INITIATOR_PORT));
    socket
        .set_read_timeout(Some(secs(10)))
        .expect("read timeout");
    let (quiet_ids, loaded_ids) = ids.split_at(MEASURED);
    let before = neighbour_counters(&wgdp, &ifname);
    let quiet = round(&socket, quiet_ids, &wgdp_public, wgdp_ep, 1);
    let between = neighbour_counters(&wgdp, &ifname);
    let quiet = quiet.unwrap_or_else(|e| wgdp.fail(&format!("without the dump loop: {e}")));

    // The same for the other peers while `wg show dump` loops.
    let looping = Arc::new(AtomicBool::new(true));
    let dumper = {
        let (looping, ifname) = (looping.clone(), ifname.clone());
        thread::spawn(move || -> Result<(usize, Duration), String> {
            let start = WallInstant::now();
            let mut dumps = 0;
            while looping.load(Ordering::Relaxed) {
                let listed = dump_peers(&ifname)?;
                if listed != total {
                    return Err(format!("a dump listed {listed} peers, not {total}"));
                }
                dumps += 1;
            }
            Ok((dumps, start.elapsed()))
        })
    };
    // Let the loop start.
    thread::sleep(Duration::from_millis(200));
    let loaded = round(
        &socket,
        loaded_ids,
        &wgdp_public,
        wgdp_ep,
        1 + MEASURED as u32,
    );
    looping.store(false, Ordering::Relaxed);
    let dumped = dumper.join().expect("dump loop");
    let loaded = loaded.unwrap_or_else(|e| wgdp.fail(&format!("with the dump loop: {e}")));
    let (dumps, dumping) = dumped.unwrap_or_else(|e| wgdp.fail(&e));
    let after = neighbour_counters(&wgdp, &ifname);
    println!(
        "neighbour probes, unresolved drops: {:?} during the first round, {:?} during the second",
        [between[0] - before[0], between[1] - before[1]],
        [after[0] - between[0], after[1] - between[1]]
    );
    println!(
        "e2e get latency, {total} peers: handshake p50 {:?} p99 {:?} without the dump loop; \
         p50 {:?} p99 {:?} with it ({dumps} dumps in {dumping:?}, {:?} each)",
        pct(&quiet, 50),
        pct(&quiet, 99),
        pct(&loaded, 50),
        pct(&loaded, 99),
        dumping / dumps.max(1) as u32
    );
    assert_eq!((quiet.len(), loaded.len()), (MEASURED, MEASURED));
    wgdp.check(dumps >= 1, || "no dump completed during the round".into());
    let alive = wgdp.exited().is_none();
    wgdp.check(alive, || "wgdp exited".into());
    drop(wgdp);
    drop(topo);
}
