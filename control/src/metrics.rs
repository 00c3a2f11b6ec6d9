//! Prometheus metrics: the text exposition (format 0.0.4) of every wgdp
//! counter.
//!
//! [`render`] turns the per-lcore worker counters, the control thread's
//! counters and a snapshot of the peers into the exposition text; the
//! `wgdp` binary serves it over HTTP (src/daemon/metrics_http.rs).

use std::fmt::Write as _;
use std::sync::Arc;

use dataplane::counters::{DropReason, Event, WorkerCounters};

use crate::counters::ControlCounters;
use crate::groups::{GroupMemberShow, GroupShow};
use crate::snapshot::{lcore_of, PeerSnapshot};

/// The byte counters among the events, and the `direction` label of each.
fn bytes_direction(e: Event) -> Option<&'static str> {
    match e {
        Event::EncapBytes => Some("encap"),
        Event::DecapBytes => Some("decap"),
        _ => None,
    }
}

/// A per-peer family labelled by the peer's public key only.
struct PeerFamily {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: fn(&PeerSnapshot) -> u64,
}

/// A per-group-member family labelled by the group and the member's key.
struct GroupFamily {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    value: fn(&GroupMemberShow) -> u64,
}

/// The per-group-member families, in output order.
const GROUP_FAMILIES: [GroupFamily; 2] = [
    GroupFamily {
        name: "wgdp_group_member_packets_total",
        help: "Plaintext packets routed to a tunnel group member, per group and member.",
        kind: "counter",
        value: |m| m.packets,
    },
    GroupFamily {
        name: "wgdp_group_member_live",
        help: "1 while a tunnel group member carries flows (fresh session, data answered), else 0.",
        kind: "gauge",
        value: |m| u64::from(m.live),
    },
];

/// The per-peer families, in output order.
const PEER_FAMILIES: [PeerFamily; 8] = [
    PeerFamily {
        name: "wgdp_peer_rx_bytes_total",
        help: "Plaintext bytes received from the peer.",
        kind: "counter",
        value: |p| p.rx_bytes,
    },
    PeerFamily {
        name: "wgdp_peer_tx_bytes_total",
        help: "Plaintext bytes sent to the peer.",
        kind: "counter",
        value: |p| p.tx_bytes,
    },
    PeerFamily {
        name: "wgdp_peer_handshakes_total",
        help: "Handshakes completed with the peer.",
        kind: "counter",
        value: |p| p.handshakes,
    },
    PeerFamily {
        name: "wgdp_peer_latest_handshake_seconds",
        help: "Unix time of the latest completed handshake with the peer, 0 if none.",
        kind: "gauge",
        value: |p| p.latest_handshake_secs().unwrap_or(0),
    },
    PeerFamily {
        name: "wgdp_peer_lanes",
        help: "Workers that encrypt and decrypt for the peer at once (its lanes setting).",
        kind: "gauge",
        value: |p| u64::from(p.lanes),
    },
    PeerFamily {
        name: "wgdp_peer_plaintext_packets_total",
        help: "Plaintext packets for the peer that reached its owner lcore.",
        kind: "counter",
        value: |p| p.plain_packets,
    },
    PeerFamily {
        name: "wgdp_peer_plaintext_handed_off_total",
        help: "Of those, packets another lcore received and handed off.",
        kind: "counter",
        value: |p| p.plain_handed_off,
    },
    PeerFamily {
        name: "wgdp_peer_lanes_would_help",
        help: "1 when a single-lane peer's plaintext mostly arrives on other lcores (at least 10k packets, a quarter handed off): lanes = N would spread it.",
        kind: "gauge",
        value: |p| u64::from(p.would_benefit_from_lanes()),
    },
];

