//! Multi-buffer ChaCha20-Poly1305 (RFC 8439 section 2.8): up to 16 packets
//! of one burst sealed or opened in one SIMD pass.
//!
//! One-packet AEADs (ring, ipsec-mb) pay a fixed cost per message, the
//! Poly1305 key block, setup and finalisation, which dominates small packets.
//! Here every packet of a burst is one SIMD lane: ChaCha20 runs its 20
//! rounds once for 16 (AVX-512) or 8 (AVX2) packets' blocks, and Poly1305
//! runs one accumulator per lane. Packets may have different lengths, keys,
//! nonces and additional data; a failed open fails only that packet.
//!
//! Constant time: no branch or memory index depends on a key, a plaintext or
//! a tag; branches depend only on lengths and on the (public) result of a
//! tag comparison, which is itself constant-time ([`subtle`]).
//!
//! ```
//! use mbaead::{Engine, Seal, Open};
//! let Some(engine) = Engine::detect() else { return };
//! let key = [7u8; 32];
//! let mut a = *b"first packet";
//! let mut b = *b"second";
//! let mut seals = [Seal::new(&key, [0; 12], &[], &mut a), Seal::new(&key, [1; 12], &[], &mut b)];
//! engine.seal(&mut seals).unwrap();
//! let tags = [seals[0].tag, seals[1].tag];
//! let mut opens = [Open::new(&key, [0; 12], &[], &mut a, tags[0]), Open::new(&key, [1; 12], &[], &mut b, tags[1])];
//! engine.open(&mut opens).unwrap();
//! assert!(opens[0].ok && opens[1].ok);
//! # drop(opens);
//! assert_eq!(&a, b"first packet");
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

mod common;
#[cfg(target_arch = "x86_64")]
mod simd;

use subtle::ConstantTimeEq;

/// The most packets one pass takes (AVX-512); larger bursts run in passes.
pub const MAX_LANES: usize = 16;

/// The longest message (and additional data) a job may carry: larger than any
/// IP packet, so that block counters and lengths never come near their
/// limits (RFC 8439 allows 2^38 bytes).
pub const MAX_LEN: usize = 1 << 16;

/// A rejected burst; nothing of it was touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Job `index` carries more than [`MAX_LEN`] bytes of message or of
    /// additional data.
    TooLong {
        /// The job's position in the burst.
        index: usize,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooLong { index } => {
                write!(f, "job {index} is longer than {MAX_LEN} bytes")
            }
        }
    }
}

impl std::error::Error for Error {}

/// One packet to seal: `in_out` is encrypted in place and `tag` written.
pub struct Seal<'a> {
    /// The 256-bit key.
    pub key: &'a [u8; 32],
    /// The 96-bit nonce (WireGuard: four zero bytes, then the counter LE).
    pub nonce: [u8; 12],
    /// Additional authenticated data (WireGuard's transport data: none).
    pub aad: &'a [u8],
    /// The plaintext, replaced by the ciphertext.
    pub in_out: &'a mut [u8],
    /// The tag, written by [`Engine::seal`].
    pub tag: [u8; 16],
}

impl<'a> Seal<'a> {
    /// A job with its tag still zero.
    pub fn new(key: &'a [u8; 32], nonce: [u8; 12], aad: &'a [u8], in_out: &'a mut [u8]) -> Self {
        Seal {
            key,
            nonce,
            aad,
            in_out,
            tag: [0; 16],
        }
    }
}

/// One packet to open: where its tag holds, `in_out` is decrypted in place
/// and `ok` set; where not, `in_out` keeps the ciphertext and `ok` is false.
pub struct Open<'a> {
    /// The 256-bit key.
    pub key: &'a [u8; 32],
    /// The 96-bit nonce.
    pub nonce: [u8; 12],
    /// Additional authenticated data.
    pub aad: &'a [u8],
    /// The ciphertext, replaced by the plaintext where the tag holds.
    pub in_out: &'a mut [u8],
    /// The tag received.
    pub tag: [u8; 16],
    /// Whether the tag held, written by [`Engine::open`].
    pub ok: bool,
}

impl<'a> Open<'a> {
    /// A job not yet opened (`ok` false).
    pub fn new(
        key: &'a [u8; 32],
        nonce: [u8; 12],
        aad: &'a [u8],
        in_out: &'a mut [u8],
        tag: [u8; 16],
    ) -> Self {
        Open {
            key,
            nonce,
            aad,
            in_out,
            tag,
            ok: false,
        }
    }
}

/// What the SIMD kernels see of a job (sealed or opened alike).
pub(crate) trait Lane {
    fn key(&self) -> &[u8; 32];
    fn nonce(&self) -> &[u8; 12];
    fn aad(&self) -> &[u8];
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
}

macro_rules! impl_lane {
    ($t:ident) => {
        impl Lane for $t<'_> {
            fn key(&self) -> &[u8; 32] {
                self.key
            }
            fn nonce(&self) -> &[u8; 12] {
                &self.nonce
            }
            fn aad(&self) -> &[u8] {
                self.aad
            }
            fn data(&self) -> &[u8] {
                self.in_out
            }
            fn data_mut(&mut self) -> &mut [u8] {
                self.in_out
            }
        }
    };
}
impl_lane!(Seal);
impl_lane!(Open);

/// A SIMD implementation this CPU runs; only [`Engine::detect`] and
/// [`Engine::available`] make one, after checking the CPU's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine(Isa);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    /// 16 lanes; Poly1305 in 44-bit limbs with 52-bit multiply-add.
    Avx512Ifma,
    /// 16 lanes; Poly1305 in 26-bit limbs with 32x32-bit multiplies.
    Avx512,
    /// 8 lanes; Poly1305 in 26-bit limbs.
    Avx2,
}

