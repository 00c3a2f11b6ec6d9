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

/// The trunk: a TAP relayed to a veth with tag [`VLAN`], both in one
/// namespace.
struct Relay {
    stop: Arc<AtomicBool>,
    /// wgdp's frames with tag 100, passed on untagged.
    tagged_out: Arc<AtomicU64>,
    /// wgdp's frames without it (an error: counted, not passed).
    untagged_out: Arc<AtomicU64>,
    /// Frames towards wgdp, tagged.
    tagged_in: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(ns: &str, tap: &str, veth: &str) -> Relay {
        let (tap, veth) = (tap.to_string(), veth.to_string());
        let (a, b) = in_netns(ns, move || (TagSocket::open(&tap), TagSocket::open(&veth)));
        let (tap, veth) = (Arc::new(a), Arc::new(b));
        let stop = Arc::new(AtomicBool::new(false));
        let counts = || Arc::new(AtomicU64::new(0));
        let (tagged_out, untagged_out, tagged_in) = (counts(), counts(), counts());
        let mut threads = Vec::new();
        {
            let (tap, veth, stop) = (tap.clone(), veth.clone(), stop.clone());
            let (ok, bad) = (tagged_out.clone(), untagged_out.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match tap.recv() {
                        Some((frame, Some(VLAN))) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            veth.send(&frame);
                        }
                        Some(_) => {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {}
                    }
                }
            }));
        }
        {
            let stop = stop.clone();
            let n = tagged_in.clone();
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some((frame, None)) = veth.recv() {
                        n.fetch_add(1, Ordering::Relaxed);
                        tap.send(&tagged(&frame, VLAN));
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
    let relay = Relay::start(&ns, &tap, &veth_relay);
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
        relay.tagged_out.load(Ordering::Relaxed),
        relay.untagged_out.load(Ordering::Relaxed),
        relay.tagged_in.load(Ordering::Relaxed),
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
