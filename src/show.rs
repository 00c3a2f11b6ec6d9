//! `wgdp show`: asks a running wgdp for its state over its UAPI socket
//! (the wgdp-only request `wgdp-show=1`) and prints it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use control::show::{render_text, Show};
use control::uapi::server::SOCKET_DIR;

/// Options of `wgdp show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The interface name (`[interface] name`; default `wgdp0`).
    #[arg(long, short, conflicts_with = "config")]
    interface: Option<String>,
    /// Read the interface name from this tunnel table.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Queries the running instance and prints its state.
pub fn run(args: &ShowArgs) -> Result<(), Box<dyn std::error::Error>> {
    let name = match (&args.interface, &args.config) {
        (Some(name), _) => name.clone(),
        (None, Some(path)) => conf::Config::load(path)?.config.interface.name,
        (None, None) => conf::DEFAULT_INTERFACE_NAME.to_owned(),
    };
    let socket = Path::new(SOCKET_DIR).join(format!("{name}.sock"));
    let mut conn = UnixStream::connect(&socket).map_err(|e| {
        format!(
            "{}: {e} (is wgdp running with interface name {name}?)",
            socket.display()
        )
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.write_all(b"wgdp-show=1\n\n")?;
    let mut answer = String::new();
    let mut buf = [0u8; 65536];
    // The answer ends with an errno line and an empty line.
    while !answer.ends_with("\n\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let (body, errno) = match answer.rfind("errno=") {
        Some(at) => (&answer[..at], answer[at + 6..].trim()),
        None => return Err(format!("{}: truncated answer", socket.display()).into()),
    };
    if errno != "0" {
        return Err(format!(
            "{}: the request failed with errno {errno}",
            socket.display()
        )
        .into());
    }
    let show: Show = serde_json::from_str(body.trim())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&show)?);
    } else {
        print!("{}", render_text(&show));
    }
    Ok(())
}
