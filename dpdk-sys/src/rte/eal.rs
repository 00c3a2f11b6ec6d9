//! The Environment Abstraction Layer: one per process.

use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::ffi;

/// `STATE` values: EAL may be initialised once, and never again after
/// `rte_eal_cleanup`.
const UNINIT: u8 = 0;
const BUSY: u8 = 1;
const LIVE: u8 = 2;
const CLEANED: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(UNINIT);

/// Why EAL could not be initialised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EalError {
    /// EAL is already running in this process (or is being initialised).
    #[error("EAL is already initialised in this process")]
    AlreadyInitialized,
    /// EAL was cleaned up; DPDK cannot be initialised twice in a process.
    #[error("EAL was cleaned up; it cannot be initialised again in this process")]
    CleanedUp,
    /// An argument contains a NUL byte.
    #[error("EAL argument {0:?} contains a NUL byte")]
    BadArgument(String),
    /// `rte_eal_init` failed. `log` is what DPDK printed while trying.
    #[error("rte_eal_init failed: {reason} (errno {errno})\n{log}")]
    Init {
        /// `rte_strerror(rte_errno)`.
        reason: String,
        /// `rte_errno`.
        errno: i32,
        /// DPDK's own log lines from the attempt.
        log: String,
    },
}

/// A handle on the initialised EAL. Clones share it; `rte_eal_cleanup` runs
/// when the last one is dropped. Pools, ports and rings hold a clone, so EAL
/// outlives everything allocated from it.
#[derive(Clone)]
pub struct Eal {
    _inner: Arc<EalInner>,
}

struct EalInner;

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: EAL is initialised; the returned string is EAL's own,
        // copied before cleanup.
        let runtime = unsafe {
            let p = ffi::rte_eal_get_runtime_dir();
            (!p.is_null())
                .then(|| std::path::PathBuf::from(CStr::from_ptr(p).to_string_lossy().into_owned()))
        };
        // SAFETY: the last handle is gone, so nothing of ours uses DPDK
        // resources any more (pools with mbufs still out leak their handle
        // instead, see Mempool's Drop).
        unsafe { ffi::rte_eal_cleanup() };
        STATE.store(CLEANED, Ordering::SeqCst);
        // EAL leaves its runtime directory (/var/run/dpdk/<file-prefix>:
        // the telemetry and multi-process sockets) behind; this process
        // created it as the primary, and nothing uses it any more.
        if let Some(dir) = runtime {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal").finish_non_exhaustive()
    }
}

impl Eal {
    /// Initialises EAL with `args` (without the program name, which is
    /// supplied as `wgdp`). DPDK's log output during the attempt is captured:
    /// on failure it is returned in the error, on success it is written to
    /// stderr as DPDK would have.
    pub fn init<I, S>(args: I) -> Result<Eal, EalError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut owned = vec![CString::new("wgdp").expect("literal has no NUL")];
        for a in args {
            let a = a.as_ref();
            owned.push(CString::new(a).map_err(|_| EalError::BadArgument(a.to_owned()))?);
        }
        match STATE.compare_exchange(UNINIT, BUSY, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {}
            Err(CLEANED) => return Err(EalError::CleanedUp),
            Err(_) => return Err(EalError::AlreadyInitialized),
        }
        // EAL may keep pointers into argv for the life of the process, and
        // getopt permutes the array: both live forever.
        let strings: &'static [CString] = Box::leak(owned.into_boxed_slice());
        let argv: &'static mut [*mut c_char] = Box::leak(
            strings
                .iter()
                .map(|s| s.as_ptr() as *mut c_char)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = argv.len() as i32;
        // SAFETY: capture is process-global and EAL init is serialised by
        // STATE; argv is valid and 'static; the signals claimed had no
        // handler, and the one installed does nothing.
        let (ret, errno, log) = unsafe {
            // Before any vdev is probed: net_tap then polls rather than
            // asking for a signal per frame (see the shim).
            ffi::wgdp_claim_rt_signals();
            let capturing = ffi::wgdp_log_capture_begin() == 0;
            let ret = ffi::rte_eal_init(argc, argv.as_mut_ptr());
            let errno = super::error::current_errno();
            let log = if capturing {
                take_c_string(ffi::wgdp_log_capture_end())
            } else {
                String::new()
            };
            (ret, errno, log)
        };
        if ret < 0 {
            STATE.store(UNINIT, Ordering::SeqCst);
            return Err(EalError::Init {
                reason: super::error::strerror(errno),
                errno,
                log,
            });
        }
        eprint!("{log}");
        STATE.store(LIVE, Ordering::SeqCst);
        Ok(Eal {
            _inner: Arc::new(EalInner),
        })
    }

    /// The lcore that called [`Eal::init`] (the main lcore).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: EAL is initialised.
        unsafe { ffi::rte_get_main_lcore() }
    }

    /// Every enabled lcore except the main one, in order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: EAL is initialised; -1 starts the iteration.
        let mut id = unsafe { ffi::rte_get_next_lcore(u32::MAX, 1, 0) };
        while id < ffi::RTE_MAX_LCORE {
            out.push(id);
            // SAFETY: as above.
            id = unsafe { ffi::rte_get_next_lcore(id, 1, 0) };
        }
        out
    }

    /// EAL's runtime directory (`/var/run/dpdk/<file-prefix>` as root):
    /// where the telemetry socket is.
    pub fn runtime_dir(&self) -> Option<std::path::PathBuf> {
        // SAFETY: EAL is initialised; the string is EAL's own and is copied.
        let p = unsafe { ffi::rte_eal_get_runtime_dir() };
        (!p.is_null()).then(|| {
            // SAFETY: non-NULL, NUL-terminated.
            unsafe { CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
                .into()
        })
    }

    /// The telemetry socket (`dpdk-telemetry.py -f <file-prefix>` talks to
    /// it), if EAL serves one (not with `--no-telemetry`).
    pub fn telemetry_socket(&self) -> Option<std::path::PathBuf> {
        let path = self.runtime_dir()?.join("dpdk_telemetry.v2");
        path.exists().then_some(path)
    }

    /// TSC frequency in Hz, measured by EAL at init.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL is initialised.
        unsafe { ffi::rte_get_tsc_hz() }
    }
}

/// Copies and frees a malloc'd C string from the shim.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string allocated with malloc.
unsafe fn take_c_string(p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    ffi::wgdp_free(p.cast());
    s
}
