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
//! length itself (`Sender::len`: two atomic loads, no lock), once per
//! judgement of what its gate held (when a message with a valid mac1 first
//! needs it; the messages it queues after that are counted on), and keeps
//! its own one-second memory. A flag
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
//! **Held, then judged together.** A worker does not judge a handshake
//! message when its frame is parsed: the gate holds it (up to `HELD`, 32:
//! two SIMD passes) and the worker judges what it holds at the end of the
//! round, so that the round's mac1s are computed in one AVX-512 pass of
//! up to 16 (`protocol::crypto::MacKey::mac_many`, the `mbmac` crate:
//! about 32 ns a mac1 with 16 lanes full, 80 ns with 5, against 200 ns one
//! at a time). Under a flood the RX bursts come back full and a round
//! brings only a few handshake messages among the data, so while a round
//! was saturated the gate keeps holding until a pass is full (16), for at
//! most `HOLD_ROUNDS` (8) rounds: a message waits a few bursts,
//! microseconds. A round that brought no full burst judges at once (a
//! worker with spare time adds no latency), as does a hold that is full
//! mid-burst. Each held message is then judged
//! exactly as alone, in arrival order (the load, mac2, the reply, the
//! queue); one still held when the worker stops is freed with it.
//!
//! **Under load, those with a valid mac1 wait for a fuller pass.** Their
//! cookies and mac2s are computed in SIMD passes too, and a pass costs
//! about as much for 3 lanes as for 16; under a flood a judgement brings
//! few valid mac1s (a fifth of the bench's flood frames have one). So
//! under load they leave the judgement and wait (up to 16) for their
//! pass, which runs when 16 wait, when a round was not saturated, or
//! after `WAIT_ROUNDS` (32) rounds; then each is judged as alone, in
//! arrival order among them. The others (a wrong mac1: dropped; not under
//! load: queued) are handed back at once.
//!
//! **Cost per flood frame.** mac1 is checked with its key's BLAKE2s block
//! compressed once, when the gate is built (`protocol::crypto::MacKey`: two
//! compressions for an initiation instead of three), 16 messages at a
//! time (above), and the cookie `MAC(R_m, source)` with the secret's block
//! compressed once per secret. Under load the cookie for a message's
//! source is computed once for both the mac2 check and the reply
//! ([`CookieChecker::mac2_or_reply`]); when the worker is under load as it
//! judges what it held, the cookies of the messages whose mac1 checked are
//! computed 16 per pass, and their mac2s too, each lane under its own
//! cookie ([`CookieChecker::mac2_checks`]). The reply is sealed with
//! ring's ChaCha20-Poly1305 under an HChaCha20 subkey. What a flood frame costs
//! besides the cryptography (receiving it, its headers, its cold mbuf,
//! freeing it) and the figures are in BENCHMARKS.md's flood section.
//!
//! The checks themselves are `protocol`'s [`CookieChecker`]; this module
//! only applies them to mbufs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crossbeam_channel::Sender;
use dpdk_sys::rte::Mbuf;
use protocol::cookie::{CookieChecker, CookieSecret, LoadTracker, Mac2Check, UnderLoad};
use protocol::crypto::{PublicKey, MAC_LANES};
use protocol::messages::{MessageType, COOKIE_REPLY_LEN};
use protocol::time::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::command::HandshakeMessage;
use crate::counters::{DropReason, Event, WorkerCounters};

/// The most handshake messages a gate holds before it must judge them:
/// two SIMD passes, a whole RX burst.
pub(crate) const HELD: usize = 2 * MAC_LANES;

