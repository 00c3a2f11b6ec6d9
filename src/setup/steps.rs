//! The steps of `wgdp setup`: hugepages, NICs (IOMMU, vfio, binding) and
//! CPUs (isolation, NUMA placement).

use std::collections::{BTreeMap, BTreeSet};

use super::eal::{huge_use, HugeUse};
use super::host::{Host, PciDevice, BIFURCATED_DRIVERS, VENDOR_MELLANOX};
use super::{Outcome, Setup};
use conf::eal::lcore_cpus;

/// The hugetlbfs mount point EAL uses unless `--huge-dir` says otherwise.
const DEFAULT_HUGE_DIR: &str = "/dev/hugepages";
/// What EAL, the rings, the port descriptor rings and the drivers take
/// besides the mbuf pool, in MiB (an estimate with room to spare).
const BASE_MIB: u64 = 128;
/// Per mbuf, besides its data room: `struct rte_mbuf` (128 bytes) and the
/// mempool's object header and padding.
const MBUF_OVERHEAD: u64 = 192;
/// The driver DPDK needs for NICs that are not bifurcated.
const VFIO_PCI: &str = "vfio-pci";

/// What a port's `device` is, and what it needs.
#[derive(Debug, Clone)]
pub enum PortKind {
    /// A DPDK virtual device: nothing to bind.
    Vdev,
    /// A PCI NIC at this address (`0000:3b:00.0`), as sysfs shows it.
    Pci(String, Option<PciDevice>),
}

/// One configured port.
#[derive(Debug, Clone)]
pub struct PortPlan {
    /// `tunnel` or `plaintext`.
    pub role: &'static str,
    /// The device name (devargs cut off).
    pub name: String,
    /// What it is.
    pub kind: PortKind,
}

impl PortPlan {
    fn area(&self) -> String {
        format!("port {} {}", self.role, self.name)
    }

    /// The NIC, where it is a PCI device sysfs knows.
    fn pci(&self) -> Option<&PciDevice> {
        match &self.kind {
            PortKind::Pci(_, dev) => dev.as_ref(),
            PortKind::Vdev => None,
        }
    }

    /// Whether this NIC needs vfio-pci (a PCI NIC that is not bifurcated).
    fn needs_vfio(&self) -> bool {
        self.pci().is_some_and(|d| !is_bifurcated(d))
    }
}

fn is_bifurcated(d: &PciDevice) -> bool {
    d.driver
        .as_deref()
        .is_some_and(|drv| BIFURCATED_DRIVERS.contains(&drv))
        || (d.driver.is_none() && d.vendor == VENDOR_MELLANOX)
}

/// A PCI address in full form (`0000:3b:00.0`), if `name` is one
/// (`3b:00.0` gets domain 0, as in EAL).
pub fn pci_address(name: &str) -> Option<String> {
    let full = match name.matches(':').count() {
        1 => format!("0000:{name}"),
        2 => name.to_owned(),
        _ => return None,
    };
    let b = full.as_bytes();
    let hex = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_hexdigit);
    let ok = b.len() == 12
        && hex(0..4)
        && b[4] == b':'
        && hex(5..7)
        && b[7] == b':'
        && hex(8..10)
        && b[10] == b'.'
        && (b'0'..=b'7').contains(&b[11]);
    ok.then(|| full.to_ascii_lowercase())
}

/// The ports (both, or the one of one-armed mode or of the roles split
/// by VLAN), classified against the host.
pub fn classify_ports(host: &Host, config: &conf::Config) -> Vec<PortPlan> {
    let ports = match config.ports.one_armed() || config.ports.vlan_split() {
        true => vec![("both", &config.ports.tunnel)],
        false => vec![
            ("tunnel", &config.ports.tunnel),
            ("plaintext", &config.ports.plaintext),
        ],
    };
    ports
        .into_iter()
        .map(|(role, p)| {
            let name = p.device.split(',').next().unwrap_or_default().to_owned();
            let kind = match pci_address(&name) {
                Some(addr) => {
                    let dev = host.pci_device(&addr);
                    PortKind::Pci(addr, dev)
                }
                None => PortKind::Vdev,
            };
            PortPlan { role, name, kind }
        })
        .collect()
}

