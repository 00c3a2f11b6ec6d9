//! Two peers driven in memory with virtual time: handshakes, data, rekeys,
//! expiry, loss, duplication and reordering, simultaneous initiation, key
//! mismatches, replay, cookies under load, timers.

mod common;

use std::time::Duration;

use common::{unpad, Dropped, Pair};
use protocol::constants::{
    KEEPALIVE_TIMEOUT, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_AFTER_MESSAGES,
    REKEY_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX,
    ZERO_KEY_MATERIAL_AFTER,
};
use protocol::cookie::CookieError;
use protocol::messages::{Message, DATA_HEADER_LEN};
use protocol::noise::{HandshakeError, HandshakeState};
use protocol::replay::ReplayError;
use protocol::session::SessionError;
use protocol::time::Instant;
use protocol::transport::OpenError;

fn established() -> Pair {
    let mut p = Pair::new();
    p.handshake();
    p
}

#[test]
fn handshake_confirms_keys_with_a_keepalive() {
    let mut p = Pair::new();
    p.handshake();
    // Initiator: current at once. Responder: promoted by the keepalive.
    let a_kp = p.a.session.current().expect("a current");
    let b_kp = p.b.session.current().expect("b current (promoted)");
    assert!(a_kp.is_initiator() && !b_kp.is_initiator());
    assert_eq!(a_kp.remote_index(), b_kp.local_index());
    assert_eq!(b_kp.remote_index(), a_kp.local_index());
    // The caller's index allocator chose the indexes (owner lcore 3).
    assert_eq!(a_kp.local_index() & 0xff, 3);
    assert!(p.b.session.next().is_none());
    assert_eq!(p.b.keepalives_received, 1);
    assert!(matches!(p.a.hs.state(), HandshakeState::Zeroed));
    assert!(matches!(p.b.hs.state(), HandshakeState::Zeroed));
    assert!(p.a.drops.is_empty() && p.b.drops.is_empty());
}

#[test]
fn data_both_ways() {
    let mut p = established();
    for i in 0..50u8 {
        p.a_sends(&[i; 100]);
        p.b_sends(&[i ^ 0xff; 1400]);
    }
    p.deliver_all();
    assert_eq!(p.b.delivered.len(), 50);
    assert_eq!(p.a.delivered.len(), 50);
    for (i, d) in p.b.delivered.iter().enumerate() {
        assert_eq!(unpad(d, 100), &[i as u8; 100][..]);
    }
    for (i, d) in p.a.delivered.iter().enumerate() {
        assert_eq!(unpad(d, 1400), &[i as u8 ^ 0xff; 1400][..]);
    }
    assert_eq!(p.a.session.current().map(|k| k.sending_counter()), Some(51));
}

#[test]
fn data_before_handshake_is_staged_and_flushed() {
    let mut p = Pair::new();
    p.a_sends(b"early packet");
    assert_eq!(p.a.staged.len(), 1);
    p.deliver_all();
    assert!(p.a.staged.is_empty());
    assert_eq!(unpad(&p.b.delivered[0], 12), b"early packet");
    // The staged data confirmed the key: no keepalive was needed.
    assert_eq!(p.b.keepalives_received, 0);
}

#[test]
fn padding_to_multiple_of_16() {
    let mut p = established();
    p.a_sends(&[0xab]);
    assert_eq!(p.to_b[0].len(), DATA_HEADER_LEN + 16 + 16);
    p.a_sends(&[0xab; 33]);
    assert_eq!(p.to_b[1].len(), DATA_HEADER_LEN + 48 + 16);
    p.deliver_all();
    assert_eq!(p.b.delivered[0].len(), 16);
    assert_eq!(unpad(&p.b.delivered[0], 1), &[0xab]);
    assert_eq!(p.b.delivered[1].len(), 48);
}

