//! `wgdp bench-peers` (hidden): the peers of a single `wgdp run` driven by
//! pktgen-dpdk (`bench/pktgen/run.sh`). pktgen cannot answer or start a
//! WireGuard handshake, so before each measurement this process takes
//! pktgen's place on wgdp's tunnel port (a `net_memif` client of the same
//! socket), completes a real Noise_IKpsk2 handshake for every peer with the
//! protocol crate (the peer initiates, wgdp responds, a keepalive confirms
//! wgdp's session, whitepaper section 5.4), answers wgdp's ARP for the
//! gateway the peers' endpoints sit behind, and exits; pktgen then connects
//! in its place.
//!
//! - `table`: the `[[peers]]` of wgdp's tunnel table for a key file.
//! - `handshake`: the handshakes, and with `--pcap` the data messages the
//!   decap run replays, sealed with the peers' fresh keypairs (counters 1..,
//!   each once: wgdp's replay window drops any counter it has seen, so the
//!   file holds as many distinct messages as the run may send).
//!
//! Addresses are those of the in-process bench ([`traffic`]): peer `p`'s
//! endpoint `198.18.0.0 + p`, its allowed IP `10.128.0.0 + p`, wgdp's tunnel
//! address 203.0.113.1 behind gateway 203.0.113.254, the LAN host 10.0.0.2;
//! the MACs too unless given (`--mac`, `--wgdp-mac`: on a traffic generator
//! with NICs, docs/hardware.md section 12).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use dataplane::outer::Outer;
use dataplane::wire::{arp, ethernet};
use dpdk_sys::rte::{Burst, Eal, Mempool, Port, PortConfig, RxQueue, TxQueue};
use protocol::constants::REKEY_TIMEOUT;
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;
use rand_core::OsRng;
use zeroize::Zeroizing;

use super::traffic::{self, Mix};

/// Options of `wgdp bench-peers`.
#[derive(Debug, Args)]
pub struct BenchPeersArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Print the `[[peers]]` of wgdp's table for the peers of `--keys`.
    Table {
        /// `PRIVATE PUBLIC` per line (`wgdp gen-keys`): peer p is line p.
        #[arg(long)]
        keys: PathBuf,
    },
    /// Complete a handshake with wgdp for every peer of `--keys` over the
    /// tunnel-port device, then write the decap pcap if asked.
    Handshake(HandshakeArgs),
}

/// Options of `wgdp bench-peers handshake`.
#[derive(Debug, Args)]
pub struct HandshakeArgs {
    /// `PRIVATE PUBLIC` per line (`wgdp gen-keys`): peer p is line p.
    #[arg(long)]
    keys: PathBuf,
    /// wgdp's public key (base64).
    #[arg(long)]
    wgdp_key: String,
    /// The device facing wgdp's tunnel port, e.g.
    /// `net_memif0,role=client,id=0,socket=S,mac=02:00:00:00:01:02` (the
    /// gateway's MAC, which pktgen's port takes over afterwards), or a
    /// NIC's PCI address on a traffic generator.
    #[arg(long)]
    device: String,
    /// The peers' side's MAC (the gateway's, 203.0.113.254): the source of
    /// the frames, the answer to wgdp's ARP. On a NIC: the generator port's.
    #[arg(long, value_parser = parse_mac, default_value = "02:00:00:00:01:02")]
    mac: [u8; 6],
    /// wgdp's tunnel-port MAC, the frames' destination.
    #[arg(long, value_parser = parse_mac, default_value = "02:00:00:00:01:01")]
    wgdp_mac: [u8; 6],
    /// EAL arguments, as one string split on spaces.
    #[arg(
        long,
        default_value = "-l 0 --no-huge --no-shconf -m 256 --no-pci",
        allow_hyphen_values = true
    )]
    eal: String,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 128)]
    window: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// Also write this pcap: `--frames` data messages, round robin over
    /// the peers, inner packets from the peer to the LAN host.
    #[arg(long, requires = "size")]
    pcap: Option<PathBuf>,
    /// Inner IP packet size of the pcap's messages, or `imix` (7:4:1 of
    /// 46/552/1420 B).
    #[arg(long)]
    size: Option<String>,
    /// Messages in the pcap.
    #[arg(long, default_value_t = 65_536)]
    frames: usize,
}

