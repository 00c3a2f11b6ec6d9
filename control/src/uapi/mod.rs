//! The WireGuard userspace API, so that the standard `wg` tool can show and
//! change a running wgdp: the protocol ([`proto`]), its socket
//! ([`server`]), and the client side wgdp's own commands use ([`client`]).
//! The control thread applies requests (`crate::live`).

pub mod client;
pub mod proto;
pub mod secret;
pub mod server;
