//! `wgdp run`: the concentrator.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use control::uapi::server::{Persist, PersistFn};

use crate::daemon::{run as run_concentrator, RunOptions};

/// Options of `wgdp run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tunnel table (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// Print the counters report every SECS seconds (and always on exit).
    #[arg(long, value_name = "SECS")]
    report_interval: Option<f64>,
}

/// Loads the table, runs until SIGINT/SIGTERM, prints the final report.
pub fn run(args: &RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let loaded = conf::Config::load(&args.config)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let report_interval = match args.report_interval {
        Some(s) if s > 0.0 && s <= 86_400.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(format!("--report-interval must be in (0, 86400] seconds, got {s}").into())
        }
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))?;
    }
    let table = args.config.clone();
    let persist: PersistFn = Box::new(move |changes: &Persist| write_back(&table, changes));
    let opts = RunOptions {
        report_interval,
        interface: loaded.config.interface.name.clone(),
        persist: Some(persist),
    };
    let finished = run_concentrator(&loaded.config, opts, &stop)?;
    print!("{}", finished.report);
    println!("mbufs_in_use {}", finished.mbufs_in_use);
    if finished.mbufs_in_use != 0 {
        return Err(format!(
            "{} mbufs were not returned to the pool",
            finished.mbufs_in_use
        )
        .into());
    }
    Ok(())
}

/// Writes peers changed through the UAPI back to the tunnel table, keeping
/// its comments and layout; the file is replaced atomically.
fn write_back(path: &std::path::Path, changes: &Persist) -> Result<(), String> {
    let mut file = conf::TableFile::open(path).map_err(|e| e.to_string())?;
    file.remove_peers(&changes.removed);
    file.upsert_peers(&changes.upserted);
    file.save().map_err(|e| format!("{}: {e}", path.display()))
}
