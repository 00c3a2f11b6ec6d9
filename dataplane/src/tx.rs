//! Where a worker's packets leave it: one burst per destination (the two
//! ports' TX queues, the control thread's rings, the other workers'
//! handoff rings), sent once per round or when full, and the drop
//! accounting every stage of the data path uses.
//!
//! [`Tx`] owns the bursts and what they are sent into, so that the rule
//! "a packet the destination refused is counted as a drop" lives in one
//! place ([`Tx::flush`]), as does "a drop is counted per reason and per
//! port" ([`Tx::drop_packet`]). A frame for a port that runs a VLAN gets
//! its tag here (see `vlan`).

use std::sync::Arc;

use dpdk_sys::rte::{Burst, Mbuf, RingConsumer, RingProducer, TxQueue};

use crate::counters::{DropReason, Event, WorkerCounters};
use crate::port::PortSide;
use crate::vlan;

/// `mbuf.port` of an mbuf no port received (`RTE_MBUF_PORT_INVALID`).
const NO_PORT: u16 = u16::MAX;

/// Where a packet leaves this worker for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    /// The tunnel port's TX queue.
    TunTx,
    /// The plaintext port's TX queue.
    PlainTx,
    /// The control thread, from the given side.
    Control(PortSide),
    /// Another worker.
    Handoff(usize),
}

/// The rings a [`Tx`] sends into besides the ports' TX queues (taken from
/// `WorkerLinks`).
pub(crate) struct TxRings {
    /// Frames for the control thread from the tunnel port.
    pub(crate) to_control_tun: RingProducer,
    /// Frames for the control thread from the plaintext port.
    pub(crate) to_control_plain: RingProducer,
    /// Handoff rings of the other workers, by index (`None` for this one).
    pub(crate) handoff_out: Vec<Option<RingProducer>>,
    /// Frames the control thread sends out of the tunnel port through
    /// this worker's TX queue (see `control::link::ControlTx`).
    pub(crate) relay_tun: Option<RingConsumer>,
    /// The same for the plaintext port.
    pub(crate) relay_plain: Option<RingConsumer>,
}

/// A worker's outgoing bursts and drop accounting.
pub(crate) struct Tx<'p> {
    tun_tx: TxQueue<'p>,
    plain_tx: TxQueue<'p>,
    rings: TxRings,
    tun_out: Burst,
    plain_out: Burst,
    ctl_tun: Burst,
    ctl_plain: Burst,
    handoff: Vec<Burst>,
    counters: Arc<WorkerCounters>,
    /// DPDK port id of the tunnel port (to count drops per port).
    tun_port: u16,
    /// The ports' VLANs (`PortNet::vlan`).
    tun_vlan: Option<u16>,
    plain_vlan: Option<u16>,
}

