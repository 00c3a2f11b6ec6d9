//! What `wgdp setup` reads from the running kernel: hugepages, mounts, PCI
//! devices and their drivers, the IOMMU, vfio, and CPU isolation. Every
//! path is taken under a root directory (`/` on a real host; a fake tree in
//! tests).

use std::fs;
use std::path::PathBuf;

use conf::eal::parse_cpu_list;

/// The kernel's view of this host, under `root`.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

/// A PCI device as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciDevice {
    /// The kernel driver bound to it (`mlx5_core`, `ice`, `vfio-pci`), if any.
    pub driver: Option<String>,
    /// PCI vendor id, e.g. `0x15b3` (Mellanox/NVIDIA).
    pub vendor: String,
    /// The NUMA node, or `None` where the kernel does not know (`-1`).
    pub numa_node: Option<u32>,
    /// Whether it is in an IOMMU group.
    pub iommu_group: bool,
    /// Whether an RDMA (verbs) device sits on it: what mlx5's DPDK driver needs.
    pub rdma: bool,
    /// Its kernel network interfaces (empty when bound to a DPDK driver).
    pub netdevs: Vec<String>,
}

/// PCI vendor id of Mellanox / NVIDIA networking.
pub const VENDOR_MELLANOX: &str = "0x15b3";

/// Drivers DPDK uses in place (bifurcated): the port stays on its kernel
/// driver and DPDK reaches it through verbs.
pub const BIFURCATED_DRIVERS: &[&str] = &["mlx5_core", "mlx4_core"];

/// The hugepage reservation of one page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HugePages {
    /// Page size in kB.
    pub size_kb: u64,
    /// Pages reserved.
    pub total: u64,
    /// Pages not in use.
    pub free: u64,
}

impl Default for Host {
    fn default() -> Self {
        Host::at("/")
    }
}

