//! The `[[peers]]` array and the rules across peers.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_spanned::Spanned;

use super::{Ctx, Table};
use crate::cidr::Cidr;
use crate::error::ConfError;
use crate::keys::{PresharedKey, PublicKey};
use crate::schema::Node;
use crate::{PeerConf, MAX_LANES};

/// What a peer's `lanes` is checked against, where the other sections
/// were valid enough to say.
#[derive(Debug, Clone, Copy)]
pub(super) struct LaneLimits {
    /// The number of workers.
    pub workers: Option<usize>,
    /// Whether `ports.tunnel.lane_ports` is set.
    pub ports: Option<bool>,
}

impl Ctx<'_> {
    pub(super) fn peers(
        &mut self,
        v: &Spanned<Node>,
        own: Option<PublicKey>,
        lanes: LaneLimits,
    ) -> Option<Vec<PeerConf>> {
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
            if peer.lanes > 1 {
                ok &= self.lanes_fit(&t, peer.lanes, lanes);
            }
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
                "lanes",
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
                c.canonical_cidr(item, p)
            }),
            None => Some(Vec::new()),
        };
        let keepalive = self.int_or(&t, "persistent_keepalive", 0, 0, 65535);
        let lanes = self.int_or(&t, "lanes", 1, 1, MAX_LANES.into());
        let peer = PeerConf {
            public_key: public_key?,
            preshared_key: preshared_key?,
            endpoint: endpoint?,
            allowed_ips: allowed_ips?,
            persistent_keepalive: u16::try_from(keepalive?).ok().filter(|&k| k != 0),
            lanes: u16::try_from(lanes?).ok()?,
        };
        Some((peer, t))
    }

    /// Checks a multi-lane peer's `lanes` against the workers and the
    /// tunnel port's `lane_ports`.
    fn lanes_fit(&mut self, t: &Table, lanes: u16, limits: LaneLimits) -> bool {
        let span = t.get("lanes").map_or(t.span.clone(), |n| n.span());
        let (at, path) = (self.at(&span), t.path("lanes"));
        if let Some(workers) = limits.workers.filter(|&w| usize::from(lanes) > w) {
            self.errors.push(ConfError::LanesOverWorkers {
                at,
                path,
                lanes,
                workers,
            });
            return false;
        }
        if limits.ports == Some(false) {
            self.errors
                .push(ConfError::LanesWithoutPorts { at, path, lanes });
            return false;
        }
        true
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
