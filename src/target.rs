//! Which running wgdp a command talks to: `--interface NAME`, or the name
//! in `--config FILE`, or the default `wgdp0`; its UAPI socket.

use std::path::PathBuf;

use clap::Args;

/// The interface options shared by `show`, `set` and `remove`.
#[derive(Debug, Args)]
pub struct Target {
    /// The interface name (`[interface] name`; default `wgdp0`).
    #[arg(long, short, global = true, conflicts_with = "config")]
    interface: Option<String>,
    /// Read the interface name from this tunnel table.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
}

impl Target {
    /// The UAPI socket of the chosen interface.
    pub fn socket(&self) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let name = match (&self.interface, &self.config) {
            (Some(name), _) => name.clone(),
            (None, Some(path)) => conf::Config::load(path)?.config.interface.name,
            (None, None) => conf::DEFAULT_INTERFACE_NAME.to_owned(),
        };
        Ok(control::uapi::client::socket_path(&name))
    }
}
