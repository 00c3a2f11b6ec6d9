//! A real worker sealing a plaintext burst's packets together in
//! multi-buffer passes (`dpdk.aead` batching): every message opens at the
//! peer, in the order the LAN sent it, whatever mix of lengths the policy
//! splits between the pass and one-packet sealing.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use common::*;
use dataplane::batch_policy::BatchPolicy;
use dataplane::clock::TscClock;
use dataplane::counters::{Event, WorkerCounters};
use dataplane::fragments::{reassembly_table, REASSEMBLY_TIMEOUT};
use dataplane::peer::PeerShared;
use dataplane::route::make_index;
use dataplane::wire::{ethernet, ipv4};
use dataplane::worker::{Worker, WorkerNets, WorkerQueues};
use dpdk_sys::rte::lcore::Job;
use dpdk_sys::rte::testing::{eal, unique};
use dpdk_sys::rte::{rdtsc, Burst, Mempool, Port, PortConfig};
use protocol::time::Instant;

/// Inner packets of `lens[i]` bytes (20-byte IPv4 header, UDP, payload
/// naming `i`) from the LAN host to the peer, sent to a worker sealing by
/// `policy` in one RX burst; returns what the peer opened, in the order
/// the tunnel port sent it, and the worker's counters.
fn seal_burst(
    policy: BatchPolicy,
    lens: &[usize],
) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Arc<WorkerCounters>) {
    assert!(lens.len() <= 32, "one RX burst");
    // Keys keep their bytes for the passes from here on (as `wgdp run`
    // sets it before any handshake).
    protocol::crypto::set_batch_keys(true);
    let eal = eal();
    let lcore = eal.worker_lcores()[0];
    let pool = Mempool::new(eal, &unique("sbp"), 1023, 0, 2176).expect("pool");
    let pair = || {
        let (mut a, mut b) = Port::ring_pair(eal, &unique("sb"), 1, 256).expect("ring pair");
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
        dataplane::worker::WorkerConfig {
            batch: Some(policy),
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
    for cmd in one_peer_commands(Arc::new(PeerShared::default()), 0, Some(kp_wgdp)) {
        ends.commands.send(cmd).unwrap();
    }
    let sent: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let mut payload = vec![0u8; len - 28];
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(j, b)| *b = (i * 7 + j) as u8);
            payload[0] = i as u8;
            ipv4_udp(LAN_HOST, PEER_INNER, 64, &payload)
        })
        .collect();
    let stop = AtomicBool::new(false);
    let mut opened = Vec::new();
    let state = (
        plain_t.tx_queue(0).unwrap(),
        tun_t.rx_queue(0).unwrap(),
        &mut opened,
    );
    let jobs: Vec<(u32, Job<'_, ()>)> = vec![(lcore, Box::new(|| worker.run(&stop)))];
    run_workers(eal, jobs, &stop, state, |(plain_tx, tun_rx, opened)| {
        // The commands (peer, route, neighbours, keypair) were queued before
        // the worker started: its first round applies them before it polls.
        // One enqueue: the worker's next RX burst takes them all.
        let mut b: Burst = Burst::new();
        for inner in &sent {
            let frame = ether(WGDP_PLAIN_MAC, LAN_MAC, ethernet::ethertype::IPV4, inner);
            let mut m = pool.alloc().expect("alloc");
            m.append(frame.len() as u16)
                .expect("room")
                .copy_from_slice(&frame);
            b.push(m).expect("room");
        }
        assert_eq!(plain_tx.tx_burst(&mut b), sent.len());
        let deadline = StdInstant::now() + Duration::from_secs(5);
        let mut rx: Burst = Burst::new();
        while opened.len() < sent.len() && StdInstant::now() < deadline {
            if tun_rx.rx_burst(&mut rx) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            for m in rx.drain() {
                let out = m.data();
                let outer = ipv4::Packet::new_checked(&out[14..]).expect("outer ipv4");
                assert!(
                    outer.verify_checksum(),
                    "outer checksum over the final bytes"
                );
                let mut msg = out[14 + 20 + 8..].to_vec();
                let plain = kp_peer
                    .open_message(Instant::ZERO, &mut msg)
                    .expect("the peer opens every message");
                // wgdp initiated: it confirms the session with a
                // keepalive (empty) when the keypair is installed.
                if !plain.is_empty() {
                    opened.push(plain.to_vec());
                }
            }
        }
    });
    drop((tun_w, tun_t, plain_w, plain_t));
    assert_eq!(pool.in_use(), 0, "every mbuf back in the pool");
    (sent, opened, counters)
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
    let Some(policy) = BatchPolicy::always() else {
        eprintln!("no AVX-512 or AVX2: nothing to batch on this CPU");
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
    let Some(always) = BatchPolicy::always() else {
        eprintln!("no AVX-512 or AVX2: nothing to batch on this CPU");
        return;
    };
    let policy = BatchPolicy {
        max_len: 128,
        ..always
    };
    // Short and long interleaved: 64..=128-byte padded lengths join the
    // pass, the 1000-byte ones are sealed as they come.
    let lens: Vec<usize> = (0..24)
        .map(|i| if i % 3 == 1 { 1000 } else { 48 + 3 * i })
        .collect();
    let short = lens.iter().filter(|&&l| l.div_ceil(16) * 16 <= 128).count() as u64;
    let (sent, opened, c) = seal_burst(policy, &lens);
    assert_delivered_in_order(&sent, &opened);
    assert_eq!(c.events(Event::BatchSealed), short);
    assert_eq!(c.events(Event::Encapsulated), 24);
}

#[test]
fn a_burst_shorter_than_the_policys_minimum_is_sealed_one_packet_at_a_time() {
    let Some(always) = BatchPolicy::always() else {
        eprintln!("no AVX-512 or AVX2: nothing to batch on this CPU");
        return;
    };
    let policy = BatchPolicy {
        min_burst: 8,
        ..always
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
