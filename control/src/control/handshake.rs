//! Handshake messages on the control thread (whitepaper section 5.4): the
//! per-source rate limit under load, the responder, the initiator, and the
//! installation of each new keypair into the peer's owner lcore. The MACs
//! and cookie replies are the workers' (`dataplane::gate`).

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use dataplane::command::{Command, HandshakeMessage};
use dataplane::peer::PeerId;
use protocol::messages::{Message, MessageType};
use protocol::noise::{HandshakeError, OpenedResponse, PreparedInitiation};
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;

use crate::control::Control;
use crate::counters::bump;
use crate::handshake_pool::{Prepared, Ready, Work};

/// Capacity of the handshake queue from the workers (the kernel's
/// MAX_QUEUED_INCOMING_HANDSHAKES); the workers' gates are "under load"
/// from 1/8 of it.
pub const HANDSHAKE_QUEUE: usize = 4096;

/// TAI64N of the wall clock now (the initiation timestamp, section 5.4.2).
fn tai64n_now() -> Tai64N {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Tai64N::from_unix_whitened(since)
}

/// The index a response or cookie reply is addressed to: one of ours, the
/// sender index of our initiation (section 5.4.3, 5.4.7).
fn receiver_of(msg: &[u8]) -> Option<u32> {
    Message::parse(msg).ok().and_then(|m| m.receiver())
}

