//! The typed layer: walks the spanned document with a field path, decodes
//! every field, checks every rule, and collects every error.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_spanned::Spanned;

use crate::cidr::Cidr;
use crate::error::{ConfError, ConfErrors, Location};
use crate::keys::{KeySource, PresharedKey, PrivateKey, PublicKey};
use crate::schema::{parse_document, Node, Span};
use crate::{Config, Dpdk, Interface, PeerConf, PortConf, Ports};
use crate::{DEFAULT_IDLE_POLLS, DEFAULT_IDLE_SLEEP_US, DEFAULT_MBUFS, DEFAULT_MTU};

/// Why a private key file could not be used.
#[derive(Debug)]
pub(crate) enum KeyFileProblem {
    /// It could not be read.
    Read(PathBuf, io::Error),
    /// Its mode lets group or others read or write it.
    Mode(PathBuf, u32),
    /// Its content is not a key.
    Content(PathBuf),
    /// The caller reads no files.
    NotLoaded,
}

/// Reads the key file named in the configuration (path as written).
pub(crate) type KeyLoader<'a> = dyn FnMut(&Path) -> Result<PrivateKey, KeyFileProblem> + 'a;

/// Parses and validates `text`; `origin` names it in errors.
pub(crate) fn parse(
    text: &str,
    origin: &str,
    load_key: &mut KeyLoader,
) -> Result<Config, ConfErrors> {
    let mut ctx = Ctx {
        origin,
        text,
        errors: Vec::new(),
    };
    let root = match parse_document(text) {
        Ok(root) => Spanned::new(0..0, root),
        Err(e) => {
            let at = ctx.at(&e.span().unwrap_or(0..0));
            let message = e.message().replace('\n', "; ");
            return Err(ConfError::Syntax { at, message }.into());
        }
    };
    let config = ctx.config(&root, load_key);
    match config {
        Some(config) if ctx.errors.is_empty() => Ok(config),
        _ => Err(ConfErrors(ctx.errors)),
    }
}

/// Joins a field path and a key. A key that is not a bare TOML key (only
/// an unknown one can be) is quoted, so that control characters in the
/// input never reach an error message raw.
fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

/// A table being decoded.
struct Table<'n> {
    path: String,
    span: Span,
    entries: &'n [(Spanned<String>, Spanned<Node>)],
}

impl<'n> Table<'n> {
    fn get(&self, key: &str) -> Option<&'n Spanned<Node>> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v)
    }

    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// The decoding state: the text for positions and the errors so far.
struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
    errors: Vec<ConfError>,
}

