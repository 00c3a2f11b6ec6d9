//! The WireGuard cross-platform userspace API (the protocol wireguard-go and
//! boringtun serve, which `wg` speaks over `/var/run/wireguard/<if>.sock`):
//! `get=1` and `set=1` requests of `key=value` lines ending with an empty
//! line, answered by `key=value` lines and `errno=N`. Keys are hex here.
//!
//! Pure parsing and rendering; the socket is in `server`, applying a `set`
//! in `crate::control::live`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use protocol::allowedips::Prefix;

use zeroize::Zeroizing;

use super::secret::SecretBuf;
use crate::snapshot::PeerSnapshot;

/// Longest request accepted (a `set` of many peers and allowed IPs): a
/// `wg setconf` of a million peers, each with an endpoint and a prefix, is
/// about 150 MiB. The socket is root's only (0600).
pub const MAX_REQUEST: usize = 256 << 20;

/// errno values the protocol answers with (Linux numbering, as `wg`
/// prints them).
pub mod errno {
    /// Success.
    pub const OK: i32 = 0;
    /// Operation not permitted (a change wgdp only makes at restart).
    pub const EPERM: i32 = 1;
    /// I/O error (writing the table back failed).
    pub const EIO: i32 = 5;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Protocol error (malformed request).
    pub const EPROTO: i32 = 71;
}

/// A parsed request.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `get=1`.
    Get,
    /// `set=1` and its changes, boxed: the keys stay in one place while
    /// the request travels to the control thread (a channel's slot would
    /// keep a copy of an unboxed one).
    Set(Box<SetRequest>),
    /// `wgdp-show=1`: wgdp's own request for `wgdp show` (JSON answer);
    /// the `wg` tool never sends it. `wgdp-show=counters` asks for the
    /// same document less its peers (`wgdp show --no-peers`): with 100k
    /// peers the full one takes seconds to build.
    WgdpShow {
        /// Whether the answer lists the peers.
        peers: bool,
    },
}

/// The changes of a `set=1`. `Debug` shows whether a private key is set,
/// never the key.
#[derive(Default, PartialEq, Eq)]
pub struct SetRequest {
    /// New private key.
    pub private_key: Option<Zeroizing<[u8; 32]>>,
    /// New listen port.
    pub listen_port: Option<u16>,
    /// New fwmark.
    pub fwmark: Option<u32>,
    /// Remove every peer not named in this request.
    pub replace_peers: bool,
    /// Per-peer changes, in request order.
    pub peers: Vec<PeerSet>,
}

/// The changes to one peer. `Debug` shows whether a pre-shared key is
/// set, never the key.
#[derive(Default, PartialEq, Eq)]
pub struct PeerSet {
    /// The peer's public key.
    pub public_key: [u8; 32],
    /// Remove the peer.
    pub remove: bool,
    /// Only change an existing peer; never create one.
    pub update_only: bool,
    /// New pre-shared key (all zeros: none).
    pub preshared_key: Option<Zeroizing<[u8; 32]>>,
    /// New endpoint.
    pub endpoint: Option<SocketAddr>,
    /// New persistent keepalive interval in seconds (0: off).
    pub persistent_keepalive: Option<u16>,
    /// Drop the peer's allowed IPs before adding `allowed_ips`.
    pub replace_allowed_ips: bool,
    /// Allowed IPs to add.
    pub allowed_ips: Vec<Prefix>,
    /// Allowed IPs to remove (`allowed_ip=-PREFIX`, newer wireguard-tools'
    /// `allowed-ips -PREFIX`), after the additions.
    pub removed_ips: Vec<Prefix>,
}

/// Why a request was refused, with the errno to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UapiError {
    /// The errno for the reply.
    pub errno: i32,
    /// What was wrong (for the log; never contains key material).
    pub message: String,
}

impl std::fmt::Debug for SetRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetRequest")
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("listen_port", &self.listen_port)
            .field("fwmark", &self.fwmark)
            .field("replace_peers", &self.replace_peers)
            .field("peers", &self.peers)
            .finish()
    }
}

impl std::fmt::Debug for PeerSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSet")
            .field("public_key", &conf::encode_key(&self.public_key))
            .field("remove", &self.remove)
            .field("update_only", &self.update_only)
            .field(
                "preshared_key",
                &self.preshared_key.as_ref().map(|_| "<redacted>"),
            )
            .field("endpoint", &self.endpoint)
            .field("persistent_keepalive", &self.persistent_keepalive)
            .field("replace_allowed_ips", &self.replace_allowed_ips)
            .field("allowed_ips", &self.allowed_ips)
            .field("removed_ips", &self.removed_ips)
            .finish()
    }
}

