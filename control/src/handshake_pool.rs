//! Handshake threads: the responder's X25519 work off the control thread
//! (issue #25, a mass reconnect).
//!
//! An X25519 costs tens of microseconds and a responder needs four
//! (whitepaper section 5.4.2 and 5.4.3: `es`, `ss`, the response's
//! ephemeral, `ee` and `se`), so one thread answers a few thousand
//! handshakes a second. The kernel spreads that work over a workqueue per
//! CPU; wgdp hands it to `dpdk.handshake_threads` threads, which run
//! [`StaticIdentity::prepare_initiation`] for initiations and
//! [`StaticIdentity::open_response`] for responses to our own initiations
//! (`ee`, `se`, from a copy of the outstanding initiation's state taken
//! when the response is submitted): they need only our static key and
//! what the message carries. The control thread keeps everything else: the per-source
//! rate limiter and the cookie rule have been applied before a message is
//! submitted (the workers' gates and `Control::on_handshake_message`), and
//! peer state, timers and ordering stay its own.
//!
//! Ordering: every handshake message the control thread accepts takes a
//! sequence number, initiations and the rest alike, and comes back out in
//! that order ([`HandshakePool::next_ready`]); cookie replies, and
//! responses when no initiation is outstanding, wait for the messages
//! queued before them without visiting a thread.
//! So the control thread sees exactly the sequence it would have seen
//! alone, each initiation with its X25519 work done.
//!
//! Between messages the threads compute the configured peers'
//! static-static DHs ahead ([`crate::static_statics`]): the control thread
//! reports each peer added ([`HandshakePool::peer_added`]) and removed
//! ([`HandshakePool::peer_removed`]); a thread takes such a job only when
//! no message waits, and an initiation whose peer's DH is kept costs three
//! X25519 instead of four.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, select, unbounded, Receiver, Sender, TryRecvError};
use dataplane::command::HandshakeMessage;
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::noise::{
    HandshakeError, OpenedResponse, PreparedInitiation, ResponseWork, StaticIdentity,
};
use rand_core::{CryptoRngCore, OsRng};

use crate::static_statics::StaticStatics;

/// Initiations waiting for or inside the threads, per thread: enough to
/// keep every thread busy while the control thread is on its other rounds
/// (a round is well under a millisecond, a thread prepares about 20
/// initiations a millisecond), small enough that a burst waits in the
/// workers' handshake channel, where the gates see the load.
const IN_FLIGHT_PER_THREAD: usize = 256;

/// Threads `dpdk.handshake_threads` defaults to when not set: one per four
/// of `cpus`, the CPUs they may run on (the main lcore's: threads started
/// by the control thread inherit its CPU set), at most 8; none below 4,
/// where the control thread does it itself.
pub fn default_threads(cpus: usize) -> usize {
    (cpus / 4).min(8)
}

/// What a handshake thread is asked to do with a message.
#[derive(Debug)]
pub enum Work {
    /// Consume an initiation's stateless part and prepare the response.
    Initiation,
    /// Open a response to our outstanding initiation, whose state this is.
    Response(ResponseWork),
}

/// The X25519 work a handshake thread did for a message.
pub enum Prepared {
    /// An initiation's, for the responder.
    Initiation(Result<PreparedInitiation, HandshakeError>),
    /// A response's, for the initiator.
    Response(Result<OpenedResponse, HandshakeError>),
}

/// A handshake message back from the pool, in the order it was submitted.
pub struct Ready {
    /// The message as the worker passed it.
    pub msg: HandshakeMessage,
    /// What a handshake thread did for it; `None` for a message submitted
    /// without work.
    pub prepared: Option<Prepared>,
}

/// A message's work coming back from a thread.
struct Done {
    seq: u64,
    msg: HandshakeMessage,
    prepared: Prepared,
}

/// The handshake threads and the reorder queue in front of the control
/// thread.
pub struct HandshakePool {
    jobs: Option<Sender<(u64, HandshakeMessage, Work)>>,
    /// Peers whose static-static DH is to be computed ahead.
    ahead: Option<Sender<PublicKey>>,
    /// The configured peers' static-static DHs.
    static_statics: Arc<StaticStatics>,
    done: Receiver<Done>,
    threads: Vec<JoinHandle<()>>,
    /// Sequence number of `slots[0]`.
    next_out: u64,
    /// Submitted messages from `next_out` on: `Some` once ready.
    slots: VecDeque<Option<Ready>>,
    /// Messages in the threads.
    in_flight: usize,
    capacity: usize,
}

