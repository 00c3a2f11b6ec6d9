//! End to end for tunnel groups (ECMP over tunnels): `wgdp run` with the
//! four wireguard-go peers of `tests/e2e/topology.sh` (`E2E_PEERS=4`) as the
//! members of one `[[groups]]` entry whose prefix, 10.77.0.0/24, is the
//! "site": 10.77.0.1 is an address of both peer namespaces (wan, wan2).
//!
//! Eight UDP flows (distinct source ports) go from the LAN host to the
//! site. A UDP sink per member, bound to that member's WireGuard interface,
//! tells which tunnel carried each flow.
//!
//! - all members live: each flow arrives through exactly one member, and
//!   more than one member carries flows; wgdp counts packets for the
//!   members that carried them (`wgdp show --json`, `groups`);
//! - the busiest member's wireguard-go is killed (SIGKILL, by PID): wgdp
//!   marks it not live within the kernel's rule for a dead session (data
//!   unanswered for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT = 15 s: asserted
//!   between REKEY_TIMEOUT and 15 s + jitter + a 3 s margin after the
//!   kill), its flows then arrive through the other
//!   members, and no other flow moved;
//! - it is started again (same key and port): wgdp's handshake retries
//!   reach it, it is live again, and every flow is back on its first
//!   member;
//! - no phase changes any of wgdp's drop counters.
//!
//! Needs root and wireguard-go, wg, ip, ping: it fails, never skips, when
//! they are missing. Run it alone:
//! `cargo nextest run -p wgdp --test e2e_groups --no-capture`.

// The test's own traffic talks to the kernel through libc (setns,
// AF_PACKET sockets): unsafe code, allowed in the namespace tests only.
#![allow(unsafe_code)]

mod netns;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::FromRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use netns::wire::{in_netns, udp_socket};
use netns::*;

const PEERS: usize = 4;
const SITE_NET: &str = "10.77.0.0/24";
const SITE_IP: [u8; 4] = [10, 77, 0, 1];
const SINK_PORT: u16 = 9999;
/// The flows' source ports on the LAN host.
const FLOW_PORTS: std::ops::Range<u16> = 41000..41008;

fn group_config(t: &Topology) -> String {
    let keys: Vec<String> = (1..=PEERS)
        .map(|i| format!("\"{}\"", t.var(&format!("PEER{i}_PUB"))))
        .collect();
    format!(
        "\n[[groups]]\nname = \"site\"\nmembers = [{}]\nprefixes = [\"{SITE_NET}\"]\n",
        keys.join(", ")
    )
}

/// A UDP socket in `ns` on port [`SINK_PORT`] that receives only what
/// arrives through interface `ifname` (SO_BINDTODEVICE before bind, so
/// that one socket per interface can share the port).
fn sink(ns: &str, ifname: &str) -> UdpSocket {
    let ifname = ifname.to_string();
    in_netns(ns, move || {
        let name = CString::new(ifname.clone()).expect("interface name");
        // SAFETY: plain socket calls on a socket we own, checked results.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", io::Error::last_os_error());
            let socket = UdpSocket::from_raw_fd(fd);
            let rc = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.as_bytes_with_nul().len() as libc::socklen_t,
            );
            assert_eq!(
                rc,
                0,
                "SO_BINDTODEVICE {ifname}: {}",
                io::Error::last_os_error()
            );
            let addr = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: SINK_PORT.to_be(),
                sin_addr: libc::in_addr { s_addr: 0 },
                sin_zero: [0; 8],
            };
            let rc = libc::bind(
                fd,
                (&addr as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "bind {ifname}: {}", io::Error::last_os_error());
            socket.set_nonblocking(true).expect("nonblocking");
            socket
        }
    })
}

/// For `window`, which members' sinks receive each flow (by source port).
fn observe<'m>(
    members: impl Iterator<Item = &'m TopoPeer>,
    window: Duration,
) -> BTreeMap<u16, BTreeSet<usize>> {
    let sinks: Vec<(usize, UdpSocket)> =
        members.map(|m| (m.index, sink(&m.ns, &m.ifname))).collect();
    let mut seen: BTreeMap<u16, BTreeSet<usize>> = BTreeMap::new();
    let deadline = Instant::now() + window;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let mut any = false;
        for (index, s) in &sinks {
            while let Ok((_, from)) = s.recv_from(&mut buf) {
                seen.entry(from.port()).or_default().insert(*index);
                any = true;
            }
        }
        if !any {
            thread::sleep(Duration::from_millis(5));
        }
    }
    seen
}

