//! A minimal in-memory "device" that drives the protocol crate the way the
//! control thread and the dataplane will: MAC checks, handshake steps,
//! session installation, timers, staged packets. Virtual time only.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use protocol::cookie::{CookieChecker, CookieError, LoadTracker, MacVerdict};
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::messages::{padded_len, Message, DATA_HEADER_LEN, DATA_MIN_LEN};
use protocol::noise::{HandshakeError, PeerHandshake, StaticIdentity};
use protocol::ratelimit::RateLimiter;
use protocol::session::{Session, SessionError};
use protocol::time::{Instant, Tai64N};
use protocol::timers::{InitiationReason, Timers};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub const MTU: usize = 1420;

/// Wall clock at the virtual epoch, for TAI64N timestamps.
const WALL_EPOCH: Duration = Duration::from_secs(1_700_000_000);

/// Why the harness dropped a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    Parse,
    Cookie(CookieError),
    Handshake(HandshakeError),
    UnknownPeer,
    Session(SessionError),
}

pub struct Node {
    pub name: &'static str,
    pub identity: StaticIdentity,
    pub checker: CookieChecker,
    pub limiter: RateLimiter,
    pub load: LoadTracker,
    /// Forced "under load" for cookie tests.
    pub force_under_load: bool,
    pub hs: PeerHandshake,
    pub session: Session,
    pub timers: Timers,
    pub staged: Vec<Vec<u8>>,
    pub delivered: Vec<Vec<u8>>,
    pub keepalives_received: usize,
    pub drops: Vec<Dropped>,
    pub initiations_sent: usize,
    pub addr: SocketAddr,
    pub rng: ChaCha20Rng,
    next_index: u32,
}

/// Whether responders take the handshake threads' path
/// ([`StaticIdentity::prepare_initiation`] then
/// [`PeerHandshake::consume_prepared`]) instead of the two-step one: true in
/// the `two_peers_prepared` test binary, which runs every `two_peers`
/// scenario again that way (its results must be the same).
pub fn prepared_responder() -> bool {
    env!("CARGO_CRATE_NAME") == "two_peers_prepared"
}

pub fn key(seed: u8) -> PrivateKey {
    PrivateKey::from_bytes([seed; 32])
}

impl Node {
    /// A node with private key `[seed; 32]` that knows one peer.
    pub fn new(
        name: &'static str,
        seed: u8,
        peer_public: PublicKey,
        psk: Option<[u8; 32]>,
        addr: &str,
    ) -> Node {
        let identity = StaticIdentity::new(key(seed));
        let mut rng = ChaCha20Rng::seed_from_u64(seed as u64);
        Node {
            name,
            checker: CookieChecker::new(identity.public_key()),
            limiter: RateLimiter::new(1024, &mut rng),
            load: LoadTracker::new(),
            force_under_load: false,
            hs: PeerHandshake::new(peer_public, psk),
            identity,
            session: Session::new(),
            timers: Timers::new(None),
            staged: Vec::new(),
            delivered: Vec::new(),
            keepalives_received: 0,
            drops: Vec::new(),
            initiations_sent: 0,
            addr: addr.parse().expect("address"),
            rng,
            // Low byte = "owner lcore" 3, as the dataplane will encode it.
            next_index: (seed as u32) << 24 | 0x0300,
        }
    }

    pub fn public(&self) -> PublicKey {
        *self.identity.public_key()
    }

    fn alloc_index(&mut self) -> u32 {
        self.next_index = self.next_index.wrapping_add(0x100);
        self.next_index | 3
    }

    fn timestamp(now: Instant) -> Tai64N {
        Tai64N::from_unix(WALL_EPOCH + now.as_duration())
    }

    /// Starts a handshake if the REKEY_TIMEOUT rate limit allows.
    pub fn initiate(&mut self, now: Instant, is_retry: bool) -> Vec<Vec<u8>> {
        if !self.timers.begin_initiation(now, is_retry) {
            return Vec::new();
        }
        let index = self.alloc_index();
        let msg = self
            .hs
            .create_initiation(
                &self.identity,
                index,
                Self::timestamp(now),
                now,
                &mut self.rng,
            )
            .expect("create initiation");
        self.timers.initiation_sent(now, &mut self.rng);
        self.initiations_sent += 1;
        vec![msg.to_vec()]
    }

    fn seal(&mut self, now: Instant, payload: &[u8]) -> Result<(Vec<u8>, bool), SessionError> {
        let padded = padded_len(payload.len(), MTU);
        let mut msg = vec![0u8; DATA_HEADER_LEN + padded + 16];
        msg[DATA_HEADER_LEN..DATA_HEADER_LEN + payload.len()].copy_from_slice(payload);
        let sent = self.session.seal_message(now, &mut msg)?;
        self.timers.any_authenticated_packet_traversal(now);
        self.timers.any_authenticated_packet_sent();
        if !payload.is_empty() {
            self.timers.data_sent(now, &mut self.rng);
        }
        Ok((msg, sent.rekey))
    }

