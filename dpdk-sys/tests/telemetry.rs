//! Telemetry commands registered through `rte::telemetry`, asked for with
//! DPDK's own client, `dpdk-telemetry.py` (Debian package `dpdk`), over
//! EAL's telemetry socket. Its own test binary: it needs an EAL whose
//! runtime directory (where the socket is) stays in place, which the shared
//! test harness removes.

use std::sync::Arc;

use dpdk_sys::rte::telemetry::{register, Reply, Value, MAX_ARRAY_ENTRIES};
use dpdk_sys::rte::testing::telemetry_py as ask;
use dpdk_sys::rte::Eal;

#[test]
fn commands_answer_through_dpdk_telemetry_py() {
    let prefix = format!("wgdp-tel-{}", std::process::id());
    let eal = Eal::init([
        "--no-huge",
        "--no-shconf",
        "-m",
        "128",
        "--no-pci",
        "--lcores=0@(0-1)",
        &format!("--file-prefix={prefix}"),
        "--log-level=lib.eal:error",
    ])
    .unwrap_or_else(|e| panic!("EAL init: {e}"));
    let socket = eal
        .telemetry_socket()
        .expect("EAL serves a telemetry socket");
    assert!(
        socket.ends_with(format!("{prefix}/dpdk_telemetry.v2")),
        "{socket:?}"
    );

    let dict = register(
        "/wgdp_test/dict",
        "A dictionary with every kind of value.",
        Arc::new(|params| {
            Some(Reply::Dict(vec![
                ("count".into(), Value::U64(u64::MAX)),
                (
                    "key".into(),
                    Value::String("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=".into()),
                ),
                (
                    "params".into(),
                    Value::String(params.unwrap_or("none").into()),
                ),
                ("lcores".into(), Value::U64s(vec![1, 2])),
                (
                    "allowed_ips".into(),
                    Value::Strings(vec!["10.0.0.0/8".into(), "fd00::/64".into()]),
                ),
            ]))
        }),
    )
    .expect("register dict");
    let _arrays = [
        register(
            "/wgdp_test/u64s",
            "Numbers.",
            Arc::new(|_| Some(Reply::U64s(vec![3, 4]))),
        ),
        register(
            "/wgdp_test/strings",
            "Strings.",
            Arc::new(|_| Some(Reply::Strings(vec!["a".into()]))),
        ),
        register(
            "/wgdp_test/string",
            "A string.",
            Arc::new(|_| Some(Reply::String("one".into()))),
        ),
        register("/wgdp_test/none", "Refuses.", Arc::new(|_| None)),
        register(
            "/wgdp_test/too_big",
            "More than DPDK holds.",
            Arc::new(|_| Some(Reply::U64s(vec![1; MAX_ARRAY_ENTRIES + 1]))),
        ),
        register(
            "/wgdp_test/panics",
            "Panics.",
            Arc::new(|_| panic!("handler bug")),
        ),
    ]
    .map(|r| r.expect("register"));
    // Registering again replaces the handler.
    let _u64s = register(
        "/wgdp_test/u64s",
        "Numbers.",
        Arc::new(|_| Some(Reply::U64s(vec![5]))),
    )
    .expect("register again");

    let out = ask(
        &prefix,
        &[
            "/wgdp_test/dict",
            "/wgdp_test/dict,a/b+c=",
            "/wgdp_test/u64s",
            "/wgdp_test/strings",
            "/wgdp_test/string",
            "/wgdp_test/none",
            "/wgdp_test/too_big",
            "/wgdp_test/panics",
            "/wgdp_test/string",
        ],
    );
    let dict_json = |params: &str| {
        format!(
            "{{\"/wgdp_test/dict\": {{\"count\": {}, \"key\": \"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\", \"params\": \"{params}\", \"lcores\": [1, 2], \"allowed_ips\": [\"10.0.0.0/8\", \"fd00::/64\"]}}}}",
            u64::MAX
        )
    };
    assert_eq!(
        out,
        vec![
            dict_json("none"),
            dict_json("a/b+c="),
            "{\"/wgdp_test/u64s\": [5]}".to_string(),
            "{\"/wgdp_test/strings\": [\"a\"]}".to_string(),
            "{\"/wgdp_test/string\": \"one\"}".to_string(),
            "{\"/wgdp_test/none\": null}".to_string(),
            "{\"/wgdp_test/too_big\": null}".to_string(),
            "{\"/wgdp_test/panics\": null}".to_string(),
            "{\"/wgdp_test/string\": \"one\"}".to_string(),
        ]
    );

    // A dropped registration answers null.
    drop(dict);
    assert_eq!(
        ask(&prefix, &["/wgdp_test/dict"]),
        vec!["{\"/wgdp_test/dict\": null}"]
    );

    let dir = eal.runtime_dir().expect("runtime dir");
    drop(eal);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
