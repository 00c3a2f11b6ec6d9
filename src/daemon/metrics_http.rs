//! The metrics HTTP server of `wgdp run`: a minimal server that answers
//! `GET /metrics` with the Prometheus exposition (`control::metrics::render`).
//!
//! [`MetricsServer`] answers with whatever its source closure returns; it
//! runs on one thread of its own, one connection at a time, with short
//! timeouts, so that a misbehaving client can delay a scrape by a couple of
//! seconds at most and never stop the server.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The most a request's line and headers may take.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its whole request line and headers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a single write of the response may stall.
const WRITE_STALL: Duration = Duration::from_secs(2);
/// How long the whole response may take to send.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the client to close after the response, so that
/// unread request bytes do not turn the close into a reset.
const LINGER: Duration = Duration::from_millis(200);
/// Pause after a failed `accept` (say, out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The content type of the exposition text.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves the Prometheus exposition over HTTP on one thread, one connection
/// at a time. Dropping it stops the thread and closes the port.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Listens on `listen` and serves `GET /metrics` with the text that
    /// `source` returns at each request, `/` with a page linking to it.
    /// Fails if the address cannot be bound (in use, not local, no
    /// permission); the error names the address.
    pub fn start(
        listen: SocketAddr,
        source: Arc<dyn Fn() -> String + Send + Sync>,
    ) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(listen).map_err(|e| {
            io::Error::new(e.kind(), format!("metrics: cannot listen on {listen}: {e}"))
        })?;
        let local_addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::Builder::new().name("wgdp-metrics".into()).spawn({
            let stop = Arc::clone(&stop);
            move || serve(&listener, &stop, &*source)
        })?;
        Ok(MetricsServer {
            local_addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the server listens on (with the real port if `listen`
    /// asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server: the connection in progress, if any, finishes
    /// within its timeouts, then the port is closed. Dropping does the same.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Unblock `accept` with a connection of our own. Should even that
        // fail, the thread is left to notice the flag at its next
        // connection rather than hanging the caller on `join`.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The server thread: accepts until told to stop.
fn serve(listener: &TcpListener, stop: &AtomicBool, source: &(dyn Fn() -> String + Send + Sync)) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, _)) => handle(stream, source),
            Err(_) => thread::sleep(ACCEPT_BACKOFF),
        }
    }
}

/// A response: status line, content type, body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    extra_header: Option<&'static str>,
    body: String,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Self {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            extra_header: None,
            body: format!("{body}\n"),
        }
    }
}

/// What reading the request head came to.
enum Head {
    /// The request line (the first line, without its line ending).
    Complete(Vec<u8>),
    /// The client sent nothing, or closed or went quiet before the end of
    /// the headers: close without answering.
    Abandoned,
    /// The head was longer than [`MAX_HEAD`].
    TooLarge,
}

/// Serves one connection. Errors only end the connection.
fn handle(mut stream: TcpStream, source: &(dyn Fn() -> String + Send + Sync)) {
    let head = read_head(&mut stream);
    let (response, is_head) = match head {
        Head::Abandoned => return,
        Head::TooLarge => (
            Response::text(
                "431 Request Header Fields Too Large",
                "request head too large",
            ),
            false,
        ),
        Head::Complete(line) => route(&line, source),
    };
    let _ = write_response(&mut stream, &response, is_head);
    linger(&mut stream);
}

/// Reads until the blank line that ends the headers, within
/// [`REQUEST_TIMEOUT`] and [`MAX_HEAD`] bytes.
fn read_head(stream: &mut TcpStream) -> Head {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Head::Abandoned;
        };
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Head::Abandoned;
        }
        let Some(free) = buf.get_mut(len..) else {
            return Head::TooLarge;
        };
        if free.is_empty() {
            return Head::TooLarge;
        }
        let n = match stream.read(free) {
            Ok(0) => return Head::Abandoned,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Head::Abandoned,
        };
        // Search from a little before the new bytes: the terminator may
        // straddle two reads.
        let from = len.saturating_sub(3);
        len += n;
        let Some(seen) = buf.get(..len) else {
            return Head::Abandoned;
        };
        if head_complete(seen, from) {
            let line_end = seen.iter().position(|&b| b == b'\n').unwrap_or(len);
            let line = seen.get(..line_end).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            return Head::Complete(line.to_vec());
        }
    }
}

