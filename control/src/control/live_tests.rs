//! Refused UAPI `set` operations leave the running state as it was: the
//! control thread on in-process ring ports (no TAP, no namespace), asked
//! `get=1` before and after each refused request.

use crossbeam_channel::{bounded, Receiver};
use dataplane::command::Command;
use protocol::allowedips::Prefix;
use protocol::constants::REKEY_TIMEOUT;
use protocol::crypto::{PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::control::{Control, InitialPeer};
use crate::groups::InitialGroup;
use crate::peers::NewPeer;
use crate::test_rig::{self, Fixture, Ports};
use crate::uapi::proto::{self, errno, Request};
use crate::uapi::server::Call;

use super::GET_SLICE;

/// The ports the control thread borrows.
pub(crate) fn ports() -> Ports {
    test_rig::ports(1023, 64)
}

/// Our private key, the two configured peers' keys and their PSK.
const OURS: [u8; 32] = [1; 32];
const PSK: [u8; 32] = [7; 32];

pub(crate) fn peer_key(n: u8) -> PublicKey {
    PrivateKey::from_bytes([n; 32]).public_key()
}

pub(crate) fn prefix(s: &str) -> Prefix {
    let (addr, len) = s.split_once('/').expect("prefix");
    Prefix::new(addr.parse().expect("address"), len.parse().expect("length")).expect("prefix")
}

/// A control thread with two peers; the worker's command channel is
/// returned so that its commands can be counted.
pub(crate) fn control(p: &Ports) -> (Control<'_>, Receiver<Command>) {
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
    let mut f = Fixture::new(OURS, cmd_txs, handshakes, events);
    f.peers = peers;
    f.groups = vec![InitialGroup {
        name: "site".into(),
        members: vec![peer_key(2), peer_key(3)],
        prefixes: vec![prefix("10.77.0.0/16"), prefix("10.78.0.0/16")],
    }];
    let control = test_rig::control(p, f);
    (control, cmd_rxs)
}

pub(crate) fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// Answers `request` (its lines, without the blank line) as the socket
/// server does: a request that does not parse never reaches the control
/// thread.
pub(crate) fn ask(c: &mut Control, request: &str) -> String {
    let lines: Vec<&str> = request.lines().collect();
    let now = c.clock.now();
    match proto::parse(&lines) {
        Ok(r) => c.answer(r, now).into_text().to_string(),
        Err(e) => proto::render_errno(e.errno),
    }
}

fn get(c: &mut Control) -> String {
    let now = c.clock.now();
    c.answer(Request::Get, now).into_text().to_string()
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
            format!("set=1\nreplace_peers=true\npublic_key={new}\nallowed_ip=10.9.8.0/24\npublic_key={own}\nendpoint=bad"),
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
    let json = c
        .answer(Request::WgdpShow { peers: true }, now)
        .into_text()
        .to_string();
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
        ("Debug of the peers", format!("{:?}", c.table.peers)),
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

/// `wgdp-show=counters` answers the whole document less the peers: the
/// same interface and counters as `wgdp-show=1`, which lists every peer.
#[test]
fn show_without_peers_has_the_counters_and_no_peers() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let now = c.clock.now();
    let parse = |c: &mut Control<'_>, peers: bool| -> crate::show::Show {
        let text = c
            .answer(Request::WgdpShow { peers }, now)
            .into_text()
            .to_string();
        let json = text.lines().next().expect("a JSON line");
        serde_json::from_str(json).expect("a show document")
    };
    let full = parse(&mut c, true);
    let bare = parse(&mut c, false);
    assert_eq!(full.peers.len(), c.table.peers.len());
    assert!(!full.peers.is_empty(), "the fixture has peers");
    assert!(bare.peers.is_empty());
    assert_eq!(
        crate::show::Show {
            peers: full.peers.clone(),
            ..bare
        },
        full
    );
}

