//! Interoperability with a real WireGuard: Debian's `wireguard-go` in a
//! network namespace, reached over a veth pair, driven from this crate over
//! an ordinary UDP socket.
//!
//! Phases, all against one wireguard-go peer:
//! 1. we initiate; an ICMP echo request we build goes through the tunnel to
//!    wireguard-go's TUN address and its kernel's echo reply comes back;
//! 2. wireguard-go's side sends us a UDP datagram (data the other way);
//! 3. a second handshake on the same peer, and traffic on the new keys;
//! 4. the peer is re-created in wireguard-go so that it has no session and
//!    initiates itself when its side sends us a datagram: we respond, the
//!    first data message confirms our `next` keypair, then an echo both ways.
//!
//! Needs root, `wireguard-go`, `wg` and `ip`; fails (never skips) without
//! them. Everything it creates is removed by a Drop guard.

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::cookie::{CookieChecker, MacVerdict};
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::messages::{padded_len, Message, DATA_HEADER_LEN};
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::ratelimit::RateLimiter;
use protocol::session::Session;
use protocol::time::{Instant, Tai64N};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Bound on every wait.
const TIMEOUT: Duration = Duration::from_secs(10);
const WG_PORT: u16 = 51820;
const MTU: usize = 1420;

// ---------------------------------------------------------------- helpers

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// Runs a command to completion (bounded by TIMEOUT), asserting success;
/// returns its standard output.
fn run(tool: &Path, args: &[&str]) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {} {:?}: {e}", tool.display(), args));
    let start = std::time::Instant::now();
    while child.try_wait().expect("waiting for a command").is_none() {
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {:?} did not finish within {TIMEOUT:?}",
                tool.display(),
                args
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().expect("command output");
    assert!(
        out.status.success(),
        "{} {:?} failed: {}",
        tool.display(),
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Internet checksum (RFC 1071).
fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        let word = (pair[0] as u32) << 8 | *pair.get(1).unwrap_or(&0) as u32;
        sum += word;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet carrying an ICMP echo request (type 8) or reply (type 0).
fn icmp_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    icmp_type: u8,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[8] = 64; // TTL
    p[9] = 1; // ICMP
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = icmp_type;
    p[24..26].copy_from_slice(&id.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    p[28..].copy_from_slice(payload);
    let c = checksum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

/// A parsed ICMP echo: (src, dst, type, id, seq, payload), checksums verified.
type Echo = (Ipv4Addr, Ipv4Addr, u8, u16, u16, Vec<u8>);

fn parse_icmp(padded: &[u8]) -> Option<Echo> {
    if padded.len() < 28 || padded[0] != 0x45 || padded[9] != 1 {
        return None;
    }
    let total = u16::from_be_bytes([padded[2], padded[3]]) as usize;
    if total > padded.len() || total < 28 {
        return None;
    }
    let p = &padded[..total];
    assert_eq!(checksum(&p[..20]), 0, "IPv4 header checksum");
    assert_eq!(checksum(&p[20..]), 0, "ICMP checksum");
    let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    Some((
        ip(12),
        ip(16),
        p[20],
        u16::from_be_bytes([p[24], p[25]]),
        u16::from_be_bytes([p[26], p[27]]),
        p[28..].to_vec(),
    ))
}

// --------------------------------------------------------------- topology

/// The namespace, veth pair, wireguard-go process and key file of one run;
/// all removed on drop, even when the test fails.
struct Testbed {
    ip: PathBuf,
    wg: PathBuf,
    ns: String,
    veth: String,
    wg_if: String,
    key_file: PathBuf,
    /// wireguard-go's verbose log, shown if the test fails.
    log_file: PathBuf,
    child: Option<Child>,
    /// Our veth address, wireguard-go's veth address, our tunnel address,
    /// wireguard-go's tunnel address.
    our_udp: Ipv4Addr,
    their_udp: Ipv4Addr,
    our_tun: Ipv4Addr,
    their_tun: Ipv4Addr,
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything else still running in our namespace (a ping we started).
        if let Ok(out) = Command::new(&self.ip)
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new(&self.ip)
            .args(["netns", "del", &self.ns])
            .status();
        let _ = Command::new(&self.ip)
            .args(["link", "del", &self.veth])
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_file(&self.key_file);
        if std::thread::panicking() {
            let log = fs::read_to_string(&self.log_file).unwrap_or_default();
            eprintln!("--- wireguard-go log ---\n{log}");
        }
        let _ = fs::remove_file(&self.log_file);
        let _ = fs::remove_file(format!("/var/run/wireguard/{}.sock", self.wg_if));
    }
}

impl Testbed {
    fn ns_exec(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.ns];
        full.extend_from_slice(args);
        run(&self.ip, &full)
    }

    fn wg_set(&self, args: &[&str]) {
        let wg = self.wg.to_string_lossy().into_owned();
        let mut full = vec![wg.as_str(), "set", self.wg_if.as_str()];
        full.extend_from_slice(args);
        self.ns_exec(&full);
    }

    fn start(wireguard_go_private: &[u8; 32]) -> Testbed {
        let missing: Vec<&str> = ["wireguard-go", "wg", "ip"]
            .into_iter()
            .filter(|t| find_tool(t).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "interop test needs {missing:?}: run the project's install script \
             (scripts/install.sh --deps-only, as root) to install wireguard-go, wireguard-tools and iproute2"
        );
        let uid = run(Path::new("/usr/bin/id"), &["-u"]);
        assert_eq!(
            uid.trim(),
            "0",
            "interop test must run as root (it creates a network namespace and a veth pair)"
        );
        let pid = std::process::id();
        let octet = (pid % 250) as u8;
        let mut tb = Testbed {
            ip: find_tool("ip").expect("checked"),
            wg: find_tool("wg").expect("checked"),
            ns: format!("wgdp-interop-{pid}"),
            veth: format!("wgdpv{}", pid % 10_000_000),
            wg_if: format!("wgi{}", pid % 10_000_000),
            key_file: std::env::temp_dir().join(format!("wgdp-interop-{pid}.key")),
            log_file: std::env::temp_dir().join(format!("wgdp-interop-{pid}.log")),
            child: None,
            our_udp: Ipv4Addr::new(10, 213, octet, 1),
            their_udp: Ipv4Addr::new(10, 213, octet, 2),
            our_tun: Ipv4Addr::new(10, 213, octet, 5),
            their_tun: Ipv4Addr::new(10, 213, octet, 6),
        };
        let peer_end = format!("wgdpp{}", pid % 10_000_000);
        let ip = tb.ip.clone();
        let ns = tb.ns.clone();
        run(&ip, &["netns", "add", &ns]);
        run(
            &ip,
            &[
                "link", "add", &tb.veth, "type", "veth", "peer", "name", &peer_end,
            ],
        );
        run(&ip, &["link", "set", &peer_end, "netns", &ns]);
        run(
            &ip,
            &[
                "addr",
                "add",
                &format!("{}/30", tb.our_udp),
                "dev",
                &tb.veth,
            ],
        );
        run(&ip, &["link", "set", &tb.veth, "up"]);
        run(
            &ip,
            &[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/30", tb.their_udp),
                "dev",
                &peer_end,
            ],
        );
        run(&ip, &["-n", &ns, "link", "set", &peer_end, "up"]);
        run(&ip, &["-n", &ns, "link", "set", "lo", "up"]);

        fs::write(&tb.key_file, format!("{}\n", base64(wireguard_go_private))).expect("key file");
        fs::set_permissions(&tb.key_file, fs::Permissions::from_mode(0o600)).expect("chmod");

        let wg_go = find_tool("wireguard-go").expect("checked");
        let child = Command::new(&ip)
            .args(["netns", "exec", &ns])
            .arg(&wg_go)
            .args(["-f", &tb.wg_if])
            .env("WG_PROCESS_FOREGROUND", "1")
            .env("LOG_LEVEL", "verbose")
            .stdin(Stdio::null())
            .stdout(fs::File::create(&tb.log_file).expect("wireguard-go log file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn wireguard-go");
        tb.child = Some(child);
        let sock = PathBuf::from(format!("/var/run/wireguard/{}.sock", tb.wg_if));
        wait_for("wireguard-go's UAPI socket", || sock.exists());
        let wg_if = tb.wg_if.clone();
        wait_for("wireguard-go's interface", || {
            Command::new(&ip)
                .args(["-n", &ns, "link", "show", &wg_if])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        run(
            &ip,
            &[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/30", tb.their_tun),
                "dev",
                &wg_if,
            ],
        );
        run(&ip, &["-n", &ns, "link", "set", &wg_if, "up"]);
        tb
    }

    fn configure_peer(&self, our_public: &PublicKey, our_port: u16) {
        let key_file = self.key_file.to_string_lossy().into_owned();
        self.wg_set(&[
            "private-key",
            &key_file,
            "listen-port",
            &WG_PORT.to_string(),
            "peer",
            &base64(our_public.as_bytes()),
            "endpoint",
            &format!("{}:{our_port}", self.our_udp),
            "allowed-ips",
            &format!("{}/32", self.our_tun),
        ]);
    }

    fn remove_peer(&self, our_public: &PublicKey) {
        self.wg_set(&["peer", &base64(our_public.as_bytes()), "remove"]);
    }

    /// Sends one UDP datagram from wireguard-go's namespace to
    /// `dst:port` through its interface (bash's `/dev/udp`; no extra tool).
    fn send_udp_from_ns(&self, dst: Ipv4Addr, port: u16, payload: &str) {
        self.ns_exec(&[
            "bash",
            "-c",
            &format!("printf '%s' '{payload}' > /dev/udp/{dst}/{port}"),
        ]);
    }
}

// ------------------------------------------------------------- our side

/// Our side: this crate's handshake, cookie checker and session for one
/// peer, over a std UDP socket, with real time mapped to `Instant`.
struct Us {
    socket: UdpSocket,
    peer_addr: SocketAddr,
    identity: StaticIdentity,
    checker: CookieChecker,
    limiter: RateLimiter,
    hs: PeerHandshake,
    session: Session,
    rng: ChaCha20Rng,
    epoch: std::time::Instant,
    next_index: u32,
}

/// What a received datagram turned out to be.
#[derive(Debug)]
enum Event {
    /// A handshake message was answered (or consumed).
    Handshake,
    /// Our initiation got its response: the session is current.
    SessionReady,
    Keepalive,
    Data(Vec<u8>),
}

impl Us {
    fn now(&self) -> Instant {
        Instant::from_duration(self.epoch.elapsed())
    }

    fn timestamp() -> Tai64N {
        Tai64N::from_unix(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970"),
        )
    }

    fn alloc_index(&mut self) -> u32 {
        self.next_index = self.next_index.wrapping_add(0x100);
        self.next_index
    }

    fn send_initiation(&mut self) {
        let now = self.now();
        let index = self.alloc_index();
        let msg = self
            .hs
            .create_initiation(&self.identity, index, Self::timestamp(), now, &mut self.rng)
            .expect("initiation");
        self.socket
            .send_to(&msg, self.peer_addr)
            .expect("send initiation");
    }

    fn send_data(&mut self, payload: &[u8]) {
        let now = self.now();
        let padded = padded_len(payload.len(), MTU);
        let mut msg = vec![0u8; DATA_HEADER_LEN + padded + 16];
        msg[DATA_HEADER_LEN..DATA_HEADER_LEN + payload.len()].copy_from_slice(payload);
        self.session.seal_message(now, &mut msg).expect("seal");
        self.socket
            .send_to(&msg, self.peer_addr)
            .expect("send data");
    }

    /// Receives and processes one datagram (bounded wait).
    fn receive(&mut self) -> Option<Event> {
        let mut buf = [0u8; 2048];
        let (len, src) = match self.socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(e) => panic!("recv: {e}"),
        };
        assert_eq!(src, self.peer_addr, "datagram from an unexpected source");
        let now = self.now();
        let packet = &mut buf[..len];
        match Message::parse(packet).expect("wireguard-go sends valid messages") {
            Message::Initiation(_) => {
                let verdict = self
                    .checker
                    .verify(packet, src, false, now, &mut self.rng, &mut self.limiter)
                    .expect("mac1");
                assert_eq!(verdict, MacVerdict::Accept);
                let pending = self
                    .identity
                    .open_initiation(packet)
                    .expect("open initiation");
                assert_eq!(
                    pending.remote_static(),
                    self.hs.remote_static(),
                    "peer lookup"
                );
                self.hs
                    .consume_initiation(pending, now)
                    .expect("consume initiation");
                let index = self.alloc_index();
                let (response, keypair) = self
                    .hs
                    .create_response(index, now, &mut self.rng)
                    .expect("response");
                self.session.install(Box::new(keypair));
                self.socket.send_to(&response, src).expect("send response");
                Some(Event::Handshake)
            }
            Message::Response(_) => {
                let verdict = self
                    .checker
                    .verify(packet, src, false, now, &mut self.rng, &mut self.limiter)
                    .expect("mac1");
                assert_eq!(verdict, MacVerdict::Accept);
                let keypair = self
                    .hs
                    .consume_response(&self.identity, packet, now)
                    .expect("consume response");
                self.session.install(Box::new(keypair));
                Some(Event::SessionReady)
            }
            Message::CookieReply(_) => {
                self.hs.consume_cookie_reply(packet, now).expect("cookie");
                Some(Event::Handshake)
            }
            Message::Data(_) => {
                let received = self.session.open_message(now, packet).expect("open data");
                if received.plaintext.is_empty() {
                    Some(Event::Keepalive)
                } else {
                    Some(Event::Data(received.plaintext.to_vec()))
                }
            }
        }
    }

    /// Processes datagrams until `pred` accepts an event (bounded).
    fn until(&mut self, what: &str, mut pred: impl FnMut(&mut Us, &Event) -> bool) {
        let start = std::time::Instant::now();
        loop {
            assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
            if let Some(ev) = self.receive() {
                if pred(self, &ev) {
                    return;
                }
            }
        }
    }
}

/// Answers echo requests addressed to us; returns whether `ev` was one.
fn answer_echo(us: &mut Us, ev: &Event, our_tun: Ipv4Addr) -> bool {
    if let Event::Data(p) = ev {
        if let Some((src, dst, 8, id, seq, payload)) = parse_icmp(p) {
            assert_eq!(dst, our_tun);
            let reply = icmp_packet(dst, src, 0, id, seq, &payload);
            us.send_data(&reply);
            return true;
        }
    }
    false
}

/// Sends an echo request through the tunnel and waits for the reply.
fn ping_through(us: &mut Us, tb: &Testbed, seq: u16) {
    let payload: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(seq as u8)).collect();
    let request = icmp_packet(tb.our_tun, tb.their_tun, 8, 0x5744, seq, &payload);
    us.send_data(&request);
    let their_tun = tb.their_tun;
    let our_tun = tb.our_tun;
    us.until("the ICMP echo reply", |us, ev| {
        if answer_echo(us, ev, our_tun) {
            return false;
        }
        match ev {
            Event::Data(p) => {
                let (src, dst, ty, id, s, body) = parse_icmp(p).expect("an ICMP packet");
                assert_eq!((src, dst, ty, id, s), (their_tun, our_tun, 0, 0x5744, seq));
                assert_eq!(body, payload);
                true
            }
            _ => false,
        }
    });
}

/// An IPv4 UDP datagram: (src, dst, dst port, payload), checksums verified.
fn parse_udp(padded: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u16, Vec<u8>)> {
    if padded.len() < 28 || padded[0] != 0x45 || padded[9] != 17 {
        return None;
    }
    let total = u16::from_be_bytes([padded[2], padded[3]]) as usize;
    if total > padded.len() || total < 28 {
        return None;
    }
    let p = &padded[..total];
    assert_eq!(checksum(&p[..20]), 0, "IPv4 header checksum");
    let udp = &p[20..];
    assert_eq!(
        u16::from_be_bytes([udp[4], udp[5]]) as usize,
        udp.len(),
        "UDP length"
    );
    if udp[6..8] != [0, 0] {
        let mut pseudo = Vec::with_capacity(12 + udp.len());
        pseudo.extend_from_slice(&p[12..20]);
        pseudo.extend_from_slice(&[0, 17]);
        pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(udp);
        assert_eq!(checksum(&pseudo), 0, "UDP checksum");
    }
    let ip = |o: usize| Ipv4Addr::new(p[o], p[o + 1], p[o + 2], p[o + 3]);
    Some((
        ip(12),
        ip(16),
        u16::from_be_bytes([udp[2], udp[3]]),
        udp[8..].to_vec(),
    ))
}

/// Has wireguard-go's side send a UDP datagram to our tunnel address and
/// waits until it arrives through the tunnel (answering anything else).
fn datagram_from_them(us: &mut Us, tb: &Testbed, payload: &str) {
    tb.send_udp_from_ns(tb.our_tun, 9999, payload);
    let (our_tun, their_tun) = (tb.our_tun, tb.their_tun);
    us.until("wireguard-go's UDP datagram", |us, ev| {
        if answer_echo(us, ev, our_tun) {
            return false;
        }
        match ev {
            Event::Data(p) => {
                let (src, dst, port, body) = parse_udp(p).expect("a UDP datagram");
                assert_eq!((src, dst, port), (their_tun, our_tun, 9999));
                assert_eq!(body, payload.as_bytes());
                true
            }
            _ => false,
        }
    });
}

#[test]
fn interop_with_wireguard_go() {
    let their_private = [0x42u8; 32];
    let their_public = PrivateKey::from_bytes(their_private).public_key();
    let tb = Testbed::start(&their_private);

    let socket =
        UdpSocket::bind(SocketAddr::from((tb.our_udp, 0))).expect("bind on our veth address");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let our_port = socket.local_addr().expect("addr").port();
    let mut rng = ChaCha20Rng::seed_from_u64(std::process::id() as u64);
    let identity = StaticIdentity::new(PrivateKey::generate(&mut rng));
    let our_public = *identity.public_key();
    tb.configure_peer(&our_public, our_port);

    let mut us = Us {
        socket,
        peer_addr: SocketAddr::from((tb.their_udp, WG_PORT)),
        checker: CookieChecker::new(&our_public),
        limiter: RateLimiter::new(64, &mut rng),
        hs: PeerHandshake::new(their_public, None),
        identity,
        session: Session::new(),
        rng,
        epoch: std::time::Instant::now(),
        next_index: 0x1000_0007,
    };

    // 1. We initiate; ICMP echo through the tunnel.
    us.send_initiation();
    us.until("wireguard-go's handshake response", |_, ev| {
        matches!(ev, Event::SessionReady)
    });
    let first = us.session.current().expect("current").local_index();
    ping_through(&mut us, &tb, 1);

    // 2. Data the other way: wireguard-go's side sends us a datagram.
    datagram_from_them(&mut us, &tb, "hello from wireguard-go");
    assert_eq!(us.session.current().expect("current").local_index(), first);

    // 3. A second handshake on the same peer. Peers accept at most one
    //    initiation per 20 ms from a peer (wireguard-go logs "handshake
    //    flood" otherwise), and the phases above can take less than that.
    std::thread::sleep(Duration::from_millis(50));
    us.send_initiation();
    us.until("the second handshake response", |_, ev| {
        matches!(ev, Event::SessionReady)
    });
    let second = us.session.current().expect("current");
    assert_ne!(second.local_index(), first);
    assert_eq!(us.session.previous().map(|k| k.local_index()), Some(first));
    ping_through(&mut us, &tb, 2);
    datagram_from_them(&mut us, &tb, "on the second session");

    // 4. wireguard-go initiates: re-create the peer so that it has no
    //    session, then send us data from its side.
    tb.remove_peer(&our_public);
    tb.configure_peer(&our_public, our_port);
    let before = us.session.current().expect("current").local_index();
    datagram_from_them(&mut us, &tb, "wireguard-go initiated");
    let current = us.session.current().expect("current");
    assert!(
        !current.is_initiator(),
        "wireguard-go initiated; its first data promoted our next keypair"
    );
    assert_ne!(current.local_index(), before);
    assert!(us.session.next().is_none());
    ping_through(&mut us, &tb, 3);
}
