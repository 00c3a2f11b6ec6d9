//! One-armed mode against wireguard-go (`tests/e2e/topology.sh`): wgdp
//! with one port carrying both roles (`[ports.both]`), as on a cloud VM
//! with one NIC.
//!
//! The one port's kernel end sits in the wan namespace, which is at once
//! the LAN host (10.0.0.2 on the link, its route to the peers via wgdp's
//! LAN address 10.0.0.1) and the router in front of wireguard-go peer 2
//! (wan2): the peer's WireGuard and the LAN host's plaintext reach wgdp
//! over the same link, told apart by their destination. Peer 2 pings the
//! LAN host and the LAN host pings peer 2 through the tunnel; both are
//! answered, every frame arrived on the one port (no `plaintext_rx`), and
//! wgdp both encrypted and decrypted.
//!
//! Needs root and wireguard-go, wg, ip, ping: it fails, never skips, when
//! they are missing.

mod netns;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use netns::*;

/// Runs `ip ARGS`, failing the test on error.
fn ip(wgdp: &Wgdp, args: &[&str]) {
    let out = run(Command::new("ip").args(args), secs(5));
    wgdp.check(out.ok(), || format!("ip {}:\n{out}", args.join(" ")));
}

/// topology.sh's config with its two ports made one: `[ports.both]` on
/// the tunnel port's device, with the LAN address beside the tunnel one.
fn one_armed_config(topo: &Topology, text: &str) -> String {
    let (wan_ip, lan_ip) = (topo.var("WGDP_WAN_IP"), topo.var("WGDP_LAN_IP"));
    let start = text.find("[ports.plaintext]").expect("a plaintext port");
    let end = start + text[start..].find("\n\n").expect("its end");
    let text = format!("{}{}", &text[..start], &text[end + 2..]);
    let both = text.replacen("[ports.tunnel]", "[ports.both]", 1).replacen(
        &format!("address = [\"{wan_ip}/24\"]"),
        &format!("address = [\"{wan_ip}/24\", \"{lan_ip}/24\"]"),
        1,
    );
    assert!(both.contains(&format!("\"{lan_ip}/24\"]")), "{both}");
    both
}

#[test]
fn a_lan_host_and_a_peer_on_one_link_reach_each_other_through_one_port() {
    preflight();
    let sfx = format!("o{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("wgdp-e2e-{sfx}"));
    let _ = fs::remove_dir_all(&dir);
    let topo = Topology::up(&sfx, dir.clone(), 2, 1);
    let config = topo.sh("config");
    assert!(config.ok(), "topology.sh config failed:\n{config}");
    let text = one_armed_config(&topo, &config.stdout);
    let config_path = dir.join("wgdp.toml");
    fs::write(&config_path, &text).expect("write wgdp.toml");
    fs::set_permissions(&config_path, fs::Permissions::from_mode(0o600)).expect("chmod wgdp.toml");
    let mut wgdp = Wgdp::launch(&config_path, &Launch::DEFAULT);
    wait_running_within(&mut wgdp, &config_path, &text, Launch::DEFAULT.ready);
    let started = wgdp.stdout.snapshot();
    wgdp.check(port_mac(&started, "both").is_some(), || {
        "no 'port both DEVICE mac MAC' line before 'wgdp: running'".into()
    });
    wgdp.check(port_mac(&started, "plaintext").is_none(), || {
        "a plaintext port was opened in one-armed mode".into()
    });

    // The one link: the port's kernel end in wan, with the tunnel
    // network's router address and the LAN host's. Peer 1's route to the
    // LAN (wan is its namespace) goes: the LAN is on the link now.
    let v = |k: &str| topo.var(k).to_string();
    let (wan, wan2, tap) = (v("NS_WAN"), v("NS_WAN2"), v("TAP_WAN"));
    let (lan_ip, peer2_ip) = (v("LAN_IP"), v("PEER2_IP"));
    ip(&wgdp, &["link", "set", "dev", &tap, "netns", &wan]);
    // A net_tap's kernel end starts with the port's own MAC.
    ip(
        &wgdp,
        &[
            "-n",
            &wan,
            "link",
            "set",
            &tap,
            "address",
            "02:00:00:00:0b:02",
        ],
    );
    let _ = run(
        &mut netns(
            &wan,
            &[
                "ethtool", "-K", &tap, "tx", "off", "tso", "off", "gso", "off",
            ],
        ),
        secs(5),
    );
    ip(
        &wgdp,
        &["-n", &wan, "route", "del", &v("LAN_NET"), "dev", &v("WG1")],
    );
    for addr in [format!("{}/24", v("WAN_IP")), format!("{lan_ip}/24")] {
        ip(&wgdp, &["-n", &wan, "addr", "add", &addr, "dev", &tap]);
    }
    ip(&wgdp, &["-n", &wan, "link", "set", &tap, "up"]);
    ip(
        &wgdp,
        &[
            "-n",
            &wan,
            "route",
            "replace",
            &format!("{peer2_ip}/32"),
            "via",
            &v("WGDP_LAN_IP"),
            "dev",
            &tap,
        ],
    );

    // Peer 2 (no endpoint in wgdp's table: it initiates) to the LAN host,
    // then the LAN host to peer 2.
    let out = ping_from(&wan2, &lan_ip, Some(&peer2_ip), 15);
    wgdp.check(out.ok(), || {
        format!("ping peer 2 -> LAN host {lan_ip}:\n{out}")
    });
    let out = ping_from(&wan, &peer2_ip, Some(&lan_ip), 10);
    wgdp.check(out.ok(), || {
        format!("ping LAN host {lan_ip} -> peer 2:\n{out}")
    });
    // At least 3 echo requests and 3 replies each way were decrypted and
    // as many encrypted; every frame came in on the one port.
    for name in ["event.decapsulated", "event.encapsulated"] {
        let got = wgdp.wait_counter(0, name, 6, secs(5));
        wgdp.check(got.is_some(), || format!("{name} below 6"));
    }
    let rx = wgdp.wait_counter(0, "event.tunnel_rx", 12, secs(5));
    wgdp.check(rx.is_some(), || {
        "fewer than 12 frames received on the one port".into()
    });
    wgdp.check(wgdp.counter_now("event.plaintext_rx") == 0, || {
        "frames counted as a second port's in one-armed mode".into()
    });
    drop(wgdp);
    drop(topo);
}
