//! The wgdp tunnel table.
//!
//! This crate owns the operator's configuration: the TOML types for the
//! interface, DPDK, the two ports and the peers; parsing where every error
//! names file, line, column and field path; and validation. The format is
//! documented in `docs/config.md`; `conf/example.toml` is a complete example.
//!
//! [`Config::from_str`] is a pure function of the text (it reads no files);
//! [`Config::load`] reads a file and its `private_key_file`.
//! [`import_wg_quick`] converts a wg-quick / wg(8) file into the table.
//! [`TableFile`] writes live peer changes back to the file, keeping its
//! comments, atomically.

mod cidr;
pub mod eal;
mod edit;
mod error;
mod keys;
mod load;
mod render;
mod schema;
mod validate;
mod wgquick;

use std::net::{IpAddr, SocketAddr};

pub use cidr::{Cidr, CidrParseError};
pub use edit::TableFile;
pub use error::{ConfError, ConfErrors, Location};
pub use keys::{
    decode_key, encode_key, KeyParseError, KeySource, PresharedKey, PrivateKey, PublicKey,
};
pub use load::Loaded;
pub use wgquick::{import_wg_quick, import_wg_quick_file, Imported, IMPORT_DEFAULT_LISTEN_PORT};

/// Default `dpdk.mbufs`.
pub const DEFAULT_MBUFS: u32 = 16383;
/// Default `dpdk.idle_sleep_us` (0: pure busy polling).
pub const DEFAULT_IDLE_SLEEP_US: u32 = 0;
/// Default `dpdk.icmp_per_sec`: the kernel's `net.ipv4.icmp_msgs_per_sec`.
pub const DEFAULT_ICMP_PER_SEC: u32 = 1000;
/// Default `dpdk.icmp_burst`: the kernel's `net.ipv4.icmp_msgs_burst`.
pub const DEFAULT_ICMP_BURST: u32 = 50;
/// Default `dpdk.idle_polls`.
pub const DEFAULT_IDLE_POLLS: u32 = 1024;
/// Default port `mtu`.
pub const DEFAULT_MTU: u16 = 1500;
/// Most lanes a peer may have (`peers.lanes`); also at most the workers.
pub const MAX_LANES: u16 = 64;
/// Default `interface.name`.
pub const DEFAULT_INTERFACE_NAME: &str = "wgdp0";

/// A whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[interface]`: our identity.
    pub interface: Interface,
    /// `[dpdk]`: EAL and worker lcores.
    pub dpdk: Dpdk,
    /// `[ports.tunnel]` and `[ports.plaintext]`, or `[ports.both]`.
    pub ports: Ports,
    /// `[[peers]]`, in file order.
    pub peers: Vec<PeerConf>,
    /// `[[groups]]`, in file order: tunnel groups (ECMP over tunnels).
    pub groups: Vec<GroupConf>,
    /// `[metrics]`: the metrics endpoint; `None` (section absent) serves none.
    pub metrics: Option<Metrics>,
    /// `[cluster]`: export of live routes for a routing daemon; `None`
    /// (section absent) exports nothing (docs/cluster.md).
    pub cluster: Option<Cluster>,
}

/// `[interface]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Our X25519 private key.
    pub private_key: PrivateKey,
    /// Whether the key was given inline or in a file (for rendering).
    pub key_source: KeySource,
    /// The UDP port handshakes and data arrive on (nonzero).
    pub listen_port: u16,
    /// The interface name the standard `wg` tool uses (`wg show NAME`); the
    /// UAPI socket is `/var/run/wireguard/NAME.sock`. 1..=15 characters of
    /// `A-Z a-z 0-9 _ . = + -`, not `.` or `..`.
    pub name: String,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// The TCP address the metrics endpoint listens on (port nonzero).
    pub listen: SocketAddr,
}

/// `[cluster]`: running as one of several instances behind ECMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The kernel routing table the allowed IPs of the peers with a live
    /// session are exported to, as routes on the plaintext exception TAP
    /// (1..=252: the kernel's reserved default, main and local tables and
    /// the unspecified 0 are refused).
    pub export_table: u8,
}

