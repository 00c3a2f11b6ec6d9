//! VLANs on the tunnel port, against wireguard-go
//! (`tests/e2e/topology.sh`).
//!
//! - Untagged port: 802.1Q-tagged frames sent into it (ARP requests for
//!   wgdp's address, from the wan namespace's raw socket) are dropped and
//!   counted, exactly; untagged traffic still passes.
//! - `vlan = 100` on wgdp's tunnel port, and the wan side on VLAN 100 too.
//!   This kernel has no 802.1Q module (no VLAN devices, no tc actions), so
//!   the test is the tagged trunk: the kernel end of wgdp's TAP sits in a
//!   namespace of its own, and a relay of the test's (two AF_PACKET
//!   sockets) passes frames between it and a veth to the wan namespace,
//!   popping tag 100 towards wan (counting any frame of wgdp's without it)
//!   and pushing it towards wgdp. ARP, the exception path (ping to wgdp's
//!   own address) and the tunnel to wireguard-go peer 1 all pass, every
//!   frame wgdp sent carried tag 100, and wgdp dropped nothing as `vlan`.
//! - The two roles on two VLANs of one device (`[ports.tunnel]` on VLAN
//!   10, `[ports.plaintext]` on VLAN 20, one `device`): the relay demuxes
//!   the one TAP by tag onto a veth per VLAN, both to the wan namespace,
//!   which is the router in front of wireguard-go peer 2 and the LAN host.
//!   Each role's exception path answers its own address, peer 2 and the
//!   LAN host ping each other through the tunnel, every frame wgdp sent
//!   carried one of the two tags, and it dropped nothing as `vlan`.
//!
//! Needs root and wireguard-go, wg, ip, ping: it fails, never skips, when
//! they are missing.

// The test's own traffic talks to the kernel through libc (setns,
// AF_PACKET sockets): unsafe code, allowed in the namespace tests only.
#![allow(unsafe_code)]

mod netns;

use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netns::wire::{in_netns, parse_mac, RawPort};
use netns::*;

const VLAN: u16 = 100;

/// An AF_PACKET socket that reports the VLAN tag the kernel took off a
/// received frame (`PACKET_AUXDATA`).
struct TagSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl TagSocket {
    /// Opens it on `ifname` of the calling thread's namespace.
    fn open(ifname: &str) -> TagSocket {
        let name = CString::new(ifname).expect("interface name");
        // SAFETY: plain socket calls with checked results.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            assert!(ifindex > 0, "no interface {ifname}");
            let proto = (libc::ETH_P_ALL as u16).to_be();
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
            assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
            let fd = OwnedFd::from_raw_fd(fd);
            let on: libc::c_int = 1;
            let rc = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                8, // PACKET_AUXDATA
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "PACKET_AUXDATA: {}", io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = ifindex;
            let rc = libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "bind {ifname}: {}", io::Error::last_os_error());
            TagSocket { fd, ifindex }
        }
    }

    /// The next frame received (not sent) on the interface within 100 ms,
    /// with its VLAN id if it was tagged (the tag is not in the bytes).
    fn recv(&self) -> Option<(Vec<u8>, Option<u16>)> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 65536];
        // SAFETY: recvmsg into our buffers; the control messages are read
        // within the length the kernel reports.
        unsafe {
            let mut sll: libc::sockaddr_ll = zeroed();
            let mut iov = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            };
            let mut control = [0u64; 16];
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 16]>();
            let n = libc::recvmsg(self.fd.as_raw_fd(), &mut msg, 0);
            if n < 0 || sll.sll_ifindex != self.ifindex || sll.sll_pkttype == libc::PACKET_OUTGOING
            {
                return None;
            }
            buf.truncate(n as usize);
            let mut vlan = None;
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == 8 {
                    let aux = libc::CMSG_DATA(c)
                        .cast::<libc::tpacket_auxdata>()
                        .read_unaligned();
                    if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                        vlan = Some(aux.tp_vlan_tci & 0x0fff);
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
            // A tag the kernel left in the bytes.
            if vlan.is_none() && buf.len() >= 18 && buf[12..14] == [0x81, 0x00] {
                vlan = Some(u16::from_be_bytes([buf[14], buf[15]]) & 0x0fff);
                buf.drain(12..16);
            }
            Some((buf, vlan))
        }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: send on our bound socket from a live buffer.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            n,
            frame.len() as isize,
            "send: {}",
            io::Error::last_os_error()
        );
    }
}

