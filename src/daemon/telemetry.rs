//! wgdp's statistics as DPDK telemetry commands, for `dpdk-telemetry.py`
//! (`-f <file-prefix>`) and anything else that speaks DPDK telemetry.
//!
//! Every command is answered from the [`Show`] document the control thread
//! publishes on the [`SnapshotBoard`] (at most [`MAX_AGE`] old): the same
//! numbers as `wgdp show` and the Prometheus metrics. DPDK 22.11 limits a
//! reply to 16 KiB, 256 dictionary and 512 array entries, and cannot nest
//! a dictionary in a dictionary, so lists and details are separate
//! commands, as DPDK's own `/ethdev/list` and `/ethdev/stats,<port>` are:
//!
//! | command | answer |
//! |---|---|
//! | `/wgdp/info` | interface name, public key, listen port, number of peers, worker lcores, ports |
//! | `/wgdp/lcores` | the worker lcores |
//! | `/wgdp/lcore,<lcore>` | one worker's events and drops (`drop_<reason>`) |
//! | `/wgdp/drops` | drops by reason, summed over the workers |
//! | `/wgdp/ports` | the port roles (`tunnel`, `plaintext`) |
//! | `/wgdp/port,<role>` | one port's DPDK counters |
//! | `/wgdp/control` | the control thread's counters |
//! | `/wgdp/peers[,<start>]` | the number of peers and up to [`PEERS_PER_PAGE`] public keys from `start` |
//! | `/wgdp/peer,<public key>` | one peer: endpoint, latest handshake, bytes, allowed IPs, owner lcore |
//!
//! A command whose parameter names nothing (or while the control thread is
//! not running) answers `null`, as DPDK's own commands do.

use std::sync::Arc;

use dataplane::counters::DropReason;
use dpdk_sys::rte::telemetry::{self, Registration, Reply, TelemetryError, Value};

use control::show::Show;
use control::show::{SnapshotBoard, MAX_AGE, WAIT};
use control::snapshot::PeerSnapshot;

/// Public keys per `/wgdp/peers` page (each takes 47 bytes of JSON).
pub const PEERS_PER_PAGE: usize = 128;
/// Allowed IPs listed by `/wgdp/peer` (`allowed_ips_total` counts all).
pub const ALLOWED_IPS_LISTED: usize = 256;

/// A command: its name, help, and how it answers from a document.
struct Command {
    name: &'static str,
    help: &'static str,
    answer: fn(&Show, Option<&str>) -> Option<Reply>,
}

const COMMANDS: [Command; 9] = [
    Command {
        name: "/wgdp/info",
        help: "Returns the interface, its public key and listen port, the number of peers, the worker lcores and ports.",
        answer: info,
    },
    Command {
        name: "/wgdp/lcores",
        help: "Returns the worker lcores.",
        answer: lcores,
    },
    Command {
        name: "/wgdp/lcore",
        help: "Returns one worker's events and drops. Parameters: int lcore",
        answer: lcore,
    },
    Command {
        name: "/wgdp/drops",
        help: "Returns packets dropped by reason, summed over the workers.",
        answer: drops,
    },
    Command {
        name: "/wgdp/ports",
        help: "Returns the port roles.",
        answer: ports,
    },
    Command {
        name: "/wgdp/port",
        help: "Returns one port's DPDK counters. Parameters: string role (tunnel or plaintext)",
        answer: port,
    },
    Command {
        name: "/wgdp/control",
        help: "Returns the control thread's counters.",
        answer: control,
    },
    Command {
        name: "/wgdp/peers",
        help: "Returns the number of peers and up to 128 public keys. Parameters: int start (default 0)",
        answer: peers,
    },
    Command {
        name: "/wgdp/peer",
        help: "Returns one peer. Parameters: string public key (base64)",
        answer: peer,
    },
];

/// Registers every command, answering from `board`. Dropping the returned
/// registrations takes the commands away (they then answer `null`).
pub fn register(board: &Arc<SnapshotBoard>) -> Result<Vec<Registration>, TelemetryError> {
    COMMANDS
        .iter()
        .map(|c| {
            let (board, answer) = (board.clone(), c.answer);
            telemetry::register(
                c.name,
                c.help,
                Arc::new(move |params| answer(&*board.get(MAX_AGE, WAIT)?, params)),
            )
        })
        .collect()
}

fn u64s(v: impl IntoIterator<Item = u32>) -> Vec<u64> {
    v.into_iter().map(u64::from).collect()
}

fn count(n: usize) -> Value {
    Value::U64(u64::try_from(n).unwrap_or(u64::MAX))
}

