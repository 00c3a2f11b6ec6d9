//! The benchmark's peers: real Noise_IKpsk2 handshakes between wgdp's
//! identity and each peer's, run on every CPU. wgdp initiates, so the
//! keypair it installs (through the worker's `InstallKeypair` command, as
//! the control thread does) is current at once; the peer's half seals the
//! data messages the decap runs feed in.

use std::time::Duration;

use dataplane::route::{make_index, owner_mask};
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

/// wgdp's receiver index for peer `p` among `workers` workers, as the
/// control thread makes it ([`make_index`]): the owner in the low bits that
/// [`owner_mask`] gives `workers`, the rest unique per peer.
fn wgdp_index(p: u32, workers: usize) -> u32 {
    // Multiplying by an odd constant permutes u32, and so permutes the
    // low `32 - bits` bits too: shifted above the owner bits, the indexes
    // stay distinct for every peer below 2^(32 - bits) (bits <= 10 for
    // 1024 workers, peers <= 2^17).
    let bits = owner_mask(workers).count_ones();
    let random = p.wrapping_mul(0x9e37_79b1) << bits;
    make_index(random, owner(p, workers), workers)
}

/// One handshake: wgdp (initiator, its index made for `workers` workers)
/// with one peer identity.
fn handshake(
    wgdp: &StaticIdentity,
    peer: &StaticIdentity,
    p: u32,
    workers: usize,
    now: Instant,
) -> Result<PeerKeys, String> {
    let mut hs_wgdp = PeerHandshake::new(*peer.public_key(), None);
    let mut hs_peer = PeerHandshake::new(*wgdp.public_key(), None);
    let t = Tai64N::from_unix(Duration::from_secs(1));
    let init = hs_wgdp
        .create_initiation(wgdp, wgdp_index(p, workers), t, now, &mut OsRng)
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
/// `threads` threads, wgdp's receiver indexes naming each peer's owner
/// among `workers` workers. Every peer has its own static key pair.
/// The keypairs are born at `Instant::ZERO`: the caller starts its clock
/// when they are installed.
pub fn handshakes(
    wgdp: &StaticIdentity,
    n: u32,
    workers: usize,
    threads: usize,
) -> Result<Vec<PeerKeys>, String> {
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
                            handshake(wgdp, &peer, p, workers, Instant::ZERO)
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
    fn owners_are_round_robin_as_the_control_thread_assigns() {
        // The control thread's choice for peers added in order, without
        // RSS prediction (as on `net_ring`): the least-loaded worker.
        let mut own = control::ownership::Ownership::new(5, None, None, 51820);
        for p in 0..23u32 {
            let chosen = own.choose(None);
            assert_eq!(owner(p, 5), chosen, "peer {p}");
            own.added(chosen);
        }
        assert_eq!(own.load(), [5, 5, 5, 4, 4]);
        assert_eq!(owner(7, 1), 0);
    }

    #[test]
    fn indexes_are_distinct_and_name_the_owner_for_any_worker_count() {
        for workers in [1, 2, 3, 4, 5, 7, 8, 13, 64] {
            let mut seen = std::collections::HashSet::new();
            let mut per_owner = vec![0u32; workers];
            for p in 0..1 << 17 {
                let i = wgdp_index(p, workers);
                assert!(
                    seen.insert(i),
                    "{workers} workers: index of peer {p} repeats"
                );
                let o = index_owner(i, workers);
                assert_eq!(o, Some(p as usize % workers), "{workers} workers, peer {p}");
                per_owner[p as usize % workers] += 1;
                // The dataplane's own decoding: the low bits, no more.
                assert_eq!(i & owner_mask(workers), (p as usize % workers) as u32);
            }
            let (lo, hi) = (
                per_owner.iter().min().copied(),
                per_owner.iter().max().copied(),
            );
            assert!(
                hi.zip(lo).is_some_and(|(h, l)| h - l <= 1),
                "{workers} workers: owners unbalanced {per_owner:?}"
            );
        }
        // 3 workers use two owner bits: an index with 3 there names none.
        assert_eq!(owner_mask(3), 0b11);
        assert_eq!(index_owner(wgdp_index(2, 3) | 0b11, 3), None);
        assert_eq!(index_owner(wgdp_index(2, 3), 3), Some(2));
    }

    #[test]
    fn handshakes_give_matching_keypairs() {
        let wgdp = StaticIdentity::new(PrivateKey::generate(&mut OsRng));
        let mut keys = handshakes(&wgdp, 3, 3, 2).expect("handshakes");
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
