//! The shared half of a multi-lane keypair: what every worker of a
//! multi-lane peer uses to seal and open with one keypair at once.
//!
//! Everything here is read through `&self`: the keys are read-only after
//! derivation, the send counter is reserved in blocks
//! ([`SendCounter`]), and the replay window takes concurrent writers
//! ([`SharedReplayWindow`]). Workers hold it through an `Arc`; the keys are
//! wiped when the last holder drops it.

use super::keypair::{receivable, rekey_due, OpenError, SealError};
use crate::constants::{COUNTER_BITS_TOTAL, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME};
use crate::crypto::TransportKey;
use crate::replay::{ReplayError, ReplayWindow};
use crate::send_block::{SendBlock, SendCounter};
use crate::shared_replay::SharedReplayWindow;
use crate::time::Instant;

/// What a keypair is made of, moved into a [`LaneKeypair`].
pub(super) struct KeyHalves {
    pub sending: TransportKey,
    pub receiving: TransportKey,
    pub local_index: u32,
    pub remote_index: u32,
    pub birth: Instant,
    pub initiator: bool,
}

/// A transport keypair shared by the workers of a multi-lane peer (built
/// by [`Keypair::into_lanes`](super::Keypair::into_lanes)).
pub struct LaneKeypair {
    sending: TransportKey,
    receiving: TransportKey,
    counter: SendCounter,
    replay: SharedReplayWindow,
    local_index: u32,
    remote_index: u32,
    birth: Instant,
    initiator: bool,
}

impl core::fmt::Debug for LaneKeypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LaneKeypair")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("birth", &self.birth)
            .field("initiator", &self.initiator)
            .field("reserved", &self.counter.reserved())
            .finish_non_exhaustive()
    }
}

impl LaneKeypair {
    /// Shares `halves`; counters below `sent` count as used, and what
    /// `received` recorded stays recorded.
    pub(super) fn new(halves: KeyHalves, sent: u64, received: &ReplayWindow) -> Self {
        let KeyHalves {
            sending,
            receiving,
            local_index,
            remote_index,
            birth,
            initiator,
        } = halves;
        let counter = SendCounter::new();
        counter.skip_to(sent);
        let replay = SharedReplayWindow::new();
        let top = received.next_expected();
        for c in top.saturating_sub(COUNTER_BITS_TOTAL)..top {
            if received.check(c) == Err(ReplayError::Replayed) {
                // Inside the fresh window: cannot fail.
                let _ = replay.update(c);
            }
        }
        replay.raise(top);
        LaneKeypair {
            sending,
            receiving,
            counter,
            replay,
            local_index,
            remote_index,
            birth,
            initiator,
        }
    }

