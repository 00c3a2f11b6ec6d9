//! `wgdp setup`'s steps against fake sysfs trees: every branch a real
//! server can take (mlx5, Intel, no IOMMU, NUMA, isolation), which this
//! machine (virtual devices only) cannot show.

use super::*;
use crate::setup::host::fake::FakeRoot;
use crate::setup::{Exec, Finding, Outcome, Setup};

/// What a command does to the fake tree.
type Effect = Box<dyn FnMut(&[String])>;

/// Records the commands and applies their effect to the fake tree.
#[derive(Default)]
struct Recorder {
    ran: Vec<String>,
    effect: Option<Effect>,
    fail: bool,
}

impl Exec for Recorder {
    fn exec(&mut self, argv: &[String]) -> Result<(), String> {
        self.ran.push(argv.join(" "));
        if self.fail {
            return Err("refused".into());
        }
        if let Some(f) = &mut self.effect {
            f(argv);
        }
        Ok(())
    }
}

fn config(eal: &str, workers: &str, tunnel: &str, plaintext: &str) -> conf::Config {
    let text = format!(
        r#"
[interface]
private_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
listen_port = 51820
[dpdk]
eal_args = [{eal}]
workers = [{workers}]
[ports.tunnel]
device = "{tunnel}"
address = ["192.0.2.1/24"]
tap = "t0"
[ports.plaintext]
device = "{plaintext}"
address = ["10.0.0.1/24"]
tap = "t1"
"#
    );
    conf::Config::from_str(&text, "test.toml").expect("valid test config")
}

fn setup(root: &FakeRoot, dry: bool, exec: &mut dyn Exec, c: &conf::Config) -> Vec<Finding> {
    Setup::new(Host::at(&root.0), dry, exec).run(c)
}

/// The findings with `outcome` whose area starts with `area`, as text.
fn lines(f: &[Finding], outcome: Outcome, area: &str) -> Vec<String> {
    f.iter()
        .filter(|x| x.outcome == outcome && x.area.starts_with(area))
        .map(|x| x.text.clone())
        .collect()
}

#[test]
fn pci_addresses_are_recognised() {
    assert_eq!(pci_address("0000:3B:00.1").as_deref(), Some("0000:3b:00.1"));
    assert_eq!(pci_address("3b:00.0").as_deref(), Some("0000:3b:00.0"));
    assert_eq!(pci_address("net_tap0"), None);
    assert_eq!(pci_address("0000:3b:00.8"), None);
    assert_eq!(pci_address("a:b:c"), None);
}

