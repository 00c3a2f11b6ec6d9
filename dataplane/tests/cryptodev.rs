//! `protocol`'s cryptodev AEAD backend through the dataplane's provider on
//! DPDK's `crypto_aesni_mb` software device (probed as a vdev here): the
//! RFC 8439 vector, the cross-check against ring on random inputs, bad
//! tags refused, sessions freed with their keys, on the CPU-crypto path and
//! on the enqueued-op path (from a worker lcore's own queue pair and from a
//! non-EAL thread's shared one), and clear errors at open.

use std::sync::atomic::{AtomicBool, Ordering};

use dataplane::cryptodev::{CryptodevAead, CryptodevSetup};
use dpdk_sys::rte::lcore::{launch_and_join, Job};
use dpdk_sys::rte::testing::{eal, unique};
use protocol::constants::KEY_LEN;
use protocol::crypto::provider::{
    cross_check_with_ring, known_answer_test, register_provider, AeadKey, AeadProvider,
    ProviderError,
};
use protocol::crypto::{AeadBackend, TransportKey};
use zeroize::Zeroizing;

fn setup(force_op_path: bool) -> CryptodevSetup {
    CryptodevSetup {
        device: unique("crypto_aesni_mb"),
        lcores: vec![0, 1, 2],
        sessions: 256,
        force_op_path,
    }
}

/// Which device [`BothPaths`] makes new keys on.
static USE_OPS: AtomicBool = AtomicBool::new(false);

/// Two devices, one per path; [`USE_OPS`] chooses which makes new keys
/// (one provider per process, so the test switches between them).
struct BothPaths {
    cpu: CryptodevAead,
    ops: CryptodevAead,
}

impl BothPaths {
    fn current(&self) -> &CryptodevAead {
        if USE_OPS.load(Ordering::SeqCst) {
            &self.ops
        } else {
            &self.cpu
        }
    }
}

impl AeadProvider for BothPaths {
    fn describe(&self) -> String {
        self.current().describe()
    }

    fn key(&self, key: &[u8; KEY_LEN], aad_len: usize) -> Result<Box<dyn AeadKey>, ProviderError> {
        self.current().key(key, aad_len)
    }
}

#[test]
fn cryptodev_backend_passes_rfc8439_and_matches_ring_on_both_paths() {
    let cpu = CryptodevAead::open(eal(), &setup(false)).expect("cpu-crypto device");
    let ops = CryptodevAead::open(eal(), &setup(true)).expect("op-path device");
    assert!(cpu.device().uses_cpu_crypto());
    assert!(!ops.device().uses_cpu_crypto());
    assert!(
        ops.describe().contains("enqueued ops"),
        "{}",
        ops.describe()
    );
    let provider = BothPaths {
        cpu: cpu.clone(),
        ops: ops.clone(),
    };
    assert!(!AeadBackend::Cryptodev.is_available());
    register_provider(std::sync::Arc::new(provider)).expect("first provider");
    assert!(AeadBackend::Cryptodev.is_available());
    assert_ne!(AeadBackend::auto(), AeadBackend::Cryptodev);
    let both = || {
        protocol::crypto::provider::provider()
            .expect("registered")
            .describe()
    };

    for (dev, use_ops) in [(&cpu, false), (&ops, true)] {
        USE_OPS.store(use_ops, Ordering::SeqCst);
        assert_eq!(both(), dev.describe());
        known_answer_test(AeadBackend::Cryptodev).unwrap_or_else(|e| panic!("{e}"));
        cross_check_with_ring(AeadBackend::Cryptodev, 7, 100).unwrap_or_else(|e| panic!("{e}"));
        // A key holds two sessions until it is dropped.
        let k = TransportKey::with_backend(AeadBackend::Cryptodev, Zeroizing::new([3; 32]));
        assert_eq!(k.backend(), AeadBackend::Cryptodev);
        assert_eq!(dev.device().sessions_in_use(), 2);
        // From a worker lcore (its own queue pair on the op path).
        let job: Job<'_, Result<(), String>> = Box::new(|| {
            let mut b = vec![9u8; 1424];
            let tag = k.seal(5, &mut b).map_err(|e| e.to_string())?;
            k.open(5, &mut b, &tag).map_err(|e| e.to_string())?;
            let mut bad = tag;
            bad[0] ^= 1;
            match k.open(5, &mut b, &bad) {
                Err(protocol::crypto::CryptoError::Authentication) => {}
                other => return Err(format!("bad tag: {other:?}")),
            }
            Ok(())
        });
        let out = launch_and_join(eal(), vec![(1, job)]);
        assert_eq!(out.len(), 1);
        out.into_iter()
            .next()
            .and_then(Result::ok)
            .expect("lcore 1 ran")
            .unwrap_or_else(|e| panic!("{e}"));
        drop(k);
        assert_eq!(
            dev.device().sessions_in_use(),
            0,
            "sessions freed with the key"
        );
    }
    assert!(protocol::crypto::provider::unregister_provider().is_some());
    assert!(!AeadBackend::Cryptodev.is_available());
    let k = TransportKey::with_backend(AeadBackend::Cryptodev, Zeroizing::new([3; 32]));
    assert_eq!(
        k.backend(),
        AeadBackend::Ring,
        "falls back once unregistered"
    );
}

#[test]
fn open_errors_name_the_device() {
    let mut s = setup(false);
    s.device = "crypto_nosuch7".into();
    let e = CryptodevAead::open(eal(), &s).expect_err("missing");
    assert!(e.to_string().contains("crypto_nosuch7"), "{e}");
    s.device = unique("crypto_null");
    let e = CryptodevAead::open(eal(), &s).expect_err("no ChaCha20-Poly1305");
    assert!(
        e.to_string().contains(&s.device) && e.to_string().contains("CHACHA20_POLY1305"),
        "{e}"
    );
}
