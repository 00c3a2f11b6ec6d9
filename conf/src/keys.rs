//! WireGuard keys: 32 bytes, written as standard base64 with padding.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Encodes 32 key bytes as base64 (standard alphabet, padded), as `wg genkey` prints.
pub fn encode_key(bytes: &[u8; 32]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 (standard alphabet, padded) of exactly 32 bytes.
///
/// Surrounding whitespace is not accepted; `None` on any other input.
pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    // 32 bytes are 44 characters; refusing longer input up front bounds
    // the work and the temporary buffer.
    if text.len() != 44 {
        return None;
    }
    let decoded = Zeroizing::new(STANDARD.decode(text).ok()?);
    let mut key = [0u8; 32];
    if decoded.len() != 32 {
        return None;
    }
    key.copy_from_slice(&decoded);
    Some(key)
}

/// The error of parsing a key from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not base64 of 32 bytes")]
pub struct KeyParseError;

/// The interface's X25519 private key. Zeroized on drop; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PrivateKey([u8; 32]);

impl PrivateKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PrivateKey(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The matching public key (X25519 base point multiplication).
    pub fn public_key(&self) -> PublicKey {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }

    /// The key as base64, for writing a configuration.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(encode_key(&self.0))
    }
}

impl FromStr for PrivateKey {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Self, KeyParseError> {
        let mut bytes = decode_key(s).ok_or(KeyParseError)?;
        let key = PrivateKey(bytes);
        bytes.zeroize();
        Ok(key)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A peer's (or the interface's) X25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Self, KeyParseError> {
        decode_key(s).map(PublicKey).ok_or(KeyParseError)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_key(&self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A peer's optional preshared key. Zeroized on drop; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct PresharedKey([u8; 32]);

impl PresharedKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PresharedKey(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as base64, for writing a configuration.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(encode_key(&self.0))
    }
}

impl FromStr for PresharedKey {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Self, KeyParseError> {
        let mut bytes = decode_key(s).ok_or(KeyParseError)?;
        let key = PresharedKey(bytes);
        bytes.zeroize();
        Ok(key)
    }
}

impl fmt::Debug for PresharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresharedKey(<redacted>)")
    }
}

/// Where the interface's private key came from, so that a rendered
/// configuration says it the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `private_key = "..."` in the configuration itself.
    Inline,
    /// `private_key_file = "..."`, the path as written (relative paths are
    /// relative to the configuration file's directory).
    File(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration's secrets wipe themselves: the types say so,
    /// and dropping one in place leaves zeros where the key was.
    #[test]
    // Reading a value's bytes after its drop has run takes unsafe code.
    #[allow(unsafe_code)]
    fn secrets_zeroize_on_drop() {
        fn wipes<T: ZeroizeOnDrop>() {}
        wipes::<PrivateKey>();
        wipes::<PresharedKey>();
        let mut key = std::mem::ManuallyDrop::new(PrivateKey::from_bytes([9; 32]));
        // SAFETY: dropped once, never used again but to read its bytes
        // (a plain array, no heap).
        unsafe { std::ptr::drop_in_place(&mut *key) };
        assert_eq!(key.as_bytes(), &[0; 32]);
        let mut psk = std::mem::ManuallyDrop::new(PresharedKey::from_bytes([9; 32]));
        // SAFETY: as above.
        unsafe { std::ptr::drop_in_place(&mut *psk) };
        assert_eq!(psk.as_bytes(), &[0; 32]);
        // x25519-dalek's StaticSecret (the public key's derivation here;
        // protocol's X25519 is AWS-LC's, which cleanses its key when it
        // frees it) wipes itself in its Drop (`zeroize(drop)`, which
        // implements no marker trait).
        let mut secret = std::mem::ManuallyDrop::new(x25519_dalek::StaticSecret::from([9; 32]));
        // SAFETY: as above.
        unsafe { std::ptr::drop_in_place(&mut *secret) };
        assert_eq!(secret.to_bytes(), [0; 32]);
    }

    #[test]
    fn base64_round_trip() {
        let bytes = [7u8; 32];
        let text = encode_key(&bytes);
        assert_eq!(text.len(), 44);
        assert_eq!(decode_key(&text), Some(bytes));
        assert_eq!(decode_key(&text[..43]), None);
        assert_eq!(decode_key("AAAA"), None);
        assert_eq!(decode_key(&format!("{text}\n")), None);
    }

    #[test]
    fn public_key_of_known_private_key() {
        // RFC 7748 section 6.1, Alice.
        let alice = [
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2,
            0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5,
            0x1d, 0xb9, 0x2c, 0x2a,
        ];
        let public = PrivateKey::from_bytes(alice).public_key();
        assert_eq!(public.0[..4], [0x85, 0x20, 0xf0, 0x09]);
    }

    #[test]
    fn debug_is_redacted() {
        let k = PrivateKey::from_bytes([1; 32]);
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
        let p = PresharedKey::from_bytes([1; 32]);
        assert_eq!(format!("{p:?}"), "PresharedKey(<redacted>)");
        let text = encode_key(&[1; 32]);
        assert_eq!(text.parse::<PublicKey>().map(|k| k.to_string()), Ok(text));
    }
}
