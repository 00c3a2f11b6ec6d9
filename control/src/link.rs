//! The control thread's side of one port: its own TX queue on the port,
//! the kernel exception interface (a TAP carrying the port's addresses and
//! MAC), the ring of frames the workers pass up, and the neighbour table.
//!
//! Frames from the workers are: ARP and neighbour discovery (answered for
//! our addresses, learned from, replies also shown to the kernel); frames
//! whose destination MAC is zero (their next hop is being resolved: queued
//! until it is, bounded); everything else is for the kernel. What the
//! kernel writes to the TAP goes out of the port as it is. On a port that
//! runs a VLAN (`vlan = N`), the workers strip the tag of what they pass up
//! and everything sent to the port gets it here (`push_port`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use dataplane::command::PortSide;
use dataplane::outer::{self, Outer};
use dataplane::route::PortNet;
use dataplane::wire::{classify, ethernet, ip_protocol, ipv4, ipv6, L3Kind};
use dpdk_sys::rte::{Burst, Mbuf, Mempool, Port, RingConsumer, RingProducer, RxQueue, TxQueue};
use protocol::time::Instant;

use crate::counters::{bump, ControlCounters};
use crate::neigh::{self, Mac, NeighbourTable, Probe, Resolve};

/// ICMPv6 types of neighbour discovery (RFC 4861 section 4).
const ND_NEIGHBOUR_SOLICITATION: u8 = 135;
const ND_NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// ARP opcode of a reply.
const ARP_REPLY: u16 = 2;

/// How the control thread transmits on a port.
pub enum ControlTx<'p> {
    /// Its own TX queue (the port has one more TX than RX queues).
    Queue(TxQueue<'p>),
    /// A ring that worker 0 drains onto its TX queue, for devices that need
    /// as many RX as TX queues (`net_tap`): an extra RX queue would receive
    /// a share of the flows that no worker polls.
    Relay(RingProducer),
}

impl ControlTx<'_> {
    /// Sends from the front of `burst`; what was not taken stays.
    fn send(&mut self, burst: &mut Burst) {
        match self {
            ControlTx::Queue(q) => {
                q.tx_burst(burst);
            }
            ControlTx::Relay(r) => {
                r.enqueue_burst(burst);
            }
        }
    }
}

/// One port as the control thread drives it.
pub struct PortLink<'p> {
    /// Which port.
    pub side: PortSide,
    /// The port (for its statistics).
    pub port: &'p Port,
    /// Its MAC, addresses and gateways.
    pub net: PortNet,
    /// How the control thread transmits on the port.
    pub port_tx: ControlTx<'p>,
    /// The exception TAP's RX queue (what the kernel sends).
    pub tap_rx: RxQueue<'p>,
    /// The exception TAP's TX queue (what the kernel receives).
    pub tap_tx: TxQueue<'p>,
    /// Frames the workers pass up.
    pub from_workers: RingConsumer,
    /// Next-hop resolution, with the frames waiting for it.
    pub neigh: NeighbourTable<Mbuf>,
    out: Burst,
    to_tap: Burst,
}

impl<'p> PortLink<'p> {
    /// Assembles a link.
    pub fn new(
        side: PortSide,
        port: &'p Port,
        net: PortNet,
        port_tx: ControlTx<'p>,
        tap: (RxQueue<'p>, TxQueue<'p>),
        from_workers: RingConsumer,
        neigh: NeighbourTable<Mbuf>,
    ) -> Self {
        Self {
            side,
            port,
            net,
            port_tx,
            tap_rx: tap.0,
            tap_tx: tap.1,
            from_workers,
            neigh,
            out: Burst::new(),
            to_tap: Burst::new(),
        }
    }

    fn v4_addrs(&self) -> Vec<Ipv4Addr> {
        self.net
            .addresses
            .iter()
            .filter_map(|a| match a.addr {
                IpAddr::V4(v4) => Some(v4),
                IpAddr::V6(_) => None,
            })
            .collect()
    }

