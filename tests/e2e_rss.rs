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
//!   sees no duplicate).
//!
//! Needs root and wireguard-go, wg, ip, ping, iperf3, ethtool: it fails,
//! never skips, when they are missing. Run it alone:
//! `cargo nextest run -p wgdp --test e2e_rss --no-capture`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOPOLOGY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/topology.sh");
const TOOLS: &[&str] = &["ip", "wg", "wireguard-go", "ping", "iperf3", "ethtool"];
const PEERS: usize = 4;
const WORKERS: usize = 2;
/// The test's own UDP streams' first port on the LAN host (one per peer).
const SEQ_PORT: u16 = 7000;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn preflight() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (network namespaces, TAP devices): \
         `sudo -E cargo nextest run -p wgdp --test e2e_rss`"
    );
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing tools: {} (scripts/install.sh --deps-only installs them)",
        missing.join(", ")
    );
}

// ---------------------------------------------------------------------------
// Commands with a time limit.

struct Out {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => writeln!(f, "[{s}]")?,
            None => writeln!(f, "[killed at its time limit]")?,
        }
        write!(f, "{}\n{}", self.stdout.trim_end(), self.stderr.trim_end())
    }
}

fn read_all<R: Read + Send + 'static>(r: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs `cmd` to completion, or kills it (by PID) after `limit`.
fn run(cmd: &mut Command, limit: Duration) -> Out {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let (out, err) = (read_all(child.stdout.take()), read_all(child.stderr.take()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Out {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn netns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// A background process, killed by PID when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------
// The topology with four peers and two workers, torn down when dropped.

struct Topology {
    sfx: String,
    dir: PathBuf,
    env: HashMap<String, String>,
}

impl Topology {
    fn sh(&self, sub: &str) -> Out {
        run(
            Command::new(TOPOLOGY)
                .arg(sub)
                .env("E2E_SFX", &self.sfx)
                .env("E2E_DIR", &self.dir)
                .env("E2E_PEERS", PEERS.to_string())
                .env("E2E_WORKERS", WORKERS.to_string()),
            secs(60),
        )
    }

    /// `topology.sh up`. The test networks may be in use in the root
    /// namespace by another run's wgdp for a while: waits for them (up to
    /// two minutes) rather than shadowing them.
    fn up(sfx: &str, dir: PathBuf) -> Topology {
        let mut t = Topology {
            sfx: sfx.to_owned(),
            dir,
            env: HashMap::new(),
        };
        let deadline = Instant::now() + secs(120);
        loop {
            let up = t.sh("up");
            if up.ok() {
                break;
            }
            let busy = up.stderr.contains("already uses");
            assert!(
                busy && Instant::now() < deadline,
                "topology.sh up failed:\n{up}"
            );
            let down = t.sh("down");
            assert!(down.ok(), "topology.sh down failed:\n{down}");
            thread::sleep(secs(5));
        }
        let env = t.sh("env");
        assert!(env.ok(), "topology.sh env failed:\n{env}");
        t.env = env
            .stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        t
    }

    fn var(&self, key: &str) -> String {
        self.env
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("topology.sh env has no {key}"))
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("---- topology at the failure ----\n{}", self.sh("status"));
        }
        let out = self.sh("down");
        if !out.ok() {
            eprintln!("topology.sh down failed:\n{out}");
        }
    }
}

/// One wireguard-go peer of the topology.
struct Peer {
    ns: String,
    ifname: String,
    ip: String,
    public_key: String,
}

fn peers(t: &Topology) -> Vec<Peer> {
    (1..=PEERS)
        .map(|i| Peer {
            ns: t.var(if i == 2 { "NS_WAN2" } else { "NS_WAN" }),
            ifname: t.var(&format!("WG{i}")),
            ip: t.var(&format!("PEER{i}_IP")),
            public_key: t.var(&format!("PEER{i}_PUB")),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// wgdp, killed (SIGTERM, then SIGKILL) by PID when dropped.

struct Wgdp {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    ifname: String,
}

impl Wgdp {
    fn start(config: &Path, ifname: &str) -> Wgdp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgdp"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wgdp");
        let output = Arc::new(Mutex::new(Vec::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for pipe in pipes {
            let output = Arc::clone(&output);
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    output.lock().expect("output").push(line);
                }
            });
        }
        let w = Wgdp {
            child,
            output,
            ifname: ifname.to_owned(),
        };
        let deadline = Instant::now() + secs(30);
        while !w.printed("wgdp: running") {
            assert!(
                Instant::now() < deadline,
                "wgdp did not print 'wgdp: running' within 30 s"
            );
            thread::sleep(Duration::from_millis(100));
        }
        w
    }

    fn printed(&self, what: &str) -> bool {
        self.output
            .lock()
            .expect("output")
            .iter()
            .any(|l| l.contains(what))
    }

    /// `wgdp show --json`.
    fn show(&self) -> Value {
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_wgdp")).args([
                "show",
                "--interface",
                &self.ifname,
                "--json",
            ]),
            secs(10),
        );
        assert!(out.ok(), "wgdp show --json:\n{out}");
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("wgdp show --json is not JSON ({e}):\n{out}"))
    }
}