    /// Sends one payload (empty: keepalive); stages it and initiates when
    /// there is no usable keypair.
    pub fn send(&mut self, now: Instant, payload: &[u8]) -> Vec<Vec<u8>> {
        match self.seal(now, payload) {
            Ok((msg, rekey)) => {
                let mut out = vec![msg];
                if rekey {
                    out.extend(self.initiate(now, false));
                }
                out
            }
            Err(_) => {
                self.staged.push(payload.to_vec());
                self.initiate(now, false)
            }
        }
    }

    /// Sends the staged packets, or a keepalive if there are none.
    fn send_staged_or_keepalive(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let staged = std::mem::take(&mut self.staged);
        if staged.is_empty() {
            return self.send(now, &[]);
        }
        let mut out = Vec::new();
        for p in staged {
            out.extend(self.send(now, &p));
        }
        out
    }

    fn send_staged(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let staged = std::mem::take(&mut self.staged);
        let mut out = Vec::new();
        for p in staged {
            out.extend(self.send(now, &p));
        }
        out
    }

    /// Fires due timers.
    pub fn tick(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let actions = self.timers.poll(now);
        let mut out = Vec::new();
        if actions.zero_key_material {
            self.session.clear();
            self.hs.clear();
        }
        if actions.gave_up {
            self.staged.clear();
        }
        if let Some(reason) = actions.send_initiation {
            out.extend(self.initiate(now, reason == InitiationReason::Retransmit));
        }
        if actions.send_keepalive {
            out.extend(self.send_staged_or_keepalive(now));
        }
        out
    }

    /// Handles one received UDP payload; returns the packets to send back.
    pub fn receive(&mut self, now: Instant, src: SocketAddr, packet: &[u8]) -> Vec<Vec<u8>> {
        match self.try_receive(now, src, packet) {
            Ok(out) => out,
            Err(d) => {
                self.drops.push(d);
                Vec::new()
            }
        }
    }

    pub fn try_receive(
        &mut self,
        now: Instant,
        src: SocketAddr,
        packet: &[u8],
    ) -> Result<Vec<Vec<u8>>, Dropped> {
        let mut out = Vec::new();
        match Message::parse(packet).map_err(|_| Dropped::Parse)? {
            Message::Initiation(_) | Message::Response(_) => {
                let under_load = self.force_under_load || self.load.under_load(0, 4096, now);
                let verdict = self
                    .checker
                    .verify(
                        packet,
                        src,
                        under_load,
                        now,
                        &mut self.rng,
                        &mut self.limiter,
                    )
                    .map_err(Dropped::Cookie)?;
                if verdict == MacVerdict::SendCookie {
                    let reply = self
                        .checker
                        .create_reply(packet, src, now, &mut self.rng)
                        .map_err(Dropped::Cookie)?;
                    return Ok(vec![reply.to_vec()]);
                }
                if let Ok(Message::Initiation(_)) = Message::parse(packet) {
                    if prepared_responder() {
                        // A handshake thread's part, then the owner's.
                        let prepared = self
                            .identity
                            .prepare_initiation(packet, &mut self.rng)
                            .map_err(Dropped::Handshake)?;
                        if prepared.remote_static() != self.hs.remote_static() {
                            return Err(Dropped::UnknownPeer);
                        }
                        self.hs
                            .consume_prepared(prepared, now)
                            .map_err(Dropped::Handshake)?;
                    } else {
                        let pending = self
                            .identity
                            .open_initiation(packet)
                            .map_err(Dropped::Handshake)?;
                        // The peer lookup by static key (one peer here).
                        if pending.remote_static() != self.hs.remote_static() {
                            return Err(Dropped::UnknownPeer);
                        }
                        self.hs
                            .consume_initiation(pending, now)
                            .map_err(Dropped::Handshake)?;
                    }
                    let index = self.alloc_index();
                    let (response, keypair) = self
                        .hs
                        .create_response(index, now, &mut self.rng)
                        .map_err(Dropped::Handshake)?;
                    let _retired = self.session.install(Box::new(keypair));
                    self.timers.session_derived(now);
                    self.timers.any_authenticated_packet_traversal(now);
                    self.timers.any_authenticated_packet_sent();
                    out.push(response.to_vec());
                } else {
                    let keypair = self
                        .hs
                        .consume_response(&self.identity, packet, now)
                        .map_err(Dropped::Handshake)?;
                    let _retired = self.session.install(Box::new(keypair));
                    self.timers.session_derived(now);
                    self.timers.handshake_complete();
                    // Key confirmation: staged data, or a keepalive.
                    out.extend(self.send_staged_or_keepalive(now));
                }
                self.timers.any_authenticated_packet_received();
                self.timers.any_authenticated_packet_traversal(now);
            }
            Message::CookieReply(_) => {
                self.hs
                    .consume_cookie_reply(packet, now)
                    .map_err(Dropped::Cookie)?;
            }
            Message::Data(_) => {
                let mut buf = packet.to_vec();
                let (plaintext, promoted, rekey) = {
                    let r = self
                        .session
                        .open_message(now, &mut buf)
                        .map_err(Dropped::Session)?;
                    (r.plaintext.to_vec(), r.promoted.is_some(), r.rekey)
                };
                if promoted {
                    self.timers.handshake_complete();
                    out.extend(self.send_staged(now));
                }
                if rekey {
                    out.extend(self.initiate(now, false));
                }
                self.timers.any_authenticated_packet_received();
                self.timers.any_authenticated_packet_traversal(now);
                if plaintext.is_empty() {
                    self.keepalives_received += 1;
                } else {
                    self.timers.data_received(now);
                    self.delivered.push(plaintext);
                }
                debug_assert!(packet.len() >= DATA_MIN_LEN);
            }
        }
        Ok(out)
    }
}

