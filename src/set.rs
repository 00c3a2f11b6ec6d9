//! `wgdp set peer KEY ...` and `wgdp remove peer KEY`: live changes to a
//! running wgdp through its UAPI socket, as `wg set` makes them. wgdp
//! applies them without a restart and writes them back to its tunnel table.
//!
//! Every value is checked here first, so that a mistake is reported with
//! the option it came from; what wgdp itself refuses comes back as an
//! errno, explained with the options that were sent.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use control::uapi::client::{self, ClientError};
use control::uapi::proto::{self, errno, PeerSet};
use protocol::allowedips::Prefix;
use zeroize::Zeroizing;

use crate::target::Target;

/// Options of `wgdp set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    what: SetWhat,
}

/// What `wgdp set` changes.
#[derive(Debug, Subcommand)]
enum SetWhat {
    /// Add a peer, or change one: only the options given change (as `wg
    /// set IF peer KEY ...`).
    Peer(PeerArgs),
}

/// Options of `wgdp set peer`.
#[derive(Debug, Args)]
struct PeerArgs {
    /// The peer's public key (base64).
    key: String,
    /// Its allowed IPs, comma-separated, replacing those it has ("" for
    /// none). A prefix another peer has moves to this one.
    #[arg(long, value_name = "IP/LEN,...")]
    allowed_ips: Option<String>,
    /// Its endpoint: IP:PORT, [IPv6]:PORT, or HOST:PORT (resolved here).
    #[arg(long, value_name = "ADDR:PORT")]
    endpoint: Option<String>,
    /// Send a keepalive every SECS seconds (1-65535), or `off`.
    #[arg(long, value_name = "SECS|off")]
    persistent_keepalive: Option<String>,
    /// A file holding the pre-shared key in base64 (as `wg genpsk` writes
    /// it); an empty file, or /dev/null, removes it.
    #[arg(long, value_name = "FILE")]
    preshared_key: Option<PathBuf>,
}

/// Options of `wgdp remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    what: RemoveWhat,
}

/// What `wgdp remove` removes.
#[derive(Debug, Subcommand)]
enum RemoveWhat {
    /// Remove a peer (nothing happens if there is none with that key).
    Peer {
        /// The peer's public key (base64).
        key: String,
    },
}

/// Applies `wgdp set`.
pub fn set(args: &SetArgs) -> Result<(), Box<dyn std::error::Error>> {
    let SetWhat::Peer(peer) = &args.what;
    let change = peer_set(peer)?;
    let sent = sent_options(peer);
    send(&args.target.socket()?, &change, &peer.key, &sent)
}

/// Applies `wgdp remove`.
pub fn remove(args: &RemoveArgs) -> Result<(), Box<dyn std::error::Error>> {
    let RemoveWhat::Peer { key } = &args.what;
    let change = PeerSet {
        public_key: public_key(key)?,
        remove: true,
        ..PeerSet::default()
    };
    send(&args.target.socket()?, &change, key, &["remove"])
}

/// The options `wgdp set peer` was given, by name.
fn sent_options(p: &PeerArgs) -> Vec<&'static str> {
    [
        ("allowed-ips", p.allowed_ips.is_some()),
        ("endpoint", p.endpoint.is_some()),
        ("persistent-keepalive", p.persistent_keepalive.is_some()),
        ("preshared-key", p.preshared_key.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, given)| given.then_some(name))
    .collect()
}

fn public_key(text: &str) -> Result<[u8; 32], String> {
    conf::decode_key(text.trim())
        .ok_or_else(|| format!("peer: {text:?} is not a public key (base64 of 32 bytes)"))
}

/// Checks every option and builds the change.
fn peer_set(p: &PeerArgs) -> Result<PeerSet, String> {
    let mut change = PeerSet {
        public_key: public_key(&p.key)?,
        ..PeerSet::default()
    };
    if let Some(list) = &p.allowed_ips {
        change.replace_allowed_ips = true;
        change.allowed_ips = allowed_ips(list)?;
    }
    if let Some(text) = &p.endpoint {
        change.endpoint = Some(endpoint(text)?);
    }
    if let Some(text) = &p.persistent_keepalive {
        change.persistent_keepalive = Some(keepalive(text)?);
    }
    if let Some(path) = &p.preshared_key {
        change.preshared_key = Some(preshared_key(path)?);
    }
    Ok(change)
}

fn allowed_ips(list: &str) -> Result<Vec<Prefix>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let cidr: conf::Cidr = s.parse().map_err(|e| format!("allowed-ips: {s:?}: {e}"))?;
            if !cidr.is_canonical() {
                return Err(format!(
                    "allowed-ips: {s} has host bits set (did you mean {}?)",
                    cidr.canonical()
                ));
            }
            Prefix::new(cidr.addr, cidr.prefix_len).map_err(|e| format!("allowed-ips: {s}: {e}"))
        })
        .collect()
}

fn endpoint(text: &str) -> Result<SocketAddr, String> {
    let addr = match text.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => text
            .to_socket_addrs()
            .map_err(|e| {
                format!("endpoint: {text:?}: {e} (expected IP:PORT, [IPv6]:PORT or HOST:PORT)")
            })?
            .next()
            .ok_or_else(|| format!("endpoint: {text:?} resolves to no address"))?,
    };
    if addr.port() == 0 {
        return Err(format!("endpoint: {text}: port 0"));
    }
    Ok(addr)
}

fn keepalive(text: &str) -> Result<u16, String> {
    match text.trim() {
        "off" | "0" => Ok(0),
        t => t
            .parse::<u16>()
            .map_err(|_| format!("persistent-keepalive: {text:?} is not off or 1-65535 seconds")),
    }
}

