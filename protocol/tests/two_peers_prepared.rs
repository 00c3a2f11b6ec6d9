//! Every `two_peers` scenario again, with each responder consuming
//! initiations the way wgdp's handshake threads do
//! (`StaticIdentity::prepare_initiation`, then
//! `PeerHandshake::consume_prepared` on the thread owning the peer; see
//! `common::prepared_responder`): the same virtual-time scenarios must give
//! the same results as the single-thread path.

#[path = "two_peers.rs"]
mod scenarios;
