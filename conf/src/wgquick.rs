//! Importing a wg-quick / wg(8) configuration file into the TOML table.
//!
//! The INI dialect is wg(8)'s: `[Interface]` and `[Peer]` sections, keys
//! and section names case-insensitive, `#` starts a comment anywhere on a
//! line, blank lines are ignored. What wgdp has an equivalent for is
//! converted; everything else (wg-quick's `Address`, `DNS`, `MTU`, `Table`,
//! hooks, `SaveConfig`, wg's `FwMark`, unknown keys, host-name endpoints) is
//! reported as not mapped, with the reason. The sections wgdp needs and the
//! INI file lacks (`[dpdk]`, `[ports.*]`) are emitted as placeholders: the
//! ports' `device` and `address` are left empty, so that `wgdp check`
//! rejects the result until the operator fills them in.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::cidr::Cidr;
use crate::error::{ConfError, ConfErrors, Location};
use crate::keys::{PresharedKey, PrivateKey, PublicKey};
use crate::render::{peer_fields, quote};
use crate::validate::{is_interface_name, WG_NAME_PUNCT};
use crate::PeerConf;

/// The listen port used when the wg-quick file has none (or 0, random).
pub const IMPORT_DEFAULT_LISTEN_PORT: u16 = 51820;

/// The result of [`import_wg_quick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The TOML table. It holds the private key inline: treat it as secret.
    /// Its port `device` and `address` fields are empty placeholders that
    /// `wgdp check` rejects until they are filled in.
    pub toml: String,
    /// Each line of the input that has no wgdp equivalent, as
    /// `[Section] Key = value (reason; origin:line)`.
    pub unmapped: Vec<String>,
    /// What the operator should know or do: fields to edit, defaults
    /// chosen, values changed (e.g. allowed IPs with host bits cleared).
    pub notes: Vec<String>,
}

impl Drop for Imported {
    /// The table holds the private key: wipe it.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.toml);
    }
}

/// Converts the wg-quick (or `wg setconf`) file `text` into the wgdp TOML
/// table; `origin` names it in errors and, when it is a file name ending in
/// `.conf` whose stem is a valid interface name (as wg-quick requires, e.g.
/// `wg0.conf`), gives `interface.name`.
///
/// Pure: reads nothing. Every problem that stops the import (a bad key,
/// prefix, port or endpoint, a line that is not `Key = Value`, an unknown
/// section, a missing `PrivateKey` or `PublicKey`) is collected and
/// returned with its line and column.
pub fn import_wg_quick(text: &str, origin: &str) -> Result<Imported, ConfErrors> {
    let mut p = Importer {
        origin,
        errors: Vec::new(),
        unmapped: Vec::new(),
        notes: Vec::new(),
        interface: None,
        peers: Vec::new(),
    };
    // A byte order mark, as some Windows editors write, is not content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut section = Section::None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or_default();
        let trimmed = content.trim();
        if trimmed.is_empty() {
            continue;
        }
        let indent = content.len() - content.trim_start().len();
        let at = |offset: usize| Location {
            origin: origin.to_owned(),
            line,
            column: raw[..offset].chars().count() + 1,
        };
        if let Some(header) = trimmed.strip_prefix('[') {
            section = p.section(header, at(indent), line);
            continue;
        }
        // Keys are words (wg(8) would read `Public Key = x` as the unknown
        // key `PublicKey`, and `PublicKey x=` as `PublicKeyx`).
        let key_value = content.find('=').map(|eq| (eq, content[..eq].trim()));
        let Some((eq, key)) = key_value
            .filter(|(_, k)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric()))
        else {
            p.error(at(indent), section.path(), "expected `Key = Value`");
            continue;
        };
        let after = &content[eq + 1..];
        let value = after.trim();
        let value_at = at(eq + 1 + after.len() - after.trim_start().len());
        let entry = Entry {
            key,
            value,
            at: value_at,
            line,
        };
        match section {
            Section::None => p.error(at(indent), key.to_owned(), "outside any section"),
            Section::Unknown => {}
            Section::Interface => p.interface_key(&entry),
            Section::Peer(n) => p.peer_key(n, &entry),
        }
    }
    p.finish(text)
}

/// Reads the wg-quick file at `path` and imports it with
/// [`import_wg_quick`], naming it by its path; the text read (which holds
/// the private key) is wiped afterwards.
pub fn import_wg_quick_file(path: &Path) -> Result<Imported, ConfErrors> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Read {
        file: path.to_owned(),
        source,
    })?;
    let text = zeroize::Zeroizing::new(text);
    import_wg_quick(&text, &path.display().to_string())
}

