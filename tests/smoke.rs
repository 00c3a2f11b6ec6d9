//! `wgdp smoke` end to end: the real binary, real EAL, two net_null vdevs.

use std::process::Command;

fn wgdp() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wgdp"))
}

/// EAL arguments with a file prefix of the test's own: processes sharing a
/// prefix share `/var/run/dpdk/<prefix>`, which each removes when it ends
/// (nextest runs these tests in parallel).
fn eal(extra: &str, test: &str) -> String {
    format!(
        "--no-huge --no-shconf --no-pci --file-prefix=wgdp-smoke-{test}-{} {extra}",
        std::process::id()
    )
}

fn two_lcores(test: &str) -> String {
    eal("-m 256 --lcores=0@(0-1),1@(0-1)", test)
}

#[test]
fn smoke_forwards_and_prints_port_stats() {
    let out = wgdp()
        .args([
            "smoke",
            "--seconds",
            "0.3",
            "--mbufs",
            "2047",
            "--eal",
            &two_lcores("fwd"),
        ])
        .output()
        .expect("run wgdp");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let forwarded: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("forwarded "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'forwarded N' line in:\n{stdout}"));
    assert!(forwarded > 0);
    assert!(stdout.contains("driver net_null"), "{stdout}");
    // Port statistics lines: "port N NAME rx R pkts .. bytes tx T pkts ..".
    let stats: Vec<(u64, u64)> = stdout
        .lines()
        .filter(|l| l.starts_with("port ") && l.contains(" pkts "))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let num = |key: &str| -> u64 {
                let i = w.iter().position(|x| *x == key).expect("field");
                w[i + 1].parse().expect("count")
            };
            (num("rx"), num("tx"))
        })
        .collect();
    assert_eq!(stats.len(), 2, "stats for both ports:\n{stdout}");
    let ((rx_a, tx_a), (rx_b, tx_b)) = (stats[0], stats[1]);
    assert_eq!(rx_a, tx_b, "what A received went out of B");
    assert_eq!(rx_b, tx_a, "what B received went out of A");
    assert_eq!(rx_a + rx_b, forwarded);
}

#[test]
fn smoke_reports_a_bad_port_in_dpdks_words() {
    let out = wgdp()
        .args([
            "smoke",
            "--seconds",
            "0.1",
            "--port-a",
            "net_doesnotexist0",
            "--eal",
            &two_lcores("badport"),
        ])
        .output()
        .expect("run wgdp");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rte_dev_probe(net_doesnotexist0)"),
        "{stderr}"
    );
}

#[test]
fn smoke_without_a_worker_lcore_says_so() {
    let out = wgdp()
        .args([
            "smoke",
            "--eal",
            &eal("-m 128 --lcores=0@(0-1)", "noworker"),
        ])
        .output()
        .expect("run wgdp");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a worker lcore"), "{stderr}");
}

#[test]
fn version_names_git_and_dpdk() {
    let out = wgdp().arg("--version").output().expect("run wgdp");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("wgdp "), "{s}");
    assert!(s.contains("DPDK 2"), "{s}");
}
