//! `wgdp setup`: prepares a server for the tunnel table's `[dpdk]` and
//! `[ports.*]`: reserves and mounts hugepages (`dpdk-hugepages.py`), checks
//! the IOMMU and vfio, binds the PCI NICs that need it to vfio-pci
//! (`dpdk-devbind.py`; mlx5 stays on its kernel driver), and checks that the
//! worker lcores are isolated and on the NICs' NUMA node. It prints one line
//! per finding; `--dry-run` changes nothing and says what it would do.

mod eal;
mod host;
mod steps;

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use clap::Args;

pub use host::Host;

/// Options of `wgdp setup`.
#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The tunnel table (TOML) whose `[dpdk]` and `[ports.*]` to prepare for.
    #[arg(long, short)]
    config: PathBuf,
    /// Print what would be done, and every check, without changing anything.
    #[arg(long)]
    dry_run: bool,
}

/// How one finding turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Already as wgdp needs it.
    Ok,
    /// Changed by this run.
    Done,
    /// Would be changed (dry run).
    Would,
    /// Works, but not as fast or as safe as it could be.
    Warn,
    /// wgdp will not run (or not on this device) until this is fixed.
    Fail,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Done => "done",
            Outcome::Would => "would",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        }
    }
}

/// One line of the report: what was checked or done, and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How it turned out.
    pub outcome: Outcome,
    /// What it is about: `hugepages`, `port tunnel`, `vfio`, `cpu`, ...
    pub area: String,
    /// What was found or done, and what to do about it.
    pub text: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<5} {}: {}",
            self.outcome.label(),
            self.area,
            self.text
        )
    }
}

/// Runs a command that changes the host; `Err` carries what it printed.
pub trait Exec {
    /// Runs `argv`; `Ok` when it exited 0.
    fn exec(&mut self, argv: &[String]) -> Result<(), String>;
}

/// Runs commands for real.
struct System;

impl Exec for System {
    fn exec(&mut self, argv: &[String]) -> Result<(), String> {
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned()
            + String::from_utf8_lossy(&out.stdout).trim();
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{}` failed ({}): {said}",
                argv.join(" "),
                out.status
            ))
        }
    }
}

/// The findings of one run, and how it changes the host.
pub struct Setup<'a> {
    host: Host,
    dry_run: bool,
    exec: &'a mut dyn Exec,
    findings: Vec<Finding>,
}

impl<'a> Setup<'a> {
    /// A run against `host`; with `dry_run`, `exec` is never called.
    pub fn new(host: Host, dry_run: bool, exec: &'a mut dyn Exec) -> Self {
        Setup {
            host,
            dry_run,
            exec,
            findings: Vec::new(),
        }
    }

    fn note(&mut self, outcome: Outcome, area: &str, text: impl Into<String>) {
        self.findings.push(Finding {
            outcome,
            area: area.to_owned(),
            text: text.into(),
        });
    }

    /// Changes the host with `argv` (or, in a dry run, says it would),
    /// then asks `done` whether it worked. `what` says what the change is.
    fn change(
        &mut self,
        area: &str,
        what: &str,
        argv: Vec<String>,
        done: impl FnOnce(&Host) -> Result<String, String>,
    ) -> bool {
        let shown = argv.join(" ");
        if self.dry_run {
            self.note(Outcome::Would, area, format!("{what}: would run `{shown}`"));
            return false;
        }
        let ran = self.exec.exec(&argv);
        match ran.and_then(|()| done(&self.host)) {
            Ok(result) => {
                self.note(
                    Outcome::Done,
                    area,
                    format!("{what}: ran `{shown}`: {result}"),
                );
                true
            }
            Err(e) => {
                self.note(Outcome::Fail, area, format!("{what}: could not: {e}"));
                false
            }
        }
    }

    /// Every check and change for `config`, in order: hugepages, NICs (with
    /// the IOMMU and vfio where a NIC needs them), CPUs.
    pub fn run(mut self, config: &conf::Config) -> Vec<Finding> {
        let ports = steps::classify_ports(&self.host, config);
        self.hugepages(config, &ports);
        self.nics(&ports);
        self.cpus(config, &ports);
        self.findings
    }
}

/// Loads the table, runs the set-up, prints the findings and a summary.
pub fn run(args: &SetupArgs) -> Result<(), Box<dyn std::error::Error>> {
    let loaded = crate::check::load(&args.config)?;
    let mut system = System;
    let findings = Setup::new(Host::default(), args.dry_run, &mut system).run(&loaded.config);
    for f in &findings {
        println!("{f}");
    }
    let count = |o: Outcome| findings.iter().filter(|f| f.outcome == o).count();
    let failed = count(Outcome::Fail);
    println!(
        "setup: {} ok, {} done, {} would change, {} warnings, {failed} failed{}",
        count(Outcome::Ok),
        count(Outcome::Done),
        count(Outcome::Would),
        count(Outcome::Warn),
        if args.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    if failed > 0 {
        return Err(format!("setup: {failed} problem(s) to fix (the `fail` lines)").into());
    }
    Ok(())
}