#[test]
fn rekey_after_rekey_after_time() {
    let mut p = established();
    let first = p.a.session.current().expect("kp").local_index();
    p.advance(REKEY_AFTER_TIME - Duration::from_millis(1));
    p.a_sends(b"still fresh");
    assert_eq!(p.to_b.len(), 1, "no initiation before 120 s");
    p.deliver_all();
    // The responder never rekeys on time alone.
    p.advance(Duration::from_secs(1));
    p.b_sends(b"responder at 120 s");
    assert_eq!(p.to_a.len(), 1);
    p.deliver_all();
    p.a_sends(b"initiator at 120 s");
    assert_eq!(p.to_b.len(), 2, "data + initiation");
    p.deliver_all();
    let current = p.a.session.current().expect("kp");
    assert_ne!(current.local_index(), first);
    assert_eq!(p.a.session.previous().map(|k| k.local_index()), Some(first));
    assert_eq!(
        p.b.session.current().map(|k| k.remote_index()),
        Some(current.local_index())
    );
    p.b_sends(b"on the new key");
    p.deliver_all();
    assert_eq!(
        unpad(p.a.delivered.last().expect("got"), 14),
        b"on the new key"
    );
}

#[test]
fn rekey_after_rekey_after_messages() {
    let mut p = established();
    // The responder rekeys on the message limit too.
    p.b.session
        .current_mut()
        .expect("kp")
        .set_sending_counter(REKEY_AFTER_MESSAGES - 1);
    p.b_sends(b"at the limit");
    assert_eq!(p.to_a.len(), 1);
    p.b_sends(b"past the limit");
    assert_eq!(p.to_a.len(), 3, "data + initiation");
    p.deliver_all();
    assert!(p.b.session.current().expect("kp").is_initiator());
    assert_eq!(p.b.session.current().expect("kp").sending_counter(), 1);
    assert_eq!(p.a.delivered.len(), 2);
}

#[test]
fn reject_after_messages() {
    let mut p = established();
    p.a.session
        .current_mut()
        .expect("kp")
        .set_sending_counter(REJECT_AFTER_MESSAGES - 1);
    p.advance(REKEY_TIMEOUT);
    // The last usable counter is sent (and, being past REKEY_AFTER_MESSAGES,
    // starts a handshake); the receiver accepts it.
    p.a_sends(b"last");
    assert_eq!(p.to_b.len(), 2, "data + initiation");
    // Nothing more can be sealed with that keypair: the packet is staged.
    p.a_sends(b"one too many");
    assert_eq!(p.to_b.len(), 2);
    assert_eq!(p.a.staged.len(), 1, "staged for the new session");
    p.deliver_all();
    assert_eq!(unpad(&p.b.delivered[0], 4), b"last");
    assert_eq!(unpad(&p.b.delivered[1], 12), b"one too many");
    assert_eq!(p.a.session.current().expect("kp").sending_counter(), 1);
}

#[test]
fn reject_after_time() {
    let mut p = established();
    // Sealed just before expiry, delivered at expiry: refused.
    p.advance(REJECT_AFTER_TIME - Duration::from_millis(1));
    let mut msg = vec![0u8; 16 + 16 + 16];
    p.b.session
        .seal_message(p.now, &mut msg)
        .expect("still valid");
    p.advance(Duration::from_millis(1));
    let err =
        p.a.session
            .open_message(p.now, &mut msg)
            .expect_err("expired");
    assert_eq!(err, SessionError::Open(OpenError::Expired));
    // Sending at expiry needs a new session.
    assert_eq!(
        p.b.session
            .seal_message(p.now, &mut msg)
            .expect_err("expired"),
        SessionError::NoKeypair
    );
    assert!(p.b.session.wants_rekey_on_send(p.now));
}

#[test]
fn initiator_rekeys_once_on_receive_after_165_s() {
    let mut p = established();
    p.advance(Duration::from_secs(165));
    p.b_sends(b"x");
    p.b_sends(b"y");
    let to_a = std::mem::take(&mut p.to_a);
    let mut initiations = 0;
    for pkt in to_a {
        for out in p.a.receive(p.now, p.b.addr, &pkt) {
            if matches!(Message::parse(&out), Ok(Message::Initiation(_))) {
                initiations += 1;
            }
            p.to_b.push(out);
        }
    }
    assert_eq!(initiations, 1, "exactly once");
    p.deliver_all();
    assert_eq!(p.a.session.current().expect("kp").birth(), p.now);
}

