//! Crypto devices (`rte_cryptodev`) for one algorithm: ChaCha20-Poly1305
//! AEAD with a 12-byte IV and a 16-byte tag, sealing and opening a byte
//! buffer in place.
//!
//! A [`Cryptodev`] is opened by name: a virtual device created with
//! `--vdev` in the EAL arguments (or probed here from a devargs string,
//! e.g. `crypto_aesni_mb0`), or a hardware device EAL probed (a QAT
//! function given with `-a 0000:3d:01.0` appears as `0000:3d:01.0_qat_sym`).
//! It is configured with a number of queue pairs (one per lcore that uses
//! it) and started; it must report the ChaCha20-Poly1305 AEAD capability.
//!
//! A [`Session`] holds one key for one direction (DPDK sessions are either
//! encrypt or decrypt). It is created off the fast path. The key bytes we
//! are given are copied by the driver into the session's private data;
//! the xform we pass points at the caller's buffer and nothing of ours
//! keeps a copy. What DPDK keeps: the session's private data in the
//! session mempool until [`Session`] is dropped; `rte_cryptodev_sym_session_free`
//! then has the driver clear it (the ipsec-mb drivers zero it; tested in
//! `tests/cryptodev.rs`) before the element returns to the pool.
//!
//! Two ways to run an operation, both synchronous and allocation-free:
//!
//! - the CPU-crypto API (`rte_cryptodev_sym_cpu_crypto_process`), where the
//!   device has `RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO` (software devices such as
//!   `crypto_aesni_mb`): the caller's buffer is processed in place on the
//!   calling thread; [`Session::process`].
//! - the operation path (enqueue one `rte_crypto_op`, poll its completion)
//!   for devices without it (QAT and other accelerators): through a
//!   [`QueuePair`], which owns one preallocated op and one staging mbuf.
//!   The op needs an mbuf in DPDK memory (an accelerator reads it by IOVA),
//!   and the caller's buffer is plain memory, so the data is copied into
//!   the staging mbuf and back: two copies of the payload per operation.
//!   The IV, the AAD and the tag live in the op's private area.

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Eal, Mbuf, Mempool, RteError};
use crate::ffi;

/// ChaCha20-Poly1305 key length.
pub const KEY_LEN: usize = 32;
/// ChaCha20-Poly1305 IV (nonce) length.
pub const IV_LEN: usize = 12;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// The most associated data a session takes.
pub const MAX_AAD_LEN: usize = 32;
/// The longest buffer the operation path takes (a 9000-byte MTU, padded).
pub const MAX_DATA_LEN: usize = 9216;

/// Where the IV sits in an op: right after the symmetric op (DPDK's
/// convention; the session's xform names this offset).
const IV_OFFSET: usize =
    core::mem::size_of::<ffi::rte_crypto_op>() + core::mem::size_of::<ffi::rte_crypto_sym_op>();
/// Private area of an op: the IV (16 bytes reserved), the AAD, the tag.
const AAD_OFFSET: usize = IV_OFFSET + 16;
const TAG_OFFSET: usize = AAD_OFFSET + MAX_AAD_LEN;
const OP_PRIVATE: usize = 16 + MAX_AAD_LEN + TAG_LEN;
/// Polls of a queue pair before an operation counts as lost.
const POLL_LIMIT: u32 = 100_000_000;
/// Descriptors per queue pair (one op is ever in flight).
const QP_DESCRIPTORS: u32 = 64;

/// Why one operation failed. The buffer's contents are unspecified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoOpError {
    /// The tag did not authenticate the data.
    #[error("authentication failed")]
    Authentication,
    /// The buffer or AAD is longer than this path takes.
    #[error("{0} bytes is more than the crypto device path takes")]
    TooLong(usize),
    /// The AAD is not as long as the session was made for.
    #[error("{0} bytes of AAD; the session was made for another length")]
    AadLength(usize),
    /// The device refused or failed the operation (status or errno).
    #[error("the crypto device failed the operation ({0})")]
    Device(i32),
    /// The device did not complete the operation in time; this queue pair
    /// no longer works (its op may still be in the device).
    #[error("the crypto device did not complete the operation")]
    Lost,
}