impl Host {
    /// The host whose `/sys`, `/proc` and `/dev` are under `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Host { root: root.into() }
    }

    /// `path` (absolute, as on a real host) under the root.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    fn read(&self, path: &str) -> Option<String> {
        fs::read_to_string(self.path(path))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }

    fn names(&self, path: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(path))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The default hugepage size in kB (`Hugepagesize:` in /proc/meminfo).
    pub fn default_hugepage_kb(&self) -> Option<u64> {
        self.read("/proc/meminfo")?
            .lines()
            .find_map(|l| l.strip_prefix("Hugepagesize:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The reservation of `size_kb` pages, on NUMA node `node` or overall.
    pub fn hugepages(&self, size_kb: u64, node: Option<u32>) -> Option<HugePages> {
        let dir = match node {
            Some(n) => format!("/sys/devices/system/node/node{n}/hugepages/hugepages-{size_kb}kB"),
            None => format!("/sys/kernel/mm/hugepages/hugepages-{size_kb}kB"),
        };
        let num = |f: &str| self.read(&format!("{dir}/{f}"))?.parse().ok();
        Some(HugePages {
            size_kb,
            total: num("nr_hugepages")?,
            free: num("free_hugepages")?,
        })
    }

    /// Mount points of hugetlbfs, from /proc/mounts.
    pub fn hugetlbfs_mounts(&self) -> Vec<String> {
        self.read("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"hugetlbfs")).then(|| f[1].to_owned())
            })
            .collect()
    }

    /// The PCI device at `addr` (`0000:3b:00.0`), if there is one.
    pub fn pci_device(&self, addr: &str) -> Option<PciDevice> {
        let dir = format!("/sys/bus/pci/devices/{addr}");
        if !self.exists(&dir) {
            return None;
        }
        let driver = fs::read_link(self.path(&format!("{dir}/driver")))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        let numa_node = self
            .read(&format!("{dir}/numa_node"))
            .and_then(|n| n.parse::<i64>().ok())
            .and_then(|n| u32::try_from(n).ok());
        Some(PciDevice {
            driver,
            vendor: self.read(&format!("{dir}/vendor")).unwrap_or_default(),
            numa_node,
            iommu_group: self.exists(&format!("{dir}/iommu_group")),
            rdma: !self.names(&format!("{dir}/infiniband")).is_empty(),
            netdevs: self.names(&format!("{dir}/net")),
        })
    }

    /// Whether the kernel has IOMMU groups (VT-d / AMD-Vi on and enabled).
    pub fn iommu_enabled(&self) -> bool {
        !self.names("/sys/kernel/iommu_groups").is_empty()
    }

    /// Whether vfio's no-IOMMU mode is on (unsafe; for hosts without an IOMMU).
    pub fn vfio_noiommu(&self) -> bool {
        self.read("/sys/module/vfio/parameters/enable_unsafe_noiommu_mode")
            .is_some_and(|v| v == "Y" || v == "1")
    }

    /// Whether the vfio-pci driver is loaded (or built in).
    pub fn vfio_pci_loaded(&self) -> bool {
        self.exists("/sys/bus/pci/drivers/vfio-pci")
    }

    /// Whether /dev/vfio/vfio exists (the vfio container device).
    pub fn vfio_device(&self) -> bool {
        self.exists("/dev/vfio/vfio")
    }

    /// A CPU list file of sysfs (`isolated`, `nohz_full`), empty when absent.
    pub fn cpu_list(&self, name: &str) -> Vec<u32> {
        self.read(&format!("/sys/devices/system/cpu/{name}"))
            .and_then(|s| parse_cpu_list(&s).ok())
            .unwrap_or_default()
    }

    /// Whether CPU `cpu` exists.
    pub fn cpu_exists(&self, cpu: u32) -> bool {
        self.exists(&format!("/sys/devices/system/cpu/cpu{cpu}"))
    }

    /// The NUMA node of CPU `cpu`, where sysfs shows one.
    pub fn cpu_node(&self, cpu: u32) -> Option<u32> {
        self.names(&format!("/sys/devices/system/cpu/cpu{cpu}"))
            .iter()
            .find_map(|n| n.strip_prefix("node")?.parse().ok())
    }

    /// The kernel command line.
    pub fn cmdline(&self) -> String {
        self.read("/proc/cmdline").unwrap_or_default()
    }

    /// The value of `param=` on the kernel command line, if given.
    pub fn cmdline_param(&self, param: &str) -> Option<String> {
        self.cmdline()
            .split_whitespace()
            .find_map(|w| w.strip_prefix(param)?.strip_prefix('=').map(str::to_owned))
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake sysfs/procfs tree for tests.

    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A temporary root directory, removed on drop.
    pub struct FakeRoot(pub PathBuf);

    impl FakeRoot {
        /// An empty tree with one NUMA node, 2 MB pages (`total` reserved)
        /// and `cpus` CPUs.
        pub fn new(total_pages: u64, cpus: u32) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "wgdp-setup-fake-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            let root = FakeRoot(dir);
            root.file(
                "proc/meminfo",
                "MemTotal: 1 kB\nHugepagesize:       2048 kB\n",
            );
            root.file("proc/mounts", "sysfs /sys sysfs rw 0 0\n");
            root.file("proc/cmdline", "quiet\n");
            for d in [
                "sys/kernel/mm/hugepages/hugepages-2048kB",
                "sys/devices/system/node/node0/hugepages/hugepages-2048kB",
            ] {
                root.file(&format!("{d}/nr_hugepages"), &format!("{total_pages}\n"));
                root.file(&format!("{d}/free_hugepages"), &format!("{total_pages}\n"));
            }
            for c in 0..cpus {
                root.dir(&format!("sys/devices/system/cpu/cpu{c}/node0"));
            }
            root.file("sys/devices/system/cpu/isolated", "\n");
            root.dir("sys/kernel/iommu_groups");
            root
        }

        /// Writes `content` to `rel`, creating directories.
        pub fn file(&self, rel: &str, content: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(p, content).expect("write");
        }

        /// Creates directory `rel`.
        pub fn dir(&self, rel: &str) {
            fs::create_dir_all(self.0.join(rel)).expect("mkdir");
        }

        /// A PCI device bound to `driver`, on NUMA node `node`.
        pub fn pci(&self, addr: &str, vendor: &str, driver: Option<&str>, node: i32) {
            let dev = format!("sys/bus/pci/devices/{addr}");
            self.file(&format!("{dev}/vendor"), &format!("{vendor}\n"));
            self.file(&format!("{dev}/numa_node"), &format!("{node}\n"));
            if let Some(d) = driver {
                let drv = self.0.join(format!("sys/bus/pci/drivers/{d}"));
                fs::create_dir_all(&drv).expect("mkdir");
                symlink(drv, self.0.join(format!("{dev}/driver"))).expect("symlink");
            }
        }
    }

    impl Drop for FakeRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeRoot;
    use super::*;

    #[test]
    fn reads_hugepages_devices_and_cpus() {
        let f = FakeRoot::new(256, 4);
        f.pci("0000:3b:00.0", VENDOR_MELLANOX, Some("mlx5_core"), 1);
        f.dir("sys/bus/pci/devices/0000:3b:00.0/infiniband/mlx5_0");
        f.dir("sys/bus/pci/devices/0000:3b:00.0/net/ens1f0np0");
        f.pci("0000:5e:00.0", "0x8086", None, -1);
        f.file("sys/devices/system/cpu/isolated", "2-3\n");
        f.file("proc/cmdline", "isolcpus=2-3 nohz_full=2-3 quiet\n");
        let h = Host::at(&f.0);
        assert_eq!(h.default_hugepage_kb(), Some(2048));
        assert_eq!(
            h.hugepages(2048, Some(0)),
            Some(HugePages {
                size_kb: 2048,
                total: 256,
                free: 256
            })
        );
        assert_eq!(h.hugepages(2048, Some(7)), None);
        let mlx = h.pci_device("0000:3b:00.0").unwrap();
        assert_eq!(mlx.driver.as_deref(), Some("mlx5_core"));
        assert_eq!(mlx.numa_node, Some(1));
        assert!(mlx.rdma && !mlx.iommu_group);
        assert_eq!(mlx.netdevs, vec!["ens1f0np0"]);
        let intel = h.pci_device("0000:5e:00.0").unwrap();
        assert_eq!((intel.driver, intel.numa_node), (None, None));
        assert_eq!(h.pci_device("0000:00:09.0"), None);
        assert_eq!(h.cpu_list("isolated"), vec![2, 3]);
        assert_eq!(h.cpu_list("nohz_full"), Vec::<u32>::new());
        assert_eq!(h.cmdline_param("nohz_full").as_deref(), Some("2-3"));
        assert_eq!(h.cmdline_param("rcu_nocbs"), None);
        assert_eq!(h.cpu_node(3), Some(0));
        assert!(h.cpu_exists(3) && !h.cpu_exists(4));
        assert!(!h.iommu_enabled() && !h.vfio_pci_loaded() && !h.vfio_device());
        assert!(h.hugetlbfs_mounts().is_empty());
    }
}
