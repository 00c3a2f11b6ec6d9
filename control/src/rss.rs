//! Predicting the RX queue a peer's packets arrive on: the Toeplitz hash
//! over the outer addresses and ports, then the device's redirection table
//! (RETA). Used to give a peer with a configured endpoint to the worker
//! whose tunnel-port queue will receive its packets, before the first one
//! arrives, where the device reports its RSS key, hash types and RETA.
//! Devices that report less leave ownership to learning on the data path
//! (`dataplane::rehome`).

use std::net::{IpAddr, SocketAddr};

use dpdk_sys::rte::{flags, PortSetup};

/// Microsoft's Toeplitz hash of `input` under `key` (left-most key bits
/// first; the key must be at least 4 bytes longer than the input).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    // The 32-bit window of the key at the current input bit, and the key
    // bits that slide into it.
    let mut window = key
        .iter()
        .take(4)
        .fold(0u32, |w, &b| (w << 8) | u32::from(b));
    for (i, &byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// The hash input for a packet from `src` to `dst`: source address,
/// destination address, then (with `ports`) source and destination port.
fn tuple(src: SocketAddr, dst: SocketAddr, ports: bool) -> Option<Vec<u8>> {
    let mut input = Vec::with_capacity(36);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            input.extend_from_slice(&s.octets());
            input.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            input.extend_from_slice(&s.octets());
            input.extend_from_slice(&d.octets());
        }
        _ => return None,
    }
    if ports {
        input.extend_from_slice(&src.port().to_be_bytes());
        input.extend_from_slice(&dst.port().to_be_bytes());
    }
    Some(input)
}

/// Which fields the device hashes, per address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFields {
    /// Not hashed: every packet of the family lands on queue 0.
    None,
    /// Addresses only.
    Addresses,
    /// Addresses and UDP ports.
    AddressesAndPorts,
}

/// A device's RSS configuration, as far as prediction needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RssPredictor {
    key: Vec<u8>,
    v4: HashFields,
    v6: HashFields,
    reta: Vec<u16>,
}

impl RssPredictor {
    /// A predictor from a key, the fields hashed per family and a
    /// redirection table; `None` when the table is empty or the key too
    /// short for an IPv6 tuple with ports (36 + 4 bytes).
    pub fn new(key: Vec<u8>, v4: HashFields, v6: HashFields, reta: Vec<u16>) -> Option<Self> {
        (key.len() >= 40 && !reta.is_empty()).then_some(Self { key, v4, v6, reta })
    }

    /// The predictor for a configured port, when it reports its key, its
    /// granted hash types and its RETA (`None` for every vdev here).
    pub fn from_setup(setup: &PortSetup) -> Option<Self> {
        let fields = |udp: u64, ip: u64| {
            if setup.rss_granted & udp != 0 {
                HashFields::AddressesAndPorts
            } else if setup.rss_granted & ip != 0 {
                HashFields::Addresses
            } else {
                HashFields::None
            }
        };
        let v4 = fields(flags::rss_ipv4_udp(), flags::rss_ipv4());
        let v6 = fields(flags::rss_ipv6_udp(), flags::rss_ipv6());
        if v4 == HashFields::None && v6 == HashFields::None {
            return None;
        }
        Self::new(setup.rss_key.clone()?, v4, v6, setup.reta.clone()?)
    }

    /// The RSS hash of a UDP packet from `src` to `dst`.
    pub fn hash(&self, src: SocketAddr, dst: SocketAddr) -> Option<u32> {
        let fields = if src.is_ipv4() { self.v4 } else { self.v6 };
        let ports = match fields {
            HashFields::None => return Some(0),
            HashFields::Addresses => false,
            HashFields::AddressesAndPorts => true,
        };
        Some(toeplitz(&self.key, &tuple(src, dst, ports)?))
    }