impl std::fmt::Debug for HandshakePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakePool")
            .field("threads", &self.threads.len())
            .field("queued", &self.slots.len())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl HandshakePool {
    /// Starts `threads` (at least one) handshake threads for our static key
    /// `private_key`; each holds the shared identity only.
    pub fn start(private_key: &[u8; 32], threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let identity = Arc::new(StaticIdentity::new(PrivateKey::from_bytes(*private_key)));
        let capacity = IN_FLIGHT_PER_THREAD * threads;
        let (jobs, job_rx) = bounded::<(u64, HandshakeMessage, Work)>(capacity);
        let (ahead, ahead_rx) = unbounded();
        let static_statics = Arc::new(StaticStatics::default());
        let (done_tx, done) = unbounded();
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let thread = Thread {
                identity: identity.clone(),
                static_statics: static_statics.clone(),
                jobs: job_rx.clone(),
                ahead: ahead_rx.clone(),
                done: done_tx.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("wgdp-hs{n}"))
                .spawn(move || thread.run())?;
            handles.push(handle);
        }
        Ok(Self {
            jobs: Some(jobs),
            ahead: Some(ahead),
            static_statics,
            done,
            threads: handles,
            next_out: 0,
            slots: VecDeque::with_capacity(capacity),
            in_flight: 0,
            capacity,
        })
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// A peer was configured: a thread computes its static-static DH when
    /// no message waits (or at its first initiation, if that comes first).
    pub fn peer_added(&self, peer: PublicKey) {
        if self.static_statics.want(peer) {
            if let Some(ahead) = &self.ahead {
                // Only fails after every thread ended, which drop alone does.
                let _ = ahead.send(peer);
            }
        }
    }

    /// A peer was removed: its static-static DH is wiped, and a thread no
    /// longer keeps one for its key.
    pub fn peer_removed(&self, peer: &PublicKey) {
        self.static_statics.forget(peer);
    }

    /// The configured peers' static-static DHs, to see how many are
    /// computed.
    pub fn static_statics(&self) -> Arc<StaticStatics> {
        self.static_statics.clone()
    }

    /// Whether the pool takes no more messages now: the caller leaves them
    /// in the workers' channel until [`HandshakePool::next_ready`] has
    /// handed some back.
    pub fn is_full(&self) -> bool {
        self.slots.len() >= self.capacity
    }

    /// Queues a message behind every one before it; one with `work` goes
    /// to a thread. A full pool ([`HandshakePool::is_full`]) still takes
    /// it (the bound is the caller's), blocking only if the threads' queue
    /// is.
    pub fn submit(&mut self, msg: HandshakeMessage, work: Option<Work>) {
        let seq = self.next_out + self.slots.len() as u64;
        let Some(work) = work else {
            self.slots.push_back(Some(Ready {
                msg,
                prepared: None,
            }));
            return;
        };
        self.slots.push_back(None);
        self.in_flight += 1;
        if let Some(jobs) = &self.jobs {
            if jobs.send((seq, msg, work)).is_err() {
                // Only after every thread ended, which drop alone does.
                self.in_flight -= 1;
                self.slots.pop_back();
            }
        }
    }

    /// The oldest submitted message, once it and every one before it are
    /// ready.
    pub fn next_ready(&mut self) -> Option<Ready> {
        while let Ok(done) = self.done.try_recv() {
            self.in_flight -= 1;
            let at = (done.seq - self.next_out) as usize;
            if let Some(slot) = self.slots.get_mut(at) {
                *slot = Some(Ready {
                    msg: done.msg,
                    prepared: Some(done.prepared),
                });
            }
        }
        if self.slots.front().is_some_and(Option::is_some) {
            self.next_out += 1;
            return self.slots.pop_front().flatten();
        }
        None
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl Drop for HandshakePool {
    fn drop(&mut self) {
        // Closing the queues ends every thread after its current job.
        self.jobs = None;
        self.ahead = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One handshake thread's share of the pool.
struct Thread {
    identity: Arc<StaticIdentity>,
    static_statics: Arc<StaticStatics>,
    jobs: Receiver<(u64, HandshakeMessage, Work)>,
    ahead: Receiver<PublicKey>,
    done: Sender<Done>,
}

impl Thread {
    /// Does the X25519 work of each message, and between messages the
    /// static-static DHs of the peers queued ahead, until the queues close.
    fn run(self) {
        let mut rng = OsRng;
        loop {
            // A waiting message first; a peer's DH ahead only when none
            // waits.
            let (seq, msg, work) = match self.jobs.try_recv() {
                Ok(job) => job,
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {
                    if let Ok(peer) = self.ahead.try_recv() {
                        self.compute_ahead(&peer);
                        continue;
                    }
                    select! {
                        recv(self.jobs) -> job => match job {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                        recv(self.ahead) -> peer => match peer {
                            Ok(peer) => {
                                self.compute_ahead(&peer);
                                continue;
                            }
                            Err(_) => return,
                        },
                    }
                }
            };
            let prepared = match work {
                Work::Initiation => Prepared::Initiation(self.prepare(msg.bytes(), &mut rng)),
                Work::Response(w) => {
                    Prepared::Response(self.identity.open_response(w, msg.bytes()))
                }
            };
            if self.done.send(Done { seq, msg, prepared }).is_err() {
                return;
            }
        }
    }

    /// A configured peer's static-static DH, unless it was removed or
    /// computed at its first initiation since it was queued.
    fn compute_ahead(&self, peer: &PublicKey) {
        if self.static_statics.missing(peer) {
            if let Ok(ss) = self.identity.static_static(peer) {
                self.static_statics.fill(peer, &ss);
            }
        }
    }

    /// An initiation's X25519 work (section 5.4.2 and 5.4.3): `es` opens
    /// it, `ss` is the peer's kept one when computed (else computed now
    /// and kept, for a configured peer), then the response's `e`, `ee`
    /// and `se`.
    fn prepare(
        &self,
        msg: &[u8],
        rng: &mut dyn CryptoRngCore,
    ) -> Result<PreparedInitiation, HandshakeError> {
        let pending = self.identity.open_initiation(msg)?;
        let peer = *pending.remote_static();
        let ss = match self.static_statics.get(&peer) {
            Some(ss) => ss,
            None => {
                let ss = self.identity.static_static(&peer)?;
                self.static_statics.fill(&peer, &ss);
                ss
            }
        };
        pending.prepare(ss, rng)
    }
}

#[cfg(test)]
#[path = "mass_reconnect_tests.rs"]
mod mass_reconnect_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::noise::PeerHandshake;
    use protocol::time::{Instant, Tai64N};
    use std::time::Duration;

    const OURS: [u8; 32] = [9; 32];

    /// An initiation from peer `seed` to us, and its handshake state.
    fn initiation(seed: u8, index: u32) -> (HandshakeMessage, PeerHandshake, StaticIdentity) {
        let ours = PrivateKey::from_bytes(OURS).public_key();
        let them = StaticIdentity::new(PrivateKey::from_bytes([seed; 32]));
        let mut hs = PeerHandshake::new(ours, None);
        let ts = Tai64N::from_unix(Duration::from_secs(1_700_000_000));
        let bytes = hs
            .create_initiation(&them, index, ts, Instant::ZERO, &mut OsRng)
            .expect("initiation");
        let msg = HandshakeMessage::new(
            "192.0.2.9:51820".parse().expect("src"),
            "192.0.2.1".parse().expect("local"),
            Instant::ZERO,
            &bytes,
            false,
        )
        .expect("message");
        (msg, hs, them)
    }

    fn drain(pool: &mut HandshakePool, n: usize) -> Vec<Ready> {
        let mut out = Vec::new();
        let start = std::time::Instant::now();
        while out.len() < n {
            assert!(start.elapsed() < Duration::from_secs(30), "pool stalled");
            match pool.next_ready() {
                Some(r) => out.push(r),
                None => std::thread::yield_now(),
            }
        }
        out
    }

    #[test]
    fn messages_come_back_in_submission_order_prepared() {
        let mut pool = HandshakePool::start(&OURS, 3).expect("pool");
        assert_eq!(pool.threads(), 3);
        let mut sent = Vec::new();
        for n in 0..40u8 {
            let (msg, hs, them) = initiation(n + 1, u32::from(n));
            // Every fifth is not an initiation (a copy with the type
            // changed to a cookie reply's): it must keep its place.
            let initiation = n % 5 != 0;
            let mut msg = msg;
            if !initiation {
                let mut bytes = msg.bytes().to_vec();
                bytes[0] = 3;
                msg = HandshakeMessage::new(msg.src, msg.local, msg.received, &bytes, false)
                    .expect("message");
            }
            pool.submit(msg, initiation.then_some(Work::Initiation));
            sent.push((initiation, hs, them));
        }
        let ready = drain(&mut pool, 40);
        assert!(pool.is_empty() && pool.next_ready().is_none());
        for ((initiation, mut hs, them), r) in sent.into_iter().zip(ready) {
            let index = hs.pending_initiation_index().expect("pending");
            assert_eq!(
                u32::from_le_bytes(r.msg.bytes()[4..8].try_into().expect("4")),
                index
            );
            if !initiation {
                assert!(r.prepared.is_none(), "message {index} went to a thread");
                continue;
            }
            // The prepared initiation completes a real handshake: the
            // initiator accepts the response built from it.
            let Some(Prepared::Initiation(prepared)) = r.prepared else {
                panic!("message {index}: no initiation's work");
            };
            let prepared = prepared.expect("valid initiation");
            assert_eq!(prepared.remote_static(), them.public_key());
            let mut responder = PeerHandshake::new(*them.public_key(), None);
            responder
                .consume_prepared(prepared, Instant::ZERO)
                .expect("consumed");
            let (response, _) = responder
                .create_response(0x100 + index, Instant::ZERO, &mut OsRng)
                .expect("response");
            hs.consume_response(&them, &response, Instant::ZERO)
                .expect("initiator accepts the response");
        }
    }

    #[test]
    fn a_forged_initiation_comes_back_refused_in_its_place() {
        let mut pool = HandshakePool::start(&OURS, 2).expect("pool");
        let (good, _, _) = initiation(1, 1);
        let mut forged = good.bytes().to_vec();
        forged[20] ^= 1; // inside the encrypted static key
        let forged = HandshakeMessage::new(good.src, good.local, good.received, &forged, false)
            .expect("message");
        pool.submit(forged, Some(Work::Initiation));
        pool.submit(good, Some(Work::Initiation));
        let ready = drain(&mut pool, 2);
        assert!(matches!(
            ready[0].prepared,
            Some(Prepared::Initiation(Err(HandshakeError::Decryption)))
        ));
        assert!(matches!(
            ready[1].prepared,
            Some(Prepared::Initiation(Ok(_)))
        ));
    }

    #[test]
    fn a_response_to_our_initiation_is_opened_by_a_thread() {
        let ours = StaticIdentity::new(PrivateKey::from_bytes(OURS));
        let them = StaticIdentity::new(PrivateKey::from_bytes([5; 32]));
        let mut hs = PeerHandshake::new(*them.public_key(), None);
        let mut theirs = PeerHandshake::new(*ours.public_key(), None);
        let ts = Tai64N::from_unix(Duration::from_secs(1_700_000_000));
        let init = hs
            .create_initiation(&ours, 0x31, ts, Instant::ZERO, &mut OsRng)
            .expect("initiation");
        let pending = them.open_initiation(&init).expect("open");
        theirs
            .consume_initiation(pending, Instant::ZERO)
            .expect("consumed");
        let (response, mut their_keys) = theirs
            .create_response(0x32, Instant::ZERO, &mut OsRng)
            .expect("response");
        let msg = HandshakeMessage::new(
            "192.0.2.9:51820".parse().expect("src"),
            "192.0.2.1".parse().expect("local"),
            Instant::ZERO,
            &response,
            false,
        )
        .expect("message");
        let mut pool = HandshakePool::start(&OURS, 1).expect("pool");
        let work = hs.response_work().expect("outstanding initiation");
        pool.submit(msg, Some(Work::Response(work)));
        let ready = drain(&mut pool, 1).pop().expect("ready");
        let Some(Prepared::Response(Ok(opened))) = ready.prepared else {
            panic!("the response was not opened");
        };
        let mut keys = hs
            .consume_opened_response(opened, ready.msg.bytes(), Instant::ZERO)
            .expect("keypair");
        // Our keys talk to theirs.
        let mut data = [0u8; 48];
        keys.seal_message(Instant::ZERO, &mut data).expect("seal");
        their_keys
            .open_message(Instant::ZERO, &mut data)
            .expect("they open what we sealed");
    }

    /// Waits until the pool has computed `n` peers' DHs ahead.
    fn computed(pool: &HandshakePool, n: usize) {
        let start = std::time::Instant::now();
        while pool.static_statics().computed() != n {
            assert!(start.elapsed() < Duration::from_secs(30), "not computed");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// A configured peer's static-static DH is computed ahead by an idle
    /// thread and is the one its initiation is prepared with (a wrong one
    /// kept in its place fails the timestamp); removing the peer wipes it,
    /// and the peer's next initiation is prepared with a DH computed
    /// afresh, which is not kept for a key no longer configured.
    #[test]
    fn a_peers_static_static_is_computed_ahead_used_and_wiped_on_removal() {
        let mut pool = HandshakePool::start(&OURS, 2).expect("pool");
        let ours = StaticIdentity::new(PrivateKey::from_bytes(OURS));
        let (peer, other) = (PrivateKey::from_bytes([1; 32]), [2u8; 32]);
        let (peer, other) = (
            peer.public_key(),
            PrivateKey::from_bytes(other).public_key(),
        );
        pool.peer_added(peer);
        pool.peer_added(peer);
        computed(&pool, 1);
        let kept = pool.static_statics().get(&peer).expect("kept");
        assert_eq!(*kept, *ours.static_static(&peer).expect("ss"));
        // The kept DH is used: replaced by another peer's (a stand-in for a
        // stale one), the initiation does not decrypt.
        let s = pool.static_statics();
        s.forget(&peer);
        assert!(s.want(peer));
        s.fill(&peer, &ours.static_static(&other).expect("ss"));
        let (msg, _, _) = initiation(1, 1);
        pool.submit(msg, Some(Work::Initiation));
        let r = drain(&mut pool, 1).pop().expect("ready");
        assert!(matches!(
            r.prepared,
            Some(Prepared::Initiation(Err(HandshakeError::Decryption)))
        ));
        // Removed: wiped, and an initiation with the key is prepared with
        // the right DH, computed afresh and not kept.
        pool.peer_removed(&peer);
        assert_eq!((s.get(&peer), s.computed()), (None, 0));
        let (msg, _, _) = initiation(1, 2);
        pool.submit(msg, Some(Work::Initiation));
        let r = drain(&mut pool, 1).pop().expect("ready");
        assert!(matches!(r.prepared, Some(Prepared::Initiation(Ok(_)))));
        assert_eq!((s.get(&peer), s.computed()), (None, 0));
        // Added again: computed ahead again.
        pool.peer_added(peer);
        computed(&pool, 1);
        assert_eq!(s.get(&peer).as_deref(), Some(&*kept));
    }

    /// An initiation that arrives before its peer's DH was computed ahead
    /// is prepared at once, and the DH it computed is kept.
    #[test]
    fn an_initiation_first_computes_and_keeps_its_peers_static_static() {
        let ours = StaticIdentity::new(PrivateKey::from_bytes(OURS));
        let peer = PrivateKey::from_bytes([3; 32]).public_key();
        let mut pool = HandshakePool::start(&OURS, 1).expect("pool");
        // Wanted, but its computation ahead not queued: only the
        // initiation can compute it.
        assert!(pool.static_statics().want(peer));
        let (msg, _, _) = initiation(3, 1);
        pool.submit(msg, Some(Work::Initiation));
        let r = drain(&mut pool, 1).pop().expect("ready");
        assert!(matches!(r.prepared, Some(Prepared::Initiation(Ok(_)))));
        assert_eq!(
            pool.static_statics().get(&peer).as_deref(),
            Some(&*ours.static_static(&peer).expect("ss"))
        );
    }

    #[test]
    fn the_pool_is_full_at_its_capacity() {
        let mut pool = HandshakePool::start(&OURS, 1).expect("pool");
        let (msg, _, _) = initiation(1, 1);
        for _ in 0..IN_FLIGHT_PER_THREAD - 1 {
            pool.submit(msg.clone(), None);
        }
        assert!(!pool.is_full());
        pool.submit(msg.clone(), None);
        assert!(pool.is_full());
        assert!(pool.next_ready().is_some());
        assert!(!pool.is_full());
    }

    #[test]
    fn default_threads_leave_small_machines_to_the_control_thread() {
        assert_eq!(
            [1, 2, 3, 4, 8, 16, 32, 64, 128].map(default_threads),
            [0, 0, 0, 1, 2, 4, 8, 8, 8]
        );
    }
}
