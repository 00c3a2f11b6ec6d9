//! Zero-copy views and builders for the four WireGuard messages
//! (whitepaper section 5.4, kernel `messages.h`).
//!
//! Each view wraps any `T: AsRef<[u8]>` (a slice, an array, an mbuf's data)
//! and reads fields at the named ranges of [`field`]; with `T: AsMut<[u8]>`
//! the same view writes them, which is how messages are built. `new_checked`
//! verifies the length and the 32-bit little-endian type word (type byte and
//! three reserved zero bytes) so that the accessors cannot go out of bounds.

use core::ops::Range;

use crate::constants::{
    AEAD_TAG_LEN, COOKIE_LEN, COOKIE_NONCE_LEN, KEY_LEN, MESSAGE_PADDING_MULTIPLE, TIMESTAMP_LEN,
};

/// Length of a handshake initiation (type 1).
pub const INITIATION_LEN: usize = 148;
/// Length of a handshake response (type 2).
pub const RESPONSE_LEN: usize = 92;
/// Length of a cookie reply (type 3).
pub const COOKIE_REPLY_LEN: usize = 64;
/// Length of a transport data message header (type 4): type, receiver, counter.
pub const DATA_HEADER_LEN: usize = 16;
/// Shortest transport data message: header and tag around an empty payload
/// (a keepalive).
pub const DATA_MIN_LEN: usize = DATA_HEADER_LEN + AEAD_TAG_LEN;

/// Named byte ranges of every message field.
pub mod field {
    use core::ops::Range;

    /// Type byte plus three reserved zero bytes, read as a little-endian u32.
    pub const TYPE: Range<usize> = 0..4;

    /// Handshake initiation fields.
    pub mod initiation {
        use core::ops::Range;
        /// Initiator's index (`I_i`).
        pub const SENDER: Range<usize> = 4..8;
        /// Unencrypted ephemeral public key.
        pub const EPHEMERAL: Range<usize> = 8..40;
        /// AEAD of the initiator's static public key, with tag.
        pub const STATIC: Range<usize> = 40..88;
        /// AEAD of the TAI64N timestamp, with tag.
        pub const TIMESTAMP: Range<usize> = 88..116;
        /// mac1.
        pub const MAC1: Range<usize> = 116..132;
        /// mac2.
        pub const MAC2: Range<usize> = 132..148;
    }

    /// Handshake response fields.
    pub mod response {
        use core::ops::Range;
        /// Responder's index (`I_r`).
        pub const SENDER: Range<usize> = 4..8;
        /// Initiator's index, echoed.
        pub const RECEIVER: Range<usize> = 8..12;
        /// Unencrypted ephemeral public key.
        pub const EPHEMERAL: Range<usize> = 12..44;
        /// AEAD of the empty string: just a tag.
        pub const EMPTY: Range<usize> = 44..60;
        /// mac1.
        pub const MAC1: Range<usize> = 60..76;
        /// mac2.
        pub const MAC2: Range<usize> = 76..92;
    }

    /// Cookie reply fields.
    pub mod cookie_reply {
        use core::ops::Range;
        /// Sender index of the message being answered.
        pub const RECEIVER: Range<usize> = 4..8;
        /// XChaCha20 nonce.
        pub const NONCE: Range<usize> = 8..32;
        /// XAEAD of the 16-byte cookie, with tag.
        pub const COOKIE: Range<usize> = 32..64;
    }

    /// Transport data fields.
    pub mod data {
        use core::ops::{Range, RangeFrom};
        /// Receiver's index of the keypair.
        pub const RECEIVER: Range<usize> = 4..8;
        /// Little-endian 64-bit nonce counter.
        pub const COUNTER: Range<usize> = 8..16;
        /// Ciphertext followed by the 16-byte tag.
        pub const PAYLOAD: RangeFrom<usize> = 16..;
    }
}

