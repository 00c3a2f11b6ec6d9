//! Ethernet ports: probe, configure with RSS and offloads, per-queue bursts.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Burst, Eal, Mempool, RteError};
use crate::ffi;

/// Flag values for [`PortConfig`] and [`PortSetup`], read from DPDK's
/// headers through the shim (they are `RTE_BIT64` macros in C).
pub mod flags {
    use crate::ffi;

    macro_rules! flag {
        ($($(#[$doc:meta])* $name:ident = $sym:ident;)*) => {$(
            $(#[$doc])*
            #[inline]
            pub fn $name() -> u64 {
                // SAFETY: a constant defined in the shim.
                unsafe { ffi::$sym }
            }
        )*};
    }

    flag! {
        /// `RTE_ETH_RSS_IP`: hash IPv4/IPv6 addresses.
        rss_ip = wgdp_eth_rss_ip;
        /// `RTE_ETH_RSS_UDP`: hash UDP ports too.
        rss_udp = wgdp_eth_rss_udp;
        /// `RTE_ETH_RSS_IPV4`: hash IPv4 addresses.
        rss_ipv4 = wgdp_eth_rss_ipv4;
        /// `RTE_ETH_RSS_NONFRAG_IPV4_UDP`: hash IPv4 addresses and UDP ports.
        rss_ipv4_udp = wgdp_eth_rss_nonfrag_ipv4_udp;
        /// `RTE_ETH_RSS_IPV6`: hash IPv6 addresses.
        rss_ipv6 = wgdp_eth_rss_ipv6;
        /// `RTE_ETH_RSS_NONFRAG_IPV6_UDP`: hash IPv6 addresses and UDP ports.
        rss_ipv6_udp = wgdp_eth_rss_nonfrag_ipv6_udp;
        /// `RTE_ETH_RX_OFFLOAD_RSS_HASH`: deliver the RSS hash in the mbuf.
        rx_rss_hash = wgdp_eth_rx_offload_rss_hash;
        /// `RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`.
        tx_ipv4_cksum = wgdp_eth_tx_offload_ipv4_cksum;
        /// `RTE_ETH_TX_OFFLOAD_UDP_CKSUM`.
        tx_udp_cksum = wgdp_eth_tx_offload_udp_cksum;
    }

    /// Names of the RSS hash-function bits in `bits` that wgdp knows.
    pub fn rss_names(bits: u64) -> Vec<&'static str> {
        // SAFETY: constants defined in the shim.
        let known = unsafe {
            [
                (ffi::wgdp_eth_rss_ipv4, "ipv4"),
                (ffi::wgdp_eth_rss_nonfrag_ipv4_udp, "ipv4-udp"),
                (ffi::wgdp_eth_rss_nonfrag_ipv4_tcp, "ipv4-tcp"),
                (ffi::wgdp_eth_rss_ipv6, "ipv6"),
                (ffi::wgdp_eth_rss_nonfrag_ipv6_udp, "ipv6-udp"),
                (ffi::wgdp_eth_rss_nonfrag_ipv6_tcp, "ipv6-tcp"),
            ]
        };
        known
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }
}

/// How to configure a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// RX queues (one per worker lcore).
    pub rx_queues: u16,
    /// TX queues (one per worker lcore, plus the control thread's).
    pub tx_queues: u16,
    /// RX descriptors per queue (adjusted to the device's limits).
    pub rx_descriptors: u16,
    /// TX descriptors per queue (adjusted to the device's limits).
    pub tx_descriptors: u16,
    /// MTU to set; `None` keeps the device's.
    pub mtu: Option<u16>,
    /// RSS hash functions requested (`flags::rss_*`).
    pub rss_hash_functions: u64,
    /// RX offloads requested (`flags::rx_*`).
    pub rx_offloads: u64,
    /// TX offloads requested (`flags::tx_*`).
    pub tx_offloads: u64,
    /// Receive frames for any MAC address.
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        Self {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: 1024,
            tx_descriptors: 1024,
            mtu: None,
            rss_hash_functions: flags::rss_ip() | flags::rss_udp(),
            rx_offloads: 0,
            tx_offloads: 0,
            promiscuous: true,
        }
    }
}

