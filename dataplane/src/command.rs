//! What the control thread and the workers tell each other.
//!
//! Control -> worker: [`Command`]s through the worker's command channel,
//! applied between bursts. Worker -> control: [`HandshakeMessage`]s (types
//! 1-3, copied out of the mbuf) through a bounded channel whose overflow is
//! a counted drop, and rare [`WorkerEvent`]s through another.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use protocol::cookie::CookieSecret;
use protocol::time::Instant;
use protocol::transport::Keypair;

use dpdk_sys::rte::Mbuf;

use crate::lane::LanePublish;
use crate::peer::{PeerId, PeerState};
pub use crate::port::PortSide;
use crate::route::RouteTable;

/// An order from the control thread to one worker.
#[derive(Debug)]
pub enum Command {
    /// Start owning a peer, with the state the control thread built for
    /// it (so the worker allocates nothing).
    AddPeer {
        /// The peer's slot.
        id: PeerId,
        /// Its fast-path state.
        state: Box<PeerState>,
    },
    /// Stop owning a peer: its keys are wiped and staged packets freed.
    RemovePeer {
        /// The peer's slot.
        id: PeerId,
    },
    /// A handshake completed: install the keypair (as `current` for the
    /// initiator, `next` for the responder).
    InstallKeypair {
        /// The peer's slot.
        id: PeerId,
        /// The new keypair.
        keypair: Box<Keypair>,
    },
    /// An authenticated handshake came from this address (or the endpoint
    /// was configured, or a lane worker saw the peer's data arrive from
    /// there).
    SetEndpoint {
        /// The peer's slot.
        id: PeerId,
        /// The new endpoint.
        endpoint: SocketAddr,
        /// Our address the peer's handshake or data arrived at, which
        /// packets to the peer leave from (`PeerState::local`); `None`: the
        /// port's default source (a configured endpoint).
        local: Option<IpAddr>,
    },
    /// A new routing snapshot (allowed IPs and owners).
    SetRoutes(Arc<RouteTable>),
    /// A resolved neighbour on one port.
    Neighbour {
        /// The port it was resolved on.
        port: PortSide,
        /// Its address.
        ip: IpAddr,
        /// Its MAC address.
        mac: [u8; 6],
    },
    /// Send a keepalive to the peer now (timers).
    SendKeepalive {
        /// The peer's slot.
        id: PeerId,
    },
    /// Wipe the peer's keypairs (3 x REJECT_AFTER_TIME without a new one).
    ClearSession {
        /// The peer's slot.
        id: PeerId,
    },
    /// Free the peer's staged packets (the handshake was given up).
    DropStaged {
        /// The peer's slot.
        id: PeerId,
    },
    /// Re-home: hand the peer's whole fast-path state to worker `to`
    /// (which gets it as [`Command::Adopt`]) and pass on whatever still
    /// arrives here for it.
    Release {
        /// The peer's slot.
        id: PeerId,
        /// The new owner.
        to: usize,
    },
    /// Multi-lane peer: what this lane worker needs of another worker's
    /// peer (sent by the owner, not by the control thread); `None`
    /// withdraws the lane.
    Lane {
        /// The peer's slot.
        id: PeerId,
        /// Shared keypairs and endpoint.
        lane: Option<Box<LanePublish>>,
    },
    /// Re-home: take over a peer's fast-path state from its previous
    /// owner (sent by that worker, not by the control thread).
    Adopt {
        /// The peer's slot.
        id: PeerId,
        /// Keypairs, counters, replay windows, endpoint.
        state: Box<PeerState>,
        /// Its staged packets, oldest first: they leave the old owner's
        /// staging slab (`state.staged` is empty) and join the new one's.
        staged: Vec<Mbuf>,
    },
    /// The control thread drew a new cookie secret (every two minutes):
    /// the handshake gate checks mac2 and makes cookies with it from now
    /// on (see [`crate::gate`]).
    CookieSecret(Box<CookieSecret>),
}

impl Command {
    /// The peer a per-peer command is about, for commands that follow the
    /// peer to its new owner when it moved (not [`Command::AddPeer`],
    /// which starts a new peer in the slot, nor [`Command::Adopt`]).
    pub fn moving_peer(&self) -> Option<PeerId> {
        match self {
            Command::RemovePeer { id }
            | Command::InstallKeypair { id, .. }
            | Command::SetEndpoint { id, .. }
            | Command::SendKeepalive { id }
            | Command::ClearSession { id }
            | Command::DropStaged { id }
            | Command::Release { id, .. } => Some(*id),
            Command::AddPeer { .. }
            | Command::Adopt { .. }
            | Command::Lane { .. }
            | Command::SetRoutes(_)
            | Command::Neighbour { .. }
            | Command::CookieSecret(_) => None,
        }
    }
}

/// Something a worker noticed that the control thread must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEvent {
    /// Packets are waiting and there is no usable session, or the session
    /// wants a rekey.
    WantHandshake(PeerId),
    /// The responder's `next` keypair was confirmed by a data packet.
    SessionConfirmed(PeerId),
    /// Authenticated data arrived from a new address (roaming), or at
    /// another of our addresses: the peer's endpoint and our address it
    /// reached, which the control thread's handshake messages to it leave
    /// from (at most every
    /// [`ENDPOINT_CHANGE_EVERY`](crate::peer::ENDPOINT_CHANGE_EVERY) per
    /// peer and worker).
    EndpointChanged(PeerId, SocketAddr, IpAddr),
    /// The owner keeps receiving the peer's authenticated packets through
    /// this other worker's RX queue: re-home the peer there.
    ArrivesAt(PeerId, usize),
    /// This worker now holds the peer's fast-path state (re-homing done).
    Adopted(PeerId, usize),
}

/// Largest handshake message (an initiation).
pub const MAX_HANDSHAKE_LEN: usize = protocol::messages::INITIATION_LEN;

/// A handshake message (type 1, 2 or 3) copied out of the tunnel port,
/// past the worker's handshake gate ([`crate::gate`]): an initiation or
/// response has a valid mac1, and under load a valid mac2.
#[derive(Clone)]
pub struct HandshakeMessage {
    /// Where it came from (outer source address and UDP port).
    pub src: SocketAddr,
    /// Our address it was sent to: the answer leaves from there.
    pub local: IpAddr,
    /// When the worker received it.
    pub received: Instant,
    /// The worker was under load and checked the message's mac2: the
    /// control thread applies the per-source rate limiter to it.
    pub under_load: bool,
    len: u8,
    bytes: [u8; MAX_HANDSHAKE_LEN],
}

impl std::fmt::Debug for HandshakeMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeMessage")
            .field("src", &self.src)
            .field("len", &self.len)
            .field("under_load", &self.under_load)
            .finish_non_exhaustive()
    }
}

impl HandshakeMessage {
    /// Copies a message; `None` when it is longer than any handshake message.
    pub fn new(
        src: SocketAddr,
        local: IpAddr,
        received: Instant,
        msg: &[u8],
        under_load: bool,
    ) -> Option<Self> {
        let len = u8::try_from(msg.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_HANDSHAKE_LEN)?;
        let mut bytes = [0u8; MAX_HANDSHAKE_LEN];
        bytes[..msg.len()].copy_from_slice(msg);
        Some(Self {
            src,
            local,
            received,
            under_load,
            len,
            bytes,
        })
    }

    /// The message bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}