#[test]
fn an_unanswered_move_is_asked_for_again() {
    let p = ports();
    let (mut c, commands) = control_with(&p, 2);
    let id = c
        .table
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
    assert_eq!(c.table.peers.get(id).map(|q| q.owner), Some(1));
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
    let (allowed, groups) = c.table.group_routes();
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
        c.table.peers.by_key(&peer_key(2)).expect("peer 2"),
        c.table.peers.by_key(&peer_key(3)).expect("peer 3"),
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

/// The peers the worker was told to send a keepalive to, in order.
fn keepalives(rx: &Receiver<Command>) -> Vec<u32> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|cmd| match cmd {
            Command::SendKeepalive { id } => Some(id),
            _ => None,
        })
        .collect()
}

/// A peer configured with a persistent keepalive gets one as soon as the
/// timers first run, with no traffic at all (the kernel's `wg_open`), and
/// so does a peer whose interval a `set` turns on; an unchanged or
/// restated interval sends none.
#[test]
fn persistent_keepalive_starts_without_traffic_and_when_turned_on() {
    let p = ports();
    let (mut c, commands) = control(&p);
    let (two, three) = (
        c.table.peers.by_key(&peer_key(2)).expect("peer 2"),
        c.table.peers.by_key(&peer_key(3)).expect("peer 3"),
    );
    while commands.try_recv().is_ok() {}
    let start = c.clock.now();
    c.timer_round(start);
    assert_eq!(keepalives(&commands), vec![two], "peer 2 has an interval");
    c.timer_round(start + std::time::Duration::from_secs(1));
    assert_eq!(
        keepalives(&commands),
        Vec::<u32>::new(),
        "one, not one per round"
    );

    let peer2 = hex(peer_key(2).as_bytes());
    let peer3 = hex(peer_key(3).as_bytes());
    let ok = "errno=0\n\n";
    let later = |c: &Control| c.clock.now() + std::time::Duration::from_millis(1);
    let on = format!("set=1\npublic_key={peer3}\npersistent_keepalive_interval=5");
    assert_eq!(ask(&mut c, &on), ok);
    c.timer_round(later(&c));
    assert_eq!(keepalives(&commands), vec![three], "0 -> 5 sends one");
    assert_eq!(ask(&mut c, &on), ok);
    let restate = format!(
        "set=1\nreplace_peers=true\npublic_key={peer2}\npersistent_keepalive_interval=25\npublic_key={peer3}\npersistent_keepalive_interval=5"
    );
    assert_eq!(ask(&mut c, &restate), ok);
    c.timer_round(later(&c));
    assert_eq!(
        keepalives(&commands),
        Vec::<u32>::new(),
        "5 -> 5 sends none"
    );
    let off = format!("set=1\npublic_key={peer3}\npersistent_keepalive_interval=0");
    assert_eq!(ask(&mut c, &off), ok);
    c.timer_round(later(&c) + std::time::Duration::from_secs(30));
    assert_eq!(keepalives(&commands), Vec::<u32>::new(), "off: none");
}

/// After answering a peer's initiation, wgdp starts no initiation of its
/// own within REKEY_TIMEOUT, even when plaintext for the peer arrives
/// before the initiator's first data message (the owner's
/// `WantHandshake`): the kernel's `last_sent_handshake` rule.
#[test]
fn no_initiation_right_after_responding() {
    use protocol::noise::{PeerHandshake, StaticIdentity};
    let p = ports();
    let (mut c, _commands) = control(&p);
    let two = c.table.peers.by_key(&peer_key(2)).expect("peer 2");
    let ours = PrivateKey::from_bytes(OURS).public_key();
    let them = StaticIdentity::new(PrivateKey::from_bytes([2; 32]));
    let mut hs = PeerHandshake::new(ours, Some(PSK));
    let now = c.clock.now();
    let init = hs
        .create_initiation(
            &them,
            0x1234,
            protocol::time::Tai64N::from_unix(std::time::Duration::from_secs(1_700_000_000)),
            now,
            &mut rand_core::OsRng,
        )
        .expect("initiation");
    let src = "192.0.2.2:51820".parse().expect("src");
    let msg = dataplane::command::HandshakeMessage::new(src, local_addr(), now, &init, false)
        .expect("msg");
    c.on_handshake_message(msg, now);
    let read = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(read(&c.counters.responses_sent), 1, "answered");
    // The owner asks for a handshake (plaintext, no confirmed session).
    c.initiate(two, now + std::time::Duration::from_millis(10), false);
    c.initiate(
        two,
        now + REKEY_TIMEOUT - std::time::Duration::from_millis(1),
        false,
    );
    assert_eq!(
        read(&c.counters.initiations_sent),
        0,
        "within REKEY_TIMEOUT"
    );
    c.initiate(two, now + REKEY_TIMEOUT, false);
    assert_eq!(read(&c.counters.initiations_sent), 1, "REKEY_TIMEOUT later");
}

