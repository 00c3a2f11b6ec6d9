//! Per-lcore counters: why packets were dropped, and what was done with the
//! rest.
//!
//! Each worker owns one [`WorkerCounters`]; only that worker writes it, with
//! relaxed load + store (a plain `mov` on x86, no locked instruction), and
//! anyone may read it (metrics, `wgdp` exit report, tests).

use std::sync::atomic::{AtomicU64, Ordering};

use protocol::messages::{
    MessageError, COOKIE_REPLY_LEN, DATA_MIN_LEN, INITIATION_LEN, RESPONSE_LEN,
};
use protocol::replay::ReplayError;
use protocol::session::SessionError;
use protocol::transport::{OpenError, SealError};

use crate::cycle_profile::Stage;

macro_rules! counter_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[doc = $doc:literal])* $var:ident = $label:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(usize)]
        $vis enum $name {
            $($(#[doc = $doc])* $var,)*
        }

        impl $name {
            /// Every value, in index order.
            pub const ALL: &'static [$name] = &[$($name::$var,)*];
            /// Number of values.
            pub const COUNT: usize = Self::ALL.len();

            /// The metric label (snake case).
            pub const fn label(self) -> &'static str {
                match self { $($name::$var => $label,)* }
            }

            /// One-line description (for docs and `--help`-style listings).
            pub const fn description(self) -> &'static str {
                match self { $($name::$var => concat!($($doc),*),)* }
            }
        }
    };
}

counter_enum! {
    /// Why a packet was dropped. Indexes the per-lcore drop counters.
    pub enum DropReason {
        /// A frame too short for its Ethernet/IP/UDP headers, or with bad header fields.
        Malformed = "malformed",
        /// An outer fragment that was invalid or made its datagram invalid (overlap, duplicate, more than 8 fragments, bad lengths), per mbuf freed.
        Fragment = "fragment",
        /// Plaintext to a destination no peer's allowed IPs cover.
        NoRoute = "no_route",
        /// TTL or hop limit would reach zero on forwarding.
        TtlExceeded = "ttl_exceeded",
        /// Plaintext larger than the tunnel MTU allows.
        TooBig = "too_big",
        /// The peer has no endpoint to send to.
        NoEndpoint = "no_endpoint",
        /// More than the per-peer staging limit waited for a handshake: the oldest went.
        StagedOverflow = "staged_overflow",
        /// The worker's staging budget (`dpdk.staging_budget`) was spent: its oldest staged packet went.
        StagedBudget = "staged_budget",
        /// The send key is exhausted or expired and no new one arrived in time.
        SealFailed = "seal_failed",
        /// Not enough head- or tailroom in the mbuf for the outer headers or the tag.
        NoRoom = "no_room",
        /// The mbuf pool was empty when a packet (a keepalive, an ICMP error) had to be built.
        NoMbuf = "no_mbuf",
        /// A frame for another host's MAC, or a tunnel-port packet for another IP address.
        NotForUs = "not_for_us",
        /// A WireGuard message of unknown type (or with nonzero reserved bytes).
        BadMessage = "bad_message",
        /// A WireGuard message shorter than its type requires.
        Truncated = "truncated",
        /// A handshake message longer than its type's fixed size.
        Oversized = "oversized",
        /// The handshake queue to the control thread was full.
        HandshakeQueueFull = "handshake_queue_full",
        /// An initiation or response whose mac1 is not for our public key (checked by the worker).
        BadMac1 = "bad_mac1",
        /// A data message whose receiver index names no live keypair.
        UnknownIndex = "unknown_index",
        /// A data message whose counter was already seen or is too old.
        Replay = "replay",
        /// A data message whose tag did not authenticate.
        Authentication = "authentication",
        /// A data message for a keypair past REJECT_AFTER_TIME.
        KeyExpired = "key_expired",
        /// Decrypted plaintext that is not a well-formed IPv4/IPv6 packet (an IPv4 header checksum that does not verify included).
        InnerMalformed = "inner_malformed",
        /// Decrypted packet whose source is outside the sending peer's allowed IPs.
        InnerSourceSpoofed = "inner_source_spoofed",
        /// The handoff ring to the owner lcore was full.
        HandoffFull = "handoff_full",
        /// The ring to the control thread (exception path) was full.
        ExceptionFull = "exception_full",
        /// The TX queue did not take the packet.
        TxFull = "tx_full",
        /// The peer was removed, or moved to another worker, while its packets were in flight.
        PeerGone = "peer_gone",
        /// A frame spread over several mbufs, or outer fragments reassembled into a datagram larger than one buffer.
        Segmented = "segmented",
        /// Staged packets freed because the handshake was given up (REKEY_ATTEMPT_TIME).
        HandshakeTimeout = "handshake_timeout",
        /// The crypto device (`dpdk.aead = "cryptodev"`) failed a seal or open.
        CryptoDevice = "crypto_device",
        /// Outer CE over a Not-ECT inner packet (RFC 6040 section 4.2: the congestion mark cannot be carried).
        EcnCeNotEct = "ecn_ce_not_ect",
        /// An outer fragment of a datagram not complete within the reassembly timeout, per mbuf.
        FragmentExpired = "fragment_expired",
        /// An outer fragment refused because the worker's reassembly table was full.
        FragmentTableFull = "fragment_table_full",
        /// A frame with a VLAN tag on an untagged port, or without the port's VLAN on a tagged one (`vlan = N`).
        Vlan = "vlan",
    }
}