impl Ctx<'_> {
    fn at(&self, span: &Span) -> Location {
        Location::from_offset(self.origin, self.text, span.start)
    }

    fn wrong_type(&mut self, v: &Spanned<Node>, path: String, expected: &'static str) {
        let at = self.at(&v.span());
        self.errors.push(ConfError::WrongType {
            at,
            path,
            expected,
            found: v.get_ref().kind(),
        });
    }

    /// `node` as a table; unknown keys (not in `allowed`) are reported.
    fn table<'n>(
        &mut self,
        node: &'n Spanned<Node>,
        path: String,
        allowed: &[&str],
    ) -> Option<Table<'n>> {
        let Node::Table(entries) = node.get_ref() else {
            self.wrong_type(node, path, "table");
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&key.get_ref().as_str()) {
                let at = self.at(&key.span());
                self.errors.push(ConfError::UnknownField {
                    at,
                    path: join(&path, key.get_ref()),
                    expected: allowed.join(", "),
                });
            }
        }
        Some(Table {
            path,
            span: node.span(),
            entries,
        })
    }

    fn required<'n>(&mut self, t: &Table<'n>, key: &str) -> Option<&'n Spanned<Node>> {
        let v = t.get(key);
        if v.is_none() {
            let at = self.at(&t.span);
            self.errors.push(ConfError::MissingField {
                at,
                path: t.path(key),
            });
        }
        v
    }

    fn string<'n>(&mut self, v: &'n Spanned<Node>, path: String) -> Option<&'n str> {
        match v.get_ref() {
            Node::Str(s) => Some(s),
            _ => {
                self.wrong_type(v, path, "string");
                None
            }
        }
    }

    fn int(&mut self, v: &Spanned<Node>, path: String, min: i64, max: i64) -> Option<i64> {
        let Node::Int(i) = v.get_ref() else {
            self.wrong_type(v, path, "integer");
            return None;
        };
        if (min..=max).contains(i) {
            return Some(*i);
        }
        let at = self.at(&v.span());
        self.errors.push(ConfError::OutOfRange {
            at,
            path,
            value: *i,
            min,
            max,
        });
        None
    }

    /// An optional integer field with a default.
    fn int_or(&mut self, t: &Table, key: &str, default: i64, min: i64, max: i64) -> Option<i64> {
        match t.get(key) {
            Some(v) => self.int(v, t.path(key), min, max),
            None => Some(default),
        }
    }

    fn array<'n>(&mut self, v: &'n Spanned<Node>, path: String) -> Option<&'n [Spanned<Node>]> {
        match v.get_ref() {
            Node::Array(items) => Some(items),
            _ => {
                self.wrong_type(v, path, "array");
                None
            }
        }
    }

    /// Decodes each element of an array field; `None` if any failed.
    fn each<'n, T>(
        &mut self,
        v: &'n Spanned<Node>,
        path: &str,
        mut f: impl FnMut(&mut Self, &'n Spanned<Node>, String) -> Option<T>,
    ) -> Option<Vec<T>> {
        let items = self.array(v, path.to_owned())?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match f(self, item, format!("{path}[{i}]")) {
                Some(x) => out.push(x),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn non_empty(&mut self, v: &Spanned<Node>, path: &str, len: usize) -> bool {
        if len == 0 {
            let at = self.at(&v.span());
            self.errors.push(ConfError::Empty {
                at,
                path: path.to_owned(),
            });
        }
        len != 0
    }

    fn duplicate(&mut self, v: &Spanned<Node>, path: String, first: &str, value: String) {
        let at = self.at(&v.span());
        self.errors.push(ConfError::Duplicate {
            at,
            path,
            first: first.to_owned(),
            value,
        });
    }

    fn key<T: std::str::FromStr>(&mut self, v: &Spanned<Node>, path: String) -> Option<T> {
        let s = self.string(v, path.clone())?;
        let key = s.parse().ok();
        if key.is_none() {
            let at = self.at(&v.span());
            self.errors.push(ConfError::BadKey { at, path });
        }
        key
    }

    fn cidr(&mut self, v: &Spanned<Node>, path: String) -> Option<Cidr> {
        let s = self.string(v, path.clone())?;
        match s.parse::<Cidr>() {
            Ok(c) => Some(c),
            Err(e) => {
                let at = self.at(&v.span());
                self.errors.push(ConfError::BadCidr {
                    at,
                    path,
                    value: s.to_owned(),
                    reason: e.to_string(),
                });
                None
            }
        }
    }

    fn ip(&mut self, v: &Spanned<Node>, path: String) -> Option<IpAddr> {
        let s = self.string(v, path.clone())?;
        let ip = s.parse().ok();
        if ip.is_none() {
            let at = self.at(&v.span());
            self.errors.push(ConfError::BadAddress {
                at,
                path,
                value: s.to_owned(),
            });
        }
        ip
    }

    fn config(&mut self, root: &Spanned<Node>, load_key: &mut KeyLoader) -> Option<Config> {
        let t = self.table(
            root,
            String::new(),
            &["interface", "dpdk", "ports", "peers"],
        )?;
        let interface = self
            .required(&t, "interface")
            .and_then(|v| self.interface(v, load_key));
        let dpdk = self.required(&t, "dpdk").and_then(|v| self.dpdk(v));
        let ports = self.required(&t, "ports").and_then(|v| self.ports(v));
        let own = interface
            .as_ref()
            .map(|i: &Interface| i.private_key.public_key());
        let peers = match t.get("peers") {
            Some(v) => self.peers(v, own),
            None => Some(Vec::new()),
        };
        Some(Config {
            interface: interface?,
            dpdk: dpdk?,
            ports: ports?,
            peers: peers?,
        })
    }

    fn interface(&mut self, v: &Spanned<Node>, load_key: &mut KeyLoader) -> Option<Interface> {
        let t = self.table(
            v,
            "interface".into(),
            &["private_key", "private_key_file", "listen_port"],
        )?;
        let listen_port = self
            .required(&t, "listen_port")
            .and_then(|v| self.int(v, t.path("listen_port"), 1, 65535));
        let key = match (t.get("private_key"), t.get("private_key_file")) {
            (Some(v), None) => self
                .key::<PrivateKey>(v, t.path("private_key"))
                .map(|k| (k, KeySource::Inline)),
            (None, Some(v)) => self.key_file(v, t.path("private_key_file"), load_key),
            (Some(_), Some(v)) => {
                let at = self.at(&v.span());
                self.errors.push(ConfError::KeySource {
                    at,
                    path: t.path("private_key_file"),
                    message: "give private_key or private_key_file, not both",
                });
                None
            }
            (None, None) => {
                let at = self.at(&t.span);
                self.errors.push(ConfError::KeySource {
                    at,
                    path: t.path("private_key"),
                    message: "missing: give private_key or private_key_file",
                });
                None
            }
        };
        let (private_key, key_source) = key?;
        Some(Interface {
            private_key,
            key_source,
            listen_port: u16::try_from(listen_port?).ok()?,
        })
    }

    fn key_file(
        &mut self,
        v: &Spanned<Node>,
        path: String,
        load_key: &mut KeyLoader,
    ) -> Option<(PrivateKey, KeySource)> {
        let file = PathBuf::from(self.string(v, path.clone())?);
        let at = self.at(&v.span());
        let error = match load_key(&file) {
            Ok(key) => return Some((key, KeySource::File(file))),
            Err(KeyFileProblem::Read(file, source)) => ConfError::KeyFileRead {
                at,
                path,
                file,
                source,
            },
            Err(KeyFileProblem::Mode(file, mode)) => ConfError::KeyFileMode {
                at,
                path,
                file,
                mode,
            },
            Err(KeyFileProblem::Content(file)) => ConfError::KeyFileContent { at, path, file },
            Err(KeyFileProblem::NotLoaded) => ConfError::KeyFileNotLoaded { at, path },
        };
        self.errors.push(error);
        None
    }

    fn dpdk(&mut self, v: &Spanned<Node>) -> Option<Dpdk> {
        let t = self.table(
            v,
            "dpdk".into(),
            &[
                "eal_args",
                "workers",
                "mbufs",
                "idle_sleep_us",
                "idle_polls",
            ],
        )?;
        let eal_args = self.required(&t, "eal_args").and_then(|v| {
            self.each(v, &t.path("eal_args"), |c, item, p| {
                c.string(item, p).map(str::to_owned)
            })
        });
        let workers = self.required(&t, "workers").and_then(|v| {
            let path = t.path("workers");
            let workers = self.each(v, &path, |c, item, p| {
                c.int(item, p, 0, i64::from(u32::MAX))
                    .and_then(|w| u32::try_from(w).ok())
            })?;
            self.non_empty(v, &path, workers.len()).then_some(())?;
            let items = self.array(v, path.clone())?;
            let mut ok = true;
            for (i, w) in workers.iter().enumerate() {
                if let Some(j) = workers[..i].iter().position(|x| x == w) {
                    self.duplicate(
                        &items[i],
                        format!("{path}[{i}]"),
                        &format!("{path}[{j}]"),
                        w.to_string(),
                    );
                    ok = false;
                }
            }
            ok.then_some(workers)
        });
        let mbufs = self.int_or(&t, "mbufs", DEFAULT_MBUFS.into(), 1024, 1_048_575);
        let idle_sleep_us =
            self.int_or(&t, "idle_sleep_us", DEFAULT_IDLE_SLEEP_US.into(), 0, 10_000);
        let idle_polls = self.int_or(
            &t,
            "idle_polls",
            DEFAULT_IDLE_POLLS.into(),
            1,
            u32::MAX.into(),
        );
        Some(Dpdk {
            eal_args: eal_args?,
            workers: workers?,
            mbufs: u32::try_from(mbufs?).ok()?,
            idle_sleep_us: u32::try_from(idle_sleep_us?).ok()?,
            idle_polls: u32::try_from(idle_polls?).ok()?,
        })
    }

    fn ports(&mut self, v: &Spanned<Node>) -> Option<Ports> {
        let t = self.table(v, "ports".into(), &["tunnel", "plaintext"])?;
        let tunnel_node = self.required(&t, "tunnel");
        let plaintext_node = self.required(&t, "plaintext");
        let tunnel = tunnel_node.and_then(|v| self.port(v, t.path("tunnel")));
        let plaintext = plaintext_node.and_then(|v| self.port(v, t.path("plaintext")));
        let (tunnel, plaintext) = (tunnel?, plaintext?);
        let mut ok = true;
        for (field, a, b) in [
            ("device", &tunnel.device, &plaintext.device),
            ("tap", &tunnel.tap, &plaintext.tap),
        ] {
            if a == b {
                let node = plaintext_node
                    .and_then(|p| match p.get_ref() {
                        Node::Table(e) => e.iter().find(|(k, _)| k.get_ref() == field),
                        _ => None,
                    })
                    .map(|(_, v)| v)?;
                self.duplicate(
                    node,
                    format!("ports.plaintext.{field}"),
                    &format!("ports.tunnel.{field}"),
                    a.escape_debug().to_string(),
                );
                ok = false;
            }
        }
        ok.then_some(Ports { tunnel, plaintext })
    }

    fn port(&mut self, v: &Spanned<Node>, path: String) -> Option<PortConf> {
        let t = self.table(v, path, &["device", "address", "gateway", "mtu", "tap"])?;
        let device = self.required(&t, "device").and_then(|v| {
            let s = self.string(v, t.path("device"))?;
            self.non_empty(v, &t.path("device"), s.len())
                .then(|| s.to_owned())
        });
        let address = self.required(&t, "address").and_then(|v| {
            let path = t.path("address");
            let address = self.each(v, &path, |c, item, p| c.cidr(item, p))?;
            self.non_empty(v, &path, address.len()).then_some(address)
        });
        let gateway = match t.get("gateway") {
            Some(v) => self.gateways(v, &t.path("gateway"), address.as_deref()),
            None => Some(Vec::new()),
        };
        let mtu = self.int_or(&t, "mtu", DEFAULT_MTU.into(), 1280, 9000);
        let tap = self.required(&t, "tap").and_then(|v| {
            let s = self.string(v, t.path("tap"))?;
            let ok = (1..=15).contains(&s.len())
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                let at = self.at(&v.span());
                self.errors.push(ConfError::BadTapName {
                    at,
                    path: t.path("tap"),
                    value: s.to_owned(),
                });
            }
            ok.then(|| s.to_owned())
        });
        Some(PortConf {
            device: device?,
            address: address?,
            gateway: gateway?,
            mtu: u16::try_from(mtu?).ok()?,
            tap: tap?,
        })
    }

    /// `gateway`: a string or an array; checked against `address` when known.
    fn gateways(
        &mut self,
        v: &Spanned<Node>,
        path: &str,
        address: Option<&[Cidr]>,
    ) -> Option<Vec<IpAddr>> {
        let items: Vec<(&Spanned<Node>, String)> = match v.get_ref() {
            Node::Str(_) => vec![(v, path.to_owned())],
            Node::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (item, format!("{path}[{i}]")))
                .collect(),
            _ => {
                self.wrong_type(v, path.to_owned(), "string or array of strings");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        let (mut v4, mut v6) = (false, false);
        for (item, p) in items {
            let Some(ip) = self.ip(item, p.clone()) else {
                ok = false;
                continue;
            };
            let (seen, family) = match ip {
                IpAddr::V4(_) => (&mut v4, "IPv4"),
                IpAddr::V6(_) => (&mut v6, "IPv6"),
            };
            if std::mem::replace(seen, true) {
                let at = self.at(&item.span());
                self.errors.push(ConfError::GatewayRepeated {
                    at,
                    path: p,
                    family,
                });
                ok = false;
                continue;
            }
            if let Some(address) = address {
                if !address.iter().any(|c| c.contains(ip)) {
                    let at = self.at(&item.span());
                    self.errors.push(ConfError::GatewayOutside {
                        at,
                        path: p,
                        gateway: ip.to_string(),
                    });
                    ok = false;
                    continue;
                }
            }
            out.push(ip);
        }
        ok.then_some(out)
    }

    fn peers(&mut self, v: &Spanned<Node>, own: Option<PublicKey>) -> Option<Vec<PeerConf>> {
        let items = self.array(v, "peers".into())?;
        let mut peers = Vec::with_capacity(items.len());
        let mut ok = true;
        let mut keys: HashMap<PublicKey, String> = HashMap::new();
        let mut prefixes: HashMap<Cidr, String> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("peers[{i}]");
            let Some((peer, t)) = self.peer(item, path.clone()) else {
                ok = false;
                continue;
            };
            let key_node = t.get("public_key");
            let key_at = self.at(&key_node.map_or(t.span.clone(), |n| n.span()));
            if Some(peer.public_key) == own {
                self.errors.push(ConfError::OwnPublicKey {
                    at: key_at.clone(),
                    path: t.path("public_key"),
                });
                ok = false;
            }
            if let Some(first) = keys.get(&peer.public_key) {
                self.errors.push(ConfError::Duplicate {
                    at: key_at,
                    path: t.path("public_key"),
                    first: format!("{first}.public_key"),
                    value: peer.public_key.to_string(),
                });
                ok = false;
            } else {
                keys.insert(peer.public_key, path.clone());
            }
            let nodes = match t.get("allowed_ips").map(|n| n.get_ref()) {
                Some(Node::Array(nodes)) => nodes.as_slice(),
                _ => &[],
            };
            for (j, (cidr, node)) in peer.allowed_ips.iter().zip(nodes).enumerate() {
                let here = format!("{path}.allowed_ips[{j}]");
                match prefixes.get(cidr) {
                    Some(other) => {
                        let at = self.at(&node.span());
                        let error = if *other == path {
                            ConfError::Duplicate {
                                at,
                                path: here,
                                first: format!("{path}.allowed_ips"),
                                value: cidr.to_string(),
                            }
                        } else {
                            ConfError::DuplicateAllowedIp {
                                at,
                                path: here,
                                cidr: cidr.to_string(),
                                other: other.clone(),
                            }
                        };
                        self.errors.push(error);
                        ok = false;
                    }
                    None => {
                        prefixes.insert(*cidr, path.clone());
                    }
                }
            }
            peers.push(peer);
        }
        ok.then_some(peers)
    }

    fn peer<'n>(&mut self, v: &'n Spanned<Node>, path: String) -> Option<(PeerConf, Table<'n>)> {
        let t = self.table(
            v,
            path,
            &[
                "public_key",
                "preshared_key",
                "endpoint",
                "allowed_ips",
                "persistent_keepalive",
            ],
        )?;
        let public_key = self
            .required(&t, "public_key")
            .and_then(|v| self.key::<PublicKey>(v, t.path("public_key")));
        let preshared_key = match t.get("preshared_key") {
            Some(v) => self
                .key::<PresharedKey>(v, t.path("preshared_key"))
                .map(Some),
            None => Some(None),
        };
        let endpoint = match t.get("endpoint") {
            Some(v) => self.endpoint(v, t.path("endpoint")).map(Some),
            None => Some(None),
        };
        let allowed_ips = match t.get("allowed_ips") {
            Some(v) => self.each(v, &t.path("allowed_ips"), |c, item, p| {
                let cidr = c.cidr(item, p.clone())?;
                if cidr.is_canonical() {
                    return Some(cidr);
                }
                let at = c.at(&item.span());
                c.errors.push(ConfError::NonCanonicalCidr {
                    at,
                    path: p,
                    value: cidr.to_string(),
                    canonical: cidr.canonical().to_string(),
                });
                None
            }),
            None => Some(Vec::new()),
        };
        let keepalive = self.int_or(&t, "persistent_keepalive", 0, 0, 65535);
        let peer = PeerConf {
            public_key: public_key?,
            preshared_key: preshared_key?,
            endpoint: endpoint?,
            allowed_ips: allowed_ips?,
            persistent_keepalive: u16::try_from(keepalive?).ok().filter(|&k| k != 0),
        };
        Some((peer, t))
    }

    fn endpoint(&mut self, v: &Spanned<Node>, path: String) -> Option<SocketAddr> {
        let s = self.string(v, path.clone())?;
        let endpoint = s.parse::<SocketAddr>().ok().filter(|e| e.port() != 0);
        if endpoint.is_none() {
            let at = self.at(&v.span());
            self.errors.push(ConfError::BadEndpoint {
                at,
                path,
                value: s.to_owned(),
            });
        }
        endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn paths_quote_odd_keys() {
        assert_eq!(join("", "interface"), "interface");
        assert_eq!(join("peers[0]", "public_key"), "peers[0].public_key");
        assert_eq!(join("ports", "a b"), "ports.\"a b\"");
        assert_eq!(join("ports", "x\ny"), "ports.\"x\\ny\"");
        assert_eq!(join("ports", ""), "ports.\"\"");
    }
}
