//! The configured peers' static-static DHs, computed ahead by the
//! handshake threads (issue #25, a mass reconnect).
//!
//! A responder's first handshake with a peer since start-up costs four
//! X25519 (`es`, `ss`, `ee`, `se`, whitepaper section 5.4.2 and 5.4.3)
//! and a base-point multiplication; `ss = DH(S_r^priv, S_i^pub)` depends
//! on the two static keys only, so the kernel computes it when a peer is
//! added (`wg_noise_precompute_static_static`). wgdp's handshake threads
//! compute it for every configured peer when they have no handshake to
//! do, so a reconnect costs them three X25519. Start-up and a handshake
//! that arrives before its peer's turn do not wait: the thread computes
//! the DH then and keeps it.
//!
//! Only configured peers are kept ([`StaticStatics::want`] on add,
//! [`StaticStatics::forget`] on removal: a peer's key is its identity, so
//! a key change is a removal and an add); a DH offered for any other key
//! is dropped. Our own key cannot change while wgdp runs (UAPI `set
//! private_key` is refused), and the set belongs to the pool built with
//! it. Each DH is boxed and zeroized on drop, so a growing map moves
//! pointers, never leaving copies of the secrets behind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use protocol::crypto::{PublicKey, SecretBytes};

/// The static-static DHs of the configured peers, shared by the control
/// thread (which peers) and the handshake threads (the DHs).
#[derive(Default)]
pub struct StaticStatics {
    /// Every configured peer; `None` until its DH is computed.
    peers: RwLock<HashMap<PublicKey, Option<Box<SecretBytes>>>>,
    /// How many of them have their DH.
    computed: AtomicUsize,
}

impl std::fmt::Debug for StaticStatics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticStatics")
            .field("computed", &self.computed())
            .finish_non_exhaustive()
    }
}

impl StaticStatics {
    /// A peer is configured: its DH is wanted. `true` when it was not
    /// already (the caller then queues its computation).
    pub fn want(&self, peer: PublicKey) -> bool {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        match peers.entry(peer) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(None);
                true
            }
        }
    }

    /// A peer is removed: its DH, if computed, is wiped.
    pub fn forget(&self, peer: &PublicKey) {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        if let Some(Some(_)) = peers.remove(peer) {
            self.computed.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The peer's DH, if it is configured and the DH computed.
    pub fn get(&self, peer: &PublicKey) -> Option<SecretBytes> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(peer)?.as_deref().cloned()
    }

    /// Whether the peer is configured and its DH still to compute.
    pub fn missing(&self, peer: &PublicKey) -> bool {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        matches!(peers.get(peer), Some(None))
    }

    /// Keeps `shared` as the peer's DH if the peer is configured and has
    /// none yet; for any other key it is dropped (wiped).
    pub fn fill(&self, peer: &PublicKey, shared: &SecretBytes) {
        let mut peers = self.peers.write().unwrap_or_else(|e| e.into_inner());
        if let Some(slot @ None) = peers.get_mut(peer) {
            *slot = Some(Box::new(shared.clone()));
            self.computed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many configured peers have their DH.
    pub fn computed(&self) -> usize {
        self.computed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::crypto::PrivateKey;
    use zeroize::Zeroizing;

    fn key(n: u8) -> PublicKey {
        PrivateKey::from_bytes([n; 32]).public_key()
    }

    #[test]
    fn only_configured_peers_keep_a_dh_until_removed() {
        let s = StaticStatics::default();
        let (a, b, stranger) = (key(1), key(2), key(3));
        assert!(s.want(a));
        assert!(!s.want(a), "wanted twice");
        assert!(s.want(b));
        assert!(s.missing(&a) && s.missing(&b) && !s.missing(&stranger));
        s.fill(&a, &Zeroizing::new([0xa; 32]));
        // A second DH for the same peer does not replace the first.
        s.fill(&a, &Zeroizing::new([0xb; 32]));
        // Nor is one kept for a key that is not a peer's.
        s.fill(&stranger, &Zeroizing::new([0xc; 32]));
        assert_eq!(s.get(&a).as_deref(), Some(&[0xa; 32]));
        assert_eq!((s.get(&b), s.get(&stranger)), (None, None));
        assert!(!s.missing(&a) && s.missing(&b));
        assert_eq!(s.computed(), 1);
        // Removal wipes it; a peer added again with the key is computed
        // again, not given the old one.
        s.forget(&a);
        s.forget(&b);
        assert_eq!((s.get(&a), s.computed()), (None, 0));
        assert!(!s.missing(&a) && !s.missing(&b));
        s.fill(&a, &Zeroizing::new([0xd; 32]));
        assert_eq!(s.get(&a), None, "kept for a removed peer");
        assert!(s.want(a));
        assert!(s.missing(&a));
    }
}
