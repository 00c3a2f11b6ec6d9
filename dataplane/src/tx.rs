//! Where a worker's packets leave it: one burst per destination (each
//! port's TX queue and control thread ring, the other workers'
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
use crate::port::{PortRoles, PortSide};
use crate::rehome::{handoff_tag, tag_side, Via};
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
    /// Frames for the control thread from the plaintext port (unused in
    /// one-armed mode: the one port's frames all go to `to_control_tun`).
    pub(crate) to_control_plain: RingProducer,
    /// Handoff rings of the other workers, by index (`None` for this one).
    pub(crate) handoff_out: Vec<Option<RingProducer>>,
    /// Frames the control thread sends out of the tunnel port through
    /// this worker's TX queue (see `control::link::ControlTx`).
    pub(crate) relay_tun: Option<RingConsumer>,
    /// The same for the plaintext port (unused in one-armed mode).
    pub(crate) relay_plain: Option<RingConsumer>,
}

/// What a [`Tx`] keeps per (logical) port: its TX burst, the control
/// thread's ring for the port's exceptions and their burst, the port's
/// VLAN and the control thread's relayed frames.
struct PortTx {
    out: Burst,
    to_control: RingProducer,
    ctl: Burst,
    relay: Option<RingConsumer>,
    vlan: Option<u16>,
}

/// A worker's outgoing bursts and drop accounting.
pub(crate) struct Tx<'p> {
    /// The TX queue on each physical port (`PortRoles::queue`).
    queues: Vec<TxQueue<'p>>,
    /// By port index (`PortRoles`): one port in one-armed mode, else the
    /// tunnel port then the plaintext port.
    ports: Vec<PortTx>,
    /// Which port each role leaves on.
    roles: PortRoles,
    handoff_out: Vec<Option<RingProducer>>,
    handoff: Vec<Burst>,
    /// This worker's index (the tag on what it hands off).
    index: usize,
    counters: Arc<WorkerCounters>,
    /// DPDK port id of the tunnel port (to count drops per port).
    tun_port: u16,
}

