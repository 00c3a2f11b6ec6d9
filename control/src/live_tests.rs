//! Refused UAPI `set` operations leave the running state as it was: the
//! control thread on in-process ring ports (no TAP, no namespace), asked
//! `get=1` before and after each refused request.

use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver};
use dataplane::clock::TscClock;
use dataplane::command::{Command, PortSide};
use dataplane::counters::WorkerCounters;
use dataplane::route::PortNet;
use dpdk_sys::rte::testing::{eal, start_small, unique};
use dpdk_sys::rte::{mbuf_ring, rdtsc, Mempool, Port};
use protocol::allowedips::Prefix;
use protocol::crypto::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::control::{Control, ControlParts, InitialPeer};
use crate::counters::ControlCounters;
use crate::groups::InitialGroup;
use crate::link::{ControlTx, PortLink};
use crate::neigh::{NeighbourConfig, NeighbourTable};
use crate::peers::NewPeer;
use crate::snapshot::SnapshotBoard;
use crate::uapi::proto::{self, errno, Request};

/// What the ports borrowed by the control thread are made of.
struct Ports {
    pool: Mempool,
    tun: Port,
    plain: Port,
    tun_tap: Port,
    plain_tap: Port,
    /// The far ends of the ring pairs, kept alive.
    _far: Vec<Port>,
}

fn ports() -> Ports {
    let pool = Mempool::new(eal(), &unique("lv"), 1023, 0, 2176).expect("mempool");
    let mut far = Vec::new();
    let mut port = |queues| {
        let (mut p, f) = Port::ring_pair(eal(), &unique("lv"), queues, 64).expect("ring pair");
        start_small(&mut p, queues, &pool);
        far.push(f);
        p
    };
    let (tun, plain, tun_tap, plain_tap) = (port(2), port(2), port(1), port(1));
    Ports {
        pool,
        tun,
        plain,
        tun_tap,
        plain_tap,
        _far: far,
    }
}

fn link<'p>(side: PortSide, port: &'p Port, tap: &'p Port) -> PortLink<'p> {
    let (_, from_workers) = mbuf_ring(eal(), &unique("lv"), 64).expect("ring");
    PortLink::new(
        side,
        port,
        PortNet {
            mac: [2, 0, 0, 0, 0, 1],
            addresses: Vec::new(),
            gateway_v4: None,
            gateway_v6: None,
            vlan: None,
        },
        ControlTx::Queue(port.tx_queue(1).expect("control tx queue")),
        (
            tap.rx_queue(0).expect("tap rx"),
            tap.tx_queue(0).expect("tap tx"),
        ),
        from_workers,
        NeighbourTable::new(NeighbourConfig::default()),
    )
}

/// Our private key, the two configured peers' keys and their PSK.
const OURS: [u8; 32] = [1; 32];
const PSK: [u8; 32] = [7; 32];

fn peer_key(n: u8) -> PublicKey {
    PrivateKey::from_bytes([n; 32]).public_key()
}

fn prefix(s: &str) -> Prefix {
    let (addr, len) = s.split_once('/').expect("prefix");
    Prefix::new(addr.parse().expect("address"), len.parse().expect("length")).expect("prefix")
}

/// A control thread with two peers; the worker's command channel is
/// returned so that its commands can be counted.
fn control(p: &Ports) -> (Control<'_>, Receiver<Command>) {
    let (c, mut rx) = control_with(p, 1);
    (c, rx.remove(0))
}

