//! `wgdp show`: asks a running wgdp for its state over its UAPI socket
//! (the wgdp-only request `wgdp-show=1`) and prints it.

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
}

/// Queries the running instance and prints its state.
pub fn run(args: &ShowArgs) -> Result<(), Box<dyn std::error::Error>> {
    let socket = args.target.socket()?;
    let body = client::exchange(&socket, "wgdp-show=1\n\n")?;
    let show: Show = serde_json::from_str(body.trim())
        .map_err(|e| format!("{}: not a wgdp show document: {e}", socket.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&show)?);
    } else {
        print!("{}", render_text(&show));
    }
    Ok(())
}
