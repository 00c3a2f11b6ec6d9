//! Transport data messages (whitepaper section 5.4.6): the keypair a
//! handshake derives and the in-place sealing and opening of data messages.
//!
//! The dataplane owns each [`Keypair`] on one lcore and calls
//! [`Keypair::seal`] / [`Keypair::open`] directly on mbuf data: no allocation,
//! no lock, the tag either separate or at the tail of the message. A
//! multi-lane peer's keypair is shared instead ([`Keypair::into_lanes`],
//! [`LaneKeypair`]): any of its workers seals and opens with it.

mod keypair;
mod lane_keypair;

pub(crate) use keypair::split_message;
pub use keypair::{Keypair, OpenError, SealError};
pub use lane_keypair::LaneKeypair;