/// The hugepage memory wgdp needs without `-m`/`--socket-mem`, in MiB.
fn estimate_mib(config: &conf::Config) -> u64 {
    let per_mbuf = u64::from(crate::daemon::data_room(config)) + MBUF_OVERHEAD;
    (u64::from(config.dpdk.mbufs) * per_mbuf).div_ceil(1 << 20) + BASE_MIB
}

/// The value of `--huge-dir` in the EAL arguments.
fn huge_dir(args: &[String]) -> String {
    let mut it = args.iter();
    let mut dir = DEFAULT_HUGE_DIR.to_owned();
    while let Some(a) = it.next() {
        if a == "--huge-dir" {
            dir = it.next().cloned().unwrap_or(dir);
        } else if let Some(d) = a.strip_prefix("--huge-dir=") {
            dir = d.to_owned();
        }
    }
    dir
}

/// The CPUs lcore `lcore` runs on, given EAL's lcore map (`None`: one
/// lcore per CPU); `None` when EAL has no such lcore.
fn cpus_of(map: Option<&BTreeMap<u32, Vec<u32>>>, lcore: u32) -> Option<Vec<u32>> {
    match map {
        None => Some(vec![lcore]),
        Some(m) => m.get(&lcore).cloned(),
    }
}

fn script(name: &str, args: &[&str]) -> Vec<String> {
    std::iter::once(name)
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect()
}

