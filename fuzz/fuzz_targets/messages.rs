//! WireGuard message parsing (`protocol::messages`), types 1 to 4: the
//! type word, the length check per type, every field of each view, the MAC
//! ranges and the padding rule. Checked: nothing panics; a message parses
//! only with its type's exact length (data: at least header and tag); the
//! MAC ranges exist exactly for well-formed types 1 and 2.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::messages::{
    mac_ranges, padded_len, Message, MessageType, COOKIE_REPLY_LEN, DATA_MIN_LEN, INITIATION_LEN,
    RESPONSE_LEN,
};

fuzz_target!(|data: &[u8]| {
    let kind = MessageType::of(data);
    let parsed = Message::parse(data);
    let macs = mac_ranges(data);
    match parsed {
        Ok(Message::Initiation(m)) => {
            assert_eq!(data.len(), INITIATION_LEN);
            let _ = (m.sender(), m.ephemeral(), m.encrypted_static());
            let _ = (m.encrypted_timestamp(), m.mac1(), m.mac2(), m.as_bytes());
            assert!(macs.is_some());
        }
        Ok(Message::Response(m)) => {
            assert_eq!(data.len(), RESPONSE_LEN);
            let _ = (
                m.sender(),
                m.receiver(),
                m.ephemeral(),
                m.encrypted_nothing(),
            );
            let _ = (m.mac1(), m.mac2());
            assert!(macs.is_some());
        }
        Ok(Message::CookieReply(m)) => {
            assert_eq!(data.len(), COOKIE_REPLY_LEN);
            let _ = (m.receiver(), m.nonce(), m.encrypted_cookie());
            assert!(macs.is_none());
        }
        Ok(Message::Data(m)) => {
            assert!(data.len() >= DATA_MIN_LEN);
            assert_eq!(m.ciphertext_len() + DATA_MIN_LEN, data.len());
            let _ = (m.receiver(), m.counter());
            assert!(macs.is_none());
        }
        Err(_) => assert!(macs.is_none(), "MAC ranges for a malformed message"),
    }
    if parsed.is_ok() {
        assert!(kind.is_ok(), "parsed a message of no known type");
    }
    if let Some((mac1, mac2)) = macs {
        assert!(mac1.end == mac2.start && mac2.end == data.len());
    }
    // The padding rule for this length under a few MTUs.
    for mtu in [0, 1, 16, 1420, usize::from(u16::MAX)] {
        let p = padded_len(data.len(), mtu);
        assert!(p >= data.len());
        assert!(p.is_multiple_of(16) || p == mtu);
    }
});
