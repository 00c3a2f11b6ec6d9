//! A peer's transport session: the previous, current and next keypairs and
//! their rotation (whitepaper section 5.4.5 and 6; kernel `noise.c:
//! wg_noise_handshake_begin_session`, `add_new_keypair`,
//! `wg_noise_received_with_keypair`, and the two `keep_key_fresh`).
//!
//! - A keypair derived as initiator is confirmed at once (we received the
//!   response) and becomes `current`; the old current becomes `previous`.
//!   The initiator should then send something at once (data, or a keepalive
//!   when nothing is queued) so that the responder gets key confirmation.
//! - A keypair derived as responder waits in `next` until the first data
//!   message authenticated with it arrives, which promotes it to `current`.
//! - `previous` stays usable for receiving in-flight packets.
//!
//! The session lives with the peer's owner lcore: `&mut self`, no lock.
//! Keypairs are boxed (about 2 KB each, with the replay window): an empty
//! session is a few words, so a peer without traffic costs little, and the
//! box a keypair is derived into on the control thread moves in whole.

use crate::constants::{AEAD_TAG_LEN, REKEY_ON_RECEIVE_AGE};
use crate::crypto::TransportKey;
use crate::messages::{Data, MessageError};
use crate::time::Instant;
use crate::transport::{split_message, Keypair, OpenError, SealError};

/// Why the session could not send or receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No current keypair that may send: queue the packet and initiate a
    /// handshake (kernel `wg_packet_send_staged_packets`).
    #[error("no valid current keypair")]
    NoKeypair,
    /// The receiver index names none of this session's keypairs.
    #[error("unknown receiver index {0:#x}")]
    UnknownIndex(u32),
    /// Sealing failed.
    #[error("seal: {0}")]
    Seal(#[from] SealError),
    /// Opening failed.
    #[error("open: {0}")]
    Open(#[from] OpenError),
    /// Not a data message.
    #[error("malformed: {0}")]
    Malformed(#[from] MessageError),
}

/// Local indexes of keypairs that a session change dropped: the caller
/// removes them from its index table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retired {
    indices: [Option<u32>; 3],
}

impl Retired {
    fn push(&mut self, kp: Option<Box<Keypair>>) {
        if let Some(kp) = kp {
            if let Some(slot) = self.indices.iter_mut().find(|s| s.is_none()) {
                *slot = Some(kp.local_index());
            }
        }
    }

    /// The retired local indexes.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.indices.iter().flatten().copied()
    }
}

/// Result of sealing through the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Counter (nonce) the message carries.
    pub counter: u64,
    /// Start a handshake: the key is older than REKEY_AFTER_TIME (as
    /// initiator) or past REKEY_AFTER_MESSAGES.
    pub rekey: bool,
}

/// Result of opening through the session.
#[derive(Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// The decrypted, still padded, plaintext (empty: a keepalive).
    pub plaintext: &'a mut [u8],
    /// The message confirmed the `next` keypair, now `current`: the
    /// handshake is complete (timers), and staged packets may be sent.
    /// Carries the index the promotion retired (the old `previous`), for
    /// the caller's index table.
    pub promoted: Option<Retired>,
    /// Start a handshake, once: as initiator, the current key is older than
    /// REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT.
    pub rekey: bool,
}

/// The three keypair slots of a peer.
#[derive(Debug, Default)]
pub struct Session {
    previous: Option<Box<Keypair>>,
    current: Option<Box<Keypair>>,
    next: Option<Box<Keypair>>,
    sent_lastminute_handshake: bool,
}

impl Session {
    /// An empty session.
    pub const fn new() -> Self {
        Session {
            previous: None,
            current: None,
            next: None,
            sent_lastminute_handshake: false,
        }
    }

    /// The current keypair.
    pub fn current(&self) -> Option<&Keypair> {
        self.current.as_deref()
    }

    /// The unconfirmed keypair waiting for the initiator's first message.
    pub fn next(&self) -> Option<&Keypair> {
        self.next.as_deref()
    }

    /// The previous keypair, kept for packets still in flight.
    pub fn previous(&self) -> Option<&Keypair> {
        self.previous.as_deref()
    }

    /// The local indexes of the previous, current and next keypairs.
    pub fn indexes(&self) -> [Option<u32>; 3] {
        [self.previous(), self.current(), self.next()].map(|k| k.map(Keypair::local_index))
    }

    /// The current keypair, mutable (to seal with it directly).
    pub fn current_mut(&mut self) -> Option<&mut Keypair> {
        self.current.as_deref_mut()
    }

    /// The keypair whose local index is `local_index`, in any slot.
    pub fn keypair_mut(&mut self, local_index: u32) -> Option<&mut Keypair> {
        [&mut self.current, &mut self.previous, &mut self.next]
            .into_iter()
            .filter_map(Option::as_deref_mut)
            .find(|kp| kp.local_index() == local_index)
    }

