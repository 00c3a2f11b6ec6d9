//! `wgdp show`: asks a running wgdp for its state over its UAPI socket
//! (the wgdp-only request `wgdp-show=1`, or `wgdp-show=counters` without
//! the peers) and prints it.

use clap::Args;
use control::show::{render_text, Show};
use control::uapi::client;

use crate::target::Target;

/// Options of `wgdp show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    target: Target,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Leave the peers out: the interface and the counters only, in time
    /// independent of the peer count (with 100,000 peers the full document
    /// takes seconds to build).
    #[arg(long)]
    no_peers: bool,
}

/// Queries the running instance and prints its state.
pub fn run(args: &ShowArgs) -> Result<(), Box<dyn std::error::Error>> {
    let socket = args.target.socket()?;
    let request = if args.no_peers {
        "wgdp-show=counters\n\n"
    } else {
        "wgdp-show=1\n\n"
    };
    let body = client::exchange(&socket, request)?;
    let show: Show = serde_json::from_str(body.trim())
        .map_err(|e| format!("{}: not a wgdp show document: {e}", socket.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&show)?);
    } else {
        print!("{}", render_text(&show));
    }
    Ok(())
}