/// What a crypto device is and can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptodevInfo {
    /// The device's name.
    pub name: String,
    /// The driver (`crypto_aesni_mb`, `crypto_qat`, ...).
    pub driver: String,
    /// Most queue pairs.
    pub max_queue_pairs: u32,
    /// Whether it offers the synchronous CPU-crypto API.
    pub cpu_crypto: bool,
    /// Whether it is a hardware accelerator.
    pub hardware: bool,
}

struct DevInner {
    id: u8,
    info: CryptodevInfo,
    use_cpu: bool,
    session_pool: NonNull<ffi::rte_mempool>,
    op_pool: NonNull<ffi::rte_mempool>,
    staging: Mempool,
    qp_taken: Vec<AtomicBool>,
    _eal: Eal,
}

// SAFETY: the pools are thread-safe DPDK objects; the device id is a
// number; nothing is mutated through a shared reference.
unsafe impl Send for DevInner {}
// SAFETY: as above.
unsafe impl Sync for DevInner {}

impl Drop for DevInner {
    fn drop(&mut self) {
        // SAFETY: every session and queue pair holds an Arc on us, so none
        // is left; nothing is in flight.
        unsafe {
            ffi::rte_cryptodev_stop(self.id);
            ffi::rte_cryptodev_close(self.id);
            ffi::rte_mempool_free(self.op_pool.as_ptr());
            ffi::rte_mempool_free(self.session_pool.as_ptr());
        }
    }
}

/// A configured, started crypto device. Stopped and closed when it and
/// every [`Session`] and [`QueuePair`] made from it are dropped.
#[derive(Clone)]
pub struct Cryptodev(Arc<DevInner>);

impl std::fmt::Debug for Cryptodev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cryptodev")
            .field("id", &self.0.id)
            .field("info", &self.0.info)
            .field("cpu_path", &self.0.use_cpu)
            .finish()
    }
}

/// How to set a device up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptodevConfig {
    /// Queue pairs (one per lcore using the operation path).
    pub queue_pairs: u16,
    /// Sessions the session pool holds (two per key: one per direction).
    pub sessions: u32,
    /// Use the operation path even where the device has CPU crypto (to
    /// test the path accelerators take on a software device).
    pub force_op_path: bool,
}