impl Drop for Wgdp {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let pid = self.child.id().to_string();
            let _ = run(Command::new("kill").args(["-TERM", &pid]), secs(5));
            let deadline = Instant::now() + secs(10);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if thread::panicking() {
            let lines = self.output.lock().map(|l| l.join("\n")).unwrap_or_default();
            eprintln!("---- wgdp output ----\n{lines}\n---- end of wgdp output ----");
        }
    }
}

// ---------------------------------------------------------------------------
// Reading `wgdp show --json`.

/// Per-worker event counters, in worker order.
fn worker_events(show: &Value, event: &str) -> Vec<u64> {
    show["lcores"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| l["events"][event].as_u64().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

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
// The test's own sequence-numbered UDP stream, from a peer's address to the
// LAN host, with sockets opened inside the namespaces.

/// A UDP socket bound to `bind` in network namespace `ns`.
fn udp_in(ns: &str, bind: SocketAddr) -> UdpSocket {
    let file = File::open(format!("/var/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("open namespace {ns}: {e}"));
    // A thread of its own enters the namespace; the socket stays there.
    thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: a valid namespace file descriptor; only this short-lived
            // thread changes namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
            UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind {bind} in {ns}: {e}"))
        })
        .join()
        .expect("setns thread")
    })
}

/// What the receiver saw.
#[derive(Debug, Default)]
struct SeqReport {
    sent: u64,
    received: u64,
    duplicates: u64,
    /// The longest time without a datagram while the sender ran.
    longest_gap: Duration,
    /// When the last datagram arrived.
    last: Option<Instant>,
}

struct SeqStream {
    stop: Arc<AtomicBool>,
    sender: JoinHandle<u64>,
    receiver: JoinHandle<SeqReport>,
}

impl SeqStream {
    /// `rate` datagrams a second from `from` (in `from_ns`) to port `port`
    /// of the LAN host `to` (in `to_ns`), each carrying its sequence number.
    fn start(from_ns: &str, from: &str, to_ns: &str, to: &str, port: u16, rate: u32) -> SeqStream {
        let dst = SocketAddr::new(to.parse().expect("LAN address"), port);
        let rx = udp_in(to_ns, dst);
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let tx = udp_in(from_ns, format!("{from}:0").parse().expect("peer address"));
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut seen = Vec::<bool>::new();
                let mut r = SeqReport::default();
                let mut buf = [0u8; 2048];
                let mut quiet_since = Instant::now();
                loop {
                    let stopping = stop.load(Ordering::Relaxed);
                    match rx.recv(&mut buf) {
                        Ok(n) if n >= 8 => {
                            let now = Instant::now();
                            r.longest_gap = r.longest_gap.max(now - quiet_since);
                            quiet_since = now;
                            r.last = Some(now);
                            let seq = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                            let i = usize::try_from(seq).expect("seq");
                            if seen.len() <= i {
                                seen.resize(i + 1, false);
                            }
                            if std::mem::replace(&mut seen[i], true) {
                                r.duplicates += 1;
                            } else {
                                r.received += 1;
                            }
                        }
                        Ok(_) => {}
                        // Stopped: what is in flight has 300 ms to arrive.
                        Err(_) if stopping => {
                            if quiet_since.elapsed() > Duration::from_millis(300) {
                                break;
                            }
                        }
                        Err(_) => {
                            let now = Instant::now();
                            r.longest_gap = r.longest_gap.max(now - quiet_since);
                        }
                    }
                }
                r
            })
        };
        let sender = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let start = Instant::now();
                let mut buf = [0u8; 512];
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    buf[..8].copy_from_slice(&seq.to_be_bytes());
                    let _ = tx.send_to(&buf, dst);
                    seq += 1;
                    let due = start + Duration::from_secs_f64(seq as f64 / f64::from(rate));
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
                seq
            })
        };
        SeqStream {
            stop,
            sender,
            receiver,
        }
    }

    /// Stops sending, lets what is in flight arrive, and reports.
    fn finish(self) -> SeqReport {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.sender.join().expect("sender");
        let mut r = self.receiver.join().expect("receiver");
        r.sent = sent;
        r
    }
}

// ---------------------------------------------------------------------------
// Tools.

