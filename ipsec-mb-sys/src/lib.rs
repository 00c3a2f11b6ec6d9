//! A thin binding to Intel ipsec-mb's ChaCha20-Poly1305 (`libIPSec_MB`,
//! Debian `libipsec-mb-dev` 1.3).
//!
//! ipsec-mb keeps per-thread state in a manager (`IMB_MGR`) that must not
//! be shared between threads: [`with_thread_manager`] gives each thread
//! (each lcore) its own, made on first use. Only pointers and integers
//! cross into the C shim (`shim/imb_shim.c`), which does the job set-up, so
//! no ipsec-mb struct is mirrored here.
//!
//! ipsec-mb computes the tag when decrypting but does not compare it: the
//! caller must, in constant time.

use std::ffi::c_int;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// ChaCha20-Poly1305 key length.
pub const KEY_LEN: usize = 32;
/// ChaCha20-Poly1305 nonce length (RFC 8439).
pub const NONCE_LEN: usize = 12;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;

#[repr(C)]
struct ImbMgr {
    _opaque: [u8; 0],
}

extern "C" {
    static wgdp_imb_arch_avx512: c_int;
    fn wgdp_imb_new(arch: *mut c_int) -> *mut ImbMgr;
    fn wgdp_imb_free(m: *mut ImbMgr);
    fn wgdp_imb_chacha20_poly1305(
        m: *mut ImbMgr,
        key: *const u8,
        iv: *const u8,
        aad: *const u8,
        aad_len: u64,
        buf: *mut u8,
        len: u64,
        tag_out: *mut u8,
        encrypt: c_int,
    ) -> c_int;
}

/// A job did not complete (ipsec-mb refused its parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobFailed;

/// One thread's ipsec-mb manager. Neither `Send` nor `Sync`.
pub struct Manager {
    raw: NonNull<ImbMgr>,
    arch: c_int,
    _one_thread: PhantomData<*mut ()>,
}

impl Manager {
    /// A manager for the best code path this CPU has; `None` when ipsec-mb
    /// cannot allocate or initialise one.
    pub fn new() -> Option<Self> {
        let mut arch: c_int = 0;
        // SAFETY: `arch` is a valid out-pointer; the result is checked.
        let raw = NonNull::new(unsafe { wgdp_imb_new(&mut arch) })?;
        Some(Self {
            raw,
            arch,
            _one_thread: PhantomData,
        })
    }

    /// Whether `init_mb_mgr_auto` picked the AVX-512 code path.
    pub fn is_avx512(&self) -> bool {
        // SAFETY: a constant defined by the shim.
        self.arch == unsafe { wgdp_imb_arch_avx512 }
    }

    /// ChaCha20-Poly1305 over `buf` in place, authenticating `aad` too:
    /// encrypts or decrypts, and returns the tag of the ciphertext (when
    /// decrypting: the tag it should have, for the caller to compare).
    #[inline]
    pub fn chacha20_poly1305(
        &self,
        key: &[u8; KEY_LEN],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        encrypt: bool,
    ) -> Result<[u8; TAG_LEN], JobFailed> {
        let mut tag = [0u8; TAG_LEN];
        // SAFETY: the manager is this thread's; key, nonce, AAD, buffer and tag
        // are valid for their lengths for the whole (synchronous) call.
        let ret = unsafe {
            wgdp_imb_chacha20_poly1305(
                self.raw.as_ptr(),
                key.as_ptr(),
                nonce.as_ptr(),
                aad.as_ptr(),
                aad.len() as u64,
                buf.as_mut_ptr(),
                buf.len() as u64,
                tag.as_mut_ptr(),
                c_int::from(encrypt),
            )
        };
        if ret == 0 {
            Ok(tag)
        } else {
            Err(JobFailed)
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // SAFETY: made by `wgdp_imb_new`, freed once.
        unsafe { wgdp_imb_free(self.raw.as_ptr()) }
    }
}

thread_local! {
    static MANAGER: Option<Manager> = Manager::new();
}

/// Runs `f` with this thread's manager (made on first use); `None` when
/// ipsec-mb could not make one.
#[inline]
pub fn with_thread_manager<R>(f: impl FnOnce(&Manager) -> R) -> Option<R> {
    MANAGER.with(|m| m.as_ref().map(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decrypting what was encrypted gives the plaintext and the same tag
    /// back, at every length a data message can have (the RFC 8439 vectors
    /// are checked against every backend in `protocol::crypto`).
    #[test]
    fn encrypt_then_decrypt_round_trips() {
        let m = Manager::new().expect("manager");
        let key = [0x42u8; KEY_LEN];
        let nonce = [7u8; NONCE_LEN];
        for len in [0usize, 1, 15, 16, 64, 1420] {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut buf = plain.clone();
            let tag = m
                .chacha20_poly1305(&key, &nonce, b"aad", &mut buf, true)
                .unwrap();
            if len > 0 {
                assert_ne!(buf, plain);
            }
            let check = m
                .chacha20_poly1305(&key, &nonce, b"aad", &mut buf, false)
                .unwrap();
            assert_eq!(tag, check, "len {len}");
            assert_eq!(buf, plain);
        }
    }

    #[test]
    fn thread_managers_are_per_thread() {
        let a = with_thread_manager(|m| m.raw.as_ptr() as usize).unwrap();
        let b = std::thread::spawn(|| with_thread_manager(|m| m.raw.as_ptr() as usize).unwrap())
            .join()
            .unwrap();
        assert_ne!(a, b);
    }
}
