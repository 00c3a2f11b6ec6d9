//! The tunnel side of a worker: WireGuard messages from the internet.
//! Handshake messages go through the gate (see [`crate::gate`]) to the
//! control thread; data messages are decrypted
//! in place by the keypair their receiver index names, checked (replay after
//! authentication, inner source within the peer's allowed IPs), and the
//! inner packet is sent on the plaintext port (whitepaper section 5.4.6;
//! kernel `receive.c`).

use std::net::{IpAddr, SocketAddr};

use dpdk_sys::rte::Mbuf;
use protocol::constants::AEAD_TAG_LEN;
use protocol::messages::{
    Data, Message, MessageType, COOKIE_REPLY_LEN, DATA_HEADER_LEN, DATA_MIN_LEN,
};
use protocol::session::Retired;
use protocol::time::Instant;
use protocol::transport::OpenError;

use super::lane_work::LaneReceived;
use super::Worker;
use crate::command::{Command, PortSide, WorkerEvent};
use crate::counters::{DropReason, Event};
use crate::cycle_profile::Stage;
use crate::gate::{GateVerdict, Held};
use crate::icmp::IcmpError;
use crate::index_table::DataRoute;
use crate::open_batch::Opening;
use crate::outer;
use crate::peer::{PeerId, ENDPOINT_CHANGE_EVERY};
use crate::rehome::{tag_worker, Via};
use crate::tx::Out;
use crate::wire::ethernet::for_us;
use crate::wire::ip::{
    forward_decapsulated, inner_ip, ip_ecn, ip_header, is_link_scoped, InnerFault, InnerIp,
};
use crate::wire::{classify, ethernet, peek, udp, Classification, L3Kind};

/// A WireGuard message as the receive path dispatches it, read with
/// `protocol`'s message views (type word and length checked).
#[derive(Debug, Clone, Copy)]
enum Incoming {
    /// A handshake message, for the gate.
    Handshake(MessageType),
    /// A data message for the keypair with this receiver index.
    Data(u32),
}

/// Which key opens a data message: a lane is a kind of key, not a second
/// pipeline ([`Worker::decapsulate`] serves both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenKey {
    /// The peer's owner: its session; `at`, the worker the message
    /// arrived at (re-homing).
    Owner {
        /// The receiving worker.
        at: usize,
    },
    /// A lane of a multi-lane peer: its copy of the keypair `index` names,
    /// with the shared replay window.
    Lane {
        /// The message's receiver index.
        index: u32,
    },
}

/// A data message checked and on its way through decryption (at once, or
/// in the burst's multi-buffer pass: [`crate::open_batch`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataAt {
    /// Where it lies and came from.
    wg: MessageAt,
    /// Its peer.
    id: PeerId,
    /// The key that opens it.
    key: OpenKey,
    /// Its receiver index (the keypair's local index).
    index: u32,
    /// Its counter (nonce).
    counter: u64,
}

/// Where the WireGuard message lies in a frame, and where it came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageAt {
    /// Offset of the message (the UDP payload) in the frame.
    pub(crate) start: usize,
    /// Offset of its end.
    pub(crate) end: usize,
    /// The outer source address and port.
    pub(crate) src: SocketAddr,
    /// The outer header's ECN field.
    pub(crate) ecn: u8,
    /// Our address it was sent to.
    pub(crate) dst: IpAddr,
}

