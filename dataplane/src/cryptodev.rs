//! The DPDK crypto device behind `protocol`'s [`AeadBackend::Cryptodev`]:
//! an [`AeadProvider`] over [`dpdk_sys::rte::cryptodev`].
//!
//! [`CryptodevAead::open`] opens and starts the device (a `crypto_aesni_mb`
//! vdev, or an accelerator such as QAT) and checks its ChaCha20-Poly1305
//! capability; registering it ([`protocol::crypto::provider::register_provider`])
//! makes the backend available. Each transport key gets two sessions (DPDK
//! sessions have one direction), made on the control thread when the
//! keypair is derived and freed with it; the driver clears a session's
//! copy of the key when it is freed.
//!
//! Per packet: on a device with the CPU-crypto API the buffer is sealed or
//! opened in place on the calling lcore, nothing else. Otherwise each lcore
//! named at open has its own queue pair with a preallocated op and staging
//! mbuf (no lock, no allocation; the payload is copied into the staging
//! mbuf and back), and threads that are not EAL lcores (tests, tools)
//! share one more queue pair behind a mutex.
//!
//! [`AeadBackend::Cryptodev`]: protocol::crypto::AeadBackend::Cryptodev

use std::sync::{Arc, Mutex};

use dpdk_sys::rte::cryptodev::{
    CryptoOpError, Cryptodev, CryptodevConfig, QueuePair, Session, TAG_LEN,
};
use dpdk_sys::rte::{Eal, PerLcore, RteError};
use protocol::constants::{AEAD_TAG_LEN, KEY_LEN};
use protocol::crypto::provider::{AeadKey, AeadProvider, ProviderError, NONCE_LEN};
use protocol::crypto::CryptoError;

/// How to open the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptodevSetup {
    /// The device name or devargs (`crypto_aesni_mb0`, `0000:3d:01.0_qat_sym`).
    pub device: String,
    /// The EAL lcores that seal and open (workers and the main lcore).
    pub lcores: Vec<u32>,
    /// Sessions in the session pool: two per transport key.
    pub sessions: u32,
    /// Take the operation path even where the device has CPU crypto.
    pub force_op_path: bool,
}

struct Inner {
    dev: Cryptodev,
    /// A queue pair per lcore (op path only; empty on the CPU-crypto path).
    lcores: PerLcore<QueuePair>,
    /// For threads that are not EAL lcores (op path only).
    shared: Mutex<Option<QueuePair>>,
}

/// The crypto-device AEAD provider.
#[derive(Clone)]
pub struct CryptodevAead(Arc<Inner>);

impl std::fmt::Debug for CryptodevAead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptodevAead")
            .field("device", &self.0.dev)
            .finish_non_exhaustive()
    }
}

impl CryptodevAead {
    /// Opens the device for `setup.lcores` (a queue pair each, plus one
    /// shared, where the device has no CPU crypto or it is forced off).
    /// Errors name the device: missing, without ChaCha20-Poly1305, or
    /// short of queue pairs.
    pub fn open(eal: &Eal, setup: &CryptodevSetup) -> Result<Self, RteError> {
        let queue_pairs = u16::try_from(setup.lcores.len() + 1).unwrap_or(u16::MAX);
        let config = CryptodevConfig {
            queue_pairs,
            sessions: setup.sessions,
            force_op_path: setup.force_op_path,
        };
        let dev = Cryptodev::open(eal, &setup.device, &config)?;
        let mut queues = Vec::new();
        let mut shared = None;
        if !dev.uses_cpu_crypto() {
            for (qp, &l) in setup.lcores.iter().enumerate() {
                queues.push((l, dev.queue_pair(qp as u16)?));
            }
            shared = Some(dev.queue_pair(queue_pairs - 1)?);
        }
        let lcores = PerLcore::new(queues).map_err(|l| {
            RteError::invalid(
                format!("crypto device {}", setup.device),
                format!("lcore {l}"),
            )
        })?;
        Ok(CryptodevAead(Arc::new(Inner {
            dev,
            lcores,
            shared: Mutex::new(shared),
        })))
    }

    /// The device.
    pub fn device(&self) -> &Cryptodev {
        &self.0.dev
    }
}

impl AeadProvider for CryptodevAead {
    fn describe(&self) -> String {
        let info = self.0.dev.info();
        format!(
            "crypto device {} (driver {}, {})",
            info.name,
            info.driver,
            if self.0.dev.uses_cpu_crypto() {
                "CPU-crypto API"
            } else {
                "enqueued ops"
            }
        )
    }

    fn key(&self, key: &[u8; KEY_LEN], aad_len: usize) -> Result<Box<dyn AeadKey>, ProviderError> {
        let make = |encrypt| {
            self.0.dev.session(key, encrypt, aad_len).map_err(|e| {
                tracing::warn!(error = %e, "crypto device session; this key falls back to ring");
                ProviderError(e.to_string())
            })
        };
        Ok(Box::new(DeviceKey {
            seal: make(true)?,
            open: make(false)?,
            inner: self.0.clone(),
        }))
    }
}

/// A transport key on the device: one session per direction.
struct DeviceKey {
    seal: Session,
    open: Session,
    inner: Arc<Inner>,
}

impl DeviceKey {
    #[inline]
    fn run(
        &self,
        session: &Session,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<(), CryptoOpError> {
        if self.inner.dev.uses_cpu_crypto() {
            return session.process(nonce, aad, data, tag);
        }
        if let Some(done) = self
            .inner
            .lcores
            .with(|qp| qp.process(session, nonce, aad, data, tag))
        {
            return done;
        }
        let mut shared = self
            .inner
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match shared.as_mut() {
            Some(qp) => qp.process(session, nonce, aad, data, tag),
            None => Err(CryptoOpError::Lost),
        }
    }
}

fn crypto_error(e: CryptoOpError) -> CryptoError {
    match e {
        CryptoOpError::Authentication => CryptoError::Authentication,
        _ => CryptoError::Device,
    }
}

impl AeadKey for DeviceKey {
    #[inline]
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; AEAD_TAG_LEN], CryptoError> {
        let mut tag = [0u8; AEAD_TAG_LEN];
        self.run(&self.seal, nonce, aad, in_out, &mut tag)
            .map_err(crypto_error)?;
        Ok(tag)
    }

    #[inline]
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; AEAD_TAG_LEN],
    ) -> Result<(), CryptoError> {
        let mut t = *tag;
        self.run(&self.open, nonce, aad, in_out, &mut t)
            .map_err(crypto_error)
    }
}
