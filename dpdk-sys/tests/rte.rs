//! The safe rte layer against the real DPDK (vdevs only, no hugepages).

use dpdk_sys::rte::lcore::{launch_and_join, Job};
use dpdk_sys::rte::testing::{
    eal, eal_args, kernel_takes_tap_flow_rules, start_small, tool_output, unique,
};
use dpdk_sys::rte::{
    flags, mbuf_ring, Burst, Eal, EalError, Mbuf, MbufError, Mempool, Port, PortConfig, QueueRule,
    BURST_SIZE,
};

const DATA_ROOM: u16 = 2048 + 128;

fn pool(size: u32) -> Mempool {
    Mempool::new(eal(), &unique("mp"), size, 0, DATA_ROOM).expect("mempool")
}

#[test]
fn second_init_is_refused() {
    let _ = eal();
    match Eal::init(eal_args()) {
        Err(EalError::AlreadyInitialized) => {}
        other => panic!("expected AlreadyInitialized, got {other:?}"),
    }
}

#[test]
fn mbuf_alloc_free_counts_are_exact_with_cache_0() {
    let mp = pool(64);
    assert_eq!((mp.available(), mp.in_use()), (64, 0));
    let a = mp.alloc().expect("alloc");
    let b = mp.alloc().expect("alloc");
    assert_eq!((mp.available(), mp.in_use()), (62, 2));
    let mut burst: Burst = Burst::new();
    mp.alloc_bulk(&mut burst, 20).expect("alloc_bulk");
    assert_eq!(burst.len(), 20);
    assert_eq!(mp.in_use(), 22);
    drop(a);
    assert_eq!(mp.in_use(), 21);
    burst.pop();
    assert_eq!(mp.in_use(), 20);
    burst.clear();
    assert_eq!(mp.in_use(), 1);
    drop(b);
    assert_eq!((mp.available(), mp.in_use()), (64, 0));
}

#[test]
fn pool_exhaustion_is_reported_not_fatal() {
    let mp = pool(8);
    let mut burst: Burst = Burst::new();
    assert!(mp.alloc_bulk(&mut burst, 9).is_err(), "9 from a pool of 8");
    assert!(burst.is_empty());
    mp.alloc_bulk(&mut burst, 8).expect("all 8");
    assert!(mp.alloc().is_none());
    assert_eq!(mp.in_use(), 8);
    drop(burst);
    assert_eq!(mp.in_use(), 0);
}

#[test]
fn alloc_bulk_beyond_burst_room_is_an_error() {
    let mp = pool(64);
    let mut burst: Burst<4> = Burst::new();
    assert!(mp.alloc_bulk(&mut burst, 5).is_err());
    assert_eq!(mp.in_use(), 0);
}

#[test]
fn prepend_append_adj_trim_respect_the_buffer() {
    let mp = pool(4);
    let mut m = mp.alloc().expect("alloc");
    let head = m.headroom();
    let tail = m.tailroom();
    assert_eq!(m.data_len(), 0);
    assert_eq!(
        m.prepend(head + 1).unwrap_err(),
        MbufError::NoHeadroom {
            need: head + 1,
            have: head
        }
    );
    assert_eq!(
        m.append(tail + 1).unwrap_err(),
        MbufError::NoTailroom {
            need: tail + 1,
            have: tail
        }
    );
    assert_eq!(m.data_len(), 0, "failed calls leave the mbuf unchanged");

    m.append(10).expect("append").copy_from_slice(b"0123456789");
    m.prepend(4).expect("prepend").copy_from_slice(b"HDR:");
    assert_eq!(m.data(), b"HDR:0123456789");
    assert_eq!((m.headroom(), m.tailroom()), (head - 4, tail - 10));
    assert_eq!(m.pkt_len(), 14);

    assert_eq!(
        m.adj(15).unwrap_err(),
        MbufError::TooShort { need: 15, have: 14 }
    );
    m.adj(4).expect("adj");
    assert_eq!(m.data(), b"0123456789");
    assert_eq!(
        m.trim(11).unwrap_err(),
        MbufError::TooShort { need: 11, have: 10 }
    );
    m.trim(3).expect("trim");
    assert_eq!(m.data(), b"0123456");
    m.data_mut()[0] = b'X';
    assert_eq!(m.data(), b"X123456");
    assert!(m.is_contiguous());
    drop(m);
    assert_eq!(mp.in_use(), 0);
}