/// A control thread over `workers` workers, with each worker's command
/// channel.
fn control_with(p: &Ports, workers: usize) -> (Control<'_>, Vec<Receiver<Command>>) {
    let (cmd_txs, cmd_rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| bounded(1024)).unzip();
    let (_, handshakes) = bounded(16);
    let (_, events) = bounded(16);
    let peers = vec![
        InitialPeer {
            peer: NewPeer {
                public_key: peer_key(2),
                preshared_key: Some(Zeroizing::new(PSK)),
                endpoint: Some("192.0.2.2:51820".parse().expect("endpoint")),
                persistent_keepalive: Some(25),
                lanes: 1,
            },
            allowed_ips: vec![prefix("10.9.1.0/24")],
        },
        InitialPeer {
            peer: NewPeer {
                public_key: peer_key(3),
                preshared_key: None,
                endpoint: None,
                persistent_keepalive: None,
                lanes: 1,
            },
            allowed_ips: vec![prefix("10.9.2.0/24"), prefix("fd00::/64")],
        },
    ];
    let control = Control::new(ControlParts {
        private_key: Zeroizing::new(OURS),
        listen_port: 51820,
        workers,
        peers,
        groups: vec![InitialGroup {
            name: "site".into(),
            members: vec![peer_key(2), peer_key(3)],
            prefixes: vec![prefix("10.77.0.0/16"), prefix("10.78.0.0/16")],
        }],
        uapi: None,
        board: Arc::new(SnapshotBoard::new()),
        lcores: (1..=workers as u32).collect(),
        interface: "wgdp-lvtest".into(),
        worker_counters: (0..workers)
            .map(|_| Arc::new(WorkerCounters::default()))
            .collect(),
        handshakes,
        events,
        commands: cmd_txs,
        tun: link(PortSide::Tunnel, &p.tun, &p.tun_tap),
        plain: link(PortSide::Plaintext, &p.plain, &p.plain_tap),
        pool: &p.pool,
        clock: TscClock::new(rdtsc(), 1_000_000_000),
        counters: Arc::new(ControlCounters::default()),
        rss: None,
        handshake_pool: None,
    });
    (control, cmd_rxs)
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Answers `request` (its lines, without the blank line) as the socket
/// server does: a request that does not parse never reaches the control
/// thread.
fn ask(c: &mut Control, request: &str) -> String {
    let lines: Vec<&str> = request.lines().collect();
    let now = c.clock.now();
    match proto::parse(&lines) {
        Ok(r) => c.answer(r, now).text.to_string(),
        Err(e) => proto::render_errno(e.errno),
    }
}

fn get(c: &mut Control) -> String {
    let now = c.clock.now();
    c.answer(Request::Get, now).text.to_string()
}

#[test]
fn refused_sets_answer_an_errno_and_change_nothing() {
    let p = ports();
    let (mut c, commands) = control(&p);
    let peer2 = hex(peer_key(2).as_bytes());
    let new = hex(peer_key(9).as_bytes());
    let own = hex(PrivateKey::from_bytes(OURS).public_key().as_bytes());
    let invalid = |errno: i32| format!("errno={errno}\n\n");
    let cases: Vec<(String, i32)> = vec![
        // Interface keys.
        (format!("set=1\nprivate_key={}", hex(&[5; 32])), errno::EPERM),
        ("set=1\nprivate_key=zz".into(), errno::EINVAL),
        ("set=1\nlisten_port=51821".into(), errno::EPERM),
        ("set=1\nlisten_port=70000".into(), errno::EINVAL),
        ("set=1\nlisten_port=-1".into(), errno::EINVAL),
        ("set=1\nfwmark=1".into(), errno::EINVAL),
        ("set=1\nreplace_peers=yes".into(), errno::EINVAL),
        ("set=1\ncolour=red".into(), errno::EINVAL),
        ("set=1\nno equals sign".into(), errno::EINVAL),
        // Peer keys.
        ("set=1\npublic_key=zz".into(), errno::EINVAL),
        (format!("set=1\npublic_key={}", &peer2[..62]), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}00"), errno::EINVAL),
        (format!("set=1\npublic_key={own}\nallowed_ip=10.9.9.0/24"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\npreshared_key=12"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nallowed_ip=10.9.1.0/33"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nallowed_ip=fd00::/129"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nallowed_ip=10.9.1.0"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nallowed_ip=host/24"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nendpoint=vpn.example.com:51820"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nendpoint=192.0.2.9:0"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nendpoint=192.0.2.9"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\npersistent_keepalive_interval=65536"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\npersistent_keepalive_interval=-1"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\npersistent_keepalive_interval=x"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nremove=1"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nreplace_allowed_ips=maybe"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nprotocol_version=2"), errno::EINVAL),
        (format!("set=1\npublic_key={peer2}\nfwmark=1"), errno::EINVAL),
        // A valid change first, then a bad one: nothing of it applies.
        (
            format!("set=1\npublic_key={new}\nallowed_ip=10.9.8.0/24\npublic_key={peer2}\nendpoint=bad"),
            errno::EINVAL,
        ),
        (
            format!("set=1\npublic_key={peer2}\nremove=true\nallowed_ip=10.9.1.0/33"),
            errno::EINVAL,
        ),
        (
            format!("set=1\nreplace_peers=true\npublic_key={new}\nallowed_ip=10.9.8.0/24\npublic_key={own}"),
            errno::EINVAL,
        ),
        (
            format!("set=1\npublic_key={new}\nallowed_ip=10.9.1.0/24\npublic_key={peer2}\nremove=true\nlisten_port=1"),
            errno::EINVAL,
        ),
        (
            format!("set=1\npublic_key={new}\nallowed_ip=10.9.1.0/24\nset=1\nlisten_port=1"),
            errno::EINVAL,
        ),
        // Not a request at all.
        ("get=2".into(), errno::EPROTO),
        ("get=1\nset=1".into(), errno::EPROTO),
        ("".into(), errno::EPROTO),
    ];
    let before = get(&mut c);
    assert!(before.contains(&format!("public_key={peer2}")), "{before}");
    assert!(before.contains("allowed_ip=10.9.1.0/24"), "{before}");
    while commands.try_recv().is_ok() {}
    for (request, want) in &cases {
        assert_eq!(ask(&mut c, request), invalid(*want), "{request:?}");
        assert_eq!(get(&mut c), before, "state changed by {request:?}");
        assert!(
            commands.try_recv().is_err(),
            "the worker was told something by {request:?}"
        );
    }

    // Restating the current private key and port is no change, and is
    // accepted; a valid set after all the refusals still applies.
    let same = format!("set=1\nprivate_key={}\nlisten_port=51820", hex(&OURS));
    assert_eq!(ask(&mut c, &same), invalid(errno::OK));
    assert_eq!(get(&mut c), before);
    let add = format!("set=1\npublic_key={new}\nallowed_ip=10.9.8.0/24");
    assert_eq!(ask(&mut c, &add), invalid(errno::OK));
    let after = get(&mut c);
    assert!(after.contains(&format!("public_key={new}\n")), "{after}");
    assert!(after.contains("allowed_ip=10.9.8.0/24"), "{after}");
}

/// Every way a secret could be written out: base64 and hex, any case.
fn spellings(key: &[u8; 32]) -> [String; 3] {
    [conf::encode_key(key), hex(key), hex(key).to_uppercase()]
}

/// `wgdp show` (its JSON over the socket and its text), the metrics page
/// and `Debug` of the state never hold our private key or a PSK; `get=1`,
/// which `wg` needs them from, does (so the search would find them).
#[test]
fn show_and_metrics_never_hold_the_private_key_or_a_psk() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let now = c.clock.now();
    let show = c.show();
    let json = c.answer(Request::WgdpShow, now).text.to_string();
    assert!(
        json.starts_with('{') && json.contains("\"peers\""),
        "{json}"
    );
    let outputs = [
        ("wgdp show --json", json),
        ("wgdp show", crate::show::render_text(&show)),
        (
            "metrics",
            crate::metrics::render(
                &c.worker_counters,
                &c.lcores,
                &c.counters,
                &show.peers,
                &show.groups,
            ),
        ),
        ("Debug of the peers", format!("{:?}", c.peers)),
        ("Debug of the identity", format!("{:?}", c.identity)),
    ];
    let own_public = conf::encode_key(PrivateKey::from_bytes(OURS).public_key().as_bytes());
    assert!(
        outputs[0].1.contains(&own_public),
        "the search looks at real output"
    );
    for (what, text) in &outputs {
        for secret in [OURS, PSK] {
            for s in spellings(&secret) {
                assert!(!text.contains(&s), "{what} holds {s}:\n{text}");
            }
        }
    }
    let get = get(&mut c);
    assert!(get.contains(&hex(&OURS)) && get.contains(&hex(&PSK)));
}

