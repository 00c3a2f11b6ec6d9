//! A real worker sealing a plaintext burst's packets, and opening a tunnel
//! burst's messages, together in multi-buffer passes (`dpdk.aead`
//! batching): every message opens at the peer, and every message of the
//! peer's is delivered, in the order it was sent, whatever mix of lengths
//! the policy splits between the pass and one-packet sealing; a message
//! that fails its tag or replays fails alone.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use common::*;
use dataplane::batch_policy::{BatchPolicy, Batching};
use dataplane::clock::TscClock;
use dataplane::command::PortSide;
use dataplane::counters::{DropReason, Event, WorkerCounters};
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::peer::PeerShared;
use dataplane::route::make_index;
use dataplane::wire::{ethernet, ipv4};
use dataplane::worker::{Worker, WorkerConfig, WorkerNets, WorkerQueues};
use dpdk_sys::rte::lcore::Job;
use dpdk_sys::rte::testing::{eal, unique};
use dpdk_sys::rte::{rdtsc, Burst, Mempool, Port, PortConfig, RxQueue, TxQueue};
use protocol::time::Instant;
use protocol::transport::Keypair;

/// The test's ends of a worker's two ports.
struct Ends<'p> {
    pool: &'p Mempool,
    plain_tx: TxQueue<'p>,
    plain_rx: RxQueue<'p>,
    tun_tx: TxQueue<'p>,
    tun_rx: RxQueue<'p>,
}

impl Ends<'_> {
    /// Sends `frames` in one enqueue: the worker's next RX burst on that
    /// port takes them all.
    fn send_burst(&mut self, side: PortSide, frames: &[Vec<u8>]) {
        assert!(frames.len() <= 32, "one RX burst");
        let mut b: Burst = Burst::new();
        for frame in frames {
            let mut m = self.pool.alloc().expect("alloc");
            m.append(frame.len() as u16)
                .expect("room")
                .copy_from_slice(frame);
            b.push(m).expect("room");
        }
        let q = match side {
            PortSide::Plaintext => &mut self.plain_tx,
            PortSide::Tunnel => &mut self.tun_tx,
        };
        assert_eq!(q.tx_burst(&mut b), frames.len());
    }

    /// The frames the worker sends on `side` until `n` came (or 5 s passed)
    /// and `keep` kept them.
    fn recv(&mut self, side: PortSide, n: usize, keep: impl Fn(&[u8]) -> bool) -> Vec<Vec<u8>> {
        let q = match side {
            PortSide::Plaintext => &mut self.plain_rx,
            PortSide::Tunnel => &mut self.tun_rx,
        };
        let deadline = StdInstant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        let mut rx: Burst = Burst::new();
        while out.len() < n && StdInstant::now() < deadline {
            if q.rx_burst(&mut rx) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            out.extend(rx.drain().map(|m| m.data().to_vec()).filter(|f| keep(f)));
        }
        out
    }
}

