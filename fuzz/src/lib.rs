//! Shared pieces of wgdp's fuzz targets (`fuzz_targets/*.rs`, built by
//! `cargo fuzz`): a reader for structured inputs, the handshake
//! responder harness, the outer-fragment reassembly harness, and the seed
//! corpora (`corpus/<target>/`), which `tests/seeds.rs` regenerates and
//! checks.

pub mod input;
pub mod reassembly;
pub mod responder;
pub mod seeds;
