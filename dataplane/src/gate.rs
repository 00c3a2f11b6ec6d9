//! The handshake gate: what a worker does with the handshake messages it
//! receives before any of them may take a place in the bounded queue to
//! the control thread (whitepaper section 5.3 and 5.4.7; kernel
//! `receive.c: wg_receive_handshake_packet` and `cookie.c`).
//!
//! - An initiation or response whose mac1 is not for our public key is
//!   dropped (`bad_mac1`): a sender who does not know our public key costs
//!   one BLAKE2s on the worker and nothing on the control thread.
//! - Under load, one without a valid mac2 is answered with a cookie reply,
//!   built here in the message's own mbuf and sent from this worker's TX
//!   queue (`cookie_reply_sent`); it goes no further.
//! - Everything else is queued (`handshake_to_control`), marked with
//!   whether its mac2 was checked: the control thread rate-limits those
//!   per source (the kernel rate-limits exactly the messages that passed
//!   mac2 under load), then runs the Diffie-Hellmans.
//!
//! Cookie replies (type 3) carry no MACs: they go to the control thread,
//! which holds the state to check them.
//!
//! **Under load** is the kernel's definition, decided where the kernel
//! decides it, when the message is handled: the handshake queue holds at
//! least 1/8 of its capacity, and the state sticks for one second after
//! that was last seen ([`LoadTracker`]). Each worker reads the queue's
//! length itself (`Sender::len`: two atomic loads, no lock, and only for
//! handshake messages) and keeps its own one-second memory. A flag
//! published by the control thread would lag by the control thread's own
//! backlog, which under a flood is exactly what is behind.
//!
//! **The cookie secret** `R_m` is drawn by the control thread, which
//! rotates it every two minutes and sends each new one to every worker
//! through its command channel ([`crate::command::Command::CookieSecret`],
//! applied between bursts): a cookie handed out by one worker checks on
//! any other. The workers never rotate it themselves (they never read the
//! secret's age); the key for mac1 comes from our static public key, which
//! changes only with the private key, and wgdp refuses to change that
//! without a restart (UAPI `set private_key` is `EPERM`).
//!
//! **Nonces** for cookie replies come from a ChaCha20 generator per worker,
//! seeded once from the operating system when the worker is built: no
//! system call per reply.
//!
//! **No per-source limit on cookie replies**, as in the kernel: one reply
//! answers one message that carried our mac1, and it is smaller than that
//! message (a 64-byte reply, 106 bytes on the wire over IPv4, for a
//! 148-byte initiation, 190 bytes), so a spoofed flood reflected off wgdp
//! is attenuated, not amplified. A per-source table on the worker would
//! have to refuse or admit new sources once spoofed ones fill it; refusing
//! would deny cookies to the real peers a flood is meant to keep out.
//!
//! **Cost per flood frame.** mac1 is checked with its key's BLAKE2s block
//! compressed once, when the gate is built (`protocol::crypto::MacKey`: two
//! compressions for an initiation instead of three), and the cookie
//! `MAC(R_m, source)` with the secret's block compressed once per secret.
//! Under load the cookie for a message's source is computed once for both
//! the mac2 check and the reply ([`CookieChecker::mac2_or_reply`]), and the
//! reply is sealed with ring's ChaCha20-Poly1305 under an HChaCha20
//! subkey. BENCHMARKS.md's flood section has the figures.
//!
//! The checks themselves are `protocol`'s [`CookieChecker`]; this module
//! only applies them to mbufs.

use std::net::{IpAddr, SocketAddr};

use crossbeam_channel::Sender;
use protocol::cookie::{CookieChecker, CookieSecret, LoadTracker, UnderLoad};
use protocol::crypto::PublicKey;
use protocol::messages::{MessageType, COOKIE_REPLY_LEN};
use protocol::time::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::command::HandshakeMessage;
use crate::counters::{DropReason, Event, WorkerCounters};

/// A worker's cookie checker, its view of the load, and its nonce source.
pub struct HandshakeGate {
    checker: CookieChecker,
    load: LoadTracker,
    rng: ChaCha20Rng,
}

impl std::fmt::Debug for HandshakeGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeGate")
            .field("checker", &self.checker)
            .field("load", &self.load)
            .finish_non_exhaustive()
    }
}

impl HandshakeGate {
    /// The gate of an interface whose static public key is `local`, with
    /// no cookie secret until the control thread sends one.
    pub fn new(local: &PublicKey) -> Self {
        Self {
            checker: CookieChecker::new(local),
            load: LoadTracker::new(),
            // Seeded once, from the operating system (as `OsRng` is used
            // for every key wgdp draws).
            rng: ChaCha20Rng::from_entropy(),
        }
    }

    /// Uses the control thread's new cookie secret from now on.
    pub fn set_secret(&mut self, secret: CookieSecret) {
        self.checker.set_secret(secret);
    }
}

/// What the gate did with a handshake message.
pub(crate) enum GateVerdict {
    /// Queued for the control thread, or counted as refused by the full
    /// queue (`handshake_queue_full`): either way its mbuf is done with.
    Taken,
    /// Answer its sender with this cookie reply.
    Cookie([u8; COOKIE_REPLY_LEN]),
    /// Drop it for this reason.
    Drop(DropReason),
}

impl HandshakeGate {
    /// A handshake message `msg` of type `kind` (initiation, response or
    /// cookie reply, of its exact length) from `src` to our address `dst`: checked, then queued on
    /// `queue` for the control thread, or to be answered with a cookie
    /// reply.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn judge(
        &mut self,
        msg: &[u8],
        kind: MessageType,
        src: SocketAddr,
        dst: IpAddr,
        queue: &Sender<HandshakeMessage>,
        counters: &WorkerCounters,
        now: Instant,
    ) -> GateVerdict {
        let under_load = if kind == MessageType::CookieReply {
            false
        } else {
            if self.checker.check_mac1(msg).is_err() {
                return GateVerdict::Drop(DropReason::BadMac1);
            }
            let capacity = queue.capacity().unwrap_or(usize::MAX);
            if self.load.under_load(queue.len(), capacity, now) {
                counters.add(Event::HandshakeUnderLoad, 1);
                match self.checker.mac2_or_reply(msg, src, &mut self.rng) {
                    Ok(UnderLoad::Mac2) => true,
                    Ok(UnderLoad::Reply(reply)) => return GateVerdict::Cookie(reply),
                    // No secret yet: the control thread sends it before
                    // anything else, so a worker has it before its first
                    // burst. Without it, the control thread judges the
                    // message as before there was a gate.
                    Err(_) => false,
                }
            } else {
                false
            }
        };
        let Some(h) = HandshakeMessage::new(src, dst, now, msg, under_load) else {
            return GateVerdict::Drop(DropReason::BadMessage);
        };
        match queue.try_send(h) {
            Ok(()) => counters.add(Event::HandshakeToControl, 1),
            Err(_) => counters.count_drop(DropReason::HandshakeQueueFull),
        }
        GateVerdict::Taken
    }
}