#[test]
fn vlan_tags_are_inserted_and_stripped_after_the_macs() {
    let mp = pool(4);
    let mut m = mp.alloc().expect("alloc");
    let frame: Vec<u8> = (0..60u8).collect();
    m.append(60).expect("append").copy_from_slice(&frame);
    m.set_tx_offload(0, 14, 20);
    m.insert_vlan(0x2064).expect("insert");
    assert_eq!(m.data_len(), 64);
    assert_eq!(&m.data()[..12], &frame[..12], "MACs first");
    assert_eq!(&m.data()[12..16], &[0x81, 0x00, 0x20, 0x64], "TPID and TCI");
    assert_eq!(
        &m.data()[16..],
        &frame[12..],
        "EtherType and payload after the tag"
    );
    m.strip_vlan().expect("strip");
    assert_eq!(m.data(), &frame[..], "stripping undoes it");
    let mut short = mp.alloc().expect("alloc");
    short.append(17).expect("append");
    assert_eq!(
        short.strip_vlan().unwrap_err(),
        MbufError::TooShort { need: 18, have: 17 }
    );
    assert_eq!(short.data_len(), 17, "left as it was");
    drop((m, short));
    assert_eq!(mp.in_use(), 0);
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

fn fill(mp: &Mempool, burst: &mut Burst, first: usize, count: usize) {
    for i in first..first + count {
        let mut m = mp.alloc().expect("alloc");
        let len = 60 + (i % 1400);
        m.append(len as u16)
            .expect("append")
            .copy_from_slice(&payload(i, len));
        burst.push(m).expect("room");
    }
}

#[test]
fn ring_pair_forwards_packets_byte_for_byte() {
    let mp = pool(512);
    let (mut a, mut b) = Port::ring_pair(eal(), &unique("rp"), 1, 1024).expect("ring pair");
    let cfg = PortConfig::default();
    let setup = a.configure(&cfg, &mp).expect("configure a");
    assert_eq!(setup.driver, "net_ring");
    assert_eq!(setup.rss_granted, 0, "net_ring has no RSS");
    b.configure(&cfg, &mp).expect("configure b");
    a.start().expect("start a");
    b.start().expect("start b");
    let before = mp.in_use();
    const N: usize = 1000;
    {
        let mut tx = a.tx_queue(0).expect("tx queue");
        let mut rx = b.rx_queue(0).expect("rx queue");
        let mut got = Vec::new();
        let mut sent = 0;
        while got.len() < N {
            let mut burst: Burst = Burst::new();
            let n = BURST_SIZE.min(N - sent);
            fill(&mp, &mut burst, sent, n);
            let taken = tx.tx_burst(&mut burst);
            assert_eq!(taken, n, "ring has room");
            assert!(burst.is_empty());
            sent += taken;
            let mut rxb: Burst = Burst::new();
            rx.rx_burst(&mut rxb);
            for m in rxb.drain() {
                got.push(m.data().to_vec());
            }
        }
        for (i, data) in got.iter().enumerate() {
            assert_eq!(data, &payload(i, 60 + (i % 1400)), "packet {i}");
        }
    }
    assert_eq!(mp.in_use(), before, "every mbuf back in the pool");
    let sa = a.stats().expect("stats");
    let sb = b.stats().expect("stats");
    assert_eq!(sa.tx_packets, N as u64);
    assert_eq!(sb.rx_packets, N as u64);
    let x = b.xstats().expect("xstats");
    assert!(
        x.iter()
            .any(|(name, v)| name == "rx_good_packets" && *v == N as u64),
        "{x:?}"
    );
}

#[test]
fn tx_leaves_what_the_device_refused_with_the_caller() {
    let mp = pool(256);
    // A 64-slot ring holds 63 mbufs.
    let (mut a, mut b) = Port::ring_pair(eal(), &unique("rf"), 1, 64).expect("ring pair");
    a.configure(&PortConfig::default(), &mp).expect("configure");
    b.configure(&PortConfig::default(), &mp).expect("configure");
    a.start().expect("start");
    b.start().expect("start");
    {
        let mut tx = a.tx_queue(0).expect("tx");
        let mut first: Burst = Burst::new();
        fill(&mp, &mut first, 0, 32);
        assert_eq!(tx.tx_burst(&mut first), 32);
        let mut second: Burst = Burst::new();
        fill(&mp, &mut second, 32, 32);
        assert_eq!(tx.tx_burst(&mut second), 31, "only 31 slots left");
        assert_eq!(second.len(), 1, "the refused mbuf is still ours");
        assert_eq!(second.as_slice()[0].data(), payload(63, 60 + 63).as_slice());
        assert_eq!(mp.in_use(), 64);
        drop(second);
        assert_eq!(mp.in_use(), 63, "freeing the refused one frees exactly one");
    }
    drop(a);
    drop(b);
    assert_eq!(
        mp.in_use(),
        0,
        "closing the pair frees what was in its rings"
    );
}

#[test]
fn queue_handles_are_unique() {
    let mp = pool(256);
    let (mut a, _b) = Port::ring_pair(eal(), &unique("qh"), 2, 64).expect("ring pair");
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        ..PortConfig::default()
    };
    a.configure(&cfg, &mp).expect("configure");
    let q0 = a.rx_queue(0).expect("first handle");
    assert!(a.rx_queue(0).is_err(), "second handle on the same queue");

    assert!(a.rx_queue(2).is_err(), "queue beyond the configured ones");
    drop(q0);
    assert!(a.rx_queue(0).is_ok(), "released on drop");
}