#[test]
fn an_unanswered_move_is_asked_for_again() {
    let p = ports();
    let (mut c, commands) = control_with(&p, 2);
    let id = c
        .peers
        .iter()
        .find(|q| q.owner == 0)
        .map(|q| q.id)
        .expect("a peer on worker 0");
    let releases = |rx: &Receiver<Command>| {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|cmd| matches!(cmd, Command::Release { id: r, to: 1 } if *r == id))
            .count()
    };
    for rx in &commands {
        while rx.try_recv().is_ok() {}
    }
    let t0 = protocol::time::Instant::from_secs(100);
    c.arrives_at(id, 1, t0);
    assert_eq!(releases(&commands[0]), 1, "the move starts");
    c.arrives_at(id, 1, t0 + std::time::Duration::from_millis(500));
    assert_eq!(releases(&commands[0]), 0, "one move at a time");
    // Its Adopted event was lost: after a second the request goes again.
    c.arrives_at(id, 1, t0 + std::time::Duration::from_millis(1500));
    assert_eq!(releases(&commands[0]), 1, "asked for again");
    c.adopted(id, 1);
    assert_eq!(c.peers.get(id).map(|q| q.owner), Some(1));
    c.arrives_at(id, 1, t0 + std::time::Duration::from_secs(3));
    assert_eq!(
        releases(&commands[0]) + releases(&commands[1]),
        0,
        "already there"
    );
}

