//! The live-route export: which prefixes follow a peer's liveness (on the
//! control thread over in-process ring ports, the route sink a record), how
//! requests are paced and retried, and the kernel side in a network
//! namespace of the test's own (`ip route` as the independent oracle).

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::allowedips::Prefix;
use protocol::constants::REJECT_AFTER_TIME;
use protocol::time::Instant;

use super::{RouteExport, RouteSink, EXPORT_EVERY, OPS_PER_ROUND};
use crate::control::live::tests::{ask, control, hex, peer_key, ports, prefix};
use crate::counters::ControlCounters;
use crate::kernel_routes::{KernelRouteError, KernelRoutes, RTPROT_WGDP};

/// What the fake kernel holds, and the prefixes whose next add fails.
#[derive(Debug, Default)]
struct Kernel {
    routes: HashSet<Prefix>,
    fail_next_add: HashSet<Prefix>,
    requests: usize,
}

/// A route sink recording into a shared [`Kernel`].
struct Record(Arc<Mutex<Kernel>>);

impl RouteSink for Record {
    fn add(&mut self, p: Prefix) -> Result<(), KernelRouteError> {
        let mut k = self.0.lock().unwrap();
        k.requests += 1;
        if k.fail_next_add.remove(&p) {
            return Err(KernelRouteError::NoInterface("gone".into()));
        }
        k.routes.insert(p);
        Ok(())
    }

    fn delete(&mut self, p: Prefix) -> Result<(), KernelRouteError> {
        let mut k = self.0.lock().unwrap();
        k.requests += 1;
        k.routes.remove(&p);
        Ok(())
    }
}

fn recorded() -> (RouteExport, Arc<Mutex<Kernel>>) {
    let kernel = Arc::new(Mutex::new(Kernel::default()));
    let export = RouteExport::with_sink(Box::new(Record(kernel.clone())), 100, "wgdp-pt");
    (export, kernel)
}

fn set(prefixes: &[&str]) -> HashSet<Prefix> {
    prefixes.iter().map(|s| prefix(s)).collect()
}

fn routes(kernel: &Arc<Mutex<Kernel>>) -> HashSet<Prefix> {
    kernel.lock().unwrap().routes.clone()
}

fn count(counters: &ControlCounters) -> (u64, u64, u64) {
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    (
        get(&counters.routes_exported),
        get(&counters.routes_withdrawn),
        get(&counters.route_export_failures),
    )
}

/// One export scan, a scan interval after `now` (advanced).
fn scan(c: &mut crate::control::Control<'_>, now: &mut Instant) -> Instant {
    *now = *now + EXPORT_EVERY;
    c.export_round(*now);
    *now
}

