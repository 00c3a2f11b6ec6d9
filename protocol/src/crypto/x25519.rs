//! X25519 (RFC 7748), WireGuard's `DH` and `DH-GENERATE` (whitepaper
//! section 5.4), on one backend behind this module: aws-lc-rs, the fastest
//! constant-time implementation measured here (`wgdp bench --handshakes`;
//! BENCHMARKS.md has every backend's figure and why this one).
//!
//! aws-lc keeps the key in its own allocation (an `EVP_PKEY`) and computes
//! the public key once, when the key is imported; `OPENSSL_free` wipes that
//! allocation when the last reference goes. The shared secret comes back
//! in a zeroize-on-drop buffer and is copied into one.

use std::sync::Arc;

use aws_lc_rs::agreement::{self, UnparsedPublicKey, X25519};
use zeroize::Zeroizing;

use crate::constants::KEY_LEN;

/// An X25519 private key inside aws-lc. Clones share the one key (it is
/// never changed); it is wiped when the last clone goes.
#[derive(Clone)]
pub(crate) struct Secret(Arc<agreement::PrivateKey>);

impl Secret {
    /// The key from its 32 bytes (clamped by X25519 itself when used, RFC
    /// 7748 section 5).
    pub(crate) fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        // aws-lc refuses a key only for its length (fixed here) or when it
        // cannot allocate.
        let key = agreement::PrivateKey::from_private_key(&X25519, bytes)
            .expect("aws-lc takes any 32 bytes as an X25519 private key");
        Secret(Arc::new(key))
    }

    /// `X25519(k, 9)`: the public key, computed when the key was imported.
    pub(crate) fn public(&self) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        if let Ok(p) = self.0.compute_public_key() {
            if p.as_ref().len() == KEY_LEN {
                out.copy_from_slice(p.as_ref());
            }
        }
        out
    }

    /// `X25519(k, public)`; `None` for the all-zero result of a low-order
    /// point, which aws-lc refuses (RFC 7748 section 6.1's check).
    pub(crate) fn dh(&self, public: &[u8; KEY_LEN]) -> Option<Zeroizing<[u8; KEY_LEN]>> {
        let peer = UnparsedPublicKey::new(&X25519, public);
        agreement::agree(&self.0, peer, (), |shared| {
            let mut out = Zeroizing::new([0u8; KEY_LEN]);
            if shared.len() != KEY_LEN {
                return Err(());
            }
            out.copy_from_slice(shared);
            Ok(out)
        })
        .ok()
    }
}
