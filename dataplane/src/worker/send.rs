//! The plaintext side of a worker: frames from the protected networks are
//! looked up in the allowed IPs, then encrypted in place and sent to their
//! peer's endpoint (whitepaper section 5.4.6; kernel `send.c`).
//!
//! [`SendPath`] is this direction as a component: the worker lends it the
//! components the path reads and changes (`Worker::send_path`), and it
//! reads top to bottom from [`SendPath::plaintext_packet`]. Each packet
//! ends in one place: a TX burst (the tunnel port's, another worker's
//! handoff ring, the control thread's ring, see [`Tx`]), the staging slab
//! while a handshake is under way, or a counted drop.
//!
//! In the mbuf: the Ethernet header is stripped, the inner packet stays
//! where it is and is encrypted in place, padding and the tag go in the
//! tailroom, and the WireGuard data header and outer Ethernet/IP/UDP headers
//! in the headroom. No payload byte is copied.

use std::net::{IpAddr, SocketAddr};

use crossbeam_channel::{Sender, TrySendError};
use dpdk_sys::rte::{tx_flags, Mbuf, Mempool, BURST_SIZE};
use protocol::constants::AEAD_TAG_LEN;
use protocol::messages::{padded_len, Data, DATA_HEADER_LEN};
use protocol::session::SessionError;
use protocol::time::Instant;

use super::lane_work::LaneWork;
use super::{WorkerConfig, WorkerNets};
use crate::command::WorkerEvent;
use crate::counters::{DropReason, Event, WorkerCounters};
use crate::cycle_profile::{Stage, StageClock};
use crate::fragments::{self, Pieces};
use crate::icmp::{IcmpError, IcmpErrors};
use crate::index_table::IndexTable;
use crate::lane::Sealed;
use crate::neighbours::Neighbours;
use crate::outer::{self, OuterCache};
use crate::peer::PeerId;
use crate::port::PortSide;
use crate::rehome::Via;
use crate::route::RouteTable;
use crate::seal_batch::{SealBatch, Sealing as Pass};
use crate::staging::Staging;
use crate::tx::{Out, Tx};
use crate::wire::ethernet::for_us;
use crate::wire::ip::{inner_ip, ip_ecn, is_link_scoped, InnerIp};
use crate::wire::{classify, ethernet, ipv4, ipv6, peek, Classification, L3Kind};

/// The plaintext-to-tunnel path of a worker: the components it reads and
/// changes, borrowed from the worker (`Worker::send_path`) for one call.
/// Everything a packet meets from the plaintext port to the tunnel port's
/// TX burst is a method here, in the order it meets them.
pub(crate) struct SendPath<'w, 'p> {
    /// The worker's settings.
    pub(super) cfg: &'w WorkerConfig,
    /// The packet pool (keepalives, fragments).
    pub(super) pool: &'p Mempool,
    /// The worker's counters.
    pub(super) counters: &'w WorkerCounters,
    /// The two ports' addresses.
    pub(super) nets: &'w WorkerNets,
    /// The allowed IPs and owners.
    pub(super) routes: &'w RouteTable,
    /// The worker's peers and lanes.
    pub(super) table: &'w mut IndexTable,
    /// The staged packets of all its peers.
    pub(super) staging: &'w mut Staging<Mbuf>,
    /// The lanes it serves (their tallies).
    pub(super) lanes: &'w mut LaneWork,
    /// Next hops' MACs (the outer headers' destination).
    pub(super) neighbours: &'w Neighbours,
    /// The ICMP errors it sends.
    pub(super) icmp: &'w mut IcmpErrors<'p>,
    /// The outgoing bursts and drop accounting.
    pub(super) tx: &'w mut Tx<'p>,
    /// The next outer IPv4 identification (see [`SendPath::send_outer`]).
    pub(super) ip_ident: &'w mut u16,
    /// Rare events to the control thread (handshake requests).
    pub(super) events: &'w Sender<WorkerEvent>,
    /// Per-stage cycle counts.
    pub(super) stages: &'w mut StageClock,
    /// The burst's messages waiting for a multi-buffer pass.
    pub(super) batch: &'w mut SealBatch,
}

