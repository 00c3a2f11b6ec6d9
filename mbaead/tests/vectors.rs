//! Known-answer tests of every SIMD path this CPU has: RFC 8439 section
//! 2.8.2's AEAD example, and the Wycheproof ChaCha20-Poly1305 vectors.
//!
//! `data/wycheproof_chacha20poly1305.blb` is Wycheproof's
//! `chacha20_poly1305_test.json` (github.com/google/wycheproof, Apache-2.0)
//! as the RustCrypto `chacha20poly1305` 0.10.1 crate ships it for its own
//! tests (`tests/data/`, blobby format: records of key, nonce, aad,
//! plaintext, ciphertext || tag, valid), copied from ~/.cargo/registry:
//! 293 vectors with 96-bit nonces, 233 valid and 60 invalid.

use mbaead::{Engine, Open, Seal, MAX_LEN};

fn engines() -> Vec<Engine> {
    let e = Engine::available();
    eprintln!(
        "engines: {:?}",
        e.iter().map(|e| e.name()).collect::<Vec<_>>()
    );
    e
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

const RFC_PT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
const RFC_CT: &str = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
const RFC_TAG: &str = "1ae10b594f09e26a7e902ecbd0600691";

fn rfc_key() -> [u8; 32] {
    std::array::from_fn(|i| 0x80 + i as u8)
}
const RFC_NONCE: [u8; 12] = [7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47];
const RFC_AAD: [u8; 12] = [
    0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
];

/// The example sealed and opened in every lane of two passes (lanes + 3
/// packets), each beside packets of other lengths and keys.
#[test]
fn rfc8439_section_2_8_2_in_every_lane() {
    let key = rfc_key();
    let other = [9u8; 32];
    for engine in engines() {
        let n = engine.lanes() + 3;
        for target in 0..n {
            let mut bufs: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    if i == target {
                        RFC_PT.to_vec()
                    } else {
                        vec![i as u8; 7 * i]
                    }
                })
                .collect();
            let mut jobs: Vec<Seal> = bufs
                .iter_mut()
                .enumerate()
                .map(|(i, b)| {
                    let k = if i == target { &key } else { &other };
                    Seal::new(
                        k,
                        if i == target {
                            RFC_NONCE
                        } else {
                            [i as u8; 12]
                        },
                        &RFC_AAD,
                        b,
                    )
                })
                .collect();
            engine.seal(&mut jobs).unwrap();
            assert_eq!(
                jobs[target].tag.to_vec(),
                hex(RFC_TAG),
                "{} lane {target}",
                engine.name()
            );
            drop(jobs);
            assert_eq!(bufs[target], hex(RFC_CT), "{} lane {target}", engine.name());
            let tag: [u8; 16] = hex(RFC_TAG).try_into().unwrap();
            let mut ct = hex(RFC_CT);
            let mut open = [Open::new(&key, RFC_NONCE, &RFC_AAD, &mut ct, tag)];
            engine.open(&mut open).unwrap();
            assert!(open[0].ok, "{}", engine.name());
            assert_eq!(ct, RFC_PT, "{}", engine.name());
        }
    }
}

/// A blobby file's blobs (blobby 0.3: a deduplicated index, then each blob
/// inline, `len << 1`, or an index reference, `i << 1 | 1`).
fn blobs(d: &[u8]) -> Vec<&[u8]> {
    let mut pos = 0;
    let vlq = |pos: &mut usize| {
        let mut b = d[*pos];
        *pos += 1;
        let mut v = usize::from(b & 0x7f);
        while b & 0x80 != 0 {
            b = d[*pos];
            *pos += 1;
            v = ((v + 1) << 7) | usize::from(b & 0x7f);
        }
        v
    };
    let n = vlq(&mut pos);
    let mut index = Vec::new();
    for _ in 0..n {
        let l = vlq(&mut pos);
        index.push(&d[pos..pos + l]);
        pos += l;
    }
    let mut out = Vec::new();
    while pos < d.len() {
        let v = vlq(&mut pos);
        if v & 1 == 1 {
            out.push(index[v >> 1]);
        } else {
            out.push(&d[pos..pos + (v >> 1)]);
            pos += v >> 1;
        }
    }
    out
}