/// `frame` with an 802.1Q tag for `vlan` after its MACs.
fn tagged(frame: &[u8], vlan: u16) -> Vec<u8> {
    [
        &frame[..12],
        &[0x81, 0x00],
        &vlan.to_be_bytes()[..],
        &frame[12..],
    ]
    .concat()
}

/// An ARP request from `mac`/`ip` for `target`.
fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

fn ipv4(s: &str) -> [u8; 4] {
    s.parse::<std::net::Ipv4Addr>().expect("IPv4").octets()
}

#[test]
fn tagged_frames_on_an_untagged_port_are_dropped_and_counted() {
    let (topo, wgdp, _config, _pt_mac) = bring_up('u', "", "");
    let v = |k: &str| topo.var(k).to_string();
    let (wan, tap) = (v("NS_WAN"), v("TAP_WAN"));
    let raw = RawPort::open(&wan, &tap);
    let mac = parse_mac("02:00:00:00:0b:02");
    let request = arp_request(mac, ipv4(&v("WAN_IP")), ipv4(&v("WGDP_WAN_IP")));
    const SENT: u64 = 5;
    for vid in 1..=SENT {
        raw.send(&tagged(&request, vid as u16 * 7));
    }
    let got = wgdp.wait_counter(0, "drop.vlan", SENT, secs(5));
    wgdp.check(got == Some(SENT), || {
        format!("drop.vlan {got:?}, not {SENT}")
    });
    // Untagged traffic is untouched: wgdp's own address answers.
    let out = ping(&wan, &v("WGDP_WAN_IP"), 10);
    wgdp.check(out.ok(), || format!("ping wgdp from wan:\n{out}"));
    std::thread::sleep(Duration::from_millis(1500));
    let after = wgdp.counter_now("drop.vlan");
    wgdp.check(after == SENT, || {
        format!("drop.vlan {after} after the ping, not {SENT}")
    });
    drop(wgdp);
    drop(topo);
}

/// A namespace of the test's, deleted when dropped.
struct NsGuard(String);

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = run(
            std::process::Command::new("ip").args(["netns", "del", &self.0]),
            secs(10),
        );
    }
}

