//! The benchmark's peers: real Noise_IKpsk2 handshakes between wgdp's
//! identity and each peer's, run on every CPU. wgdp initiates, so the
//! keypair it installs (through the worker's `InstallKeypair` command, as
//! the control thread does) is current at once; the peer's half seals the
//! data messages the decap runs feed in.

use std::time::Duration;

use dataplane::route::make_index;
use protocol::crypto::PrivateKey;
use protocol::noise::{PeerHandshake, StaticIdentity};
use protocol::time::{Instant, Tai64N};
use protocol::transport::Keypair;
use rand_core::OsRng;

/// Both halves of peer `p`'s session.
pub struct PeerKeys {
    /// wgdp's keypair (initiator), for the worker.
    pub wgdp: Keypair,
    /// The peer's keypair (responder), for the traffic generator.
    pub peer: Keypair,
}

/// The owner worker of peer `p` among `workers`: peers are spread round
/// robin, as `wgdp run` assigns them.
pub fn owner(p: u32, workers: usize) -> usize {
    p as usize % workers.max(1)
}

/// wgdp's receiver index for peer `p`: unique per peer, with the owner for
/// `MAX_WORKERS` workers in its low bits (an index made for two workers
/// names worker 0 when there is one, since one worker masks no bits).
fn wgdp_index(p: u32) -> u32 {
    // Multiplying by an odd constant permutes u32, so the indexes are
    // distinct; the shift keeps the owner bit free.
    let random = p.wrapping_mul(0x9e37_79b1) << 1;
    make_index(random, owner(p, super::MAX_WORKERS), super::MAX_WORKERS)
}

/// One handshake: wgdp (initiator) with one peer identity.
fn handshake(
    wgdp: &StaticIdentity,
    peer: &StaticIdentity,
    p: u32,
    now: Instant,
) -> Result<PeerKeys, String> {
    let mut hs_wgdp = PeerHandshake::new(*peer.public_key(), None);
    let mut hs_peer = PeerHandshake::new(*wgdp.public_key(), None);
    let t = Tai64N::from_unix(Duration::from_secs(1));
    let init = hs_wgdp
        .create_initiation(wgdp, wgdp_index(p), t, now, &mut OsRng)
        .map_err(|e| format!("initiation: {e}"))?;
    let pending = peer
        .open_initiation(&init)
        .map_err(|e| format!("open initiation: {e}"))?;
    hs_peer
        .consume_initiation(pending, now)
        .map_err(|e| format!("consume initiation: {e}"))?;
    let (resp, peer_kp) = hs_peer
        .create_response(p, now, &mut OsRng)
        .map_err(|e| format!("response: {e}"))?;
    let wgdp_kp = hs_wgdp
        .consume_response(wgdp, &resp, now)
        .map_err(|e| format!("consume response: {e}"))?;
    Ok(PeerKeys {
        wgdp: wgdp_kp,
        peer: peer_kp,
    })
}

/// Handshakes of wgdp's identity `wgdp` with peers `0..n`, spread over
/// `threads` threads. Every peer has its own static key pair.
/// The keypairs are born at `Instant::ZERO`: the caller starts its clock
/// when they are installed.
pub fn handshakes(wgdp: &StaticIdentity, n: u32, threads: usize) -> Result<Vec<PeerKeys>, String> {
    let threads = threads.clamp(1, 64) as u32;
    let chunk = n.div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<PeerKeys>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let start = (t * chunk).min(n);
                    let end = (start + chunk).min(n);
                    (start..end)
                        .map(|p| {
                            let peer = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
                            handshake(wgdp, &peer, p, Instant::ZERO)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("handshake thread panicked".into()))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(n as usize);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::route::index_owner;

    #[test]
    fn indexes_are_distinct_and_name_the_owner() {
        let mut seen = std::collections::HashSet::new();
        for p in 0..100_000 {
            let i = wgdp_index(p);
            assert!(seen.insert(i), "index of peer {p} repeats");
            assert_eq!(index_owner(i, 1), Some(0));
            assert_eq!(index_owner(i, 2), Some(owner(p, 2)));
        }
    }

    #[test]
    fn handshakes_give_matching_keypairs() {
        let wgdp = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
        let mut keys = handshakes(&wgdp, 3, 2).expect("handshakes");
        assert_eq!(keys.len(), 3);
        let k = &mut keys[2];
        let mut msg = [0u8; 64];
        msg[16] = 0x45;
        k.peer.seal_message(Instant::ZERO, &mut msg).expect("seal");
        let opened = k
            .wgdp
            .open_message(Instant::ZERO, &mut msg)
            .expect("wgdp opens what the peer sealed");
        assert_eq!(opened[0], 0x45);
    }
}
