//! The UAPI socket: `/var/run/wireguard/<name>.sock`, bound under umask
//! 0077 then mode 0600, served by
//! one thread, at a lower priority than the control thread
//! ([`crate::priority`]). Each request is parsed here, handed to the control thread
//! (which owns all state) and answered with what it returns; a `set` that
//! changed peers is written back to the tunnel table before the answer.
//!
//! A `set` that is applied but cannot be written back stays live (it is
//! not rolled back): the answer is `errno=5` (EIO), the error is logged and
//! counted in `uapi_sets_not_saved`, and a restart loses the change. Every
//! other refusal changes nothing.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use nix::sys::stat::{umask, Mode};
use zeroize::Zeroizing;

use super::proto::{self, errno, Request};
use super::secret::SecretBuf;
use crate::counters::{bump, ControlCounters};
use crate::show::Show;

/// Where `wg` looks for userspace interfaces.
pub const SOCKET_DIR: &str = "/var/run/wireguard";
/// How long a client may take to send a request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 64 << 10;
/// The most bytes of an answer written per system call. A write to a
/// socket runs in the kernel until it is done, and a kernel built without
/// preemption (`PREEMPT_NONE`, a common distribution default) runs nothing
/// else on that CPU meanwhile, whatever the priorities: the 36 MB answer
/// to a `get` of 100k peers, written in one call, held the CPU for up to
/// 350 ms while the control thread, due for a handshake, waited
/// (docs/scale.md). Between two calls the scheduler runs whoever is due.
const WRITE_SLICE: usize = 64 << 10;

/// Peers a `set` changed, for writing back to the tunnel table.
#[derive(Debug, Default)]
pub struct Persist {
    /// Peers added or changed, as they now are.
    pub upserted: Vec<conf::PeerConf>,
    /// Peers removed.
    pub removed: Vec<conf::PublicKey>,
}

impl Persist {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
    }
}

/// The control thread's answer to one request.
pub struct Reply {
    /// The protocol text to send back (empty for a `get`).
    pub text: Zeroizing<String>,
    /// A `get`'s snapshot of the interface: rendered by the socket's
    /// thread, so that a table of 100k peers does not keep the control
    /// thread from its handshakes and timers for the rendering (about a
    /// second); the control thread only copies the state.
    pub snapshot: Option<Box<proto::InterfaceInfo>>,
    /// A `wgdp show` document: its JSON (megabytes at 100k peers) is
    /// rendered by the socket's thread too.
    pub show: Option<Box<Show>>,
    /// What to write back to the tunnel table first.
    pub persist: Persist,
}

impl Reply {
    /// A protocol text and nothing to write back.
    pub fn text(text: Zeroizing<String>) -> Self {
        Self {
            text,
            snapshot: None,
            show: None,
            persist: Persist::default(),
        }
    }

    /// The text to send back: a snapshot or a document rendered, or the
    /// text as given.
    pub fn into_text(self) -> Zeroizing<String> {
        if let Some(info) = self.snapshot {
            return proto::render_get(&info);
        }
        match self.show {
            Some(show) => {
                let json = serde_json::to_string(&show).unwrap_or_default();
                Zeroizing::new(format!("{json}\n{}", proto::render_errno(errno::OK)))
            }
            None => self.text,
        }
    }
}

/// One request on its way to the control thread.
pub struct Call {
    /// The request.
    pub request: Request,
    /// Where the control thread answers.
    pub reply: Sender<Reply>,
}

/// Writes applied changes back to the tunnel table; returns a message on
/// failure.
pub type PersistFn = Box<dyn FnMut(&Persist) -> Result<(), String> + Send>;

/// The running socket server. Dropping it stops the thread and removes the
/// socket.
pub struct UapiServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UapiServer {
    /// Binds `/var/run/wireguard/<name>.sock` (refusing when another
    /// process serves it) and starts serving; sets that are live but not
    /// written back are counted in `counters`.
    pub fn start(
        name: &str,
        calls: Sender<Call>,
        persist: PersistFn,
        counters: Arc<ControlCounters>,
    ) -> std::io::Result<Self> {
        Self::start_at(
            &Path::new(SOCKET_DIR).join(format!("{name}.sock")),
            calls,
            persist,
            counters,
        )
    }

