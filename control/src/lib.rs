//! The wgdp control thread.
//!
//! This crate owns everything that is not per-packet work: the WireGuard
//! handshakes and timers, installing keypairs into the owner lcores, the TAP
//! exception path to the kernel, ARP/ND resolution, the UAPI socket served
//! to the standard `wg` tool, and metrics. [`run::run`] assembles the whole
//! concentrator from a tunnel table.

pub mod control;
pub mod counters;
pub mod groups;
pub mod handshake;
pub mod handshake_pool;
pub mod inproc;
pub mod link;
pub mod live;
pub mod metrics;
pub mod neigh;
pub mod ownership;
pub mod peers;
pub mod queues;
pub mod report;
pub mod rss;
pub mod run;
pub mod show;
pub mod snapshot;
pub mod steering;
pub mod tap;
pub mod telemetry;
pub mod uapi;