fn info(s: &Show, _: Option<&str>) -> Option<Reply> {
    Some(Reply::Dict(vec![
        ("interface".into(), Value::String(s.interface.name.clone())),
        (
            "public_key".into(),
            Value::String(s.interface.public_key.clone()),
        ),
        (
            "listen_port".into(),
            Value::U64(u64::from(s.interface.listen_port)),
        ),
        ("peers".into(), count(s.peers.len())),
        (
            "lcores".into(),
            Value::U64s(u64s(s.lcores.iter().map(|l| l.lcore))),
        ),
        (
            "ports".into(),
            Value::Strings(s.ports.iter().map(|p| p.role.clone()).collect()),
        ),
    ]))
}

fn lcores(s: &Show, _: Option<&str>) -> Option<Reply> {
    Some(Reply::U64s(u64s(s.lcores.iter().map(|l| l.lcore))))
}

fn lcore(s: &Show, params: Option<&str>) -> Option<Reply> {
    let id: u32 = params?.trim().parse().ok()?;
    let l = s.lcores.iter().find(|l| l.lcore == id)?;
    let mut entries = vec![("lcore".to_owned(), Value::U64(u64::from(id)))];
    entries.extend(
        l.events
            .iter()
            .map(|(name, v)| (name.clone(), Value::U64(*v))),
    );
    entries.extend(
        l.drops
            .iter()
            .map(|(reason, v)| (format!("drop_{reason}"), Value::U64(*v))),
    );
    Some(Reply::Dict(entries))
}

fn drops(s: &Show, _: Option<&str>) -> Option<Reply> {
    Some(Reply::Dict(
        DropReason::ALL
            .iter()
            .map(|r| {
                let sum = s.lcores.iter().filter_map(|l| l.drops.get(r.label())).sum();
                (r.label().to_owned(), Value::U64(sum))
            })
            .collect(),
    ))
}

fn ports(s: &Show, _: Option<&str>) -> Option<Reply> {
    Some(Reply::Strings(
        s.ports.iter().map(|p| p.role.clone()).collect(),
    ))
}

fn port(s: &Show, params: Option<&str>) -> Option<Reply> {
    let role = params?.trim();
    let p = s.ports.iter().find(|p| p.role == role)?;
    let n = |name: &str, v: u64| (name.to_owned(), Value::U64(v));
    Some(Reply::Dict(vec![
        ("role".into(), Value::String(p.role.clone())),
        ("device".into(), Value::String(p.device.clone())),
        n("rx_packets", p.rx_packets),
        n("tx_packets", p.tx_packets),
        n("rx_bytes", p.rx_bytes),
        n("tx_bytes", p.tx_bytes),
        n("rx_missed", p.rx_missed),
        n("rx_errors", p.rx_errors),
        n("tx_errors", p.tx_errors),
        n("rx_nombuf", p.rx_nombuf),
    ]))
}

fn control(s: &Show, _: Option<&str>) -> Option<Reply> {
    Some(Reply::Dict(
        s.control
            .iter()
            .map(|(name, v)| (name.clone(), Value::U64(*v)))
            .collect(),
    ))
}

fn peers(s: &Show, params: Option<&str>) -> Option<Reply> {
    let start: usize = match params.map(str::trim) {
        None | Some("") => 0,
        Some(p) => p.parse().ok()?,
    };
    let keys: Vec<String> = s
        .peers
        .iter()
        .skip(start)
        .take(PEERS_PER_PAGE)
        .map(PeerSnapshot::key_base64)
        .collect();
    Some(Reply::Dict(vec![
        ("total".into(), count(s.peers.len())),
        ("start".into(), count(start)),
        ("public_keys".into(), Value::Strings(keys)),
    ]))
}

fn peer(s: &Show, params: Option<&str>) -> Option<Reply> {
    let key = conf::decode_key(params?.trim())?;
    let p = s.peers.iter().find(|p| p.public_key == key)?;
    Some(peer_reply(p))
}