/// What the device granted for a [`PortConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetup {
    /// The driver (`net_tap`, `mlx5_pci`, ...).
    pub driver: String,
    /// RX and TX queues configured.
    pub rx_queues: u16,
    /// TX queues configured.
    pub tx_queues: u16,
    /// Descriptors per RX / TX queue after adjustment.
    pub descriptors: (u16, u16),
    /// RSS hash functions requested.
    pub rss_requested: u64,
    /// RSS hash functions granted (the device's support intersected).
    pub rss_granted: u64,
    /// The RSS key, where the device reports it.
    pub rss_key: Option<Vec<u8>>,
    /// The RSS redirection table (entry -> queue), where the device has one.
    pub reta: Option<Vec<u16>>,
    /// RX offloads requested / granted.
    pub rx_offloads: (u64, u64),
    /// TX offloads requested / granted.
    pub tx_offloads: (u64, u64),
    /// The MTU in force.
    pub mtu: u16,
}

/// What a device can be configured with (`rte_eth_dev_info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortLimits {
    /// The driver (`net_tap`, `mlx5_pci`, ...).
    pub driver: String,
    /// Most RX queues.
    pub max_rx_queues: u16,
    /// Most TX queues.
    pub max_tx_queues: u16,
    /// RSS hash functions the device supports.
    pub rss_offloads: u64,
    /// Entries of its RSS redirection table (0: none).
    pub reta_size: u16,
    /// Length of its RSS key in bytes (0: not reported).
    pub hash_key_size: u8,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Carrier up.
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped by the device because RX queues were full.
    pub rx_missed: u64,
    /// Erroneous packets received.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// Rings behind a `net_ring` pair, freed after both ports are closed.
struct RingSet(Vec<NonNull<ffi::rte_ring>>);

// SAFETY: only freed once, when the last port holding the set drops.
unsafe impl Send for RingSet {}
// SAFETY: never accessed through a shared reference.
unsafe impl Sync for RingSet {}

impl Drop for RingSet {
    fn drop(&mut self) {
        for r in &self.0 {
            // SAFETY: both ports are closed; the set is the rings' only user.
            unsafe { super::ring::free_mbuf_ring(*r) };
        }
    }
}

/// An Ethernet port. Stopped and closed on drop.
pub struct Port {
    id: u16,
    name: String,
    started: bool,
    rx_taken: Vec<AtomicBool>,
    tx_taken: Vec<AtomicBool>,
    _rings: Option<Arc<RingSet>>,
    _eal: Eal,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("started", &self.started)
            .finish()
    }
}

impl Port {
    /// Probes a device from a DPDK device string (a PCI address such as
    /// `0000:3b:00.0`, or a vdev such as `net_tap0,iface=wgdp0`) and returns
    /// its port.
    pub fn probe(eal: &Eal, devargs: &str) -> Result<Port, RteError> {
        let op = format!("rte_dev_probe({devargs})");
        let c = CString::new(devargs).map_err(|_| RteError::invalid(op.clone(), "NUL byte"))?;
        // SAFETY: EAL is initialised; valid string.
        let ret = unsafe { ffi::rte_dev_probe(c.as_ptr()) };
        if ret != 0 {
            return Err(RteError::from_ret(op, ret));
        }
        let name = devargs.split(',').next().unwrap_or(devargs);
        Self::by_name(eal, name)
    }

