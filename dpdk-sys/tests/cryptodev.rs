//! rte::cryptodev against DPDK's `crypto_aesni_mb` software device, probed
//! as a vdev (every test its own device): both operation paths, the
//! RFC 8439 AEAD vector, bad tags, session lifetime and setup errors.

use dpdk_sys::rte::cryptodev::{CryptoOpError, Cryptodev, CryptodevConfig, Session};
use dpdk_sys::rte::testing::{eal, unique};

fn open(force_op_path: bool) -> Cryptodev {
    let config = CryptodevConfig {
        queue_pairs: 2,
        sessions: 64,
        force_op_path,
    };
    Cryptodev::open(eal(), &unique("crypto_aesni_mb"), &config).expect("crypto_aesni_mb vdev")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// RFC 8439 appendix A.5: key, nonce, AAD, plaintext, ciphertext, tag.
type Vector = ([u8; 32], [u8; 12], Vec<u8>, Vec<u8>, Vec<u8>, [u8; 16]);

fn rfc8439() -> Vector {
    let key = unhex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0");
    let plain = "Internet-Drafts are draft documents valid for a maximum of six months \
        and may be updated, replaced, or obsoleted by other documents at any time. It is \
        inappropriate to use Internet-Drafts as reference material or to cite them other \
        than as /\u{201c}work in progress./\u{201d}";
    let cipher = unhex(concat!(
        "64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2",
        "4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf",
        "332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855",
        "9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4",
        "b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e",
        "af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a",
        "0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10",
        "49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29",
        "a6ad5cb4022b02709b",
    ));
    (
        key.try_into().expect("32"),
        unhex("000000000102030405060708").try_into().expect("12"),
        unhex("f33388860000000000004e91"),
        plain.as_bytes().to_vec(),
        cipher,
        unhex("eead9d67890cbb22392336fea1851f38")
            .try_into()
            .expect("16"),
    )
}

/// Runs the RFC vector through `run` (one of the two paths).
fn check_vector(
    dev: &Cryptodev,
    mut run: impl FnMut(
        &Session,
        &[u8; 12],
        &[u8],
        &mut [u8],
        &mut [u8; 16],
    ) -> Result<(), CryptoOpError>,
) {
    let (key, iv, aad, plain, cipher, want_tag) = rfc8439();
    let seal = dev.session(&key, true, aad.len()).expect("encrypt session");
    let open = dev
        .session(&key, false, aad.len())
        .expect("decrypt session");
    let mut buf = plain.clone();
    let mut tag = [0u8; 16];
    run(&seal, &iv, &aad, &mut buf, &mut tag).expect("seal");
    assert_eq!(buf, cipher, "ciphertext");
    assert_eq!(tag, want_tag, "tag");
    let mut bad = buf.clone();
    bad[100] ^= 1;
    let mut t = tag;
    assert_eq!(
        run(&open, &iv, &aad, &mut bad, &mut t),
        Err(CryptoOpError::Authentication)
    );
    let mut t = tag;
    t[15] ^= 0x80;
    let mut c = buf.clone();
    assert_eq!(
        run(&open, &iv, &aad, &mut c, &mut t),
        Err(CryptoOpError::Authentication)
    );
    let mut t = tag;
    run(&open, &iv, &aad, &mut buf, &mut t).expect("open");
    assert_eq!(buf, plain);
    // WireGuard's shape: no AAD, a keepalive (empty) and a full packet.
    let seal0 = dev.session(&key, true, 0).expect("session");
    let open0 = dev.session(&key, false, 0).expect("session");
    for len in [0usize, 16, 1424] {
        let mut b = vec![0x5a; len];
        let mut t = [0u8; 16];
        run(&seal0, &iv, &[], &mut b, &mut t).expect("seal");
        run(&open0, &iv, &[], &mut b, &mut t).expect("open");
        assert_eq!(b, vec![0x5a; len]);
    }
}

#[test]
fn aesni_mb_has_cpu_crypto_for_chacha_poly_and_matches_rfc8439() {
    let dev = open(false);
    assert_eq!(dev.info().driver, "crypto_aesni_mb");
    assert!(dev.info().cpu_crypto, "{:?}", dev.info());
    assert!(dev.uses_cpu_crypto());
    check_vector(&dev, |s, iv, aad, data, tag| s.process(iv, aad, data, tag));
}

#[test]
fn op_path_matches_rfc8439_through_a_queue_pair() {
    let dev = open(true);
    assert!(!dev.uses_cpu_crypto());
    let mut qp = dev.queue_pair(0).expect("queue pair 0");
    assert!(dev.queue_pair(0).is_err(), "a queue pair has one handle");
    assert!(dev.queue_pair(2).is_err(), "only 2 queue pairs");
    check_vector(&dev, |s, iv, aad, data, tag| {
        qp.process(s, iv, aad, data, tag)
    });
    let mut big = vec![0u8; dpdk_sys::rte::cryptodev::MAX_DATA_LEN + 1];
    let s = dev.session(&[1; 32], true, 0).expect("session");
    assert_eq!(
        qp.process(&s, &[0; 12], &[], &mut big, &mut [0; 16]),
        Err(CryptoOpError::TooLong(big.len()))
    );
    drop(qp);
    dev.queue_pair(0).expect("free again once dropped");
}

#[test]
fn both_paths_agree_on_random_inputs() {
    let cpu = open(false);
    let ops = open(true);
    let mut qp = ops.queue_pair(1).expect("queue pair");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..50 {
        let key: [u8; 32] = std::array::from_fn(|_| next() as u8);
        let iv: [u8; 12] = std::array::from_fn(|_| next() as u8);
        let len = (next() % 1500) as usize;
        let plain: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let (mut a, mut b) = (plain.clone(), plain.clone());
        let (mut ta, mut tb) = ([0u8; 16], [0u8; 16]);
        let sa = cpu.session(&key, true, 0).expect("session");
        let sb = ops.session(&key, true, 0).expect("session");
        sa.process(&iv, &[], &mut a, &mut ta).expect("cpu seal");
        qp.process(&sb, &iv, &[], &mut b, &mut tb).expect("op seal");
        assert_eq!((a.clone(), ta), (b, tb), "len {len}");
        let oa = ops.session(&key, false, 0).expect("session");
        qp.process(&oa, &iv, &[], &mut a, &mut ta)
            .expect("op opens cpu");
        assert_eq!(a, plain);
    }
}

#[test]
fn sessions_are_returned_and_cleared_on_drop() {
    let dev = open(false);
    let key = [0xa7u8; 32];
    let s = dev.session(&key, true, 0).expect("session");
    assert_eq!(dev.sessions_in_use(), 1);
    let (p, size) = s.raw_element();
    let has_key = |p: *const u8| {
        // SAFETY: the element stays in the session pool, which the device
        // keeps while `dev` lives.
        let bytes = unsafe { std::slice::from_raw_parts(p, size) };
        bytes.windows(8).any(|w| w == [0xa7; 8])
    };
    assert!(has_key(p), "the driver keeps the key in the session");
    drop(s);
    assert_eq!(dev.sessions_in_use(), 0);
    assert!(!has_key(p), "key bytes left in a freed session");
}

#[test]
fn missing_device_and_wrong_sizes_are_clear_errors() {
    let config = CryptodevConfig {
        queue_pairs: 1,
        sessions: 16,
        force_op_path: false,
    };
    let e = Cryptodev::open(eal(), "crypto_nosuch0", &config).expect_err("no such device");
    assert!(e.to_string().contains("crypto_nosuch0"), "{e}");
    let too_many = CryptodevConfig {
        queue_pairs: 1000,
        ..config
    };
    let e = Cryptodev::open(eal(), &unique("crypto_aesni_mb"), &too_many).expect_err("qps");
    assert!(e.to_string().contains("1000 queue pairs"), "{e}");
    // crypto_null has no ChaCha20-Poly1305.
    let e = Cryptodev::open(eal(), &unique("crypto_null"), &config).expect_err("no chacha");
    assert!(e.to_string().contains("CHACHA20_POLY1305"), "{e}");
}