/// A peer with our own public key is skipped, silently, with whatever it
/// carries (as the kernel and wireguard-go do), so one configuration can be
/// pushed to every node of a mesh: the rest of the `set` applies.
#[test]
fn a_peer_with_our_own_key_is_skipped_and_the_rest_applies() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let own = hex(PrivateKey::from_bytes(OURS).public_key().as_bytes());
    let peer2 = hex(peer_key(2).as_bytes());
    let new = hex(peer_key(9).as_bytes());
    let ok = "errno=0\n\n";
    let mesh = format!(
        "set=1\npublic_key={own}\nendpoint=192.0.2.1:51820\nallowed_ip=10.9.0.1/32\n\
         public_key={new}\nallowed_ip=10.9.8.0/24"
    );
    assert_eq!(ask(&mut c, &mesh), ok);
    let after = get(&mut c);
    assert!(after.contains(&format!("public_key={new}\n")), "{after}");
    assert!(after.contains("allowed_ip=10.9.8.0/24"), "{after}");
    assert!(!after.contains(&format!("public_key={own}")), "{after}");
    assert!(!after.contains("10.9.0.1/32"), "{after}");
    assert_eq!(c.table.peers.len(), 3);
    // Removing ourselves is skipped too; replace_peers keeps the others
    // it names.
    let again = format!(
        "set=1\nreplace_peers=true\npublic_key={own}\nremove=true\npublic_key={peer2}\npublic_key={new}"
    );
    assert_eq!(ask(&mut c, &again), ok);
    assert_eq!(c.table.peers.len(), 2, "peer 3, not named, removed");
    assert!(
        c.table.peers.by_key(&peer_key(2)).is_some()
            && c.table.peers.by_key(&peer_key(9)).is_some()
    );
}

/// `allowed_ip=-PREFIX` (newer `wg set ... allowed-ips -PREFIX`) takes that
/// one prefix away from the peer: its routes and what `get` lists; a
/// prefix another peer holds stays with it, and the others of the peer
/// stay.
#[test]
fn a_minus_allowed_ip_removes_only_that_prefix_of_that_peer() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let three = c.table.peers.by_key(&peer_key(3)).expect("peer 3");
    let two = c.table.peers.by_key(&peer_key(2)).expect("peer 2");
    let peer3 = hex(peer_key(3).as_bytes());
    let ok = "errno=0\n\n";
    assert_eq!(routed(&c, "10.9.2.1"), Some(Ok(three)));
    assert_eq!(routed(&c, "fd00::1"), Some(Ok(three)));
    let minus = format!(
        "set=1\npublic_key={peer3}\nallowed_ip=-10.9.2.0/24\nallowed_ip=-10.9.1.0/24\nallowed_ip=-10.9.3.0/24"
    );
    assert_eq!(ask(&mut c, &minus), ok);
    assert_eq!(routed(&c, "10.9.2.1"), None, "removed");
    assert_eq!(
        routed(&c, "fd00::1"),
        Some(Ok(three)),
        "its other prefix stays"
    );
    assert_eq!(
        routed(&c, "10.9.1.1"),
        Some(Ok(two)),
        "peer 2's stays with it"
    );
    let listed = get(&mut c);
    let of_three = listed
        .split(&format!("public_key={peer3}\n"))
        .nth(1)
        .expect("peer 3 listed");
    let of_three = of_three.split("public_key=").next().unwrap_or(of_three);
    assert!(of_three.contains("allowed_ip=fd00::/64"), "{listed}");
    assert!(!of_three.contains("allowed_ip=10.9.2.0/24"), "{listed}");
    assert!(listed.contains("allowed_ip=10.9.1.0/24"), "{listed}");
    // Written back as it now is.
    let conf = c.table.peer_conf(three);
    assert_eq!(conf.allowed_ips.len(), 1);
}