impl Worker<'_> {
    /// Starts a burst of tunnel frames (`frames`, read before they are
    /// handled): asks for the state their data messages will read
    /// ([`IndexTable::prefetch_routes`](crate::index_table::IndexTable)),
    /// all at once so that the misses overlap.
    pub(crate) fn prefetch_tunnel_burst<'m>(&self, frames: impl Iterator<Item = &'m Mbuf>) {
        let mut receivers = [None; dpdk_sys::rte::BURST_SIZE];
        for (r, m) in receivers.iter_mut().zip(frames) {
            // Untagged IPv4/IPv6 UDP frames only; the frame's own parse
            // decides when it is handled.
            *r = peek::udp_payload(m.data())
                .and_then(|msg| Data::new_checked(msg).ok())
                .map(|d| d.receiver());
        }
        self.table.prefetch_routes(&receivers);
    }

    /// One frame from the tunnel port (or handed off from a worker that
    /// received it there: `via`).
    pub(crate) fn tunnel_packet(&mut self, m: Mbuf, now: Instant, via: Via) {
        if !m.is_contiguous() {
            return self.tx.drop_packet(m, DropReason::Segmented);
        }
        if !for_us(m.data(), self.nets.tun.mac) {
            return self.tx.drop_packet(m, DropReason::NotForUs);
        }
        let Ok(cls) = classify(m.data()) else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        if !matches!(cls.l3, L3Kind::Ipv4 | L3Kind::Ipv6) {
            return self.tx.pass_to_control(PortSide::Tunnel, m);
        }
        let Some(ip) = inner_ip(m.data(), &cls) else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        if is_link_scoped(ip.dst) {
            return self.tx.pass_to_control(PortSide::Tunnel, m);
        }
        if !self.nets.tun.is_local(ip.dst) {
            return self.tx.drop_packet(m, DropReason::NotForUs);
        }
        let wg = match cls.udp {
            Some(p) if self.cfg.is_wireguard_port(p.dst) => p,
            // Anything else for our address is the kernel's (ping, ssh).
            _ if !cls.fragment => return self.tx.pass_to_control(PortSide::Tunnel, m),
            // An outer fragment: reassembled first (see `fragments`).
            _ => return self.outer_fragment(m, &cls, now, via),
        };
        let Some(l4) = cls.l4_offset else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        let udp_len = udp::Packet::new_checked(&m.data()[l4..]).map(|u| usize::from(u.length()));
        let Ok(udp_len) = udp_len else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        let wgm = MessageAt {
            start: l4 + udp::HEADER_LEN,
            end: l4 + udp_len,
            src: SocketAddr::new(ip.src, wg.src),
            ecn: ip_ecn(&m.data()[cls.l3_offset..]),
            dst: ip.dst,
        };
        self.wireguard(m, wgm, now, via);
    }

    fn wireguard(&mut self, m: Mbuf, wg: MessageAt, now: Instant, via: Via) {
        let msg = &m.data()[wg.start..wg.end];
        let incoming = Message::parse(msg).map(|msg| match msg {
            Message::Initiation(_) => Incoming::Handshake(MessageType::Initiation),
            Message::Response(_) => Incoming::Handshake(MessageType::Response),
            Message::CookieReply(_) => Incoming::Handshake(MessageType::CookieReply),
            Message::Data(data) => Incoming::Data(data.receiver()),
        });
        match incoming {
            Err(e) => self.tx.drop_packet(m, e.into()),
            Ok(Incoming::Handshake(kind)) => self.handshake_message(m, kind, wg, now),
            Ok(Incoming::Data(receiver)) => {
                self.stages.lap(Stage::Parse);
                let mut route = self.table.route_data(receiver);
                if matches!(route, DataRoute::Drop(_)) && self.apply_queued_commands(now) {
                    // Its keypair's install may have been queued behind.
                    route = self.table.route_data(receiver);
                }
                self.stages.lap(Stage::Lookup);
                match route {
                    DataRoute::Local(id) => {
                        via.count_inline(PortSide::Tunnel, &self.counters);
                        // Where it arrived: here, or the worker that handed it on.
                        let at = match via {
                            Via::OwnQueue => self.cfg.index,
                            Via::Handoff => tag_worker(m.user_tag()),
                        };
                        self.decapsulate(m, wg, id, OpenKey::Owner { at }, now);
                    }
                    DataRoute::Lane(id) => {
                        via.count_inline(PortSide::Tunnel, &self.counters);
                        let key = OpenKey::Lane { index: receiver };
                        self.decapsulate(m, wg, id, key, now);
                    }
                    DataRoute::Owner(owner) => {
                        self.tx.hand_off(owner, m, via, PortSide::Tunnel);
                        self.stages.lap(Stage::Handoff);
                    }
                    DataRoute::Moved(to) => self.tx.forward(to, m, via, PortSide::Tunnel),
                    DataRoute::Drop(reason) => self.tx.drop_packet(m, reason),
                }
            }
        }
    }

    /// A handshake message of type `kind` (of its exact length)
    /// at `wg` in `m`: held by the gate (see [`crate::gate`]) until the
    /// worker judges what it holds ([`Self::judge_handshakes`]).
    fn handshake_message(&mut self, m: Mbuf, kind: MessageType, wg: MessageAt, now: Instant) {
        let held = Held {
            m,
            kind,
            start: wg.start,
            end: wg.end,
            src: wg.src,
            dst: wg.dst,
        };
        if let Err(held) = self.gate.hold(held) {
            // The gate is full: judge what it holds, then this one.
            self.judge_handshakes(now);
            if let Err(h) = self.gate.hold(held) {
                self.tx.drop_packet(h.m, DropReason::HandshakeQueueFull);
            }
        }
    }

    /// Judges every handshake message the gate holds, their mac1s checked
    /// together: each is queued for the control thread, dropped, or
    /// answered with a cookie reply.
    pub(crate) fn judge_handshakes(&mut self, now: Instant) {
        self.gate.check_held(&self.links.handshakes, now);
        while let Some((h, verdict)) =
            self.gate
                .next_judged(&self.links.handshakes, &self.counters, now)
        {
            match verdict {
                GateVerdict::Taken => drop(h.m),
                GateVerdict::Cookie(reply) => self.send_cookie(h, &reply),
                GateVerdict::Drop(reason) => self.tx.drop_packet(h.m, reason),
            }
        }
    }

    /// Turns the message's mbuf into the cookie reply to its source: the
    /// reply replaces the message, the outer headers go in front of it.
    fn send_cookie(&mut self, h: Held, reply: &[u8; COOKIE_REPLY_LEN]) {
        let Held {
            mut m,
            start,
            src,
            dst,
            ..
        } = h;
        let end = start + COOKIE_REPLY_LEN;
        let front = start.checked_sub(outer::header_len(&src));
        let tail = usize::from(m.data_len()).checked_sub(end);
        let (Some(Ok(front)), Some(Ok(tail))) = (front.map(u16::try_from), tail.map(u16::try_from))
        else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        m.data_mut()[start..end].copy_from_slice(reply);
        if m.trim(tail).is_err() || m.adj(front).is_err() {
            return self.tx.drop_packet(m, DropReason::Malformed);
        }
        self.counters.add(Event::CookieReplySent, 1);
        // From the listen port and the address the message came to, as
        // the control thread answers handshakes.
        let port = self.cfg.listen_port;
        self.send_path().send_to(m, src, Some(dst), port, 0, 0);
    }

    /// Answers a packet that peer `id` sent through the tunnel (`orig`,
    /// its decrypted IP packet) with `err`, through the tunnel (see
    /// [`crate::icmp`]).
    fn icmp_to_peer(&mut self, id: PeerId, orig: &[u8], err: IcmpError, now: Instant) {
        let answer = self
            .icmp
            .answer_peer(orig, err, &self.nets.plain, self.cfg.mtu, now);
        if let Some(m) = answer {
            self.send_path().reply_to_peer(id, m, now);
        }
    }

    /// An outer fragment for one of our tunnel addresses: into the
    /// reassembly table (see [`crate::fragments`]); the datagram it
    /// completes, if any, goes on through the tunnel path.
    fn outer_fragment(&mut self, m: Mbuf, cls: &Classification, now: Instant, via: Via) {
        match self.frags.offer(m, cls, &self.counters) {
            None => {}
            Some(Ok(whole)) => self.tunnel_packet(whole, now, via),
            Some(Err((whole, reason))) => self.tx.drop_packet(whole, reason),
        }
    }

    /// Opens a data message for peer `id` in place with `key`, one path
    /// for the owner's session and a lane's keypair: checked first (the
    /// keypair, the replay window), then decrypted at once or held for the
    /// burst's multi-buffer pass, then [`Worker::opened`].
    fn decapsulate(&mut self, mut m: Mbuf, wg: MessageAt, id: PeerId, key: OpenKey, now: Instant) {
        let (index, counter) = match Data::new_checked(&m.data()[wg.start..wg.end]) {
            Ok(d) => (d.receiver(), d.counter()),
            Err(e) => return self.tx.drop_packet(m, e.into()),
        };
        let at = DataAt {
            wg,
            id,
            key,
            index,
            counter,
        };
        let checked = match key {
            OpenKey::Owner { .. } => match self.table.peer(id) {
                Some(peer) => peer
                    .session
                    .open_check(now, index, counter)
                    .map_err(DropReason::of_open),
                None => Err(DropReason::PeerGone),
            },
            // The shared replay window makes a message accepted once,
            // whichever worker (queue, source port) it reaches.
            OpenKey::Lane { index } => match self.table.lane(id).map(|l| l.keypair(index)) {
                Some(Some(kp)) => kp.open_check(now, counter).map_err(DropReason::from),
                Some(None) => Err(DropReason::UnknownIndex),
                None => Err(DropReason::PeerGone),
            },
        };
        let transport = match checked {
            Ok(k) => k,
            Err(reason) => return self.tx.drop_packet(m, reason),
        };
        let off = wg.start + DATA_HEADER_LEN;
        let len = wg.end - wg.start - DATA_MIN_LEN;
        let batch_key = transport.batch_key().filter(|_| self.open_batch.takes(len));
        let open = match batch_key {
            // Decrypted in the pass: the tag it carries goes with it.
            Some(_) => {
                let mut tag = [0u8; AEAD_TAG_LEN];
                tag.copy_from_slice(&m.data()[off + len..off + len + AEAD_TAG_LEN]);
                Opening::Pass {
                    counter,
                    off,
                    len,
                    tag,
                }
            }
            None => {
                let (payload, tag) = m.data_mut()[off..wg.end].split_at_mut(len);
                let opened = <&[u8; AEAD_TAG_LEN]>::try_from(&*tag)
                    .map_err(|_| OpenError::Authentication)
                    .and_then(|tag| Ok(transport.open(counter, payload, tag)?));
                if let Err(e) = opened {
                    self.stages.lap(Stage::Crypto);
                    return self.tx.drop_packet(m, e.into());
                }
                Opening::Done
            }
        };
        if batch_key.is_some() || self.open_batch.must_hold() {
            let full = self.open_batch.hold(m, at, batch_key, open);
            if full {
                self.open_held(now);
            }
            return;
        }
        self.stages.lap(Stage::Crypto);
        self.opened(m, at, now);
    }

    /// Starts a burst of `n` tunnel frames: whether its data messages wait
    /// for a multi-buffer pass ([`open_held`](Self::open_held) ends it).
    pub(crate) fn begin_open_burst(&mut self, n: usize) {
        self.open_batch.begin(n);
    }

    /// Runs the burst's multi-buffer pass and handles every held message
    /// on, in arrival order: those whose tag failed are dropped
    /// (`authentication`), as one opened alone would be.
    pub(crate) fn open_held(&mut self, now: Instant) {
        let (opened, passes) = self.open_batch.open_waiting();
        if passes > 0 {
            self.counters.add(Event::BatchOpened, opened);
            self.counters.add(Event::BatchOpenPasses, passes);
            self.stages.lap(Stage::Crypto);
        }
        while let Some(a) = self.open_batch.next() {
            match a.open {
                Opening::Done => self.opened(a.m, a.ctx, now),
                Opening::Pass { .. } | Opening::Failed => {
                    self.tx.drop_packet(a.m, DropReason::Authentication)
                }
            }
        }
    }

    /// A data message that authenticated: the key's own bookkeeping (the
    /// replay window takes its counter; for the owner, the session rules),
    /// then [`Worker::deliver`].
    fn opened(&mut self, m: Mbuf, at: DataAt, now: Instant) {
        let DataAt {
            wg,
            id,
            key,
            index,
            counter,
        } = at;
        let committed = match key {
            OpenKey::Owner { .. } => match self.table.peer_mut(id) {
                Some(peer) => {
                    let r = peer
                        .session
                        .open_commit(now, index, counter)
                        .map_err(DropReason::of_open);
                    if r.is_ok() {
                        // Authenticated: from here on the packet is the peer's.
                        peer.shared.auth_received.set(now);
                    }
                    r
                }
                None => Err(DropReason::PeerGone),
            },
            OpenKey::Lane { index } => match self.table.lane(id).map(|l| l.keypair(index)) {
                Some(Some(kp)) => kp
                    .open_commit(counter)
                    .map(|()| (None, false))
                    .map_err(DropReason::from),
                Some(None) => Err(DropReason::UnknownIndex),
                None => Err(DropReason::PeerGone),
            },
        };
        let (promoted, rekey) = match committed {
            Ok(r) => r,
            Err(reason) => return self.tx.drop_packet(m, reason),
        };
        let received = match key {
            OpenKey::Owner { at } => self.owner_received(id, &wg, at, promoted, rekey, now),
            OpenKey::Lane { .. } => {
                self.counters.add(Event::LaneDecap, 1);
                self.lane_received(id, (wg.end - wg.start) as u64, &wg, now);
                Ok(())
            }
        };
        let plain_len = wg.end - wg.start - DATA_MIN_LEN;
        match received {
            Ok(()) => self.deliver(m, wg, id, plain_len, now),
            Err(reason) => self.tx.drop_packet(m, reason),
        }
    }

    /// Tallies an authenticated packet the owner received (`at`: the
    /// worker it arrived at): re-homing, roaming, our address reached, a
    /// promoted keypair (section 5.4.6 confirmation) and a receive rekey.
    fn owner_received(
        &mut self,
        id: PeerId,
        wg: &MessageAt,
        at: usize,
        promoted: Option<Retired>,
        rekey: bool,
        now: Instant,
    ) -> Result<(), DropReason> {
        self.note_arrival(id, at);
        let peer = self.table.peer_mut(id).ok_or(DropReason::PeerGone)?;
        peer.shared.add_rx((wg.end - wg.start) as u64);
        // Roaming (section 2.1), at most every ENDPOINT_CHANGE_EVERY: a far
        // end that alternates source ports (a multi-lane one) would
        // otherwise rebuild the outer headers and queue an event per packet.
        let every =
            |t: Option<Instant>| t.is_none_or(|t| t.has_expired(ENDPOINT_CHANGE_EVERY, now));
        let roamed = peer.endpoint != Some(wg.src) && every(peer.endpoint_changed);
        if roamed {
            peer.endpoint = Some(wg.src);
            peer.endpoint_changed = Some(now);
        }
        let endpoint = peer.endpoint.unwrap_or(wg.src);
        // Reaching another of our addresses than the control thread sends
        // from (the one it heard of, else the port's default) is reported
        // too, as often at most: its handshake messages follow it.
        let mut relocal = false;
        if peer.local_reported != Some(wg.dst) {
            let theirs = peer
                .local_reported
                .or_else(|| self.nets.tun.source_for(endpoint.ip()));
            relocal = theirs != Some(wg.dst) && every(peer.local_changed);
            if relocal {
                peer.local_changed = Some(now);
            }
            if relocal || theirs == Some(wg.dst) {
                peer.local_reported = Some(wg.dst);
            }
        }
        let changed = roamed || relocal;
        // Data replies leave from the address the peer reached us at, from
        // this packet on (the kernel's endpoint source cache).
        peer.local = Some(wg.dst);
        // A multi-lane peer's lanes follow its keypairs at once, and its
        // endpoint and our address as they change (so at most every
        // ENDPOINT_CHANGE_EVERY: a multi-lane far end sends from several
        // ports, any of which reaches it).
        let republish = peer.lanes > 1 && (promoted.is_some() || changed);
        if promoted.is_some() {
            peer.publish_indexes();
        }
        if republish {
            self.publish_lanes(id, false);
        }
        if let Some(retired) = promoted {
            self.table.forget(retired);
            let _ = self
                .links
                .events
                .try_send(WorkerEvent::SessionConfirmed(id));
            self.send_path().send_staged(id, now);
        }
        if changed {
            // Best effort: a full event queue only delays the control
            // thread's copy; the data path already uses the new endpoint.
            let _ = self
                .links
                .events
                .try_send(WorkerEvent::EndpointChanged(id, endpoint, wg.dst));
        }
        if rekey {
            self.send_path().want_handshake(id, now);
        }
        Ok(())
    }

    /// Tallies an authenticated packet a lane received (`wg`: from where,
    /// to which of our addresses): tells the owner and the control thread
    /// about a new endpoint or our other address reached, and asks for a
    /// handshake when an initiator's key is getting old (kernel
    /// `receive.c: keep_key_fresh`).
    fn lane_received(&mut self, id: PeerId, len: u64, wg: &MessageAt, now: Instant) {
        let owner = self.routes.owner(id);
        let LaneReceived {
            ask_handshake,
            moved,
        } = self.lanes.received(
            &mut self.table,
            id,
            len,
            wg.src,
            wg.dst,
            &self.nets.tun,
            now,
        );
        if ask_handshake {
            self.send_path().ask_control_for_handshake(id);
        }
        if let Some((endpoint, local)) = moved {
            // Best effort, as the owner's own report: the control thread
            // sends its handshakes there, from `local`.
            let _ = self
                .links
                .events
                .try_send(WorkerEvent::EndpointChanged(id, endpoint, local));
            if let Some(tx) = owner.and_then(|o| self.links.to_workers.get(o)) {
                // The owner sends from `local` and republishes it to every
                // lane, this one included.
                let _ = tx.send(Command::SetEndpoint {
                    id,
                    endpoint,
                    local: Some(local),
                });
            }
        }
    }

    /// The rest of decapsulation, once a message authenticated: keepalives
    /// are consumed; the inner packet is checked against the peer's allowed
    /// IPs and sent on the plaintext port.
    fn deliver(&mut self, mut m: Mbuf, wg: MessageAt, id: PeerId, plain_len: usize, now: Instant) {
        if plain_len == 0 {
            self.counters.add(Event::KeepaliveRx, 1);
            return drop(m);
        }
        let inner_start = wg.start + DATA_HEADER_LEN;
        let Some(InnerIp {
            src,
            dst,
            len: total,
            v6,
        }) = ip_header(&m.data()[inner_start..inner_start + plain_len])
        else {
            return self.tx.drop_packet(m, DropReason::InnerMalformed);
        };
        // Cryptokey routing: the inner source must be one of the sender's
        // allowed IPs (whitepaper section 2), or a prefix of a tunnel
        // group it is a member of.
        self.stages.lap(Stage::Build);
        if !self.routes.routes_back(src, id) {
            return self.tx.drop_packet(m, DropReason::InnerSourceSpoofed);
        }
        self.stages.lap(Stage::Lookup);
        match self.table.peer_mut(id) {
            Some(p) => p.shared.data_received.set(now),
            None => {
                // A lane's packet: noted in its tally.
                if let Some(lane) = self.table.lane_mut(id) {
                    lane.tally.data_received = true;
                }
            }
        }
        let inner = inner_start..inner_start + total;
        // Header checksum, TTL and ECN (RFC 6040) on one parse.
        match forward_decapsulated(&mut m.data_mut()[inner.clone()], v6, wg.ecn) {
            Ok(()) => {}
            Err(InnerFault::Malformed) => {
                return self.tx.drop_packet(m, DropReason::InnerMalformed);
            }
            Err(InnerFault::TtlExceeded) => {
                // RFC 1812 section 5.3.1: back to the sender, through the tunnel.
                self.icmp_to_peer(id, &m.data()[inner], IcmpError::TimeExceeded, now);
                return self.tx.drop_packet(m, DropReason::TtlExceeded);
            }
            Err(InnerFault::CeNotEct) => return self.tx.drop_packet(m, DropReason::EcnCeNotEct),
        }
        crate::mss::clamp_counted(self.cfg.mss_clamp, &mut m.data_mut()[inner], &self.counters);
        let Some(hop) = self.nets.plain.next_hop(dst) else {
            return self.tx.drop_packet(m, DropReason::NoRoute);
        };
        let dst_mac = self.neighbours.plaintext(hop);
        // Strip outer headers, WireGuard header, padding and tag; put an
        // Ethernet header in front of the inner packet.
        let tail = usize::from(m.data_len()) - (inner_start + total);
        let (Ok(front), Ok(tail)) = (u16::try_from(inner_start), u16::try_from(tail)) else {
            return self.tx.drop_packet(m, DropReason::Malformed);
        };
        if m.adj(front).is_err() || m.trim(tail).is_err() {
            return self.tx.drop_packet(m, DropReason::Malformed);
        }
        let Ok(eth) = m.prepend(ethernet::HEADER_LEN as u16) else {
            return self.tx.drop_packet(m, DropReason::NoRoom);
        };
        eth[ethernet::field::DST].copy_from_slice(&dst_mac.unwrap_or([0; 6]));
        eth[ethernet::field::SRC].copy_from_slice(&self.nets.plain.mac);
        let ethertype = if v6 {
            ethernet::ethertype::IPV6
        } else {
            ethernet::ethertype::IPV4
        };
        eth[ethernet::field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
        m.clear_tx_offload();
        self.counters.add(Event::Decapsulated, 1);
        self.counters.add(Event::DecapBytes, total as u64);
        match dst_mac {
            Some(_) => self.tx.emit(Out::PlainTx, m),
            None => self.tx.pass_to_control(PortSide::Plaintext, m),
        }
        self.stages.lap(Stage::Build);
    }
}
