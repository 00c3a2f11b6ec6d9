//! How many queues each port gets: one RX and one TX queue per worker, and
//! one more TX queue for the control thread where the device has it,
//! checked against what the device offers (`rte_eth_dev_info`).

use dpdk_sys::rte::PortLimits;

/// The queues to configure on one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePlan {
    /// RX queues: one per worker.
    pub rx: u16,
    /// TX queues: one per worker, plus the control thread's when
    /// `control_tx` is set.
    pub tx: u16,
    /// The control thread gets TX queue `rx` of its own (otherwise its
    /// frames are relayed through worker 0).
    pub control_tx: bool,
}

/// The device cannot give every worker its queues.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{port} port {device} (driver {driver}): {workers} workers need {workers} RX and \
     {workers} TX queues (one more TX queue for the control thread where possible), but \
     the device offers at most {max_rx} RX and {max_tx} TX queues; configure at most \
     {usable} workers, or give the device more queues"
)]
pub struct QueueError {
    /// `tunnel` or `plaintext`.
    pub port: &'static str,
    /// The device string from the table.
    pub device: String,
    /// Its driver.
    pub driver: String,
    /// Workers configured.
    pub workers: usize,
    /// The device's RX queue limit.
    pub max_rx: u16,
    /// The device's TX queue limit.
    pub max_tx: u16,
    /// Workers the device could serve.
    pub usable: u16,
}

/// The queues for `workers` workers on a device with `limits`.
pub fn plan(
    port: &'static str,
    device: &str,
    workers: usize,
    limits: &PortLimits,
) -> Result<QueuePlan, QueueError> {
    let err = || QueueError {
        port,
        device: device.to_owned(),
        driver: limits.driver.clone(),
        workers,
        max_rx: limits.max_rx_queues,
        max_tx: limits.max_tx_queues,
        usable: limits.max_rx_queues.min(limits.max_tx_queues),
    };
    let n = u16::try_from(workers).map_err(|_| err())?;
    if n == 0 || n > limits.max_rx_queues || n > limits.max_tx_queues {
        return Err(err());
    }
    let control_tx = n < limits.max_tx_queues;
    Ok(QueuePlan {
        rx: n,
        tx: if control_tx { n + 1 } else { n },
        control_tx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rx: u16, tx: u16) -> PortLimits {
        PortLimits {
            driver: "net_test".into(),
            max_rx_queues: rx,
            max_tx_queues: tx,
            rss_offloads: 0,
            reta_size: 0,
            hash_key_size: 0,
        }
    }

    #[test]
    fn a_queue_per_worker_and_one_for_control() {
        let p = plan("tunnel", "0000:3b:00.0", 4, &limits(16, 16)).expect("plan");
        assert_eq!(
            p,
            QueuePlan {
                rx: 4,
                tx: 5,
                control_tx: true
            }
        );
        let p = plan("tunnel", "x", 4, &limits(4, 4)).expect("plan");
        assert_eq!(
            p,
            QueuePlan {
                rx: 4,
                tx: 4,
                control_tx: false
            },
            "no spare TX queue: relayed"
        );
    }

    #[test]
    fn too_few_queues_is_a_clear_error() {
        let e = plan("plaintext", "net_af_xdp0", 2, &limits(1, 1)).expect_err("too many");
        assert_eq!(e.usable, 1);
        let msg = e.to_string();
        for part in [
            "plaintext port net_af_xdp0",
            "driver net_test",
            "2 workers need 2 RX",
            "at most 1 RX and 1 TX",
            "at most 1 workers",
        ] {
            assert!(msg.contains(part), "{msg:?} lacks {part:?}");
        }
        assert!(plan("tunnel", "x", 3, &limits(4, 2)).is_err(), "TX short");
        assert!(plan("tunnel", "x", 0, &limits(4, 4)).is_err(), "no worker");
    }
}
