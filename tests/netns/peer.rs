//! A WireGuard peer of the tests' own, built on the `protocol` crate: it
//! handshakes with wgdp over a UDP socket in a namespace, then seals data
//! messages with any inner content, valid or not, so that the tests can
//! send what no real peer would (a wrong inner IP version, a spoofed inner
//! source, a broken tag) under a real session. Also builds the flood's
//! handshake initiations.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::cookie::CookieJar;
use protocol::crypto::{PrivateKey, PublicKey};
use protocol::messages::INITIATION_LEN;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;
use rand_core::{OsRng, RngCore};

/// Decodes a base64 WireGuard key.
pub fn decode_key(b64: &str) -> [u8; 32] {
    conf::decode_key(b64).unwrap_or_else(|| panic!("bad key {b64}"))
}

/// A peer identity: (identity, its public key in base64).
pub fn identity() -> (StaticIdentity, String) {
    let id = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
    let public = conf::encode_key(id.public_key().as_bytes());
    (id, public)
}

/// A peer with a session with wgdp.
pub struct TestPeer {
    /// The socket it talks through (its endpoint).
    pub socket: UdpSocket,
    /// wgdp's tunnel address.
    pub wgdp: SocketAddr,
    keypair: Keypair,
}

impl TestPeer {
    /// Handshakes with wgdp (`wgdp_public`, base64) at `wgdp` from `socket`
    /// as `id`; panics if no valid response comes within 10 s.
    pub fn handshake(
        id: &StaticIdentity,
        wgdp_public: &str,
        socket: UdpSocket,
        wgdp: SocketAddrV4,
    ) -> TestPeer {
        let remote = PublicKey::from_bytes(decode_key(wgdp_public));
        let mut hs = PeerHandshake::new(remote, None);
        let index = OsRng.next_u32();
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let init = hs
            .create_initiation(
                id,
                index,
                Tai64N::from_unix(since),
                Instant::ZERO,
                &mut OsRng,
            )
            .expect("initiation");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        socket.send_to(&init, wgdp).expect("send initiation");
        let mut buf = [0u8; 2048];
        let (n, from) = socket.recv_from(&mut buf).expect("no response from wgdp");
        assert_eq!(from, SocketAddr::V4(wgdp), "response from elsewhere");
        let keypair = hs
            .consume_response(id, &buf[..n], Instant::ZERO)
            .expect("wgdp's response does not authenticate");
        TestPeer {
            socket,
            wgdp: SocketAddr::V4(wgdp),
            keypair,
        }
    }

    /// A data message carrying `inner` (padded to 16 bytes), sealed with
    /// the session's next counter.
    pub fn seal(&mut self, inner: &[u8]) -> Vec<u8> {
        let padded = inner.len().div_ceil(16) * 16;
        let mut msg = vec![0u8; 16 + padded + 16];
        msg[16..16 + inner.len()].copy_from_slice(inner);
        self.keypair
            .seal_message(Instant::ZERO, &mut msg)
            .expect("seal");
        msg
    }

    /// Sends a message to wgdp's listen port.
    pub fn send(&self, msg: &[u8]) {
        self.socket.send_to(msg, self.wgdp).expect("send to wgdp");
    }
}

/// `n` handshake initiations of random content: with `valid_mac1`, mac1 is
/// right for `wgdp_public` (wgdp then pays a Diffie-Hellman before it finds
/// the message is nobody's), otherwise random (refused at the mac1 check).
pub fn flood_initiations(wgdp_public: &str, n: usize, valid_mac1: bool) -> Vec<Vec<u8>> {
    let mut jar = CookieJar::new(&PublicKey::from_bytes(decode_key(wgdp_public)));
    (0..n)
        .map(|_| {
            let mut m = vec![0u8; INITIATION_LEN];
            OsRng.fill_bytes(&mut m);
            m[..4].copy_from_slice(&1u32.to_le_bytes());
            if valid_mac1 {
                jar.add_macs(&mut m, Instant::ZERO);
            }
            m
        })
        .collect()
}
