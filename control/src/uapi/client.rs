//! The client side of the UAPI socket, for wgdp's own commands (`wgdp
//! show`, `wgdp set`, `wgdp remove`): one request, one answer.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use super::secret::SecretBuf;
use super::server::SOCKET_DIR;

/// How long wgdp may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no successful answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("is wgdp running? no socket at {}", path.display())]
    NotRunning {
        /// The socket's path.
        path: PathBuf,
    },
    /// Talking to the socket failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The answer ended before its `errno=` line.
    #[error("{}: the answer ended before its errno line", path.display())]
    Truncated {
        /// The socket's path.
        path: PathBuf,
    },
    /// wgdp answered with a non-zero errno.
    #[error("{}: wgdp refused the request with errno {errno}", path.display())]
    Refused {
        /// The socket's path.
        path: PathBuf,
        /// The errno of the answer.
        errno: i32,
    },
}

/// The UAPI socket of interface `name`.
pub fn socket_path(name: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{name}.sock"))
}

/// Sends `request` (its lines and the final empty line) to the socket at
/// `path`; returns the answer's lines before `errno=0`. The request may
/// hold a pre-shared key: the caller wipes it; the answer is wiped here
/// unless returned.
pub fn exchange(path: &Path, request: &str) -> Result<String, ClientError> {
    let io = |source| ClientError::Io {
        path: path.to_owned(),
        source,
    };
    let mut conn = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning {
                path: path.to_owned(),
            }
        }
        _ => io(e),
    })?;
    conn.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(io)?;
    conn.write_all(request.as_bytes()).map_err(io)?;
    let mut answer = SecretBuf::with_capacity(64 << 10);
    let mut buf = Zeroizing::new([0u8; 65536]);
    // The answer ends with an errno line and an empty line.
    while !answer.as_bytes().ends_with(b"\n\n") {
        let n = conn.read(&mut buf[..]).map_err(io)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(answer.as_bytes());
    let Some(at) = text
        .rfind("\nerrno=")
        .map(|i| i + 1)
        .or_else(|| text.starts_with("errno=").then_some(0))
    else {
        return Err(ClientError::Truncated {
            path: path.to_owned(),
        });
    };
    let errno: i32 = text[at + 6..]
        .trim()
        .parse()
        .map_err(|_| ClientError::Truncated {
            path: path.to_owned(),
        })?;
    if errno != 0 {
        return Err(ClientError::Refused {
            path: path.to_owned(),
            errno,
        });
    }
    Ok(text[..at].to_owned())
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    use super::*;

    /// Serves one connection: reads a request, writes `answer`; returns
    /// the request.
    fn serve_once(answer: &'static str) -> (PathBuf, std::thread::JoinHandle<String>) {
        let dir = std::env::temp_dir().join(format!(
            "wgdp-client-{}-{}",
            std::process::id(),
            answer.len()
        ));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let t = std::thread::spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            let mut reader = std::io::BufReader::new(conn.try_clone().expect("clone"));
            let mut request = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\n" {
                    break;
                }
                request.push_str(&line);
            }
            (&conn).write_all(answer.as_bytes()).expect("answer");
            request
        });
        (path, t)
    }

    #[test]
    fn answers_errnos_and_missing_sockets() {
        let (path, t) = serve_once("a=1\nb=2\nerrno=0\n\n");
        assert_eq!(exchange(&path, "get=1\n\n").expect("answer"), "a=1\nb=2\n");
        assert_eq!(t.join().expect("server"), "get=1\n");

        let (path, t) = serve_once("errno=22\n\n");
        let e = exchange(&path, "set=1\n\n").expect_err("refused");
        assert!(matches!(e, ClientError::Refused { errno: 22, .. }), "{e}");
        t.join().expect("server");

        let (path, t) = serve_once("a=1\n");
        let e = exchange(&path, "get=1\n\n").expect_err("truncated");
        assert!(matches!(e, ClientError::Truncated { .. }), "{e}");
        t.join().expect("server");

        let gone = path.with_file_name("gone.sock");
        let e = exchange(&gone, "get=1\n\n").expect_err("no socket");
        assert_eq!(
            e.to_string(),
            format!("is wgdp running? no socket at {}", gone.display())
        );
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