/// The section the lines belong to.
#[derive(Debug, Clone, Copy)]
enum Section {
    /// Before the first header.
    None,
    /// An unknown section (already reported): its lines are skipped.
    Unknown,
    /// `[Interface]`.
    Interface,
    /// The `n`th `[Peer]` (from 0).
    Peer(usize),
}

impl Section {
    fn path(self) -> String {
        match self {
            Section::None => "(no section)".into(),
            Section::Unknown => "(unknown section)".into(),
            Section::Interface => "Interface".into(),
            Section::Peer(n) => format!("Peer[{n}]"),
        }
    }
}

/// One `Key = Value` line.
struct Entry<'t> {
    key: &'t str,
    value: &'t str,
    /// Where the value starts.
    at: Location,
    line: usize,
}

/// `[Interface]` as read so far.
struct InterfaceIn {
    /// The header's position, for "missing" errors.
    at: Location,
    private_key: Option<PrivateKey>,
    listen_port: Option<u16>,
    /// Key (lowercase) to the line it was first given on.
    seen: HashMap<String, usize>,
}

/// One `[Peer]` as read so far.
struct PeerIn {
    at: Location,
    line: usize,
    public_key: Option<(PublicKey, Location)>,
    preshared_key: Option<PresharedKey>,
    endpoint: Option<SocketAddr>,
    allowed_ips: Vec<Cidr>,
    persistent_keepalive: Option<u16>,
    seen: HashMap<String, usize>,
}

struct Importer<'a> {
    origin: &'a str,
    errors: Vec<ConfError>,
    unmapped: Vec<String>,
    notes: Vec<String>,
    interface: Option<InterfaceIn>,
    peers: Vec<PeerIn>,
}

/// Why wg-quick's own keys have no equivalent in wgdp.
fn unmapped_reason(key: &str) -> Option<&'static str> {
    Some(match key {
        "address" => {
            "the tunnel interface's own inner address: wgdp has no tunnel interface; \
             its addresses are those of its ports, [ports.plaintext] address"
        }
        "dns" => "wgdp configures no resolver",
        "mtu" => "wgdp has no tunnel interface; the port MTUs are [ports.*] mtu",
        "table" => "wgdp adds no kernel routes: allowed_ips are routed inside wgdp",
        "preup" | "postup" | "predown" | "postdown" => "wgdp runs no hook commands",
        "saveconfig" => "wg-quick's save-on-down; wgdp keeps its own table",
        "fwmark" => "wgdp sends from its DPDK port: there is no socket to mark",
        _ => return None,
    })
}

