//! The error type of the safe layer.

use std::ffi::CStr;

/// A DPDK call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {message} (errno {errno})")]
pub struct RteError {
    /// What was being done, e.g. `rte_eth_dev_configure(port 0)`.
    pub op: String,
    /// The positive errno value DPDK reported.
    pub errno: i32,
    /// DPDK's text for that errno (`rte_strerror`), or our own explanation.
    pub message: String,
}

impl RteError {
    /// An error from a DPDK return code: negative errno, or -1 with
    /// `rte_errno` set.
    pub(crate) fn from_ret(op: impl Into<String>, ret: i32) -> Self {
        let errno = if ret == -1 { current_errno() } else { -ret };
        Self::from_errno(op, errno)
    }

    /// An error for an explicit positive errno.
    pub(crate) fn from_errno(op: impl Into<String>, errno: i32) -> Self {
        Self {
            op: op.into(),
            errno,
            message: strerror(errno),
        }
    }

    /// An error from a call that returned NULL and set `rte_errno`.
    pub(crate) fn from_rte_errno(op: impl Into<String>) -> Self {
        Self::from_errno(op, current_errno())
    }

    /// An error detected on our side before calling DPDK.
    pub fn invalid(op: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            op: op.into(),
            errno: libc_einval(),
            message: message.into(),
        }
    }
}

const fn libc_einval() -> i32 {
    22
}

/// The calling thread's `rte_errno`.
pub(crate) fn current_errno() -> i32 {
    // SAFETY: reads a thread-local.
    unsafe { crate::ffi::wgdp_rte_errno() }
}

/// DPDK's description of an errno (it knows its own codes above 1000 too).
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string, valid until the next call on this thread.
    unsafe {
        let p = crate::ffi::rte_strerror(errno);
        if p.is_null() {
            format!("error {errno}")
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}
