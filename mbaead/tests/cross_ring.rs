//! Randomized cross-check of every SIMD path this CPU has against ring's
//! ChaCha20-Poly1305 (an independent implementation): every length 0..=1500,
//! and mixed bursts (lengths, keys shared or not, additional data, burst
//! sizes over one and several passes) with some packets corrupted.

use mbaead::{Engine, Open, Seal};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

fn engines() -> Vec<Engine> {
    let e = Engine::available();
    eprintln!(
        "engines: {:?}",
        e.iter().map(|e| e.name()).collect::<Vec<_>>()
    );
    e
}

/// ring's ciphertext and tag.
fn ring_seal(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], pt: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let k = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).unwrap());
    let mut ct = pt.to_vec();
    let tag = k
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut ct)
        .unwrap();
    (ct, tag.as_ref().try_into().unwrap())
}

struct Packet {
    key: usize,
    nonce: [u8; 12],
    aad: Vec<u8>,
    pt: Vec<u8>,
}

fn random_packet(rng: &mut ChaCha8Rng, len: usize, keys: usize) -> Packet {
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let mut aad = vec![0u8; (rng.next_u32() % 3 * 13) as usize];
    rng.fill_bytes(&mut aad);
    let mut pt = vec![0u8; len];
    rng.fill_bytes(&mut pt);
    Packet {
        key: rng.next_u32() as usize % keys,
        nonce,
        aad,
        pt,
    }
}

/// Seals `packets` in one call and checks each against ring; then opens
/// them with the packets in `corrupt` altered (a ciphertext or tag bit) and
/// checks that exactly those fail, keep their ciphertext, and that every
/// other one opens to its plaintext.
fn check(engine: Engine, keys: &[[u8; 32]], packets: &[Packet], corrupt: &[(usize, usize)]) {
    let mut bufs: Vec<Vec<u8>> = packets.iter().map(|p| p.pt.clone()).collect();
    let mut seals: Vec<Seal> = packets
        .iter()
        .zip(bufs.iter_mut())
        .map(|(p, b)| Seal::new(&keys[p.key], p.nonce, &p.aad, b))
        .collect();
    engine.seal(&mut seals).unwrap();
    let mut tags: Vec<[u8; 16]> = seals.iter().map(|s| s.tag).collect();
    drop(seals);
    for (i, p) in packets.iter().enumerate() {
        let (ct, tag) = ring_seal(&keys[p.key], p.nonce, &p.aad, &p.pt);
        assert_eq!(
            bufs[i],
            ct,
            "{} packet {i} len {}",
            engine.name(),
            p.pt.len()
        );
        assert_eq!(
            tags[i],
            tag,
            "{} packet {i} len {}",
            engine.name(),
            p.pt.len()
        );
    }
    let mut bad = vec![false; packets.len()];
    for &(i, bit) in corrupt {
        let ct_bits = bufs[i].len() * 8;
        if bit < ct_bits {
            bufs[i][bit / 8] ^= 1 << (bit % 8);
        } else {
            let bit = (bit - ct_bits) % 128;
            tags[i][bit / 8] ^= 1 << (bit % 8);
        }
        bad[i] = true;
    }
    let sent = bufs.clone();
    let mut opens: Vec<Open> = packets
        .iter()
        .zip(bufs.iter_mut())
        .zip(&tags)
        .map(|((p, b), t)| Open::new(&keys[p.key], p.nonce, &p.aad, b, *t))
        .collect();
    engine.open(&mut opens).unwrap();
    let oks: Vec<bool> = opens.iter().map(|o| o.ok).collect();
    drop(opens);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(oks[i], !bad[i], "{} packet {i}", engine.name());
        let want = if bad[i] { &sent[i] } else { &p.pt };
        assert_eq!(&bufs[i], want, "{} packet {i}", engine.name());
    }
}

/// Every length 0..=1500, one full pass each (a key per lane), opened
/// untouched.
#[test]
fn every_length_up_to_1500_matches_ring() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut keys = vec![[0u8; 32]; 16];
    for k in &mut keys {
        rng.fill_bytes(k);
    }
    for engine in engines() {
        for len in 0..=1500 {
            let packets: Vec<Packet> = (0..engine.lanes())
                .map(|_| random_packet(&mut rng, len, keys.len()))
                .collect();
            check(engine, &keys, &packets, &[]);
        }
    }
}

/// Bursts of 1..=40 packets of random lengths 0..=1500 under two or five
/// keys (so lanes share keys and differ), about a quarter of them corrupted.
#[test]
fn mixed_bursts_with_mixed_keys_match_ring() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for engine in engines() {
        for round in 0..200 {
            let mut keys = vec![[0u8; 32]; if round % 2 == 0 { 2 } else { 5 }];
            for k in &mut keys {
                rng.fill_bytes(k);
            }
            let n = 1 + rng.next_u32() as usize % 40;
            let packets: Vec<Packet> = (0..n)
                .map(|_| {
                    let len = rng.next_u32() as usize % 1501;
                    random_packet(&mut rng, len, keys.len())
                })
                .collect();
            let mut corrupt = Vec::new();
            for (i, p) in packets.iter().enumerate() {
                if rng.next_u32() % 4 == 0 {
                    corrupt.push((i, rng.next_u32() as usize % (p.pt.len() * 8 + 128)));
                }
            }
            check(engine, &keys, &packets, &corrupt);
        }
    }
}