impl Importer<'_> {
    fn error(&mut self, at: Location, path: String, message: impl Into<String>) {
        self.errors.push(ConfError::WgQuick {
            at,
            path,
            message: message.into(),
        });
    }

    fn not_mapped(&mut self, section: &str, e: &Entry, reason: &str) {
        self.unmapped.push(format!(
            "[{section}] {} = {} ({reason}; {}:{})",
            e.key, e.value, self.origin, e.line
        ));
    }

    /// Handles a `[...]` line; returns the section its keys belong to.
    fn section(&mut self, header: &str, at: Location, line: usize) -> Section {
        let Some(name) = header.strip_suffix(']') else {
            self.error(at, format!("[{header}"), "section header without `]`");
            return Section::Unknown;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "interface" => {
                if self.interface.is_none() {
                    self.interface = Some(InterfaceIn {
                        at,
                        private_key: None,
                        listen_port: None,
                        seen: HashMap::new(),
                    });
                }
                Section::Interface
            }
            "peer" => {
                self.peers.push(PeerIn {
                    at,
                    line,
                    public_key: None,
                    preshared_key: None,
                    endpoint: None,
                    allowed_ips: Vec::new(),
                    persistent_keepalive: None,
                    seen: HashMap::new(),
                });
                Section::Peer(self.peers.len() - 1)
            }
            _ => {
                self.error(
                    at,
                    format!("[{name}]"),
                    "unknown section (wg(8) knows [Interface] and [Peer])",
                );
                Section::Unknown
            }
        }
    }

    /// Records that `key` was given on `line`; an error if it already was.
    fn once(&mut self, seen: Seen, e: &Entry, path: &str) -> bool {
        let key = e.key.to_ascii_lowercase();
        let map = match seen {
            Seen::Interface => self.interface.as_mut().map(|i| &mut i.seen),
            Seen::Peer(n) => self.peers.get_mut(n).map(|p| &mut p.seen),
        };
        let Some(map) = map else {
            return false;
        };
        if let Some(first) = map.get(&key) {
            let message = format!("given twice (first on line {first})");
            self.error(e.at.clone(), path.to_owned(), message);
            return false;
        }
        map.insert(key, e.line);
        true
    }

    fn interface_key(&mut self, e: &Entry) {
        let key = e.key.to_ascii_lowercase();
        match key.as_str() {
            "privatekey" => {
                let path = "Interface.PrivateKey";
                if !self.once(Seen::Interface, e, path) {
                    return;
                }
                match e.value.parse::<PrivateKey>() {
                    Ok(k) => {
                        if let Some(i) = self.interface.as_mut() {
                            i.private_key = Some(k);
                        }
                    }
                    Err(_) => self.errors.push(ConfError::BadKey {
                        at: e.at.clone(),
                        path: path.into(),
                    }),
                }
            }
            "listenport" => {
                let path = "Interface.ListenPort";
                if !self.once(Seen::Interface, e, path) {
                    return;
                }
                if let Some(port) = self.integer(e, path, 0, 65535) {
                    if let Some(i) = self.interface.as_mut() {
                        i.listen_port = Some(port).filter(|&p| p != 0);
                    }
                }
            }
            other => {
                let reason = unmapped_reason(other).unwrap_or("not a wg(8) or wg-quick key");
                self.not_mapped("Interface", e, reason);
            }
        }
    }

    fn peer_key(&mut self, n: usize, e: &Entry) {
        let key = e.key.to_ascii_lowercase();
        let path = |name: &str| format!("Peer[{n}].{name}");
        match key.as_str() {
            "publickey" => {
                let path = path("PublicKey");
                if !self.once(Seen::Peer(n), e, &path) {
                    return;
                }
                match e.value.parse::<PublicKey>() {
                    Ok(k) => self.peer(n).public_key = Some((k, e.at.clone())),
                    Err(_) => self.errors.push(ConfError::BadKey {
                        at: e.at.clone(),
                        path,
                    }),
                }
            }
            "presharedkey" => {
                let path = path("PresharedKey");
                if !self.once(Seen::Peer(n), e, &path) {
                    return;
                }
                match e.value.parse::<PresharedKey>() {
                    Ok(k) => self.peer(n).preshared_key = Some(k),
                    Err(_) => self.errors.push(ConfError::BadKey {
                        at: e.at.clone(),
                        path,
                    }),
                }
            }
            // Repeated AllowedIPs lines accumulate, as in wg(8).
            "allowedips" => self.allowed_ips(n, e, &path("AllowedIPs")),
            "endpoint" => {
                let path = path("Endpoint");
                if self.once(Seen::Peer(n), e, &path) {
                    self.endpoint(n, e, path);
                }
            }
            "persistentkeepalive" => {
                let path = path("PersistentKeepalive");
                if !self.once(Seen::Peer(n), e, &path) {
                    return;
                }
                if e.value.eq_ignore_ascii_case("off") {
                    return;
                }
                if let Some(k) = self.integer(e, &path, 0, 65535) {
                    self.peer(n).persistent_keepalive = Some(k).filter(|&k| k != 0);
                }
            }
            other => {
                let reason = unmapped_reason(other)
                    .map(|r| format!("{r} (and it belongs in [Interface])"))
                    .unwrap_or_else(|| "not a wg(8) or wg-quick key".into());
                self.not_mapped("Peer", e, &reason);
            }
        }
    }

    /// The `n`th peer. Peers are only ever added, and `n` comes from
    /// [`Section::Peer`], so it exists.
    fn peer(&mut self, n: usize) -> &mut PeerIn {
        &mut self.peers[n]
    }

    /// A decimal integer in `min..=max`, as a `u16`.
    fn integer(&mut self, e: &Entry, path: &str, min: u16, max: u16) -> Option<u16> {
        let Ok(v) = e.value.parse::<i64>() else {
            self.error(
                e.at.clone(),
                path.to_owned(),
                format!("{:?} is not a number", e.value),
            );
            return None;
        };
        let ok = (i64::from(min)..=i64::from(max)).contains(&v);
        if !ok {
            self.errors.push(ConfError::OutOfRange {
                at: e.at.clone(),
                path: path.to_owned(),
                value: v,
                min: min.into(),
                max: max.into(),
            });
        }
        u16::try_from(v).ok().filter(|_| ok)
    }

    fn allowed_ips(&mut self, n: usize, e: &Entry, path: &str) {
        for item in e.value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            // As in wg(8), an address without a length is a single host.
            let parsed = if item.contains('/') {
                item.parse::<Cidr>()
            } else {
                item.parse::<IpAddr>()
                    .map(|ip| match ip {
                        IpAddr::V4(_) => Cidr {
                            addr: ip,
                            prefix_len: 32,
                        },
                        IpAddr::V6(_) => Cidr {
                            addr: ip,
                            prefix_len: 128,
                        },
                    })
                    .map_err(|_| crate::cidr::CidrParseError::BadAddress)
            };
            let cidr = match parsed {
                Ok(c) => c,
                Err(reason) => {
                    self.errors.push(ConfError::BadCidr {
                        at: e.at.clone(),
                        path: path.to_owned(),
                        value: item.to_owned(),
                        reason: reason.to_string(),
                    });
                    continue;
                }
            };
            let canonical = cidr.canonical();
            if canonical != cidr {
                self.notes.push(format!(
                    "{path}: {cidr} has host bits set; imported as {canonical}, \
                     which is what wg(8) uses ({}:{})",
                    self.origin, e.line
                ));
            }
            let peer = self.peer(n);
            if !peer.allowed_ips.contains(&canonical) {
                peer.allowed_ips.push(canonical);
            }
        }
    }

    fn endpoint(&mut self, n: usize, e: &Entry, path: String) {
        if let Ok(addr) = e.value.parse::<SocketAddr>() {
            if addr.port() != 0 {
                self.peer(n).endpoint = Some(addr);
                return;
            }
        } else if is_host_and_port(e.value) {
            self.not_mapped(
                "Peer",
                e,
                &format!(
                    "peers[{n}] is imported without an endpoint: wgdp does not resolve \
                     host names; write the peer's IP address as endpoint, or leave it out \
                     and let the peer connect first"
                ),
            );
            return;
        }
        self.errors.push(ConfError::BadEndpoint {
            at: e.at.clone(),
            path,
            value: e.value.to_owned(),
        });
    }

    /// Checks what needs the whole file, and renders the table.
    fn finish(mut self, text: &str) -> Result<Imported, ConfErrors> {
        let Some(interface) = self.interface.take() else {
            let at = Location::from_offset(self.origin, text, 0);
            self.error(
                at,
                "Interface".into(),
                "missing section: wgdp needs [Interface] with PrivateKey",
            );
            return Err(ConfErrors(self.errors));
        };
        let own = interface.private_key.as_ref().map(PrivateKey::public_key);
        // A bad key was reported where it was read.
        if !interface.seen.contains_key("privatekey") {
            self.errors.push(ConfError::MissingField {
                at: interface.at.clone(),
                path: "Interface.PrivateKey".into(),
            });
        }
        let peers = self.peers_conf(own);
        let (Some(private_key), Some(peers), true) =
            (interface.private_key, peers, self.errors.is_empty())
        else {
            return Err(ConfErrors(self.errors));
        };
        let toml = self.render(&private_key, interface.listen_port, &peers);
        Ok(Imported {
            toml,
            unmapped: self.unmapped,
            notes: self.notes,
        })
    }

    /// The peers as wgdp sees them: a public key each, not our own, not
    /// twice; a prefix given to two peers goes to the later one, as in wg(8).
    fn peers_conf(&mut self, own: Option<PublicKey>) -> Option<Vec<PeerConf>> {
        let peers_in = std::mem::take(&mut self.peers);
        let mut peers: Vec<PeerConf> = Vec::with_capacity(peers_in.len());
        let mut keys: HashMap<PublicKey, usize> = HashMap::new();
        let mut owner: HashMap<Cidr, usize> = HashMap::new();
        let mut ok = true;
        for (n, p) in peers_in.into_iter().enumerate() {
            let path = format!("Peer[{n}].PublicKey");
            let Some((public_key, key_at)) = p.public_key else {
                // A bad key was reported where it was read.
                if !p.seen.contains_key("publickey") {
                    self.errors.push(ConfError::MissingField { at: p.at, path });
                }
                ok = false;
                continue;
            };
            if Some(public_key) == own {
                self.errors
                    .push(ConfError::OwnPublicKey { at: key_at, path });
                ok = false;
                continue;
            }
            if let Some(first) = keys.insert(public_key, n) {
                let message = format!("same PublicKey as Peer[{first}]: merge the two sections");
                self.error(key_at, path, message);
                ok = false;
                continue;
            }
            for cidr in &p.allowed_ips {
                if let Some(before) = owner.insert(*cidr, peers.len()) {
                    if let Some(earlier) = peers.get_mut(before) {
                        earlier.allowed_ips.retain(|c| c != cidr);
                    }
                    self.notes.push(format!(
                        "{cidr} is in the AllowedIPs of two peers; as in wg(8) the later one \
                         ({}:{}) gets it",
                        self.origin, p.line
                    ));
                }
            }
            peers.push(PeerConf {
                public_key,
                preshared_key: p.preshared_key,
                endpoint: p.endpoint,
                allowed_ips: p.allowed_ips,
                persistent_keepalive: p.persistent_keepalive,
                lanes: 1,
            });
        }
        ok.then_some(peers)
    }

    fn render(&mut self, key: &PrivateKey, listen_port: Option<u16>, peers: &[PeerConf]) -> String {
        // The origin goes into a comment: no line breaks or other controls.
        let origin: String = self
            .origin
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let mut out = format!(
            "# Imported from {origin} by `wgdp import wg-quick`; the format is in\n\
             # docs/config.md. Before use, fill in the device and address of\n\
             # [ports.tunnel] and [ports.plaintext] (left empty: `wgdp check` rejects\n\
             # them until they are set), and review [dpdk]. This file holds the\n\
             # private key: keep it mode 0600.\n\n[interface]\n"
        );
        let name = Path::new(self.origin)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| f.strip_suffix(".conf"))
            .filter(|stem| is_interface_name(stem, WG_NAME_PUNCT));
        if let Some(name) = name {
            let _ = writeln!(out, "name = {}", quote(name));
            self.notes.push(format!(
                "interface.name = {name:?}, from the file name as wg-quick does: \
                 `wg show {name}` keeps working"
            ));
        }
        let _ = writeln!(out, "private_key = {}", quote(&key.to_base64()));
        let port = listen_port.unwrap_or_else(|| {
            self.notes.push(format!(
                "interface.listen_port = {IMPORT_DEFAULT_LISTEN_PORT}: the file gives no fixed \
                 ListenPort; peers that connect to us must use this port"
            ));
            IMPORT_DEFAULT_LISTEN_PORT
        });
        let _ = writeln!(out, "listen_port = {port}");
        out.push_str(PLACEHOLDERS);
        for peer in peers {
            out.push_str("\n[[peers]]\n");
            peer_fields(&mut out, peer);
        }
        self.notes.push(
            "edit ports.tunnel.device, ports.tunnel.address, ports.plaintext.device and \
             ports.plaintext.address (left empty: `wgdp check` rejects them until set)"
                .into(),
        );
        self.notes.push(
            "review dpdk.eal_args and dpdk.workers (placeholders: lcores 0-1, one worker \
             on lcore 1) and the tap names"
                .into(),
        );
        self.notes.push(
            "the private key is inline: keep the file mode 0600, or move the key to \
             private_key_file"
                .into(),
        );
        out
    }
}