/// Renders the Prometheus text exposition (format 0.0.4) of every counter.
///
/// `workers[i]` runs on lcore `lcores[i]` (the worker index stands in for a
/// missing lcore). Families: `wgdp_drops_total{lcore,reason}`,
/// `wgdp_packets_total{lcore,event}`, `wgdp_bytes_total{lcore,direction}`,
/// `wgdp_control_<name>_total`, and per peer
/// `wgdp_peer_{rx,tx}_bytes_total`, `wgdp_peer_handshakes_total`,
/// `wgdp_peer_latest_handshake_seconds` (gauge, 0 if never) and
/// `wgdp_peer_info{public_key,lcore,endpoint} 1` (gauge), then the number
/// of peers `wgdp_peers` (gauge); per tunnel group member,
/// `wgdp_group_member_packets_total{group,public_key}` and
/// `wgdp_group_member_live{group,public_key}` (gauge, 1 or 0).
pub fn render(
    workers: &[Arc<WorkerCounters>],
    lcores: &[u32],
    control: &ControlCounters,
    peers: &[PeerSnapshot],
    groups: &[GroupShow],
) -> String {
    let mut out = String::new();
    let lcore_labels: Vec<String> = (0..workers.len())
        .map(|i| lcore_of(lcores, i).to_string())
        .collect();

    let mut help = String::from("Packets dropped, per lcore and reason.");
    for r in DropReason::ALL {
        let _ = write!(help, " {}: {}", r.label(), r.description().trim());
    }
    header(&mut out, "wgdp_drops_total", &help, "counter");
    for (w, lcore) in workers.iter().zip(&lcore_labels) {
        for r in DropReason::ALL {
            sample(
                &mut out,
                "wgdp_drops_total",
                &[("lcore", lcore), ("reason", r.label())],
                w.drops(*r),
            );
        }
    }

    let packet_events = || Event::ALL.iter().filter(|e| bytes_direction(**e).is_none());
    let mut help = String::from("Packets handled, per lcore and event.");
    for e in packet_events() {
        let _ = write!(help, " {}: {}", e.label(), e.description().trim());
    }
    header(&mut out, "wgdp_packets_total", &help, "counter");
    for (w, lcore) in workers.iter().zip(&lcore_labels) {
        for e in packet_events() {
            sample(
                &mut out,
                "wgdp_packets_total",
                &[("lcore", lcore), ("event", e.label())],
                w.events(*e),
            );
        }
    }

    let mut help = String::from("Plaintext bytes, per lcore and direction.");
    for e in Event::ALL {
        if let Some(dir) = bytes_direction(*e) {
            let _ = write!(help, " {dir}: {}", e.description().trim());
        }
    }
    header(&mut out, "wgdp_bytes_total", &help, "counter");
    for (w, lcore) in workers.iter().zip(&lcore_labels) {
        for e in Event::ALL {
            if let Some(dir) = bytes_direction(*e) {
                sample(
                    &mut out,
                    "wgdp_bytes_total",
                    &[("lcore", lcore), ("direction", dir)],
                    w.events(*e),
                );
            }
        }
    }

    for (name, value) in control.snapshot() {
        let family = format!("wgdp_control_{name}_total");
        let help = ControlCounters::describe(name).unwrap_or("Control thread counter.");
        header(&mut out, &family, help, "counter");
        sample(&mut out, &family, &[], value);
    }

    let keys: Vec<String> = peers.iter().map(PeerSnapshot::key_base64).collect();
    for f in PEER_FAMILIES {
        header(&mut out, f.name, f.help, f.kind);
        for (p, key) in peers.iter().zip(&keys) {
            sample(&mut out, f.name, &[("public_key", key)], (f.value)(p));
        }
    }

    header(
        &mut out,
        "wgdp_peer_info",
        "Always 1: the peer's owner lcore and endpoint (empty if unknown) as labels.",
        "gauge",
    );
    for (p, key) in peers.iter().zip(&keys) {
        let lcore = p.owner_lcore.to_string();
        let endpoint = p.endpoint.map(|e| e.to_string()).unwrap_or_default();
        sample(
            &mut out,
            "wgdp_peer_info",
            &[
                ("public_key", key),
                ("lcore", &lcore),
                ("endpoint", &endpoint),
            ],
            1,
        );
    }

    header(&mut out, "wgdp_peers", "Configured peers.", "gauge");
    sample(
        &mut out,
        "wgdp_peers",
        &[],
        u64::try_from(peers.len()).unwrap_or(u64::MAX),
    );

    for f in GROUP_FAMILIES {
        header(&mut out, f.name, f.help, f.kind);
        for g in groups {
            for m in &g.members {
                let labels = [
                    ("group", g.name.as_str()),
                    ("public_key", m.public_key.as_str()),
                ];
                sample(&mut out, f.name, &labels, (f.value)(m));
            }
        }
    }
    out
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub(crate) fn header(out: &mut String, family: &str, help: &str, kind: &str) {
    out.push_str("# HELP ");
    out.push_str(family);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\n');
    let _ = writeln!(out, "# TYPE {family} {kind}");
}

/// Writes one sample line.
pub(crate) fn sample(out: &mut String, family: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(family);
    if !labels.is_empty() {
        out.push('{');
        for (i, (name, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::time::Duration;

    use crate::counters::bump;

    /// Label names and (unescaped) values, in order.
    type Labels = Vec<(String, String)>;
    /// One parsed sample: name, labels, value.
    type Sample = (String, Labels, u64);

    fn is_metric_name(s: &str) -> bool {
        let mut b = s.bytes();
        matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
    }

    fn is_label_name(s: &str) -> bool {
        let mut b = s.bytes();
        matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
    }

    /// Parses `{name="value",...}` at the start of `s`; returns the labels
    /// and the rest of `s` after the `}`.
    fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
        let mut rest = s.strip_prefix('{').ok_or("no {")?;
        let mut labels = Vec::new();
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                return Ok((labels, r));
            }
            let eq = rest.find('=').ok_or("label without =")?;
            let name = &rest[..eq];
            if !is_label_name(name) {
                return Err(format!("bad label name {name:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next().ok_or("unterminated label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                        '\\' => value.push('\\'),
                        '"' => value.push('"'),
                        'n' => value.push('\n'),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    (_, '\n') => return Err("raw newline in label value".into()),
                    (_, c) => value.push(c),
                }
            };
            if labels.iter().any(|(n, _)| *n == name) {
                return Err(format!("duplicate label {name}"));
            }
            labels.push((name.to_owned(), value));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
                if rest.starts_with('}') {
                    return Err("trailing comma".into());
                }
            } else if !rest.starts_with('}') {
                return Err("expected , or }".into());
            }
        }
    }

    /// A strict checker of the text format as `render` uses it: every
    /// family has exactly one HELP then one TYPE (counter or gauge) before
    /// its samples, samples of a family are contiguous and follow their
    /// TYPE, sample names equal their family, label syntax and escapes are
    /// valid, label sets are unique, values are unsigned integers, and the
    /// text ends with a newline. Returns the samples.
    fn check_exposition(text: &str) -> Result<Vec<Sample>, String> {
        if !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        let mut help: HashSet<String> = HashSet::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut finished: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut seen: HashSet<(String, Labels)> = HashSet::new();
        let mut samples = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, doc) = rest
                    .split_once(' ')
                    .ok_or_else(|| err("HELP without text".into()))?;
                if !is_metric_name(name) {
                    return Err(err("bad family name".into()));
                }
                let mut chars = doc.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                        return Err(err("bad escape in HELP".into()));
                    }
                }
                if !help.insert(name.to_owned()) || types.contains_key(name) {
                    return Err(err("HELP repeated or after TYPE".into()));
                }
                if let Some(prev) = current.take() {
                    finished.insert(prev);
                }
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest
                    .split_once(' ')
                    .ok_or_else(|| err("TYPE without type".into()))?;
                if !help.contains(name) {
                    return Err(err("TYPE before HELP".into()));
                }
                if !matches!(kind, "counter" | "gauge") {
                    return Err(err("unexpected type".into()));
                }
                if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                    return Err(err("TYPE repeated".into()));
                }
                current = Some(name.to_owned());
            } else if line.starts_with('#') || line.is_empty() {
                return Err(err("unexpected comment or blank line".into()));
            } else {
                let name_end = line
                    .find(['{', ' '])
                    .ok_or_else(|| err("no value".into()))?;
                let name = &line[..name_end];
                if current.as_deref() != Some(name) {
                    return Err(err(format!(
                        "sample outside its family (current {current:?}, finished: {})",
                        finished.contains(name)
                    )));
                }
                let (labels, rest) = if line[name_end..].starts_with('{') {
                    parse_labels(&line[name_end..]).map_err(err)?
                } else {
                    (Vec::new(), &line[name_end..])
                };
                let value = rest
                    .strip_prefix(' ')
                    .ok_or_else(|| err("no space before value".into()))?;
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("value is not an unsigned integer".into()));
                }
                let value: u64 = value.parse().map_err(|e| err(format!("{e}")))?;
                let mut key = labels.clone();
                key.sort();
                if !seen.insert((name.to_owned(), key)) {
                    return Err(err("duplicate sample".into()));
                }
                samples.push((name.to_owned(), labels, value));
            }
        }
        if let Some(t) = types.keys().find(|t| !help.contains(*t)) {
            return Err(format!("{t}: TYPE without HELP"));
        }
        Ok(samples)
    }

    /// The value of the sample `name` whose labels include all of `want`.
    fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> Option<u64> {
        let matching: Vec<u64> = samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        match matching.as_slice() {
            [v] => Some(*v),
            _ => None,
        }
    }

    fn peer(key: u8) -> PeerSnapshot {
        PeerSnapshot {
            public_key: [key; 32],
            endpoint: Some("192.0.2.1:51820".parse().expect("addr")),
            latest_handshake: Some(Duration::new(1_700_000_000, 5)),
            handshakes: 3,
            rx_bytes: 10,
            tx_bytes: 20,
            allowed_ips: Vec::new(),
            persistent_keepalive: None,
            owner_lcore: 5,
            lanes: 1,
            plain_packets: 40_000,
            plain_handed_off: 30_000,
        }
    }

    #[test]
    fn render_is_valid_exposition_with_the_right_values() {
        let workers = vec![
            Arc::new(WorkerCounters::default()),
            Arc::new(WorkerCounters::default()),
        ];
        workers[1].count_drop(DropReason::Replay);
        workers[1].count_drop(DropReason::Replay);
        workers[1].count_drop(DropReason::Replay);
        workers[0].count_drop(DropReason::NoRoute);
        workers[0].add(Event::Encapsulated, 2);
        workers[0].add(Event::EncapBytes, 1500);
        workers[1].add(Event::DecapBytes, 700);
        let control = ControlCounters::default();
        bump(&control.handshakes_completed);
        bump(&control.handshakes_completed);
        bump(&control.tx_drops);
        let mut never = peer(2);
        never.latest_handshake = None;
        never.endpoint = None;
        let peers = vec![peer(1), never];
        let (one, two) = (conf::encode_key(&[1; 32]), conf::encode_key(&[2; 32]));

        let groups = vec![crate::groups::GroupShow {
            name: "site-a".into(),
            prefixes: vec!["10.77.0.0/16".into()],
            members: vec![
                crate::groups::GroupMemberShow {
                    public_key: one.clone(),
                    live: true,
                    packets: 41,
                },
                crate::groups::GroupMemberShow {
                    public_key: two.clone(),
                    live: false,
                    packets: 7,
                },
            ],
        }];

        let text = render(&workers, &[2, 5], &control, &peers, &groups);
        let s = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        fn member(key: &str) -> [(&str, &str); 2] {
            [("group", "site-a"), ("public_key", key)]
        }
        assert_eq!(
            value(&s, "wgdp_group_member_packets_total", &member(&one)),
            Some(41)
        );
        assert_eq!(
            value(&s, "wgdp_group_member_packets_total", &member(&two)),
            Some(7)
        );
        assert_eq!(value(&s, "wgdp_group_member_live", &member(&one)), Some(1));
        assert_eq!(value(&s, "wgdp_group_member_live", &member(&two)), Some(0));

        let drops = |lcore, reason| {
            value(
                &s,
                "wgdp_drops_total",
                &[("lcore", lcore), ("reason", reason)],
            )
        };
        assert_eq!(drops("5", "replay"), Some(3));
        assert_eq!(drops("2", "no_route"), Some(1));
        assert_eq!(drops("2", "replay"), Some(0));
        let drop_samples = s.iter().filter(|x| x.0 == "wgdp_drops_total").count();
        assert_eq!(drop_samples, 2 * DropReason::COUNT);

        let packets = |lcore, event| {
            value(
                &s,
                "wgdp_packets_total",
                &[("lcore", lcore), ("event", event)],
            )
        };
        assert_eq!(packets("2", "encapsulated"), Some(2));
        assert_eq!(packets("5", "encapsulated"), Some(0));
        assert_eq!(packets("2", "encap_bytes"), None, "bytes are not packets");
        assert_eq!(packets("2", "decap_bytes"), None, "bytes are not packets");
        let packet_samples = s.iter().filter(|x| x.0 == "wgdp_packets_total").count();
        assert_eq!(packet_samples, 2 * (Event::COUNT - 2));

        let bytes = |lcore, dir| {
            value(
                &s,
                "wgdp_bytes_total",
                &[("lcore", lcore), ("direction", dir)],
            )
        };
        assert_eq!(bytes("2", "encap"), Some(1500));
        assert_eq!(bytes("5", "decap"), Some(700));
        assert_eq!(bytes("2", "decap"), Some(0));

        assert_eq!(
            value(&s, "wgdp_control_handshakes_completed_total", &[]),
            Some(2)
        );
        assert_eq!(value(&s, "wgdp_control_tx_drops_total", &[]), Some(1));
        for (name, _) in control.snapshot() {
            let family = format!("wgdp_control_{name}_total");
            assert!(value(&s, &family, &[]).is_some(), "{family} missing");
        }

        let key = [("public_key", one.as_str())];
        assert_eq!(value(&s, "wgdp_peer_lanes", &key), Some(1));
        assert_eq!(
            value(&s, "wgdp_peer_plaintext_packets_total", &key),
            Some(40_000)
        );
        assert_eq!(
            value(&s, "wgdp_peer_plaintext_handed_off_total", &key),
            Some(30_000)
        );
        assert_eq!(value(&s, "wgdp_peer_lanes_would_help", &key), Some(1));
        assert_eq!(value(&s, "wgdp_peer_rx_bytes_total", &key), Some(10));
        assert_eq!(value(&s, "wgdp_peer_tx_bytes_total", &key), Some(20));
        assert_eq!(value(&s, "wgdp_peer_handshakes_total", &key), Some(3));
        assert_eq!(
            value(&s, "wgdp_peer_latest_handshake_seconds", &key),
            Some(1_700_000_000)
        );
        assert_eq!(
            value(
                &s,
                "wgdp_peer_latest_handshake_seconds",
                &[("public_key", two.as_str())]
            ),
            Some(0)
        );
        assert_eq!(
            value(
                &s,
                "wgdp_peer_info",
                &[
                    ("public_key", one.as_str()),
                    ("lcore", "5"),
                    ("endpoint", "192.0.2.1:51820")
                ]
            ),
            Some(1)
        );
        assert_eq!(
            value(
                &s,
                "wgdp_peer_info",
                &[("public_key", two.as_str()), ("endpoint", "")]
            ),
            Some(1)
        );
        assert_eq!(value(&s, "wgdp_peers", &[]), Some(2));

        assert!(text.contains("# TYPE wgdp_peer_latest_handshake_seconds gauge\n"));
        assert!(text.contains("# TYPE wgdp_peers gauge\n"));
        assert!(text.contains("# TYPE wgdp_drops_total counter\n"));
        assert!(
            text.contains("replay: A data message whose counter was already seen or is too old.")
        );
    }

    #[test]
    fn the_checker_rejects_malformed_text() {
        let ok = "# HELP a A.\n# TYPE a counter\na{x=\"1\"} 3\n";
        assert!(check_exposition(ok).is_ok());
        for bad in [
            "# HELP a A.\n# TYPE a counter\na 3",
            "# TYPE a counter\na 3\n",
            "# HELP a A.\na 3\n",
            "# HELP a A.\n# HELP a A.\n# TYPE a counter\na 3\n",
            "# HELP a A.\n# TYPE a counter\n# TYPE a counter\na 3\n",
            "# HELP a A.\n# TYPE a histogram\na 3\n",
            "# HELP a A.\n# TYPE a counter\nb 3\n",
            "# HELP a A.\n# TYPE a counter\na -3\n",
            "# HELP a A.\n# TYPE a counter\na 3.5\n",
            "# HELP a A.\n# TYPE a counter\na 3 1700000000\n",
            "# HELP a A.\n# TYPE a counter\na{x=1} 3\n",
            "# HELP a A.\n# TYPE a counter\na{x=\"1\",} 3\n",
            "# HELP a A.\n# TYPE a counter\na{x=\"1\"\n",
            "# HELP a A.\n# TYPE a counter\na{x=\"\\q\"} 3\n",
            "# HELP a A.\n# TYPE a counter\na{1x=\"1\"} 3\n",
            "# HELP a A.\n# TYPE a counter\na{x=\"1\",x=\"2\"} 3\n",
            "# HELP a A.\n# TYPE a counter\na 3\na 4\n",
            "# HELP a A\\x.\n# TYPE a counter\na 3\n",
            "# HELP a A.\n# TYPE a counter\na{x=\"1\"} 3\n# HELP b B.\n# TYPE b gauge\nb 1\na{x=\"2\"} 3\n",
        ] {
            assert!(check_exposition(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn render_with_nothing_is_still_valid() {
        let text = render(&[], &[], &ControlCounters::default(), &[], &[]);
        let s = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(value(&s, "wgdp_peers", &[]), Some(0));
    }

    #[test]
    fn missing_lcores_fall_back_to_the_worker_index() {
        let workers = vec![
            Arc::new(WorkerCounters::default()),
            Arc::new(WorkerCounters::default()),
        ];
        let text = render(&workers, &[7], &ControlCounters::default(), &[], &[]);
        let s = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(value(
            &s,
            "wgdp_drops_total",
            &[("lcore", "7"), ("reason", "replay")]
        )
        .is_some());
        assert!(value(
            &s,
            "wgdp_drops_total",
            &[("lcore", "1"), ("reason", "replay")]
        )
        .is_some());
    }

    #[test]
    fn label_values_are_escaped() {
        let nasty = "a\"b\\c\nd}e,f=g";
        let mut text = String::new();
        header(&mut text, "x_total", "X.", "counter");
        sample(&mut text, "x_total", &[("public_key", nasty)], 10);
        assert!(text.contains(r#"public_key="a\"b\\c\nd}e,f=g""#), "{text}");
        let s = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(value(&s, "x_total", &[("public_key", nasty)]), Some(10));
    }

    #[test]
    fn help_text_is_escaped() {
        let mut out = String::new();
        header(&mut out, "x", "back\\slash\nnew \"line\"", "gauge");
        assert_eq!(
            out,
            "# HELP x back\\\\slash\\nnew \"line\"\n# TYPE x gauge\n"
        );
    }
}
