//! `wgdp check`: validates a tunnel table without starting anything.

use std::path::{Path, PathBuf};

use clap::Args;

/// Options of `wgdp check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The tunnel table (TOML), loaded exactly as `wgdp run` loads it
    /// (the private key file and its permissions included).
    #[arg(long, short)]
    config: PathBuf,
}

/// Loads the table; on success prints a summary line and the warnings, on
/// failure prints every error, one per line, and fails.
pub fn run(args: &CheckArgs) -> Result<(), Box<dyn std::error::Error>> {
    let file = args.config.display();
    let loaded = load(&args.config)?;
    let c = &loaded.config;
    let prefixes: usize = c.peers.iter().map(|p| p.allowed_ips.len()).sum();
    // Groups only when there are some: the line of a table without them
    // stays what scripts already read.
    let groups = if c.groups.is_empty() {
        String::new()
    } else {
        let routed: usize = c.groups.iter().map(|g| g.prefixes.len()).sum();
        format!(", {} groups routing {routed} prefixes", c.groups.len())
    };
    println!(
        "{file}: ok: {} peers, {prefixes} allowed-ip prefixes{groups}, {} workers",
        c.peers.len(),
        c.dpdk.workers.len()
    );
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

/// Loads the table as `run` does; on failure prints every error, one per
/// line, and returns a summary error (`FILE: N errors`).
pub fn load(path: &Path) -> Result<conf::Loaded, Box<dyn std::error::Error>> {
    conf::Config::load(path).map_err(|errors| {
        for e in errors.errors() {
            eprintln!("{e}");
        }
        let n = errors.errors().len();
        let s = if n == 1 { "" } else { "s" };
        format!("{}: {n} error{s}", path.display()).into()
    })
}