#[test]
fn routes_follow_liveness_peer_removal_and_shutdown() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let (export, kernel) = recorded();
    c.set_route_export(export);
    let id2 = c.table.peers.by_key(&peer_key(2)).unwrap();
    let id3 = c.table.peers.by_key(&peer_key(3)).unwrap();
    let mut now = c.clock.now();

    // No session: nothing exported.
    scan(&mut c, &mut now);
    assert!(routes(&kernel).is_empty());

    // Peer 2's session goes live: its allowed IP and the group's prefixes
    // (it is a member of "site").
    let live_at = scan(&mut c, &mut now);
    c.table
        .peers
        .get(id2)
        .unwrap()
        .shared
        .liveness
        .publish_session(Some(live_at));
    scan(&mut c, &mut now);
    assert_eq!(
        routes(&kernel),
        set(&["10.9.1.0/24", "10.77.0.0/16", "10.78.0.0/16"])
    );
    let shown = c.show().route_export.expect("export shown");
    assert_eq!(
        (shown.table, shown.interface.as_str(), shown.pending),
        (100, "wgdp-pt", 0)
    );
    assert_eq!(
        shown.routes,
        ["10.9.1.0/24", "10.77.0.0/16", "10.78.0.0/16"]
    );
    assert_eq!(count(&c.counters), (3, 0, 0));
    let text = crate::show::render_text(&c.show());
    assert!(
        text.contains(
            "\nexported routes (table 100, dev wgdp-pt): 3\n  10.9.1.0/24\n  10.77.0.0/16\n  10.78.0.0/16\n"
        ),
        "{text}"
    );
    let mut metrics = String::new();
    super::render_metrics(&mut metrics, &shown);
    assert!(
        metrics.ends_with(
            "# TYPE wgdp_exported_routes gauge\nwgdp_exported_routes{table=\"100\"} 3\n"
        ),
        "{metrics}"
    );

    // Between scans nothing is asked of the kernel.
    let before = kernel.lock().unwrap().requests;
    c.export_round(now + Duration::from_millis(1));
    assert_eq!(kernel.lock().unwrap().requests, before);

    // Peer 3 too (an IPv6 prefix among its allowed IPs).
    c.table
        .peers
        .get(id3)
        .unwrap()
        .shared
        .liveness
        .publish_session(Some(live_at));
    scan(&mut c, &mut now);
    assert_eq!(
        routes(&kernel),
        set(&[
            "10.9.1.0/24",
            "10.9.2.0/24",
            "fd00::/64",
            "10.77.0.0/16",
            "10.78.0.0/16"
        ])
    );

    // Peer 2 leaves data unanswered: its prefix goes, the group's stay
    // (peer 3 is live).
    c.table
        .peers
        .get(id2)
        .unwrap()
        .shared
        .liveness
        .set_unanswered(true);
    scan(&mut c, &mut now);
    assert_eq!(
        routes(&kernel),
        set(&["10.9.2.0/24", "fd00::/64", "10.77.0.0/16", "10.78.0.0/16"])
    );

    // Peer 3 is removed (UAPI): its prefixes go, and with it the group's
    // only live member.
    let remove = format!(
        "set=1\npublic_key={}\nremove=true",
        hex(peer_key(3).as_bytes())
    );
    assert_eq!(ask(&mut c, &remove), "errno=0\n\n");
    scan(&mut c, &mut now);
    assert!(routes(&kernel).is_empty(), "{:?}", routes(&kernel));
    assert_eq!(count(&c.counters), (5, 5, 0));

    // Peer 2 answers again: back.
    c.table
        .peers
        .get(id2)
        .unwrap()
        .shared
        .liveness
        .set_unanswered(false);
    scan(&mut c, &mut now);
    assert_eq!(
        routes(&kernel),
        set(&["10.9.1.0/24", "10.77.0.0/16", "10.78.0.0/16"])
    );

    // Its keypair passes REJECT_AFTER_TIME: withdrawn.
    now = live_at + REJECT_AFTER_TIME - EXPORT_EVERY;
    scan(&mut c, &mut now);
    assert!(routes(&kernel).is_empty());

    // Live again, then a clean shutdown withdraws everything.
    let again: Instant = now;
    c.table
        .peers
        .get(id2)
        .unwrap()
        .shared
        .liveness
        .publish_session(Some(again));
    scan(&mut c, &mut now);
    assert_eq!(routes(&kernel).len(), 3);
    c.withdraw_routes();
    assert!(routes(&kernel).is_empty());
    assert_eq!(count(&c.counters), (11, 11, 0));
}

#[test]
fn without_a_cluster_section_nothing_is_exported_or_shown() {
    let p = ports();
    let (mut c, _commands) = control(&p);
    let id2 = c.table.peers.by_key(&peer_key(2)).unwrap();
    let now = c.clock.now();
    c.table
        .peers
        .get(id2)
        .unwrap()
        .shared
        .liveness
        .publish_session(Some(now));
    assert_eq!(c.export_round(now + EXPORT_EVERY), 0);
    c.withdraw_routes();
    assert_eq!(c.show().route_export, None);
    assert_eq!(count(&c.counters), (0, 0, 0));
    let text = crate::show::render_text(&c.show());
    assert!(!text.contains("exported routes"), "{text}");
}

#[test]
fn a_refused_add_is_retried_at_the_next_scan() {
    let (mut export, kernel) = recorded();
    let counters = ControlCounters::default();
    export.want = set(&["10.1.0.0/24", "10.2.0.0/24"]);
    kernel
        .lock()
        .unwrap()
        .fail_next_add
        .insert(prefix("10.2.0.0/24"));
    export.plan();
    assert_eq!(export.apply(OPS_PER_ROUND, &counters), 2);
    assert_eq!(routes(&kernel), set(&["10.1.0.0/24"]));
    assert_eq!(export.installed(), &set(&["10.1.0.0/24"]));
    assert_eq!(count(&counters), (1, 0, 1));
    // The next scan plans only what is still missing.
    export.plan();
    assert_eq!(export.pending, [super::Op::Add(prefix("10.2.0.0/24"))]);
    export.apply(OPS_PER_ROUND, &counters);
    assert_eq!(routes(&kernel), set(&["10.1.0.0/24", "10.2.0.0/24"]));
    assert_eq!(count(&counters), (2, 0, 1));
}