    /// Installs a freshly derived keypair (kernel `add_new_keypair`).
    /// Initiator: it becomes current; if a `next` was pending it becomes
    /// previous and the old current is dropped, else the old current becomes
    /// previous. Responder: it becomes `next`, and the old next and previous
    /// are dropped. Returns the local indexes that are gone.
    pub fn install(&mut self, keypair: Box<Keypair>) -> Retired {
        let mut retired = Retired::default();
        if keypair.is_initiator() {
            if let Some(next) = self.next.take() {
                retired.push(self.current.take());
                retired.push(self.previous.replace(next));
            } else {
                let old_current = self.current.take();
                retired.push(core::mem::replace(&mut self.previous, old_current));
            }
            self.current = Some(keypair);
            // Handshake complete: allow one more last-minute rekey.
            self.sent_lastminute_handshake = false;
        } else {
            retired.push(self.next.replace(keypair));
            retired.push(self.previous.take());
        }
        retired
    }

    /// Records that a data message authenticated with `local_index`; if that
    /// is the `next` keypair, promotes it to current (the old current becomes
    /// previous) and returns the retired index (kernel
    /// `wg_noise_received_with_keypair`). `None` when nothing changed.
    pub fn received_with(&mut self, local_index: u32) -> Option<Retired> {
        if self.next().map(Keypair::local_index) != Some(local_index) {
            return None;
        }
        let next = self.next.take();
        let old_current = core::mem::replace(&mut self.current, next);
        let mut retired = Retired::default();
        retired.push(core::mem::replace(&mut self.previous, old_current));
        self.sent_lastminute_handshake = false;
        Some(retired)
    }

    /// Whether sending at `now` should start a handshake (kernel `send.c:
    /// keep_key_fresh`); also true when there is no usable current keypair.
    pub fn wants_rekey_on_send(&self, now: Instant) -> bool {
        match &self.current {
            Some(kp) if kp.can_send(now) => kp.needs_rekey_on_send(now),
            _ => true,
        }
    }

    /// Whether receiving at `now` should start a handshake: as initiator
    /// with a current key older than 165 s, once until the next handshake
    /// completes (kernel `receive.c: keep_key_fresh`).
    pub fn wants_rekey_on_receive(&mut self, now: Instant) -> bool {
        if self.sent_lastminute_handshake {
            return false;
        }
        let stale = self.current.as_ref().is_some_and(|kp| {
            kp.can_send(now)
                && kp.is_initiator()
                && kp.birth().has_expired(REKEY_ON_RECEIVE_AGE, now)
        });
        if stale {
            self.sent_lastminute_handshake = true;
        }
        stale
    }

    /// Seals `payload` in place with the current keypair (tag separate);
    /// returns the counter, the receiver index to put in the header, and
    /// whether to rekey.
    pub fn seal(
        &mut self,
        now: Instant,
        payload: &mut [u8],
        tag: &mut [u8; AEAD_TAG_LEN],
    ) -> Result<(u32, Sent), SessionError> {
        let (receiver, sent, key) = self.reserve(now)?;
        *tag = key
            .seal(sent.counter, payload)
            .map_err(|_| SealError::Device)?;
        Ok((receiver, sent))
    }

    /// [`seal`](Self::seal) without the encryption: takes the current
    /// keypair's next counter and returns it with the receiver index, the
    /// rekey verdict and the key that must seal the message (a caller
    /// sealing a burst's messages together, [`TransportKey::batch_key`]).
    #[inline]
    pub fn reserve(&mut self, now: Instant) -> Result<(u32, Sent, &TransportKey), SessionError> {
        let kp = self.current.as_mut().ok_or(SessionError::NoKeypair)?;
        if !kp.can_send(now) {
            return Err(SessionError::NoKeypair);
        }
        let remote = kp.remote_index();
        // The verdict after this message, as `seal` gives it: the counter
        // taken counts.
        let (counter, _) = kp.reserve(now)?;
        let rekey = kp.needs_rekey_on_send(now);
        let key = kp.sending_key();
        Ok((remote, Sent { counter, rekey }, key))
    }

    /// Seals a whole data message (header, padded plaintext, tag room) in
    /// place with the current keypair; see [`Keypair::seal_message`].
    pub fn seal_message(&mut self, now: Instant, msg: &mut [u8]) -> Result<Sent, SessionError> {
        let kp = self.current.as_mut().ok_or(SessionError::NoKeypair)?;
        if !kp.can_send(now) {
            return Err(SessionError::NoKeypair);
        }
        let counter = kp.seal_message(now, msg)?;
        Ok(Sent {
            counter,
            rekey: kp.needs_rekey_on_send(now),
        })
    }

