//! `wgdp check`: validates a tunnel table without starting anything.

use std::path::PathBuf;

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
    let loaded = match conf::Config::load(&args.config) {
        Ok(loaded) => loaded,
        Err(errors) => {
            for e in errors.errors() {
                eprintln!("{e}");
            }
            let n = errors.errors().len();
            let s = if n == 1 { "" } else { "s" };
            return Err(format!("{file}: {n} error{s}").into());
        }
    };
    let c = &loaded.config;
    let prefixes: usize = c.peers.iter().map(|p| p.allowed_ips.len()).sum();
    println!(
        "{file}: ok: {} peers, {prefixes} allowed-ip prefixes, {} workers",
        c.peers.len(),
        c.dpdk.workers.len()
    );
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