/// `get` is answered with a snapshot of the state, not with its text: the
/// socket's thread renders it, off the control thread; rendered, it is the
/// whole answer.
#[test]
fn get_is_a_snapshot_rendered_off_the_control_thread() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let now = c.clock.now();
    let reply = c.answer(Request::Get, now);
    assert!(reply.text.is_empty(), "the control thread rendered nothing");
    let snapshot = reply.snapshot.as_deref().expect("a snapshot");
    assert_eq!(snapshot.peers.len(), 2);
    assert_eq!(*snapshot.private_key, OURS);
    let text = reply.into_text();
    assert!(text.starts_with(&format!("private_key={}\nlisten_port=51820\n", hex(&OURS))));
    assert!(text.contains(&format!("preshared_key={}\n", hex(&PSK))));
    assert_eq!(text.matches("public_key=").count(), 2);
    assert!(text.ends_with("errno=0\n\n"));
}

/// A `set` of more than [`crate::control::live::SET_SLICE`] peers is applied a slice
/// per control-loop round (handshakes and timers run between them) and
/// answered once all of it is in; a request behind it waits its turn.
#[test]
fn a_large_set_is_applied_in_slices_between_rounds() {
    use crate::control::live::SET_SLICE;
    use crate::uapi::server::Call;
    let p = ports();
    let (mut c, commands) = control(&p);
    let routes_sent = || {
        std::iter::from_fn(|| commands.try_recv().ok())
            .filter(|cmd| matches!(cmd, Command::SetRoutes(_)))
            .count()
    };
    routes_sent();
    let (calls, rx) = bounded(4);
    c.uapi = Some(rx);
    let n = 2 * SET_SLICE + 10;
    let mut text = String::from("set=1\n");
    for i in 0..n as u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_le_bytes());
        key[31] = 0x40;
        text.push_str(&format!(
            "public_key={}\nallowed_ip=10.{}.{}.0/24\n",
            hex(&key),
            100 + i / 256,
            i % 256
        ));
    }
    let lines: Vec<&str> = text.lines().collect();
    // Room for both answers: a wrong order fails the test, never blocks.
    let (tx, answer) = bounded(2);
    let set = proto::parse(&lines).expect("parses");
    calls
        .send(Call {
            request: set,
            reply: tx.clone(),
        })
        .expect("call");
    calls
        .send(Call {
            request: Request::Get,
            reply: tx,
        })
        .expect("call");
    let now = c.clock.now();
    for round in 1..=2 {
        assert_eq!(c.uapi_round(now), 1, "round {round}");
        assert_eq!(c.table.peers.len(), 2 + round * SET_SLICE, "round {round}");
        assert!(answer.try_recv().is_err(), "answered before it was all in");
        assert_eq!(routes_sent(), 0, "routes published at the end");
    }
    assert_eq!(c.uapi_round(now), 1, "the last slice");
    assert_eq!(c.table.peers.len(), 2 + n);
    let reply = answer.try_recv().expect("answered");
    assert_eq!(
        reply.persist.upserted.len(),
        n,
        "every new peer written back"
    );
    assert_eq!(&*reply.into_text(), "errno=0\n\n");
    assert!(answer.try_recv().is_err(), "the get waits its turn");
    assert_eq!(routes_sent(), 1, "routes published once");
    assert_eq!(routed(&c, "10.100.0.1").map(|r| r.is_ok()), Some(true));
    assert_eq!(c.uapi_round(now), 1, "then the get");
    let got = answer.try_recv().expect("get answered").into_text();
    assert_eq!(got.matches("public_key=").count(), 2 + n);
}

