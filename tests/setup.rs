//! `wgdp setup` on this machine (virtual devices, no isolated CPUs, no
//! IOMMU): `--dry-run` reports what it finds and changes nothing; a real
//! run reserves a hugepage and mounts a hugetlbfs through
//! `dpdk-hugepages.py`, and the test puts both back. Needs root.
#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

/// A fresh directory, removed (and unmounted, if it was mounted) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wgdp-setup-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// A tunnel table on two `net_null` vdevs with these EAL arguments.
    fn config(&self, eal: &str) -> PathBuf {
        let eal: Vec<String> = eal.split_whitespace().map(|a| format!("{a:?}")).collect();
        let text = format!(
            "[interface]\nprivate_key = \"{KEY}\"\nlisten_port = 51820\n\
             [dpdk]\neal_args = [{}]\nworkers = [1]\n\
             [ports.tunnel]\ndevice = \"net_null0\"\naddress = [\"192.0.2.1/24\"]\ntap = \"wgdp-st0\"\n\
             [ports.plaintext]\ndevice = \"net_null1\"\naddress = [\"10.0.0.1/24\"]\ntap = \"wgdp-st1\"\n",
            eal.join(", ")
        );
        let path = self.0.join("wgdp.toml");
        fs::write(&path, text).expect("write config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let huge = self.0.join("huge");
        if mounts().contains(&format!("{} hugetlbfs", huge.display())) {
            let _ = Command::new("umount").arg(&huge).status();
        }
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn require_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "tests/setup.rs needs root (it reserves hugepages and mounts hugetlbfs)"
    );
}

fn setup(config: &Path, dry_run: bool) -> (Output, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgdp"));
    cmd.args(["setup", "--config"]).arg(config);
    if dry_run {
        cmd.arg("--dry-run");
    }
    let out = cmd.output().expect("run wgdp setup");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out, text)
}

/// The NUMA node of CPU 1 (the tests' worker), where sysfs shows one:
/// setup reserves hugepages there.
fn worker_node() -> Option<u32> {
    fs::read_dir("/sys/devices/system/cpu/cpu1")
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
}

/// The 2 MB hugepage count setup works on: the worker's node's, or the
/// overall one.
fn pool() -> PathBuf {
    match worker_node() {
        Some(n) => {
            format!("/sys/devices/system/node/node{n}/hugepages/hugepages-2048kB/nr_hugepages")
                .into()
        }
        None => "/proc/sys/vm/nr_hugepages".into(),
    }
}

fn hugepages() -> u64 {
    fs::read_to_string(pool())
        .expect("read nr_hugepages")
        .trim()
        .parse()
        .expect("nr_hugepages is a number")
}

/// `--node N` as setup passes it to dpdk-hugepages.py, or nothing.
fn node_arg() -> String {
    worker_node()
        .map(|n| format!(" --node {n}"))
        .unwrap_or_default()
}

fn mounts() -> String {
    fs::read_to_string("/proc/mounts").expect("read /proc/mounts")
}

fn isolated(cpu: u32) -> bool {
    let list = fs::read_to_string("/sys/devices/system/cpu/isolated").unwrap_or_default();
    list.trim().split(',').filter(|p| !p.is_empty()).any(|p| {
        let (lo, hi) = p.split_once('-').unwrap_or((p, p));
        (lo.parse().unwrap_or(u32::MAX)..=hi.parse().unwrap_or(0)).contains(&cpu)
    })
}

/// The lines of `text` that start with `prefix`.
fn lines<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// One test, so that the dry run's "nothing changed" cannot see the real
/// run's changes (nextest runs the tests of a binary in parallel).
#[test]
fn dry_run_changes_nothing_then_a_real_run_prepares_hugepages() {
    require_root();
    dry_run_reports_and_changes_nothing();
    real_run_reserves_and_mounts_hugepages();
}

fn dry_run_reports_and_changes_nothing() {
    let dir = TempDir::new("dry");
    let huge = dir.0.join("huge");
    let want = hugepages() + 1000;
    let config = dir.config(&format!(
        "-l 0-1 -m {} --huge-dir {}",
        want * 2,
        huge.display()
    ));
    let (before_pages, before_mounts) = (hugepages(), mounts());
    let (out, text) = setup(&config, true);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(
        hugepages(),
        before_pages,
        "a dry run reserved hugepages\n{text}"
    );
    assert_eq!(
        mounts(),
        before_mounts,
        "a dry run mounted something\n{text}"
    );
    assert!(!huge.exists(), "a dry run created the mount point");

    let would = lines(&text, "would hugepages: ");
    assert_eq!(would.len(), 2, "{text}");
    assert!(
        would[0].contains(&format!(
            "`dpdk-hugepages.py --pagesize 2048K --reserve {}K{}`",
            want * 2048,
            node_arg()
        )),
        "{text}"
    );
    assert!(
        would[1].contains(&format!("--mount --directory {}`", huge.display())),
        "{text}"
    );
    assert_eq!(
        lines(&text, "ok    port ").len(),
        2,
        "both vdevs need no binding\n{text}"
    );
    assert!(text.contains("ok    vfio: not needed"), "{text}");
    let cpu = lines(&text, "warn  cpu worker lcore 1: CPU 1 is not isolated");
    assert_eq!(cpu.len(), usize::from(!isolated(1)), "{text}");
    assert!(
        text.ends_with("0 failed (dry run: nothing changed)\n"),
        "{text}"
    );
}

fn real_run_reserves_and_mounts_hugepages() {
    let dir = TempDir::new("real");
    let huge = dir.0.join("huge");
    let before = hugepages();
    let want = before + 1;
    let config = dir.config(&format!(
        "-l 0-1 -m {} --huge-dir {}",
        want * 2,
        huge.display()
    ));
    let (out, text) = setup(&config, false);
    // Put the reservation back whatever happened (the extra page is free).
    let after = hugepages();
    fs::write(pool(), format!("{before}\n")).expect("restore nr_hugepages");
    let mounted = mounts().contains(&format!("{} hugetlbfs", huge.display()));
    drop(dir);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(after, want, "{text}");
    assert!(mounted, "{text}");
    let done = lines(&text, "done  hugepages: ");
    assert_eq!(done.len(), 2, "{text}");
    assert!(
        done[0].contains(&format!("{want} pages reserved")),
        "{text}"
    );
    assert!(done[1].ends_with(": mounted"), "{text}");
    assert!(text.ends_with(" 0 failed\n"), "{text}");

    // Run again: nothing left to do.
    let dir = TempDir::new("again");
    let config = dir.config("-l 0-1 -m 2 --in-memory");
    let (out, text) = setup(&config, false);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(lines(&text, "done").is_empty(), "{text}");
    assert!(
        text.contains("ok    hugepages: no hugetlbfs mount needed (--in-memory in eal_args)"),
        "{text}"
    );
}
