//! Raw traffic of the tests' own: sockets made inside a namespace (a thread
//! that `setns`es into it), an AF_PACKET socket on one interface that sends
//! whole Ethernet frames (spoofed sources included) in `sendmmsg` batches
//! and captures what the interface carries, and the frame builders.

// The test's own traffic talks to the kernel through libc (setns,
// AF_PACKET sockets): unsafe code, allowed in the namespace tests only.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Runs `f` on a thread that entered the network namespace `ns` (sockets
/// made there stay in it, wherever they are used afterwards).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on a namespace file we opened; it changes only this
        // thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity
    // only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "pin to cpu {cpu}: {}", io::Error::last_os_error());
    }
}

/// A UDP socket bound to `addr` inside `ns`.
pub fn udp_socket(ns: &str, addr: SocketAddrV4) -> UdpSocket {
    in_netns(ns, move || {
        let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
        // Let the kernel fragment datagrams larger than the MTU.
        let v: libc::c_int = libc::IP_PMTUDISC_DONT;
        // SAFETY: an int option on our own socket.
        let rc = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&v as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "IP_MTU_DISCOVER: {}", io::Error::last_os_error());
        s
    })
}

/// An AF_PACKET socket on one interface: whole Ethernet frames in and out.
pub struct RawPort {
    fd: OwnedFd,
    ifindex: i32,
}

/// `sendmmsg` batch size.
const BATCH: usize = 64;

impl RawPort {
    /// Opens a raw socket on `ifname` in `ns` that sees every protocol.
    pub fn open(ns: &str, ifname: &str) -> RawPort {
        let ifname = ifname.to_string();
        in_netns(ns, move || {
            let name = CString::new(ifname.clone()).expect("interface name");
            // SAFETY: plain socket calls with checked results.
            unsafe {
                let ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
                assert!(ifindex > 0, "no interface {ifname}");
                let proto = (libc::ETH_P_ALL as u16).to_be();
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
                assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
                let fd = OwnedFd::from_raw_fd(fd);
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
                RawPort { fd, ifindex }
            }
        })
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) {
        assert_eq!(self.send_batch(&[frame]), 1, "send one frame");
    }

    /// Sends the frames with as few `sendmmsg` calls as it takes; returns
    /// how many the kernel took (it stops at the first error, such as a
    /// full queue).
    pub fn send_batch(&self, frames: &[&[u8]]) -> usize {
        let mut sent = 0;
        for chunk in frames.chunks(BATCH) {
            // SAFETY: the iovecs and headers point into `chunk`, which
            // outlives the call; the kernel only reads them.
            let n = unsafe {
                let mut iov: [libc::iovec; BATCH] = zeroed();
                let mut hdr: [libc::mmsghdr; BATCH] = zeroed();
                for (i, f) in chunk.iter().enumerate() {
                    iov[i].iov_base = f.as_ptr() as *mut libc::c_void;
                    iov[i].iov_len = f.len();
                    hdr[i].msg_hdr.msg_iov = &mut iov[i];
                    hdr[i].msg_hdr.msg_iovlen = 1;
                }
                libc::sendmmsg(self.fd.as_raw_fd(), hdr.as_mut_ptr(), chunk.len() as u32, 0)
            };
            if n <= 0 {
                break;
            }
            sent += n as usize;
            if (n as usize) < chunk.len() {
                break;
            }
        }
        sent
    }

    /// The next frame the interface carries either way (with whether it
    /// was outgoing, i.e. sent by the namespace's side), or `None` after
    /// `timeout` without one.
    pub fn recv(&self, timeout: Duration) -> Option<(Vec<u8>, bool)> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one pollfd we own.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            return None;
        }
        let mut buf = vec![0u8; 65536];
        // SAFETY: recvfrom into our buffer and address.
        unsafe {
            let mut sll: libc::sockaddr_ll = zeroed();
            let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            let n = libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            );
            if n < 0 || sll.sll_ifindex != self.ifindex {
                return None;
            }
            buf.truncate(n as usize);
            Some((buf, sll.sll_pkttype == libc::PACKET_OUTGOING))
        }
    }
}

/// `aa:bb:cc:dd:ee:ff` -> bytes.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).unwrap_or_else(|_| panic!("bad MAC {s}")))
        .collect();
    assert_eq!(parts.len(), 6, "bad MAC {s}");
    mac.copy_from_slice(&parts);
    mac
}

/// The MAC address of `ifname` in `ns` (from `ip -o link show`).
pub fn if_mac(ns: &str, ifname: &str) -> [u8; 6] {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "-o", "link", "show", "dev", ifname])
        .output()
        .expect("ip link show");
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no link/ether for {ifname} in {ns}: {text}"));
    parse_mac(mac)
}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 + UDP frame (UDP checksum 0: none, as IPv4 allows).
pub fn udp4_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: SocketAddrV4,
    dst: SocketAddrV4,
    payload: &[u8],
) -> Vec<u8> {
    let ip_len = 20 + 8 + payload.len();
    let mut f = Vec::with_capacity(14 + ip_len);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.ip().octets());
    ip[16..20].copy_from_slice(&dst.ip().octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&src.port().to_be_bytes());
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet (no Ethernet) carrying `payload` as protocol `proto`.
pub fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let len = 20 + payload.len();
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// The WireGuard message in a UDP frame to `port` (IPv4, no VLAN), if any.
pub fn wireguard_payload(frame: &[u8], port: u16) -> Option<&[u8]> {
    if frame.len() < 42 || frame[12..14] != [0x08, 0x00] || frame[23] != 17 {
        return None;
    }
    let ihl = usize::from(frame[14] & 0xf) * 4;
    let udp = frame.get(14 + ihl..)?;
    (udp.len() >= 8 && u16::from_be_bytes([udp[2], udp[3]]) == port).then(|| &udp[8..])
}
