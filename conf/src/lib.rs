//! The wgdp tunnel table.
//!
//! This crate owns the operator's configuration: the TOML types for ports,
//! lcores and peers, parsing with line/column errors, validation, and the
//! import of wg-quick / wg(8) INI files.
