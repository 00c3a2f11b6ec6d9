//! One transport keypair: two ChaCha20-Poly1305 keys, the send counter and
//! the receive replay window (whitepaper section 5.4.5 derives it, 5.4.6 uses
//! it; kernel `noise.h: struct noise_keypair`).

use crate::constants::{
    AEAD_TAG_LEN, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME,
};
use std::sync::Arc;

use super::lane_keypair::{KeyHalves, LaneKeypair};
use crate::crypto::{CryptoError, TransportKey};
use crate::messages::{Data, MessageError, DATA_HEADER_LEN, DATA_MIN_LEN};
use crate::replay::{ReplayError, ReplayWindow};
use crate::send_block::SendBlock;
use crate::time::Instant;

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The keypair is older than REJECT_AFTER_TIME.
    #[error("keypair older than REJECT_AFTER_TIME")]
    Expired,
    /// The send counter reached REJECT_AFTER_MESSAGES.
    #[error("send counter exhausted (REJECT_AFTER_MESSAGES)")]
    CounterExhausted,
    /// The message buffer cannot hold a header and a tag.
    #[error("buffer of {0} bytes cannot hold a data message")]
    BufferTooSmall(usize),
    /// The crypto device failed the operation.
    #[error("the crypto device failed to seal")]
    Device,
}

/// Why a data message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The keypair is older than REJECT_AFTER_TIME.
    #[error("keypair older than REJECT_AFTER_TIME")]
    Expired,
    /// The counter is a replay, too old, or past the limit.
    #[error("replay window: {0}")]
    Replay(#[from] ReplayError),
    /// The tag did not authenticate the ciphertext.
    #[error("authentication failed")]
    Authentication,
    /// The buffer is not a data message.
    #[error("malformed data message: {0}")]
    Malformed(#[from] MessageError),
    /// The receiver index names another keypair.
    #[error("receiver index {0:#x} is not this keypair's")]
    WrongIndex(u32),
    /// The crypto device failed the operation (not an authentication
    /// failure).
    #[error("the crypto device failed to open")]
    Device,
}

impl From<CryptoError> for OpenError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Device => OpenError::Device,
            CryptoError::Authentication | CryptoError::ZeroSharedSecret => {
                OpenError::Authentication
            }
        }
    }
}

/// A transport keypair. Keys are wiped on drop and absent from `Debug`.
pub struct Keypair {
    crypt: Crypt,
    local_index: u32,
    remote_index: u32,
    birth: Instant,
    initiator: bool,
}

/// The keys and counters of a keypair: its own (one worker), or shared by
/// the workers of a multi-lane peer.
// Unboxed on purpose, as `TransportKey`: the single-lane path reads the
// keys without a pointer chase.
#[allow(clippy::large_enum_variant)]
enum Crypt {
    /// Used by one worker: a plain send counter and a single-writer replay
    /// window, no atomics.
    Single {
        sending: TransportKey,
        sending_counter: u64,
        receiving: TransportKey,
        replay: ReplayWindow,
    },
    /// Shared with other workers ([`LaneKeypair`]); `block` is this
    /// holder's reserved send counters.
    Lanes {
        keys: Arc<LaneKeypair>,
        block: SendBlock,
    },
}