/// `[dpdk]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpdk {
    /// EAL arguments, passed verbatim.
    pub eal_args: Vec<String>,
    /// Worker lcore ids: non-empty, distinct.
    pub workers: Vec<u32>,
    /// Mbufs in the packet pool (1024..=1048575).
    pub mbufs: u32,
    /// Microseconds to sleep between polls once idle; 0 busy-polls.
    pub idle_sleep_us: u32,
    /// Empty polls in a row before a worker counts as idle.
    pub idle_polls: u32,
    /// The transport AEAD implementation.
    pub aead: Aead,
    /// The DPDK crypto device `aead = "cryptodev"` uses (its name or
    /// devargs); set exactly when `aead` is `Cryptodev`.
    pub crypto_device: Option<String>,
    /// Packets staged while handshakes run, over all peers and workers
    /// (0..=`mbufs`); `None`: [`Dpdk::staging_budget`]'s default.
    pub staging_budget: Option<u32>,
    /// ICMP errors each worker sends a second at most (0: none).
    pub icmp_per_sec: u32,
    /// ICMP errors each worker may send at once (1..=10000).
    pub icmp_burst: u32,
    /// Threads doing the handshakes' X25519 work for the control thread
    /// (0..=64; 0: the control thread does it); `None`: a default from the
    /// machine's CPUs (`control::handshake_pool::default_threads`).
    pub handshake_threads: Option<u32>,
    /// The control thread's nice value (-20..=19), set when it starts;
    /// `None`: [`DEFAULT_CONTROL_NICE`], and a refusal (no
    /// `CAP_SYS_NICE`) is only warned about and counted, where a value
    /// given here that cannot be set stops the start.
    pub control_nice: Option<i32>,
}

/// The control thread's nice value when `dpdk.control_nice` is not set:
/// ahead of wgdp's helper threads and of the processes that share its
/// CPU (a `wg show dump` of 100k peers, say), as an appliance would.
pub const DEFAULT_CONTROL_NICE: i32 = -10;

impl Dpdk {
    /// The control thread's nice value in force: as set, else
    /// [`DEFAULT_CONTROL_NICE`].
    pub fn control_nice(&self) -> i32 {
        self.control_nice.unwrap_or(DEFAULT_CONTROL_NICE)
    }

    /// The staging budget in force: as set, else a quarter of the pool,
    /// which leaves the rest to the RX rings and packets in flight.
    pub fn staging_budget(&self) -> u32 {
        self.staging_budget.unwrap_or(self.mbufs / 4)
    }
}

/// `ports.plaintext.mss_clamp`: the MSS written into TCP SYNs crossing the
/// tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssClamp {
    /// The tunnel's inner MTU minus 40 (IPv4) or 60 (IPv6): `"auto"`.
    Auto,
    /// This MSS for both families (536..=65495).
    Fixed(u16),
}

/// `dpdk.aead`: which ChaCha20-Poly1305 implementation seals and opens
/// data messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aead {
    /// The fastest one this CPU has for one packet (ipsec-mb where it runs
    /// AVX-512 code, else ring), and, where a start-up measure shows it
    /// faster, the multi-buffer one for bursts of short packets.
    #[default]
    Auto,
    /// ring (portable).
    Ring,
    /// Intel ipsec-mb (refused at start-up where it has no AVX-512 path).
    IpsecMb,
    /// A DPDK crypto device (`crypto_device`): a software vdev or an
    /// accelerator such as QAT.
    Cryptodev,
    /// Every burst's packets sealed together in multi-buffer passes
    /// (AVX-512 or AVX2; refused at start-up without either), whatever
    /// their length; the fastest one-packet backend for the rest.
    Multibuffer,
}

impl Aead {
    /// Every value, with its name in the table.
    pub const NAMES: &'static [(Aead, &'static str)] = &[
        (Aead::Auto, "auto"),
        (Aead::Ring, "ring"),
        (Aead::IpsecMb, "ipsec-mb"),
        (Aead::Cryptodev, "cryptodev"),
        (Aead::Multibuffer, "multibuffer"),
    ];

    /// The name in the table.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("auto", |(_, n)| n)
    }

    /// The value called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| *a)
    }
}

/// `[ports]`: the port of each role. `[ports.tunnel]` and
/// `[ports.plaintext]` are two ports, or two VLANs of one device
/// ([`Ports::vlan_split`]); `[ports.both]` is one port carrying both
/// roles (one-armed mode, docs/one-armed.md), given here as the same port
/// in both fields ([`Ports::one_armed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ports {
    /// Faces the internet: carries the encrypted UDP.
    pub tunnel: PortConf,
    /// Faces the protected networks: carries plaintext.
    pub plaintext: PortConf,
}

impl Ports {
    /// Whether one port carries both roles (`[ports.both]`): two ports
    /// never share a device, so equal ports are one.
    pub fn one_armed(&self) -> bool {
        self.tunnel == self.plaintext
    }