/// A message could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The buffer is shorter than the four-byte type word.
    #[error("message shorter than its type field ({0} bytes)")]
    Truncated(usize),
    /// The type word is not 1, 2, 3 or 4 (with zero reserved bytes).
    #[error("unknown message type word {0:#010x}")]
    UnknownType(u32),
    /// The type word is valid but not the one this view expects.
    #[error("expected message type {expected}, got {actual}")]
    WrongType {
        /// Type this view parses.
        expected: u32,
        /// Type found in the buffer.
        actual: u32,
    },
    /// The length is wrong for the message type.
    #[error("message type {message_type} has a bad length {actual}")]
    BadLength {
        /// Message type.
        message_type: u32,
        /// Length found.
        actual: usize,
    },
}

/// The four message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MessageType {
    /// Handshake initiation.
    Initiation = 1,
    /// Handshake response.
    Response = 2,
    /// Cookie reply.
    CookieReply = 3,
    /// Transport data.
    Data = 4,
}

impl MessageType {
    /// Reads the type word of `buf`.
    pub fn of(buf: &[u8]) -> Result<Self, MessageError> {
        let word = read_u32(buf, field::TYPE).ok_or(MessageError::Truncated(buf.len()))?;
        match word {
            1 => Ok(MessageType::Initiation),
            2 => Ok(MessageType::Response),
            3 => Ok(MessageType::CookieReply),
            4 => Ok(MessageType::Data),
            other => Err(MessageError::UnknownType(other)),
        }
    }
}

fn read_u32(buf: &[u8], r: Range<usize>) -> Option<u32> {
    buf.get(r)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
}

/// Fixed-size array view of `buf[r]`; `r` has length `N` and lies inside a
/// buffer whose length `new_checked` verified.
fn array<const N: usize>(buf: &[u8], r: Range<usize>) -> &[u8; N] {
    <&[u8; N]>::try_from(&buf[r]).expect("field range inside a length-checked message")
}

fn array_mut<const N: usize>(buf: &mut [u8], r: Range<usize>) -> &mut [u8; N] {
    <&mut [u8; N]>::try_from(&mut buf[r]).expect("field range inside a length-checked message")
}

fn check(buf: &[u8], ty: MessageType, len_ok: bool) -> Result<(), MessageError> {
    let actual = MessageType::of(buf)?;
    if actual != ty {
        return Err(MessageError::WrongType {
            expected: ty as u32,
            actual: actual as u32,
        });
    }
    if !len_ok {
        return Err(MessageError::BadLength {
            message_type: ty as u32,
            actual: buf.len(),
        });
    }
    Ok(())
}

macro_rules! message_view {
    ($(#[$doc:meta])* $name:ident, $ty:expr, $len_ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps `buffer` without checks; accessors panic if it is too short.
            /// Use this to build a message in a buffer of the right length.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wraps `buffer` after checking its type word and length.
            pub fn new_checked(buffer: T) -> Result<Self, MessageError> {
                let b = buffer.as_ref();
                #[allow(clippy::redundant_closure_call)]
                let len_ok = ($len_ok)(b.len());
                check(b, $ty, len_ok)?;
                Ok(Self { buffer })
            }

            /// The underlying buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            /// The message bytes.
            pub fn as_bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            /// Writes the type word (type byte and zero reserved bytes).
            pub fn set_message_type(&mut self) {
                self.buffer.as_mut()[field::TYPE].copy_from_slice(&($ty as u32).to_le_bytes());
            }
        }
    };
}

macro_rules! u32_field {
    ($get:ident, $set:ident, $range:expr, $doc:literal) => {
        #[doc = $doc]
        pub fn $get(&self) -> u32 {
            u32::from_le_bytes(*array::<4>(self.buffer.as_ref(), $range))
        }
    };
    (mut $set:ident, $range:expr, $doc:literal) => {
        #[doc = $doc]
        pub fn $set(&mut self, value: u32) {
            *array_mut::<4>(self.buffer.as_mut(), $range) = value.to_le_bytes();
        }
    };
}

