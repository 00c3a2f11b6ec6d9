//! The namespace testbed shared by the end-to-end tests (`e2e`, `e2e_rss`,
//! `hostile`, `flood`): running commands with a time limit, the topology of
//! `tests/e2e/topology.sh` (any number of peers and workers) torn down when
//! dropped, `wgdp run` with its output collected line by line, the report
//! parsers, ping/iperf3, and `bring_up`, which starts all of it. Each test
//! binary uses a part of it.
#![allow(dead_code)]

pub mod peer;
pub mod seq;
pub mod wire;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const TOPOLOGY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/topology.sh");
pub const TOOLS: &[&str] = &[
    "ip",
    "wg",
    "wireguard-go",
    "ping",
    "iperf3",
    "ethtool",
    "ss",
    "kill",
    "dpdk-telemetry.py",
];
pub const IPERF_PORT: &str = "5201";

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// ---------------------------------------------------------------------------
// Pre-flight: fail with a clear message, never skip.

pub fn preflight() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "the end-to-end test needs root (network namespaces, TAP devices): \
         run it as root, e.g. `sudo -E cargo nextest run -p wgdp --test e2e`"
    );
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| !std::env::split_paths(&path).any(|d| d.join(t).is_file()))
        .collect();
    assert!(
        missing.is_empty(),
        "the end-to-end test needs these tools on PATH, missing: {} \
         (scripts/install.sh --deps-only installs them)",
        missing.join(", ")
    );
    assert!(
        Path::new(TOPOLOGY).is_file(),
        "missing {TOPOLOGY}: the test's topology script"
    );
}

// ---------------------------------------------------------------------------
// Running commands with a time limit.

pub struct Out {
    pub status: Option<ExitStatus>, // None: killed at the time limit
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => writeln!(f, "[{s}]")?,
            None => writeln!(f, "[killed at its time limit]")?,
        }
        writeln!(f, "{}", self.stdout.trim_end())?;
        write!(f, "{}", self.stderr.trim_end())
    }
}

pub fn drain<R: Read + Send + 'static>(r: Option<R>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    })
}

/// Runs `cmd` to completion or kills it (by PID) after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Out {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if start.elapsed() > limit {
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

pub fn netns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// A background process (iperf3 server) killed by PID when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------
// The topology (tests/e2e/topology.sh), torn down when dropped.

pub struct Topology {
    pub sfx: String,
    pub dir: PathBuf,
    /// `E2E_PEERS`: wireguard-go peers (2..8).
    pub peers: usize,
    /// `E2E_WORKERS`: wgdp worker lcores (1 up to the CPUs, 16 at most).
    pub workers: usize,
    pub env: HashMap<String, String>,
    pub is_down: bool,
}

impl Topology {
    pub fn script(&self, sub: &str) -> Command {
        let mut c = Command::new(TOPOLOGY);
        c.arg(sub)
            .env("E2E_SFX", &self.sfx)
            .env("E2E_DIR", &self.dir)
            .env("E2E_PEERS", self.peers.to_string())
            .env("E2E_WORKERS", self.workers.to_string());
        c
    }

    pub fn sh(&self, sub: &str) -> Out {
        run(&mut self.script(sub), secs(60))
    }

    /// `topology.sh up` with `peers` wireguard-go peers and `workers` wgdp
    /// workers: keys, namespaces, wireguard-go peers. The guard exists
    /// before `up` runs, so a half-made topology is torn down too. The test
    /// networks may be in use in the root namespace by another run's wgdp
    /// for a while: waits for them (up to two minutes) rather than
    /// shadowing them.
    pub fn up(sfx: &str, dir: PathBuf, peers: usize, workers: usize) -> Topology {
        let mut t = Topology {
            sfx: sfx.to_string(),
            dir,
            peers,
            workers,
            env: HashMap::new(),
            is_down: false,
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
        t.reload_env();
        t
    }

    pub fn reload_env(&mut self) {
        let env = self.sh("env");
        assert!(env.ok(), "topology.sh env failed:\n{env}");
        self.env = env
            .stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("topology.sh env has no {key}"))
    }

    pub fn down(&mut self) {
        if !self.is_down {
            let out = self.sh("down");
            self.is_down = true;
            assert!(out.ok(), "topology.sh down failed:\n{out}");
        }
    }
}