/// Each flow's one member; fails (with wgdp's output) when a flow was not
/// seen or arrived through more than one member.
fn one_member_each(
    wgdp: &Wgdp,
    seen: &BTreeMap<u16, BTreeSet<usize>>,
    phase: &str,
) -> BTreeMap<u16, usize> {
    FLOW_PORTS
        .map(|port| {
            let through = seen.get(&port).cloned().unwrap_or_default();
            wgdp.check(through.len() == 1, || {
                format!("{phase}: flow from port {port} arrived through members {through:?} (want exactly one); all: {seen:?}")
            });
            (port, through.into_iter().next().unwrap_or_default())
        })
        .collect()
}

/// The group's members in `wgdp show --json`: public key -> (live, packets).
fn group_state(show: &Value) -> BTreeMap<String, (bool, u64)> {
    show["groups"][0]["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["public_key"].as_str().unwrap_or_default().to_string(),
                        (
                            m["live"].as_bool().unwrap_or(false),
                            m["packets"].as_u64().unwrap_or(0),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `wgdp show` until `pred` holds for the group's state; how long it
/// took, or `None` after `limit`.
fn wait_group(
    wgdp: &Wgdp,
    ifname: &str,
    limit: Duration,
    pred: impl Fn(&BTreeMap<String, (bool, u64)>) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if pred(&group_state(&wgdp.show(ifname))) {
            return Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(250));
    }
    None
}

/// Starts `m`'s wireguard-go again as topology.sh does (same key, port,
/// peer, address and route), writing its PID where `topology.sh down`
/// looks for it; killed (by PID) when the returned guard is dropped.
fn restart(t: &Topology, m: &TopoPeer) -> Proc {
    let dir = t.var("DIR");
    let sock = format!("/var/run/wireguard/{}.sock", m.ifname);
    let _ = std::fs::remove_file(&sock);
    let log = std::fs::File::create(format!("{dir}/{}.restarted.log", m.ifname)).expect("log file");
    let child = netns(&m.ns, &["wireguard-go", "-f", &m.ifname])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn wireguard-go");
    let child = Proc(child);
    std::fs::write(format!("{dir}/{}.pid", m.ifname), child.0.id().to_string()).expect("pid file");
    let deadline = Instant::now() + secs(10);
    while !std::path::Path::new(&sock).exists() {
        assert!(
            Instant::now() < deadline,
            "wireguard-go {}: no UAPI socket",
            m.ifname
        );
        thread::sleep(Duration::from_millis(50));
    }
    let key = format!("{dir}/peer{}.key", m.index);
    let endpoint = format!("{}:{}", t.var("WGDP_WAN_IP"), t.var("WGDP_PORT"));
    let addr = format!("{}/32", m.ip);
    let mut steps: Vec<Vec<&str>> = vec![
        vec![
            "wg",
            "set",
            &m.ifname,
            "private-key",
            &key,
            "listen-port",
            &m.port,
            "peer",
            t.var("WGDP_PUB"),
            "endpoint",
            &endpoint,
            "allowed-ips",
            t.var("LAN_NET"),
        ],
        vec!["ip", "addr", "add", &addr, "dev", &m.ifname],
        vec!["ip", "link", "set", &m.ifname, "up"],
    ];
    let table = (100 + m.index).to_string();
    let mut route = vec!["ip", "route", "add", t.var("LAN_NET"), "dev", &m.ifname];
    if m.index > 2 {
        // Peers 3.. share wan with peer 1: their route is in their own table.
        route.extend(["table", &table]);
    }
    steps.push(route);
    for step in steps {
        let out = run(&mut netns(&m.ns, &step), secs(10));
        assert!(out.ok(), "{step:?} in {}:\n{out}", m.ns);
    }
    child
}

#[test]
fn group_spreads_flows_and_follows_a_member_that_dies_and_returns() {
    let (topo, wgdp, _config, _mac) = bring_up_with('g', PEERS, 1, "", &group_config);
    let members = topo.wg_peers();
    let ifname = "wgdp0";
    let (lan, lan_ip) = (
        topo.var("NS_LAN").to_string(),
        topo.var("LAN_IP").to_string(),
    );

    // The site: 10.77.0.1 in both peer namespaces; the LAN routes the site
    // to wgdp.
    for ns in [topo.var("NS_WAN"), topo.var("NS_WAN2")] {
        let out = run(
            &mut netns(ns, &["ip", "addr", "add", "10.77.0.1/32", "dev", "lo"]),
            secs(5),
        );
        wgdp.check(out.ok(), || format!("site address in {ns}:\n{out}"));
    }
    let out = run(
        &mut netns(
            &lan,
            &[
                "ip",
                "route",
                "add",
                SITE_NET,
                "via",
                topo.var("WGDP_LAN_IP"),
            ],
        ),
        secs(5),
    );
    wgdp.check(out.ok(), || format!("site route in {lan}:\n{out}"));

    // Every member's session up (peer 2 has no endpoint in wgdp's table:
    // it must initiate), then all four live.
    for m in &members {
        let out = ping_from(&m.ns, &lan_ip, Some(&m.ip), 15);
        wgdp.check(out.ok(), || {
            format!("ping from member {} ({}):\n{out}", m.index, m.ifname)
        });
    }
    let all_live = wait_group(&wgdp, ifname, secs(15), |g| {
        g.len() == PEERS && g.values().all(|(l, _)| *l)
    });
    wgdp.check(all_live.is_some(), || {
        format!(
            "not all members live: {:?}",
            group_state(&wgdp.show(ifname))
        )
    });

    // Every drop counter, from a snapshot younger than the call.
    let drops_now = || {
        thread::sleep(control::show::MAX_AGE + Duration::from_millis(200));
        show_drops(&wgdp.show(ifname))
    };
    // No phase drops anything: the flows go to a live member, or, while
    // the dead one is not yet known dead, are sent to it (lost beyond
    // wgdp, not dropped by it).
    let drops_start = drops_now();

    // The eight flows, sent every 20 ms each until the test ends.
    let running = Arc::new(AtomicBool::new(true));
    let sockets: Vec<UdpSocket> = FLOW_PORTS
        .map(|p| udp_socket(&lan, SocketAddrV4::new(lan_ip.parse().expect("lan ip"), p)))
        .collect();
    let sender = {
        let running = running.clone();
        let to = SocketAddrV4::new(SITE_IP.into(), SINK_PORT);
        thread::spawn(move || {
            while running.load(Ordering::Relaxed) {
                for s in &sockets {
                    let _ = s.send_to(&[0x5a; 64], to);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }
    let _stop = Stop(running.clone());

    // All live: one member per flow, spread.
    thread::sleep(Duration::from_millis(300));
    let first = one_member_each(&wgdp, &observe(members.iter(), secs(2)), "all live");
    let used: BTreeSet<usize> = first.values().copied().collect();
    println!("all live: flows by source port -> member: {first:?}");
    wgdp.check(used.len() > 1, || {
        format!("all 8 flows on one member: {first:?}")
    });
    let drops_live = drops_now();
    let changed = drops_changed(&drops_start, &drops_live);
    wgdp.check(changed.is_empty(), || {
        format!("wgdp dropped packets (all live): {changed:?}")
    });
    let counted = group_state(&wgdp.show(ifname));
    for m in &members {
        let carried = used.contains(&m.index);
        let packets = counted.get(&m.public_key).map_or(0, |s| s.1);
        wgdp.check(!carried || packets > 0, || {
            format!(
                "member {} carried flows but wgdp counted {packets} packets for it: {counted:?}",
                m.index
            )
        });
    }

    // Kill the busiest member's wireguard-go.
    let victim_index = *used
        .iter()
        .max_by_key(|&&i| first.values().filter(|&&m| m == i).count())
        .unwrap_or(&1);
    let victim = &members[victim_index - 1];
    let pid = topo
        .env
        .get(&format!("WG{victim_index}_PID"))
        .cloned()
        .unwrap_or_else(|| {
            std::fs::read_to_string(format!("{}/{}.pid", topo.var("DIR"), victim.ifname))
                .unwrap_or_default()
        });
    let pid = pid.trim().to_string();
    wgdp.check(pid.parse::<u32>().is_ok(), || {
        format!("no PID for {}", victim.ifname)
    });
    let out = run(Command::new("kill").args(["-KILL", &pid]), secs(5));
    wgdp.check(out.ok(), || format!("kill {pid}:\n{out}"));
    println!(
        "killed member {victim_index} ({}), pid {pid}",
        victim.ifname
    );
    // The kernel's rule: data sent and nothing authenticated received for
    // KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+ up to REKEY_TIMEOUT_JITTER_MAX),
    // counted from the member's last packet. That packet (its passive
    // keepalive while it receives our flows) is at most KEEPALIVE_TIMEOUT
    // older than the kill, so the member goes dead between REKEY_TIMEOUT
    // and KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after it. The margin
    // on top, DETECT_MARGIN, is for the control thread's timer tick and
    // the poll: every 250 ms, a `wgdp show` that takes up to a second or
    // two on a loaded machine. The wait runs longer, to print the time.
    use protocol::constants::{KEEPALIVE_TIMEOUT, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX};
    const DETECT_MARGIN: Duration = Duration::from_secs(3);
    let earliest = REKEY_TIMEOUT;
    let latest = KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX + DETECT_MARGIN;
    let dead_after = wait_group(&wgdp, ifname, secs(60), |g| {
        g.get(&victim.public_key).is_some_and(|(live, _)| !live)
    });
    let dead_after = dead_after
        .unwrap_or_else(|| wgdp.fail("the killed member still counts as live after 60 s"));
    println!(
        "member {victim_index} not live {:.1} s after its wireguard-go was killed",
        dead_after.as_secs_f64()
    );
    wgdp.check(earliest <= dead_after && dead_after <= latest, || {
        format!(
            "not live {:.1} s after the kill: outside [{:.1}, {:.1}] s, the \
             unanswered-data rule's window",
            dead_after.as_secs_f64(),
            earliest.as_secs_f64(),
            latest.as_secs_f64()
        )
    });

    let others = members.iter().filter(|m| m.index != victim_index);
    let during = one_member_each(&wgdp, &observe(others, secs(2)), "member dead");
    println!("member {victim_index} dead: {during:?}");
    for (port, was) in &first {
        let now = during[port];
        if *was == victim_index {
            wgdp.check(now != victim_index, || {
                format!("flow {port} still on the dead member")
            });
        } else {
            wgdp.check(now == *was, || {
                format!("flow {port} moved from live member {was} to {now}")
            });
        }
    }

    let drops_dead = drops_now();
    let changed = drops_changed(&drops_live, &drops_dead);
    wgdp.check(changed.is_empty(), || {
        format!("wgdp dropped packets (dead): {changed:?}")
    });
    // Bring it back: wgdp's handshake retries reach it.
    let _restarted = restart(&topo, victim);
    let back_after = wait_group(&wgdp, ifname, secs(30), |g| {
        g.get(&victim.public_key).is_some_and(|(live, _)| *live)
    });
    let back_after =
        back_after.unwrap_or_else(|| wgdp.fail("the restarted member is not live after 30 s"));
    println!(
        "member {victim_index} live again {:.1} s after its restart",
        back_after.as_secs_f64()
    );
    let again = one_member_each(&wgdp, &observe(members.iter(), secs(2)), "member back");
    println!("member {victim_index} back: {again:?}");
    wgdp.check(again == first, || {
        format!("flows did not return: first {first:?}, now {again:?}")
    });

    let drops_back = drops_now();
    let changed = drops_changed(&drops_dead, &drops_back);
    wgdp.check(changed.is_empty(), || {
        format!("wgdp dropped packets (back): {changed:?}")
    });
    running.store(false, Ordering::Relaxed);
    let _ = sender.join();
}
