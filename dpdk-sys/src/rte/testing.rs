//! Shared harness for tests that need EAL (enabled by the `test-support`
//! feature; used by this crate's tests and by `dataplane`'s).
//!
//! EAL can be initialised once per process. `cargo nextest` runs every test
//! in its own process and `cargo test` runs a file's tests in one process:
//! the first caller initialises EAL, every other caller reuses it. Names of
//! DPDK objects and kernel interfaces include the process id and a counter,
//! so tests in parallel processes never collide.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::{Eal, Mempool, Port, PortConfig};

/// EAL arguments for tests: no hugepages, no shared config, no PCI scan,
/// three lcores floating over CPUs 0-1 so that two worker lcores exist on
/// any machine (tests of handoff and re-homing run two workers).
pub fn eal_args() -> Vec<String> {
    vec![
        "--no-huge".into(),
        "--no-shconf".into(),
        "-m".into(),
        "256".into(),
        "--no-pci".into(),
        "--lcores=0@(0-1),1@(0-1),2@(0-1)".into(),
        format!("--file-prefix=wgdp-test-{}", std::process::id()),
        "--log-level=lib.eal:error".into(),
    ]
}

/// The process's EAL, initialised on first use.
///
/// EAL creates a runtime directory `/var/run/dpdk/<file-prefix>` even with
/// `--no-shconf`; a static is never dropped, so EAL is never cleaned up and
/// the directory would stay behind after every test process. Without
/// hugepage files or shared config nothing in it is needed after init (its
/// multi-process socket stays bound once unlinked), so it is removed here.
pub fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| {
        let eal = Eal::init(eal_args()).unwrap_or_else(|e| panic!("EAL init: {e}"));
        let runtime = format!("/var/run/dpdk/wgdp-test-{}", std::process::id());
        let _ = std::fs::remove_dir_all(runtime);
        eal
    })
}

/// A name unique in this process and across concurrent test processes.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Asks EAL's telemetry of the process with file prefix `prefix` with
/// DPDK's own client, `dpdk-telemetry.py` (Debian package `dpdk`): one
/// command per line in; one JSON answer per line out.
pub fn telemetry_py(prefix: &str, commands: &[&str]) -> Vec<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("dpdk-telemetry.py")
        .args(["-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py (Debian package dpdk) must be installed");
    let mut stdin = child.stdin.take().expect("stdin");
    for c in commands {
        writeln!(stdin, "{c}").expect("write command");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("dpdk-telemetry.py output");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "dpdk-telemetry.py: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().map(str::to_owned).collect()
}

/// Configures `port` with `queues` RX and TX queues of 64 descriptors
/// from `pool`, and starts it.
pub fn start_small(port: &mut Port, queues: u16, pool: &Mempool) {
    let cfg = PortConfig {
        rx_queues: queues,
        tx_queues: queues,
        rx_descriptors: 64,
        tx_descriptors: 64,
        ..PortConfig::default()
    };
    port.configure(&cfg, pool)
        .unwrap_or_else(|e| panic!("configure {}: {e}", port.name()));
    port.start()
        .unwrap_or_else(|e| panic!("start {}: {e}", port.name()));
}

/// Runs the tool `cmd` with `args`; its success and its output (stdout
/// then stderr). Fails the test when the tool is missing.
pub fn tool_output(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} (iproute2) is needed for this test: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Whether the kernel takes what the TAP PMD needs for a queue rule
/// (`tap_flow.c`): a `multiq` root qdisc and an ingress qdisc on the
/// interface (made at probe; without them the PMD disables rte_flow), and
/// the rule itself as a tc flower filter with a `skbedit queue_mapping`
/// action. Asked of the kernel itself, with `tc` on the loopback of a
/// namespace of our own (deleted again), independent of DPDK. Root only.
pub fn kernel_takes_tap_flow_rules() -> bool {
    let ns = format!("wgdp-flower-{}", std::process::id());
    let (made, text) = tool_output("ip", &["netns", "add", &ns]);
    assert!(made, "ip netns add {ns}: {text}");
    let tc = |args: &str| {
        let mut all = vec!["-n", ns.as_str()];
        all.extend(args.split(' '));
        let (ok, text) = tool_output("tc", &all);
        eprintln!("tc {args}: {}", if ok { "ok" } else { text.trim() });
        ok
    };
    let (ingress, takes) = (
        tc("qdisc add dev lo ingress"),
        tc("qdisc add dev lo root handle 1: multiq")
            && tc(
                "filter add dev lo ingress protocol ip flower dst_ip 10.9.0.0/24 \
                   action skbedit queue_mapping 1",
            ),
    );
    let (deleted, text) = tool_output("ip", &["netns", "delete", &ns]);
    assert!(deleted, "ip netns delete {ns}: {text}");
    assert!(ingress, "tc qdisc add dev lo ingress failed in {ns}");
    takes
}