/// Two nodes and the packets in flight between them.
pub struct Pair {
    pub a: Node,
    pub b: Node,
    pub now: Instant,
    /// Packets from a to b, and from b to a.
    pub to_b: Vec<Vec<u8>>,
    pub to_a: Vec<Vec<u8>>,
}

impl Pair {
    pub fn new() -> Pair {
        Self::with_psks(Some([5u8; 32]), Some([5u8; 32]))
    }

    pub fn with_psks(psk_a: Option<[u8; 32]>, psk_b: Option<[u8; 32]>) -> Pair {
        let pa = key(1).public_key();
        let pb = key(2).public_key();
        Pair {
            a: Node::new("a", 1, pb, psk_a, "192.0.2.1:51820"),
            b: Node::new("b", 2, pa, psk_b, "198.51.100.2:51820"),
            now: Instant::from_secs(1000),
            to_b: Vec::new(),
            to_a: Vec::new(),
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Delivers everything in flight, both ways, until nothing is left
    /// (bounded).
    pub fn deliver_all(&mut self) {
        for _ in 0..64 {
            if self.to_a.is_empty() && self.to_b.is_empty() {
                return;
            }
            let to_b = std::mem::take(&mut self.to_b);
            for p in to_b {
                let out = self.b.receive(self.now, self.a.addr, &p);
                self.to_a.extend(out);
            }
            let to_a = std::mem::take(&mut self.to_a);
            for p in to_a {
                let out = self.a.receive(self.now, self.b.addr, &p);
                self.to_b.extend(out);
            }
        }
        panic!("packets kept bouncing");
    }

    /// Delivers what is in flight to b, once, keeping b's answers in flight.
    pub fn deliver_to_b(&mut self) {
        let to_b = std::mem::take(&mut self.to_b);
        for p in to_b {
            let out = self.b.receive(self.now, self.a.addr, &p);
            self.to_a.extend(out);
        }
    }

    /// Fires both nodes' timers at the current time.
    pub fn tick(&mut self) {
        let out = self.a.tick(self.now);
        self.to_b.extend(out);
        let out = self.b.tick(self.now);
        self.to_a.extend(out);
    }

    /// Runs virtual time forward to `until`, jumping from deadline to
    /// deadline, delivering everything in between.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.deliver_all();
            let next = [self.a.timers.next_deadline(), self.b.timers.next_deadline()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    if t > self.now {
                        self.now = t;
                    }
                    self.tick();
                }
                _ => break,
            }
        }
        if until > self.now {
            self.now = until;
        }
    }

    /// a initiates, everything is delivered: a full handshake plus the
    /// confirming keepalive.
    pub fn handshake(&mut self) {
        let out = self.a.initiate(self.now, false);
        assert_eq!(out.len(), 1, "initiation allowed");
        self.to_b.extend(out);
        self.deliver_all();
    }

    pub fn a_sends(&mut self, payload: &[u8]) {
        let out = self.a.send(self.now, payload);
        self.to_b.extend(out);
    }

    pub fn b_sends(&mut self, payload: &[u8]) {
        let out = self.b.send(self.now, payload);
        self.to_a.extend(out);
    }
}

/// The payload as delivered (padded), trimmed back to `len`, after checking
/// that the padding is zeros.
pub fn unpad(delivered: &[u8], len: usize) -> &[u8] {
    assert!(delivered[len..].iter().all(|&b| b == 0), "padding is zeros");
    &delivered[..len]
}