/// The source in the unused slots of [`HandshakeGate::check_held`]'s arrays.
const NO_SOURCE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// A handshake message held by the gate, and where it lies in its mbuf.
#[derive(Debug)]
pub(crate) struct Held {
    /// The frame.
    pub(crate) m: Mbuf,
    /// Initiation, response or cookie reply, of its exact length.
    pub(crate) kind: MessageType,
    /// Offset of the message (the UDP payload) in the frame.
    pub(crate) start: usize,
    /// Offset of its end.
    pub(crate) end: usize,
    /// The outer source address and port.
    pub(crate) src: SocketAddr,
    /// Our address it was sent to.
    pub(crate) dst: IpAddr,
}

/// A worker's cookie checker, its view of the load, its nonce source, and
/// the handshake messages it holds until their mac1s are checked together.
pub struct HandshakeGate {
    checker: CookieChecker,
    load: LoadTracker,
    rng: ChaCha20Rng,
    /// Held messages, `held[next..len]` not handed back yet.
    held: [Option<Held>; HELD],
    /// Whether each held message's mac1 checked ([`Self::check_held`]).
    mac1_ok: [bool; HELD],
    /// Under load, each held message's cookie and mac2 comparison, made
    /// together ([`Self::check_held`]).
    checks: [Option<Mac2Check>; HELD],
    len: usize,
    /// The next to hand back; `None` until the mac1s were checked.
    next: Option<usize>,
    /// When to judge what is held.
    policy: HoldPolicy,
    /// The handshake queue's length, read once per judgement (when a
    /// message with a valid mac1 first needs it), plus what this gate
    /// queued since.
    backlog: Option<usize>,
    /// Under load, the held messages whose mac1 checked, waiting for a
    /// fuller pass of cookies and mac2s.
    waiting: Waiting,
}

/// Under load, messages whose mac1 checked wait here (up to a SIMD pass,
/// [`MAC_LANES`]) for their cookies and mac2s to be computed together: one
/// pass costs about the same for 3 lanes as for 16 (1.4 us against 1.8 us
/// here), and under a flood a judgement brings only a few (one frame in
/// five of the bench's flood has a valid mac1).
#[derive(Debug)]
struct Waiting {
    msgs: [Option<Held>; MAC_LANES],
    /// Each one's cookie and mac2 comparison, once their pass ran.
    checks: [Option<Mac2Check>; MAC_LANES],
    len: usize,
    /// The next to hand back; `None` until their pass ran.
    next: Option<usize>,
    /// Rounds since the oldest arrived.
    rounds: u32,
    /// Whether their pass is due at the next judgement (see [`Self::due`]).
    due: bool,
}

impl Waiting {
    const fn new() -> Self {
        Self {
            msgs: [const { None }; MAC_LANES],
            checks: [const { None }; MAC_LANES],
            len: 0,
            next: None,
            rounds: 0,
            due: false,
        }
    }

    /// Whether their pass is due at the end of this round: when the round
    /// was not `saturated` (a worker with spare time answers at once) or
    /// the oldest has waited [`WAIT_ROUNDS`] rounds. (A full pass runs at
    /// once, when it fills.)
    fn due(&mut self, saturated: bool) -> bool {
        if self.len == 0 {
            self.rounds = 0;
            self.due = false;
            return false;
        }
        self.rounds += 1;
        self.due = !saturated || self.rounds >= WAIT_ROUNDS;
        self.due
    }
}

impl std::fmt::Debug for HandshakeGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeGate")
            .field("checker", &self.checker)
            .field("load", &self.load)
            .field("held", &self.len)
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
            held: [const { None }; HELD],
            mac1_ok: [false; HELD],
            checks: [const { None }; HELD],
            len: 0,
            next: None,
            policy: HoldPolicy::default(),
            backlog: None,
            waiting: Waiting::new(),
        }
    }

    /// Uses the control thread's new cookie secret from now on.
    pub fn set_secret(&mut self, secret: CookieSecret) {
        self.checker.set_secret(secret);
    }
}

/// Rounds a saturated worker holds handshake messages at most, waiting
/// for a full SIMD pass: under a flood of 500k/s among 3 Mpps of data a
/// round brings 4 to 5, so 16 come within about 4 rounds; a handshake
/// among saturating data and no flood waits 8 rounds, tens of
/// microseconds.
const HOLD_ROUNDS: u32 = 8;

