//! Outer fragments into a worker's reassembly table (`dataplane::fragments`
//! over DPDK's `librte_ip_frag`), in any order, with time passing:
//! structured IPv4/IPv6 fragments and raw frames (see
//! `wgdp_fuzz::reassembly`). Checked: nothing panics; the table's reports
//! account for every mbuf of the cache-0 pool after each fragment; a
//! completed datagram is one frame with its lengths and checksum right;
//! expiry frees everything, so no input leaks an mbuf.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wgdp_fuzz::reassembly::run(data);
});