/// What the routing snapshot makes of `ip`: a peer's slot, or the members
/// (slots) of the group it routes to.
fn routed(c: &Control, ip: &str) -> Option<Result<u32, Vec<u32>>> {
    let (allowed, groups) = c.group_routes();
    let target = allowed.lookup(ip.parse().expect("ip"))?;
    Some(match dataplane::group::as_group(target) {
        Some(g) => Err(groups[g].members.iter().map(|m| m.id).collect()),
        None => Ok(target),
    })
}

/// The UAPI cannot express groups, but its changes keep them consistent:
/// a prefix given to a peer leaves the group, a removed member leaves it
/// (counted), and a group without members is removed.
#[test]
fn groups_follow_uapi_changes() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let (two, three) = (
        c.peers.by_key(&peer_key(2)).expect("peer 2"),
        c.peers.by_key(&peer_key(3)).expect("peer 3"),
    );
    assert_eq!(routed(&c, "10.77.1.1"), Some(Err(vec![two, three])));
    assert_eq!(routed(&c, "10.78.1.1"), Some(Err(vec![two, three])));
    // The longest match across peers and groups.
    assert_eq!(routed(&c, "10.9.1.1"), Some(Ok(two)));

    let peer2 = hex(peer_key(2).as_bytes());
    let peer3 = hex(peer_key(3).as_bytes());
    let ok = "errno=0\n\n";
    assert_eq!(
        ask(
            &mut c,
            &format!("set=1\npublic_key={peer2}\nallowed_ip=10.78.0.0/16")
        ),
        ok
    );
    assert_eq!(
        routed(&c, "10.78.1.1"),
        Some(Ok(two)),
        "the prefix moved to peer 2"
    );
    assert_eq!(routed(&c, "10.77.1.1"), Some(Err(vec![two, three])));

    assert_eq!(
        ask(&mut c, &format!("set=1\npublic_key={peer3}\nremove=true")),
        ok
    );
    assert_eq!(routed(&c, "10.77.1.1"), Some(Err(vec![two])));
    assert_eq!(
        c.counters
            .group_members_removed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let show = c.show();
    assert_eq!(show.groups.len(), 1);
    assert_eq!(show.groups[0].members.len(), 1);
    assert!(!show.groups[0].members[0].live, "no session yet");

    assert_eq!(
        ask(&mut c, &format!("set=1\npublic_key={peer2}\nremove=true")),
        ok
    );
    assert_eq!(routed(&c, "10.77.1.1"), None, "the group is gone");
    assert!(c.show().groups.is_empty());
}

#[test]
fn every_worker_gets_the_cookie_secret_first_and_each_rotation() {
    let p = ports();
    let (mut c, commands) = control_with(&p, 2);
    let secrets = |rx: &Receiver<Command>| {
        std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|cmd| matches!(cmd, Command::CookieSecret(_)))
            .count()
    };
    for rx in &commands {
        let first = rx.try_recv().expect("a first command");
        assert!(
            matches!(first, Command::CookieSecret(_)),
            "the secret comes before the peers: {first:?}"
        );
        assert_eq!(secrets(rx), 0, "one secret at start");
    }
    let start = c.clock.now();
    c.rotate_cookie_secret(start + std::time::Duration::from_secs(119));
    assert_eq!(secrets(&commands[0]) + secrets(&commands[1]), 0, "fresh");
    c.rotate_cookie_secret(start + protocol::constants::COOKIE_SECRET_MAX_AGE);
    assert_eq!(
        (secrets(&commands[0]), secrets(&commands[1])),
        (1, 1),
        "rotated after two minutes, to every worker"
    );
}