impl core::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keypair")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("birth", &self.birth)
            .field("initiator", &self.initiator)
            .field("sending_counter", &self.sending_counter())
            .field("lanes", &self.lanes().is_some())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// A keypair from the keys `Noise` derived (whitepaper section 5.4.5).
    pub(crate) fn new(
        sending: TransportKey,
        receiving: TransportKey,
        local_index: u32,
        remote_index: u32,
        birth: Instant,
        initiator: bool,
    ) -> Self {
        Keypair {
            crypt: Crypt::Single {
                sending,
                sending_counter: 0,
                receiving,
                replay: ReplayWindow::new(),
            },
            local_index,
            remote_index,
            birth,
            initiator,
        }
    }

    /// Makes the keypair shareable by several workers (a multi-lane peer):
    /// its keys move into a [`LaneKeypair`] that [`lanes`](Self::lanes)
    /// hands out, its send counter becomes block-reserved and its replay
    /// window safe under concurrent writers. Counters already used or
    /// received stay used or received. Already shared: unchanged.
    pub fn into_lanes(self) -> Self {
        let Keypair {
            crypt,
            local_index,
            remote_index,
            birth,
            initiator,
        } = self;
        let crypt = match crypt {
            Crypt::Single {
                sending,
                sending_counter,
                receiving,
                replay,
            } => Crypt::Lanes {
                keys: Arc::new(LaneKeypair::new(
                    KeyHalves {
                        sending,
                        receiving,
                        local_index,
                        remote_index,
                        birth,
                        initiator,
                    },
                    sending_counter,
                    &replay,
                )),
                block: SendBlock::default(),
            },
            lanes @ Crypt::Lanes { .. } => lanes,
        };
        Keypair {
            crypt,
            local_index,
            remote_index,
            birth,
            initiator,
        }
    }

    /// The shared half of a multi-lane keypair (see
    /// [`into_lanes`](Self::into_lanes)); `None` for a single-lane one.
    pub fn lanes(&self) -> Option<&Arc<LaneKeypair>> {
        match &self.crypt {
            Crypt::Lanes { keys, .. } => Some(keys),
            Crypt::Single { .. } => None,
        }
    }

    /// The key that seals what this keypair sends.
    #[inline]
    pub fn sending_key(&self) -> &TransportKey {
        match &self.crypt {
            Crypt::Single { sending, .. } => sending,
            Crypt::Lanes { keys, .. } => keys.sending_key(),
        }
    }

    /// Our index: the receiver index peers put on data messages for us.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// The peer's index: what we write as receiver on messages we send.
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }

    /// When the handshake that produced this keypair completed.
    pub fn birth(&self) -> Instant {
        self.birth
    }

    /// Whether we were the handshake initiator.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// The counter the next sealed message will carry (multi-lane: from
    /// this holder's block, or the next block to be reserved).
    pub fn sending_counter(&self) -> u64 {
        match &self.crypt {
            Crypt::Single {
                sending_counter, ..
            } => *sending_counter,
            Crypt::Lanes { keys, block } => block.peek().unwrap_or_else(|| keys.reserved()),
        }
    }

    /// One more than the highest counter received (0 before the first).
    pub fn receiving_counter(&self) -> u64 {
        match &self.crypt {
            Crypt::Single { replay, .. } => replay.next_expected(),
            Crypt::Lanes { keys, .. } => keys.receiving_counter(),
        }
    }

    /// Test hook: a keypair from raw transport keys, without a handshake
    /// (the fuzzers build a fresh one per input, which a handshake's eight
    /// Diffie-Hellman operations would make slow).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn from_raw_keys(
        sending: [u8; 32],
        receiving: [u8; 32],
        local_index: u32,
        remote_index: u32,
        birth: Instant,
        initiator: bool,
    ) -> Self {
        Keypair::new(
            TransportKey::new(zeroize::Zeroizing::new(sending)),
            TransportKey::new(zeroize::Zeroizing::new(receiving)),
            local_index,
            remote_index,
            birth,
            initiator,
        )
    }

    /// Test hook: start the send counter at `counter` (to reach
    /// REKEY_AFTER_MESSAGES / REJECT_AFTER_MESSAGES in a test).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn set_sending_counter(&mut self, counter: u64) {
        match &mut self.crypt {
            Crypt::Single {
                sending_counter, ..
            } => *sending_counter = counter,
            Crypt::Lanes { keys, block } => {
                keys.skip_to(counter);
                *block = SendBlock::default();
            }
        }
    }

    /// Whether the keypair may still send at `now` (kernel `send.c:
    /// encrypt_packet` validity check).
    pub fn can_send(&self, now: Instant) -> bool {
        !self.birth.has_expired(REJECT_AFTER_TIME, now)
            && match &self.crypt {
                Crypt::Single {
                    sending_counter, ..
                } => *sending_counter < REJECT_AFTER_MESSAGES,
                Crypt::Lanes { keys, block } => keys.can_send(block, now),
            }
    }

    /// Whether the keypair may still receive at `now` (kernel `receive.c:
    /// decrypt_packet`).
    pub fn can_receive(&self, now: Instant) -> bool {
        receivable(self.birth, self.receiving_counter(), now)
    }

    /// Whether sending with this keypair should trigger a new handshake
    /// (kernel `send.c: keep_key_fresh`): past REKEY_AFTER_MESSAGES for
    /// either side, or older than REKEY_AFTER_TIME when we initiated it.
    pub fn needs_rekey_on_send(&self, now: Instant) -> bool {
        rekey_due(self.sending_counter(), self.initiator, self.birth, now)
    }

    /// Encrypts `payload` in place and writes the tag to `tag`; returns the
    /// counter used as nonce, which the caller puts in the message header.
    /// `payload` must already be padded (see [`crate::messages::padded_len`]).
    pub fn seal(
        &mut self,
        now: Instant,
        payload: &mut [u8],
        tag: &mut [u8; AEAD_TAG_LEN],
    ) -> Result<u64, SealError> {
        let (counter, key) = self.reserve(now)?;
        *tag = key.seal(counter, payload).map_err(|_| SealError::Device)?;
        Ok(counter)
    }

    /// Takes the next send counter, with the key that must seal the message
    /// carrying it: [`seal`](Self::seal) without the encryption, for a
    /// caller that seals a burst's messages together (see
    /// [`TransportKey::batch_key`]). The counter is used up whether or not
    /// the message is sent (kernel `send.c`: the nonce is taken before
    /// encryption).
    #[inline]
    pub fn reserve(&mut self, now: Instant) -> Result<(u64, &TransportKey), SealError> {
        if self.birth.has_expired(REJECT_AFTER_TIME, now) {
            return Err(SealError::Expired);
        }
        match &mut self.crypt {
            Crypt::Single {
                sending,
                sending_counter,
                ..
            } => {
                let counter = *sending_counter;
                if counter >= REJECT_AFTER_MESSAGES {
                    return Err(SealError::CounterExhausted);
                }
                *sending_counter = counter + 1;
                Ok((counter, sending))
            }
            Crypt::Lanes { keys, block } => keys.reserve(block, now),
        }
    }

    /// Builds a whole data message in `msg`: on entry `msg[16..len-16]` holds
    /// the padded plaintext; the header is written in front, the payload is
    /// encrypted in place and the tag written at the tail. Returns the counter.
    pub fn seal_message(&mut self, now: Instant, msg: &mut [u8]) -> Result<u64, SealError> {
        if msg.len() < DATA_MIN_LEN {
            return Err(SealError::BufferTooSmall(msg.len()));
        }
        let mut view = Data::new_unchecked(&mut *msg);
        let (payload, tag) = view.payload_and_tag_mut();
        let counter = self.seal(now, payload, tag)?;
        view.set_message_type();
        view.set_receiver(self.remote_index);
        view.set_counter(counter);
        Ok(counter)
    }

    /// Decrypts `payload` in place, authenticated by `tag`, as message number
    /// `counter`. The replay window is checked before and updated only after
    /// authentication (kernel `receive.c`: decrypt, then `counter_validate`).
    pub fn open(
        &mut self,
        now: Instant,
        counter: u64,
        payload: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), OpenError> {
        self.open_check(now, counter)?.open(counter, payload, tag)?;
        self.open_commit(counter)
    }

    /// The first half of [`open`](Self::open), for a caller that opens a
    /// burst's messages together: whether message `counter` may be
    /// received at `now` (validity, replay window), and the key that opens
    /// it. Nothing changes until [`open_commit`](Self::open_commit), which
    /// must follow only once the message authenticated.
    #[inline]
    pub fn open_check(&self, now: Instant, counter: u64) -> Result<&TransportKey, OpenError> {
        if !self.can_receive(now) {
            return Err(OpenError::Expired);
        }
        match &self.crypt {
            Crypt::Single {
                receiving, replay, ..
            } => {
                replay.check(counter)?;
                Ok(receiving)
            }
            Crypt::Lanes { keys, .. } => keys.open_check(now, counter),
        }
    }

    /// The second half of [`open`](Self::open): message `counter`
    /// authenticated, so the replay window takes it (kernel `receive.c`:
    /// `counter_validate` after decryption); fails for a counter taken
    /// since the check (the same message twice in one burst).
    #[inline]
    pub fn open_commit(&mut self, counter: u64) -> Result<(), OpenError> {
        match &mut self.crypt {
            Crypt::Single { replay, .. } => Ok(replay.update(counter)?),
            Crypt::Lanes { keys, .. } => keys.open_commit(counter),
        }
    }

    /// Opens a whole data message in place; returns the (still padded)
    /// plaintext, which lies at `msg[16..len-16]`. An empty plaintext is a
    /// keepalive.
    pub fn open_message<'a>(
        &mut self,
        now: Instant,
        msg: &'a mut [u8],
    ) -> Result<&'a mut [u8], OpenError> {
        let (counter, payload, tag) = split_message(msg, self.local_index)?;
        self.open(now, counter, payload, tag)?;
        Ok(payload)
    }
}