fn preshared_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, String> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| format!("preshared-key: {}: {e}", path.display()))?,
    );
    if text.trim().is_empty() {
        return Ok(Zeroizing::new([0; 32]));
    }
    conf::decode_key(text.trim())
        .map(Zeroizing::new)
        .ok_or_else(|| {
            format!(
                "preshared-key: {} does not hold a key (base64 of 32 bytes)",
                path.display()
            )
        })
}

/// Sends the change; turns a refusal into a message naming what was sent.
fn send(
    socket: &Path,
    change: &PeerSet,
    key: &str,
    sent: &[&str],
) -> Result<(), Box<dyn std::error::Error>> {
    let request = proto::render_set(std::slice::from_ref(change));
    match client::exchange(socket, &request) {
        Ok(_) => Ok(()),
        Err(ClientError::Refused { errno: code, .. }) => {
            Err(explain(code, key.trim(), sent).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// What an errno from wgdp means for a change of peer `key` with options
/// `sent`.
fn explain(code: i32, key: &str, sent: &[&str]) -> String {
    let fields = if sent.is_empty() {
        "the peer".to_owned()
    } else {
        sent.join(", ")
    };
    match code {
        errno::EINVAL => format!(
            "wgdp refused peer {key} (errno {code}, invalid argument): one of {fields} is not \
             acceptable; wgdp's log names the reason"
        ),
        errno::EIO => format!(
            "peer {key}: the change of {fields} is live but not saved: wgdp could not write it \
             to its tunnel table, so a restart loses it (errno {code}; unless wgdp was \
             stopping, when nothing changed); wgdp's log says which"
        ),
        errno::EPROTO => format!(
            "wgdp did not understand the request for peer {key} (errno {code}, protocol error): \
             are wgdp and this command the same version?"
        ),
        errno::EPERM => {
            format!("wgdp does not permit changing {fields} of peer {key} (errno {code})")
        }
        _ => format!("wgdp refused the change of {fields} of peer {key} (errno {code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

    fn args(f: impl FnOnce(&mut PeerArgs)) -> PeerArgs {
        let mut a = PeerArgs {
            key: KEY.into(),
            allowed_ips: None,
            endpoint: None,
            persistent_keepalive: None,
            preshared_key: None,
        };
        f(&mut a);
        a
    }

    #[test]
    fn options_become_the_change_wg_set_would_send() {
        let c = peer_set(&args(|a| {
            a.allowed_ips = Some("10.9.0.9/32, fd00:9::/64".into());
            a.endpoint = Some("[2001:db8::1]:51820".into());
            a.persistent_keepalive = Some("off".into());
        }))
        .expect("valid");
        assert_eq!(c.public_key, conf::decode_key(KEY).unwrap());
        assert!(c.replace_allowed_ips);
        assert_eq!(c.allowed_ips.len(), 2);
        assert_eq!(c.endpoint, Some("[2001:db8::1]:51820".parse().unwrap()));
        assert_eq!(c.persistent_keepalive, Some(0));
        assert!(c.preshared_key.is_none() && !c.remove);

        let none = peer_set(&args(|a| a.allowed_ips = Some(String::new()))).expect("valid");
        assert!(none.replace_allowed_ips && none.allowed_ips.is_empty());
        let untouched = peer_set(&args(|_| {})).expect("valid");
        assert!(!untouched.replace_allowed_ips && untouched.endpoint.is_none());
        let local = peer_set(&args(|a| a.endpoint = Some("localhost:51820".into())))
            .expect("a host name resolves");
        assert!(local.endpoint.is_some_and(|e| e.ip().is_loopback()));
    }

    #[test]
    fn every_bad_value_names_its_option() {
        let cases: [(&str, PeerArgs); 7] = [
            ("peer:", args(|a| a.key = "nope".into())),
            (
                "allowed-ips:",
                args(|a| a.allowed_ips = Some("10.9.0.0/33".into())),
            ),
            (
                "allowed-ips: 10.9.0.5/24 has host bits set (did you mean 10.9.0.0/24?)",
                args(|a| a.allowed_ips = Some("10.9.0.5/24".into())),
            ),
            ("endpoint:", args(|a| a.endpoint = Some("1.2.3.4".into()))),
            ("endpoint:", args(|a| a.endpoint = Some("1.2.3.4:0".into()))),
            (
                "persistent-keepalive:",
                args(|a| a.persistent_keepalive = Some("70000".into())),
            ),
            (
                "preshared-key:",
                args(|a| a.preshared_key = Some("/nonexistent/psk".into())),
            ),
        ];
        for (want, a) in cases {
            let e = peer_set(&a).expect_err(want);
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
    }

    #[test]
    fn preshared_key_files() {
        let dir = std::env::temp_dir().join(format!("wgdp-set-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, format!("{KEY}\n")).unwrap();
        let bad = dir.join("bad");
        std::fs::write(&bad, "short\n").unwrap();
        assert_eq!(
            *preshared_key(&good).unwrap(),
            conf::decode_key(KEY).unwrap()
        );
        assert_eq!(*preshared_key(Path::new("/dev/null")).unwrap(), [0; 32]);
        assert!(preshared_key(&bad)
            .unwrap_err()
            .starts_with("preshared-key:"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errnos_are_explained_with_the_options_sent() {
        let e = explain(errno::EINVAL, KEY, &["allowed-ips", "endpoint"]);
        assert!(
            e.contains("allowed-ips, endpoint") && e.contains("errno 22"),
            "{e}"
        );
        let e = explain(errno::EIO, KEY, &["remove"]);
        assert!(e.contains("tunnel table") && e.contains("errno 5"), "{e}");
        assert!(explain(errno::EPROTO, KEY, &[]).contains("same version"));
        assert!(explain(99, KEY, &[]).contains("errno 99"));
    }
}