#[test]
fn requests_are_paced_per_round_withdrawals_first() {
    let (mut export, kernel) = recorded();
    let counters = ControlCounters::default();
    let many: HashSet<Prefix> = (0..600u32)
        .map(|i| Prefix::new(std::net::Ipv4Addr::from(0x0a00_0000 | i << 8).into(), 24).unwrap())
        .collect();
    export.want = many.clone();
    export.plan();
    assert_eq!(export.apply(OPS_PER_ROUND, &counters), OPS_PER_ROUND);
    assert_eq!(routes(&kernel).len(), OPS_PER_ROUND);
    assert_eq!(export.show().pending, 600 - OPS_PER_ROUND);
    assert_eq!(export.apply(OPS_PER_ROUND, &counters), OPS_PER_ROUND);
    assert_eq!(
        export.apply(OPS_PER_ROUND, &counters),
        600 - 2 * OPS_PER_ROUND
    );
    assert_eq!(export.apply(OPS_PER_ROUND, &counters), 0);
    assert_eq!(routes(&kernel), many);
    // Half go, one comes: the deletes are planned before the add.
    let keep: HashSet<Prefix> = many.iter().copied().take(300).collect();
    export.want = keep.clone();
    export.want.insert(prefix("10.200.0.0/16"));
    export.plan();
    assert_eq!(export.pending.len(), 301);
    assert!(export.pending[..300]
        .iter()
        .all(|op| matches!(op, super::Op::Delete(_))));
    assert_eq!(export.pending[300], super::Op::Add(prefix("10.200.0.0/16")));
    export.apply(OPS_PER_ROUND * 2, &counters);
    assert_eq!(routes(&kernel), export.want);
    assert_eq!(count(&counters), (601, 300, 0));
}

/// Runs `f` on a thread of its own in a new network namespace with `lo`
/// up (commands it spawns run there too).
fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // unshare(2) of this thread's network namespace only.
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
            panic!("unshare(CLONE_NEWNET) (needs root): {e}");
        }
        ip(&["link", "set", "lo", "up"]);
        f()
    })
    .join()
    .expect("netns thread")
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The routes of table 77, both families, one a line, sorted (`ip route
/// show table all`: a table without IPv6 routes is an error for `show
/// table 77`).
fn table77() -> Vec<String> {
    let mut lines: Vec<String> = ["-4", "-6"]
        .iter()
        .flat_map(|f| {
            ip(&[f, "route", "show", "table", "all"])
                .lines()
                .filter(|l| l.contains(" table 77"))
                .map(|l| l.replace(" table 77", "").trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn kernel_routes_are_added_listed_deleted_and_flushed_by_protocol() {
    in_netns(|| {
        // Our protocol, in iproute2's words.
        let proto = RTPROT_WGDP.to_string();
        // A previous run's route, and someone else's in the same table.
        ip(&[
            "route",
            "add",
            "10.8.0.0/24",
            "dev",
            "lo",
            "table",
            "77",
            "proto",
            &proto,
        ]);
        ip(&["route", "add", "10.2.0.0/24", "dev", "lo", "table", "77"]);
        let export = RouteExport::open(77, "lo").expect("export opens");
        assert!(export.installed().is_empty());
        assert_eq!(table77(), ["10.2.0.0/24 dev lo scope link"]);

        let mut k = KernelRoutes::open(77, "lo").expect("socket");
        k.add(prefix("10.1.0.0/24")).expect("add v4");
        k.add(prefix("fd00:1::/64")).expect("add v6");
        // Adding again replaces, no error.
        k.add(prefix("10.1.0.0/24")).expect("add again");
        // Global scope, protocol 201 (ours: the foreign route is proto boot).
        assert_eq!(
            table77(),
            [
                "10.1.0.0/24 dev lo proto 201",
                "10.2.0.0/24 dev lo scope link",
                "fd00:1::/64 dev lo proto 201 metric 1024 pref medium",
            ]
        );
        k.delete(prefix("10.1.0.0/24")).expect("delete");
        // Already gone: no error.
        k.delete(prefix("10.1.0.0/24")).expect("delete again");
        assert_eq!(k.flush().expect("flush"), 1);
        assert_eq!(table77(), ["10.2.0.0/24 dev lo scope link"]);
        assert!(matches!(
            KernelRoutes::open(77, "no-such-if0"),
            Err(KernelRouteError::NoInterface(_))
        ));
    });
}