impl Setup<'_> {
    /// Reserves enough hugepages (on the NICs' NUMA nodes where sysfs
    /// knows them) and mounts hugetlbfs where EAL will look for it.
    pub(super) fn hugepages(&mut self, config: &conf::Config, ports: &[PortPlan]) {
        let area = "hugepages";
        let args = &config.dpdk.eal_args;
        // MiB per node: `--socket-mem` names each node's share; `-m` (or
        // the estimate) goes whole on each of the NICs' nodes.
        let plan: Vec<(Option<u32>, u64)> = match huge_use(args) {
            Err(e) => return self.note(Outcome::Fail, area, format!("eal_args: {e}")),
            Ok(HugeUse::None) => {
                return self.note(Outcome::Ok, area, "not used (--no-huge in eal_args)")
            }
            Ok(HugeUse::PerNode(per_node)) => (0u32..)
                .zip(per_node)
                .filter(|&(_, mib)| mib > 0)
                .map(|(node, mib)| (Some(node), mib))
                .collect(),
            Ok(HugeUse::Fixed(mib)) => self.nic_nodes(config, ports, mib),
            Ok(HugeUse::Dynamic) => self.nic_nodes(config, ports, estimate_mib(config)),
        };
        let Some(size_kb) = self.host.default_hugepage_kb() else {
            return self.note(
                Outcome::Fail,
                area,
                "the kernel shows no hugepage size (no Hugepagesize in /proc/meminfo): it lacks CONFIG_HUGETLBFS",
            );
        };
        for (node, mib) in plan {
            self.reserve(size_kb, (mib * 1024).div_ceil(size_kb), mib, node);
        }
        if args.iter().any(|a| a == "--in-memory") {
            return self.note(
                Outcome::Ok,
                area,
                "no hugetlbfs mount needed (--in-memory in eal_args)",
            );
        }
        let dir = huge_dir(args);
        if self.host.hugetlbfs_mounts().contains(&dir) {
            return self.note(Outcome::Ok, area, format!("hugetlbfs mounted on {dir}"));
        }
        if !self.dry_run {
            if let Err(e) = std::fs::create_dir_all(self.host.path(&dir)) {
                return self.note(Outcome::Fail, area, format!("mkdir {dir}: {e}"));
            }
        }
        let page = format!("{size_kb}K");
        let argv = script(
            "dpdk-hugepages.py",
            &["--pagesize", &page, "--mount", "--directory", &dir],
        );
        self.change(area, &format!("mount hugetlbfs on {dir}"), argv, |h| {
            if h.hugetlbfs_mounts().contains(&dir) {
                Ok("mounted".into())
            } else {
                Err(format!("{dir} is still not a hugetlbfs mount"))
            }
        });
    }

    /// `mib` on each of the NICs' NUMA nodes; where sysfs does not know
    /// them, the workers' (dpdk-hugepages.py without --node would set every
    /// node's count, lowering a node that has more than this one needs);
    /// where it knows neither, the overall count.
    fn nic_nodes(
        &self,
        config: &conf::Config,
        ports: &[PortPlan],
        mib: u64,
    ) -> Vec<(Option<u32>, u64)> {
        let mut nodes: BTreeSet<Option<u32>> = ports
            .iter()
            .filter_map(|p| p.pci().and_then(|d| d.numa_node))
            .map(Some)
            .collect();
        if nodes.is_empty() {
            nodes = self
                .worker_cpus(config)
                .iter()
                .filter_map(|&cpu| self.host.cpu_node(cpu))
                .map(Some)
                .collect();
        }
        if nodes.is_empty() {
            nodes.insert(None);
        }
        nodes.into_iter().map(|node| (node, mib)).collect()
    }

    /// Makes sure `pages` pages of `size_kb` are reserved on `node` (or
    /// overall).
    fn reserve(&mut self, size_kb: u64, pages: u64, need_mib: u64, node: Option<u32>) {
        let area = "hugepages";
        let on = node
            .map(|n| format!(" on NUMA node {n}"))
            .unwrap_or_default();
        let Some(have) = self.host.hugepages(size_kb, node) else {
            return self.note(
                Outcome::Fail,
                area,
                format!("no {size_kb} kB hugepage pool{on} in sysfs"),
            );
        };
        let mib = |p: u64| p * size_kb / 1024;
        if have.total >= pages {
            self.note(
                Outcome::Ok,
                area,
                format!(
                    "{} x {size_kb} kB reserved{on} ({} MiB, {} MiB free); wgdp needs about {need_mib} MiB",
                    have.total,
                    mib(have.total),
                    mib(have.free)
                ),
            );
            if have.free < pages {
                self.note(
                    Outcome::Warn,
                    area,
                    format!("only {} MiB of them are free{on}: another process (a DPDK process, or hpmap_* files left in the hugetlbfs mount) holds the rest", mib(have.free)),
                );
            }
            return;
        }
        let (page, total) = (format!("{size_kb}K"), format!("{}K", pages * size_kb));
        let mut args = vec!["--pagesize", &page, "--reserve", &total];
        let node_s = node.map(|n| n.to_string());
        if let Some(n) = &node_s {
            args.extend(["--node", n]);
        }
        let what = format!(
            "reserve {pages} x {size_kb} kB{on} ({need_mib} MiB needed, {} reserved)",
            have.total
        );
        self.change(area, &what, script("dpdk-hugepages.py", &args), |h| {
            let got = h.hugepages(size_kb, node).map_or(0, |p| p.total);
            if got >= pages {
                Ok(format!("{got} pages reserved"))
            } else {
                Err(format!("the kernel gave {got} of {pages} pages (memory too fragmented: reserve them at boot, hugepages=N on the kernel command line)"))
            }
        });
    }

    /// Checks each port's device, then the IOMMU and vfio where a NIC needs
    /// them, then binds those NICs to vfio-pci.
    pub(super) fn nics(&mut self, ports: &[PortPlan]) {
        for p in ports {
            let area = p.area();
            match &p.kind {
                PortKind::Vdev => self.note(Outcome::Ok, &area, "virtual device: nothing to bind"),
                PortKind::Pci(addr, None) => self.note(
                    Outcome::Fail,
                    &area,
                    format!("no PCI device {addr} on this host (`lspci -D` lists them)"),
                ),
                PortKind::Pci(_, Some(d)) if is_bifurcated(d) => self.mlx5(&area, d),
                PortKind::Pci(_, Some(_)) => {}
            }
        }
        if !ports.iter().any(PortPlan::needs_vfio) {
            return self.note(
                Outcome::Ok,
                "vfio",
                "not needed: no port needs vfio-pci (virtual devices, or mlx5 on its kernel driver)",
            );
        }
        let vfio_ready = self.vfio();
        for p in ports.iter().filter(|p| p.needs_vfio()) {
            let (PortKind::Pci(addr, Some(dev)), area) = (&p.kind, p.area()) else {
                continue;
            };
            self.bind(&area, addr, dev, vfio_ready);
        }
    }

    /// An mlx5 (or mlx4) NIC stays on its kernel driver; DPDK needs its
    /// RDMA device.
    fn mlx5(&mut self, area: &str, d: &PciDevice) {
        let Some(driver) = &d.driver else {
            return self.note(
                Outcome::Fail,
                area,
                "Mellanox NIC with no kernel driver: load mlx5_core (`modprobe mlx5_core`); DPDK's mlx5 driver works beside it",
            );
        };
        if !d.rdma {
            return self.note(
                Outcome::Fail,
                area,
                format!("on {driver} but no RDMA device: load mlx5_ib (`modprobe mlx5_ib`) and install rdma-core/ibverbs-providers"),
            );
        }
        let netdevs = if d.netdevs.is_empty() {
            String::new()
        } else {
            format!(
                "; keep its kernel interface {} up (`ip link set {} up`)",
                d.netdevs.join(", "),
                d.netdevs[0]
            )
        };
        self.note(
            Outcome::Ok,
            area,
            format!("stays on {driver} (bifurcated: DPDK drives it through verbs), RDMA device present{netdevs}"),
        );
    }

    /// Checks the IOMMU, loads vfio-pci if needed; whether binding can work.
    fn vfio(&mut self) -> bool {
        let mut ready = true;
        if self.host.iommu_enabled() {
            self.note(Outcome::Ok, "iommu", "IOMMU groups present");
        } else if self.host.vfio_noiommu() {
            self.note(
                Outcome::Warn,
                "iommu",
                "no IOMMU: vfio runs in unsafe no-IOMMU mode (no DMA isolation; IOVA as PA)",
            );
        } else {
            ready = false;
            self.note(
                Outcome::Fail,
                "iommu",
                "no IOMMU groups: enable VT-d (Intel) or AMD-Vi in the firmware and boot with intel_iommu=on iommu=pt (or amd_iommu=on)",
            );
        }
        if self.host.vfio_pci_loaded() {
            self.note(Outcome::Ok, "vfio", "vfio-pci driver loaded");
        } else {
            let argv = script("modprobe", &[VFIO_PCI]);
            ready &= self.change("vfio", "load vfio-pci", argv, |h| {
                if h.vfio_pci_loaded() {
                    Ok("loaded".into())
                } else {
                    Err("still no /sys/bus/pci/drivers/vfio-pci".into())
                }
            });
        }
        if self.host.vfio_device() {
            self.note(Outcome::Ok, "vfio", "/dev/vfio/vfio present");
        } else if !self.dry_run || self.host.vfio_pci_loaded() {
            ready = false;
            self.note(Outcome::Fail, "vfio", "no /dev/vfio/vfio (vfio not in this kernel, or /dev not shared into this container)");
        }
        ready
    }

    /// Binds one NIC to vfio-pci unless it already is.
    fn bind(&mut self, area: &str, addr: &str, dev: &PciDevice, vfio_ready: bool) {
        let current = dev.driver.as_deref().unwrap_or("no driver");
        if current == VFIO_PCI {
            return self.note(Outcome::Ok, area, "bound to vfio-pci");
        }
        if !self.dry_run && !vfio_ready {
            return self.note(
                Outcome::Fail,
                area,
                format!("on {current}: cannot bind it to vfio-pci until the iommu/vfio lines above are fixed"),
            );
        }
        let gone = if dev.netdevs.is_empty() {
            String::new()
        } else {
            format!(
                " (its kernel interface {} goes away)",
                dev.netdevs.join(", ")
            )
        };
        let what = format!("bind from {current} to vfio-pci{gone}");
        let argv = script("dpdk-devbind.py", &["--bind", VFIO_PCI, addr]);
        let addr = addr.to_owned();
        self.change(area, &what, argv, |h| {
            match h.pci_device(&addr).and_then(|d| d.driver) {
                Some(d) if d == VFIO_PCI => Ok("bound".into()),
                other => Err(format!(
                    "still on {} (dpdk-devbind.py leaves an interface that is up or routed alone: `ip link set IF down` first)",
                    other.as_deref().unwrap_or("no driver")
                )),
            }
        });
    }

    /// Checks that every worker lcore's CPU exists, is isolated from the
    /// scheduler, timer ticks and RCU callbacks, and sits on its NICs' node.
    pub(super) fn cpus(&mut self, config: &conf::Config, ports: &[PortPlan]) {
        let map = match lcore_cpus(&config.dpdk.eal_args) {
            Ok(m) => m,
            Err(e) => return self.note(Outcome::Fail, "cpu", format!("eal_args: {e}")),
        };
        let isolated = self.host.cpu_list("isolated");
        let nohz = self.host.cpu_list("nohz_full");
        let rcu = self
            .host
            .cmdline_param("rcu_nocbs")
            .and_then(|v| conf::eal::parse_cpu_list(&v).ok())
            .unwrap_or_default();
        let mut all = Vec::new();
        for &lcore in &config.dpdk.workers {
            let area = format!("cpu worker lcore {lcore}");
            let Some(cpus) = cpus_of(map.as_ref(), lcore) else {
                self.note(
                    Outcome::Fail,
                    &area,
                    "not an lcore of eal_args (-l/--lcores/-c)",
                );
                continue;
            };
            for cpu in cpus {
                if !self.host.cpu_exists(cpu) {
                    self.note(
                        Outcome::Fail,
                        &area,
                        format!("CPU {cpu} does not exist on this host"),
                    );
                    continue;
                }
                all.push(cpu);
                let missing: Vec<&str> = [
                    (isolated.contains(&cpu), "isolated (isolcpus)"),
                    (nohz.contains(&cpu), "nohz_full"),
                    (rcu.contains(&cpu), "rcu_nocbs"),
                ]
                .into_iter()
                .filter(|(has, _)| !has)
                .map(|(_, name)| name)
                .collect();
                if missing.is_empty() {
                    self.note(
                        Outcome::Ok,
                        &area,
                        format!("CPU {cpu} is isolated, nohz_full and rcu_nocbs"),
                    );
                } else {
                    self.note(
                        Outcome::Warn,
                        &area,
                        format!("CPU {cpu} is not {}: other tasks, timer ticks and RCU callbacks interrupt its polling", missing.join(", not ")),
                    );
                }
                self.numa(&area, cpu, ports);
            }
        }
        if all.len() < config.dpdk.workers.len() || all.iter().all(|c| isolated.contains(c)) {
            return;
        }
        let list = all.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        self.note(
            Outcome::Warn,
            "cpu",
            format!("to isolate the workers, boot with `isolcpus={list} nohz_full={list} rcu_nocbs={list}` and keep NIC IRQs off them (docs/hardware.md)"),
        );
    }

    /// The CPUs of the worker lcores that `eal_args` maps (errors are the
    /// CPU step's to report).
    fn worker_cpus(&self, config: &conf::Config) -> Vec<u32> {
        let Ok(map) = lcore_cpus(&config.dpdk.eal_args) else {
            return Vec::new();
        };
        config
            .dpdk
            .workers
            .iter()
            .flat_map(|&l| cpus_of(map.as_ref(), l).unwrap_or_default())
            .collect()
    }

    /// Warns when `cpu` is on another NUMA node than a NIC it polls.
    fn numa(&mut self, area: &str, cpu: u32, ports: &[PortPlan]) {
        let Some(cpu_node) = self.host.cpu_node(cpu) else {
            return;
        };
        for p in ports {
            if let Some(nic_node) = p.pci().and_then(|d| d.numa_node) {
                if nic_node != cpu_node {
                    self.note(
                        Outcome::Warn,
                        area,
                        format!("CPU {cpu} is on NUMA node {cpu_node}, port {} on node {nic_node}: every packet crosses the socket interconnect", p.role),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