impl Cryptodev {
    /// The crypto device called `devargs`' name (its part before the first
    /// comma), probing `devargs` first if no such device exists yet; then
    /// checked for the ChaCha20-Poly1305 AEAD capability, configured and
    /// started.
    pub fn open(eal: &Eal, devargs: &str, config: &CryptodevConfig) -> Result<Self, RteError> {
        let name = devargs.split(',').next().unwrap_or(devargs);
        let op = format!("crypto device {name}");
        let cname = CString::new(name).map_err(|_| RteError::invalid(op.clone(), "NUL byte"))?;
        // SAFETY: valid string.
        let mut id = unsafe { ffi::rte_cryptodev_get_dev_id(cname.as_ptr()) };
        if id < 0 {
            let c = CString::new(devargs).map_err(|_| RteError::invalid(op.clone(), "NUL byte"))?;
            // SAFETY: EAL is initialised; valid string.
            let ret = unsafe { ffi::rte_dev_probe(c.as_ptr()) };
            // SAFETY: valid string.
            id = unsafe { ffi::rte_cryptodev_get_dev_id(cname.as_ptr()) };
            if id < 0 {
                let why = if ret != 0 {
                    RteError::from_ret("", ret).message
                } else {
                    "the device is not a crypto device".into()
                };
                return Err(RteError::invalid(
                    op,
                    format!("no crypto device of that name, and probing {devargs:?} failed: {why}"),
                ));
            }
        }
        let id = u8::try_from(id).map_err(|_| RteError::invalid(op.clone(), "device id"))?;
        let info = device_info(id, name);
        if !has_chacha_poly(id) {
            return Err(RteError::invalid(
                op,
                format!(
                    "driver {} has no CHACHA20_POLY1305 AEAD capability with a 32-byte key, 12-byte IV and 16-byte tag",
                    info.driver
                ),
            ));
        }
        if config.queue_pairs == 0 || u32::from(config.queue_pairs) > info.max_queue_pairs {
            return Err(RteError::invalid(
                op,
                format!(
                    "{} queue pairs asked, the device has 1..={}",
                    config.queue_pairs, info.max_queue_pairs
                ),
            ));
        }
        // SAFETY: EAL is initialised; the device exists.
        let socket = unsafe { ffi::rte_cryptodev_socket_id(id) }.max(0);
        let mut dc = ffi::rte_cryptodev_config {
            socket_id: socket,
            nb_queue_pairs: config.queue_pairs,
            ff_disable: 0,
        };
        // SAFETY: valid device and config.
        let ret = unsafe { ffi::rte_cryptodev_configure(id, &mut dc) };
        if ret < 0 {
            return Err(RteError::from_ret(
                format!("rte_cryptodev_configure({name})"),
                ret,
            ));
        }
        let pools = Pools::new(eal, id, name, config, socket)?;
        let qc = ffi::rte_cryptodev_qp_conf {
            nb_descriptors: QP_DESCRIPTORS,
            mp_session: pools.session.as_ptr(),
        };
        for qp in 0..config.queue_pairs {
            // SAFETY: configured device; valid conf.
            let ret = unsafe { ffi::rte_cryptodev_queue_pair_setup(id, qp, &qc, socket) };
            if ret < 0 {
                return Err(RteError::from_ret(
                    format!("rte_cryptodev_queue_pair_setup({name}, {qp})"),
                    ret,
                ));
            }
        }
        // SAFETY: configured device.
        let ret = unsafe { ffi::rte_cryptodev_start(id) };
        if ret < 0 {
            return Err(RteError::from_ret(
                format!("rte_cryptodev_start({name})"),
                ret,
            ));
        }
        let use_cpu = info.cpu_crypto && !config.force_op_path;
        let (session_pool, op_pool, staging) = pools.into_parts();
        Ok(Cryptodev(Arc::new(DevInner {
            id,
            info,
            use_cpu,
            session_pool,
            op_pool,
            staging,
            qp_taken: (0..config.queue_pairs)
                .map(|_| AtomicBool::new(false))
                .collect(),
            _eal: eal.clone(),
        })))
    }

    /// What the device is.
    pub fn info(&self) -> &CryptodevInfo {
        &self.0.info
    }

    /// Whether operations run through the CPU-crypto API ([`Session::process`])
    /// rather than a [`QueuePair`].
    pub fn uses_cpu_crypto(&self) -> bool {
        self.0.use_cpu
    }

    /// Queue pairs configured.
    pub fn queue_pairs(&self) -> u16 {
        self.0.qp_taken.len() as u16
    }

    /// Sessions in use (two per key).
    pub fn sessions_in_use(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { ffi::wgdp_mempool_in_use_count(self.0.session_pool.as_ptr()) }
    }