/// Runs a worker sealing and opening by `policy`, with one peer whose
/// session wgdp initiated (installed before it starts), while `drive`
/// plays the LAN and the peer (its keypair); returns the worker's
/// counters once every mbuf is back in the pool.
fn with_worker(
    policy: BatchPolicy,
    drive: impl FnOnce(&mut Ends<'_>, &mut Keypair) + Send,
) -> Arc<WorkerCounters> {
    // Keys keep their bytes for the passes from here on (as `wgdp run`
    // sets it before any handshake).
    protocol::crypto::set_batch_keys(true);
    let eal = eal();
    let lcore = eal.worker_lcores()[0];
    let pool = Mempool::new(eal, &unique("mbp"), 1023, 0, 2176).expect("pool");
    let pair = || {
        let (mut a, mut b) = Port::ring_pair(eal, &unique("mb"), 1, 256).expect("ring pair");
        for p in [&mut a, &mut b] {
            p.configure(&PortConfig::default(), &pool)
                .expect("configure");
            p.start().expect("start");
        }
        (a, b)
    };
    let (tun_w, tun_t) = pair();
    let (plain_w, plain_t) = pair();
    let (kp_wgdp, mut kp_peer) = handshake(true, make_index(0x1234_5678, 0, 1));
    let (links, ends) = lone_links(eal, [64, 64, 64]);
    let counters = Arc::new(WorkerCounters::default());
    let worker = Worker::new(
        WorkerConfig {
            batch: Batching {
                seal: Some(policy),
                open: Some(policy),
            },
            ..worker_config(0, 1)
        },
        WorkerQueues {
            tun_rx: tun_w.rx_queue(0).unwrap(),
            tun_tx: tun_w.tx_queue(0).unwrap(),
            plain_rx: plain_w.rx_queue(0).unwrap(),
            plain_tx: plain_w.tx_queue(0).unwrap(),
        },
        links,
        &pool,
        TscClock::new(rdtsc(), eal.tsc_hz()),
        counters.clone(),
        WorkerNets {
            tun_port: tun_w.id(),
            tun: net(WGDP_TUN_MAC, WGDP_TUN),
            plain: net(WGDP_PLAIN_MAC, Ipv4Addr::new(10, 0, 0, 1)),
        },
        reassembly_table(eal, eal.tsc_hz(), REASSEMBLY_TIMEOUT).expect("reassembly table"),
    );
    // Queued before the worker starts: its first round applies them
    // before it polls.
    for cmd in one_peer_commands(Arc::new(PeerShared::default()), 0, Some(kp_wgdp)) {
        ends.commands.send(cmd).unwrap();
    }
    let stop = AtomicBool::new(false);
    let state = Ends {
        pool: &pool,
        plain_tx: plain_t.tx_queue(0).unwrap(),
        plain_rx: plain_t.rx_queue(0).unwrap(),
        tun_tx: tun_t.tx_queue(0).unwrap(),
        tun_rx: tun_t.rx_queue(0).unwrap(),
    };
    let jobs: Vec<(u32, Job<'_, ()>)> = vec![(lcore, Box::new(|| worker.run(&stop)))];
    run_workers(eal, jobs, &stop, state, |ends| drive(ends, &mut kp_peer));
    drop((tun_w, tun_t, plain_w, plain_t));
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
    counters
}

/// Inner packets of `lens[i]` bytes (20-byte IPv4 header, UDP, a payload
/// that names `i`) from `src` to `dst`.
fn packets(src: Ipv4Addr, dst: Ipv4Addr, lens: &[usize]) -> Vec<Vec<u8>> {
    lens.iter()
        .enumerate()
        .map(|(i, &len)| {
            let mut payload: Vec<u8> = (0..len - 28).map(|j| (i * 7 + j) as u8).collect();
            payload[0] = i as u8;
            ipv4_udp(src, dst, 64, &payload)
        })
        .collect()
}

/// LAN packets of `lens` bytes sent to the peer in one plaintext burst,
/// through a worker sealing by `policy`; returns what they were, what the
/// peer opened, in the order the tunnel port sent it, and the counters.
fn seal_burst(
    policy: BatchPolicy,
    lens: &[usize],
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Arc<WorkerCounters>) {
    let sent = packets(LAN_HOST, PEER_INNER, lens);
    let mut opened = Vec::new();
    let counters = with_worker(policy, |ends, kp_peer| {
        let frames: Vec<Vec<u8>> = sent
            .iter()
            .map(|ip| ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, ip))
            .collect();
        ends.send_burst(PortSide::Plaintext, &frames);
        // wgdp initiated: it confirms the session with a keepalive (an
        // empty message) when the keypair is installed; left out.
        for out in ends.recv(PortSide::Tunnel, sent.len() + 1, |_| true) {
            let outer = ipv4::Packet::new_checked(&out[14..]).expect("outer ipv4");
            assert!(
                outer.verify_checksum(),
                "outer checksum over the final bytes"
            );
            let mut msg = out[14 + 20 + 8..].to_vec();
            let plain = kp_peer
                .open_message(Instant::ZERO, &mut msg)
                .expect("the peer opens every message");
            if !plain.is_empty() {
                opened.push(plain.to_vec());
            }
        }
    });
    (sent, opened, counters)
}

/// The widest engine's policy with `max_len` and `min_burst`; `None`
/// (said on stderr) where the CPU has neither AVX-512 nor AVX2.
fn policy(max_len: usize, min_burst: usize) -> Option<BatchPolicy> {
    let Some(always) = BatchPolicy::always() else {
        eprintln!("no AVX-512 or AVX2: nothing to batch on this CPU");
        return None;
    };
    Some(BatchPolicy {
        max_len,
        min_burst,
        ..always
    })
}

/// 24 lengths, short and long interleaved (every third 1000 bytes), and how
/// many of them pad to at most 128 bytes (what a policy of `max_len` 128
/// takes into the pass).
fn interleaved() -> (Vec<usize>, u64) {
    let lens: Vec<usize> = (0..24)
        .map(|i| if i % 3 == 1 { 1000 } else { 48 + 3 * i })
        .collect();
    let short = lens.iter().filter(|&&l| l.div_ceil(16) * 16 <= 128).count() as u64;
    (lens, short)
}

/// What the LAN sent, as the peer reads it: TTL decremented, padded to 16.
fn assert_delivered_in_order(sent: &[Vec<u8>], opened: &[Vec<u8>]) {
    assert_eq!(opened.len(), sent.len(), "every packet came through");
    for (i, (s, o)) in sent.iter().zip(opened).enumerate() {
        assert_eq!(
            o.len(),
            s.len().div_ceil(16) * 16,
            "packet {i}: padded length"
        );
        assert_eq!(o[9], s[9], "packet {i}: protocol");
        assert_eq!(o[8], s[8] - 1, "packet {i}: TTL decremented");
        assert_eq!(
            &o[20..s.len()],
            &s[20..],
            "packet {i}: the payload, in order"
        );
        assert!(
            o[s.len()..].iter().all(|&b| b == 0),
            "packet {i}: zero padding"
        );
    }
}

#[test]
fn a_burst_of_plaintext_is_sealed_in_multibuffer_passes_and_opens_at_the_peer_in_order() {
    let Some(policy) = policy(mbaead::MAX_LEN, 1) else {
        return;
    };
    let lens: Vec<usize> = (0..20).map(|i| 60 + 37 * i).collect();
    let (sent, opened, c) = seal_burst(policy, &lens);
    assert_delivered_in_order(&sent, &opened);
    assert_eq!(c.events(Event::BatchSealed), 20, "every packet in a pass");
    let lanes = policy.engine.lanes() as u64;
    assert_eq!(c.events(Event::BatchSealPasses), 20u64.div_ceil(lanes));
    assert_eq!(c.events(Event::Encapsulated), 20);
}

#[test]
fn packets_longer_than_the_policy_takes_are_sealed_at_once_and_still_leave_in_order() {
    let Some(policy) = policy(128, 1) else {
        return;
    };
    // The short ones join the pass, the 1000-byte ones are sealed as they
    // come.
    let (lens, short) = interleaved();
    let (sent, opened, c) = seal_burst(policy, &lens);
    assert_delivered_in_order(&sent, &opened);
    assert_eq!(c.events(Event::BatchSealed), short);
    assert_eq!(c.events(Event::Encapsulated), 24);
}

#[test]
fn a_burst_shorter_than_the_policys_minimum_is_sealed_one_packet_at_a_time() {
    let Some(policy) = policy(mbaead::MAX_LEN, 8) else {
        return;
    };
    let (sent, opened, c) = seal_burst(policy, &[64, 80, 96, 112, 128, 144, 160]);
    assert_delivered_in_order(&sent, &opened);
    assert_eq!(
        c.events(Event::BatchSealed),
        0,
        "7 packets: below the minimum"
    );
    assert_eq!(c.events(Event::BatchSealPasses), 0);
    assert_eq!(c.events(Event::Encapsulated), 7);
}

/// Messages of `lens` bytes from the peer, sealed in order, sent in one
/// tunnel burst after `tamper` changed them, through a worker opening by
/// `policy`; returns the inner packets, what came out on the plaintext
/// port (each its inner packet: the Ethernet header stripped; waited for
/// until `expect` came, or 5 s), and the counters.
fn open_burst(
    policy: BatchPolicy,
    lens: &[usize],
    expect: usize,
    tamper: impl FnOnce(&mut Vec<Vec<u8>>) + Send,
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Arc<WorkerCounters>) {
    let sent = packets(PEER_INNER, LAN_HOST, lens);
    let mut delivered = Vec::new();
    let counters = with_worker(policy, |ends, kp_peer| {
        let mut frames: Vec<Vec<u8>> = sent.iter().map(|ip| sealed_frame(kp_peer, ip)).collect();
        tamper(&mut frames);
        ends.send_burst(PortSide::Tunnel, &frames);
        delivered = ends
            .recv(PortSide::Plaintext, expect, |f| f.len() > 14)
            .into_iter()
            .map(|f| f[14..].to_vec())
            .collect();
    });
    (sent, delivered, counters)
}

/// The inner packets as wgdp delivers them: TTL decremented, header
/// checksum valid, the rest unchanged.
fn assert_forwarded(sent: &[u8], got: &[u8], what: &str) {
    assert_eq!(got.len(), sent.len(), "{what}: length");
    assert_eq!(got[8], sent[8] - 1, "{what}: TTL decremented");
    assert!(ipv4::Packet::new_checked(got)
        .expect("ipv4")
        .verify_checksum());
    assert_eq!(&got[20..], &sent[20..], "{what}: payload");
}

#[test]
fn a_tunnel_burst_is_opened_in_multibuffer_passes_and_delivered_in_order() {
    let Some(policy) = policy(mbaead::MAX_LEN, 1) else {
        return;
    };
    let lens: Vec<usize> = (0..20).map(|i| 60 + 37 * i).collect();
    let (sent, got, c) = open_burst(policy, &lens, 20, |_| {});
    assert_eq!(got.len(), 20, "every message delivered");
    for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
        assert_forwarded(s, g, &format!("packet {i}"));
    }
    assert_eq!(c.events(Event::BatchOpened), 20);
    let lanes = policy.engine.lanes() as u64;
    assert_eq!(c.events(Event::BatchOpenPasses), 20u64.div_ceil(lanes));
    assert_eq!(c.events(Event::Decapsulated), 20);
}