/// A data message's counter, payload and tag, once its receiver index is
/// checked against `local_index`.
pub(crate) fn split_message(
    msg: &mut [u8],
    local_index: u32,
) -> Result<(u64, &mut [u8], &[u8; AEAD_TAG_LEN]), OpenError> {
    let (receiver, counter) = {
        let view = Data::new_checked(&*msg)?;
        (view.receiver(), view.counter())
    };
    if receiver != local_index {
        return Err(OpenError::WrongIndex(receiver));
    }
    let len = msg.len();
    let (payload, tag) = msg[DATA_HEADER_LEN..].split_at_mut(len - DATA_MIN_LEN);
    let tag = <&[u8; AEAD_TAG_LEN]>::try_from(&*tag).map_err(|_| OpenError::Authentication)?;
    Ok((counter, payload, tag))
}

/// Whether a keypair born at `birth` that received up to `received` may
/// still receive at `now`.
pub(super) fn receivable(birth: Instant, received: u64, now: Instant) -> bool {
    !birth.has_expired(REJECT_AFTER_TIME, now) && received < REJECT_AFTER_MESSAGES
}

/// Whether sending counter `counter` with a keypair born at `birth` should
/// start a handshake (kernel `send.c: keep_key_fresh`).
pub(super) fn rekey_due(counter: u64, initiator: bool, birth: Instant, now: Instant) -> bool {
    counter > REKEY_AFTER_MESSAGES || (initiator && birth.has_expired(REKEY_AFTER_TIME, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn pair() -> (Keypair, Keypair) {
        let k = |b| TransportKey::new(Zeroizing::new([b; 32]));
        let a = Keypair::new(k(1), k(2), 10, 20, Instant::ZERO, true);
        let b = Keypair::new(k(2), k(1), 20, 10, Instant::ZERO, false);
        (a, b)
    }

    #[test]
    fn seal_open_round_trip_and_replay() {
        let (mut a, mut b) = pair();
        let now = Instant::from_secs(1);
        let mut msg = [0u8; 16 + 32 + 16];
        msg[16..48].copy_from_slice(&[7u8; 32]);
        assert_eq!(a.seal_message(now, &mut msg), Ok(0));
        let copy = msg;
        assert_eq!(
            b.open_message(now, &mut msg).map(|p| p.to_vec()),
            Ok(vec![7u8; 32])
        );
        let mut again = copy;
        assert_eq!(
            b.open_message(now, &mut again).err(),
            Some(OpenError::Replay(ReplayError::Replayed))
        );
        // A tampered copy of a counter already received is refused by the
        // replay check, before any decryption (forgery of a fresh counter:
        // `forged_packet_does_not_move_window`).
        let mut forged = copy;
        forged[20] ^= 1;
        assert_eq!(
            b.open_message(now, &mut forged).err(),
            Some(OpenError::Replay(ReplayError::Replayed))
        );
        let mut wrong = copy;
        wrong[4] = 99;
        assert_eq!(
            b.open_message(now, &mut wrong).err(),
            Some(OpenError::WrongIndex(99))
        );
    }

    #[test]
    fn a_reserved_counter_sealed_later_with_its_key_opens_at_the_peer_in_any_order() {
        let (mut a, mut b) = pair();
        let now = Instant::from_secs(1);
        // Two counters taken first, the messages sealed after, the second
        // before the first (a multi-buffer pass seals them together).
        let (c0, _) = a.reserve(now).expect("reserve");
        let (c1, _) = a.reserve(now).expect("reserve");
        assert_eq!((c0, c1, a.sending_counter()), (0, 1, 2));
        for (counter, fill) in [(c1, 9u8), (c0, 8u8)] {
            let mut msg = [0u8; 16 + 16 + 16];
            msg[16..32].fill(fill);
            let mut view = Data::new_unchecked(&mut msg[..]);
            view.set_message_type();
            view.set_receiver(a.remote_index());
            view.set_counter(counter);
            let (payload, tag) = view.payload_and_tag_mut();
            *tag = a.sending_key().seal(counter, payload).expect("seal");
            assert_eq!(
                b.open_message(now, &mut msg).map(|p| p.to_vec()),
                Ok(vec![fill; 16])
            );
        }
        // Reserving obeys the sealing limits.
        a.set_sending_counter(REJECT_AFTER_MESSAGES);
        assert_eq!(a.reserve(now).err(), Some(SealError::CounterExhausted));
        let late = Instant::ZERO + REJECT_AFTER_TIME;
        assert_eq!(a.reserve(late).err(), Some(SealError::Expired));
    }

    #[test]
    fn forged_packet_does_not_move_window() {
        let (mut a, mut b) = pair();
        let now = Instant::ZERO;
        let mut msg = [0u8; DATA_MIN_LEN];
        a.set_sending_counter(100);
        a.seal_message(now, &mut msg).expect("seal");
        msg[DATA_MIN_LEN - 1] ^= 1;
        assert_eq!(
            b.open_message(now, &mut msg).err(),
            Some(OpenError::Authentication)
        );
        assert_eq!(b.receiving_counter(), 0);
    }

    #[test]
    fn limits() {
        let (mut a, mut b) = pair();
        let mut msg = [0u8; DATA_MIN_LEN];
        let late = Instant::ZERO + REJECT_AFTER_TIME;
        assert_eq!(a.seal_message(late, &mut msg), Err(SealError::Expired));
        assert!(!a.needs_rekey_on_send(Instant::from_millis(119_999)));
        assert!(a.needs_rekey_on_send(Instant::from_secs(120)));
        assert!(!b.needs_rekey_on_send(Instant::from_secs(121)));
        b.set_sending_counter(REKEY_AFTER_MESSAGES + 1);
        assert!(b.needs_rekey_on_send(Instant::ZERO));
        a.set_sending_counter(REJECT_AFTER_MESSAGES - 1);
        assert_eq!(
            a.seal_message(Instant::ZERO, &mut msg),
            Ok(REJECT_AFTER_MESSAGES - 1)
        );
        assert_eq!(
            a.seal_message(Instant::ZERO, &mut msg),
            Err(SealError::CounterExhausted)
        );
        assert!(!a.can_send(Instant::ZERO));
        assert_eq!(
            a.seal_message(Instant::ZERO, &mut [0u8; 31]),
            Err(SealError::BufferTooSmall(31))
        );
        assert_eq!(
            b.open_message(late, &mut msg).err(),
            Some(OpenError::Expired)
        );
    }
}