    /// As [`start`](Self::start), at an explicit path.
    fn start_at(
        path: &Path,
        calls: Sender<Call>,
        mut persist: PersistFn,
        counters: Arc<ControlCounters>,
    ) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("{} is served by another process", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let listener = bind_private(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("wgdp-uapi".into())
                .spawn(move || {
                    // Its work (rendering a `get` of the whole table)
                    // yields to the control thread's handshakes.
                    crate::priority::lower_helper_thread("wgdp-uapi", &counters);
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Ok(conn) = conn {
                            serve(conn, &calls, &mut persist, &counters, &stop);
                        }
                    }
                })?
        };
        Ok(Self {
            path: path.to_owned(),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UapiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock accept().
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket under umask 0077, as wireguard-go does: it is never
/// reachable by group or others, not even between `bind` and the chmod to
/// 0600 that follows. The umask is the process's: it is restored at once
/// (a file another thread creates meanwhile only gets stricter bits).
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    let old = umask(Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    umask(old);
    bound
}

/// The length of the request at the front of `bytes` (its lines and the
/// empty line that ends it), looking for the end from `from` on.
fn request_end(bytes: &[u8], from: usize) -> Option<usize> {
    if bytes.first() == Some(&b'\n') {
        return Some(1);
    }
    let from = from.saturating_sub(1);
    bytes
        .get(from..)?
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|at| from + at + 2)
}

/// Serves the requests of one connection until it closes. Requests may
/// hold keys: they are read into one [`SecretBuf`] and parsed in place
/// (no per-line copies), and every buffer is wiped.
fn serve(
    mut conn: UnixStream,
    calls: &Sender<Call>,
    persist: &mut PersistFn,
    counters: &ControlCounters,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = conn.set_write_timeout(Some(CLIENT_TIMEOUT));
    let mut chunk = Zeroizing::new(vec![0u8; READ_CHUNK]);
    let mut pending = SecretBuf::with_capacity(READ_CHUNK);
    // Where the search for the request's end resumes.
    let mut scanned = 0;
    loop {
        let Some(end) = request_end(pending.as_bytes(), scanned) else {
            scanned = pending.len();
            if pending.len() > proto::MAX_REQUEST {
                let _ = conn.write_all(proto::render_errno(errno::EPROTO).as_bytes());
                return;
            }
            // Bounded before reading: a request must not grow far past
            // the limit.
            let room = (proto::MAX_REQUEST + 1 - pending.len()).min(READ_CHUNK);
            match conn.read(&mut chunk[..room]) {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let Ok(text) = std::str::from_utf8(&pending.as_bytes()[..end]) else {
            return;
        };
        // The lines before the empty one.
        let lines: Vec<&str> = text[..end.saturating_sub(2)].split('\n').collect();
        let answer = match proto::parse(&lines) {
            Ok(request) => ask(request, calls, persist, counters, stop),
            Err(e) => Zeroizing::new(proto::render_errno(e.errno)),
        };
        drop(lines);
        pending.consume(end);
        scanned = 0;
        if write_sliced(&mut conn, answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Writes `bytes` to `conn` at most [`WRITE_SLICE`] bytes a system call.
fn write_sliced(conn: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    bytes
        .chunks(WRITE_SLICE)
        .try_for_each(|slice| conn.write_all(slice))
}

fn ask(
    request: Request,
    calls: &Sender<Call>,
    persist: &mut PersistFn,
    counters: &ControlCounters,
    stop: &AtomicBool,
) -> Zeroizing<String> {
    let (tx, rx) = bounded(1);
    if calls.send(Call { request, reply: tx }).is_err() {
        return Zeroizing::new(proto::render_errno(errno::EIO));
    }
    // No deadline: the control thread answers every call it takes (a
    // `setconf` of a million peers takes it tens of seconds), and a reply
    // given up on would report a failure for a change that is then made.
    // Only when the server is stopping (the control thread has ended; a
    // call still in the channel would never be taken) is the wait given up.
    let reply = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(reply) => break reply,
            Err(RecvTimeoutError::Timeout) if !stop.load(Ordering::Relaxed) => {}
            Err(_) => return Zeroizing::new(proto::render_errno(errno::EIO)),
        }
    };
    if !reply.persist.is_empty() {
        if let Err(e) = persist(&reply.persist) {
            // Live, not rolled back: the answer says it was not saved.
            tracing::error!(
                "uapi: the change is live but was not written to the tunnel table (lost at restart): {e}"
            );
            bump(&counters.uapi_sets_not_saved);
            return Zeroizing::new(proto::render_errno(errno::EIO));
        }
    }
    reply.into_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// A request ends at its first empty line, wherever the reads split
    /// it; an empty first line is an (empty) request of its own.
    #[test]
    fn a_request_ends_at_its_empty_line() {
        assert_eq!(request_end(b"get=1\n\nset=1\n", 0), Some(7));
        assert_eq!(request_end(b"\nget=1\n\n", 0), Some(1));
        assert_eq!(request_end(b"set=1\na=b\n", 0), None);
        // Resumed after a read that ended between the two newlines.
        assert_eq!(request_end(b"set=1\na=b\n\n", 10), Some(11));
        assert_eq!(request_end(b"", 0), None);
    }

    /// A large answer reaches the socket in calls of at most
    /// [`WRITE_SLICE`] bytes, whole and in order: one call of 36 MB kept
    /// the CPU from the control thread on a kernel without preemption.
    #[test]
    fn a_large_answer_is_written_in_slices_the_scheduler_can_come_between() {
        /// Records each call's length and what it wrote.
        #[derive(Default)]
        struct Calls {
            lens: Vec<usize>,
            bytes: Vec<u8>,
        }
        impl Write for Calls {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.lens.push(buf.len());
                self.bytes.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let answer: Vec<u8> = (0..3 * WRITE_SLICE + 5).map(|i| i as u8).collect();
        let mut calls = Calls::default();
        write_sliced(&mut calls, &answer).expect("write");
        assert_eq!(calls.bytes, answer, "whole and in order");
        assert_eq!(calls.lens, [WRITE_SLICE, WRITE_SLICE, WRITE_SLICE, 5]);
    }

    /// The socket is created mode 0600 (it reads and changes keys), and a
    /// malformed request is refused with an errno before it reaches the
    /// control thread.
    #[test]
    fn socket_is_private_and_bad_requests_never_reach_control() {
        let path = std::env::temp_dir().join(format!("wgdp-uapi-test-{}.sock", std::process::id()));
        let (calls, control) = bounded(4);
        let server = UapiServer::start_at(&path, calls, Box::new(|_| Ok(())), Arc::default())
            .expect("serve");
        let mode = std::fs::metadata(server.path())
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
        let mut conn = UnixStream::connect(&path).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        for request in [
            "hello=1\n\n",
            "set=1\npublic_key=zz\n\n",
            "set=1\nlisten_port=70000\n\n",
            "set=1\nunknown=1\n\n",
        ] {
            conn.write_all(request.as_bytes()).expect("send");
            let mut reply = String::new();
            reader.read_line(&mut reply).expect("reply");
            assert!(
                reply.starts_with("errno=") && reply.trim() != "errno=0",
                "{request:?} -> {reply:?}"
            );
            let mut blank = String::new();
            reader.read_line(&mut blank).expect("blank line");
        }
        assert!(
            control.try_recv().is_err(),
            "a refused request reached the control thread"
        );
        drop((reader, conn));
        drop(server);
        assert!(!path.exists(), "socket left behind");
    }

    /// The socket is created without group or other bits even under a
    /// permissive umask: nothing can connect before the chmod to 0600.
    #[test]
    fn socket_is_private_from_the_moment_it_is_bound() {
        let path =
            std::env::temp_dir().join(format!("wgdp-uapi-umask-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        // The umask is the process's: each test runs in a process of its
        // own under nextest.
        let old = umask(Mode::empty());
        let listener = bind_private(&path);
        let during = umask(old);
        let listener = listener.expect("bind");
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "socket mode {mode:o} right after bind");
        assert_eq!(during.bits(), 0, "the umask is restored");
        drop(listener);
        std::fs::remove_file(&path).expect("remove");
    }

    /// A `set` the control thread applied whose write-back fails is
    /// answered EIO and counted, and stays applied: the server sends the
    /// control thread nothing more (no undo), and the next request is
    /// served as usual. A set with nothing to write back is answered as the
    /// control thread answered it.
    #[test]
    fn a_set_live_but_not_written_back_answers_eio_is_counted_and_stays_live() {
        let path = std::env::temp_dir().join(format!("wgdp-uapi-eio-{}.sock", std::process::id()));
        let (calls, control) = bounded::<Call>(4);
        let counters = Arc::new(ControlCounters::default());
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tries = writes.clone();
        let server = UapiServer::start_at(
            &path,
            calls,
            Box::new(move |_| {
                tries.fetch_add(1, Ordering::Relaxed);
                Err("read-only file system".into())
            }),
            counters.clone(),
        )
        .expect("serve");
        // The control thread: applies each set (counted), and says what
        // to write back only for the first.
        let applied = std::thread::spawn(move || {
            let mut n = 0;
            for call in control.iter() {
                n += 1;
                let mut persist = Persist::default();
                if n == 1 {
                    persist.removed.push(conf::PublicKey([9; 32]));
                }
                let _ = call.reply.send(Reply {
                    persist,
                    ..Reply::text(Zeroizing::new(proto::render_errno(errno::OK)))
                });
            }
            n
        });
        let mut conn = UnixStream::connect(&path).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut exchange = |request: &str| {
            conn.write_all(request.as_bytes()).expect("send");
            let mut reply = String::new();
            reader.read_line(&mut reply).expect("reply");
            let mut blank = String::new();
            reader.read_line(&mut blank).expect("blank line");
            reply
        };
        let key = "09".repeat(32);
        assert_eq!(
            exchange(&format!("set=1\npublic_key={key}\nremove=true\n\n")),
            "errno=5\n"
        );
        assert_eq!(counters.uapi_sets_not_saved.load(Ordering::Relaxed), 1);
        assert_eq!(writes.load(Ordering::Relaxed), 1, "one write-back tried");
        assert_eq!(exchange("set=1\n\n"), "errno=0\n", "nothing to write back");
        assert_eq!(counters.uapi_sets_not_saved.load(Ordering::Relaxed), 1);
        assert_eq!(writes.load(Ordering::Relaxed), 1);
        drop((reader, conn));
        drop(server);
        assert_eq!(applied.join().expect("control"), 2, "no undo was sent");
    }

    /// A call the control thread never takes (it has ended, the call is
    /// still queued) does not keep the server from stopping: the client
    /// gets EIO once the server is dropped, and the drop returns.
    #[test]
    fn a_call_left_in_the_queue_does_not_block_the_stop() {
        let path = std::env::temp_dir().join(format!("wgdp-uapi-stop-{}.sock", std::process::id()));
        let (calls, control) = bounded(4);
        let server = UapiServer::start_at(&path, calls, Box::new(|_| Ok(())), Arc::default())
            .expect("serve");
        let client = {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut conn = UnixStream::connect(&path).expect("connect");
                conn.write_all(b"get=1\n\n").expect("send");
                let mut reply = String::new();
                BufReader::new(conn).read_line(&mut reply).expect("reply");
                reply
            })
        };
        // The call is queued; nobody answers it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while control.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(control.len(), 1, "the call reached the queue");
        let t = std::time::Instant::now();
        drop(server);
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "the stop waited {:?}",
            t.elapsed()
        );
        assert_eq!(client.join().expect("client").trim(), "errno=5");
        drop(control);
    }
}