/// Whether `buf` holds the blank line that ends the headers (`\r\n\r\n`,
/// or a lenient `\n\n`) at or after `from`.
fn head_complete(buf: &[u8], from: usize) -> bool {
    let tail = buf.get(from..).unwrap_or_default();
    tail.windows(4).any(|w| w == b"\r\n\r\n") || tail.windows(2).any(|w| w == b"\n\n")
}

/// Answers a request line: the response, and whether it was `HEAD` (no body).
fn route(line: &[u8], source: &(dyn Fn() -> String + Send + Sync)) -> (Response, bool) {
    let bad = || (Response::text("400 Bad Request", "bad request"), false);
    let Ok(line) = std::str::from_utf8(line) else {
        return bad();
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad();
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(method) || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return bad();
    }
    let is_head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = Response::text("405 Method Not Allowed", "method not allowed");
            r.extra_header = Some("Allow: GET, HEAD");
            return (r, false);
        }
    };
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let response = match path {
        "/metrics" => match panic::catch_unwind(AssertUnwindSafe(source)) {
            Ok(body) => Response {
                status: "200 OK",
                content_type: METRICS_CONTENT_TYPE,
                extra_header: None,
                body,
            },
            Err(_) => Response::text("500 Internal Server Error", "metrics source failed"),
        },
        "/" => Response {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            extra_header: None,
            body: "<!DOCTYPE html>\n<html><head><title>wgdp</title></head>\
                   <body><h1>wgdp</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n"
                .to_owned(),
        },
        _ => Response::text("404 Not Found", "not found"),
    };
    (response, is_head)
}

