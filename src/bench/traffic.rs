//! The benchmark's traffic: packet size mixes, the address plan, and the
//! frames fed to the workers (plaintext from the LAN, WireGuard data
//! messages sealed by the peers).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use dataplane::outer::{self, Outer};
use dataplane::wire::{checksum, ethernet};
use dpdk_sys::rte::Mbuf;
use protocol::constants::AEAD_TAG_LEN;
use protocol::messages::{padded_len, DATA_HEADER_LEN};
use protocol::time::Instant;
use protocol::transport::Keypair;

/// wgdp's MAC on the tunnel port.
pub const WGDP_TUN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
/// wgdp's MAC on the plaintext port.
pub const WGDP_PLAIN_MAC: [u8; 6] = [2, 0, 0, 0, 2, 1];
/// The tunnel port's gateway (every peer endpoint is behind it).
pub const GATEWAY_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];
/// The LAN host's MAC.
pub const LAN_MAC: [u8; 6] = [2, 0, 0, 0, 2, 2];
/// wgdp's tunnel address.
pub const WGDP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The tunnel port's gateway.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
/// wgdp's plaintext address.
pub const WGDP_PLAIN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The LAN host every peer talks to.
pub const LAN_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// wgdp's WireGuard port.
pub const LISTEN: u16 = 51820;
/// The peers' WireGuard port.
pub const PEER_PORT: u16 = 51821;
/// The tunnel MTU of the benchmark's workers: 1500, so that the largest
/// IMIX packet is tunnelled (WireGuard's usual 1420 would drop it).
pub const MTU: usize = 1500;

/// Peer `p`'s inner address (its allowed IP, a /32 in 10.128.0.0/9).
pub fn peer_inner(p: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + p)
}

/// Peer `p`'s endpoint (in 198.18.0.0/15, behind the gateway).
pub fn peer_endpoint(p: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + p);
    SocketAddr::new(IpAddr::V4(ip), PEER_PORT)
}

/// Inner IP packet sizes, repeated in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// The name in reports (`64`, `imix`).
    pub name: &'static str,
    /// One period of inner IP packet lengths.
    pub sizes: Vec<usize>,
}

impl Mix {
    /// One size.
    pub fn fixed(name: &'static str, size: usize) -> Self {
        Self {
            name,
            sizes: vec![size],
        }
    }

    /// Simple IMIX: Ethernet frames of 64, 570 and 1518 bytes (FCS
    /// included) in the ratio 7:4:1, i.e. inner IP packets of 46, 552 and
    /// 1500 bytes, interleaved.
    pub fn imix() -> Self {
        Self::imix_with_large(1500)
    }

    /// IMIX with its large packets at `large` bytes of inner IP packet
    /// (1420 where a frame cannot exceed 1518 bytes once sealed, as over
    /// memif in `bench/pktgen/run.sh`).
    pub fn imix_with_large(large: usize) -> Self {
        let (s, m, l) = (46, 552, large);
        Self {
            name: "imix",
            sizes: vec![s, m, s, m, s, s, m, s, l, s, m, s],
        }
    }

    /// The mixes the benchmark runs: 64, 512, 1420 and IMIX.
    pub fn all() -> Vec<Mix> {
        vec![
            Mix::fixed("64", 64),
            Mix::fixed("512", 512),
            Mix::fixed("1420", 1420),
            Mix::imix(),
        ]
    }

    /// The size of packet number `i`.
    pub fn size(&self, i: usize) -> usize {
        self.sizes[i % self.sizes.len()]
    }

    /// Mean inner packet length, bytes.
    pub fn mean(&self) -> f64 {
        self.sizes.iter().sum::<usize>() as f64 / self.sizes.len() as f64
    }
}

/// Writes an IPv4/UDP packet of `len` bytes (at least 28) into `p`.
fn write_ipv4_udp(p: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    let len = p.len();
    p.fill(0);
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5201u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
}

/// Why a frame could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The mbuf has no room for the frame.
    #[error("an mbuf has no room for a {0}-byte frame")]
    NoRoom(usize),
    /// The peer's keypair refused to seal.
    #[error("the peer's keypair refused to seal: {0}")]
    Seal(String),
}

/// Bytes of the LAN frame that carries an inner packet of `len` bytes.
pub fn plaintext_frame_len(len: usize) -> usize {
    ethernet::HEADER_LEN + len
}

/// Writes into `f` (of [`plaintext_frame_len`]`(len)` bytes) a LAN frame
/// from the LAN host to peer `p`'s inner address, carrying an IPv4/UDP
/// packet of `len` bytes.
pub fn write_plaintext_frame(f: &mut [u8], p: u32) {
    f[ethernet::field::DST].copy_from_slice(&WGDP_PLAIN_MAC);
    f[ethernet::field::SRC].copy_from_slice(&LAN_MAC);
    f[ethernet::field::ETHERTYPE].copy_from_slice(&ethernet::ethertype::IPV4.to_be_bytes());
    write_ipv4_udp(&mut f[ethernet::HEADER_LEN..], LAN_HOST, peer_inner(p));
}

