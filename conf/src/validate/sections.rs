//! The `[interface]`, `[dpdk]` and `[ports]` sections.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde_spanned::Spanned;

use super::{is_interface_name, Ctx, KeyFileProblem, KeyLoader, Table, WG_NAME_PUNCT};
use crate::cidr::Cidr;
use crate::eal;
use crate::error::ConfError;
use crate::keys::{KeySource, PrivateKey};
use crate::schema::Node;
use crate::{
    Aead, Cluster, Config, Dpdk, Interface, Metrics, MssClamp, PortConf, PortRange, Ports,
};
use crate::{
    DEFAULT_ICMP_BURST, DEFAULT_ICMP_PER_SEC, DEFAULT_IDLE_POLLS, DEFAULT_IDLE_SLEEP_US,
    DEFAULT_INTERFACE_NAME, DEFAULT_MBUFS, DEFAULT_MTU,
};

impl Ctx<'_> {
    pub(super) fn config(
        &mut self,
        root: &Spanned<Node>,
        load_key: &mut KeyLoader,
    ) -> Option<Config> {
        let t = self.table(
            root,
            String::new(),
            &[
                "interface",
                "dpdk",
                "ports",
                "peers",
                "groups",
                "metrics",
                "cluster",
            ],
        )?;
        let interface = self
            .required(&t, "interface")
            .and_then(|v| self.interface(v, load_key));
        let dpdk = self.required(&t, "dpdk").and_then(|v| self.dpdk(v));
        let ports = self.required(&t, "ports").and_then(|v| self.ports(v));
        let own = interface
            .as_ref()
            .map(|i: &Interface| i.private_key.public_key());
        let lanes = super::peers::LaneLimits {
            workers: dpdk.as_ref().map(|d| d.workers.len()),
            ports: ports.as_ref().map(|p| p.tunnel.lane_ports.is_some()),
        };
        let peers = match t.get("peers") {
            Some(v) => self.peers(v, own, lanes),
            None => Some(Vec::new()),
        };
        let groups = match t.get("groups") {
            Some(v) => self.groups(v, peers.as_deref()),
            None => Some(Vec::new()),
        };
        if let (Some(d), Some((range, node))) = (
            &dpdk,
            ports.as_ref().and_then(|p| {
                let node = t.get("ports")?;
                Some((p.tunnel.lane_ports?, node))
            }),
        ) {
            if range.len() < d.workers.len() {
                let span = lane_ports_span(node).unwrap_or_else(|| node.span());
                let at = self.at(&span);
                self.errors.push(ConfError::LanePortsTooFew {
                    at,
                    path: if ports.as_ref().is_some_and(Ports::one_armed) {
                        "ports.both.lane_ports".into()
                    } else {
                        "ports.tunnel.lane_ports".into()
                    },
                    ports: range.len(),
                    workers: d.workers.len(),
                });
            }
        }
        let metrics = match t.get("metrics") {
            Some(v) => self.metrics(v).map(Some),
            None => Some(None),
        };
        let cluster = match t.get("cluster") {
            Some(v) => self.cluster(v).map(Some),
            None => Some(None),
        };
        Some(Config {
            interface: interface?,
            dpdk: dpdk?,
            ports: ports?,
            peers: peers?,
            groups: groups?,
            metrics: metrics?,
            cluster: cluster?,
        })
    }

    fn interface(&mut self, v: &Spanned<Node>, load_key: &mut KeyLoader) -> Option<Interface> {
        let t = self.table(
            v,
            "interface".into(),
            &["name", "private_key", "private_key_file", "listen_port"],
        )?;
        let name = match t.get("name") {
            Some(v) => self.string(v, t.path("name")).and_then(|s| {
                let ok = is_interface_name(s, WG_NAME_PUNCT);
                if !ok {
                    let at = self.at(&v.span());
                    self.errors.push(ConfError::BadInterfaceName {
                        at,
                        path: t.path("name"),
                        value: s.to_owned(),
                    });
                }
                ok.then(|| s.to_owned())
            }),
            None => Some(DEFAULT_INTERFACE_NAME.to_owned()),
        };
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
            name: name?,
        })
    }

    fn metrics(&mut self, v: &Spanned<Node>) -> Option<Metrics> {
        let t = self.table(v, "metrics".into(), &["listen"])?;
        let v = self.required(&t, "listen")?;
        let path = t.path("listen");
        let s = self.string(v, path.clone())?;
        let listen = s.parse::<SocketAddr>().ok().filter(|a| a.port() != 0);
        if listen.is_none() {
            let at = self.at(&v.span());
            self.errors.push(ConfError::BadListen {
                at,
                path,
                value: s.to_owned(),
            });
        }
        Some(Metrics { listen: listen? })
    }

    fn cluster(&mut self, v: &Spanned<Node>) -> Option<Cluster> {
        let t = self.table(v, "cluster".into(), &["export_table"])?;
        let v = self.required(&t, "export_table")?;
        // Tables 253..=255 are the kernel's default, main and local: routes
        // to the exception TAP there would route the box itself.
        let table = self.int(v, t.path("export_table"), 1, 252)?;
        Some(Cluster {
            export_table: u8::try_from(table).ok()?,
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
                "aead",
                "crypto_device",
                "staging_budget",
                "icmp_per_sec",
                "icmp_burst",
                "handshake_threads",
                "control_nice",
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
                        &items[i].span(),
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
        let aead = match t.get("aead") {
            None => Some(Aead::default()),
            Some(v) => self.string(v, t.path("aead")).and_then(|name| {
                let a = Aead::from_name(name);
                if a.is_none() {
                    let at = self.at(&v.span());
                    self.errors.push(ConfError::BadAead {
                        at,
                        path: t.path("aead"),
                        value: name.to_owned(),
                    });
                }
                a
            }),
        };
        let crypto_device = self.crypto_device(&t, aead);
        let icmp_per_sec = self.int_or(
            &t,
            "icmp_per_sec",
            DEFAULT_ICMP_PER_SEC.into(),
            0,
            1_000_000,
        );
        let icmp_burst = self.int_or(&t, "icmp_burst", DEFAULT_ICMP_BURST.into(), 1, 10_000);
        let handshake_threads = match t.get("handshake_threads") {
            None => Some(None),
            Some(v) => self
                .int(v, t.path("handshake_threads"), 0, 64)
                .and_then(|n| u32::try_from(n).ok())
                .map(Some),
        };
        let control_nice = match t.get("control_nice") {
            None => Some(None),
            Some(v) => self
                .int(v, t.path("control_nice"), -20, 19)
                .and_then(|n| i32::try_from(n).ok())
                .map(Some),
        };
        let staging_budget = match (t.get("staging_budget"), mbufs) {
            (Some(v), Some(mbufs)) => self
                .int(v, t.path("staging_budget"), 0, mbufs)
                .and_then(|b| u32::try_from(b).ok())
                .map(Some),
            (None, _) => Some(None),
            (Some(_), None) => None,
        };
        let (eal_args, workers) = (eal_args?, workers?);
        if let (Some(eal_node), Some(workers_node)) = (t.get("eal_args"), t.get("workers")) {
            self.worker_lcores(&eal_args, eal_node, &workers, workers_node)?;
        }
        Some(Dpdk {
            eal_args,
            workers,
            mbufs: u32::try_from(mbufs?).ok()?,
            idle_sleep_us: u32::try_from(idle_sleep_us?).ok()?,
            idle_polls: u32::try_from(idle_polls?).ok()?,
            aead: aead?,
            crypto_device: crypto_device?,
            staging_budget: staging_budget?,
            icmp_per_sec: u32::try_from(icmp_per_sec?).ok()?,
            icmp_burst: u32::try_from(icmp_burst?).ok()?,
            handshake_threads: handshake_threads?,
            control_nice: control_nice?,
        })
    }

    /// `dpdk.crypto_device`: a non-empty name, given exactly when `aead`
    /// is `"cryptodev"`. `None` when wrong; `Some(None)` when rightly absent.
    fn crypto_device(&mut self, t: &Table<'_>, aead: Option<Aead>) -> Option<Option<String>> {
        let path = t.path("crypto_device");
        let device = match t.get("crypto_device") {
            None => None,
            Some(v) => {
                let s = self.string(v, path.clone())?;
                self.non_empty(v, &path, s.trim().len()).then_some(())?;
                Some((s.to_owned(), v.span()))
            }
        };
        match (aead?, device) {
            (Aead::Cryptodev, Some((name, _))) => Some(Some(name)),
            (Aead::Cryptodev, None) => {
                let at = t.get("aead").map(|v| self.at(&v.span()))?;
                self.errors.push(ConfError::CryptodevWithoutDevice {
                    at,
                    path: t.path("aead"),
                });
                None
            }
            (_, Some((_, span))) => {
                let at = self.at(&span);
                self.errors
                    .push(ConfError::DeviceWithoutCryptodev { at, path });
                None
            }
            (_, None) => Some(None),
        }
    }

    /// Checks that every worker is an lcore `eal_args` enables and not the
    /// main lcore, where `eal_args` says which lcores it enables (without
    /// `-l`, `--lcores` or `-c`, EAL makes every CPU an lcore, and `wgdp run`
    /// checks the workers against the CPUs it finds).
    fn worker_lcores(
        &mut self,
        eal_args: &[String],
        eal_node: &Spanned<Node>,
        workers: &[u32],
        workers_node: &Spanned<Node>,
    ) -> Option<()> {
        let parsed = eal::lcore_cpus(eal_args)
            .and_then(|lcores| Ok((eal::main_lcore(eal_args, lcores.as_ref())?, lcores)));
        let (main, lcores) = match parsed {
            Ok(p) => p,
            Err(message) => {
                let at = self.at(&eal_node.span());
                self.errors.push(ConfError::EalLcores {
                    at,
                    path: "dpdk.eal_args".into(),
                    message,
                });
                return None;
            }
        };
        let items = self.array(workers_node, "dpdk.workers".into())?;
        let mut ok = true;
        for (i, (&lcore, item)) in workers.iter().zip(items).enumerate() {
            let at = self.at(&item.span());
            let path = format!("dpdk.workers[{i}]");
            if let Some(enabled) = lcores.as_ref().filter(|m| !m.contains_key(&lcore)) {
                let enabled = enabled.keys().map(u32::to_string).collect::<Vec<_>>();
                self.errors.push(ConfError::WorkerNotEnabled {
                    at,
                    path,
                    lcore,
                    enabled: enabled.join(", "),
                });
                ok = false;
            } else if main == Some(lcore) {
                self.errors
                    .push(ConfError::WorkerIsMain { at, path, lcore });
                ok = false;
            }
        }
        ok.then_some(())
    }

    fn ports(&mut self, v: &Spanned<Node>) -> Option<Ports> {
        let t = self.table(v, "ports".into(), &["tunnel", "plaintext", "both"])?;
        if let Some(both) = t.get("both") {
            // One-armed: one port, both roles; the two-port tables may
            // not be given too.
            let mut ok = true;
            for role in ["tunnel", "plaintext"] {
                if let Some(other) = t.get(role) {
                    let at = self.at(&other.span());
                    self.errors.push(ConfError::RoleTwice {
                        at,
                        path: t.path(role),
                        role: role.to_owned(),
                    });
                    ok = false;
                }
            }
            let (port, _) = self.port(both, t.path("both"), Role::Both)?;
            return ok.then(|| Ports {
                tunnel: port.clone(),
                plaintext: port,
            });
        }
        let tunnel = self
            .required(&t, "tunnel")
            .and_then(|v| self.port(v, t.path("tunnel"), Role::Tunnel));
        let plaintext = self
            .required(&t, "plaintext")
            .and_then(|v| self.port(v, t.path("plaintext"), Role::Plaintext));
        let ((tunnel, _), (plaintext, plaintext_table)) = (tunnel?, plaintext?);
        // PCI addresses are hexadecimal: 3B and 3b are one device.
        let mut ok = !tunnel.device.eq_ignore_ascii_case(&plaintext.device)
            || self.vlan_split(&tunnel, &plaintext, &plaintext_table);
        if tunnel.tap == plaintext.tap {
            let span = plaintext_table
                .get("tap")
                .map_or_else(|| plaintext_table.span.clone(), |n| n.span());
            self.duplicate(
                &span,
                "ports.plaintext.tap".into(),
                "ports.tunnel.tap",
                plaintext.tap.escape_debug().to_string(),
            );
            ok = false;
        }
        ok.then_some(Ports { tunnel, plaintext })
    }

    /// The tunnel and plaintext ports on one device: allowed as two of its
    /// VLANs, each port with its own `vlan`, and one `mtu` (the device's).
    /// Errors are reported at `table`, the plaintext port's.
    fn vlan_split(&mut self, tunnel: &PortConf, plaintext: &PortConf, table: &Table<'_>) -> bool {
        let (field, problem) = match (tunnel.vlan, plaintext.vlan) {
            (Some(t), Some(p)) if t == p => (
                "vlan",
                format!("the same VLAN ({p}) as ports.tunnel.vlan on the same device: give each role its own VLAN"),
            ),
            (Some(_), Some(_)) if tunnel.mtu != plaintext.mtu => (
                "mtu",
                format!(
                    "{} differs from ports.tunnel.mtu ({}) on the same device: one port has one MTU",
                    plaintext.mtu, tunnel.mtu
                ),
            ),
            (Some(_), Some(_)) => return true,
            (None, None) => {
                // Not meant as VLANs: two ports given one device.
                let span = table
                    .get("device")
                    .map_or_else(|| table.span.clone(), |n| n.span());
                self.duplicate(
                    &span,
                    "ports.plaintext.device".into(),
                    "ports.tunnel.device",
                    plaintext.device.escape_debug().to_string(),
                );
                return false;
            }
            (t, _) => (
                "device",
                format!(
                    "the same device as ports.tunnel.device: two roles on one device are two of its VLANs, give ports.{}.vlan too",
                    if t.is_none() { "tunnel" } else { "plaintext" }
                ),
            ),
        };
        let span = table
            .get(field)
            .map_or_else(|| table.span.clone(), |n| n.span());
        let at = self.at(&span);
        self.errors.push(ConfError::SharedDevice {
            at,
            path: format!("ports.plaintext.{field}"),
            problem,
        });
        false
    }

    /// One port, and its table for the checks across ports. Only a port
    /// with the tunnel role takes `lane_ports`, only one with the
    /// plaintext role `mss_clamp`.
    fn port<'n>(
        &mut self,
        v: &'n Spanned<Node>,
        path: String,
        role: Role,
    ) -> Option<(PortConf, Table<'n>)> {
        const COMMON: [&str; 6] = ["device", "address", "gateway", "mtu", "tap", "vlan"];
        let own: &[&str] = match role {
            Role::Tunnel => &["lane_ports"],
            Role::Plaintext => &["mss_clamp"],
            Role::Both => &["lane_ports", "mss_clamp"],
        };
        let fields: Vec<&str> = COMMON.iter().chain(own).copied().collect();
        let fields = fields.as_slice();
        let t = self.table(v, path, fields)?;
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
            let ok = is_interface_name(s, b"_.-");
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
        // 0 (priority tags) and 4095 are reserved (IEEE 802.1Q table 9-2).
        let vlan = match t.get("vlan") {
            Some(v) => self.int(v, t.path("vlan"), 1, 4094).map(Some),
            None => Some(None),
        };
        let lane_ports = match t.get("lane_ports") {
            Some(v) => self.string(v, t.path("lane_ports")).and_then(|s| {
                let range = s.parse::<PortRange>().ok();
                if range.is_none() {
                    let at = self.at(&v.span());
                    self.errors.push(ConfError::BadPortRange {
                        at,
                        path: t.path("lane_ports"),
                        value: s.to_owned(),
                    });
                }
                range.map(Some)
            }),
            None => Some(None),
        };
        let mss_clamp = match t.get("mss_clamp") {
            Some(v) => self.mss_clamp(v, t.path("mss_clamp")),
            None => Some(None),
        };
        let port = PortConf {
            device: device?,
            address: address?,
            gateway: gateway?,
            mtu: u16::try_from(mtu?).ok()?,
            tap: tap?,
            lane_ports: lane_ports?,
            mss_clamp: mss_clamp?,
            vlan: vlan?.and_then(|v| u16::try_from(v).ok()),
        };
        Some((port, t))
    }

    /// `mss_clamp`: `"auto"`, `"off"` (`Some(None)`) or an MSS of
    /// 536..=65495 (RFC 9293's default up to the largest IPv4 payload).
    fn mss_clamp(&mut self, v: &Spanned<Node>, path: String) -> Option<Option<MssClamp>> {
        let value = match v.get_ref() {
            Node::Str(s) if s == "auto" => return Some(Some(MssClamp::Auto)),
            Node::Str(s) if s == "off" => return Some(None),
            Node::Int(i) => match u16::try_from(*i) {
                Ok(mss) if (536..=65495).contains(&mss) => return Some(Some(MssClamp::Fixed(mss))),
                _ => i.to_string(),
            },
            Node::Str(s) => format!("{s:?}"),
            _ => {
                self.wrong_type(v, path, "\"auto\", \"off\" or an integer");
                return None;
            }
        };
        let at = self.at(&v.span());
        self.errors.push(ConfError::BadMssClamp { at, path, value });
        None
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
}

/// The roles a `[ports.*]` table gives its port.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// `[ports.tunnel]`.
    Tunnel,
    /// `[ports.plaintext]`.
    Plaintext,
    /// `[ports.both]`: one-armed mode.
    Both,
}

/// The span of `tunnel.lane_ports` (or `both.lane_ports`) inside the
/// `[ports]` table node.
fn lane_ports_span(ports: &Spanned<Node>) -> Option<crate::schema::Span> {
    let find = |node: &Spanned<Node>, key: &str| match node.get_ref() {
        Node::Table(entries) => entries
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    let tunnel = find(ports, "tunnel").or_else(|| find(ports, "both"))?;
    find(&tunnel, "lane_ports").map(|v| v.span())
}
