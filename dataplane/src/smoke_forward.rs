//! Plain port-to-port forwarding, with no WireGuard: the smoke test that a
//! DPDK set-up (EAL, hugepages, ports, queues) moves packets at all.

use std::sync::atomic::{AtomicBool, Ordering};

use dpdk_sys::rte::{Burst, RxQueue, TxQueue};

/// What one forwarding lcore did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Packets received and handed to the TX queue.
    pub forwarded: u64,
    /// Packets received that the TX queue refused (freed).
    pub tx_full_drops: u64,
    /// RX polls made.
    pub polls: u64,
    /// RX polls that returned nothing.
    pub empty_polls: u64,
}

/// Forwards every packet received on each pair's RX queue to the same
/// pair's TX queue until `stop` is set. What the TX queue refuses is freed
/// and counted. `stop` is read once per round of polls, not per packet.
pub fn forward(pairs: &mut [(RxQueue<'_>, TxQueue<'_>)], stop: &AtomicBool) -> ForwardStats {
    let mut stats = ForwardStats::default();
    let mut burst: Burst = Burst::new();
    while !stop.load(Ordering::Relaxed) {
        for (rx, tx) in pairs.iter_mut() {
            stats.polls += 1;
            let n = rx.rx_burst(&mut burst);
            if n == 0 {
                stats.empty_polls += 1;
                continue;
            }
            let sent = tx.tx_burst(&mut burst);
            stats.forwarded += sent as u64;
            stats.tx_full_drops += burst.len() as u64;
            burst.clear();
        }
    }
    stats
}