/// The trunk: a TAP relayed to veths, one per VLAN, all in one namespace.
/// wgdp's frames with a leg's tag go to its veth untagged; what a veth
/// receives goes to wgdp with its leg's tag.
struct Relay {
    stop: Arc<AtomicBool>,
    /// wgdp's frames with each leg's tag, passed on untagged.
    tagged_out: Vec<Arc<AtomicU64>>,
    /// wgdp's frames with no leg's tag (an error: counted, not passed).
    untagged_out: Arc<AtomicU64>,
    /// Frames towards wgdp, tagged, per leg.
    tagged_in: Vec<Arc<AtomicU64>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// Relays `tap` in namespace `ns` to each leg's veth (VLAN, name).
    fn start(ns: &str, tap: &str, legs: &[(u16, &str)]) -> Relay {
        let tap_name = tap.to_string();
        let names: Vec<String> = legs.iter().map(|(_, v)| v.to_string()).collect();
        let (tap, veths) = in_netns(ns, move || {
            let veths: Vec<TagSocket> = names.iter().map(|v| TagSocket::open(v)).collect();
            (TagSocket::open(&tap_name), veths)
        });
        let tap = Arc::new(tap);
        let veths: Vec<(u16, Arc<TagSocket>)> = legs
            .iter()
            .zip(veths)
            .map(|((vid, _), s)| (*vid, Arc::new(s)))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let counts = || Arc::new(AtomicU64::new(0));
        let untagged_out = counts();
        let tagged_out: Vec<_> = legs.iter().map(|_| counts()).collect();
        let tagged_in: Vec<_> = legs.iter().map(|_| counts()).collect();
        let mut threads = Vec::new();
        {
            let (tap, veths, stop) = (tap.clone(), veths.clone(), stop.clone());
            let (ok, bad) = (tagged_out.clone(), untagged_out.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some((frame, vid)) = tap.recv() else {
                        continue;
                    };
                    match veths.iter().position(|(v, _)| Some(*v) == vid) {
                        Some(i) => {
                            ok[i].fetch_add(1, Ordering::Relaxed);
                            veths[i].1.send(&frame);
                        }
                        None => {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for ((vid, veth), n) in veths.into_iter().zip(tagged_in.clone()) {
            let (tap, stop) = (tap.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some((frame, None)) = veth.recv() {
                        n.fetch_add(1, Ordering::Relaxed);
                        tap.send(&tagged(&frame, vid));
                    }
                }
            }));
        }
        Relay {
            stop,
            tagged_out,
            untagged_out,
            tagged_in,
            threads,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn ip(wgdp: &Wgdp, args: &[&str]) {
    let out = run(std::process::Command::new("ip").args(args), secs(5));
    wgdp.check(out.ok(), || format!("ip {}:\n{out}", args.join(" ")));
}

#[test]
fn a_tunnel_port_on_vlan_100_passes_arp_the_exception_path_and_the_tunnel() {
    let (topo, wgdp, _config, _pt_mac) = bring_up_edited('t', 2, 1, |_, text| {
        text.replacen(
            "[ports.tunnel]\n",
            &format!("[ports.tunnel]\nvlan = {VLAN}\n"),
            1,
        )
    });
    let v = |k: &str| topo.var(k).to_string();
    let (lan, wan, tap) = (v("NS_LAN"), v("NS_WAN"), v("TAP_WAN"));
    let (lan_ip, peer1_ip, wan_ip) = (v("LAN_IP"), v("PEER1_IP"), v("WAN_IP"));
    // The trunk's namespace, with the TAP's kernel end; wan reaches it
    // over a veth that carries the wan address instead of the TAP.
    let ns = format!("vr-{}", v("SFX"));
    let (veth_wan, veth_relay) = (format!("vw{}", v("SFX")), format!("vr{}", v("SFX")));
    ip(&wgdp, &["netns", "add", &ns]);
    let _ns_guard = NsGuard(ns.clone());
    ip(&wgdp, &["-n", &wan, "link", "set", &tap, "netns", &ns]);
    // The trunk's own kernel sends nothing on the TAP (no IPv6 there):
    // every frame wgdp gets comes through the relay.
    let sysctl = format!("net.ipv6.conf.{tap}.disable_ipv6=1");
    let out = run(&mut netns(&ns, &["sysctl", "-qw", &sysctl]), secs(5));
    wgdp.check(out.ok(), || {
        format!(
            "sysctl {sysctl}:
{out}"
        )
    });
    ip(&wgdp, &["-n", &ns, "link", "set", &tap, "up"]);
    ip(
        &wgdp,
        &[
            "link",
            "add",
            &veth_wan,
            "netns",
            &wan,
            "type",
            "veth",
            "peer",
            "name",
            &veth_relay,
            "netns",
            &ns,
        ],
    );
    for (n, dev) in [(&wan, &veth_wan), (&ns, &veth_relay)] {
        let _ = run(
            &mut netns(
                n,
                &[
                    "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                ],
            ),
            secs(5),
        );
        ip(&wgdp, &["-n", n, "link", "set", dev, "up"]);
    }
    ip(
        &wgdp,
        &[
            "-n",
            &wan,
            "addr",
            "add",
            &format!("{wan_ip}/24"),
            "dev",
            &veth_wan,
        ],
    );
    let relay = Relay::start(&ns, &tap, &[(VLAN, &veth_relay)]);
    // Untagged frames the wan kernel sent before the trunk was in place
    // were wgdp's to drop (`vlan`): from here on there are none.
    std::thread::sleep(Duration::from_millis(1500));
    let dropped_before = wgdp.counter_now("drop.vlan");

    // ARP both ways and the exception path: wan pings wgdp's own address
    // (answered by the kernel behind wgdp's exception TAP).
    let out = ping(&wan, &v("WGDP_WAN_IP"), 15);
    wgdp.check(out.ok(), || {
        format!("ping wgdp's tunnel address over VLAN {VLAN}:\n{out}")
    });
    // The tunnel to peer 1 (wgdp initiates), both ways.
    let out = ping(&lan, &peer1_ip, 15);
    wgdp.check(out.ok(), || {
        format!("ping {lan_ip} -> peer 1 over VLAN {VLAN}:\n{out}")
    });
    let out = ping_from(&wan, &lan_ip, Some(&peer1_ip), 10);
    wgdp.check(out.ok(), || {
        format!("ping peer 1 -> {lan_ip} over VLAN {VLAN}:\n{out}")
    });

    let (ok, bad, inbound) = (
        relay.tagged_out[0].load(Ordering::Relaxed),
        relay.untagged_out.load(Ordering::Relaxed),
        relay.tagged_in[0].load(Ordering::Relaxed),
    );
    println!("relay: {ok} frames from wgdp tagged {VLAN}, {bad} not; {inbound} tagged towards it");
    drop(relay);
    wgdp.check(bad == 0, || {
        format!("{bad} frames from wgdp without tag {VLAN}")
    });
    wgdp.check(ok >= 9 && inbound >= 9, || {
        format!("too few frames relayed: {ok} out, {inbound} in")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let dropped = wgdp.counter_now("drop.vlan") - dropped_before;
    wgdp.check(dropped == 0, || {
        format!("drop.vlan +{dropped} with every frame tagged")
    });
    drop(wgdp);
    drop(topo);
}

/// A veth pair `a` (in `ns_a`) and `b` (in `ns_b`), both up, without the
/// offloads a raw relay cannot pass on.
fn veth_pair(wgdp: &Wgdp, (ns_a, a): (&str, &str), (ns_b, b): (&str, &str)) {
    ip(
        wgdp,
        &[
            "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ],
    );
    for (n, dev) in [(ns_a, a), (ns_b, b)] {
        let _ = run(
            &mut netns(
                n,
                &[
                    "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
                ],
            ),
            secs(5),
        );
        ip(wgdp, &["-n", n, "link", "set", dev, "up"]);
    }
}

/// The tunnel port's VLAN and the plaintext port's, on one device.
const SPLIT: (u16, u16) = (10, 20);

/// topology.sh's config with the plaintext port moved onto the tunnel
/// port's device: the tunnel port on VLAN 10, the plaintext port on VLAN
/// 20 with the tunnel port's MTU (one device has one).
fn split_config(text: &str) -> String {
    let device = text
        .lines()
        .find(|l| l.starts_with("device = "))
        .expect("the tunnel port's device")
        .to_string();
    let mut out = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if line.starts_with('[') {
            section = if line == "[ports.tunnel]" || line == "[ports.plaintext]" {
                line
            } else {
                ""
            };
        }
        match (section, line) {
            ("[ports.plaintext]", l) if l.starts_with("device = ") => out.push(device.clone()),
            ("[ports.plaintext]", l) if l.starts_with("mtu = ") => out.push("mtu = 1500".into()),
            _ => out.push(line.to_string()),
        }
        match line {
            "[ports.tunnel]" => out.push(format!("vlan = {}", SPLIT.0)),
            "[ports.plaintext]" => out.push(format!("vlan = {}", SPLIT.1)),
            _ => {}
        }
    }
    let text = out.join("\n") + "\n";
    assert_eq!(text.matches(&device).count(), 2, "{text}");
    assert!(text.contains("mtu = 1500\ntap"), "{text}");
    text
}

#[test]
fn the_roles_on_two_vlans_of_one_port_pass_both_exception_paths_and_the_tunnel() {
    preflight();
    let sfx = format!("s{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("wgdp-e2e-{sfx}"));
    let _ = std::fs::remove_dir_all(&dir);
    let topo = Topology::up(&sfx, dir.clone(), 2, 1);
    let config = topo.sh("config");
    assert!(config.ok(), "topology.sh config failed:\n{config}");
    let text = split_config(&config.stdout);
    let config_path = dir.join("wgdp.toml");
    std::fs::write(&config_path, &text).expect("write wgdp.toml");
    std::fs::set_permissions(
        &config_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod wgdp.toml");
    let mut wgdp = Wgdp::launch(&config_path, &Launch::DEFAULT);
    wait_running_within(&mut wgdp, &config_path, &text, Launch::DEFAULT.ready);
    let started = wgdp.stdout.snapshot();
    wgdp.check(port_mac(&started, "tunnel+plaintext").is_some(), || {
        "no 'port tunnel+plaintext DEVICE mac MAC' line before 'wgdp: running'".into()
    });
    wgdp.check(port_mac(&started, "plaintext").is_none(), || {
        "a second device was opened for the plaintext VLAN".into()
    });

    // The trunk's namespace holds the one port's kernel end; a veth per
    // VLAN leads to wan, which is at once the router in front of peer 2
    // (its wan address on VLAN 10's veth) and the LAN host (its LAN
    // address on VLAN 20's), with its route to peer 2 via wgdp's LAN
    // address and none over peer 1's tunnel.
    let v = |k: &str| topo.var(k).to_string();
    let (wan, wan2, tap) = (v("NS_WAN"), v("NS_WAN2"), v("TAP_WAN"));
    let (lan_ip, peer2_ip) = (v("LAN_IP"), v("PEER2_IP"));
    let ns = format!("vs-{}", v("SFX"));
    ip(&wgdp, &["netns", "add", &ns]);
    let _ns_guard = NsGuard(ns.clone());
    ip(&wgdp, &["link", "set", "dev", &tap, "netns", &ns]);
    let sysctl = format!("net.ipv6.conf.{tap}.disable_ipv6=1");
    let out = run(&mut netns(&ns, &["sysctl", "-qw", &sysctl]), secs(5));
    wgdp.check(out.ok(), || format!("sysctl {sysctl}:\n{out}"));
    ip(&wgdp, &["-n", &ns, "link", "set", &tap, "up"]);
    let sx = v("SFX");
    let (wt, rt, wp, rp) = (
        format!("wt{sx}"),
        format!("rt{sx}"),
        format!("wp{sx}"),
        format!("rp{sx}"),
    );
    veth_pair(&wgdp, (&wan, &wt), (&ns, &rt));
    veth_pair(&wgdp, (&wan, &wp), (&ns, &rp));
    ip(
        &wgdp,
        &["-n", &wan, "route", "del", &v("LAN_NET"), "dev", &v("WG1")],
    );
    for (addr, dev) in [(v("WAN_IP"), &wt), (lan_ip.clone(), &wp)] {
        ip(
            &wgdp,
            &["-n", &wan, "addr", "add", &format!("{addr}/24"), "dev", dev],
        );
    }
    ip(
        &wgdp,
        &[
            "-n",
            &wan,
            "route",
            "replace",
            &format!("{peer2_ip}/32"),
            "via",
            &v("WGDP_LAN_IP"),
            "dev",
            &wp,
        ],
    );
    let relay = Relay::start(&ns, &tap, &[(SPLIT.0, &rt), (SPLIT.1, &rp)]);
    // Untagged frames sent before the trunk was in place were wgdp's to
    // drop (`vlan`): from here on there are none.
    std::thread::sleep(Duration::from_millis(1500));
    let dropped_before = wgdp.counter_now("drop.vlan");

    // Each role's exception path: ARP and ping to wgdp's own address on
    // each VLAN, answered by the kernel behind that role's TAP.
    for (addr, vlan) in [(v("WGDP_WAN_IP"), SPLIT.0), (v("WGDP_LAN_IP"), SPLIT.1)] {
        let out = ping(&wan, &addr, 15);
        wgdp.check(out.ok(), || {
            format!("ping wgdp's address {addr} on VLAN {vlan}:\n{out}")
        });
    }
    // The tunnel: peer 2 (it initiates) to the LAN host, then back.
    let out = ping_from(&wan2, &lan_ip, Some(&peer2_ip), 15);
    wgdp.check(out.ok(), || {
        format!("ping peer 2 -> LAN host {lan_ip}:\n{out}")
    });
    let out = ping_from(&wan, &peer2_ip, Some(&lan_ip), 10);
    wgdp.check(out.ok(), || {
        format!("ping LAN host {lan_ip} -> peer 2:\n{out}")
    });
    for name in ["event.decapsulated", "event.encapsulated"] {
        let got = wgdp.wait_counter(0, name, 6, secs(5));
        wgdp.check(got.is_some(), || format!("{name} below 6"));
    }

    let count = |c: &Arc<AtomicU64>| c.load(Ordering::Relaxed);
    let (out_t, out_p, bad) = (
        count(&relay.tagged_out[0]),
        count(&relay.tagged_out[1]),
        count(&relay.untagged_out),
    );
    let (in_t, in_p) = (count(&relay.tagged_in[0]), count(&relay.tagged_in[1]));
    println!(
        "relay: from wgdp {out_t} on VLAN {}, {out_p} on VLAN {}, {bad} on neither; to it {in_t} and {in_p}",
        SPLIT.0, SPLIT.1
    );
    drop(relay);
    wgdp.check(bad == 0, || {
        format!("{bad} frames from wgdp with neither VLAN's tag")
    });
    // Each VLAN carried at least its ping's 3 echoes and 3 replies, and
    // the tunnel's 6 (VLAN 10: sealed; VLAN 20: plaintext) each way.
    wgdp.check([out_t, out_p, in_t, in_p].iter().all(|&n| n >= 9), || {
        format!("too few frames relayed: out {out_t}/{out_p}, in {in_t}/{in_p}")
    });
    // Frames counted as their role's: both ports' RX counters moved.
    for name in ["event.tunnel_rx", "event.plaintext_rx"] {
        let got = wgdp.wait_counter(0, name, 9, secs(5));
        wgdp.check(got.is_some(), || format!("{name} below 9"));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let dropped = wgdp.counter_now("drop.vlan") - dropped_before;
    wgdp.check(dropped == 0, || {
        format!("drop.vlan +{dropped} with every frame tagged")
    });
    drop(wgdp);
    drop(topo);
}