#[test]
fn a_forged_or_replayed_message_in_a_batched_burst_fails_alone() {
    let Some(policy) = policy(mbaead::MAX_LEN, 1) else {
        return;
    };
    let lens: Vec<usize> = (0..12).map(|i| 64 + 16 * i).collect();
    // Message 3's last ciphertext byte flipped; message 7 sent again right
    // after itself (the same counter twice in one burst).
    let (sent, got, c) = open_burst(policy, &lens, 11, |frames| {
        let last = frames[3].len() - 17;
        frames[3][last] ^= 1;
        let again = frames[7].clone();
        frames.insert(8, again);
    });
    let want: Vec<usize> = (0..12).filter(|&i| i != 3).collect();
    assert_eq!(got.len(), want.len(), "all but the forged one, once each");
    for (&i, g) in want.iter().zip(&got) {
        assert_forwarded(&sent[i], g, &format!("packet {i}"));
    }
    assert_eq!(c.drops(DropReason::Authentication), 1);
    assert_eq!(c.drops(DropReason::Replay), 1);
    assert_eq!(
        c.events(Event::BatchOpened),
        13,
        "all 13 went through a pass"
    );
}

#[test]
fn long_messages_are_opened_at_once_and_still_delivered_in_order() {
    let Some(policy) = policy(128, 1) else {
        return;
    };
    let (lens, short) = interleaved();
    let (sent, got, c) = open_burst(policy, &lens, 24, |_| {});
    assert_eq!(got.len(), 24);
    for (i, (s, g)) in sent.iter().zip(&got).enumerate() {
        assert_forwarded(s, g, &format!("packet {i}"));
    }
    assert_eq!(c.events(Event::BatchOpened), short);
    assert_eq!(c.events(Event::Decapsulated), 24);
}