/// One peer as `/wgdp/peer` shows it: absent values are empty strings or 0,
/// as in `wg show dump`.
fn peer_reply(p: &PeerSnapshot) -> Reply {
    let n = |name: &str, v: u64| (name.to_owned(), Value::U64(v));
    Reply::Dict(vec![
        ("public_key".into(), Value::String(p.key_base64())),
        (
            "endpoint".into(),
            Value::String(p.endpoint.map(|e| e.to_string()).unwrap_or_default()),
        ),
        n("latest_handshake", p.latest_handshake_secs().unwrap_or(0)),
        n("handshakes", p.handshakes),
        n("rx_bytes", p.rx_bytes),
        n("tx_bytes", p.tx_bytes),
        n(
            "persistent_keepalive",
            u64::from(p.persistent_keepalive.unwrap_or(0)),
        ),
        n("owner_lcore", u64::from(p.owner_lcore)),
        ("allowed_ips_total".into(), count(p.allowed_ips.len())),
        (
            "allowed_ips".into(),
            Value::Strings(
                p.allowed_ips
                    .iter()
                    .take(ALLOWED_IPS_LISTED)
                    .map(ToString::to_string)
                    .collect(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use dataplane::counters::Event;
    use protocol::allowedips::Prefix;

    use super::*;
    use control::show::{InterfaceShow, LcoreShow, PortShow};

    fn snapshot(key: u8) -> PeerSnapshot {
        PeerSnapshot {
            public_key: [key; 32],
            endpoint: (key & 1 == 0).then(|| "[2001:db8::1]:51820".parse().unwrap()),
            latest_handshake: Some(std::time::Duration::new(1_700_000_000, 7)),
            handshakes: u64::from(key),
            rx_bytes: 100 + u64::from(key),
            tx_bytes: 200 + u64::from(key),
            allowed_ips: (0..=255u8)
                .chain(0..=255)
                .take(usize::from(key))
                .map(|i| Prefix::new(format!("10.{key}.{i}.0").parse().unwrap(), 24).unwrap())
                .collect(),
            persistent_keepalive: None,
            owner_lcore: 1 + u32::from(key & 1),
            lanes: 1,
            plain_packets: 0,
            plain_handed_off: 0,
        }
    }

    fn lcore_show(lcore: u32, replay: u64) -> LcoreShow {
        LcoreShow {
            lcore,
            drops: DropReason::ALL
                .iter()
                .map(|r| {
                    (
                        r.label().to_owned(),
                        if *r == DropReason::Replay { replay } else { 0 },
                    )
                })
                .collect(),
            events: Event::ALL
                .iter()
                .map(|e| (e.label().to_owned(), 3))
                .collect(),
        }
    }

    fn show(peers: usize) -> Show {
        Show {
            interface: InterfaceShow {
                name: "wgdp0".into(),
                public_key: conf::encode_key(&[9; 32]),
                listen_port: 51820,
            },
            peers: (0..peers).map(|i| snapshot(i as u8)).collect(),
            groups: Vec::new(),
            lcores: vec![lcore_show(1, 2), lcore_show(2, 5)],
            ports: ["tunnel", "plaintext"]
                .iter()
                .map(|r| PortShow {
                    role: (*r).into(),
                    device: format!("net_tap_{r}"),
                    rx_packets: 1,
                    tx_packets: 2,
                    rx_bytes: 3,
                    tx_bytes: 4,
                    rx_missed: 5,
                    rx_errors: 6,
                    tx_errors: 7,
                    rx_nombuf: 8,
                })
                .collect(),
            control: BTreeMap::from([("initiations_sent".to_owned(), 4)]),
            steering_rules: 0,
            route_export: None,
        }
    }

    fn get(reply: &Reply, name: &str) -> Option<Value> {
        let Reply::Dict(entries) = reply else {
            return None;
        };
        entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Every answer fits DPDK's limits, with many peers and lcores too.
    fn answer(name: &str, s: &Show, params: Option<&str>) -> Option<Reply> {
        let c = COMMANDS.iter().find(|c| c.name == name).expect("command");
        let reply = (c.answer)(s, params)?;
        reply
            .check()
            .unwrap_or_else(|e| panic!("{name} {params:?}: {e}"));
        Some(reply)
    }

    #[test]
    fn commands_are_valid_for_dpdk() {
        for c in &COMMANDS {
            let r = telemetry::register(c.name, c.help, Arc::new(|_| None)).expect(c.name);
            drop(r);
        }
    }

    #[test]
    fn info_lcores_ports_control() {
        let s = show(3);
        let i = answer("/wgdp/info", &s, None).unwrap();
        assert_eq!(get(&i, "interface"), Some(Value::String("wgdp0".into())));
        assert_eq!(get(&i, "peers"), Some(Value::U64(3)));
        assert_eq!(get(&i, "lcores"), Some(Value::U64s(vec![1, 2])));
        assert_eq!(
            answer("/wgdp/lcores", &s, None),
            Some(Reply::U64s(vec![1, 2]))
        );

        let l = answer("/wgdp/lcore", &s, Some("2")).unwrap();
        assert_eq!(get(&l, "lcore"), Some(Value::U64(2)));
        assert_eq!(get(&l, "drop_replay"), Some(Value::U64(5)));
        assert_eq!(get(&l, "encapsulated"), Some(Value::U64(3)));
        let Reply::Dict(entries) = &l else { panic!() };
        assert_eq!(entries.len(), 1 + DropReason::COUNT + Event::COUNT);
        for bad in [None, Some("3"), Some("x"), Some("")] {
            assert_eq!(answer("/wgdp/lcore", &s, bad), None, "{bad:?}");
        }
        let d = answer("/wgdp/drops", &s, None).unwrap();
        assert_eq!(get(&d, "replay"), Some(Value::U64(7)));
        assert_eq!(get(&d, "no_route"), Some(Value::U64(0)));

        assert_eq!(
            answer("/wgdp/ports", &s, None),
            Some(Reply::Strings(vec!["tunnel".into(), "plaintext".into()]))
        );
        let p = answer("/wgdp/port", &s, Some("plaintext")).unwrap();
        assert_eq!(
            get(&p, "device"),
            Some(Value::String("net_tap_plaintext".into()))
        );
        assert_eq!(get(&p, "rx_nombuf"), Some(Value::U64(8)));
        assert_eq!(answer("/wgdp/port", &s, Some("lan")), None);
        assert_eq!(
            answer("/wgdp/control", &s, None),
            Some(Reply::Dict(vec![(
                "initiations_sent".into(),
                Value::U64(4)
            )]))
        );
    }

    #[test]
    fn peers_page_and_peer_detail() {
        let s = show(200);
        let first = answer("/wgdp/peers", &s, None).unwrap();
        assert_eq!(get(&first, "total"), Some(Value::U64(200)));
        let Some(Value::Strings(keys)) = get(&first, "public_keys") else {
            panic!()
        };
        assert_eq!(keys.len(), PEERS_PER_PAGE);
        assert_eq!(keys[0], conf::encode_key(&[0; 32]));
        let rest = answer("/wgdp/peers", &s, Some("128")).unwrap();
        let Some(Value::Strings(keys)) = get(&rest, "public_keys") else {
            panic!()
        };
        assert_eq!(keys.len(), 200 - PEERS_PER_PAGE);
        assert_eq!(get(&rest, "start"), Some(Value::U64(128)));
        let past = answer("/wgdp/peers", &s, Some("5000")).unwrap();
        assert_eq!(get(&past, "public_keys"), Some(Value::Strings(Vec::new())));
        assert_eq!(answer("/wgdp/peers", &s, Some("-1")), None);

        let key = conf::encode_key(&[2; 32]);
        let p = answer("/wgdp/peer", &s, Some(&key)).unwrap();
        assert_eq!(get(&p, "public_key"), Some(Value::String(key)));
        assert_eq!(
            get(&p, "endpoint"),
            Some(Value::String("[2001:db8::1]:51820".into()))
        );
        assert_eq!(get(&p, "latest_handshake"), Some(Value::U64(1_700_000_000)));
        assert_eq!(get(&p, "rx_bytes"), Some(Value::U64(102)));
        assert_eq!(get(&p, "owner_lcore"), Some(Value::U64(1)));
        assert_eq!(
            get(&p, "allowed_ips"),
            Some(Value::Strings(vec![
                "10.2.0.0/24".into(),
                "10.2.1.0/24".into()
            ]))
        );
        let odd = answer("/wgdp/peer", &s, Some(&conf::encode_key(&[3; 32]))).unwrap();
        assert_eq!(get(&odd, "endpoint"), Some(Value::String(String::new())));
        // Many prefixes: listed up to the limit, all counted.
        let many = answer("/wgdp/peer", &s, Some(&conf::encode_key(&[199; 32]))).unwrap();
        assert_eq!(get(&many, "allowed_ips_total"), Some(Value::U64(199)));
        let big = show(0);
        let mut wide = snapshot(1);
        wide.allowed_ips = (0..400u32)
            .map(|i| {
                Prefix::new(
                    std::net::Ipv6Addr::from(u128::from(i) << 64 | 0xffff_ffff).into(),
                    128,
                )
                .unwrap()
            })
            .collect();
        let with_wide = Show {
            peers: vec![wide],
            ..big
        };
        let w = answer("/wgdp/peer", &with_wide, Some(&conf::encode_key(&[1; 32]))).unwrap();
        assert_eq!(get(&w, "allowed_ips_total"), Some(Value::U64(400)));
        let Some(Value::Strings(listed)) = get(&w, "allowed_ips") else {
            panic!()
        };
        assert_eq!(listed.len(), ALLOWED_IPS_LISTED);
        for bad in [
            None,
            Some("nope"),
            Some(conf::encode_key(&[250; 32]).as_str()),
        ] {
            assert_eq!(answer("/wgdp/peer", &s, bad), None, "{bad:?}");
        }
    }
}
