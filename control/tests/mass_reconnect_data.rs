//! A mass reconnect beside an established peer's data (issue #25): wgdp in
//! one process (`control::inproc`: the real worker and the real control
//! thread with two handshake threads, on ring ports). Peer 0 has a session
//! and sends a sequence-numbered UDP flow through the tunnel at a steady
//! pace; meanwhile hundreds of other peers send their initiations all at
//! once into the same tunnel port. Every one of them gets exactly one
//! response its initiator accepts, none is rate-limited or sent a cookie,
//! and peer 0's flow arrives on the LAN complete and in order.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant as WallInstant, SystemTime, UNIX_EPOCH};

use control::control::InitialPeer;
use control::inproc::{self, Network, Setup, LAN_HOST};
use control::peers::NewPeer;
use dataplane::counters::Event;
use dataplane::wire::checksum;
use dpdk_sys::rte::testing::eal;
use dpdk_sys::rte::Burst;
use protocol::allowedips::Prefix;
use protocol::constants::AEAD_TAG_LEN;
use protocol::crypto::PrivateKey;
use protocol::messages::{padded_len, DATA_HEADER_LEN};
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;
use rand_core::OsRng;
use zeroize::Zeroizing;

const OURS: [u8; 32] = [0x5a; 32];
/// Peers reconnecting at once, beside the established one.
const RECONNECTING: usize = 400;
/// The established peer's inner address (its allowed IP).
const INNER: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
/// The flow: one datagram every PACE, from before the reconnect until
/// AFTER past its last handshake.
const PACE: Duration = Duration::from_micros(100);
const AFTER: Duration = Duration::from_millis(100);
/// The longest the test waits for anything.
const LIMIT: Duration = Duration::from_secs(120);
/// Size of the flow's inner packets (IPv4, UDP, the 8-byte number).
const INNER_LEN: usize = 20 + 8 + 8;

/// A peer as its own WireGuard implementation.
struct Peer {
    identity: StaticIdentity,
    handshake: PeerHandshake,
    src: SocketAddr,
    completed: u32,
    /// The keypair of its last completed handshake.
    keypair: Option<Keypair>,
}

impl Peer {
    fn new(n: usize) -> Self {
        let ours = PrivateKey::from_bytes(OURS).public_key();
        Self {
            identity: StaticIdentity::new(PrivateKey::generate(&mut OsRng)),
            handshake: PeerHandshake::new(ours, None),
            src: SocketAddr::from(([198, 18, (n >> 8) as u8, n as u8], 51821)),
            completed: 0,
            keypair: None,
        }
    }

    /// Its initiation, in the frame the tunnel port receives.
    fn initiation(&mut self, index: u32) -> Vec<u8> {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let bytes = self
            .handshake
            .create_initiation(
                &self.identity,
                index,
                Tai64N::from_unix(unix),
                Instant::ZERO,
                &mut OsRng,
            )
            .expect("initiation");
        inproc::frame_to_wgdp(self.src, &bytes).expect("frame")
    }
}

/// Datagram `seq` of peer 0's flow, sealed with its keypair, in its frame.
fn data_frame(kp: &mut Keypair, src: SocketAddr, seq: u64) -> Vec<u8> {
    let mut msg = vec![0u8; DATA_HEADER_LEN + padded_len(INNER_LEN, 1420) + AEAD_TAG_LEN];
    let p = &mut msg[DATA_HEADER_LEN..DATA_HEADER_LEN + INNER_LEN];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(INNER_LEN as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&INNER.octets());
    p[16..20].copy_from_slice(&LAN_HOST.octets());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5201u16.to_be_bytes());
    p[24..26].copy_from_slice(&((INNER_LEN - 20) as u16).to_be_bytes());
    p[28..36].copy_from_slice(&seq.to_be_bytes());
    kp.seal_message(Instant::ZERO, &mut msg).expect("seal");
    inproc::frame_to_wgdp(src, &msg).expect("frame")
}

/// What the LAN host saw of the flow.
#[derive(Debug, Default)]
struct Flow {
    sent: u64,
    /// Datagrams the tunnel port's RX ring did not take (lost).
    refused: u64,
    received: u64,
    duplicates: u64,
    /// Datagrams that arrived after one with a higher number.
    inversions: u64,
    highest: Option<u64>,
    seen: Vec<bool>,
}

impl Flow {
    fn take(&mut self, net: &mut Network<'_>, burst: &mut Burst) {
        net.plain_out.rx_burst(burst);
        for m in burst.drain() {
            let f = m.data();
            // Ethernet, IPv4 (no options), UDP, the number.
            if f.len() < 14 + INNER_LEN || f[26..30] != INNER.octets() {
                continue;
            }
            let seq = u64::from_be_bytes(f[42..50].try_into().expect("8 bytes"));
            let i = seq as usize;
            if self.seen.len() <= i {
                self.seen.resize(i + 1, false);
            }
            if self.seen[i] {
                self.duplicates += 1;
                continue;
            }
            self.seen[i] = true;
            self.received += 1;
            if self.highest.is_some_and(|h| seq < h) {
                self.inversions += 1;
            }
            self.highest = Some(self.highest.map_or(seq, |h| h.max(seq)));
        }
    }
}