/// Which section's `seen` map [`Importer::once`] uses.
#[derive(Debug, Clone, Copy)]
enum Seen {
    Interface,
    Peer(usize),
}

/// The sections a wg-quick file has no equivalent for.
const PLACEHOLDERS: &str = r#"
[dpdk]
# REVIEW: DPDK EAL arguments for this machine (e.g. "-a", "<PCI address>" for
# each port) and the worker lcores; the main lcore runs the control thread.
eal_args = ["-l", "0-1"]
workers = [1]

[ports.tunnel]
# EDIT: the DPDK port facing the internet (PCI address or vdev string) and our
# address(es) on it with their prefix length, e.g. ["192.0.2.1/24"]; add
# gateway = "..." for a next hop.
device = ""
address = []
tap = "wgdp-tun"

[ports.plaintext]
# EDIT: the DPDK port facing the protected networks and our address(es) on it.
device = ""
address = []
tap = "wgdp-plain"
"#;

/// Whether `s` looks like `HOST:PORT` with a host name (not an IP literal)
/// and a nonzero port: an endpoint wg(8) would resolve and wgdp cannot.
fn is_host_and_port(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = !host.is_empty()
        && host.parse::<IpAddr>().is_err()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && host.bytes().any(|b| b.is_ascii_alphabetic());
    port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    const PRIV: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const PUB2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    const PSK3: &str = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
    const PUB4: &str = "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=";
    const PUB5: &str = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=";

    /// A wg-quick server file as an operator would have it.
    fn realistic() -> String {
        format!(
            "# wg0 on the old gateway\n\
             [Interface]\n\
             Address = 10.200.0.1/24, fd00:200::1/64\n\
             ListenPort = 51821\n\
             PrivateKey = {PRIV}\n\
             DNS = 10.200.0.53\n\
             MTU = 1420\n\
             Table = off\n\
             PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE\n\
             PostDown = iptables -D FORWARD -i %i -j ACCEPT # undo\n\
             SaveConfig = false\n\
             \n\
             # alice's laptop\n\
             [Peer]\n\
             PublicKey = {PUB2}\n\
             PresharedKey = {PSK3}\n\
             AllowedIPs = 10.200.0.2/32, fd00:200::2/128\n\
             Endpoint = 198.51.100.7:51820\n\
             PersistentKeepalive = 25\n\
             \n\
             # bob's office\n\
             [Peer]\n\
             PublicKey = {PUB4}\n\
             AllowedIPs = 10.200.0.3/32,10.30.0.0/16\n\
             Endpoint = [2001:db8::1]:51820\n"
        )
    }

    /// `imported` with the placeholders filled in as an operator would.
    fn filled(imported: &Imported) -> String {
        imported
            .toml
            .replacen("device = \"\"", "device = \"net_tap0\"", 1)
            .replacen("address = []", "address = [\"192.0.2.1/24\"]", 1)
            .replacen("device = \"\"", "device = \"net_tap1\"", 1)
            .replacen("address = []", "address = [\"10.200.0.1/24\"]", 1)
    }

    fn import(text: &str) -> Imported {
        import_wg_quick(text, "wg0.conf").unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn errors(text: &str) -> Vec<String> {
        match import_wg_quick(text, "wg0.conf") {
            Ok(i) => panic!("expected errors, got:\n{}", i.toml),
            Err(e) => e.errors().iter().map(ToString::to_string).collect(),
        }
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().expect("cidr")).collect()
    }

    fn interface(private_key: &str) -> String {
        format!("[Interface]\nPrivateKey = {private_key}\nListenPort = 51820\n")
    }

    #[test]
    fn realistic_file_converts_and_lists_what_is_not_mapped() {
        let imported = import(&realistic());
        let c = Config::from_str(&filled(&imported), "filled.toml")
            .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
        assert_eq!(c.interface.private_key, PrivateKey::from_bytes([1; 32]));
        assert_eq!(c.interface.listen_port, 51821);
        assert_eq!(c.interface.name, "wg0");
        assert_eq!(c.peers.len(), 2);
        let (a, b) = (&c.peers[0], &c.peers[1]);
        assert_eq!(a.public_key, PublicKey([2; 32]));
        assert_eq!(a.preshared_key, Some(PresharedKey::from_bytes([3; 32])));
        assert_eq!(a.allowed_ips, cidrs(&["10.200.0.2/32", "fd00:200::2/128"]));
        assert_eq!(a.endpoint, "198.51.100.7:51820".parse().ok());
        assert_eq!(a.persistent_keepalive, Some(25));
        assert_eq!(b.public_key, PublicKey([4; 32]));
        assert_eq!(b.preshared_key, None);
        assert_eq!(b.allowed_ips, cidrs(&["10.200.0.3/32", "10.30.0.0/16"]));
        assert_eq!(b.endpoint, "[2001:db8::1]:51820".parse().ok());
        assert_eq!(b.persistent_keepalive, None);

        // The private key is written as given.
        assert!(imported
            .toml
            .contains(&format!("private_key = \"{PRIV}\"\n")));
        let keys: Vec<&str> = imported
            .unmapped
            .iter()
            .map(|u| u.split(" = ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "[Interface] Address",
                "[Interface] DNS",
                "[Interface] MTU",
                "[Interface] Table",
                "[Interface] PostUp",
                "[Interface] PostDown",
                "[Interface] SaveConfig",
            ]
        );
        assert_eq!(
            imported.unmapped[0],
            "[Interface] Address = 10.200.0.1/24, fd00:200::1/64 (the tunnel interface's own \
             inner address: wgdp has no tunnel interface; its addresses are those of its ports, \
             [ports.plaintext] address; wg0.conf:3)"
        );
        // A value keeps its inner spaces; the comment is gone.
        assert!(imported.unmapped[4].starts_with(
            "[Interface] PostUp = iptables -A FORWARD -i %i -j ACCEPT; iptables -t nat"
        ));
        assert!(imported.unmapped[5]
            .starts_with("[Interface] PostDown = iptables -D FORWARD -i %i -j ACCEPT (wgdp runs"));
        assert!(imported
            .notes
            .iter()
            .any(|n| n.starts_with("edit ports.tunnel.device")));
        assert!(!imported.notes.iter().any(|n| n.contains("listen_port")));
    }

    #[test]
    fn placeholders_are_rejected_until_filled_in() {
        let imported = import(&realistic());
        let errors = Config::from_str(&imported.toml, "wgdp.toml")
            .expect_err("placeholders must not validate")
            .to_string();
        for field in [
            "ports.tunnel.device: must not be empty",
            "ports.tunnel.address: must not be empty",
            "ports.plaintext.device: must not be empty",
            "ports.plaintext.address: must not be empty",
        ] {
            assert!(errors.contains(field), "{field} not in:\n{errors}");
        }
        assert_eq!(errors.lines().count(), 4, "{errors}");
    }

    #[test]
    fn multiple_peers_and_allowed_ips_lines_accumulate() {
        let text = format!(
            "{}[Peer]\nPublicKey = {PUB2}\nAllowedIPs = 10.0.1.0/24\nAllowedIPs = 10.0.2.0/24, \
             10.0.3.0/24\nAllowedIPs = 10.0.1.0/24\n\n[Peer]\nPublicKey = {PUB4}\n\
             AllowedIPs = 10.0.4.0/24 , fd00::/64\n[Peer]\nPublicKey = {PUB5}\nAllowedIPs =\n",
            interface(PRIV)
        );
        let c = Config::from_str(&filled(&import(&text)), "t").expect("valid");
        assert_eq!(c.peers.len(), 3);
        assert_eq!(
            c.peers[0].allowed_ips,
            cidrs(&["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"])
        );
        assert_eq!(c.peers[1].allowed_ips, cidrs(&["10.0.4.0/24", "fd00::/64"]));
        assert!(c.peers[2].allowed_ips.is_empty());
    }

    #[test]
    fn keys_and_sections_are_case_insensitive() {
        let text = format!(
            "[interface]\nprivatekey={PRIV}\nLISTENPORT = 4500\n[PEER]\npublicKEY = {PUB2}\n\
             allowedips = 10.0.0.0/8\npersistentkeepalive = OFF\n"
        );
        let c = Config::from_str(&filled(&import(&text)), "t").expect("valid");
        assert_eq!(c.interface.listen_port, 4500);
        assert_eq!(c.peers[0].public_key, PublicKey([2; 32]));
        assert_eq!(c.peers[0].allowed_ips, cidrs(&["10.0.0.0/8"]));
        assert_eq!(c.peers[0].persistent_keepalive, None);
    }

    #[test]
    fn hostname_endpoint_is_not_mapped_and_the_peer_is_kept() {
        let text = format!(
            "{}[Peer]\nPublicKey = {PUB2}\nEndpoint = vpn.example.com:51820\nAllowedIPs = 10.0.0.0/8\n",
            interface(PRIV)
        );
        let imported = import(&text);
        assert_eq!(imported.unmapped.len(), 1);
        let u = &imported.unmapped[0];
        assert!(
            u.starts_with("[Peer] Endpoint = vpn.example.com:51820 (peers[0] is imported without an endpoint: wgdp does not resolve host names"),
            "{u}"
        );
        assert!(u.ends_with("; wg0.conf:6)"), "{u}");
        let c = Config::from_str(&filled(&imported), "t").expect("valid");
        assert_eq!(c.peers[0].endpoint, None);
        assert_eq!(c.peers[0].allowed_ips, cidrs(&["10.0.0.0/8"]));
    }

    #[test]
    fn crlf_line_ends_and_a_byte_order_mark_are_accepted() {
        let text = format!(
            "\u{feff}[Interface]\r\nPrivateKey = {PRIV}\r\n[Peer]\r\nPublicKey = {PUB2}\r\n"
        );
        let c = Config::from_str(&filled(&import(&text)), "t").expect("valid");
        assert_eq!(c.peers[0].public_key, PublicKey([2; 32]));
    }

    #[test]
    fn ipv6_endpoint() {
        let text = format!(
            "{}[Peer]\nPublicKey = {PUB2}\nEndpoint = [2001:db8::1]:51820\n",
            interface(PRIV)
        );
        let imported = import(&text);
        assert!(imported
            .toml
            .contains("endpoint = \"[2001:db8::1]:51820\"\n"));
        let c = Config::from_str(&filled(&imported), "t").expect("valid");
        assert_eq!(c.peers[0].endpoint, "[2001:db8::1]:51820".parse().ok());
    }

    #[test]
    fn bad_values_are_errors_with_line_and_column() {
        let text = format!(
            "[Interface]\nPrivateKey = not-a-key\nListenPort = 70000\n[Peer]\n\
             PublicKey = {PUB2}\nAllowedIPs = 10.0.0.0/33, 10.1.0.0/16\n\
             Endpoint = 198.51.100.7:0\nPersistentKeepalive = sometimes\n\
             Endpoint = [2001:db8::1]:1\n[Peer]\nAllowedIPs = 10.2.0.0/16\n"
        );
        assert_eq!(
            errors(&text),
            [
                "wg0.conf:2:14: Interface.PrivateKey: not base64 of 32 bytes",
                "wg0.conf:3:14: Interface.ListenPort: 70000 is out of range 0..=65535",
                "wg0.conf:6:14: Peer[0].AllowedIPs: \"10.0.0.0/33\" is not a prefix: bad prefix \
                 length (0..=32 for IPv4, 0..=128 for IPv6)",
                "wg0.conf:7:12: Peer[0].Endpoint: \"198.51.100.7:0\" is not IP:PORT (IPv6 as \
                 [ADDR]:PORT, port nonzero, no host names)",
                "wg0.conf:8:23: Peer[0].PersistentKeepalive: \"sometimes\" is not a number",
                "wg0.conf:9:12: Peer[0].Endpoint: given twice (first on line 7)",
                "wg0.conf:10:1: Peer[1].PublicKey: missing field",
            ]
        );
    }

    #[test]
    fn unknown_section_and_syntax_errors() {
        let text = format!(
            "ListenPort = 1\n{}[Wireguard]\nFoo = bar\n[Peer]\nPublicKey {PUB2}\n[Peer\n",
            interface(PRIV)
        );
        assert_eq!(
            errors(&text),
            [
                "wg0.conf:1:1: ListenPort: outside any section",
                "wg0.conf:5:1: [Wireguard]: unknown section (wg(8) knows [Interface] and [Peer])",
                "wg0.conf:8:1: Peer[0]: expected `Key = Value`",
                "wg0.conf:9:1: [Peer: section header without `]`",
                "wg0.conf:7:1: Peer[0].PublicKey: missing field",
            ]
        );
    }

    #[test]
    fn missing_interface_or_private_key() {
        assert_eq!(
            errors(&format!("# nothing\n[Peer]\nPublicKey = {PUB2}\n")),
            ["wg0.conf:1:1: Interface: missing section: wgdp needs [Interface] with PrivateKey"]
        );
        assert_eq!(
            errors("\n  [Interface]\nListenPort = 1\n"),
            ["wg0.conf:2:3: Interface.PrivateKey: missing field"]
        );
    }

    #[test]
    fn peers_that_wgdp_would_refuse() {
        let own = PrivateKey::from_bytes([1; 32]).public_key();
        let text = format!(
            "{}[Peer]\nPublicKey = {own}\n[Peer]\nPublicKey = {PUB2}\n[Peer]\nPublicKey = {PUB2}\n",
            interface(PRIV)
        );
        assert_eq!(
            errors(&text),
            [
                "wg0.conf:5:13: Peer[0].PublicKey: is the interface's own public key",
                "wg0.conf:9:13: Peer[2].PublicKey: same PublicKey as Peer[1]: merge the two sections",
            ]
        );
    }

    #[test]
    fn allowed_ips_are_canonicalised_and_moved_as_wg_does() {
        let text = format!(
            "{}[Peer]\nPublicKey = {PUB2}\nAllowedIPs = 10.0.0.1/24, 192.0.2.7, 2001:db8::1\n\
             [Peer]\nPublicKey = {PUB4}\nAllowedIPs = 10.0.0.0/24\n",
            interface(PRIV)
        );
        let imported = import(&text);
        let c = Config::from_str(&filled(&imported), "t").expect("valid");
        assert_eq!(
            c.peers[0].allowed_ips,
            cidrs(&["192.0.2.7/32", "2001:db8::1/128"])
        );
        assert_eq!(c.peers[1].allowed_ips, cidrs(&["10.0.0.0/24"]));
        assert!(imported.notes.contains(
            &"Peer[0].AllowedIPs: 10.0.0.1/24 has host bits set; imported as 10.0.0.0/24, \
              which is what wg(8) uses (wg0.conf:6)"
                .to_string()
        ));
        assert!(imported.notes.contains(
            &"10.0.0.0/24 is in the AllowedIPs of two peers; as in wg(8) the later one \
              (wg0.conf:7) gets it"
                .to_string()
        ));
    }

    #[test]
    fn defaults_and_the_interface_name() {
        let text = format!("[Interface]\nPrivateKey = {PRIV}\nListenPort = 0\nFwMark = 0x1\n");
        let imported = import_wg_quick(&text, "/etc/wireguard/notes.txt").expect("imports");
        let c = Config::from_str(&filled(&imported), "t").expect("valid");
        assert_eq!(c.interface.listen_port, IMPORT_DEFAULT_LISTEN_PORT);
        assert_eq!(c.interface.name, crate::DEFAULT_INTERFACE_NAME);
        assert!(c.peers.is_empty());
        assert!(imported
            .notes
            .iter()
            .any(|n| n.starts_with("interface.listen_port = 51820")));
        assert_eq!(
            imported.unmapped,
            [
                "[Interface] FwMark = 0x1 (wgdp sends from its DPDK port: there is no socket \
              to mark; /etc/wireguard/notes.txt:4)"
            ]
        );
        let named = import_wg_quick(&text, "/etc/wireguard/wg-office.conf").expect("imports");
        assert!(named.toml.contains("name = \"wg-office\"\n"));
        let too_long = import_wg_quick(&text, "sixteen-chars-xx.conf").expect("imports");
        assert!(!too_long.toml.contains("name ="));
    }
}