fn ping(ns: &str, dst: &str, from: Option<&str>) -> Out {
    let mut args = vec!["ping", "-n", "-c", "3", "-i", "0.2", "-w", "10"];
    if let Some(f) = from {
        args.extend(["-I", f]);
    }
    args.push(dst);
    run(&mut netns(ns, &args), secs(15))
}

/// A one-shot iperf3 server in `ns` on `ip`, once it listens.
fn iperf_server(ns: &str, ip: &str) -> Proc {
    let p = Proc(
        netns(ns, &["iperf3", "-s", "-1", "-B", ip, "-p", "5201"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn iperf3 server"),
    );
    let deadline = Instant::now() + secs(5);
    loop {
        let ss = run(
            &mut netns(ns, &["ss", "-Hltn", "sport", "=", ":5201"]),
            secs(5),
        );
        if !ss.stdout.trim().is_empty() {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "iperf3 server in {ns} not listening"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// The test.

#[test]
fn two_workers_own_the_peers_whose_packets_they_receive_and_rehome_roaming_ones() {
    preflight();
    let sfx = format!("r{}", std::process::id() % 100_000);
    let ifname = format!("wgr{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("wgdp-e2e-{sfx}"));
    let _ = fs::remove_dir_all(&dir);
    let topo = Topology::up(&sfx, dir.clone());
    let config = topo.sh("config");
    assert!(config.ok(), "topology.sh config failed:\n{config}");
    let text = config.stdout.replacen(
        "[interface]\n",
        &format!("[interface]\nname = \"{ifname}\"\n"),
        1,
    );
    let config_path = dir.join("wgdp.toml");
    fs::write(&config_path, &text).expect("write wgdp.toml");
    fs::set_permissions(&config_path, fs::Permissions::from_mode(0o600)).expect("chmod");
    let wgdp = Wgdp::start(&config_path, &ifname);
    let attach = topo.sh("attach");
    assert!(attach.ok(), "topology.sh attach failed:\n{attach}");
    let (lan, lan_ip) = (topo.var("NS_LAN"), topo.var("LAN_IP"));
    let peers = peers(&topo);
    assert_eq!(lcore_ids(&wgdp.show()).len(), WORKERS, "two workers");

    // 1. Every peer, both ways (peer 2 has no endpoint: it initiates).
    for (i, p) in peers.iter().enumerate().map(|(i, p)| (i + 1, p)) {
        let out = ping(&p.ns, &lan_ip, Some(&p.ip));
        assert!(out.ok(), "ping peer {i} ({}) -> {lan_ip}:\n{out}", p.ip);
        let back = ping(&lan, &p.ip, None);
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
    let settled = wgdp.show();
    // Plaintext steering: each peer's prefix got a rule or was refused
    // and counted (net_tap here has no tc flower: all refused).
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
    println!("==== steady state, 2 workers, {PEERS} wireguard-go peers ====");
    println!(
        "  re-homed while settling: {} (peers adopted per worker {:?})",
        worker_events(&settled, "peers_adopted").iter().sum::<u64>(),
        worker_events(&settled, "peers_adopted")
    );
    for (i, p) in peers.iter().enumerate().map(|(i, p)| (i + 1, p)) {
        let before = wgdp.show();
        let s = SeqStream::start(&p.ns, &p.ip, &lan, &lan_ip, SEQ_PORT, 1500);
        thread::sleep(Duration::from_millis(1500));
        let r = s.finish();
        let after = wgdp.show();
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
        let s = wgdp.show();
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
    let start = wgdp.show();
    let first_owner = owner(&start, &p1.public_key);
    let replay_before = worker_drops(&start, "replay");
    let adopted_before: u64 = worker_events(&start, "peers_adopted").iter().sum();
    let steering_before = steering(&start);
    let _server = iperf_server(&lan, &lan_ip);
    let client = netns(
        &p1.ns,
        &[
            "iperf3", "-c", &lan_ip, "-p", "5201", "-B", &p1.ip, "-u", "-b", "20M", "-l", "1200",
            "-t", "16", "-J",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn iperf3 client");
    let client = Proc(client);
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
            let s = wgdp.show();
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
    let r = stream.finish();
    let mut client = client;
    let out = {
        let deadline = Instant::now() + secs(30);
        while client.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        let mut s = String::new();
        if let Some(mut o) = client.0.stdout.take() {
            let _ = o.read_to_string(&mut s);
        }
        s
    };
    let json: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("iperf3 -J output is not JSON ({e}):\n{out}"));
    let sum = &json["end"]["sum"];
    let (lost, packets) = (
        sum["lost_packets"].as_u64().unwrap_or(u64::MAX),
        sum["packets"].as_u64().unwrap_or(0),
    );
    let end = wgdp.show();
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
        "iperf3 UDP during roaming: {lost} of {packets} lost:\n{out}"
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
    drop(client);
    drop(wgdp);
    drop(topo);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
