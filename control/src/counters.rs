//! The control thread's own counters.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! control_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Counters of the control thread, readable from any thread.
        #[derive(Debug, Default)]
        pub struct ControlCounters {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        impl ControlCounters {
            /// `(name, value)` for every counter.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }

            /// The description of the counter `name` (its doc comment).
            pub fn describe(name: &str) -> Option<&'static str> {
                match name {
                    $(stringify!($name) => Some(concat!($($doc),*).trim()),)*
                    _ => None,
                }
            }
        }
    };
}

control_counters! {
    /// Handshakes completed (response consumed, or responder session confirmed).
    handshakes_completed,
    /// Initiations sent.
    initiations_sent,
    /// Responses sent.
    responses_sent,
    /// Cookie replies received and accepted.
    cookie_replies_accepted,
    /// Handshake messages refused past the workers' mac1 check: failed decryption, unknown peer, replayed timestamp, or a cookie reply nobody asked for.
    handshakes_rejected,
    /// Static-static DHs computed ahead by the control thread while idle, without handshake threads (with threads, they compute them).
    static_statics_ahead,
    /// Handshake messages with a valid mac2 refused by the per-source rate limiter under load.
    handshakes_rate_limited,
    /// Keepalives requested from the owner lcores by the timers.
    keepalives_requested,
    /// Sessions wiped by the zero-key-material timer.
    sessions_zeroed,
    /// Handshakes given up after REKEY_ATTEMPT_TIME.
    handshakes_given_up,
    /// Frames passed to the kernel TAP interfaces.
    to_kernel,
    /// Frames the kernel sent out through the TAP interfaces.
    from_kernel,
    /// ARP replies and neighbour advertisements sent for our addresses.
    neighbour_replies,
    /// Neighbour entries learned or refreshed.
    neighbours_learned,
    /// Neighbour probes sent (ARP requests, neighbour solicitations).
    neighbour_probes,
    /// Frames dropped because their next hop could not be resolved.
    unresolved_drops,
    /// Frames of the control thread that a TX queue refused.
    tx_drops,
    /// Commands for a worker that has stopped (its channel is closed).
    command_drops,
    /// Mbuf allocation failures on the control thread.
    alloc_failures,
    /// Plaintext-port rte_flow rules installed (an allowed-IP prefix to its owner's queue).
    steering_installed,
    /// Plaintext-port rte_flow rules removed (prefix gone, or its peer re-homed).
    steering_removed,
    /// Plaintext-port rte_flow rules the device refused: those prefixes are handed off instead.
    steering_refused,
    /// Tunnel group members removed from their group because the peer was removed (UAPI).
    group_members_removed,
    /// UAPI sets applied but not written back to the tunnel table (answered errno=5: live until a restart, which loses them).
    uapi_sets_not_saved,
    /// Routes exported to the kernel's `[cluster] export_table` (a peer's session went live, or a live peer got a prefix).
    routes_exported,
    /// Exported routes withdrawn (a session died, a peer or prefix was removed, or wgdp stopped).
    routes_withdrawn,
    /// Route export requests the kernel refused (retried at the next scan).
    route_export_failures,
    /// Thread nice values the kernel refused: the control thread's default `dpdk.control_nice` without CAP_SYS_NICE, or a helper thread's lower priority; the thread keeps the nice it had.
    thread_nice_refused,
}

/// Adds one to a counter.
#[inline]
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_described() {
        for (name, _) in ControlCounters::default().snapshot() {
            let d = ControlCounters::describe(name).unwrap_or_default();
            assert!(!d.is_empty() && !d.starts_with(' '), "{name}: {d:?}");
        }
        assert_eq!(ControlCounters::describe("no_such_counter"), None);
        assert_eq!(
            ControlCounters::describe("initiations_sent"),
            Some("Initiations sent.")
        );
    }
}