#[test]
fn lost_initiation_is_retransmitted() {
    let mut p = Pair::new();
    p.a_sends(b"payload");
    assert_eq!(p.to_b.len(), 1);
    p.to_b.clear(); // lost
    let t0 = p.now;
    p.run_until(t0 + Duration::from_secs(6));
    assert_eq!(p.a.initiations_sent, 2);
    let retry_at = p.b.session.current().expect("b has session").birth();
    assert!(
        retry_at >= t0 + REKEY_TIMEOUT && retry_at < t0 + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX
    );
    assert_eq!(unpad(&p.b.delivered[0], 7), b"payload");
}

#[test]
fn lost_response_is_recovered_by_retransmission() {
    let mut p = Pair::new();
    p.a_sends(b"payload");
    p.deliver_to_b();
    p.to_a.clear(); // response lost
    assert!(p.b.session.next().is_some());
    p.run_until(p.now + Duration::from_secs(6));
    assert_eq!(p.a.initiations_sent, 2);
    assert!(p.a.session.current().is_some());
    assert_eq!(p.b.delivered.len(), 1);
}

#[test]
fn duplicated_handshake_messages_are_harmless() {
    let mut p = Pair::new();
    let init = p.a.initiate(p.now, false).remove(0);
    let resp = p.b.receive(p.now, p.a.addr, &init).remove(0);
    // Duplicate initiation: same timestamp, rejected as a replay.
    p.advance(Duration::from_millis(30));
    assert!(p.b.receive(p.now, p.a.addr, &init).is_empty());
    assert_eq!(
        p.b.drops.last(),
        Some(&Dropped::Handshake(HandshakeError::Replay))
    );
    let confirm = p.a.receive(p.now, p.b.addr, &resp);
    assert_eq!(confirm.len(), 1);
    // Duplicate response: no initiation outstanding any more.
    assert!(p.a.receive(p.now, p.b.addr, &resp).is_empty());
    assert_eq!(
        p.a.drops.last(),
        Some(&Dropped::Handshake(HandshakeError::UnexpectedState))
    );
    // Duplicate confirmation keepalive: replay window.
    p.b.receive(p.now, p.a.addr, &confirm[0]);
    p.b.receive(p.now, p.a.addr, &confirm[0]);
    assert_eq!(
        p.b.drops.last(),
        Some(&Dropped::Session(SessionError::Open(OpenError::Replay(
            ReplayError::Replayed
        ))))
    );
    assert!(p.b.session.current().is_some());
}

#[test]
fn reordered_initiations_only_newest_counts() {
    let mut p = Pair::new();
    let first = p.a.initiate(p.now, false).remove(0);
    p.advance(REKEY_TIMEOUT);
    let second = p.a.initiate(p.now, true).remove(0);
    // The newer one arrives first and is answered.
    let resp2 = p.b.receive(p.now, p.a.addr, &second);
    assert_eq!(resp2.len(), 1);
    // The older one arrives later: its timestamp is older, replay.
    p.advance(Duration::from_millis(50));
    assert!(p.b.receive(p.now, p.a.addr, &first).is_empty());
    assert_eq!(
        p.b.drops.last(),
        Some(&Dropped::Handshake(HandshakeError::Replay))
    );
    let out = p.a.receive(p.now, p.b.addr, &resp2[0]);
    assert_eq!(out.len(), 1);
    p.b.receive(p.now, p.a.addr, &out[0]);
    assert!(p.b.session.current().is_some());
}

#[test]
fn response_to_an_older_initiation_is_refused() {
    let mut p = Pair::new();
    let first = p.a.initiate(p.now, false).remove(0);
    let resp1 = p.b.receive(p.now, p.a.addr, &first).remove(0);
    p.advance(REKEY_TIMEOUT);
    let _second = p.a.initiate(p.now, true).remove(0);
    assert!(p.a.receive(p.now, p.b.addr, &resp1).is_empty());
    assert!(matches!(
        p.a.drops.last(),
        Some(Dropped::Handshake(HandshakeError::IndexMismatch { .. }))
    ));
}

