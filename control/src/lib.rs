//! The wgdp control thread.
//!
//! This crate owns everything that is not per-packet work: the WireGuard
//! handshakes and timers, installing keypairs into the owner lcores, the TAP
//! exception path to the kernel, ARP/ND resolution, the UAPI socket served
//! to the standard `wg` tool, and metrics.

pub mod neigh;
