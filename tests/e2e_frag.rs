//! wgdp as a router in front of real networks, against wireguard-go
//! (`tests/e2e/topology.sh`): fragments and source addresses.
//!
//! - A 1280 link in front of a peer: peer 2 (in wan2, behind the wan
//!   router) reaches wgdp over a veth of MTU 1280. Its full-size outer
//!   packets leave wan2 in fragments and wgdp reassembles them; wgdp's
//!   (no DF, as the kernel's) are fragmented by the wan router and wan2
//!   reassembles them. Full-size pings both ways and TCP pass.
//! - `ping -M dont -s 1472` from a 1500-MTU LAN host to peer 1 through a
//!   1420 tunnel gets its replies: wgdp fragments the inner packet.
//! - Two addresses on the tunnel port, a peer that handshakes with the
//!   second, behind a router that refuses what comes from the first (a
//!   stateful firewall expects answers from the address it contacted):
//!   handshake and data pass, and wireguard-go's endpoint for wgdp stays
//!   the second address.
//!
//! Needs root and wireguard-go, wg, ip, ping, iperf3, nstat: it fails,
//! never skips, when they are missing.

mod netns;

use netns::*;

/// `nstat` counter `name` in namespace `ns` (absolute value).
fn nstat(ns: &str, name: &str) -> u64 {
    let out = run(&mut netns(ns, &["nstat", "-az", name]), secs(5));
    assert!(out.ok(), "nstat in {ns}:\n{out}");
    out.stdout
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name)).then(|| f.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// Runs `ip ARGS` (with `-n NS` when given), failing the test on error.
fn ip(wgdp: &Wgdp, args: &[&str]) {
    let out = run(std::process::Command::new("ip").args(args), secs(5));
    wgdp.check(out.ok(), || format!("ip {}:\n{out}", args.join(" ")));
}

/// `ping` with extra options (`-M`, `-s`): 3 replies within `deadline_s`.
fn ping_opts(ns: &str, dst: &str, from: Option<&str>, opts: &[&str], deadline_s: u32) -> Out {
    let w = deadline_s.to_string();
    let mut args = vec!["ping", "-n", "-c", "3", "-i", "0.2", "-w", &w];
    args.extend_from_slice(opts);
    if let Some(f) = from {
        args.extend(["-I", f]);
    }
    args.push(dst);
    run(&mut netns(ns, &args), secs(u64::from(deadline_s) + 5))
}

#[test]
fn outer_fragments_both_ways_through_a_1280_link_and_inner_fragments_without_df() {
    let (topo, wgdp, _config, _pt_mac) = bring_up_edited('f', 2, 1, |topo, text| {
        // A 1500 LAN: the plaintext port takes 1500-byte frames; the
        // tunnel MTU stays 1420 (1500 - 80).
        let plain = format!("address = [\"{}/24\"]\nmtu = ", topo.var("WGDP_LAN_IP"));
        text.replacen(
            &format!("{plain}{}", topo.var("LAN_MTU")),
            &format!("{plain}1500"),
            1,
        )
    });
    let v = |k: &str| topo.var(k).to_string();
    let (lan, wan, wan2) = (v("NS_LAN"), v("NS_WAN"), v("NS_WAN2"));
    let (lan_ip, peer1_ip, peer2_ip) = (v("LAN_IP"), v("PEER1_IP"), v("PEER2_IP"));
    ip(
        &wgdp,
        &["-n", &lan, "link", "set", &v("TAP_LAN"), "mtu", "1500"],
    );
    // The 1280 link between the wan router and peer 2.
    ip(
        &wgdp,
        &["-n", &wan, "link", "set", &v("VETH_WAN"), "mtu", "1280"],
    );
    ip(
        &wgdp,
        &["-n", &wan2, "link", "set", &v("VETH_WAN2"), "mtu", "1280"],
    );

    // 1. Peer 2 -> LAN, full size (1420 inner, 1480 outer): its outer
    // packets arrive in fragments, wgdp's replies leave whole and are
    // fragmented by the wan router.
    let reasm_wan2 = nstat(&wan2, "IpReasmOKs");
    let out = ping_opts(&wan2, &lan_ip, Some(&peer2_ip), &["-s", "1392"], 15);
    wgdp.check(out.ok(), || {
        format!("ping -s 1392 peer 2 -> {lan_ip} over the 1280 link:\n{out}")
    });
    let out = ping_opts(&lan, &peer2_ip, None, &["-s", "1392"], 10);
    wgdp.check(out.ok(), || {
        format!("ping -s 1392 {lan_ip} -> peer 2 over the 1280 link:\n{out}")
    });
    let got = wgdp.wait_counter(0, "event.reassembled", 6, secs(5));
    wgdp.check(got.is_some(), || {
        "wgdp reassembled fewer than 6 datagrams (3 echo requests from peer 2, 3 replies)".into()
    });
    let reasm = nstat(&wan2, "IpReasmOKs") - reasm_wan2;
    wgdp.check(reasm >= 6, || {
        format!("wan2 reassembled {reasm} of wgdp's datagrams, not at least 6 (DF set?)")
    });

    // 2. TCP LAN -> peer 2 with full-size segments both ways.
    let bps = iperf(&wgdp, &wan2, &peer2_ip, &lan, 3);
    println!(
        "iperf3 LAN -> peer 2 over the 1280 link: {:.1} Mbit/s",
        bps / 1e6
    );

    // 3. 1500 bytes without DF from the LAN to peer 1 (1420 tunnel): wgdp
    // fragments the inner packet; wireguard-go's kernel reassembles it
    // and its fragmented reply comes back.
    let before = wgdp.counter_now("event.inner_fragmented");
    let out = ping_opts(&lan, &peer1_ip, None, &["-M", "dont", "-s", "1472"], 15);
    wgdp.check(out.ok(), || {
        format!("ping -M dont -s 1472 {lan_ip} -> peer 1:\n{out}")
    });
    let got = wgdp.wait_counter(0, "event.inner_fragmented", before + 3, secs(5));
    wgdp.check(got.is_some(), || {
        "fewer than 3 inner packets fragmented for the 3 echo requests".into()
    });
    let fragments = wgdp.wait_counter(0, "event.inner_fragments", 6, secs(5));
    wgdp.check(fragments.is_some(), || {
        "fewer than 6 inner fragments for 3 packets of 1500 bytes".into()
    });
    drop(wgdp);
    drop(topo);
}

#[test]
fn replies_leave_from_the_second_address_the_peer_contacted() {
    let (topo, wgdp, _config, _pt_mac) = bring_up_edited('s', 2, 1, |topo, text| {
        let first = topo.var("WGDP_WAN_IP");
        let second = second_address(first);
        text.replacen(
            &format!("address = [\"{first}/24\"]"),
            &format!("address = [\"{first}/24\", \"{second}/24\"]"),
            1,
        )
    });
    let v = |k: &str| topo.var(k).to_string();
    let (lan, wan, wan2) = (v("NS_LAN"), v("NS_WAN"), v("NS_WAN2"));
    let (lan_ip, peer2_ip, first) = (v("LAN_IP"), v("PEER2_IP"), v("WGDP_WAN_IP"));
    let second = second_address(&first);
    // The router in front of peer 2 refuses anything from wgdp's first
    // address towards it, as a stateful firewall would for answers from
    // an address peer 2 never contacted.
    ip(
        &wgdp,
        &[
            "-n",
            &wan,
            "rule",
            "add",
            "from",
            &first,
            "to",
            &v("WAN2_NET"),
            "prohibit",
        ],
    );
    // Peer 2 contacts the second address.
    let endpoint = format!("{second}:{}", v("WGDP_PORT"));
    let set = run(
        &mut netns(
            &wan2,
            &[
                "wg",
                "set",
                &v("WG2"),
                "peer",
                &v("WGDP_PUB"),
                "endpoint",
                &endpoint,
            ],
        ),
        secs(5),
    );
    wgdp.check(set.ok(), || format!("wg set endpoint {endpoint}:\n{set}"));

    let out = ping_from(&wan2, &lan_ip, Some(&peer2_ip), 15);
    wgdp.check(out.ok(), || {
        format!("ping peer 2 -> {lan_ip} via wgdp's second address:\n{out}")
    });
    let out = ping(&lan, &peer2_ip, 10);
    wgdp.check(out.ok(), || format!("ping {lan_ip} -> peer 2:\n{out}"));
    // wireguard-go moves its endpoint to wherever authenticated packets
    // come from: still the second address.
    let eps = run(
        &mut netns(&wan2, &["wg", "show", &v("WG2"), "endpoints"]),
        secs(5),
    );
    wgdp.check(
        eps.ok() && eps.stdout.contains(&format!("\t{endpoint}")),
        || format!("wireguard-go's endpoint for wgdp is not {endpoint}:\n{eps}"),
    );
    let responses = wgdp.wait_counter(0, "control.responses_sent", 1, secs(5));
    wgdp.check(responses.is_some(), || "no handshake response sent".into());
    drop(wgdp);
    drop(topo);
}

/// The tunnel network's address 3 (the first is 1, the wan router 2).
fn second_address(first: &str) -> String {
    let (net, _) = first.rsplit_once('.').expect("an IPv4 address");
    format!("{net}.3")
}
