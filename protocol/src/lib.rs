//! WireGuard itself, with no I/O.
//!
//! This crate owns the protocol: message formats, the Noise_IKpsk2 handshake,
//! cookies and rate limiting, the replay window, transport seal/open and the
//! timer rules. It never reads a clock (every entry point takes `now`), opens
//! no socket and knows nothing of DPDK, so the dataplane, the control thread,
//! tests and fuzzers all drive the same code.

pub mod allowedips;