/// One wireguard-go peer of the topology: peer 2 in wan2, the others in
/// wan.
pub struct TopoPeer {
    /// 1-based, as in the topology's variable names.
    pub index: usize,
    pub ns: String,
    pub ifname: String,
    /// Its tunnel address.
    pub ip: String,
    /// Its UDP port.
    pub port: String,
    pub public_key: String,
}

impl Topology {
    /// Every wireguard-go peer, in order.
    pub fn wg_peers(&self) -> Vec<TopoPeer> {
        (1..=self.peers)
            .map(|i| TopoPeer {
                index: i,
                ns: self
                    .var(if i == 2 { "NS_WAN2" } else { "NS_WAN" })
                    .to_string(),
                ifname: self.var(&format!("WG{i}")).to_string(),
                ip: self.var(&format!("PEER{i}_IP")).to_string(),
                port: self.var(&format!("PEER{i}_PORT")).to_string(),
                public_key: self.var(&format!("PEER{i}_PUB")).to_string(),
            })
            .collect()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        if self.is_down {
            return;
        }
        if thread::panicking() {
            eprintln!("---- topology at the failure ----\n{}", self.sh("status"));
            for i in 1..=self.peers {
                if let Some(name) = self.env.get(&format!("WG{i}")) {
                    let log = fs::read_to_string(self.dir.join(format!("{name}.log")));
                    eprintln!(
                        "---- wireguard-go {name} log ----\n{}",
                        log.unwrap_or_default()
                    );
                }
            }
        }
        let out = self.sh("down");
        self.is_down = true;
        if !out.ok() {
            eprintln!("topology.sh down failed:\n{out}");
        }
    }
}

// ---------------------------------------------------------------------------
// wgdp itself: stdout and stderr collected line by line by reader threads.

#[derive(Default)]
pub struct Lines {
    pub state: Mutex<(Vec<String>, bool)>, // (lines, end of stream)
    pub cv: Condvar,
}

