//! The seed corpora: small valid inputs for each target, from which
//! libFuzzer's mutations start. Written to `corpus/<target>/<name>` by
//! `WGDP_WRITE_SEEDS=1 cargo test` in this directory; `tests/seeds.rs`
//! checks that the committed files are exactly these.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use control::neigh::{arp_request, neighbour_solicitation};
use dataplane::wire::{arp, checksum, ethernet, ipv4, ipv6, udp};
use protocol::cookie::CookieChecker;
use protocol::messages::DATA_HEADER_LEN;
use protocol::noise::PeerHandshake;
use protocol::time::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::responder::{keys, timestamp, Initiator, Responder, OWN_INITIATION_INDEX};

/// One seed file.
pub struct Seed {
    /// The fuzz target (a directory under `corpus/`).
    pub target: &'static str,
    /// The file name.
    pub name: &'static str,
    /// Its content.
    pub bytes: Vec<u8>,
}

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
/// The handshake harness's "now" with a time byte of 0.
const NOW_MS: u64 = 10_000;
/// The source of handshake seeds: 198.51.100.7:51820.
const SOURCE: [u8; 6] = [198, 51, 100, 7, 0x6c, 0xca];

/// Ethernet + IPv4 + UDP 51820 -> 51820 around `payload`.
fn udp4_frame(vlan: Option<u16>, flags_frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 18 + 20 + 8 + payload.len()];
    let l3 = ethernet::Repr {
        dst: MAC_A,
        src: MAC_B,
        vlan_tci: vlan,
        ethertype: ethernet::ethertype::IPV4,
    }
    .emit(&mut b)
    .expect("room");
    b.truncate(l3 + 20 + 8 + payload.len());
    let l4 = l3
        + ipv4::Repr {
            src: [198, 51, 100, 7],
            dst: [203, 0, 113, 1],
            protocol: 17,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: flags_frag == 0,
            payload_len: 8 + payload.len(),
        }
        .emit(&mut b[l3..])
        .expect("room");
    if flags_frag != 0 {
        b[l3 + 6..l3 + 8].copy_from_slice(&flags_frag.to_be_bytes());
    }
    let data = l4
        + udp::Repr {
            src_port: 51820,
            dst_port: 51820,
            payload_len: payload.len(),
        }
        .emit(&mut b[l4..])
        .expect("room");
    b[data..].copy_from_slice(payload);
    if let Ok(mut p) = ipv4::Packet::new_checked(&mut b[l3..]) {
        p.fill_checksum();
    }
    if let Ok(mut u) = udp::Packet::new_checked(&mut b[l4..]) {
        u.fill_checksum_v4([198, 51, 100, 7], [203, 0, 113, 1]);
    }
    b
}