impl UapiError {
    fn invalid(key: &str, why: &str) -> Self {
        Self {
            errno: errno::EINVAL,
            message: format!("{key}: {why}"),
        }
    }
}

/// Decodes a key's 64 hex digits into `out`, where the key is kept: a
/// key decoded into a local and moved there would leave its bytes in the
/// stack frame, for a later copy of uninitialised padding to carry into
/// the heap (seen: a channel's cache-line padding, copied from the stack
/// by `Box::new`). On error `out` holds part of a key: the caller's
/// request is dropped, which wipes it.
fn hex_key_into(key: &str, value: &str, out: &mut [u8; 32]) -> Result<(), UapiError> {
    let bytes = value.as_bytes();
    if bytes.len() != 64 {
        return Err(UapiError::invalid(key, "not 64 hex digits"));
    }
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16);
        let lo = (pair[1] as char).to_digit(16);
        match (hi, lo) {
            (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
            _ => return Err(UapiError::invalid(key, "not 64 hex digits")),
        }
    }
    Ok(())
}

/// Decodes a key into a new wiped-on-drop slot of `slot` (the request's
/// own memory).
fn secret_key_into(
    key: &str,
    value: &str,
    slot: &mut Option<Zeroizing<[u8; 32]>>,
) -> Result<(), UapiError> {
    let out = slot.insert(Zeroizing::new([0u8; 32]));
    hex_key_into(key, value, out)
}

fn flag(key: &str, value: &str) -> Result<bool, UapiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(UapiError::invalid(key, "expected true or false")),
    }
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, UapiError> {
    value
        .parse()
        .map_err(|_| UapiError::invalid(key, "not a number in range"))
}

fn cidr(value: &str) -> Result<Prefix, UapiError> {
    value
        .parse()
        .map_err(|_| UapiError::invalid("allowed_ip", "not an address/prefix"))
}

/// Parses one request: its lines without the terminating empty line.
pub fn parse(lines: &[&str]) -> Result<Request, UapiError> {
    let proto = || UapiError {
        errno: errno::EPROTO,
        message: "request must start with get=1 or set=1".into(),
    };
    match lines.first().copied() {
        Some("get=1") if lines.len() == 1 => return Ok(Request::Get),
        Some("wgdp-show=1") if lines.len() == 1 => return Ok(Request::WgdpShow { peers: true }),
        Some("wgdp-show=counters") if lines.len() == 1 => {
            return Ok(Request::WgdpShow { peers: false })
        }
        Some("set=1") => {}
        _ => return Err(proto()),
    }
    let mut set = Box::<SetRequest>::default();
    // Sized up front: a `Vec` that grows leaves a copy of the pre-shared
    // keys already parsed in the memory it frees.
    set.peers.reserve_exact(
        lines
            .iter()
            .filter(|l| l.starts_with("public_key="))
            .count(),
    );
    for line in &lines[1..] {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| UapiError::invalid("request", "a line is not key=value"))?;
        if key == "public_key" {
            set.peers.push(PeerSet::default());
            if let Some(peer) = set.peers.last_mut() {
                hex_key_into(key, value, &mut peer.public_key)?;
            }
            continue;
        }
        match set.peers.last_mut() {
            None => match key {
                "private_key" => secret_key_into(key, value, &mut set.private_key)?,
                "listen_port" => set.listen_port = Some(number(key, value)?),
                "fwmark" => set.fwmark = Some(number(key, value)?),
                "replace_peers" => set.replace_peers = flag(key, value)?,
                _ => return Err(UapiError::invalid(key, "unknown interface key")),
            },
            Some(peer) => match key {
                "remove" => peer.remove = flag(key, value)?,
                "update_only" => peer.update_only = flag(key, value)?,
                "preshared_key" => secret_key_into(key, value, &mut peer.preshared_key)?,
                "endpoint" => {
                    let endpoint: SocketAddr = value
                        .parse()
                        .map_err(|_| UapiError::invalid(key, "not ip:port or [ip6]:port"))?;
                    // The tunnel table refuses port 0 too: never write
                    // back what would not load.
                    if endpoint.port() == 0 {
                        return Err(UapiError::invalid(key, "port 0"));
                    }
                    peer.endpoint = Some(endpoint);
                }
                "persistent_keepalive_interval" => {
                    peer.persistent_keepalive = Some(number(key, value)?)
                }
                "replace_allowed_ips" => peer.replace_allowed_ips = flag(key, value)?,
                "allowed_ip" => match value.strip_prefix('-') {
                    Some(prefix) => peer.removed_ips.push(cidr(prefix)?),
                    None => peer.allowed_ips.push(cidr(value)?),
                },
                "protocol_version" if value == "1" => {}
                _ => return Err(UapiError::invalid(key, "unknown or unsupported peer key")),
            },
        }
    }
    Ok(Request::Set(set))
}