impl Engine {
    /// The widest implementation this CPU has (AVX-512 with IFMA, then
    /// AVX-512, then AVX2), or `None` where it has neither AVX-512 F nor
    /// AVX2: use a one-packet AEAD there. Which is fastest for a given
    /// burst size and mix is for a measurement to say (`wgdp bench`).
    pub fn detect() -> Option<Engine> {
        Self::available().into_iter().next()
    }

    /// Every implementation this CPU runs, widest first (tests and
    /// benchmarks run each).
    pub fn available() -> Vec<Engine> {
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 = is_x86_feature_detected!("avx512f");
            if avx512 && is_x86_feature_detected!("avx512ifma") {
                out.push(Engine(Isa::Avx512Ifma));
            }
            if avx512 {
                out.push(Engine(Isa::Avx512));
            }
            if is_x86_feature_detected!("avx2") {
                out.push(Engine(Isa::Avx2));
            }
        }
        out
    }

    /// The name in reports: `mb-avx512-ifma`, `mb-avx512` or `mb-avx2`.
    pub const fn name(self) -> &'static str {
        match self.0 {
            Isa::Avx512Ifma => "mb-avx512-ifma",
            Isa::Avx512 => "mb-avx512",
            Isa::Avx2 => "mb-avx2",
        }
    }

    /// Packets per pass: 16 or 8.
    pub const fn lanes(self) -> usize {
        match self.0 {
            Isa::Avx512Ifma | Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }

    /// Seals every job (encrypts in place, writes its tag), in passes of
    /// [`lanes`](Self::lanes) packets. A job longer than [`MAX_LEN`] refuses
    /// the whole burst before anything is touched.
    pub fn seal(self, jobs: &mut [Seal<'_>]) -> Result<(), Error> {
        check(jobs)?;
        for pass in jobs.chunks_mut(self.lanes()) {
            let mut keys = self.poly_keys(pass);
            self.xor_stream(pass, u32::MAX);
            let tags = self.mac(pass, &keys);
            for (job, tag) in pass.iter_mut().zip(tags.iter()) {
                job.tag = *tag;
            }
            zeroize::Zeroize::zeroize(&mut keys);
        }
        Ok(())
    }

    /// Opens every job: checks each tag in constant time, then decrypts the
    /// packets whose tag held (`ok` true) and leaves the others' ciphertext
    /// alone (`ok` false). A job longer than [`MAX_LEN`] refuses the whole
    /// burst before anything is touched.
    pub fn open(self, jobs: &mut [Open<'_>]) -> Result<(), Error> {
        check(jobs)?;
        for pass in jobs.chunks_mut(self.lanes()) {
            let mut keys = self.poly_keys(pass);
            let tags = self.mac(pass, &keys);
            zeroize::Zeroize::zeroize(&mut keys);
            let mut good = 0u32;
            for (i, (job, tag)) in pass.iter_mut().zip(tags.iter()).enumerate() {
                // RFC 8439 section 4: compare tags in constant time.
                job.ok = bool::from(job.tag.ct_eq(tag));
                good |= u32::from(job.ok) << i;
            }
            self.xor_stream(pass, good);
        }
        Ok(())
    }

    /// Each lane's one-time Poly1305 key: its first ChaCha20 block
    /// (counter 0, RFC 8439 section 2.6).
    fn poly_keys<J: Lane>(self, pass: &[J]) -> [[u8; 32]; MAX_LANES] {
        let state = common::State::new(pass);
        match self.0 {
            // SAFETY: an Engine of this ISA exists only where `available`
            // detected the features the kernel is compiled for.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Ifma | Isa::Avx512 => unsafe { simd::avx512::poly_keys(&state) },
            // SAFETY: as above, AVX2 was detected.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { simd::avx2::poly_keys(&state) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no SIMD engine exists off x86_64"),
        }
    }

    /// XORs the keystream from block 1 on (RFC 8439 section 2.8) into the
    /// lanes whose bit is set in `lanes`.
    fn xor_stream<J: Lane>(self, pass: &mut [J], lanes: u32) {
        let state = common::State::new(pass);
        match self.0 {
            // SAFETY: features detected, as in `poly_keys`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Ifma | Isa::Avx512 => unsafe {
                simd::avx512::xor_stream(&state, pass, lanes)
            },
            // SAFETY: features detected, as in `poly_keys`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { simd::avx2::xor_stream(&state, pass, lanes) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no SIMD engine exists off x86_64"),
        }
    }

    /// Each lane's Poly1305 tag over its additional data and ciphertext.
    fn mac<J: Lane>(self, pass: &[J], keys: &[[u8; 32]; MAX_LANES]) -> [[u8; 16]; MAX_LANES] {
        match self.0 {
            // SAFETY: features detected, as in `poly_keys`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Ifma => unsafe { simd::ifma::mac(pass, keys) },
            // SAFETY: features detected, as in `poly_keys`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { simd::avx512::mac(pass, keys) },
            // SAFETY: features detected, as in `poly_keys`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { simd::avx2::mac(pass, keys) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("no SIMD engine exists off x86_64"),
        }
    }
}

/// Refuses a burst with a job longer than [`MAX_LEN`].
fn check<J: Lane>(jobs: &[J]) -> Result<(), Error> {
    match jobs
        .iter()
        .position(|j| j.data().len() > MAX_LEN || j.aad().len() > MAX_LEN)
    {
        Some(index) => Err(Error::TooLong { index }),
        None => Ok(()),
    }
}