/// Ethernet + IPv6 + UDP around `payload`.
fn udp6_frame(payload: &[u8]) -> Vec<u8> {
    let (src, dst) = (
        [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        {
            let mut d = [0u8; 16];
            d[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            d[15] = 1;
            d
        },
    );
    let mut b = vec![0u8; 14 + 40 + 8 + payload.len()];
    let l3 = ethernet::Repr {
        dst: MAC_A,
        src: MAC_B,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV6,
    }
    .emit(&mut b)
    .expect("room");
    let l4 = l3
        + ipv6::Repr {
            src,
            dst,
            next_header: 17,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 8 + payload.len(),
        }
        .emit(&mut b[l3..])
        .expect("room");
    let data = l4
        + udp::Repr {
            src_port: 51820,
            dst_port: 51820,
            payload_len: payload.len(),
        }
        .emit(&mut b[l4..])
        .expect("room");
    b[data..].copy_from_slice(payload);
    if let Ok(mut u) = udp::Packet::new_checked(&mut b[l4..]) {
        u.fill_checksum_v6(&src, &dst);
    }
    b
}

/// The four WireGuard messages of a handshake and one data message.
struct Handshake {
    initiation: Vec<u8>,
    response: Vec<u8>,
    cookie_reply: Vec<u8>,
    data: Vec<u8>,
}

fn handshake() -> Handshake {
    let now = Instant::from_millis(NOW_MS);
    let who = Initiator::Peer0;
    let to = *keys().responder.public_key();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut init = PeerHandshake::new(to, None);
    let initiation = init
        .create_initiation(who.identity(), 0x1000, timestamp(0), now, &mut rng)
        .expect("initiation");
    let mut responder = PeerHandshake::new(*who.identity().public_key(), None);
    let pending = keys()
        .responder
        .open_initiation(&initiation)
        .expect("opens");
    responder
        .consume_initiation(pending, now)
        .expect("consumed");
    let (response, _) = responder
        .create_response(0x2000, now, &mut rng)
        .expect("response");
    let src: SocketAddr = "198.51.100.7:51820".parse().expect("addr");
    let cookie_reply = CookieChecker::new(&to)
        .create_reply(&initiation, src, now, &mut rng)
        .expect("cookie reply");
    let mut keypair = init
        .consume_response(who.identity(), &response, now)
        .expect("completes");
    let mut data = vec![0u8; DATA_HEADER_LEN + 32 + 16];
    data[DATA_HEADER_LEN..DATA_HEADER_LEN + 20].copy_from_slice(&inner_ipv4()[..20]);
    keypair.seal_message(now, &mut data).expect("sealed");
    Handshake {
        initiation: initiation.to_vec(),
        response: response.to_vec(),
        cookie_reply: cookie_reply.to_vec(),
        data,
    }
}

/// A 20-byte IPv4 header (10.9.0.2 -> 10.0.0.2, ICMP) and 12 bytes of payload.
fn inner_ipv4() -> Vec<u8> {
    let mut b = vec![0u8; 32];
    ipv4::Repr {
        src: [10, 9, 0, 2],
        dst: [10, 0, 0, 2],
        protocol: 1,
        ttl: 64,
        dscp_ecn: 0,
        ident: 7,
        dont_frag: true,
        payload_len: 12,
    }
    .emit(&mut b)
    .expect("room");
    if let Ok(mut p) = ipv4::Packet::new_checked(&mut b[..]) {
        p.fill_checksum();
    }
    b
}

/// wgdp's own initiation to peer 0 in raw mode, and peer 0's answers to
/// it: a response and a cookie reply (the harness is deterministic, so
/// they answer the initiation it rebuilds on every run).
fn answers_to_own_initiation() -> (Vec<u8>, Vec<u8>) {
    let now = Instant::from_millis(NOW_MS);
    let mut r = Responder::new();
    let ours = r.initiate(0, OWN_INITIATION_INDEX, now);
    let peer = &keys().peers[0];
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut h = PeerHandshake::new(*keys().responder.public_key(), None);
    let pending = peer.open_initiation(&ours).expect("opens");
    h.consume_initiation(pending, now).expect("consumed");
    let (response, _) = h.create_response(0x3000, now, &mut rng).expect("response");
    let src: SocketAddr = "203.0.113.1:51820".parse().expect("addr");
    let cookie = CookieChecker::new(peer.public_key())
        .create_reply(&ours, src, now, &mut rng)
        .expect("cookie");
    (response.to_vec(), cookie.to_vec())
}

/// A TCP SYN over IPv4 with MSS 1460 behind a NOP, its checksum right.
fn tcp4_syn() -> Vec<u8> {
    let tcp = tcp_syn();
    let mut p = vec![0u8; 20 + tcp.len()];
    ipv4::Repr {
        src: [10, 0, 0, 2],
        dst: [10, 9, 1, 2],
        protocol: 6,
        ttl: 64,
        dscp_ecn: 0,
        ident: 9,
        dont_frag: true,
        payload_len: tcp.len(),
    }
    .emit(&mut p)
    .expect("room");
    p[20..].copy_from_slice(&tcp);
    let acc = checksum::pseudo_header_v4([10, 0, 0, 2], [10, 9, 1, 2], 6, tcp.len() as u16);
    let sum = checksum::finish(checksum::add(acc, &p[20..]));
    p[36..38].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The same SYN over IPv6.
fn tcp6_syn() -> Vec<u8> {
    let tcp = tcp_syn();
    let (src, dst) = ([0xfd; 16], [0xfe; 16]);
    let mut p = vec![0u8; 40 + tcp.len()];
    ipv6::Repr {
        src,
        dst,
        next_header: 6,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
        payload_len: tcp.len(),
    }
    .emit(&mut p)
    .expect("room");
    p[40..].copy_from_slice(&tcp);
    let acc = checksum::pseudo_header_v6(&src, &dst, 6, tcp.len() as u32);
    let sum = checksum::finish(checksum::add(acc, &p[40..]));
    p[56..58].copy_from_slice(&sum.to_be_bytes());
    p
}

/// A TCP SYN header with options NOP, MSS 1460, NOP, NOP, SACK-permitted
/// and padding (28 bytes), checksum zero.
fn tcp_syn() -> Vec<u8> {
    let mut t = vec![0u8; 28];
    t[0..4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
    t[12] = 7 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&[0xff, 0xff]);
    t[20..28].copy_from_slice(&[1, 2, 4, 0x05, 0xb4, 1, 4, 2]);
    t
}

/// An ICMP destination unreachable about a UDP packet (never answered).
fn icmp4_error() -> Vec<u8> {
    let mut p = vec![0u8; 20 + 8 + 28];
    ipv4::Repr {
        src: [10, 0, 0, 1],
        dst: [10, 0, 0, 2],
        protocol: 1,
        ttl: 64,
        dscp_ecn: 0xc0,
        ident: 3,
        dont_frag: false,
        payload_len: 36,
    }
    .emit(&mut p)
    .expect("room");
    p[20] = 3;
    p[21] = 1;
    p[28..].copy_from_slice(&inner_ipv4()[..28]);
    let sum = checksum::checksum(&p[20..]);
    p[22..24].copy_from_slice(&sum.to_be_bytes());
    p
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A structured record of the `reassembly` target (see
/// `crate::reassembly`): time step, kind, identification, source byte,
/// offset (8-byte units), payload length, fill byte.
fn fragment(dt: u8, kind: u8, id: u8, offset: u16, len: u16) -> Vec<u8> {
    let [o0, o1] = offset.to_le_bytes();
    let [l0, l1] = len.to_le_bytes();
    vec![dt, kind, id, 7, o0, o1, l0, l1, 0xa5]
}

/// A packet record of the `mbaead` target: flags, nonce, additional data
/// length, plaintext length, then the additional data and the plaintext.
fn mb_packet(flags: u8, nonce: u8, aad: &[u8], len: u16) -> Vec<u8> {
    let [l0, l1] = len.to_le_bytes();
    cat(&[
        &[flags],
        &[nonce; 12],
        &[aad.len() as u8, l0, l1],
        aad,
        &vec![0x42; usize::from(len)],
    ])
}

/// An input record of the `mbmac` target: its length, then its bytes.
fn mb_input(len: u16) -> Vec<u8> {
    cat(&[&len.to_le_bytes(), &vec![0x5a; usize::from(len)]])
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let hs = handshake();
    let (own_response, own_cookie) = answers_to_own_initiation();
    let arp_frame = arp_request(
        MAC_B,
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
    );
    let ns_frame = neighbour_solicitation(
        MAC_B,
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    );
    let mut arp_packet = [0u8; arp::PACKET_LEN];
    arp::Repr {
        operation: arp::operation::REQUEST,
        sender_hw: MAC_B,
        sender_ip: [10, 0, 0, 2],
        target_hw: [0; 6],
        target_ip: [10, 0, 0, 1],
    }
    .emit(&mut arp_packet)
    .expect("room");
    let udp4 = udp4_frame(None, 0, &hs.data);
    let udp6 = udp6_frame(&hs.initiation);
    let raw_fragment = udp4_frame(None, 0x2000, b"frag");
    let seed = |target, name, bytes: Vec<u8>| Seed {
        target,
        name,
        bytes,
    };
    let structured = |flags: u8| cat(&[&[flags, 0, 0], &SOURCE]);
    vec![
        seed("wire_classify", "udp4-data", udp4.clone()),
        seed(
            "wire_classify",
            "udp4-vlan",
            udp4_frame(Some(7), 0, &hs.initiation),
        ),
        seed(
            "wire_classify",
            "udp4-fragment",
            udp4_frame(None, 0x2000, b"frag"),
        ),
        seed("wire_classify", "udp6-initiation", udp6.clone()),
        seed("wire_classify", "arp-request", arp_frame.to_vec()),
        seed("wire_classify", "nd-solicitation", ns_frame.to_vec()),
        seed("wire_headers", "ipv4", cat(&[&[0], &udp4[14..]])),
        seed("wire_headers", "ipv6", cat(&[&[1], &udp6[14..]])),
        seed("wire_headers", "udp", cat(&[&[2], &udp4[34..]])),
        seed("wire_headers", "arp", cat(&[&[3], &arp_packet])),
        seed("wire_headers", "ethernet", cat(&[&[4], &udp4])),
        seed("router", "tcp4-syn-mss", cat(&[&[0x80], &tcp4_syn()])),
        seed("router", "tcp6-syn-mss", cat(&[&[0x41], &tcp6_syn()])),
        seed("router", "udp4-short-limit", cat(&[&[1], &udp4[14..]])),
        seed("router", "icmp4-error", cat(&[&[0], &icmp4_error()])),
        seed("neighbour", "arp-request", arp_frame.to_vec()),
        seed("neighbour", "nd-solicitation", ns_frame.to_vec()),
        seed("messages", "initiation", hs.initiation.clone()),
        seed("messages", "response", hs.response.clone()),
        seed("messages", "cookie-reply", hs.cookie_reply.clone()),
        seed("messages", "data", hs.data.clone()),
        seed("transport", "sealed", cat(&[&[0; 12], &inner_ipv4()])),
        seed("transport", "keepalive", vec![0; 12]),
        seed("transport", "raw-data", cat(&[&[1; 1], &[0; 11], &hs.data])),
        seed("handshake", "peer0", structured(0x00)),
        seed("handshake", "peer1-psk", structured(0x10)),
        seed("handshake", "stranger", structured(0x20)),
        seed("handshake", "peer1-wrong-psk", structured(0x30)),
        seed("handshake", "peer0-under-load", structured(0x04)),
        seed("handshake", "peer0-under-load-v6", structured(0x06)),
        seed(
            "handshake",
            "peer0-fixed-macs",
            cat(&[&structured(0x08), &[8, 1]]),
        ),
        seed(
            "handshake",
            "raw-initiation",
            cat(&[&structured(0x01), &hs.initiation]),
        ),
        seed(
            "handshake",
            "raw-response-to-ours",
            cat(&[&structured(0x41), &own_response]),
        ),
        seed(
            "handshake",
            "raw-cookie-to-ours",
            cat(&[&structured(0x41), &own_cookie]),
        ),
        seed(
            "conf_toml",
            "example",
            include_bytes!("../../conf/example.toml").to_vec(),
        ),
        seed("conf_toml", "minimal", MINIMAL_TOML.as_bytes().to_vec()),
        seed(
            "mbaead",
            "two-keys-three-packets",
            cat(&[
                &[1],
                &[0x11; 32],
                &[0x22; 32],
                &mb_packet(0, 1, &[], 64),
                &mb_packet(1 | 4, 2, &[0xa0; 12], 100),
                &mb_packet(8, 3, &[], 1420),
            ]),
        ),
        seed(
            "mbmac",
            "mac1-and-mac2-lengths",
            cat(&[
                &[32],
                &[0x33; 32],
                &mb_input(116),
                &mb_input(132),
                &mb_input(60),
                &mb_input(0),
                &mb_input(64),
            ]),
        ),
        seed("uapi", "get", b"get=1".to_vec()),
        seed("uapi", "show", b"wgdp-show=1".to_vec()),
        seed("uapi", "show-counters", b"wgdp-show=counters".to_vec()),
        seed("uapi", "set", UAPI_SET.as_bytes().to_vec()),
        seed("uapi", "remove", UAPI_REMOVE.as_bytes().to_vec()),
        seed("wgquick", "wg0", WG_QUICK.as_bytes().to_vec()),
        seed(
            "reassembly",
            "v4-in-order",
            cat(&[
                &fragment(0, 2, 1, 0, 600),
                &fragment(1, 2, 1, 75, 600),
                &fragment(1, 0, 1, 150, 200),
            ]),
        ),
        seed(
            "reassembly",
            "v6-reversed",
            cat(&[
                &fragment(0, 1, 2, 100, 200),
                &fragment(1, 3, 2, 50, 400),
                &fragment(1, 3, 2, 0, 400),
            ]),
        ),
        // The crash input that found a miscount: lengths that add up
        // around a hole, so DPDK gives the set up partly chained.
        seed(
            "reassembly",
            "v6-hole-behind-overlap",
            cat(&[
                &fragment(0, 1, 2, 100, 200),
                &fragment(1, 3, 2, 50, 144),
                &fragment(1, 3, 2, 0, 256),
                &fragment(1, 3, 2, 50, 400),
            ]),
        ),
        seed(
            "reassembly",
            "v4-duplicate-first",
            cat(&[&fragment(0, 2, 3, 0, 600), &fragment(1, 2, 3, 0, 600)]),
        ),
        seed(
            "reassembly",
            "v4-expires",
            cat(&[&fragment(0, 2, 4, 0, 600), &fragment(255, 0, 4, 75, 100)]),
        ),
        seed(
            "reassembly",
            "raw-v4-first-fragment",
            cat(&[
                &[0, 4],
                &(raw_fragment.len() as u16).to_le_bytes(),
                &raw_fragment,
            ]),
        ),
    ]
}

const MINIMAL_TOML: &str = r#"[interface]
private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
listen_port = 51820

[dpdk]
eal_args = ["-l", "0-1", "--in-memory"]
workers = [1]

[ports.tunnel]
device = "net_tap0"
address = ["203.0.113.1/24", "2001:db8::1/64"]
gateway = "203.0.113.2"
tap = "wgdp-tun"

[ports.plaintext]
device = "net_tap1"
address = ["10.0.0.1/24"]
mtu = 1420
tap = "wgdp-pt"

[[peers]]
public_key = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
preshared_key = "VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVU="
endpoint = "203.0.113.2:51821"
allowed_ips = ["10.9.0.2/32", "fd00::/64"]
persistent_keepalive = 25
"#;

const UAPI_SET: &str = "set=1
private_key=0101010101010101010101010101010101010101010101010101010101010101
listen_port=51820
replace_peers=false
public_key=0202020202020202020202020202020202020202020202020202020202020202
preshared_key=5555555555555555555555555555555555555555555555555555555555555555
endpoint=[2001:db8::2]:51821
persistent_keepalive_interval=25
replace_allowed_ips=true
allowed_ip=10.9.0.2/32
allowed_ip=fd00::/64
protocol_version=1";

const UAPI_REMOVE: &str = "set=1
public_key=0202020202020202020202020202020202020202020202020202020202020202
remove=true";

const WG_QUICK: &str = "[Interface]
PrivateKey = AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=
ListenPort = 51820
Address = 10.0.0.1/24
DNS = 10.0.0.53
PostUp = true

[Peer]
PublicKey = AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=
PresharedKey = VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVU=
Endpoint = 203.0.113.2:51821
AllowedIPs = 10.9.0.2/32, fd00::/64
PersistentKeepalive = 25
";
