//! The per-peer timer rules as pure state (whitepaper section 6; kernel
//! `timers.c`, whose semantics this follows event for event).
//!
//! The caller reports events (`data_sent`, `any_authenticated_packet_received`,
//! ...) with the current time, asks [`Timers::next_deadline`] when to wake up,
//! and calls [`Timers::poll`] at or after that deadline to learn what to do.
//! Random jitter comes from the caller's RNG. No timer wheel, no clock.
//!
//! | kernel timer                 | armed by                             | on expiry |
//! |------------------------------|--------------------------------------|-----------|
//! | `retransmit_handshake`       | initiation sent (REKEY_TIMEOUT+jitter) | resend, or give up after MAX_TIMER_HANDSHAKES |
//! | `send_keepalive`             | data received (KEEPALIVE_TIMEOUT)     | send keepalive |
//! | `new_handshake`              | data sent (KEEPALIVE+REKEY_TIMEOUT+jitter) | new initiation |
//! | `zero_key_material`          | session derived (3 x REJECT_AFTER_TIME) | wipe keys |
//! | `persistent_keepalive`       | any authenticated traversal (interval); at once when the peer comes up with an interval or the interval goes from 0 to N | send keepalive |

use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::constants::{
    KEEPALIVE_TIMEOUT, MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX,
    ZERO_KEY_MATERIAL_AFTER,
};
use crate::time::Instant;

/// Why an initiation should be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitiationReason {
    /// No response to our initiation within REKEY_TIMEOUT: a retry, which
    /// keeps the attempt count (pass `is_retry = true` to
    /// [`Timers::begin_initiation`]).
    Retransmit,
    /// We sent data and heard nothing back for KEEPALIVE_TIMEOUT +
    /// REKEY_TIMEOUT: a fresh attempt.
    NewHandshake,
}

/// What the caller must do after [`Timers::poll`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerActions {
    /// Send a handshake initiation (subject to [`Timers::begin_initiation`]).
    pub send_initiation: Option<InitiationReason>,
    /// Send a keepalive (an empty data message).
    pub send_keepalive: bool,
    /// Wipe the session's keypairs and the handshake state.
    pub zero_key_material: bool,
    /// The handshake was retried for REKEY_ATTEMPT_TIME without answer:
    /// drop the packets staged for this peer and stop trying.
    pub gave_up: bool,
    /// `new_handshake` fired: data sent got no authenticated answer for
    /// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, the session is presumed dead
    /// (whatever `send_initiation` says when a retransmission is also due).
    pub data_unanswered: bool,
}

/// Random jitter in `[0, REKEY_TIMEOUT_JITTER_MAX)` from the caller's RNG.
pub fn jitter(rng: &mut dyn CryptoRngCore) -> Duration {
    let max = REKEY_TIMEOUT_JITTER_MAX.as_nanos() as u64;
    Duration::from_nanos(rng.next_u64() % max)
}

/// Timer state of one peer.
#[derive(Debug, Clone, Default)]
pub struct Timers {
    persistent_keepalive_interval: Option<Duration>,
    retransmit_handshake: Option<Instant>,
    send_keepalive: Option<Instant>,
    new_handshake: Option<Instant>,
    zero_key_material: Option<Instant>,
    persistent_keepalive: Option<Instant>,
    handshake_attempts: u32,
    need_another_keepalive: bool,
    last_sent_handshake: Option<Instant>,
}

impl Timers {
    /// Timers for a new peer, with an optional persistent keepalive
    /// interval. With one, a keepalive is due at once: the kernel sends
    /// one when the interface comes up (`wg_open`) or a peer is added with
    /// an interval (`set_peer`), so a site-to-site link or a NAT mapping
    /// comes up without waiting for traffic.
    pub fn new(persistent_keepalive_interval: Option<Duration>) -> Self {
        let interval = persistent_keepalive_interval.filter(|d| !d.is_zero());
        Timers {
            persistent_keepalive_interval: interval,
            // Due whenever the first poll comes.
            persistent_keepalive: interval.map(|_| Instant::ZERO),
            ..Timers::default()
        }
    }

