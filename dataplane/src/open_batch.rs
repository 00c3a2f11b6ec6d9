//! A tunnel burst's data messages held until they are decrypted together
//! in multi-buffer passes (`mbaead`), then handled on in arrival order.
//!
//! The receive path checks each message as usual first (its keypair, the
//! replay window: kernel `receive.c`, before decryption) and only the
//! decryption waits; what follows authentication (the replay window's
//! update, the session rules, delivery) runs when the message comes out of
//! the batch. Messages the [`BatchPolicy`] leaves out (too long, or a key
//! on a crypto device) are opened at once and still wait behind the
//! earlier ones while the batch holds any, so that a flow's packets go on
//! in order. A message whose tag fails is marked so, and fails alone.
//!
//! `T` is what the receive path needs to handle a message on (where it
//! lies, its peer and key).

use dpdk_sys::rte::Mbuf;
use mbaead::Open;
use protocol::constants::AEAD_TAG_LEN;
use protocol::crypto::nonce;
use smallvec::SmallVec;

use crate::batch_policy::BatchPolicy;
use crate::batch_queue::{BatchQueue, CAPACITY};

/// A data message waiting in the batch.
pub(crate) struct Arriving<T> {
    /// The frame.
    pub(crate) m: Mbuf,
    /// The receive path's context.
    pub(crate) ctx: T,
    /// Where its decryption stands.
    pub(crate) open: Opening,
}

/// Where a waiting message's decryption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Decrypted and authenticated (at once, or by the pass).
    Done,
    /// Waits for the pass: its nonce counter, its payload's offset and
    /// length in the mbuf, and the tag it carries.
    Pass {
        counter: u64,
        off: usize,
        len: usize,
        tag: [u8; AEAD_TAG_LEN],
    },
    /// Its tag did not authenticate it (or the pass could not take it):
    /// dropped as an authentication failure, its ciphertext untouched.
    Failed,
}

/// The batch of one worker (see the module).
pub(crate) struct OpenBatch<T> {
    /// The policy, if this worker batches at all.
    policy: Option<BatchPolicy>,
    /// Whether the current burst's messages join passes.
    on: bool,
    queue: BatchQueue<Arriving<T>>,
}

impl<T> OpenBatch<T> {
    /// An empty batch for `policy` (`None`: every message is opened at once
    /// and handled on straight away).
    pub(crate) fn new(policy: Option<BatchPolicy>) -> Self {
        OpenBatch {
            policy,
            on: false,
            queue: BatchQueue::new(),
        }
    }

    /// Starts a burst of `n` frames: whether its data messages join passes.
    #[inline]
    pub(crate) fn begin(&mut self, n: usize) {
        self.on = self.policy.is_some_and(|p| p.batches(n));
    }

    /// Whether a payload of `len` bytes joins the pass.
    #[inline]
    pub(crate) fn takes(&self, len: usize) -> bool {
        self.on && len <= self.policy.map_or(0, |p| p.max_len)
    }

    /// Whether a message opened at once must wait behind earlier ones.
    #[inline]
    pub(crate) fn must_hold(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Holds a message for the pass, with a copy of `key`; `open` says
    /// where its payload and tag are ([`Opening::Pass`]) or that it was
    /// opened at once ([`Opening::Done`]). Returns whether the batch is
    /// full.
    pub(crate) fn hold(&mut self, m: Mbuf, ctx: T, key: Option<&[u8; 32]>, open: Opening) -> bool {
        if let Some(key) = key {
            self.queue.set_next_key(key);
        }
        self.queue.push(Arriving { m, ctx, open })
    }

    /// Runs the passes over every message waiting for one: each tag checked
    /// in constant time, and the payloads whose tag held decrypted in
    /// place ([`Opening::Done`]); the others [`Opening::Failed`]. Returns
    /// how many went through passes and how many passes it took.
    pub(crate) fn open_waiting(&mut self) -> (u64, u64) {
        let Some(policy) = self.policy else {
            return (0, 0);
        };
        let mut jobs: SmallVec<[Open<'_>; CAPACITY]> = SmallVec::new();
        let mut states: SmallVec<[&mut Opening; CAPACITY]> = SmallVec::new();
        for (a, key) in self.queue.with_keys() {
            let Opening::Pass {
                counter,
                off,
                len,
                tag,
            } = a.open
            else {
                continue;
            };
            let Some(payload) = a.m.data_mut().get_mut(off..off + len) else {
                a.open = Opening::Failed;
                continue;
            };
            jobs.push(Open::new(key, nonce(counter), &[], payload, tag));
            states.push(&mut a.open);
        }
        let n = jobs.len();
        let ran = n > 0 && policy.engine.open(&mut jobs).is_ok();
        for (job, state) in jobs.iter().zip(states.iter_mut()) {
            **state = if ran && job.ok {
                Opening::Done
            } else {
                Opening::Failed
            };
        }
        if !ran {
            return (0, 0);
        }
        (n as u64, n.div_ceil(policy.engine.lanes()) as u64)
    }

    /// The next message in arrival order; `None` once all are out: the
    /// batch is then empty, its keys wiped, and it opens at once until the
    /// next [`begin`](Self::begin). Call after
    /// [`open_waiting`](Self::open_waiting).
    pub(crate) fn next(&mut self) -> Option<Arriving<T>> {
        let next = self.queue.pop();
        if next.is_none() {
            self.on = false;
        }
        next
    }
}