/// Takes the responses out of the tunnel port; each is consumed by its
/// initiator. Returns how many completed.
fn responses(net: &mut Network<'_>, peers: &mut [Peer], by_ip: &HashMap<Ipv4Addr, usize>) -> usize {
    let mut burst: Burst = Burst::new();
    net.tun_control_out.rx_burst(&mut burst);
    let mut n = 0;
    for m in burst.drain() {
        let Some((dst, payload)) = inproc::from_wgdp(m.data()) else {
            continue;
        };
        let Some(&i) = by_ip.get(&dst) else {
            continue;
        };
        let p = &mut peers[i];
        if let Ok(kp) = p
            .handshake
            .consume_response(&p.identity, payload, Instant::ZERO)
        {
            p.keypair = Some(kp);
            p.completed += 1;
            n += 1;
        }
    }
    n
}

#[test]
fn mass_reconnect_loses_no_data_of_an_established_peer() {
    let mut peers: Vec<Peer> = (0..=RECONNECTING).map(Peer::new).collect();
    let by_ip: HashMap<Ipv4Addr, usize> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| match p.src.ip() {
            IpAddr::V4(ip) => (ip, i),
            IpAddr::V6(_) => unreachable!("IPv4 sources"),
        })
        .collect();
    let setup = Setup {
        private_key: Zeroizing::new(OURS),
        peers: peers
            .iter()
            .enumerate()
            .map(|(i, p)| InitialPeer {
                peer: NewPeer {
                    public_key: *p.identity.public_key(),
                    preshared_key: None,
                    endpoint: None,
                    persistent_keepalive: None,
                    lanes: 1,
                },
                allowed_ips: if i == 0 {
                    vec![Prefix::new(IpAddr::V4(INNER), 32).expect("prefix")]
                } else {
                    Vec::new()
                },
            })
            .collect(),
        handshake_threads: 2,
    };
    let lcore = eal().worker_lcores()[0];
    let (flow, cookies, rate_limited, responses_sent, window) =
        inproc::run(eal(), lcore, setup, |net| {
            let start = WallInstant::now();
            // Peer 0 establishes its session.
            let init = peers[0].initiation(1);
            assert!(net.send(&init));
            while peers[0].completed == 0 {
                assert!(start.elapsed() < LIMIT, "peer 0's handshake");
                responses(net, &mut peers, &by_ip);
                std::thread::yield_now();
            }
            let mut kp = peers[0].keypair.take().expect("peer 0's keypair");
            let src = peers[0].src;
            let mut flow = Flow::default();
            let mut burst: Burst = Burst::new();
            let mut seq = 0u64;
            let mut next = WallInstant::now();
            let mut send_data = |net: &mut Network<'_>, flow: &mut Flow, seq: &mut u64| {
                let frame = data_frame(&mut kp, src, *seq);
                flow.sent += 1;
                if !net.send(&frame) {
                    flow.refused += 1;
                }
                *seq += 1;
            };
            // The flow runs a while before the reconnect.
            while seq < 200 {
                if WallInstant::now() >= next {
                    send_data(net, &mut flow, &mut seq);
                    next += PACE;
                }
                flow.take(net, &mut burst);
            }
            // Every other peer initiates at once.
            let frames: Vec<Vec<u8>> = (1..=RECONNECTING)
                .map(|i| peers[i].initiation(i as u32))
                .collect();
            let before = seq;
            for f in &frames {
                assert!(net.send(f), "the tunnel port took every initiation");
            }
            let mut completed = 0;
            let mut done_at = None;
            loop {
                assert!(
                    start.elapsed() < LIMIT,
                    "{completed} of {RECONNECTING} completed"
                );
                if WallInstant::now() >= next {
                    send_data(net, &mut flow, &mut seq);
                    next += PACE;
                }
                flow.take(net, &mut burst);
                completed += responses(net, &mut peers, &by_ip);
                if completed == RECONNECTING && done_at.is_none() {
                    done_at = Some((WallInstant::now(), seq));
                }
                if done_at.is_some_and(|(t, _)| t.elapsed() >= AFTER) {
                    break;
                }
            }
            let window = done_at.map_or(0, |(_, s)| s) - before;
            // The last datagrams drain.
            let quiet = WallInstant::now();
            while flow.received + flow.refused < flow.sent
                && quiet.elapsed() < Duration::from_secs(2)
            {
                flow.take(net, &mut burst);
            }
            let cookies = net.worker.events(Event::CookieReplySent);
            let c = &net.control;
            (
                flow,
                cookies,
                c.handshakes_rate_limited.load(Ordering::Relaxed),
                c.responses_sent.load(Ordering::Relaxed),
                window,
            )
        })
        .expect("wgdp ran");
    // Every reconnecting peer completed exactly once, peer 0 once before.
    assert_eq!(
        peers.iter().map(|p| p.completed).collect::<Vec<_>>(),
        vec![1; RECONNECTING + 1]
    );
    assert_eq!(responses_sent, RECONNECTING as u64 + 1);
    assert_eq!((cookies, rate_limited), (0, 0), "cookies, rate limited");
    // The flow spanned the reconnect, and every datagram arrived in order.
    assert!(window > 0, "no datagram was sent during the reconnect");
    let counts = (flow.sent, flow.refused, flow.received);
    assert_eq!(flow.refused, 0, "sent, refused, received: {counts:?}");
    assert_eq!(
        flow.received, flow.sent,
        "sent, refused, received: {counts:?}"
    );
    assert_eq!(
        (flow.duplicates, flow.inversions),
        (0, 0),
        "duplicates, inversions"
    );
    eprintln!(
        "{} datagrams, {window} of them while {RECONNECTING} peers handshook",
        flow.sent
    );
}