    /// The port of an already probed device (given to EAL with `-a` or
    /// `--vdev`), by device name.
    pub fn by_name(eal: &Eal, name: &str) -> Result<Port, RteError> {
        let op = format!("rte_eth_dev_get_port_by_name({name})");
        let c = CString::new(name).map_err(|_| RteError::invalid(op.clone(), "NUL byte"))?;
        let mut id = 0u16;
        // SAFETY: valid string and out-pointer.
        let ret = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(RteError::from_ret(op, ret));
        }
        claim(id, &op)?;
        Ok(Port {
            id,
            name: name.to_owned(),
            started: false,
            rx_taken: Vec::new(),
            tx_taken: Vec::new(),
            _rings: None,
            _eal: eal.clone(),
        })
    }

    /// Two `net_ring` ports wired back to back with `queues` queue pairs:
    /// what one transmits on queue q, the other receives on queue q.
    pub fn ring_pair(
        eal: &Eal,
        name: &str,
        queues: u16,
        ring_size: u32,
    ) -> Result<(Port, Port), RteError> {
        let mut rings = RingSet(Vec::new());
        let mut create = |dir: &str, q: u16| -> Result<*mut ffi::rte_ring, RteError> {
            let rname = format!("{name}_{dir}{q}");
            let op = format!("rte_ring_create({rname})");
            let c = CString::new(rname).map_err(|_| RteError::invalid(op.clone(), "NUL byte"))?;
            // SAFETY: EAL is initialised; single producer and consumer, as
            // each queue is used by one lcore on each side.
            let r = unsafe {
                ffi::rte_ring_create(
                    c.as_ptr(),
                    ring_size,
                    ffi::rte_socket_id() as i32,
                    ffi::RING_F_SP_ENQ | ffi::RING_F_SC_DEQ,
                )
            };
            let r = NonNull::new(r).ok_or_else(|| RteError::from_rte_errno(op))?;
            rings.0.push(r);
            Ok(r.as_ptr())
        };
        let mut a_to_b = Vec::new();
        let mut b_to_a = Vec::new();
        for q in 0..queues {
            a_to_b.push(create("ab", q)?);
            b_to_a.push(create("ba", q)?);
        }
        let rings = Arc::new(rings);
        let make = |pname: String, rx: &[*mut ffi::rte_ring], tx: &[*mut ffi::rte_ring]| {
            let op = format!("rte_eth_from_rings({pname})");
            let c = CString::new(pname.clone())
                .map_err(|_| RteError::invalid(op.clone(), "NUL byte"))?;
            // SAFETY: the ring arrays are valid for the call; the rings
            // outlive the port (held in `rings`).
            let id = unsafe {
                ffi::rte_eth_from_rings(
                    c.as_ptr(),
                    rx.as_ptr(),
                    rx.len() as u32,
                    tx.as_ptr(),
                    tx.len() as u32,
                    ffi::rte_socket_id(),
                )
            };
            if id < 0 {
                return Err(RteError::from_ret(op, id));
            }
            claim(id as u16, &op)?;
            Ok(Port {
                id: id as u16,
                name: pname,
                started: false,
                rx_taken: Vec::new(),
                tx_taken: Vec::new(),
                _rings: Some(rings.clone()),
                _eal: eal.clone(),
            })
        };
        let a = make(format!("{name}_a"), &b_to_a, &a_to_b)?;
        let b = make(format!("{name}_b"), &a_to_b, &b_to_a)?;
        Ok((a, b))
    }

    /// The DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> Result<ffi::rte_eth_dev_info, RteError> {
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: valid port id and out-pointer.
        let ret = unsafe { ffi::rte_eth_dev_info_get(self.id, &mut info) };
        if ret != 0 {
            return Err(RteError::from_ret(
                format!("rte_eth_dev_info_get(port {})", self.id),
                ret,
            ));
        }
        Ok(info)
    }

    /// What the device can be configured with.
    pub fn limits(&self) -> Result<PortLimits, RteError> {
        let info = self.info()?;
        Ok(PortLimits {
            driver: cstr_or_empty(info.driver_name),
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            reta_size: info.reta_size,
            hash_key_size: info.hash_key_size,
        })
    }

    /// Configures queues, RSS, offloads and MTU, and sets up every queue with
    /// mbufs from `pool`. The port must be stopped.
    pub fn configure(&mut self, cfg: &PortConfig, pool: &Mempool) -> Result<PortSetup, RteError> {
        let op = |what: &str| format!("{what}(port {} {})", self.id, self.name);
        if self.started {
            return Err(RteError::invalid(
                op("configure"),
                "port is started; stop it first",
            ));
        }
        let info = self.info()?;
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            return Err(RteError::invalid(
                op("configure"),
                "at least one RX and one TX queue",
            ));
        }
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(RteError::invalid(
                op("configure"),
                format!(
                    "{} RX / {} TX queues requested; the device offers at most {} / {}",
                    cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
                ),
            ));
        }
        if let Some(mtu) = cfg.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                return Err(RteError::invalid(
                    op("configure"),
                    format!(
                        "MTU {mtu} outside the device's {}..={}",
                        info.min_mtu, info.max_mtu
                    ),
                ));
            }
        }
        let rss_granted = cfg.rss_hash_functions & info.flow_type_rss_offloads;
        let mut rx_granted = cfg.rx_offloads & info.rx_offload_capa;
        let tx_granted = cfg.tx_offloads & info.tx_offload_capa;
        let mut conf = ffi::rte_eth_conf::default();
        if rss_granted != 0 {
            conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode::RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_granted;
            rx_granted |= flags::rx_rss_hash() & info.rx_offload_capa;
        }
        conf.rxmode.offloads = rx_granted;
        conf.txmode.offloads = tx_granted;
        if let Some(mtu) = cfg.mtu {
            conf.rxmode.mtu = u32::from(mtu);
        }
        // SAFETY: valid port and config.
        let ret =
            unsafe { ffi::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf) };
        if ret != 0 {
            return Err(RteError::from_ret(op("rte_eth_dev_configure"), ret));
        }
        let (mut nb_rx, mut nb_tx) = (cfg.rx_descriptors, cfg.tx_descriptors);
        // SAFETY: valid port and out-pointers.
        let ret = unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut nb_rx, &mut nb_tx) };
        if ret != 0 {
            return Err(RteError::from_ret(
                op("rte_eth_dev_adjust_nb_rx_tx_desc"),
                ret,
            ));
        }
        // SAFETY: valid port.
        let socket = unsafe { ffi::rte_eth_dev_socket_id(self.id) };
        let socket = if socket < 0 {
            ffi::SOCKET_ID_ANY
        } else {
            socket
        } as u32;
        for q in 0..cfg.rx_queues {
            // SAFETY: valid port, queue index, pool; NULL rxconf = defaults.
            let ret = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    nb_rx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if ret != 0 {
                return Err(RteError::from_ret(
                    op(&format!("rte_eth_rx_queue_setup[{q}]")),
                    ret,
                ));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: valid port and queue index; NULL txconf = defaults.
            let ret =
                unsafe { ffi::rte_eth_tx_queue_setup(self.id, q, nb_tx, socket, std::ptr::null()) };
            if ret != 0 {
                return Err(RteError::from_ret(
                    op(&format!("rte_eth_tx_queue_setup[{q}]")),
                    ret,
                ));
            }
        }
        if cfg.promiscuous {
            // SAFETY: valid port. Devices without the notion refuse; that
            // changes nothing for them, so the result is not an error.
            unsafe { ffi::rte_eth_promiscuous_enable(self.id) };
        }
        self.rx_taken = (0..cfg.rx_queues).map(|_| AtomicBool::new(false)).collect();
        self.tx_taken = (0..cfg.tx_queues).map(|_| AtomicBool::new(false)).collect();
        let mut mtu = 0u16;
        // SAFETY: valid port and out-pointer.
        unsafe { ffi::rte_eth_dev_get_mtu(self.id, &mut mtu) };
        Ok(PortSetup {
            driver: cstr_or_empty(info.driver_name),
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            descriptors: (nb_rx, nb_tx),
            rss_requested: cfg.rss_hash_functions,
            rss_granted,
            rss_key: self.rss_key(info.hash_key_size),
            reta: self.reta(info.reta_size),
            rx_offloads: (cfg.rx_offloads, rx_granted),
            tx_offloads: (cfg.tx_offloads, tx_granted),
            mtu,
        })
    }

    /// Reads the RSS key and redirection table into `setup` again, as the
    /// device holds them now. Call it after [`start`](Self::start): some
    /// drivers fill their default table only when the port starts.
    pub fn refresh_rss(&self, setup: &mut PortSetup) -> Result<(), RteError> {
        let info = self.info()?;
        setup.rss_key = self.rss_key(info.hash_key_size);
        setup.reta = self.reta(info.reta_size);
        Ok(())
    }

    fn rss_key(&self, key_size: u8) -> Option<Vec<u8>> {
        let mut key = vec![0u8; usize::from(key_size.max(40))];
        let mut conf = ffi::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: key.len() as u8,
            rss_hf: 0,
        };
        // SAFETY: the key buffer is as long as rss_key_len says.
        let ret = unsafe { ffi::rte_eth_dev_rss_hash_conf_get(self.id, &mut conf) };
        (ret == 0 && conf.rss_hf != 0).then(|| {
            key.truncate(usize::from(conf.rss_key_len));
            key
        })
    }

    fn reta(&self, size: u16) -> Option<Vec<u16>> {
        if size == 0 {
            return None;
        }
        let groups = usize::from(size).div_ceil(64);
        let mut conf: Vec<ffi::rte_eth_rss_reta_entry64> = (0..groups)
            .map(|_| ffi::rte_eth_rss_reta_entry64 {
                mask: u64::MAX,
                reta: [0; 64],
            })
            .collect();
        // SAFETY: `groups` entries cover `size` table slots.
        let ret = unsafe { ffi::rte_eth_dev_rss_reta_query(self.id, conf.as_mut_ptr(), size) };
        (ret == 0).then(|| {
            conf.iter()
                .flat_map(|g| g.reta.iter().copied())
                .take(usize::from(size))
                .collect()
        })
    }

    /// Starts the port.
    pub fn start(&mut self) -> Result<(), RteError> {
        // SAFETY: valid, configured port.
        let ret = unsafe { ffi::rte_eth_dev_start(self.id) };
        if ret != 0 {
            return Err(RteError::from_ret(
                format!("rte_eth_dev_start(port {})", self.id),
                ret,
            ));
        }
        self.started = true;
        Ok(())
    }

    /// Stops the port. No queue handle can be alive (they borrow the port).
    pub fn stop(&mut self) -> Result<(), RteError> {
        if !self.started {
            return Ok(());
        }
        // SAFETY: valid port; no queue is in use (&mut self).
        let ret = unsafe { ffi::rte_eth_dev_stop(self.id) };
        if ret != 0 {
            return Err(RteError::from_ret(
                format!("rte_eth_dev_stop(port {})", self.id),
                ret,
            ));
        }
        self.started = false;
        Ok(())
    }

    /// Takes the handle of RX queue `q`; there is at most one per queue.
    pub fn rx_queue(&self, q: u16) -> Result<RxQueue<'_>, RteError> {
        take(&self.rx_taken, q, "RX", self.id)?;
        Ok(RxQueue {
            port: self,
            queue: q,
            _not_sync: PhantomData,
        })
    }

    /// Takes the handle of TX queue `q`; there is at most one per queue.
    pub fn tx_queue(&self, q: u16) -> Result<TxQueue<'_>, RteError> {
        take(&self.tx_taken, q, "TX", self.id)?;
        Ok(TxQueue {
            port: self,
            queue: q,
            _not_sync: PhantomData,
        })
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], RteError> {
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: valid port and out-pointer.
        let ret = unsafe { ffi::rte_eth_macaddr_get(self.id, &mut a) };
        if ret != 0 {
            return Err(RteError::from_ret(
                format!("rte_eth_macaddr_get(port {})", self.id),
                ret,
            ));
        }
        Ok(a.addr_bytes)
    }

    /// Link state, without waiting.
    pub fn link(&self) -> Result<Link, RteError> {
        let mut l = ffi::rte_eth_link::default();
        // SAFETY: valid port and out-pointer.
        let ret = unsafe { ffi::rte_eth_link_get_nowait(self.id, &mut l) };
        if ret != 0 {
            return Err(RteError::from_ret(
                format!("rte_eth_link_get_nowait(port {})", self.id),
                ret,
            ));
        }
        Ok(Link {
            up: u32::from(l.link_status()) == ffi::RTE_ETH_LINK_UP,
            speed_mbps: l.link_speed,
            full_duplex: u32::from(l.link_duplex()) == ffi::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    /// Basic counters.
    pub fn stats(&self) -> Result<PortStats, RteError> {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: valid port and out-pointer.
        let ret = unsafe { ffi::rte_eth_stats_get(self.id, &mut s) };
        if ret != 0 {
            return Err(RteError::from_ret(
                format!("rte_eth_stats_get(port {})", self.id),
                ret,
            ));
        }
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Extended counters, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, RteError> {
        let op = format!("rte_eth_xstats_get(port {})", self.id);
        // SAFETY: NULL/0 asks for the count.
        let n = unsafe { ffi::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(RteError::from_ret(op, n));
        }
        let mut names = vec![ffi::rte_eth_xstat_name::default(); n as usize];
        let mut values = vec![ffi::rte_eth_xstat::default(); n as usize];
        // SAFETY: buffers hold `n` entries.
        let (a, b) = unsafe {
            (
                ffi::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32),
                ffi::rte_eth_xstats_get(self.id, values.as_mut_ptr(), n as u32),
            )
        };
        if a < 0 || b < 0 {
            return Err(RteError::from_ret(op, a.min(b)));
        }
        let count = a.min(b).min(n) as usize;
        Ok(values[..count]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates xstat names.
                let name = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                Some((name.to_string_lossy().into_owned(), v.value))
            })
            .collect())
    }

    /// Zeroes the basic counters.
    pub fn reset_stats(&self) -> Result<(), RteError> {
        // SAFETY: valid port.
        let ret = unsafe { ffi::rte_eth_stats_reset(self.id) };
        if ret != 0 {
            return Err(RteError::from_ret(
                format!("rte_eth_stats_reset(port {})", self.id),
                ret,
            ));
        }
        Ok(())
    }
}

