//! Data messages (type 4) into a session, as the dataplane's decap path
//! opens them in place (`Session::open_message`): replay window, receiver
//! index, expiry, authentication, promotion of the `next` keypair.
//!
//! Input: `flags`, an 8-byte send counter, `age` (seconds), an (offset,
//! xor) mutation, then the plaintext. Raw mode (flags bit 0): the rest is
//! the message itself. Otherwise the plaintext is padded and sealed by the
//! peer's keypair starting at the fuzzed counter, mutated, and opened.
//! Checked: nothing panics; a message opens if and only if it was not
//! altered; the opened plaintext is what was sealed; the same message
//! never opens twice (replay); arbitrary bytes never open.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use protocol::messages::{padded_len, DATA_HEADER_LEN};
use protocol::session::{Session, SessionError};
use protocol::time::Instant;
use protocol::transport::{Keypair, OpenError};
use wgdp_fuzz::input::Reader;

const SEND: [u8; 32] = [0x11; 32];
const RECV: [u8; 32] = [0x22; 32];
/// The tunnel MTU the padding is computed for.
const MTU: usize = 1420;

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let flags = input.u8();
    let counter = u64::from_le_bytes(input.array::<8>());
    let now = Instant::from_secs(1000) + Duration::from_secs(u64::from(input.u8()));
    let (at, xor) = (usize::from(input.u16()), input.u8());
    let birth = Instant::from_secs(1000);
    // The peer initiated; we responded: our keypair waits in `next`.
    let mut peer = Keypair::from_raw_keys(RECV, SEND, 0x0201, 0x0102, birth, true);
    let mut session = Session::new();
    session.install(Box::new(Keypair::from_raw_keys(
        SEND, RECV, 0x0102, 0x0201, birth, false,
    )));

    if flags & 1 != 0 {
        let mut msg = input.rest().to_vec();
        let opened = session.open_message(now, &mut msg);
        assert!(opened.is_err(), "arbitrary bytes opened as a data message");
        return;
    }
    let plain = input.rest();
    let len = padded_len(plain.len(), MTU);
    let mut msg = vec![0u8; DATA_HEADER_LEN + len + 16];
    msg[DATA_HEADER_LEN..DATA_HEADER_LEN + plain.len()].copy_from_slice(plain);
    peer.set_sending_counter(counter);
    if peer.seal_message(now, &mut msg).is_err() {
        return; // expired or counter exhausted: nothing is sent
    }
    let sealed = msg.clone();
    let altered = xor != 0;
    msg[at % sealed.len()] ^= xor;
    let opened = session.open_message(now, &mut msg);
    match opened {
        Ok(r) => {
            assert!(!altered, "an altered data message opened");
            assert_eq!(&r.plaintext[..plain.len()], plain);
            assert!(r.plaintext[plain.len()..].iter().all(|&b| b == 0));
            assert!(
                r.promoted.is_some(),
                "the first message did not confirm `next`"
            );
        }
        Err(e) => {
            let expired = now >= birth + protocol::constants::REJECT_AFTER_TIME;
            let too_far = counter >= protocol::constants::REJECT_AFTER_MESSAGES;
            assert!(
                altered || expired || too_far,
                "an intact data message did not open: {e}"
            );
            if !altered {
                return;
            }
        }
    }
    // The intact message again: it opens now if the altered copy was
    // refused, and is a replay if it already opened.
    let mut again = sealed;
    match (altered, session.open_message(now, &mut again)) {
        (true, Ok(r)) => assert_eq!(&r.plaintext[..plain.len()], plain),
        (false, Err(SessionError::Open(OpenError::Replay(_)))) => {}
        // The last counter a keypair may receive retires it.
        (false, Err(SessionError::Open(OpenError::Expired)))
            if counter == protocol::constants::REJECT_AFTER_MESSAGES - 1 => {}
        (true, Err(e)) => panic!("the intact message did not open after an altered copy: {e}"),
        (false, r) => panic!("a data message opened twice or failed oddly: {:?}", r.err()),
    }
});