/// Fills `m` (empty) with [`write_plaintext_frame`]'s frame.
pub fn plaintext_frame(m: &mut Mbuf, p: u32, len: usize) -> Result<(), TrafficError> {
    let total = plaintext_frame_len(len);
    let f = m
        .append(total as u16)
        .map_err(|_| TrafficError::NoRoom(total))?;
    write_plaintext_frame(f, p);
    Ok(())
}

/// Bytes of the data message that carries an inner packet of `len` bytes.
pub fn data_message_len(len: usize) -> usize {
    DATA_HEADER_LEN + padded_len(len, MTU) + AEAD_TAG_LEN
}

/// Writes into `msg` (of [`data_message_len`]`(len)` bytes) a WireGuard data
/// message from peer `p`, sealed with its keypair `kp`: the inner packet is
/// an IPv4/UDP packet of `len` bytes from the peer to the LAN host.
pub fn seal_data(
    msg: &mut [u8],
    p: u32,
    kp: &mut Keypair,
    len: usize,
    now: Instant,
) -> Result<(), TrafficError> {
    msg.fill(0);
    write_ipv4_udp(
        &mut msg[DATA_HEADER_LEN..DATA_HEADER_LEN + len],
        peer_inner(p),
        LAN_HOST,
    );
    kp.seal_message(now, msg)
        .map_err(|e| TrafficError::Seal(e.to_string()))?;
    Ok(())
}

/// Bytes of the frame that [`sealed_frame`] builds for an inner packet of
/// `len` bytes (outer headers to wgdp's IPv4 address).
pub fn sealed_frame_len(len: usize) -> usize {
    outer::header_len(&SocketAddr::new(IpAddr::V4(WGDP_TUN), LISTEN)) + data_message_len(len)
}

/// Writes into `f` (of [`sealed_frame_len`]`(len)` bytes) a WireGuard
/// data message from peer `p` (sealed with its keypair `kp`) to wgdp, in
/// its outer frame; the inner packet is an IPv4/UDP packet of `len` bytes
/// from the peer to the LAN host.
pub fn write_sealed_frame(
    f: &mut [u8],
    p: u32,
    kp: &mut Keypair,
    len: usize,
    now: Instant,
) -> Result<(), TrafficError> {
    let o = Outer {
        src_mac: GATEWAY_MAC,
        dst_mac: WGDP_TUN_MAC,
        src: peer_endpoint(p),
        dst: SocketAddr::new(IpAddr::V4(WGDP_TUN), LISTEN),
        ecn: 0,
    };
    let hlen = outer::header_len(&o.dst);
    let total = f.len();
    seal_data(&mut f[hlen..], p, kp, len, now)?;
    outer::write(f, &o, false).map_err(|_| TrafficError::NoRoom(total))?;
    Ok(())
}

/// Fills `m` (empty) with [`write_sealed_frame`]'s frame.
pub fn sealed_frame(
    m: &mut Mbuf,
    p: u32,
    kp: &mut Keypair,
    len: usize,
    now: Instant,
) -> Result<(), TrafficError> {
    let total = sealed_frame_len(len);
    let f = m
        .append(total as u16)
        .map_err(|_| TrafficError::NoRoom(total))?;
    write_sealed_frame(f, p, kp, len, now)
}

/// A frame with the outer headers `o` carrying `payload` (a WireGuard
/// message), checksums computed.
pub fn outer_frame(o: &Outer, payload: &[u8]) -> Result<Vec<u8>, TrafficError> {
    let hlen = outer::header_len(&o.dst);
    let mut f = vec![0u8; hlen + payload.len()];
    f[hlen..].copy_from_slice(payload);
    outer::write(&mut f, o, false).map_err(|_| TrafficError::NoRoom(f.len()))?;
    Ok(f)
}

/// A frame from `src` (behind the gateway) to wgdp's listen port carrying
/// `payload` (a handshake message of a flood, or a legitimate one).
pub fn udp_frame(src: SocketAddr, payload: &[u8]) -> Result<Vec<u8>, TrafficError> {
    let o = Outer {
        src_mac: GATEWAY_MAC,
        dst_mac: WGDP_TUN_MAC,
        src,
        dst: SocketAddr::new(IpAddr::V4(WGDP_TUN), LISTEN),
        ecn: 0,
    };
    outer_frame(&o, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imix_is_seven_four_one() {
        let m = Mix::imix();
        let count = |s| m.sizes.iter().filter(|&&x| x == s).count();
        assert_eq!((count(46), count(552), count(1500)), (7, 4, 1));
        assert!(m.sizes.iter().all(|&s| s <= MTU));
    }

    #[test]
    fn addresses_are_distinct_per_peer() {
        assert_ne!(peer_inner(0), peer_inner(99_999));
        assert_eq!(peer_inner(1), Ipv4Addr::new(10, 128, 0, 1));
        assert_eq!(
            peer_endpoint(65_536).ip(),
            IpAddr::V4(Ipv4Addr::new(198, 19, 0, 0))
        );
    }
}