fn take(flags: &[AtomicBool], q: u16, kind: &str, port: u16) -> Result<(), RteError> {
    let op = format!("{kind} queue {q} of port {port}");
    let slot = flags
        .get(usize::from(q))
        .ok_or_else(|| RteError::invalid(op.clone(), format!("only {} configured", flags.len())))?;
    if slot.swap(true, Ordering::AcqRel) {
        return Err(RteError::invalid(op, "already taken by another handle"));
    }
    Ok(())
}

fn cstr_or_empty(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: DPDK gives NUL-terminated static strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Drop for Port {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(port = self.id, "{e}");
        }
        // SAFETY: stopped; nothing uses the port any more.
        unsafe { ffi::rte_eth_dev_close(self.id) };
        if let Some(c) = CLAIMED.get(usize::from(self.id)) {
            c.store(false, Ordering::Release);
        }
    }
}

/// Port ids that have a [`Port`]: one handle per port, so that the
/// per-queue handles it gives out really are the only ones, and no second
/// handle can close the device under the first.
static CLAIMED: [AtomicBool; ffi::RTE_MAX_ETHPORTS as usize] =
    [const { AtomicBool::new(false) }; ffi::RTE_MAX_ETHPORTS as usize];

fn claim(id: u16, op: &str) -> Result<(), RteError> {
    let taken = CLAIMED
        .get(usize::from(id))
        .is_none_or(|c| c.swap(true, Ordering::AcqRel));
    if taken {
        return Err(RteError::invalid(
            op,
            format!("port {id} already has a handle"),
        ));
    }
    Ok(())
}