#[test]
fn simultaneous_initiation_converges() {
    let mut p = Pair::new();
    p.a_sends(b"from a");
    p.b_sends(b"from b");
    assert_eq!((p.to_b.len(), p.to_a.len()), (1, 1));
    p.run_until(p.now + Duration::from_secs(30));
    assert!(p.a.session.current().is_some() && p.b.session.current().is_some());
    assert_eq!(unpad(&p.b.delivered[0], 6), b"from a");
    assert_eq!(unpad(&p.a.delivered[0], 6), b"from b");
    p.a_sends(b"after");
    p.b_sends(b"after");
    p.deliver_all();
    assert_eq!(p.a.delivered.len(), 2);
    assert_eq!(p.b.delivered.len(), 2);
}

#[test]
fn psk_mismatch_fails_at_the_response() {
    let mut p = Pair::with_psks(Some([1u8; 32]), Some([2u8; 32]));
    p.handshake();
    assert!(p.a.session.current().is_none());
    assert_eq!(
        p.a.drops,
        vec![Dropped::Handshake(HandshakeError::Decryption)]
    );
    // One side with a PSK, one without, fails the same way.
    let mut p = Pair::with_psks(None, Some([2u8; 32]));
    p.handshake();
    assert_eq!(
        p.a.drops,
        vec![Dropped::Handshake(HandshakeError::Decryption)]
    );
    // No PSK on either side works.
    let mut p = Pair::with_psks(None, None);
    p.handshake();
    assert!(p.b.session.current().is_some());
}

#[test]
fn wrong_static_keys_fail() {
    use common::{key, Node};
    // a believes b's key is someone else's: mac1 is wrong for b.
    let mut a = Node::new("a", 1, key(9).public_key(), None, "192.0.2.1:1");
    let mut b = Node::new("b", 2, key(1).public_key(), None, "192.0.2.2:1");
    let now = Instant::from_secs(1);
    let init = a.initiate(now, false).remove(0);
    assert!(b.receive(now, a.addr, &init).is_empty());
    assert_eq!(b.drops, vec![Dropped::Cookie(CookieError::InvalidMac1)]);
    // b does not know a (expects key 8): the decrypted static finds no peer.
    let mut a = Node::new("a", 1, key(2).public_key(), None, "192.0.2.1:1");
    let mut b = Node::new("b", 2, key(8).public_key(), None, "192.0.2.2:1");
    let init = a.initiate(now, false).remove(0);
    assert!(b.receive(now, a.addr, &init).is_empty());
    assert_eq!(b.drops, vec![Dropped::UnknownPeer]);
    // And the handshake layer refuses a pending initiation of another peer.
    let pending = b.identity.open_initiation(&init).expect("decrypts");
    assert_eq!(
        b.hs.consume_initiation(pending, now),
        Err(HandshakeError::WrongPeer)
    );
    // An initiation tampered after mac1 was computed... fails mac1.
    let mut bad = init.clone();
    bad[50] ^= 1;
    assert!(b.receive(now, a.addr, &bad).is_empty());
    assert_eq!(
        b.drops.last(),
        Some(&Dropped::Cookie(CookieError::InvalidMac1))
    );
}

