//! `wgdp import`: converts another tool's configuration into a tunnel table.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};

/// Options of `wgdp import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    format: Format,
}

/// The formats `wgdp import` reads.
#[derive(Debug, Subcommand)]
enum Format {
    /// A wg-quick / wg(8) INI file (e.g. /etc/wireguard/wg0.conf). The
    /// table is written with empty port devices and addresses that `wgdp
    /// check` rejects until they are filled in; what has no equivalent is
    /// listed on stderr as "not mapped".
    WgQuick(WgQuickArgs),
}

/// Options of `wgdp import wg-quick`.
#[derive(Debug, Args)]
struct WgQuickArgs {
    /// The wg-quick file.
    file: PathBuf,
    /// Write the table here (created with mode 0600; an existing file is
    /// never overwritten) instead of to stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Converts the file; prints the table (or writes it to `--output`), then
/// what was not mapped and the notes on stderr.
pub fn run(args: &ImportArgs) -> Result<(), Box<dyn std::error::Error>> {
    let Format::WgQuick(args) = &args.format;
    let origin = args.file.display().to_string();
    let imported = match conf::import_wg_quick_file(&args.file) {
        Ok(imported) => imported,
        Err(errors) => {
            for e in errors.errors() {
                eprintln!("{e}");
            }
            let n = errors.errors().len();
            let s = if n == 1 { "" } else { "s" };
            return Err(format!("{origin}: {n} error{s}, nothing written").into());
        }
    };
    match &args.output {
        Some(out) => write_new(out, imported.toml.as_bytes())
            .map_err(|e| format!("{}: {e}", out.display()))?,
        None => io::stdout().write_all(imported.toml.as_bytes())?,
    }
    for u in &imported.unmapped {
        eprintln!("not mapped: {u}");
    }
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
    Ok(())
}

/// Creates `path` (mode 0600: it holds the private key), refusing an
/// existing file, and writes `bytes` to disk.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(e.kind(), "exists; refusing to overwrite it")
        } else {
            e
        }
    })?;
    file.write_all(bytes)?;
    file.sync_all()
}