struct Vector<'a> {
    key: [u8; 32],
    nonce: [u8; 12],
    aad: &'a [u8],
    pt: &'a [u8],
    ct: &'a [u8],
    tag: [u8; 16],
    valid: bool,
}

fn wycheproof() -> Vec<Vector<'static>> {
    let d: &'static [u8] = include_bytes!("data/wycheproof_chacha20poly1305.blb");
    let b = blobs(d);
    assert_eq!(b.len() % 6, 0);
    b.chunks(6)
        .map(|r| {
            let (ct, tag) = r[4].split_at(r[4].len() - 16);
            Vector {
                key: r[0].try_into().unwrap(),
                nonce: r[1].try_into().unwrap(),
                aad: r[2],
                pt: r[3],
                ct,
                tag: tag.try_into().unwrap(),
                valid: r[5] == [1],
            }
        })
        .collect()
}

/// Every Wycheproof vector, in bursts of 16 consecutive vectors (mixed keys,
/// lengths, additional data, valid and invalid): valid ones seal to their
/// ciphertext and tag and open to their plaintext; invalid ones fail to
/// open, alone in their burst, and leave their ciphertext as it was.
#[test]
fn wycheproof_vectors_in_mixed_bursts() {
    let vectors = wycheproof();
    assert_eq!(vectors.len(), 293);
    assert_eq!(vectors.iter().filter(|v| v.valid).count(), 233);
    for engine in engines() {
        for burst in vectors.chunks(16) {
            let mut bufs: Vec<Vec<u8>> = burst.iter().map(|v| v.ct.to_vec()).collect();
            let mut opens: Vec<Open> = burst
                .iter()
                .zip(bufs.iter_mut())
                .map(|(v, b)| Open::new(&v.key, v.nonce, v.aad, b, v.tag))
                .collect();
            engine.open(&mut opens).unwrap();
            let oks: Vec<bool> = opens.iter().map(|o| o.ok).collect();
            drop(opens);
            for ((v, b), ok) in burst.iter().zip(&bufs).zip(oks) {
                assert_eq!(ok, v.valid, "{}", engine.name());
                assert_eq!(
                    b.as_slice(),
                    if v.valid { v.pt } else { v.ct },
                    "{}",
                    engine.name()
                );
            }
            let valid: Vec<&Vector> = burst.iter().filter(|v| v.valid).collect();
            let mut bufs: Vec<Vec<u8>> = valid.iter().map(|v| v.pt.to_vec()).collect();
            let mut seals: Vec<Seal> = valid
                .iter()
                .zip(bufs.iter_mut())
                .map(|(v, b)| Seal::new(&v.key, v.nonce, v.aad, b))
                .collect();
            engine.seal(&mut seals).unwrap();
            let tags: Vec<[u8; 16]> = seals.iter().map(|s| s.tag).collect();
            drop(seals);
            for ((v, b), tag) in valid.iter().zip(&bufs).zip(tags) {
                assert_eq!(b.as_slice(), v.ct, "{}", engine.name());
                assert_eq!(tag, v.tag, "{}", engine.name());
            }
        }
    }
}

/// A job longer than MAX_LEN refuses the burst, naming it, before any
/// packet is touched.
#[test]
fn a_job_past_max_len_refuses_the_burst_untouched() {
    let key = [1u8; 32];
    for engine in engines() {
        let mut short = vec![5u8; 100];
        let mut long = vec![6u8; MAX_LEN + 1];
        let mut jobs = [
            Seal::new(&key, [0; 12], &[], &mut short),
            Seal::new(&key, [0; 12], &[], &mut long),
        ];
        assert_eq!(
            engine.seal(&mut jobs),
            Err(mbaead::Error::TooLong { index: 1 })
        );
        assert_eq!(jobs[0].tag, [0; 16]);
        assert!(short.iter().all(|&b| b == 5) && long.iter().all(|&b| b == 6));
        let mut at_limit = vec![6u8; MAX_LEN];
        let mut jobs = [Seal::new(&key, [0; 12], &[], &mut at_limit)];
        assert_eq!(engine.seal(&mut jobs), Ok(()));
    }
}