impl Lines {
    pub fn collect<R: Read + Send + 'static>(self: &Arc<Self>, r: R) -> JoinHandle<()> {
        let me = Arc::clone(self);
        thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                me.state.lock().unwrap().0.push(line);
                me.cv.notify_all();
            }
            me.state.lock().unwrap().1 = true;
            me.cv.notify_all();
        })
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.state.lock().unwrap().0.clone()
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().0.len()
    }

    /// The first line at index `from` or later that satisfies `pred`,
    /// waiting at most `limit` for it.
    pub fn wait_for(
        &self,
        from: usize,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + limit;
        let mut st = self.state.lock().unwrap();
        let mut next = from;
        loop {
            if let Some(l) = st.0.iter().skip(next).find(|l| pred(l)) {
                return Some(l.clone());
            }
            next = next.max(st.0.len());
            let now = Instant::now();
            if st.1 || now >= deadline {
                return None;
            }
            st = self.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    pub fn wait_eof(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut st = self.state.lock().unwrap();
        while !st.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
        true
    }
}

pub struct Wgdp {
    pub child: Child,
    pub stdout: Arc<Lines>,
    pub stderr: Arc<Lines>,
    pub dumped: Cell<bool>,
}

/// How a test starts `wgdp run`.
pub struct Launch {
    /// Its `--report-interval`, seconds (`None`: no periodic report).
    pub report_interval: Option<u32>,
    /// `RUST_LOG`.
    pub log: &'static str,
    /// How long it may take to print `wgdp: running` (its table loaded).
    pub ready: Duration,
}

impl Launch {
    /// What most tests use: a report every second, and everything wgdp
    /// can log, so the secrets check sees it all.
    pub const DEFAULT: Launch = Launch {
        report_interval: Some(1),
        log: "trace",
        ready: Duration::from_secs(30),
    };
}

impl Wgdp {
    pub fn start(config: &Path) -> Wgdp {
        Self::launch(config, &Launch::DEFAULT)
    }

    /// `wgdp run` on `config`, as `how` says.
    pub fn launch(config: &Path, how: &Launch) -> Wgdp {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_wgdp"));
        let interval = how.report_interval.map(|s| s.to_string());
        let mut child = Command::new(&bin)
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(
                interval
                    .iter()
                    .flat_map(|s| ["--report-interval", s.as_str()]),
            )
            .env("RUST_LOG", how.log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let stdout = Arc::new(Lines::default());
        let stderr = Arc::new(Lines::default());
        stdout.collect(child.stdout.take().expect("stdout"));
        stderr.collect(child.stderr.take().expect("stderr"));
        Wgdp {
            child,
            stdout,
            stderr,
            dumped: Cell::new(false),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dump(&self) -> String {
        format!(
            "---- wgdp stdout ----\n{}\n---- wgdp stderr ----\n{}\n---- end of wgdp output ----",
            self.stdout.snapshot().join("\n"),
            self.stderr.snapshot().join("\n")
        )
    }

    /// Fails the test with `msg` and everything wgdp printed.
    #[track_caller]
    pub fn fail(&self, msg: &str) -> ! {
        self.dumped.set(true);
        panic!("{msg}\n{}", self.dump());
    }

    #[track_caller]
    pub fn check(&self, cond: bool, msg: impl FnOnce() -> String) {
        if !cond {
            self.fail(&msg());
        }
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for a report line `counter NAME V` printed at line `from` or
    /// later with V >= `at_least`; returns V.
    pub fn wait_counter(
        &self,
        from: usize,
        name: &str,
        at_least: u64,
        limit: Duration,
    ) -> Option<u64> {
        self.stdout
            .wait_for(from, limit, |l| {
                counter_value(l, name).is_some_and(|v| v >= at_least)
            })
            .and_then(|l| counter_value(&l, name))
    }

    /// The latest value of a counter printed so far (0 when never printed).
    pub fn counter_now(&self, name: &str) -> u64 {
        last_counter(&self.stdout.snapshot(), name).unwrap_or(0)
    }

    /// `wgdp show --interface IFNAME --json`, parsed; fails the test (with
    /// wgdp's output) when it fails or prints no JSON.
    pub fn show(&self, ifname: &str) -> serde_json::Value {
        let out = run(
            Command::new(env!("CARGO_BIN_EXE_wgdp")).args([
                "show",
                "--interface",
                ifname,
                "--json",
            ]),
            secs(10),
        );
        self.check(out.ok(), || format!("wgdp show --json:\n{out}"));
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| self.fail(&format!("wgdp show --json is not JSON ({e}):\n{out}")))
    }
}

impl Drop for Wgdp {
    fn drop(&mut self) {
        // SIGTERM first, so that wgdp can release what it holds; SIGKILL
        // after 5 s. Both by PID.
        if self.exited().is_none() {
            let pid = self.pid().to_string();
            let _ = run(Command::new("kill").args(["-TERM", &pid]), secs(5));
            if self.wait_exit(secs(5)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if thread::panicking() && !self.dumped.get() {
            eprintln!("{}", self.dump());
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing wgdp's and the tools' output.

/// `counter NAME VALUE` -> VALUE.
pub fn counter_value(line: &str, name: &str) -> Option<u64> {
    let mut w = line.split_whitespace();
    (w.next() == Some("counter") && w.next() == Some(name))
        .then(|| w.next()?.parse().ok())
        .flatten()
}

pub fn last_counter(lines: &[String], name: &str) -> Option<u64> {
    lines.iter().rev().find_map(|l| counter_value(l, name))
}

/// `port ROLE DEVICE mac MAC` -> MAC.
pub fn port_mac(lines: &[String], role: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.len() >= 5 && w[0] == "port" && w[1] == role && w[3] == "mac")
            .then(|| w[4].to_ascii_lowercase())
    })
}

/// `peer KEY handshakes=N rx_bytes=N tx_bytes=N endpoint=E` -> fields.
pub fn peer_fields(lines: &[String], key: &str) -> Option<HashMap<String, String>> {
    lines.iter().rev().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("peer") && w.next() == Some(key)).then(|| {
            w.filter_map(|f| f.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
    })
}

/// `end.sum_received.bits_per_second` of an iperf3 client's `-J` output.
pub fn iperf_received_bps(json: &str) -> Option<f64> {
    let rest = &json[json.find("\"sum_received\"")?..];
    let rest = &rest[rest.find("\"bits_per_second\"")? + "\"bits_per_second\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `wg show IF latest-handshakes` -> the newest handshake time (0: none).
pub fn latest_handshake(ns: &str, ifname: &str) -> u64 {
    let out = run(
        &mut netns(ns, &["wg", "show", ifname, "latest-handshakes"]),
        secs(5),
    );
    out.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The test.

/// Pings until 3 replies or `deadline_s` seconds: the first echo may be
/// lost while a handshake runs.
pub fn ping(ns: &str, dst: &str, deadline_s: u32) -> Out {
    ping_from(ns, dst, None, deadline_s)
}

/// `ping`, from the source address `from` when given (`-I`).
pub fn ping_from(ns: &str, dst: &str, from: Option<&str>, deadline_s: u32) -> Out {
    let w = deadline_s.to_string();
    let mut args = vec!["ping", "-n", "-c", "3", "-i", "0.2", "-w", &w];
    if let Some(f) = from {
        args.extend(["-I", f]);
    }
    args.push(dst);
    run(&mut netns(ns, &args), secs(u64::from(deadline_s) + 5))
}

/// Starts a one-shot iperf3 server in `ns` on `ip` and waits (up to 5 s)
/// until it listens; `None` if it never does.
pub fn iperf_server(ns: &str, ip: &str) -> Option<Proc> {
    let server = netns(ns, &["iperf3", "-s", "-1", "-B", ip, "-p", IPERF_PORT])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn iperf3 server");
    let server = Proc(server);
    let listening = (0..100).any(|_| {
        let ss = run(
            &mut netns(ns, &["ss", "-Hln", "sport", "=", &format!(":{IPERF_PORT}")]),
            secs(5),
        );
        let up = !ss.stdout.trim().is_empty();
        if !up {
            thread::sleep(Duration::from_millis(50));
        }
        up
    });
    listening.then_some(server)
}

/// iperf3 TCP for `seconds` from `client_ns` to a server in `server_ns` on
/// `server_ip`; the receiver's throughput in bit/s. Fails the test when
/// iperf3 fails.
pub fn iperf(wgdp: &Wgdp, server_ns: &str, server_ip: &str, client_ns: &str, seconds: u32) -> f64 {
    match try_iperf(wgdp, server_ns, server_ip, client_ns, seconds) {
        Ok(bps) => bps,
        Err(out) => wgdp.fail(&format!(
            "iperf3 {client_ns} -> {server_ip} ({server_ns}) failed:\n{out}"
        )),
    }
}

/// [`iperf`], with a failed or hung iperf3 client (its output) an `Err`
/// rather than a test failure: for runs whose throughput is a figure.
pub fn try_iperf(
    wgdp: &Wgdp,
    server_ns: &str,
    server_ip: &str,
    client_ns: &str,
    seconds: u32,
) -> Result<f64, String> {
    let server = iperf_server(server_ns, server_ip);
    wgdp.check(server.is_some(), || {
        format!("iperf3 server in {server_ns} not listening after 5 s")
    });
    let mut server = server.unwrap_or_else(|| unreachable!("checked above"));
    let t = seconds.to_string();
    let client = run(
        &mut netns(
            client_ns,
            &["iperf3", "-c", server_ip, "-p", IPERF_PORT, "-t", &t, "-J"],
        ),
        secs(u64::from(seconds) + 30),
    );
    let bps = iperf_received_bps(&client.stdout);
    // The server exits after its one test (-1); Proc kills it otherwise.
    let deadline = Instant::now() + secs(5);
    while server.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    match bps {
        Some(b) if client.ok() && b > 0.0 => Ok(b),
        _ => Err(client.to_string()),
    }
}

/// Step 1 of both scenarios: topology (topology.sh's default: two peers,
/// one worker), config (with `extra` appended to `[interface]` and `tail`
/// to the file), `wgdp run`, `wgdp: running`, attach. Returns the
/// topology, wgdp, the config's path and the plaintext port's MAC.
pub fn bring_up(tag: char, extra: &str, tail: &str) -> (Topology, Wgdp, PathBuf, String) {
    bring_up_sized(tag, 2, 1, extra, tail)
}

/// `bring_up` with `peers` wireguard-go peers and `workers` wgdp workers.
pub fn bring_up_sized(
    tag: char,
    peers: usize,
    workers: usize,
    extra: &str,
    tail: &str,
) -> (Topology, Wgdp, PathBuf, String) {
    bring_up_with(tag, peers, workers, extra, &|_| tail.to_string())
}

/// `bring_up_sized` with the tail of the config made from the topology
/// once it is up (e.g. from the peers' keys).
pub fn bring_up_with(
    tag: char,
    peers: usize,
    workers: usize,
    extra: &str,
    tail: &dyn Fn(&Topology) -> String,
) -> (Topology, Wgdp, PathBuf, String) {
    bring_up_edited(tag, peers, workers, |topo, text| {
        text.replacen("[interface]\n", &format!("[interface]\n{extra}"), 1) + &tail(topo)
    })
}

/// `bring_up_sized` with the config text topology.sh gives rewritten by
/// `edit` (given the topology too).
pub fn bring_up_edited(
    tag: char,
    peers: usize,
    workers: usize,
    edit: impl FnOnce(&Topology, String) -> String,
) -> (Topology, Wgdp, PathBuf, String) {
    bring_up_launched(tag, peers, workers, &Launch::DEFAULT, edit)
}

/// `bring_up_edited` with wgdp started as `how` says.
pub fn bring_up_launched(
    tag: char,
    peers: usize,
    workers: usize,
    how: &Launch,
    edit: impl FnOnce(&Topology, String) -> String,
) -> (Topology, Wgdp, PathBuf, String) {
    preflight();
    let sfx = format!("{tag}{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("wgdp-e2e-{sfx}"));
    let _ = fs::remove_dir_all(&dir);
    let topo = Topology::up(&sfx, dir.clone(), peers, workers);
    let config = topo.sh("config");
    assert!(config.ok(), "topology.sh config failed:\n{config}");
    let text = edit(&topo, config.stdout);
    let config_path = dir.join("wgdp.toml");
    fs::write(&config_path, &text).expect("write wgdp.toml");
    fs::set_permissions(&config_path, fs::Permissions::from_mode(0o600)).expect("chmod wgdp.toml");

    let mut wgdp = Wgdp::launch(&config_path, how);
    wait_running_within(&mut wgdp, &config_path, &text, how.ready);
    let started = wgdp.stdout.snapshot();
    let pt_mac = port_mac(&started, "plaintext").unwrap_or_else(|| {
        wgdp.fail("no 'port plaintext DEVICE mac MAC' line before 'wgdp: running'")
    });
    wgdp.check(port_mac(&started, "tunnel").is_some(), || {
        "no 'port tunnel DEVICE mac MAC' line before 'wgdp: running'".into()
    });
    let attach = topo.sh("attach");
    wgdp.check(attach.ok(), || {
        format!("topology.sh attach failed:\n{attach}")
    });
    (topo, wgdp, config_path, pt_mac)
}

/// Waits for `wgdp: running`, failing with wgdp's output if it does not come.
pub fn wait_running(wgdp: &mut Wgdp, config_path: &Path, config: &str) {
    wait_running_within(wgdp, config_path, config, Launch::DEFAULT.ready);
}

/// [`wait_running`] for at most `limit`.
pub fn wait_running_within(wgdp: &mut Wgdp, config_path: &Path, config: &str, limit: Duration) {
    let running = wgdp
        .stdout
        .wait_for(0, limit, |l| l.starts_with("wgdp: running"))
        .is_some();
    if !running {
        let why = match wgdp.exited() {
            Some(s) => format!(" (it exited: {s})"),
            None => String::new(),
        };
        // A large table's config is cut short.
        let shown: String = config.chars().take(8192).collect();
        wgdp.fail(&format!(
            "wgdp did not print 'wgdp: running' within {limit:?}{why}; config {}:\n{shown}",
            config_path.display()
        ));
    }
}

pub fn wg_keypair() -> (String, String) {
    let private = run(Command::new("wg").arg("genkey"), secs(5));
    assert!(private.ok(), "wg genkey:\n{private}");
    let mut child = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wg pubkey");
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        private.stdout.as_bytes(),
    )
    .expect("write key");
    let out = child.wait_with_output().expect("wg pubkey output");
    (
        private.stdout.trim().to_string(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// The `wg` tool against wgdp's UAPI socket (the root namespace's).
pub fn wg(args: &[&str]) -> Out {
    run(Command::new("wg").args(args), secs(10))
}

/// `wg show IF dump` peer lines: public key -> fields (psk, endpoint,
/// allowed ips, latest handshake, rx, tx, keepalive).
pub fn wg_dump_peers(ifname: &str) -> HashMap<String, Vec<String>> {
    let out = wg(&["show", ifname, "dump"]);
    assert!(out.ok(), "wg show {ifname} dump:\n{out}");
    out.stdout
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t').map(str::to_string);
            let key = f.next()?;
            Some((key, f.collect()))
        })
        .collect()
}

/// iperf3 UDP at 20 Mbit/s for `seconds` from `client_ns` (from the
/// source address `bind` when given) while `during` runs; what `during`
/// returned, the server's count of lost datagrams and the datagrams sent
/// (`end.sum` of the client's `-J` report). The client is killed (by PID)
/// if `during` panics.
pub fn iperf_udp_loss<T>(
    server_ns: &str,
    server_ip: &str,
    client_ns: &str,
    bind: Option<&str>,
    seconds: u32,
    during: impl FnOnce() -> T,
) -> (T, u64, u64) {
    let _server = iperf_server(server_ns, server_ip)
        .unwrap_or_else(|| panic!("iperf3 server in {server_ns} not listening after 5 s"));
    let t = seconds.to_string();
    let mut args = vec![
        "iperf3", "-c", server_ip, "-p", IPERF_PORT, "-u", "-b", "20M", "-l", "1200", "-t", &t,
        "-J",
    ];
    if let Some(b) = bind {
        args.extend(["-B", b]);
    }
    let mut client = Proc(
        netns(client_ns, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn iperf3 client"),
    );
    let (stdout, stderr) = (drain(client.0.stdout.take()), drain(client.0.stderr.take()));
    let result = during();
    let deadline = Instant::now() + secs(u64::from(seconds) + 30);
    while client.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    drop(client);
    let (json, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let sum = &doc["end"]["sum"];
    match (sum["lost_packets"].as_u64(), sum["packets"].as_u64()) {
        (Some(lost), Some(sent)) => (result, lost, sent),
        _ => panic!("iperf3 UDP gave no loss figures:\n{json}\n{stderr}"),
    }
}

/// Per-worker event counters of `wgdp show --json`, in worker order.
pub fn worker_events(show: &serde_json::Value, event: &str) -> Vec<u64> {
    show["lcores"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| l["events"][event].as_u64().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default()
}

/// Every drop reason's total over the workers of `wgdp show --json`.
pub fn show_drops(show: &serde_json::Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for l in show["lcores"].as_array().into_iter().flatten() {
        for (reason, n) in l["drops"].as_object().into_iter().flatten() {
            *out.entry(reason.clone()).or_insert(0) += n.as_u64().unwrap_or(0);
        }
    }
    out
}

/// Every drop counter (`counter drop.NAME VALUE`, by NAME) of the first
/// complete report wgdp prints from now on: all of one moment, and
/// younger than anything that happened before the call. Fails the test
/// (with wgdp's output) when none comes within 10 s.
pub fn fresh_drops(wgdp: &Wgdp) -> BTreeMap<String, u64> {
    let mark = wgdp.stdout.len();
    let deadline = Instant::now() + secs(10);
    loop {
        let lines = wgdp.stdout.snapshot();
        if let Some(r) = last_complete_report(&lines[mark.min(lines.len())..]) {
            return r
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("drop.")?.to_string(), v)))
                .collect();
        }
        if Instant::now() > deadline {
            wgdp.fail("no complete report within 10 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The drop counters that changed between two readings, by how much
/// (a counter missing from `before` counts from 0).
pub fn drops_changed(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, &v)| {
            let was = before.get(k).copied().unwrap_or(0);
            (v != was).then(|| (k.clone(), v.wrapping_sub(was)))
        })
        .collect()
}

/// The counters of every complete report in `lines`, oldest first: each
/// report another one follows, so that every one of its lines is there
/// and its values are of one reading (reading each counter's latest line
/// instead may mix two reports). The report still being printed is left
/// out.
pub fn complete_reports(lines: &[String]) -> Vec<HashMap<String, u64>> {
    // Every report starts with the same counter: the first one printed.
    let Some(head) = lines
        .iter()
        .find_map(|l| l.strip_prefix("counter "))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
    else {
        return Vec::new();
    };
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| counter_value(l, &head).is_some())
        .map(|(i, _)| i)
        .collect();
    starts
        .windows(2)
        .map(|w| {
            lines[w[0]..w[1]]
                .iter()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next() == Some("counter"))
                        .then(|| Some((w.next()?.to_string(), w.next()?.parse().ok()?)))
                        .flatten()
                })
                .collect()
        })
        .collect()
}

/// The last of [`complete_reports`]; `None` before two reports.
pub fn last_complete_report(lines: &[String]) -> Option<HashMap<String, u64>> {
    complete_reports(lines).pop()
}
