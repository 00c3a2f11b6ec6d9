//! The wgdp data path.
//!
//! This crate owns what runs on worker lcores: RX/TX bursts on the plaintext
//! and tunnel ports, packet parsing, allowed-IPs lookup, inline WireGuard
//! encapsulation and decapsulation in the mbuf, handoff rings between lcores
//! and the per-lcore drop-reason counters. It moves buffers; the protocol
//! logic comes from `protocol`, the DPDK access from `dpdk-sys`.

pub mod batch_policy;
mod batch_queue;
pub mod clock;
pub mod command;
#[macro_use]
pub mod counters;
pub mod cryptodev;
pub mod cycle_profile;
pub mod fragments;
pub mod gate;
pub mod group;
pub mod icmp;
pub mod idle;
mod index_table;
pub mod lane;
pub mod mss;
mod neighbours;
mod open_batch;
pub mod outer;
pub mod peer;
pub mod port;
pub mod rehome;
pub mod route;
mod seal_batch;
pub mod smoke_forward;
pub mod staging;
pub mod tx;
pub mod vlan;
pub mod wire;
pub mod worker;