    /// Changes the persistent keepalive interval (`None` or zero: off).
    /// Turning it on (from off) makes a keepalive due at `now`, as the
    /// kernel's `set_peer` sends one when the interval goes from 0 to N.
    pub fn set_persistent_keepalive(&mut self, interval: Option<Duration>, now: Instant) {
        let was_off = self.persistent_keepalive_interval.is_none();
        self.persistent_keepalive_interval = interval.filter(|d| !d.is_zero());
        if self.persistent_keepalive_interval.is_none() {
            self.persistent_keepalive = None;
        } else if was_off {
            self.persistent_keepalive = Some(now);
        }
    }

    /// Number of retransmissions of the current handshake attempt.
    pub fn handshake_attempts(&self) -> u32 {
        self.handshake_attempts
    }

    /// The earliest armed deadline: call [`poll`](Self::poll) then.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.retransmit_handshake,
            self.send_keepalive,
            self.new_handshake,
            self.zero_key_material,
            self.persistent_keepalive,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// After an authenticated data packet (not a keepalive) is sent: arm
    /// `new_handshake` unless armed (kernel `wg_timers_data_sent`).
    pub fn data_sent(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        if self.new_handshake.is_none() {
            self.new_handshake = Some(now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter(rng));
        }
    }

    /// After an authenticated data packet (not a keepalive) is received:
    /// arm `send_keepalive`, or note that another one will be needed
    /// (kernel `wg_timers_data_received`).
    pub fn data_received(&mut self, now: Instant) {
        if self.send_keepalive.is_none() {
            self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
        } else {
            self.need_another_keepalive = true;
        }
    }

    /// After any authenticated packet (keepalive, data, handshake) is sent:
    /// our packet serves as the keepalive (kernel
    /// `wg_timers_any_authenticated_packet_sent`).
    pub fn any_authenticated_packet_sent(&mut self) {
        self.send_keepalive = None;
    }

    /// After any authenticated packet is received: the peer is alive, no
    /// need for a new handshake (kernel
    /// `wg_timers_any_authenticated_packet_received`).
    pub fn any_authenticated_packet_received(&mut self) {
        self.new_handshake = None;
    }

    /// Before an authenticated packet is sent or after one is received:
    /// re-arm the persistent keepalive (kernel
    /// `wg_timers_any_authenticated_packet_traversal`).
    pub fn any_authenticated_packet_traversal(&mut self, now: Instant) {
        if let Some(interval) = self.persistent_keepalive_interval {
            self.persistent_keepalive = Some(now + interval);
        }
    }

    /// Whether an initiation may be sent now, resetting the attempt count
    /// when this is not a retry (kernel
    /// `wg_packet_send_queued_handshake_initiation` and the REKEY_TIMEOUT
    /// rate limit of `wg_packet_send_handshake_initiation`). When it returns
    /// true, build the initiation and report it with
    /// [`initiation_sent`](Self::initiation_sent).
    pub fn begin_initiation(&mut self, now: Instant, is_retry: bool) -> bool {
        if !is_retry {
            self.handshake_attempts = 0;
        }
        self.last_sent_handshake
            .is_none_or(|last| last.has_expired(REKEY_TIMEOUT, now))
    }

    /// After an initiation was sent: it is an authenticated packet, and
    /// arms the retransmission (kernel `wg_timers_handshake_initiated`).
    pub fn initiation_sent(&mut self, now: Instant, rng: &mut dyn CryptoRngCore) {
        self.last_sent_handshake = Some(now);
        self.any_authenticated_packet_traversal(now);
        self.any_authenticated_packet_sent();
        self.retransmit_handshake = Some(now + REKEY_TIMEOUT + jitter(rng));
    }

    /// After a handshake response was sent: it is an authenticated packet,
    /// and it counts as our latest handshake message, so no initiation of
    /// ours follows within REKEY_TIMEOUT (kernel
    /// `wg_packet_send_handshake_response` sets `last_sent_handshake`):
    /// the initiator's first data message, not our own initiation,
    /// completes the exchange.
    pub fn response_sent(&mut self, now: Instant) {
        self.last_sent_handshake = Some(now);
        self.any_authenticated_packet_traversal(now);
        self.any_authenticated_packet_sent();
    }

    /// After a response was received and consumed, or the first data
    /// message confirmed a responder keypair (kernel
    /// `wg_timers_handshake_complete`).
    pub fn handshake_complete(&mut self) {
        self.retransmit_handshake = None;
        self.handshake_attempts = 0;
    }

