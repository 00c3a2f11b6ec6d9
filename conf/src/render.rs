//! Rendering a configuration back to TOML.

use std::fmt::Write;

use crate::keys::KeySource;
use crate::{Config, MssClamp, PeerConf, PortConf, DEFAULT_ICMP_BURST, DEFAULT_ICMP_PER_SEC};

/// A TOML basic string literal for `s`.
pub(crate) fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML array of string literals.
pub(crate) fn list<T: ToString>(items: &[T]) -> String {
    let items: Vec<String> = items.iter().map(|i| quote(&i.to_string())).collect();
    format!("[{}]", items.join(", "))
}

fn port(out: &mut String, name: &str, p: &PortConf) {
    let _ = writeln!(out, "\n[ports.{name}]");
    let _ = writeln!(out, "device = {}", quote(&p.device));
    let _ = writeln!(out, "address = {}", list(&p.address));
    if !p.gateway.is_empty() {
        let _ = writeln!(out, "gateway = {}", list(&p.gateway));
    }
    let _ = writeln!(out, "mtu = {}", p.mtu);
    let _ = writeln!(out, "tap = {}", quote(&p.tap));
    if let Some(vlan) = p.vlan {
        let _ = writeln!(out, "vlan = {vlan}");
    }
    if let Some(range) = p.lane_ports {
        let _ = writeln!(out, "lane_ports = {}", quote(&range.to_string()));
    }
    match p.mss_clamp {
        Some(MssClamp::Auto) => out.push_str("mss_clamp = \"auto\"\n"),
        Some(MssClamp::Fixed(mss)) => {
            let _ = writeln!(out, "mss_clamp = {mss}");
        }
        None => {}
    }
}

/// The fields of one `[[peers]]` table (without its header), in schema order.
pub(crate) fn peer_fields(out: &mut String, peer: &PeerConf) {
    let _ = writeln!(out, "public_key = {}", quote(&peer.public_key.to_string()));
    if let Some(psk) = &peer.preshared_key {
        let _ = writeln!(out, "preshared_key = {}", quote(&psk.to_base64()));
    }
    if let Some(endpoint) = peer.endpoint {
        let _ = writeln!(out, "endpoint = {}", quote(&endpoint.to_string()));
    }
    let _ = writeln!(out, "allowed_ips = {}", list(&peer.allowed_ips));
    if let Some(k) = peer.persistent_keepalive {
        let _ = writeln!(out, "persistent_keepalive = {k}");
    }
    if peer.lanes != 1 {
        let _ = writeln!(out, "lanes = {}", peer.lanes);
    }
}

impl Config {
    /// Renders a configuration that [`Config::from_str`] (or, with a key
    /// file, [`Config::load`]) parses back to an equal value. An inline
    /// private key is written inline, in clear: treat the result as secret.
    pub fn to_toml_string(&self) -> String {
        let mut out = String::from("[interface]\n");
        let _ = writeln!(out, "name = {}", quote(&self.interface.name));
        match &self.interface.key_source {
            KeySource::Inline => {
                let key = self.interface.private_key.to_base64();
                let _ = writeln!(out, "private_key = {}", quote(&key));
            }
            KeySource::File(file) => {
                let _ = writeln!(out, "private_key_file = {}", quote(&file.to_string_lossy()));
            }
        }
        let _ = writeln!(out, "listen_port = {}", self.interface.listen_port);

        let d = &self.dpdk;
        out.push_str("\n[dpdk]\n");
        let _ = writeln!(out, "eal_args = {}", list(&d.eal_args));
        let workers: Vec<String> = d.workers.iter().map(u32::to_string).collect();
        let _ = writeln!(out, "workers = [{}]", workers.join(", "));
        let _ = writeln!(out, "mbufs = {}", d.mbufs);
        let _ = writeln!(out, "idle_sleep_us = {}", d.idle_sleep_us);
        let _ = writeln!(out, "idle_polls = {}", d.idle_polls);
        let _ = writeln!(out, "aead = \"{}\"", d.aead.name());
        if let Some(device) = &d.crypto_device {
            let _ = writeln!(out, "crypto_device = {}", quote(device));
        }
        if let Some(budget) = d.staging_budget {
            let _ = writeln!(out, "staging_budget = {budget}");
        }
        if (d.icmp_per_sec, d.icmp_burst) != (DEFAULT_ICMP_PER_SEC, DEFAULT_ICMP_BURST) {
            let _ = writeln!(out, "icmp_per_sec = {}", d.icmp_per_sec);
            let _ = writeln!(out, "icmp_burst = {}", d.icmp_burst);
        }
        if let Some(threads) = d.handshake_threads {
            let _ = writeln!(out, "handshake_threads = {threads}");
        }
        if let Some(nice) = d.control_nice {
            let _ = writeln!(out, "control_nice = {nice}");
        }

        if self.ports.one_armed() {
            port(&mut out, "both", &self.ports.tunnel);
        } else {
            port(&mut out, "tunnel", &self.ports.tunnel);
            port(&mut out, "plaintext", &self.ports.plaintext);
        }

        if let Some(metrics) = &self.metrics {
            out.push_str("\n[metrics]\n");
            let _ = writeln!(out, "listen = {}", quote(&metrics.listen.to_string()));
        }
        if let Some(cluster) = &self.cluster {
            out.push_str("\n[cluster]\n");
            let _ = writeln!(out, "export_table = {}", cluster.export_table);
        }

        for peer in &self.peers {
            out.push_str("\n[[peers]]\n");
            peer_fields(&mut out, peer);
        }
        for group in &self.groups {
            out.push_str("\n[[groups]]\n");
            let _ = writeln!(out, "name = {}", quote(&group.name));
            let _ = writeln!(out, "members = {}", list(&group.members));
            let _ = writeln!(out, "prefixes = {}", list(&group.prefixes));
        }
        out
    }
}