macro_rules! bytes_field {
    ($get:ident, $n:expr, $range:expr, $doc:literal) => {
        #[doc = $doc]
        pub fn $get(&self) -> &[u8; $n] {
            array::<{ $n }>(self.buffer.as_ref(), $range)
        }
    };
    (mut $get:ident, $n:expr, $range:expr, $doc:literal) => {
        #[doc = $doc]
        pub fn $get(&mut self) -> &mut [u8; $n] {
            array_mut::<{ $n }>(self.buffer.as_mut(), $range)
        }
    };
}

message_view!(
    /// Handshake initiation, type 1, 148 bytes (whitepaper section 5.4.2).
    Initiation,
    MessageType::Initiation,
    |len| len == INITIATION_LEN
);

impl<T: AsRef<[u8]>> Initiation<T> {
    u32_field!(
        sender,
        set_sender,
        field::initiation::SENDER,
        "Initiator's index."
    );
    bytes_field!(
        ephemeral,
        KEY_LEN,
        field::initiation::EPHEMERAL,
        "Unencrypted ephemeral."
    );
    bytes_field!(
        encrypted_static,
        KEY_LEN + AEAD_TAG_LEN,
        field::initiation::STATIC,
        "Encrypted static key and tag."
    );
    bytes_field!(
        encrypted_timestamp,
        TIMESTAMP_LEN + AEAD_TAG_LEN,
        field::initiation::TIMESTAMP,
        "Encrypted timestamp and tag."
    );
    bytes_field!(mac1, COOKIE_LEN, field::initiation::MAC1, "mac1.");
    bytes_field!(mac2, COOKIE_LEN, field::initiation::MAC2, "mac2.");
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Initiation<T> {
    u32_field!(
        mut set_sender,
        field::initiation::SENDER,
        "Sets the initiator's index."
    );
    bytes_field!(
        mut ephemeral_mut,
        KEY_LEN,
        field::initiation::EPHEMERAL,
        "Ephemeral, writable."
    );
    bytes_field!(
        mut encrypted_static_mut,
        KEY_LEN + AEAD_TAG_LEN,
        field::initiation::STATIC,
        "Encrypted static, writable."
    );
    bytes_field!(
        mut encrypted_timestamp_mut,
        TIMESTAMP_LEN + AEAD_TAG_LEN,
        field::initiation::TIMESTAMP,
        "Encrypted timestamp, writable."
    );
}

message_view!(
    /// Handshake response, type 2, 92 bytes (whitepaper section 5.4.3).
    Response,
    MessageType::Response,
    |len| len == RESPONSE_LEN
);

impl<T: AsRef<[u8]>> Response<T> {
    u32_field!(
        sender,
        set_sender,
        field::response::SENDER,
        "Responder's index."
    );
    u32_field!(
        receiver,
        set_receiver,
        field::response::RECEIVER,
        "Initiator's index, echoed."
    );
    bytes_field!(
        ephemeral,
        KEY_LEN,
        field::response::EPHEMERAL,
        "Unencrypted ephemeral."
    );
    bytes_field!(
        encrypted_nothing,
        AEAD_TAG_LEN,
        field::response::EMPTY,
        "AEAD of the empty string."
    );
    bytes_field!(mac1, COOKIE_LEN, field::response::MAC1, "mac1.");
    bytes_field!(mac2, COOKIE_LEN, field::response::MAC2, "mac2.");
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Response<T> {
    u32_field!(
        mut set_sender,
        field::response::SENDER,
        "Sets the responder's index."
    );
    u32_field!(
        mut set_receiver,
        field::response::RECEIVER,
        "Sets the initiator's index."
    );
    bytes_field!(
        mut ephemeral_mut,
        KEY_LEN,
        field::response::EPHEMERAL,
        "Ephemeral, writable."
    );
    bytes_field!(
        mut encrypted_nothing_mut,
        AEAD_TAG_LEN,
        field::response::EMPTY,
        "Empty AEAD, writable."
    );
}

message_view!(
    /// Cookie reply, type 3, 64 bytes (whitepaper section 5.4.7).
    CookieReply,
    MessageType::CookieReply,
    |len| len == COOKIE_REPLY_LEN
);

impl<T: AsRef<[u8]>> CookieReply<T> {
    u32_field!(
        receiver,
        set_receiver,
        field::cookie_reply::RECEIVER,
        "Index of the answered message's sender."
    );
    bytes_field!(
        nonce,
        COOKIE_NONCE_LEN,
        field::cookie_reply::NONCE,
        "XChaCha20 nonce."
    );
    bytes_field!(
        encrypted_cookie,
        COOKIE_LEN + AEAD_TAG_LEN,
        field::cookie_reply::COOKIE,
        "Encrypted cookie and tag."
    );
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> CookieReply<T> {
    u32_field!(
        mut set_receiver,
        field::cookie_reply::RECEIVER,
        "Sets the receiver index."
    );
    bytes_field!(
        mut nonce_mut,
        COOKIE_NONCE_LEN,
        field::cookie_reply::NONCE,
        "Nonce, writable."
    );
    bytes_field!(
        mut encrypted_cookie_mut,
        COOKIE_LEN + AEAD_TAG_LEN,
        field::cookie_reply::COOKIE,
        "Encrypted cookie, writable."
    );
}

message_view!(
    /// Transport data, type 4: 16-byte header, ciphertext, 16-byte tag
    /// (whitepaper section 5.4.6).
    Data,
    MessageType::Data,
    |len| len >= DATA_MIN_LEN
);

impl<T: AsRef<[u8]>> Data<T> {
    u32_field!(
        receiver,
        set_receiver,
        field::data::RECEIVER,
        "Receiver's keypair index."
    );