/// A packet being sealed: its plaintext length, padded length and ECN.
#[derive(Debug, Clone, Copy)]
struct Sealing {
    len: usize,
    padded: usize,
    ecn: u8,
}

impl Sealing {
    /// The padded payload and the tag room of the mbuf.
    fn split(self, m: &mut Mbuf) -> Option<(&mut [u8], &mut [u8; AEAD_TAG_LEN])> {
        let (payload, tag) = m.data_mut().split_at_mut(self.padded);
        Some((payload, <&mut [u8; AEAD_TAG_LEN]>::try_from(tag).ok()?))
    }

    /// The WireGuard message's length.
    fn msg_len(self) -> u64 {
        (DATA_HEADER_LEN + self.padded + AEAD_TAG_LEN) as u64
    }
}

/// Which key seals a packet for a peer: a lane is a kind of key, not a
/// second pipeline ([`SendPath::seal_and_send`] serves both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendKey {
    /// The peer's owner: its session's current keypair, its counter.
    Owner,
    /// A lane of a multi-lane peer: the owner's keypair shared, counters
    /// from this worker's own block, sent from the lane port.
    Lane,
}

/// What forwarding makes of a plaintext packet's TTL / hop limit and size
/// ([`SendPath::strip_inner`]).
#[derive(Debug, Clone, Copy)]
enum Hop {
    /// Decremented: on into the tunnel.
    Forward,
    /// At its last hop (or unreadable): time exceeded.
    Expired,
    /// Larger than the tunnel MTU and not to be fragmented.
    TooBig,
}

/// A plaintext burst's destinations, looked up together before its
/// packets are handled ([`SendPath::look_ahead`]).
pub(crate) struct LookedUp {
    /// Per packet: the inner destination peeked, and its allowed-IPs target.
    routes: [Option<(IpAddr, Option<PeerId>)>; BURST_SIZE],
}

impl LookedUp {
    /// Packet `i`'s destination and target, if peeked.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<(IpAddr, Option<PeerId>)> {
        self.routes.get(i).copied().flatten()
    }
}