/// A packet the keypair would not seal: the crypto device failing is its
/// own reason, the rest (expired, exhausted) are `seal_failed`.
impl From<SealError> for DropReason {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Device => DropReason::CryptoDevice,
            _ => DropReason::SealFailed,
        }
    }
}

/// A data message the keypair its receiver index names would not open.
impl From<OpenError> for DropReason {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Replay(ReplayError::Replayed | ReplayError::TooOld) => DropReason::Replay,
            OpenError::Replay(ReplayError::Exhausted) | OpenError::Expired => {
                DropReason::KeyExpired
            }
            OpenError::Authentication => DropReason::Authentication,
            OpenError::WrongIndex(_) => DropReason::UnknownIndex,
            OpenError::Malformed(_) => DropReason::BadMessage,
            OpenError::Device => DropReason::CryptoDevice,
        }
    }
}

/// A message whose type word or length is not WireGuard's: a known type
/// shorter than its type's length is `truncated`, longer `oversized`; an
/// unknown type is `bad_message`.
impl From<MessageError> for DropReason {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::Truncated(_) => DropReason::Truncated,
            MessageError::BadLength {
                message_type,
                actual,
            } => {
                let need = match message_type {
                    1 => INITIATION_LEN,
                    2 => RESPONSE_LEN,
                    3 => COOKIE_REPLY_LEN,
                    _ => DATA_MIN_LEN,
                };
                if actual < need {
                    DropReason::Truncated
                } else {
                    DropReason::Oversized
                }
            }
            _ => DropReason::BadMessage,
        }
    }
}

impl DropReason {
    /// A data message the peer's session would not open (the receive
    /// side; a failed seal is [`From<SealError>`]).
    pub fn of_open(e: SessionError) -> Self {
        match e {
            SessionError::UnknownIndex(_) | SessionError::NoKeypair => DropReason::UnknownIndex,
            SessionError::Open(e) => e.into(),
            SessionError::Malformed(_) => DropReason::BadMessage,
            SessionError::Seal(e) => e.into(),
        }
    }
}