/// A `get` of more than [`crate::control::live::GET_SLICE`] slots is copied a slice
/// per control-loop round (the workers' events are handled between the
/// slices) and answered once whole; each peer shows the state it had in
/// the round it was copied; a `set` behind it waits its turn.
#[test]
fn a_get_is_snapshotted_in_slices_between_rounds() {
    use crate::control::live::GET_SLICE;
    use crate::uapi::server::Call;
    use dataplane::command::WorkerEvent;
    let p = ports();
    let (mut c, _commands) = control(&p);
    let n = 2 * GET_SLICE + 10;
    let key = |i: usize| {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&(i as u32).to_le_bytes());
        key[31] = 0x40;
        key
    };
    let mut text = String::from("set=1\n");
    for i in 0..n {
        text.push_str(&format!(
            "public_key={}\nendpoint=192.0.2.9:51820\nallowed_ip=10.{}.{}.0/24\n",
            hex(&key(i)),
            100 + i / 256,
            i % 256
        ));
    }
    assert_eq!(ask(&mut c, text.trim_end()), "errno=0\n\n");
    let (events_tx, events) = bounded(4);
    c.events = events;
    let (calls, rx) = bounded(4);
    c.uapi = Some(rx);
    let (tx, answer) = bounded(2);
    calls
        .send(Call {
            request: Request::Get,
            reply: tx.clone(),
        })
        .expect("call");
    let set = format!(
        "set=1\npublic_key={}\npersistent_keepalive_interval=7",
        hex(&key(0))
    );
    let lines: Vec<&str> = set.lines().collect();
    calls
        .send(Call {
            request: proto::parse(&lines).expect("parses"),
            reply: tx,
        })
        .expect("call");
    let now = c.clock.now();
    for round in 1..=2 {
        assert_eq!(c.uapi_round(now), 1, "round {round}");
        assert!(answer.try_recv().is_err(), "answered before it was whole");
    }
    // Between the slices: the first peer (copied in the first round) and
    // the last (not yet copied) roam.
    let first = c
        .table
        .peers
        .by_key(&PublicKey::from_bytes(key(0)))
        .expect("first");
    let last = c
        .table
        .peers
        .by_key(&PublicKey::from_bytes(key(n - 1)))
        .expect("last");
    assert!(first < GET_SLICE as u32 && last >= 2 * GET_SLICE as u32);
    for id in [first, last] {
        let moved = "198.51.100.7:4000".parse().expect("endpoint");
        events_tx
            .send(WorkerEvent::EndpointChanged(id, moved, local_addr()))
            .expect("event");
    }
    c.event_round(now);
    assert_eq!(c.uapi_round(now), 1, "the last slice");
    let got = answer.try_recv().expect("answered").into_text();
    assert!(got.ends_with("errno=0\n\n"));
    assert_eq!(got.matches("public_key=").count(), 2 + n);
    let block = |i: usize| -> String {
        let start = got
            .find(&format!("public_key={}", hex(&key(i))))
            .expect("the peer");
        let rest = &got[start + 1..];
        let end = rest.find("public_key=").unwrap_or(rest.len());
        rest[..end].to_string()
    };
    assert!(block(0).contains("endpoint=192.0.2.9:51820\n"), "as copied");
    assert!(block(n - 1).contains("endpoint=198.51.100.7:4000\n"));
    assert!(block(0).contains("persistent_keepalive_interval=0\n"));
    assert!(answer.try_recv().is_err(), "the set waits its turn");
    assert_eq!(c.uapi_round(now), 1, "then the set");
    assert_eq!(
        &*answer.try_recv().expect("set answered").into_text(),
        "errno=0\n\n"
    );
    assert_eq!(
        c.table
            .peers
            .get(first)
            .and_then(|p| p.persistent_keepalive),
        Some(7)
    );
}