    /// The 64-bit nonce counter.
    pub fn counter(&self) -> u64 {
        u64::from_le_bytes(*array::<8>(self.buffer.as_ref(), field::data::COUNTER))
    }

    /// Length of the encrypted (padded) plaintext, without the tag.
    pub fn ciphertext_len(&self) -> usize {
        self.buffer.as_ref().len() - DATA_MIN_LEN
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Data<T> {
    u32_field!(
        mut set_receiver,
        field::data::RECEIVER,
        "Sets the receiver index."
    );

    /// Sets the nonce counter.
    pub fn set_counter(&mut self, counter: u64) {
        *array_mut::<8>(self.buffer.as_mut(), field::data::COUNTER) = counter.to_le_bytes();
    }

    /// Writes the whole 16-byte header in front of a sealed payload: the
    /// type word (4 and three reserved zero bytes), the receiver index and
    /// the counter (kernel `messages.h: message_data`). The buffer may be
    /// just the [`DATA_HEADER_LEN`] header bytes.
    #[inline]
    pub fn set_header(&mut self, receiver: u32, counter: u64) {
        self.set_message_type();
        self.set_receiver(receiver);
        self.set_counter(counter);
    }

    /// The ciphertext (or plaintext, before sealing) and the tag, split so
    /// that both can be borrowed at once for in-place sealing or opening.
    pub fn payload_and_tag_mut(&mut self) -> (&mut [u8], &mut [u8; AEAD_TAG_LEN]) {
        let payload = &mut self.buffer.as_mut()[field::data::PAYLOAD];
        let split = payload.len() - AEAD_TAG_LEN;
        let (text, tag) = payload.split_at_mut(split);
        (
            text,
            <&mut [u8; AEAD_TAG_LEN]>::try_from(tag).expect("tag is 16 bytes"),
        )
    }
}

/// Any message, parsed by its type word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Type 1.
    Initiation(Initiation<&'a [u8]>),
    /// Type 2.
    Response(Response<&'a [u8]>),
    /// Type 3.
    CookieReply(CookieReply<&'a [u8]>),
    /// Type 4.
    Data(Data<&'a [u8]>),
}

impl<'a> Message<'a> {
    /// Parses `buf`: checks the type word and the length for that type.
    pub fn parse(buf: &'a [u8]) -> Result<Self, MessageError> {
        Ok(match MessageType::of(buf)? {
            MessageType::Initiation => Message::Initiation(Initiation::new_checked(buf)?),
            MessageType::Response => Message::Response(Response::new_checked(buf)?),
            MessageType::CookieReply => Message::CookieReply(CookieReply::new_checked(buf)?),
            MessageType::Data => Message::Data(Data::new_checked(buf)?),
        })
    }
}

impl Message<'_> {
    /// The index the message is addressed to, one its receiver chose: the
    /// echoed initiator index of a response, the answered sender's index
    /// of a cookie reply, the keypair index of data. `None` for an
    /// initiation, which is addressed by static key.
    pub fn receiver(&self) -> Option<u32> {
        match self {
            Message::Initiation(_) => None,
            Message::Response(r) => Some(r.receiver()),
            Message::CookieReply(c) => Some(c.receiver()),
            Message::Data(d) => Some(d.receiver()),
        }
    }

    /// The sender's index of a handshake message (initiation or response),
    /// the one a cookie reply or response echoes. `None` for the others.
    pub fn sender(&self) -> Option<u32> {
        match self {
            Message::Initiation(i) => Some(i.sender()),
            Message::Response(r) => Some(r.sender()),
            Message::CookieReply(_) | Message::Data(_) => None,
        }
    }
}

/// The length a transport plaintext of `len` bytes is padded to: the next
/// multiple of 16, but never past `mtu` (whitepaper section 5.4.6; kernel
/// `calculate_skb_padding`). The padding bytes are zeros.
pub fn padded_len(len: usize, mtu: usize) -> usize {
    let padded = len.div_ceil(MESSAGE_PADDING_MULTIPLE) * MESSAGE_PADDING_MULTIPLE;
    if len <= mtu && padded > mtu {
        mtu
    } else {
        padded
    }
}

/// Offsets of mac1 and mac2 inside a handshake message of type 1 or 2: the
/// last 32 bytes. `None` for anything else.
pub fn mac_ranges(msg: &[u8]) -> Option<(Range<usize>, Range<usize>)> {
    match (MessageType::of(msg), msg.len()) {
        (Ok(MessageType::Initiation), INITIATION_LEN) => {
            Some((field::initiation::MAC1, field::initiation::MAC2))
        }
        (Ok(MessageType::Response), RESPONSE_LEN) => {
            Some((field::response::MAC1, field::response::MAC2))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_the_field_tables() {
        assert_eq!(field::initiation::MAC2.end, INITIATION_LEN);
        assert_eq!(field::response::MAC2.end, RESPONSE_LEN);
        assert_eq!(field::cookie_reply::COOKIE.end, COOKIE_REPLY_LEN);
        assert_eq!(field::data::PAYLOAD.start, DATA_HEADER_LEN);
    }

    #[test]
    fn wrong_lengths_and_types_are_errors() {
        let mut buf = [0u8; INITIATION_LEN];
        Initiation::new_unchecked(&mut buf[..]).set_message_type();
        assert!(Initiation::new_checked(&buf[..]).is_ok());
        assert_eq!(
            Initiation::new_checked(&buf[..147]),
            Err(MessageError::BadLength {
                message_type: 1,
                actual: 147
            })
        );
        assert_eq!(
            Response::new_checked(&buf[..RESPONSE_LEN]),
            Err(MessageError::WrongType {
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(Message::parse(&buf[..3]), Err(MessageError::Truncated(3)));
        buf[1] = 1; // reserved byte must be zero
        assert_eq!(Message::parse(&buf), Err(MessageError::UnknownType(0x101)));
        buf[1] = 0;
        buf[0] = 5;
        assert_eq!(Message::parse(&buf), Err(MessageError::UnknownType(5)));
        buf[0] = 4;
        assert!(matches!(
            Message::parse(&buf[..DATA_MIN_LEN]),
            Ok(Message::Data(_))
        ));
        assert_eq!(
            Message::parse(&buf[..DATA_MIN_LEN - 1]),
            Err(MessageError::BadLength {
                message_type: 4,
                actual: 31
            })
        );
        buf[0] = 3;
        assert_eq!(
            Message::parse(&buf[..65]),
            Err(MessageError::BadLength {
                message_type: 3,
                actual: 65
            })
        );
        buf[0] = 2;
        assert_eq!(
            Message::parse(&buf[..93]),
            Err(MessageError::BadLength {
                message_type: 2,
                actual: 93
            })
        );
    }

    #[test]
    fn fields_round_trip() {
        let mut buf = [0u8; 48];
        let mut d = Data::new_unchecked(&mut buf[..]);
        d.set_message_type();
        d.set_receiver(0xdead_beef);
        d.set_counter(0x0102_0304_0506_0708);
        let (text, tag) = d.payload_and_tag_mut();
        assert_eq!(text.len(), 16);
        tag[0] = 0xaa;
        let d = Data::new_checked(&buf[..]).expect("valid");
        assert_eq!(d.receiver(), 0xdead_beef);
        assert_eq!(d.counter(), 0x0102_0304_0506_0708);
        assert_eq!(d.ciphertext_len(), 16);
        assert_eq!(&buf[..8], &[4, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
        assert_eq!(buf[32], 0xaa);

        let mut r = [0u8; RESPONSE_LEN];
        let mut v = Response::new_unchecked(&mut r);
        v.set_message_type();
        v.set_sender(7);
        v.set_receiver(9);
        v.ephemeral_mut()[0] = 1;
        let v = Response::new_checked(&r).expect("valid");
        assert_eq!((v.sender(), v.receiver(), v.ephemeral()[0]), (7, 9, 1));
        assert_eq!(mac_ranges(&r), Some((60..76, 76..92)));
        assert_eq!(mac_ranges(&buf), None);
    }

    #[test]
    fn data_header_is_written_in_wire_order() {
        // Kernel `messages.h: message_data`: le32 type 4, le32 receiver,
        // le64 counter; written over just the 16 header bytes.
        let mut hdr = [0xffu8; DATA_HEADER_LEN];
        Data::new_unchecked(&mut hdr).set_header(0x0a0b_0c0d, 0x1122_3344_5566_7788);
        assert_eq!(
            hdr,
            [4, 0, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]
        );
        // Read back through the checked view once a tag follows.
        let mut msg = [0u8; DATA_MIN_LEN];
        msg[..DATA_HEADER_LEN].copy_from_slice(&hdr);
        let d = Data::new_checked(&msg[..]).expect("valid data message");
        assert_eq!(
            (d.receiver(), d.counter()),
            (0x0a0b_0c0d, 0x1122_3344_5566_7788)
        );
    }

    #[test]
    fn receiver_and_sender_indexes_by_message_type() {
        let mut init = [0u8; INITIATION_LEN];
        let mut v = Initiation::new_unchecked(&mut init);
        v.set_message_type();
        v.set_sender(11);
        let mut resp = [0u8; RESPONSE_LEN];
        let mut v = Response::new_unchecked(&mut resp);
        v.set_message_type();
        v.set_sender(21);
        v.set_receiver(22);
        let mut cookie = [0u8; COOKIE_REPLY_LEN];
        let mut v = CookieReply::new_unchecked(&mut cookie);
        v.set_message_type();
        v.set_receiver(32);
        let mut data = [0u8; DATA_MIN_LEN];
        Data::new_unchecked(&mut data).set_header(42, 7);
        let indexes = |b: &[u8]| {
            let m = Message::parse(b).expect("valid message");
            (m.sender(), m.receiver())
        };
        assert_eq!(indexes(&init), (Some(11), None));
        assert_eq!(indexes(&resp), (Some(21), Some(22)));
        assert_eq!(indexes(&cookie), (None, Some(32)));
        assert_eq!(indexes(&data), (None, Some(42)));
    }

    #[test]
    fn padding_rounds_up_to_16_within_mtu() {
        assert_eq!(padded_len(0, 1420), 0);
        assert_eq!(padded_len(1, 1420), 16);
        assert_eq!(padded_len(16, 1420), 16);
        assert_eq!(padded_len(17, 1420), 32);
        assert_eq!(padded_len(1419, 1420), 1420);
        assert_eq!(padded_len(1418, 1419), 1419);
        assert_eq!(padded_len(1500, 1420), 1504);
    }
}