counter_enum! {
    /// What happened to packets that were not dropped.
    pub enum Event {
        /// Frames received on the plaintext port.
        PlaintextRx = "plaintext_rx",
        /// Frames received on the tunnel port.
        TunnelRx = "tunnel_rx",
        /// Packets encrypted and sent on the tunnel port.
        Encapsulated = "encapsulated",
        /// Packets decrypted and sent on the plaintext port.
        Decapsulated = "decapsulated",
        /// Keepalives received (authenticated, then consumed).
        KeepaliveRx = "keepalive_rx",
        /// Keepalives sent.
        KeepaliveTx = "keepalive_tx",
        /// Packets handed to another lcore that owns their peer (those its
        /// full ring refused are also counted as `handoff_full`).
        HandoffOut = "handoff_out",
        /// Packets received from another lcore's handoff.
        HandoffIn = "handoff_in",
        /// Handled on the lcore that received them (no handoff).
        Local = "local",
        /// Packets staged while a handshake runs.
        Staged = "staged",
        /// Handshake messages passed to the control thread.
        HandshakeToControl = "handshake_to_control",
        /// Handshake requests (a peer without a usable session) the full event channel to the control thread refused; the next is tried 100 ms later.
        HandshakeAskLost = "handshake_ask_lost",
        /// Handshake messages with a valid mac1 checked for mac2 (handshake queue past 1/8 full, sticky 1 s).
        HandshakeUnderLoad = "handshake_under_load",
        /// Cookie replies sent by the worker (under load, to a message without a valid mac2).
        CookieReplySent = "cookie_reply_sent",
        /// Frames passed to the control thread (exception path, ARP/ND, resolution).
        ToControl = "to_control",
        /// Bytes of plaintext encrypted.
        EncapBytes = "encap_bytes",
        /// Bytes of plaintext decrypted.
        DecapBytes = "decap_bytes",
        /// Tunnel-port data packets handled on the worker that received them.
        TunnelInline = "tunnel_inline",
        /// Tunnel-port data packets handed to the worker that owns their peer.
        TunnelHandoff = "tunnel_handoff",
        /// Tunnel-port frames dropped (any reason) by this worker.
        TunnelDropped = "tunnel_dropped",
        /// Plaintext-port packets handled on the worker that received them.
        PlaintextInline = "plaintext_inline",
        /// Plaintext-port packets handed to the worker that owns their peer.
        PlaintextHandoff = "plaintext_handoff",
        /// Plaintext-port frames dropped (any reason) by this worker.
        PlaintextDropped = "plaintext_dropped",
        /// Packets passed on for a peer that moved to another worker.
        Forwarded = "forwarded",
        /// Authenticated packets of an owned peer that arrived on another worker's queue.
        ArrivedElsewhere = "arrived_elsewhere",
        /// Peers handed to another worker (re-homed away).
        PeersReleased = "peers_released",
        /// Peers taken over from another worker (re-homed here).
        PeersAdopted = "peers_adopted",
        /// Packets encrypted by a lane worker for another worker's multi-lane peer.
        LaneEncap = "lane_encap",
        /// Packets decrypted by a lane worker for another worker's multi-lane peer.
        LaneDecap = "lane_decap",
        /// ICMP "fragmentation needed" sent (IPv4 with DF above the tunnel MTU).
        IcmpFragNeeded = "icmp_frag_needed",
        /// ICMPv6 Packet Too Big sent (IPv6 above the tunnel MTU).
        IcmpPacketTooBig = "icmp_packet_too_big",
        /// ICMP time exceeded sent (TTL or hop limit reached zero here, either direction).
        IcmpTimeExceeded = "icmp_time_exceeded",
        /// ICMP host / address unreachable sent (the destination's peer has no endpoint).
        IcmpUnreachable = "icmp_unreachable",
        /// ICMP errors not sent: the worker's token bucket was empty.
        IcmpRateLimited = "icmp_rate_limited",
        /// ICMP errors not sent by RFC 1812 / RFC 4443 rules (about an ICMP error, a later fragment, a broadcast or multicast address).
        IcmpSuppressed = "icmp_suppressed",
        /// TCP SYNs whose MSS option was lowered to `mss_clamp`.
        MssClamped = "mss_clamped",
        /// Outer fragments for our tunnel addresses taken into reassembly.
        FragmentsIn = "fragments_in",
        /// Outer datagrams reassembled from fragments.
        Reassembled = "reassembled",
        /// Inner IPv4 packets (no DF) above the tunnel MTU split into fragments before encryption.
        InnerFragmented = "inner_fragmented",
        /// Fragments made of them (each sealed as a packet of its own).
        InnerFragments = "inner_fragments",
        /// Data messages sealed in multi-buffer passes (`dpdk.aead` batching; see `batch_policy`).
        BatchSealed = "batch_sealed",
        /// Multi-buffer seal passes run (up to 16 or 8 messages each).
        BatchSealPasses = "batch_seal_passes",
        /// Data messages opened in multi-buffer passes (their tags checked together).
        BatchOpened = "batch_opened",
        /// Multi-buffer open passes run.
        BatchOpenPasses = "batch_open_passes",
    }
}