    /// Whether the two roles are two VLANs of one device (`[ports.tunnel]`
    /// and `[ports.plaintext]` naming the same `device`, each with its own
    /// `vlan`; docs/one-armed.md).
    pub fn vlan_split(&self) -> bool {
        !self.one_armed()
            && self
                .tunnel
                .device
                .eq_ignore_ascii_case(&self.plaintext.device)
    }
}

/// `[ports.tunnel]`, `[ports.plaintext]` or `[ports.both]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConf {
    /// PCI address or DPDK vdev string.
    pub device: String,
    /// Our addresses on this port, each with its prefix (host bits allowed).
    pub address: Vec<Cidr>,
    /// Next hops: at most one IPv4 and one IPv6, each inside an `address` prefix.
    pub gateway: Vec<IpAddr>,
    /// The port MTU (1280..=9000).
    pub mtu: u16,
    /// The kernel exception TAP interface name.
    pub tap: String,
    /// Tunnel role only: the outer UDP source ports of multi-lane peers'
    /// packets, one per worker (`lane_ports = "FIRST-LAST"`).
    pub lane_ports: Option<PortRange>,
    /// Plaintext role only: TCP MSS clamping; `None` (absent or `"off"`):
    /// off.
    pub mss_clamp: Option<MssClamp>,
    /// The 802.1Q VLAN (1..=4094) the port runs as: frames carry this tag
    /// on the wire, and others are dropped. `None`: untagged only.
    pub vlan: Option<u16>,
}

/// An inclusive range of UDP ports, `FIRST-LAST` in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port (nonzero).
    pub first: u16,
    /// The last port (not below `first`).
    pub last: u16,
}

impl PortRange {
    /// How many ports.
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Never empty; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// The port of worker `index` (worker `i` sends from `first + i`,
    /// wrapping round when there are more workers than ports).
    pub fn port(&self, index: usize) -> u16 {
        self.first + (index % self.len()) as u16
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for PortRange {
    type Err = ();

    /// `FIRST-LAST` (or one port), nonzero, not backwards.
    fn from_str(s: &str) -> Result<Self, ()> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let first: u16 = a.trim().parse().map_err(|_| ())?;
        let last: u16 = b.trim().parse().map_err(|_| ())?;
        (first != 0 && first <= last)
            .then_some(PortRange { first, last })
            .ok_or(())
    }
}

/// One `[[peers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConf {
    /// The peer's public key (distinct across peers, not our own).
    pub public_key: PublicKey,
    /// The optional preshared key.
    pub preshared_key: Option<PresharedKey>,
    /// Where to send to before the peer has been heard from.
    pub endpoint: Option<SocketAddr>,
    /// Canonical prefixes routed to this peer; each belongs to one peer only.
    pub allowed_ips: Vec<Cidr>,
    /// Keepalive interval in seconds; `None` when off (0 or absent).
    pub persistent_keepalive: Option<u16>,
    /// Workers that may encrypt and decrypt for this peer at once, each
    /// from its own outer source port (1..=[`MAX_LANES`], at most the
    /// workers; default 1: only the owner worker). See docs/lanes.md.
    pub lanes: u16,
}

/// Most members a group may have: the member is chosen per packet by
/// scoring every live member (rendezvous hashing), so the cost grows with
/// the group.
pub const MAX_GROUP_MEMBERS: usize = 64;

/// One `[[groups]]` entry: several peers towards one site, and the
/// prefixes routed to the site through whichever member a flow hashes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConf {
    /// The group's name (unique; 1..=32 of `A-Z a-z 0-9 _ . -`), used in
    /// `wgdp show` and the metrics.
    pub name: String,
    /// The member peers, by public key: each is a `[[peers]]` entry, at
    /// most once; 1..=[`MAX_GROUP_MEMBERS`].
    pub members: Vec<PublicKey>,
    /// Canonical prefixes routed to the group. None equals a peer's
    /// allowed IP or another group's prefix; nested prefixes are allowed
    /// and the longest match wins.
    pub prefixes: Vec<Cidr>,
}

impl Config {
    /// Parses and validates `text`, naming it `origin` in errors.
    ///
    /// Pure: reads no files, so `private_key_file` is refused here with
    /// [`ConfError::KeyFileNotLoaded`]; use [`Config::load`] for that.
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfErrors> {
        validate::parse(text, origin, &mut |_| {
            Err(validate::KeyFileProblem::NotLoaded)
        })
    }
}