impl Control<'_> {
    /// Handles one handshake message from a worker. The worker's gate
    /// (`dataplane::gate`) has checked mac1, and under load mac2, or
    /// answered with a cookie itself; what is left here is the per-source
    /// rate limiter for the messages that passed mac2 under load (kernel
    /// `wg_cookie_validate_packet`), then the handshake: here, or, with
    /// handshake threads, queued to them in order
    /// ([`Control::on_handshake_ready`]).
    pub(crate) fn on_handshake_message(&mut self, msg: HandshakeMessage, now: Instant) {
        let Ok(kind) = MessageType::of(msg.bytes()) else {
            return bump(&self.counters.handshakes_rejected);
        };
        if msg.under_load && !self.limiter.allow(msg.src.ip(), now) {
            return bump(&self.counters.handshakes_rate_limited);
        }
        if let Some(pool) = self.handshake_pool.as_mut() {
            let work = match kind {
                MessageType::Initiation => Some(Work::Initiation),
                // Our outstanding initiation as it is now: should a message
                // queued before this one replace it, the response is
                // refused in its turn, as it would be here.
                MessageType::Response => receiver_of(msg.bytes())
                    .and_then(|i| self.table.peers.by_index(i))
                    .and_then(|id| self.table.peers.get(id))
                    .and_then(|p| p.handshake.response_work())
                    .map(Work::Response),
                MessageType::CookieReply | MessageType::Data => None,
            };
            return pool.submit(msg, work);
        }
        self.handle(kind, &msg, None, now);
    }

    /// A message back from the handshake threads, in the order it came.
    pub(crate) fn on_handshake_ready(&mut self, ready: Ready, now: Instant) {
        if let Ok(kind) = MessageType::of(ready.msg.bytes()) {
            self.handle(kind, &ready.msg, ready.prepared, now);
        }
    }

    /// Handles a message past the rate limiter; `prepared` carries its
    /// X25519 work when a handshake thread did it.
    fn handle(
        &mut self,
        kind: MessageType,
        msg: &HandshakeMessage,
        prepared: Option<Prepared>,
        now: Instant,
    ) {
        let bytes = msg.bytes();
        match (kind, prepared) {
            (MessageType::Initiation, Some(Prepared::Initiation(p))) => {
                self.respond_prepared(p, msg.src, msg.local, now)
            }
            (MessageType::Initiation, _) => self.respond(bytes, msg.src, msg.local, now),
            (MessageType::Response, Some(Prepared::Response(opened))) => {
                self.complete_opened(opened, bytes, msg.src, msg.local, now)
            }
            (MessageType::Response, _) => self.complete(bytes, msg.src, msg.local, now),
            (MessageType::CookieReply, _) => {
                // Receiver: the sender index of the message it answers.
                let id = receiver_of(bytes).and_then(|i| self.table.peers.by_index(i));
                let ok = id
                    .and_then(|id| self.table.peers.get_mut(id))
                    .is_some_and(|p| p.handshake.consume_cookie_reply(bytes, now).is_ok());
                if ok {
                    bump(&self.counters.cookie_replies_accepted);
                } else {
                    bump(&self.counters.handshakes_rejected);
                }
            }
            (MessageType::Data, _) => bump(&self.counters.handshakes_rejected),
        }
    }

    /// Responder: consume an initiation, answer it, install the keypair as
    /// the peer's `next` (section 5.4.2 and 5.4.3).
    fn respond(&mut self, bytes: &[u8], src: SocketAddr, local: IpAddr, now: Instant) {
        let Ok(pending) = self.identity.open_initiation(bytes) else {
            return bump(&self.counters.handshakes_rejected);
        };
        let Some(id) = self.table.peers.by_key(pending.remote_static()) else {
            return bump(&self.counters.handshakes_rejected);
        };
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        if peer.handshake.consume_initiation(pending, now).is_err() {
            return bump(&self.counters.handshakes_rejected);
        }
        self.answer_initiation(id, src, local, now);
    }

    /// Responder with a handshake thread's work: the same checks and
    /// answer as [`Control::respond`], no X25519 left.
    fn respond_prepared(
        &mut self,
        prepared: Result<PreparedInitiation, HandshakeError>,
        src: SocketAddr,
        local: IpAddr,
        now: Instant,
    ) {
        let Ok(prepared) = prepared else {
            return bump(&self.counters.handshakes_rejected);
        };
        let Some(id) = self.table.peers.by_key(prepared.remote_static()) else {
            return bump(&self.counters.handshakes_rejected);
        };
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        if peer.handshake.consume_prepared(prepared, now).is_err() {
            return bump(&self.counters.handshakes_rejected);
        }
        self.answer_initiation(id, src, local, now);
    }

    /// The initiation from peer `id` was consumed: the response, the
    /// keypair installed as `next` and the timers (5.4.3).
    fn answer_initiation(&mut self, id: PeerId, src: SocketAddr, local: IpAddr, now: Instant) {
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        // The initiation authenticated the peer.
        peer.sync_activity(&mut self.rng);
        peer.timers.any_authenticated_packet_received();
        peer.timers.any_authenticated_packet_traversal(now);
        let Some(index) = self
            .table
            .peers
            .allocate_index(id, self.workers, &mut self.rng)
        else {
            return;
        };
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        let Ok((response, keypair)) = peer.handshake.create_response(index, now, &mut self.rng)
        else {
            return bump(&self.counters.handshakes_rejected);
        };
        peer.timers.session_derived(now);
        // No initiation of ours for REKEY_TIMEOUT: the initiator's first
        // data message confirms this keypair.
        peer.timers.response_sent(now);
        self.learn_endpoint(id, src, local);
        self.install(id, keypair);
        bump(&self.counters.responses_sent);
        // From the address the initiation came to (a stateful firewall in
        // front of the peer expects the answer from there).
        self.tun.send_udp(
            src,
            Some(local),
            self.listen_port,
            &response,
            now,
            self.pool,
            &self.counters,
        );
    }

    /// Initiator: consume a response and install the keypair as `current`;
    /// the owner then sends its staged packets or a keepalive (5.4.3).
    fn complete(&mut self, bytes: &[u8], src: SocketAddr, local: IpAddr, now: Instant) {
        // Receiver: the sender index of our initiation.
        let Some(id) = receiver_of(bytes).and_then(|i| self.table.peers.by_index(i)) else {
            return bump(&self.counters.handshakes_rejected);
        };
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        let result = peer.handshake.consume_response(&self.identity, bytes, now);
        self.completed(id, result, src, local, now);
    }

    /// Initiator with a handshake thread's work: the same checks as
    /// [`Control::complete`], no X25519 left.
    fn complete_opened(
        &mut self,
        opened: Result<OpenedResponse, HandshakeError>,
        bytes: &[u8],
        src: SocketAddr,
        local: IpAddr,
        now: Instant,
    ) {
        let Some(id) = receiver_of(bytes).and_then(|i| self.table.peers.by_index(i)) else {
            return bump(&self.counters.handshakes_rejected);
        };
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        let result = opened.and_then(|o| peer.handshake.consume_opened_response(o, bytes, now));
        self.completed(id, result, src, local, now);
    }

    /// The response to our initiation was consumed (or refused): the
    /// keypair installed as `current`, the timers.
    fn completed(
        &mut self,
        id: PeerId,
        result: Result<Keypair, HandshakeError>,
        src: SocketAddr,
        local: IpAddr,
        now: Instant,
    ) {
        let Ok(keypair) = result else {
            return bump(&self.counters.handshakes_rejected);
        };
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        peer.sync_activity(&mut self.rng);
        peer.timers.session_derived(now);
        peer.handshake_completed();
        peer.timers.any_authenticated_packet_received();
        peer.timers.any_authenticated_packet_traversal(now);
        bump(&self.counters.handshakes_completed);
        tracing::info!(peer = %conf::encode_key(peer.public_key.as_bytes()), endpoint = %src, "handshake completed (we initiated)");
        self.learn_endpoint(id, src, local);
        self.install(id, keypair);
    }

    /// An authenticated handshake message came from `src` to our `local`:
    /// the peer's endpoint, and the address we send to it from.
    fn learn_endpoint(&mut self, id: PeerId, src: SocketAddr, local: IpAddr) {
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        if peer.endpoint != Some(src) || peer.local != Some(local) {
            peer.endpoint = Some(src);
            peer.local = Some(local);
            let owner = peer.owner;
            self.commands.send(
                owner,
                Command::SetEndpoint {
                    id,
                    endpoint: src,
                    local: Some(local),
                },
            );
        }
    }

    fn install(&mut self, id: PeerId, keypair: Keypair) {
        let Some((owner, lanes)) = self.table.peers.get_mut(id).map(|p| (p.owner, p.lanes)) else {
            return;
        };
        // A multi-lane peer's workers share its keypairs (dataplane `lanes`).
        let keypair = if lanes > 1 {
            keypair.into_lanes()
        } else {
            keypair
        };
        self.table.peers.keypair_sent(id, keypair.local_index());
        self.commands.send(
            owner,
            Command::InstallKeypair {
                id,
                keypair: Box::new(keypair),
            },
        );
    }

    /// Sends an initiation to the peer if it has an endpoint and the
    /// REKEY_TIMEOUT rate limit allows (kernel
    /// `wg_packet_send_handshake_initiation`).
    pub(crate) fn initiate(&mut self, id: PeerId, now: Instant, retry: bool) {
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        let Some(endpoint) = peer.endpoint else {
            return;
        };
        let local = peer.local;
        peer.sync_activity(&mut self.rng);
        if !peer.timers.begin_initiation(now, retry) {
            return;
        }
        let Some(index) = self
            .table
            .peers
            .allocate_index(id, self.workers, &mut self.rng)
        else {
            return;
        };
        let Some(peer) = self.table.peers.get_mut(id) else {
            return;
        };
        let Ok(msg) = peer.handshake.create_initiation(
            &self.identity,
            index,
            tai64n_now(),
            now,
            &mut self.rng,
        ) else {
            return bump(&self.counters.handshakes_rejected);
        };
        peer.timers.initiation_sent(now, &mut self.rng);
        bump(&self.counters.initiations_sent);
        tracing::debug!(peer = %conf::encode_key(self.table.peers.get(id).map_or(&[0; 32], |p| p.public_key.as_bytes())), %endpoint, retry, "initiation sent");
        self.tun.send_udp(
            endpoint,
            local,
            self.listen_port,
            &msg,
            now,
            self.pool,
            &self.counters,
        );
    }
}