/// The handshake latency of new peers while a loop asks for `get` of the
/// whole table: the control loop (`Control::run`) on this thread, the
/// handshakes and the `get` loop (rendering its answers, as the socket's
/// thread does) on others. Every handshake must be answered; the p50/p99
/// latencies, with and without the loop, are printed. The table holds
/// `WGDP_GET_LOOP_PEERS` peers (default 2000; docs/scale.md's figures are
/// at 100000, release build).
#[test]
fn handshakes_are_answered_while_a_loop_runs_get() {
    use crate::uapi::server::Call;
    use dataplane::command::HandshakeMessage;
    use protocol::noise::{PeerHandshake, StaticIdentity};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant as StdInstant};

    const MEASURED: usize = 100;
    let total: usize = std::env::var("WGDP_GET_LOOP_PEERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        .max(MEASURED);
    let p = ports();
    let ids: Vec<StaticIdentity> = (0..MEASURED)
        .map(|i| {
            let mut k = [7u8; 32];
            k[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            StaticIdentity::new(PrivateKey::from_bytes(k))
        })
        .collect();
    let peers: Vec<InitialPeer> = (0..total)
        .map(|i| {
            let public_key = match ids.get(i) {
                Some(id) => *id.public_key(),
                None => {
                    let mut k = [0x40u8; 32];
                    k[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    PublicKey::from_bytes(k)
                }
            };
            let n = u32::try_from(i).expect("peer count");
            InitialPeer {
                peer: NewPeer {
                    public_key,
                    preshared_key: None,
                    endpoint: Some(std::net::SocketAddr::from(([192, 0, 2, 9], 51820))),
                    persistent_keepalive: None,
                    lanes: 1,
                },
                allowed_ips: vec![Prefix::new(
                    std::net::Ipv4Addr::from(0x6440_0000 + n).into(),
                    32,
                )
                .expect("prefix")],
            }
        })
        .collect();
    let (cmd_tx, _cmd_rx) = bounded(total + 1024);
    let (hs_tx, hs_rx) = bounded(4096);
    let (_ev_tx, ev_rx) = bounded(16);
    let (uapi_tx, uapi_rx) = bounded(16);
    let mut f = Fixture::new(OURS, vec![cmd_tx], hs_rx, ev_rx);
    f.peers = peers;
    f.uapi = Some(uapi_rx);
    f.tsc_hz = dpdk_sys::rte::testing::eal().tsc_hz();
    let control = test_rig::control(&p, f);
    let (counters, clock) = (control.counters.clone(), control.clock);
    let ours = PrivateKey::from_bytes(OURS).public_key();
    let stop = AtomicBool::new(false);
    let results = std::thread::scope(|s| {
        let driver = s.spawn(|| {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // One round of MEASURED handshakes; their latencies.
                let round = || -> Vec<Duration> {
                    let mut latencies = Vec::with_capacity(MEASURED);
                    for id in &ids {
                        let mut hs = PeerHandshake::new(ours, None);
                        let since = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default();
                        let init = hs
                            .create_initiation(
                                id,
                                1,
                                protocol::time::Tai64N::from_unix(since),
                                clock.now(),
                                &mut rand_core::OsRng,
                            )
                            .expect("initiation");
                        let src = std::net::SocketAddr::from(([192, 0, 2, 9], 51820));
                        let msg =
                            HandshakeMessage::new(src, local_addr(), clock.now(), &init, false)
                                .expect("msg");
                        let before = counters.responses_sent.load(Ordering::Relaxed);
                        let t = StdInstant::now();
                        hs_tx.send(msg).expect("queue");
                        while counters.responses_sent.load(Ordering::Relaxed) == before {
                            assert!(t.elapsed() < Duration::from_secs(10), "no response");
                            std::thread::sleep(Duration::from_micros(20));
                        }
                        latencies.push(t.elapsed());
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    latencies.sort();
                    latencies
                };
                let quiet = round();
                let looping = AtomicBool::new(true);
                let (loaded, gets) = std::thread::scope(|g| {
                    let getter = g.spawn(|| {
                        let mut gets = 0u32;
                        while looping.load(Ordering::Relaxed) {
                            let (tx, rx) = bounded(1);
                            uapi_tx
                                .send(Call {
                                    request: Request::Get,
                                    reply: tx,
                                })
                                .expect("call");
                            let text = rx.recv().expect("answer").into_text();
                            assert_eq!(text.matches("public_key=").count(), total);
                            gets += 1;
                        }
                        gets
                    });
                    // Let the loop start.
                    std::thread::sleep(Duration::from_millis(200));
                    let loaded = round();
                    looping.store(false, Ordering::Relaxed);
                    (loaded, getter.join().expect("get loop"))
                });
                (quiet, loaded, gets)
            }));
            stop.store(true, Ordering::Relaxed);
            out
        });
        control.run(&stop, None, &|_| {});
        driver.join().expect("driver")
    });
    let (quiet, loaded, gets) = results.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let pct = |v: &[Duration], q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    println!(
        "get loop, {total} peers: {gets} gets; handshake latency without the loop p50 {:?} p99 {:?}, with it p50 {:?} p99 {:?}",
        pct(&quiet, 50),
        pct(&quiet, 99),
        pct(&loaded, 50),
        pct(&loaded, 99)
    );
    assert_eq!((quiet.len(), loaded.len()), (MEASURED, MEASURED));
    assert!(gets >= 1, "the get loop ran");
}