#[test]
fn a_port_has_one_handle() {
    let name = format!("net_null{}", unique("h"));
    let first = Port::probe(eal(), &name).expect("probe net_null");
    let err = Port::by_name(eal(), &name).expect_err("a second Port for the same device");
    assert!(err.to_string().contains("already has a handle"), "{err}");
    drop(first);
}

#[test]
fn too_many_queues_is_a_clear_error() {
    let mp = pool(64);
    let (mut a, _b) = Port::ring_pair(eal(), &unique("tm"), 2, 64).expect("ring pair");
    let cfg = PortConfig {
        rx_queues: 3,
        tx_queues: 3,
        ..PortConfig::default()
    };
    let err = a.configure(&cfg, &mp).unwrap_err().to_string();
    assert!(err.contains("3 RX / 3 TX queues requested"), "{err}");
    assert!(err.contains("at most 2 / 2"), "{err}");
}

#[test]
fn mbuf_ring_moves_ownership() {
    let mp = pool(128);
    let (prod, mut cons) = mbuf_ring(eal(), &unique("r"), 64).expect("ring");
    let p2 = prod.clone();
    let mut burst: Burst = Burst::new();
    fill(&mp, &mut burst, 0, 32);
    assert_eq!(prod.enqueue_burst(&mut burst), 32);
    fill(&mp, &mut burst, 32, 32);
    assert!(
        !p2.enqueue_bulk(&mut burst),
        "31 free slots: bulk of 32 refused"
    );
    assert_eq!(burst.len(), 32, "bulk refusal keeps all of them");
    assert_eq!(p2.enqueue_burst(&mut burst), 31);
    assert_eq!(burst.len(), 1);
    assert_eq!(prod.count(), 63);
    let mut out: Burst<64> = Burst::new();
    assert!(cons.dequeue_bulk(&mut out, 10));
    assert_eq!(cons.dequeue_burst(&mut out), 53);
    for (i, m) in out.as_slice().iter().enumerate() {
        assert_eq!(m.data(), payload(i, 60 + i).as_slice());
    }
    assert!(!cons.dequeue_bulk(&mut out, 1), "no room left in the burst");
    drop(out);
    assert_eq!(mp.in_use(), 1);
    let last: Mbuf = burst.pop().expect("one left");
    prod.enqueue(last).expect("room");
    drop((prod, p2, cons));
    assert_eq!(mp.in_use(), 0, "dropping the ring frees what it held");
}