/// The only handle on one RX queue of a port. `Send`, so it can move to the
/// lcore that polls it; not `Sync` or `Clone`, so only that lcore polls it.
pub struct RxQueue<'p> {
    port: &'p Port,
    queue: u16,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

/// The only handle on one TX queue of a port (see [`RxQueue`]).
pub struct TxQueue<'p> {
    port: &'p Port,
    queue: u16,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl RxQueue<'_> {
    /// Receives into the burst's free room. Returns how many arrived.
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let room = burst.spare().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the spare slots receive `n` owned mbufs; this handle is the
        // queue's only user.
        unsafe {
            let n = ffi::wgdp_eth_rx_burst(self.port.id, self.queue, burst.spare_ptr(), room);
            burst.set_len(burst.len() + usize::from(n));
            usize::from(n)
        }
    }
}

impl TxQueue<'_> {
    /// Transmits from the front of the burst. The device owns what it took;
    /// what it did not take stays in the burst, in order, still the
    /// caller's. Returns how many were taken.
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut Burst<N>) -> usize {
        let len = burst.len().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the head holds `len` owned mbufs; the PMD takes the first
        // `n`, which the burst forgets. This handle is the queue's only user.
        unsafe {
            let n = ffi::wgdp_eth_tx_burst(self.port.id, self.queue, burst.head_ptr(), len);
            burst.consume_front(usize::from(n));
            usize::from(n)
        }
    }
}

impl Drop for RxQueue<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.port.rx_taken.get(usize::from(self.queue)) {
            f.store(false, Ordering::Release);
        }
    }
}

impl Drop for TxQueue<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.port.tx_taken.get(usize::from(self.queue)) {
            f.store(false, Ordering::Release);
        }
    }
}
