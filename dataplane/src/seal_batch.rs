//! A burst's sealed messages held until their packets are encrypted
//! together in multi-buffer passes (`mbaead`), then sent in the order they
//! were sealed.
//!
//! The send path reserves each message's counter as usual (whitepaper
//! section 5.4.6: the nonce is taken first) and writes its WireGuard
//! header; only the encryption and what depends on the ciphertext (the
//! outer headers' UDP checksum) wait. Packets the [`BatchPolicy`] leaves
//! out (too long, or sealed by a backend that keeps its own key, a crypto
//! device) are sealed at once, and still wait here behind the earlier ones
//! while the batch holds any, so that a flow's packets leave in order.
//!
//! The key of each waiting packet is copied into the batch and wiped after
//! the pass ([`crate::batch_queue`]).

use dpdk_sys::rte::Mbuf;
use mbaead::Seal;
use protocol::constants::AEAD_TAG_LEN;
use protocol::crypto::{nonce, TransportKey};
use smallvec::SmallVec;

use crate::batch_policy::BatchPolicy;
use crate::batch_queue::{BatchQueue, CAPACITY};
use crate::counters::DropReason;
use crate::outer::OuterCache;

/// A sealed message waiting to be sent, and where its encryption stands.
pub(crate) struct Waiting {
    /// The message: outer headers' room, WireGuard header, payload, tag.
    pub(crate) m: Mbuf,
    /// The outer headers it is sent with.
    pub(crate) outer: OuterCache,
    /// The inner packet's ECN bits (copied to the outer header).
    pub(crate) ecn: u8,
    /// Inner bytes, for the counters (0: a keepalive).
    pub(crate) plain: u64,
    /// Where its encryption stands.
    pub(crate) seal: Sealing,
}

/// Where a waiting message's encryption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sealing {
    /// Sealed (at once, or by the pass): ready to send.
    Done,
    /// Waits for the pass: its nonce counter, and its payload's offset
    /// and padded length in the mbuf (the tag follows it).
    Pass {
        counter: u64,
        off: usize,
        len: usize,
    },
    /// The pass could not take it: it must be dropped, never sent.
    Failed,
}

/// The batch of one worker (see the module).
pub(crate) struct SealBatch {
    /// The policy, if this worker batches at all.
    policy: Option<BatchPolicy>,
    /// Whether the current burst's packets join passes.
    on: bool,
    /// Waiting messages in the order they were sealed.
    queue: BatchQueue<Waiting>,
    /// The counter whose key the queue holds for the message
    /// [`SealBatch::hold`] takes next.
    reserved: Option<u64>,
}

impl SealBatch {
    /// An empty batch for `policy` (`None`: every packet is sealed at once
    /// and sent straight away).
    pub(crate) fn new(policy: Option<BatchPolicy>) -> Self {
        SealBatch {
            policy,
            on: false,
            queue: BatchQueue::new(),
            reserved: None,
        }
    }

    /// Starts a burst of `n` packets: whether they join passes.
    #[inline]
    pub(crate) fn begin(&mut self, n: usize) {
        self.on = self.policy.is_some_and(|p| p.batches(n));
    }

    /// Seals `payload` under `counter` with `key` now, or, where the policy
    /// takes it, copies the key for the pass and leaves it: then the next
    /// [`hold`](Self::hold) must take the message.
    #[inline]
    pub(crate) fn seal(
        &mut self,
        key: &TransportKey,
        counter: u64,
        payload: &mut [u8],
        tag: &mut [u8; AEAD_TAG_LEN],
    ) -> Result<(), DropReason> {
        self.reserved = None;
        if self.on && payload.len() <= self.policy.map_or(0, |p| p.max_len) {
            if let Some(bytes) = key.batch_key() {
                self.queue.set_next_key(bytes);
                self.reserved = Some(counter);
                return Ok(());
            }
        }
        // One-packet backends fail only on a crypto device.
        *tag = key
            .seal(counter, payload)
            .map_err(|_| DropReason::CryptoDevice)?;
        Ok(())
    }

    /// Whether a message sealed now must wait here (one waits for the pass,
    /// or earlier ones still wait).
    #[inline]
    pub(crate) fn must_hold(&self) -> bool {
        self.reserved.is_some() || !self.queue.is_empty()
    }

    /// Takes a message to send after the pass; its payload (`len` padded
    /// bytes at `off`, the tag after it) is encrypted then if
    /// [`seal`](Self::seal) left it. Returns whether the batch is full.
    pub(crate) fn hold(
        &mut self,
        m: Mbuf,
        outer: OuterCache,
        ecn: u8,
        plain: u64,
        off: usize,
        len: usize,
    ) -> bool {
        let seal = match self.reserved.take() {
            Some(counter) => Sealing::Pass { counter, off, len },
            None => Sealing::Done,
        };
        self.queue.push(Waiting {
            m,
            outer,
            ecn,
            plain,
            seal,
        })
    }

    /// Runs the passes over every waiting message that waits for one: each
    /// payload encrypted in place and its tag written after it, then
    /// marked [`Sealing::Done`]; one the pass cannot take (its room does
    /// not hold it, or the engine refuses the pass, which it does only for
    /// lengths this batch never takes) is marked [`Sealing::Failed`].
    /// Returns how many were sealed and in how many passes.
    pub(crate) fn seal_waiting(&mut self) -> (u64, u64) {
        self.reserved = None;
        let Some(policy) = self.policy else {
            return (0, 0);
        };
        let mut jobs: SmallVec<[Seal<'_>; CAPACITY]> = SmallVec::new();
        let mut tags: SmallVec<[(&mut [u8], &mut Sealing); CAPACITY]> = SmallVec::new();
        for (w, key) in self.queue.with_keys() {
            let Sealing::Pass { counter, off, len } = w.seal else {
                continue;
            };
            let room =
                w.m.data_mut()
                    .get_mut(off..)
                    .filter(|rest| rest.len() >= len + AEAD_TAG_LEN)
                    .map(|rest| rest.split_at_mut(len));
            let Some((payload, tail)) = room else {
                w.seal = Sealing::Failed;
                continue;
            };
            jobs.push(Seal::new(key, nonce(counter), &[], payload));
            tags.push((&mut tail[..AEAD_TAG_LEN], &mut w.seal));
        }
        let sealed = jobs.len();
        let ok = sealed > 0 && policy.engine.seal(&mut jobs).is_ok();
        for (job, (tag, state)) in jobs.iter().zip(tags.iter_mut()) {
            if ok {
                tag.copy_from_slice(&job.tag);
                **state = Sealing::Done;
            } else {
                **state = Sealing::Failed;
            }
        }
        if !ok {
            return (0, 0);
        }
        (sealed as u64, sealed.div_ceil(policy.engine.lanes()) as u64)
    }

    /// The next waiting message in the order they were sealed; `None` once
    /// all are out: the batch is then empty, its keys wiped, and it seals
    /// at once until the next [`begin`](Self::begin). Call after
    /// [`seal_waiting`](Self::seal_waiting).
    pub(crate) fn next_waiting(&mut self) -> Option<Waiting> {
        let next = self.queue.pop();
        if next.is_none() {
            self.on = false;
        }
        next
    }
}