impl<'p> SendPath<'_, 'p> {
    /// Looks up a plaintext burst's destinations together, the allowed-IPs
    /// walks in lockstep so that their misses overlap, and asks for the
    /// state of the peers they name (see
    /// [`IndexTable::prefetch_peers`](crate::index_table::IndexTable::prefetch_peers)),
    /// before the packets are handled one by one with the answers
    /// ([`plaintext_packet_looked_up`](Self::plaintext_packet_looked_up)).
    pub(crate) fn look_ahead(&self, frames: &[Mbuf]) -> LookedUp {
        let mut routes = [None; BURST_SIZE];
        let (mut v4, mut v4_at) = ([[0u8; 4]; BURST_SIZE], [0usize; BURST_SIZE]);
        let (mut v6, mut v6_at) = ([[0u8; 16]; BURST_SIZE], [0usize; BURST_SIZE]);
        let (mut n4, mut n6) = (0, 0);
        for (i, m) in frames.iter().enumerate().take(BURST_SIZE) {
            match peek::ip_destination(m.data()) {
                Some(IpAddr::V4(a)) => {
                    (v4[n4], v4_at[n4]) = (a.octets(), i);
                    n4 += 1;
                }
                Some(IpAddr::V6(a)) => {
                    (v6[n6], v6_at[n6]) = (a.octets(), i);
                    n6 += 1;
                }
                None => {}
            }
        }
        let mut found = [None; BURST_SIZE];
        self.routes
            .allowed
            .lookup_v4_burst(&v4[..n4], &mut found[..n4]);
        for k in 0..n4 {
            routes[v4_at[k]] = Some((IpAddr::from(v4[k]), found[k]));
        }
        self.routes
            .allowed
            .lookup_v6_burst(&v6[..n6], &mut found[..n6]);
        for k in 0..n6 {
            routes[v6_at[k]] = Some((IpAddr::from(v6[k]), found[k]));
        }
        let mut ids = [None; BURST_SIZE];
        for (id, r) in ids.iter_mut().zip(&routes) {
            *id = r.and_then(|(_, t)| t);
        }
        self.table.prefetch_peers(&ids);
        LookedUp { routes }
    }

    /// One frame from the plaintext port (or handed off from a worker that
    /// received it there: `via`).
    pub(crate) fn plaintext_packet(&mut self, m: Mbuf, now: Instant, via: Via) {
        self.plaintext_packet_looked_up(m, now, via, None);
    }

    /// [`plaintext_packet`](Self::plaintext_packet) with its destination's
    /// allowed-IPs target looked up ahead ([`look_ahead`](Self::look_ahead)),
    /// used when the destination is the one the packet's parse finds.
    pub(crate) fn plaintext_packet_looked_up(
        &mut self,
        m: Mbuf,
        now: Instant,
        via: Via,
        looked: Option<(IpAddr, Option<PeerId>)>,
    ) {
        if !m.is_contiguous() {
            return self.tx.drop_packet(m, DropReason::Segmented);
        }
        if !for_us(m.data(), self.nets.plain.mac) {
            return self.tx.drop_packet(m, DropReason::NotForUs);
        }
        let Ok(cls) = classify(m.data()) else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        if !matches!(cls.l3, L3Kind::Ipv4 | L3Kind::Ipv6) {
            // ARP, unknown EtherTypes: the control thread and the kernel.
            return self.tx.pass_to_control(PortSide::Plaintext, m);
        }
        let Some(ip) = inner_ip(m.data(), &cls) else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        if self.nets.plain.is_local(ip.dst) || is_link_scoped(ip.dst) {
            return self.tx.pass_to_control(PortSide::Plaintext, m);
        }
        self.stages.lap(Stage::Parse);
        let target = match looked {
            Some((dst, target)) if dst == ip.dst => target,
            _ => self.routes.allowed.lookup(ip.dst),
        };
        let Some(target) = target else {
            return self.tx.drop_packet(m, DropReason::NoRoute);
        };
        // A tunnel group: the member its flow hashes to (counted once, by
        // the worker that received the packet).
        let count = (via == Via::OwnQueue).then_some(self.cfg.index);
        let packet = m.data().get(cls.l3_offset..).unwrap_or_default();
        let Some(peer) = self.routes.resolve(target, packet, now, count) else {
            return self.tx.drop_packet(m, DropReason::NoRoute);
        };
        let Some(owner) = self.routes.owner(peer) else {
            return self.tx.drop_packet(m, DropReason::NoRoute);
        };
        let owned = self.table.owns(peer);
        self.stages.lap(Stage::Lookup);
        if owned {
            via.count_inline(PortSide::Plaintext, self.counters);
            return self.encapsulate(m, &cls, ip, peer, now, via);
        }
        // A lane of another worker's peer encrypts here, unless it has no
        // usable key: then the owner stages the packet and asks for one.
        if self.table.lane_can_send(peer, now) {
            via.count_inline(PortSide::Plaintext, self.counters);
            return self.lane_encapsulate(m, &cls, ip, peer, now);
        }
        self.send_to_owner(peer, owner, m, via)
    }

    /// Keeps exactly the inner IP packet of a plaintext frame (Ethernet
    /// header and padding dropped) and decrements its TTL; `None` when it
    /// was dropped. A packet too big for the tunnel or at its last hop is
    /// answered with an ICMP error (see [`crate::icmp`]); only an IPv4
    /// packet without DF may be left larger than the tunnel MTU: it is
    /// fragmented next ([`SendPath::each_piece`]).
    fn strip_inner(
        &mut self,
        mut m: Mbuf,
        cls: &Classification,
        ip: InnerIp,
        now: Instant,
    ) -> Option<Mbuf> {
        // One parse of the IP header: the TTL first, as the kernel's
        // ip_forward (traceroute with large probes sees the hop), then the
        // size; only then is the TTL decremented, so that an ICMP error
        // quotes the packet as it arrived.
        let too_big = ip.len > self.cfg.mtu;
        let l3 = m.data_mut().get_mut(cls.l3_offset..).unwrap_or_default();
        let hop = match cls.l3 {
            L3Kind::Ipv4 => ipv4::Packet::new_checked(l3).map_or(Hop::Expired, |mut p| {
                if p.ttl() <= 1 {
                    Hop::Expired
                } else if too_big && p.dont_frag() {
                    // IPv4 without DF is fragmented after this (see `fragments`).
                    Hop::TooBig
                } else {
                    p.decrement_ttl();
                    Hop::Forward
                }
            }),
            _ => ipv6::Packet::new_checked(l3).map_or(Hop::Expired, |mut p| {
                if p.hop_limit() <= 1 {
                    Hop::Expired
                } else if too_big {
                    Hop::TooBig
                } else {
                    p.decrement_hop_limit();
                    Hop::Forward
                }
            }),
        };
        match hop {
            Hop::Forward => {}
            Hop::Expired => {
                // RFC 1812 section 5.3.1 / RFC 8200 section 3: time exceeded.
                self.icmp_to_plaintext(m.data(), cls.l3_offset, IcmpError::TimeExceeded, now);
                self.tx.drop_packet(m, DropReason::TtlExceeded);
                return None;
            }
            Hop::TooBig => {
                // RFC 1191 / RFC 8201: the sender learns the tunnel's MTU.
                let mtu = u16::try_from(self.cfg.mtu).unwrap_or(u16::MAX);
                self.icmp_to_plaintext(m.data(), cls.l3_offset, IcmpError::TooBig(mtu), now);
                self.tx.drop_packet(m, DropReason::TooBig);
                return None;
            }
        }
        let extra = usize::from(m.data_len()).saturating_sub(cls.l3_offset + ip.len);
        let Ok(extra) = u16::try_from(extra) else {
            self.tx.drop_packet(m, DropReason::Malformed);
            return None;
        };
        if m.trim(extra).is_err() || m.adj(cls.l3_offset as u16).is_err() {
            self.tx.drop_packet(m, DropReason::Malformed);
            return None;
        }
        crate::mss::clamp_counted(self.cfg.mss_clamp, m.data_mut(), self.counters);
        Some(m)
    }

    /// Passes the inner IP packet `m` (the mbuf's whole data) to `send`,
    /// split into fragments of at most the tunnel MTU when it is larger
    /// (see [`crate::fragments`]).
    fn each_piece(&mut self, m: Mbuf, mut send: impl FnMut(&mut Self, Mbuf)) {
        let mut pieces = match fragments::split(m, self.cfg.mtu, self.pool, self.counters) {
            Ok(Pieces::Whole(m)) => return send(self, m),
            Ok(Pieces::Split(pieces)) => pieces,
            Err((m, reason)) => return self.tx.drop_packet(m, reason),
        };
        for piece in pieces.drain() {
            match fragments::with_checksum(piece) {
                Ok(piece) => send(self, piece),
                Err(piece) => self.tx.drop_packet(piece, DropReason::Malformed),
            }
        }
    }

    /// Answers a plaintext-port frame (`frame`, its IP header at `l3`)
    /// with `err`, out of the plaintext port (see [`crate::icmp`]).
    fn icmp_to_plaintext(&mut self, frame: &[u8], l3: usize, err: IcmpError, now: Instant) {
        if let Some(m) = self
            .icmp
            .answer_frame(frame, l3, err, &self.nets.plain, now)
        {
            self.tx.emit(Out::PlainTx, m);
        }
    }

    /// Encrypts a plaintext frame for a peer this worker serves as a lane.
    fn lane_encapsulate(
        &mut self,
        m: Mbuf,
        cls: &Classification,
        ip: InnerIp,
        id: PeerId,
        now: Instant,
    ) {
        let Some(m) = self.strip_inner(m, cls, ip, now) else {
            return;
        };
        self.each_piece(m, |w, piece| w.seal_and_send(SendKey::Lane, id, piece, now));
    }

    /// Encrypts (or stages) a plaintext frame for a peer this worker owns;
    /// `via`: whether another worker received it. A peer with no endpoint cannot
    /// be reached: the packet is dropped and answered with an ICMP
    /// unreachable, as the kernel's `wg_xmit` does.
    fn encapsulate(
        &mut self,
        m: Mbuf,
        cls: &Classification,
        ip: InnerIp,
        id: PeerId,
        now: Instant,
        via: Via,
    ) {
        let Some(peer) = self.table.peer_mut(id) else {
            return self.tx.drop_packet(m, DropReason::PeerGone);
        };
        if peer.endpoint.is_none() {
            self.icmp_to_plaintext(m.data(), cls.l3_offset, IcmpError::Unreachable, now);
            return self.tx.drop_packet(m, DropReason::NoEndpoint);
        }
        peer.shared.count_plain(via == Via::Handoff);
        let Some(m) = self.strip_inner(m, cls, ip, now) else {
            return;
        };
        self.each_piece(m, |w, piece| w.seal_or_stage(id, piece, now));
    }

    /// Sends a packet wgdp itself addresses to peer `id` through the
    /// tunnel (an ICMP error about a packet the peer sent): sealed by the
    /// owner, or by a lane that has a key; dropped as `seal_failed` on a
    /// lane without one.
    pub(crate) fn reply_to_peer(&mut self, id: PeerId, m: Mbuf, now: Instant) {
        if self.table.owns(id) {
            self.seal_or_stage(id, m, now);
        } else if self.table.lane_can_send(id, now) {
            self.seal_and_send(SendKey::Lane, id, m, now);
        } else {
            self.tx.drop_packet(m, DropReason::SealFailed);
        }
    }

    /// Seals and sends the IP packet that is the mbuf's whole data for a
    /// peer this worker owns, or stages it while there is no usable
    /// session (or older packets still wait) and asks for a handshake.
    fn seal_or_stage(&mut self, id: PeerId, m: Mbuf, now: Instant) {
        let Some(peer) = self.table.peer_mut(id) else {
            return self.tx.drop_packet(m, DropReason::PeerGone);
        };
        let can_send = peer.session.current().is_some_and(|k| k.can_send(now));
        if can_send && peer.staged.is_empty() {
            return self.seal_and_send(SendKey::Owner, id, m, now);
        }
        if let Err((m, reason)) = self.table.stage(self.staging, id, m, self.counters) {
            self.tx.drop_packet(m, reason);
        }
        if can_send {
            self.send_staged(id, now);
        } else {
            self.want_handshake(id, now);
        }
    }

    /// Sends a peer's staged packets while its session can.
    pub(crate) fn send_staged(&mut self, id: PeerId, now: Instant) {
        loop {
            let Some(peer) = self.table.peer_mut(id) else {
                return;
            };
            if !peer.session.current().is_some_and(|k| k.can_send(now)) {
                return self.want_handshake(id, now);
            }
            let Some(m) = self.staging.pop(&mut peer.staged) else {
                return;
            };
            self.seal_and_send(SendKey::Owner, id, m, now);
        }
    }

    /// Sends a keepalive (an empty data message) to the peer.
    pub(crate) fn send_keepalive(&mut self, id: PeerId, now: Instant) {
        let ready = self
            .table
            .peer_mut(id)
            .is_some_and(|p| p.session.current().is_some_and(|k| k.can_send(now)));
        if !ready {
            return self.want_handshake(id, now);
        }
        let Some(m) = self.pool.alloc() else {
            return self.counters.count_drop(DropReason::NoMbuf);
        };
        self.counters.add(Event::KeepaliveTx, 1);
        self.seal_and_send(SendKey::Owner, id, m, now);
    }

    /// Pads the IP packet that is the mbuf's whole data (empty: a
    /// keepalive) and makes room for the tag; `None` when there is no room.
    fn pad_for_seal(&self, m: &mut Mbuf) -> Option<Sealing> {
        let len = usize::from(m.data_len());
        let padded = padded_len(len, self.cfg.mtu);
        let ecn = ip_ecn(m.data());
        // Padding and tag in the tailroom; both as one append.
        let tail = u16::try_from(padded - len + AEAD_TAG_LEN).ok()?;
        m.append(tail).ok()?;
        m.data_mut()[len..padded].fill(0);
        Some(Sealing { len, padded, ecn })
    }

    /// Prepends the outer headers' room and the WireGuard data header
    /// (receiver, counter) to a sealed message; `None` when dropped.
    fn data_header(
        &self,
        mut m: Mbuf,
        endpoint: &SocketAddr,
        receiver: u32,
        counter: u64,
    ) -> Option<Mbuf> {
        let hlen = outer::header_len(endpoint);
        let Ok(front) = u16::try_from(DATA_HEADER_LEN + hlen) else {
            self.tx.drop_packet(m, DropReason::NoRoom);
            return None;
        };
        let Ok(hdr) = m.prepend(front) else {
            self.tx.drop_packet(m, DropReason::NoRoom);
            return None;
        };
        // The 16 header bytes after the outer headers' room.
        Data::new_unchecked(&mut hdr[hlen..]).set_header(receiver, counter);
        Some(m)
    }

    /// Encrypts the IP packet that is the mbuf's whole data (empty: a
    /// keepalive) for peer `id` with `key` and sends it to the peer's
    /// endpoint: one path for the owner's session and a lane's keypair.
    fn seal_and_send(&mut self, key: SendKey, id: PeerId, mut m: Mbuf, now: Instant) {
        let Some(sealing) = self.pad_for_seal(&mut m) else {
            return self.tx.drop_packet(m, DropReason::NoRoom);
        };
        let sealed = match key {
            SendKey::Owner => self
                .seal_owned(id, &mut m, sealing, now)
                .map(|(s, outer)| (s, Some(outer))),
            SendKey::Lane => self.seal_lane(id, &mut m, sealing, now).map(|s| (s, None)),
        };
        let (sealed, outer) = match sealed {
            Ok(s) => s,
            Err(reason) => return self.tx.drop_packet(m, reason),
        };
        let Some(m) = self.data_header(m, &sealed.endpoint, sealed.receiver, sealed.counter) else {
            return;
        };
        match outer {
            // The owner: the peer's cached outer headers.
            Some(outer) => {
                if sealed.rekey {
                    self.want_handshake(id, now);
                }
                self.send_sealed(m, outer, sealing, &sealed.endpoint);
            }
            // A lane: its tally, and outer headers for this packet alone,
            // from the lane port and the address the owner published.
            None => {
                let ask = self.lanes.sent(
                    self.table,
                    id,
                    sealing.msg_len(),
                    sealing.len > 0,
                    sealed.rekey,
                    now,
                );
                if ask {
                    self.ask_control_for_handshake(id);
                }
                self.counters.add(Event::LaneEncap, 1);
                let src_port = self.cfg.lane_port();
                let built = OuterCache::build(
                    &self.nets.tun,
                    self.neighbours,
                    sealed.endpoint,
                    sealed.local,
                    src_port,
                );
                match built {
                    Ok(outer) => self.send_sealed(m, outer, sealing, &sealed.endpoint),
                    Err(reason) => self.tx.drop_packet(m, reason),
                }
            }
        }
    }

    /// Seals with the session of a peer this worker owns (whitepaper
    /// section 5.4.6), counts the message as sent and returns the peer's
    /// outer headers (cached, rebuilt when its endpoint, address, source
    /// port or next hop changed).
    fn seal_owned(
        &mut self,
        id: PeerId,
        m: &mut Mbuf,
        sealing: Sealing,
        now: Instant,
    ) -> Result<(Sealed, OuterCache), DropReason> {
        let lane_port = self.cfg.lane_port();
        let peer = self.table.peer_mut(id).ok_or(DropReason::PeerGone)?;
        let endpoint = peer.endpoint.ok_or(DropReason::NoEndpoint)?;
        self.stages.lap(Stage::Build);
        let (payload, tag) = sealing.split(m).ok_or(DropReason::NoRoom)?;
        let (receiver, sent) = match peer.session.reserve(now) {
            Ok((receiver, sent, key)) => {
                self.batch.seal(key, sent.counter, payload, tag)?;
                (receiver, sent)
            }
            Err(SessionError::Seal(e)) => return Err(e.into()),
            Err(_) => return Err(DropReason::SealFailed),
        };
        self.stages.lap(Stage::Crypto);
        // A multi-lane peer's owner sends from its lane port as well.
        let src_port = if peer.lanes > 1 {
            lane_port
        } else {
            self.cfg.listen_port
        };
        peer.shared.auth_sent.set(now);
        if sealing.len > 0 {
            peer.shared.data_sent.set(now);
        }
        peer.shared.add_tx(sealing.msg_len());
        let outer = match peer.outer {
            Some(c) if c.serves(endpoint, peer.local, src_port, self.neighbours) => c,
            _ => *peer.outer.insert(OuterCache::build(
                &self.nets.tun,
                self.neighbours,
                endpoint,
                peer.local,
                src_port,
            )?),
        };
        let sealed = Sealed {
            receiver,
            counter: sent.counter,
            endpoint,
            local: peer.local,
            rekey: sent.rekey,
        };
        Ok((sealed, outer))
    }

    /// Seals with this worker's lane of peer `id`: the owner's keypair,
    /// counters from the lane's own block ([`Lane::seal`](crate::lane::Lane::seal)).
    fn seal_lane(
        &mut self,
        id: PeerId,
        m: &mut Mbuf,
        sealing: Sealing,
        now: Instant,
    ) -> Result<Sealed, DropReason> {
        self.stages.lap(Stage::Build);
        let (payload, tag) = sealing.split(m).ok_or(DropReason::NoRoom)?;
        let sealed = match self.table.lane_mut(id) {
            Some(lane) => lane.seal(now, payload, tag, self.batch),
            None => Err(DropReason::SealFailed),
        };
        self.stages.lap(Stage::Crypto);
        sealed
    }

    /// Sends a sealed message with `outer`, or holds it for the burst's
    /// multi-buffer pass (see [`crate::seal_batch`]): when its payload waits
    /// for the pass, or earlier messages still wait.
    fn send_sealed(&mut self, m: Mbuf, outer: OuterCache, sealing: Sealing, to: &SocketAddr) {
        if !self.batch.must_hold() {
            return self.send_outer(m, &outer, sealing.ecn, sealing.len as u64);
        }
        let off = outer::header_len(to) + DATA_HEADER_LEN;
        let full = self.batch.hold(
            m,
            outer,
            sealing.ecn,
            sealing.len as u64,
            off,
            sealing.padded,
        );
        if full {
            self.flush_batch();
        }
    }

    /// Starts a burst of `n` plaintext packets: whether their seals wait
    /// for a multi-buffer pass ([`flush_batch`](Self::flush_batch) ends it).
    pub(crate) fn begin_burst(&mut self, n: usize) {
        self.batch.begin(n);
    }

    /// Runs the burst's multi-buffer pass and sends every held message in
    /// the order it was sealed; one the pass could not take is dropped
    /// (`seal_failed`), never sent unsealed. Later packets are sealed at
    /// once until the next [`begin_burst`](Self::begin_burst).
    pub(crate) fn flush_batch(&mut self) {
        let (sealed, passes) = self.batch.seal_waiting();
        if passes > 0 {
            self.counters.add(Event::BatchSealed, sealed);
            self.counters.add(Event::BatchSealPasses, passes);
            self.stages.lap(Stage::Crypto);
        }
        while let Some(w) = self.batch.next_waiting() {
            match w.seal {
                Pass::Done => self.send_outer(w.m, &w.outer, w.ecn, w.plain),
                Pass::Pass { .. } | Pass::Failed => {
                    self.tx.drop_packet(w.m, DropReason::SealFailed)
                }
            }
        }
    }

    /// Sends a sealed message to `endpoint` from UDP port `src_port` (and
    /// from `local` while that is ours), its outer headers built for this
    /// packet alone (cookie replies).
    pub(crate) fn send_to(
        &mut self,
        m: Mbuf,
        endpoint: SocketAddr,
        local: Option<IpAddr>,
        src_port: u16,
        ecn: u8,
        plain: u64,
    ) {
        let built = OuterCache::build(&self.nets.tun, self.neighbours, endpoint, local, src_port);
        match built {
            Ok(outer) => self.send_outer(m, &outer, ecn, plain),
            Err(reason) => self.tx.drop_packet(m, reason),
        }
    }

    /// Writes the outer headers of a sealed message (`outer`'s, with the
    /// inner packet's `ecn`) and sends it, or passes it to the control
    /// thread when the next hop's MAC is not known yet. `plain`: inner
    /// bytes (0 for a keepalive or a cookie reply, which are not counted
    /// as encapsulated).
    fn send_outer(&mut self, mut m: Mbuf, outer: &OuterCache, ecn: u8, plain: u64) {
        let offload = self.cfg.tx_checksum_offload;
        // Outer IPv4 identification: a counter per worker, stepping by the
        // number of workers from the worker's index, so that no two
        // workers use the same one at the same time (multi-lane peers are
        // sent to from several).
        let ident = *self.ip_ident;
        *self.ip_ident = ident.wrapping_add(self.cfg.workers as u16);
        let Ok(l3_len) = outer.template.write(m.data_mut(), ecn, ident, offload) else {
            return self.tx.drop_packet(m, DropReason::NoEndpoint);
        };
        if offload {
            let family = if outer.template.is_ipv6() {
                tx_flags::IPV6
            } else {
                tx_flags::IPV4 | tx_flags::IP_CKSUM
            };
            m.set_tx_offload(
                family | tx_flags::UDP_CKSUM,
                ethernet::HEADER_LEN as u8,
                l3_len,
            );
        } else {
            m.clear_tx_offload();
        }
        if plain > 0 {
            self.counters.add(Event::Encapsulated, 1);
            self.counters.add(Event::EncapBytes, plain);
        }
        if outer.resolved {
            self.tx.emit(Out::TunTx, m);
        } else {
            self.tx.pass_to_control(PortSide::Tunnel, m);
        }
        self.stages.lap(Stage::Build);
    }

    /// Sends a plaintext packet for peer `id`, which this worker does not
    /// hold, on: to where it moved, else to the owner the routes name.
    fn send_to_owner(&mut self, id: PeerId, owner: usize, m: Mbuf, via: Via) {
        match self.table.moved_to(id) {
            Some(to) => self.tx.forward(to, m, via, PortSide::Plaintext),
            None if owner != self.cfg.index => {
                self.tx.hand_off(owner, m, via, PortSide::Plaintext);
                self.stages.lap(Stage::Handoff);
            }
            None => self.tx.drop_packet(m, DropReason::PeerGone),
        }
    }

    /// Asks the control thread for a handshake, at most every 100 ms per
    /// peer (the control thread rate-limits initiations itself). The time
    /// is noted whether or not the request got through: while the event
    /// channel is full, the peer's packets do not each try again, the next
    /// try comes 100 ms later.
    pub(crate) fn want_handshake(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.table.peer_mut(id) else {
            return;
        };
        let due = peer
            .handshake_asked
            .is_none_or(|t| now.saturating_since(t) >= std::time::Duration::from_millis(100));
        if due {
            peer.handshake_asked = Some(now);
            self.ask_control_for_handshake(id);
        }
    }

    /// Sends one handshake request to the control thread; one the full
    /// event channel refuses is counted (`handshake_ask_lost`), not queued:
    /// the caller's 100 ms rate limit brings the next.
    pub(crate) fn ask_control_for_handshake(&mut self, id: PeerId) {
        if let Err(TrySendError::Full(_)) = self.events.try_send(WorkerEvent::WantHandshake(id)) {
            self.counters.add(Event::HandshakeAskLost, 1);
        }
    }
}