#[test]
fn replayed_initiation_and_flood_rejected() {
    let mut p = Pair::new();
    let init = p.a.initiate(p.now, false).remove(0);
    p.to_b.push(init.clone());
    p.deliver_all();
    assert!(p.b.session.current().is_some());
    let b_current = p.b.session.current().expect("kp").local_index();
    // A captured initiation replayed later: refused, session untouched.
    p.advance(Duration::from_secs(30));
    assert!(p.b.receive(p.now, p.a.addr, &init).is_empty());
    assert_eq!(
        p.b.drops.last(),
        Some(&Dropped::Handshake(HandshakeError::Replay))
    );
    assert_eq!(p.b.session.current().expect("kp").local_index(), b_current);
    assert!(p.b.session.next().is_none());
    // Two genuine initiations within 20 ms: the second is a flood.
    p.a.timers = protocol::timers::Timers::new(None);
    let i1 = p.a.initiate(p.now, false).remove(0);
    p.advance(Duration::from_millis(10));
    p.a.timers = protocol::timers::Timers::new(None);
    let i2 = p.a.initiate(p.now, false).remove(0);
    assert_eq!(p.b.receive(p.now, p.a.addr, &i1).len(), 1);
    assert!(p.b.receive(p.now, p.a.addr, &i2).is_empty());
    assert_eq!(
        p.b.drops.last(),
        Some(&Dropped::Handshake(HandshakeError::Flood))
    );
}

#[test]
fn cookie_round_trip_under_load() {
    let mut p = Pair::new();
    p.b.force_under_load = true;
    let init = p.a.initiate(p.now, false).remove(0);
    let reply = p.b.receive(p.now, p.a.addr, &init);
    assert_eq!(reply.len(), 1);
    assert!(matches!(
        Message::parse(&reply[0]),
        Ok(Message::CookieReply(_))
    ));
    assert!(p.b.session.next().is_none(), "not processed");
    // A forged reply is refused; the genuine one is taken.
    let mut forged = reply[0].clone();
    forged[40] ^= 1;
    assert!(p.a.receive(p.now, p.b.addr, &forged).is_empty());
    assert_eq!(
        p.a.drops.last(),
        Some(&Dropped::Cookie(CookieError::Decryption))
    );
    let drops = p.a.drops.len();
    assert!(p.a.receive(p.now, p.b.addr, &reply[0]).is_empty());
    assert_eq!(p.a.drops.len(), drops, "the genuine reply is accepted");
    // The retransmission carries mac2 and gets through.
    p.run_until(p.now + Duration::from_secs(6));
    assert!(p.a.session.current().is_some());
    assert!(p.b.session.current().is_some());
    // The cookie is bound to the address and port it was issued to: the
    // same initiation from another port, or from another address with the
    // same port, gets a cookie reply; from the real source it is answered.
    let mut other_port = p.a.addr;
    other_port.set_port(1);
    let mut other_address = p.a.addr;
    other_address.set_ip("192.0.2.77".parse().expect("literal"));
    p.advance(Duration::from_secs(10));
    p.a.timers = protocol::timers::Timers::new(None);
    let init = p.a.initiate(p.now, false).remove(0);
    for stranger in [other_port, other_address] {
        let out = p.b.receive(p.now, stranger, &init);
        assert_eq!(out.len(), 1, "from {stranger}");
        assert!(
            matches!(Message::parse(&out[0]), Ok(Message::CookieReply(_))),
            "from {stranger}"
        );
    }
    let out = p.b.receive(p.now, p.a.addr, &init);
    assert_eq!(out.len(), 1);
    assert!(matches!(Message::parse(&out[0]), Ok(Message::Response(_))));
}

#[test]
fn rate_limited_under_load_with_valid_cookie() {
    let mut p = Pair::new();
    p.b.force_under_load = true;
    let init = p.a.initiate(p.now, false).remove(0);
    let reply = p.b.receive(p.now, p.a.addr, &init).remove(0);
    p.a.receive(p.now, p.b.addr, &reply);
    // Burst of valid-mac2 initiations from one source: 5 pass the limiter
    // (the handshake layer may still refuse them), the rest are dropped.
    let mut limited = 0;
    for _ in 0..10 {
        p.a.timers = protocol::timers::Timers::new(None);
        let init = p.a.initiate(p.now, false).remove(0);
        p.b.receive(p.now, p.a.addr, &init);
        if p.b.drops.last() == Some(&Dropped::Cookie(CookieError::RateLimited)) {
            limited += 1;
        }
    }
    assert_eq!(limited, 5);
}