    /// The RX queue a UDP packet from `src` to `dst` is delivered to: the
    /// RETA entry the hash's low bits select (DPDK drivers index the table
    /// with `hash % size`).
    pub fn queue(&self, src: SocketAddr, dst: SocketAddr) -> Option<u16> {
        let h = self.hash(src, dst)?;
        let slot = h as usize % self.reta.len();
        self.reta.get(slot).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of Microsoft's "Verifying the RSS Hash Calculation".
    const MS_KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    /// (destination, source, addresses only, with ports) from Microsoft's
    /// IPv4 and IPv6 tables. The "with TCP" column hashes the same
    /// 12/36-byte tuple a UDP hash does.
    const VECTORS: [(&str, &str, u32, u32); 8] = [
        (
            "161.142.100.80:1766",
            "66.9.149.187:2794",
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            "65.69.140.83:4739",
            "199.92.111.2:14230",
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            "12.22.207.184:38024",
            "24.19.198.95:12898",
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            "209.142.163.6:2217",
            "38.27.205.30:48228",
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            "202.188.127.2:1303",
            "153.39.163.191:44251",
            0x5d18_09c5,
            0x10e8_28a2,
        ),
        (
            "[3ffe:2501:200:3::1]:1766",
            "[3ffe:2501:200:1fff::7]:2794",
            0x2cc1_8cd5,
            0x4020_7d3d,
        ),
        (
            "[ff02::1]:4739",
            "[3ffe:501:8::260:97ff:fe40:efab]:14230",
            0x0f0c_461c,
            0xdde5_1bbf,
        ),
        (
            "[fe80::200:f8ff:fe21:67cf]:38024",
            "[3ffe:1900:4545:3:200:f8ff:fe21:67cf]:44251",
            0x4b61_e985,
            0x02d1_feef,
        ),
    ];

    #[test]
    fn microsoft_verification_vectors() {
        for (dst, src, addr_only, with_ports) in VECTORS {
            let (dst, src) = (sa(dst), sa(src));
            let a = toeplitz(&MS_KEY, &tuple(src, dst, false).expect("tuple"));
            let p = toeplitz(&MS_KEY, &tuple(src, dst, true).expect("tuple"));
            assert_eq!(a, addr_only, "{src} -> {dst}, addresses only");
            assert_eq!(p, with_ports, "{src} -> {dst}, with ports");
        }
    }

    #[test]
    fn queue_follows_the_reta() {
        let reta: Vec<u16> = (0..128).map(|i| (i % 3) as u16).collect();
        let both = HashFields::AddressesAndPorts;
        let p = RssPredictor::new(MS_KEY.to_vec(), both, both, reta.clone()).expect("predictor");
        for (dst, src, _, with_ports) in VECTORS {
            let q = p.queue(sa(src), sa(dst)).expect("queue");
            assert_eq!(q, reta[with_ports as usize % 128]);
            assert_eq!(q, (with_ports % 128 % 3) as u16);
        }
        // Addresses only: the port does not matter.
        let addr = HashFields::Addresses;
        let p = RssPredictor::new(MS_KEY.to_vec(), addr, addr, reta).expect("predictor");
        let (dst, src) = (sa(VECTORS[0].0), sa(VECTORS[0].1));
        let moved = SocketAddr::new(src.ip(), 9);
        assert_eq!(p.hash(src, dst), Some(VECTORS[0].2));
        assert_eq!(p.queue(src, dst), p.queue(moved, dst));
    }

    #[test]
    fn unhashed_families_and_mixed_tuples() {
        let p = RssPredictor::new(
            MS_KEY.to_vec(),
            HashFields::AddressesAndPorts,
            HashFields::None,
            vec![3, 1],
        )
        .expect("predictor");
        assert_eq!(
            p.queue(sa("[::1]:1"), sa("[::2]:2")),
            Some(3),
            "v6 unhashed"
        );
        assert_eq!(p.queue(sa("10.0.0.1:1"), sa("[::2]:2")), None);
        assert!(RssPredictor::new(
            MS_KEY[..39].to_vec(),
            HashFields::None,
            HashFields::None,
            vec![0]
        )
        .is_none());
        assert!(
            RssPredictor::new(MS_KEY.to_vec(), HashFields::None, HashFields::None, vec![])
                .is_none()
        );
    }
}