impl<'p> Tx<'p> {
    /// Bursts for `workers` workers' handoff rings, sending into the given
    /// queues and rings, counting into `counters`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        tun_tx: TxQueue<'p>,
        plain_tx: TxQueue<'p>,
        rings: TxRings,
        workers: usize,
        counters: Arc<WorkerCounters>,
        tun_port: u16,
        tun_vlan: Option<u16>,
        plain_vlan: Option<u16>,
    ) -> Self {
        Self {
            tun_tx,
            plain_tx,
            rings,
            tun_out: Burst::new(),
            plain_out: Burst::new(),
            ctl_tun: Burst::new(),
            ctl_plain: Burst::new(),
            handoff: (0..workers).map(|_| Burst::new()).collect(),
            counters,
            tun_port,
            tun_vlan,
            plain_vlan,
        }
    }

    /// Counts a drop, per reason and per port the frame came from, and
    /// frees the packet.
    #[inline]
    pub(crate) fn drop_packet(&self, m: Mbuf, reason: DropReason) {
        self.counters.count_drop(reason);
        match m.port() {
            p if p == self.tun_port => self.counters.add(Event::TunnelDropped, 1),
            // Allocated here (keepalives): no port.
            NO_PORT => {}
            _ => self.counters.add(Event::PlaintextDropped, 1),
        }
        drop(m);
    }

    /// Counts `n` drops for `reason` of packets already freed.
    #[inline]
    pub(crate) fn count_drops(&self, reason: DropReason, n: u64) {
        for _ in 0..n {
            self.counters.count_drop(reason);
        }
    }

    /// A frame received on the port of `side`: the untagged frame, or
    /// `None` when it was not the port's VLAN (dropped as `vlan`).
    #[inline]
    pub(crate) fn vlan_rx(&self, m: Mbuf, side: PortSide) -> Option<Mbuf> {
        let port_vlan = match side {
            PortSide::Tunnel => self.tun_vlan,
            PortSide::Plaintext => self.plain_vlan,
        };
        vlan::untag(m, port_vlan)
            .map_err(|m| self.drop_packet(m, DropReason::Vlan))
            .ok()
    }

    /// Queues a packet for `out`, sending the burst first if it is full.
    #[inline]
    pub(crate) fn emit(&mut self, out: Out, m: Mbuf) {
        let port_vlan = match out {
            Out::TunTx => self.tun_vlan,
            Out::PlainTx => self.plain_vlan,
            _ => None,
        };
        let m = match vlan::tag(m, port_vlan) {
            Ok(m) => m,
            Err(m) => return self.drop_packet(m, DropReason::NoRoom),
        };
        if let Err(m) = self.burst(out).push(m) {
            self.flush(out);
            if let Err(m) = self.burst(out).push(m) {
                // Unreachable after a flush, which empties the burst.
                self.drop_packet(m, DropReason::TxFull);
            }
        }
    }

    fn burst(&mut self, out: Out) -> &mut Burst {
        match out {
            Out::TunTx => &mut self.tun_out,
            Out::PlainTx => &mut self.plain_out,
            Out::Control(PortSide::Tunnel) => &mut self.ctl_tun,
            Out::Control(PortSide::Plaintext) => &mut self.ctl_plain,
            Out::Handoff(i) => &mut self.handoff[i],
        }
    }

    /// Sends the burst for `out`; what its destination refused is freed
    /// and counted (`tx_full`, `exception_full`, `handoff_full`).
    fn flush(&mut self, out: Out) {
        if self.burst(out).is_empty() {
            return;
        }
        let (left, reason) = match out {
            Out::TunTx => {
                self.tun_tx.tx_burst(&mut self.tun_out);
                (&mut self.tun_out, DropReason::TxFull)
            }
            Out::PlainTx => {
                self.plain_tx.tx_burst(&mut self.plain_out);
                (&mut self.plain_out, DropReason::TxFull)
            }
            Out::Control(PortSide::Tunnel) => {
                self.rings.to_control_tun.enqueue_burst(&mut self.ctl_tun);
                (&mut self.ctl_tun, DropReason::ExceptionFull)
            }
            Out::Control(PortSide::Plaintext) => {
                self.rings
                    .to_control_plain
                    .enqueue_burst(&mut self.ctl_plain);
                (&mut self.ctl_plain, DropReason::ExceptionFull)
            }
            Out::Handoff(i) => {
                if let Some(ring) = self.rings.handoff_out.get(i).and_then(Option::as_ref) {
                    ring.enqueue_burst(&mut self.handoff[i]);
                }
                (&mut self.handoff[i], DropReason::HandoffFull)
            }
        };
        let refused = left.len() as u64;
        if refused > 0 {
            left.clear();
            self.count_drops(reason, refused);
        }
    }

    /// Sends every burst (once per round).
    pub(crate) fn flush_all(&mut self) {
        self.flush(Out::TunTx);
        self.flush(Out::PlainTx);
        self.flush(Out::Control(PortSide::Tunnel));
        self.flush(Out::Control(PortSide::Plaintext));
        for i in 0..self.handoff.len() {
            self.flush(Out::Handoff(i));
        }
    }

    /// Moves the control thread's relayed frames into the TX bursts;
    /// returns how many.
    pub(crate) fn relay(&mut self) -> usize {
        let mut n = 0;
        if self.rings.relay_tun.is_some() {
            self.flush(Out::TunTx);
            if let Some(r) = self.rings.relay_tun.as_mut() {
                n += r.dequeue_burst(&mut self.tun_out);
            }
        }
        if self.rings.relay_plain.is_some() {
            self.flush(Out::PlainTx);
            if let Some(r) = self.rings.relay_plain.as_mut() {
                n += r.dequeue_burst(&mut self.plain_out);
            }
        }
        n
    }
}