#[test]
fn lcore_jobs_borrow_and_return_results() {
    let eal = eal();
    let workers = eal.worker_lcores();
    assert!(!workers.is_empty(), "tests run with one worker lcore");
    let mp = pool(64);
    let data = [3u64, 4, 5];
    let jobs: Vec<(u32, Job<'_, Result<u64, String>>)> = vec![(
        workers[0],
        Box::new(|| {
            let m = mp.alloc().ok_or("alloc on the worker")?;
            drop(m);
            if dpdk_sys::rte::lcore_id() != Some(workers[0]) {
                return Err("ran on the wrong lcore".into());
            }
            Ok(data.iter().sum())
        }),
    )];
    let out = launch_and_join(eal, jobs);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].as_ref().expect("job ran").as_ref().expect("job ok"),
        &12
    );
    assert_eq!(mp.in_use(), 0);
    let bad: Vec<(u32, Job<'_, ()>)> = vec![(eal.main_lcore(), Box::new(|| ()))];
    let err = launch_and_join(eal, bad).remove(0).unwrap_err().to_string();
    assert!(err.contains("rte_eal_remote_launch"), "{err}");
    let panics: Vec<(u32, Job<'_, ()>)> = vec![(workers[0], Box::new(|| panic!("boom")))];
    let err = launch_and_join(eal, panics)
        .remove(0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("boom"), "{err}");
}

#[test]
fn net_tap_port_configures_two_queues() {
    let mp = pool(4096);
    let iface = unique("wt");
    let dev = format!("net_tap{},iface={iface}", std::process::id() % 100_000);
    let mut port = Port::probe(eal(), &dev).expect("probe net_tap");
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rx_descriptors: 256,
        tx_descriptors: 256,
        mtu: Some(1420),
        tx_offloads: flags::tx_ipv4_cksum() | flags::tx_udp_cksum(),
        ..PortConfig::default()
    };
    let setup = port.configure(&cfg, &mp).expect("configure net_tap");
    assert_eq!(setup.driver, "net_tap");
    assert_eq!((setup.rx_queues, setup.tx_queues), (2, 2));
    assert_eq!(setup.mtu, 1420);
    assert_eq!(setup.rss_requested, flags::rss_ip() | flags::rss_udp());
    assert_eq!(
        setup.rss_granted & !setup.rss_requested,
        0,
        "never more than asked"
    );
    assert_eq!(setup.tx_offloads.1 & !setup.tx_offloads.0, 0);
    port.start().expect("start");
    let mac = port.mac().expect("mac");
    assert_ne!(mac, [0; 6]);
    port.link().expect("link query works");
    let _q0 = port.rx_queue(0).expect("queue 0");
    let _q1 = port.rx_queue(1).expect("queue 1");
    let sys = std::path::Path::new("/sys/class/net").join(&iface);
    assert!(sys.exists(), "kernel side {iface} exists");
    let queues = std::fs::read_dir(sys.join("queues"))
        .expect("queues dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        })
        .count();
    assert_eq!(queues, 2, "the kernel TAP has 2 queues");
}

#[test]
fn flow_rules_are_refused_with_a_reason_where_the_device_has_none() {
    let mp = pool(1024);
    let (mut a, _b) = Port::ring_pair(eal(), &unique("fl"), 2, 64).expect("ring pair");
    start_small(&mut a, 2, &mp);
    let rule = QueueRule::new("10.9.0.0".parse().expect("addr"), 24, 1).expect("rule");
    // net_ring has no rte_flow operations at all.
    let e = a
        .flow_validate(&rule)
        .expect_err("net_ring validates no rule");
    assert!(e.errno == 38 || e.errno == 95, "ENOSYS or ENOTSUP: {e}");
    assert!(e.op.contains("rte_flow_validate"), "{e}");
    let e = a.flow_create(&rule).expect_err("net_ring takes no rule");
    assert!(
        e.op.contains("rte_flow_create") && !e.message.is_empty(),
        "{e}"
    );
}

/// The TAP PMD turns a queue rule into a tc flower filter. Where the kernel
/// takes what that needs (multiq, flower, skbedit; probed with `tc`,
/// outside DPDK), the rule must be installed, show in `tc filter show` on
/// the TAP interface, and be gone once its handle is dropped; where it does
/// not (this test machine's kernel has none of the three), creation must
/// fail with the PMD's reason.
#[test]
fn net_tap_flow_rule_is_installed_where_the_kernel_has_flower_else_refused() {
    let flower = kernel_takes_tap_flow_rules();
    eprintln!("kernel takes tc multiq, flower and skbedit: {flower}");
    let mp = pool(1024);
    let iface = unique("wf");
    let dev = format!("net_tap{},iface={iface}", std::process::id() % 100_000 + 1);
    let mut port = Port::probe(eal(), &dev).expect("probe net_tap");
    start_small(&mut port, 2, &mp);
    let filters = || {
        let (ok, text) = tool_output("tc", &["filter", "show", "dev", &iface, "ingress"]);
        assert!(ok, "tc filter show dev {iface} ingress: {text}");
        text
    };
    for (addr, len) in [("10.9.0.0", 24), ("fd00:9::", 64)] {
        let rule = QueueRule::new(addr.parse().expect("addr"), len, 1).expect("rule");
        let dst = format!("dst_ip {addr}/{len}");
        match (flower, port.flow_create(&rule)) {
            (true, Ok(flow)) => {
                assert_eq!(flow.rule().queue(), 1);
                let shown = filters();
                assert!(shown.contains("flower") && shown.contains(&dst), "{shown}");
                drop(flow);
                let shown = filters();
                assert!(!shown.contains(&dst), "destroyed, yet: {shown}");
            }
            (false, Err(e)) => {
                eprintln!("net_tap refused {addr}/{len}: {e}");
                assert!(!e.message.is_empty() && e.errno != 0, "{e}");
            }
            (true, Err(e)) => panic!(
                "the kernel takes tc multiq, flower and skbedit, yet net_tap refused \
                 {addr}/{len}: {e}"
            ),
            (false, Ok(_)) => panic!(
                "net_tap installed {addr}/{len} though the kernel refused a flower \
                 filter: the probe does not ask what the PMD needs"
            ),
        }
    }
}