impl<'p> Tx<'p> {
    /// Bursts for `workers` workers' handoff rings (this one, `index`,
    /// among them), sending into the given queues (by physical port) and
    /// rings, counting into `counters`; `vlans`: the tunnel port's VLAN
    /// and the plaintext port's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        queues: Vec<TxQueue<'p>>,
        vlans: [Option<u16>; 2],
        roles: PortRoles,
        rings: TxRings,
        index: usize,
        workers: usize,
        counters: Arc<WorkerCounters>,
        tun_port: u16,
    ) -> Self {
        let per_port = [
            (rings.to_control_tun, rings.relay_tun),
            (rings.to_control_plain, rings.relay_plain),
        ];
        let ports = vlans
            .into_iter()
            .zip(per_port)
            .take(roles.ports())
            .map(|(vlan, (to_control, relay))| PortTx {
                out: Burst::new(),
                to_control,
                ctl: Burst::new(),
                relay,
                vlan,
            })
            .collect();
        Self {
            queues,
            ports,
            roles,
            handoff_out: rings.handoff_out,
            handoff: (0..workers).map(|_| Burst::new()).collect(),
            index,
            counters,
            tun_port,
        }
    }

    /// Counts a drop, per reason and per port the frame came from, and
    /// frees the packet. Where the roles are two VLANs of one port, they
    /// share its port id: the frame's [`link_tag`](crate::rehome::link_tag)
    /// (or handoff tag) names the VLAN's role.
    #[inline]
    pub(crate) fn drop_packet(&self, m: Mbuf, reason: DropReason) {
        self.counters.count_drop(reason);
        match m.port() {
            p if p == self.tun_port => {
                let link = if self.roles.by_vlan() {
                    tag_side(m.user_tag())
                } else {
                    PortSide::Tunnel
                };
                self.counters.add(
                    match link {
                        PortSide::Tunnel => Event::TunnelDropped,
                        PortSide::Plaintext => Event::PlaintextDropped,
                    },
                    1,
                );
            }
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
        let port_vlan = self.ports[self.roles.port(side)].vlan;
        vlan::untag(m, port_vlan)
            .map_err(|m| self.drop_packet(m, DropReason::Vlan))
            .ok()
    }

    /// The roles split by VLAN (`PortRoles::VLAN_SPLIT`): the role of a
    /// frame from the one physical port, by its tag. The plaintext port's
    /// VLAN is the plaintext role's; anything else is the tunnel port's,
    /// whose [`vlan_rx`](Self::vlan_rx) drops it unless it has that VLAN.
    #[inline]
    pub(crate) fn vlan_side(&self, m: &Mbuf) -> PortSide {
        let plain = self.ports[self.roles.port(PortSide::Plaintext)].vlan;
        if plain.is_some() && vlan::vlan_id(m.data()) == plain {
            PortSide::Plaintext
        } else {
            PortSide::Tunnel
        }
    }

    /// Queues a packet for `out`, sending the burst first if it is full.
    /// Always inlined: at each call `out` is known, and its VLAN and burst
    /// are found without the match (callgrind: 10 to 14 instructions a
    /// packet fewer than as a call).
    #[inline(always)]
    pub(crate) fn emit(&mut self, out: Out, m: Mbuf) {
        let port_vlan = match out {
            Out::TunTx => self.ports[self.roles.port(PortSide::Tunnel)].vlan,
            Out::PlainTx => self.ports[self.roles.port(PortSide::Plaintext)].vlan,
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

    /// Passes a frame from the port of `side` to the control thread.
    #[inline]
    pub(crate) fn pass_to_control(&mut self, side: PortSide, m: Mbuf) {
        self.counters.add(Event::ToControl, 1);
        self.emit(Out::Control(side), m);
    }

    /// Hands a packet to the worker that owns its peer. A packet that was
    /// handed off once is not passed on again: while a route change
    /// propagates two workers may briefly disagree on the owner, and a
    /// packet must not bounce between them. It is dropped as in flight.
    /// The packet is tagged with this worker's index: the owner learns
    /// from it where the peer's packets arrive (see `rehome`).
    pub(crate) fn hand_off(&mut self, owner: usize, mut m: Mbuf, via: Via, side: PortSide) {
        if via == Via::Handoff || owner >= self.handoff.len() || owner == self.index {
            return self.drop_packet(m, DropReason::PeerGone);
        }
        m.set_user_tag(handoff_tag(self.index, side));
        self.counters.add(Event::HandoffOut, 1);
        self.counters.add(
            match side {
                PortSide::Tunnel => Event::TunnelHandoff,
                PortSide::Plaintext => Event::PlaintextHandoff,
            },
            1,
        );
        self.emit(Out::Handoff(owner), m);
    }

    /// Passes a packet on for a peer that moved to worker `to`, even if
    /// it was handed here: it cannot bounce, since a worker forwards only
    /// to where the peer went after it left.
    pub(crate) fn forward(&mut self, to: usize, m: Mbuf, via: Via, side: PortSide) {
        if via == Via::OwnQueue {
            return self.hand_off(to, m, via, side);
        }
        if to >= self.handoff.len() || to == self.index {
            return self.drop_packet(m, DropReason::PeerGone);
        }
        self.counters.add(Event::Forwarded, 1);
        self.emit(Out::Handoff(to), m);
    }

    /// The burst for `out`. Always inlined: where `out` is known (every
    /// `emit` but the handoff's) the match folds away; as a call it cost a
    /// packet 19 instructions (callgrind).
    #[inline(always)]
    fn burst(&mut self, out: Out) -> &mut Burst {
        match out {
            Out::TunTx => &mut self.ports[self.roles.port(PortSide::Tunnel)].out,
            Out::PlainTx => &mut self.ports[self.roles.port(PortSide::Plaintext)].out,
            Out::Control(side) => &mut self.ports[self.roles.port(side)].ctl,
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
            Out::TunTx | Out::PlainTx => {
                let side = if out == Out::TunTx {
                    PortSide::Tunnel
                } else {
                    PortSide::Plaintext
                };
                let i = self.roles.port(side);
                let port = &mut self.ports[i];
                self.queues[self.roles.queue(i)].tx_burst(&mut port.out);
                (&mut port.out, DropReason::TxFull)
            }
            Out::Control(side) => {
                let port = &mut self.ports[self.roles.port(side)];
                port.to_control.enqueue_burst(&mut port.ctl);
                (&mut port.ctl, DropReason::ExceptionFull)
            }
            Out::Handoff(i) => {
                if let Some(ring) = self.handoff_out.get(i).and_then(Option::as_ref) {
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
        for i in 0..self.ports.len() {
            self.flush_port(i);
        }
        for i in 0..self.handoff.len() {
            self.flush(Out::Handoff(i));
        }
    }

    /// Port `i`'s TX burst and control burst, by the role it is first
    /// (the tunnel role is on port 0, see `PortRoles`).
    fn outs(i: usize) -> (Out, Out) {
        if i == 0 {
            (Out::TunTx, Out::Control(PortSide::Tunnel))
        } else {
            (Out::PlainTx, Out::Control(PortSide::Plaintext))
        }
    }

    /// Sends port `i`'s TX and control bursts.
    fn flush_port(&mut self, i: usize) {
        let (tx, ctl) = Self::outs(i);
        self.flush(tx);
        self.flush(ctl);
    }

    /// Moves the control thread's relayed frames into the TX bursts;
    /// returns how many.
    pub(crate) fn relay(&mut self) -> usize {
        let mut n = 0;
        for i in 0..self.ports.len() {
            if self.ports[i].relay.is_some() {
                self.flush(Self::outs(i).0);
                let port = &mut self.ports[i];
                if let Some(r) = port.relay.as_mut() {
                    n += r.dequeue_burst(&mut port.out);
                }
            }
        }
        n
    }
}
