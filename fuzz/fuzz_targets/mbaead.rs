//! The multi-buffer ChaCha20-Poly1305 (`mbaead`) against ring, on every
//! SIMD path this CPU has: a burst of packets with fuzzed keys (up to four,
//! shared between lanes), nonces, additional data and lengths, sealed in
//! one call and compared with ring packet by packet, then opened in one
//! call with some packets' ciphertext or tag altered.
//!
//! Input: the key count (1-4) and the keys (32 bytes each); then per
//! packet, while input remains and at most 40 packets: flags (bits 0-1 the
//! key, bit 2 alter the tag, bit 3 alter the ciphertext), a 12-byte nonce,
//! the additional data length (a byte), the plaintext length (two bytes,
//! mod 1501), the additional data and the plaintext (zeros past the end).
//! Checked: nothing panics; ciphertext and tag equal ring's; a packet opens
//! if and only if it was not altered, to its plaintext, and an altered
//! one keeps its ciphertext.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mbaead::{Engine, Open, Seal};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use wgdp_fuzz::input::Reader;

struct Packet {
    key: usize,
    nonce: [u8; 12],
    aad: Vec<u8>,
    pt: Vec<u8>,
    alter_tag: bool,
    alter_ct: bool,
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let nkeys = 1 + usize::from(r.u8() % 4);
    let keys: Vec<[u8; 32]> = (0..nkeys).map(|_| r.array::<32>()).collect();
    let mut packets = Vec::new();
    while !r.is_empty() && packets.len() < 40 {
        let flags = r.u8();
        let nonce = r.array::<12>();
        let aad_len = usize::from(r.u8());
        let len = usize::from(r.u16()) % 1501;
        let mut aad = r.take(aad_len).to_vec();
        aad.resize(aad_len, 0);
        let mut pt = r.take(len).to_vec();
        pt.resize(len, 0);
        packets.push(Packet {
            key: usize::from(flags & 3) % nkeys,
            nonce,
            aad,
            pt,
            alter_tag: flags & 4 != 0,
            alter_ct: flags & 8 != 0,
        });
    }
    for engine in Engine::available() {
        check(engine, &keys, &packets);
    }
});

fn check(engine: Engine, keys: &[[u8; 32]], packets: &[Packet]) {
    let mut bufs: Vec<Vec<u8>> = packets.iter().map(|p| p.pt.clone()).collect();
    let mut seals: Vec<Seal> = packets
        .iter()
        .zip(bufs.iter_mut())
        .map(|(p, b)| Seal::new(&keys[p.key], p.nonce, &p.aad, b))
        .collect();
    engine.seal(&mut seals).expect("lengths are below MAX_LEN");
    let mut tags: Vec<[u8; 16]> = seals.iter().map(|s| s.tag).collect();
    drop(seals);
    let mut bad = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let k = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &keys[p.key]).expect("key"));
        let mut ct = p.pt.clone();
        let tag = k
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(p.nonce),
                Aad::from(&p.aad),
                &mut ct,
            )
            .expect("ring seals");
        assert_eq!(bufs[i], ct, "{} packet {i}", engine.name());
        assert_eq!(&tags[i][..], tag.as_ref(), "{} packet {i}", engine.name());
        if p.alter_tag {
            tags[i][0] ^= 1;
        }
        if p.alter_ct && !bufs[i].is_empty() {
            let last = bufs[i].len() - 1;
            bufs[i][last] ^= 0x80;
        }
        bad.push(p.alter_tag || (p.alter_ct && !p.pt.is_empty()));
    }
    let sent = bufs.clone();
    let mut opens: Vec<Open> = packets
        .iter()
        .zip(bufs.iter_mut())
        .zip(&tags)
        .map(|((p, b), t)| Open::new(&keys[p.key], p.nonce, &p.aad, b, *t))
        .collect();
    engine.open(&mut opens).expect("lengths are below MAX_LEN");
    let oks: Vec<bool> = opens.iter().map(|o| o.ok).collect();
    drop(opens);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(oks[i], !bad[i], "{} packet {i}", engine.name());
        let want = if bad[i] { &sent[i] } else { &p.pt };
        assert_eq!(&bufs[i], want, "{} packet {i}", engine.name());
    }
}