/// Our tunnel address a test's handshake messages arrive at (the test
/// ports have none configured: any address of ours will do).
fn local_addr() -> std::net::IpAddr {
    std::net::IpAddr::from([192, 0, 2, 1])
}

// The `wgdp show` and board documents, built a slice per round.

/// Peers added on top of the test table's two: more than two slices.
const ADDED: usize = 2 * GET_SLICE + 10;

/// Adds [`ADDED`] peers through the UAPI.
fn add_peers(c: &mut Control) {
    let mut text = String::from("set=1\n");
    for i in 0..ADDED {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&(i as u32).to_le_bytes());
        key[31] = 0x40;
        text.push_str(&format!(
            "public_key={}\nallowed_ip=10.{}.{}.0/24\n",
            hex(&key),
            100 + i / 256,
            i % 256
        ));
    }
    assert_eq!(ask(c, text.trim_end()), "errno=0\n\n");
}

/// `wgdp show` over the UAPI copies the peers a slice per round, is
/// answered with the document once whole (its JSON rendered by the
/// socket's thread, not the control thread), and a request behind it
/// waits its turn.
#[test]
fn a_wgdp_show_is_built_in_slices_between_rounds() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    add_peers(&mut c);
    let (calls, rx) = bounded(4);
    c.uapi = Some(rx);
    let (tx, answer) = bounded(2);
    for request in [Request::WgdpShow { peers: true }, Request::Get] {
        calls
            .send(Call {
                request,
                reply: tx.clone(),
            })
            .expect("call");
    }
    let now = c.clock.now();
    for round in 1..=2 {
        assert_eq!(c.uapi_round(now), 1, "round {round}");
        assert!(answer.try_recv().is_err(), "answered before it was whole");
    }
    assert_eq!(c.uapi_round(now), 1, "the last slice");
    let reply = answer.try_recv().expect("answered");
    assert!(reply.text.is_empty(), "the control thread rendered nothing");
    assert_eq!(reply.show.as_ref().map(|s| s.peers.len()), Some(2 + ADDED));
    let text = reply.into_text();
    let (json, errno) = text.split_once('\n').expect("JSON, then errno");
    assert_eq!(errno, "errno=0\n\n");
    let doc: serde_json::Value = serde_json::from_str(json).expect("JSON");
    assert_eq!(doc["peers"].as_array().map(Vec::len), Some(2 + ADDED));
    assert!(answer.try_recv().is_err(), "the get waits its turn");
    assert_eq!(c.uapi_round(now), 1, "the get's first slice");
}

/// The board's document (metrics, telemetry) is built a slice per
/// round once asked for, published only when whole, and nothing is
/// built while nobody asks.
#[test]
fn the_board_document_is_built_in_slices_between_rounds() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    add_peers(&mut c);
    let latest = |c: &Control| {
        c.board.get(
            std::time::Duration::from_secs(3600),
            std::time::Duration::ZERO,
        )
    };
    assert_eq!(c.serve_snapshot_requests(), 0, "nobody asked");
    c.board.request();
    for round in 1..=2 {
        assert_eq!(c.serve_snapshot_requests(), 1, "round {round}");
        assert!(latest(&c).is_none(), "published before it was whole");
    }
    assert_eq!(c.serve_snapshot_requests(), 1, "the last slice");
    let show = latest(&c).expect("published");
    assert_eq!(show.peers.len(), 2 + ADDED);
    assert_eq!(c.serve_snapshot_requests(), 0, "nothing more asked");
}
