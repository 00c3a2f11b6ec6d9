//! `wgdp`: the command line of the DPDK WireGuard concentrator.

mod bench;
mod check;
mod daemon;
mod genkeys;
mod import;
mod run;
mod set;
mod setup;
mod show;
mod smoke;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("WGDP_GIT_COMMIT"),
    ", DPDK ",
    env!("WGDP_DPDK_VERSION"),
    ")"
);

/// DPDK poll-mode WireGuard VPN concentrator.
///
/// Logs go to stderr, filtered by `RUST_LOG` (default `info`; e.g.
/// `RUST_LOG=control=debug`).
#[derive(Debug, Parser)]
#[command(name = "wgdp", version = VERSION, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

/// Installs the log subscriber: stderr, `RUST_LOG` filter.
fn init_logs(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the concentrator from a tunnel table until SIGINT or SIGTERM,
    /// then print the counters and check that every mbuf came back.
    Run(run::RunArgs),
    /// Show a running wgdp's interface, peers (with their owner lcore), per
    /// lcore and per port counters, and drop reasons.
    Show(show::ShowArgs),
    /// Add or change a peer of a running wgdp, live (like `wg set IF peer
    /// KEY ...`); the change is written back to its tunnel table.
    Set(set::SetArgs),
    /// Remove a peer from a running wgdp, live (like `wg set IF peer KEY
    /// remove`); the removal is written back to its tunnel table.
    Remove(set::RemoveArgs),
    /// Forward packets between two DPDK ports for a while and print port
    /// statistics: checks that EAL, hugepages, the PMDs and the ports work.
    /// With no options it runs on two embedded `net_null` vdevs.
    Smoke(smoke::SmokeArgs),
    /// Validate a tunnel table exactly as `run` would load it, without
    /// starting anything: prints a summary, or every error with its
    /// file:line:column and field, and exits 1.
    Check(check::CheckArgs),
    /// Convert another tool's configuration into a tunnel table.
    Import(import::ImportArgs),
    /// Prepare this server for a tunnel table: reserve and mount hugepages,
    /// bind the PCI NICs (vfio-pci; mlx5 stays on its kernel driver), check
    /// the IOMMU, vfio, CPU isolation and NUMA placement, and print what
    /// was done and what could not be. `--dry-run` changes nothing.
    Setup(setup::SetupArgs),
    /// Print fresh key pairs, `PRIVATE PUBLIC` per line (for building
    /// large test tables; see scripts/bench-scale.sh).
    #[command(hide = true)]
    GenKeys(genkeys::GenKeysArgs),
    /// Measure the data path: the worker loop on vdevs, per direction,
    /// packet size, peer count and worker count, against the AEAD floor.
    Bench(bench::BenchArgs),
    /// The peers of a single wgdp driven by pktgen-dpdk
    /// (bench/pktgen/run.sh): their table entries, and real handshakes with
    /// wgdp over its tunnel port before pktgen takes the port over.
    #[command(hide = true)]
    BenchPeers(bench::pktgen_peers::BenchPeersArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Show(args) => show::run(&args),
        Command::Set(args) => set::set(&args),
        Command::Remove(args) => set::remove(&args),
        Command::Smoke(args) => smoke::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Setup(args) => setup::run(&args),
        Command::GenKeys(args) => genkeys::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::BenchPeers(args) => bench::pktgen_peers::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wgdp: {e}");
            ExitCode::FAILURE
        }
    }
}