/// Runs `wgdp bench-peers`.
pub fn run(args: &BenchPeersArgs) -> Result<(), Box<dyn std::error::Error>> {
    match &args.action {
        Action::Table { keys } => {
            let out = std::io::stdout();
            let mut out = BufWriter::new(out.lock());
            for (p, (_, public)) in read_keys(keys)?.iter().enumerate() {
                let p = p as u32;
                writeln!(
                    out,
                    "\n[[peers]]\npublic_key = \"{public}\"\nendpoint = \"{}\"\nallowed_ips = [\"{}/32\"]",
                    traffic::peer_endpoint(p),
                    traffic::peer_inner(p)
                )?;
            }
            out.flush()?;
            Ok(())
        }
        Action::Handshake(a) => handshake(a),
    }
}

/// One line of a key file: the private key (zeroized on drop) and the
/// public key's text.
type KeyLine = (Zeroizing<[u8; 32]>, String);

/// The key file's lines.
fn read_keys(path: &PathBuf) -> Result<Vec<KeyLine>, String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = Zeroizing::new(line.map_err(|e| format!("{}: {e}", path.display()))?);
        let mut it = line.split_whitespace();
        let (Some(private), Some(public)) = (it.next(), it.next()) else {
            return Err(format!(
                "{}:{}: want `PRIVATE PUBLIC`",
                path.display(),
                i + 1
            ));
        };
        let private = conf::decode_key(private)
            .ok_or_else(|| format!("{}:{}: bad private key", path.display(), i + 1))?;
        out.push((Zeroizing::new(private), public.to_string()));
    }
    if out.is_empty() || out.len() > 1 << 20 {
        return Err(format!("{}: want 1 to 2^20 key pairs", path.display()));
    }
    Ok(out)
}

/// One emulated peer.
struct Peer {
    identity: StaticIdentity,
    handshake: PeerHandshake,
    keypair: Option<Keypair>,
    /// Initiations sent for the current attempt.
    tries: u32,
    /// When the latest initiation went out.
    sent: Option<std::time::Instant>,
}

/// The DPDK side: the port's queues, a pool and the frames waiting for room.
struct Wire<'p> {
    pool: &'p Mempool,
    rx: RxQueue<'p>,
    tx: TxQueue<'p>,
    out: Burst,
    macs: Macs,
}

impl Wire<'_> {
    /// Queues `frame` for sending, flushing when the burst is full.
    fn send(&mut self, frame: &[u8]) -> Result<(), String> {
        let mut m = self.pool.alloc().ok_or("the pool is empty")?;
        m.append(frame.len() as u16)
            .map_err(|_| format!("no room for a {}-byte frame", frame.len()))?
            .copy_from_slice(frame);
        let mut m = Some(m);
        // wgdp's worker may be off its CPU for a while on a loaded
        // machine (or take 100,000 keepalives at once): wait for it by
        // time, not by a count of tries.
        let since = std::time::Instant::now();
        loop {
            match self.out.push(m.take().ok_or("lost an mbuf")?) {
                Ok(()) => return Ok(()),
                Err(back) => {
                    m = Some(back);
                    self.flush();
                }
            }
            if since.elapsed() > Duration::from_secs(5) {
                return Err("the tunnel port took no frame for 5 s".into());
            }
        }
    }

    /// Sends what the device takes; the rest waits for the next flush.
    fn flush(&mut self) {
        self.tx.tx_burst(&mut self.out);
    }
}

/// A MAC address written `aa:bb:cc:dd:ee:ff`.
fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err(format!("{text:?} is not a MAC address"));
    }
    for (b, part) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(part, 16).map_err(|_| format!("{text:?} is not a MAC address"))?;
    }
    Ok(mac)
}

/// The two ends' MACs on the tunnel link.
#[derive(Debug, Clone, Copy)]
struct Macs {
    /// The peers' side (the gateway).
    ours: [u8; 6],
    /// wgdp's tunnel port.
    wgdp: [u8; 6],
}