#[test]
fn mlx5_stays_on_its_driver_and_needs_no_vfio() {
    let f = FakeRoot::new(1024, 8);
    for (addr, ib) in [("0000:3b:00.0", "mlx5_0"), ("0000:3b:00.1", "mlx5_1")] {
        f.pci(addr, "0x15b3", Some("mlx5_core"), 0);
        f.dir(&format!("sys/bus/pci/devices/{addr}/infiniband/{ib}"));
    }
    f.dir("sys/bus/pci/devices/0000:3b:00.0/net/ens1f0np0");
    f.file("proc/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n");
    let c = config(r#""-l", "0-2""#, "1, 2", "0000:3b:00.0", "3b:00.1");
    let mut rec = Recorder::default();
    let out = setup(&f, false, &mut rec, &c);
    assert!(rec.ran.is_empty(), "{:?}", rec.ran);
    let ports = lines(&out, Outcome::Ok, "port");
    assert_eq!(ports.len(), 2, "{out:#?}");
    assert!(
        ports[0].contains("stays on mlx5_core") && ports[0].contains("ip link set ens1f0np0 up")
    );
    assert!(lines(&out, Outcome::Ok, "vfio")[0].starts_with("not needed"));
    assert!(lines(&out, Outcome::Ok, "hugepages")[0].contains("on NUMA node 0"));
    assert!(lines(&out, Outcome::Fail, "").is_empty(), "{out:#?}");
}

#[test]
fn mlx5_without_rdma_device_fails() {
    let f = FakeRoot::new(1024, 4);
    f.pci("0000:3b:00.0", "0x15b3", Some("mlx5_core"), 0);
    f.pci("0000:3b:00.1", "0x15b3", None, 0);
    let c = config(r#""--in-memory""#, "1", "0000:3b:00.0", "0000:3b:00.1");
    let out = setup(&f, true, &mut Recorder::default(), &c);
    let fails = lines(&out, Outcome::Fail, "port");
    assert!(fails[0].contains("modprobe mlx5_ib"), "{fails:?}");
    assert!(fails[1].contains("modprobe mlx5_core"), "{fails:?}");
}

#[test]
fn intel_nics_are_bound_to_vfio_pci() {
    let f = FakeRoot::new(1024, 4);
    f.pci("0000:5e:00.0", "0x8086", Some("ice"), 0);
    f.dir("sys/bus/pci/devices/0000:5e:00.0/net/ens2f0");
    f.pci("0000:5e:00.1", "0x8086", Some("ice"), 0);
    f.dir("sys/kernel/iommu_groups/12");
    f.file("proc/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n");
    let c = config(r#""-l", "0-1""#, "1", "0000:5e:00.0", "0000:5e:00.1");

    // Dry run: says what it would run, runs nothing.
    let mut rec = Recorder::default();
    let out = setup(&f, true, &mut rec, &c);
    assert!(rec.ran.is_empty());
    let would: Vec<String> = lines(&out, Outcome::Would, "");
    assert_eq!(would.len(), 3, "{out:#?}");
    assert!(would[0].contains("`modprobe vfio-pci`"));
    assert!(would[1].contains("bind from ice to vfio-pci (its kernel interface ens2f0 goes away)"));
    assert!(would[1].contains("`dpdk-devbind.py --bind vfio-pci 0000:5e:00.0`"));
    assert!(would[2].contains("`dpdk-devbind.py --bind vfio-pci 0000:5e:00.1`"));
    assert!(lines(&out, Outcome::Ok, "iommu")[0].contains("IOMMU groups present"));
    assert!(lines(&out, Outcome::Fail, "").is_empty(), "{out:#?}");

    // For real: the module appears, the NICs move.
    let root = f.0.clone();
    let mut rec = Recorder {
        effect: Some(Box::new(move |argv: &[String]| {
            let drv = root.join("sys/bus/pci/drivers/vfio-pci");
            std::fs::create_dir_all(&drv).unwrap();
            std::fs::create_dir_all(root.join("dev/vfio")).unwrap();
            std::fs::write(root.join("dev/vfio/vfio"), "").unwrap();
            if argv[0] == "dpdk-devbind.py" {
                let link = root.join(format!("sys/bus/pci/devices/{}/driver", argv[3]));
                std::fs::remove_file(&link).unwrap();
                std::os::unix::fs::symlink(drv, link).unwrap();
            }
        })),
        ..Recorder::default()
    };
    let out = setup(&f, false, &mut rec, &c);
    assert_eq!(
        rec.ran,
        vec![
            "modprobe vfio-pci",
            "dpdk-devbind.py --bind vfio-pci 0000:5e:00.0",
            "dpdk-devbind.py --bind vfio-pci 0000:5e:00.1"
        ]
    );
    let done = lines(&out, Outcome::Done, "");
    assert_eq!(done.len(), 3, "{out:#?}");
    assert!(done[1].ends_with(": bound"));
    assert!(lines(&out, Outcome::Fail, "").is_empty(), "{out:#?}");

    // Again: nothing left to do.
    let mut rec = Recorder::default();
    let out = setup(&f, false, &mut rec, &c);
    assert!(rec.ran.is_empty(), "{:?}", rec.ran);
    assert_eq!(lines(&out, Outcome::Ok, "port").len(), 2, "{out:#?}");
    assert!(lines(&out, Outcome::Ok, "port tunnel")[0].contains("bound to vfio-pci"));
}

#[test]
fn no_iommu_stops_the_binding() {
    let f = FakeRoot::new(1024, 4);
    f.pci("0000:5e:00.0", "0x8086", Some("i40e"), 0);
    f.dir("sys/bus/pci/drivers/vfio-pci");
    let c = config(r#""--in-memory""#, "1", "0000:5e:00.0", "net_null0");
    let mut rec = Recorder::default();
    let out = setup(&f, false, &mut rec, &c);
    assert!(rec.ran.is_empty(), "{:?}", rec.ran);
    assert!(lines(&out, Outcome::Fail, "iommu")[0].contains("intel_iommu=on"));
    assert!(lines(&out, Outcome::Fail, "vfio")[0].contains("/dev/vfio/vfio"));
    assert!(lines(&out, Outcome::Fail, "port tunnel")[0].contains("cannot bind"));
    assert!(lines(&out, Outcome::Ok, "port plaintext net_null0")[0].contains("virtual device"));

    // With vfio's no-IOMMU mode it binds, with a warning.
    f.file(
        "sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
        "Y\n",
    );
    f.file("dev/vfio/vfio", "");
    let out = setup(&f, false, &mut rec, &c);
    assert!(lines(&out, Outcome::Warn, "iommu")[0].contains("unsafe no-IOMMU"));
    assert_eq!(
        rec.ran,
        vec!["dpdk-devbind.py --bind vfio-pci 0000:5e:00.0"]
    );
    // The fake NIC did not move: the binding is reported as failed.
    assert!(lines(&out, Outcome::Fail, "port tunnel")[0].contains("still on i40e"));
}

#[test]
fn missing_pci_device_fails() {
    let f = FakeRoot::new(1024, 4);
    let c = config(r#""--no-huge""#, "1", "0000:af:00.0", "net_null0");
    let out = setup(&f, true, &mut Recorder::default(), &c);
    assert!(lines(&out, Outcome::Fail, "port tunnel")[0].contains("no PCI device 0000:af:00.0"));
    assert!(lines(&out, Outcome::Ok, "hugepages")[0].contains("--no-huge"));
}

#[test]
fn hugepages_are_reserved_and_mounted_when_short() {
    let f = FakeRoot::new(16, 4);
    let c = config(
        r#""-l", "0-1", "-m", "1024""#,
        "1",
        "net_null0",
        "net_null1",
    );
    let mut rec = Recorder::default();
    let out = setup(&f, true, &mut rec, &c);
    let would = lines(&out, Outcome::Would, "hugepages");
    assert!(
        would[0].contains("on NUMA node 0 (1024 MiB needed, 16 reserved): would run `dpdk-hugepages.py --pagesize 2048K --reserve 1048576K --node 0`"),
        "{would:?}"
    );
    assert!(would[1]
        .contains("`dpdk-hugepages.py --pagesize 2048K --mount --directory /dev/hugepages`"));

    // The kernel only finds 100 pages: reported, not hidden.
    let root = f.0.clone();
    let mut rec = Recorder {
        effect: Some(Box::new(move |argv: &[String]| {
            if argv.iter().any(|a| a == "--reserve") {
                let p = root
                    .join("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages");
                std::fs::write(p, "100\n").unwrap();
            }
        })),
        ..Recorder::default()
    };
    let out = setup(&f, false, &mut rec, &c);
    assert_eq!(rec.ran.len(), 2);
    assert!(lines(&out, Outcome::Fail, "hugepages")[0].contains("gave 100 of 512 pages"));
    assert!(lines(&out, Outcome::Fail, "hugepages")[1].contains("still not a hugetlbfs mount"));
    assert!(
        f.0.join("dev/hugepages").is_dir(),
        "the mount point is created"
    );

    // A failing command is reported with its output.
    let mut rec = Recorder {
        fail: true,
        ..Recorder::default()
    };
    let out = setup(&f, false, &mut rec, &c);
    assert!(lines(&out, Outcome::Fail, "hugepages")[0].ends_with("could not: refused"));

    // Where sysfs knows no node for the workers' CPU: the overall count.
    std::fs::remove_dir(f.0.join("sys/devices/system/cpu/cpu1/node0")).unwrap();
    let out = setup(&f, true, &mut Recorder::default(), &c);
    let would = lines(&out, Outcome::Would, "hugepages");
    assert!(
        would[0].contains("(1024 MiB needed, 16 reserved): would run `dpdk-hugepages.py --pagesize 2048K --reserve 1048576K`"),
        "{would:?}"
    );
}

#[test]
fn busy_hugepages_and_the_estimate() {
    let f = FakeRoot::new(256, 4);
    f.file(
        "sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages",
        "3\n",
    );
    f.file("proc/mounts", "nodev /mnt/huge hugetlbfs rw 0 0\n");
    let c = config(
        r#""--huge-dir", "/mnt/huge""#,
        "1",
        "net_null0",
        "net_null1",
    );
    let out = setup(&f, true, &mut Recorder::default(), &c);
    let ok = lines(&out, Outcome::Ok, "hugepages");
    // 16383 mbufs of 2176 + 192 bytes, plus 128 MiB.
    assert!(ok[0].contains("wgdp needs about 165 MiB"), "{ok:?}");
    assert!(ok[1].contains("mounted on /mnt/huge"));
    assert!(lines(&out, Outcome::Warn, "hugepages")[0].contains("only 6 MiB of them are free"));
}

#[test]
fn cpus_are_checked_for_isolation_and_numa() {
    let f = FakeRoot::new(1024, 8);
    f.pci("0000:3b:00.0", "0x15b3", Some("mlx5_core"), 1);
    f.dir("sys/bus/pci/devices/0000:3b:00.0/infiniband/mlx5_0");
    f.file("sys/devices/system/cpu/isolated", "2-3\n");
    f.file("sys/devices/system/cpu/nohz_full", "2-3\n");
    f.file("proc/cmdline", "isolcpus=2-3 nohz_full=2-3 rcu_nocbs=2-3\n");
    let mut c = config(
        r#""--lcores", "0@0,1@2,2@(3),3@9", "--in-memory""#,
        "1, 2, 3",
        "0000:3b:00.0",
        "net_null0",
    );
    // The table refuses a worker that eal_args does not enable; a Config
    // built in code can still hold one, and setup says so.
    c.dpdk.workers.push(7);
    let out = setup(&f, true, &mut Recorder::default(), &c);
    let ok = lines(&out, Outcome::Ok, "cpu worker lcore 1");
    assert_eq!(ok, vec!["CPU 2 is isolated, nohz_full and rcu_nocbs"]);
    let numa = lines(&out, Outcome::Warn, "cpu worker lcore 2");
    assert!(
        numa[0].contains("CPU 3 is on NUMA node 0, port tunnel on node 1"),
        "{numa:?}"
    );
    assert!(lines(&out, Outcome::Fail, "cpu worker lcore 3")[0].contains("CPU 9 does not exist"));
    assert!(lines(&out, Outcome::Fail, "cpu worker lcore 7")[0].contains("not an lcore"));

    // Without isolation: one warning per worker and the boot parameters.
    f.file("sys/devices/system/cpu/isolated", "\n");
    let c = config(
        r#""-l", "0-2", "--in-memory""#,
        "1, 2",
        "net_null0",
        "net_null1",
    );
    let out = setup(&f, true, &mut Recorder::default(), &c);
    let warn = lines(&out, Outcome::Warn, "cpu");
    assert_eq!(warn.len(), 3, "{warn:?}");
    assert!(warn[0].starts_with("CPU 1 is not isolated (isolcpus), not nohz_full, not rcu_nocbs"));
    assert!(warn[2].contains("`isolcpus=1,2 nohz_full=1,2 rcu_nocbs=1,2`"));
}

#[test]
fn socket_mem_reserves_each_nodes_share_on_that_node() {
    let f = FakeRoot::new(16, 4);
    let node1 = "sys/devices/system/node/node1/hugepages/hugepages-2048kB";
    f.file(&format!("{node1}/nr_hugepages"), "0\n");
    f.file(&format!("{node1}/free_hugepages"), "0\n");
    let c = config(
        r#""-l", "0-1", "--socket-mem", "1024,512""#,
        "1",
        "net_null0",
        "net_null1",
    );
    let out = setup(&f, true, &mut Recorder::default(), &c);
    let would = lines(&out, Outcome::Would, "hugepages");
    assert!(
        would[0].contains("on NUMA node 0 (1024 MiB needed, 16 reserved): would run `dpdk-hugepages.py --pagesize 2048K --reserve 1048576K --node 0`"),
        "{would:?}"
    );
    assert!(
        would[1].contains("on NUMA node 1 (512 MiB needed, 0 reserved): would run `dpdk-hugepages.py --pagesize 2048K --reserve 524288K --node 1`"),
        "{would:?}"
    );

    // A node given 0 MiB is left alone.
    let c = config(
        r#""-l", "0-1", "--socket-mem", "0,512""#,
        "1",
        "net_null0",
        "net_null1",
    );
    let out = setup(&f, true, &mut Recorder::default(), &c);
    let would = lines(&out, Outcome::Would, "hugepages");
    assert!(would[0].contains("--node 1`"), "{would:?}");
    assert!(
        !out.iter().any(|x| x.text.contains("NUMA node 0")),
        "node 0 untouched: {out:?}"
    );
}

#[test]
fn one_device_split_by_vlan_is_bound_once() {
    let f = FakeRoot::new(1024, 4);
    f.pci("0000:5e:00.0", "0x8086", Some("ice"), 0);
    f.dir("sys/kernel/iommu_groups/12");
    f.file("proc/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n");
    let text = config(r#""-l", "0-1""#, "1", "0000:5e:00.0", "0000:5e:00.1")
        .to_toml_string()
        .replace("0000:5e:00.1", "0000:5e:00.0")
        .replacen("[ports.tunnel]\n", "[ports.tunnel]\nvlan = 10\n", 1)
        .replacen("[ports.plaintext]\n", "[ports.plaintext]\nvlan = 20\n", 1);
    let c = conf::Config::from_str(&text, "test.toml").expect("valid split config");
    assert!(c.ports.vlan_split());

    let mut rec = Recorder::default();
    let out = setup(&f, true, &mut rec, &c);
    let would: Vec<String> = lines(&out, Outcome::Would, "");
    assert_eq!(would.len(), 2, "{out:#?}");
    assert!(would[0].contains("`modprobe vfio-pci`"));
    assert!(would[1].contains("`dpdk-devbind.py --bind vfio-pci 0000:5e:00.0`"));
    assert!(lines(&out, Outcome::Fail, "").is_empty(), "{out:#?}");
}