    /// Opens a data message in place with the keypair its receiver index
    /// names, then applies the session rules: promotion of `next` and the
    /// last-minute rekey check.
    pub fn open_message<'a>(
        &mut self,
        now: Instant,
        msg: &'a mut [u8],
    ) -> Result<Received<'a>, SessionError> {
        let index = Data::new_checked(&*msg)?.receiver();
        let (counter, payload, tag) = split_message(msg, index)?;
        self.open_check(now, index, counter)?
            .open(counter, payload, tag)
            .map_err(OpenError::from)?;
        let (promoted, rekey) = self.open_commit(now, index, counter)?;
        Ok(Received {
            plaintext: payload,
            promoted,
            rekey,
        })
    }

    /// The first half of [`open_message`](Self::open_message), for a
    /// caller that opens a burst's messages together: the key of the
    /// keypair `index` names, if message `counter` may be received with it
    /// now ([`Keypair::open_check`]).
    #[inline]
    pub fn open_check(
        &self,
        now: Instant,
        index: u32,
        counter: u64,
    ) -> Result<&TransportKey, SessionError> {
        let kp = [&self.current, &self.previous, &self.next]
            .into_iter()
            .filter_map(Option::as_deref)
            .find(|kp| kp.local_index() == index)
            .ok_or(SessionError::UnknownIndex(index))?;
        Ok(kp.open_check(now, counter)?)
    }

    /// The second half, once message `counter` authenticated: the replay
    /// window takes it, then the session rules apply (promotion of `next`,
    /// returned with the index it retired; whether to rekey on receive).
    #[inline]
    pub fn open_commit(
        &mut self,
        now: Instant,
        index: u32,
        counter: u64,
    ) -> Result<(Option<Retired>, bool), SessionError> {
        self.keypair_mut(index)
            .ok_or(SessionError::UnknownIndex(index))?
            .open_commit(counter)?;
        let promoted = self.received_with(index);
        Ok((promoted, self.wants_rekey_on_receive(now)))
    }

    /// Drops every keypair, wiping the keys (the zero-key-material timer,
    /// 3 x REJECT_AFTER_TIME after the last session was derived). Returns
    /// the retired indexes.
    pub fn clear(&mut self) -> Retired {
        let mut retired = Retired::default();
        retired.push(self.previous.take());
        retired.push(self.current.take());
        retired.push(self.next.take());
        self.sent_lastminute_handshake = false;
        retired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::TransportKey;
    use zeroize::Zeroizing;

    fn kp(index: u32, initiator: bool) -> Box<Keypair> {
        kp_born(index, initiator, Instant::ZERO)
    }

    fn kp_born(index: u32, initiator: bool, birth: Instant) -> Box<Keypair> {
        let k = || TransportKey::new(Zeroizing::new([index as u8; 32]));
        Box::new(Keypair::new(k(), k(), index, index + 100, birth, initiator))
    }

    fn slots(s: &Session) -> [Option<u32>; 3] {
        s.indexes()
    }

    #[test]
    fn initiator_keypairs_rotate_current_into_previous() {
        let mut s = Session::new();
        assert_eq!(s.install(kp(1, true)).iter().count(), 0);
        assert_eq!(slots(&s), [None, Some(1), None]);
        assert_eq!(s.install(kp(2, true)).iter().count(), 0);
        assert_eq!(slots(&s), [Some(1), Some(2), None]);
        assert_eq!(s.install(kp(3, true)).iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(slots(&s), [Some(2), Some(3), None]);
    }

    #[test]
    fn responder_keypair_waits_in_next_until_used() {
        let mut s = Session::new();
        s.install(kp(1, true));
        s.install(kp(2, true));
        // Responder keypair: old previous and next go, new one waits.
        assert_eq!(s.install(kp(3, false)).iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(slots(&s), [None, Some(2), Some(3)]);
        assert!(s.received_with(2).is_none(), "current is not a promotion");
        let retired = s.received_with(3).expect("promoted");
        assert_eq!(retired.iter().count(), 0);
        assert_eq!(slots(&s), [Some(2), Some(3), None]);
    }

    #[test]
    fn initiator_keypair_with_pending_next_demotes_next() {
        let mut s = Session::new();
        s.install(kp(1, true));
        s.install(kp(2, false));
        assert_eq!(slots(&s), [None, Some(1), Some(2)]);
        // The kernel puts the unused next in previous and drops current.
        assert_eq!(s.install(kp(3, true)).iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(slots(&s), [Some(2), Some(3), None]);
        assert_eq!(s.clear().iter().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(slots(&s), [None, None, None]);
    }

    #[test]
    fn rekey_rules() {
        let mut s = Session::new();
        assert!(s.wants_rekey_on_send(Instant::ZERO), "no keypair");
        s.install(kp(1, true));
        assert!(!s.wants_rekey_on_send(Instant::from_secs(119)));
        assert!(s.wants_rekey_on_send(Instant::from_secs(120)));
        assert!(!s.wants_rekey_on_receive(Instant::from_secs(164)));
        assert!(s.wants_rekey_on_receive(Instant::from_secs(165)));
        assert!(
            !s.wants_rekey_on_receive(Instant::from_secs(166)),
            "only once"
        );
        s.install(kp_born(2, true, Instant::from_secs(166)));
        assert!(
            !s.wants_rekey_on_receive(Instant::from_secs(166)),
            "fresh key"
        );
        assert!(
            s.wants_rekey_on_receive(Instant::from_secs(331)),
            "armed again"
        );
        let mut r = Session::new();
        r.install(kp(3, false));
        r.received_with(3);
        assert!(
            !r.wants_rekey_on_receive(Instant::from_secs(170)),
            "responder never"
        );
        assert!(r.wants_rekey_on_send(Instant::from_secs(180)), "expired");
    }
}