#[test]
fn keepalive_fires_after_keepalive_timeout() {
    let mut p = established();
    let t0 = p.now;
    p.a_sends(b"ping");
    p.deliver_all();
    // b has nothing to send: a keepalive at exactly t0 + 10 s.
    assert_eq!(p.b.timers.next_deadline(), Some(t0 + KEEPALIVE_TIMEOUT));
    let before = p.a.keepalives_received;
    p.run_until(t0 + KEEPALIVE_TIMEOUT - Duration::from_millis(1));
    assert_eq!(p.a.keepalives_received, before);
    p.run_until(t0 + KEEPALIVE_TIMEOUT);
    assert_eq!(p.a.keepalives_received, before + 1);
}

#[test]
fn unanswered_data_triggers_new_handshake() {
    let mut p = established();
    let t0 = p.now;
    p.a_sends(b"into the void");
    p.to_b.clear();
    let d = p.a.timers.next_deadline().expect("new_handshake armed");
    assert!(d >= t0 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
    assert!(d < t0 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
    let sent = p.a.initiations_sent;
    p.run_until(d);
    assert_eq!(p.a.initiations_sent, sent + 1);
}

#[test]
fn handshake_gives_up_after_rekey_attempt_time() {
    let mut p = Pair::new();
    p.a_sends(b"lost forever");
    let t0 = p.now;
    // Drop everything a sends.
    while p.now < t0 + REKEY_ATTEMPT_TIME + Duration::from_secs(20) {
        p.to_b.clear();
        let Some(d) = p.a.timers.next_deadline() else {
            break;
        };
        p.now = d;
        p.tick();
    }
    p.to_b.clear();
    assert_eq!(p.a.initiations_sent, 20);
    assert!(p.a.staged.is_empty(), "staged packets purged");
}

#[test]
fn key_material_zeroed_after_three_reject_after_time() {
    let mut p = established();
    let derived = p.now;
    // Keep nothing going; the zero timer is the last one standing.
    p.run_until(derived + ZERO_KEY_MATERIAL_AFTER - Duration::from_millis(1));
    assert!(p.a.session.current().is_some());
    p.run_until(derived + ZERO_KEY_MATERIAL_AFTER);
    assert!(p.a.session.current().is_none());
    assert!(p.b.session.current().is_none());
    assert!(p.a.session.previous().is_none() && p.a.session.next().is_none());
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let mut p = established();
    let now = p.now;
    let src = p.a.addr;
    let current = p.b.session.current().map(|k| k.local_index());
    assert!(current.is_some());
    let (delivered, keepalives, drops) = (
        p.b.delivered.len(),
        p.b.keepalives_received,
        p.b.drops.len(),
    );
    let mut sent = 0usize;
    for len in [0usize, 1, 3, 4, 31, 32, 63, 64, 91, 92, 147, 148, 200] {
        for ty in 0u8..6 {
            let mut pkt = vec![0x5au8; len];
            if len > 0 {
                pkt[0] = ty;
            }
            if len >= 4 {
                pkt[1..4].fill(0);
            }
            let what = format!("type {ty}, {len} bytes");
            // Nothing is sent back, and the packet is counted as dropped,
            // exactly once.
            let before = p.b.drops.len();
            assert_eq!(p.b.receive(now, src, &pkt), Vec::<Vec<u8>>::new(), "{what}");
            sent += 1;
            assert_eq!(p.b.drops.len(), before + 1, "{what}: {:?}", p.b.drops);
            // Each step refuses it with an error.
            assert!(p.b.identity.open_initiation(&pkt).is_err(), "{what}");
            assert!(
                p.b.hs.consume_response(&p.b.identity, &pkt, now).is_err(),
                "{what}"
            );
            assert!(p.b.hs.consume_cookie_reply(&pkt, now).is_err(), "{what}");
        }
    }
    assert_eq!(p.b.drops.len(), drops + sent);
    assert_eq!(
        (p.b.delivered.len(), p.b.keepalives_received),
        (delivered, keepalives)
    );
    // The session is untouched.
    assert_eq!(p.b.session.current().map(|k| k.local_index()), current);
}
