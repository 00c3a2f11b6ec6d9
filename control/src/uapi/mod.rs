//! The WireGuard userspace API, so that the standard `wg` tool can show and
//! change a running wgdp: the protocol ([`proto`]) and its socket
//! ([`server`]). The control thread applies requests (`crate::live`).

pub mod proto;
pub mod server;