    /// Our index (receiver index of the messages we get).
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// The peer's index (receiver index of the messages we send).
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }

    /// When the handshake that produced it completed.
    pub fn birth(&self) -> Instant {
        self.birth
    }

    /// Whether we initiated that handshake.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// The key that seals what the holders send.
    #[inline]
    pub fn sending_key(&self) -> &TransportKey {
        &self.sending
    }

    /// Counters reserved by all holders so far.
    pub fn reserved(&self) -> u64 {
        self.counter.reserved()
    }

    /// Whether another block of send counters can be reserved.
    pub fn can_reserve(&self) -> bool {
        self.counter.reserved() < REJECT_AFTER_MESSAGES
    }

    /// One more than the highest counter received.
    pub fn receiving_counter(&self) -> u64 {
        self.replay.next_expected()
    }

    #[cfg(any(test, feature = "test-hooks"))]
    pub(super) fn skip_to(&self, counter: u64) {
        self.counter.skip_to(counter);
    }

    /// Whether a holder with `block` may send at `now`.
    pub fn can_send(&self, block: &SendBlock, now: Instant) -> bool {
        !self.birth.has_expired(REJECT_AFTER_TIME, now) && (block.left() > 0 || self.can_reserve())
    }

    /// Whether a holder with `block` should ask for a handshake after
    /// sending at `now` (the counter of its block, or the time).
    pub fn needs_rekey_on_send(&self, block: &SendBlock, now: Instant) -> bool {
        let counter = block.peek().unwrap_or_else(|| self.reserved());
        rekey_due(counter, self.initiator, self.birth, now)
    }

    /// Takes the next counter of `block` (reserving a new block when it is
    /// used up) with the key that seals the message carrying it (the
    /// caller seals, at once or in a multi-buffer pass; see
    /// [`Keypair::reserve`](super::Keypair::reserve)).
    #[inline]
    pub fn reserve(
        &self,
        block: &mut SendBlock,
        now: Instant,
    ) -> Result<(u64, &TransportKey), SealError> {
        if self.birth.has_expired(REJECT_AFTER_TIME, now) {
            return Err(SealError::Expired);
        }
        let counter = self
            .counter
            .take(block)
            .ok_or(SealError::CounterExhausted)?;
        Ok((counter, &self.sending))
    }

    /// Whether message `counter` may be received at `now` (validity, the
    /// shared replay window), and the key that opens it; nothing changes
    /// until [`open_commit`](Self::open_commit) (see
    /// [`Keypair::open_check`](super::Keypair::open_check)).
    #[inline]
    pub fn open_check(&self, now: Instant, counter: u64) -> Result<&TransportKey, OpenError> {
        if !receivable(self.birth, self.replay.next_expected(), now) {
            return Err(OpenError::Expired);
        }
        self.replay.check(counter)?;
        Ok(&self.receiving)
    }

    /// Message `counter` authenticated: the shared window takes it, so of
    /// two holders given the same message only one accepts it.
    #[inline]
    pub fn open_commit(&self, counter: u64) -> Result<(), OpenError> {
        Ok(self.replay.update(counter)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keypair::split_message;
    use super::super::Keypair;
    use super::*;
    use crate::messages::{Data, DATA_MIN_LEN};

    fn pair() -> (Keypair, Keypair) {
        let now = Instant::ZERO;
        let a = Keypair::from_raw_keys([1; 32], [2; 32], 10, 20, now, true);
        let b = Keypair::from_raw_keys([2; 32], [1; 32], 20, 10, now, false);
        (a, b)
    }

    /// Opens a whole data message as a lane worker does: checked, opened
    /// with the key the check returns, committed.
    fn open_lane<'a>(
        keys: &LaneKeypair,
        now: Instant,
        msg: &'a mut [u8],
    ) -> Result<&'a mut [u8], OpenError> {
        let (counter, payload, tag) = split_message(msg, keys.local_index())?;
        keys.open_check(now, counter)?.open(counter, payload, tag)?;
        keys.open_commit(counter)?;
        Ok(payload)
    }

    /// Two holders of one shared keypair (two workers) send with disjoint
    /// counters; the receiver's two holders accept each message once, and
    /// a message replayed to the other holder is refused.
    #[test]
    fn two_holders_send_and_receive_without_reuse() {
        let (a, b) = pair();
        let (a, b) = (a.into_lanes(), b.into_lanes());
        let keys_a = a.lanes().expect("shared").clone();
        let keys_b = b.lanes().expect("shared").clone();
        let now = Instant::from_secs(1);
        let (mut lane0, mut lane1) = (SendBlock::default(), SendBlock::default());
        let mut sealed = Vec::new();
        for i in 0..600u32 {
            let block = if i % 3 == 0 { &mut lane1 } else { &mut lane0 };
            let mut msg = [0u8; DATA_MIN_LEN + 16];
            msg[16..32].copy_from_slice(&[i as u8; 16]);
            let (payload, tag) = msg[16..].split_at_mut(16);
            let tag = <&mut [u8; 16]>::try_from(tag).expect("tag");
            let (counter, key) = keys_a.reserve(block, now).expect("reserve");
            *tag = key.seal(counter, payload).expect("seal");
            Data::new_unchecked(&mut msg[..]).set_header(20, counter);
            sealed.push((counter, msg));
        }
        let mut counters: Vec<u64> = sealed.iter().map(|(c, _)| *c).collect();
        counters.sort_unstable();
        counters.dedup();
        assert_eq!(counters.len(), 600, "no counter used twice");
        for (i, (_, msg)) in sealed.iter().enumerate() {
            let mut m = *msg;
            let plain = open_lane(&keys_b, now, &mut m).expect("fresh");
            assert_eq!(plain, &[i as u8; 16]);
            // The same message through the other holder: a replay.
            let mut again = *msg;
            assert_eq!(
                open_lane(b.lanes().expect("shared"), now, &mut again).err(),
                Some(OpenError::Replay(ReplayError::Replayed))
            );
        }
        assert!(keys_a.can_send(&lane0, now));
        assert!(!keys_a.can_send(&lane0, now + REJECT_AFTER_TIME));
    }

    /// A keypair that already sent and received keeps both when shared.
    #[test]
    fn sharing_a_used_keypair_keeps_its_counters() {
        let (mut a, mut b) = pair();
        let now = Instant::ZERO;
        let mut msgs = Vec::new();
        for _ in 0..3 {
            let mut msg = [0u8; DATA_MIN_LEN];
            a.seal_message(now, &mut msg).expect("seal");
            msgs.push(msg);
        }
        let mut first = msgs[0];
        b.open_message(now, &mut first).expect("fresh");
        let (a, mut b) = (a.into_lanes(), b.into_lanes());
        assert_eq!(a.sending_counter(), 3);
        assert_eq!(b.receiving_counter(), 1);
        let mut replay = msgs[0];
        assert_eq!(
            b.open_message(now, &mut replay).err(),
            Some(OpenError::Replay(ReplayError::Replayed))
        );
        let mut second = msgs[1];
        b.open_message(now, &mut second).expect("still fresh");
        assert!(a.lanes().is_some() && a.into_lanes().lanes().is_some());
    }

    #[test]
    fn shared_counter_stops_at_the_limit() {
        let (a, _) = pair();
        let mut a = a.into_lanes();
        a.set_sending_counter(REJECT_AFTER_MESSAGES - 1);
        let mut msg = [0u8; DATA_MIN_LEN];
        assert_eq!(
            a.seal_message(Instant::ZERO, &mut msg),
            Ok(REJECT_AFTER_MESSAGES - 1)
        );
        assert_eq!(
            a.seal_message(Instant::ZERO, &mut msg),
            Err(SealError::CounterExhausted)
        );
        assert!(!a.can_send(Instant::ZERO));
        assert!(a.needs_rekey_on_send(Instant::ZERO));
    }
}
