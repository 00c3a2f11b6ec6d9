//! The wgdp control thread.
//!
//! This crate owns everything that is not per-packet work: the WireGuard
//! handshakes and timers, installing keypairs into the owner lcores, the TAP
//! exception path to the kernel, ARP/ND resolution, the UAPI socket served
//! to the standard `wg` tool, and the metrics' exposition text. The `wgdp`
//! binary (src/daemon.rs) assembles the concentrator around it: ports,
//! workers, the metrics HTTP server, DPDK telemetry and the report.

pub mod control;
pub mod counters;
pub mod groups;
pub mod handshake_pool;
pub mod inproc;
pub mod kernel_routes;
pub mod link;
pub mod metrics;
pub mod neigh;
pub mod ownership;
pub mod peers;
pub mod priority;
pub mod queues;
pub mod route_export;
pub mod rss;
pub mod show;
pub mod snapshot;
pub mod static_statics;
pub mod steering;
pub mod tap;
#[cfg(test)]
mod test_rig;
mod tunnel_table;
pub mod uapi;
mod worker_commands;

pub use control::handshake;