    /// A session for `key` that seals (`encrypt`) or opens, with
    /// associated data of exactly `aad_len` bytes (0 for WireGuard data
    /// messages). The driver copies the key; `key` stays the caller's.
    pub fn session(
        &self,
        key: &[u8; KEY_LEN],
        encrypt: bool,
        aad_len: usize,
    ) -> Result<Session, RteError> {
        let op = format!("rte_cryptodev_sym_session_create({})", self.0.info.name);
        if aad_len > MAX_AAD_LEN {
            return Err(RteError::invalid(op, format!("AAD of {aad_len} bytes")));
        }
        let mut xform = ffi::rte_crypto_sym_xform {
            type_: ffi::rte_crypto_sym_xform_type::RTE_CRYPTO_SYM_XFORM_AEAD,
            ..Default::default()
        };
        xform.__bindgen_anon_1.aead = ffi::rte_crypto_aead_xform {
            op: if encrypt {
                ffi::rte_crypto_aead_operation::RTE_CRYPTO_AEAD_OP_ENCRYPT
            } else {
                ffi::rte_crypto_aead_operation::RTE_CRYPTO_AEAD_OP_DECRYPT
            },
            algo: ffi::rte_crypto_aead_algorithm::RTE_CRYPTO_AEAD_CHACHA20_POLY1305,
            key: ffi::rte_crypto_aead_xform__bindgen_ty_1 {
                data: key.as_ptr(),
                length: KEY_LEN as u16,
            },
            iv: ffi::rte_crypto_aead_xform__bindgen_ty_2 {
                offset: IV_OFFSET as u16,
                length: IV_LEN as u16,
            },
            digest_length: TAG_LEN as u16,
            aad_length: aad_len as u16,
        };
        // SAFETY: a started device; the xform and the key it points to are
        // valid for the call, and the driver copies what it keeps.
        let raw = unsafe {
            ffi::rte_cryptodev_sym_session_create(
                self.0.id,
                &mut xform,
                self.0.session_pool.as_ptr(),
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| RteError::from_rte_errno(op))?;
        Ok(Session {
            raw,
            aad_len,
            dev: self.0.clone(),
        })
    }

    /// The queue pair `qp`, for the calling lcore alone; `None` if it does
    /// not exist or already has a handle. Allocates its op and staging
    /// mbuf here, off the fast path.
    pub fn queue_pair(&self, qp: u16) -> Result<QueuePair, RteError> {
        let op = format!("queue pair {qp} of crypto device {}", self.0.info.name);
        let taken = self
            .0
            .qp_taken
            .get(usize::from(qp))
            .is_none_or(|t| t.swap(true, Ordering::AcqRel));
        if taken {
            return Err(RteError::invalid(
                op,
                "does not exist or already has a handle",
            ));
        }
        let release = || self.0.qp_taken[usize::from(qp)].store(false, Ordering::Release);
        // SAFETY: the op pool is valid.
        let raw = unsafe { ffi::wgdp_crypto_op_alloc(self.0.op_pool.as_ptr()) };
        let Some(cop) = NonNull::new(raw) else {
            release();
            return Err(RteError::invalid(op, "op pool exhausted"));
        };
        let Some(mbuf) = self.0.staging.alloc() else {
            // SAFETY: ours, never enqueued.
            unsafe { ffi::wgdp_crypto_op_free(cop.as_ptr()) };
            release();
            return Err(RteError::invalid(op, "staging mbuf pool exhausted"));
        };
        Ok(QueuePair {
            qp,
            op: Some(cop),
            mbuf,
            dev: self.0.clone(),
            _not_sync: PhantomData,
        })
    }
}

/// The three pools a device needs, freed on error until handed over.
struct Pools {
    session: NonNull<ffi::rte_mempool>,
    op: NonNull<ffi::rte_mempool>,
    staging: Option<Mempool>,
}

impl Pools {
    fn new(
        eal: &Eal,
        id: u8,
        name: &str,
        config: &CryptodevConfig,
        socket: i32,
    ) -> Result<Self, RteError> {
        // Pool names are global to the process and at most 26 bytes.
        let tag = format!("{}_{id}", std::process::id() % 100_000);
        let sname = CString::new(format!("wgdp_cs{tag}")).expect("no NUL");
        // SAFETY: a configured device.
        let priv_size = unsafe { ffi::rte_cryptodev_sym_get_private_session_size(id) };
        // SAFETY: valid name; sizes from the device.
        let session = unsafe {
            ffi::rte_cryptodev_sym_session_pool_create(
                sname.as_ptr(),
                config.sessions,
                priv_size,
                0,
                0,
                socket,
            )
        };
        let session = NonNull::new(session).ok_or_else(|| {
            RteError::from_rte_errno(format!(
                "rte_cryptodev_sym_session_pool_create({name}, {} sessions)",
                config.sessions
            ))
        })?;
        let oname = CString::new(format!("wgdp_co{tag}")).expect("no NUL");
        // SAFETY: valid name.
        let op = unsafe {
            ffi::rte_crypto_op_pool_create(
                oname.as_ptr(),
                ffi::rte_crypto_op_type::RTE_CRYPTO_OP_TYPE_SYMMETRIC,
                u32::from(config.queue_pairs),
                0,
                OP_PRIVATE as u16,
                socket,
            )
        };
        let Some(op) = NonNull::new(op) else {
            // SAFETY: just created, unused.
            unsafe { ffi::rte_mempool_free(session.as_ptr()) };
            return Err(RteError::from_rte_errno(format!(
                "rte_crypto_op_pool_create({name})"
            )));
        };
        let mut pools = Pools {
            session,
            op,
            staging: None,
        };
        let room = (MAX_DATA_LEN + ffi::RTE_PKTMBUF_HEADROOM as usize) as u16;
        pools.staging = Some(Mempool::new(
            eal,
            &format!("wgdp_cm{tag}"),
            u32::from(config.queue_pairs),
            0,
            room,
        )?);
        Ok(pools)
    }

