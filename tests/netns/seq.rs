//! The tests' own sequence-numbered UDP stream, from one address to
//! another across the testbed, with sockets opened inside the namespaces:
//! what arrived, how often twice, and how often out of order (a datagram
//! numbered below one that arrived before it), so that loss, replay and
//! reordering are each counted exactly.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::wire::udp_socket;

/// What the receiver saw.
#[derive(Debug, Default)]
pub struct SeqReport {
    /// Datagrams sent.
    pub sent: u64,
    /// Distinct datagrams received.
    pub received: u64,
    /// Datagrams received again.
    pub duplicates: u64,
    /// Datagrams received after one with a higher number: reordered.
    pub inversions: u64,
    /// The longest time without a datagram while the sender ran.
    pub longest_gap: Duration,
    /// When the last datagram arrived.
    pub last: Option<Instant>,
}

/// A running stream; [`SeqStream::finish`] stops it and reports.
pub struct SeqStream {
    stop: Arc<AtomicBool>,
    sender: JoinHandle<u64>,
    receiver: JoinHandle<SeqReport>,
}

impl SeqStream {
    /// `rate` datagrams a second from `from` (in `from_ns`) to port `port`
    /// of the LAN host `to` (in `to_ns`), each carrying its sequence number.
    pub fn start(
        from_ns: &str,
        from: &str,
        to_ns: &str,
        to: &str,
        port: u16,
        rate: u32,
    ) -> SeqStream {
        let dst = SocketAddrV4::new(to.parse().expect("LAN address"), port);
        let rx = udp_socket(to_ns, dst);
        rx.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let tx = udp_socket(from_ns, format!("{from}:0").parse().expect("peer address"));
        let stop = Arc::new(AtomicBool::new(false));
        let receiver = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut seen = Vec::<bool>::new();
                let mut highest: Option<u64> = None;
                let mut r = SeqReport::default();
                let mut buf = [0u8; 2048];
                let mut quiet_since = Instant::now();
                loop {
                    let stopping = stop.load(Ordering::Relaxed);
                    match rx.recv(&mut buf) {
                        Ok(n) if n >= 8 => {
                            let now = Instant::now();
                            r.longest_gap = r.longest_gap.max(now - quiet_since);
                            quiet_since = now;
                            r.last = Some(now);
                            let seq = u64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
                            if highest.is_some_and(|h| seq < h) {
                                r.inversions += 1;
                            }
                            highest = highest.max(Some(seq));
                            let i = usize::try_from(seq).expect("seq");
                            if seen.len() <= i {
                                seen.resize(i + 1, false);
                            }
                            if std::mem::replace(&mut seen[i], true) {
                                r.duplicates += 1;
                            } else {
                                r.received += 1;
                            }
                        }
                        Ok(_) => {}
                        // Stopped: what is in flight has 300 ms to arrive.
                        Err(_) if stopping => {
                            if quiet_since.elapsed() > Duration::from_millis(300) {
                                break;
                            }
                        }
                        Err(_) => {
                            let now = Instant::now();
                            r.longest_gap = r.longest_gap.max(now - quiet_since);
                        }
                    }
                }
                r
            })
        };
        let sender = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let start = Instant::now();
                let mut buf = [0u8; 512];
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    buf[..8].copy_from_slice(&seq.to_be_bytes());
                    let _ = tx.send_to(&buf, dst);
                    seq += 1;
                    let due = start + Duration::from_secs_f64(seq as f64 / f64::from(rate));
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
                seq
            })
        };
        SeqStream {
            stop,
            sender,
            receiver,
        }
    }

    /// Stops sending, lets what is in flight arrive, and reports.
    pub fn finish(self) -> SeqReport {
        self.stop.store(true, Ordering::Relaxed);
        let sent = self.sender.join().expect("sender");
        let mut r = self.receiver.join().expect("receiver");
        r.sent = sent;
        r
    }
}
