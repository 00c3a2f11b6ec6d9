//! Every buffer of the UAPI socket server that held a key is wiped before
//! it is freed: the request as read (lines, read buffers), the parsed
//! request, and the `get` answer (sized up front, so growing leaves no
//! copy behind). Checked by the allocator itself: while the requests are
//! served, each freed block is searched for the private key and a
//! pre-shared key, as hex and as bytes.

// The scanning allocator is a `GlobalAlloc`, an unsafe trait: the one
// place of this crate where unsafe code is allowed.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use control::snapshot::PeerSnapshot;
use control::uapi::proto::{self, errno, InterfaceInfo, PeerInfo, Request};
use control::uapi::server::{Call, Reply, UapiServer};
use zeroize::Zeroizing;

const PRIVATE: u8 = 0xa7;
const PSK: u8 = 0xb6;
/// Enough peers that an answer grown from empty would reallocate often.
const PEERS: usize = 300;

/// Searches freed blocks while `SCAN` is set; counts those holding a key.
struct Scanning;

static SCAN: AtomicBool = AtomicBool::new(false);
static LEAKS: AtomicUsize = AtomicUsize::new(0);

/// Whether the block at `ptr`, `len` bytes, holds 16 bytes `b` in a
/// row, or their hex (32 characters). Reads byte by byte with volatile
/// reads: parts of a freed block may never have been written.
fn holds(ptr: *const u8, len: usize, b: u8) -> bool {
    let digits = b"0123456789abcdef";
    let pair = [digits[usize::from(b >> 4)], digits[usize::from(b & 15)]];
    let (mut raw, mut text) = (0, 0);
    for i in 0..len {
        // SAFETY: `i < len`, inside the block the allocator hands back.
        let x = unsafe { ptr.add(i).read_volatile() };
        raw = if x == b { raw + 1 } else { 0 };
        text = if x == pair[text % 2] {
            text + 1
        } else if x == pair[0] {
            1
        } else {
            0
        };
        if raw >= 16 || text >= 32 {
            return true;
        }
    }
    false
}

// SAFETY: every allocation is System's, forwarded unchanged; the scan
// only reads a block before it is freed.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SCAN.load(Ordering::Relaxed)
            && (holds(ptr, layout.size(), PRIVATE) || holds(ptr, layout.size(), PSK))
        {
            LEAKS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

fn hex(b: u8) -> String {
    format!("{b:02x}").repeat(32)
}

/// Answers the server's calls as the control thread would, with a table
/// of [`PEERS`] peers that each have the pre-shared key.
fn control(calls: crossbeam_channel::Receiver<Call>) {
    for call in calls {
        let text = match call.request {
            Request::Get => {
                let info = InterfaceInfo {
                    private_key: Zeroizing::new([PRIVATE; 32]),
                    listen_port: 51820,
                    peers: (0..PEERS)
                        .map(|i| PeerInfo {
                            peer: PeerSnapshot {
                                // Never a key's byte: the scan must find only keys.
                                public_key: [(i % 100) as u8; 32],
                                endpoint: Some("[2001:db8::1]:51820".parse().expect("endpoint")),
                                latest_handshake: Some(Duration::new(1_700_000_000, 999)),
                                handshakes: 1,
                                rx_bytes: u64::MAX,
                                tx_bytes: u64::MAX,
                                allowed_ips: vec!["fd00::/64".parse().expect("prefix")],
                                persistent_keepalive: Some(25),
                                owner_lcore: 1,
                                lanes: 1,
                                plain_packets: 0,
                                plain_handed_off: 0,
                            },
                            preshared_key: Some(Zeroizing::new([PSK; 32])),
                        })
                        .collect(),
                };
                proto::render_get(&info)
            }
            _ => Zeroizing::new(proto::render_errno(errno::OK)),
        };
        let _ = call.reply.send(Reply::text(text));
    }
}

/// Reads one answer (up to its empty line) into a buffer that never grows.
fn answer(conn: &mut UnixStream, buf: &mut [u8]) -> usize {
    let mut len = 0;
    while !buf[..len].ends_with(b"\n\n") {
        let n = conn.read(&mut buf[len..]).expect("read");
        assert!(n > 0, "answer cut short");
        len += n;
    }
    len
}

#[test]
fn uapi_buffers_holding_keys_are_wiped_before_they_are_freed() {
    // The scan finds an unwiped key.
    SCAN.store(true, Ordering::Relaxed);
    drop(hex(PRIVATE));
    drop(vec![PSK; 40]);
    SCAN.store(false, Ordering::Relaxed);
    assert_eq!(LEAKS.swap(0, Ordering::Relaxed), 2, "the scan sees keys");

    let name = format!("wgdp-sec{}", std::process::id() % 100_000);
    let (tx, rx) = crossbeam_channel::bounded(4);
    let answering = std::thread::spawn(move || control(rx));
    // Requests built before the scan, in buffers that never grow.
    let set = Zeroizing::new(format!(
        "set=1\nprivate_key={}\npublic_key={}\npreshared_key={}\npublic_key={}\npreshared_key={}\nallowed_ip=10.0.0.0/8\n\n",
        hex(PRIVATE),
        hex(1),
        hex(PSK),
        hex(2),
        hex(PSK)
    ));
    let mut buf = Zeroizing::new(vec![0u8; 1 << 20]);
    let want_private = Zeroizing::new(format!("private_key={}\n", hex(PRIVATE)));
    let want_psk = Zeroizing::new(format!("preshared_key={}", hex(PSK)));

    SCAN.store(true, Ordering::Relaxed);
    let server =
        UapiServer::start(&name, tx, Box::new(|_| Ok(())), Default::default()).expect("serve");
    let mut conn = UnixStream::connect(server.path()).expect("connect");
    conn.write_all(set.as_bytes()).expect("send");
    let n = answer(&mut conn, &mut buf);
    assert_eq!(&buf[..n], b"errno=0\n\n");
    conn.write_all(b"get=1\n\n").expect("send");
    let n = answer(&mut conn, &mut buf);
    let got = std::str::from_utf8(&buf[..n]).expect("utf-8");
    assert!(got.starts_with(want_private.as_str()));
    assert_eq!(got.matches(want_psk.as_str()).count(), PEERS);
    assert!(got.ends_with("errno=0\n\n"));
    drop(conn);
    // Joins the server thread: its buffers are freed by then.
    drop(server);
    answering.join().expect("control");
    SCAN.store(false, Ordering::Relaxed);

    assert_eq!(
        LEAKS.load(Ordering::Relaxed),
        0,
        "freed blocks held the private key or a pre-shared key"
    );
}
