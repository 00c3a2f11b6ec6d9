//! Bindings to the system DPDK (placeholder until the foundation lands).