    fn v6_addrs(&self) -> Vec<Ipv6Addr> {
        let mut v: Vec<Ipv6Addr> = self
            .net
            .addresses
            .iter()
            .filter_map(|a| match a.addr {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        v.push(neigh::link_local(self.net.mac));
        v
    }

    /// Queues a frame for the port, with the port's VLAN tag when it runs
    /// one (the workers strip it on RX: everything here is untagged).
    fn push_port(&mut self, mut m: Mbuf, counters: &ControlCounters) {
        if let Some(v) = self.net.vlan {
            if m.insert_vlan(v).is_err() {
                return bump(&counters.tx_drops);
            }
        }
        if let Err(m) = self.out.push(m) {
            self.flush_port(counters);
            if self.out.push(m).is_err() {
                bump(&counters.tx_drops);
            }
        }
    }

    fn push_tap(&mut self, m: Mbuf, counters: &ControlCounters) {
        bump(&counters.to_kernel);
        if let Err(m) = self.to_tap.push(m) {
            self.flush_tap(counters);
            if self.to_tap.push(m).is_err() {
                bump(&counters.tx_drops);
            }
        }
    }

    fn flush_port(&mut self, counters: &ControlCounters) {
        self.port_tx.send(&mut self.out);
        for _ in 0..self.out.len() {
            bump(&counters.tx_drops);
        }
        self.out.clear();
    }

    fn flush_tap(&mut self, counters: &ControlCounters) {
        self.tap_tx.tx_burst(&mut self.to_tap);
        for _ in 0..self.to_tap.len() {
            bump(&counters.tx_drops);
        }
        self.to_tap.clear();
    }

    /// Sends a frame built here (ARP reply, probe) out of the port.
    fn send_bytes(&mut self, frame: &[u8], pool: &Mempool, counters: &ControlCounters) {
        let Some(mut m) = pool.alloc() else {
            return bump(&counters.alloc_failures);
        };
        let Ok(len) = u16::try_from(frame.len()) else {
            return;
        };
        match m.append(len) {
            Ok(buf) => buf.copy_from_slice(frame),
            Err(_) => return bump(&counters.alloc_failures),
        }
        self.push_port(m, counters);
    }

    /// Sends a frame whose destination MAC is to be resolved from its IP
    /// destination: now when known, else after resolution (bounded queue).
    fn route_out(&mut self, mut m: Mbuf, now: Instant, pool: &Mempool, counters: &ControlCounters) {
        let Some(dst) = ip_destination(m.data()) else {
            return bump(&counters.unresolved_drops);
        };
        let Some(hop) = self.net.next_hop(dst) else {
            return bump(&counters.unresolved_drops);
        };
        match self.neigh.resolve(hop, m, now) {
            Resolve::Ready(mac, frame) => {
                m = frame;
                set_dst_mac(&mut m, mac);
                self.push_port(m, counters);
            }
            Resolve::Queued { probe_now } => {
                if probe_now {
                    self.probe(
                        Probe {
                            ip: hop,
                            unicast: None,
                        },
                        pool,
                        counters,
                    );
                }
            }
            Resolve::Refused(frame, _) => {
                drop(frame);
                bump(&counters.unresolved_drops);
            }
        }
    }

    fn probe(&mut self, probe: Probe, pool: &Mempool, counters: &ControlCounters) {
        bump(&counters.neighbour_probes);
        match probe.ip {
            IpAddr::V4(target) => {
                let Some(IpAddr::V4(src)) = self.net.source_for(probe.ip) else {
                    return;
                };
                let frame = match probe.unicast {
                    Some(mac) => neigh::arp_probe_unicast(self.net.mac, src, target, mac),
                    None => neigh::arp_request(self.net.mac, src, target),
                };
                self.send_bytes(&frame, pool, counters);
            }
            IpAddr::V6(target) => {
                let src = match self.net.source_for(probe.ip) {
                    Some(IpAddr::V6(a)) => a,
                    _ => neigh::link_local(self.net.mac),
                };
                let frame = match probe.unicast {
                    Some(mac) => {
                        neigh::neighbour_solicitation_unicast(self.net.mac, src, target, mac)
                    }
                    None => neigh::neighbour_solicitation(self.net.mac, src, target),
                };
                self.send_bytes(&frame, pool, counters);
            }
        }
    }

    /// Records a neighbour and sends what waited for it; returns whether
    /// the workers must be told.
    fn learn(&mut self, ip: IpAddr, mac: Mac, now: Instant, counters: &ControlCounters) -> bool {
        bump(&counters.neighbours_learned);
        let learned = self.neigh.learn(ip, mac, now);
        for mut m in learned.released {
            set_dst_mac(&mut m, mac);
            self.push_port(m, counters);
        }
        learned.changed
    }

    /// Handles one frame passed up by a worker. Returns a neighbour the
    /// workers must learn, if any.
    fn handle_frame(
        &mut self,
        m: Mbuf,
        now: Instant,
        pool: &Mempool,
        counters: &ControlCounters,
    ) -> Option<(IpAddr, Mac)> {
        let data = m.data();
        if data.get(ethernet::field::DST) == Some(&[0u8; 6][..]) {
            self.route_out(m, now, pool, counters);
            return None;
        }
        let Ok(cls) = classify(data) else {
            self.push_tap(m, counters);
            return None;
        };
        match cls.l3 {
            L3Kind::Arp => {
                let action = neigh::handle_arp(data, self.net.mac, &self.v4_addrs()).ok()?;
                let is_reply = arp_opcode(data, cls.l3_offset) == Some(ARP_REPLY);
                let mut tell = None;
                if let Some((ip, mac)) = action.learn {
                    if self.learn(IpAddr::V4(ip), mac, now, counters) {
                        tell = Some((IpAddr::V4(ip), mac));
                    }
                }
                if let Some(reply) = action.reply {
                    bump(&counters.neighbour_replies);
                    self.send_bytes(&reply, pool, counters);
                }
                // The kernel resolves its own traffic: let it see replies.
                if is_reply {
                    self.push_tap(m, counters);
                }
                tell
            }
            L3Kind::Ipv6 if is_nd(data, &cls) => {
                let action = match neigh::handle_nd(data, self.net.mac, &self.v6_addrs()) {
                    Ok(Some(a)) => a,
                    _ => {
                        self.push_tap(m, counters);
                        return None;
                    }
                };
                let mut tell = None;
                if let Some((ip, mac)) = action.learn {
                    if self.learn(IpAddr::V6(ip), mac, now, counters) {
                        tell = Some((IpAddr::V6(ip), mac));
                    }
                }
                let answered = action.reply.is_some();
                if let Some(reply) = action.reply {
                    bump(&counters.neighbour_replies);
                    self.send_bytes(&reply, pool, counters);
                }
                if !answered {
                    self.push_tap(m, counters);
                }
                tell
            }
            _ => {
                self.push_tap(m, counters);
                None
            }
        }
    }
}

fn set_dst_mac(m: &mut Mbuf, mac: Mac) {
    if let Some(dst) = m.data_mut().get_mut(ethernet::field::DST) {
        dst.copy_from_slice(&mac);
    }
}

fn arp_opcode(frame: &[u8], l3: usize) -> Option<u16> {
    frame
        .get(l3 + 6..l3 + 8)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Whether an IPv6 frame is a neighbour solicitation or advertisement.
fn is_nd(frame: &[u8], cls: &dataplane::wire::Classification) -> bool {
    cls.protocol == Some(ip_protocol::ICMPV6)
        && cls
            .l4_offset
            .and_then(|o| frame.get(o))
            .is_some_and(|t| matches!(*t, ND_NEIGHBOUR_SOLICITATION | ND_NEIGHBOUR_ADVERTISEMENT))
}

/// The IP destination of an Ethernet frame.
fn ip_destination(frame: &[u8]) -> Option<IpAddr> {
    let cls = classify(frame).ok()?;
    let l3 = frame.get(cls.l3_offset..)?;
    match cls.l3 {
        L3Kind::Ipv4 => Some(IpAddr::V4(
            ipv4::Packet::new_checked(l3).ok()?.dst_addr().into(),
        )),
        L3Kind::Ipv6 => Some(IpAddr::V6(
            ipv6::Packet::new_checked(l3).ok()?.dst_addr().into(),
        )),
        _ => None,
    }
}

impl PortLink<'_> {
    /// One round of the port's exception path: frames the workers passed
    /// up, frames from the kernel, neighbour probes and expiries. Returns
    /// the frames handled and the neighbours learned (every worker is to
    /// hear of them).
    pub(crate) fn round(
        &mut self,
        now: Instant,
        pool: &Mempool,
        counters: &ControlCounters,
    ) -> (usize, Vec<(IpAddr, Mac)>) {
        let mut learned = Vec::new();
        let mut rx: Burst = Burst::new();
        let mut work = self.from_workers.dequeue_burst(&mut rx);
        for m in rx.drain() {
            if let Some(n) = self.handle_frame(m, now, pool, counters) {
                learned.push(n);
            }
        }
        let n = self.tap_rx.rx_burst(&mut rx);
        work += n;
        for m in rx.drain() {
            bump(&counters.from_kernel);
            self.push_port(m, counters);
        }
        let poll = self.neigh.poll(now);
        for probe in poll.probes {
            self.probe(probe, pool, counters);
        }
        for m in poll.expired {
            drop(m);
            bump(&counters.unresolved_drops);
        }
        self.flush_port(counters);
        self.flush_tap(counters);
        (work, learned)
    }

    /// Sends a UDP datagram from our WireGuard port `listen_port`
    /// (handshakes) through this (the tunnel) port, from `local` while that
    /// is one of its addresses.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_udp(
        &mut self,
        dst: SocketAddr,
        local: Option<IpAddr>,
        listen_port: u16,
        payload: &[u8],
        now: Instant,
        pool: &Mempool,
        counters: &ControlCounters,
    ) {
        let Some(src) = self.net.source_from(dst.ip(), local) else {
            return bump(&counters.unresolved_drops);
        };
        let Some(mut m) = pool.alloc() else {
            return bump(&counters.alloc_failures);
        };
        let hlen = outer::header_len(&dst);
        let Ok(len) = u16::try_from(hlen + payload.len()) else {
            return;
        };
        let Ok(buf) = m.append(len) else {
            return bump(&counters.alloc_failures);
        };
        buf[hlen..].copy_from_slice(payload);
        let o = Outer {
            src_mac: self.net.mac,
            dst_mac: [0; 6],
            src: SocketAddr::new(src, listen_port),
            dst,
            ecn: 0,
        };
        if outer::write(m.data_mut(), &o, false).is_err() {
            return bump(&counters.unresolved_drops);
        }
        self.route_out(m, now, pool, counters);
        self.flush_port(counters);
    }

    /// Starts resolving `hops` (next hops on this port, each once), so
    /// that the first packets need not wait.
    pub(crate) fn prime(&mut self, hops: &[IpAddr], pool: &Mempool, counters: &ControlCounters) {
        for &ip in hops {
            self.probe(Probe { ip, unicast: None }, pool, counters);
        }
        self.flush_port(counters);
    }
}