    fn into_parts(
        mut self,
    ) -> (
        NonNull<ffi::rte_mempool>,
        NonNull<ffi::rte_mempool>,
        Mempool,
    ) {
        let staging = self.staging.take().expect("made in new");
        let parts = (self.session, self.op, staging);
        std::mem::forget(self);
        parts
    }
}

impl Drop for Pools {
    fn drop(&mut self) {
        // SAFETY: nothing was allocated from them yet.
        unsafe {
            ffi::rte_mempool_free(self.op.as_ptr());
            ffi::rte_mempool_free(self.session.as_ptr());
        }
    }
}

fn device_info(id: u8, name: &str) -> CryptodevInfo {
    let mut info = ffi::rte_cryptodev_info::default();
    // SAFETY: a valid device id; out-pointer.
    unsafe { ffi::rte_cryptodev_info_get(id, &mut info) };
    let driver = if info.driver_name.is_null() {
        String::new()
    } else {
        // SAFETY: the driver's static NUL-terminated name.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    };
    CryptodevInfo {
        name: name.to_owned(),
        driver,
        max_queue_pairs: info.max_nb_queue_pairs,
        cpu_crypto: info.feature_flags & u64::from(ffi::RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO) != 0,
        hardware: info.feature_flags & u64::from(ffi::RTE_CRYPTODEV_FF_HW_ACCELERATED) != 0,
    }
}

fn has_chacha_poly(id: u8) -> bool {
    let mut idx = ffi::rte_cryptodev_sym_capability_idx {
        type_: ffi::rte_crypto_sym_xform_type::RTE_CRYPTO_SYM_XFORM_AEAD,
        ..Default::default()
    };
    idx.algo.aead = ffi::rte_crypto_aead_algorithm::RTE_CRYPTO_AEAD_CHACHA20_POLY1305;
    // SAFETY: a valid device; the returned capability is the driver's
    // static table.
    unsafe {
        let cap = ffi::rte_cryptodev_sym_capability_get(id, &idx);
        !cap.is_null()
            && ffi::rte_cryptodev_sym_capability_check_aead(
                cap,
                KEY_LEN as u16,
                TAG_LEN as u16,
                0,
                IV_LEN as u16,
            ) == 0
    }
}

/// One key for one direction on one device. Freed (and, by the driver,
/// cleared) on drop. Shared by every lcore: a session is read-only once
/// made.
pub struct Session {
    raw: NonNull<std::ffi::c_void>,
    aad_len: usize,
    dev: Arc<DevInner>,
}

// SAFETY: a session is immutable after creation; drivers read it from any
// lcore.
unsafe impl Send for Session {}
// SAFETY: as above.
unsafe impl Sync for Session {}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: our session on our device, not in flight (operations are
        // synchronous).
        unsafe { ffi::rte_cryptodev_sym_session_free(self.dev.id, self.raw.as_ptr()) };
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device", &self.dev.info.name)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The raw session pointer and the size of its pool's elements (for
    /// tests that check what the driver leaves in it).
    pub fn raw_element(&self) -> (*const u8, usize) {
        // SAFETY: the pool is valid.
        let size = unsafe { (*self.dev.session_pool.as_ptr()).elt_size } as usize;
        (self.raw.as_ptr().cast_const().cast(), size)
    }

    /// Seals or opens (as the session was made) `data` in place through
    /// the CPU-crypto API: `tag` is written on seal and checked on open.
    /// Only on a device that [`uses_cpu_crypto`](Cryptodev::uses_cpu_crypto).
    #[inline]
    pub fn process(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<(), CryptoOpError> {
        if aad.len() != self.aad_len {
            return Err(CryptoOpError::AadLength(aad.len()));
        }
        let len = u32::try_from(data.len()).map_err(|_| CryptoOpError::TooLong(data.len()))?;
        let mut seg = ffi::rte_crypto_vec {
            base: data.as_mut_ptr().cast(),
            iova: 0,
            len,
            tot_len: len,
        };
        let mut sgl = ffi::rte_crypto_sgl {
            vec: &mut seg,
            num: 1,
        };
        let mut ivp = ffi::rte_crypto_va_iova_ptr {
            va: iv.as_ptr().cast_mut().cast(),
            iova: 0,
        };
        let mut tagp = ffi::rte_crypto_va_iova_ptr {
            va: tag.as_mut_ptr().cast(),
            iova: 0,
        };
        let mut aadp = ffi::rte_crypto_va_iova_ptr {
            va: aad.as_ptr().cast_mut().cast(),
            iova: 0,
        };
        let mut status = 0i32;
        let mut vec = ffi::rte_crypto_sym_vec {
            num: 1,
            src_sgl: &mut sgl,
            dest_sgl: std::ptr::null_mut(),
            iv: &mut ivp,
            digest: &mut tagp,
            __bindgen_anon_1: ffi::rte_crypto_sym_vec__bindgen_ty_1 { aad: &mut aadp },
            status: &mut status,
        };
        let ofs = ffi::rte_crypto_sym_ofs { raw: 0 };
        // SAFETY: every pointer in `vec` is valid for the call; the buffer
        // is processed in place; the session is ours and alive.
        let done = unsafe {
            ffi::rte_cryptodev_sym_cpu_crypto_process(self.dev.id, self.raw.as_ptr(), ofs, &mut vec)
        };
        match (done, status) {
            (1, 0) => Ok(()),
            (_, 74) => Err(CryptoOpError::Authentication), // EBADMSG
            (_, s) => Err(CryptoOpError::Device(s)),
        }
    }
}

/// One queue pair of a device with its preallocated op and staging mbuf:
/// the operation path. `Send`, not `Sync`: one lcore uses it.
pub struct QueuePair {
    qp: u16,
    /// `None` once an op was lost in the device.
    op: Option<NonNull<ffi::rte_crypto_op>>,
    mbuf: Mbuf,
    dev: Arc<DevInner>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

// SAFETY: the op and mbuf are owned by this handle alone.
unsafe impl Send for QueuePair {}

impl Drop for QueuePair {
    fn drop(&mut self) {
        if let Some(op) = self.op {
            // SAFETY: ours and not in flight.
            unsafe { ffi::wgdp_crypto_op_free(op.as_ptr()) };
        }
        self.dev.qp_taken[usize::from(self.qp)].store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for QueuePair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuePair")
            .field("device", &self.dev.info.name)
            .field("qp", &self.qp)
            .finish()
    }
}

impl QueuePair {
    /// Seals or opens (as `session` was made) `data` in place through one
    /// enqueued op, polled to completion: `tag` is written on seal and
    /// checked on open. The data is copied into the staging mbuf and back.
    pub fn process(
        &mut self,
        session: &Session,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8; TAG_LEN],
    ) -> Result<(), CryptoOpError> {
        let op = self.op.ok_or(CryptoOpError::Lost)?;
        if data.len() > MAX_DATA_LEN {
            return Err(CryptoOpError::TooLong(data.len()));
        }
        if aad.len() != session.aad_len {
            return Err(CryptoOpError::AadLength(aad.len()));
        }
        let len = data.len() as u16;
        // Reset the staging mbuf to `len` bytes and copy the data in.
        let have = self.mbuf.data_len();
        let _ = self.mbuf.trim(have);
        let room = self
            .mbuf
            .append(len)
            .map_err(|_| CryptoOpError::TooLong(data.len()))?;
        room.copy_from_slice(data);
        let base = op.as_ptr().cast::<u8>();
        // SAFETY: the op is ours and not in flight; its private area (IV,
        // AAD, tag) was sized at pool creation; the mbuf is ours.
        let status = unsafe {
            let o = &mut *op.as_ptr();
            // DPDK's __rte_crypto_op_reset for a reused op.
            o.__bindgen_anon_1.__bindgen_anon_1.status =
                ffi::rte_crypto_op_status::RTE_CRYPTO_OP_STATUS_NOT_PROCESSED as u8;
            std::ptr::copy_nonoverlapping(iv.as_ptr(), base.add(IV_OFFSET), IV_LEN);
            std::ptr::copy_nonoverlapping(aad.as_ptr(), base.add(AAD_OFFSET), aad.len());
            std::ptr::copy_nonoverlapping(tag.as_ptr(), base.add(TAG_OFFSET), TAG_LEN);
            let sym = &mut *base
                .add(core::mem::size_of::<ffi::rte_crypto_op>())
                .cast::<ffi::rte_crypto_sym_op>();
            sym.m_src = self.mbuf.as_ptr();
            sym.m_dst = std::ptr::null_mut();
            let a = &mut sym.__bindgen_anon_2.aead;
            a.data.offset = 0;
            a.data.length = u32::from(len);
            a.digest.data = base.add(TAG_OFFSET);
            a.digest.phys_addr = o.phys_addr + TAG_OFFSET as u64;
            a.aad.data = base.add(AAD_OFFSET);
            a.aad.phys_addr = o.phys_addr + AAD_OFFSET as u64;
            if ffi::wgdp_crypto_op_attach_sym_session(op.as_ptr(), session.raw.as_ptr()) != 0 {
                return Err(CryptoOpError::Device(22)); // EINVAL
            }
            let mut one = op.as_ptr();
            if ffi::wgdp_cryptodev_enqueue_burst(self.dev.id, self.qp, &mut one, 1) != 1 {
                return Err(CryptoOpError::Device(
                    o.__bindgen_anon_1.__bindgen_anon_1.status.into(),
                ));
            }
            let mut polls = 0u32;
            let mut out: *mut ffi::rte_crypto_op = std::ptr::null_mut();
            while ffi::wgdp_cryptodev_dequeue_burst(self.dev.id, self.qp, &mut out, 1) == 0 {
                polls += 1;
                if polls == POLL_LIMIT {
                    // The device still owns the op: never touch it again.
                    self.op = None;
                    return Err(CryptoOpError::Lost);
                }
                core::hint::spin_loop();
            }
            o.__bindgen_anon_1.__bindgen_anon_1.status
        };
        match status as u32 {
            ffi::rte_crypto_op_status::RTE_CRYPTO_OP_STATUS_SUCCESS => {
                data.copy_from_slice(self.mbuf.data());
                // SAFETY: the tag slot of our op, written by the device.
                let t = unsafe { std::slice::from_raw_parts(base.add(TAG_OFFSET), TAG_LEN) };
                tag.copy_from_slice(t);
                Ok(())
            }
            ffi::rte_crypto_op_status::RTE_CRYPTO_OP_STATUS_AUTH_FAILED => {
                Err(CryptoOpError::Authentication)
            }
            s => Err(CryptoOpError::Device(s as i32)),
        }
    }
}
