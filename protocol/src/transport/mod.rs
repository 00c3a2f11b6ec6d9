//! Transport data messages (whitepaper section 5.4.6): the keypair a
//! handshake derives and the in-place sealing and opening of data messages.
//!
//! The dataplane owns each [`Keypair`] on one lcore and calls
//! [`Keypair::seal`] / [`Keypair::open`] directly on mbuf data: no allocation,
//! no lock, the tag either separate or at the tail of the message.

mod keypair;

pub use keypair::{Keypair, OpenError, SealError};
