//! Initiator, consuming a response (whitepaper section 5.4.3) in three
//! steps, so that a handshake thread can do the X25519 work (`ee`, `se`)
//! without the peer's state: [`PeerHandshake::response_work`] copies what
//! our outstanding initiation left, [`StaticIdentity::open_response`]
//! does the DHs, and [`PeerHandshake::consume_opened_response`] checks the
//! initiation is still the outstanding one, mixes the PSK, authenticates
//! and derives the keypair. [`PeerHandshake::consume_response`] runs the
//! three in a row.

use super::{
    HandshakeError, HandshakeState, Keypair, PeerHandshake, PrivateKey, PublicKey, Response,
    StaticIdentity, Symmetric, SymmetricState,
};
use crate::crypto::constant_time_eq;
use crate::time::Instant;

/// A copy of what our outstanding initiation left: its index, our
/// ephemeral key and the symmetric state. Its secrets wipe themselves on
/// drop.
pub struct ResponseWork {
    local_index: u32,
    ephemeral: PrivateKey,
    sym: Symmetric,
}

// The ephemeral key and the symmetric state wipe themselves.
impl zeroize::ZeroizeOnDrop for ResponseWork {}

impl core::fmt::Debug for ResponseWork {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponseWork")
            .field("local_index", &self.local_index)
            .finish_non_exhaustive()
    }
}

/// A response whose X25519 work is done: `H` and `C` after `ee` and `se`,
/// and which initiation it answers.
pub struct OpenedResponse {
    local_index: u32,
    /// `H` after our initiation: names the initiation (its ephemeral key
    /// is in it).
    initiation_hash: [u8; 32],
    sym: SymmetricState,
}

// The symmetric state wipes itself; the initiation's hash is public.
impl zeroize::ZeroizeOnDrop for OpenedResponse {}

impl core::fmt::Debug for OpenedResponse {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OpenedResponse")
            .field("local_index", &self.local_index)
            .finish_non_exhaustive()
    }
}

impl PeerHandshake {
    /// What consuming a response to our outstanding initiation needs, for
    /// another thread; `None` when no initiation is outstanding.
    pub fn response_work(&self) -> Option<ResponseWork> {
        match &self.state {
            HandshakeState::CreatedInitiation {
                local_index,
                ephemeral,
                sym,
            } => Some(ResponseWork {
                local_index: *local_index,
                ephemeral: ephemeral.clone(),
                sym: sym.0.clone(),
            }),
            _ => None,
        }
    }

    /// Initiator, last step: the response must answer the initiation that
    /// is still outstanding; then the PSK (psk2), the empty AEAD and the
    /// keypair, confirmed at once (section 5.4.3 and 5.4.5). The state is
    /// left unchanged if the response does not authenticate.
    pub fn consume_opened_response(
        &mut self,
        opened: OpenedResponse,
        msg: &[u8],
        now: Instant,
    ) -> Result<Keypair, HandshakeError> {
        let view = Response::new_checked(msg)?;
        let HandshakeState::CreatedInitiation {
            local_index, sym, ..
        } = &self.state
        else {
            return Err(HandshakeError::UnexpectedState);
        };
        if view.receiver() != *local_index {
            return Err(HandshakeError::IndexMismatch {
                expected: *local_index,
                got: view.receiver(),
            });
        }
        // Opened for another initiation (a newer one replaced it since).
        if opened.local_index != *local_index
            || !constant_time_eq(&opened.initiation_hash, &sym.0.hash[..])
        {
            return Err(HandshakeError::UnexpectedState);
        }
        let local_index = *local_index;
        let SymmetricState(mut sym) = opened.sym;
        let key = sym.mix_psk(&self.preshared_key);
        sym.decrypt_and_hash::<0>(&key, view.encrypted_nothing())?;
        self.state = HandshakeState::Zeroed;
        let (send, recv) = sym.split(true);
        Ok(Keypair::new(
            send,
            recv,
            local_index,
            view.sender(),
            now,
            true,
        ))
    }
}

impl StaticIdentity {
    /// Initiator, the X25519 part of consuming a response (section 5.4.3):
    /// mixes the responder's ephemeral, `ee` and `se`. Needs no peer state
    /// beyond `work`.
    pub fn open_response(
        &self,
        work: ResponseWork,
        msg: &[u8],
    ) -> Result<OpenedResponse, HandshakeError> {
        let view = Response::new_checked(msg)?;
        if view.receiver() != work.local_index {
            return Err(HandshakeError::IndexMismatch {
                expected: work.local_index,
                got: view.receiver(),
            });
        }
        let ResponseWork {
            local_index,
            ephemeral,
            mut sym,
        } = work;
        let initiation_hash = *sym.hash;
        let remote_ephemeral = PublicKey::from_bytes(*view.ephemeral());
        sym.mix_hash(remote_ephemeral.as_bytes());
        sym.mix_key(remote_ephemeral.as_bytes());
        sym.mix_key(&ephemeral.dh(&remote_ephemeral)?[..]); // ee
        sym.mix_key(&self.private.dh(&remote_ephemeral)?[..]); // se
        Ok(OpenedResponse {
            local_index,
            initiation_hash,
            sym: SymmetricState(sym),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Tai64N;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn a_response_opened_for_a_replaced_initiation_is_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
        let i = StaticIdentity::new(PrivateKey::from_bytes([1; 32]));
        let r = StaticIdentity::new(PrivateKey::from_bytes([2; 32]));
        let mut ih = PeerHandshake::new(*r.public_key(), None);
        let mut rh = PeerHandshake::new(*i.public_key(), None);
        let ts = Tai64N::from_unix(core::time::Duration::from_secs(1_700_000_000));
        let now = Instant::ZERO;
        let init = ih
            .create_initiation(&i, 7, ts, now, &mut rng)
            .expect("init");
        rh.consume_initiation(r.open_initiation(&init).expect("open"), now)
            .expect("consume");
        let (resp, _) = rh.create_response(9, now, &mut rng).expect("response");
        // Opened on another thread while the initiation was outstanding...
        let opened = i
            .open_response(ih.response_work().expect("outstanding"), &resp)
            .expect("opened");
        // ...then a new initiation with the same index replaced it.
        ih.create_initiation(&i, 7, ts, now, &mut rng)
            .expect("again");
        assert_eq!(
            ih.consume_opened_response(opened, &resp, now).err(),
            Some(HandshakeError::UnexpectedState)
        );
        assert_eq!(ih.pending_initiation_index(), Some(7), "state kept");
        // Opened for the outstanding one, an answer to the old one still
        // fails, at the AEAD: the response was built for the old state.
        let opened = i
            .open_response(ih.response_work().expect("outstanding"), &resp)
            .expect("opened");
        assert_eq!(
            ih.consume_opened_response(opened, &resp, now).err(),
            Some(HandshakeError::Decryption)
        );
        assert!(ih.response_work().is_some(), "state kept");
    }
}