/// Wall-clock TAI64N for initiations (strictly increasing per peer, as wgdp's
/// replay guard on initiations wants).
fn tai64n_now() -> Tai64N {
    Tai64N::from_unix(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

fn handshake(a: &HandshakeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let wgdp_key = PublicKey::from_bytes(
        conf::decode_key(&a.wgdp_key).ok_or("--wgdp-key: not a base64 public key")?,
    );
    let mix = match a.size.as_deref() {
        None => None,
        Some("imix") => Some(Mix::imix_with_large(1420)),
        Some(s) => {
            let n: usize = s
                .parse()
                .map_err(|_| format!("--size: {s:?} is not a size"))?;
            if !(28..=1420).contains(&n) {
                return Err(format!("--size: {n} is not in 28..=1420").into());
            }
            Some(Mix::fixed("size", n))
        }
    };
    let mut peers: Vec<Peer> = read_keys(&a.keys)?
        .into_iter()
        .map(|(private, _)| Peer {
            identity: StaticIdentity::new(PrivateKey::from_bytes(*private)),
            handshake: PeerHandshake::new(wgdp_key, None),
            keypair: None,
            tries: 0,
            sent: None,
        })
        .collect();

    let eal = Eal::init(a.eal.split_whitespace())?;
    let pool = Mempool::new(&eal, "peers_pool", 4095, 0, 2048 + 128)?;
    let mut port = Port::probe(&eal, &a.device)?;
    port.configure(&PortConfig::default(), &pool)?;
    port.start()?;
    let started = std::time::Instant::now();
    while !port.link()?.up {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!("{}: no link after 30 s (is wgdp running?)", a.device).into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut wire = Wire {
        pool: &pool,
        rx: port.rx_queue(0)?,
        tx: port.tx_queue(0)?,
        out: Burst::new(),
        macs: Macs {
            ours: a.mac,
            wgdp: a.wgdp_mac,
        },
    };
    let clock = std::time::Instant::now();
    let now = || Instant::from_duration(clock.elapsed());
    let done = exchange(&mut peers, &mut wire, a, &now)?;
    confirm_again(&mut peers, &mut wire, &now)?;
    eprintln!(
        "bench-peers: {done} handshakes in {:.1} s",
        clock.elapsed().as_secs_f64()
    );
    if let (Some(path), Some(mix)) = (&a.pcap, &mix) {
        write_pcap(path, &mut peers, mix, a.frames, wire.macs, now())?;
        eprintln!("bench-peers: {} messages in {}", a.frames, path.display());
    }
    // Answer ARP a little longer while wgdp takes in the last keepalives.
    let linger = std::time::Instant::now();
    let mut unused = Duration::ZERO;
    while linger.elapsed() < Duration::from_millis(500) {
        poll(&mut peers, &mut wire, &now, &mut unused)?;
        wire.flush();
    }
    drop(wire);
    drop(port);
    if pool.in_use() != 0 {
        return Err(format!("{} mbufs not back in the pool", pool.in_use()).into());
    }
    Ok(())
}

/// Initiations, retransmissions and the replies, until every peer has a
/// confirmed session. Returns the number of handshakes.
fn exchange(
    peers: &mut [Peer],
    wire: &mut Wire<'_>,
    a: &HandshakeArgs,
    now: &dyn Fn() -> Instant,
) -> Result<usize, String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(a.timeout_s);
    // (sent at, peer) in sending order; an entry is stale once the peer
    // has its session or a newer initiation.
    let mut in_flight: VecDeque<(std::time::Instant, u32)> = VecDeque::new();
    let mut next = 0u32;
    let mut done = 0usize;
    let mut slowest = Duration::ZERO;
    let n = peers.len() as u32;
    while done < peers.len() {
        if std::time::Instant::now() > deadline {
            return Err(format!("{done} of {n} handshakes after {} s", a.timeout_s));
        }
        let (completed, cookies) = poll(peers, wire, now, &mut slowest)?;
        done += completed;
        for p in cookies {
            // A cookie reply (wgdp under load): the next initiation carries
            // mac2 (section 5.4.7); send it at once.
            in_flight.push_back((initiate(&mut peers[p as usize], p, wire, now())?, p));
        }
        // A retry replaces the initiation wgdp may still be answering (one
        // handshake state per peer), so it waits REKEY_TIMEOUT, or three
        // times the slowest answer so far when wgdp has a backlog.
        let retry = REKEY_TIMEOUT.max(slowest * 3);
        while let Some(&(sent, p)) = in_flight.front() {
            let peer = &peers[p as usize];
            if peer.keypair.is_some() || peer.sent != Some(sent) {
                in_flight.pop_front();
                continue;
            }
            if sent + retry > std::time::Instant::now() {
                break;
            }
            in_flight.pop_front();
            if peer.tries >= 20 {
                return Err(format!("peer {p}: no response to 20 initiations"));
            }
            in_flight.push_back((initiate(&mut peers[p as usize], p, wire, now())?, p));
        }
        while next < n && in_flight.len() < a.window {
            in_flight.push_back((
                initiate(&mut peers[next as usize], next, wire, now())?,
                next,
            ));
            next += 1;
        }
        wire.flush();
    }
    Ok(done)
}

/// Sends peer `p`'s initiation (sender index `p`) from its endpoint;
/// returns when.
fn initiate(
    peer: &mut Peer,
    p: u32,
    wire: &mut Wire<'_>,
    now: Instant,
) -> Result<std::time::Instant, String> {
    let init = peer
        .handshake
        .create_initiation(&peer.identity, p, tai64n_now(), now, &mut OsRng)
        .map_err(|e| format!("peer {p}: initiation: {e}"))?;
    peer.tries += 1;
    let f = frame_from(wire.macs, p, &init)?;
    wire.send(&f)?;
    let sent = std::time::Instant::now();
    peer.sent = Some(sent);
    Ok(sent)
}

/// Peer `p`'s keepalive (an empty data message, section 5.4.6) sealed with
/// its session, as a frame to wgdp.
fn keepalive(kp: &mut Keypair, p: u32, macs: Macs, now: Instant) -> Result<Vec<u8>, String> {
    let mut msg = vec![0u8; traffic::data_message_len(0)];
    kp.seal_message(now, &mut msg)
        .map_err(|e| format!("peer {p}: keepalive: {e}"))?;
    frame_from(macs, p, &msg)
}

/// A second keepalive from every peer, 200 ms after the last handshake
/// (answering ARP meanwhile). wgdp's control thread sends its response
/// before the owner worker has installed the keypair (the worker applies
/// the control thread's commands 64 a round, behind a backlog during a
/// round of 100,000 handshakes), so the first keepalive can reach the
/// worker first and be dropped as `unknown_index`: the session then stays
/// unconfirmed (29 of 100,000 once, on this machine). Sealed before the
/// pcap's messages, whose counters follow.
fn confirm_again(
    peers: &mut [Peer],
    wire: &mut Wire<'_>,
    now: &dyn Fn() -> Instant,
) -> Result<(), String> {
    let wait = std::time::Instant::now();
    let mut unused = Duration::ZERO;
    while wait.elapsed() < Duration::from_millis(200) {
        poll(peers, wire, now, &mut unused)?;
        wire.flush();
    }
    for (p, peer) in peers.iter_mut().enumerate() {
        let kp = peer
            .keypair
            .as_mut()
            .ok_or_else(|| format!("peer {p} has no session"))?;
        let f = keepalive(kp, p as u32, wire.macs, now())?;
        wire.send(&f)?;
    }
    wire.flush();
    Ok(())
}

/// A frame from peer `p`'s endpoint to wgdp carrying `payload`.
fn frame_from(macs: Macs, p: u32, payload: &[u8]) -> Result<Vec<u8>, String> {
    let o = Outer {
        src_mac: macs.ours,
        dst_mac: macs.wgdp,
        src: traffic::peer_endpoint(p),
        dst: SocketAddr::new(IpAddr::V4(traffic::WGDP_TUN), traffic::LISTEN),
        ecn: 0,
    };
    traffic::outer_frame(&o, payload).map_err(|e| e.to_string())
}

/// One receive burst: ARP requests for the gateway are answered, responses
/// consumed (and confirmed with a keepalive), cookie replies consumed.
/// Returns the handshakes completed and the peers that got a cookie.
fn poll(
    peers: &mut [Peer],
    wire: &mut Wire<'_>,
    now: &dyn Fn() -> Instant,
    slowest: &mut Duration,
) -> Result<(usize, Vec<u32>), String> {
    let mut burst: Burst = Burst::new();
    wire.rx.rx_burst(&mut burst);
    let mut completed = 0;
    let mut cookies = Vec::new();
    let frames: Vec<Vec<u8>> = burst.drain().map(|m| m.data().to_vec()).collect();
    for f in frames {
        match classify(&f) {
            Some(Received::ArpRequest(req)) => {
                let mut reply = [0u8; 60];
                reply[ethernet::field::DST].copy_from_slice(&req.sender_hw);
                reply[ethernet::field::SRC].copy_from_slice(&wire.macs.ours);
                reply[ethernet::field::ETHERTYPE]
                    .copy_from_slice(&ethernet::ethertype::ARP.to_be_bytes());
                req.reply(wire.macs.ours)
                    .emit(&mut reply[ethernet::HEADER_LEN..])
                    .map_err(|e| format!("ARP reply: {e:?}"))?;
                wire.send(&reply)?;
            }
            Some(Received::Wg(msg)) => {
                let kind = msg.first().copied().unwrap_or(0);
                let receiver = |at: usize| {
                    msg.get(at..at + 4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                };
                let Some(p) = receiver(if kind == 2 { 8 } else { 4 }) else {
                    continue;
                };
                let Some(peer) = peers.get_mut(p as usize) else {
                    continue;
                };
                match kind {
                    // Handshake response (section 5.4.3).
                    2 if peer.keypair.is_none() => {
                        let t = now();
                        let Ok(mut kp) = peer.handshake.consume_response(&peer.identity, &msg, t)
                        else {
                            continue;
                        };
                        // A keepalive confirms wgdp's responder session
                        // (section 5.4.6: it may not send before).
                        let f = keepalive(&mut kp, p, wire.macs, t)?;
                        wire.send(&f)?;
                        peer.keypair = Some(kp);
                        if let Some(sent) = peer.sent {
                            *slowest = (*slowest).max(sent.elapsed());
                        }
                        completed += 1;
                    }
                    // Cookie reply (section 5.4.7).
                    3 if peer.keypair.is_none()
                        && peer.handshake.consume_cookie_reply(&msg, now()).is_ok() =>
                    {
                        peer.tries = 0;
                        cookies.push(p);
                    }
                    _ => {}
                }
            }
            None => {}
        }
    }
    Ok((completed, cookies))
}

/// What a received frame is to the peers.
enum Received {
    /// An ARP request for the gateway's address.
    ArpRequest(arp::Repr),
    /// A UDP payload from wgdp's listen port.
    Wg(Vec<u8>),
}

/// Classifies a frame from wgdp (untagged Ethernet, IPv4 without options
/// needed: wgdp writes none).
fn classify(f: &[u8]) -> Option<Received> {
    let eth = ethernet::Frame::new_checked(f).ok()?;
    let payload = eth.payload();
    match eth.ethertype() {
        ethernet::ethertype::ARP => {
            let req = arp::Repr::parse(&arp::Packet::new_checked(payload).ok()?);
            (req.operation == arp::operation::REQUEST && req.target_ip == traffic::GATEWAY.octets())
                .then_some(Received::ArpRequest(req))
        }
        ethernet::ethertype::IPV4 => {
            let ihl = usize::from(payload.first()? & 0x0f) * 4;
            if payload.get(9) != Some(&17) || ihl < 20 {
                return None;
            }
            let src = Ipv4Addr::new(payload[12], payload[13], payload[14], payload[15]);
            let udp = payload.get(ihl..)?;
            let sport = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
            let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
            (src == traffic::WGDP_TUN && sport == traffic::LISTEN && len >= 8)
                .then(|| udp.get(8..len).map(<[u8]>::to_vec))
                .flatten()
                .map(Received::Wg)
        }
        _ => None,
    }
}

/// Writes `frames` data messages, round robin over the peers, inner sizes
/// in `mix` order, as a pcap (microsecond timestamps, Ethernet).
fn write_pcap(
    path: &PathBuf,
    peers: &mut [Peer],
    mix: &Mix,
    frames: usize,
    macs: Macs,
    now: Instant,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0u8; 8])?; // thiszone, sigfigs
    out.write_all(&65_535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
    let n = peers.len();
    for i in 0..frames {
        let p = i % n;
        let len = mix.size(i);
        let kp = peers[p]
            .keypair
            .as_mut()
            .ok_or_else(|| format!("peer {p} has no session"))?;
        let mut msg = vec![0u8; traffic::data_message_len(len)];
        traffic::seal_data(&mut msg, p as u32, kp, len, now)?;
        let f = frame_from(macs, p as u32, &msg)?;
        out.write_all(&((i / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&((i % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(f.len() as u32).to_le_bytes())?;
        out.write_all(&(f.len() as u32).to_le_bytes())?;
        out.write_all(&f)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pcap_holds_distinct_messages_that_wgdp_opens_once_each() {
        let wgdp = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
        let keys = super::super::peers::handshakes(&wgdp, 3, 1, 1).expect("handshakes");
        let (mut opener, mut peers): (Vec<Keypair>, Vec<Peer>) = keys
            .into_iter()
            .map(|k| {
                let peer = Peer {
                    identity: StaticIdentity::new(PrivateKey::generate(&mut OsRng)),
                    handshake: PeerHandshake::new(*wgdp.public_key(), None),
                    keypair: Some(k.peer),
                    tries: 0,
                    sent: None,
                };
                (k.wgdp, peer)
            })
            .unzip();
        let mix = Mix::imix_with_large(1420);
        let path = std::env::temp_dir().join(format!("bench-peers-{}.pcap", std::process::id()));
        let macs = Macs {
            ours: traffic::GATEWAY_MAC,
            wgdp: traffic::WGDP_TUN_MAC,
        };
        write_pcap(&path, &mut peers, &mix, 30, macs, Instant::ZERO).expect("pcap");
        let bytes = std::fs::read(&path).expect("read the pcap");
        std::fs::remove_file(&path).expect("remove the pcap");
        assert_eq!(bytes[..4], 0xa1b2_c3d4u32.to_le_bytes(), "magic");
        assert_eq!(bytes[20..24], 1u32.to_le_bytes(), "Ethernet");
        let mut at = 24;
        let mut i = 0;
        while at < bytes.len() {
            let len =
                u32::from_le_bytes(bytes[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
            let frame = &bytes[at + 16..at + 16 + len];
            at += 16 + len;
            let (p, inner) = (i % 3, mix.size(i));
            assert_eq!(len, 42 + traffic::data_message_len(inner), "frame {i}");
            assert_eq!(frame[..6], macs.wgdp, "frame {i}: to wgdp's MAC");
            assert_eq!(frame[6..12], macs.ours, "frame {i}: from the gateway's");
            assert_eq!(
                frame[26..30],
                traffic::peer_endpoint(p as u32)
                    .ip()
                    .to_string()
                    .parse::<Ipv4Addr>()
                    .expect("v4")
                    .octets(),
                "frame {i}: from peer {p}'s endpoint"
            );
            let mut msg = frame[42..].to_vec();
            let opened = opener[p]
                .open_message(Instant::ZERO, &mut msg)
                .unwrap_or_else(|e| panic!("frame {i}: wgdp's keypair of peer {p} opens it: {e}"));
            assert_eq!(opened[0], 0x45, "frame {i}: an IPv4 packet");
            assert_eq!(
                opened[12..16],
                traffic::peer_inner(p as u32).octets(),
                "frame {i}: from peer {p}'s allowed IP"
            );
            let mut again = frame[42..].to_vec();
            assert!(
                opener[p].open_message(Instant::ZERO, &mut again).is_err(),
                "frame {i}: a second copy is a replay"
            );
            i += 1;
        }
        assert_eq!(i, 30, "every message written");
    }

    #[test]
    fn parse_mac_takes_six_hex_bytes_only() {
        assert_eq!(parse_mac("02:00:00:00:01:0a"), Ok([2, 0, 0, 0, 1, 10]));
        assert!(parse_mac("02:00:00:00:01").is_err());
        assert!(parse_mac("02:00:00:00:01:0g").is_err());
        assert!(parse_mac("02:00:00:00:01:02:03").is_err());
    }

    #[test]
    fn classify_takes_wgdp_udp_and_arp_for_the_gateway_only() {
        let msg = [2u8; 92];
        let o = Outer {
            src_mac: traffic::WGDP_TUN_MAC,
            dst_mac: traffic::GATEWAY_MAC,
            src: SocketAddr::new(IpAddr::V4(traffic::WGDP_TUN), traffic::LISTEN),
            dst: traffic::peer_endpoint(7),
            ecn: 0,
        };
        let f = traffic::outer_frame(&o, &msg).expect("frame");
        match classify(&f) {
            Some(Received::Wg(m)) => assert_eq!(m, msg.to_vec()),
            _ => panic!("a UDP frame from wgdp's port is a WireGuard message"),
        }
        // From another port: not wgdp's.
        let o2 = Outer {
            src: SocketAddr::new(IpAddr::V4(traffic::WGDP_TUN), 4000),
            ..o
        };
        let f2 = traffic::outer_frame(&o2, &msg).expect("frame");
        assert!(classify(&f2).is_none());
        let mut arp_frame = [0u8; 42];
        arp_frame[12..14].copy_from_slice(&ethernet::ethertype::ARP.to_be_bytes());
        let mut req = arp::Repr {
            operation: arp::operation::REQUEST,
            sender_hw: traffic::WGDP_TUN_MAC,
            sender_ip: traffic::WGDP_TUN.octets(),
            target_hw: [0; 6],
            target_ip: traffic::GATEWAY.octets(),
        };
        req.emit(&mut arp_frame[14..]).expect("emit");
        assert!(matches!(classify(&arp_frame), Some(Received::ArpRequest(r)) if r == req));
        req.target_ip = [203, 0, 113, 9];
        req.emit(&mut arp_frame[14..]).expect("emit");
        assert!(classify(&arp_frame).is_none(), "not the gateway's address");
    }
}