/// One worker's counters, written by that worker only.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    drops: [AtomicU64; DropReason::COUNT],
    events: [AtomicU64; Event::COUNT],
    /// TSC cycles per loop stage (written only with the `stages` feature).
    stages: [AtomicU64; Stage::COUNT],
}

impl Default for WorkerCounters {
    fn default() -> Self {
        Self {
            drops: [const { AtomicU64::new(0) }; DropReason::COUNT],
            events: [const { AtomicU64::new(0) }; Event::COUNT],
            stages: [const { AtomicU64::new(0) }; Stage::COUNT],
        }
    }
}

#[inline]
fn bump(c: &AtomicU64, n: u64) {
    // Single writer: load + store, no read-modify-write instruction.
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl WorkerCounters {
    /// Counts one drop. Only the owning worker calls this.
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        bump(&self.drops[reason as usize], 1);
    }

    /// Counts `n` events. Only the owning worker calls this.
    #[inline]
    pub fn add(&self, event: Event, n: u64) {
        bump(&self.events[event as usize], n);
    }

    /// Adds `cycles` to a stage (see [`crate::stages`]). Only the owning
    /// worker calls this.
    #[inline]
    pub fn add_stage_cycles(&self, stage: Stage, cycles: u64) {
        bump(&self.stages[stage as usize], cycles);
    }

    /// TSC cycles spent in `stage` so far (zero without the `stages`
    /// feature).
    pub fn stage_cycles(&self, stage: Stage) -> u64 {
        self.stages[stage as usize].load(Ordering::Relaxed)
    }

    /// Drops so far for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].load(Ordering::Relaxed)
    }

    /// Events so far.
    pub fn events(&self, event: Event) -> u64 {
        self.events[event as usize].load(Ordering::Relaxed)
    }

    /// All drops, summed.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle_profile::{StageClock, ENABLED};

    #[test]
    fn labels_are_unique_and_indexes_dense() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(seen.insert(r.label()), "duplicate {}", r.label());
            assert!(!r.description().is_empty());
        }
        for (i, e) in Event::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i);
        }
    }

    #[test]
    fn counts_accumulate_per_reason() {
        let c = WorkerCounters::default();
        c.count_drop(DropReason::Replay);
        c.count_drop(DropReason::Replay);
        c.count_drop(DropReason::NoRoute);
        c.add(Event::EncapBytes, 1400);
        c.add(Event::EncapBytes, 100);
        assert_eq!(c.drops(DropReason::Replay), 2);
        assert_eq!(c.drops(DropReason::NoRoute), 1);
        assert_eq!(c.drops(DropReason::Authentication), 0);
        assert_eq!(c.total_drops(), 3);
        assert_eq!(c.events(Event::EncapBytes), 1500);
    }

    #[test]
    fn laps_add_up_when_enabled_and_cost_nothing_when_not() {
        let counters = WorkerCounters::default();
        let mut clock = StageClock::default();
        clock.start();
        std::hint::black_box((0..1000u64).sum::<u64>());
        clock.lap(Stage::Parse);
        clock.lap(Stage::Crypto);
        clock.publish(|s, c| counters.add_stage_cycles(s, c));
        let parse = counters.stage_cycles(Stage::Parse);
        let total: u64 = Stage::ALL.iter().map(|&s| counters.stage_cycles(s)).sum();
        if ENABLED {
            assert!(parse > 0, "the TSC moved during the first lap");
            assert_eq!(total, parse + counters.stage_cycles(Stage::Crypto));
            // Published sums start again from zero.
            clock.publish(|s, c| counters.add_stage_cycles(s, c));
            assert_eq!(counters.stage_cycles(Stage::Parse), parse);
        } else {
            assert_eq!(total, 0);
        }
    }
}
