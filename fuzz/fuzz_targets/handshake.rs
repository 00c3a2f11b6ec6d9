//! The handshake responder fed arbitrary messages from arbitrary sources,
//! under load or not (wgdp_fuzz::responder mirrors the control thread's
//! dispatch).
//!
//! Input: `flags`, `backlog`, `time`, a 6-byte source, then
//! - raw mode (flags bit 0): the message itself. With bit 6, wgdp first
//!   initiates to peer 0 (index 0x100), so responses and cookie replies
//!   reach `consume_response` and the cookie-reply consumer.
//! - structured mode: a valid initiation from the initiator of bits 4-5 is
//!   built, then mutated by (offset, xor) pairs; with bit 7 the first pair
//!   mutates the cookie reply instead.
//!
//! With bit 3 the MACs are recomputed after mutation, so corrupted fields
//! reach the Noise layer. Checked: nothing panics; an initiation is
//! answered only if its ephemeral, static and timestamp fields are the
//! initiator's own; a valid initiation from a configured peer is always
//! answered (after a cookie round trip under load) and its response
//! completes the handshake with keys that interoperate; a stranger or a
//! wrong pre-shared key never completes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::messages::{field, INITIATION_LEN, RESPONSE_LEN};
use protocol::noise::PeerHandshake;
use protocol::time::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use wgdp_fuzz::input::Reader;
use wgdp_fuzz::responder::{
    fix_macs, keys, timestamp, Initiator, Outcome, Responder, OWN_INITIATION_INDEX, QUEUE_CAPACITY,
    RNG_SEED,
};

const RAW: u8 = 1;
const V6: u8 = 1 << 1;
const LOADED: u8 = 1 << 2;
const FIX_MACS: u8 = 1 << 3;
const WE_INITIATE: u8 = 1 << 6;
const MUTATE_COOKIE: u8 = 1 << 7;

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let flags = input.u8();
    let backlog = usize::from(input.u8()) * 16;
    let now = Instant::from_millis(10_000 + u64::from(input.u8()) * 20);
    let src = input.source(flags & V6 != 0);
    let mut responder = Responder::new();
    let under_load = flags & LOADED != 0 || responder.load.under_load(backlog, QUEUE_CAPACITY, now);
    let to = *keys().responder.public_key();

    if flags & RAW != 0 {
        if flags & WE_INITIATE != 0 {
            responder.initiate(0, OWN_INITIATION_INDEX, now);
        }
        let mut msg = input.rest().to_vec();
        if flags & FIX_MACS != 0 {
            fix_macs(&mut msg, &to, now);
        }
        let _ = responder.handle(&msg, src, under_load, now);
        return;
    }

    let who = Initiator::from_bits(flags >> 4);
    let mut initiator = PeerHandshake::new(to, who.psk());
    let mut rng = ChaCha20Rng::seed_from_u64(RNG_SEED ^ 1);
    let mut msg = initiator
        .create_initiation(who.identity(), 0x1000, timestamp(0), now, &mut rng)
        .unwrap_or_else(|e| panic!("initiation: {e}"));
    let original = msg;
    let cookie_mutation = (flags & MUTATE_COOKIE != 0).then(|| (input.u8(), input.u8()));
    while !input.is_empty() {
        let (at, xor) = (usize::from(input.u8()) % INITIATION_LEN, input.u8());
        msg[at] ^= xor;
    }
    if flags & FIX_MACS != 0 {
        fix_macs(&mut msg, &to, now);
    }
    let authenticated = field::initiation::EPHEMERAL.start..field::initiation::MAC1.start;
    let noise_intact = msg[authenticated.clone()] == original[authenticated];
    // The sender index is covered by mac1 only: a recomputed mac1 lets a
    // changed one through, and the response then answers another index.
    let sender_intact = msg[field::initiation::SENDER] == original[field::initiation::SENDER];
    // Untouched apart from MACs recomputed the way the initiator does.
    let pristine = msg == original;
    let mac1_intact = msg[field::initiation::MAC1] == original[field::initiation::MAC1];

    let mut outcome = responder.handle(&msg, src, under_load, now);
    // Whether the answer is to a second, unmutated initiation.
    let mut fresh = false;
    if let Outcome::Cookie(mut reply) = outcome {
        assert!(under_load, "a cookie reply when not under load");
        let mut reply_intact = true;
        if let Some((at, xor)) = cookie_mutation {
            let at = usize::from(at) % reply.len();
            reply[at] ^= xor;
            // The receiver index only routes the reply: not authenticated.
            reply_intact = xor == 0 || field::cookie_reply::RECEIVER.contains(&at);
        }
        let consumed = initiator.consume_cookie_reply(&reply, now).is_ok();
        // The reply is sealed to the mac1 the responder received.
        assert_eq!(
            consumed,
            reply_intact && mac1_intact,
            "cookie reply consumed: {consumed}, intact: {reply_intact}, mac1 intact: {mac1_intact}"
        );
        if !consumed {
            return;
        }
        // Again, now with mac2 from the cookie.
        let later = now + core::time::Duration::from_millis(25);
        let again = initiator
            .create_initiation(who.identity(), 0x1001, timestamp(1), later, &mut rng)
            .unwrap_or_else(|e| panic!("initiation: {e}"));
        outcome = responder.handle(&again, src, under_load, later);
        fresh = true;
        if noise_intact && who.is_valid() {
            assert!(
                matches!(outcome, Outcome::Responded { .. }),
                "an initiation with a valid cookie was refused: {outcome:?}"
            );
        }
    } else if pristine && who.is_valid() {
        assert!(
            matches!(outcome, Outcome::Responded { .. }),
            "a valid initiation was refused: {outcome:?}"
        );
    }
    if let Outcome::Responded {
        response,
        mut keypair,
        ..
    } = outcome
    {
        assert!(
            who != Initiator::Stranger,
            "answered an initiation from an unknown key"
        );
        assert!(
            fresh || noise_intact,
            "answered an initiation whose encrypted fields were altered"
        );
        let completed = initiator.consume_response(who.identity(), &response, now);
        match (who.is_valid() && (fresh || sender_intact), completed) {
            (true, Ok(mut ours)) => {
                let mut packet = [0u8; 48];
                packet[16..32].copy_from_slice(b"sixteen bytes!!!");
                ours.seal_message(now, &mut packet)
                    .unwrap_or_else(|e| panic!("seal: {e}"));
                let plain = keypair
                    .open_message(now, &mut packet)
                    .unwrap_or_else(|e| panic!("the responder's keys do not open ours: {e}"));
                assert_eq!(plain, b"sixteen bytes!!!");
            }
            (true, Err(e)) => panic!("a valid response did not complete: {e}"),
            (false, Ok(_)) => panic!("a handshake completed with the wrong key, PSK or index"),
            (false, Err(_)) => {}
        }
        assert_eq!(response.len(), RESPONSE_LEN);
    }
});