    /// After a keypair was derived (before sending a response, or after
    /// consuming one): key material dies 3 x REJECT_AFTER_TIME later unless
    /// renewed (kernel `wg_timers_session_derived`).
    pub fn session_derived(&mut self, now: Instant) {
        self.zero_key_material = Some(now + ZERO_KEY_MATERIAL_AFTER);
    }

    /// Fires every timer whose deadline is at or before `now` and returns
    /// what to do (kernel `wg_expired_*`).
    pub fn poll(&mut self, now: Instant) -> TimerActions {
        let mut actions = TimerActions::default();
        let due = |t: &mut Option<Instant>| match *t {
            Some(d) if d <= now => {
                *t = None;
                true
            }
            _ => false,
        };
        if due(&mut self.retransmit_handshake) {
            if self.handshake_attempts > MAX_TIMER_HANDSHAKES {
                // Give up; stop keepalives, and make sure residue of the
                // partial exchange is eventually wiped.
                actions.gave_up = true;
                self.send_keepalive = None;
                if self.zero_key_material.is_none() {
                    self.zero_key_material = Some(now + ZERO_KEY_MATERIAL_AFTER);
                }
            } else {
                self.handshake_attempts += 1;
                actions.send_initiation = Some(InitiationReason::Retransmit);
            }
        }
        if due(&mut self.send_keepalive) {
            actions.send_keepalive = true;
            if self.need_another_keepalive {
                self.need_another_keepalive = false;
                self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
            }
        }
        if due(&mut self.new_handshake) {
            actions.data_unanswered = true;
            actions
                .send_initiation
                .get_or_insert(InitiationReason::NewHandshake);
        }
        if due(&mut self.zero_key_material) {
            actions.zero_key_material = true;
        }
        if due(&mut self.persistent_keepalive) && self.persistent_keepalive_interval.is_some() {
            actions.send_keepalive = true;
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::constants::{REKEY_ATTEMPT_TIME, REKEY_TIMEOUT_JITTER_MAX};
    use rand_chacha::rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(1)
    }

    #[test]
    fn jitter_is_below_333_ms() {
        let mut r = rng();
        // 1000 draws, each in [0, 333 ms), spread over the whole range: every
        // tenth of it is hit (a tenth missed by chance: 0.9^1000, about
        // 1e-46), so a constant or a narrowed jitter fails.
        let max = REKEY_TIMEOUT_JITTER_MAX.as_nanos();
        let mut tenths = [0u32; 10];
        for _ in 0..1000 {
            let j = jitter(&mut r).as_nanos();
            assert!(j < max, "{j} ns");
            tenths[(j * 10 / max) as usize] += 1;
        }
        assert!(tenths.iter().all(|&n| n > 0), "{tenths:?}");
    }

    #[test]
    fn keepalive_after_data_received_and_cancelled_by_send() {
        let mut t = Timers::new(None);
        let t0 = Instant::from_secs(100);
        t.data_received(t0);
        assert_eq!(t.next_deadline(), Some(t0 + KEEPALIVE_TIMEOUT));
        assert_eq!(
            t.poll(Instant::from_millis(109_999)),
            TimerActions::default()
        );
        let a = t.poll(t0 + KEEPALIVE_TIMEOUT);
        assert!(a.send_keepalive);
        assert_eq!(t.next_deadline(), None);
        // Received again, then we send something ourselves: no keepalive.
        t.data_received(t0 + Duration::from_secs(20));
        t.any_authenticated_packet_sent();
        assert_eq!(t.next_deadline(), None);
        // Two receptions while armed: a second keepalive follows the first.
        t.data_received(t0 + Duration::from_secs(30));
        t.data_received(t0 + Duration::from_secs(31));
        assert!(t.poll(t0 + Duration::from_secs(40)).send_keepalive);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(50)));
    }

    #[test]
    fn new_handshake_when_sent_data_gets_no_answer() {
        let mut t = Timers::new(None);
        let mut r = rng();
        let t0 = Instant::from_secs(5);
        t.data_sent(t0, &mut r);
        let d = t.next_deadline().expect("armed");
        assert!(d >= t0 + Duration::from_secs(15) && d < t0 + Duration::from_millis(15_333));
        // Answer received: cancelled.
        t.any_authenticated_packet_received();
        assert_eq!(t.next_deadline(), None);
        t.data_sent(t0, &mut r);
        let d = t.next_deadline().expect("armed");
        let a = t.poll(d);
        assert_eq!(a.send_initiation, Some(InitiationReason::NewHandshake));
        assert!(a.data_unanswered);
    }

    #[test]
    fn retransmits_then_gives_up_after_rekey_attempt_time() {
        let mut t = Timers::new(None);
        let mut r = rng();
        let mut now = Instant::from_secs(1000);
        assert!(t.begin_initiation(now, false));
        t.initiation_sent(now, &mut r);
        assert!(!t.begin_initiation(now + Duration::from_secs(4), false));
        let mut retries = 0;
        loop {
            let d = t.next_deadline().expect("retransmit armed");
            assert!(d >= now + REKEY_TIMEOUT && d < now + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
            now = d;
            let a = t.poll(now);
            if a.gave_up {
                break;
            }
            assert_eq!(a.send_initiation, Some(InitiationReason::Retransmit));
            assert!(t.begin_initiation(now, true));
            t.initiation_sent(now, &mut r);
            retries += 1;
        }
        // The kernel sends MAX_TIMER_HANDSHAKES + 2 initiations in all.
        assert_eq!(retries, MAX_TIMER_HANDSHAKES + 1);
        assert!(now - Instant::from_secs(1000) >= REKEY_ATTEMPT_TIME);
        // After giving up, the residue is wiped 3 x REJECT_AFTER_TIME later.
        assert_eq!(t.next_deadline(), Some(now + ZERO_KEY_MATERIAL_AFTER));
        assert!(t.poll(now + ZERO_KEY_MATERIAL_AFTER).zero_key_material);
    }

    #[test]
    fn handshake_complete_stops_retransmission_and_zeroing_is_armed() {
        let mut t = Timers::new(None);
        let mut r = rng();
        let now = Instant::from_secs(1);
        t.initiation_sent(now, &mut r);
        t.handshake_complete();
        t.session_derived(now);
        assert_eq!(t.next_deadline(), Some(now + ZERO_KEY_MATERIAL_AFTER));
        assert_eq!(t.handshake_attempts(), 0);
    }

    #[test]
    fn persistent_keepalive() {
        let mut t = Timers::new(Some(Duration::from_secs(25)));
        let now = Instant::from_secs(3);
        t.any_authenticated_packet_traversal(now);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(25)));
        assert!(t.poll(now + Duration::from_secs(25)).send_keepalive);
        t.set_persistent_keepalive(None, now);
        t.any_authenticated_packet_traversal(now);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn persistent_keepalive_starts_by_itself_at_creation_and_when_turned_on() {
        // Created with an interval and no traffic: due at the first poll.
        let mut t = Timers::new(Some(Duration::from_secs(2)));
        let start = Instant::from_secs(7);
        assert!(t.next_deadline().is_some_and(|d| d <= start));
        let a = t.poll(start);
        assert!(a.send_keepalive, "{a:?}");
        assert_eq!(t.next_deadline(), None, "re-armed by the packet it causes");
        // Without an interval nothing is due.
        let mut off = Timers::new(None);
        assert_eq!(off.next_deadline(), None);
        // 0 -> N: due at once.
        let on = Instant::from_secs(50);
        off.set_persistent_keepalive(Some(Duration::from_secs(25)), on);
        assert_eq!(off.next_deadline(), Some(on));
        assert!(off.poll(on).send_keepalive);
        // N -> M keeps the running interval's deadline (no extra keepalive).
        off.any_authenticated_packet_traversal(on);
        off.set_persistent_keepalive(Some(Duration::from_secs(10)), on + Duration::from_secs(1));
        assert_eq!(off.next_deadline(), Some(on + Duration::from_secs(25)));
        // N -> 0: nothing due.
        off.set_persistent_keepalive(Some(Duration::ZERO), on);
        assert_eq!(off.next_deadline(), None);
    }

    #[test]
    fn no_initiation_within_rekey_timeout_after_sending_a_response() {
        let mut t = Timers::new(None);
        let now = Instant::from_secs(1000);
        t.response_sent(now);
        assert!(!t.begin_initiation(now, false), "right after the response");
        assert!(!t.begin_initiation(now + REKEY_TIMEOUT - Duration::from_millis(1), false));
        assert!(
            t.begin_initiation(now + REKEY_TIMEOUT, false),
            "REKEY_TIMEOUT later"
        );
        // The response is an authenticated packet: no keepalive owed.
        t.data_received(now);
        t.response_sent(now);
        assert_eq!(t.next_deadline(), None);
    }
}