/// What `get=1` reports about the interface.
pub struct InterfaceInfo {
    /// Our private key.
    pub private_key: Zeroizing<[u8; 32]>,
    /// Our UDP port.
    pub listen_port: u16,
    /// Every peer.
    pub peers: Vec<PeerInfo>,
}

/// What `get=1` reports about one peer.
pub struct PeerInfo {
    /// Its state.
    pub peer: PeerSnapshot,
    /// Its pre-shared key, if any.
    pub preshared_key: Option<Zeroizing<[u8; 32]>>,
}

fn hex(out: &mut SecretBuf, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

/// Bytes of a `get=1` answer: at most this much for the interface and
/// each peer (endpoint, counters and keys at their longest) ...
const GET_FIXED: usize = 160;
const GET_PER_PEER: usize = 480;
/// ... and for each allowed IP (`allowed_ip=` and an IPv6 prefix).
const GET_PER_PREFIX: usize = 64;

/// Renders a `get=1` answer, `errno=0` and the final empty line included.
/// The text holds the private key and the pre-shared keys: it is sized up
/// front (no copy left behind by growing), and wiped when dropped.
pub fn render_get(info: &InterfaceInfo) -> Zeroizing<String> {
    let prefixes: usize = info.peers.iter().map(|p| p.peer.allowed_ips.len()).sum();
    let mut out = SecretBuf::with_capacity(
        GET_FIXED + info.peers.len() * GET_PER_PEER + prefixes * GET_PER_PREFIX,
    );
    let _ = out.write_str("private_key=");
    hex(&mut out, &info.private_key[..]);
    let _ = write!(out, "\nlisten_port={}\n", info.listen_port);
    for PeerInfo {
        peer: p,
        preshared_key,
    } in &info.peers
    {
        let _ = out.write_str("public_key=");
        hex(&mut out, &p.public_key);
        let _ = out.write_str("\npreshared_key=");
        hex(
            &mut out,
            preshared_key.as_deref().map_or(&[0u8; 32][..], |k| &k[..]),
        );
        let _ = out.write_str("\nprotocol_version=1\n");
        if let Some(e) = p.endpoint {
            let _ = writeln!(out, "endpoint={e}");
        }
        let hs = p.latest_handshake.unwrap_or_default();
        let _ = write!(
            out,
            "last_handshake_time_sec={}\nlast_handshake_time_nsec={}\ntx_bytes={}\nrx_bytes={}\npersistent_keepalive_interval={}\n",
            hs.as_secs(),
            hs.subsec_nanos(),
            p.tx_bytes,
            p.rx_bytes,
            p.persistent_keepalive.unwrap_or(0)
        );
        for prefix in &p.allowed_ips {
            let _ = writeln!(out, "allowed_ip={prefix}");
        }
    }
    let _ = out.write_str("errno=0\n\n");
    out.into_string()
}

/// Renders a `set=1` request changing `peers` (what `wg set` sends), the
/// final empty line included. The text may hold pre-shared keys: it is
/// wiped when dropped.
pub fn render_set(peers: &[PeerSet]) -> Zeroizing<String> {
    let mut out = SecretBuf::with_capacity(16 + peers.len() * GET_PER_PEER);
    let _ = out.write_str("set=1\n");
    for p in peers {
        let _ = out.write_str("public_key=");
        hex(&mut out, &p.public_key);
        let _ = out.write_str("\n");
        if p.remove {
            let _ = out.write_str("remove=true\n");
            continue;
        }
        if p.update_only {
            let _ = out.write_str("update_only=true\n");
        }
        if let Some(psk) = &p.preshared_key {
            let _ = out.write_str("preshared_key=");
            hex(&mut out, &psk[..]);
            let _ = out.write_str("\n");
        }
        if let Some(e) = p.endpoint {
            let _ = writeln!(out, "endpoint={e}");
        }
        if let Some(k) = p.persistent_keepalive {
            let _ = writeln!(out, "persistent_keepalive_interval={k}");
        }
        if p.replace_allowed_ips {
            let _ = out.write_str("replace_allowed_ips=true\n");
        }
        for prefix in &p.allowed_ips {
            let _ = writeln!(out, "allowed_ip={prefix}");
        }
        for prefix in &p.removed_ips {
            let _ = writeln!(out, "allowed_ip=-{prefix}");
        }
    }
    let _ = out.write_str("\n");
    out.into_string()
}

/// The answer to a `set=1`, or to any refused request.
pub fn render_errno(errno: i32) -> String {
    format!("errno={errno}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";
    const K2: &str = "b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33";

    /// A parsed `set` holds the private key and a pre-shared key; neither
    /// may show in its `Debug` (hex or decimal bytes), nor a line's text in
    /// an error message.
    /// The keys a `set` carries are wiped when the request is dropped.
    #[test]
    fn set_request_keys_zeroize_on_drop() {
        fn wipes<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        let set = SetRequest::default();
        wipes(set.private_key.as_ref().unwrap_or(&Zeroizing::new([0; 32])));
        let peer = PeerSet::default();
        wipes(
            peer.preshared_key
                .as_ref()
                .unwrap_or(&Zeroizing::new([0; 32])),
        );
    }

    #[test]
    fn debug_and_errors_have_no_key_material() {
        let psk = "5555555555555555555555555555555555555555555555555555555555555555";
        let lines = [
            "set=1".to_string(),
            format!("private_key={K1}"),
            format!("public_key={K2}"),
            format!("preshared_key={psk}"),
        ];
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let request = parse(&refs).expect("parses");
        let text = format!("{request:?} {request:#?}");
        assert!(text.contains("<redacted>"), "{text}");
        for secret in [K1, psk, "232, 75, 90", "85, 85, 85", "e8, 4b", "0x55"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let e = parse(&["set=1", K1]).expect_err("not key=value");
        assert!(!e.message.contains(K1), "{}", e.message);
    }

    #[test]
    fn get_is_get() {
        assert_eq!(parse(&["get=1"]), Ok(Request::Get));
        assert_eq!(
            parse(&["wgdp-show=1"]),
            Ok(Request::WgdpShow { peers: true })
        );
        assert_eq!(
            parse(&["wgdp-show=counters"]),
            Ok(Request::WgdpShow { peers: false })
        );
        assert_eq!(parse(&["wgdp-show=0"]).unwrap_err().errno, errno::EPROTO);
        assert_eq!(
            parse(&["wgdp-show=counters", "x=1"]).unwrap_err().errno,
            errno::EPROTO
        );
        assert_eq!(parse(&["get=1", "x=1"]).unwrap_err().errno, errno::EPROTO);
        assert_eq!(parse(&["hello"]).unwrap_err().errno, errno::EPROTO);
        assert_eq!(parse(&[]).unwrap_err().errno, errno::EPROTO);
    }

    #[test]
    fn set_as_wg_sends_it() {
        // What `wg set wgdp0 listen-port 51820 peer K2 endpoint [2001:db8::1]:51820
        // persistent-keepalive 25 allowed-ips 10.9.0.2/32,fd00::/64` sends.
        let pk = format!("private_key={K1}");
        let peer = format!("public_key={K2}");
        let lines = [
            "set=1",
            &pk,
            "listen_port=51820",
            "replace_peers=false",
            &peer,
            "endpoint=[2001:db8::1]:51820",
            "persistent_keepalive_interval=25",
            "replace_allowed_ips=true",
            "allowed_ip=10.9.0.2/32",
            "allowed_ip=fd00::/64",
        ];
        let Ok(Request::Set(set)) = parse(&lines) else {
            panic!("parses")
        };
        assert_eq!(set.listen_port, Some(51820));
        assert!(set.private_key.is_some());
        assert_eq!(set.peers.len(), 1);
        let p = &set.peers[0];
        assert_eq!(p.public_key[0], 0xb8);
        assert_eq!(p.endpoint, Some("[2001:db8::1]:51820".parse().unwrap()));
        assert_eq!(p.persistent_keepalive, Some(25));
        assert!(p.replace_allowed_ips);
        assert_eq!(
            p.allowed_ips,
            vec!["10.9.0.2/32".parse().unwrap(), "fd00::/64".parse().unwrap()]
        );
    }

    #[test]
    fn a_minus_allowed_ip_removes_that_prefix() {
        let peer = format!("public_key={K2}");
        let lines = [
            "set=1",
            &peer,
            "allowed_ip=10.9.0.0/24",
            "allowed_ip=-10.9.1.0/24",
            "allowed_ip=-fd00::/64",
        ];
        let Ok(Request::Set(set)) = parse(&lines) else {
            panic!("parses")
        };
        let p = &set.peers[0];
        assert_eq!(p.allowed_ips, vec!["10.9.0.0/24".parse().unwrap()]);
        assert_eq!(
            p.removed_ips,
            vec!["10.9.1.0/24".parse().unwrap(), "fd00::/64".parse().unwrap()]
        );
        for bad in [
            "allowed_ip=-",
            "allowed_ip=--10.9.1.0/24",
            "allowed_ip=-10.9.1.0/33",
        ] {
            assert_eq!(
                parse(&["set=1", &peer, bad]).unwrap_err().errno,
                errno::EINVAL,
                "{bad}"
            );
        }
    }

    #[test]
    fn removal_and_errors() {
        let peer = format!("public_key={K2}");
        let Ok(Request::Set(set)) = parse(&["set=1", &peer, "remove=true"]) else {
            panic!()
        };
        assert!(set.peers[0].remove);
        for bad in [
            vec!["set=1", "public_key=zz"],
            vec!["set=1", &peer, "allowed_ip=10.0.0.0/33"],
            vec!["set=1", &peer, "endpoint=nowhere"],
            vec!["set=1", &peer, "endpoint=1.2.3.4:0"],
            vec!["set=1", "listen_port=70000"],
            vec!["set=1", "nokey"],
            vec!["set=1", "endpoint=1.2.3.4:5"],
            vec!["set=1", &peer, "remove=yes"],
        ] {
            assert_eq!(parse(&bad).unwrap_err().errno, errno::EINVAL, "{bad:?}");
        }
    }

    #[test]
    fn set_renders_what_parse_reads() {
        let peers = vec![
            PeerSet {
                public_key: [0xb8; 32],
                preshared_key: Some(Zeroizing::new([7; 32])),
                endpoint: Some("[2001:db8::1]:51820".parse().unwrap()),
                persistent_keepalive: Some(0),
                replace_allowed_ips: true,
                allowed_ips: vec!["10.9.0.2/32".parse().unwrap(), "fd00::/64".parse().unwrap()],
                removed_ips: vec!["10.9.7.0/24".parse().unwrap()],
                ..PeerSet::default()
            },
            PeerSet {
                public_key: [0xe8; 32],
                update_only: true,
                ..PeerSet::default()
            },
            PeerSet {
                public_key: [0x01; 32],
                remove: true,
                ..PeerSet::default()
            },
        ];
        let text = render_set(&peers);
        assert!(text.ends_with("\n\n") && !text.ends_with("\n\n\n"));
        let lines: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
        let Ok(Request::Set(set)) = parse(&lines) else {
            panic!("{}", &*text)
        };
        assert_eq!(set.peers, peers);
        assert_eq!(&*render_set(&[]), "set=1\n\n");
    }

    #[test]
    fn get_renders_like_wireguard_go() {
        let info = InterfaceInfo {
            private_key: Zeroizing::new([1; 32]),
            listen_port: 51820,
            peers: vec![PeerInfo {
                peer: PeerSnapshot {
                    public_key: [0xab; 32],
                    endpoint: Some("203.0.113.2:51821".parse().unwrap()),
                    latest_handshake: Some(std::time::Duration::new(1_700_000_000, 5)),
                    handshakes: 1,
                    rx_bytes: 20,
                    tx_bytes: 10,
                    allowed_ips: vec![protocol::allowedips::Prefix::new(
                        "10.9.0.2".parse().unwrap(),
                        32,
                    )
                    .unwrap()],
                    persistent_keepalive: Some(25),
                    owner_lcore: 1,
                    lanes: 1,
                    plain_packets: 0,
                    plain_handed_off: 0,
                },
                preshared_key: None,
            }],
        };
        let text = render_get(&info);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("private_key={}", "01".repeat(32)));
        assert_eq!(lines[1], "listen_port=51820");
        assert_eq!(lines[2], format!("public_key={}", "ab".repeat(32)));
        assert_eq!(lines[3], format!("preshared_key={}", "00".repeat(32)));
        assert!(lines.contains(&"endpoint=203.0.113.2:51821"));
        assert!(lines.contains(&"last_handshake_time_sec=1700000000"));
        assert!(lines.contains(&"last_handshake_time_nsec=5"));
        assert!(lines.contains(&"allowed_ip=10.9.0.2/32"));
        assert!(text.ends_with("errno=0\n\n"));
    }
}