/// Rounds a saturated worker keeps messages whose mac1 checked under load
/// waiting for a fuller pass of cookies and mac2s ([`Waiting`]): under the
/// bench's flood of 500k/s among 3 Mpps of data a round brings about one,
/// so a pass holds up to 16 after 16 rounds or so; 32 rounds are a few
/// hundred microseconds of a saturated worker, against a cookie round
/// trip of milliseconds and a retry after REKEY_TIMEOUT (5 s).
const WAIT_ROUNDS: u32 = 32;

/// When the worker judges what the gate holds, at the end of a round: when
/// a SIMD pass is full ([`MAC_LANES`]); when the round was not `saturated`
/// (no RX burst came back full, so nothing is gained by waiting for more:
/// a worker with spare time answers at once); or when the oldest held
/// message has waited `HOLD_ROUNDS` (8) rounds.
#[derive(Debug, Default)]
struct HoldPolicy {
    /// Rounds since the oldest held message arrived.
    waited: u32,
}

impl HoldPolicy {
    /// Whether to judge the `held` messages at the end of this round.
    fn due(&mut self, held: usize, saturated: bool) -> bool {
        if held == 0 {
            self.waited = 0;
            return false;
        }
        self.waited += 1;
        let due = !saturated || held >= MAC_LANES || self.waited >= HOLD_ROUNDS;
        if due {
            self.waited = 0;
        }
        due
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
    /// Holds handshake message `h` until the worker judges what the gate
    /// holds ([`Self::check_held`], then [`Self::next_judged`]); gives it
    /// back when [`HELD`] are held already (judge those first).
    pub(crate) fn hold(&mut self, h: Held) -> Result<(), Held> {
        if self.len == HELD || self.next.is_some() {
            return Err(h);
        }
        self.held[self.len] = Some(h);
        self.len += 1;
        Ok(())
    }

    /// Whether the worker should judge what is held at the end of this
    /// round (see [`HoldPolicy`]), or run the pass of those waiting (see
    /// [`Waiting::due`]).
    pub(crate) fn due(&mut self, saturated: bool) -> bool {
        let held = self.policy.due(self.len, saturated);
        let waiting = self.waiting.due(saturated);
        held || waiting
    }

    /// Checks the mac1s of every held message, [`MAC_LANES`] per SIMD pass
    /// (cookie replies carry none: theirs fail and are not looked at); then,
    /// when the worker is under load now (as the first of them will find
    /// it, from the handshake `queue`'s length), those whose mac1 checked
    /// join the ones waiting for a pass of cookies and mac2s ([`Waiting`]),
    /// and that pass runs when it is full or due. (When more come than a
    /// pass holds, the rest have theirs computed here, 16 per pass too.)
    pub(crate) fn check_held(&mut self, queue: &Sender<HandshakeMessage>, now: Instant) {
        self.check_mac1s(queue, now);
        let w = &mut self.waiting;
        if w.len > 0 && w.next.is_none() && (w.len == MAC_LANES || w.due) {
            let mut valid: [(&[u8], SocketAddr); MAC_LANES] = [(&[], NO_SOURCE); MAC_LANES];
            for (v, h) in valid.iter_mut().zip(w.msgs[..w.len].iter().flatten()) {
                *v = (h.m.data().get(h.start..h.end).unwrap_or_default(), h.src);
            }
            self.checker
                .mac2_checks(&valid[..w.len], &mut w.checks[..w.len]);
            w.next = Some(0);
        }
    }

    /// The held messages' mac1s, and under load their move to those
    /// waiting (see [`Self::check_held`]).
    fn check_mac1s(&mut self, queue: &Sender<HandshakeMessage>, now: Instant) {
        let mut msgs: [&[u8]; HELD] = [&[]; HELD];
        for (msg, h) in msgs.iter_mut().zip(self.held[..self.len].iter().flatten()) {
            *msg = h.m.data().get(h.start..h.end).unwrap_or_default();
        }
        self.checker
            .check_mac1_many(&msgs[..self.len], &mut self.mac1_ok[..self.len]);
        self.next = Some(0);
        self.backlog = None;
        if !self.mac1_ok[..self.len].contains(&true) {
            return;
        }
        let capacity = queue.capacity().unwrap_or(usize::MAX);
        let backlog = *self.backlog.get_or_insert_with(|| queue.len());
        if !self.load.under_load(backlog, capacity, now) {
            return;
        }
        // The messages whose mac1 checked wait, as many as a pass holds;
        // the rest of them (more than a pass) have theirs computed now.
        let w = &self.waiting;
        let mut room = if w.next.is_none() {
            MAC_LANES - w.len
        } else {
            0
        };
        let mut wait = [false; HELD];
        let mut valid: [(&[u8], SocketAddr); HELD] = [(&[], NO_SOURCE); HELD];
        let mut at = [0usize; HELD];
        let mut n = 0;
        for (i, h) in self.held[..self.len].iter().enumerate() {
            match h {
                Some(_) if self.mac1_ok[i] && room > 0 => {
                    wait[i] = true;
                    room -= 1;
                }
                Some(h) if self.mac1_ok[i] => {
                    valid[n] = (msgs[i], h.src);
                    at[n] = i;
                    n += 1;
                }
                _ => {}
            }
        }
        if n > 0 {
            let mut found: [Option<Mac2Check>; HELD] = [const { None }; HELD];
            self.checker.mac2_checks(&valid[..n], &mut found[..n]);
            for (check, &i) in found[..n].iter_mut().zip(&at) {
                self.checks[i] = check.take();
            }
        }
        let w = &mut self.waiting;
        for (h, _) in self.held[..self.len].iter_mut().zip(wait).filter(|x| x.1) {
            w.msgs[w.len] = h.take();
            w.len += 1;
        }
    }

    /// The next held message, in arrival order (but for those left waiting
    /// for a pass of cookies and mac2s), then the waiting ones whose pass
    /// ran, with what the gate did with it: checked, then queued on `queue`
    /// for the control thread, or to be answered with a cookie reply;
    /// `None` when all were handed back (the gate then holds nothing but
    /// those still waiting).
    pub(crate) fn next_judged(
        &mut self,
        queue: &Sender<HandshakeMessage>,
        counters: &WorkerCounters,
        now: Instant,
    ) -> Option<(Held, GateVerdict)> {
        if let Some(mut i) = self.next {
            while i < self.len {
                self.next = Some(i + 1);
                if let Some(h) = self.held[i].take() {
                    let (mac1_ok, check) = (self.mac1_ok[i], self.checks[i].take());
                    return Some(self.judged(h, mac1_ok, check, queue, counters, now));
                }
                i += 1;
            }
            self.len = 0;
            self.next = None;
        }
        let w = &mut self.waiting;
        let j = w.next?;
        match w
            .msgs
            .get_mut(j)
            .filter(|_| j < w.len)
            .and_then(Option::take)
        {
            Some(h) => {
                w.next = Some(j + 1);
                let check = w.checks[j].take();
                Some(self.judged(h, true, check, queue, counters, now))
            }
            None => {
                (w.len, w.next, w.rounds, w.due) = (0, None, 0, false);
                None
            }
        }
    }

    /// `h` with its verdict (see [`Self::judge`]).
    fn judged(
        &mut self,
        h: Held,
        mac1_ok: bool,
        check: Option<Mac2Check>,
        queue: &Sender<HandshakeMessage>,
        counters: &WorkerCounters,
        now: Instant,
    ) -> (Held, GateVerdict) {
        let msg = h.m.data().get(h.start..h.end).unwrap_or_default();
        let verdict = self.judge(
            msg, h.kind, mac1_ok, check, h.src, h.dst, queue, counters, now,
        );
        (h, verdict)
    }

    /// A handshake message `msg` of type `kind` (initiation, response or
    /// cookie reply, of its exact length) from `src` to our address `dst`,
    /// whose mac1 checked or not (`mac1_ok`), and whose cookie and mac2
    /// comparison may have been made already (`check`): queued on `queue`
    /// for the control thread, or to be answered with a cookie reply.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &mut self,
        msg: &[u8],
        kind: MessageType,
        mac1_ok: bool,
        check: Option<Mac2Check>,
        src: SocketAddr,
        dst: IpAddr,
        queue: &Sender<HandshakeMessage>,
        counters: &WorkerCounters,
        now: Instant,
    ) -> GateVerdict {
        let under_load = if kind == MessageType::CookieReply {
            false
        } else {
            if !mac1_ok {
                return GateVerdict::Drop(DropReason::BadMac1);
            }
            let capacity = queue.capacity().unwrap_or(usize::MAX);
            // One read of the queue's length per judgement: its lines are
            // the control thread's, a cache miss each time.
            let backlog = *self.backlog.get_or_insert_with(|| queue.len());
            if self.load.under_load(backlog, capacity, now) {
                counters.add(Event::HandshakeUnderLoad, 1);
                let under = match &check {
                    Some(c) => self.checker.mac2_or_reply_checked(msg, c, &mut self.rng),
                    None => self.checker.mac2_or_reply(msg, src, &mut self.rng),
                };
                match under {
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
            Ok(()) => {
                counters.add(Event::HandshakeToControl, 1);
                self.backlog = self.backlog.map(|b| b + 1);
            }
            Err(_) => counters.count_drop(DropReason::HandshakeQueueFull),
        }
        GateVerdict::Taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing held: never due. Held in unsaturated rounds: due at once.
    /// In saturated rounds: due once a SIMD pass is full, or after
    /// HOLD_ROUNDS rounds, and the count starts over after each judgement.
    #[test]
    fn held_messages_are_judged_when_a_pass_is_full_the_round_is_not_saturated_or_they_waited() {
        let mut p = HoldPolicy::default();
        assert!(!p.due(0, false));
        assert!(!p.due(0, true));
        assert!(p.due(1, false), "a worker with spare time answers at once");
        assert!(p.due(MAC_LANES, true), "a full pass");
        assert!(p.due(HELD, true));
        for round in 1..HOLD_ROUNDS {
            assert!(!p.due(3, true), "round {round}: still waiting");
        }
        assert!(p.due(3, true), "waited HOLD_ROUNDS rounds");
        assert!(!p.due(3, true), "the count started over");
        assert!(!p.due(0, true));
        for _ in 1..HOLD_ROUNDS {
            assert!(!p.due(1, true));
        }
        assert!(p.due(1, true), "held again: counted from its first round");
    }

    /// Nothing waiting: never due. Waiting after an unsaturated round: due
    /// at once; in saturated rounds, after WAIT_ROUNDS rounds; the count
    /// starts over once none wait.
    #[test]
    fn waiting_messages_are_checked_when_a_round_is_not_saturated_or_they_waited() {
        let mut w = Waiting::new();
        assert!(!w.due(false) && !w.due(true), "none waiting");
        w.len = 3;
        assert!(w.due(false), "a worker with spare time answers at once");
        w.rounds = 0;
        for round in 1..WAIT_ROUNDS {
            assert!(!w.due(true), "round {round}: still waiting");
        }
        assert!(w.due(true), "waited WAIT_ROUNDS rounds");
        w.len = 0;
        assert!(!w.due(true));
        assert_eq!((w.rounds, w.due), (0, false), "the count started over");
        w.len = 1;
        assert!(!w.due(true), "counted from its first round");
    }
}