/// Sends the response within [`RESPONSE_TIMEOUT`], no single write
/// stalling longer than [`WRITE_STALL`].
fn write_response(stream: &mut TcpStream, r: &Response, is_head: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    if let Some(h) = r.extra_header {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let deadline = Instant::now() + RESPONSE_TIMEOUT;
    let body: &[u8] = if is_head { b"" } else { r.body.as_bytes() };
    for mut chunk in [head.as_bytes(), body] {
        while !chunk.is_empty() {
            let left = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
                .ok_or(io::ErrorKind::TimedOut)?;
            stream.set_write_timeout(Some(left.min(WRITE_STALL)))?;
            match stream.write(chunk) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => chunk = chunk.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    stream.flush()
}

/// Half-closes, then reads what the client still sends for a short while,
/// so that closing does not reset the connection before the client has
/// read the response.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    use control::counters::ControlCounters;
    use control::metrics::render;
    use dataplane::counters::{DropReason, WorkerCounters};

    const BODY: &str = "# HELP x X.\n# TYPE x gauge\nx 1\n";

    fn server() -> MetricsServer {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        MetricsServer::start(addr, Arc::new(|| BODY.to_owned())).expect("start")
    }

    /// Sends `request` raw and reads the whole response (the server closes).
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("send");
        let mut out = Vec::new();
        s.read_to_end(&mut out).expect("read");
        String::from_utf8(out).expect("utf-8 response")
    }

    /// Status line, headers (lowercased names), body.
    fn parse_response(r: &str) -> (String, HashMap<String, String>, String) {
        let (head, body) = r.split_once("\r\n\r\n").expect("end of head");
        let mut lines = head.split("\r\n");
        let status = lines.next().expect("status").to_owned();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").expect("header");
                (k.to_ascii_lowercase(), v.to_owned())
            })
            .collect();
        (status, headers, body.to_owned())
    }

    fn get(addr: SocketAddr, path: &str) -> (String, HashMap<String, String>, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n");
        parse_response(&exchange(addr, req.as_bytes()))
    }

    #[test]
    fn server_answers_metrics() {
        let srv = server();
        let (status, headers, body) = get(srv.local_addr(), "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(
            headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        assert_eq!(headers["content-length"], BODY.len().to_string());
        assert_eq!(headers["connection"], "close");
        assert_eq!(body, BODY);

        let (status, _, body) = get(srv.local_addr(), "/metrics?name[]=x");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, BODY);

        let (status, headers, body) = parse_response(&exchange(
            srv.local_addr(),
            b"HEAD /metrics HTTP/1.0\r\n\r\n",
        ));
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(headers["content-length"], BODY.len().to_string());
        assert_eq!(body, "");
    }

    /// What the server answers is exactly what its source renders: the
    /// metrics page of `wgdp run` (its exposition is checked by
    /// control's `metrics` tests).
    #[test]
    fn server_serves_render_output() {
        let workers = vec![Arc::new(WorkerCounters::default())];
        workers[0].count_drop(DropReason::Malformed);
        let control = Arc::new(ControlCounters::default());
        let expected = render(&workers, &[4], &control, &[], &[]);
        let source: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || render(&workers, &[4], &control, &[], &[]));
        let srv =
            MetricsServer::start("127.0.0.1:0".parse().expect("addr"), source).expect("start");
        let (status, _, body) = get(srv.local_addr(), "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, expected);
        assert!(
            body.lines()
                .any(|l| l == "wgdp_drops_total{lcore=\"4\",reason=\"malformed\"} 1"),
            "{body}"
        );
    }

    #[test]
    fn server_index_404_and_405() {
        let srv = server();
        let (status, headers, body) = get(srv.local_addr(), "/");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers["content-type"].starts_with("text/html"));
        assert!(body.contains("href=\"/metrics\""), "{body}");

        let (status, _, _) = get(srv.local_addr(), "/metrics/extra");
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        let (status, _, _) = get(srv.local_addr(), "/favicon.ico");
        assert_eq!(status, "HTTP/1.1 404 Not Found");

        let post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let (status, headers, _) = parse_response(&exchange(srv.local_addr(), post));
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        assert_eq!(headers["allow"], "GET, HEAD");
        assert_eq!(headers["connection"], "close");
    }

    #[test]
    fn server_rejects_garbage_and_oversized_heads() {
        let srv = server();
        let addr = srv.local_addr();
        for garbage in [
            &b"\x00\xff\xfe garbage\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
        ] {
            let (status, _, _) = parse_response(&exchange(addr, garbage));
            assert_eq!(status, "HTTP/1.1 400 Bad Request", "for {garbage:?}");
        }
        let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
        while huge.len() <= MAX_HEAD {
            huge.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let (status, _, _) = parse_response(&exchange(addr, &huge));
        assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");

        // Garbage without an end of head, then a half-close: no answer.
        assert_eq!(
            {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.write_all(b"\x16\x03\x01 not http").expect("send");
                s.shutdown(Shutdown::Write).expect("half-close");
                let mut out = Vec::new();
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .expect("timeout");
                let _ = s.read_to_end(&mut out);
                out
            },
            b""
        );
        let (status, _, body) = get(addr, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, BODY);
    }

    #[test]
    fn server_survives_a_silent_client() {
        let srv = server();
        let addr = srv.local_addr();
        let silent = TcpStream::connect(addr).expect("connect");
        let mut partial = TcpStream::connect(addr).expect("connect");
        partial
            .write_all(b"GET /metrics HTTP/1.1\r\n")
            .expect("send");
        let started = Instant::now();
        let (status, _, body) = get(addr, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, BODY);
        // Served after both stalled clients timed out, not much later.
        let waited = started.elapsed();
        assert!(waited >= REQUEST_TIMEOUT, "{waited:?}");
        assert!(
            waited < 3 * REQUEST_TIMEOUT + Duration::from_secs(2),
            "{waited:?}"
        );
        drop((silent, partial));
    }

    #[test]
    fn server_survives_a_panicking_source() {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let srv = MetricsServer::start(addr, Arc::new(|| panic!("source failed on purpose")))
            .expect("start");
        let (status, _, _) = get(srv.local_addr(), "/metrics");
        assert_eq!(status, "HTTP/1.1 500 Internal Server Error");
        let (status, _, _) = get(srv.local_addr(), "/");
        assert_eq!(status, "HTTP/1.1 200 OK");
    }

    #[test]
    fn server_stops_on_drop_and_closes_the_port() {
        let srv = server();
        let addr = srv.local_addr();
        assert_eq!(get(addr, "/metrics").0, "HTTP/1.1 200 OK");
        let started = Instant::now();
        drop(srv);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        assert!(refused.is_err(), "port still open after drop");

        let srv = server();
        let addr = srv.local_addr();
        srv.stop();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    }

    #[test]
    fn start_fails_clearly_when_the_address_is_taken() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = MetricsServer::start(addr, Arc::new(String::new)).expect_err("address in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
